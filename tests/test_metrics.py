"""Evaluation metrics, the DeLong test and PSI (pure numpy)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from loanpipe import metrics


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


def test_psi() -> None:
    rng = np.random.default_rng(2)
    ref = rng.normal(size=20_000)
    edges = metrics.quantile_edges(ref)
    base = metrics.bin_shares(ref, edges)
    assert len(base) == len(edges) + 2 and sum(base) == pytest.approx(1.0)
    same = metrics.psi(base, metrics.bin_shares(rng.normal(size=20_000), edges))
    shifted = metrics.psi(base, metrics.bin_shares(rng.normal(loc=1.0, size=20_000), edges))
    assert same < 0.01 and metrics.psi_label(same) == "stable"
    assert shifted > 0.25 and metrics.psi_label(shifted) == "drift"
    with_missing = np.where(rng.random(20_000) < 0.3, np.nan, rng.normal(size=20_000))
    assert metrics.psi(base, metrics.bin_shares(with_missing, edges)) > 0.25  # missingness shift counts


def test_category_psi_bins_frequent_levels_other_and_unseen() -> None:
    train = np.array(["a"] * 50 + ["b"] * 30 + ["c"] * 15 + ["d"] * 5, dtype=object)
    ref = metrics.category_reference(train, top=2)
    assert ref["levels"] == ["a", "b"] and ref["seen"] == ["a", "b", "c", "d"]
    assert ref["shares"] == [0.5, 0.3, 0.2, 0.0]  # a, b, other seen (c, d), unseen
    same = metrics.category_shares(train[::-1], ref)
    assert metrics.psi(ref["shares"], same) == 0.0
    new = np.array(["a"] * 50 + ["b"] * 30 + ["zz"] * 20, dtype=object)  # a level never seen in training
    shares = metrics.category_shares(new, ref)
    assert shares == [0.5, 0.3, 0.0, 0.2]
    assert metrics.psi(ref["shares"], shares) > 0.25
    many = metrics.category_reference(np.array([f"L{i}" for i in range(metrics.MAX_SEEN_LEVELS + 1)], dtype=object))
    assert many["seen"] is None and len(many["levels"]) == metrics.TOP_LEVELS
    assert metrics.category_shares(np.array(["new"], dtype=object), many)[-2:] == [1.0, 0.0]  # counted as other
