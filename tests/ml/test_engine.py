"""Training engines: the catboost-spark smoke test (local mode) and the Python fallback."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from loanpipe.ml import engine

pytestmark = pytest.mark.spark


def tiny_frame(n: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3))
    x[::17, 1] = np.nan  # a null, as every fixture should have
    y = (x[:, 0] + 0.5 * np.nan_to_num(x[:, 1]) + rng.normal(scale=0.5, size=n) > 0.8).astype(int)
    return pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "c": x[:, 2], "default": y})


PARAMS = engine.catboost_params(iterations=40, depth=3, learning_rate=0.2, seed=1, thread_count=1)


def test_catboost_spark_trains_and_predicts_in_local_mode(spark) -> None:
    """catboost-spark, really: train on a tiny Spark DataFrame, then predict with the saved native model."""
    if not engine.catboost_spark_available(spark):
        pytest.skip(engine.unavailable_reason())
    frame = tiny_frame()
    df = spark.createDataFrame(frame)
    from loanpipe.core.config import SparkConfig

    blob = engine.train_catboost_spark(df, ["a", "b", "c"], "default", PARAMS,
                                       timeouts=engine.spark_timeouts(SparkConfig()))  # the settings the jobs pass
    model = engine.load_native(blob)
    proba = model.predict_proba(frame[["a", "b", "c"]])[:, 1]
    assert proba.shape == (len(frame),) and ((proba >= 0) & (proba <= 1)).all()
    assert proba[frame["default"] == 1].mean() > proba[frame["default"] == 0].mean() + 0.2


def test_python_engine_trains_a_native_model() -> None:
    frame = tiny_frame()
    blob = engine.train_python(frame, ["a", "b", "c"], frame["default"], PARAMS)
    proba = engine.load_native(blob).predict_proba(frame[["a", "b", "c"]])[:, 1]
    assert proba[frame["default"] == 1].mean() > proba[frame["default"] == 0].mean() + 0.2


def test_python_engine_takes_string_categoricals() -> None:
    frame = tiny_frame()
    frame["grade"] = np.where(frame["default"] == 1, "E", "A")
    frame.loc[::5, "grade"] = "C"
    blob = engine.train_python(frame, ["a", "grade"], frame["default"], PARAMS, cat_features=["grade"])
    assert engine.load_native(blob).get_cat_feature_indices() == [1]


@pytest.mark.parametrize("available", [True, False])
def test_engine_choice(spark, monkeypatch: pytest.MonkeyPatch, available: bool) -> None:  # noqa: ANN001
    """Both branches, whatever this machine's classpath holds: auto takes catboost-spark when its classes load,
    an explicit catboost_spark without them fails with what to set."""
    monkeypatch.setattr(engine, "catboost_spark_available", lambda _spark: available)
    assert engine.choose_engine(spark, "python") == "python"
    assert engine.choose_engine(spark, "auto") == ("catboost_spark" if available else "python")
    if available:
        assert engine.choose_engine(spark, "catboost_spark") == "catboost_spark"
    else:
        with pytest.raises(engine.EngineError, match="set model.engine to auto or python"):
            engine.choose_engine(spark, "catboost_spark")
    with pytest.raises(engine.EngineError, match="model.engine must be one of"):
        engine.choose_engine(spark, "xgboost")


def test_the_classpath_probe_answers_for_this_session(spark) -> None:  # noqa: ANN001
    """The probe itself: a bool, and the same answer twice (it is what auto acts on)."""
    first = engine.catboost_spark_available(spark)
    assert isinstance(first, bool) and engine.catboost_spark_available(spark) is first
