"""Evaluation metrics and the DeLong test (pure numpy), with the laws they must obey (hypothesis)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from sklearn.metrics import roc_auc_score

from loanpipe.ml import metrics


def test_classification_metrics_known_values() -> None:
    y = np.array([0, 0, 1, 1])
    p = np.array([0.1, 0.6, 0.4, 0.9])
    m = metrics.classification_metrics(y, p, cutoff=0.5)
    assert m["roc_auc"] == pytest.approx(0.75)
    assert m["gini"] == pytest.approx(0.5)
    assert m["ks"] == pytest.approx(0.5)
    assert m["brier"] == pytest.approx(np.mean((p - y) ** 2))
    assert (m["true_positives"], m["false_positives"], m["false_negatives"], m["true_negatives"]) == (1, 1, 1, 1)
    assert m["observed_default_rate"] == 0.5 and m["mean_predicted_probability"] == pytest.approx(0.5)


def test_single_class_has_no_ranking_metrics() -> None:
    m = metrics.classification_metrics(np.zeros(5), np.linspace(0, 1, 5))
    assert m["roc_auc"] is None and m["ks"] is None and m["brier"] is not None


def test_delong_matches_auc_and_detects_a_better_model() -> None:
    rng = np.random.default_rng(0)
    n = 2000
    y = rng.random(n) < 0.2
    signal = y + rng.normal(scale=1.0, size=n)
    weak = signal + rng.normal(scale=2.0, size=n)
    res = metrics.delong_test(y, weak, signal)
    assert res["auc_a"] == pytest.approx(roc_auc_score(y, weak))
    assert res["auc_b"] == pytest.approx(roc_auc_score(y, signal))
    assert res["difference"] > 0 and res["p_b_better"] < 1e-6
    same = metrics.delong_test(y, signal, signal)
    assert same["difference"] == 0 and same["p_b_better"] == pytest.approx(0.5)
    reverse = metrics.delong_test(y, signal, weak)
    assert reverse["p_b_better"] > 0.99


def test_delong_is_calibrated_under_the_null() -> None:
    """Two equally good, independent noisy scores: p < 0.05 about 5% of the time, not (much) more."""
    rng = np.random.default_rng(1)
    hits = 0
    for _ in range(200):
        y = rng.random(600) < 0.3
        a = y + rng.normal(scale=1.5, size=600)
        b = y + rng.normal(scale=1.5, size=600)
        hits += metrics.delong_test(y, a, b)["p_two_sided"] < 0.05
    assert hits / 200 < 0.1


def test_delong_needs_both_classes() -> None:
    with pytest.raises(ValueError, match="both classes"):
        metrics.delong_test(np.ones(4), np.arange(4), np.arange(4))


# distinct scores at least 1/41 apart, so that every transform below stays strictly increasing in floating point
scores = st.permutations(range(40)).map(lambda r: (np.asarray(r, float) + 1) / 41)
labels = arrays(np.int64, 40, elements=st.integers(0, 1)).filter(lambda y: 0 < y.sum() < len(y))


@settings(max_examples=150, deadline=None)
@given(labels, scores)
def test_auc_is_unchanged_by_monotone_transforms_of_the_score(y: np.ndarray, p: np.ndarray) -> None:
    auc = metrics.classification_metrics(y, p)["roc_auc"]
    for transformed in (np.log1p(p) / np.log(2), p ** 3, np.sqrt(p), 1 / (1 + np.exp(-5 * (p - 0.5)))):  # PDs stay PDs
        assert metrics.classification_metrics(y, transformed)["roc_auc"] == pytest.approx(auc, abs=1e-12)


@settings(max_examples=150, deadline=None)
@given(labels, scores, scores)
def test_delong_is_antisymmetric(y: np.ndarray, a: np.ndarray, b: np.ndarray) -> None:
    ab, ba = metrics.delong_test(y, a, b), metrics.delong_test(y, b, a)
    assert ab["difference"] == pytest.approx(-ba["difference"], abs=1e-12)
    assert ab["p_two_sided"] == pytest.approx(ba["p_two_sided"], abs=1e-9)
    if np.isfinite(ab["z"]) and ab["z"] != 0:
        assert ab["z"] == pytest.approx(-ba["z"])
        assert ab["p_b_better"] + ba["p_b_better"] == pytest.approx(1.0)


# -- reference values: a small table with ties, computed independently in R 4.2.2 with pROC 1.18.0 ---------------
#   y  <- c(rep(0, 12), rep(1, 8)); ra <- roc(y, pa, direction = "<"); rb <- roc(y, pb, direction = "<")
#   auc(ra); sqrt(var(ra, method = "delong")); cov(ra, rb, method = "delong")
#   roc.test(rb, ra, method = "delong", paired = TRUE)                          # z and the two-sided p
#   roc.test(rb, ra, method = "delong", paired = TRUE, alternative = "greater") # one-sided: b better than a
#   ks.test(pa[y == 1], pa[y == 0])$statistic;  mean((pa - y)^2)
def test_auc_and_its_delong_standard_error_match_proc(proc_table) -> None:  # noqa: ANN001 - a fixture
    REF_Y, REF_A, REF_B = proc_table
    assert metrics.auc_with_se(REF_Y, REF_A) == pytest.approx((0.838541666666667, 0.091247720572846), abs=1e-12)
    assert metrics.auc_with_se(REF_Y, REF_B) == pytest.approx((0.932291666666667, 0.052561388300189), abs=1e-12)


def test_the_paired_delong_test_matches_proc(proc_table) -> None:  # noqa: ANN001 - a fixture
    REF_Y, REF_A, REF_B = proc_table
    res = metrics.delong_test(REF_Y, REF_A, REF_B)
    assert res["difference"] == pytest.approx(0.09375, abs=1e-12)
    # var(b - a) = var_a + var_b - 2 cov(a, b), each from pROC
    assert res["se"] ** 2 == pytest.approx(8.326146509740260e-03 + 2.762699540043290e-03 - 2 * 4.170471455627706e-03,
                                           abs=1e-14)
    assert res["z"] == pytest.approx(1.788424317230545, abs=1e-12)
    assert res["p_two_sided"] == pytest.approx(0.073707575957009, abs=1e-12)
    assert res["p_b_better"] == pytest.approx(0.036853787978504, abs=1e-12)
    # better by more than a margin of 0.05: z = (0.09375 - 0.05) / se, se from pROC's z above
    margin = metrics.delong_test(REF_Y, REF_A, REF_B, margin=0.05)
    assert margin["p_b_better"] == pytest.approx(stats.norm.sf(0.04375 / (0.09375 / 1.788424317230545)), abs=1e-12)
    assert margin["p_b_better"] == pytest.approx(0.2019, abs=1e-4) and margin["p_two_sided"] == res["p_two_sided"]


def test_ks_and_brier_match_r(proc_table) -> None:  # noqa: ANN001 - a fixture
    REF_Y, REF_A = proc_table[:2]
    m = metrics.classification_metrics(REF_Y, REF_A)
    assert m["ks"] == pytest.approx(0.583333333333333, abs=1e-12)
    assert m["brier"] == pytest.approx(0.160375, abs=1e-12)
    assert m["gini"] == pytest.approx(2 * 0.838541666666667 - 1, abs=1e-12)
