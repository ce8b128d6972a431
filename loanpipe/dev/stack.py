"""The embedded local stack: real parts on loopback, started and stopped by the project.

* **master node**: a real OpenSSH server on 127.0.0.1:2222 with its own user (``loanpipe``), key
  authentication and a pinned host key; the node has its own Python environment (``/opt/loanpipe-node/venv``,
  Debian's Python 3.11 with the jobs' requirements: PySpark, CatBoost, ...) and runs Spark in local mode.
* **mail**: a real SMTP server (aiosmtpd) that stores every message as a file in ``var/stack/mail/Maildir/new``.
* **Airflow**: its own api-server (UI on http://127.0.0.1:28080), scheduler, dag-processor and triggerer, with
  connections from ``AIRFLOW_CONN_*`` environment variables.
* **object storage**: a real S3-compatible server (MinIO, built by ``scripts/install_minio.sh``) on
  127.0.0.1:9000 with its own keys (``var/stack/s3/credentials.json``, mode 600) and the bucket ``loanpipe``;
  its web console on :9001.
* **the lake**: ``var/stack/lake``, owned by the node's user (the jobs write it; Airflow reads the summaries), or
  in S3 mode (``--storage s3`` / ``LOANPIPE_STACK_STORAGE=s3``) ``s3a://loanpipe/lake`` on that server. The node
  reads its S3 keys from its own ``~/.config/loanpipe/s3.env``; Airflow from the connection ``loanpipe_s3``.

    python -m loanpipe.dev.stack start [--no-airflow] [--storage local|s3] | stop | status | env | run
    python -m loanpipe.dev.stack backfill --from 2026-11-01 --to 2026-11-03 [--keep] [--storage s3]

Nothing here runs at import time.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from loanpipe.dev.airflow_services import (AIRFLOW_SERVICES, API_PORT, api, api_token, backfill_and_wait, env,
                                          start_airflow, trigger_and_wait)
from loanpipe.dev.local import (NODE_REMOTE_DIR, NODE_S3_ENV, NODE_USER, NODE_VENV, S3_PORT, S3_ROOT, SMTP_PORT,
                                SSH_PORT, alive, java_home, paths, pid_of, start_process, stop_process, stop_processes,
                                venv_bin, wait_port)
from loanpipe.dev.node import give_lake_to_node, node_spark_home, setup_node, start_sshd
from loanpipe.dev.s3 import s3_credentials, s3_endpoint, s3_env, start_s3

STORAGE_MODES = ("local", "s3")
# The tests of the plumbing (end to end, screenshots) set LOANPIPE_STACK_QUICK_MODEL=1: the jobs then train with
# the unit tests' model sizes (tests/conftest.py), so a run checks the wiring in minutes; `make run` never sets it.
# Their batches are small (180 rows of a 6,000-row lake, ~17 defaults), so a challenger is decided on fewer
# matured rows and defaults than a real table's default asks for.
# Their promotion policy waits no run dates after a change: the backfill test switches to a weak model the day
# before the challenger that must replace it (the cool-down has unit tests of its own, tests/ml/test_policy.py).
QUICK_MODEL = {"iterations": 60, "cv_folds": 3, "search_iterations": 30, "max_forward_features": 6,
               "top_k_features": 20, "cv_sample_rows": 3000,
               "promotion": {"min_rows": 100, "min_defaults": 10, "cooldown_dates": 0}}
# ... and their JVMs compile with C1 only: a job of a quick stack lives a minute on a few thousand rows, where
# the optimising compiler's warm-up costs more than it earns (bench/results/jvm.json: data_gen 29.6 -> 23.7 s,
# app 47.7 -> 39.6 s on 6,000 rows). The tests' own long-lived session keeps both compilers (C1 only was slower there).
QUICK_JVM = {"JDK_JAVA_OPTIONS": "-XX:TieredStopAtLevel=1"}
DAGS = ("dag_new_data", "dag_app")  # the pipeline's DAGs, in the order a date runs them


def config_env(section: str, values: dict[str, Any]) -> dict[str, str]:
    """``values`` of a config section as the ``LOANPIPE__SECTION__KEY`` variables a job reads (a nested mapping's
    keys joined by ``__``)."""
    out: dict[str, str] = {}
    for key, value in values.items():
        if isinstance(value, dict):
            out.update(config_env(f"{section}__{key}", value))
        else:
            out[f"LOANPIPE__{section.upper()}__{key.upper()}"] = str(value)
    return out


def catboost_spark_resolves() -> bool:
    from loanpipe.core.session import jvm_status

    return jvm_status().get("catboost", {}).get("status") == "ok"


def storage_mode(requested: str | None = None) -> str:
    """local (a folder under var/stack) or s3 (the bucket on the stack's S3 server)."""
    mode = requested or os.environ.get("LOANPIPE_STACK_STORAGE") or "local"
    if mode not in STORAGE_MODES:
        raise ValueError(f"storage mode must be one of {STORAGE_MODES} (got {mode!r}; LOANPIPE_STACK_STORAGE)")
    return mode


def storage_settings(mode: str) -> dict[str, Any]:
    if mode == "s3":
        return {"root": S3_ROOT, "s3_endpoint": s3_endpoint(), "s3_conn_id": "loanpipe_s3"}
    return {"root": str(paths()["lake"])}


def write_config(mode: str | None = None, scheduled: bool = True, airflow: dict[str, Any] | None = None) -> Path:
    """var/stack/conf.yaml: the lake (a folder under var/stack or the stack's bucket), the node's environment,
    and the DAGs' schedules (``scheduled=False``: manual runs only, so that unpausing a DAG to trigger it does
    not also start its latest scheduled interval); ``airflow``: more settings of that section."""
    p = paths()
    mode = storage_mode(mode)
    store = storage_settings(mode)
    # LOANPIPE_STACK_INBOX=<folder>: the day's applications come from that inbox (batch.source: inbox)
    inbox = os.environ.get("LOANPIPE_STACK_INBOX")
    batch = {"source": "inbox", "inbox": inbox} if inbox else {}
    conf = {
        "storage": store,
        **({"batch": batch} if batch else {}),
        "cluster": {
            "ssh_conn_id": "loanpipe_ssh",
            "remote_dir": str(NODE_REMOTE_DIR),
            "python": str(NODE_VENV / "bin" / "python"),
            "spark_submit": f"{node_spark_home()}/bin/spark-submit",
            "master": "local[2]",
            "driver_memory": "4g",
            # --packages only when the artifact resolves here (Maven Central may not serve ai.catboost)
            "packages": catboost_spark_resolves(),
            "env_file": str(NODE_S3_ENV),
            "env": {
                **config_env("storage", store), **config_env("batch", batch),
                "LOANPIPE__SPARK__MASTER": "null",
                "SPARK_HOME": node_spark_home(),
                "JAVA_HOME": java_home(),
                "SPARK_LOCAL_IP": "127.0.0.1",
                **({**config_env("model", QUICK_MODEL), **QUICK_JVM}
                   if os.environ.get("LOANPIPE_STACK_QUICK_MODEL") == "1" else {}),
            },
        },
        "airflow": {"retries": 1, "retry_delay_seconds": 5, "max_retry_delay_seconds": 10,
                    "execution_timeout_minutes": 30, "batch_wait_timeout_minutes": 5,
                    **({} if scheduled else {"schedule_new_data": None, "schedule_app": None}), **(airflow or {})},
    }
    p["conf"].parent.mkdir(parents=True, exist_ok=True)
    p["conf"].write_text("# written by `python -m loanpipe.dev.stack`; do not edit\n" + yaml.safe_dump(conf, sort_keys=False))
    return p["conf"]


def start_smtp() -> None:
    paths()["mail"].parent.mkdir(parents=True, exist_ok=True)
    start_process("smtp", [venv_bin("python"), "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{SMTP_PORT}",
                    "-c", "aiosmtpd.handlers.Mailbox", str(paths()["mail"])])
    wait_port(SMTP_PORT, "the SMTP server")


def start(airflow: bool = True, mode: str | None = None, scheduled: bool = True,
          settings: dict[str, Any] | None = None) -> dict[str, Any]:
    setup_node()
    write_config(mode, scheduled, settings)
    start_sshd()
    start_smtp()
    if storage_mode(mode) == "s3":  # MinIO is installed by `make setup-s3` and only S3 mode needs it
        start_s3()
    if airflow:
        start_airflow()
    return status()


def stop() -> dict[str, Any]:
    stop_processes([f"airflow-{service}" for service in AIRFLOW_SERVICES], signal.SIGINT, wait=20)
    stop_process("smtp")
    stop_process("sshd")
    stop_process("minio")
    return status()


SERVICES = ("sshd", "smtp", "minio", *(f"airflow-{s}" for s in AIRFLOW_SERVICES))


def listening() -> list[dict[str, Any]]:
    """Every socket a running service of the stack (any process of its group) listens on."""
    import psutil

    groups = {pid: name for name in SERVICES if alive(name) and (pid := pid_of(name)) is not None}
    found = []
    for proc in psutil.process_iter(["pid"]):
        try:
            service = groups.get(os.getpgid(proc.pid))
            if service is None:
                continue
            found += [{"service": service, "pid": proc.pid, "ip": c.laddr.ip, "port": c.laddr.port}
                      for c in proc.net_connections("inet") if c.status == psutil.CONN_LISTEN]
        except (psutil.Error, ProcessLookupError):
            continue
    return found


def status() -> dict[str, Any]:
    return {
        "services": {n: ("running" if alive(n) else "stopped") for n in SERVICES},
        "ssh": f"{NODE_USER}@127.0.0.1:{SSH_PORT}",
        "mail": str(paths()["mail"] / "new"),
        "airflow_ui": f"http://127.0.0.1:{API_PORT}",
        "s3": f"{s3_endpoint()} (console http://127.0.0.1:{S3_PORT + 1}; keys in {paths()['s3_credentials']})",
        "lake": _configured_root(),
        "config": str(paths()["conf"]),
    }


def _configured_root() -> str:
    try:
        return yaml.safe_load(paths()["conf"].read_text())["storage"]["root"]
    except (OSError, KeyError, TypeError):
        return str(paths()["lake"])


def stack_lake() -> Any:
    """The lake the stack is configured for, opened with the stack's keys."""
    from loanpipe.core.config import load_config
    from loanpipe.core.storage import S3Credentials, open_lake

    cfg = load_config(str(paths()["conf"]))
    keys = s3_credentials()
    return open_lake(cfg.storage, S3Credentials(keys["access_key"], keys["secret_key"]) if cfg.storage.is_s3 else None)


def ingest_demo_lake(rows: int | None = None) -> dict[str, Any]:
    """The demo lake under var/stack/lake (skipped when the same data is there), owned by the node's user."""
    e = env()
    cmd = [venv_bin("python"), "-m", "loanpipe.jobs.ingest"] + (["--rows", str(rows)] if rows else [])
    out = subprocess.run(cmd, env={**os.environ, **e, **s3_env()}, capture_output=True, text=True, timeout=1800)
    if out.returncode != 0:
        raise RuntimeError(f"ingest failed: {out.stderr.strip().splitlines()[-1:]}")
    if not _configured_root().startswith("s3a://"):
        give_lake_to_node()
    return json.loads(out.stdout)


def run_pipeline(run_date: str, keep: bool = False, mode: str | None = None, rows: int | None = None) -> dict[str, Any]:
    """The README's main command: stack up, demo lake, dag_new_data then dag_app for ``run_date`` through the
    real scheduler, then where the scores, artifacts and email are."""
    from loanpipe.core import catalog
    from loanpipe.core.dates import parse_run_date

    parse_run_date(run_date)
    started = time.monotonic()
    print("stack: starting sshd (master node), SMTP server, Airflow ...", flush=True)
    start(airflow=True, mode=mode, scheduled=False)  # one manual run per DAG, nothing scheduled beside it
    try:
        lake_info = ingest_demo_lake(rows)
        print(f"lake: {lake_info['paths']['train']} ... ({lake_info['rows']} rows"
              f"{', already there' if 'skipped' in lake_info else ''})", flush=True)
        results = []
        for dag_id in DAGS:
            result = trigger_and_wait(dag_id, {"run_date": run_date})
            print(f"{dag_id}: {result['state']} {result['tasks']}", flush=True)
            results.append(result)
            if result["state"] != "success":
                raise RuntimeError(f"{dag_id} {result['state']}; task logs under {paths()['airflow'] / 'logs'}")
        token = api_token()
        runs = {d: api("GET", f"/api/v2/dags/{d}/dagRuns", token=token)["total_entries"]
                for d in ("dag_new_data", "dag_app")}
        lake = stack_lake()  # read while the stack (and in S3 mode its S3 server) is still up
        summary = lake.read_json(catalog.run_artifact(lake, run_date, catalog.RUN_SUMMARY))
        where = lake.describe()
    finally:
        if not keep:
            stop()
    box = paths()["mail"] / "new"
    mails = sorted(box.iterdir(), key=lambda f: f.stat().st_mtime) if box.is_dir() else []
    return {
        "run_date": run_date,
        "storage": where,
        "status": summary["status"],
        "expected_default_rate": summary["daily"]["expected_default_rate"],
        "backtest": summary["evaluation"]["reason"] or {k: summary["evaluation"].get(k) for k in (
            "rows", "roc_auc", "oracle_auc")},
        "challenger": summary["challenger"]["reason"],
        "scores": summary["scores"]["path"],
        "artifacts": catalog.run_artifact(lake, run_date),
        "emails": [str(m) for m in mails[-2:]],
        "airflow_ui": f"http://127.0.0.1:{API_PORT}" + ("" if keep else " (stopped; `make stack-up` keeps it up)"),
        "seconds": round(time.monotonic() - started, 1),
        "dag_runs": results,
        "runs_per_dag": runs,  # every run the stack's Airflow has of each DAG (one per `make run` and date)
    }


def latest_scheduled_date() -> Any:
    """The date of the DAGs' latest cron tick so far: unpausing a DAG (catchup off) starts that tick's run."""
    import datetime as dt

    from croniter import croniter

    from loanpipe.core.config import load_config

    a = load_config(environ={}).airflow  # the shipped schedules, which the stack keeps
    now = dt.datetime.now(dt.UTC)
    return min(croniter(cron, now).get_prev(dt.datetime).date() for cron in (a.schedule_new_data, a.schedule_app))


def backfill(first: str, last: str, keep: bool = False, mode: str | None = None,
             rows: int | None = None) -> dict[str, Any]:
    """`make backfill`: every date of [first, last] through Airflow's own backfill, new data before scoring.

    A backfill needs the DAGs unpaused, and unpausing a DAG starts its latest scheduled date; so the stack
    runs with the DAGs scheduled up to the day before that date (``airflow.end_date``, the same all day, so a
    second backfill finds the DAGs as the first left them), and the range must end before it. Then ``dag_new_data`` is
    backfilled over the range, then ``dag_app``, each one run at a time, oldest first. A date that ran before
    runs again and reproduces its outputs (each run date is a transaction)."""
    import datetime as dt

    from loanpipe.core import catalog
    from loanpipe.core.dates import parse_run_date

    start_day, end_day = parse_run_date(first), parse_run_date(last)
    if end_day < start_day:
        raise ValueError(f"backfill range {first} .. {last} is empty: FROM must not be after TO")
    scheduled = latest_scheduled_date()
    if end_day >= scheduled:
        raise ValueError(f"backfill dates before {scheduled}: from that date on the DAGs' schedule runs the dates "
                         "(unpausing them for the backfill starts that date's run), or use `make run RUN_DATE=...`")
    started = time.monotonic()
    until = (scheduled - dt.timedelta(days=1)).isoformat()
    print(f"stack: starting sshd, SMTP server, Airflow (DAGs scheduled up to {until}) ...", flush=True)
    start(airflow=True, mode=mode, settings={"end_date": until})
    try:
        lake_info = ingest_demo_lake(rows)
        print(f"lake: {lake_info['paths']['train']} ... ({lake_info['rows']} rows)", flush=True)
        results = {}
        for dag_id in DAGS:
            result = backfill_and_wait(dag_id, first, last)
            results[dag_id] = result["runs"]
            failed = {d: s for d, s in result["runs"].items() if s != "success"}
            if failed:
                raise RuntimeError(f"{dag_id} backfill: runs not successful: {failed}; task logs under "
                                   f"{paths()['airflow'] / 'logs'}")
        lake = stack_lake()
        days = [(start_day + dt.timedelta(days=i)).isoformat() for i in range((end_day - start_day).days + 1)]
        dates = {}
        for day in days:
            s = lake.read_json(catalog.run_artifact(lake, day, catalog.RUN_SUMMARY))
            dates[day] = {"status": s["status"], "backtest_auc": s["evaluation"]["roc_auc"],
                          "champion": s["champion"]["version"], "serving_after_run": s["serving_after_run"],
                          "scores": s["scores"]["path"]}
    finally:
        if not keep:
            stop()
    return {"dates": dates, "dag_runs": results, "seconds": round(time.monotonic() - started, 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["start", "stop", "status", "env", "run", "backfill", "scores"])
    parser.add_argument("--date", help="run: the run date (default: today, UTC); scores: the date (default: latest)")
    parser.add_argument("--from", dest="first", help="backfill: the first date (YYYY-MM-DD)")
    parser.add_argument("--to", dest="last", help="backfill: the last date (YYYY-MM-DD, before today)")
    parser.add_argument("--out", help="scores: CSV file to write (default: stdout)")
    parser.add_argument("--grade", help="scores: only these rating grades, riskiest first (9, or 8-10)")
    parser.add_argument("--with-reasons", action="store_true", help="scores: add the reason columns")
    parser.add_argument("--rows", type=int, help="run/backfill: rows of the demo lake, if it is made now")
    parser.add_argument("--keep", action="store_true", help="run: leave the stack up afterwards")
    parser.add_argument("--json", action="store_true", help="env: print a JSON object instead of export lines")
    parser.add_argument("--no-airflow", action="store_true", help="start only sshd, the SMTP and the S3 server")
    parser.add_argument("--storage", choices=STORAGE_MODES,
                        help="start/run: the lake in a local folder or in the stack's S3 bucket "
                             "(default: $LOANPIPE_STACK_STORAGE or local)")
    parser.add_argument("--with-lake", action="store_true", help="start: also ingest the demo lake (if absent)")
    args = parser.parse_args(argv)
    try:
        return _dispatch(args)
    except (RuntimeError, subprocess.CalledProcessError, ValueError) as exc:  # StorageError is a RuntimeError
        detail = exc.stderr if isinstance(exc, subprocess.CalledProcessError) else ""
        print(f"stack {args.command} failed: {exc} {detail or ''}".strip(), file=sys.stderr)
        return 1


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "start":
        state = start(airflow=not args.no_airflow, mode=args.storage)
        if args.with_lake:
            ingest_demo_lake()
        print(json.dumps(state, indent=2))
    elif args.command == "run":
        import datetime as dt

        print(json.dumps(run_pipeline(args.date or dt.datetime.now(dt.UTC).date().isoformat(), args.keep,
                                      args.storage, args.rows), indent=2))
    elif args.command == "backfill":
        if not args.first or not args.last:
            raise ValueError("backfill needs --from and --to (make backfill FROM=2026-11-01 TO=2026-11-03)")
        print(json.dumps(backfill(args.first, args.last, args.keep, args.storage, args.rows), indent=2))
    elif args.command == "stop":
        print(json.dumps(stop(), indent=2))
    elif args.command == "scores":  # the business's fetch, against whatever lake the stack was set up with
        from loanpipe.jobs import fetch_scores

        # after `make run-s3` the stack is down: bring its S3 server up for the fetch, and down again
        borrowed = _configured_root().startswith("s3a://") and not alive("minio")
        if borrowed:
            start_s3()
        try:
            info = fetch_scores.fetch(stack_lake(), args.date, args.out, args.with_reasons,
                                      fetch_scores.parse_grades(args.grade) if args.grade else None)
        finally:
            if borrowed:
                stop_process("minio")
        print(f"fetched {info['rows']} scores of {info['run_date']} from {info['source']} -> {info['out']}",
              file=sys.stderr)
    elif args.command == "status":
        print(json.dumps(status(), indent=2))
    elif args.json:
        print(json.dumps(env()))
    else:
        for k, v in env().items():
            print(f"export {k}={json.dumps(v) if not v.startswith('{') else repr(v)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
