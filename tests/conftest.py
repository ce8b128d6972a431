"""Shared fixtures: one local Spark session for the whole run, temporary lakes, small configs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from loanpipe.core.config import Config, load_config

os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
# Airflow imported by the tests keeps its home (metadata DB, logs) inside the clone, away from ~/airflow.
_ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("AIRFLOW_HOME", str(_ROOT / "var" / "test-airflow"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(_ROOT))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test is marked by what it uses: the Spark session makes it ``spark``, the MinIO server ``services``
    (so ``make test-fast`` never starts either)."""
    for item in items:
        used = set(getattr(item, "fixturenames", ()))
        if "spark" in used:
            item.add_marker(pytest.mark.spark)
        params = getattr(getattr(item, "callspec", None), "params", {})
        if {"minio", "s3lake"} & used or params.get("any_lake") == "s3":
            item.add_marker(pytest.mark.services)


@pytest.fixture(scope="session")
def base_config() -> Config:
    """The shipped default config, shrunk for tests (small Spark, few iterations)."""
    cfg = load_config(environ={})
    return cfg.replace(
        spark={"master": "local[2]", "driver_memory": "3g", "shuffle_partitions": 2,
               "extra_conf": {"spark.ui.enabled": "false"}},
        model={"iterations": 60, "top_k_features": 20, "max_forward_features": 6, "cv_folds": 3,
               "search_iterations": 30, "cv_sample_rows": 3000},
    )


@pytest.fixture()
def config(base_config: Config, tmp_path: Path) -> Config:
    """The test config with a fresh, empty lake under tmp_path."""
    return base_config.replace(storage={"root": str(tmp_path / "lake")})


@pytest.fixture(scope="session")
def spark(base_config: Config):
    """One SparkSession for the run (local[2]; catboost-spark on the classpath when it resolved here)."""
    from loanpipe.core.session import get_spark

    session = get_spark(base_config, app_name="loanpipe-tests")
    yield session
    session.stop()
