"""The daily job's stages one by one, on tiny inline frames (a null in every fixture); ``test_app`` runs them
together against a lake."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from loanpipe.core.schema import DataSchema
from loanpipe.jobs import app
from loanpipe.ml import engine, psi, risk
from loanpipe.ml.features import FeatureSpec
from loanpipe.ml.model import ModelBundle

pytestmark = pytest.mark.spark

SCHEMA = DataSchema(id_column="id", target_column="loss", label_column="default", features=("f1", "f2"),
                    categorical=())
COLUMNS = "id long, f1 double, f2 double, loss bigint, default int"


def frame(spark, rows: list[tuple]):  # noqa: ANN001, ANN201
    return spark.createDataFrame(rows, COLUMNS)


@pytest.fixture(scope="module")
def bundle() -> ModelBundle:
    """A real CatBoost model on f1 and f2 (f2 left missing-aware), with a PSI reference on both."""
    rng = np.random.default_rng(0)
    x = pd.DataFrame({"f1": rng.normal(size=400), "f2": rng.normal(size=400)})
    y = (x["f1"] + 0.5 * x["f2"] + rng.normal(scale=0.5, size=400) > 1).astype(int).to_numpy()
    native = engine.train_python(x, ["f1", "f2"], y, {"iterations": 30, "random_seed": 0, "thread_count": 1})
    reference = {"features": {f: {"edges": [-1.0, 0.0, 1.0],
                                  "shares": psi.bin_shares(x[f].to_numpy(), [-1.0, 0.0, 1.0])} for f in ("f1", "f2")},
                 "score": {"edges": [0.1, 0.5], "shares": [0.0, 0.5, 0.3, 0.2]}}
    spec = FeatureSpec(raw_features=["f1", "f2"], pairs=[], features=["f1", "f2"], categorical=[],
                       imputation={"f1": 0.0, "f2": None}, column_kinds={"f1": "continuous", "f2": "continuous"},
                       reference=reference)
    return ModelBundle(version="20261101-champion-test", spec=spec, native=native, metadata={})


def test_check_batch_checks_the_columns(spark) -> None:  # noqa: ANN001
    good = frame(spark, [(1, 0.1, None, 0, 0), (2, None, 0.3, 7, 1)])
    df, dropped = app.check_batch(good, SCHEMA, "batch")
    assert dropped == [] and df.columns == good.columns
    # an empty id is a row's problem (the data contract sets the row aside), not the batch's
    assert app.check_batch(frame(spark, [(None, 0.1, 0.2, 0, 0), (2, 0.5, None, 0, 0)]), SCHEMA, "batch")[1] == []
    with pytest.raises(app.BatchError, match=r"missing column\(s\) \['f2'\] \(1 in all, model features among them: "
                                             r"\['f2'\]\)"):
        app.check_batch(good.drop("f2"), SCHEMA, "batch")
    # no rows: found by the data contract's pass (tests/jobs/test_app.py, "no_rows")


def test_score_is_the_models_pd_with_decision_version_and_time(spark, bundle: ModelBundle) -> None:  # noqa: ANN001
    from loanpipe.core.config import Config

    cfg = Config().replace(model={"cutoff": 0.3}, risk={"reason_codes": 0})
    batch = frame(spark, [(1, 2.0, 1.0, 0, 0), (2, -2.0, None, 0, 0), (3, None, 0.5, 9, 1)])
    at = dt.datetime(2026, 11, 1, 6, 0, tzinfo=dt.UTC)
    got = app.score(batch, bundle, SCHEMA, cfg, at)
    # the same model in pandas, with the spec's imputation (f1 missing -> 0.0; f2 missing stays NaN)
    x = pd.DataFrame({"f1": [2.0, -2.0, 0.0], "f2": [1.0, np.nan, 0.5]})
    p = bundle.predictor().predict_proba(x)[:, 1]
    grades = risk.grade_of(p, cfg.risk.master_scale)  # reasons off: the grade is the one column added
    expected = spark.createDataFrame(
        [(i, float(pi), int(g), int(pi >= 0.3), bundle.version, at.replace(tzinfo=None))
         for i, pi, g in zip([1, 2, 3], p, grades)],
        "id long, p_default double, grade int, decision int, model_version string, scored_at timestamp")
    assertDataFrameEqual(got, expected, rtol=1e-9)
    assert "default" not in got.columns and "loss" not in got.columns  # the label is never read


def test_evaluate_and_alerts() -> None:
    y = np.array([0, 0, 1, 1, 0])
    ev = app.evaluate(y, np.array([0.1, 0.2, 0.8, 0.7, 0.3]), cutoff=0.5)
    assert ev["roc_auc"] == 1.0 and ev["true_positives"] == 2 and ev["calibration"]["table"]
    assert app.alerts(ev, auc_floor=0.75) == []
    assert app.alerts({"roc_auc": 0.6}, 0.75) == ["AUC 0.6000 is under the floor 0.75"]
    assert app.alerts({"roc_auc": None}, 0.75) == ["AUC undefined: the batch has a single class"]


def test_drift_bins_features_and_score_against_the_reference(spark, bundle: ModelBundle) -> None:  # noqa: ANN001
    batch = frame(spark, [(1, -2.0, None, 0, 0), (2, -0.5, 0.5, 0, 0), (3, 0.5, 2.0, 0, 1), (4, None, -3.0, 0, 0)])
    scored = spark.createDataFrame([(1, 0.05), (2, 0.2), (3, 0.6), (4, None)], "id long, p_default double")
    out = app.drift(scored, batch, bundle, SCHEMA)
    # the model's inputs are binned, after imputation: f1's missing value is filled with 0.0, f2's stays missing
    # bins: missing, <-1, [-1,0), [0,1), >=1
    for name, shares in (("f1", [0.0, 0.25, 0.25, 0.5, 0.0]), ("f2", [0.25, 0.25, 0.0, 0.25, 0.25])):
        expected = psi.psi(bundle.spec.reference["features"][name]["shares"], shares)
        assert out["features"][name]["psi"] == pytest.approx(round(expected, 5)), name
    expected_score = psi.psi([0.0, 0.5, 0.3, 0.2], [0.25, 0.25, 0.25, 0.25])
    assert out["score"]["psi"] == pytest.approx(round(expected_score, 5))
    assert out["max_feature_psi"]["feature"] in ("f1", "f2")
    assert {e["status"] for e in out["features"].values()} <= {"stable", "moderate shift", "drift"}


def test_build_train_sup_keeps_one_row_per_id_the_latest_label_winning(spark) -> None:  # noqa: ANN001
    train = frame(spark, [(1, 0.1, None, 0, 0), (2, 0.2, 0.2, 0, 0), (3, None, 0.3, 0, 0)])
    day1 = frame(spark, [(3, 0.3, 0.3, 5, 1), (4, 0.4, None, 0, 0)])
    day2 = frame(spark, [(4, 0.4, 0.4, 8, 1), (5, None, 0.5, 0, 0)])
    def dated(day: str, df):  # noqa: ANN001, ANN202 - as the partitioned read of train_sup/ gives the batches
        return df.withColumn("run_date", F.lit(day).cast("date"))

    got = app.build_train_sup(train, dated("2026-11-01", day1).unionByName(dated("2026-11-02", day2)), SCHEMA)
    expected = frame(spark, [(1, 0.1, None, 0, 0), (2, 0.2, 0.2, 0, 0), (3, 0.3, 0.3, 5, 1), (4, 0.4, 0.4, 8, 1),
                             (5, None, 0.5, 0, 0)])
    assertDataFrameEqual(got, expected)
    assert got.columns == SCHEMA.lake_columns()
    # batches whose columns come in another order are matched by name
    shuffled = day2.select("default", "loss", "f2", "f1", "id")
    assertDataFrameEqual(app.build_train_sup(
        train, dated("2026-11-01", day1).unionByName(dated("2026-11-02", shuffled)), SCHEMA), expected)
    assertDataFrameEqual(app.build_train_sup(train, None, SCHEMA), train)  # no batches yet


def test_holdout_ids_are_a_seeded_subset(spark) -> None:  # noqa: ANN001
    batch = frame(spark, [(i, None if i % 7 == 0 else float(i), 0.0, 0, i % 2) for i in range(200)])
    a = app.holdout_ids(batch, SCHEMA, 0.3, seed=42)
    assertDataFrameEqual(a, app.holdout_ids(batch, SCHEMA, 0.3, seed=42))  # the same rows on a rerun
    n = a.count()
    assert 30 < n < 90 and a.join(batch, "id", "left_anti").count() == 0
    assert sorted(r.id for r in a.collect()) != sorted(r.id for r in app.holdout_ids(batch, SCHEMA, 0.3, 7).collect())
    assert app.holdout_ids(batch, SCHEMA, 0.0, seed=42).count() == 0
    assert app.holdout_ids(batch, SCHEMA, 1.0, seed=42).count() == 200


def test_decide_promotes_only_a_significantly_better_challenger() -> None:
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 2000)
    good = y + rng.normal(scale=0.5, size=2000)
    weak = y + rng.normal(scale=2.0, size=2000)
    promoted = app.decide(y, weak, good, significance=0.05)
    assert promoted["promoted"] is True and promoted["challenger_auc"] > promoted["champion_auc"]
    assert promoted["reason"].startswith("challenger AUC") and promoted["validation_rows"] == 2000
    kept = app.decide(y, good, weak, significance=0.05)
    assert kept["promoted"] is False and kept["reason"].startswith("kept the champion")
    same = app.decide(y, good, good, significance=0.05)
    assert same["promoted"] is False
    # higher AUC by chance is not enough: the one-sided p must be under the significance
    rng = np.random.default_rng(0)
    y2 = rng.integers(0, 2, 300)
    champion = y2 + rng.normal(scale=1.0, size=300)
    lucky = champion + rng.normal(scale=0.1, size=300)
    chance = app.decide(y2, champion, lucky, significance=0.05)
    assert chance["auc_difference"] > 0 and chance["p_value"] > 0.05 and chance["promoted"] is False
    single = app.decide(np.zeros(5, int), np.arange(5.0), np.arange(5.0), significance=0.05)
    assert single == {"validation_rows": 5, "significance": 0.05, "test": "DeLong (paired)", "promoted": False,
                      "reason": "not compared: the validation rows hold a single class"}
