"""The Spark scoring path (loanpipe.ml.scoring): its scores are CatBoost's own, to the bit, however Spark splits the
rows into tasks and Arrow batches; each Python worker loads the model once, not once per task."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from loanpipe.core.schema import DataSchema
from loanpipe.ml import engine, scoring
from tests.ml.test_risk import _small_model

SCHEMA = DataSchema(id_column="id", label_column="default", features=("f1", "f2", "f3"), categorical=(),
                    target_column="loss")


@pytest.mark.parametrize("udf", ["arrow", "pandas"])
def test_spark_scores_are_catboost_s_in_memory_scores_to_the_bit(spark, udf: str) -> None:
    bundle, frame = _small_model()
    frame = frame.assign(f2=frame["f2"].mask(frame.index % 7 == 0))  # missing values on the way too
    rows = [(i, *map(float, r)) for i, r in enumerate(frame[["f1", "f2", "f3"]].itertuples(index=False))]
    batch = spark.createDataFrame(rows, "id long, f1 double, f2 double, f3 double").repartition(7)
    # the limit: CatBoost on the in-memory matrix, all cores, no Spark
    expected = bundle.predictor().predict_proba(frame[["f1", "f2", "f3"]].to_numpy(float))[:, 1]
    spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", "500")
    try:
        for df in (batch, batch.coalesce(1)):  # 7 tasks, and one task of several Arrow batches
            got = scoring.predict_frame(df, bundle, SCHEMA, udf).toPandas().sort_values("id")
            assert got["id"].tolist() == list(range(len(frame)))
            assert np.array_equal(got["p_default"].to_numpy(), expected)
    finally:
        spark.conf.unset("spark.sql.execution.arrow.maxRecordsPerBatch")


class _Broadcast:
    def __init__(self, value: bytes) -> None:
        self.value = value


class _Frame:
    """Just enough of a Spark DataFrame for predict_frame to hand over the function Spark would send to tasks."""

    def __init__(self) -> None:
        self.sparkSession = self
        self.sparkContext = self

    def broadcast(self, value: bytes) -> _Broadcast:
        return _Broadcast(value)

    def select(self, *columns: Any) -> _Frame:
        return self

    def mapInArrow(self, fn: Any, schema: str) -> Any:  # noqa: N802 - Spark's name
        return fn

    mapInPandas = mapInArrow  # noqa: N815


@pytest.mark.parametrize("udf", ["arrow", "pandas"])
def test_a_python_worker_loads_the_model_once_not_once_per_task(spark, monkeypatch, udf: str) -> None:  # noqa: ANN001
    # ``spark``: predict_frame builds the preprocessing as Spark column expressions, which need a session
    import pandas as pd
    import pyarrow as pa
    from pyspark import cloudpickle

    bundle, frame = _small_model()
    loads: list[bytes] = []
    real = engine.load_native
    monkeypatch.setattr(engine, "load_native", lambda blob: loads.append(blob) or real(blob))
    monkeypatch.setattr(scoring, "_MODEL_CACHE", {})
    fn = scoring.predict_frame(_Frame(), bundle, SCHEMA, udf)
    part = frame.head(100).assign(id=range(100))
    batch = pa.RecordBatch.from_pandas(part, preserve_index=False) if udf == "arrow" else part
    outputs = []
    for _ in range(3):  # three tasks in one worker: Spark unpickles the function afresh for each
        task = cloudpickle.loads(cloudpickle.dumps(fn))
        outputs.append(list(task(iter([batch]))))
    assert len(loads) == 1
    first = outputs[0][0] if udf == "pandas" else outputs[0][0].to_pandas()
    expected = bundle.predictor().predict_proba(part[["f1", "f2", "f3"]])[:, 1]
    assert isinstance(first, pd.DataFrame) and np.array_equal(first["p_default"].to_numpy(), expected)
