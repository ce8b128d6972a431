"""The README's main command in S3 mode, as a user runs it, and what S3 mode promises, on one stack:

* `make run-s3` (= `STORAGE=s3 scripts/run_pipeline.sh`: both DAGs through the real scheduler, the lake in a
  bucket on a real S3-compatible server, MinIO), then `make scores` (`python -m loanpipe.dev.stack scores`) after
  the stack is down: both exit 0 with their output, and each DAG ran exactly once for the date.
* The screenshot script photographs that same run (the stack's services started again on its folder, headless
  Chromium) and produces every image it promises, at the browser's viewport size, not blank.
* Everything landed in the bucket: Spark on the node read and wrote s3a://, Airflow read the summaries with keys
  from its own connection (its processes have none in their environment), the scoring tasks read the batch from
  the bucket; the S3 secret is in no mail, log or config file.
* Wrong keys on the node fail the job clearly (`airflow dags test`, the real task runner) and publish nothing.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml


pytestmark = [pytest.mark.slow, pytest.mark.e2e, pytest.mark.timeout(2400)]
ROOT = Path(__file__).resolve().parents[2]
PY = sys.executable
PORTS = {"LOANPIPE_SSH_PORT": "2234", "LOANPIPE_SMTP_PORT": "1034", "LOANPIPE_AIRFLOW_PORT": "28094",
         "LOANPIPE_S3_PORT": "19039", "LOANPIPE_STACK_QUICK_MODEL": "1",
         "LOANPIPE__SYNTHETIC__ROWS": "6000"}  # the demo lake, smaller
DAY, D2 = "2026-11-20", "2026-11-21"


def services(env: dict[str, str]) -> dict[str, str]:
    """`python -m loanpipe.dev.stack status`'s services: name -> running | stopped."""
    out = subprocess.run([PY, "-m", "loanpipe.dev.stack", "status"], env=env, capture_output=True, text=True,
                         timeout=60, cwd=ROOT, check=True)
    return json.loads(out.stdout)["services"]


@pytest.fixture(scope="module")
def made(clean_env) -> dict:  # noqa: ANN001 - a fixture
    """`make run-s3` for DAY in a stack folder of its own (removed after the module)."""
    stack_dir = ROOT / "var" / f"main-stack-{os.getpid()}"
    shutil.rmtree(stack_dir, ignore_errors=True)
    # Airflow's processes get no AWS keys from the environment: they must use their connection (loanpipe_s3).
    base = {k: v for k, v in clean_env().items() if k not in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    env = {**base, **PORTS, "LOANPIPE_STACK_DIR": str(stack_dir), "STORAGE": "s3"}
    try:
        run = subprocess.run(["scripts/run_pipeline.sh", DAY], env=env, capture_output=True, text=True, timeout=2000,
                             cwd=ROOT)
        yield {"env": env, "run": run, "dir": stack_dir}
    finally:
        subprocess.run([PY, "-m", "loanpipe.dev.stack", "stop"], env=env, capture_output=True, timeout=300, cwd=ROOT)
        shutil.rmtree(stack_dir, ignore_errors=True)


def test_run_s3_then_scores(made: dict, tmp_path: Path) -> None:
    env, run = made["env"], made["run"]
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    result = json.loads(run.stdout[run.stdout.index("{\n"):])
    assert result["run_date"] == DAY and result["storage"].startswith("bucket loanpipe")
    assert result["runs_per_dag"] == {"dag_new_data": 1, "dag_app": 1}
    assert [r["state"] for r in result["dag_runs"]] == ["success", "success"]
    status = services(env)
    assert set(status.values()) == {"stopped"}  # `make run` leaves nothing running
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
    status = services(env)
    assert status["minio"] == "stopped"  # the fetch brought it up and down again


def png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", path
    return struct.unpack(">II", head[16:24])


@pytest.mark.skipif(not Path("/usr/bin/chromium").exists(), reason="Debian's chromium is not installed "
                    "(scripts/bootstrap.sh installs it)")
def test_take_screens_of_that_run_produces_every_image(made: dict, tmp_path: Path) -> None:
    sys.path.insert(0, str(ROOT / "scripts"))
    from take_screens import HEIGHT, SHOTS, WIDTH

    env, out = made["env"], tmp_path / "screens"
    assert made["run"].returncode == 0, "`make run-s3` failed: see test_run_s3_then_scores"
    shots = subprocess.run([PY, "scripts/take_screens.py", "--from-run", "--date", DAY, "--out", str(out)], env=env,
                           capture_output=True, text=True, timeout=1200, cwd=ROOT)
    assert shots.returncode == 0, shots.stdout[-3000:] + shots.stderr[-3000:]
    secret = json.loads((Path(env["LOANPIPE_STACK_DIR"]) / "s3" / "credentials.json").read_text())["secret_key"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["run_date"] == DAY and manifest["storage"].startswith("bucket loanpipe")
    assert manifest["runs_per_dag"] == {"dag_new_data": 1, "dag_app": 1}  # the one run, not made again
    assert sorted(p.name for p in out.glob("*.png")) == sorted(SHOTS)
    for name in SHOTS:
        path = out / name
        width, height = png_size(path)
        if name in ("08_score_histogram.png", "09_trend.png"):  # the run's own plots, copied from the bucket
            assert width >= 400 and height >= 300, name
        else:
            assert (width, height) == (WIDTH, HEIGHT), (name, width, height)
        assert path.stat().st_size > 15_000, f"{name} looks blank ({path.stat().st_size} bytes)"
    # the script's own output and manifest never carry the S3 secret it logged in with
    assert secret not in shots.stdout + shots.stderr + (out / "manifest.json").read_text()
    status = services(env)
    assert set(status.values()) == {"stopped"}  # and it stopped the stack again


@pytest.fixture(scope="module")
def up(made: dict) -> dict:
    """The same stack's sshd, SMTP and S3 servers up again (no Airflow services: `airflow dags test` runs the
    DAG itself), with the environment Airflow's commands get and the bucket's keys."""
    assert made["run"].returncode == 0, "`make run-s3` failed: see test_run_s3_then_scores"
    started = subprocess.run([PY, "-m", "loanpipe.dev.stack", "start", "--no-airflow", "--storage", "s3"],
                             env=made["env"], capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert started.returncode == 0, started.stderr[-3000:]
    stack_env = json.loads(subprocess.run([PY, "-m", "loanpipe.dev.stack", "env", "--json"], env=made["env"],
                                          capture_output=True, text=True, timeout=60, cwd=ROOT, check=True).stdout)
    env = {**made["env"], **stack_env}
    assert "AWS_SECRET_ACCESS_KEY" not in env
    keys = json.loads((made["dir"] / "s3" / "credentials.json").read_text())
    return {"env": env, "dir": made["dir"], "keys": keys,
            "aws": {"AWS_ACCESS_KEY_ID": keys["access_key"], "AWS_SECRET_ACCESS_KEY": keys["secret_key"]}}


def fetch(stack: dict, *args: str) -> subprocess.CompletedProcess:
    env = {**stack["env"], **stack["aws"], "LOANPIPE_CONFIG": str(stack["dir"] / "conf.yaml")}
    return subprocess.run([PY, "-m", "loanpipe.jobs.fetch_scores", *args], env=env, capture_output=True, text=True,
                          timeout=120, cwd=ROOT)


def test_the_run_kept_everything_in_the_bucket_and_the_secret_nowhere(mails, html_of, up: dict) -> None:
    from loanpipe.core import catalog
    from loanpipe.core.config import load_config
    from loanpipe.core.storage import S3Credentials, open_lake

    # everything landed in the bucket, nothing in the local lake folder
    assert not (up["dir"] / "lake").exists() or not any((up["dir"] / "lake").rglob("*.parquet"))
    out = fetch(up, "--latest")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "id,p_default,grade,decision,model_version,scored_at" and len(lines) == 181
    assert f"fetched 180 scores of {DAY} from s3a://loanpipe/lake/test_sample_inference/run_date={DAY}" in out.stderr
    # the scoring tasks read the batch from the bucket themselves (pyarrow's S3 filesystem, the driver's keys)
    lake = open_lake(load_config(up["dir"] / "conf.yaml", environ={}).storage,
                     S3Credentials(up["keys"]["access_key"], up["keys"]["secret_key"]))
    assert lake.read_json(catalog.run_artifact(lake, DAY, catalog.RUN_SUMMARY))["scores"]["read_by"] == \
        "scoring tasks (pyarrow)"

    received = mails(up["env"])
    report = next(m for m in received if f"scoring {DAY}" in m["Subject"])
    body = html_of(report)
    assert f"s3a://loanpipe/lake/test_sample_inference/run_date={DAY}" in body and "expected default rate" in body
    assert "no outcome has matured yet" in body  # the first date: nothing to backtest
    assert any(p.get("Content-ID") == "<trend.png>" for p in report.walk())  # read from the bucket by Airflow
    # the secret key is nowhere: not in mails, not in task logs, not in the stack's config
    secret = up["keys"]["secret_key"]
    assert not any(secret in m.as_string() for m in received)
    logs = list((up["dir"] / "airflow").rglob("*.log")) + list((up["dir"] / "logs").glob("*.log"))
    assert any("spark_submit_app" in str(f) for f in logs)  # the task logs are among them
    assert not any(secret in f.read_text(errors="replace") for f in logs)
    assert secret not in (up["dir"] / "conf.yaml").read_text()


def test_wrong_keys_on_the_node_fail_clearly_and_publish_nothing(dags_test, mails, html_of, up: dict) -> None:
    env_file = Path(yaml.safe_load((up["dir"] / "conf.yaml").read_text())["cluster"]["env_file"])  # its own
    assert env_file.parent == Path("/home/loanpipe/.config/loanpipe")
    good = env_file.read_text()
    env_file.write_text(good.replace(up["keys"]["secret_key"], "wrong-secret-0123456789abcdef"))
    try:
        before = len(mails(up["env"]))
        assert dags_test(up["env"], "dag_new_data", D2) == "failed"
        new = mails(up["env"])[before:]
        failure = [m for m in new if "FAILED dag_new_data.spark_submit_data_gen" in m["Subject"]]
        assert failure, [m["Subject"] for m in new]
        assert "exit status = 2" in html_of(failure[-1])  # data_gen's "bad input / storage" exit code
        log = (up["dir"] / "logs" / f"dags-test-dag_new_data-{D2}.log").read_text()
        assert "access denied to bucket loanpipe (lake s3a://loanpipe/lake)" in log and "AWS_ACCESS_KEY_ID" in log, \
            log[-3000:]
        assert "wrong-secret" not in log and "wrong-secret" not in html_of(failure[-1])
    finally:
        env_file.write_text(good)
    missing = fetch(up, "--date", D2)
    assert missing.returncode == 2 and "does not exist" in missing.stderr  # nothing was published for D2
