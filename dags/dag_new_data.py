"""### dag_new_data: the day's batch of new applications

`batch.source: emulated` (the default):

1. **build_bundle**: this release's code as a versioned tarball (entry scripts + `loanpipe.zip` + conf).
2. **sftp_bundle**: SFTP it to the Spark cluster's master node (`cluster.remote_dir/releases/`).
3. **spark_submit_data_gen**: over SSH, `spark-submit data_gen.py --run-date <date>` samples 10% of `test/`
   (new rows only) into `test_sample/run_date=<date>/`, and lands their outcomes `outcomes.lag_days` later.
4. **email_report**: rows, when the outcomes arrive, repeated rows, output path, duration.

`batch.source: inbox`: **wait_for_applications** (a sensor in reschedule mode: no worker slot while it waits)
until `batch.inbox/applications/` holds a file, then build, SFTP, and **spark_submit_land** (`land.py`: the
application files, then the outcome files that arrived, moved to `processed/<date>/`), then the report. No file
by `airflow.applications_deadline`: the data-late alert (email + `artifacts/alerts/<date>/`).

Runs on `airflow.schedule_new_data` (before the scoring DAG). Trigger by hand with `run_date` to (re)make
any date's batch: a rerun replaces exactly that date's partition. Failures email the failing task and its log.
"""

from __future__ import annotations

from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG, Param

from loanpipe.orchestration import shipping
from loanpipe.orchestration import tasks as orch
from loanpipe.orchestration.deadline import applications_deadline_alert
from loanpipe.core.config import load_config

CFG = load_config()

with DAG(
    dag_id="dag_new_data",
    schedule=CFG.airflow.schedule_new_data,
    start_date=orch.start_date(CFG),
    end_date=orch.end_date(CFG),
    catchup=False,
    max_active_runs=1,
    deadline=applications_deadline_alert(CFG),
    default_args=orch.dag_defaults(CFG),
    params={"run_date": Param(None, type=["null", "string"], format="date",
                              description="Date of the batch (YYYY-MM-DD); empty = the run's logical date")},
    doc_md=__doc__,
    tags=["loanpipe", "data"],
):
    if CFG.batch.source == "inbox":
        wait = orch.wait_for("wait_for_applications", orch.applications_arrived, CFG)
        build, upload, run = shipping.ship_and_submit(CFG, "land")
        wait >> build
    else:
        build, upload, run = shipping.ship_and_submit(CFG, "data_gen")
    report = PythonOperator(task_id="email_report", python_callable=orch.send_data_gen_report)

    build >> upload >> run >> report
