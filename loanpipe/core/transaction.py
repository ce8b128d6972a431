"""A run date as a transaction: one job at a time per date, and each run first repairs what a killed one left.

``with run_date_transaction(lake, run_date, job, targets, lease) as tx:`` takes the date's lock
(``_locks/<date>.json``, created only if absent: ``O_EXCL`` locally, ``If-None-Match: *`` on S3), then
recovers (``Lake.recover``: the targets' half-published versions and the date's staging leftovers), and hands
over ``tx.lake``, a handle that stages under ``_staging/<date>/``. The lock is released on the way out, whatever
happens.

The lock is per date, not per job: new data for D must not be resampled while D is being scored. Airflow keeps
one run per DAG at a time already (``max_active_runs=1``); the lock covers what Airflow cannot see: a hand-run
job, a second Airflow, a backfill beside the schedule. A lock is stale, and is broken with a message in the
log, when its holder's process is gone (same host) or its lease (the task's execution timeout) has passed.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from loanpipe.core import catalog
from loanpipe.core.config import Config
from loanpipe.core.storage import STAGING, Lake, StorageError


class RunDateBusy(StorageError):
    """Another run holds the date; the message names it and what to do."""


@dataclass
class Transaction:
    lake: Lake  # stages under _staging/<date>/
    holder: dict[str, Any]
    repaired: list[str] = field(default_factory=list)


def lease(cfg: Config) -> dt.timedelta:
    """How long a lock holds without its holder: the task's execution timeout (Airflow has stopped it by then)."""
    return dt.timedelta(minutes=cfg.airflow.execution_timeout_minutes)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def stale_reason(holder: dict[str, Any], now: dt.datetime) -> str | None:
    """Why the lock ``holder`` may be broken, or None while it is held for real."""
    expires = dt.datetime.fromisoformat(holder["expires_at"])
    if now >= expires:
        return f"its lease ran out at {holder['expires_at']}"
    if holder.get("host") == socket.gethostname() and not _alive(int(holder["pid"])):
        return f"its process {holder['pid']} on {holder['host']} is gone"
    return None


def acquire(lake: Lake, run_date: dt.date, job: str, lease: dt.timedelta) -> dict[str, Any]:
    """Take the date's lock or raise :class:`RunDateBusy`; breaks a stale lock once (saying so on stderr)."""
    uri = catalog.run_lock(lake, run_date)
    now = dt.datetime.now(dt.UTC)
    holder = {"run_date": run_date.isoformat(), "job": job, "host": socket.gethostname(), "pid": os.getpid(),
              "started_at": now.isoformat(timespec="seconds"), "expires_at": (now + lease).isoformat(timespec="seconds")}
    data = json.dumps(holder, indent=2).encode()
    for attempt in range(2):
        if lake.create_exclusive(uri, data):
            return holder
        try:
            other = lake.read_json(uri)
        except (StorageError, json.JSONDecodeError):  # released (or replaced) between our two calls
            continue
        reason = stale_reason(other, now)
        if reason is None or attempt:
            raise RunDateBusy(
                f"run date {run_date} is held by {other['job']} (pid {other['pid']} on {other['host']}, since "
                f"{other['started_at']}, lease until {other['expires_at']}): another run of this date is in "
                f"progress, so this {job} run refuses to start. Wait for it to finish; if that run is dead, "
                f"remove {uri}")
        print(f"{job}: breaking the stale lock of {run_date} held by {other['job']}: {reason}", file=sys.stderr,
              flush=True)
        lake.remove(uri)
    raise RunDateBusy(f"run date {run_date}: could not take the lock {uri}; try again")


def release(lake: Lake, run_date: dt.date, holder: dict[str, Any]) -> None:
    """Drop the lock if it is still ours (a broken-then-retaken lock belongs to someone else)."""
    uri = catalog.run_lock(lake, run_date)
    try:
        if lake.read_json(uri) == holder:
            lake.remove(uri)
    except (StorageError, json.JSONDecodeError):
        pass


@contextmanager
def run_date_transaction(lake: Lake, run_date: dt.date, job: str, targets: list[str],
                         lease: dt.timedelta) -> Iterator[Transaction]:
    holder = acquire(lake, run_date, job, lease)
    try:
        owned = lake.owned_by(run_date.isoformat())
        tx = Transaction(owned, holder, owned.recover(targets))
        for line in tx.repaired:
            print(f"{job} {run_date}: repaired: {line}", file=sys.stderr, flush=True)
        yield tx
    finally:
        try:  # the date's staging folder is empty by now (every write cleans up after itself): drop it too
            lake.remove(lake.uri(STAGING, run_date.isoformat()))
        except StorageError:
            pass
        finally:
            release(lake, run_date, holder)
