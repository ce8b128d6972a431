"""Run dates, written once: parsing a date a user or Airflow gives, the lake's partition names and the day folder
names of the artifacts, and model versions (a run date and a role)."""

from __future__ import annotations

import datetime as dt

PARTITION_KEY = "run_date"
ARRIVAL_KEY = "arrival_date"  # the outcome records' partitions: the day they arrived, not a run date


def parse_run_date(value: str) -> dt.date:
    """``YYYY-MM-DD`` -> date, with an error that says what was expected."""
    try:
        return dt.date.fromisoformat(value)
    except (TypeError, ValueError):
        raise ValueError(f"run date {value!r} is not a date in YYYY-MM-DD form (e.g. 2026-11-29)") from None


def day(run_date: dt.date | str) -> str:
    """A run date as its folder name under ``artifacts/`` (``2026-11-29``); a string is checked first."""
    return parse_run_date(run_date).isoformat() if isinstance(run_date, str) else run_date.isoformat()


def partition_name(run_date: dt.date | str, key: str = PARTITION_KEY) -> str:
    """A run date's partition folder (``run_date=2026-11-29``), as Spark's partitioned reads name it; another
    date ``key`` names another kind of partition (``arrival_date=2026-11-29``)."""
    return f"{key}={day(run_date)}"


def version_for(run_date: dt.date, role: str) -> str:
    """The model version a run date trains in a role (the pipeline's are ``bootstrap`` and ``challenger``): the
    same on every rerun of that date."""
    return f"{run_date:%Y%m%d}-{role}"
