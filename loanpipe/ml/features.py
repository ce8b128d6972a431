"""Preprocessing the model carries with it, and the feature discovery that builds it.

* **Type-aware imputation**, fitted on training data: categorical -> a ``__missing__`` level; integer-valued
  columns with few levels (discrete) -> their mode; other integer columns and continuous ones -> their median.
* **Engineered pair differences**: near-collinear pairs (|corr| >= ``min_corr``) whose residual difference
  ``a - beta * b`` separates defaults from non-defaults are found from the data (the competition's "golden
  features"), never named by hand.
* **Importance ranking** by CatBoost; choosing among candidate feature sets by cross-validation is
  ``loanpipe.ml.selection``.

A :class:`FeatureSpec` is applied in two equivalent ways: as Spark column expressions (training and scoring on
Spark) and on pandas frames (notebooks, tests); a test checks they agree.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

MISSING_LEVEL = "__missing__"
DISCRETE_MAX_LEVELS = 50


@dataclass
class FeatureSpec:
    """Everything needed to turn raw columns into the model's input, fitted at training time."""

    raw_features: list[str]  # raw columns the model reads (selected raw + members of selected pairs)
    pairs: list[dict[str, Any]]  # [{"name", "a", "b", "beta", "auc"}] engineered differences
    features: list[str]  # model input order
    categorical: list[str]  # categorical model inputs (strings)
    imputation: dict[str, Any]  # raw column -> fill value (None: numeric missing values stay NaN for CatBoost)
    column_kinds: dict[str, str]  # raw column -> continuous | discrete | integer | categorical
    reference: dict[str, Any] = field(default_factory=dict)  # PSI bins and training shares
    calibration: dict[str, Any] = field(default_factory=dict)  # score -> PD map (loanpipe.ml.calibration), {} = none

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "FeatureSpec":
        return cls(**data)

    # -- pandas ------------------------------------------------------------------------------------------
    def transform_pandas(self, frame: pd.DataFrame) -> pd.DataFrame:
        out = pd.DataFrame(index=frame.index)
        filled = {}
        for col in self.raw_features:
            fill = self.imputation[col]
            if col in self.categorical:
                filled[col] = frame[col].astype("object").where(frame[col].notna(), fill).astype(str)
            else:
                filled[col] = frame[col].astype(float) if fill is None else frame[col].astype(float).fillna(fill)
        for col in self.features:
            pair = self._pair(col)
            if pair is None:
                out[col] = filled[col]
            else:
                out[col] = filled[pair["a"]] - pair["beta"] * filled[pair["b"]]
        return out

    # -- Spark -------------------------------------------------------------------------------------------
    def spark_columns(self) -> list[Any]:
        """Spark column expressions producing the model inputs (named as ``features``) from raw columns."""
        from pyspark.sql import functions as F

        def filled(col: str) -> Any:
            fill = self.imputation[col]
            if col in self.categorical:
                return F.coalesce(F.col(col).cast("string"), F.lit(fill))
            # NaN and null both count as missing
            c = F.col(col).cast("double")
            if fill is None:  # left to CatBoost's own missing-value handling (null arrives as NaN)
                return c
            return F.when(c.isNull() | F.isnan(c), F.lit(float(fill))).otherwise(c)

        cols = []
        for name in self.features:
            pair = self._pair(name)
            expr = filled(name) if pair is None else filled(pair["a"]) - F.lit(pair["beta"]) * filled(pair["b"])
            cols.append(expr.alias(name))
        return cols

    # -- Arrow (a scoring task reading Parquet itself, loanpipe.ml.scoring) -----------------------------
    def arrow_inputs(self, batch: Any, ident: str) -> Any:
        """The model inputs of an Arrow batch of raw columns, the id first, made as :meth:`spark_columns` makes them
        (numeric specs only): each raw column as float64, a missing value (null or NaN) replaced by its fill value
        when it has one, a pair as ``a - beta * b``. The same IEEE operations in the same order, so the same bits. A
        raw column the batch lacks is all missing, as Spark reads a column that one of a dataset's files lacks."""
        import pyarrow as pa

        if self.categorical:
            raise ValueError(f"arrow_inputs makes numeric inputs only; {self.categorical[:5]} are categorical")
        present = set(batch.schema.names)

        def filled(col: str) -> Any:
            values = (batch.column(col).to_numpy(zero_copy_only=False).astype(np.float64, copy=False)
                      if col in present else np.full(batch.num_rows, np.nan))  # a null arrives as NaN
            fill = self.imputation[col]
            return values if fill is None else np.where(np.isnan(values), float(fill), values)

        arrays = []
        for name in self.features:
            pair = self._pair(name)
            arrays.append(pa.array(filled(name) if pair is None else
                                   filled(pair["a"]) - float(pair["beta"]) * filled(pair["b"])))
        return pa.RecordBatch.from_arrays([batch.column(ident), *arrays], names=[ident, *self.features])

    def _pair(self, name: str) -> dict[str, Any] | None:
        for pair in self.pairs:
            if pair["name"] == name:
                return pair
        return None


def column_kind(values: pd.Series, categorical: bool) -> str:
    if categorical:
        return "categorical"
    v = values.dropna().to_numpy(dtype=float)
    if len(v) == 0:
        return "continuous"
    if np.all(np.mod(v, 1) == 0):
        return "discrete" if len(np.unique(v)) <= DISCRETE_MAX_LEVELS else "integer"
    return "continuous"


def fit_imputation(frame: pd.DataFrame, columns: list[str], categorical: list[str]) -> tuple[dict[str, Any], dict[str, str]]:
    """Fill values by column type, fitted on ``frame`` (training data)."""
    fills: dict[str, Any] = {}
    kinds: dict[str, str] = {}
    cats = set(categorical)
    for col in columns:
        kind = column_kind(frame[col], col in cats)
        kinds[col] = kind
        if kind == "categorical":
            fills[col] = MISSING_LEVEL
        elif kind == "discrete":
            mode = frame[col].mode(dropna=True)
            fills[col] = float(mode.iloc[0]) if len(mode) else 0.0
        else:
            median = frame[col].median(skipna=True)
            fills[col] = float(median) if pd.notna(median) else 0.0
    return fills, kinds


def impute_frame(frame: pd.DataFrame, fills: dict[str, Any], categorical: list[str]) -> pd.DataFrame:
    cats = set(categorical)
    out = {}
    for col, fill in fills.items():
        if col in cats:
            out[col] = frame[col].astype("object").where(frame[col].notna(), fill).astype(str)
        elif fill is None:
            out[col] = frame[col].astype(float)
        else:
            out[col] = frame[col].astype(float).fillna(fill)
    return pd.DataFrame(out, index=frame.index)


def univariate_auc(values: np.ndarray, y: np.ndarray) -> float:
    """Direction-free AUC of one score: max(AUC, 1 - AUC)."""
    from sklearn.metrics import roc_auc_score  # here, not at the top: executors import this module to score

    auc = roc_auc_score(y, values)
    return float(max(auc, 1 - auc))


def find_pairs(frame: pd.DataFrame, numeric: list[str], y: np.ndarray, max_pairs: int, min_corr: float = 0.95,
               min_auc: float = 0.6, max_candidates: int = 4000) -> list[dict[str, Any]]:
    """Near-collinear pairs whose residual difference predicts the label, best first.

    ``frame`` must already be imputed. For each pair with |corr| >= min_corr, the difference
    ``a - beta * b`` (beta from least squares) removes what the two share; what is left is scored by its
    univariate AUC against ``y``. A column is used in at most one selected pair.
    """
    if max_pairs <= 0 or len(numeric) < 2:
        return []
    x = frame[numeric].to_numpy(dtype=float)
    std = x.std(axis=0)
    keep = std > 0
    cols = [c for c, k in zip(numeric, keep) if k]
    x = x[:, keep]
    z = (x - x.mean(axis=0)) / x.std(axis=0)
    corr = (z.T @ z) / len(z)
    iu = np.triu_indices(len(cols), k=1)
    strength = np.abs(corr[iu])
    order = np.argsort(-strength)
    order = order[strength[order] >= min_corr][:max_candidates]
    scored = []
    for k in order:
        i, j = iu[0][k], iu[1][k]
        a, b = x[:, i], x[:, j]
        beta = float(np.dot(a - a.mean(), b - b.mean()) / max(np.dot(b - b.mean(), b - b.mean()), 1e-12))
        diff = a - beta * b
        if diff.std() == 0:
            continue
        scored.append((univariate_auc(diff, y), cols[i], cols[j], beta, float(strength[k])))
    scored.sort(reverse=True)
    used: set[str] = set()
    pairs = []
    for auc, a, b, beta, c in scored:
        if auc < min_auc or a in used or b in used:
            continue
        used.update((a, b))
        pairs.append({"name": f"{a}_minus_{b}", "a": a, "b": b, "beta": round(beta, 6), "auc": round(auc, 4),
                      "corr": round(c, 4)})
        if len(pairs) == max_pairs:
            break
    return pairs


def add_pairs(imputed: pd.DataFrame, pairs: list[dict[str, Any]]) -> pd.DataFrame:
    extra = {p["name"]: imputed[p["a"]] - p["beta"] * imputed[p["b"]] for p in pairs}
    return pd.concat([imputed, pd.DataFrame(extra, index=imputed.index)], axis=1) if extra else imputed


def importance_ranking(frame: pd.DataFrame, y: np.ndarray, features: list[str], categorical: list[str],
                       params: dict[str, Any]) -> list[tuple[str, float]]:
    """Features by CatBoost's PredictionValuesChange importance, descending."""
    from catboost import CatBoostClassifier

    model = CatBoostClassifier(**params, verbose=0, allow_writing_files=False)
    model.fit(frame[features], y, cat_features=[c for c in features if c in set(categorical)] or None)
    ranking = sorted(zip(features, model.get_feature_importance()), key=lambda t: -t[1])
    return [(f, float(v)) for f, v in ranking]
