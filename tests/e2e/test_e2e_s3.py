"""End to end in S3 mode: the same stack (real sshd, SMTP, Airflow's task runner) with the lake in a bucket on
a real S3-compatible server (MinIO). Spark on the node reads and writes s3a://, Airflow reads the summaries with
keys from its own connection, the business fetches the scores from the bucket.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest


pytestmark = [pytest.mark.slow, pytest.mark.e2e, pytest.mark.timeout(2400)]
ROOT = Path(__file__).resolve().parents[2]
PY = sys.executable
AIRFLOW = str(Path(PY).with_name("airflow"))
PORTS = {"LOANPIPE_SSH_PORT": "2232", "LOANPIPE_SMTP_PORT": "1032", "LOANPIPE_AIRFLOW_PORT": "28092",
         "LOANPIPE_S3_PORT": "19035", "LOANPIPE_STACK_STORAGE": "s3", "LOANPIPE_STACK_QUICK_MODEL": "1"}
D1, D2 = "2026-11-20", "2026-11-21"


@pytest.fixture(scope="module")
def stack(clean_env):
    stack_dir = ROOT / "var" / f"e2e-s3-stack-{os.getpid()}"
    shutil.rmtree(stack_dir, ignore_errors=True)
    # Airflow's processes get no AWS keys from the environment: they must use their connection (loanpipe_s3).
    base = {**{k: v for k, v in clean_env().items() if k not in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")},
            **PORTS, "LOANPIPE_STACK_DIR": str(stack_dir)}
    try:
        yield _setup(base, stack_dir)
    finally:  # also when the set-up failed half-way: no server is left behind
        subprocess.run([PY, "-m", "loanpipe.dev.stack", "stop"], env=base, capture_output=True, timeout=300, cwd=ROOT)
        if os.environ.get("LOANPIPE_KEEP_E2E") != "1":
            shutil.rmtree(stack_dir, ignore_errors=True)


def _setup(base: dict[str, str], stack_dir: Path) -> dict:
    out = subprocess.run([PY, "-m", "loanpipe.dev.stack", "start", "--no-airflow"], env=base, capture_output=True,
                         text=True, timeout=900, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-3000:]
    assert json.loads(out.stdout)["lake"] == "s3a://loanpipe/lake"
    stack_env = json.loads(subprocess.run([PY, "-m", "loanpipe.dev.stack", "env", "--json"], env=base,
                                          capture_output=True, text=True, timeout=60, cwd=ROOT, check=True).stdout)
    keys = json.loads((stack_dir / "s3" / "credentials.json").read_text())
    aws = {"AWS_ACCESS_KEY_ID": keys["access_key"], "AWS_SECRET_ACCESS_KEY": keys["secret_key"]}
    env = {**base, **stack_env}
    assert "AWS_SECRET_ACCESS_KEY" not in env
    ingest = subprocess.run([PY, "-m", "loanpipe.jobs.ingest", "--rows", "6000"], env={**env, **aws}, capture_output=True,
                            text=True, timeout=600, cwd=ROOT)
    assert ingest.returncode == 0, ingest.stderr[-3000:]
    subprocess.run([AIRFLOW, "db", "migrate"], env=env, check=True, capture_output=True, timeout=600, cwd=ROOT)
    return {"env": env, "aws": aws, "keys": keys, "dir": stack_dir}


def fetch(stack: dict, *args: str) -> subprocess.CompletedProcess:
    env = {**stack["env"], **stack["aws"], "LOANPIPE_CONFIG": str(stack["dir"] / "conf.yaml")}
    return subprocess.run([PY, "-m", "loanpipe.jobs.fetch_scores", *args], env=env, capture_output=True, text=True,
                          timeout=120, cwd=ROOT)


def test_both_dags_end_to_end_on_s3(dags_test, mails, html_of, record_timing, stack: dict) -> None:
    env = stack["env"]
    started = time.monotonic()
    assert dags_test(env, "dag_new_data", D1) == "success"
    assert dags_test(env, "dag_app", D1) == "success"
    record_timing("s3", time.monotonic() - started)

    # everything landed in the bucket, nothing in the local lake folder
    assert not (stack["dir"] / "lake").exists() or not any((stack["dir"] / "lake").rglob("*.parquet"))
    out = fetch(stack, "--latest")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "id,p_default,grade,decision,model_version,scored_at" and len(lines) == 181
    assert f"fetched 180 scores of {D1} from s3a://loanpipe/lake/test_sample_inference/run_date={D1}" in out.stderr
    # the scoring tasks read the batch from the bucket themselves (pyarrow's S3 filesystem, the driver's keys)
    from loanpipe.core import catalog
    from loanpipe.core.config import load_config
    from loanpipe.core.storage import S3Credentials, open_lake

    lake = open_lake(load_config(stack["dir"] / "conf.yaml", environ={}).storage,
                     S3Credentials(stack["keys"]["access_key"], stack["keys"]["secret_key"]))
    assert lake.read_json(catalog.run_artifact(lake, D1, catalog.RUN_SUMMARY))["scores"]["read_by"] == \
        "scoring tasks (pyarrow)"

    received = mails(env)
    report = next(m for m in received if f"scoring {D1}" in m["Subject"])
    body = html_of(report)
    assert f"s3a://loanpipe/lake/test_sample_inference/run_date={D1}" in body and "ROC AUC" in body
    assert any(p.get("Content-ID") == "<roc.png>" for p in report.walk())  # read from the bucket
    # the secret key is nowhere: not in mails, not in task logs, not in the stack's config
    secret = stack["keys"]["secret_key"]
    assert not any(secret in m.as_string() for m in received)
    logs = [f for f in (stack["dir"] / "airflow").rglob("*.log")] + list((stack["dir"] / "logs").glob("*.log"))
    assert logs and not any(secret in f.read_text(errors="replace") for f in logs)
    assert secret not in (stack["dir"] / "conf.yaml").read_text()


def test_wrong_keys_on_the_node_fail_clearly_and_publish_nothing(dags_test, mails, html_of, stack: dict) -> None:
    env_file = Path("/home/loanpipe/.config/loanpipe/s3.env")
    good = env_file.read_text()
    env_file.write_text(good.replace(stack["keys"]["secret_key"], "wrong-secret-0123456789abcdef"))
    try:
        before = len(mails(stack["env"]))
        assert dags_test(stack["env"], "dag_new_data", D2) == "failed"
        new = mails(stack["env"])[before:]
        failure = [m for m in new if "FAILED dag_new_data.spark_submit_data_gen" in m["Subject"]]
        assert failure, [m["Subject"] for m in new]
        assert "exit status = 2" in html_of(failure[-1])  # data_gen's "bad input / storage" exit code
        log = (stack["dir"] / "logs" / f"dags-test-dag_new_data-{D2}.log").read_text()
        assert "access denied to bucket loanpipe (lake s3a://loanpipe/lake)" in log and "AWS_ACCESS_KEY_ID" in log, log[-3000:]
        assert "wrong-secret" not in log and "wrong-secret" not in html_of(failure[-1])
    finally:
        env_file.write_text(good)
    missing = fetch(stack, "--date", D2)
    assert missing.returncode == 2 and "does not exist" in missing.stderr  # nothing was published for D2
