"""The lake in an S3 bucket: S3 has no rename, so a publish journals its plan and is rolled back or forward."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loanpipe.core.config import StorageConfig
from loanpipe.core.dates import PARTITION_KEY
from loanpipe.core.storage.base import JOURNAL, STAGING, SUCCESS, Lake, manifest_json
from loanpipe.core.storage.errors import StorageError
from loanpipe.core.storage.files import FileAccess, S3Credentials, split_s3_uri

S3_AUTH_CODES = {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "403", "InvalidToken",
                 "ExpiredToken", "AllAccessDisabled"}


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

    def list_partitions(self, folder: str, key: str = PARTITION_KEY) -> list[str]:
        prefix = self._key(self.uri(folder)) + "/"
        paginator = self.client.get_paginator("list_objects_v2")
        pages = self._call("list", prefix, lambda: list(paginator.paginate(Bucket=self.bucket, Prefix=prefix,
                                                                          Delimiter="/")))
        names = [cp["Prefix"][len(prefix):].rstrip("/") for page in pages for cp in page.get("CommonPrefixes", [])]
        start = f"{key}="
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
