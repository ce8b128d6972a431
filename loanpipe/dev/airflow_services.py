"""Airflow's own services for the local stack (api-server, scheduler, dag-processor, triggerer), their
environment and connections, and the REST calls that drive the real scheduler (``make run``, the tests)."""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from loanpipe.core.config import PROJECT_DIR
from loanpipe.dev.local import (API_PORT, NODE_USER, SMTP_PORT, SSH_PORT, java_home, paths, run, start_process,
                                venv_bin, wait_port)
from loanpipe.dev.node import setup_ssh
from loanpipe.dev.s3 import s3_credentials, s3_endpoint

AIRFLOW_SERVICES = ("api-server", "scheduler", "dag-processor", "triggerer")
# Every service listens on loopback only. Airflow's log servers (scheduler :8793, triggerer :8794) bind every
# interface and cannot be told otherwise; on one machine the api-server reads the task logs from the files
# directly, so they are not started.
SERVICE_ARGS = {"scheduler": ["--skip-serve-logs"], "triggerer": ["--skip-serve-logs"]}
MAIL_TO = "risk-team@localhost"
# The stack's metadata DB is SQLite: one writer at a time, and a writer waits this long for the lock before
# "database is locked" (Python's default is 5 s; a backfill's run creation lost that race to the scheduler in CI).
# Airflow imports it by name: [database] sql_alchemy_connect_args.
SQLITE_CONNECT_ARGS = {"timeout": 60}


def env() -> dict[str, str]:
    """Environment for Airflow's processes, `airflow` commands and the end-to-end tests."""
    p = paths()
    ssh = setup_ssh() if not (p["ssh"] / "host_ed25519.pub").exists() else {
        "key_file": str(p["ssh"] / "client_ed25519"),
        "host_key": " ".join((p["ssh"] / "host_ed25519.pub").read_text().split()[:2]),
    }
    ssh_conn = {"conn_type": "ssh", "host": "127.0.0.1", "port": SSH_PORT, "login": NODE_USER,
                "extra": {"key_file": ssh["key_file"], "host_key": ssh["host_key"], "conn_timeout": "10"}}
    keys = s3_credentials()
    s3_conn = {"conn_type": "aws", "login": keys["access_key"], "password": keys["secret_key"],
               "extra": {"endpoint_url": s3_endpoint(), "region_name": "ru-central1"}}
    smtp_conn = {"conn_type": "smtp", "host": "127.0.0.1", "port": SMTP_PORT,
                 "extra": {"disable_ssl": True, "disable_tls": True, "from_email": "loanpipe@localhost",
                           "timeout": 10, "retry_limit": 1}}
    return {
        "AIRFLOW_HOME": str(p["airflow"]),
        "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_DIR),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS": "loanpipe.dev.airflow_services.SQLITE_CONNECT_ARGS",
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(API_PORT),
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{API_PORT}",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{API_PORT}/execution/",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "30",
        "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
        "AIRFLOW__CORE__FERNET_KEY": fernet_key(),
        "AIRFLOW_CONN_LOANPIPE_SSH": json.dumps(ssh_conn),
        "AIRFLOW_CONN_SMTP_DEFAULT": json.dumps(smtp_conn),
        "AIRFLOW_CONN_LOANPIPE_S3": json.dumps(s3_conn),
        "LOANPIPE_MAIL_TO": MAIL_TO,
        "LOANPIPE_CONFIG": str(p["conf"]),
        "LOANPIPE_DIST_DIR": str(p["dist"]),
        "JAVA_HOME": java_home(),
        "SPARK_LOCAL_IP": "127.0.0.1",
        "PATH": f"{PROJECT_DIR / '.venv' / 'bin'}:{os.environ.get('PATH', '/usr/bin:/bin')}",
    }


def fernet_key() -> str:
    """The stack's Fernet key (connections stored in Airflow's database are encrypted with it); mode 600."""
    f = paths()["airflow"].parent / "fernet.key"
    if not f.exists():
        from cryptography.fernet import Fernet

        f.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(f, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(Fernet.generate_key().decode())
    return f.read_text().strip()


def airflow_db_migrate(e: dict[str, str]) -> None:
    Path(e["AIRFLOW_HOME"]).mkdir(parents=True, exist_ok=True)
    run([venv_bin("airflow"), "db", "migrate"], env={**os.environ, **e}, timeout=600)


def import_connections(e: dict[str, str]) -> None:
    """Also store the connections in Airflow's database (encrypted with the stack's Fernet key), so the UI lists
    them (with secrets masked). The AIRFLOW_CONN_* variables hold the same values and take precedence."""
    conns = {}
    for key, value in e.items():
        if key.startswith("AIRFLOW_CONN_"):
            conn = json.loads(value)
            conn["extra"] = json.dumps(conn.get("extra", {}))
            conns[key[len("AIRFLOW_CONN_"):].lower()] = conn
    fd, tmp = tempfile.mkstemp(suffix=".json", dir=paths()["airflow"])  # mode 600
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(conns, fh)
        run([venv_bin("airflow"), "connections", "import", "--overwrite", tmp], env={**os.environ, **e}, timeout=300)
    finally:
        os.unlink(tmp)


def start_airflow() -> None:
    e = env()
    airflow_db_migrate(e)
    import_connections(e)
    for service in AIRFLOW_SERVICES:
        start_process(f"airflow-{service}", [venv_bin("airflow"), service, *SERVICE_ARGS.get(service, [])], e)
    wait_port(API_PORT, "the Airflow api-server", 120)


def api(method: str, path: str, body: dict | None = None, token: str | None = None, port: int = API_PORT) -> Any:
    import urllib.request

    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method,
                                 data=json.dumps(body).encode() if body is not None else None,
                                 headers={"Content-Type": "application/json"})
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read() or b"{}")


def api_token(port: int = API_PORT) -> str:
    """A token from the local stack's simple auth manager (all users are admins on this loopback-only stack)."""
    return api("GET", "/auth/token", port=port)["access_token"]


def unpause_when_parsed(dag_id: str, token: str, port: int = API_PORT, timeout: float = 300) -> None:
    """Wait until the dag-processor has parsed ``dag_id``, then unpause it."""
    import urllib.error

    deadline = time.monotonic() + timeout
    while True:
        try:
            api("GET", f"/api/v2/dags/{dag_id}", token=token, port=port)
            break
        except urllib.error.HTTPError as exc:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{dag_id} did not appear in Airflow within {timeout:.0f} s (last answer: HTTP "
                                   f"{exc.code} {exc.reason}); see the dag-processor's log in {paths()['logs']}") from None
            time.sleep(2)
    api("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": False}, token, port)


def backfill_and_wait(dag_id: str, from_date: str, to_date: str, timeout: float = 7200, port: int = API_PORT,
                      log=print) -> dict[str, Any]:  # noqa: ANN001
    """Airflow's own backfill of ``dag_id`` over [from_date, to_date] (``POST /api/v2/backfills``, what ``airflow
    backfill create`` does: one run at a time, oldest first, dates that already ran are run again), waited for;
    returns each date's run state.

    Airflow makes (or clears) every run of the range as it creates the backfill, so the backfill is done when none
    of them is queued or running: the scheduler's own test, which it applies only every 30 s to set the backfill's
    ``completed_at`` (a next backfill of the DAG that finds it still open waits for that, see
    :func:`create_backfill`)."""
    token = api_token(port)
    unpause_when_parsed(dag_id, token, port)
    backfill = create_backfill(dag_id, from_date, to_date, token, port, log)
    log(f"{dag_id}: backfill {backfill['id']} of {from_date} .. {to_date} created")
    deadline = time.monotonic() + timeout
    while True:
        runs = api("GET", f"/api/v2/dags/{dag_id}/dagRuns?logical_date_gte={from_date}T00:00:00Z"
                          f"&logical_date_lte={to_date}T23:59:59Z&order_by=logical_date", token=token, port=port)
        states = {r["logical_date"][:10]: r["state"] for r in runs["dag_runs"]}
        if states and not set(states.values()) & UNFINISHED:
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"{dag_id} backfill {backfill['id']} still running after {timeout:.0f} s: {states}")
        time.sleep(3)
    log(f"{dag_id}: backfill {backfill['id']} finished: {states}")
    return {"dag_id": dag_id, "backfill_id": backfill["id"], "runs": states}


UNFINISHED = {"queued", "running"}  # a dag run's states before it ends (success or failed)


def backfills(dag_id: str, token: str, port: int = API_PORT) -> list[dict[str, Any]]:
    return api("GET", f"/api/v2/backfills?dag_id={dag_id}", token=token, port=port)["backfills"]


def create_backfill(dag_id: str, from_date: str, to_date: str, token: str, port: int = API_PORT, log=print,  # noqa: ANN001
                    attempts: int = 4, open_wait: float = 90) -> dict[str, Any]:
    """A backfill of ``dag_id`` over whole days through the REST API; returns it. Two answers are tried again:

    * 503, the SQLite metadata DB was locked: a transaction that must upgrade its read lock while another
      connection writes gets "database is locked" at once (the busy timeout does not cover that case); the
      scheduler's writes make it happen now and then while the backfill clears the runs it repeats. Airflow
      removes the half-made backfill itself; if that cleanup lost the same race, its backfill is still open (and
      would refuse the next try), so it is cancelled first, as a user would. At most ``attempts`` tries.
    * 409, a backfill of the DAG is open: the scheduler marks a finished backfill complete within 30 s, so an
      open one whose runs have all ended is waited for (``open_wait`` seconds); one with runs left is an error."""
    import urllib.error

    before = max((b["id"] for b in backfills(dag_id, token, port)), default=0)
    # whole days: a date's run is at its cron tick, after midnight (naive times are UTC, Airflow's default zone)
    body = {"dag_id": dag_id, "from_date": f"{from_date}T00:00:00Z", "to_date": f"{to_date}T23:59:59Z",
            "max_active_runs": 1, "reprocess_behavior": "completed"}
    locked, open_until = 0, time.monotonic() + open_wait
    while True:
        try:
            return api("POST", "/api/v2/backfills", body, token, port)
        except urllib.error.HTTPError as e:
            detail = e.read().decode(errors="replace")
            if e.code == 503 and "locked" in detail and locked + 1 < attempts:
                locked += 1
                cancel_half_made(dag_id, before, token, port, log)
                log(f"{dag_id}: the metadata DB was locked while the backfill was created (try {locked}); again")
                time.sleep(3 * locked)
            elif e.code == 409 and time.monotonic() < open_until and not open_runs(dag_id, token, port):
                time.sleep(3)  # the last backfill's runs ended; the scheduler has not marked it complete yet
            else:
                raise RuntimeError(f"backfill of {dag_id} {from_date} .. {to_date} refused (HTTP {e.code}, after "
                                   f"{locked} locked tries): {detail[-1500:]}") from None


def cancel_half_made(dag_id: str, before: int, token: str, port: int = API_PORT, log=print,  # noqa: ANN001
                     tries: int = 5) -> None:
    """Cancel the backfills of ``dag_id`` newer than ``before`` that a failed creation left open. Airflow's own
    cleanup of the half-made backfill races with this: a cancel can meet a backfill being deleted or the DB
    locked again (HTTP 5xx), so the list is read again and the cancel retried until none is left open."""
    import urllib.error

    for attempt in range(1, tries + 1):
        try:
            for half in backfills(dag_id, token, port):
                if half["id"] > before and half["completed_at"] is None:
                    api("PUT", f"/api/v2/backfills/{half['id']}/cancel", token=token, port=port)
                    log(f"{dag_id}: cancelled backfill {half['id']}, left open by a failed creation")
            return
        except urllib.error.HTTPError as e:
            if e.code < 500 or attempt == tries:
                raise
            log(f"{dag_id}: cancelling a half-made backfill answered HTTP {e.code} (try {attempt}); again")
            time.sleep(2 * attempt)


def open_runs(dag_id: str, token: str, port: int = API_PORT) -> list[str]:
    """The run ids of ``dag_id`` still queued or running."""
    states = "&".join(f"state={s}" for s in sorted(UNFINISHED))
    runs = api("GET", f"/api/v2/dags/{dag_id}/dagRuns?{states}", token=token, port=port)
    return [r["dag_run_id"] for r in runs["dag_runs"]]


def trigger_and_wait(dag_id: str, conf: dict[str, Any] | None = None, timeout: float = 1800, port: int = API_PORT,
                     log=print) -> dict[str, Any]:  # noqa: ANN001
    """Unpause ``dag_id``, trigger a manual run with ``conf`` through the REST API, wait for it to finish."""
    token = api_token(port)
    unpause_when_parsed(dag_id, token, port)
    run = api("POST", f"/api/v2/dags/{dag_id}/dagRuns", {"logical_date": None, "conf": conf or {}}, token, port)
    run_id = run["dag_run_id"]
    log(f"triggered {dag_id} run {run_id} with {conf or {}}")
    deadline = time.monotonic() + timeout
    state = run.get("state")
    while state not in ("success", "failed"):
        if time.monotonic() > deadline:
            raise RuntimeError(f"{dag_id} run {run_id} still {state} after {timeout:.0f} s")
        time.sleep(3)
        state = api("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}", token=token, port=port)["state"]
    tis = api("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances", token=token, port=port)
    return {"dag_id": dag_id, "run_id": run_id, "state": state,
            "tasks": {t["task_id"]: t["state"] for t in tis.get("task_instances", [])}}
