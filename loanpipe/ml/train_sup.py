"""train_sup: the training data enriched with the labelled daily batches, as of a run date.

Each batch is appended once as ``train_sup/run_date=D`` (a rerun replaces that partition, nothing else);
train_sup *as of D* is ``train/`` + the batches of dates <= D, one row per id (the latest date wins), columns by
name. The daily write is one batch, whatever the history.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from loanpipe.core import catalog, storage
from loanpipe.core.schema import DataSchema
from loanpipe.core.storage import Lake


def build_train_sup(train: Any, batches: Any | None, schema: DataSchema) -> Any:
    """train + the labelled batches, columns by name, one row per id: the latest date wins. ``batches``: one
    frame of every batch's rows with their date in ``run_date`` (as the partitioned read gives it), or None."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    cols = schema.lake_columns()
    union = train.select(*cols).withColumn("_order", F.lit(""))
    if batches is not None:
        union = union.unionByName(batches.select(*cols, F.col(storage.PARTITION_KEY).cast("string").alias("_order")))
    latest = F.row_number().over(Window.partitionBy(schema.id_column).orderBy(F.col("_order").desc()))
    return union.withColumn("_rn", latest).filter("_rn = 1").drop("_rn", "_order")


def train_sup_as_of(lake: Lake, spark: Any, schema: DataSchema, run_date: dt.date) -> tuple[Any, list[str]]:
    """train_sup as of ``run_date`` (a lazy frame) and the batch dates it holds; the batches are one read of their
    partitions (``catalog.read_dates``), so the cost does not grow with history."""
    dates = [d for d in catalog.train_sup_dates(lake) if d <= run_date.isoformat()]
    batches = catalog.read_dates(spark, catalog.train_sup(lake), [catalog.train_sup_batch(lake, d) for d in dates])
    return build_train_sup(spark.read.parquet(catalog.train(lake)), batches, schema), dates
