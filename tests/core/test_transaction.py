"""A run date as a transaction: the date's lock, and recovery from a process killed at each point of a publish.

The kills are real: a child process publishes with one function replaced by ``os._exit`` at the chosen point,
so no ``finally`` or ``except`` runs, as after a SIGKILL. The next owner of the date then recovers.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from loanpipe.core import catalog, storage
from loanpipe.core.config import StorageConfig
from loanpipe.core.storage import Lake, LocalLake, S3Lake, open_lake
from loanpipe.core.transaction import RunDateBusy, acquire, release, run_date_transaction

ROOT = Path(__file__).resolve().parents[2]
D = dt.date(2026, 11, 3)
LEASE = dt.timedelta(minutes=60)

# The child: stage OLD or NEW files and publish them at TARGET, dying at POINT.
CHILD = textwrap.dedent('''
    import json, os, shutil, sys
    from loanpipe.core import storage
    from loanpipe.core.config import StorageConfig
    a = json.loads(sys.argv[1])
    lake = storage.open_lake(StorageConfig(**a["storage"])).owned_by(a["owner"])
    point, target = a["point"], a["target"]
    die = lambda *_, **__: os._exit(137)
    if point == "staged":               # files staged, publish not begun
        storage.LocalLake.publish = storage.S3Lake.publish = die
    elif point == "between-renames":    # local: the old version renamed aside, the new not yet in
        real = os.replace
        def replace(src, dst):
            real(src, dst)
            if str(src) == target:
                os._exit(137)
        os.replace = replace
    elif point == "after-renames":      # local: the new version in, the old one not yet deleted
        storage.local.shutil = type("S", (), {"rmtree": staticmethod(die)})
    elif point == "copying":            # S3: the second new object being copied in
        real, n = storage.S3Lake._copy, []
        def copy(self, src, dst):
            if "/_staging/" in src and "previous-" not in src:
                n.append(src)
                if len(n) == 2:
                    os._exit(137)
            real(self, src, dst)
        storage.S3Lake._copy = copy
    elif point == "copied":             # S3: every new object in, the old ones and the marker not yet done
        real_finish = storage.S3Lake._finish
        storage.S3Lake._finish = lambda self, plan, phase: os._exit(137) if phase == "copied" else real_finish(self, plan, phase)
    stage = lake.staging_uri("t")
    for name, data in a["files"].items():
        lake.write_bytes(f"{stage}/{name}", data.encode())
    lake.publish(stage, target)
    sys.exit(0)
''')

OLD = {"part-0.parquet": "old-0", "part-1.parquet": "old-1", "model.cbm": "old-model"}
NEW = {"part-0.parquet": "new-0", "model.cbm": "new-model", "extra.json": "new-extra"}


def killed_publish(lake: Lake, target: str, point: str, env: dict[str, str] | None = None) -> None:
    conf = {"root": lake.root}
    if isinstance(lake, S3Lake):
        conf |= {"s3_endpoint": lake.endpoint, "s3_max_attempts": 2, "s3_timeout_seconds": 2}
    args = {"storage": conf, "owner": D.isoformat(), "point": point, "target": target, "files": NEW}
    proc = subprocess.run([sys.executable, "-c", CHILD, json.dumps(args)], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=120)
    assert proc.returncode == 137, proc.stderr  # it was killed where we meant, not before or after


def contents(lake: Lake, target: str) -> dict[str, str]:
    return {f.rsplit("/", 1)[-1]: lake.read_bytes(f).decode() for f in lake.published_files(target)}


def publish(lake: Lake, target: str, files: dict[str, str]) -> None:
    stage = lake.staging_uri("t")
    for name, data in files.items():
        lake.write_bytes(f"{stage}/{name}", data.encode())
    lake.publish(stage, target)


def staged_files(lake: Lake) -> list[str]:
    return lake.list_files(lake.uri(storage.STAGING))


def s3_env(minio: dict) -> dict[str, str]:  # noqa: ANN001
    keys = minio["keys"]
    return {"AWS_ACCESS_KEY_ID": keys.access_key, "AWS_SECRET_ACCESS_KEY": keys.secret_key}


# What the next run of the date reports it put right, per kill point (each line matched whole).
STAGED_LEFT = r"cleared {n} staged files of a killed run from .*/_staging/2026-11-03"
LOCAL_REPAIRS = {
    "staged": [STAGED_LEFT.format(n=3)],
    "between-renames": [r"restored the previous version of .*/test_sample_inference/run_date=2026-11-03 "
                        r"\(a publish was killed between its renames\)", STAGED_LEFT.format(n=4)],  # 3 + its _SUCCESS
    "after-renames": [r"removed .*/test_sample_inference/\.run_date=2026-11-03\.old-[0-9a-f]{8} "
                      r"\(a publish was killed before deleting the previous version\)"],
}
S3_REPAIRS = {
    "staged": [STAGED_LEFT.format(n=3)],
    "copying": [r"rolled back the publish of s3a://.*/test_sample_inference/run_date=2026-11-03 killed while "
                r"copying \(the previous version is back\)"],
    "copied": [r"completed the publish of s3a://.*/test_sample_inference/run_date=2026-11-03 killed after "
               r"copying \(the new version is published\)"],
}


def assert_repaired(done: list[str], expected: list[str]) -> None:
    assert len(done) == len(expected) and all(re.fullmatch(e, d) for e, d in zip(expected, done)), done


# -- kills -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("point", "after"), [("staged", OLD), ("between-renames", OLD), ("after-renames", NEW)])
def test_local_publish_killed_at_each_point_is_repaired_by_the_next_run(point: str, after: dict, tmp_path: Path) -> None:
    lake = open_lake(StorageConfig(root=str(tmp_path / "lake")))
    target = catalog.scores(lake, D)
    publish(lake, target, OLD)
    killed_publish(lake, target, point)
    left = sorted(p.name for p in Path(target).parent.iterdir())
    assert left != ["run_date=2026-11-03"] or staged_files(lake)  # the kill left something behind
    with run_date_transaction(lake, D, "app", [target], LEASE) as tx:
        assert_repaired(tx.repaired, LOCAL_REPAIRS[point])
        assert contents(lake, target) == after  # a whole version is published, never a mix
        assert sorted(p.name for p in Path(target).parent.iterdir()) == ["run_date=2026-11-03"]  # no .old left
        assert staged_files(lake) == []
        publish(tx.lake, target, NEW)  # and the date can be published again
    assert contents(lake, target) == NEW and not lake.exists(lake.uri(storage.STAGING, D.isoformat()))


@pytest.mark.parametrize(("point", "after"), [("staged", OLD), ("copying", OLD), ("copied", NEW)])
def test_s3_publish_killed_at_each_point_is_repaired_by_the_next_run(point: str, after: dict, s3lake: S3Lake,
                                                                    minio: dict) -> None:  # noqa: ANN001
    target = catalog.scores(s3lake, D)
    publish(s3lake, target, OLD)
    killed_publish(s3lake, target, point, s3_env(minio))
    assert staged_files(s3lake)  # the journal and/or the staged copy
    if point != "staged":
        assert not s3lake.is_published(target)  # the marker was dropped: readers refuse the half-done folder
    with run_date_transaction(s3lake, D, "app", [target], LEASE) as tx:
        assert_repaired(tx.repaired, S3_REPAIRS[point])
        assert contents(s3lake, target) == after
        assert sorted(s3lake.list_files(target)) == sorted(["_SUCCESS", *after])  # nothing of the other version
        assert staged_files(s3lake) == []


# -- the date's lock -----------------------------------------------------------------------------------------

def test_a_second_run_of_a_date_refuses_while_the_first_runs(tmp_path: Path) -> None:
    """Two real processes: the first holds D (inside its transaction), the second is refused with a message
    naming the holder and what to do; once the first ends, the date is free again."""
    root = tmp_path / "lake"
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f'''
        import datetime as dt, sys, time
        from loanpipe.core.storage import Lake, LocalLake
        from loanpipe.core.transaction import run_date_transaction
        with run_date_transaction(LocalLake({str(root)!r}), dt.date(2026, 11, 3), "data_gen", [], dt.timedelta(hours=1)):
            print("holding", flush=True)
            sys.stdin.readline()
    ''')], cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "holding"
        lake = LocalLake(str(root))
        with pytest.raises(RunDateBusy, match=rf"run date 2026-11-03 is held by data_gen \(pid {holder.pid} on .*"
                                              r"this app run refuses to start.*remove .*_locks/2026-11-03\.json"):
            with run_date_transaction(lake, D, "app", [], LEASE):
                pytest.fail("entered a date another run holds")
        with run_date_transaction(lake, D + dt.timedelta(days=1), "app", [], LEASE):
            pass  # another date is free
    finally:
        holder.communicate("done\n", timeout=30)
    assert holder.returncode == 0
    with run_date_transaction(lake, D, "app", [], LEASE):
        assert lake.exists(catalog.run_lock(lake, D))
    assert not lake.exists(catalog.run_lock(lake, D))  # released


def test_a_dead_or_expired_holder_is_broken_and_a_live_one_is_not(tmp_path: Path,
                                                                    capfd: pytest.CaptureFixture) -> None:
    lake = LocalLake(str(tmp_path / "lake"))
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    day = D.isoformat()
    stale = acquire(lake, day, "app", LEASE) | {"pid": dead.pid}  # killed: its lock stays, naming a gone process
    lake.write_json(catalog.run_lock(lake, D), stale)
    mine = acquire(lake, day, "app", LEASE)
    assert f"breaking the stale lock {D} held by app: its process {dead.pid}" in capfd.readouterr().err
    with pytest.raises(RunDateBusy):  # held by this live process now
        acquire(lake, day, "data_gen", LEASE)
    expired = mine | {"host": "elsewhere", "expires_at": (dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)).isoformat()}
    lake.write_json(catalog.run_lock(lake, D), expired)
    again = acquire(lake, day, "data_gen", LEASE)
    assert "its lease ran out" in capfd.readouterr().err
    release(lake, day, mine)  # not ours any more: left alone
    assert lake.read_json(catalog.run_lock(lake, D)) == again
    release(lake, day, again)
    assert not lake.exists(catalog.run_lock(lake, D))


def test_s3_lock_is_a_conditional_put(s3lake: S3Lake) -> None:
    uri = catalog.run_lock(s3lake, D)
    assert s3lake.create_exclusive(uri, b"first") and not s3lake.create_exclusive(uri, b"second")
    assert s3lake.read_bytes(uri) == b"first"
    day = (D + dt.timedelta(days=1)).isoformat()
    mine = acquire(s3lake, day, "app", LEASE)
    with pytest.raises(RunDateBusy, match="held by app"):
        acquire(s3lake, day, "data_gen", LEASE)
    release(s3lake, day, mine)
    assert not s3lake.exists(catalog.run_lock(s3lake, D + dt.timedelta(days=1)))


LEDGER_WRITER = textwrap.dedent('''
    import datetime as dt, sys
    from loanpipe.core.storage import Lake, LocalLake
    from loanpipe.ml.model import record_decision
    lake, first = LocalLake(sys.argv[1]), dt.date.fromisoformat(sys.argv[2])
    for i in range(25):
        day = first + dt.timedelta(days=i)
        record_decision(lake, day, {"champion": "a", "serving": day.isoformat()})
''')


def test_runs_of_different_dates_recording_at_once_lose_no_ledger_record(tmp_path: Path) -> None:
    """Two processes write 25 records each into one ledger at the same time: all 50 are there (each
    read-modify-write holds the ledger's lock; without it, one process overwrites the other's records)."""
    from loanpipe.ml.model import ledger

    root = str(tmp_path / "lake")
    procs = [subprocess.Popen([sys.executable, "-c", LEDGER_WRITER, root, first], cwd=ROOT)
             for first in ("2026-01-01", "2026-06-01")]
    assert [p.wait(120) for p in procs] == [0, 0]
    assert len(ledger(LocalLake(root))) == 50
    assert not LocalLake(root).exists(catalog.lock(LocalLake(root), "ledger"))


def test_a_held_ledger_makes_a_writer_wait_then_refuse(tmp_path: Path) -> None:
    from loanpipe.core.transaction import held

    lake = LocalLake(str(tmp_path / "lake"))
    with held(lake, "ledger", "record 2026-11-01", LEASE):
        with pytest.raises(RunDateBusy, match=r"the ledger is held by record 2026-11-01 .* is using it"):
            acquire(lake, "ledger", "record 2026-11-02", LEASE, wait=0.5)
