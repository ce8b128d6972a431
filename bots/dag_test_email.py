"""Sends a "Testing success" email through the `smtp_default` connection: checks that mail delivery works.

Trigger it by hand after setting up the SMTP connection and `LOANPIPE_MAIL_TO`.
"""

from __future__ import annotations

import datetime as dt

from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG


def send_test_message() -> str:
    from bots.mail import send_mail

    subject = "[loanpipe] Testing success"
    send_mail(subject, "<p>Testing success: the pipeline's mail delivery works.</p>")
    return subject


with DAG(
    dag_id="dag_bots_test_email",
    schedule=None,
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    doc_md=__doc__,
    tags=["loanpipe", "bots"],
    default_args={"owner": "risk-ml", "retries": 1, "retry_delay": dt.timedelta(seconds=30)},
):
    PythonOperator(task_id="send_test_message", python_callable=send_test_message)
