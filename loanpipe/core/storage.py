"""The lake: one root (a local folder or an S3 prefix) with fixed folder names, and atomic publishing.

Layout (same names locally and in a bucket)::

    <root>/train/                      training data (Parquet)
    <root>/test/                       held-out data that emulates new applications (Parquet)
    <root>/test_sample/run_date=D/     the batch sampled for run date D
    <root>/train_sup/                  train enriched with labelled batches
    <root>/test_sample_inference/run_date=D/   the scores the business reads
    <root>/artifacts/                  plots, metrics, models, run summaries, reports
    <root>/_staging/                   work in progress; never read by anyone (Spark skips ``_`` paths)

Every write goes to ``_staging/<unique>/`` first and is *published* at the end, and a published folder carries
a ``_SUCCESS`` marker whose content is the manifest of its files:

* local folder (:class:`Lake`): the folder is swapped in by rename, so readers see the old version or the new
  one, never half of one; a failed job leaves the previous version in place.
* S3 prefix (:class:`S3Lake`; Spark writes through ``s3a://``, small objects go through boto3): S3 has no
  rename, so publishing journals its plan, removes the marker, copies the new objects in (server side),
  deletes what is left of the old version and writes the marker last. Readers that honour the marker (the
  jobs, the sensor, ``loanpipe.jobs.fetch_scores``) never read a half-published folder; a copy that fails is
  rolled back to the old version and its marker.

A process killed in the middle of a publish (SIGKILL, a lost node) cannot clean up after itself. A run date's
jobs therefore stage under ``_staging/<run date>/`` (:meth:`Lake.owned_by`) and start, holding the date's lock,
with :meth:`Lake.recover`: locally an old version left beside its target is renamed back (killed between the
two renames) or deleted (killed after them); on S3 the journal is rolled back or forward; then the date's
staging leftovers are deleted.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from loanpipe.core.config import StorageConfig

TRAIN = "train"
TEST = "test"
TEST_SAMPLE = "test_sample"
TRAIN_SUP = "train_sup"
INFERENCE = "test_sample_inference"
QUARANTINE = "test_sample_quarantine"
ARTIFACTS = "artifacts"
FOLDERS = (TRAIN, TEST, TEST_SAMPLE, TRAIN_SUP, INFERENCE, ARTIFACTS)
STAGING = "_staging"
SUCCESS = "_SUCCESS"
JOURNAL = "_PUBLISH.json"  # an S3 publish's plan and phase, in its backup folder while it runs
PARTITION_KEY = "run_date"


class StorageError(RuntimeError):
    """A lake operation failed; the message names the path and what to check."""


def parse_run_date(value: str) -> dt.date:
    """``YYYY-MM-DD`` -> date, with an error that says what was expected."""
    try:
        return dt.date.fromisoformat(value)
    except (TypeError, ValueError):
        raise ValueError(f"run date {value!r} is not a date in YYYY-MM-DD form (e.g. 2026-11-29)") from None


def partition_name(run_date: dt.date | str) -> str:
    if isinstance(run_date, str):
        run_date = parse_run_date(run_date)
    return f"{PARTITION_KEY}={run_date.isoformat()}"


@dataclass(frozen=True)
class Lake:
    """Paths and atomic publishing for one lake root (a local folder)."""

    root: str
    owner: str = ""  # the run date whose transaction this handle writes for: its staging is _staging/<owner>/

    # -- paths -------------------------------------------------------------------------------------
    def uri(self, *parts: str) -> str:
        """A path Spark can read or write (absolute local path or s3a:// URI)."""
        return "/".join([self.root.rstrip("/"), *[p.strip("/") for p in parts if p]])

    def partition_uri(self, folder: str, run_date: dt.date | str) -> str:
        return self.uri(folder, partition_name(run_date))

    def staging_uri(self, label: str) -> str:
        """A fresh, unique staging location for one job's output (under the owner's staging folder, if any)."""
        return self.uri(STAGING, self.owner, f"{label}-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}")

    def owned_by(self, owner: str) -> Lake:
        """This lake, staging under ``_staging/<owner>/``: what a killed run of that owner leaves there is found
        and cleared by the owner's next run (:meth:`recover`), while other owners' work in progress is not touched."""
        return replace(self, owner=owner)

    def file_access(self) -> FileAccess:
        """What a Spark task needs to read this lake's files itself, with pyarrow (``loanpipe.ml.scoring``)."""
        return FileAccess()

    # -- local file operations -------------------------------------------------------------------
    def _local(self, uri: str) -> Path:
        return Path(uri)

    def exists(self, uri: str) -> bool:
        return self._local(uri).exists()

    def has_data(self, uri: str) -> bool:
        """True when ``uri`` is a folder holding at least one Parquet file (at any depth)."""
        path = self._local(uri)
        return path.is_dir() and any(path.rglob("*.parquet"))

    def list_partitions(self, folder: str) -> list[str]:
        """Published partition values (``run_date=D`` -> ``D``) of ``folder``, sorted."""
        path = self._local(self.uri(folder))
        if not path.is_dir():
            return []
        prefix = f"{PARTITION_KEY}="
        return sorted(p.name[len(prefix):] for p in path.iterdir() if p.is_dir() and p.name.startswith(prefix))

    def read_bytes(self, uri: str) -> bytes:
        try:
            return self._local(uri).read_bytes()
        except FileNotFoundError:
            raise StorageError(f"{uri} does not exist") from None

    def write_bytes(self, uri: str, data: bytes) -> None:
        """Write a small object atomically (temp file + rename)."""
        path = self._local(uri)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)

    def read_json(self, uri: str) -> Any:
        return json.loads(self.read_bytes(uri))

    def write_json(self, uri: str, obj: Any) -> None:
        self.write_bytes(uri, json.dumps(obj, indent=2, sort_keys=True, default=str).encode())

    def upload_file(self, local_path: str | Path, uri: str) -> None:
        self.write_bytes(uri, Path(local_path).read_bytes())

    def publish(self, staging: str, target: str) -> None:
        """Swap the folder ``staging`` in at ``target`` (replacing any previous version) and mark it done.

        Local: rename the old version aside, rename the new one in, then delete the old one; the window in
        which ``target`` is absent is two renames long, and a crash in it leaves the old version beside it.
        """
        src, dst = self._local(staging), self._local(target)
        if not src.is_dir():
            raise StorageError(f"nothing to publish: staging folder {staging} does not exist")
        self._repair(target)
        (src / SUCCESS).write_text(manifest_json(self.data_files(staging)))
        dst.parent.mkdir(parents=True, exist_ok=True)
        old = None
        if dst.exists():
            old = dst.with_name(f".{dst.name}.old-{uuid.uuid4().hex[:8]}")
            os.replace(dst, old)
        try:
            os.replace(src, dst)
        except OSError:
            if old is not None:
                os.replace(old, dst)
            raise
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)

    def _repair(self, target: str) -> list[str]:
        """Put right what a publish of ``target`` that was killed half-way left beside it; returns what it did.

        Killed between the two renames: the target is absent and its old version sits beside it -> renamed back
        (the old version is published again). Killed after them: the old version is left over -> deleted.
        """
        dst = self._local(target)
        done = []
        for old in sorted(dst.parent.glob(f".{dst.name}.old-*")) if dst.parent.is_dir() else []:
            if not dst.exists():
                os.replace(old, dst)
                done.append(f"restored the previous version of {target} (a publish was killed between its renames)")
            else:
                shutil.rmtree(old, ignore_errors=True)
                done.append(f"removed {old} (a publish was killed before deleting the previous version)")
        return done

    def recover(self, targets: list[str]) -> list[str]:
        """What this owner's killed runs left: repair each of ``targets`` and clear the owner's staging folder.
        Call it while holding the owner's lock (``loanpipe.core.transaction``); returns what was done."""
        done = [line for target in targets for line in self._repair(target)]
        return done + self._clear_staging()

    def _clear_staging(self) -> list[str]:
        if not self.owner:
            raise StorageError("recover() needs a lake handle with an owner (lake.owned_by(run_date))")
        owned = self.uri(STAGING, self.owner)
        left = self.list_files(owned)
        self.remove(owned)
        return [f"cleared {len(left)} staged files of a killed run from {owned}"] if left else []

    def create_exclusive(self, uri: str, data: bytes) -> bool:
        """Create the object ``uri`` only if it does not exist (atomically); False when it already does."""
        path = self._local(uri)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
        tmp.write_bytes(data)
        try:
            os.link(tmp, path)  # a hard link fails when the name exists, and is never seen half-written
        except FileExistsError:
            return False
        finally:
            tmp.unlink()
        return True

    def remove(self, uri: str) -> None:
        path = self._local(uri)
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        elif path.exists():
            path.unlink()

    def is_published(self, uri: str) -> bool:
        return self._local(uri).joinpath(SUCCESS).exists()

    def published_files(self, uri: str) -> list[str]:
        """The files of the published folder ``uri`` (URIs), from its manifest; refuses unpublished folders."""
        marker = f"{uri.rstrip('/')}/{SUCCESS}"
        if not self.is_published(uri):
            raise StorageError(f"{uri} has no {SUCCESS} marker: it is still being written, or the run that wrote it "
                               "failed; pick another date or rerun that date")
        files = parse_manifest(self.read_bytes(marker))
        if files is None:  # written by an older release or by Spark's committer: list the folder
            files = self.data_files(uri)
        return [f"{uri.rstrip('/')}/{k}" for k in files]

    def data_files(self, uri: str) -> list[str]:
        """The files under ``uri`` (relative to it), its ``_SUCCESS`` marker left out."""
        return [k for k in self.list_files(uri) if k.rsplit("/", 1)[-1] != SUCCESS]

    def list_files(self, uri: str) -> list[str]:
        """Every file under ``uri``, relative to it."""
        path = self._local(uri)
        return sorted(str(f.relative_to(path)) for f in path.rglob("*") if f.is_file()) if path.is_dir() else []

    def ensure_layout(self) -> None:
        for folder in FOLDERS:
            self._local(self.uri(folder)).mkdir(parents=True, exist_ok=True)

    def describe(self) -> str:
        return f"local folder {self.root}"


def manifest_json(files: list[str]) -> str:
    """The content of a ``_SUCCESS`` marker: when the folder was published and exactly which files it holds."""
    return json.dumps({"published_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "files": files})


def parse_manifest(data: bytes) -> list[str] | None:
    try:
        files = json.loads(data or b"null")
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    return files.get("files") if isinstance(files, dict) else None


# -- S3 ------------------------------------------------------------------------------------------------

S3_AUTH_CODES = {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "403", "InvalidToken",
                 "ExpiredToken", "AllAccessDisabled"}


@dataclass(frozen=True)
class S3Credentials:
    """Keys handed over explicitly (e.g. from an Airflow connection); None = boto3's usual chain (environment,
    ~/.aws, instance metadata)."""

    access_key: str = field(repr=False)
    secret_key: str = field(repr=False)
    session_token: str | None = field(default=None, repr=False)


def split_s3_uri(uri: str) -> tuple[str, str]:
    """``s3a://bucket/a/b`` -> (``bucket``, ``a/b``)."""
    scheme, sep, rest = uri.partition("://")
    if not sep or scheme not in ("s3a", "s3", "s3n"):
        raise StorageError(f"{uri} is not an S3 URI (expected s3a://bucket/prefix)")
    bucket, _, key = rest.partition("/")
    if not bucket:
        raise StorageError(f"{uri} names no bucket (expected s3a://bucket/prefix)")
    return bucket, key.strip("/")


@dataclass(frozen=True)
class FileAccess:
    """A lake's files as a Spark task reads them with pyarrow, without Spark's reader: a local folder, or the
    bucket with the storage config's endpoint and the keys the driver's own boto3 client uses (sent to the
    tasks inside the job, as Spark sends its s3a settings; never printed: ``repr`` leaves them out)."""

    storage: StorageConfig | None = None  # None: a local folder
    credentials: S3Credentials | None = field(default=None, repr=False)

    def filesystem(self) -> Any:
        """A pyarrow filesystem for :meth:`path`'s paths."""
        from pyarrow import fs

        if self.storage is None:
            return fs.LocalFileSystem()
        s, keys = self.storage, self.credentials
        endpoint = s.s3_endpoint or ""
        scheme, _, host = endpoint.rpartition("://") if "://" in endpoint else ("https", "", endpoint)
        return fs.S3FileSystem(
            access_key=keys.access_key if keys else None, secret_key=keys.secret_key if keys else None,
            session_token=keys.session_token if keys else None, region=s.s3_region, scheme=scheme or "https",
            endpoint_override=host or None, force_virtual_addressing=not s.s3_path_style,
            connect_timeout=s.s3_timeout_seconds, request_timeout=max(s.s3_timeout_seconds, 60),
            retry_strategy=fs.AwsStandardS3RetryStrategy(max_attempts=s.s3_max_attempts))

    def path(self, uri: str) -> str:
        """``uri`` (a local path or ``s3a://bucket/key``) as a path of :meth:`filesystem`."""
        if self.storage is None:
            return uri
        bucket, key = split_s3_uri(uri)
        return f"{bucket}/{key}"


@dataclass(frozen=True)
class S3Lake(Lake):
    """The lake in an S3 bucket (Yandex Object Storage, AWS S3, MinIO ...). ``root`` is ``s3a://bucket/prefix``."""

    client: Any = field(default=None, compare=False, repr=False)
    endpoint: str | None = None
    storage: StorageConfig | None = field(default=None, compare=False, repr=False)
    credentials: S3Credentials | None = field(default=None, compare=False, repr=False)

    @property
    def bucket(self) -> str:
        return split_s3_uri(self.root)[0]

    def _key(self, uri: str) -> str:
        bucket, key = split_s3_uri(uri)
        if bucket != self.bucket:
            raise StorageError(f"{uri} is outside the lake's bucket {self.bucket}")
        return key

    def _where(self, key: str) -> str:
        what = f"s3://{self.bucket}/{key}" if key else f"bucket {self.bucket} (lake {self.root})"
        return f"{what} at {self.endpoint or 'the default AWS endpoint'}"

    def _call(self, what: str, key: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """Run one boto3 call; failures become StorageErrors naming the bucket, the key and what to check.
        (boto3 itself retries throttling, 5xx and connection errors with exponential back-off first.)"""
        from botocore.exceptions import (BotoCoreError, ClientError, ConnectTimeoutError, EndpointConnectionError,
                                         NoCredentialsError, ReadTimeoutError)

        try:
            return fn(*args, **kwargs)
        except ClientError as exc:
            err = exc.response.get("Error", {})
            code = str(err.get("Code") or exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode"))
            if code == "NoSuchBucket" or (code == "404" and not key):
                raise StorageError(f"{what}: bucket {self.bucket!r} does not exist at {self.endpoint or 'AWS'}; "
                                   "create it, or fix storage.root (LOANPIPE__STORAGE__ROOT)") from None
            if code in S3_AUTH_CODES:
                raise StorageError(
                    f"{what}: access denied to {self._where(key)} ({code}); check the keys "
                    "(AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, or the Airflow connection in storage.s3_conn_id), "
                    "that they belong to this endpoint and region, and the bucket's policy") from None
            if code in ("NoSuchKey", "404"):
                raise StorageError(f"{what}: {self._where(key)} does not exist") from None
            raise StorageError(f"{what}: {self._where(key)} failed: {code} {err.get('Message', '')}".strip()) from None
        except NoCredentialsError:
            raise StorageError(f"{what}: no S3 credentials for {self._where(key)}; set AWS_ACCESS_KEY_ID and "
                               "AWS_SECRET_ACCESS_KEY (or the Airflow connection in storage.s3_conn_id)") from None
        except (EndpointConnectionError, ConnectTimeoutError, ReadTimeoutError) as exc:
            raise StorageError(f"{what}: cannot reach the S3 endpoint for {self._where(key)} after retries ({exc}); "
                               "check storage.s3_endpoint (LOANPIPE__STORAGE__S3_ENDPOINT) and that the "
                               "service is up and reachable from this machine") from None
        except BotoCoreError as exc:
            raise StorageError(f"{what}: {self._where(key)}: {exc}") from None

    # -- reads ---------------------------------------------------------------------------------------
    def _iter_keys(self, prefix: str) -> Iterator[dict[str, Any]]:
        paginator = self.client.get_paginator("list_objects_v2")
        pages = self._call("list", prefix, lambda: list(paginator.paginate(Bucket=self.bucket, Prefix=prefix)))
        for page in pages:
            yield from page.get("Contents", [])

    def _head(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        def head() -> bool:
            try:
                self.client.head_object(Bucket=self.bucket, Key=key)
                return True
            except ClientError as exc:
                if str(exc.response.get("Error", {}).get("Code")) in ("404", "NoSuchKey", "NotFound"):
                    return False
                raise  # denied, endpoint trouble ...: translated by _call

        return self._call("head", key, head)

    def exists(self, uri: str) -> bool:
        key = self._key(uri)
        if key and self._head(key):
            return True
        prefix = f"{key}/" if key else ""
        resp = self._call("list", prefix, self.client.list_objects_v2, Bucket=self.bucket, Prefix=prefix, MaxKeys=1)
        return resp.get("KeyCount", 0) > 0

    def has_data(self, uri: str) -> bool:
        prefix = self._key(uri) + "/"
        return any(o["Key"].endswith(".parquet") for o in self._iter_keys(prefix))

    def list_partitions(self, folder: str) -> list[str]:
        prefix = self._key(self.uri(folder)) + "/"
        paginator = self.client.get_paginator("list_objects_v2")
        pages = self._call("list", prefix, lambda: list(paginator.paginate(Bucket=self.bucket, Prefix=prefix,
                                                                          Delimiter="/")))
        names = [cp["Prefix"][len(prefix):].rstrip("/") for page in pages for cp in page.get("CommonPrefixes", [])]
        start = f"{PARTITION_KEY}="
        return sorted(n[len(start):] for n in names if n.startswith(start))

    def list_files(self, uri: str) -> list[str]:
        prefix = self._key(uri) + "/"
        return sorted(o["Key"][len(prefix):] for o in self._iter_keys(prefix))

    def read_bytes(self, uri: str) -> bytes:
        key = self._key(uri)
        body = self._call("read", key, self.client.get_object, Bucket=self.bucket, Key=key)["Body"]
        return self._call("read", key, body.read)

    def is_published(self, uri: str) -> bool:
        return self._head(f"{self._key(uri)}/{SUCCESS}")

    # -- writes --------------------------------------------------------------------------------------
    def write_bytes(self, uri: str, data: bytes) -> None:
        """One PUT: S3 replaces an object atomically."""
        key = self._key(uri)
        self._call("write", key, self.client.put_object, Bucket=self.bucket, Key=key, Body=data)

    def upload_file(self, local_path: str | Path, uri: str) -> None:
        key = self._key(uri)
        self._call("upload", key, self.client.upload_file, str(local_path), self.bucket, key)

    def _copy(self, src: str, dst: str) -> None:
        self._call("copy", dst, self.client.copy_object, Bucket=self.bucket, Key=dst,
                   CopySource={"Bucket": self.bucket, "Key": src})

    def _delete(self, keys: list[str]) -> None:
        for i in range(0, len(keys), 1000):
            chunk = [{"Key": k} for k in keys[i:i + 1000]]
            resp = self._call("delete", keys[i], self.client.delete_objects, Bucket=self.bucket,
                              Delete={"Objects": chunk, "Quiet": True})
            if resp.get("Errors"):
                first = resp["Errors"][0]
                raise StorageError(f"delete: {self._where(first.get('Key', ''))} failed: {first.get('Code')} "
                                   f"{first.get('Message', '')} ({len(resp['Errors'])} objects not deleted)")

    def remove(self, uri: str) -> None:
        key = self._key(uri)
        keys = [o["Key"] for o in self._iter_keys(key + "/")]
        if key and self._head(key):
            keys.append(key)
        self._delete(keys)

    def publish(self, staging: str, target: str) -> None:
        """Replace the folder ``target`` with ``staging`` and mark it done (see the module docstring).

        Order: write the journal (the plan, phase ``copying``) -> back up the objects about to be overwritten ->
        drop the marker -> copy the new objects in -> journal phase ``copied`` -> delete the old version's other
        objects -> write the marker (the manifest) -> delete backup, journal and staged copy. If a copy fails, the
        publish is rolled back at once (new objects deleted, overwritten ones restored, old marker put back). If
        the process is killed, the owner's next run finds the journal in its staging folder and rolls back
        (``copying``) or forward (``copied``): see :meth:`_finish`.
        """
        new = self.data_files(staging)
        if not new:
            raise StorageError(f"nothing to publish: staging folder {staging} is empty or does not exist")
        old = self.list_files(target)
        backup = self.staging_uri("previous")
        plan = {"target": target, "staging": staging, "backup": backup, "new": new, "old": old,
                "old_marker": self.read_bytes(f"{target}/{SUCCESS}").decode() if SUCCESS in old else None}
        journal = f"{backup}/{JOURNAL}"
        self.write_json(journal, {**plan, "phase": "copying"})  # what a recovery needs if this process is killed
        for rel in sorted(set(new) & set(old)):  # objects with the same name get overwritten: keep a copy
            self._copy(f"{self._key(target)}/{rel}", f"{self._key(backup)}/{rel}")
        if plan["old_marker"] is not None:
            self._delete([f"{self._key(target)}/{SUCCESS}"])
        try:
            for rel in new:
                self._copy(f"{self._key(staging)}/{rel}", f"{self._key(target)}/{rel}")
        except Exception:
            self._finish(plan, "copying")  # roll back to the old version and its marker
            raise
        self.write_json(journal, {**plan, "phase": "copied"})
        self._finish(plan, "copied")

    def _finish(self, plan: dict[str, Any], phase: str) -> str:
        """Take a publish from ``phase`` to an end: ``copying`` (new objects maybe half copied) rolls back to the
        old version; ``copied`` (every new object in place) rolls forward to the new one. Both are idempotent,
        so a recovery may repeat them; then the backup, the journal and the staged copy are deleted."""
        dst, target = self._key(plan["target"]), plan["target"]
        new, old = plan["new"], plan["old"]
        if phase == "copying":
            self._delete([f"{dst}/{rel}" for rel in new if rel not in old])
            saved = set(self.list_files(plan["backup"]))
            for rel in sorted(set(new) & set(old) & saved):
                self._copy(f"{self._key(plan['backup'])}/{rel}", f"{dst}/{rel}")
            if plan["old_marker"] is not None:
                self.write_bytes(f"{target}/{SUCCESS}", plan["old_marker"].encode())
            outcome = f"rolled back the publish of {target} killed while copying (the previous version is back)"
        else:
            self._delete([f"{dst}/{rel}" for rel in old if rel not in new and rel != SUCCESS])
            self.write_bytes(f"{target}/{SUCCESS}", manifest_json(new).encode())
            outcome = f"completed the publish of {target} killed after copying (the new version is published)"
        for folder in (plan["backup"], plan["staging"]):
            self._delete([f"{self._key(folder)}/{rel}" for rel in self.list_files(folder)])
        return outcome

    def _clear_staging(self) -> list[str]:
        """S3: first finish every publish this owner's killed runs left a journal of, then clear its staging."""
        owned = self.uri(STAGING, self.owner) if self.owner else None
        if owned is None:
            return super()._clear_staging()
        journals = [rel for rel in self.list_files(owned) if rel.rsplit("/", 1)[-1] == JOURNAL]
        done = []
        for rel in journals:
            record = self.read_json(f"{owned}/{rel}")
            done.append(self._finish(record, record["phase"]))
        return done + super()._clear_staging()

    def _repair(self, target: str) -> list[str]:
        """Nothing sits beside an S3 target: a killed publish is found by its journal (:meth:`_clear_staging`)."""
        return []

    def create_exclusive(self, uri: str, data: bytes) -> bool:
        """One conditional PUT (``If-None-Match: *``): S3, MinIO and Yandex Object Storage create the object
        only if no object has the key; False when one does."""
        from botocore.exceptions import ClientError

        key = self._key(uri)

        def put() -> bool:
            try:
                self.client.put_object(Bucket=self.bucket, Key=key, Body=data, IfNoneMatch="*")
                return True
            except ClientError as exc:
                if str(exc.response.get("Error", {}).get("Code")) in ("PreconditionFailed", "412",
                                                                      "ConditionalRequestConflict", "409"):
                    return False
                raise

        return self._call("create", key, put)

    def ensure_layout(self) -> None:
        """S3 has no folders: check that the bucket is there and the keys work instead."""
        self.check()

    def check(self) -> None:
        """Fail fast, before Spark starts, when the endpoint is down, the keys are wrong or the bucket is missing."""
        self._call("check bucket", "", self.client.head_bucket, Bucket=self.bucket)

    def describe(self) -> str:
        return f"bucket {self.bucket} at {self.endpoint or 'AWS'} ({self.root})"

    def file_access(self) -> FileAccess:
        """The bucket for pyarrow in a Spark task: the keys given to :func:`open_lake`, or else those boto3's usual
        chain (environment, ~/.aws, instance metadata) resolved for the driver's client."""
        keys = self.credentials
        if keys is None:
            import boto3

            found = boto3.session.Session().get_credentials()  # the chain s3_client's session resolves
            if found is None:
                raise StorageError(f"{self.describe()}: no S3 credentials were found for the scoring tasks; set "
                                   "AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or the Airflow connection's keys, or "
                                   "let Spark's reader read the batch (model.scoring_reader: spark)")
            frozen = found.get_frozen_credentials()
            keys = S3Credentials(frozen.access_key, frozen.secret_key, frozen.token)
        return FileAccess(self.storage or StorageConfig(root=self.root, s3_endpoint=self.endpoint), keys)


def s3_client(storage: StorageConfig, credentials: S3Credentials | None = None) -> Any:
    """A boto3 S3 client for the configured endpoint: path-style addressing, SigV4, standard retry mode
    (exponential back-off with jitter on throttling, 5xx and connection errors)."""
    import boto3
    from botocore.config import Config as BotoConfig

    conf = BotoConfig(
        region_name=storage.s3_region,
        signature_version="s3v4",
        s3={"addressing_style": "path" if storage.s3_path_style else "auto"},
        retries={"mode": "standard", "max_attempts": storage.s3_max_attempts},
        connect_timeout=storage.s3_timeout_seconds,
        read_timeout=max(storage.s3_timeout_seconds, 60),
        # S3-compatible stores (Yandex, MinIO) differ in their support of the newer default checksums.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    kwargs: dict[str, Any] = {"config": conf}
    if storage.s3_endpoint:
        kwargs["endpoint_url"] = storage.s3_endpoint
    if credentials is not None:
        kwargs.update(aws_access_key_id=credentials.access_key, aws_secret_access_key=credentials.secret_key,
                      aws_session_token=credentials.session_token)
    return boto3.session.Session().client("s3", **kwargs)


def open_lake(storage: StorageConfig, credentials: S3Credentials | None = None, check: bool = True) -> Lake:
    """The lake for a storage config: a local folder (absolute path) or an S3 prefix.

    For S3 the bucket is checked at once (``check``), so a wrong endpoint, wrong keys or a missing bucket fail
    here with a clear message instead of deep inside a Spark job.
    """
    if storage.is_s3:
        bucket, prefix = split_s3_uri(storage.root)
        lake = S3Lake(f"s3a://{bucket}/{prefix}".rstrip("/"), client=s3_client(storage, credentials),
                      endpoint=storage.s3_endpoint, storage=storage, credentials=credentials)
        if check:
            lake.check()
        return lake
    return Lake(str(Path(storage.root).expanduser().resolve()))
