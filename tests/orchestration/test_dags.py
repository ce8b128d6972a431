"""DAG policies: every DAG imports cleanly and cheaply, follows the house rules, and has the expected shape."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DAG_FILES = sorted([*ROOT.joinpath("dags").glob("dag_*.py"), *ROOT.joinpath("bots").glob("dag_*.py")])


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(ROOT))


def test_no_import_errors(dagbag) -> None:
    assert dagbag.import_errors == {}
    assert {"dag_new_data", "dag_app", "dag_bots_test_email"} <= set(dagbag.dag_ids)


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.name)
def test_dag_file_does_no_work_at_import(path: Path) -> None:
    """Parsing a DAG file imports neither Spark nor pandas, opens no lake, starts nothing."""
    code = (f"import runpy, sys; runpy.run_path({str(path)!r}); "
            "heavy = [m for m in ('pyspark', 'pandas', 'catboost', 'sklearn', 'boto3') if m in sys.modules]; "
            "print('HEAVY', heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "HEAVY []" in out.stdout


@pytest.mark.parametrize("dag_id", ["dag_new_data", "dag_app", "dag_bots_test_email"])
def test_policies(dagbag, dag_id: str) -> None:
    dag = dagbag.dags[dag_id]
    assert dag.tags and "loanpipe" in dag.tags
    assert dag.doc_md and len(dag.doc_md) > 50
    assert dag.catchup is False
    for task in dag.tasks:
        assert task.owner and task.owner != "airflow", task.task_id
        assert task.retries >= 1, task.task_id


@pytest.mark.parametrize(
    ("dag_id", "edges"),
    [
        ("dag_new_data", {("build_bundle", "sftp_bundle"), ("sftp_bundle", "spark_submit_data_gen"),
                          ("spark_submit_data_gen", "email_report")}),
        ("dag_app", {("wait_for_batch", "build_bundle"), ("build_bundle", "sftp_bundle"),
                     ("sftp_bundle", "spark_submit_app"), ("spark_submit_app", "email_report")}),
        ("dag_bots_test_email", set()),
    ],
)
def test_tasks_and_edges(dagbag, dag_id: str, edges: set[tuple[str, str]]) -> None:
    dag = dagbag.dags[dag_id]
    got = {(t.task_id, d) for t in dag.tasks for d in t.downstream_task_ids}
    assert got == edges
    assert {t for e in edges for t in e} <= set(dag.task_ids)
    if dag_id == "dag_bots_test_email":
        assert dag.task_ids == ["send_test_message"]


def test_pipeline_dags_run_on_schedules_with_timeouts_and_failure_mail(dagbag) -> None:
    from loanpipe.core.config import load_config
    from loanpipe.orchestration.tasks import notify_failure

    cfg = load_config()
    for dag_id, cron in (("dag_new_data", cfg.airflow.schedule_new_data), ("dag_app", cfg.airflow.schedule_app)):
        dag = dagbag.dags[dag_id]
        assert cron and dag.schedule == cron  # the cron schedule from the configuration
        assert "run_date" in dag.params
        for task in dag.tasks:
            assert task.execution_timeout is not None
            assert task.retry_exponential_backoff
            assert notify_failure in (task.on_failure_callback if isinstance(task.on_failure_callback, list)
                                      else [task.on_failure_callback])
    ssh = dagbag.dags["dag_app"].get_task("spark_submit_app")
    assert ssh.get_pty is True and "exec " in ssh.command and "--run-date {{ params.run_date or ds }}" in ssh.command
    sensor = dagbag.dags["dag_app"].get_task("wait_for_batch")
    assert sensor.mode == "reschedule"
    # the scores deadline rides on dag_app only; both DAGs read their crons in the configured time zone
    [alert] = dagbag.dags["dag_app"].deadline
    assert alert.interval == dt.timedelta(minutes=30) and alert.callback.path.endswith("deadline.scores_late")
    assert not dagbag.dags["dag_new_data"].deadline
    for dag_id in ("dag_new_data", "dag_app"):
        assert str(dagbag.dags[dag_id].timezone) in ("UTC", "Timezone('UTC')") and dagbag.dags[dag_id].end_date is None


def test_in_inbox_mode_dag_new_data_waits_for_the_files_and_lands_them(tmp_path: Path) -> None:
    """batch.source: inbox (set by the environment, as a deployment would): a rescheduling sensor on the inbox,
    then the landing job shipped and run like the others, and the data-late deadline."""
    import json
    import os

    code = ("import json; from airflow.dag_processing.dagbag import DagBag; "
            f"dag = DagBag(dag_folder={str(ROOT / 'dags' / 'dag_new_data.py')!r}).dags"
            "['dag_new_data']; s = dag.get_task('wait_for_applications'); "
            "print(json.dumps({'edges': sorted([t.task_id, d] for t in dag.tasks for d in t.downstream_task_ids), "
            "'mode': s.mode, 'command': dag.get_task('spark_submit_land').command, "
            "'deadline': [a.callback.path for a in dag.deadline]}))")
    env = {**os.environ, "LOANPIPE__BATCH__SOURCE": "inbox", "LOANPIPE__BATCH__INBOX": str(tmp_path / "inbox")}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-3000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["edges"] == [["build_bundle", "sftp_bundle"], ["sftp_bundle", "spark_submit_land"],
                            ["spark_submit_land", "email_report"], ["wait_for_applications", "build_bundle"]]
    assert got["mode"] == "reschedule" and "--py-files loanpipe.zip land.py --run-date" in got["command"]
    assert got["deadline"] == ["loanpipe.orchestration.deadline.applications_late"]
