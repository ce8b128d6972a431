"""Calibrated PD: the model's score turned into a default probability a risk team can read as one.

The calibrator is fitted on out-of-fold predictions (each row scored by a model that did not see it, trained
on nearly as many rows as the serving model), as scikit-learn's ``CalibratedClassifierCV(ensemble=False)`` does, and saved inside the model (``FeatureSpec.calibration``)
as plain numbers, so scoring applies it with numpy on the cluster:

* **Platt**: ``p = sigmoid(a * logit(s) + b)``, strictly increasing, so ranking (AUC) is unchanged;
* **isotonic**: a non-decreasing step function (scikit-learn's ``IsotonicRegression``), applied with linear
  interpolation between its knots so that as few ties as possible are created.

Which one is chosen by cross-validated log-loss over the same folds (each fold's calibrator fitted on the other
folds' out-of-fold scores). Isotonic is only taken when it costs at most ``MAX_AUC_LOSS`` of AUC, and neither is
applied when the raw scores' log-loss is already lower than both (CatBoost's Logloss often is well calibrated):
a calibrator that makes the PD worse is not a calibration.

Reported: Brier score and log-loss before/after, and a calibration table by score decile with the two-sided
Jeffreys test (the binomial test regulators' PD back-testing uses): the observed defaults D of N in a decile are
compared with its mean PD through the Jeffreys posterior Beta(D + 1/2, N - D + 1/2).
"""

from __future__ import annotations

from typing import Any

import numpy as np

# scipy and sklearn are imported by the functions that use them (fitting, reports: the driver). ``apply`` runs in
# every executor's Python worker, which unpickles the scoring function and so imports this module: the two
# libraries are the bulk of that import (python -X importtime), for nothing a score needs.

EPS = 1e-6
MAX_AUC_LOSS = 0.002


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, float), EPS, 1 - EPS)
    return np.log(p / (1 - p))


def fit_platt(p: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    """Logistic regression of the label on the score's logit (two parameters)."""
    from sklearn.linear_model import LogisticRegression

    lr = LogisticRegression(C=1e6, max_iter=1000).fit(_logit(p).reshape(-1, 1), np.asarray(y, int))
    return {"method": "platt", "a": float(lr.coef_[0, 0]), "b": float(lr.intercept_[0])}


def fit_isotonic(p: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    from sklearn.isotonic import IsotonicRegression

    iso = IsotonicRegression(out_of_bounds="clip", y_min=EPS, y_max=1 - EPS).fit(np.asarray(p, float), np.asarray(y, int))
    return {"method": "isotonic", "x": [float(v) for v in iso.X_thresholds_], "y": [float(v) for v in iso.y_thresholds_]}


def apply(calibration: dict[str, Any] | None, p: np.ndarray) -> np.ndarray:
    """Calibrated probabilities for raw scores ``p`` (identity when the model has no calibrator)."""
    p = np.asarray(p, float)
    if not calibration:
        return p
    if calibration["method"] == "platt":
        return 1.0 / (1.0 + np.exp(-(calibration["a"] * _logit(p) + calibration["b"])))
    if calibration["method"] == "isotonic":
        return np.interp(p, calibration["x"], calibration["y"])
    raise ValueError(f"unknown calibration method {calibration['method']!r}")


FITTERS = {"platt": fit_platt, "isotonic": fit_isotonic}


def choose(oof: np.ndarray, y: np.ndarray, folds: np.ndarray) -> tuple[dict[str, Any], dict[str, Any]]:
    """The calibrator for out-of-fold scores ``oof``: Platt or isotonic, by cross-validated log-loss.

    Returns the calibrator fitted on all out-of-fold scores and a report (both methods' CV log-loss and Brier,
    before/after figures, AUC change, the reason for the choice)."""
    from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score

    y = np.asarray(y, int)
    oof = np.asarray(oof, float)
    cross: dict[str, np.ndarray] = {}
    for name, fit in FITTERS.items():
        out = np.empty_like(oof)
        for k in np.unique(folds):
            test = folds == k
            out[test] = apply(fit(oof[~test], y[~test]), oof[test])
        cross[name] = out
    auc_raw = float(roc_auc_score(y, oof))
    scores = {name: {"cv_log_loss": float(log_loss(y, np.clip(p, EPS, 1 - EPS))), "cv_brier": float(brier_score_loss(y, p)),
                     "cv_auc_change": float(roc_auc_score(y, p)) - auc_raw} for name, p in cross.items()}
    method = min(scores, key=lambda m: scores[m]["cv_log_loss"])
    reason = f"lowest cross-validated log-loss ({scores[method]['cv_log_loss']:.5f})"
    if method == "isotonic" and scores["isotonic"]["cv_auc_change"] < -MAX_AUC_LOSS:
        method = "platt"
        reason = (f"isotonic had the lower log-loss but changed AUC by {scores['isotonic']['cv_auc_change']:+.4f} "
                  f"(limit -{MAX_AUC_LOSS}); Platt keeps the ranking")
    raw_log_loss = float(log_loss(y, np.clip(oof, EPS, 1 - EPS)))
    if raw_log_loss <= scores[method]["cv_log_loss"]:
        method = "none"
        reason = (f"the raw scores' log-loss ({raw_log_loss:.5f}) is already lower than Platt's "
                  f"({scores['platt']['cv_log_loss']:.5f}) and isotonic's ({scores['isotonic']['cv_log_loss']:.5f})")
        cross["none"] = oof
        scores["none"] = {"cv_log_loss": raw_log_loss, "cv_brier": float(brier_score_loss(y, oof)), "cv_auc_change": 0.0}
    calibrator = FITTERS[method](oof, y) if method in FITTERS else {}
    report = {
        "method": method, "reason": reason, "candidates": scores,
        "before": {"brier": float(brier_score_loss(y, oof)), "log_loss": float(log_loss(y, np.clip(oof, EPS, 1 - EPS))),
                   "auc": auc_raw},
        "after": {"brier": scores[method]["cv_brier"], "log_loss": scores[method]["cv_log_loss"],
                  "auc": auc_raw + scores[method]["cv_auc_change"]},
        "table_before": calibration_table(y, oof), "table_after": calibration_table(y, cross[method]),
    }
    return calibrator, report


def jeffreys_p(defaults: int, n: int, pd: float) -> float:
    """Two-sided Jeffreys test p-value: is the PD ``pd`` consistent with ``defaults`` of ``n``?"""
    if n <= 0:
        return float("nan")
    from scipy import stats

    cdf = float(stats.beta.cdf(pd, defaults + 0.5, n - defaults + 0.5))
    return float(min(1.0, 2 * min(cdf, 1 - cdf)))


def calibration_table(y: np.ndarray, p: np.ndarray, bins: int = 10) -> list[dict[str, Any]]:
    """Per score decile (equal counts, ties kept together): N, defaults, observed rate, mean PD, Jeffreys p."""
    y = np.asarray(y, int)
    p = np.asarray(p, float)
    if len(p) == 0:
        return []
    edges = np.unique(np.quantile(p, np.linspace(0, 1, bins + 1)[1:-1]))
    idx = np.searchsorted(edges, p, side="right")
    rows = []
    for k in range(len(edges) + 1):
        sel = idx == k
        n = int(sel.sum())
        if n == 0:
            continue
        d = int(y[sel].sum())
        mean_pd = float(p[sel].mean())
        rows.append({"bin": k + 1, "n": n, "defaults": d, "observed_rate": d / n, "mean_pd": mean_pd,
                     "jeffreys_p": jeffreys_p(d, n, mean_pd)})
    return rows


def summary(y: np.ndarray, p: np.ndarray) -> dict[str, Any]:
    """What the daily report shows: Brier, log-loss, the table and its worst Jeffreys p-value."""
    from sklearn.metrics import brier_score_loss, log_loss

    y = np.asarray(y, int)
    p = np.asarray(p, float)
    table = calibration_table(y, p)
    worst = min(table, key=lambda r: r["jeffreys_p"], default=None)
    return {"brier": float(brier_score_loss(y, p)) if len(y) else None,
            "log_loss": float(log_loss(y, np.clip(p, EPS, 1 - EPS), labels=[0, 1])) if len(y) else None,
            "table": table, "worst_bin": worst}
