"""What a credit-risk team reads beside each PD: reason codes, rating grades and the validation figures.

* **Reason codes**: for each applicant the features that push the PD up most, from CatBoost's SHAP values
  (log-odds contributions of the raw score; the PD calibrator is monotone, so the same features push the PD up).
  Each reason names the feature and the applicant's value; an engineered pair is named by what it is
  (``f528 - 0.998*f527``). Computed in the scoring pass (``loanpipe.ml.scoring``).
* **Rating grades** on a master scale (``risk.master_scale``: each grade's upper PD bound, grade 1 the safest),
  each grade's observed default rate tested against its PDs with the Jeffreys test.
* **Validation figures** the regulators' PD validation lists ask for beyond the daily metrics: AUC with its
  DeLong 95% interval, lift by score decile (a CAP in table form), and the grade migration matrix between two
  models on the same applications.

Pure numpy functions, shared by the Spark jobs, the report and the tests.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from loanpipe.ml import calibration, ecb  # not metrics nor scipy: grade_of and top_reasons run in executors (calibration.py)

REASON_PREFIX = "reason_"


# -- reason codes --------------------------------------------------------------------------------------------

def reason_columns(n: int) -> list[str]:
    return [f"{REASON_PREFIX}{k}" for k in range(1, n + 1)]


def feature_labels(features: list[str], pairs: list[dict[str, Any]]) -> list[str]:
    """How each model input is named in a reason: raw columns by name, engineered pairs by their formula."""
    by_name = {p["name"]: p for p in pairs}
    out = []
    for f in features:
        pair = by_name.get(f)
        out.append(f if pair is None else f"{pair['a']} - {pair['beta']:.4g}*{pair['b']}")
    return out


def _value_text(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "missing"
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.6g}"
    return str(value)


def top_reasons(shap: np.ndarray, values: Any, labels: list[str], n: int) -> list[list[str | None]]:
    """The ``n`` reason columns for a block of rows: ``shap`` (rows x features, the expected-value column left
    out), ``values`` the model inputs (rows x features: a numpy matrix or a list of columns). Reason k is the
    k-th largest positive contribution as ``"<feature> = <value>"``; None when fewer than k features push the
    PD up. Ties go to the earlier feature (a stable order), so the same row always gets the same reasons."""
    rows, width = shap.shape
    n_eff = min(n, width)
    order = np.argsort(-shap, axis=1, kind="stable")[:, :n_eff]
    push = np.take_along_axis(shap, order, axis=1) > 0
    cols: list[list[str | None]] = []
    for k in range(n_eff):
        idx = order[:, k]
        if isinstance(values, np.ndarray):
            picked = values[np.arange(rows), idx]
        else:
            picked = [values[j][i] for i, j in enumerate(idx)]
        cols.append([f"{labels[j]} = {_value_text(v)}" if ok else None
                     for j, v, ok in zip(idx.tolist(), list(picked), push[:, k].tolist())])
    cols += [[None] * rows for _ in range(n - n_eff)]
    return cols


# -- rating grades -------------------------------------------------------------------------------------------

def grade_of(p: np.ndarray, bounds: list[float]) -> np.ndarray:
    """Grade 1..len(bounds) of each PD: grade k holds (bounds[k-2], bounds[k-1]], grade 1 [0, bounds[0]]."""
    return np.searchsorted(np.asarray(bounds[:-1], float), np.asarray(p, float), side="left") + 1


def grade_column(p_col: Any, bounds: list[float]) -> Any:
    """The same mapping as :func:`grade_of` as a Spark column expression on the PD column."""
    from pyspark.sql import functions as F

    grade = F.lit(1)
    for b in bounds[:-1]:
        grade = grade + (p_col > F.lit(float(b))).cast("int")
    return grade.cast("int")


def grade_bands(bounds: list[float]) -> list[tuple[float, float]]:
    return list(zip([0.0, *bounds[:-1]], bounds))


def grade_table(y: np.ndarray, p: np.ndarray, bounds: list[float]) -> list[dict[str, Any]]:
    """Per grade of the master scale: its PD band, N, share, defaults, observed default rate, mean PD, whether the
    observed rate lies in the band, the two-sided Jeffreys p-value of the defaults against the grade's mean PD and
    the one-sided binomial one (:func:`loanpipe.ml.ecb.binomial_p`; both None for an empty grade)."""
    y = np.asarray(y, int)
    p = np.asarray(p, float)
    grades = grade_of(p, bounds)
    total = len(p)
    rows = []
    for k, (lo, hi) in enumerate(grade_bands(bounds), start=1):
        sel = grades == k
        n = int(sel.sum())
        d = int(y[sel].sum()) if n else 0
        mean_pd = float(p[sel].mean()) if n else None
        observed = d / n if n else None
        rows.append({"grade": k, "pd_from": lo, "pd_to": hi, "n": n, "share": n / total if total else 0.0,
                     "defaults": d, "observed_rate": observed, "mean_pd": mean_pd,
                     "in_band": None if observed is None else bool(lo <= observed <= hi),
                     "jeffreys_p": calibration.jeffreys_p(d, n, mean_pd) if n else None,
                     "binomial_p": ecb.binomial_p(d, n, mean_pd) if n else None})
    return rows


def migration_matrix(old: np.ndarray, new: np.ndarray, grades: int) -> dict[str, Any]:
    """Counts of applications by (grade under the old model, grade under the new), with the row and column
    totals, the shares that stayed, moved up (safer) and moved down (riskier), the matrix weighted bandwidths and
    the migration stability test (loanpipe.ml.ecb)."""
    old = np.asarray(old, int)
    new = np.asarray(new, int)
    counts = np.zeros((grades, grades), dtype=int)
    np.add.at(counts, (old - 1, new - 1), 1)
    n = int(counts.sum())
    stayed = int(np.trace(counts))
    safer = int(np.tril(counts, -1).sum())  # new grade below the old one
    return {"grades": grades, "counts": counts.tolist(), "row_totals": counts.sum(axis=1).tolist(),
            "column_totals": counts.sum(axis=0).tolist(), "n": n,
            "stayed": stayed / n if n else None, "safer": safer / n if n else None,
            "riskier": (n - stayed - safer) / n if n else None,
            "within_one_grade": float(sum(counts[i, j] for i in range(grades) for j in range(grades)
                                          if abs(i - j) <= 1)) / n if n else None,
            "bandwidth": ecb.bandwidth(counts), "stability": ecb.migration_stability(counts)}


# -- discriminatory power ------------------------------------------------------------------------------------

def auc_interval(y: np.ndarray, p: np.ndarray, level: float = 0.95) -> dict[str, float] | None:
    """AUC with its DeLong standard error and ``level`` confidence interval (clipped to [0, 1]); None when the
    rows hold a single class."""
    y = np.asarray(y, int)
    if len(y) == 0 or y.min() == y.max():
        return None
    from scipy import stats

    from loanpipe.ml import metrics

    auc, se = metrics.auc_with_se(y, p)
    z = float(stats.norm.ppf(0.5 + level / 2))
    return {"auc": auc, "se": se, "level": level, "low": max(0.0, auc - z * se), "high": min(1.0, auc + z * se)}


def lift_table(y: np.ndarray, p: np.ndarray, bins: int = 10) -> list[dict[str, Any]]:
    """Applications by score decile, riskiest first: N, defaults, default rate, lift over the overall rate and
    the cumulative share of all defaults captured (the CAP curve at each decile)."""
    y = np.asarray(y, int)
    p = np.asarray(p, float)
    if len(y) == 0:
        return []
    order = np.argsort(-p, kind="stable")
    chunks = np.array_split(order, min(bins, len(order)))
    total_d = int(y.sum())
    base = total_d / len(y)
    rows, seen_d, seen_n = [], 0, 0
    for k, idx in enumerate(chunks, start=1):
        n, d = len(idx), int(y[idx].sum())
        seen_d, seen_n = seen_d + d, seen_n + n
        rows.append({"decile": k, "n": n, "defaults": d, "default_rate": d / n if n else None,
                     "min_pd": float(p[idx].min()), "max_pd": float(p[idx].max()),
                     "lift": (d / n) / base if n and base else None,
                     "cumulative_share_of_applications": seen_n / len(y),
                     "cumulative_share_of_defaults": seen_d / total_d if total_d else None})
    return rows

