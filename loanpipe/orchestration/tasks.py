"""What the Airflow tasks call, as plain importable functions (the DAG files only wire them together).

* ``batch_ready``: the sensor's check that the run date's batch is published; ``applications_arrived``: that the
  inbox holds the day's application files (inbox mode).
* ``send_*_report`` / ``notify_failure``: the emails (HTML from ``emails``, the ROC curve inline), built from
  the run summaries in the lake; they carry metrics and paths, never credentials. Each message is written to
  the lake (``artifacts/alerts/<date>/``) before it is mailed, and the task log says where, so a report or an
  alert that cannot be mailed (SMTP down) is not lost.
* ``dag_defaults``: owner, retries, timeout and the failure email shared by the DAGs.

Nothing here imports Spark, pandas or Airflow at module level, so DAG files stay cheap to parse.
"""

from __future__ import annotations

import html
import logging
import tempfile
from pathlib import Path
from typing import Any

from loanpipe.core import catalog, dates, storage
from loanpipe.core.config import Config, load_config
from loanpipe.reports.emails import app_report, data_gen_report, failure_report

log = logging.getLogger(__name__)


def airflow_credentials(cfg: Config) -> storage.S3Credentials | None:
    """S3 keys for Airflow's own reads from the connection ``storage.s3_conn_id`` (login = access key id,
    password = secret key); None (-> the environment) when S3 is not used or the connection is not defined."""
    if not cfg.storage.is_s3 or not cfg.storage.s3_conn_id:
        return None
    try:
        from airflow.sdk import BaseHook

        conn = BaseHook.get_connection(cfg.storage.s3_conn_id)
    except Exception:  # not defined (AirflowNotFoundException), or not running under Airflow
        return None
    if not conn.login or not conn.password:
        return None
    token = (conn.extra_dejson or {}).get("aws_session_token")
    return storage.S3Credentials(conn.login, conn.password, token)


def open_lake(cfg: Config) -> storage.Lake:
    """The lake as Airflow's tasks see it (keys from the Airflow connection when there is one)."""
    return storage.open_lake(cfg.storage, credentials=airflow_credentials(cfg))


def batch_ready(run_date: str, config_path: str | None = None) -> bool:
    """True when the run date's batch is published in the lake (the scoring DAG's sensor)."""
    cfg = load_config(config_path)
    lake = open_lake(cfg)
    return lake.is_published(catalog.batch(lake, dates.parse_run_date(run_date)))


def applications_arrived(run_date: str, config_path: str | None = None) -> bool:
    """True when ``batch.inbox``'s ``applications/`` holds a file to land (names starting with ``.`` or ``_`` are
    still being written), or the run date's files were already listed for landing (a rerun): the sensor of
    ``dag_new_data`` in inbox mode. Read with Airflow's own access: an S3 inbox with the lake's connection, a
    folder as Airflow's workers see it."""
    import dataclasses

    cfg = load_config(config_path)
    inbox = storage.open_lake(dataclasses.replace(cfg.storage, root=cfg.batch.inbox),
                              credentials=airflow_credentials(cfg))
    day = dates.parse_run_date(run_date).isoformat()
    if inbox.exists(inbox.uri("processed", day, "applications", "_landed.json")):
        return True
    return any("/" not in f and not f.startswith((".", "_")) for f in inbox.list_files(inbox.uri("applications")))


def wait_for(task_id: str, check: Any, cfg: Config) -> Any:
    """A sensor calling ``check(run_date=...)`` in reschedule mode (no worker slot while it waits), for at most
    ``airflow.batch_wait_timeout_minutes``. Call inside a ``with DAG(...)`` block."""
    from airflow.providers.standard.sensors.python import PythonSensor

    from loanpipe.orchestration.shipping import RUN_DATE_TEMPLATE

    return PythonSensor(task_id=task_id, python_callable=check, op_kwargs={"run_date": RUN_DATE_TEMPLATE},
                        mode="reschedule", poke_interval=60, timeout=cfg.airflow.batch_wait_timeout_minutes * 60)


def context_run_date(context: dict[str, Any]) -> str:
    params = context.get("params") or {}
    return str(params.get("run_date") or context["ds"])


def send_data_gen_report(config_path: str | None = None, **context: Any) -> str:
    cfg = load_config(config_path)
    lake = open_lake(cfg)
    run_date = dates.parse_run_date(context_run_date(context))
    subject, body = data_gen_report(lake.read_json(catalog.data_gen_summary(lake, run_date)))
    deliver(cfg, lake, run_date, "report-dag_new_data", subject, body)
    return subject


def send_app_report(config_path: str | None = None, **context: Any) -> str:
    cfg = load_config(config_path)
    lake = open_lake(cfg)
    run_date = dates.parse_run_date(context_run_date(context))
    summary = lake.read_json(catalog.run_artifact(lake, run_date, catalog.RUN_SUMMARY))
    roc = summary["artifacts"].get("roc_curve")
    with tempfile.TemporaryDirectory() as tmp:
        files = []
        for name, uri in (("roc.png", roc), ("trend.png", summary["artifacts"].get("trend"))):
            if uri:  # attached under its file name: the body shows it by that Content-ID
                path = Path(tmp) / name
                path.write_bytes(lake.read_bytes(uri))
                files.append(str(path))
        subject, body = app_report(summary, "roc.png" if roc else None)
        deliver(cfg, lake, run_date, "report-dag_app", subject, body, files)
    return subject


def task_log_tail(ti: Any, lines: int = 40) -> str:
    """The last lines of this try's log file, when the logs are on this machine."""
    try:
        from airflow.configuration import conf

        base = Path(conf.get("logging", "base_log_folder"))
        pattern = f"dag_id={ti.dag_id}/run_id={ti.run_id}/task_id={ti.task_id}/attempt={ti.try_number}.log"
        found = sorted(base.glob(pattern))
        if not found:
            return "(task log not found on this machine)"
        text = found[-1].read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])
    except Exception as exc:  # noqa: BLE001 - a report must not fail because the log is unreadable
        return f"(task log unreadable: {exc})"


def notify_failure(context: dict[str, Any]) -> None:
    """on_failure_callback: the failing task, the error and the tail of its log, to the lake and by email
    (:func:`raise_alert`)."""
    ti = context["ti"]
    error = str(context.get("exception") or "unknown error")
    run_date = context_run_date(context)
    subject, body = failure_report(ti.dag_id, ti.task_id, run_date, ti.try_number, error, task_log_tail(ti))
    raise_alert(load_config(), run_date, f"failure-{ti.dag_id}-{ti.task_id}-try{ti.try_number}", subject, body)


def raise_alert(cfg: Config, run_date: Any, name: str, subject: str, body: str) -> None:
    """An alert from a callback: kept in the lake (:func:`keep`) and mailed, each tried on its own, and what
    failed is logged (a callback that raises is only logged by Airflow): with SMTP down the alert still sits in
    the lake; with the lake down it is still mailed."""
    try:
        keep(open_lake(cfg), dates.parse_run_date(str(run_date)), name, subject, body)
    except Exception as exc:  # noqa: BLE001 - the email below must still be tried
        log.error("could not write the alert %r to the lake: %s", subject, exc)
    try:
        _send(cfg, subject, body, [])
    except Exception as exc:  # noqa: BLE001
        log.error("could not email the alert %r: %s", subject, exc)


def keep(lake: storage.Lake, run_date: Any, name: str, subject: str, body: str) -> str:
    """Write a report or alert to the lake as an HTML page (``artifacts/alerts/<date>/<name>.html``); a rerun
    replaces its own page. Logs where it is."""
    uri = catalog.alert(lake, run_date, f"{name}.html")
    page = f"<!doctype html><meta charset='utf-8'><title>{html.escape(subject)}</title>\n{body}\n"
    lake.write_bytes(uri, page.encode())
    log.info("%s: kept at %s", subject, uri)
    return uri


def deliver(cfg: Config, lake: storage.Lake, run_date: Any, name: str, subject: str, body: str,
            files: list[str] | None = None) -> str:
    """Keep the message in the lake, then mail it; a mail that cannot be sent fails the task (Airflow retries
    it, then the failure alert follows), and the page in the lake says what the email would have said."""
    uri = keep(lake, run_date, name, subject, body)
    try:
        _send(cfg, subject, body, files or [])
    except Exception as exc:
        raise RuntimeError(f"could not email {subject!r} ({exc}); the report is kept at {uri}") from exc
    return uri


def _send(cfg: Config, subject: str, body: str, files: list[str]) -> None:
    from bots.mail import send_mail

    send_mail(subject, body, files=files, conn_id=cfg.airflow.smtp_conn_id, to_variable=cfg.airflow.mail_to_variable)


def start_date(cfg: Config) -> Any:
    """The DAGs' start date, in ``airflow.timezone``: Airflow reads their cron schedules in that zone."""
    import pendulum

    return pendulum.datetime(2026, 1, 1, tz=cfg.airflow.timezone)


def end_date(cfg: Config) -> Any:
    """The end of ``airflow.end_date`` in ``airflow.timezone`` (None: the DAGs are scheduled for ever)."""
    import pendulum

    if cfg.airflow.end_date is None:
        return None
    return pendulum.parse(cfg.airflow.end_date, tz=cfg.airflow.timezone).end_of("day")


def dag_defaults(cfg: Config) -> dict[str, Any]:
    """default_args shared by the pipeline's DAGs: owner, retries with back-off, timeout, failure email."""
    import datetime as dt

    a = cfg.airflow
    return {
        "owner": a.owner,
        "retries": a.retries,
        "retry_delay": dt.timedelta(seconds=a.retry_delay_seconds),
        "retry_exponential_backoff": True,
        "max_retry_delay": dt.timedelta(seconds=a.max_retry_delay_seconds),
        "execution_timeout": dt.timedelta(minutes=a.execution_timeout_minutes),
        "on_failure_callback": notify_failure,
    }
