"""The README's main command in S3 mode, as a user runs it (`make run-s3` = `STORAGE=s3 scripts/run_pipeline.sh`),
then `make scores` (`python -m loanpipe.dev.stack scores`) after the stack is down: both exit 0 with their output,
and each DAG ran exactly once for the date."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest


pytestmark = [pytest.mark.slow, pytest.mark.e2e, pytest.mark.timeout(2400)]
ROOT = Path(__file__).resolve().parents[2]
PY = sys.executable
PORTS = {"LOANPIPE_SSH_PORT": "2234", "LOANPIPE_SMTP_PORT": "1034", "LOANPIPE_AIRFLOW_PORT": "28094",
         "LOANPIPE_S3_PORT": "19039", "LOANPIPE_STACK_QUICK_MODEL": "1",
         "LOANPIPE__SYNTHETIC__ROWS": "6000"}  # the demo lake, smaller
DAY = "2026-11-20"


def test_run_s3_then_scores(clean_env, tmp_path) -> None:  # noqa: ANN001
    stack_dir = ROOT / "var" / f"main-stack-{os.getpid()}"
    shutil.rmtree(stack_dir, ignore_errors=True)
    env = {**clean_env(), **PORTS, "LOANPIPE_STACK_DIR": str(stack_dir), "STORAGE": "s3"}
    try:
        run = subprocess.run(["scripts/run_pipeline.sh", DAY], env=env, capture_output=True, text=True, timeout=2000,
                             cwd=ROOT)
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
        result = json.loads(run.stdout[run.stdout.index("{\n"):])
        assert result["run_date"] == DAY and result["storage"].startswith("bucket loanpipe")
        assert result["runs_per_dag"] == {"dag_new_data": 1, "dag_app": 1}
        assert [r["state"] for r in result["dag_runs"]] == ["success", "success"]
        status = json.loads(subprocess.run([PY, "-m", "loanpipe.dev.stack", "status"], env=env, capture_output=True,
                                           text=True, timeout=60, cwd=ROOT, check=True).stdout)
        assert set(status["services"].values()) == {"stopped"}  # `make run` leaves nothing running
        out = tmp_path / "scores.csv"
        scores = subprocess.run([PY, "-m", "loanpipe.dev.stack", "scores", "--date", DAY, "--out", str(out)], env=env,
                                capture_output=True, text=True, timeout=300, cwd=ROOT)
        assert scores.returncode == 0, scores.stderr[-2000:]
        df = pd.read_csv(io.StringIO(out.read_text()))
        assert list(df.columns) == ["id", "p_default", "grade", "decision", "model_version", "scored_at"]
        assert len(df) == 180
        declines = subprocess.run([PY, "-m", "loanpipe.dev.stack", "scores", "--date", DAY, "--grade", "9-10",
                                   "--with-reasons"], env=env, capture_output=True, text=True, timeout=300, cwd=ROOT)
        assert declines.returncode == 0, declines.stderr[-2000:]
        worst = pd.read_csv(io.StringIO(declines.stdout))
        assert {"reason_1", "reason_4"} <= set(worst.columns) and set(worst["grade"]) <= {9, 10}
        assert len(worst) == int(df["grade"].isin([9, 10]).sum()) > 0
        assert worst["p_default"].is_monotonic_decreasing and worst["reason_1"].notna().all()
        status = json.loads(subprocess.run([PY, "-m", "loanpipe.dev.stack", "status"], env=env, capture_output=True,
                                           text=True, timeout=60, cwd=ROOT, check=True).stdout)
        assert status["services"]["minio"] == "stopped"  # the fetch brought it up and down again
    finally:
        subprocess.run([PY, "-m", "loanpipe.dev.stack", "stop"], env=env, capture_output=True, timeout=300, cwd=ROOT)
        shutil.rmtree(stack_dir, ignore_errors=True)
