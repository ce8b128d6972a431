"""Scores on time: the scoring DAG's deadline (``airflow.scores_deadline``, in ``airflow.timezone``).

The business starts its own processes from the date's scores at a fixed time. ``dag_app`` carries an Airflow
Deadline Alert (``scores_deadline_alert``): the scheduler checks it every loop, whatever state the run's tasks
are in, so it fires when the run is stuck (a sensor waiting, a job hanging), not only when it fails. At the
deadline it runs ``scores_late`` through the executor, which:

* ignores runs that are not scheduled ones: a backfill or a hand-triggered rerun of an old date has no
  business deadline, and would otherwise alert at once;
* does nothing if the date's scores are published (the run is only finishing its report);
* otherwise says which task holds the date up, read from the lake (``holdup``): the date's lock names the
  job that is still running and since when; no batch means the run waits in ``wait_for_batch``;
* writes the alert to the lake (``artifacts/alerts/<date>/``) and emails it, each tried on its own.

The deadline is ``logical date + interval``: for a daily cron the logical date is the day's tick, so the
interval is the deadline's time of day minus the tick's (``deadline_interval``), in the DAGs' time zone.
"""

from __future__ import annotations

import datetime as dt
import logging
import sys
import zoneinfo
from typing import Any

from loanpipe.core import catalog, dates, storage
from loanpipe.core.config import AirflowConfig, ConfigError, load_config

log = logging.getLogger(__name__)
REFERENCE_DAY = dt.date(2026, 1, 5)  # any day serves: the interval between a daily tick and the deadline


def deadline_interval(a: AirflowConfig, day: dt.date = REFERENCE_DAY, key: str = "scores_deadline",
                      schedule_key: str = "schedule_app") -> dt.timedelta | None:
    """Deadline (``airflow.<key>``) minus its DAG's daily tick (``airflow.<schedule_key>``); None when there is no
    deadline or no schedule."""
    deadline_at, schedule = getattr(a, key), getattr(a, schedule_key)
    if not deadline_at or not schedule:
        return None
    from croniter import croniter

    tz = zoneinfo.ZoneInfo(a.timezone)
    start = dt.datetime.combine(day, dt.time(), tz) - dt.timedelta(microseconds=1)
    ticks = croniter(schedule, start)
    tick, after = ticks.get_next(dt.datetime), ticks.get_next(dt.datetime)
    if tick.date() != day or after.date() == day:
        raise ConfigError(f"airflow.{key} needs airflow.{schedule_key} to run once a day (got "
                          f"{schedule!r}); set the deadline to null for other schedules")
    deadline = dt.datetime.combine(day, dt.time.fromisoformat(deadline_at), tz)
    if deadline <= tick:
        raise ConfigError(f"airflow.{key} {deadline_at} is not after its run's start "
                          f"{tick:%H:%M} (airflow.{schedule_key} {schedule!r}, {a.timezone})")
    return deadline - tick


def under_dags_test(argv: list[str] | None = None) -> bool:
    """True in ``airflow dags test``: it runs a DAG without the scheduler, so a deadline could never fire there,
    and in Airflow 3.3.2 a DAG with a deadline makes it crash after the last task ('dict' object has no
    attribute 'hex', when it marks the run successful)."""
    args = sys.argv[1:3] if argv is None else argv[1:3]
    return args == ["dags", "test"]


def scores_deadline_alert(a: AirflowConfig) -> Any:
    """The DeadlineAlert for ``dag_app`` (None without a deadline, and under ``airflow dags test``)."""
    interval = deadline_interval(a)
    if interval is None or under_dags_test():
        return None
    from airflow.sdk import DeadlineAlert, DeadlineReference, SyncCallback

    return DeadlineAlert(reference=DeadlineReference.DAGRUN_LOGICAL_DATE, interval=interval,
                         callback=SyncCallback(f"{__name__}.scores_late"), name="scores_deadline")


def applications_deadline_alert(cfg: Any) -> Any:
    """The DeadlineAlert for ``dag_new_data`` in inbox mode (None otherwise, without a deadline, and under
    ``airflow dags test``): ``applications_late`` at ``airflow.applications_deadline``."""
    if cfg.batch.source != "inbox" or under_dags_test():
        return None
    interval = deadline_interval(cfg.airflow, key="applications_deadline", schedule_key="schedule_new_data")
    if interval is None:
        return None
    from airflow.sdk import DeadlineAlert, DeadlineReference, SyncCallback

    return DeadlineAlert(reference=DeadlineReference.DAGRUN_LOGICAL_DATE, interval=interval,
                         callback=SyncCallback(f"{__name__}.applications_late"), name="applications_deadline")


def applications_late(context: dict[str, Any], config_path: str | None = None, **_: Any) -> str | None:
    """The data-late callback: a scheduled run's date has no landed batch at ``airflow.applications_deadline``
    (nothing in the inbox, or the landing still going or failed). Returns the alert's subject, or None."""
    from loanpipe.reports.emails import data_late_report
    from loanpipe.orchestration.tasks import open_lake, raise_alert

    run = context.get("dag_run") or {}
    if run.get("run_type") != "scheduled":
        return None
    cfg = load_config(config_path)
    run_date = dates.parse_run_date(str((run.get("conf") or {}).get("run_date") or run["logical_date"])[:10])
    lake = open_lake(cfg)
    if lake.is_published(catalog.batch(lake, run_date)):
        return None
    subject, body = data_late_report(run_date.isoformat(), f"{cfg.airflow.applications_deadline} "
                                     f"{cfg.airflow.timezone}", f"{cfg.batch.inbox}/applications",
                                     f"{cfg.airflow.scores_deadline} {cfg.airflow.timezone}",
                                     run.get("dag_run_id", ""), run.get("state", ""))
    raise_alert(cfg, run_date, "late-data", subject, body)
    return subject


def holdup(lake: storage.Lake, run_date: dt.date) -> str | None:
    """What holds the date's scores up, as the lake shows it; None when they are published."""
    if lake.is_published(catalog.scores(lake, run_date)):
        return None
    lock = catalog.run_lock(lake, run_date)
    if lake.exists(lock):
        h = lake.read_json(lock)
        task = "dag_app.spark_submit_app" if h["job"] == "app" else "dag_new_data.spark_submit_data_gen"
        return (f"{task}: the {h['job']} job of {run_date} is still running (pid {h['pid']} on {h['host']}, "
                f"since {h['started_at']})")
    if not lake.is_published(catalog.batch(lake, run_date)):
        return (f"dag_app.wait_for_batch: the batch of {run_date} is not published "
                "(dag_new_data has not produced it: see that DAG's run)")
    return (f"dag_app.spark_submit_app: the batch of {run_date} is published but no job is running for the "
            "date and its scores are not published (the job has not started, or failed and waits for a retry)")


def scores_late(context: dict[str, Any], config_path: str | None = None, **_: Any) -> str | None:
    """The deadline callback (see the module docstring); returns the alert's subject, or None."""
    from loanpipe.reports.emails import deadline_report
    from loanpipe.orchestration.tasks import open_lake, raise_alert

    run = context.get("dag_run") or {}
    if run.get("run_type") != "scheduled":
        log.info("deadline passed for %s run %s: not a scheduled run, so no business deadline",
                 run.get("run_type"), run.get("dag_run_id"))
        return None
    cfg = load_config(config_path)
    run_date = dates.parse_run_date(str((run.get("conf") or {}).get("run_date") or run["logical_date"])[:10])
    lake = open_lake(cfg)
    why = holdup(lake, run_date)
    if why is None:
        log.info("deadline passed for %s: its scores are published; only the run's report is still going", run_date)
        return None
    deadline = str((context.get("deadline") or {}).get("deadline_time", ""))
    subject, body = deadline_report(run_date.isoformat(), f"{cfg.airflow.scores_deadline} {cfg.airflow.timezone}",
                                    deadline, why, run.get("dag_run_id", ""), run.get("state", ""))
    raise_alert(cfg, run_date, "late-scores", subject, body)
    return subject
