"""Population stability index: the reference bins learnt at training, and the shares of a new sample in them.

One treatment everywhere, in numpy (training reference, notebooks) and in Spark (the daily batch):

* numbers: one bin for missing values (null or NaN), then ``len(edges) + 1`` value bins cut at the inner
  quantile edges of the finite training values; ``-inf`` and ``+inf`` are values and fall in the lowest and the
  highest bin.
* categories: the ``top`` most frequent training levels, then the other levels seen in training, then levels
  never seen (their own bin, empty in training). A missing category is the level ``MISSING_LEVEL``, as the
  model sees it.

PSI = sum((a - e) * ln(a / e)) with shares floored at 1e-4; < 0.1 stable, 0.1-0.25 moderate shift, > 0.25 drift.
"""

from __future__ import annotations

from typing import Any

import numpy as np

TOP_LEVELS = 20
MAX_SEEN_LEVELS = 2000
MISSING_LEVEL = "__missing__"  # the same level the model's imputation gives a missing category
STABLE, SHIFT = 0.1, 0.25


def quantile_edges(values: np.ndarray, bins: int = 10) -> list[float]:
    """Inner bin edges (deciles by default) of the finite values, de-duplicated: the PSI reference bins."""
    v = np.asarray(values, float)
    v = v[np.isfinite(v)]
    if len(v) == 0:
        return []
    edges = np.unique(np.quantile(v, np.linspace(0, 1, bins + 1)[1:-1]))
    return [float(e) for e in edges]


def bin_shares(values: np.ndarray, edges: list[float]) -> list[float]:
    """Shares of rows per bin: one bin for missing values (null/NaN), then len(edges)+1 value bins."""
    v = np.asarray(values, float)
    missing = np.isnan(v)
    counts = [int(missing.sum())]
    idx = np.searchsorted(np.asarray(edges, float), v[~missing], side="right")
    counts += np.bincount(idx, minlength=len(edges) + 1).tolist()
    total = max(len(v), 1)
    return [c / total for c in counts]


def _levels(values: np.ndarray) -> np.ndarray:
    v = np.asarray(values, dtype=object)
    missing = np.array([x is None or (isinstance(x, float) and np.isnan(x)) for x in v], dtype=bool)
    return np.where(missing, MISSING_LEVEL, v.astype(str))


def category_reference(values: np.ndarray, top: int = TOP_LEVELS) -> dict[str, Any]:
    """PSI bins of a categorical feature: its ``top`` most frequent training levels, the other seen levels, and
    levels never seen in training. ``seen`` lists every training level when there are at most MAX_SEEN_LEVELS
    of them (None: too many to keep; unseen ones then count as other)."""
    levels, counts = np.unique(_levels(values), return_counts=True)
    order = np.argsort(-counts, kind="stable")
    ref = {"kind": "categorical", "levels": [str(v) for v in levels[order][:top]],
           "seen": [str(v) for v in levels] if len(levels) <= MAX_SEEN_LEVELS else None}
    ref["shares"] = category_shares(values, ref)
    return ref


def category_shares(values: np.ndarray, ref: dict[str, Any]) -> list[float]:
    """Shares per bin of ``category_reference``: each top level, then other seen levels, then unseen levels."""
    v = _levels(values)
    total = max(len(v), 1)
    shares = [float(np.sum(v == level)) / total for level in ref["levels"]]
    rest = ~np.isin(v, ref["levels"])
    unseen = rest & ~np.isin(v, ref["seen"]) if ref.get("seen") is not None else np.zeros(len(v), bool)
    return shares + [float(np.sum(rest & ~unseen)) / total, float(np.sum(unseen)) / total]


def spark_bins(col: Any, ref: dict[str, Any]) -> list[Any]:
    """The bins of ``ref`` as Spark boolean columns over ``col``, in the order of its ``shares``."""
    from pyspark.sql import functions as F

    if ref.get("kind") == "categorical":
        value = F.coalesce(col.cast("string"), F.lit(MISSING_LEVEL))
        other = ~value.isin(ref["levels"])
        unseen = other & ~value.isin(ref["seen"]) if ref.get("seen") is not None else F.lit(False)
        return [value == F.lit(level) for level in ref["levels"]] + [other & ~unseen, unseen]
    missing = col.isNull() | F.isnan(col)
    bounds = [-np.inf, *ref["edges"], np.inf]
    conds = [missing]
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        cond = ~missing
        if np.isfinite(lo):
            cond = cond & (col >= F.lit(lo))
        if np.isfinite(hi):
            cond = cond & (col < F.lit(hi))
        conds.append(cond)
    return conds


def spark_shares(df: Any, refs: dict[str, dict[str, Any]]) -> dict[str, list[float]]:
    """Shares of ``df``'s rows in each column's reference bins, all columns in one pass."""
    from pyspark.sql import functions as F

    aggs, layout = [F.count("*").alias("_n")], []
    for i, (name, ref) in enumerate(refs.items()):
        conds = spark_bins(F.col(f"`{name}`"), ref)
        aggs += [F.sum(c.cast("long")).alias(f"_{i}_{k}") for k, c in enumerate(conds)]
        layout.append((name, len(conds)))
    row = df.agg(*aggs).first()
    n = max(int(row["_n"]), 1)
    return {name: [int(row[f"_{i}_{k}"] or 0) / n for k in range(size)] for i, (name, size) in enumerate(layout)}


def psi(expected: list[float], actual: list[float], floor: float = 1e-4) -> float:
    """Population stability index between two share vectors (same bins)."""
    e = np.clip(np.asarray(expected, float), floor, None)
    a = np.clip(np.asarray(actual, float), floor, None)
    return float(np.sum((a - e) * np.log(a / e)))


def psi_label(value: float) -> str:
    return "stable" if value < STABLE else ("moderate shift" if value < SHIFT else "drift")
