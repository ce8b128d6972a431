"""A run date as a transaction: one job at a time per date, and each run first repairs what a killed one left.

``with run_date_transaction(lake, run_date, job, targets, lease) as tx:`` takes the date's lock
(``_locks/<date>.json``, created only if absent: a hard link locally, ``If-None-Match: *`` on S3), then
recovers (``Lake.recover``: the targets' half-published versions and the date's staging leftovers), and hands
over ``tx.lake``, a handle that stages under ``_staging/<date>/``. The lock is released on the way out, whatever
happens.

The same locks, by name, keep the promotion ledger's read-modify-write whole (``held(lake, "ledger", ...)``):
runs of different dates may overlap (a backfill beside the schedule), and each records its decision.

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
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from loanpipe.core import catalog
from loanpipe.core.config import Config
from loanpipe.core.storage import STAGING, Lake, StorageError


class RunDateBusy(StorageError):
    """Another run holds the date (or the ledger); the message names it and what to do."""


@dataclass
class Transaction:
    lake: Lake  # stages under _staging/<date>/
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


def acquire(lake: Lake, name: str, job: str, lease: dt.timedelta, wait: float = 0.0) -> dict[str, Any]:
    """Take the lock ``name`` (``_locks/<name>.json``) or raise :class:`RunDateBusy`, after waiting up to
    ``wait`` seconds for its holder to let go; a stale lock is broken once (saying so on stderr)."""
    uri = catalog.lock(lake, name)
    give_up = time.monotonic() + wait
    broke = False
    while True:
        now = dt.datetime.now(dt.UTC)
        holder = {"lock": name, "job": job, "host": socket.gethostname(), "pid": os.getpid(),
                  "started_at": now.isoformat(timespec="seconds"),
                  "expires_at": (now + lease).isoformat(timespec="seconds")}
        if lake.create_exclusive(uri, json.dumps(holder, indent=2).encode()):
            return holder
        try:
            other = lake.read_json(uri)
        except (StorageError, json.JSONDecodeError):  # released (or replaced) between our two calls
            continue
        reason = stale_reason(other, now)
        if reason is not None and not broke:
            print(f"{job}: breaking the stale lock {name} held by {other['job']}: {reason}", file=sys.stderr,
                  flush=True)
            lake.remove(uri)
            broke = True
            continue
        if time.monotonic() >= give_up:
            date = name[:1].isdigit()
            raise RunDateBusy(
                f"{'run date ' if date else 'the '}{name} is held by {other['job']} (pid {other['pid']} on "
                f"{other['host']}, since {other['started_at']}, lease until {other['expires_at']}): another run "
                f"{'of this date is in progress, so this ' + job + ' run refuses to start' if date else 'is using it'}"
                f". Wait for it to finish; if that run is dead, remove {uri}")
        time.sleep(0.2)


def release(lake: Lake, name: str, holder: dict[str, Any]) -> None:
    """Drop the lock if it is still ours (a broken-then-retaken lock belongs to someone else)."""
    uri = catalog.lock(lake, name)
    try:
        if lake.read_json(uri) == holder:
            lake.remove(uri)
    except (StorageError, json.JSONDecodeError):
        pass


@contextmanager
def held(lake: Lake, name: str, job: str, lease: dt.timedelta, wait: float = 0.0) -> Iterator[dict[str, Any]]:
    """The lock ``name`` for the duration of the block (see :func:`acquire`)."""
    holder = acquire(lake, name, job, lease, wait)
    try:
        yield holder
    finally:
        release(lake, name, holder)


@contextmanager
def run_date_transaction(lake: Lake, run_date: dt.date, job: str, targets: list[str],
                         lease: dt.timedelta) -> Iterator[Transaction]:
    day = run_date.isoformat()
    with held(lake, day, job, lease):
        owned = lake.owned_by(day)
        tx = Transaction(owned, owned.recover(targets))
        for line in tx.repaired:
            print(f"{job} {day}: repaired: {line}", file=sys.stderr, flush=True)
        try:
            yield tx
        finally:
            try:  # the date's staging folder is empty by now (every write cleans up after itself): drop it too
                lake.remove(lake.uri(STAGING, day))
            except StorageError:
                pass
