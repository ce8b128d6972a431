"""Scoring on Spark: the model's preprocessing as column expressions, CatBoost in ``mapInArrow`` (or
``mapInPandas``); with ``reasons`` the same pass adds each row's reason codes from CatBoost's SHAP values
(``loanpipe.ml.risk``), and the scores get their rating grade on the master scale.

Only the id and the raw columns the model needs are read; the label is never selected. A published batch can also
be handed over as its files (:class:`FileBatch`): each scoring task then reads its share of the Parquet files
itself with pyarrow and makes the model inputs with numpy (``FeatureSpec.arrow_inputs``), skipping Spark's
conversion of Parquet's columns into rows and of the rows into Arrow batches, which was most of the scoring
path's time (bench/results/scoring_profile.json). Same rows, same inputs, same scores to the bit (test).

The model's calibrator (``loanpipe.ml.calibration``) turns CatBoost's score into the PD that is written as
``p_default``. The native model is broadcast once and loaded once per Python worker; Arrow moves the (narrow)
feature batches. ``mapInArrow`` hands CatBoost a float matrix built from the Arrow columns instead of a pandas
frame. It is the default (``model.scoring_udf``) and the files path is built on it; through Spark's reader it and
``mapInPandas`` are within each other's run-to-run spread (bench/results/scoring.json). Models with categorical
inputs always use the pandas path, through Spark's reader.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from loanpipe.ml import calibration, risk
from loanpipe.ml.bundle import ModelBundle
from loanpipe.core.schema import DataSchema
from loanpipe.core.storage import FileAccess

_MODEL_CACHE: dict[str, Any] = {}


UDF_KINDS = ("arrow", "pandas")
# CatBoost's SHAP call pays a fixed cost per call (its per-model precalculation) before its per-row cost: 0.51 s
# for 1,000 rows, 1.04 s for 10,000, 9.76 s for 100,000 (bench/results/reasons.json, the 30-feature champion).
# So with reasons the Arrow batches (10,000 rows) are explained in blocks of about this many cells (rows x
# features): 133,000 rows of a 30-feature model, at least one batch.
SHAP_BLOCK_CELLS = 4_000_000


@dataclass(frozen=True)
class FileBatch:
    """A published batch as its scoring tasks read it themselves: its Parquet files (``catalog.parquet_files``),
    the lake's access for pyarrow (``Lake.file_access``) and the ids whose rows the data contract set aside
    (``contract.Checked.bad_ids``; an id's rows are all bad or all good). The rows are those of the batch's
    DataFrame less those ids."""

    files: list[str]
    access: FileAccess
    exclude: list[Any] = field(default_factory=list)


def file_batches(batch: FileBatch, uri: str, filesystem: Any, spec: Any, ident: str, rows: int) -> Iterator[Any]:
    """The model inputs (``FeatureSpec.arrow_inputs``) of the Parquet file ``uri`` in Arrow batches of up to
    ``rows`` rows, read with pyarrow (the id and the raw columns only), the excluded ids' rows left out."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    with filesystem.open_input_file(batch.access.path(uri)) as f:
        parquet = pq.ParquetFile(f)
        names = parquet.schema_arrow.names
        if ident not in names:
            raise ValueError(f"{uri} has no id column {ident!r}; regenerate the batch with data_gen")
        columns = [ident, *(c for c in spec.raw_features if c in names)]
        exclude = pa.array(batch.exclude).cast(parquet.schema_arrow.field(ident).type) if batch.exclude else None
        for b in parquet.iter_batches(batch_size=rows, columns=columns, use_threads=False):
            if exclude is not None:  # a null id is left out when None is among the ids, as eqNullSafe would
                b = b.filter(pc.invert(pc.is_in(b.column(ident), value_set=exclude)))
            if b.num_rows:
                yield spec.arrow_inputs(b, ident)


def task_inputs(paths: Iterator[Any], batch: FileBatch, spec: Any, ident: str, rows: int) -> Iterator[Any]:
    """A task's model inputs: :func:`file_batches` of each file named in the task's Arrow batches of paths
    (:func:`file_list`), in order, through one filesystem."""
    filesystem = batch.access.filesystem()
    for p in paths:
        for uri in p.column(0).to_pylist():
            yield from file_batches(batch, uri, filesystem, spec, ident, rows)


def reads_files(bundle: ModelBundle, udf: str, files: FileBatch | None) -> bool:
    """Whether :func:`predict_frame` scores from ``files``: given, with the ``arrow`` udf, for a numeric model."""
    return files is not None and udf == "arrow" and not bundle.spec.categorical


def file_list(spark: Any, files: FileBatch) -> Any:
    """The batch's files as a DataFrame of one row per file, in order, for the tasks that read them: Spark slices
    the list into min(files, default parallelism) tasks."""
    return spark.createDataFrame([(f,) for f in files.files], "path string")


def _shap(model: Any, x: Any, categorical: list[str], threads: int = -1) -> Any:
    """SHAP values of the rows (rows x features; CatBoost's expected-value column dropped)."""
    from catboost import Pool

    pool = Pool(x, cat_features=categorical or None)
    return model.get_feature_importance(pool, type="ShapValues", thread_count=threads)[:, :-1]


def cached_model(version: str, blob: Any) -> Any:
    """The model of ``version`` from its broadcast native bytes, loaded once per Python worker. It lives at module
    level on purpose: Spark sends the scoring function to every task with cloudpickle, which copies a closure's
    globals by value, so a cache named inside the closure arrived empty in each task and the model was loaded once
    per task; a function of an importable module travels by reference and keeps this module's cache."""
    model = _MODEL_CACHE.get(version)
    if model is None:
        from loanpipe.ml.engine import load_native

        model = _MODEL_CACHE[version] = load_native(blob.value)
    return model


def task_threads() -> int:
    """CatBoost threads for this task: the task's CPUs (``spark.task.cpus``, 1 unless training with catboost-spark
    set it to the executor's cores). Spark already runs one task per CPU, so CatBoost's default (every core of the
    machine, in every task) oversubscribed the cores. Outside a task (a test calling the function directly): all
    cores (-1)."""
    from pyspark import TaskContext

    context = TaskContext.get()
    return context.cpus() if context is not None else -1


def explained(proba: Any, explain_from: float | None) -> Any:
    """Positions of the rows that get reasons: every row, or those whose PD is at least ``explain_from``."""
    import numpy as np

    return np.arange(len(proba)) if explain_from is None else np.flatnonzero(np.asarray(proba) >= explain_from)


def spread(values: list[Any], rows: Any, n: int) -> list[Any]:
    """``values`` of the rows at positions ``rows`` in a column of ``n`` (None elsewhere)."""
    if len(rows) == n:
        return values
    out: list[Any] = [None] * n
    for i, v in zip(rows.tolist(), values):
        out[i] = v
    return out


def blocks(items: Iterator[tuple[int, Any]], limit: int) -> Iterator[list[Any]]:
    """Consecutive ``(size, item)`` pairs grouped into lists of items whose sizes add up to at least ``limit``
    (the last list may hold less); ``limit`` 0: each item on its own."""
    block: list[Any] = []
    total = 0
    for size, item in items:
        block.append(item)
        total += size
        if total >= limit:
            yield block
            block, total = [], 0
    if block:
        yield block


@dataclass(frozen=True)
class Predictor:
    """What a scoring task needs, pickled into each task: the broadcast model and how to turn its inputs into
    ``[id, p_default, reason_1..]`` batches (``pandas`` for mapInPandas, ``arrow`` for mapInArrow). The loaded model
    is cached per worker by :func:`cached_model` (module level, so it is not copied into each task)."""

    version: str
    blob: Any
    ident: str
    features: list[str]
    calibrator: dict[str, Any]
    labels: list[str]
    categorical: list[str]
    reasons: int
    explain_from: float | None

    def pandas(self, batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        features, reasons = self.features, self.reasons
        model, threads = cached_model(self.version, self.blob), task_threads()
        reason_cols = risk.reason_columns(reasons)
        limit = SHAP_BLOCK_CELLS if reasons else 0
        for block in blocks(((len(pdf) * len(features), pdf) for pdf in batches if len(pdf)), limit):
            pdf = block[0] if len(block) == 1 else pd.concat(block, ignore_index=True)
            x = pdf[features]
            proba = calibration.apply(self.calibrator, model.predict_proba(x, thread_count=threads)[:, 1])
            out = pd.DataFrame({self.ident: pdf[self.ident], "p_default": proba})
            if reasons:
                rows = explained(proba, self.explain_from)
                part = x.iloc[rows]
                values = [part[f].tolist() for f in features]
                cols = (risk.top_reasons(_shap(model, part, self.categorical, threads), values, self.labels, reasons)
                        if len(rows) else [[] for _ in reason_cols])
                for name, col in zip(reason_cols, cols):
                    out[name] = spread(col, rows, len(pdf))
            yield out

    def arrow(self, batches: Iterator[Any]) -> Iterator[Any]:
        import numpy as np
        import pyarrow as pa

        features, reasons, ident = self.features, self.reasons, self.ident
        model, threads = cached_model(self.version, self.blob), task_threads()
        reason_cols = risk.reason_columns(reasons)
        limit = SHAP_BLOCK_CELLS if reasons else 0
        for block in blocks(((b.num_rows * len(features), b) for b in batches if b.num_rows), limit):
            parts = [np.column_stack([b.column(f).to_numpy(zero_copy_only=False).astype(np.float64, copy=False)
                                      for f in features]) for b in block]
            x = parts[0] if len(parts) == 1 else np.vstack(parts)
            proba = calibration.apply(self.calibrator, model.predict_proba(x, thread_count=threads)[:, 1])
            ids = block[0].column(ident) if len(block) == 1 else pa.concat_arrays([b.column(ident) for b in block])
            arrays = [ids, pa.array(proba, pa.float64())]
            if reasons:
                rows = explained(proba, self.explain_from)
                part = x if len(rows) == len(x) else x[rows]  # every row: no copy of the block
                cols = risk.top_reasons(_shap(model, part, [], threads), part, self.labels, reasons) if len(rows) \
                    else [[] for _ in reason_cols]
                arrays += [pa.array(spread(col, rows, len(x)), pa.string()) for col in cols]
            yield pa.RecordBatch.from_arrays(arrays, names=[ident, "p_default", *reason_cols])


def predict_frame(df: Any, bundle: ModelBundle, schema: DataSchema, udf: str = "arrow", calibrated: bool = True,
                  reasons: int = 0, explain_from: float | None = None, files: FileBatch | None = None) -> Any:
    """Spark DataFrame [id, p_default] for the rows of ``df`` (which needs the id and the model's raw columns).
    ``udf``: ``arrow`` (mapInArrow, numeric models) or ``pandas`` (mapInPandas). ``calibrated=False``: the
    model's raw score, its calibrator left out. ``reasons``: that many reason columns (``reason_1``..) too, the
    features pushing each row's PD up most with their values (``loanpipe.ml.risk.top_reasons``); with
    ``explain_from``, only for the rows whose PD is at least that (the others' reason columns are empty).
    ``files``: the same rows as files the tasks read themselves (:class:`FileBatch`), used with the ``arrow`` udf
    for a numeric model; ``df`` is read otherwise."""
    if udf not in UDF_KINDS:
        raise ValueError(f"scoring udf must be one of {UDF_KINDS} (got {udf!r})")
    spark = df.sparkSession
    spec = bundle.spec
    ident = schema.id_column
    features = list(spec.features)
    predictor = Predictor(bundle.version, spark.sparkContext.broadcast(bundle.native), ident, features,
                          dict(spec.calibration) if calibrated else {}, risk.feature_labels(features, spec.pairs),
                          [f for f in features if f in set(spec.categorical)], reasons, explain_from)
    id_type = "string" if schema.id_is_string else "long"
    out_schema = ", ".join([f"{ident} {id_type}", "p_default double",
                            *(f"{c} string" for c in risk.reason_columns(reasons))])
    if reads_files(bundle, udf, files):
        rows = int(spark.conf.get("spark.sql.execution.arrow.maxRecordsPerBatch"))

        def predict_files(paths: Iterator[Any]) -> Iterator[Any]:
            yield from predictor.arrow(task_inputs(paths, files, spec, ident, rows))

        return file_list(spark, files).mapInArrow(predict_files, schema=out_schema)
    inputs = df.select(ident, *spec.spark_columns())
    if udf == "arrow" and not spec.categorical:
        return inputs.mapInArrow(predictor.arrow, schema=out_schema)
    return inputs.mapInPandas(predictor.pandas, schema=out_schema)


def score_batch(batch: Any, bundle: ModelBundle, schema: DataSchema, cutoff: float, scored_at: dt.datetime,
                udf: str = "arrow", master_scale: list[float] | None = None, reasons: int = 0,
                reasons_for: str = "all", files: FileBatch | None = None) -> Any:
    """The business's output: id, default probability, rating grade on ``master_scale`` (when given), decision at
    ``cutoff``, ``reasons`` reason columns (for every row, or ``reasons_for="declined"``: the rows declined at
    ``cutoff`` only), model version, scoring time. ``files``: see :func:`predict_frame`."""
    from pyspark.sql import functions as F

    explain_from = cutoff if reasons_for == "declined" else None
    return predict_frame(batch, bundle, schema, udf, reasons=reasons, explain_from=explain_from, files=files).select(
        schema.id_column,
        "p_default",
        *([risk.grade_column(F.col("p_default"), master_scale).alias("grade")] if master_scale else []),
        (F.col("p_default") >= F.lit(cutoff)).cast("int").alias("decision"),
        *risk.reason_columns(reasons),
        F.lit(bundle.version).alias("model_version"),
        F.lit(scored_at).cast("timestamp").alias("scored_at"),
    )
