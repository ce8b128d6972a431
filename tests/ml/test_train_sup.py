"""train_sup as of a date (``loanpipe.ml.train_sup``) on tiny inline frames."""

from __future__ import annotations

import pytest
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from loanpipe.core.schema import DataSchema
from loanpipe.ml.train_sup import build_train_sup

pytestmark = pytest.mark.spark


def test_build_train_sup_keeps_one_row_per_id_the_latest_label_winning(spark, tiny_frame, tiny_schema: DataSchema) -> None:  # noqa: ANN001
    train = tiny_frame([(1, 0.1, None, 0, 0), (2, 0.2, 0.2, 0, 0), (3, None, 0.3, 0, 0)])
    day1 = tiny_frame([(3, 0.3, 0.3, 5, 1), (4, 0.4, None, 0, 0)])
    day2 = tiny_frame([(4, 0.4, 0.4, 8, 1), (5, None, 0.5, 0, 0)])
    def dated(day: str, df):  # noqa: ANN001, ANN202 - as the partitioned read of train_sup/ gives the batches
        return df.withColumn("run_date", F.lit(day).cast("date"))

    got = build_train_sup(train, dated("2026-11-01", day1).unionByName(dated("2026-11-02", day2)), tiny_schema)
    expected = tiny_frame([(1, 0.1, None, 0, 0), (2, 0.2, 0.2, 0, 0), (3, 0.3, 0.3, 5, 1), (4, 0.4, 0.4, 8, 1),
                             (5, None, 0.5, 0, 0)])
    assertDataFrameEqual(got, expected)
    assert got.columns == tiny_schema.lake_columns()
    # batches whose columns come in another order are matched by name
    shuffled = day2.select("default", "loss", "f2", "f1", "id")
    assertDataFrameEqual(build_train_sup(
        train, dated("2026-11-01", day1).unionByName(dated("2026-11-02", shuffled)), tiny_schema), expected)
    assertDataFrameEqual(build_train_sup(train, None, tiny_schema), train)  # no batches yet
