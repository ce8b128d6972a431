"""Population stability index: the reference bins learnt at training, and the shares of a new sample in them.

One treatment everywhere, in numpy: the training reference, the notebooks, and the daily batch (each Spark
partition counts its rows with the same functions):

* numbers: one bin for missing values (null or NaN), then ``len(edges) + 1`` value bins cut at the inner
  quantile edges of the finite training values; ``-inf`` and ``+inf`` are values and fall in the lowest and the
  highest bin.
* categories: the ``top`` most frequent training levels, then the other levels seen in training, then levels
  never seen (their own bin, empty in training). A missing category is the level ``MISSING_LEVEL``, as the
  model sees it.

PSI = sum((a - e) * ln(a / e)) with shares floored at 1e-4; < 0.1 stable, 0.1-0.25 moderate shift, > 0.25 drift.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # executors import this module (spark_shares' counting runs there): no imports for types only
    from loanpipe.core.schema import DataSchema
    from loanpipe.ml.features import FeatureSpec

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


def bin_counts(values: np.ndarray, edges: list[float]) -> list[int]:
    """Rows per bin: one bin for missing values (null/NaN), then len(edges)+1 value bins."""
    v = np.asarray(values, float)
    missing = np.isnan(v)
    idx = np.searchsorted(np.asarray(edges, float), v[~missing], side="right")
    return [int(missing.sum()), *np.bincount(idx, minlength=len(edges) + 1).tolist()]


def bin_shares(values: np.ndarray, edges: list[float]) -> list[float]:
    """Shares of rows per bin of :func:`bin_counts`."""
    total = max(len(values), 1)
    return [c / total for c in bin_counts(values, edges)]


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


def category_counts(values: np.ndarray, ref: dict[str, Any]) -> list[int]:
    """Rows per bin of ``category_reference``: each top level, then other seen levels, then unseen levels."""
    v = _levels(values)
    counts = [int(np.sum(v == level)) for level in ref["levels"]]
    rest = ~np.isin(v, ref["levels"])
    unseen = rest & ~np.isin(v, ref["seen"]) if ref.get("seen") is not None else np.zeros(len(v), bool)
    return counts + [int(np.sum(rest & ~unseen)), int(np.sum(unseen))]


def category_shares(values: np.ndarray, ref: dict[str, Any]) -> list[float]:
    """Shares of rows per bin of :func:`category_counts`."""
    total = max(len(values), 1)
    return [c / total for c in category_counts(values, ref)]


def n_bins(ref: dict[str, Any]) -> int:
    """How many bins ``ref`` has: missing + len(edges)+1 for numbers; top levels + other + unseen for categories."""
    return len(ref["levels"]) + 2 if ref.get("kind") == "categorical" else len(ref["edges"]) + 2


def counts(values: np.ndarray, ref: dict[str, Any]) -> list[int]:
    """Rows of ``values`` per bin of ``ref`` (numeric or categorical), in the order of its ``shares``."""
    if ref.get("kind") == "categorical":
        return category_counts(np.asarray(values, dtype=object), ref)
    return bin_counts(np.asarray(values, dtype=float), ref["edges"])


def spark_shares(df: Any, refs: dict[str, dict[str, Any]]) -> dict[str, list[float]]:
    """Shares of ``df``'s rows in each column's reference bins, all columns in one pass.

    Each partition counts its rows per bin with the numpy functions above (the ones the training reference was
    made with), in one Arrow pass; only the counts (columns x bins) reach the driver. Building one Spark
    expression per bin instead cost ~5 s of driver calls and ~6 s of code generation for 31 columns
    (bench/results/cycle.json, before and after)."""
    import pandas as pd
    from pyspark.sql import functions as F

    names = list(refs)

    def count_partition(batches: Any) -> Any:
        totals = {name: np.zeros(n_bins(refs[name]), dtype=np.int64) for name in names}
        rows = 0
        for pdf in batches:
            rows += len(pdf)
            for name in names:
                totals[name] += np.asarray(counts(pdf[name].to_numpy(), refs[name]), dtype=np.int64)
        out = [("", 0, rows)] + [(name, k, int(c)) for name in names for k, c in enumerate(totals[name])]
        yield pd.DataFrame(out, columns=["name", "bin", "rows"])

    parts = df.select(*[F.col(f"`{name}`") for name in names]).mapInPandas(
        count_partition, "name string, bin int, rows long")
    summed = {(r["name"], r["bin"]): int(r["rows"]) for r in
              parts.groupBy("name", "bin").agg(F.sum("rows").alias("rows")).collect()}
    n = max(summed.get(("", 0), 0), 1)
    return {name: [summed.get((name, k), 0) / n for k in range(n_bins(refs[name]))] for name in names}


def psi(expected: list[float], actual: list[float], floor: float = 1e-4) -> float:
    """Population stability index between two share vectors (same bins)."""
    e = np.clip(np.asarray(expected, float), floor, None)
    a = np.clip(np.asarray(actual, float), floor, None)
    return float(np.sum((a - e) * np.log(a / e)))


LIGHTS = ("green", "amber", "red")
LABELS = dict(zip(LIGHTS, ("stable", "moderate shift", "drift")))


def psi_light(value: float) -> str:
    """The traffic light of a PSI: green under 0.1, amber to 0.25, red beyond."""
    return LIGHTS[0] if value < STABLE else (LIGHTS[1] if value < SHIFT else LIGHTS[2])


def psi_label(value: float) -> str:
    """The PSI's light in words."""
    return LABELS[psi_light(value)]


def drift(scored: Any, batch: Any, spec: FeatureSpec, schema: DataSchema) -> dict[str, Any]:
    """PSI of the score and of each model feature of ``spec`` against its training reference, in one pass over
    the batch joined to its scores: each entry with its light, the worst feature, and the count of each light."""
    ref = spec.reference
    inputs = batch.select(schema.id_column, *spec.spark_columns()).join(
        scored.select(schema.id_column, "p_default"), on=schema.id_column)
    refs = {name: r for name, r in ref.get("features", {}).items() if r}
    if ref.get("score"):
        refs["p_default"] = ref["score"]
    shares = spark_shares(inputs, refs)
    out: dict[str, Any] = {"features": {}}
    for name, r in refs.items():
        value = round(psi(r["shares"], shares[name]), 5)
        entry = {"psi": value, "status": psi_label(value), "light": psi_light(value)}
        if name == "p_default":
            out["score"] = entry
        else:
            out["features"][name] = entry
    worst = max(out["features"].items(), key=lambda kv: kv[1]["psi"], default=(None, {"psi": 0.0}))
    out["max_feature_psi"] = {"feature": worst[0], "psi": worst[1]["psi"]}
    out["lights"] = {light: sum(1 for e in out["features"].values() if e["light"] == light) for light in LIGHTS}
    return out
