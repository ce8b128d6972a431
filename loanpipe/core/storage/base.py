"""The lake's interface, its layout and its publishing manifest, shared by the backends (``local``, ``s3``).

A backend implements every abstract method; nothing is inherited from a sibling backend.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from abc import ABC, abstractmethod
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loanpipe.core.dates import PARTITION_KEY, partition_name
from loanpipe.core.storage.errors import StorageError

if TYPE_CHECKING:
    from loanpipe.core.storage.files import FileAccess

TRAIN = "train"
TEST = "test"
TEST_SAMPLE = "test_sample"
TRAIN_SUP = "train_sup"
INFERENCE = "test_sample_inference"
QUARANTINE = "test_sample_quarantine"
ARTIFACTS = "artifacts"
OUTCOMES = "outcomes"  # outcome records, by the day they arrived
OUTCOMES_QUARANTINE = "outcomes_quarantine"  # outcome records that were refused, with the reason
APPLICATIONS_QUARANTINE = "applications_quarantine"  # landed application rows that could not be read, with the reason
FOLDERS = (TRAIN, TEST, TEST_SAMPLE, TRAIN_SUP, INFERENCE, ARTIFACTS)
STAGING = "_staging"
SUCCESS = "_SUCCESS"
JOURNAL = "_PUBLISH.json"  # an S3 publish's plan and phase, in its backup folder while it runs


@dataclass(frozen=True)
class Lake(ABC):
    """Paths and atomic publishing for one lake root: the interface every backend implements."""

    root: str
    owner: str = ""  # the run date whose transaction this handle writes for: its staging is _staging/<owner>/

    # -- paths and what every backend does alike -------------------------------------------------------
    def uri(self, *parts: str) -> str:
        """A path Spark can read or write (absolute local path or s3a:// URI)."""
        return "/".join([self.root.rstrip("/"), *[p.strip("/") for p in parts if p]])

    def partition_uri(self, folder: str, run_date: dt.date | str, key: str = PARTITION_KEY) -> str:
        return self.uri(folder, partition_name(run_date, key))

    def staging_uri(self, label: str) -> str:
        """A fresh, unique staging location for one job's output (under the owner's staging folder, if any)."""
        return self.uri(STAGING, self.owner, f"{label}-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}")

    def owned_by(self, owner: str) -> Lake:
        """This lake, staging under ``_staging/<owner>/``: what a killed run of that owner leaves there is found
        and cleared by the owner's next run (:meth:`recover`), while other owners' work in progress is not touched."""
        return replace(self, owner=owner)

    def read_json(self, uri: str) -> Any:
        return json.loads(self.read_bytes(uri))

    def write_json(self, uri: str, obj: Any) -> None:
        self.write_bytes(uri, json.dumps(obj, indent=2, sort_keys=True, default=str).encode())

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

    # -- what each backend implements ------------------------------------------------------------------
    @abstractmethod
    def file_access(self) -> FileAccess:
        """What a Spark task needs to read this lake's files itself, with pyarrow (``loanpipe.ml.scoring``)."""

    @abstractmethod
    def exists(self, uri: str) -> bool:
        """True when ``uri`` is an object or a folder holding any."""

    @abstractmethod
    def has_data(self, uri: str) -> bool:
        """True when ``uri`` is a folder holding at least one Parquet file (at any depth)."""

    @abstractmethod
    def list_partitions(self, folder: str, key: str = PARTITION_KEY) -> list[str]:
        """Partition values (``run_date=D`` -> ``D``, or of another date ``key``) of ``folder``, sorted."""

    @abstractmethod
    def read_bytes(self, uri: str) -> bytes:
        """A small object's content; StorageError when it does not exist."""

    @abstractmethod
    def write_bytes(self, uri: str, data: bytes) -> None:
        """Write a small object atomically: a reader sees the old content or the new."""

    @abstractmethod
    def upload_file(self, local_path: str | Path, uri: str) -> None:
        """Copy a local file to ``uri``."""

    @abstractmethod
    def publish(self, staging: str, target: str) -> None:
        """Replace the folder ``target`` by ``staging`` and mark it done (its ``_SUCCESS`` manifest), atomically for readers that honour the marker."""

    @abstractmethod
    def _repair(self, target: str) -> list[str]:
        """Put right what a publish of ``target`` killed half-way left beside it; returns what it did."""

    @abstractmethod
    def create_exclusive(self, uri: str, data: bytes) -> bool:
        """Create the object ``uri`` only if it does not exist (atomically); False when it already does."""

    @abstractmethod
    def remove(self, uri: str) -> None:
        """Delete an object, or a folder and everything under it."""

    @abstractmethod
    def is_published(self, uri: str) -> bool:
        """True when the folder ``uri`` carries its ``_SUCCESS`` marker."""

    @abstractmethod
    def list_files(self, uri: str) -> list[str]:
        """Every file under ``uri``, relative to it, sorted."""

    @abstractmethod
    def ensure_layout(self) -> None:
        """Make the lake ready to write: its folders, or a check that the bucket answers."""

    @abstractmethod
    def describe(self) -> str:
        """The lake in words, for messages."""


def manifest_json(files: list[str]) -> str:
    """The content of a ``_SUCCESS`` marker: when the folder was published and exactly which files it holds."""
    return json.dumps({"published_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "files": files})


def parse_manifest(data: bytes) -> list[str] | None:
    try:
        files = json.loads(data or b"null")
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    return files.get("files") if isinstance(files, dict) else None
