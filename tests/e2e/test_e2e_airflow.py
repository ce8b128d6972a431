"""End to end through real parts: an OpenSSH server standing in for the master node, a real SMTP server, Airflow.

Both DAGs run for a date (`airflow dags test`: the real task runner, SFTP, SSH and SMTP); then the faults
(remote job fails, SSH server down), the kill/timeout behaviour of the SSH task, and one DAG through the real
scheduler and REST API. The stack lives in a temporary folder on its own ports.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

pytestmark = [pytest.mark.slow, pytest.mark.e2e, pytest.mark.timeout(2400)]
ROOT = Path(__file__).resolve().parents[2]
PY = sys.executable
AIRFLOW = str(Path(PY).with_name("airflow"))
PORTS = {"LOANPIPE_SSH_PORT": "2231", "LOANPIPE_SMTP_PORT": "1031", "LOANPIPE_AIRFLOW_PORT": "28091",
         "LOANPIPE_S3_PORT": "19031", "LOANPIPE_STACK_STORAGE": "local", "LOANPIPE_STACK_QUICK_MODEL": "1"}
D1, D2, D3 = "2026-11-20", "2026-11-21", "2026-11-22"


@pytest.fixture(scope="module")
def stack(clean_env):
    # Inside the clone, not pytest's private tmp: the node's user must reach the lake (pytest's tmp is 0700).
    stack_dir = ROOT / "var" / f"e2e-stack-{os.getpid()}"
    shutil.rmtree(stack_dir, ignore_errors=True)
    base = {**clean_env(), **PORTS, "LOANPIPE_STACK_DIR": str(stack_dir)}
    out = subprocess.run([PY, "-m", "loanpipe.dev.stack", "start", "--no-airflow"], env=base, capture_output=True,
                         text=True, timeout=900, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-3000:]
    stack_env = json.loads(subprocess.run([PY, "-m", "loanpipe.dev.stack", "env", "--json"], env=base, capture_output=True,
                                          text=True, timeout=60, cwd=ROOT, check=True).stdout)
    env = {**base, **stack_env}
    ingest = subprocess.run([PY, "-m", "loanpipe.jobs.ingest", "--rows", "6000"], env=env, capture_output=True, text=True,
                            timeout=600, cwd=ROOT)
    assert ingest.returncode == 0, ingest.stderr[-3000:]
    subprocess.run([PY, "-c", "from loanpipe.dev import node; node.give_lake_to_node()"], env=base, check=True, cwd=ROOT)
    subprocess.run([AIRFLOW, "db", "migrate"], env=env, check=True, capture_output=True, timeout=600, cwd=ROOT)
    yield env
    subprocess.run([PY, "-m", "loanpipe.dev.stack", "stop"], env=base, capture_output=True, timeout=300, cwd=ROOT)
    if os.environ.get("LOANPIPE_KEEP_E2E") != "1":
        shutil.rmtree(stack_dir, ignore_errors=True)


def lake(env: dict[str, str]) -> Path:
    return Path(env["LOANPIPE_STACK_DIR"]) / "lake"


def test_airflow_waits_for_the_sqlite_lock(stack: dict[str, str]) -> None:
    # the stack's Airflow processes wait 60 s for SQLite's write lock, not Python's 5 s (a backfill lost that race)
    probe = ("from airflow import settings; c = settings.engine.raw_connection(); "
             "print(c.cursor().execute('PRAGMA busy_timeout').fetchone()[0])")
    out = subprocess.run([PY, "-c", probe], env=stack, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split()[-1] == "60000"


def test_both_dags_end_to_end(dags_test, mails, html_of, stack: dict[str, str]) -> None:
    started_wall = time.time()
    assert dags_test(stack, "dag_new_data", D1) == "success"
    assert dags_test(stack, "dag_app", D1) == "success"
    root = lake(stack)
    batch = pd.read_parquet(root / "test_sample" / f"run_date={D1}")
    scores = pd.read_parquet(root / "test_sample_inference" / f"run_date={D1}")
    assert len(scores) == len(batch) == 180
    assert set(scores.columns) == {"id", "p_default", "grade", "decision", "model_version", "scored_at",
                                   "reason_1", "reason_2", "reason_3", "reason_4"}
    summary = json.loads((root / "artifacts" / "runs" / D1 / "summary.json").read_text())
    assert summary["scores"]["rows"] == 180 and summary["daily"]["rows"] == 180
    assert summary["evaluation"]["rows"] == 0 and summary["challenger"]["version"] is None  # no outcome yet
    meta_dir = root / "artifacts" / "models" / summary["champion"]["version"]
    shipped = json.loads((meta_dir / "metadata.json").read_text())["code_version"]  # the shipped release ran
    # this test's release went over SFTP to the node's home (now, not in an earlier run) and ran as the node's user
    remote_dir = Path(yaml.safe_load(Path(stack["LOANPIPE_CONFIG"]).read_text())["cluster"]["remote_dir"])
    assert remote_dir.parent == Path("/home/loanpipe")  # the stack's own folder in the node's home
    tarball = remote_dir / "releases" / f"{shipped}.tar.gz"
    assert tarball.is_file() and tarball.stat().st_mtime >= started_wall - 1, tarball
    node_uid = __import__("pwd").getpwnam("loanpipe").pw_uid
    for written in (root / "test_sample_inference" / f"run_date={D1}" / "_SUCCESS", meta_dir / "metadata.json"):
        assert written.stat().st_uid == node_uid, written  # made by the job, on the node, as its user

    received = mails(stack)
    subjects = [m["Subject"] for m in received]
    assert any(s.startswith(f"[loanpipe] OK new data {D1}: 180 rows") for s in subjects), subjects
    report = next(m for m in received if f"scoring {D1}" in m["Subject"])
    assert report["Subject"].startswith(("[loanpipe] OK scoring", "[loanpipe] ALERT scoring"))
    body = html_of(report)
    for needle in ("expected default rate", "no outcome has matured yet", f"run_date={D1}", "PSI"):
        assert needle in body, needle
    secrets = [Path(stack["LOANPIPE_STACK_DIR"], "ssh", "client_ed25519").read_text().splitlines()[1],
               json.loads(stack["AIRFLOW_CONN_LOANPIPE_SSH"])["extra"]["host_key"].split()[1][:40], "BEGIN OPENSSH"]
    for msg in received:
        raw = msg.as_string()
        assert not any(s in raw for s in secrets)


def test_remote_job_failure_fails_the_task_and_publishes_nothing(dags_test, mails, html_of, stack: dict[str, str]) -> None:
    root = lake(stack)
    hidden = root / "_test_hidden"
    shutil.move(root / "test", hidden)  # data_gen on the node now exits 2: "test/ is missing or empty"
    try:
        before = len(mails(stack))
        assert dags_test(stack, "dag_new_data", D2) == "failed"
        assert not (root / "test_sample" / f"run_date={D2}").exists()
        new = mails(stack)[before:]
        failure = [m for m in new if "FAILED dag_new_data.spark_submit_data_gen" in m["Subject"]]
        assert failure, [m["Subject"] for m in new]
        assert "SSH operator error: exit status = 2" in html_of(failure[-1])  # the job's own exit code: bad input
    finally:
        shutil.move(hidden, root / "test")


def test_ssh_server_down_retries_then_fails_with_an_email(dags_test, mails, stack: dict[str, str]) -> None:
    base = {k: v for k, v in stack.items() if not k.startswith("AIRFLOW")}
    subprocess.run([PY, "-c", "from loanpipe.dev import local; local.stop_process('sshd')"], env=base, check=True, cwd=ROOT)
    try:
        before = len(mails(stack))
        assert dags_test(stack, "dag_new_data", D3) == "failed"
        new = mails(stack)[before:]
        failure = [m["Subject"] for m in new if "FAILED dag_new_data.sftp_bundle" in m["Subject"]]
        assert failure, [m["Subject"] for m in new]
        assert any("(try 2)" in s for s in failure), failure  # retried once before failing
        assert not (lake(stack) / "test_sample" / f"run_date={D3}").exists()
    finally:
        subprocess.run([PY, "-c", "from loanpipe.dev import node; node.start_sshd()"], env=base, check=True, cwd=ROOT)


def test_timed_out_ssh_command_leaves_nothing_running(stack: dict[str, str]) -> None:
    """The SSH task runs the job with get_pty and `exec`: when Airflow's session closes (timeout, kill),
    the remote process is hung up, not orphaned."""
    code = (
        "from airflow.providers.ssh.hooks.ssh import SSHHook\n"
        "hook = SSHHook(ssh_conn_id='loanpipe_ssh')\n"
        "client = hook.get_conn()\n"
        "try:\n"
        "    hook.exec_ssh_client_command(client, 'exec sleep 417', get_pty=True, environment=None, timeout=8)\n"
        "except Exception as exc:\n"
        "    print('raised', type(exc).__name__, exc)\n"
        "finally:\n"
        "    client.close()\n"
    )
    remote = ["pgrep", "-u", "loanpipe", "-f", "sleep 417"]
    assert subprocess.run(remote, capture_output=True).returncode != 0  # nothing left from an earlier run
    proc = subprocess.Popen([PY, "-c", code], env=stack, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=ROOT)
    try:
        # the client imports Airflow and connects first (seconds on a loaded machine); the command then runs 8 s
        deadline = time.monotonic() + 120
        while subprocess.run(remote, capture_output=True).returncode != 0:  # the remote command does start
            assert time.monotonic() < deadline and proc.poll() is None, "the remote command never ran"
            time.sleep(0.2)
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert "raised AirflowException SSH command timed out" in out, out + err[-2000:]
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        left = subprocess.run(remote, capture_output=True, text=True)
        if left.returncode != 0:
            break
        time.sleep(0.5)
    assert left.returncode != 0, f"remote process still running: {left.stdout}"


def test_a_dag_through_the_real_scheduler_and_rest_api(mails, stack: dict[str, str]) -> None:
    base = {k: v for k, v in stack.items() if not k.startswith("AIRFLOW")}
    subprocess.run([PY, "-c", "from loanpipe.dev import airflow_services; airflow_services.start_airflow()"], env=base, check=True, cwd=ROOT,
                   timeout=300)
    before = len(mails(stack))
    code = ("import json; from loanpipe.dev import airflow_services as af; "
            "print(json.dumps(af.trigger_and_wait('dag_bots_test_email', timeout=240, log=lambda m: None)))")
    out = subprocess.run([PY, "-c", code], env=base, capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["state"] == "success" and result["tasks"] == {"send_test_message": "success"}
    assert any(m["Subject"] == "[loanpipe] Testing success" for m in mails(stack)[before:])
    # every socket of every service (sshd, SMTP, Airflow's four, their children) is on loopback
    code = "import json; from loanpipe.dev import stack; print(json.dumps(stack.listening()))"
    sockets = json.loads(subprocess.run([PY, "-c", code], env=base, capture_output=True, text=True, timeout=60,
                                        cwd=ROOT, check=True).stdout)
    services = {s["service"] for s in sockets}
    assert {"sshd", "smtp", "airflow-api-server"} <= services, sockets
    assert [s for s in sockets if s["ip"] not in ("127.0.0.1", "::1")] == [], sockets
