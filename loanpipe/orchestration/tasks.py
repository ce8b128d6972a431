"""What the Airflow tasks call, as plain importable functions (the DAG files only wire them together).

* ``batch_ready``: the sensor's check that the run date's batch is published.
* ``send_*_report`` / ``notify_failure``: the emails (HTML from ``emails``, the ROC curve inline), built from
  the run summaries in the lake; they carry metrics and paths, never credentials.
* ``dag_defaults``: owner, retries, timeout and the failure email shared by the DAGs.

Nothing here imports Spark, pandas or Airflow at module level, so DAG files stay cheap to parse.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from loanpipe.core import catalog, storage
from loanpipe.core.config import Config, load_config
from loanpipe.orchestration.emails import app_report, data_gen_report, failure_report



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
    return lake.is_published(catalog.batch(lake, storage.parse_run_date(run_date)))


def context_run_date(context: dict[str, Any]) -> str:
    params = context.get("params") or {}
    return str(params.get("run_date") or context["ds"])


def send_data_gen_report(config_path: str | None = None, **context: Any) -> str:
    cfg = load_config(config_path)
    lake = open_lake(cfg)
    run_date = storage.parse_run_date(context_run_date(context))
    subject, body = data_gen_report(lake.read_json(catalog.data_gen_summary(lake, run_date)))
    _send(cfg, subject, body, [])
    return subject


def send_app_report(config_path: str | None = None, **context: Any) -> str:
    cfg = load_config(config_path)
    lake = open_lake(cfg)
    run_date = storage.parse_run_date(context_run_date(context))
    summary = lake.read_json(catalog.run_artifact(lake, run_date, catalog.RUN_SUMMARY))
    roc = summary["artifacts"].get("roc_curve")
    with tempfile.TemporaryDirectory() as tmp:
        files = []
        if roc:
            path = Path(tmp) / "roc.png"
            path.write_bytes(lake.read_bytes(roc))
            files.append(str(path))
        subject, body = app_report(summary, "roc.png" if roc else None)
        _send(cfg, subject, body, files)
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
    """on_failure_callback: email the failing task, the error and the tail of its log."""
    ti = context["ti"]
    error = str(context.get("exception") or "unknown error")
    subject, body = failure_report(ti.dag_id, ti.task_id, context_run_date(context), ti.try_number, error,
                                   task_log_tail(ti))
    _send(load_config(), subject, body, [])


def _send(cfg: Config, subject: str, body: str, files: list[str]) -> None:
    from bots.mail import send_mail

    send_mail(subject, body, files=files, conn_id=cfg.airflow.smtp_conn_id, to_variable=cfg.airflow.mail_to_variable)


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
