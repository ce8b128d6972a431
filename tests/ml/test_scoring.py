"""The Spark scoring path (loanpipe.ml.scoring): its scores are CatBoost's own, to the bit, however Spark splits the
rows into tasks and Arrow batches; each Python worker loads the model once, not once per task."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from loanpipe.core.schema import DataSchema
from loanpipe.ml import engine, scoring

SCHEMA = DataSchema(id_column="id", label_column="default", features=("f1", "f2", "f3"), categorical=(),
                    target_column="loss")


@pytest.mark.parametrize("udf", ["arrow", "pandas"])
def test_spark_scores_are_catboost_s_in_memory_scores_to_the_bit(small_model, spark, udf: str) -> None:
    bundle, frame = small_model
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
def test_a_python_worker_loads_the_model_once_not_once_per_task(small_model, spark, monkeypatch, udf: str) -> None:  # noqa: ANN001
    # ``spark``: predict_frame builds the preprocessing as Spark column expressions, which need a session
    import pandas as pd
    import pyarrow as pa
    from pyspark import cloudpickle

    bundle, frame = small_model
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


def test_tasks_reading_the_files_themselves_score_the_batch_s_rows_as_spark_s_reader_does(small_model, spark, tmp_path) -> None:  # noqa: ANN001
    """The FileBatch path (each task reads its Parquet files with pyarrow) against Spark's reader over the same
    files, and against CatBoost in memory: the same rows, the same inputs (a fill value, a pair, nulls and NaNs,
    a column one file lacks), the same scores to the bit; the excluded ids' rows (a null id among them) left out."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq
    from pyspark.sql import functions as F

    from loanpipe.core.storage import FileAccess
    from loanpipe.ml.features import FeatureSpec
    from loanpipe.ml.bundle import ModelBundle

    small, _ = small_model
    spec = FeatureSpec(raw_features=["f1", "f2", "g", "h"], features=["f1", "f2", "f3"], categorical=[],
                       pairs=[{"name": "f3", "a": "g", "b": "h", "beta": 0.37, "auc": 0.6}],
                       imputation={"f1": None, "f2": 0.25, "g": None, "h": -1.5},
                       column_kinds={c: "continuous" for c in ("f1", "f2", "g", "h")})
    bundle = ModelBundle(small.version, spec, small.native, {})
    rng = np.random.default_rng(7)
    folder = tmp_path / "batch"
    folder.mkdir()
    frames = []
    for k, n in enumerate((1100, 900, 1300)):
        part = pd.DataFrame({"id": np.arange(n, dtype=np.int64) + 10_000 * k, "f1": rng.normal(size=n),
                             "f2": rng.normal(size=n), "g": rng.normal(size=n), "h": rng.normal(size=n),
                             "unused": rng.normal(size=n)})
        part["f2"] = part["f2"].mask(part.index % 5 == 0)  # null in Parquet
        part.loc[part.index % 11 == 0, "f2"] = np.nan  # NaN in Parquet
        part["h"] = part["h"].mask(part.index % 3 == 0)
        table = pa.Table.from_pandas(part, preserve_index=False)
        if k == 1:
            table = table.drop_columns(["g"])  # Spark reads it as null; so must the tasks
        if k == 2:
            ids = table.column("id").to_pylist()
            ids[4] = None
            table = table.set_column(0, "id", pa.array(ids, pa.int64()))
        pq.write_table(table, folder / f"part-{k}.parquet", row_group_size=400)
        frames.append(table.to_pandas())
    files = [str(folder / f"part-{k}.parquet") for k in range(3)]
    exclude = [None, 5, 20_007, 10_001]
    batch = scoring.FileBatch(files, FileAccess(), exclude)

    df = spark.read.parquet(str(folder))
    bad = spark.createDataFrame([(i,) for i in exclude], "_bad_id long")
    good = df.join(F.broadcast(bad), F.col("id").eqNullSafe(F.col("_bad_id")), "left_anti")
    spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", "500")
    try:
        by_files = scoring.predict_frame(good, bundle, SCHEMA, files=batch)
        assert by_files.rdd.getNumPartitions() == 2  # the files shared among the session's 2 cores
        got = by_files.toPandas().sort_values("id").reset_index(drop=True)
        spark_s = scoring.predict_frame(good, bundle, SCHEMA).toPandas().sort_values("id").reset_index(drop=True)
    finally:
        spark.conf.unset("spark.sql.execution.arrow.maxRecordsPerBatch")
    whole = pd.concat(frames, ignore_index=True)
    kept = whole[~whole["id"].isin([5, 20_007, 10_001]) & whole["id"].notna()].sort_values("id")
    expected = small.predictor().predict_proba(spec.transform_pandas(kept)[spec.features].to_numpy(float))[:, 1]
    assert got["id"].tolist() == kept["id"].astype(int).tolist() == spark_s["id"].tolist()
    assert np.array_equal(got["p_default"].to_numpy(), spark_s["p_default"].to_numpy())
    assert np.array_equal(got["p_default"].to_numpy(), expected)
