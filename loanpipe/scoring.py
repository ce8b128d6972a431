"""Scoring on Spark: the model's preprocessing as column expressions, CatBoost in ``mapInPandas``.

Only the id and the raw columns the model needs are read; the label is never selected. The native model is
broadcast once and loaded once per Python worker; Arrow moves the (narrow) feature batches.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pandas as pd

from loanpipe.model import ModelBundle
from loanpipe.schema import DataSchema

_MODEL_CACHE: dict[str, Any] = {}


def predict_frame(df: Any, bundle: ModelBundle, schema: DataSchema) -> Any:
    """Spark DataFrame [id, p_default] for the rows of ``df`` (which needs the id and the model's raw columns)."""
    spark = df.sparkSession
    spec = bundle.spec
    ident = schema.id_column
    inputs = df.select(ident, *spec.spark_columns())
    blob = spark.sparkContext.broadcast(bundle.native)
    version = bundle.version
    features = list(spec.features)

    def predict(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        model = _MODEL_CACHE.get(version)
        if model is None:
            from loanpipe.engine import load_native

            model = _MODEL_CACHE[version] = load_native(blob.value)
        for pdf in batches:
            if len(pdf) == 0:
                continue
            proba = model.predict_proba(pdf[features])[:, 1]
            yield pd.DataFrame({ident: pdf[ident], "p_default": proba})

    id_type = "string" if schema.id_is_string else "long"
    return inputs.mapInPandas(predict, schema=f"{ident} {id_type}, p_default double")


def score_batch(batch: Any, bundle: ModelBundle, schema: DataSchema, cutoff: float, scored_at: dt.datetime) -> Any:
    """The business's output: id, default probability, decision at ``cutoff``, model version, scoring time."""
    from pyspark.sql import functions as F

    return predict_frame(batch, bundle, schema).select(
        schema.id_column,
        "p_default",
        (F.col("p_default") >= F.lit(cutoff)).cast("int").alias("decision"),
        F.lit(bundle.version).alias("model_version"),
        F.lit(scored_at).cast("timestamp").alias("scored_at"),
    )
