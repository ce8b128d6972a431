"""What the end-to-end tests share: a clean environment for the stack's processes, and readers of what a run
leaves (the mail folder, an email's HTML, `airflow dags test`'s outcome)."""

from __future__ import annotations

import json
import mailbox
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
AIRFLOW = str(Path(sys.executable).with_name("airflow"))


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "LOANPIPE", "PYSPARK"))}
    return env


def _dags_test(env: dict[str, str], dag_id: str, run_date: str) -> str:
    out = subprocess.run([AIRFLOW, "dags", "test", dag_id, run_date, "-c", json.dumps({"run_date": run_date})],
                         env=env, capture_output=True, text=True, timeout=1200, cwd=ROOT)
    text = out.stdout + out.stderr
    Path(env["LOANPIPE_STACK_DIR"], "logs", f"dags-test-{dag_id}-{run_date}.log").write_text(text)
    finished = [ln for ln in text.splitlines() if "DagRun Finished" in ln]
    assert finished, text[-4000:]
    return "success" if "state=success" in finished[-1] else "failed"


def _mails(env: dict[str, str]) -> list:
    box = mailbox.Maildir(str(Path(env["LOANPIPE_STACK_DIR"]) / "mail" / "Maildir"), factory=None, create=False)
    return sorted(box, key=lambda m: m["Date"] or "")


def _html_of(msg) -> str:  # noqa: ANN001
    return next(p.get_payload(decode=True).decode() for p in msg.walk() if p.get_content_type() == "text/html")


@pytest.fixture(scope="session")
def clean_env() -> Callable[[], dict[str, str]]:
    """This process's environment without Airflow's, the project's and PySpark's variables: a stack's own base."""
    return _clean_env


@pytest.fixture(scope="session")
def dags_test() -> Callable[[dict[str, str], str, str], str]:
    """``airflow dags test DAG DATE`` in a stack's environment: "success" or "failed" (its log kept in the stack)."""
    return _dags_test


@pytest.fixture(scope="session")
def mails() -> Callable[[dict[str, str]], list]:
    """The messages a stack's SMTP server stored, oldest first."""
    return _mails


@pytest.fixture(scope="session")
def html_of() -> Callable[[object], str]:
    """The HTML part of a message."""
    return _html_of
