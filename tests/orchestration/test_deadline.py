"""The scores deadline: its interval from the config, what holds a date up, and the callback's alert."""

from __future__ import annotations

import datetime as dt
import email
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from loanpipe.core import catalog
from loanpipe.core.config import AirflowConfig, ConfigError
from loanpipe.core.storage import Lake, LocalLake
from loanpipe.core.transaction import run_date_transaction
from loanpipe.orchestration import deadline

D = dt.date(2026, 11, 3)


def test_interval_is_the_deadline_minus_the_daily_tick() -> None:
    assert deadline.deadline_interval(AirflowConfig()) == dt.timedelta(minutes=30)  # 06:30 -> 07:00 UTC
    moscow = AirflowConfig(timezone="Europe/Moscow", schedule_app="15 5 * * 1-5", scores_deadline="08:00")
    assert deadline.deadline_interval(moscow) == dt.timedelta(hours=2, minutes=45)  # a weekday (2026-01-05)
    assert deadline.deadline_interval(AirflowConfig(scores_deadline=None)) is None
    assert deadline.deadline_interval(AirflowConfig(schedule_app=None)) is None
    with pytest.raises(ConfigError, match=r"scores_deadline 06:00 is not after its run's start 06:30"):
        deadline.deadline_interval(AirflowConfig(scores_deadline="06:00"))
    with pytest.raises(ConfigError, match="to run once a day"):
        deadline.deadline_interval(AirflowConfig(schedule_app="*/10 * * * *"))
    with pytest.raises(ConfigError, match="HH:MM"):
        AirflowConfig(scores_deadline="7am")
    with pytest.raises(ConfigError, match="not a time zone"):
        AirflowConfig(timezone="Mars/Olympus")


def test_dag_app_carries_the_deadline_alert(monkeypatch: pytest.MonkeyPatch) -> None:
    alert = deadline.scores_deadline_alert(AirflowConfig())
    assert alert.interval == dt.timedelta(minutes=30) and alert.name == "scores_deadline"
    assert alert.callback.path == "loanpipe.orchestration.deadline.scores_late"
    # `airflow dags test` runs without a scheduler (and crashes on a deadline in Airflow 3.3.2): none there
    monkeypatch.setattr(sys, "argv", ["airflow", "dags", "test", "dag_app", "2026-11-20"])
    assert deadline.scores_deadline_alert(AirflowConfig()) is None
    assert deadline.under_dags_test(["airflow", "dags", "trigger", "dag_app"]) is False


def publish(lake: Lake, target: str) -> None:
    stage = lake.staging_uri("t")
    lake.write_bytes(f"{stage}/part-0.parquet", b"x")
    lake.publish(stage, target)


def test_what_holds_a_date_up(tmp_path: Path) -> None:
    lake = LocalLake(str(tmp_path / "lake"))
    assert deadline.holdup(lake, D).startswith("dag_app.wait_for_batch: the batch of 2026-11-03 is not published")
    publish(lake, catalog.batch(lake, D))
    assert deadline.holdup(lake, D).startswith("dag_app.spark_submit_app: the batch of 2026-11-03 is published but")
    with run_date_transaction(lake, D, "app", [], dt.timedelta(hours=1)):
        assert deadline.holdup(lake, D).startswith(f"dag_app.spark_submit_app: the app job of 2026-11-03 is still "
                                                   f"running (pid {os.getpid()}")
    publish(lake, catalog.scores(lake, D))
    assert deadline.holdup(lake, D) is None


@pytest.fixture()
def smtp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A real SMTP server (aiosmtpd, as in the local stack) storing each message in a Maildir."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    box = tmp_path / "mail"
    proc = subprocess.Popen([sys.executable, "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{port}", "-c",
                             "aiosmtpd.handlers.Mailbox", str(box)])
    deadline_at = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            assert time.monotonic() < deadline_at, "the SMTP server did not start"
            time.sleep(0.2)
    monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEFAULT", json.dumps({
        "conn_type": "smtp", "host": "127.0.0.1", "port": port,
        "extra": {"disable_ssl": True, "disable_tls": True, "from_email": "lp@localhost", "retry_limit": 1}}))
    monkeypatch.setenv("LOANPIPE_MAIL_TO", "risk@example.com")
    yield box / "new"
    proc.terminate()
    proc.wait(10)


def mails(box: Path) -> list[email.message.Message]:
    return [email.message_from_bytes(p.read_bytes()) for p in sorted(box.glob("*"))] if box.exists() else []


def test_the_callback_alerts_a_late_scheduled_date_only(tmp_path: Path, smtp: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOANPIPE__STORAGE__ROOT", str(tmp_path / "lake"))
    lake = LocalLake(str(tmp_path / "lake"))
    run = {"dag_id": "dag_app", "dag_run_id": "scheduled__2026-11-03T06:30:00+00:00", "run_type": "scheduled",
           "logical_date": "2026-11-03T06:30:00Z", "conf": {}, "state": "running"}
    ctx = {"dag_run": run, "deadline": {"deadline_time": "2026-11-03T07:00:00Z"}}
    for run_type in ("backfill", "manual"):  # no business deadline: no alert
        assert deadline.scores_late({**ctx, "dag_run": {**run, "run_type": run_type}}) is None
    assert mails(smtp) == []

    subject = deadline.scores_late(ctx)
    assert subject == "[loanpipe] LATE scores 2026-11-03: not published by 07:00 UTC"
    [mail] = mails(smtp)
    assert mail["Subject"] == subject
    body = mail.get_payload(decode=True) or b"".join(p.get_payload(decode=True) or b"" for p in mail.walk())
    assert b"dag_app.wait_for_batch" in body and b"scheduled__2026-11-03T06:30:00+00:00 (running)" in body
    kept = lake.read_bytes(catalog.alert(lake, D, "late-scores.html")).decode()
    assert "dag_app.wait_for_batch: the batch of 2026-11-03 is not published" in kept

    publish(lake, catalog.scores(lake, D))  # published in time after all: only the report was still going
    assert deadline.scores_late(ctx) is None and len(mails(smtp)) == 1


def test_in_inbox_mode_no_application_by_its_deadline_raises_the_data_late_alert(
        tmp_path: Path, smtp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from loanpipe.core.config import load_config
    from loanpipe.orchestration import tasks

    inbox = tmp_path / "inbox"
    for key, value in (("STORAGE__ROOT", tmp_path / "lake"), ("BATCH__SOURCE", "inbox"), ("BATCH__INBOX", inbox)):
        monkeypatch.setenv(f"LOANPIPE__{key}", str(value))
    cfg = load_config()
    alert = deadline.applications_deadline_alert(cfg)  # 06:00 tick -> 06:30
    assert alert.interval == dt.timedelta(minutes=30) and alert.callback.path.endswith("deadline.applications_late")
    assert deadline.applications_deadline_alert(cfg.replace(batch={"source": "emulated"})) is None
    # the sensor: nothing yet, a file still being written, then a file
    (inbox / "applications").mkdir(parents=True)
    (inbox / "applications" / ".a.csv.part").write_text("id")
    assert tasks.applications_arrived("2026-11-03") is False
    lake = LocalLake(str(tmp_path / "lake"))
    run = {"dag_id": "dag_new_data", "dag_run_id": "scheduled__2026-11-03T06:00:00+00:00", "run_type": "scheduled",
           "logical_date": "2026-11-03T06:00:00Z", "conf": {}, "state": "running"}
    assert deadline.applications_late({"dag_run": {**run, "run_type": "manual"}}) is None
    subject = deadline.applications_late({"dag_run": run})
    assert subject == "[loanpipe] LATE data 2026-11-03: no applications landed by 06:30 UTC"
    [mail] = mails(smtp)
    assert mail["Subject"] == subject
    kept = lake.read_bytes(catalog.alert(lake, D, "late-data.html")).decode()
    assert f"{inbox}/applications" in kept and "07:00 UTC" in kept
    (inbox / "applications" / "a.csv").write_text("id")
    assert tasks.applications_arrived("2026-11-03") is True
    publish(lake, catalog.batch(lake, D))  # landed after all: no alert
    assert deadline.applications_late({"dag_run": run}) is None and len(mails(smtp)) == 1
