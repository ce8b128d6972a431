"""The local stack's backfill creation (loanpipe.dev.airflow_services.create_backfill) over the REST API, when
Airflow's SQLite metadata DB was locked (it cancels what a failed creation left open and tries again), when the
DAG's last backfill is not marked complete yet (it waits while no run is left), and on other refusals (it stops
with Airflow's words).

Airflow is stood in for by its REST answers: the e2e backfill test drives the real one, where the lock is a race
that happens only now and then and the late completion depends on the scheduler's 30-s sweep."""

from __future__ import annotations

import io
import urllib.error
from typing import Any

import pytest

from loanpipe.dev import airflow_services as af

LOCKED = (503, '{"detail":"Database is locked. Backfill creation is not supported on SQLite under concurrent access."}')
OPEN = (409, '{"detail":"There is already a running backfill for dag dag_app"}')


class Airflow:
    """The backfills table, the DAG's open runs and the REST calls create_backfill makes."""

    def __init__(self, outcomes: list[tuple[int, str, bool]], open_runs: list[list[str]] | None = None,
                 cancel_fails: int = 0) -> None:
        self.cancel_fails = cancel_fails  # this many cancels answer 500 while Airflow deletes the backfill itself
        self.backfills: list[dict[str, Any]] = [{"id": 1, "completed_at": "2026-11-30T00:00:00Z"}]
        self.outcomes = outcomes  # per POST: HTTP status, body, whether the refused call left its row open
        self.open_runs = open_runs or []  # per look at the DAG's queued or running runs
        self.calls: list[str] = []

    def api(self, method: str, path: str, body: Any = None, token: str | None = None, port: int = 0) -> Any:
        if method == "GET" and path.startswith("/api/v2/backfills"):
            return {"backfills": [dict(b) for b in self.backfills]}
        if method == "GET":
            assert "state=queued&state=running" in path, path
            self.calls.append("runs")
            return {"dag_runs": [{"dag_run_id": r} for r in self.open_runs.pop(0)]}
        if method == "POST":
            assert path == "/api/v2/backfills" and body["reprocess_behavior"] == "completed", (path, body)
            assert body["max_active_runs"] == 1 and body["to_date"].endswith("T23:59:59Z")
            code, text, left_open = self.outcomes.pop(0)
            self.calls.append("create")
            if code == 200 or left_open:
                self.backfills.append({"id": len(self.backfills) + 1, "completed_at": None})
            if code != 200:
                raise urllib.error.HTTPError(path, code, "refused", {}, io.BytesIO(text.encode()))
            return dict(self.backfills[-1])
        assert method == "PUT" and path.endswith("/cancel"), path
        backfill_id = int(path.split("/")[-2])
        self.calls.append(f"cancel {backfill_id}")
        if self.cancel_fails:
            self.cancel_fails -= 1
            self.backfills = [b for b in self.backfills if b["id"] != backfill_id]
            raise urllib.error.HTTPError(path, 500, "Internal Server Error", {}, io.BytesIO(b"Internal Server Error"))
        next(b for b in self.backfills if b["id"] == backfill_id)["completed_at"] = "now"
        return {}


@pytest.fixture()
def airflow(monkeypatch: pytest.MonkeyPatch):
    def install(outcomes: list[tuple[int, str, bool]], open_runs: list[list[str]] | None = None,
                cancel_fails: int = 0) -> Airflow:
        fake = Airflow(outcomes, open_runs, cancel_fails)
        monkeypatch.setattr(af, "api", fake.api)
        monkeypatch.setattr(af.time, "sleep", lambda s: None)
        return fake
    return install


def test_a_locked_db_is_tried_again_and_a_half_made_backfill_is_cancelled_first(airflow) -> None:
    fake = airflow([(*LOCKED, False), (*LOCKED, True), (200, "", False)])
    lines: list[str] = []
    backfill = af.create_backfill("dag_app", "2026-11-02", "2026-11-02", "t", log=lines.append)
    assert fake.calls == ["create", "create", "cancel 2", "create"]
    assert backfill == {"id": 3, "completed_at": None}
    assert "cancelled backfill 2, left open by a failed creation" in lines[1]


def test_a_cancel_that_meets_airflow_s_own_cleanup_reads_the_list_again(airflow) -> None:
    """CI: the half-made backfill's cancel answered 500 (Airflow was deleting it); the list read again has nothing
    open, so the creation is tried again instead of failing the whole backfill."""
    fake = airflow([(*LOCKED, True), (200, "", False)], cancel_fails=1)
    lines: list[str] = []
    assert af.create_backfill("dag_app", "2026-11-02", "2026-11-02", "t", log=lines.append)["id"] == 2
    assert fake.calls == ["create", "cancel 2", "create"]
    assert "cancelling a half-made backfill answered HTTP 500 (try 1); again" in lines[0]


def test_a_finished_backfill_not_yet_marked_complete_is_waited_for(airflow) -> None:
    fake = airflow([(*OPEN, False), (*OPEN, False), (200, "", False)], open_runs=[[], []])
    assert af.create_backfill("dag_app", "2026-11-02", "2026-11-02", "t", log=lambda line: None)["id"] == 2
    assert fake.calls == ["create", "runs", "create", "runs", "create"]


def test_other_refusals_an_open_backfill_with_runs_and_a_lock_that_does_not_clear_stop_with_airflow_s_words(
        airflow) -> None:
    fake = airflow([(422, '{"detail":"No runs to create for the range"}', False)])
    with pytest.raises(RuntimeError, match=r"(?s)dag_app 2026-11-02 .. 2026-11-03 refused \(HTTP 422.*No runs"):
        af.create_backfill("dag_app", "2026-11-02", "2026-11-03", "t", log=lambda line: None)
    assert fake.calls == ["create"]

    fake = airflow([(*OPEN, False)], open_runs=[["backfill__2026-11-01T06:30:00+00:00"]])
    with pytest.raises(RuntimeError, match=r"HTTP 409.*already a running backfill"):
        af.create_backfill("dag_app", "2026-11-02", "2026-11-03", "t", log=lambda line: None)
    assert fake.calls == ["create", "runs"]

    fake = airflow([(*LOCKED, False)] * 4)
    with pytest.raises(RuntimeError, match=r"(?s)HTTP 503, after 3 locked tries.*Database is locked"):
        af.create_backfill("dag_app", "2026-11-02", "2026-11-03", "t", log=lambda line: None)
    assert fake.calls == ["create"] * 4
