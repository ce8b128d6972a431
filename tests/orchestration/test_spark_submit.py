"""The jobs as the cluster runs them: spark-submit of the shipped bundle, in local mode and against a real
Spark standalone master (started here on loopback), with no code change between the two."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pyspark
import pytest

from loanpipe.orchestration import bundle, shipping
from loanpipe.core import storage
from loanpipe.core.config import Config
from loanpipe.jobs.ingest import run_ingest
from loanpipe.core.storage import open_lake
from loanpipe.dev.stack import QUICK_JVM, QUICK_MODEL, config_env

pytestmark = [pytest.mark.spark, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]
SPARK_SUBMIT = str(Path(pyspark.__file__).parent / "bin" / "spark-submit")


@pytest.fixture(scope="module")
def lake_conf(base_config: Config, tmp_path_factory: pytest.TempPathFactory, spark) -> tuple[Config, Path]:
    tmp = tmp_path_factory.mktemp("submit")
    cfg = base_config.replace(storage={"root": str(tmp / "lake")},
                              model={"iterations": 60, "top_k_features": 10, "max_forward_features": 4,
                                     "engineered_pairs": 3})
    run_ingest(cfg, rows=3000, seed=41, spark=spark)
    conf = tmp / "cluster.yaml"
    conf.write_text(
        f"storage:\n  root: {cfg.storage.root}\n"
        "spark:\n  master: null\n  shuffle_partitions: 4\n"
        "model:\n  iterations: 60\n  top_k_features: 10\n  max_forward_features: 4\n  engineered_pairs: 3\n"
    )
    return cfg, conf


@pytest.fixture(scope="module")
def shipped(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return bundle.build(tmp_path_factory.mktemp("dist"), version="test-1")


def submit(shipped: Path, master: str, script: str, conf: Path, *args: str) -> dict:
    env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1", "PYSPARK_PYTHON": str(ROOT / ".venv" / "bin" / "python")}
    env.pop("PYSPARK_GATEWAY_PORT", None)
    cmd = [SPARK_SUBMIT, "--master", master, "--driver-memory", "2g", "--py-files", str(shipped / "loanpipe.zip"),
           str(shipped / script), "--config", str(conf), *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900, cwd=str(shipped.parent))
    if proc.returncode != 0:
        Path("/tmp/submit-fail.log").write_text(proc.stdout + "\n----\n" + proc.stderr)
    assert proc.returncode == 0, (proc.stdout[-2000:], proc.stderr[-3000:])
    return json.loads(proc.stdout[proc.stdout.index("{"):])


def test_bundle_contents(shipped: Path) -> None:
    assert sorted(p.name for p in shipped.iterdir()) == ["VERSION", "app.py", "conf", "data_gen.py", "land.py", "loanpipe.zip"]
    assert (shipped / "VERSION").read_text().strip() == "test-1"


def test_spark_submit_local_mode(shipped: Path, lake_conf: tuple[Config, Path]) -> None:
    cfg, conf = lake_conf
    summary = submit(shipped, "local[2]", "data_gen.py", conf, "--run-date", "2026-10-01")
    assert summary["rows"] == 90 and summary["output_path"].endswith("run_date=2026-10-01")


def test_the_cluster_command_on_a_yarn_shaped_standalone_cluster(lake_conf: tuple[Config, Path], tmp_path: Path) -> None:
    """The command the SSH task runs on the master node (``shipping.remote_command``: unpack the release,
    spark-submit), run here against a real standalone master with two workers of one core each: one executor per
    worker, ``spark.executor.cores`` 1 as the cluster config passes it. Both jobs run there, unchanged from local
    mode, and the run records the shipped release. (With 1-core executors catboost-spark's
    rule, ``spark.task.cpus`` = executor cores, is Spark's default; the command adds it when the package is passed,
    which does not resolve here: tests/orchestration/test_orchestration.py checks that command.)"""
    cfg, _ = lake_conf
    ports = {"SPARK_MASTER_PORT": "17177", "SPARK_MASTER_UI_PORT": "18180", "SPARK_WORKER_UI_PORT": "18181"}
    state = tmp_path / "standalone"
    env = {**os.environ, **ports, "SPARK_STANDALONE_DIR": str(state), "SPARK_WORKER_INSTANCES": "2",
           "SPARK_WORKER_CORES": "1", "SPARK_WORKER_MEMORY": "3g"}
    script = str(ROOT / "scripts" / "spark_standalone.sh")
    started = subprocess.run([script, "start"], capture_output=True, text=True, env=env, timeout=180)
    assert started.returncode == 0, started.stderr
    master = started.stdout.strip().splitlines()[-1]
    node = tmp_path / "node"
    built = shipping.build_bundle(str(tmp_path / "dist"))
    (node / "releases").mkdir(parents=True)
    shutil.copy(built["tarball"], node / "releases" / f"{built['version']}.tar.gz")  # what the SFTP task puts there
    cluster = cfg.replace(cluster={
        "remote_dir": str(node), "python": str(ROOT / ".venv" / "bin" / "python"), "spark_submit": SPARK_SUBMIT,
        "master": master, "driver_memory": "2g", "executor_cores": 1, "packages": False,
        "env": {"LOANPIPE__STORAGE__ROOT": cfg.storage.root, "SPARK_LOCAL_IP": "127.0.0.1",
                "LOANPIPE__SPARK__SHUFFLE_PARTITIONS": "4", **QUICK_JVM,  # the quick stacks' model sizes and JVM
                **config_env("model", QUICK_MODEL),
                "LOANPIPE__MODEL__TOP_K_FEATURES": "10", "LOANPIPE__MODEL__MAX_FORWARD_FEATURES": "4",
                "LOANPIPE__MODEL__ENGINEERED_PAIRS": "3"}})
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("PYSPARK", "LOANPIPE", "SPARK"))}
    try:
        out = {}
        for job in ("data_gen", "app"):
            command = shipping.remote_command(cluster, job, version=built["version"], run_date="2026-10-05")
            assert "spark.executor.cores=1" in command
            proc = subprocess.run(["bash", "-c", command], capture_output=True, text=True, env=clean, timeout=900)
            assert proc.returncode == 0, (proc.stdout[-2000:], proc.stderr[-3000:])
            out[job] = json.loads(proc.stdout[proc.stdout.index("{"):])
        assert out["data_gen"]["rows"] == 90 and out["app"]["scores"]["rows"] == 90
        assert out["app"]["daily"]["rows"] == 90 and out["app"]["evaluation"]["rows"] == 0  # no outcome yet
        lake = open_lake(cfg.storage)
        meta = lake.read_json(lake.uri(storage.ARTIFACTS, "models", out["app"]["champion"]["version"], "metadata.json"))
        assert meta["code_version"] == built["version"]  # the run records the shipped release
        # one executor on each worker, for each job: the work is spread over both nodes
        for worker in ("worker-1", "worker-2"):
            executors = list((state / "work" / worker).glob("app-*/*/stderr"))
            assert len(executors) == 2, (worker, executors)
    finally:
        subprocess.run([script, "stop"], env=env, timeout=120)
