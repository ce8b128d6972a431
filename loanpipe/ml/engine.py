"""Training engines: catboost-spark (JVM, distributed) and CatBoost's Python library (driver).

Both produce the same thing, a native CatBoost model (``.cbm`` bytes), so scoring, saving and comparing do
not care which engine trained a model. ``engine: auto`` uses catboost-spark when its classes load in the
driver JVM (``spark-submit --packages ai.catboost:catboost-spark_...``) and CatBoost's Python library
otherwise; the choice is recorded in the model's metadata.
"""

from __future__ import annotations

import datetime as dt
import importlib
import tempfile
from pathlib import Path
from typing import Any

from loanpipe.core.session import jvm_class_available, jvm_status

CATBOOST_SPARK_CLASS = "ai.catboost.spark.CatBoostClassifier"
ENGINES = ("auto", "catboost_spark", "python")


class EngineError(RuntimeError):
    """The requested training engine cannot run here; the message says why and what to change."""


def catboost_spark_available(spark: Any) -> bool:
    """True when catboost-spark's JVM classes and its Python wrapper are both loadable."""
    if not jvm_class_available(spark, CATBOOST_SPARK_CLASS):
        return False
    try:
        importlib.import_module("catboost_spark")
    except ImportError:
        return False
    return True


def unavailable_reason() -> str:
    info = jvm_status().get("catboost", {})
    if info.get("status") == "unavailable":
        return f"catboost-spark did not resolve from Maven Central here: {info.get('error')}"
    return "catboost-spark's classes are not on the classpath (spark-submit --packages ai.catboost:catboost-spark_...)"


def choose_engine(spark: Any, requested: str) -> str:
    if requested not in ENGINES:
        raise EngineError(f"model.engine must be one of {ENGINES} (got {requested!r})")
    if requested == "python":
        return "python"
    available = catboost_spark_available(spark)
    if requested == "catboost_spark" and not available:
        raise EngineError(f"model.engine is catboost_spark but {unavailable_reason()}; set model.engine to auto or python")
    return "catboost_spark" if available else "python"


def catboost_params(iterations: int, depth: int, learning_rate: float | None, seed: int,
                    thread_count: int, rsm: float | None = None) -> dict[str, Any]:
    """The CatBoost parameters both engines train with (Logloss on a binary label). No learning rate: CatBoost
    chooses one from the data size and the iterations. ``rsm``: the share of the columns each split looks at
    (None: all of them)."""
    params = {"iterations": iterations, "depth": depth, "random_seed": seed, "thread_count": thread_count,
              "loss_function": "Logloss"}
    if learning_rate is not None:
        params["learning_rate"] = learning_rate
    if rsm is not None and rsm < 1:
        params["rsm"] = rsm
    return params


def subspace_share(split_features: int, width: int | None) -> float | None:
    """The random-subspace share (CatBoost's rsm) for a fit on ``width`` columns when each split is to look at
    ``split_features`` of them: None (every column) when the fit is not wider than that, or either is unset."""
    if not split_features or not width or width <= split_features:
        return None
    return round(split_features / width, 4)


def spark_timeouts(spark_cfg: Any) -> dict[str, Any]:
    """catboost-spark's timeouts from the ``spark`` config, as its CatBoostClassifier takes them (timedelta)."""
    return {"connectTimeout": dt.timedelta(seconds=spark_cfg.catboost_connect_timeout_seconds),
            "workerInitializationTimeout": dt.timedelta(seconds=spark_cfg.catboost_worker_init_timeout_seconds)}


def train_catboost_spark(df: Any, features: list[str], label: str, params: dict[str, Any],
                         cat_features: list[str] | None = None, timeouts: dict[str, Any] | None = None) -> bytes:
    """Train with catboost-spark on a Spark DataFrame; return the native model bytes.

    Numeric features are assembled into one vector (NaN kept: CatBoost handles missing values itself).
    ``timeouts``: :func:`spark_timeouts` (catboost-spark's own defaults when None).
    """
    import catboost_spark
    from pyspark.ml.feature import VectorAssembler
    from pyspark.sql import functions as F

    if cat_features:
        raise EngineError("the catboost_spark engine here takes numeric features only; "
                          "categorical columns are trained with the python engine")
    assembled = VectorAssembler(inputCols=features, outputCol="features", handleInvalid="keep").transform(
        df.select(*[F.col(c).cast("double") for c in features], F.col(label).cast("double").alias("label"))
    ).select("features", "label")
    optional = {"learningRate": params["learning_rate"]} if "learning_rate" in params else {}
    if "rsm" in params:
        optional["rsm"] = params["rsm"]
    classifier = catboost_spark.CatBoostClassifier(
        iterations=params["iterations"], depth=params["depth"], randomSeed=params["random_seed"],
        threadCount=params["thread_count"], lossFunction=params["loss_function"], **optional, **(timeouts or {}),
    )
    model = classifier.fit(catboost_spark.Pool(assembled))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.cbm"
        model.saveNativeModel(str(path))
        return path.read_bytes()


def train_python(frame: Any, features: list[str], label: Any, params: dict[str, Any],
                 cat_features: list[str] | None = None) -> bytes:
    """Train with CatBoost's Python library on a pandas frame; return the native model bytes."""
    from catboost import CatBoostClassifier

    model = CatBoostClassifier(**params, verbose=0, allow_writing_files=False)
    model.fit(frame[features], label, cat_features=cat_features or None)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.cbm"
        model.save_model(str(path))
        return path.read_bytes()


def load_native(blob: bytes) -> Any:
    """A CatBoost model (Python) from native bytes, whichever engine trained it."""
    from catboost import CatBoostClassifier

    model = CatBoostClassifier()
    model.load_model(blob=blob)
    return model
