"""Fetch the scores of one run date (or of the latest complete one) from ``test_sample_inference/`` as CSV.

For the business: no Spark, no Airflow, just the lake's settings and read access to it::

    python -m loanpipe.jobs.fetch_scores --date 2026-11-29 --out scores.csv
    python -m loanpipe.jobs.fetch_scores --latest            # CSV on stdout
    python -m loanpipe.jobs.fetch_scores --latest --grade 9-10 --with-reasons   # the riskiest grades, with reasons
    LOANPIPE__STORAGE__ROOT=s3a://bucket/lake LOANPIPE__STORAGE__S3_ENDPOINT=https://storage.yandexcloud.net \\
        AWS_ACCESS_KEY_ID=... AWS_SECRET_ACCESS_KEY=... python -m loanpipe.jobs.fetch_scores --latest --out s.csv

Only published partitions are read: a partition without its ``_SUCCESS`` marker (being written, or left by a
failed run) is refused, and exactly the files named in the marker's manifest are read, so a partition being
replaced while we read is either read whole or reported ("... changed while reading"), never mixed.
Exit codes: 0 done, 2 nothing to fetch or bad input, 1 storage failure.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from loanpipe.core import catalog, dates, storage
from loanpipe.core.config import load_config
from loanpipe.core.storage import Lake, StorageError
from loanpipe.jobs.cli import exit_after


class NothingToFetch(StorageError):
    """No published scores for the requested date."""


def resolve_date(lake: Lake, run_date: str | None) -> str:
    if run_date is None:
        published = catalog.score_dates(lake)
        if not published:
            raise NothingToFetch(f"no complete scores in {catalog.scores_root(lake)} yet (no partition has its "
                                 f"{storage.SUCCESS} marker); run the scoring DAG first")
        return published[-1]
    dates.parse_run_date(run_date)
    uri = catalog.scores(lake, run_date)
    if not lake.is_published(uri):
        present = lake.exists(uri)
        raise NothingToFetch(
            f"{uri} " + ("has no _SUCCESS marker: it is still being written or its run failed; rerun the scoring DAG "
                         "for that date or fetch another one" if present else "does not exist: no scores for that date")
            + f" (complete dates: {', '.join(catalog.score_dates(lake)[-5:]) or 'none'})")
    return run_date


def read_scores(lake: Lake, run_date: str) -> Any:
    """The published scores of ``run_date`` as a pandas DataFrame (exactly the manifest's Parquet files)."""
    uri = catalog.scores(lake, run_date)
    table = catalog.read_table(lake, uri, again="fetch again")
    if table is None:
        raise NothingToFetch(f"{uri} is published but holds no Parquet files")
    df = table.to_pandas()
    return df.sort_values("id").reset_index(drop=True) if "id" in df.columns else df


def parse_grades(spec: str) -> tuple[int, int]:
    """``"9"`` -> (9, 9); ``"8-10"`` -> (8, 10)."""
    try:
        lo, sep, hi = spec.partition("-")
        low, high = int(lo), int(hi if sep else lo)
    except ValueError:
        raise ValueError(f"--grade {spec!r}: give a grade (9) or a range of grades (8-10)") from None
    if not 1 <= low <= high:
        raise ValueError(f"--grade {spec!r}: grades start at 1 and a range goes from low to high (8-10)")
    return low, high


def select(df: Any, source: str, with_reasons: bool = False, grades: tuple[int, int] | None = None) -> Any:
    """The rows of ``grades`` (inclusive), riskiest first; the reason columns only ``with_reasons``."""
    from loanpipe.ml.risk import REASON_PREFIX

    reasons = [c for c in df.columns if c.startswith(REASON_PREFIX)]
    if with_reasons and not reasons:
        raise ValueError(f"{source} has no reason columns: it was scored with risk.reason_codes = 0 or before "
                         "reason codes existed; rerun the scoring DAG for that date to add them")
    if grades is not None:
        if "grade" not in df.columns:
            raise ValueError(f"{source} has no grade column: it was scored before rating grades existed; rerun the "
                             "scoring DAG for that date to add them")
        df = df[df["grade"].between(*grades)].sort_values(["p_default", "id"] if "id" in df.columns else "p_default",
                                                           ascending=False).reset_index(drop=True)
    return df if with_reasons else df.drop(columns=reasons)


def fetch(lake: Lake, run_date: str | None, out: str | None, with_reasons: bool = False,
          grades: tuple[int, int] | None = None) -> dict[str, Any]:
    date = resolve_date(lake, run_date)
    df = select(read_scores(lake, date), catalog.scores(lake, date), with_reasons, grades)
    if out in (None, "-"):
        df.to_csv(sys.stdout, index=False)
    else:  # write beside the target, then rename: a failed fetch never leaves half a CSV
        target = Path(out)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
        try:
            with os.fdopen(fd, "w", newline="") as fh:
                df.to_csv(fh, index=False)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    return {"run_date": date, "rows": len(df), "source": catalog.scores(lake, date),
            "out": out or "-"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--date", help="run date YYYY-MM-DD")
    which.add_argument("--latest", action="store_true", help="the latest complete run date (the default)")
    parser.add_argument("--out", help="CSV file to write (default: stdout)")
    parser.add_argument("--grade", help="only these rating grades, riskiest first: 9, or a range 8-10")
    parser.add_argument("--with-reasons", action="store_true",
                        help="add reason_1..reason_N: the features that push each PD up most, with their values")
    parser.add_argument("--config", help="YAML config (default: conf/default.yaml + LOANPIPE__* overrides)")
    args = parser.parse_args(argv)
    try:
        lake = storage.open_lake(load_config(args.config).storage)
        info = fetch(lake, args.date, args.out, args.with_reasons,
                     parse_grades(args.grade) if args.grade else None)
    except (NothingToFetch, ValueError) as exc:
        print(f"fetch_scores: {exc}", file=sys.stderr)
        return 2
    except StorageError as exc:
        print(f"fetch_scores: {exc}", file=sys.stderr)
        return 1
    print(f"fetched {info['rows']} scores of {info['run_date']} from {info['source']} -> {info['out']}",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    exit_after(main)
