"""The lake in a local folder: folders swapped in by rename, so readers see the old version or the new one."""

from __future__ import annotations

import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

from loanpipe.core.dates import PARTITION_KEY
from loanpipe.core.storage.base import FOLDERS, SUCCESS, Lake, manifest_json
from loanpipe.core.storage.errors import StorageError
from loanpipe.core.storage.files import FileAccess


@dataclass(frozen=True)
class LocalLake(Lake):
    """The lake in a local folder (``root``: an absolute path)."""

    def file_access(self) -> FileAccess:
        """What a Spark task needs to read this lake's files itself, with pyarrow (``loanpipe.ml.scoring``)."""
        return FileAccess()

    def _local(self, uri: str) -> Path:
        return Path(uri)

    def exists(self, uri: str) -> bool:
        return self._local(uri).exists()

    def has_data(self, uri: str) -> bool:
        """True when ``uri`` is a folder holding at least one Parquet file (at any depth)."""
        path = self._local(uri)
        return path.is_dir() and any(path.rglob("*.parquet"))

    def list_partitions(self, folder: str, key: str = PARTITION_KEY) -> list[str]:
        """Published partition values (``run_date=D`` -> ``D``) of ``folder``, sorted."""
        path = self._local(self.uri(folder))
        if not path.is_dir():
            return []
        prefix = f"{key}="
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

    def list_files(self, uri: str) -> list[str]:
        """Every file under ``uri``, relative to it."""
        path = self._local(uri)
        return sorted(str(f.relative_to(path)) for f in path.rglob("*") if f.is_file()) if path.is_dir() else []

    def ensure_layout(self) -> None:
        for folder in FOLDERS:
            self._local(self.uri(folder)).mkdir(parents=True, exist_ok=True)

    def describe(self) -> str:
        return f"local folder {self.root}"
