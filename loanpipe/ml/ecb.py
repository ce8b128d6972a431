"""The PD validation tests that the ECB's instructions for reporting IRB validation results name, beside the
project's Jeffreys test (ECB Banking Supervision, "Instructions for reporting the validation results of internal
models: IRB Pillar I models for credit risk", 2019):

* **AUC decline**: the current AUC against the AUC at the model's initial validation. ``S = (AUC_init - AUC) / s``
  with ``s`` the current AUC's DeLong standard error; p = 1 - Phi(S) (small: the AUC fell).
* **Concentration**: the grade distribution's coefficient of variation ``CV = sqrt(K sum (R_i - 1/K)^2)`` and the
  Herfindahl index ``HI = 1 + ln((CV^2 + 1) / K) / ln K`` (0 spread evenly, 1 all in one grade); the test of an
  increase against the initial distribution: p = 1 - Phi(sqrt(K - 1) (CV - CV_init) / sqrt(CV^2 (0.5 + CV^2))).
* **Migration matrix** (rows the old grade, columns the new): the upper and lower matrix weighted bandwidth,
  ``MWB = sum |i - j| N_ij / sum max(|i - K|, |i - 1|) N_ij`` over the cells above (below) the diagonal (0 no
  move, 1 every move as far as its row allows), and the migration stability test: a cell should not hold more
  than its neighbour nearer the diagonal, ``z_ij = (p_i,j-1 - p_ij) / sqrt((p_ij (1 - p_ij) + p_i,j-1 (1 -
  p_i,j-1) + 2 p_ij p_i,j-1) / N_i)`` above it (j + 1 below it), p = Phi(z_ij) (small: the cell holds more).
* **Binomial test** per grade: p = P[Binomial(N, PD) >= D] with PD the grade's mean PD (small: PD too low).
* **Hosmer-Lemeshow** over the grades: ``HL = sum (N PD - D)^2 / (N PD (1 - PD))``, chi-squared with as many
  degrees of freedom as grades tested (out of sample); p small: the PDs do not fit the defaults.

A test's light, in the PSI's style (:data:`loanpipe.ml.psi.LIGHTS`): red when its p-value is under 0.01, amber
under 0.05, green otherwise. These bounds are the project's, not the ECB's (the instructions ask for the figures,
not for thresholds). The stability test has one p-value per cell; its light reads the smallest, times the number
of cells tested (Bonferroni), so a 10-grade matrix is not red by chance alone.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from loanpipe.ml.psi import LIGHTS

RED_P, AMBER_P = 0.01, 0.05


def p_light(p: float | None) -> str | None:
    """The light of a test's p-value: red under 0.01, amber under 0.05, else green (None: not tested)."""
    if p is None:
        return None
    return LIGHTS[2] if p < RED_P else (LIGHTS[1] if p < AMBER_P else LIGHTS[0])


def _test(p: float | None, **figures: Any) -> dict[str, Any]:
    return {**figures, "p_value": p, "light": p_light(p)}


def auc_decline(initial_auc: float | None, y: np.ndarray, p: np.ndarray) -> dict[str, Any] | None:
    """The current AUC of PDs ``p`` on outcomes ``y`` against ``initial_auc``; None without an initial AUC or
    with a single class."""
    from scipy import stats

    from loanpipe.ml import metrics

    y = np.asarray(y, int)
    if initial_auc is None or len(y) == 0 or y.min() == y.max():
        return None
    auc, se = metrics.auc_with_se(y, np.asarray(p, float))
    if se <= 0:
        return None
    s = (float(initial_auc) - auc) / se
    return _test(float(stats.norm.sf(s)), initial_auc=float(initial_auc), auc=auc, se=se, statistic=s)


def concentration(counts: Any) -> dict[str, float]:
    """The coefficient of variation and the Herfindahl index of applications by grade (``counts``, every grade
    of the scale, empty ones included)."""
    counts = np.asarray(counts, float)
    k, total = len(counts), counts.sum()
    shares = counts / total
    cv = float(np.sqrt(k * np.sum((shares - 1 / k) ** 2)))
    return {"cv": cv, "herfindahl": float(1 + np.log((cv ** 2 + 1) / k) / np.log(k))}


def concentration_test(initial_counts: Any, counts: Any) -> dict[str, Any] | None:
    """Whether the grades are more concentrated now than at the initial validation (None: either is empty)."""
    from scipy import stats

    if not np.sum(initial_counts) or not np.sum(counts):
        return None
    k = len(counts)
    before, now = concentration(initial_counts), concentration(counts)
    cv0, cv = before["cv"], now["cv"]
    if cv == 0:  # spread evenly over the grades: not more concentrated than anything
        return _test(1.0, initial=before, current=now, statistic=None)
    s = np.sqrt(k - 1) * (cv - cv0) / np.sqrt(cv ** 2 * (0.5 + cv ** 2))
    return _test(float(stats.norm.sf(s)), initial=before, current=now, statistic=float(s))


def bandwidth(counts: Any) -> dict[str, float | None]:
    """The upper (``i < j``) and lower matrix weighted bandwidth of a K x K migration matrix of counts (None on a
    side without any move)."""
    n = np.asarray(counts, float)
    k = len(n)
    i, j = np.indices(n.shape) + 1
    reach = np.maximum(np.abs(i - k), np.abs(i - 1))  # the farthest a row's applications can move
    out: dict[str, float | None] = {}
    for side, cells in (("upper", j > i), ("lower", j < i)):
        norm = float(np.sum(reach * n * cells))
        out[side] = float(np.sum(np.abs(i - j) * n * cells)) / norm if norm else None
    return out


def migration_stability(counts: Any) -> dict[str, Any]:
    """The z statistic and p-value of every off-diagonal cell of a migration matrix whose row and neighbour are
    not both empty, and the matrix's light (:func:`p_light` of the smallest p times the cells tested)."""
    from scipy import stats

    n = np.asarray(counts, float)
    k = len(n)
    rows = n.sum(axis=1)
    cells = []
    for i in range(k):
        if not rows[i]:
            continue
        share = n[i] / rows[i]
        for j in range(k):
            if i == j:
                continue
            near = j - 1 if j > i else j + 1  # the neighbour nearer the diagonal
            a, b = share[j], share[near]
            var = (a * (1 - a) + b * (1 - b) + 2 * a * b) / rows[i]
            if var <= 0:
                continue
            z = float((b - a) / np.sqrt(var))
            cells.append({"from": i + 1, "to": j + 1, "z": z, "p_value": float(stats.norm.cdf(z))})
    smallest = min((c["p_value"] for c in cells), default=None)
    adjusted = None if smallest is None else min(1.0, smallest * len(cells))
    failing = [c for c in cells if c["p_value"] < AMBER_P]
    return {"cells_tested": len(cells), "cells_under_5pct": len(failing),
            "worst": min(cells, key=lambda c: c["p_value"]) if cells else None,
            "p_value": adjusted, "light": p_light(adjusted)}


def binomial_p(defaults: int, n: int, pd: float) -> float:
    """P[Binomial(n, pd) >= defaults]: small when the grade's PD is too low for its defaults."""
    from scipy import stats

    return float(stats.binom.sf(defaults - 1, n, pd))


def hosmer_lemeshow(grades: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The Hosmer-Lemeshow test over a grade table's rows (``n``, ``defaults``, ``mean_pd``); grades without
    applications or with a PD of 0 or 1 are left out. None when no grade is left."""
    from scipy import stats

    used = [g for g in grades if g["n"] and g["mean_pd"] is not None and 0 < g["mean_pd"] < 1]
    if not used:
        return None
    n = np.array([g["n"] for g in used], float)
    d = np.array([g["defaults"] for g in used], float)
    pd = np.array([g["mean_pd"] for g in used], float)
    hl = float(np.sum((n * pd - d) ** 2 / (n * pd * (1 - pd))))
    return _test(float(stats.chi2.sf(hl, len(used))), statistic=hl, degrees_of_freedom=len(used))
