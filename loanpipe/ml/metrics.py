"""Model evaluation: ranking and calibration metrics and the paired DeLong test (PSI lives in ``psi``).

Pure numpy/scikit-learn functions on arrays, so the pipeline, the notebooks and the tests share them.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import stats
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score, roc_curve


def classification_metrics(y: np.ndarray, p: np.ndarray, cutoff: float = 0.5) -> dict[str, Any]:
    """ROC AUC, PR AUC, Gini, KS, Brier, default rates and the confusion counts at ``cutoff``."""
    y = np.asarray(y).astype(int)
    p = np.asarray(p, dtype=float)
    out: dict[str, Any] = {
        "rows": int(len(y)),
        "defaults": int(y.sum()),
        "observed_default_rate": float(y.mean()) if len(y) else math.nan,
        "mean_predicted_probability": float(p.mean()) if len(p) else math.nan,
        "brier": float(brier_score_loss(y, p)) if len(y) else math.nan,
    }
    decided = p >= cutoff
    out.update({
        "cutoff": cutoff,
        "true_positives": int((decided & (y == 1)).sum()),
        "false_positives": int((decided & (y == 0)).sum()),
        "false_negatives": int((~decided & (y == 1)).sum()),
        "true_negatives": int((~decided & (y == 0)).sum()),
    })
    if 0 < y.sum() < len(y):
        auc = float(roc_auc_score(y, p))
        fpr, tpr, _ = roc_curve(y, p)
        out.update({"roc_auc": auc, "gini": 2 * auc - 1, "ks": float(np.max(tpr - fpr)),
                    "pr_auc": float(average_precision_score(y, p))})
    else:  # one class only: ranking metrics are undefined, and say so
        out.update({"roc_auc": None, "gini": None, "ks": None, "pr_auc": None})
    return out


def _midrank(x: np.ndarray) -> np.ndarray:
    order = np.argsort(x, kind="mergesort")
    xs = x[order]
    n = len(x)
    ranks = np.zeros(n)
    i = 0
    while i < n:
        j = i
        while j < n and xs[j] == xs[i]:
            j += 1
        ranks[i:j] = 0.5 * (i + j - 1) + 1
        i = j
    out = np.empty(n)
    out[order] = ranks
    return out


def _delong(y: np.ndarray, scores: list[np.ndarray]) -> tuple[list[float], np.ndarray]:
    """The AUC of each score vector on the same rows and their DeLong covariance matrix (DeLong et al. 1988;
    the midrank form of Sun & Xu 2014)."""
    y = np.asarray(y).astype(int)
    pos, neg = y == 1, y == 0
    m, n = int(pos.sum()), int(neg.sum())
    if m == 0 or n == 0:
        raise ValueError("DeLong test needs both classes among the rows")
    aucs, v01, v10 = [], [], []
    for s in scores:
        s = np.asarray(s, float)
        tx, ty = _midrank(s[pos]), _midrank(s[neg])
        tz = _midrank(np.concatenate([s[pos], s[neg]]))
        aucs.append(float((tz[:m].sum() - m * (m + 1) / 2) / (m * n)))
        v01.append((tz[:m] - tx) / n)
        v10.append(1.0 - (tz[m:] - ty) / m)
    k = len(scores)
    sx = np.atleast_2d(np.cov(np.vstack(v01))) if m > 1 else np.zeros((k, k))
    sy = np.atleast_2d(np.cov(np.vstack(v10))) if n > 1 else np.zeros((k, k))
    return aucs, sx / m + sy / n


def auc_with_se(y: np.ndarray, p: np.ndarray) -> tuple[float, float]:
    """One ROC AUC and its DeLong standard error."""
    aucs, cov = _delong(y, [p])
    return aucs[0], math.sqrt(max(float(cov[0, 0]), 0.0))


def delong_test(y: np.ndarray, p_a: np.ndarray, p_b: np.ndarray, margin: float = 0.0) -> dict[str, float]:
    """Paired DeLong test of two correlated ROC AUCs on the same rows (DeLong et al. 1988; Sun & Xu 2014).

    Returns both AUCs, their difference (b - a), its standard error, the z statistic, the two-sided p-value
    (no difference) and the one-sided p-value for "b is better than a by more than ``margin``" (H0: b - a <=
    margin; ``margin`` 0: simply better), a superiority-by-a-margin test: an observed gain just over the margin
    does not pass it, a gain whose lower confidence bound clears the margin does.
    """
    aucs, cov = _delong(y, [p_a, p_b])
    diff = aucs[1] - aucs[0]
    var = cov[0, 0] + cov[1, 1] - 2 * cov[0, 1]
    se = math.sqrt(max(var, 0.0))

    def z_of(shift: float) -> float:
        if se == 0.0:
            return 0.0 if diff == shift else math.copysign(math.inf, diff - shift)
        return (diff - shift) / se

    z = z_of(0.0)
    return {
        "auc_a": float(aucs[0]), "auc_b": float(aucs[1]), "difference": float(diff), "se": se, "z": float(z),
        "p_two_sided": float(2 * stats.norm.sf(abs(z))), "margin": float(margin),
        "p_b_better": float(stats.norm.sf(z_of(margin))),
    }
