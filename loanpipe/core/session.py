"""The one place that creates SparkSessions and knows which JVM packages the jobs need.

Job code never hard-codes a master: ``spark.master`` comes from the configuration, and when it is null the
session takes whatever ``spark-submit --master`` said (YARN on Yandex Data Proc, a standalone master, ...).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from loanpipe.core.config import PROJECT_DIR, Config

# Written by ``python -m loanpipe.dev.jvm resolve``: which package groups resolved from Maven Central here.
JVM_STATUS_FILE = PROJECT_DIR / ".cache" / "jvm-packages.json"


def jvm_status() -> dict[str, Any]:
    try:
        return json.loads(JVM_STATUS_FILE.read_text())
    except (OSError, json.JSONDecodeError):  # absent, or PROJECT_DIR is inside a shipped zip
        return {}


TRAINING_JOBS = ("app",)


def job_packages(cfg: Config, job: str, catboost: bool = True, s3: bool = True) -> list[str]:
    """The one rule for the JVM packages a job needs: catboost-spark for the job that trains (``app``) unless the
    engine is pinned to ``python``, the S3 connector when the lake is on S3. ``catboost``/``s3`` = False leave a
    group out (it does not resolve here, or the cluster already has it)."""
    packages: list[str] = []
    if catboost and job in TRAINING_JOBS and cfg.model.engine != "python":
        packages.append(cfg.spark.catboost_spark_package)
    if s3 and cfg.storage.is_s3:
        packages.extend(cfg.spark.s3_packages)
    return packages


def wanted_packages(cfg: Config, job: str = "app") -> list[str]:
    """:func:`job_packages` less the groups that ``loanpipe.dev.jvm`` found unavailable here (status
    ``unavailable``), so a session still starts and the engine falls back to CatBoost's Python library (see
    ``loanpipe.ml.engine``)."""
    status = jvm_status()
    return job_packages(cfg, job, catboost=status.get("catboost", {}).get("status") != "unavailable",
                        s3=status.get("s3", {}).get("status") != "unavailable")


def ivy_dir(cfg: Config) -> str:
    path = Path(cfg.spark.ivy_dir).expanduser()
    return str(path if path.is_absolute() else (PROJECT_DIR / path))


def session_conf(cfg: Config, packages: list[str] | None = None, job: str = "app") -> dict[str, str]:
    """Spark settings for this configuration (also used to build ``spark-submit --conf`` lines)."""
    conf: dict[str, str] = {
        "spark.sql.shuffle.partitions": str(cfg.spark.shuffle_partitions),
        "spark.sql.files.maxPartitionBytes": cfg.spark.max_partition_bytes,
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.sql.sources.partitionOverwriteMode": "dynamic",
        "spark.sql.parquet.compression.codec": "snappy",
        # ~770 columns of mostly distinct doubles: Parquet's per-column dictionaries cost write time and save
        # little; snappy still compresses.
        "spark.hadoop.parquet.enable.dictionary": "false",
        "spark.pyspark.python": os.environ.get("PYSPARK_PYTHON", sys.executable),
        "spark.jars.ivy": ivy_dir(cfg),
        "spark.ui.showConsoleProgress": "false",
    }
    if cfg.spark.executor_memory:
        conf["spark.executor.memory"] = cfg.spark.executor_memory
    if cfg.spark.executor_cores:
        conf["spark.executor.cores"] = str(cfg.spark.executor_cores)
    packages = wanted_packages(cfg, job) if packages is None else packages
    if packages:
        conf["spark.jars.packages"] = ",".join(packages)
    conf.update(training_conf(cfg, packages, cfg.spark.executor_cores))
    if cfg.storage.is_s3:
        conf.update(s3a_conf(cfg))
    conf.update(cfg.spark.extra_conf)
    return conf


def training_conf(cfg: Config, packages: list[str], executor_cores: int | None) -> dict[str, str]:
    """catboost-spark trains with one task per executor, so when its package is loaded and the executors' cores
    are known, ``spark.task.cpus`` must equal them (https://catboost.ai/docs/concepts/spark-cluster-configuration;
    applying a model has no such limit, but the setting holds for the whole job)."""
    if executor_cores and cfg.spark.catboost_spark_package in packages:
        return {"spark.task.cpus": str(executor_cores)}
    return {}


def s3a_conf(cfg: Config) -> dict[str, str]:
    """s3a settings from the storage config. Keys are never set here: S3A's default credential chain reads
    ``fs.s3a.access.key`` from the cluster's own properties, then AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY from
    the environment, then the instance's role (Data Proc's service account)."""
    s = cfg.storage
    conf = {
        "spark.hadoop.fs.s3a.impl": "org.apache.hadoop.fs.s3a.S3AFileSystem",
        "spark.hadoop.fs.s3a.path.style.access": str(s.s3_path_style).lower(),
        "spark.hadoop.fs.s3a.endpoint.region": s.s3_region,
        # fail in seconds, not minutes, when the endpoint is down (S3A's defaults retry for several minutes)
        "spark.hadoop.fs.s3a.attempts.maximum": str(s.s3_max_attempts),
        "spark.hadoop.fs.s3a.retry.limit": str(s.s3_max_attempts),
        "spark.hadoop.fs.s3a.connection.establish.timeout": f"{s.s3_timeout_seconds}s",
    }
    if s.s3_endpoint:
        conf["spark.hadoop.fs.s3a.endpoint"] = s.s3_endpoint
        conf["spark.hadoop.fs.s3a.connection.ssl.enabled"] = str(s.s3_endpoint.startswith("https")).lower()
    return conf


def get_spark(cfg: Config, app_name: str | None = None, packages: list[str] | None = None,
              job: str = "app") -> Any:
    """Get (or create) the SparkSession for ``cfg``. Under spark-submit, the submitted master wins.
    ``job`` picks the JVM packages (:func:`job_packages`): a job that trains nothing does not load catboost-spark."""
    from pyspark.sql import SparkSession

    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder.appName(app_name or cfg.spark.app_name)
    # Under spark-submit the driver JVM already exists (PYSPARK_GATEWAY_PORT) and was given its master.
    submitted = "PYSPARK_GATEWAY_PORT" in os.environ
    if cfg.spark.master and not submitted:
        builder = builder.master(cfg.spark.master)
        builder = builder.config("spark.driver.memory", cfg.spark.driver_memory)
    for key, value in session_conf(cfg, packages, job).items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    return spark


def jvm_class_available(spark: Any, class_name: str) -> bool:
    """True when ``class_name`` loads in the driver JVM (e.g. catboost-spark's classifier)."""
    try:
        spark.sparkContext._jvm.java.lang.Class.forName(
            class_name, False, spark.sparkContext._jvm.Thread.currentThread().getContextClassLoader()
        )
        return True
    except Exception:  # py4j wraps ClassNotFoundException
        return False
