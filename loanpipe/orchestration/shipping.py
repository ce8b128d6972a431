"""Shipping the code to the Spark master node and running a job there (what the DAGs' first three tasks do).

* ``build_bundle``: this release's code as one tarball (entry scripts + ``loanpipe.zip`` + conf + VERSION).
* ``remote_command``: the shell command the SSH task runs on the master node: unpack the release, then
  ``exec spark-submit`` (``exec`` so that closing the SSH session hangs up the job itself: a killed or
  timed-out task leaves nothing running).
* ``ship_and_submit``: the build -> SFTP -> SSH tasks both DAGs share.

Nothing here imports Spark, pandas or Airflow at module level, so DAG files stay cheap to parse.
"""

from __future__ import annotations

import os
import shlex
import tarfile
from pathlib import Path
from typing import Any

from loanpipe.core.config import PROJECT_DIR, Config
from loanpipe.core.session import job_packages, training_conf

RUN_DATE_TEMPLATE = "{{ params.run_date or ds }}"
VERSION_TEMPLATE = "{{ ti.xcom_pull(task_ids='build_bundle')['version'] }}"
TARBALL_TEMPLATE = "{{ ti.xcom_pull(task_ids='build_bundle')['tarball'] }}"
JOB_SCRIPTS = {"data_gen": "data_gen.py", "land": "land.py", "app": "app.py"}


def build_bundle(out_dir: str | None = None) -> dict[str, str]:
    """Build the release tarball; returns {version, tarball} (the XCom the SFTP and SSH tasks read)."""
    from loanpipe.orchestration.bundle import build

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
    # one --packages flag: spark-submit keeps only the last one given
    packages = job_packages(cfg, job, catboost=c.packages, s3=c.s3_packages)
    if packages:
        submit += ["--packages", ",".join(packages)]
    if c.executor_cores:
        submit += ["--conf", f"spark.executor.cores={c.executor_cores}"]
    for key, value in training_conf(cfg, packages, c.executor_cores).items():
        submit += ["--conf", f"{key}={value}"]
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
