"""The lake: one root (a local folder or an S3 prefix) with fixed folder names, and atomic publishing.

Layout (same names locally and in a bucket)::

    <root>/train/                      training data (Parquet)
    <root>/test/                       held-out data that emulates new applications (Parquet)
    <root>/test_sample/run_date=D/     the batch sampled for run date D
    <root>/train_sup/                  train enriched with labelled batches
    <root>/test_sample_inference/run_date=D/   the scores the business reads
    <root>/artifacts/                  plots, metrics, models, run summaries, reports
    <root>/_staging/                   work in progress; never read by anyone (Spark skips ``_`` paths)

Every write goes to ``_staging/<unique>/`` first and is *published* at the end: a folder is swapped in by
rename (local) so readers see the old version or the new one, never half of one; a failed job leaves the
previous version in place.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loanpipe.config import StorageConfig

TRAIN = "train"
TEST = "test"
TEST_SAMPLE = "test_sample"
TRAIN_SUP = "train_sup"
INFERENCE = "test_sample_inference"
ARTIFACTS = "artifacts"
FOLDERS = (TRAIN, TEST, TEST_SAMPLE, TRAIN_SUP, INFERENCE, ARTIFACTS)
STAGING = "_staging"
SUCCESS = "_SUCCESS"
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

    # -- paths -------------------------------------------------------------------------------------
    def uri(self, *parts: str) -> str:
        """A path Spark can read or write (absolute local path or s3a:// URI)."""
        return "/".join([self.root.rstrip("/"), *[p.strip("/") for p in parts if p]])

    def partition_uri(self, folder: str, run_date: dt.date | str) -> str:
        return self.uri(folder, partition_name(run_date))

    def staging_uri(self, label: str) -> str:
        """A fresh, unique staging location for one job's output."""
        return self.uri(STAGING, f"{label}-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}")

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
        (src / SUCCESS).write_text(dt.datetime.now(dt.UTC).isoformat())
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

    def remove(self, uri: str) -> None:
        path = self._local(uri)
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        elif path.exists():
            path.unlink()

    def is_published(self, uri: str) -> bool:
        return self._local(uri).joinpath(SUCCESS).exists()

    def ensure_layout(self) -> None:
        for folder in FOLDERS:
            self._local(self.uri(folder)).mkdir(parents=True, exist_ok=True)


def open_lake(storage: StorageConfig) -> Lake:
    """The lake for a storage config: a local folder (absolute path) or an S3 prefix."""
    if storage.is_s3:
        raise StorageError(
            f"storage.root {storage.root} is an S3 URI, but this release handles local folders only; "
            "set storage.root (or LOANPIPE__STORAGE__ROOT) to a local folder"
        )
    return Lake(str(Path(storage.root).expanduser().resolve()))
