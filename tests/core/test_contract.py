"""The data contract: learnt from train/, each batch row checked, bad rows set aside with their reason."""

from __future__ import annotations

import math

import pyarrow as pa
import pytest

from loanpipe.core import contract
from loanpipe.core.config import QualityConfig, SchemaConfig
from loanpipe.core.schema import DataSchema

SCHEMA = DataSchema.from_columns(SchemaConfig(categorical_columns=["purpose"]), ["id", "f1", "f2", "konst", "purpose", "loss"],
                                 source="test")
CONTRACT = {"numeric": {"f1": [0.0, 10.0], "f2": [-1.0, 1.0], "konst": [5.0, 5.0]},
            "categorical": {"purpose": ["car", "house"]}}


def batch(rows: list[tuple]) -> pa.RecordBatch:
    ids, f1, f2, konst, purpose = zip(*rows)
    return pa.RecordBatch.from_arrays([pa.array(ids, pa.int64()), pa.array(f1, pa.float64()), pa.array(f2, pa.float64()),
                                       pa.array(konst, pa.float64()), pa.array(purpose, pa.string())],
                                      names=["id", "f1", "f2", "konst", "purpose"])


def test_each_row_gets_the_first_reason_that_applies() -> None:
    rows = [
        (1, 5.0, 0.0, 5.0, "car"),              # fine
        (2, None, math.nan, 5.0, None),         # missing values are allowed
        (None, math.inf, 0.0, 5.0, "car"),      # empty id first, though f1 is infinite too
        (4, 5.0, -math.inf, 5.0, "car"),        # -inf
        (5, 20.0, 0.0, 5.0, "car"),             # 20 is within [0 - 10, 10 + 10]: plausible
        (6, 20.01, 0.0, 5.0, "car"),            # beyond it
        (7, 5.0, -3.01, 99.0, "car"),           # f2 beyond [-3, 3]; konst is constant in training: not checked
        (8, 5.0, 0.0, 5.0, "boat"),             # a new level: scored, reported
    ]
    reason, detail, new = contract.row_reasons(batch(rows), CONTRACT, SCHEMA, margin=1.0)
    assert reason == [None, None, "null_id", "non_finite", None, "out_of_range", "out_of_range", None]
    assert detail[2] == "id is empty" and detail[3] == "f2 = -inf"
    assert detail[5] == "f1 = 20.01, outside the training range [0, 10] widened by 1 x its width"
    assert detail[6].startswith("f2 = -3.01, outside the training range [-1, 1]")
    assert new == [None] * 7 + ["purpose=boat"]
    # margin 0: the training range itself
    reason, _, _ = contract.row_reasons(batch(rows), CONTRACT, SCHEMA, margin=0.0)
    assert reason[4] == "out_of_range"


@pytest.mark.spark
def test_learn_takes_finite_ranges_and_seen_levels(spark) -> None:
    data = [(i, float(i), (math.inf if i == 3 else math.nan if i == 4 else -float(i)), 5.0, ["car", "house", None][i % 3],
             0) for i in range(1, 40)]
    df = spark.createDataFrame(data, "id long, f1 double, f2 double, konst double, purpose string, loss long")
    learnt = contract.learn(df.repartition(3), SCHEMA)
    assert learnt["numeric"] == {"f1": [1.0, 39.0], "f2": [-39.0, -1.0], "konst": [5.0, 5.0]}
    assert learnt["categorical"] == {"purpose": ["car", "house"]}


def local_of(df, where: str):
    """What the check gets beside the Spark frame: nothing (one Spark pass) or the batch read on the driver."""
    return df.toArrow() if where == "driver" else None


WHERE = pytest.mark.parametrize("where", ["spark", "driver"])


@pytest.mark.spark
@WHERE
def test_check_splits_the_batch_and_counts_every_row(spark, where: str) -> None:
    rows = [(i, 5.0, 0.0, 5.0, "car", 0) for i in range(1, 101)]
    rows[10] = (11, math.inf, 0.0, 5.0, "car", 0)
    rows[20] = (None, 5.0, 0.0, 5.0, "car", 0)
    rows[30] = (31, 5.0, 9.0, 5.0, "car", 0)
    rows += [(41, 5.0, 0.0, 5.0, "car", 7)]          # id 41 again, another outcome: a contradiction
    rows += [(51, 5.0, 0.0, 5.0, "car", 0)]          # id 51 again, the same row: a repeat, scored
    rows[60] = (61, 5.0, 0.0, 5.0, "boat", 0)        # a new level: scored
    df = spark.createDataFrame(rows, "id long, f1 double, f2 double, konst double, purpose string, loss long")
    checked = contract.check(df.repartition(3), CONTRACT, SCHEMA, QualityConfig(examples=2), local_of(df, where))
    report = checked.report
    assert report["rows_in"] == 102 and report["quarantined"] == 5 and report["scored"] == 97
    assert report["by_reason"] == {"null_id": 1, "non_finite": 1, "out_of_range": 1, "duplicate_id": 2}
    assert list(report["by_reason"]) == list(contract.REASONS)  # the contract's order
    assert report["examples"]["duplicate_id"] == [
        {"id": "41", "detail": "id 41 is on 2 rows of the batch, with 2 different sets of values"}] * 2
    assert report["examples"]["non_finite"] == [{"id": "11", "detail": "f1 = inf"}]
    assert report["new_categories"] == {"purpose": {"boat": 1}}
    assert checked.good.count() == 97 and checked.good.columns == df.columns
    bad = sorted((r["id"] or 0, r["loss"], r["reason"]) for r in checked.bad.collect())
    assert bad == [(0, 0, "null_id"), (11, 0, "non_finite"), (31, 0, "out_of_range"), (41, 0, "duplicate_id"),
                   (41, 7, "duplicate_id")]
    assert checked.bad.filter("id = 11").first()["f1"] == math.inf  # the original values, as they came
    assert checked.bad.columns == [*df.columns, "reason", "detail"]
    assert sorted(r["id"] for r in checked.good.filter("id in (51, 61)").collect()) == [51, 51, 61]
    # the ids whose rows the file-reading scoring tasks leave out (loanpipe.ml.scoring.FileBatch): the bad rows' ids
    assert sorted(checked.bad_ids, key=lambda i: -1 if i is None else i) == [None, 11, 31, 41]


@pytest.mark.spark
@WHERE
def test_a_clean_batch_is_scored_as_it_is(spark, where: str) -> None:
    rows = [(i, 5.0, 0.0, 5.0, "car", 0) for i in range(1, 21)] + [(3, 5.0, 0.0, 5.0, "car", 0)]  # a repeat is fine
    df = spark.createDataFrame(rows, "id long, f1 double, f2 double, konst double, purpose string, loss long")
    checked = contract.check(df, CONTRACT, SCHEMA, QualityConfig(), local_of(df, where))
    assert checked.report["quarantined"] == 0 and checked.report["rows_in"] == 21
    assert checked.good is df and checked.bad_ids == []  # no join: the batch itself
    assert checked.bad.count() == 0 and checked.bad.columns == [*df.columns, "reason", "detail"]


@pytest.mark.spark
@WHERE
def test_exact_repeats_of_a_bad_row_are_all_set_aside_once_each(spark, where: str) -> None:
    rows = [(i, 5.0, 0.0, 5.0, "car", 0) for i in range(1, 21)] + [(7, math.inf, 0.0, 5.0, "car", 0)] * 2
    df = spark.createDataFrame(rows, "id long, f1 double, f2 double, konst double, purpose string, loss long")
    checked = contract.check(df, CONTRACT, SCHEMA, QualityConfig(), local_of(df, where))
    # id 7 is on three rows: twice the same bad row (non_finite, the first reason), once a different good row
    assert checked.report["by_reason"] == {"non_finite": 2, "duplicate_id": 1}
    assert checked.bad.count() == 3 and checked.good.count() == 19 and checked.bad_ids == [7]


def test_failure_text_names_the_share_the_reasons_and_examples() -> None:
    report = {"rows_in": 200, "quarantined": 10, "scored": 190, "by_reason": {"non_finite": 9, "null_id": 1},
              "examples": {"non_finite": [{"id": "3", "detail": "f1 = inf"}], "null_id": [{"id": None, "detail": "id is empty"}]}}
    text = contract.failure_text("/lake/test_sample/run_date=2026-11-02", report, 0.01)
    assert text.startswith("/lake/test_sample/run_date=2026-11-02: 10 of 200 rows (5.0%) break the data contract, "
                           "more than quality.max_bad_share = 1.0%; nothing was scored or published")
    assert "non_finite (a number is +inf or -inf): 9 row(s), e.g. id 3: f1 = inf" in text
    assert "null_id (the id is empty): 1 row(s)" in text
