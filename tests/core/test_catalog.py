"""The lake catalog: one location per function, and the two ways to write (a dataset, a folder of files)."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest

from loanpipe.core import catalog, storage
from loanpipe.core.storage import Lake, LocalLake, StorageError


@pytest.fixture()
def lake(tmp_path: Path) -> Lake:
    lake = LocalLake(str(tmp_path / "lake"))
    lake.ensure_layout()
    return lake


def test_locations(lake: Lake) -> None:
    d = dt.date(2026, 11, 29)
    r = lake.root
    assert catalog.batch(lake, d) == f"{r}/test_sample/run_date=2026-11-29"
    assert catalog.scores(lake, "2026-11-29") == f"{r}/test_sample_inference/run_date=2026-11-29"
    assert catalog.run_artifact(lake, d, "roc.png") == f"{r}/artifacts/runs/2026-11-29/roc.png"
    assert catalog.data_gen_summary(lake, d) == f"{r}/artifacts/data_gen/2026-11-29/summary.json"
    assert catalog.model(lake, "v1", "spec.json") == f"{r}/artifacts/models/v1/spec.json"
    assert catalog.ledger(lake) == f"{r}/artifacts/models/ledger.json"
    assert catalog.alert(lake, d, "late-scores.html") == f"{r}/artifacts/alerts/2026-11-29/late-scores.html"
    assert catalog.run_lock(lake, d) == f"{r}/_locks/2026-11-29.json"
    assert catalog.quarantine(lake, d) == f"{r}/test_sample_quarantine/run_date=2026-11-29"
    assert catalog.contract(lake) == f"{r}/artifacts/contract.json"
    assert {label for label, _ in catalog.downstream(lake)} == {
        "test_sample", "train_sup", "test_sample_inference", "test_sample_quarantine", "artifacts/models", "artifacts/runs",
        "artifacts/data_gen", "artifacts/alerts"}


def test_dates_are_the_published_ones(lake: Lake) -> None:
    for day in ("2026-11-02", "2026-11-01", "2026-11-03"):
        catalog.publish_folder(lake, catalog.batch(lake, day), {"part-0.parquet": b"x"})
    os.remove(Path(catalog.batch(lake, "2026-11-03")) / storage.SUCCESS)  # a half-written date
    assert catalog.batch_dates(lake) == ["2026-11-01", "2026-11-02"]
    assert catalog.score_dates(lake) == []


def test_publish_folder_replaces_the_whole_folder(lake: Lake) -> None:
    target = catalog.run_artifact(lake, "2026-11-29")
    catalog.publish_folder(lake, target, {"old.png": b"1", "summary.json": {"v": 1}})
    catalog.publish_folder(lake, target, {"summary.json": {"v": 2}, "roc.png": b"\x89PNG"})
    assert lake.published_files(target) == [f"{target}/roc.png", f"{target}/summary.json"]  # old.png is gone
    assert lake.read_json(f"{target}/summary.json") == {"v": 2}
    assert os.listdir(lake.uri(storage.STAGING)) == []


@pytest.mark.spark
def test_write_dataset_counts_checks_and_publishes_whole(lake: Lake, spark) -> None:  # noqa: ANN001
    df = spark.createDataFrame([(1, None), (2, 0.5), (3, 1.5)], "id long, x double")
    target = catalog.scores(lake, "2026-11-29")
    got = catalog.write_dataset(lake, df, target, expect_rows=3,
                                inspect=lambda w: {"nulls": w.filter("x is null").count()})
    assert got == {"nulls": 1, "rows": 3, "path": target}
    assert lake.is_published(target) and spark.read.parquet(target).count() == 3
    with pytest.raises(StorageError, match="wrote 2 rows .* expected 3; nothing was published"):
        catalog.write_dataset(lake, df.limit(2), target, expect_rows=3)
    assert spark.read.parquet(target).count() == 3  # the earlier version stays
    assert os.listdir(lake.uri(storage.STAGING)) == []


@pytest.mark.spark
def test_write_table_publishes_what_the_driver_holds_as_spark_reads_it(lake: Lake, spark) -> None:  # noqa: ANN001
    import pyarrow as pa

    target = catalog.quarantine(lake, "2026-11-29")
    table = pa.table({"id": pa.array([7, None], pa.int64()), "reason": ["non_finite", "null_id"]})
    assert catalog.write_table(lake, table, target, expect_rows=2) == {"rows": 2, "path": target}
    assert lake.is_published(target) and len(lake.published_files(target)) == 1
    assert sorted((r.id or 0, r.reason) for r in spark.read.parquet(target).collect()) == [(0, "null_id"), (7, "non_finite")]
    with pytest.raises(StorageError, match="1 rows for .* expected 2; nothing was published"):
        catalog.write_table(lake, table.slice(0, 1), target, expect_rows=2)
    assert spark.read.parquet(target).count() == 2  # the earlier version stays
    # none: an empty file with the columns, which Spark reads as an empty frame
    empty = catalog.empty_table(spark.createDataFrame([], "id long, reason string").schema)
    catalog.write_table(lake, empty, target, expect_rows=0)
    assert spark.read.parquet(target).count() == 0 and spark.read.parquet(target).columns == ["id", "reason"]
    assert os.listdir(lake.uri(storage.STAGING)) == []


def test_read_table_reads_what_spark_wrote_up_to_a_row_limit(lake: Lake, spark) -> None:  # noqa: ANN001
    """A small published dataset on the driver, without Spark: exactly its files, the columns asked for, and
    nothing (None) when its footers add up to more rows than allowed."""
    target = catalog.batch(lake, "2026-11-29")
    df = spark.createDataFrame([(i, float(i), "x") for i in range(10)], "id long, f1 double, s string")
    catalog.write_dataset(lake, df.repartition(3), target, expect_rows=10)
    assert len([f for f in os.listdir(lake._local(target)) if f.endswith(".parquet")]) == 3
    table = catalog.read_table(lake, target, ["id", "f1"], max_rows=10)
    assert table.column_names == ["id", "f1"] and sorted(table.column("id").to_pylist()) == list(range(10))
    assert catalog.read_table(lake, target, max_rows=9) is None
    assert catalog.read_table(lake, target).num_rows == 10
    with pytest.raises(StorageError, match="no _SUCCESS marker"):
        catalog.read_table(lake, catalog.batch(lake, "2026-11-30"))


def test_read_dates_is_one_relation_whatever_the_history(lake: Lake, spark) -> None:  # noqa: ANN001
    """Many dates are read as one scan with their run_date, not a union per date (whose plan, and cost, grew with
    every day of history: bench/results/growth-4617ff7-stopped.json)."""
    dates = [f"2030-01-{d:02d}" for d in range(1, 13)]
    for i, d in enumerate(dates):
        df = spark.createDataFrame([(i * 10 + k, float(k)) for k in range(3)], "id long, f1 double")
        catalog.write_dataset(lake, df, catalog.train_sup_batch(lake, d), expect_rows=3)
    frame = catalog.read_dates(spark, catalog.train_sup(lake), [catalog.train_sup_batch(lake, d) for d in dates[:10]])
    got = frame.select("id", frame.run_date.cast("string").alias("day")).toPandas()
    assert len(got) == 30 and sorted(set(got["day"])) == dates[:10]  # only the dates asked for
    assert dict(zip(got["id"], got["day"]))[95 // 10 * 10] == "2030-01-10"
    plan = frame._jdf.queryExecution().optimizedPlan().toString()
    assert plan.count("Relation") == 1, plan
    assert catalog.read_dates(spark, catalog.train_sup(lake), []) is None
