"""Candidate selection by K-fold CV (loanpipe.ml.selection): folds, the one-standard-error rule, the guard."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from loanpipe.ml import selection
from loanpipe.ml.selection import CVResult


def result(name: str, aucs: list[float], n_features: int) -> CVResult:
    return CVResult(name, [f"f{i}" for i in range(n_features)], aucs, np.zeros(1), 0.0)


def test_folds_are_stratified_and_follow_the_id_not_the_row_order() -> None:
    rng = np.random.default_rng(0)
    ids = pd.Series(np.arange(1000) * 7 + 3)
    y = (rng.random(1000) < 0.1).astype(int)
    folds = selection.stratified_folds(ids, y, 5, seed=1)
    assert sorted(np.unique(folds)) == [0, 1, 2, 3, 4]
    per_fold = [int(y[folds == k].sum()) for k in range(5)]
    assert max(per_fold) - min(per_fold) <= 1  # defaults dealt out evenly
    assert max(np.bincount(folds)) - min(np.bincount(folds)) <= 2
    order = rng.permutation(1000)
    again = selection.stratified_folds(ids.iloc[order].reset_index(drop=True), y[order], 5, seed=1)
    assert np.array_equal(again, folds[order])
    assert not np.array_equal(selection.stratified_folds(ids, y, 5, seed=2), folds)


def test_one_standard_error_rule_takes_the_simplest_candidate_within_reach() -> None:
    raw = result(selection.ALL_RAW, [0.800, 0.812, 0.790, 0.805, 0.798], 700)
    forward = result(selection.FORWARD, [0.801, 0.810, 0.791, 0.804, 0.799], 8)  # as good, far simpler
    chosen, decision = selection.choose([raw, forward])
    assert chosen is forward and decision["chosen"] == selection.FORWARD
    assert decision["guard"]["passed"] is True
    worse = result(selection.FORWARD, [0.780, 0.792, 0.771, 0.785, 0.778], 8)  # 0.02 below on every fold
    chosen, decision = selection.choose([raw, worse])
    assert chosen is raw and decision["within_one_se"] == [selection.ALL_RAW]


def test_guard_falls_back_to_all_raw_columns() -> None:
    raw = result(selection.ALL_RAW, [0.810, 0.811, 0.810, 0.812, 0.810], 700)
    small = result(selection.TOP_K, [0.800, 0.800, 0.800, 0.800, 0.800], 30)
    # the best candidate is noisy against the small one, so the small one is within one SE of it ...
    noisy = result(selection.ALL_RAW_PAIRS, [0.900, 0.720, 0.880, 0.740, 0.830], 710)
    chosen, decision = selection.choose([raw, small, noisy])
    assert selection.TOP_K in decision["within_one_se"]
    # ... but it is consistently 0.01 below plain CatBoost on all raw columns: the guard serves all_raw
    assert chosen is raw and decision["chosen"] == selection.ALL_RAW
    assert decision["guard"]["passed"] is False and "all_raw serves instead" in decision["guard"]["reason"]


def test_cross_validation_and_forward_selection_on_a_planted_signal() -> None:
    rng = np.random.default_rng(3)
    n = 1500
    frame = pd.DataFrame(rng.standard_normal((n, 6)), columns=[f"x{i}" for i in range(6)])
    frame["cat"] = rng.choice(["a", "b", "c", None], n).astype(object)
    frame["cat"] = frame["cat"].fillna("__missing__")
    logit = 2.0 * frame["x0"] - 1.5 * frame["x1"] + np.where(frame["cat"] == "a", 1.5, 0.0) - 2
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    folds = selection.stratified_folds(pd.Series(np.arange(n)), y, 3, seed=0)
    params = {"iterations": 60, "depth": 4, "random_seed": 0, "thread_count": 1, "loss_function": "Logloss"}
    cv = selection.cross_validate(frame, y, folds, list(frame.columns), ["cat"], params, "all")
    assert len(cv.fold_aucs) == 3 and cv.mean > 0.8 and not np.isnan(cv.oof).any()
    ranked = ["x0", "x5", "x1", "cat", "x2", "x3", "x4"]
    selected, curve = selection.forward_selection(frame, y, folds, ranked, ["cat"], params, max_features=5, patience=3)
    assert selected[:1] == ["x0"] and "x1" in selected and "x5" not in selected
    assert {"feature", "mean_auc", "gain", "noise", "kept"} <= set(curve[0])
    nested = selection.nested_forward(frame, y, folds, selected, ranked, ["cat"], params, params, 5, 3, seed=0)
    assert nested.name == selection.FORWARD and len(nested.fold_aucs) == 3 and nested.mean > 0.75


@pytest.mark.parametrize("k", [2, 5])
def test_paired_se_is_zero_for_a_constant_difference(k: int) -> None:
    a = list(np.linspace(0.7, 0.8, k))
    assert selection.paired_se(a, [v - 0.01 for v in a]) == pytest.approx(0.0, abs=1e-12)


# Fold AUCs built so that each paired difference is a mean plus (+x, -x, +x, -x, 0): its sample standard deviation
# (ddof 1) is x, so its standard error over the 5 folds is x / sqrt(5), by hand.
BASE = [0.78, 0.80, 0.82, 0.79, 0.81]  # mean 0.80
WIGGLE = [1, -1, 1, -1, 0]


def below(folds: list[float], mean: float, x: float) -> list[float]:
    """``folds`` less ``mean + x * WIGGLE`` fold by fold: paired difference of mean ``mean``, SE ``x / sqrt(5)``."""
    return [f - (mean + x * w) for f, w in zip(folds, WIGGLE)]


def test_paired_se_matches_a_hand_computation() -> None:
    assert selection.paired_se(BASE, below(BASE, 0.001, 0.0025)) == pytest.approx(0.0025 / np.sqrt(5), abs=1e-12)


def test_the_one_se_rule_at_its_boundary() -> None:
    """The SE of both differences is 0.0025 / sqrt(5) = 0.001118: a candidate 0.0010 below the best is within one
    SE, one 0.0012 below is not. So the simplest candidate within reach is the 5-feature one, not the 3-feature one
    (a rule twice as wide would take the 3-feature one; half as wide, the best)."""
    best = result(selection.FORWARD, BASE, 10)
    inside = result(selection.TOP_K, below(BASE, 0.0010, 0.0025), 5)
    outside = result(selection.ALL_RAW_PAIRS, below(BASE, 0.0012, 0.0025), 3)
    chosen, decision = selection.choose([best, inside, outside])
    assert decision["within_one_se"] == [selection.FORWARD, selection.TOP_K]
    assert chosen is inside and decision["best"] == selection.FORWARD


def test_the_guard_at_its_boundary() -> None:
    """The chosen candidate against all_raw: all_raw is 0.0009 above it on average with a paired SE of
    0.001 / sqrt(5) = 0.000447, so the chosen one is more than one SE below and all_raw serves; with all_raw
    0.0004 above (within 0.000447) the chosen one stays."""
    best = result(selection.FORWARD, BASE, 10)
    chosen_folds = below(BASE, 0.0010, 0.0025)  # within one SE of the best (test above)
    for lead, guard_passes in ((0.0009, False), (0.0004, True)):
        raw_folds = below(chosen_folds, -lead, 0.001)  # all_raw = chosen + lead + 0.001 * WIGGLE
        raw = result(selection.ALL_RAW, raw_folds, 700)
        chosen, decision = selection.choose([best, result(selection.TOP_K, chosen_folds, 5), raw])
        assert decision["guard"]["se"] == pytest.approx(0.001 / np.sqrt(5), abs=1e-5)
        assert decision["guard"]["passed"] is guard_passes, lead
        assert chosen.name == (selection.TOP_K if guard_passes else selection.ALL_RAW)
