"""The daily app on a real local Spark: bootstrap, scoring, evaluation, promotion, reruns and bad batches."""

from __future__ import annotations

import datetime as dt
import os
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pyspark.sql import functions as F

from loanpipe.core.context import RunContext
from loanpipe.jobs import app
from loanpipe.jobs.batch import apply_contract, load_batch
from loanpipe.ml.train_sup import train_sup_as_of
from loanpipe.ml import engine, risk, training
from loanpipe.core import catalog, storage
from loanpipe.core.config import Config
from loanpipe.jobs.ingest import run_ingest
from loanpipe.core.catalog import read_schema as read_lake_schema
from loanpipe.ml.bundle import ModelBundle
from loanpipe.ml.model import champion_for, champion_version, ledger, load_model, record_decision, save_model
from loanpipe.jobs.data_gen import make_request, sample_batch
from loanpipe.ml.scoring import score_batch
from loanpipe.core.storage import open_lake

pytestmark = pytest.mark.spark
D1, D2 = dt.date(2026, 11, 1), dt.date(2026, 11, 2)


@pytest.fixture(scope="module")
def small_config(base_config: Config) -> Config:
    # outcomes arrive a day after their batch: D1's matured by D2
    return base_config.replace(model={"iterations": 80, "top_k_features": 15, "max_forward_features": 6,
                                      "engineered_pairs": 4, "auc_floor": 0.75}, outcomes={"lag_days": 1})


@pytest.fixture(scope="module")
def pristine(small_config: Config, tmp_path_factory: pytest.TempPathFactory, spark) -> tuple[Path, dict]:
    """A 6,000-row lake, batches for D1 and D2, and one app run for D1 (which bootstraps the champion)."""
    root = tmp_path_factory.mktemp("app") / "lake"
    cfg = small_config.replace(storage={"root": str(root)})
    run_ingest(cfg, rows=6000, seed=31, spark=spark)
    lake = open_lake(cfg.storage)
    for d in (D1, D2):
        sample_batch(cfg, lake, spark, make_request(cfg, d.isoformat(), fraction=0.25))
    summary = app.run(cfg, lake, spark, D1)
    return root, summary


@pytest.fixture()
def cfg(small_config: Config, pristine: tuple[Path, dict], tmp_path: Path) -> Config:
    root = tmp_path / "lake"
    shutil.copytree(pristine[0], root)
    return small_config.replace(storage={"root": str(root)})




def test_first_run_bootstraps_a_versioned_champion(pristine: tuple[Path, dict], small_config: Config, spark) -> None:
    root, summary = pristine
    lake = open_lake(small_config.replace(storage={"root": str(root)}).storage)
    version = summary["champion"]["version"]
    assert summary["champion"]["bootstrapped"] is True
    champion = load_model(lake, version)
    meta = champion.metadata
    for key in ("training_data", "params", "features", "code_version", "created_at", "engine", "discovery"):
        assert key in meta, key
    assert meta["training_data"]["rows"] == 4200
    # the engine this machine offers (auto): catboost-spark when its classes load, else CatBoost's Python library
    expected_engine = "catboost_spark" if engine.catboost_spark_available(spark) else "python"
    assert meta["engine"] == summary["engine"] == expected_engine
    # the pipeline found engineered pair differences itself, and the model uses them
    assert champion.spec.pairs and all(p["name"] in champion.spec.features for p in champion.spec.pairs)
    disc = meta["discovery"]
    assert disc["forward_selection"] and disc["importance_ranking"]
    table = {r["candidate"]: r for r in disc["candidates"]}
    assert {"all_raw", "all_raw+pairs", "top_k", "forward"} <= set(table)
    for row in table.values():
        assert len(row["fold_aucs"]) == 3 and row["mean_auc"] > 0.5 and row["seconds"] >= 0
    assert disc["decision"]["chosen"] in table and meta["discovered_on"] == "2026-11-01"
    # on the synthetic data the planted pairs beat plain CatBoost on the raw columns
    assert table[disc["decision"]["chosen"]]["mean_auc"] > table["all_raw"]["mean_auc"]
    assert disc["calibration"]["method"] in ("platt", "isotonic", "none")
    assert set(champion.spec.imputation) == set(champion.spec.raw_features)
    assert Path(lake.uri(storage.ARTIFACTS, "models", version, "model.cbm")).stat().st_size > 1000
    # its initial validation, kept in its card for the reports' ECB tests: the chosen candidate's CV AUC and the
    # grades of the sample the PSI reference was drawn from
    initial = champion.initial_validation()
    assert initial["auc"] == table[disc["decision"]["chosen"]]["mean_auc"]
    assert len(initial["grade_counts"]) == len(small_config.risk.master_scale) and sum(initial["grade_counts"]) > 1000
    card = Path(lake.uri(storage.ARTIFACTS, "models", version, "model_card.md")).read_text()
    assert f"- Initial validation, what the reports' AUC decline and concentration tests compare with: AUC {initial['auc']:.4f}" in card


def test_scores_evaluation_and_artifacts(pristine: tuple[Path, dict], small_config: Config, spark) -> None:
    root, summary = pristine
    lake = open_lake(small_config.replace(storage={"root": str(root)}).storage)
    scores = spark.read.parquet(lake.partition_uri(storage.INFERENCE, D1))
    assert scores.dtypes == [("id", "bigint"), ("p_default", "double"), ("grade", "int"), ("decision", "int"),
                             *((f"reason_{k}", "string") for k in range(1, 5)),
                             ("model_version", "string"), ("scored_at", "timestamp")]
    # every scored row has its grade on the master scale, and a reason when its PD is above the lowest grade's
    rows = scores.toPandas()
    assert (rows["grade"].to_numpy() == risk.grade_of(rows["p_default"].to_numpy(),
                                                      small_config.risk.master_scale)).all()
    champion = load_model(lake, summary["champion"]["version"])
    labels = risk.feature_labels(champion.spec.features, champion.spec.pairs)
    named = rows["reason_1"].dropna().str.split(" = ").str[0]
    assert len(named) > 0.9 * len(rows) and set(named) <= set(labels)
    assert rows.loc[rows["reason_2"].notna(), "reason_1"].notna().all()  # reasons fill from the first
    q = summary["quality"]  # every row of the batch is scored or set aside, never lost
    assert q["rows_in"] == summary["batch"]["rows"] == 450 == q["scored"] + q["quarantined"]
    assert scores.count() == summary["scores"]["rows"] == q["scored"]
    # a clean batch: at most a heavy-tailed value far beyond the 4,200 training rows' range is set aside
    assert q["quarantined"] <= 2 and set(q["by_reason"]) <= {"out_of_range"}
    assert scores.filter((F.col("p_default") < 0) | (F.col("p_default") > 1)).count() == 0
    assert lake.is_published(lake.partition_uri(storage.INFERENCE, D1))
    # the first date: no outcome has arrived, so no backtest, no AUC to alert on, no challenger to decide on
    ev = summary["evaluation"]
    assert ev["rows"] == 0 and ev["roc_auc"] is None and ev["reason"].startswith("no outcome has matured yet")
    assert summary["status"] == "OK" and summary["alerts"] == []
    daily = summary["daily"]
    assert daily["rows"] == q["scored"] and abs(daily["expected_default_rate"] - rows["p_default"].mean()) < 1e-12
    assert sum(daily["grade_shares"]) == pytest.approx(1.0)
    assert summary["drift"]["score"]["psi"] < 0.25 and summary["drift"]["features"]
    assert summary["drift"]["rows"] == q["scored"]  # what the PSI was measured on (rediscover_psi_min_rows)
    for name in ("metrics", "trend", "report", "score_histogram"):  # the day's PDs need no outcome
        assert Path(summary["artifacts"][name]).stat().st_size > 0
    assert "roc_curve" not in summary["artifacts"] and "champion_vs_challenger" not in summary["artifacts"]
    page = Path(summary["artifacts"]["report"]).read_text()
    for section in ("The day's scores (no outcome needed)", "no outcome has matured yet", "Stability (PSI",
                    "src='trend.png'", "no decision: 0 defaults and 0 rows matured"):
        assert section in page, section
    assert [p["run_date"] for p in summary["risk"]["trend"]] == ["2026-11-01"]
    assert sum(summary["drift"]["lights"].values()) == len(summary["drift"]["features"])
    card = Path(lake.uri(storage.ARTIFACTS, "models", summary["champion"]["version"], "model_card.md")).read_text()
    assert card.startswith(f"# Model card: {summary['champion']['version']}") and "(chosen)" in card
    assert lake.read_json(catalog.run_artifact(lake, D1, "summary.json")) == summary
    assert set(summary["seconds"]) >= {"check", "champion", "score", "evaluate", "train_sup"}
    ch = summary["challenger"]
    assert ch["version"] is None and ch["promoted"] is False and "challenger" not in summary["seconds"]


def test_labels_are_not_used_for_scoring(cfg: Config, spark) -> None:
    lake = open_lake(cfg.storage)
    schema = read_lake_schema(lake)
    champion = load_model(lake, champion_version(lake))
    batch = spark.read.parquet(lake.partition_uri(storage.TEST_SAMPLE, D1))
    when = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    base = score_batch(batch, champion, schema, 0.5, when).select("id", "p_default").toPandas().sort_values("id")
    permuted = batch.withColumn("loss", F.lit(100)).withColumn("default", (F.rand(7) < 0.5).cast("int"))
    again = score_batch(permuted, champion, schema, 0.5, when).select("id", "p_default").toPandas().sort_values("id")
    assert np.array_equal(base["p_default"].to_numpy(), again["p_default"].to_numpy())
    without = score_batch(batch.drop("loss", "default"), champion, schema, 0.5, when).count()
    assert without == batch.count()
    # the two Spark scoring paths give the same probabilities
    by_pandas = score_batch(batch, champion, schema, 0.5, when, udf="pandas").select("id", "p_default")
    assert np.allclose(by_pandas.toPandas().sort_values("id")["p_default"].to_numpy(), base["p_default"].to_numpy(),
                       rtol=0, atol=1e-12)


def _scores(spark, lake, day: dt.date):  # noqa: ANN001, ANN202
    return spark.read.parquet(catalog.scores(lake, day)).toPandas().sort_values("id").reset_index(drop=True)


def test_rerun_replaces_outputs_and_adds_nothing_twice(cfg: Config, spark) -> None:
    lake = open_lake(cfg.storage)
    first = lake.read_json(catalog.run_artifact(lake, D1, "summary.json"))
    before, records = _scores(spark, lake, D1), ledger(lake)
    second = app.run(cfg, lake, spark, D1)
    # the same transaction again: the same model scores the same rows to the same bits, at the same logical time
    after = _scores(spark, lake, D1)
    pd.testing.assert_frame_equal(after, before, check_exact=True)
    assert set(after["model_version"]) == {first["champion"]["version"]} == {"20261101-bootstrap"}
    assert set(after["scored_at"]) == {pd.Timestamp("2026-11-01 00:00:00")}
    assert ledger(lake) == records and list(records) == ["2026-11-01"]  # its record replaced, not appended
    for key in ("version", "promoted", "champion_auc", "challenger_auc", "p_value", "reason"):
        assert second["challenger"].get(key) == first["challenger"].get(key), key
    assert second["champion"]["bootstrapped"] is True and second["serving_after_run"] == first["serving_after_run"]
    assert second["train_sup"]["rows"] == first["train_sup"]["rows"] == 4200  # nothing matured by D1
    assert train_sup_as_of(lake, spark, read_lake_schema(lake), D1)[0].count() == 4200
    assert lake.list_partitions(storage.TRAIN_SUP) == [D1.isoformat()]  # D1's (empty) partition, written once
    assert spark.read.parquet(lake.partition_uri(storage.INFERENCE, D1)).count() == 450
    assert lake.list_partitions(storage.INFERENCE) == [D1.isoformat()]
    scored = first["scores"]["rows"]
    third = app.run(cfg, lake, spark, D2)  # D1's outcomes arrived on D2: its scored applications join train_sup
    assert third["train_sup"]["rows"] == 4200 + scored and third["train_sup"]["partitions"] == ["2026-11-01", "2026-11-02"]
    added = spark.read.parquet(catalog.train_sup_batch(lake, D2)).toPandas()
    assert sorted(added["id"]) == sorted(after["id"]) and added["application_date"].astype(str).unique().tolist() == [
        "2026-11-01"]
    truth = spark.read.parquet(catalog.test(lake)).select("id", "loss", "default").toPandas()
    both = added.merge(truth, on="id", suffixes=("", "_truth"))  # the emulated outcomes are test/'s labels
    assert len(both) == scored and (both["default"] == both["default_truth"]).all()
    assert (both["loss"] == both["loss_truth"]).all()
    # D2's backtest is D1's cohort with the PDs served on D1; its challenger was held out of it and kept
    ev = third["evaluation"]
    assert ev["rows"] == scored and ev["since"] == "2026-11-01" and [c["application_date"] for c in ev["cohorts"]] == [
        "2026-11-01"]
    assert 0.8 < ev["roc_auc"] <= ev["oracle_auc"] + 0.03  # a real model, below (or near) the best achievable
    val = ev["validation"]
    assert val["auc_interval"]["low"] < ev["roc_auc"] < val["auc_interval"]["high"]
    assert sum(r["n"] for r in val["grades"]) == sum(r["n"] for r in val["lift"]) == scored
    ch = third["challenger"]
    assert ch["validation_rows"] == scored and ch["validation_cohorts"] == ["2026-11-01"]
    assert ch["promoted"] is False and ch["p_value"] >= 0.05 and "kept the champion" in ch["reason"]
    assert ch["calibration"] == "pending" and "calibrate" not in third["seconds"]  # calibrated only when promoted
    assert load_model(lake, ch["version"]).metadata["train_sup_through"] == "2026-11-02"
    for name in ("roc_curve", "champion_vs_challenger"):
        assert Path(third["artifacts"][name]).read_bytes()[:4] == b"\x89PNG"
    page = Path(third["artifacts"]["report"]).read_text()
    for section in ("Validation: discriminatory power", "DeLong 95% CI", "Validation: rating grades",
                    "cohorts whose outcomes matured since 2026-11-01", "src='roc.png'"):
        assert section in page, section
    # train_sup as of a date is defined for every date, also after later ones
    assert train_sup_as_of(lake, spark, read_lake_schema(lake), D1)[1] == ["2026-11-01"]
    assert os.listdir(lake.uri(storage.STAGING)) == []


# The real job in its own process, killed (os._exit: no finally runs) as it publishes the run folder of D2 (staged
# whole by then), after D2's scores, train_sup batch, challenger and ledger record are written.
KILLED_APP = """
import os, sys
from loanpipe.core import storage
real = storage.LocalLake.publish
def publish(self, staging, target):
    if "/artifacts/runs/" in target:  # the run folder is staged whole: die before it is swapped in
        os._exit(137)
    return real(self, staging, target)
storage.LocalLake.publish = publish
from loanpipe.core.context import RunContext
from loanpipe.jobs import app
from loanpipe.jobs.batch import apply_contract, load_batch
from loanpipe.ml.train_sup import train_sup_as_of
app.main_run(sys.argv[1], sys.argv[2])
"""


def test_a_killed_run_is_repaired_and_completed_by_the_next_run_of_its_date(cfg: Config, spark,
                                                                            tmp_path: Path) -> None:
    import subprocess
    import sys

    import yaml

    conf = tmp_path / "conf.yaml"
    conf.write_text(yaml.safe_dump(cfg.to_dict()))
    proc = subprocess.run([sys.executable, "-c", KILLED_APP, D2.isoformat(), str(conf)], capture_output=True,
                          text=True, timeout=900, cwd=Path(__file__).resolve().parents[2])
    assert proc.returncode == 137, proc.stderr[-3000:]
    lake = open_lake(cfg.storage)
    assert lake.exists(catalog.run_lock(lake, D2))  # the dead job's lock ...
    assert lake.list_files(lake.uri(storage.STAGING, D2.isoformat()))  # ... and its staged run folder are left
    assert not lake.exists(catalog.run_artifact(lake, D2))  # the run folder was never published
    scores, records = _scores(spark, lake, D2), ledger(lake)

    summary = app.run(cfg, lake, spark, D2)
    assert any("cleared" in line and "_staging/2026-11-02" in line for line in summary["repaired"])
    assert lake.read_json(catalog.run_artifact(lake, D2, "summary.json")) == summary  # now published
    pd.testing.assert_frame_equal(_scores(spark, lake, D2), scores, check_exact=True)  # the same transaction
    assert ledger(lake) == records
    assert not lake.exists(catalog.run_lock(lake, D2)) and os.listdir(lake.uri(storage.STAGING)) == []


def test_a_better_challenger_is_promoted_and_serves_next(cfg: Config, spark) -> None:
    """Swap in a deliberately broken champion (trained on shuffled labels): the challenger must beat it,
    be promoted, and score the next run."""
    lake = open_lake(cfg.storage)
    good = load_model(lake, champion_version(lake))
    train = spark.read.parquet(lake.uri(storage.TRAIN))
    sample = train.select(*good.spec.raw_features, "default").toPandas()
    shuffled = np.random.default_rng(0).permutation(sample["default"].to_numpy())
    native = engine.train_python(good.spec.transform_pandas(sample), good.spec.features, shuffled,
                                 training.base_params(cfg, iterations=30))
    broken = ModelBundle("20261031-broken", good.spec, native, {**good.metadata, "role": "broken"})
    save_model(lake, broken)
    record_decision(lake, D1, {"bootstrap": True, "champion": good.version, "serving": broken.version,
                               "promoted": True, "reason": "test: a broken champion"})
    summary = app.run(cfg, lake, spark, D2)
    ch = summary["challenger"]
    assert summary["champion"]["version"] == "20261031-broken"
    assert ch["promoted"] is True and ch["p_value"] < cfg.model.promotion.alpha and all(r["passed"] for r in ch["policy"])
    assert ch["challenger_auc"] > ch["champion_auc"] + 0.2
    assert champion_version(lake) == ch["version"] == summary["serving_after_run"] == "20261102-challenger"
    # the backtest reads the PDs served on D1 (by the good champion): no alert, though a broken model serves now
    assert summary["status"] == "OK" and summary["evaluation"]["roc_auc"] > 0.8
    record = ledger(lake)["2026-11-02"]
    assert record["champion"] == "20261031-broken" and record["serving"] == ch["version"] and record["promoted"]
    assert "challenger AUC" in record["reason"] and record["test"] == "DeLong (paired)"
    # promoted, so calibrated before the ledger named it: its calibrator, and its score's PSI reference, on the lake
    promoted = load_model(lake, ch["version"])
    assert not training.calibration_pending(promoted) and summary["challenger"]["calibration"] != "pending"
    assert promoted.metadata["calibration"]["method"] == (promoted.spec.calibration or {}).get("method", "none")
    assert "cross_fit" in promoted.metadata["calibration"] and promoted.spec.reference["score"]["edges"]
    assert summary["seconds"]["calibrate"] > 0
    # the promotion's grade migration: every application of the batch, old grade to new
    mig = summary["risk"]["migration"]
    assert mig["n"] == summary["scores"]["rows"] == sum(mig["row_totals"]) == sum(mig["column_totals"])
    assert mig["stayed"] < 1  # the broken champion's grades are not the promoted model's
    assert summary["risk"]["model_card"].startswith("# Model card: 20261102-challenger")
    assert "Against champion 20261031-broken" in summary["risk"]["model_card"]
    assert "Against champion 20261031-broken" in Path(lake.uri(storage.ARTIFACTS, "models", ch["version"],
                                                               "model_card.md")).read_text()
    # the report's trend holds D1's published run and D2's own point
    assert [p["run_date"] for p in summary["risk"]["trend"]] == ["2026-11-01", "2026-11-02"]
    # a rerun of D2 is the same transaction: scored by the champion of D2 (not by what D2 promoted), same decision
    scores = _scores(spark, lake, D2)
    rerun = app.run(cfg, lake, spark, D2)
    assert rerun["champion"]["version"] == "20261031-broken" and rerun["challenger"]["promoted"] is True
    pd.testing.assert_frame_equal(_scores(spark, lake, D2), scores, check_exact=True)
    assert list(ledger(lake)) == ["2026-11-01", "2026-11-02"] and ledger(lake)["2026-11-02"] == record
    # later dates are scored by the promoted model; earlier ones keep theirs
    assert champion_for(lake, dt.date(2026, 11, 3)) == ch["version"]
    assert champion_for(lake, D2) == "20261031-broken" and champion_for(lake, D1) == good.version


def _replace_batch(lake, spark, date: dt.date, transform) -> None:  # noqa: ANN001
    uri = lake.partition_uri(storage.TEST_SAMPLE, date)
    df = spark.read.parquet(uri)
    tmp = lake.uri("tmp_batch")
    transform(df).drop("run_date").write.mode("overwrite").parquet(tmp)
    shutil.rmtree(uri)
    shutil.move(tmp, uri)
    Path(uri, storage.SUCCESS).write_text("x")


BAD_BATCHES = {
    "missing_columns": (lambda df: df.drop("f3", "f4"), r"missing column\(s\) \['f3', 'f4'\]"),
    "extra_columns": (lambda df: df.withColumn("surprise", F.lit(1.0)), r"unexpected column\(s\) \['surprise'\]"),
    "wrong_types": (lambda df: df.withColumn("f5", F.col("f5").cast("string")), r"f5: string \(expected a number\)"),
    # ~14% of the rows without an id: more than quality.max_bad_share, so the whole run stops
    "null_ids": (lambda df: df.withColumn("id", F.when(F.col("id") % 7 == 0, None).otherwise(F.col("id"))),
                 r"rows \(1\d\.\d%\) break the data contract(.|\n)*null_id \(the id is empty\): \d+ row\(s\)"),
    "no_rows": (lambda df: df.limit(0), r"the batch has no rows"),
}


@pytest.mark.parametrize("case", sorted(BAD_BATCHES))
def test_bad_batch_is_refused_and_nothing_changes(folder_digest, case: str, cfg: Config, spark) -> None:
    lake = open_lake(cfg.storage)
    transform, message = BAD_BATCHES[case]
    _replace_batch(lake, spark, D2, transform)
    champion = champion_version(lake)
    before = {f: folder_digest(lake.uri(f)) for f in (storage.INFERENCE, storage.TRAIN_SUP, storage.ARTIFACTS,
                                                       storage.QUARANTINE)}
    with pytest.raises(app.BatchError, match=message):
        app.run(cfg, lake, spark, D2)
    assert champion_version(lake) == champion
    assert {f: folder_digest(lake.uri(f)) for f in before} == before


def _checked_features(lake) -> list[str]:  # noqa: ANN001
    """Numeric features the contract checks (a range with a width) that 1e12 lies far beyond."""
    learnt = lake.read_json(catalog.contract(lake))["numeric"]
    return [c for c, r in learnt.items() if r and r[0] < r[1] and 1e12 > r[1] + 4 * (r[1] - r[0])]


def _poisoned(df, bad: dict[str, list], features: list[str]):  # noqa: ANN001, ANN202
    """``df`` with rows spoilt by reason: ``bad`` maps a reason to the ids to spoil that way."""
    f_inf, f_far = features[0], features[1]
    ids = F.col("id")
    out = (df.withColumn(f_inf, F.when(ids.isin(bad.get("non_finite", [])), F.lit(float("inf"))).otherwise(F.col(f_inf)))
             .withColumn(f_far, F.when(ids.isin(bad.get("out_of_range", [])), F.lit(1e12)).otherwise(F.col(f_far)))
             .withColumn("id", F.when(ids.isin(bad.get("null_id", [])), None).otherwise(ids)))
    conflicting = df.filter(ids.isin(bad.get("duplicate_id", []))).withColumn(
        f_far, F.coalesce(F.col(f_far), F.lit(0.0)) + 1)
    return out.unionByName(conflicting)


def test_bad_rows_are_quarantined_and_the_rest_is_scored(cfg: Config, spark) -> None:
    """One bad row per reason (0.5% of the batch with a conflicting id's two rows), plus an exact repeat: the bad
    rows sit in quarantine with their reason and original values, every other row is scored, the counts add up,
    and the report says so."""
    from loanpipe.reports.emails import app_report

    lake = open_lake(cfg.storage)
    sample_batch(cfg, lake, spark, make_request(cfg, D2.isoformat(), fraction=0.6))  # 1,080 rows: room for 0.5%
    features = _checked_features(lake)
    ids = sorted(r.id for r in spark.read.parquet(catalog.batch(lake, D2)).select("id").collect())
    bad = {"null_id": [ids[0]], "non_finite": [ids[1]], "out_of_range": [ids[2]], "duplicate_id": [ids[3]]}
    repeat = ids[4]
    _replace_batch(lake, spark, D2, lambda df: _poisoned(df, bad, features).unionByName(
        df.filter(F.col("id") == repeat)))
    summary = app.run(cfg, lake, spark, D2)

    q = summary["quality"]
    rows_in = len(ids) + 2
    assert q["rows_in"] == summary["batch"]["rows"] == rows_in and q["quarantined"] == 5
    assert 0.004 < 5 / rows_in < 0.005
    assert q["by_reason"] == {"null_id": 1, "non_finite": 1, "out_of_range": 1, "duplicate_id": 2}
    assert q["scored"] == summary["scores"]["rows"] == rows_in - 5  # nothing lost: scored + quarantined = rows in
    scores = _scores(spark, lake, D2)
    assert len(scores) == rows_in - 5 and (scores["id"] == repeat).sum() == 2  # the exact repeat is scored
    assert not set(scores["id"]) & {ids[1], ids[2], ids[3]} and scores["id"].notna().all()
    quarantined = spark.read.parquet(catalog.quarantine(lake, D2)).toPandas()
    assert sorted(zip(quarantined["reason"], quarantined["id"].fillna(-1))) == sorted(
        [("null_id", -1), ("non_finite", ids[1]), ("out_of_range", ids[2]), ("duplicate_id", ids[3]),
         ("duplicate_id", ids[3])])
    row = quarantined[quarantined["reason"] == "out_of_range"].iloc[0]
    assert row[features[1]] == 1e12 and features[1] in row["detail"]  # the original value, named
    assert q["path"] == catalog.quarantine(lake, D2) and lake.is_published(q["path"])
    # train_sup learns D1's matured applications, never a row of D2 (its outcomes have not arrived)
    added = spark.read.parquet(catalog.train_sup_batch(lake, D2)).toPandas()
    assert not set(added["id"]) & set(ids) and len(added) == lake.read_json(
        catalog.run_artifact(lake, D1, "summary.json"))["scores"]["rows"]
    subject, body = app_report(summary)
    assert subject.endswith("5 row(s) quarantined") and f"{rows_in} rows in: {rows_in - 5} scored, 5 set aside" in body
    for reason in bad:
        assert f"<td>{reason}</td>" in body
    # The scoring tasks read the batch's files themselves (model.scoring_reader: files), leaving out the bad rows'
    # ids: the same rows and scores, to the bit, as Spark's reader gives for the contract's good rows.
    assert summary["scores"]["read_by"] == "scoring tasks (pyarrow)"
    champion = load_model(lake, summary["champion"]["version"])
    set_aside = spark.createDataFrame([(None,), *((i,) for i in bad.values() for i in i)], "_bad long")
    good = spark.read.parquet(catalog.batch(lake, D2)).join(F.broadcast(set_aside),
                                                           F.col("id").eqNullSafe(F.col("_bad")), "left_anti")
    by_spark = app.score(good, champion, read_lake_schema(lake), cfg, dt.datetime.combine(D2, dt.time(), dt.UTC))
    pd.testing.assert_frame_equal(scores, by_spark.toPandas().sort_values("id").reset_index(drop=True),
                                  check_exact=True)


def test_a_daily_batch_is_checked_on_the_driver_with_the_spark_pass_s_result(cfg: Config, spark, monkeypatch) -> None:
    """A batch up to quality.driver_check_rows is read with pyarrow and checked on the driver; above it, or with
    the setting at 0, the Spark pass checks it. Same report, same rows scored, same quarantine."""
    lake = open_lake(cfg.storage)
    features = _checked_features(lake)
    ids = sorted(r.id for r in spark.read.parquet(catalog.batch(lake, D2)).select("id").collect())
    bad = {"null_id": [ids[0]], "non_finite": [ids[1]], "out_of_range": [ids[2]], "duplicate_id": [ids[3]]}
    _replace_batch(lake, spark, D2, lambda df: _poisoned(df, bad, features).unionByName(df.filter(F.col("id") == ids[4])))
    ctx = RunContext(cfg, lake, spark, read_lake_schema(lake), D2)
    batch, uri, _ = load_batch(ctx)
    rows_in = len(ids) + 2
    read = catalog.read_table
    tables: list = []
    monkeypatch.setattr(catalog, "read_table", lambda *a, **k: tables.append(read(*a, **k)) or tables[-1])

    def outcome(driver_check_rows: int):  # noqa: ANN202
        quality = {"driver_check_rows": driver_check_rows, "max_bad_share": 0.05}
        checked, report = apply_contract(replace(ctx, cfg=cfg.replace(quality=quality)), batch, uri)
        quarantined = spark.read.parquet(catalog.quarantine(lake, D2)).toPandas()
        return (report, sorted(r.id for r in checked.good.select("id").collect()),
                sorted(zip(quarantined["reason"], quarantined["id"].fillna(-1), quarantined["detail"])))

    on_driver = outcome(rows_in)
    assert len(tables) == 1 and tables[0] is not None and tables[0].num_rows == rows_in  # read and checked there
    in_spark = outcome(rows_in - 1)
    assert len(tables) == 2 and tables[1] is None  # one row too many: the footers said so, the Spark pass ran
    assert outcome(0) == in_spark and len(tables) == 2  # 0: the Spark pass, nothing read on the driver
    assert on_driver == in_spark
    assert on_driver[0]["quarantined"] == 5 and len(on_driver[1]) == rows_in - 5


def test_too_many_bad_rows_fail_the_run_and_publish_nothing(cfg: Config, spark) -> None:
    from loanpipe.reports.emails import failure_report

    lake = open_lake(cfg.storage)
    ids = sorted(r.id for r in spark.read.parquet(catalog.batch(lake, D2)).select("id").collect())
    n = round(0.05 * len(ids))  # 5% of the rows: half of them infinite, half implausible
    _replace_batch(lake, spark, D2, lambda df: _poisoned(
        df, {"non_finite": ids[: n // 2], "out_of_range": ids[n // 2: n]}, _checked_features(lake)))
    records = ledger(lake)
    with pytest.raises(app.BatchError) as caught:
        app.run(cfg, lake, spark, D2)
    message = str(caught.value)
    assert f"{n} of {len(ids)} rows ({n / len(ids):.1%}) break the data contract" in message and n / len(ids) > 0.045
    assert f"non_finite (a number is +inf or -inf): {n // 2} row(s)" in message
    assert f"out_of_range (a number lies far beyond its training range): {n - n // 2} row(s)" in message
    for uri in (catalog.scores(lake, D2), catalog.quarantine(lake, D2), catalog.train_sup_batch(lake, D2),
                catalog.run_artifact(lake, D2)):
        assert not lake.exists(uri), uri
    assert ledger(lake) == records
    _, body = failure_report("dag_app", "spark_submit_app", D2.isoformat(), 1, message, "")
    assert "non_finite" in body and "out_of_range" in body and "e.g. id" in body


def test_extra_columns_can_be_dropped_by_config(cfg: Config, spark, capfd: pytest.CaptureFixture) -> None:
    lake = open_lake(cfg.storage)
    _replace_batch(lake, spark, D2, lambda df: df.withColumn("surprise", F.lit(1.0)))
    summary = app.run(cfg.replace(quality={"on_extra_columns": "drop"}), lake, spark, D2)
    assert summary["quality"]["dropped_columns"] == ["surprise"] and summary["quality"]["quarantined"] == 0
    assert "dropped column(s) the lake does not have: ['surprise']" in capfd.readouterr().err
    assert "surprise" not in spark.read.parquet(catalog.scores(lake, D2)).columns


def test_missing_batch(cfg: Config, spark) -> None:
    lake = open_lake(cfg.storage)
    with pytest.raises(app.BatchError, match="no published batch for 2026-12-01.*run data_gen"):
        app.run(cfg, lake, spark, dt.date(2026, 12, 1))


def test_challenger_chooses_its_features_again_on_its_cadence(cfg: Config, spark) -> None:
    """Every rediscover_every_days run dates the challenger re-runs the CV candidate comparison on train_sup."""
    lake = open_lake(cfg.storage)
    first = lake.read_json(catalog.run_artifact(lake, D1, "summary.json"))
    assert first["challenger"]["rediscovered"] is None and "candidates" not in first["challenger"]
    summary = app.run(cfg.replace(model={"rediscover_every_days": 1}), lake, spark, D2)
    ch = summary["challenger"]
    assert "1 days ago" in ch["rediscovered"] and ch["candidates"]["decision"]["chosen"]
    assert {r["candidate"] for r in ch["candidates"]["rows"]} >= {"all_raw", "forward"}
    challenger = load_model(lake, ch["version"])  # saved whether or not it was promoted
    assert challenger.metadata["discovered_on"] == D2.isoformat()
    assert challenger.metadata["rediscovered"] == ch["rediscovered"]
    assert challenger.metadata["discovery"]["decision"]["chosen"] == ch["candidates"]["decision"]["chosen"]
