"""Reason codes, rating grades and the validation figures (loanpipe.ml.risk) on small hand-checked data."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import roc_auc_score

from loanpipe.core.config import DEFAULT_MASTER_SCALE, ConfigError, RiskConfig
from loanpipe.ml import calibration, ecb, risk

BOUNDS = [0.01, 0.05, 0.2, 1.0]


def test_grades_follow_the_master_scale_upper_bounds_inclusive() -> None:
    p = np.array([0.0, 0.01, 0.0100001, 0.05, 0.06, 0.2, 0.21, 1.0])
    assert risk.grade_of(p, BOUNDS).tolist() == [1, 1, 2, 2, 3, 3, 4, 4]
    assert risk.grade_bands(BOUNDS) == [(0.0, 0.01), (0.01, 0.05), (0.05, 0.2), (0.2, 1.0)]


def test_the_spark_grade_column_maps_like_numpy(spark) -> None:
    from pyspark.sql import functions as F

    p = [0.0, 0.001, 0.0025, 0.003, 0.0499, 0.07, 0.35, 0.36, 0.999, 1.0]
    df = spark.createDataFrame([(v,) for v in p], "p double")
    got = [r.g for r in df.select(risk.grade_column(F.col("p"), DEFAULT_MASTER_SCALE).alias("g")).collect()]
    assert got == risk.grade_of(np.array(p), DEFAULT_MASTER_SCALE).tolist() == [1, 1, 1, 2, 6, 6, 9, 10, 10, 10]


@pytest.mark.parametrize("bounds", [[0.1, 0.5], [0.2, 0.1, 1.0], [0.0, 0.5, 1.0], [1.0]])
def test_a_bad_master_scale_is_refused(bounds: list[float]) -> None:
    with pytest.raises(ConfigError, match="risk.master_scale"):
        RiskConfig(master_scale=bounds)
    with pytest.raises(ConfigError, match="risk.reason_codes"):
        RiskConfig(reason_codes=-1)
    with pytest.raises(ConfigError, match=r"risk.reasons_for must be one of \('all', 'declined'\)"):
        RiskConfig(reasons_for="approved")


def test_jeffreys_p_value_matches_a_hand_computation() -> None:
    # 12 defaults of 200 against a PD of 3%: the posterior Beta(12.5, 188.5); the PD lies in its lower tail.
    lower = stats.beta.cdf(0.03, 12.5, 188.5)
    assert lower < 0.5
    assert calibration.jeffreys_p(12, 200, 0.03) == pytest.approx(2 * lower)
    # by hand from the incomplete beta function's series (scipy-free): the same value to 1e-9
    from math import lgamma, exp, log
    a, b, x = 12.5, 188.5, 0.03
    terms, term, k = 0.0, 1.0, 0
    while True:  # I_x(a, b) = x^a (1-x)^b / (a B(a, b)) * sum_k B(a+1, k+1)/B(a+b, k+1) x^k
        terms += term
        k += 1
        term *= (a + b + k - 1) / (a + k) * x
        if term < 1e-16:
            break
    front = exp(a * log(x) + b * log(1 - x) - log(a) - (lgamma(a) + lgamma(b) - lgamma(a + b)))
    assert 2 * front * terms == pytest.approx(calibration.jeffreys_p(12, 200, 0.03), rel=1e-9)


def test_grade_table_counts_rates_and_tests_each_grade() -> None:
    p = np.array([0.005] * 100 + [0.03] * 100 + [0.1] * 50)
    y = np.array([0] * 99 + [1] + [0] * 97 + [1] * 3 + [0] * 40 + [1] * 10)
    table = risk.grade_table(y, p, BOUNDS)
    assert [r["n"] for r in table] == [100, 100, 50, 0] and sum(r["share"] for r in table) == pytest.approx(1.0)
    assert [r["defaults"] for r in table] == [1, 3, 10, 0]
    assert table[1]["observed_rate"] == 0.03 and table[1]["in_band"] and table[1]["mean_pd"] == pytest.approx(0.03)
    assert table[2]["observed_rate"] == 0.2 and table[2]["in_band"]  # 0.2 is the band's inclusive top
    assert table[2]["jeffreys_p"] == pytest.approx(calibration.jeffreys_p(10, 50, 0.1))
    assert table[3]["jeffreys_p"] is None and table[3]["in_band"] is None
    # the one-sided binomial test beside it: P[Bin(50, .1) >= 10]; the empty grade is not tested
    assert table[2]["binomial_p"] == pytest.approx(ecb.binomial_p(10, 50, 0.1)) and table[3]["binomial_p"] is None


def test_migration_matrix_totals() -> None:
    old = np.array([1, 1, 2, 2, 3, 3, 3, 4])
    new = np.array([1, 2, 2, 1, 3, 4, 1, 4])
    m = risk.migration_matrix(old, new, 4)
    counts = np.array(m["counts"])
    assert counts.sum() == m["n"] == 8 and counts[2, 0] == 1 and counts[0, 1] == 1
    assert m["row_totals"] == np.bincount(old, minlength=5)[1:].tolist()
    assert m["column_totals"] == np.bincount(new, minlength=5)[1:].tolist()
    assert (m["stayed"], m["safer"], m["riskier"]) == (4 / 8, 2 / 8, 2 / 8)
    assert m["within_one_grade"] == 7 / 8
    # moves (1->2), (3->4) up one grade; (2->1) down one, (3->1) down two; farthest reach: rows 1, 4: 3, rows 2, 3: 2
    assert m["bandwidth"] == pytest.approx({"upper": (1 + 1) / (3 * 1 + 2 * 1), "lower": (1 + 2) / (2 * 1 + 2 * 1)})
    assert m["stability"] == ecb.migration_stability(counts)


def test_auc_interval_covers_the_auc_and_shrinks_with_rows() -> None:
    rng = np.random.default_rng(1)

    def sample(n: int) -> tuple[np.ndarray, np.ndarray]:
        y = rng.random(n) < 0.2
        return y.astype(int), rng.normal(size=n) + y

    small, large = risk.auc_interval(*sample(300)), risk.auc_interval(*sample(30_000))
    for ci in (small, large):
        assert ci["low"] < ci["auc"] < ci["high"] and ci["level"] == 0.95
    assert large["high"] - large["low"] < (small["high"] - small["low"]) / 5
    # the analytic AUC of N(1,1) vs N(0,1) is Phi(1/sqrt 2) = 0.760: inside the large sample's interval
    assert large["low"] < stats.norm.cdf(1 / np.sqrt(2)) < large["high"]
    y, p = sample(500)
    assert risk.auc_interval(y, p)["auc"] == pytest.approx(roc_auc_score(y, p))
    assert risk.auc_interval(np.zeros(5), np.arange(5.0)) is None


def test_lift_table_captures_every_default_riskiest_first() -> None:
    p = np.linspace(0, 1, 100)
    y = (p > 0.8).astype(int)  # the top 20 scores default
    table = risk.lift_table(y, p)
    assert len(table) == 10 and sum(r["n"] for r in table) == 100
    assert table[0]["defaults"] == 10 and table[0]["lift"] == pytest.approx(1.0 / 0.20)
    assert table[1]["cumulative_share_of_defaults"] == 1.0 and table[-1]["cumulative_share_of_applications"] == 1.0


def test_reasons_are_the_largest_positive_contributions_named_with_values() -> None:
    shap = np.array([[0.5, -0.2, 0.9, 0.0],
                     [-0.1, -0.3, -0.2, -0.4],
                     [0.2, 0.2, 0.1, 0.3]])
    values = np.array([[1.0, 2.0, np.nan, 4.0], [1, 2, 3, 4], [0.123456789, 2, 3, 4e-9]], dtype=float)
    labels = risk.feature_labels(["f1", "f2", "f3", "f4"], [])
    cols = risk.top_reasons(shap, values, labels, 4)
    assert [c[0] for c in cols] == ["f3 = missing", "f1 = 1", None, None]
    assert [c[1] for c in cols] == [None] * 4  # no feature pushes the second row up
    assert [c[2] for c in cols] == ["f4 = 4e-09", "f1 = 0.123457", "f2 = 2", "f3 = 3"]  # tie: earlier feature first
    assert risk.top_reasons(shap, values, labels, 6)[5] == [None] * 3


def test_shap_blocks_gather_batches_up_to_the_limit() -> None:
    from loanpipe.ml.scoring import blocks

    items = [(4, "a"), (4, "b"), (4, "c"), (9, "d"), (1, "e")]
    assert list(blocks(iter(items), 8)) == [["a", "b"], ["c", "d"], ["e"]]
    assert list(blocks(iter(items), 0)) == [["a"], ["b"], ["c"], ["d"], ["e"]]
    assert list(blocks(iter([]), 8)) == []


def test_pair_features_are_named_by_their_formula() -> None:
    pairs = [{"name": "pair_1", "a": "f528", "b": "f527", "beta": 0.99812345, "auc": 0.7}]
    assert risk.feature_labels(["f1", "pair_1"], pairs) == ["f1", "f528 - 0.9981*f527"]


@pytest.mark.parametrize("udf", ["arrow", "pandas"])
def test_a_pushed_feature_becomes_the_top_reason(small_model, spark, udf: str) -> None:
    from loanpipe.core.schema import DataSchema
    from loanpipe.ml.scoring import score_batch

    bundle, _ = small_model
    schema = DataSchema(id_column="id", label_column="default", features=("f1", "f2", "f3"), categorical=(),
                        target_column="loss")
    rows = [(1, 0.0, 1.5, 0.0), (2, 3.0, 1.5, 0.0), (3, -3.0, -3.0, 0.0)]
    batch = spark.createDataFrame(rows, "id long, f1 double, f2 double, f3 double")
    out = score_batch(batch, bundle, schema, 0.5, dt.datetime(2030, 1, 1), udf, DEFAULT_MASTER_SCALE, 4)
    got = {r["id"]: r for r in out.collect()}
    assert out.columns == ["id", "p_default", "grade", "decision", "reason_1", "reason_2", "reason_3", "reason_4",
                           "model_version", "scored_at"]
    assert got[1]["reason_1"] == "f2 = 1.5"  # f1 at its mean: the raised f2 is what pushes this PD up
    assert got[2]["reason_1"] == "f1 = 3"  # f1 pushed: it becomes the top reason
    assert got[2]["p_default"] > got[1]["p_default"] and got[2]["grade"] > got[1]["grade"]
    # f1 and f2 both lower row 3's PD, so neither is a reason; f3 (no effect) is one only if its tiny SHAP is positive
    assert got[3]["reason_1"] in (None, "f3 = 0") and [got[3][f"reason_{k}"] for k in (2, 3, 4)] == [None] * 3
    assert [got[i]["grade"] for i in (1, 2, 3)] == risk.grade_of(
        np.array([got[i]["p_default"] for i in (1, 2, 3)]), DEFAULT_MASTER_SCALE).tolist()
    # Arrow batches of one row: explained together in one block (one SHAP call), the same rows come out
    spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", "1")
    try:
        small = {r["id"]: r for r in score_batch(batch.coalesce(1), bundle, schema, 0.5, dt.datetime(2030, 1, 1), udf,
                                                 DEFAULT_MASTER_SCALE, 4).collect()}
    finally:
        spark.conf.unset("spark.sql.execution.arrow.maxRecordsPerBatch")
    assert small == got
    # reasons for the declined only: at a cutoff of row 2's PD, row 2 keeps its reasons, the approved rows get none
    declined = {r["id"]: r for r in score_batch(batch, bundle, schema, got[2]["p_default"], dt.datetime(2030, 1, 1),
                                                udf, DEFAULT_MASTER_SCALE, 4, "declined").collect()}
    assert declined[2]["decision"] == 1 and declined[2]["p_default"] == got[2]["p_default"]
    assert [declined[2][f"reason_{k}"] for k in range(1, 5)] == [got[2][f"reason_{k}"] for k in range(1, 5)]
    for i in (1, 3):
        assert declined[i]["decision"] == 0 and declined[i]["p_default"] == got[i]["p_default"]
        assert [declined[i][f"reason_{k}"] for k in range(1, 5)] == [None] * 4
    plain = score_batch(batch, bundle, schema, 0.5, dt.datetime(2030, 1, 1), udf)
    assert plain.columns == ["id", "p_default", "decision", "model_version", "scored_at"]
    same = {r["id"]: r["p_default"] for r in plain.collect()}
    assert all(same[i] == got[i]["p_default"] for i in got)  # reasons do not change a score


def test_the_model_card_says_what_the_model_is(small_model) -> None:
    from loanpipe.ml import model_card

    bundle, _ = small_model
    bundle.spec.pairs = [{"name": "pair_1", "a": "f1", "b": "f2", "beta": 0.5, "auc": 0.81}]
    bundle.spec.features = ["f1", "f3", "pair_1"]
    bundle.spec.calibration = {"method": "platt", "a": 1.0, "b": 0.0}
    bundle.spec.imputation["f3"] = 29203032.0
    bundle.metadata = {
        "role": "challenger", "run_date": "2030-01-08", "engine": "python", "code_version": "abc123",
        "discovered_on": "2030-01-08", "rediscovered": "7 days since the features were chosen",
        "trained_on": "train_sup/ minus the batch's validation rows", "params": {"depth": 6, "iterations": 500},
        "training_data": {"rows": 80_000, "defaults": 7_440, "id_hash": 42}, "train_in_sample_auc": 0.99,
        "discovery": {"candidates": [
            {"candidate": "all_raw", "n_features": 769, "mean_auc": 0.71, "sd_auc": 0.01},
            {"candidate": "forward", "n_features": 3, "mean_auc": 0.93, "sd_auc": 0.004}],
            "decision": {"chosen": "forward", "rule": "forward: best mean CV AUC"}},
        "calibration": {"method": "platt", "reason": "lowest CV log-loss", "before": {"brier": 0.08},
                        "after": {"brier": 0.06}},
        "promotion": {"champion": "20300101-bootstrap", "validation_rows": 1500, "champion_auc": 0.90,
                      "challenger_auc": 0.93, "p_value": 0.001, "alpha": 0.01, "reason": "better",
                      "policy": [{"rule": "AUC gain", "key": "model.promotion.min_auc_gain", "value": 0.03,
                                  "needs": ">= 0.005", "passed": True}]}}
    card = model_card.render(bundle)
    assert card.startswith("# Model card: 20300101-bootstrap")
    for text in ("Code version**: abc123", "80000 rows, 7440 defaults (9.30%)", "| f1 | raw (continuous) | left to CatBoost |", "| f3 | raw (continuous) | missing -> 2.9203e+07 |",
                 "| pair_1 | engineered pair: f1 - 0.5*f2 (alone: AUC 0.810) |", "| forward (chosen) | 3 | 0.9300",
                 "depth = 6, iterations = 500", "Against champion 20300101-bootstrap on 1500 held-out rows",
                 "AUC 0.9300 vs 0.9000", "Method: platt (lowest CV log-loss)", "0.0800 -> 0.0600",
                 "## Known limitations", "chosen again: 7 days", "(needs < 0.01)",
                 "| AUC gain | 0.0300 | >= 0.005 | model.promotion.min_auc_gain | True |"):
        assert text in card, text
    assert card == model_card.render(bundle)  # from the bundle alone: the same card every time
    bundle.metadata["calibration"] = {"status": "pending"}
    assert "Pending: a challenger gets its calibrator when it is promoted." in model_card.render(bundle)


def test_the_scoring_path_imports_no_scipy_nor_sklearn() -> None:
    """Every executor's Python worker imports the scoring module when it unpickles the scoring function (and the
    contract's check function): scipy and sklearn cost about a second there and no score needs them."""
    import subprocess
    import sys
    from pathlib import Path

    code = ("import sys; import loanpipe.ml.scoring, loanpipe.core.contract; "
            "print('HEAVY', sorted({m.split('.')[0] for m in sys.modules} & {'scipy', 'sklearn', 'matplotlib'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         cwd=Path(__file__).resolve().parents[2])
    assert out.returncode == 0, out.stderr[-2000:]
    assert "HEAVY []" in out.stdout, out.stdout


def test_the_auc_interval_matches_proc() -> None:
    """ci.auc(roc(y, pa), method = "delong") in R 4.2.2 / pROC 1.18.0, on test_metrics' reference table."""
    y = np.array([0] * 12 + [1] * 8)
    p = np.array([0.05, 0.10, 0.10, 0.20, 0.25, 0.30, 0.35, 0.40, 0.45, 0.50, 0.60, 0.70,
                  0.30, 0.40, 0.55, 0.60, 0.65, 0.80, 0.85, 0.90])
    ci = risk.auc_interval(y, p)
    assert (ci["low"], ci["auc"], ci["high"]) == pytest.approx((0.659699420672513, 0.838541666666667, 1.0), abs=1e-12)
    assert ci["se"] == pytest.approx(0.091247720572846, abs=1e-12)
