"""PD calibration (loanpipe.ml.calibration): Platt/isotonic chosen by CV log-loss, the Jeffreys test, the table."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import log_loss, roc_auc_score

from loanpipe.ml import calibration


def miscalibrated(n: int = 6000, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """True PDs, labels, and a score that ranks right but overstates every PD (p ** 0.4)."""
    rng = np.random.default_rng(seed)
    true = 1 / (1 + np.exp(-(rng.standard_normal(n) * 1.5 - 2.5)))
    y = (rng.random(n) < true).astype(int)
    return true, y, true ** 0.4


def test_calibration_fixes_an_overconfident_score_without_changing_the_ranking() -> None:
    _, y, score = miscalibrated()
    folds = np.arange(len(y)) % 5
    calibrator, report = calibration.choose(score, y, folds)
    assert report["method"] in ("platt", "isotonic") and calibrator["method"] == report["method"]
    assert report["after"]["brier"] < report["before"]["brier"] - 0.02
    assert report["after"]["log_loss"] < report["before"]["log_loss"]
    p = calibration.apply(calibrator, score)
    assert abs(roc_auc_score(y, p) - roc_auc_score(y, score)) <= calibration.MAX_AUC_LOSS
    assert abs(p.mean() - y.mean()) < 0.01  # the PD level now matches the default rate
    assert len(report["table_before"]) == 10 and min(r["jeffreys_p"] for r in report["table_before"]) < 1e-6


def test_platt_is_monotone_and_isotonic_interpolates() -> None:
    _, y, score = miscalibrated(seed=1)
    platt = calibration.fit_platt(score, y)
    grid = np.linspace(0.001, 0.999, 500)
    assert np.all(np.diff(calibration.apply(platt, grid)) > 0)
    iso = calibration.fit_isotonic(score, y)
    out = calibration.apply(iso, grid)
    assert np.all(np.diff(out) >= 0) and out.min() >= 0 and out.max() <= 1
    assert np.array_equal(calibration.apply({}, grid), grid)  # no calibrator: identity


def test_a_calibrated_score_is_left_alone() -> None:
    true, y, _ = miscalibrated(seed=2)
    calibrator, report = calibration.choose(true, y, np.arange(len(y)) % 5)
    assert report["method"] == "none" and calibrator == {}
    assert report["after"]["log_loss"] == pytest.approx(log_loss(y, true))


def _beta_cdf_by_quadrature(x: float, a: float, b: float) -> float:
    """The Beta CDF by the trapezoidal rule on a fine grid (independent of scipy.stats)."""
    import math

    grid = np.linspace(1e-9, 1 - 1e-9, 400_001)
    log_pdf = (a - 1) * np.log(grid) + (b - 1) * np.log1p(-grid) - (math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b))
    pdf = np.exp(log_pdf)
    inside = grid <= x
    return float(np.trapezoid(pdf[inside], grid[inside]) / np.trapezoid(pdf, grid))


@pytest.mark.parametrize(("d", "n", "pd"), [(5, 100, 0.02), (5, 100, 0.10), (2, 50, 0.01), (30, 300, 0.1)])
def test_jeffreys_p_value_matches_a_hand_computation(d: int, n: int, pd: float) -> None:
    cdf = _beta_cdf_by_quadrature(pd, d + 0.5, n - d + 0.5)
    assert calibration.jeffreys_p(d, n, pd) == pytest.approx(min(1.0, 2 * min(cdf, 1 - cdf)), abs=2e-4)
    if (d, n, pd) == (5, 100, 0.02):
        assert calibration.jeffreys_p(d, n, pd) == pytest.approx(0.0572, abs=1e-4)


def test_calibration_table_counts_every_row_once() -> None:
    _, y, score = miscalibrated(n=1234, seed=4)
    table = calibration.calibration_table(y, score)
    assert sum(r["n"] for r in table) == 1234 and sum(r["defaults"] for r in table) == y.sum()
    assert [r["bin"] for r in table] == list(range(1, len(table) + 1))
    means = [r["mean_pd"] for r in table]
    assert means == sorted(means)
    summary = calibration.summary(y, score)
    assert summary["worst_bin"]["jeffreys_p"] == min(r["jeffreys_p"] for r in table)


def test_the_calibration_table_matches_r() -> None:
    """PDs 0.01..0.20, defaults among the top four: 10 deciles of 2 rows (np.quantile's default is R's type 7).
    In R: pbeta(mean_pd, d + 1/2, n - d + 1/2) per decile, two-sided; mean((p - y)^2); the log-loss."""
    p = np.round(np.arange(1, 21) / 100, 2)
    y = np.array([0] * 16 + [1, 0, 1, 1])
    summary = calibration.summary(y, p)
    jeffreys = [0.412726536643573, 0.624146030350132, 0.774554149145611, 0.895369450945148, 0.997511105352562,
                0.913643402278273, 0.834958627744288, 0.764408503118956, 0.235074814461741, 0.012300855539737]
    table = summary["table"]
    assert [r["n"] for r in table] == [2] * 10
    assert [r["defaults"] for r in table] == [0] * 8 + [1, 2]
    assert [r["mean_pd"] for r in table] == pytest.approx([0.015 + 0.02 * k for k in range(10)], abs=1e-12)
    assert [r["jeffreys_p"] for r in table] == pytest.approx(jeffreys, abs=1e-12)
    assert summary["worst_bin"]["bin"] == 10
    assert summary["brier"] == pytest.approx(0.10835, abs=1e-12)
    assert summary["log_loss"] == pytest.approx(0.334111390078626, abs=1e-12)


def test_tied_pds_stay_in_one_bin_as_in_r() -> None:
    """Four tied PD levels whose values are deciles' edges themselves: each level is one bin, the bin above its
    edge (R: findInterval(p, unique(quantile(p, seq(.1, .9, .1)))), then the same Jeffreys p-values)."""
    p = np.array([0.02] * 6 + [0.05] * 6 + [0.10] * 4 + [0.30] * 4)
    y = np.array([0] * 6 + [0, 0, 0, 0, 0, 1] + [0, 0, 1, 0] + [1, 0, 1, 1])
    table = calibration.calibration_table(y, p)
    assert [(r["bin"], r["n"], r["defaults"]) for r in table] == [(2, 6, 0), (4, 6, 1), (6, 4, 1), (8, 4, 3)]
    assert [r["jeffreys_p"] for r in table] == pytest.approx(
        [0.769712269453441, 0.202033069740237, 0.294768392881366, 0.060259559855482], abs=1e-12)
