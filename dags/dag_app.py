"""### dag_app: score the day's batch, evaluate, retrain a challenger, promote, report

1. **wait_for_batch**: waits (reschedule mode) until `test_sample/run_date=<date>/` is published.
2. **build_bundle** / **sftp_bundle**: ship this release's code to the master node.
3. **spark_submit_app**: over SSH, `spark-submit --packages <catboost-spark> app.py --run-date <date>`:
   scores with the champion into `test_sample_inference/run_date=<date>/`, evaluates, rebuilds `train_sup/`,
   trains a challenger and promotes it only if the paired DeLong test says it is better.
4. **email_report**: HTML with the metrics, the champion/challenger decision and p-value, drift, the ROC curve
   inline and where the scores are; the subject says OK or ALERT (AUC under `model.auc_floor`).

Runs on `airflow.schedule_app`, after the new-data DAG. Trigger by hand with `run_date` to rescore a date.
A scheduled date whose scores are not published by `airflow.scores_deadline` raises a LATE alert at that minute
(an Airflow Deadline Alert: it fires when the run is stuck too), naming the task that holds the date up.
"""

from __future__ import annotations

from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG, Param

from loanpipe.orchestration import shipping
from loanpipe.orchestration import tasks as orch
from loanpipe.orchestration.deadline import scores_deadline_alert
from loanpipe.core.config import load_config

CFG = load_config()

with DAG(
    dag_id="dag_app",
    schedule=CFG.airflow.schedule_app,
    start_date=orch.start_date(CFG),
    end_date=orch.end_date(CFG),
    catchup=False,
    max_active_runs=1,
    deadline=scores_deadline_alert(CFG.airflow),
    default_args=orch.dag_defaults(CFG),
    params={"run_date": Param(None, type=["null", "string"], format="date",
                              description="Date to score (YYYY-MM-DD); empty = the run's logical date")},
    doc_md=__doc__,
    tags=["loanpipe", "model"],
):
    wait = orch.wait_for("wait_for_batch", orch.batch_ready, CFG)
    build, upload, run = shipping.ship_and_submit(CFG, "app")
    report = PythonOperator(task_id="email_report", python_callable=orch.send_app_report)

    wait >> build >> upload >> run >> report
