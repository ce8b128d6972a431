"""The local stack's backfill creation (loanpipe.dev.airflow_services.create_backfill) when Airflow's SQLite
metadata DB was locked: it cancels what a failed creation left open and tries again; other failures stop it.

Airflow is stood in for by its backfills list, as the REST API returns it: the e2e backfill test drives the
real one, where the lock is a race that happens only now and then."""

from __future__ import annotations

import subprocess
from typing import Any

import pytest

from loanpipe.dev import airflow_services as af

LOCKED = ("sqlalchemy.exc.OperationalError: (sqlite3.OperationalError) database is locked\n"
          "[SQL: DELETE FROM task_reschedule WHERE ...]")


class Airflow:
    """The backfills table and the two calls create_backfill makes: the CLI's create and the REST API."""

    def __init__(self, outcomes: list[tuple[int, str, bool]]) -> None:
        self.backfills: list[dict[str, Any]] = [{"id": 1, "completed_at": "2026-11-30T00:00:00Z"}]
        self.outcomes = outcomes  # per CLI call: exit code, stderr, whether the failed call left its row open
        self.calls: list[str] = []

    def run(self, cmd: list[str], **kw: Any) -> subprocess.CompletedProcess:
        code, err, left_open = self.outcomes.pop(0)
        self.calls.append("create")
        if code == 0 or left_open:
            self.backfills.append({"id": len(self.backfills) + 1, "completed_at": None})
        if code:
            raise subprocess.CalledProcessError(code, cmd, "", err)
        return subprocess.CompletedProcess(cmd, 0, "", "")

    def api(self, method: str, path: str, body: Any = None, token: str | None = None, port: int = 0) -> Any:
        if method == "GET":
            return {"backfills": [dict(b) for b in self.backfills]}
        assert method == "PUT" and path.endswith("/cancel"), path
        backfill_id = int(path.split("/")[-2])
        self.calls.append(f"cancel {backfill_id}")
        next(b for b in self.backfills if b["id"] == backfill_id)["completed_at"] = "now"
        return {}


@pytest.fixture()
def airflow(monkeypatch: pytest.MonkeyPatch):
    def install(outcomes: list[tuple[int, str, bool]]) -> Airflow:
        fake = Airflow(outcomes)
        monkeypatch.setattr(af, "run", fake.run)
        monkeypatch.setattr(af, "api", fake.api)
        monkeypatch.setattr(af, "env", lambda: {})
        monkeypatch.setattr(af.time, "sleep", lambda s: None)
        return fake
    return install


def test_a_locked_db_is_tried_again_and_a_half_made_backfill_is_cancelled_first(airflow) -> None:
    fake = airflow([(1, LOCKED, False), (1, LOCKED, True), (0, "", False)])
    lines: list[str] = []
    backfill = af.create_backfill("dag_app", "2026-11-02", "2026-11-02", "t", log=lines.append)
    assert fake.calls == ["create", "create", "cancel 2", "create"]
    assert backfill == {"id": 3, "completed_at": None}
    assert "cancelled backfill 2, left open by a failed creation" in lines[1]


def test_other_failures_and_a_lock_that_does_not_clear_stop_with_airflow_s_own_words(airflow) -> None:
    fake = airflow([(2, "Another backfill is running for Dag dag_app.", False)])
    with pytest.raises(RuntimeError, match=r"(?s)dag_app 2026-11-02 .. 2026-11-03 failed \(try 1 of 4, exit 2\)"
                                           r".*Another backfill is running"):
        af.create_backfill("dag_app", "2026-11-02", "2026-11-03", "t", log=lambda line: None)
    assert fake.calls == ["create"]

    fake = airflow([(1, LOCKED, False)] * 4)
    with pytest.raises(RuntimeError, match=r"(?s)try 4 of 4.*database is locked"):
        af.create_backfill("dag_app", "2026-11-02", "2026-11-03", "t", log=lambda line: None)
    assert fake.calls == ["create"] * 4
