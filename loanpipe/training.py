"""Training: bootstrap a champion from ``train/`` (discovery + selection + fit) and retrain challengers.

Discovery (imputation fit, pair search, importance ranking, forward selection) runs with CatBoost's Python
library on a driver-side sample of the training data: it fits many small models and is exploratory. The model
that serves is then fitted by the configured engine: catboost-spark on the Spark DataFrame when it is on the
classpath, else CatBoost's Python library on the transformed (narrow) training frame.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import numpy as np
import pandas as pd

from loanpipe import engine as engines
from loanpipe import features as fx
from loanpipe import metrics
from loanpipe.config import Config
from loanpipe.model import ModelBundle, code_version, new_version
from loanpipe.schema import DataSchema


def base_params(cfg: Config, iterations: int | None = None) -> dict[str, Any]:
    m = cfg.model
    return engines.catboost_params(iterations or m.iterations, m.depth, m.learning_rate, m.seed, m.thread_count)


def hash_split(ids: pd.Series, seed: int, fraction: float) -> np.ndarray:
    """Deterministic row split by id: True for about ``fraction`` of rows."""
    h = pd.util.hash_pandas_object(ids.astype(str) + f":{seed}", index=False).to_numpy()
    return (h % 10_000) < fraction * 10_000


def fingerprint(df: Any, schema: DataSchema) -> dict[str, Any]:
    """A cheap fingerprint of a Spark DataFrame's rows: count, defaults and an order-free hash of the ids."""
    from pyspark.sql import functions as F

    row = df.agg(
        F.count("*").alias("rows"),
        F.sum(F.col(schema.label_column)).alias("defaults"),
        F.sum(F.xxhash64(F.col(schema.id_column)) % 1_000_000_007).alias("id_hash"),
    ).first()
    return {"rows": int(row["rows"]), "defaults": int(row["defaults"] or 0), "id_hash": int(row["id_hash"] or 0)}


def collect_sample(df: Any, columns: list[str], max_rows: int, seed: int) -> pd.DataFrame:
    """A seeded sample of at most ``max_rows`` rows of ``columns`` on the driver (Arrow)."""
    total = df.count()
    if total > max_rows:
        df = df.sample(withReplacement=False, fraction=min(1.0, 1.05 * max_rows / total), seed=seed).limit(max_rows)
    return df.select(*columns).toPandas()


def discover(cfg: Config, raw: pd.DataFrame, schema: DataSchema) -> tuple[fx.FeatureSpec, dict[str, Any]]:
    """Imputation, pair search, importance ranking and forward selection on a raw training sample."""
    timings: dict[str, float] = {}
    t = time.monotonic()
    y = raw[schema.label_column].to_numpy(dtype=int)
    valid_mask = hash_split(raw[schema.id_column], cfg.model.seed, 0.25)
    fit_part = raw[~valid_mask]
    all_features = list(schema.features)
    fills, kinds = fx.fit_imputation(fit_part, all_features, list(schema.categorical))
    imputed = fx.impute_frame(raw, fills, list(schema.categorical))
    timings["imputation"] = time.monotonic() - t

    t = time.monotonic()
    numeric = [c for c in all_features if c not in set(schema.categorical)]
    pair_rows = ~valid_mask & hash_split(raw[schema.id_column], cfg.model.seed + 1, min(1.0, 30_000 / max(len(raw), 1)))
    pairs = fx.find_pairs(imputed[pair_rows], numeric, y[pair_rows], max_pairs=cfg.model.engineered_pairs)
    timings["pair_search"] = time.monotonic() - t

    t = time.monotonic()
    quick = base_params(cfg, iterations=min(100, cfg.model.iterations))
    rank_rows = ~valid_mask & hash_split(raw[schema.id_column], cfg.model.seed + 2, min(1.0, 40_000 / max(len(raw), 1)))
    raw_rank = fx.importance_ranking(imputed[rank_rows], y[rank_rows], all_features, list(schema.categorical), quick)
    top_raw = [f for f, _ in raw_rank[: cfg.model.top_k_features]]
    candidates_frame = fx.add_pairs(imputed, pairs)
    candidates = [p["name"] for p in pairs] + [f for f in top_raw if f not in {p["name"] for p in pairs}]
    ranked = fx.importance_ranking(candidates_frame[~valid_mask], y[~valid_mask], candidates,
                                   list(schema.categorical), quick)
    timings["importance"] = time.monotonic() - t

    t = time.monotonic()
    selected, curve = fx.forward_selection(
        candidates_frame[~valid_mask], y[~valid_mask], candidates_frame[valid_mask], y[valid_mask],
        [f for f, _ in ranked], list(schema.categorical), quick, cfg.model.max_forward_features,
    )
    timings["forward_selection"] = time.monotonic() - t
    chosen_pairs = [p for p in pairs if p["name"] in selected]
    raw_needed = sorted({f for f in selected if f in fills} | {p[k] for p in chosen_pairs for k in ("a", "b")},
                        key=all_features.index)
    spec = fx.FeatureSpec(
        raw_features=raw_needed,
        pairs=chosen_pairs,
        features=selected,
        categorical=[f for f in selected if f in set(schema.categorical)],
        imputation={c: fills[c] for c in raw_needed},
        column_kinds={c: kinds[c] for c in raw_needed},
    )
    report = {
        "sample_rows": len(raw),
        "importance_top": [{"feature": f, "importance": round(v, 3)} for f, v in raw_rank[:30]],
        "pairs_found": pairs,
        "candidate_ranking": [{"feature": f, "importance": round(v, 3)} for f, v in ranked],
        "forward_selection": curve,
        "column_kinds": {k: sum(1 for v in kinds.values() if v == k) for k in sorted(set(kinds.values()))},
        "seconds": {k: round(v, 2) for k, v in timings.items()},
    }
    return spec, report


def fit(cfg: Config, spark: Any, train_df: Any, spec: fx.FeatureSpec, schema: DataSchema, engine: str) -> tuple[bytes, pd.DataFrame]:
    """Fit the serving model on the Spark DataFrame ``train_df`` with ``engine``.

    Returns the native model and a driver-side sample of the transformed training frame (for the PSI reference).
    """
    from pyspark.sql import functions as F

    label = schema.label_column
    transformed = train_df.select(F.col(label), *spec.spark_columns())
    params = base_params(cfg)
    if engine == "catboost_spark":
        native = engines.train_catboost_spark(transformed, spec.features, label, params, spec.categorical)
        sample = collect_sample(transformed, [label, *spec.features], 50_000, cfg.model.seed)
    else:
        sample = collect_sample(transformed, [label, *spec.features], cfg.model.train_sample_rows, cfg.model.seed)
        native = engines.train_python(sample, spec.features, sample[label].to_numpy(dtype=int), params, spec.categorical)
    return native, sample


def reference(spec: fx.FeatureSpec, sample: pd.DataFrame, scores: np.ndarray) -> dict[str, Any]:
    """PSI reference: decile edges and training shares for each numeric model feature and for the score."""
    ref: dict[str, Any] = {"features": {}, "score": {}}
    for f in spec.features:
        if f in spec.categorical:
            continue
        edges = metrics.quantile_edges(sample[f].to_numpy(dtype=float))
        ref["features"][f] = {"edges": edges, "shares": metrics.bin_shares(sample[f].to_numpy(dtype=float), edges)}
    edges = metrics.quantile_edges(scores)
    ref["score"] = {"edges": edges, "shares": metrics.bin_shares(scores, edges)}
    return ref


def build_bundle(cfg: Config, spark: Any, train_df: Any, spec: fx.FeatureSpec, schema: DataSchema, engine: str,
                 run_date: dt.date, role: str, extra: dict[str, Any]) -> ModelBundle:
    """Fit, attach the PSI reference and metadata; the bundle is not saved yet."""
    start = time.monotonic()
    native, sample = fit(cfg, spark, train_df, spec, schema, engine)
    model = engines.load_native(native)
    scores = model.predict_proba(sample[spec.features])[:, 1]
    spec.reference = reference(spec, sample, scores)
    metadata = {
        "role": role,
        "engine": engine,
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "run_date": run_date.isoformat(),
        "code_version": code_version(),
        "params": base_params(cfg),
        "features": spec.features,
        "pairs": spec.pairs,
        "training_data": fingerprint(train_df, schema),
        "train_in_sample_auc": float(metrics.classification_metrics(sample[schema.label_column].to_numpy(), scores)["roc_auc"] or 0.0),
        "fit_seconds": round(time.monotonic() - start, 2),
        **extra,
    }
    return ModelBundle(new_version(run_date, role), spec, native, metadata)


def bootstrap(cfg: Config, spark: Any, train_df: Any, schema: DataSchema, engine: str, run_date: dt.date) -> ModelBundle:
    """First champion: discovery on a sample of ``train/``, then the serving fit on all of it."""
    start = time.monotonic()
    raw = collect_sample(train_df, [schema.id_column, *schema.features, schema.label_column],
                         cfg.model.train_sample_rows, cfg.model.seed)
    spec, report = discover(cfg, raw, schema)
    del raw
    bundle = build_bundle(cfg, spark, train_df, spec, schema, engine, run_date, "champion",
                          {"discovery": report, "trained_on": "train/"})
    bundle.metadata["bootstrap_seconds"] = round(time.monotonic() - start, 2)
    return bundle


def challenger(cfg: Config, spark: Any, train_df: Any, champion_spec: fx.FeatureSpec, schema: DataSchema, engine: str,
               run_date: dt.date) -> ModelBundle:
    """A challenger with the champion's features, imputation refitted on the enriched training data."""
    sample = collect_sample(train_df, champion_spec.raw_features, cfg.model.train_sample_rows, cfg.model.seed)
    fills, kinds = fx.fit_imputation(sample, champion_spec.raw_features, champion_spec.categorical)
    spec = fx.FeatureSpec(
        raw_features=list(champion_spec.raw_features), pairs=list(champion_spec.pairs),
        features=list(champion_spec.features), categorical=list(champion_spec.categorical),
        imputation=fills, column_kinds=kinds,
    )
    return build_bundle(cfg, spark, train_df, spec, schema, engine, run_date, "challenger",
                        {"trained_on": "train_sup/ minus the batch's validation rows"})
