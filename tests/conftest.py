"""Shared fixtures: one local Spark session for the whole run, temporary lakes, small configs."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from loanpipe.core.config import Config, load_config
from loanpipe.core.schema import DataSchema
from loanpipe.ml.bundle import ModelBundle

os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
# Airflow imported by the tests keeps its home (metadata DB, logs) inside the clone, away from ~/airflow; under
# pytest-xdist (`make test` runs two workers) each worker has its own, so two never write one SQLite file.
_ROOT = Path(__file__).resolve().parent.parent
_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
os.environ.setdefault("AIRFLOW_HOME", str(_ROOT / "var" / ("test-airflow" + (f"-{_WORKER}" if _WORKER else ""))))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(_ROOT))


# The longest test files, longest first (CI's --durations). `make test` hands whole files to two workers
# (`-n 2 --dist loadfile --no-loadscope-reorder`) in collection order: both start on the long ones, and the many
# short files fill in behind them, so no long file starts last and runs alone.
LONGEST_FIRST = ("tests/e2e/test_real_tables.py", "tests/e2e/test_backfill.py", "tests/e2e/test_main_commands.py",
                 "tests/jobs/test_app.py", "tests/e2e/test_e2e_airflow.py",
                 "tests/orchestration/test_spark_submit.py", "tests/e2e/test_notebooks.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test is marked by what it uses: the Spark session makes it ``spark``, the MinIO server ``services``
    (so ``make test-fast`` never starts either). The longest files are collected first (LONGEST_FIRST)."""
    rank = {path: i for i, path in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0], len(rank)))
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
               "search_iterations": 30, "cv_sample_rows": 3000,
               "promotion": {"min_rows": 100, "min_defaults": 10, "cooldown_dates": 0}},
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
    # py4j says goodbye at INFO from its connections' __del__, at interpreter exit, through a logging handler whose
    # stream pytest has closed by then: "--- Logging error ---" after the summary. Its INFO lines are not wanted.
    logging.getLogger("py4j").setLevel(logging.WARNING)


@pytest.fixture(scope="session")
def folder_digest() -> Callable[[str], str]:
    """A digest of every file's name and bytes under a folder: equal digests, nothing changed."""
    import hashlib

    def digest(path: str) -> str:
        h = hashlib.sha256()
        for base, _, files in sorted(os.walk(path)):
            for name in sorted(files):
                h.update(name.encode())
                h.update(Path(base, name).read_bytes())
        return h.hexdigest()

    return digest


# -- tiny inline frames for the stage tests (a null in every fixture) ------------------------------------------

@pytest.fixture(scope="session")
def tiny_schema() -> DataSchema:
    """Two features, a loss and its default label: the schema of ``tiny_frame``'s rows."""
    return DataSchema(id_column="id", target_column="loss", label_column="default", features=("f1", "f2"),
                      categorical=())


@pytest.fixture()
def tiny_frame(spark) -> Callable[[list[tuple]], Any]:  # noqa: ANN001
    """A Spark frame of ``tiny_schema``'s columns from inline rows: ``tiny_frame([(id, f1, f2, loss, default)])``."""
    return lambda rows: spark.createDataFrame(rows, "id long, f1 double, f2 double, loss bigint, default int")


@pytest.fixture(scope="session")
def tiny_bundle() -> ModelBundle:
    """A real CatBoost model on f1 and f2 (f2 left missing-aware), with a PSI reference on both."""
    import numpy as np
    import pandas as pd

    from loanpipe.ml import engine, psi
    from loanpipe.ml.features import FeatureSpec

    rng = np.random.default_rng(0)
    x = pd.DataFrame({"f1": rng.normal(size=400), "f2": rng.normal(size=400)})
    y = (x["f1"] + 0.5 * x["f2"] + rng.normal(scale=0.5, size=400) > 1).astype(int).to_numpy()
    native = engine.train_python(x, ["f1", "f2"], y, {"iterations": 30, "random_seed": 0, "thread_count": 1})
    reference = {"features": {f: {"edges": [-1.0, 0.0, 1.0],
                                  "shares": psi.bin_shares(x[f].to_numpy(), [-1.0, 0.0, 1.0])} for f in ("f1", "f2")},
                 "score": {"edges": [0.1, 0.5], "shares": [0.0, 0.5, 0.3, 0.2]}}
    spec = FeatureSpec(raw_features=["f1", "f2"], pairs=[], features=["f1", "f2"], categorical=[],
                       imputation={"f1": 0.0, "f2": None}, column_kinds={"f1": "continuous", "f2": "continuous"},
                       reference=reference)
    return ModelBundle(version="20261101-champion-test", spec=spec, native=native, metadata={})
