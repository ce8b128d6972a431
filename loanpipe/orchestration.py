"""What the Airflow DAGs do, as plain importable functions (the DAG files only wire them together).

* ``build_bundle``: this release's code as one tarball (entry scripts + ``loanpipe.zip`` + conf + VERSION).
* ``remote_command``: the shell command the SSH task runs on the master node: unpack the release, then
  ``exec spark-submit`` (``exec`` so that closing the SSH session hangs up the job itself: a killed or
  timed-out task leaves nothing running).
* ``batch_ready``: the sensor's check that the run date's batch is published.
* ``send_*_report`` / ``notify_failure``: the emails (HTML, the ROC curve inline), built from the run summaries
  in the lake; they carry metrics and paths, never credentials.

Nothing here imports Spark, pandas or Airflow at module level, so DAG files stay cheap to parse.
"""

from __future__ import annotations

import html
import os
import shlex
import tarfile
import tempfile
from pathlib import Path
from typing import Any

from loanpipe import storage
from loanpipe.config import PROJECT_DIR, Config, load_config

RUN_DATE_TEMPLATE = "{{ params.run_date or ds }}"
VERSION_TEMPLATE = "{{ ti.xcom_pull(task_ids='build_bundle')['version'] }}"
TARBALL_TEMPLATE = "{{ ti.xcom_pull(task_ids='build_bundle')['tarball'] }}"
JOB_SCRIPTS = {"data_gen": "data_gen.py", "app": "app.py"}


# -- shipping and running the code ------------------------------------------------------------------

def build_bundle(out_dir: str | None = None) -> dict[str, str]:
    """Build the release tarball; returns {version, tarball} (the XCom the SFTP and SSH tasks read)."""
    from loanpipe.bundle import build

    out = Path(out_dir or os.environ.get("LOANPIPE_DIST_DIR") or (PROJECT_DIR / "dist"))
    folder = build(out)
    version = (folder / "VERSION").read_text().strip()
    tarball = out / f"loanpipe-{version}.tar.gz"
    with tarfile.open(tarball, "w:gz") as tar:
        for item in sorted(folder.iterdir()):
            tar.add(item, arcname=item.name)
    return {"version": version, "tarball": str(tarball)}


def remote_tarball(cfg: Config, version: str = VERSION_TEMPLATE) -> str:
    return f"{cfg.cluster.remote_dir}/releases/{version}.tar.gz"


def remote_command(cfg: Config, job: str, version: str = VERSION_TEMPLATE, run_date: str = RUN_DATE_TEMPLATE,
                   extra_args: list[str] | None = None) -> str:
    """The command the SSH task runs: unpack release ``version`` and spark-submit ``job`` for ``run_date``."""
    if job not in JOB_SCRIPTS:
        raise ValueError(f"job must be one of {sorted(JOB_SCRIPTS)} (got {job!r})")
    c = cfg.cluster
    release = f"{c.remote_dir}/releases/{version}"
    submit = [c.spark_submit, "--master", c.master, "--deploy-mode", c.deploy_mode,
              "--driver-memory", c.driver_memory, "--conf", f"spark.pyspark.python={c.python}",
              "--conf", f"spark.pyspark.driver.python={c.python}"]
    packages = []  # one --packages flag: spark-submit keeps only the last one given
    if c.packages and job == "app" and cfg.model.engine != "python":
        packages.append(cfg.spark.catboost_spark_package)
    if c.s3_packages and cfg.storage.is_s3:
        packages.extend(cfg.spark.s3_packages)
    if packages:
        submit += ["--packages", ",".join(packages)]
    submit += ["--py-files", "loanpipe.zip", JOB_SCRIPTS[job]]
    exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in sorted(c.env.items()))
    args = " ".join(shlex.quote(a) for a in (extra_args or []))
    env_file = shlex.quote(c.env_file) if c.env_file else ""
    source = f"if [ -r {env_file} ]; then set -a; . {env_file}; set +a; fi; " if env_file else ""
    return (
        "set -e; "
        f"mkdir -p {release} && tar -xzf {release}.tar.gz -C {release} && cd {release}; "
        f"{source}"
        f"export LOANPIPE_CODE_VERSION={version} PYSPARK_PYTHON={shlex.quote(c.python)} {exports}; "
        f"exec {' '.join(shlex.quote(s) for s in submit)} --run-date {run_date} --config conf/default.yaml {args}"
    ).rstrip()


def airflow_credentials(cfg: Config) -> storage.S3Credentials | None:
    """S3 keys for Airflow's own reads from the connection ``storage.s3_conn_id`` (login = access key id,
    password = secret key); None (-> the environment) when S3 is not used or the connection is not defined."""
    if not cfg.storage.is_s3 or not cfg.storage.s3_conn_id:
        return None
    try:
        from airflow.sdk import BaseHook

        conn = BaseHook.get_connection(cfg.storage.s3_conn_id)
    except Exception:  # not defined (AirflowNotFoundException), or not running under Airflow
        return None
    if not conn.login or not conn.password:
        return None
    token = (conn.extra_dejson or {}).get("aws_session_token")
    return storage.S3Credentials(conn.login, conn.password, token)


def open_lake(cfg: Config) -> storage.Lake:
    """The lake as Airflow's tasks see it (keys from the Airflow connection when there is one)."""
    return storage.open_lake(cfg.storage, credentials=airflow_credentials(cfg))


def batch_ready(run_date: str, config_path: str | None = None) -> bool:
    """True when the run date's batch is published in the lake (the scoring DAG's sensor)."""
    cfg = load_config(config_path)
    lake = open_lake(cfg)
    return lake.is_published(lake.partition_uri(storage.TEST_SAMPLE, storage.parse_run_date(run_date)))


# -- reports -----------------------------------------------------------------------------------------

def _fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return html.escape(str(value))


def _table(rows: list[tuple[str, Any]]) -> str:
    cells = "".join(f"<tr><th align='left'>{html.escape(k)}</th><td>{_fmt(v)}</td></tr>" for k, v in rows)
    return f"<table border='1' cellpadding='4' cellspacing='0'>{cells}</table>"


def data_gen_report(summary: dict[str, Any]) -> tuple[str, str]:
    rep = summary["repeated_rows"]
    leak = rep["within_batch"] + rep["in_other_batches"] + rep["in_train_sup"]
    status = "ALERT" if leak else "OK"
    subject = (f"[loanpipe] {status} new data {summary['run_date']}: {summary['rows']} rows, "
               f"default rate {summary['default_rate']:.2%}")
    body = (
        f"<h2>New data batch {html.escape(summary['run_date'])}: {status}</h2>"
        + _table([
            ("rows", summary["rows"]), ("default rate", summary["default_rate"]),
            ("sampled from", f"{summary['test_rows']} rows of test/ (fraction {summary['fraction']})"),
            ("with replacement (leak emulation)", summary["with_replacement"]),
            ("repeated rows within the batch", rep["within_batch"]),
            ("rows already in other batches", rep["in_other_batches"]),
            ("rows already in train_sup/", rep["in_train_sup"]),
            ("output", summary["output_path"]), ("duration, s", summary["seconds"]),
        ])
    )
    return subject, body


def app_report(summary: dict[str, Any], roc_cid: str | None = "roc.png") -> tuple[str, str]:
    ev, ch, dr = summary["evaluation"], summary["challenger"], summary["drift"]
    auc = ev.get("roc_auc")
    subject = (f"[loanpipe] {summary['status']} scoring {summary['run_date']}: AUC {_fmt(auc)}, "
               f"{'challenger promoted' if ch.get('promoted') else 'champion kept'}")
    alerts = "".join(f"<li>{html.escape(a)}</li>" for a in summary["alerts"])
    drift_rows = [("score PSI", f"{dr['score']['psi']} ({dr['score']['status']})")] + [
        (f"{name} PSI", f"{d['psi']} ({d['status']})") for name, d in sorted(dr["features"].items(),
                                                                           key=lambda kv: -kv[1]["psi"])[:8]]
    body = (
        f"<h2>Scoring run {html.escape(summary['run_date'])}: {html.escape(summary['status'])}</h2>"
        + (f"<ul style='color:#b00'>{alerts}</ul>" if alerts else "")
        + "<h3>Metrics on the batch's labels</h3>"
        + _table([
            ("rows scored", summary["scores"]["rows"]), ("ROC AUC", auc), ("oracle AUC (synthetic truth)", ev.get("oracle_auc")),
            ("PR AUC", ev.get("pr_auc")), ("Gini", ev.get("gini")), ("KS", ev.get("ks")), ("Brier", ev.get("brier")),
            ("observed default rate", ev["observed_default_rate"]),
            ("mean predicted probability", ev["mean_predicted_probability"]),
            (f"defaults flagged at cut-off {summary['scores']['cutoff']}",
             f"{ev['true_positives']} of {ev['defaults']} ({ev['false_positives']} false alarms)"),
        ])
        + "<h3>Champion and challenger</h3>"
        + _table([
            ("champion (scored this batch)", summary["champion"]["version"]),
            ("challenger", ch.get("version")), ("test", ch.get("test")),
            ("champion AUC (validation rows)", ch.get("champion_auc")),
            ("challenger AUC (validation rows)", ch.get("challenger_auc")),
            ("p-value (challenger better)", ch.get("p_value")), ("decision", ch.get("reason")),
            ("serving from now on", summary["serving_after_run"]),
        ])
        + _calibration_section(ev.get("calibration"))
        + _candidates_section("Model choice (bootstrap)", summary["champion"].get("candidates"))
        + _candidates_section(f"Challenger's features chosen again ({ch.get('rediscovered')})", ch.get("candidates"))
        + "<h3>Drift (PSI vs training)</h3>" + _table(drift_rows)
        + (f"<h3>ROC curve</h3><img src='cid:{roc_cid}' alt='ROC curve' width='440'>" if roc_cid else "")
        + "<h3>Where things are</h3>"
        + _table([("scores", summary["scores"]["path"]), ("artifacts", summary["artifacts"].get("metrics", "").rsplit("/", 1)[0]),
                  ("train_sup", f"{summary['train_sup']['path']} ({summary['train_sup']['rows']} rows)"),
                  ("engine", summary["engine"]), ("duration, s", summary["seconds"]["total"])])
    )
    return subject, body


def _grid(header: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_fmt(v)}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table border='1' cellpadding='4' cellspacing='0'><tr>{head}</tr>{body}</table>"


def _calibration_section(cal: dict[str, Any] | None) -> str:
    """PD calibration on the batch: Brier, log-loss and the decile table with the Jeffreys test."""
    if not cal or not cal.get("table"):
        return ""
    worst = cal["worst_bin"]
    return (f"<h3>Calibration on the batch</h3><p>Brier {_fmt(cal['brier'])}, log-loss {_fmt(cal['log_loss'])}; "
            f"worst decile {worst['bin']}: Jeffreys p = {_fmt(worst['jeffreys_p'])}"
            f"{' (PD rejected at 5%)' if worst['jeffreys_p'] < 0.05 else ''}</p>"
            + _grid(["decile", "N", "defaults", "observed rate", "mean PD", "Jeffreys p"],
                    [[r["bin"], r["n"], r["defaults"], r["observed_rate"], r["mean_pd"], r["jeffreys_p"]]
                     for r in cal["table"]]))


def _candidates_section(title: str, cands: dict[str, Any] | None) -> str:
    """The CV candidate table behind a model's features, and why the chosen one was chosen."""
    if not cands:
        return ""
    decision, cal = cands.get("decision", {}), cands.get("calibration") or {}
    guard = decision.get("guard") or {}
    rows = [[r["candidate"] + (" (chosen)" if r["candidate"] == decision.get("chosen") else ""), r["n_features"],
             r["mean_auc"], r["sd_auc"], ", ".join(f"{a:.3f}" for a in r["fold_aucs"]), r["seconds"]]
            for r in cands["rows"]]
    return (f"<h3>{html.escape(title)}</h3>"
            + _grid(["candidate", "features", "mean CV AUC", "sd", "fold AUCs", "seconds"], rows)
            + f"<p>{html.escape(decision.get('rule', ''))}"
            + (f"; guard against all raw columns: {'passed' if guard.get('passed') else html.escape(guard.get('reason', ''))}"
               if guard else "")
            + (f". PD calibration: {html.escape(str(cal.get('method')))} ({html.escape(str(cal.get('reason')))}), "
               f"CV Brier {_fmt((cal.get('before') or {}).get('brier'))} -> {_fmt((cal.get('after') or {}).get('brier'))}"
               if cal.get("method") else "")
            + "</p>")


def failure_report(dag_id: str, task_id: str, run_date: str, try_number: int, error: str, log_tail: str) -> tuple[str, str]:
    subject = f"[loanpipe] FAILED {dag_id}.{task_id} for {run_date} (try {try_number})"
    body = (
        f"<h2>{html.escape(dag_id)}: task {html.escape(task_id)} failed</h2>"
        + _table([("run date", run_date), ("try", try_number), ("error", error)])
        + f"<h3>Last lines of the task log</h3><pre>{html.escape(log_tail)}</pre>"
    )
    return subject, body


# -- Airflow callables (context in, email out) -------------------------------------------------------

def context_run_date(context: dict[str, Any]) -> str:
    params = context.get("params") or {}
    return str(params.get("run_date") or context["ds"])


def send_data_gen_report(config_path: str | None = None, **context: Any) -> str:
    cfg = load_config(config_path)
    lake = open_lake(cfg)
    run_date = storage.parse_run_date(context_run_date(context))
    from loanpipe.sampling import summary_uri

    subject, body = data_gen_report(lake.read_json(summary_uri(lake, run_date)))
    _send(cfg, subject, body, [])
    return subject


def send_app_report(config_path: str | None = None, **context: Any) -> str:
    cfg = load_config(config_path)
    lake = open_lake(cfg)
    run_date = storage.parse_run_date(context_run_date(context))
    summary = lake.read_json(lake.uri(storage.ARTIFACTS, "runs", run_date.isoformat(), "summary.json"))
    roc = summary["artifacts"].get("roc_curve")
    with tempfile.TemporaryDirectory() as tmp:
        files = []
        if roc:
            path = Path(tmp) / "roc.png"
            path.write_bytes(lake.read_bytes(roc))
            files.append(str(path))
        subject, body = app_report(summary, "roc.png" if roc else None)
        _send(cfg, subject, body, files)
    return subject


def task_log_tail(ti: Any, lines: int = 40) -> str:
    """The last lines of this try's log file, when the logs are on this machine."""
    try:
        from airflow.configuration import conf

        base = Path(conf.get("logging", "base_log_folder"))
        pattern = f"dag_id={ti.dag_id}/run_id={ti.run_id}/task_id={ti.task_id}/attempt={ti.try_number}.log"
        found = sorted(base.glob(pattern))
        if not found:
            return "(task log not found on this machine)"
        text = found[-1].read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])
    except Exception as exc:  # noqa: BLE001 - a report must not fail because the log is unreadable
        return f"(task log unreadable: {exc})"


def notify_failure(context: dict[str, Any]) -> None:
    """on_failure_callback: email the failing task, the error and the tail of its log."""
    ti = context["ti"]
    error = str(context.get("exception") or "unknown error")
    subject, body = failure_report(ti.dag_id, ti.task_id, context_run_date(context), ti.try_number, error,
                                   task_log_tail(ti))
    _send(load_config(), subject, body, [])


def _send(cfg: Config, subject: str, body: str, files: list[str]) -> None:
    from bots.mail import send_mail

    send_mail(subject, body, files=files, conn_id=cfg.airflow.smtp_conn_id, to_variable=cfg.airflow.mail_to_variable)


def dag_defaults(cfg: Config) -> dict[str, Any]:
    """default_args shared by the pipeline's DAGs: owner, retries with back-off, timeout, failure email."""
    import datetime as dt

    a = cfg.airflow
    return {
        "owner": a.owner,
        "retries": a.retries,
        "retry_delay": dt.timedelta(seconds=a.retry_delay_seconds),
        "retry_exponential_backoff": True,
        "max_retry_delay": dt.timedelta(seconds=a.max_retry_delay_seconds),
        "execution_timeout": dt.timedelta(minutes=a.execution_timeout_minutes),
        "on_failure_callback": notify_failure,
    }


def ship_and_submit(cfg: Config, job: str) -> tuple[Any, Any, Any]:
    """The three tasks both DAGs share: build the bundle, SFTP it to the master node, spark-submit ``job`` there
    over SSH. Call inside a ``with DAG(...)`` block; returns (build, upload, run) for the DAG to chain."""
    from airflow.providers.sftp.operators.sftp import SFTPOperator
    from airflow.providers.ssh.operators.ssh import SSHOperator
    from airflow.providers.standard.operators.python import PythonOperator

    build = PythonOperator(task_id="build_bundle", python_callable=build_bundle)
    upload = SFTPOperator(
        task_id="sftp_bundle",
        ssh_conn_id=cfg.cluster.ssh_conn_id,
        local_filepath=TARBALL_TEMPLATE,
        remote_filepath=remote_tarball(cfg),
        operation="put",
        create_intermediate_dirs=True,
    )
    run = SSHOperator(
        task_id=f"spark_submit_{job}",
        ssh_conn_id=cfg.cluster.ssh_conn_id,
        command=remote_command(cfg, job),
        get_pty=True,  # closing the session (kill, timeout) hangs up the remote job too
        cmd_timeout=cfg.airflow.execution_timeout_minutes * 60,
    )
    return build, upload, run
