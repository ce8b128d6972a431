"""The new-data job on a real local Spark: rates, no repeats, leak mode, idempotency, and each bad input."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loanpipe.core import catalog, storage
from loanpipe.core.config import Config
from loanpipe.jobs.ingest import run_ingest
from loanpipe.jobs.data_gen import SamplingError, make_request, sample_batch
from loanpipe.core.storage import open_lake

pytestmark = pytest.mark.spark
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def pristine(base_config: Config, tmp_path_factory: pytest.TempPathFactory, spark) -> Path:
    """A 4,000-row synthetic lake (1,200 test rows), ingested once; tests copy it."""
    root = tmp_path_factory.mktemp("datagen") / "lake"
    run_ingest(base_config.replace(storage={"root": str(root)}), rows=4000, seed=21, spark=spark)
    return root


@pytest.fixture()
def cfg(base_config: Config, pristine: Path, tmp_path: Path) -> Config:
    root = tmp_path / "lake"
    shutil.copytree(pristine, root)
    return base_config.replace(storage={"root": str(root)})


def sample(cfg: Config, spark, date: str, **kw) -> dict:
    return sample_batch(cfg, open_lake(cfg.storage), spark, make_request(cfg, date, **kw))


def batch_ids(cfg: Config, spark, date: str) -> list[int]:
    lake = open_lake(cfg.storage)
    return [r.id for r in spark.read.parquet(lake.partition_uri(storage.TEST_SAMPLE, date)).select("id").collect()]


def test_batch_size_rate_and_label(cfg: Config, spark) -> None:
    summary = sample(cfg, spark, "2026-11-01")
    assert summary["rows"] == 120 == summary["test_rows"] // 10  # 10% of test by default
    assert 0.0 < summary["default_rate"] < 0.3
    lake = open_lake(cfg.storage)
    df = spark.read.parquet(lake.partition_uri(storage.TEST_SAMPLE, "2026-11-01"))
    assert "loss" not in df.columns and "default" not in df.columns  # an application arrives without its outcome
    assert dict(df.dtypes)["f1"] == "double"
    # ... which arrives outcomes.lag_days later, one record per application, with test/'s label
    arrival = summary["outcomes"]["arrival_date"]
    assert arrival == (dt.date(2026, 11, 1) + dt.timedelta(days=cfg.outcomes.lag_days)).isoformat() == "2026-11-03"
    records = pd.read_parquet(lake.partition_uri(storage.OUTCOMES, arrival, "arrival_date"))
    test = pd.read_parquet(lake.uri(storage.TEST), columns=["id", "loss", "default"])
    assert sorted(records["id"]) == sorted(df.toPandas()["id"]) and records["sequence"].tolist() == list(range(120))
    joined = records.merge(test, on="id", suffixes=("", "_test"))
    assert (joined["loss"] == joined["loss_test"]).all() and (joined["default"] == joined["default_test"]).all()
    assert summary["defaults"] == records["default"].sum() and set(records["source_file"]) == {"data_gen 2026-11-01"}
    assert lake.list_partitions(storage.OUTCOMES, key="arrival_date") == ["2026-11-03"]
    assert lake.is_published(summary["output_path"])
    assert lake.read_json(catalog.data_gen_summary(lake, make_request(cfg, "2026-11-01").run_date)) == summary
    assert summary["repeated_rows"] == {"within_batch": 0, "in_other_batches": 0, "in_train_sup": 0}


def test_sampling_rate_over_many_dates_and_no_repeats(cfg: Config, spark) -> None:
    seen: set[int] = set()
    for day in range(1, 6):
        summary = sample(cfg, spark, f"2026-11-0{day}", fraction=0.15)
        ids = batch_ids(cfg, spark, f"2026-11-0{day}")
        assert len(ids) == summary["rows"] == 180
        assert not seen & set(ids), "a row was sampled twice without --with-replacement"
        seen |= set(ids)
    # the default rate of the batches tracks test's (stratification at ingest, uniform sampling here)
    lake = open_lake(cfg.storage)
    all_batches = spark.read.parquet(lake.uri(storage.TEST_SAMPLE))
    outcomes = spark.read.parquet(lake.uri(storage.OUTCOMES))
    test = spark.read.parquet(lake.uri(storage.TEST))
    rate = lambda df: df.filter("default = 1").count() / df.count()  # noqa: E731
    assert outcomes.count() == all_batches.count() == 900
    assert abs(rate(outcomes) - rate(test)) < 0.04
    assert sorted(r.run_date.isoformat() for r in all_batches.select("run_date").distinct().collect()) == [
        f"2026-11-0{d}" for d in range(1, 6)]


def test_rerun_replaces_only_its_partition(cfg: Config, spark) -> None:
    sample(cfg, spark, "2026-11-01")
    sample(cfg, spark, "2026-11-02")
    first = sorted(batch_ids(cfg, spark, "2026-11-02"))
    other = sorted(batch_ids(cfg, spark, "2026-11-01"))
    again = sample(cfg, spark, "2026-11-02")
    assert sorted(batch_ids(cfg, spark, "2026-11-02")) == first  # same batch, not appended
    assert sorted(batch_ids(cfg, spark, "2026-11-01")) == other
    assert again["rows"] == len(first)
    assert os.listdir(open_lake(cfg.storage).uri(storage.STAGING)) == []


def test_leak_mode_repeats_rows_and_counts_them(cfg: Config, spark) -> None:
    sample(cfg, spark, "2026-11-01", fraction=0.5)
    summary = sample(cfg, spark, "2026-11-02", fraction=0.5, with_replacement=True)
    ids = batch_ids(cfg, spark, "2026-11-02")
    assert len(ids) == 600
    earlier = set(batch_ids(cfg, spark, "2026-11-01"))
    repeats = summary["repeated_rows"]
    assert repeats["within_batch"] == len(ids) - len(set(ids)) > 0
    assert repeats["in_other_batches"] == sum(1 for i in ids if i in earlier) > 0
    assert summary["with_replacement"] is True


def test_leak_counts_rows_already_in_train_sup(cfg: Config, spark) -> None:
    lake = open_lake(cfg.storage)
    test = spark.read.parquet(lake.uri(storage.TEST))
    catalog.write_dataset(lake, test.limit(600), catalog.train_sup_batch(lake, "2026-10-01"))  # a labelled batch
    summary = sample(cfg, spark, "2026-11-03", with_replacement=True)
    sup_ids = {r.id for r in test.limit(600).select("id").collect()}
    assert summary["repeated_rows"]["in_train_sup"] == sum(1 for i in batch_ids(cfg, spark, "2026-11-03") if i in sup_ids)


def test_not_enough_unsampled_rows(cfg: Config, spark) -> None:
    first = sample(cfg, spark, "2026-11-01", fraction=0.6)
    total, taken = first["test_rows"], first["rows"]
    lake = open_lake(cfg.storage)
    before = sorted(os.listdir(lake.uri(storage.TEST_SAMPLE)))
    with pytest.raises(SamplingError, match=rf"only {total - taken} unsampled rows are left in test/ \({total} rows, "
                                            rf"{taken} already in other batches\), but the batch needs {taken}"):
        sample(cfg, spark, "2026-11-02", fraction=0.6)
    assert sorted(os.listdir(lake.uri(storage.TEST_SAMPLE))) == before


@pytest.mark.parametrize("fraction", [0.0, -0.1, 1.5])
def test_fraction_outside_range(cfg: Config, fraction: float) -> None:
    with pytest.raises(SamplingError, match=r"fraction must be in \(0, 1\]"):
        make_request(cfg, "2026-11-01", fraction=fraction)


def test_malformed_run_date(cfg: Config) -> None:
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        make_request(cfg, "2026/11/01")


def test_missing_or_empty_test_folder(cfg: Config, spark) -> None:
    lake = open_lake(cfg.storage)
    shutil.rmtree(lake.uri(storage.TEST))
    with pytest.raises(SamplingError, match="test is missing or empty.*make ingest"):
        sample(cfg, spark, "2026-11-01")
    os.makedirs(lake.uri(storage.TEST))
    with pytest.raises(SamplingError, match="missing or empty"):
        sample(cfg, spark, "2026-11-01")
    assert lake.list_partitions(storage.TEST_SAMPLE) == []


def test_schema_mismatch(cfg: Config, spark) -> None:
    lake = open_lake(cfg.storage)
    test = spark.read.parquet(lake.uri(storage.TEST))
    test.drop("f7").write.parquet(lake.uri("variant_missing"))
    test.withColumn("f9", test["f9"].cast("string")).write.parquet(lake.uri("variant_type"))
    for variant, message in (
        ("variant_missing", r"does not match the configured schema: .*feature column\(s\) \['f7'\] are missing"),
        ("variant_type", r"does not match the configured schema: .*f9: string \(expected a number\)"),
    ):
        shutil.rmtree(lake.uri(storage.TEST))
        shutil.copytree(lake.uri(variant), lake.uri(storage.TEST))
        with pytest.raises(SamplingError, match=message):
            sample(cfg, spark, "2026-11-01")
    strict = cfg.replace(schema={"categorical_columns": ["f10"]})
    with pytest.raises(SamplingError, match=r"f10: double \(expected string, categorical\)"):
        sample(strict, spark, "2026-11-01")
    assert lake.list_partitions(storage.TEST_SAMPLE) == []


def test_entry_script_end_to_end(cfg: Config, tmp_path: Path) -> None:
    """data_gen/data_gen.py as a process (the way the DAG runs it), with its exit codes."""
    conf = tmp_path / "conf.yaml"
    conf.write_text(f"storage:\n  root: {cfg.storage.root}\nspark:\n  master: local[1]\n  driver_memory: 2g\n")
    env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1"}
    script = str(ROOT / "data_gen" / "data_gen.py")
    ok = subprocess.run([sys.executable, script, "--run-date", "2026-11-05", "--config", str(conf)],
                        capture_output=True, text=True, env=env, timeout=300)
    assert ok.returncode == 0, ok.stderr[-2000:]
    summary = json.loads(ok.stdout[ok.stdout.index("{"):])
    assert summary["run_date"] == "2026-11-05" and summary["rows"] == 120
    bad = subprocess.run([sys.executable, script, "--run-date", "2026-11-05", "--fraction", "2", "--config", str(conf)],
                         capture_output=True, text=True, env=env, timeout=120)
    assert bad.returncode == 2 and "fraction must be in (0, 1]" in bad.stderr
    helptext = subprocess.run([sys.executable, script, "--help"], capture_output=True, text=True, timeout=60)
    assert helptext.returncode == 0 and "--with-replacement" in helptext.stdout


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(days=st.lists(st.dates(dt.date(2026, 1, 1), dt.date(2026, 12, 31)), min_size=2, max_size=4, unique=True),
       fraction=st.sampled_from([0.05, 0.1, 0.2]))
def test_sampling_never_repeats_a_row_across_dates(cfg: Config, spark, days: list[dt.date], fraction: float) -> None:
    """Without replacement, in any order of run dates, no application appears in two batches."""
    lake = open_lake(cfg.storage)
    lake.remove(lake.uri(storage.TEST_SAMPLE))  # each example starts with no batch
    seen: set[int] = set()
    for day in days:
        sample(cfg, spark, day.isoformat(), fraction=fraction)
        ids = batch_ids(cfg, spark, day.isoformat())
        assert len(ids) == len(set(ids)) and not seen & set(ids), day
        seen |= set(ids)
