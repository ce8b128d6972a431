"""Choosing the model's features by K-fold cross-validation, with a guard against doing worse than plain CatBoost.

Every candidate feature set is scored with the same stratified, seeded folds (assigned by a hash of the id, so
a row keeps its fold whatever the sample's order) and the serving model's parameters. The choice:

* **one-standard-error rule**: among the candidates whose mean CV AUC is within one standard error of the best
  one's, the simplest (fewest features) is chosen. The standard error is that of the paired fold-by-fold
  difference from the best candidate: every candidate is scored on the same folds, so fold-to-fold variation
  that all candidates share is not counted as uncertainty between them;
* **guard**: the chosen candidate's mean may not be more than one standard error (of its paired difference)
  below the all-raw-columns candidate's, which is plain CatBoost on every column; if it would be, all-raw
  serves and the report says why.

Forward selection also uses the folds: a feature is kept only when it lifts the mean CV AUC by more than the
standard error of the paired gain, and the search stops after ``patience`` features in a row that did not.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

ALL_RAW, ALL_RAW_PAIRS, TOP_K, FORWARD = "all_raw", "all_raw+pairs", "top_k", "forward"


@dataclass
class CVResult:
    name: str
    features: list[str]
    fold_aucs: list[float]
    oof: np.ndarray  # out-of-fold default scores, one per row of the CV sample
    seconds: float
    note: str = ""

    @property
    def mean(self) -> float:
        return float(np.mean(self.fold_aucs))

    @property
    def sd(self) -> float:
        return float(np.std(self.fold_aucs, ddof=1)) if len(self.fold_aucs) > 1 else 0.0

    def row(self) -> dict[str, Any]:
        return {"candidate": self.name, "n_features": len(self.features), "features": self.features,
                "mean_auc": round(self.mean, 5), "sd_auc": round(self.sd, 5),
                "fold_aucs": [round(a, 5) for a in self.fold_aucs], "seconds": round(self.seconds, 2),
                **({"note": self.note} if self.note else {})}


def stratified_folds(ids: pd.Series, y: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Fold number (0..k-1) per row: within each class rows are ordered by a hash of (id, seed) and dealt out
    in turn, so each fold holds the same share of defaults and a row's fold depends only on its id."""
    h = pd.util.hash_pandas_object(ids.astype(str) + f":fold:{seed}", index=False).to_numpy()
    folds = np.empty(len(ids), dtype=int)
    y = np.asarray(y)
    for cls in np.unique(y):
        rows = np.flatnonzero(y == cls)
        order = rows[np.argsort(h[rows], kind="stable")]
        folds[order] = np.arange(len(order)) % k
    return folds


def cross_validate(frame: pd.DataFrame, y: np.ndarray, folds: np.ndarray, features: list[str],
                   categorical: list[str], params: dict[str, Any], name: str = "") -> CVResult:
    """Fit one CatBoost per fold on the other folds; AUC on the held-out fold and the out-of-fold scores."""
    from catboost import CatBoostClassifier

    start = time.monotonic()
    cats = [c for c in features if c in set(categorical)] or None
    oof = np.full(len(frame), np.nan)
    aucs = []
    x = frame[features]
    for k in range(int(folds.max()) + 1):
        test = folds == k
        model = CatBoostClassifier(**params, verbose=0, allow_writing_files=False)
        model.fit(x[~test], y[~test], cat_features=cats)
        oof[test] = model.predict_proba(x[test])[:, 1]
        aucs.append(float(roc_auc_score(y[test], oof[test])))
    return CVResult(name, list(features), aucs, oof, time.monotonic() - start)


def paired_se(a: list[float], b: list[float]) -> float:
    """Standard error of the mean fold-by-fold difference between two candidates scored on the same folds."""
    d = np.asarray(a) - np.asarray(b)
    return float(np.std(d, ddof=1) / math.sqrt(len(d))) if len(d) > 1 else 0.0


def forward_selection(frame: pd.DataFrame, y: np.ndarray, folds: np.ndarray, ranked: list[str],
                      categorical: list[str], params: dict[str, Any], max_features: int,
                      patience: int = 3) -> tuple[list[str], list[dict[str, Any]]]:
    """Forward selection along ``ranked`` scored by CV: keep a feature when the mean AUC gain exceeds the
    standard error of the paired gain; stop at ``max_features`` or after ``patience`` misses in a row."""
    selected: list[str] = []
    best: list[float] = [0.5] * (int(folds.max()) + 1)
    curve: list[dict[str, Any]] = []
    misses = 0
    for feature in ranked:
        if len(selected) >= max_features or misses >= patience:
            break
        trial = cross_validate(frame, y, folds, selected + [feature], categorical, params)
        gain = trial.mean - float(np.mean(best))
        noise = paired_se(trial.fold_aucs, best)
        kept = gain > max(noise, 1e-4)
        curve.append({"feature": feature, "mean_auc": round(trial.mean, 5), "sd_auc": round(trial.sd, 5),
                      "gain": round(gain, 5), "noise": round(noise, 5), "kept": bool(kept),
                      "n_features": len(selected) + (1 if kept else 0)})
        if kept:
            selected, best, misses = selected + [feature], trial.fold_aucs, 0
        else:
            misses += 1
    return selected, curve


def nested_forward(frame: pd.DataFrame, y: np.ndarray, folds: np.ndarray, selected: list[str], ranked: list[str],
                   categorical: list[str], search_params: dict[str, Any], params: dict[str, Any],
                   max_features: int, patience: int, seed: int) -> CVResult:
    """The forward-selection candidate scored honestly on small data: in each fold the search runs again on the
    other folds only (inner folds of the same kind), and the model it picks is scored on the fold."""
    from catboost import CatBoostClassifier

    start = time.monotonic()
    oof = np.full(len(frame), np.nan)
    aucs = []
    k_folds = int(folds.max()) + 1
    for k in range(k_folds):
        test = folds == k
        inner = frame[~test].reset_index(drop=True)
        inner_y = y[~test]
        inner_folds = stratified_folds(pd.Series(np.flatnonzero(~test)), inner_y, k_folds, seed + 100 + k)
        picked, _ = forward_selection(inner, inner_y, inner_folds, ranked, categorical, search_params, max_features,
                                      patience)
        picked = picked or ranked[:1]
        model = CatBoostClassifier(**params, verbose=0, allow_writing_files=False)
        model.fit(inner[picked], inner_y, cat_features=[c for c in picked if c in set(categorical)] or None)
        oof[test] = model.predict_proba(frame.loc[test, picked])[:, 1]
        aucs.append(float(roc_auc_score(y[test], oof[test])))
    return CVResult(FORWARD, list(selected), aucs, oof, time.monotonic() - start,
                    note="nested: the search was rerun inside each fold")


def choose(results: list[CVResult]) -> tuple[CVResult, dict[str, Any]]:
    """The one-standard-error choice, then the guard against the all-raw candidate; returns it and why."""
    by_name = {r.name: r for r in results}
    best = max(results, key=lambda r: r.mean)
    within = [r for r in results if r.mean >= best.mean - paired_se(best.fold_aucs, r.fold_aucs)]
    chosen = min(within, key=lambda r: (len(r.features), -r.mean))
    rule = (f"{chosen.name}: the simplest of {[r.name for r in within]}, within one standard error of the best "
            f"({best.name}, mean AUC {best.mean:.4f})") if chosen is not best else \
        f"{best.name}: best mean CV AUC ({best.mean:.4f}) and no simpler candidate within one standard error"
    decision = {"rule": rule, "best": best.name, "within_one_se": [r.name for r in within]}
    raw = by_name.get(ALL_RAW)
    if raw is not None and chosen is not raw:
        se = paired_se(chosen.fold_aucs, raw.fold_aucs)
        decision["guard"] = {"against": ALL_RAW, "chosen_mean": round(chosen.mean, 5), "all_raw_mean": round(raw.mean, 5),
                             "se": round(se, 5), "passed": chosen.mean >= raw.mean - se}
        if not decision["guard"]["passed"]:
            decision["guard"]["reason"] = (
                f"{chosen.name} (mean AUC {chosen.mean:.4f}) is more than one standard error ({se:.4f}) below plain "
                f"CatBoost on all raw columns ({raw.mean:.4f}): all_raw serves instead")
            chosen = raw
    decision["chosen"] = chosen.name
    return chosen, decision
