"""Training: bootstrap a champion from ``train/`` (discovery + selection + fit) and retrain challengers.

Discovery (imputation fit, pair search, importance ranking, forward selection) runs with CatBoost's Python
library on a driver-side sample of the training data: it fits many small models and is exploratory. The model
that serves is then fitted by the configured engine: catboost-spark on the Spark DataFrame when it is on the
classpath, else CatBoost's Python library on the transformed (narrow) training frame.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from loanpipe.ml import calibration, metrics, psi, risk, selection
from loanpipe.ml import engine as engines
from loanpipe.ml import features as fx
from loanpipe.core.config import Config
from loanpipe.core.version import code_version
from loanpipe.ml.bundle import ModelBundle
from loanpipe.core.dates import version_for
from loanpipe.core.schema import DataSchema


def base_params(cfg: Config, iterations: int | None = None, width: int | None = None) -> dict[str, Any]:
    """The configured CatBoost parameters; for a fit on ``width`` columns, with the random subspace that
    ``model.split_features`` sets for a wide one."""
    m = cfg.model
    return engines.catboost_params(iterations or m.iterations, m.depth, m.learning_rate, m.seed, m.thread_count,
                                   engines.subspace_share(m.split_features, width))


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


class DriverSample:
    """A training sample known on the driver by its ids, whose rows are fetched at the width each use needs.

    Discovery looks at every column of only some of its sample's rows (the CV rows and the search rows) and at a
    few columns of all of them (the calibration cross-fit). Held whole at full width, a 200,000-row sample of
    771 columns is 1.2 GB on the driver, over ``spark.driver.maxResultSize``; fetched this way it is the
    sample's ids, then each use's rows and columns. Ids must be unique in the frame (ingest checks ``train/``;
    ``train_sup/`` is de-duplicated by id)."""

    def __init__(self, ids: pd.Series, fetch: Any) -> None:
        self.ids = ids.reset_index(drop=True)
        self._fetch = fetch

    @classmethod
    def of_frame(cls, frame: pd.DataFrame, id_column: str) -> "DriverSample":
        """A sample already on the driver (notebooks, tests): every row of ``frame``."""
        frame = frame.reset_index(drop=True)
        return cls(frame[id_column], lambda rows, columns: frame.loc[rows, columns])

    @classmethod
    def of_spark(cls, df: Any, id_column: str, max_rows: int, seed: int) -> "DriverSample":
        """The rows :func:`collect_sample` draws from the Spark DataFrame ``df``, only their ids collected."""
        ids = collect_sample(df, [id_column], max_rows, seed)[id_column]

        def fetch(rows: np.ndarray, columns: list[str]) -> pd.DataFrame:
            return fetch_by_id(df, id_column, ids[rows], columns)

        return cls(ids, fetch)

    def __len__(self) -> int:
        return len(self.ids)

    def rows(self, columns: list[str], rows: np.ndarray | None = None) -> pd.DataFrame:
        """``columns`` of the sample's rows where ``rows`` (a boolean mask over the sample) is True, in sample
        order; every row without it."""
        mask = np.ones(len(self.ids), dtype=bool) if rows is None else np.asarray(rows, dtype=bool)
        return self._fetch(mask, list(columns)).reset_index(drop=True)


def fetch_by_id(df: Any, id_column: str, ids: pd.Series, columns: list[str]) -> pd.DataFrame:
    """``columns`` of the rows of the Spark DataFrame ``df`` whose id is in ``ids``, in the order of ``ids``: a
    semi-join with the ids broadcast, so only those rows reach the driver."""
    from pyspark.sql import functions as F

    wanted = ids.reset_index(drop=True)
    keys = df.sparkSession.createDataFrame(pd.DataFrame({id_column: wanted}), df.select(id_column).schema)
    got = df.join(F.broadcast(keys), id_column, "left_semi").select(*dict.fromkeys([id_column, *columns])).toPandas()
    if got[id_column].duplicated().any():
        dup = got.loc[got[id_column].duplicated(), id_column].iloc[0]
        raise ValueError(f"training data: id {dup!r} is on more than one row; a sample's rows are fetched by id, "
                         f"so ids must be unique (de-duplicate the table by {id_column!r})")
    if len(got) != len(wanted):
        raise ValueError(f"training data: {len(wanted) - len(got)} of the sample's {len(wanted)} ids were not found "
                         "when their rows were fetched; the table changed while it was read")
    return got.set_index(id_column, drop=False).loc[wanted.to_numpy(), columns]


def _spec(kind: str, features: list[str], pairs: list[dict[str, Any]], schema: DataSchema,
          fills: dict[str, Any], kinds: dict[str, str]) -> fx.FeatureSpec:
    """The FeatureSpec serving ``features``: raw candidates leave numeric gaps to CatBoost, the others impute."""
    all_features = list(schema.features)
    chosen_pairs = [p for p in pairs if p["name"] in features]
    raw_needed = sorted({f for f in features if f in fills} | {p[k] for p in chosen_pairs for k in ("a", "b")},
                        key=all_features.index)
    cats = set(schema.categorical)
    impute = kind not in (selection.ALL_RAW, selection.ALL_RAW_PAIRS)
    return fx.FeatureSpec(
        raw_features=raw_needed, pairs=chosen_pairs, features=list(features),
        categorical=[f for f in features if f in cats],
        imputation={c: (fills[c] if impute or c in cats else None) for c in raw_needed},
        column_kinds={c: kinds[c] for c in raw_needed},
    )


def discovery_rows(cfg: Config, ids: pd.Series) -> tuple[np.ndarray, np.ndarray, bool]:
    """Which rows of a training sample (its ``ids``) the candidates are scored on (``in_cv``) and which the
    searches look at (``search``), and whether those are disjoint (``large``: the sample has enough rows)."""
    m = cfg.model
    in_cv = hash_split(ids, m.seed + 3, min(1.0, m.cv_sample_rows / max(len(ids), 1)))
    large = int((~in_cv).sum()) >= m.cv_sample_rows // 2
    search = ~in_cv & hash_split(ids, m.seed + 4, min(1.0, m.cv_sample_rows / max(int((~in_cv).sum()), 1))) \
        if large else in_cv
    return in_cv, search, large


@dataclass
class Searched:
    """A discovery sample after the searches: its rows at full width, which of them are CV rows and which search
    rows, the imputation fitted, the pairs found and the importance ranking (with the seconds each took)."""

    raw: pd.DataFrame
    y_all: np.ndarray
    cv_rows: np.ndarray
    in_cv: np.ndarray
    search: np.ndarray
    large: bool
    fills: dict[str, Any]
    kinds: dict[str, str]
    pairs: list[dict[str, Any]]
    with_pairs: pd.DataFrame
    ranked: list[str]
    timings: dict[str, float]

    def release(self) -> None:
        """Drop the full-width rows (the calibration that follows reads its own few columns)."""
        self.raw = self.with_pairs = pd.DataFrame()


def search_sample(cfg: Config, sample: DriverSample, schema: DataSchema) -> Searched:
    """Imputation, pair search and importance ranking, on the sample's search rows (disjoint from the CV rows
    when the sample is large enough)."""
    m = cfg.model
    timings: dict[str, float] = {}
    t = time.monotonic()
    cats = list(schema.categorical)
    all_features = list(schema.features)
    cv_rows, search_rows, large = discovery_rows(cfg, sample.ids)
    used = cv_rows | search_rows
    raw = sample.rows([schema.id_column, *all_features, schema.label_column], used)
    in_cv, search = cv_rows[used], search_rows[used]
    y_all = raw[schema.label_column].to_numpy(dtype=int)
    fills, kinds = fx.fit_imputation(raw[search], all_features, cats)
    imputed = fx.impute_frame(raw, fills, cats)
    timings["imputation"] = time.monotonic() - t

    t = time.monotonic()
    numeric = [c for c in all_features if c not in set(cats)]
    pairs = fx.find_pairs(imputed[search], numeric, y_all[search], max_pairs=m.engineered_pairs)
    timings["pair_search"] = time.monotonic() - t

    t = time.monotonic()
    quick = base_params(cfg, iterations=min(m.search_iterations, m.iterations))
    with_pairs = fx.add_pairs(imputed, pairs)
    ranked = [f for f, _ in fx.importance_ranking(with_pairs[search], y_all[search],
                                                    all_features + [p["name"] for p in pairs], cats, quick)]
    timings["importance"] = time.monotonic() - t
    return Searched(raw=raw, y_all=y_all, cv_rows=cv_rows, in_cv=in_cv, search=search, large=large, fills=fills,
                    kinds=kinds, pairs=pairs, with_pairs=with_pairs, ranked=ranked, timings=timings)


def cross_validate_candidates(cfg: Config, found: Searched, schema: DataSchema
                              ) -> tuple[list[selection.CVResult], list[dict[str, Any]], np.ndarray, np.ndarray]:
    """Every candidate feature set by K-fold CV on the CV rows: (results, the forward search's curve, the CV
    rows' labels, their folds)."""
    m = cfg.model
    cats, all_features = list(schema.categorical), list(schema.features)
    quick = base_params(cfg, iterations=min(m.search_iterations, m.iterations))

    def serving(features: list[str]) -> dict[str, Any]:  # a candidate's fits: the serving parameters at its width
        return base_params(cfg, width=len(features))

    in_cv, search, ranked = found.in_cv, found.search, found.ranked
    pair_names = [p["name"] for p in found.pairs]
    ids, y_all = found.raw[schema.id_column], found.y_all
    frame = found.with_pairs[in_cv].reset_index(drop=True)
    raw_fills = {c: (found.fills[c] if c in set(cats) else None) for c in all_features}
    raw_frame = fx.add_pairs(fx.impute_frame(found.raw[in_cv], raw_fills, cats), found.pairs).reset_index(drop=True)
    y = y_all[in_cv]
    folds = selection.stratified_folds(ids[in_cv].reset_index(drop=True), y, m.cv_folds, m.seed)
    results = [selection.cross_validate(raw_frame, y, folds, all_features, cats, serving(all_features),
                                        selection.ALL_RAW)]
    if found.pairs:
        results.append(selection.cross_validate(raw_frame, y, folds, all_features + pair_names, cats,
                                                serving(all_features + pair_names),
                                                selection.ALL_RAW_PAIRS))
    top_k = ranked[: m.top_k_features]
    if len(top_k) < len(all_features):
        results.append(selection.cross_validate(frame, y, folds, top_k, cats, serving(top_k), selection.TOP_K))

    t = time.monotonic()
    if found.large:
        s_frame, s_y = found.with_pairs[search].reset_index(drop=True), y_all[search]
        s_folds = selection.stratified_folds(ids[search].reset_index(drop=True), s_y, m.cv_folds, m.seed + 5)
        chosen_fwd, curve = selection.forward_selection(s_frame, s_y, s_folds, ranked, cats, quick,
                                                        m.max_forward_features, m.forward_patience)
        forward = selection.cross_validate(frame, y, folds, chosen_fwd, cats, serving(chosen_fwd),
                                           selection.FORWARD)
    else:
        chosen_fwd, curve = selection.forward_selection(frame, y, folds, ranked, cats, quick,
                                                        m.max_forward_features, m.forward_patience)
        forward = selection.nested_forward(frame, y, folds, chosen_fwd, ranked, cats, quick,
                                           serving(ranked[: m.max_forward_features]),
                                           m.max_forward_features, m.forward_patience, m.seed)
    forward.seconds = time.monotonic() - t  # the search included
    if chosen_fwd:
        results.append(forward)
    return results, curve, y, folds


def discover(cfg: Config, sample: pd.DataFrame | DriverSample, schema: DataSchema) -> tuple[fx.FeatureSpec, dict[str, Any]]:
    """Candidate feature sets compared by K-fold CV on a training sample; the chosen one's spec, calibrated.

    ``sample`` is a :class:`DriverSample` or a frame of every column (all of it the sample). Candidates
    (loanpipe.ml.selection): all raw columns; all raw columns plus the discovered pair differences; the
    importance top-k; forward selection (with the pairs). Pair search, importance ranking and the forward search
    look at rows the candidates are not scored on when there are enough of them; on small data the forward
    search is nested inside each fold instead, so no candidate is scored on rows that chose it. Only the rows
    of the CV and of the searches are held at full width.
    """
    m = cfg.model
    if isinstance(sample, pd.DataFrame):
        sample = DriverSample.of_frame(sample, schema.id_column)
    found = search_sample(cfg, sample, schema)
    results, curve, y, folds = cross_validate_candidates(cfg, found, schema)
    timings = {**found.timings, "candidates": round(sum(r.seconds for r in results), 2)}
    chosen, decision = selection.choose(results)
    spec = _spec(chosen.name, chosen.features, found.pairs, schema, found.fills, found.kinds)
    t = time.monotonic()
    found.release()
    if found.cv_rows.all():  # the CV models saw (K-1)/K of the rows the serving model will: their scores fit its scale
        spec.calibration, calibration_report = calibration.choose(chosen.oof, y, folds)
    else:  # fitted on a sample, the CV models are less sure than the serving model: cross-fit at full size
        calibration_report = calibrate_spec(
            cfg, spec, sample.rows([schema.id_column, schema.label_column, *spec.raw_features]), schema)
    timings["calibration"] = time.monotonic() - t
    kinds = found.kinds
    return spec, {
        "sample_rows": len(sample),
        "cv": {"folds": m.cv_folds, "rows": int(found.in_cv.sum()), "defaults": int(y.sum()),
               "search_rows": int(found.search.sum()), "search_disjoint_from_cv": found.large,
               "params": {k: v for k, v in base_params(cfg).items() if k != "thread_count"},
               "split_features": m.split_features},
        "candidates": [r.row() for r in results],
        "decision": decision,
        "calibration": calibration_report,
        "pairs_found": found.pairs,
        "importance_ranking": found.ranked[:30],
        "forward_selection": curve,
        "column_kinds": {k: sum(1 for v in kinds.values() if v == k) for k in sorted(set(kinds.values()))},
        "seconds": {k: round(v, 2) for k, v in timings.items()},
    }


def fit(cfg: Config, spark: Any, train_df: Any, spec: fx.FeatureSpec, schema: DataSchema, engine: str) -> tuple[bytes, pd.DataFrame]:
    """Fit the serving model on the Spark DataFrame ``train_df`` with ``engine``.

    Returns the native model and a driver-side sample of the transformed training frame (for the PSI reference).
    """
    from pyspark.sql import functions as F

    label = schema.label_column
    transformed = train_df.select(F.col(label), *spec.spark_columns())
    params = base_params(cfg, width=len(spec.features))
    if engine == "catboost_spark" and not spec.categorical:
        native = engines.train_catboost_spark(transformed, spec.features, label, params, spec.categorical,
                                              timeouts=engines.spark_timeouts(cfg.spark))
        sample = collect_sample(transformed, [label, *spec.features], 50_000, cfg.model.seed)
    else:
        sample = collect_sample(transformed, [label, *spec.features], cfg.model.train_sample_rows, cfg.model.seed)
        native = engines.train_python(sample, spec.features, sample[label].to_numpy(dtype=int), params, spec.categorical)
    return native, sample


def reference(spec: fx.FeatureSpec, sample: pd.DataFrame, scores: np.ndarray, master_scale: list[float]
              ) -> dict[str, Any]:
    """PSI reference: for each model feature its bins and training shares (deciles for numbers, the frequent
    levels for categories), and the same for the served score (:func:`score_reference`)."""
    ref: dict[str, Any] = {"features": {}, "score": {}}
    for f in spec.features:
        if f in spec.categorical:
            ref["features"][f] = psi.category_reference(sample[f].to_numpy(dtype=object))
            continue
        edges = psi.quantile_edges(sample[f].to_numpy(dtype=float))
        ref["features"][f] = {"edges": edges, "shares": psi.bin_shares(sample[f].to_numpy(dtype=float), edges)}
    ref["score"] = score_reference(scores, master_scale)
    return ref


def score_reference(scores: np.ndarray, master_scale: list[float]) -> dict[str, Any]:
    """PSI reference of the served score: its deciles on the training sample; and the sample's applications by
    grade of the master scale, the initial grade distribution the concentration test compares with."""
    edges = psi.quantile_edges(scores)
    grades = np.bincount(risk.grade_of(scores, master_scale), minlength=len(master_scale) + 1)[1:]
    return {"edges": edges, "shares": psi.bin_shares(scores, edges), "grade_counts": grades.tolist()}


def build_bundle(cfg: Config, spark: Any, train_df: Any, spec: fx.FeatureSpec, schema: DataSchema, engine: str,
                 run_date: dt.date, role: str, extra: dict[str, Any]) -> ModelBundle:
    """Fit, attach the PSI reference and metadata; the bundle is not saved yet."""
    start = time.monotonic()
    native, sample = fit(cfg, spark, train_df, spec, schema, engine)
    model = engines.load_native(native)
    scores = calibration.apply(spec.calibration, model.predict_proba(sample[spec.features])[:, 1])
    spec.reference = reference(spec, sample, scores, cfg.risk.master_scale)
    metadata = {
        "role": role,
        "engine": engine,
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "run_date": run_date.isoformat(),
        "code_version": code_version(),
        "engine_note": ("catboost-spark takes numeric features only here; categorical model trained with CatBoost's "
                        "Python library") if engine == "catboost_spark" and spec.categorical else None,
        "params": base_params(cfg, width=len(spec.features)),
        "features": spec.features,
        "pairs": spec.pairs,
        "training_data": fingerprint(train_df, schema),
        "train_in_sample_auc": float(metrics.classification_metrics(sample[schema.label_column].to_numpy(), scores)["roc_auc"] or 0.0),
        "fit_seconds": round(time.monotonic() - start, 2),
        **extra,
    }
    return ModelBundle(version_for(run_date, role), spec, native, metadata)


def bootstrap(cfg: Config, spark: Any, train_df: Any, schema: DataSchema, engine: str, run_date: dt.date) -> ModelBundle:
    """First champion: candidate comparison on a sample of ``train/``, then the serving fit on all of it."""
    start = time.monotonic()
    sample = DriverSample.of_spark(train_df, schema.id_column, cfg.model.train_sample_rows, cfg.model.seed)
    spec, report = discover(cfg, sample, schema)
    bundle = build_bundle(cfg, spark, train_df, spec, schema, engine, run_date, "bootstrap",
                          {"discovery": report, "discovered_on": run_date.isoformat(), "trained_on": "train/"})
    bundle.metadata["bootstrap_seconds"] = round(time.monotonic() - start, 2)
    return bundle


def calibrate_spec(cfg: Config, spec: fx.FeatureSpec, sample: pd.DataFrame, schema: DataSchema) -> dict[str, Any]:
    """The PD calibrator of ``spec``, set on the spec; returns the calibration report with the cross-fit's AUCs.

    Out-of-fold scores come from ``model.calibration_folds`` fits of the serving parameters on the whole
    training sample, so the models behind them saw nearly as many rows as the serving model: a calibrator
    fitted to models trained on a smaller sample would correct confidence the serving model does not have."""
    m = cfg.model
    part = sample.reset_index(drop=True)
    y = part[schema.label_column].to_numpy(dtype=int)
    folds = selection.stratified_folds(part[schema.id_column], y, m.calibration_folds, m.seed)
    result = selection.cross_validate(spec.transform_pandas(part), y, folds, spec.features, spec.categorical,
                                      base_params(cfg, width=len(spec.features)), "calibration cross-fit")
    spec.calibration, report = calibration.choose(result.oof, y, folds)
    return {**report, "cross_fit": {k: v for k, v in result.row().items() if k != "features"}}


CALIBRATION_PENDING = {"status": "pending", "reason": "fitted if the challenger is promoted: only a serving model "
                       "needs a PD calibrator"}


def calibration_pending(bundle: ModelBundle) -> bool:
    """True for a challenger whose calibrator is fitted only if it is promoted (:func:`calibrate_promoted`)."""
    return (bundle.metadata.get("calibration") or {}).get("status") == CALIBRATION_PENDING["status"]


def calibrate_promoted(cfg: Config, train_df: Any, bundle: ModelBundle, schema: DataSchema) -> None:
    """Give a promoted challenger its PD calibrator, fitted as the bootstrap's is (out-of-fold scores of
    ``model.calibration_folds`` fits on its training sample), and the PSI reference of its calibrated score.
    ``train_df`` is what it was trained on; the same seeded sample, so a rerun gives the same calibrator."""
    spec = bundle.spec
    sample = collect_sample(train_df, [schema.id_column, schema.label_column, *spec.raw_features],
                            cfg.model.train_sample_rows, cfg.model.seed)
    bundle.metadata["calibration"] = calibrate_spec(cfg, spec, sample, schema)
    raw = bundle.predictor().predict_proba(spec.transform_pandas(sample)[spec.features])[:, 1]
    spec.reference["score"] = score_reference(calibration.apply(spec.calibration, raw), cfg.risk.master_scale)


def challenger(cfg: Config, spark: Any, train_df: Any, champion: ModelBundle, schema: DataSchema, engine: str,
               run_date: dt.date, rediscover: str | None = None) -> ModelBundle:
    """A challenger trained on the enriched data. With ``rediscover`` (the reason) it re-runs the candidate
    comparison and may change the features (and fits a calibrator, as discovery does); otherwise it keeps the
    champion's features and refits their imputation, and its calibrator waits for a promotion
    (:func:`calibrate_promoted`)."""
    if rediscover:
        sample = DriverSample.of_spark(train_df, schema.id_column, cfg.model.train_sample_rows, cfg.model.seed)
        spec, report = discover(cfg, sample, schema)
        extra = {"discovery": report, "discovered_on": run_date.isoformat(), "rediscovered": rediscover}
    else:
        base = champion.spec
        sample = collect_sample(train_df, [schema.id_column, schema.label_column, *base.raw_features],
                                cfg.model.train_sample_rows, cfg.model.seed)
        fills, kinds = fx.fit_imputation(sample, base.raw_features, base.categorical)
        spec = fx.FeatureSpec(
            raw_features=list(base.raw_features), pairs=list(base.pairs), features=list(base.features),
            categorical=list(base.categorical), column_kinds=kinds,
            imputation={c: (None if base.imputation.get(c, 0) is None else fills[c]) for c in base.raw_features},
        )
        extra = {"calibration": dict(CALIBRATION_PENDING),
                 "discovered_on": champion.metadata.get("discovered_on") or champion.metadata["run_date"]}
        del sample
    return build_bundle(cfg, spark, train_df, spec, schema, engine, run_date, "challenger",
                        {**extra, "trained_on": "train_sup/ minus the batch's validation rows"})
