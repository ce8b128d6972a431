"""The entry scripts' shared ending: the process exits with the job's code even when threads are left behind."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# A job that leaves a non-daemon thread running forever, as catboost-spark's driver does after fit
# (catboost/catboost#2151): without a hard exit the interpreter waits for it and never ends.
STUCK = """
import sys, threading, time
from loanpipe.jobs.cli import exit_after
threading.Thread(target=lambda: time.sleep(3600)).start()
def main():
    print("summary")
    {body}
exit_after(main)
"""


@pytest.mark.parametrize(("body", "code"), [("return 0", 0), ("return 2", 2), ("raise RuntimeError('boom')", 1),
                                            ("sys.exit(3)", 3)])
def test_the_process_ends_with_the_jobs_code_despite_a_stuck_thread(body: str, code: int) -> None:
    out = subprocess.run([sys.executable, "-c", STUCK.format(body=body)], capture_output=True, text=True, timeout=60,
                         cwd=ROOT)
    assert out.returncode == code
    assert out.stdout.strip() == "summary"  # flushed before the exit
    assert ("RuntimeError: boom" in out.stderr) == (code == 1)


@pytest.mark.spark
def test_the_spark_session_is_stopped_before_the_exit(tmp_path: Path) -> None:
    marker = tmp_path / "stopped"
    script = f"""
from pyspark.sql import SparkSession
from loanpipe.jobs.cli import exit_after
spark = SparkSession.builder.master("local[1]").config("spark.ui.enabled", "false").getOrCreate()
stop = spark.stop
def stop_and_mark():
    stop()
    open({str(marker)!r}, "w").write("yes")
spark.stop = stop_and_mark
exit_after(lambda: 0)
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    assert marker.read_text() == "yes"
