"""The daily job: score the run date's batch, evaluate, rebuild train_sup, retrain a challenger, promote.

The stages are functions from DataFrames and models to DataFrames or plain results (``score``, ``evaluate``,
``drift``, ``build_train_sup``, ``challenger_training``, ``decide``), each unit-tested on tiny frames; ``run`` reads the
lake, sequences them, times them and writes what they return. Steps (each timed in the run summary):

1. **check** the batch ``test_sample/run_date=D``: its columns against the lake's schema (missing or extra
   columns, types, no rows: the run stops before anything is written), then each row against the data contract
   (``loanpipe.core.contract``: empty or conflicting ids, infinite or implausible numbers). Bad rows go to
   ``test_sample_quarantine/run_date=D`` with their reason and the rest is scored; more than
   ``quality.max_bad_share`` of them stops the run before anything of the date is written.
2. **champion**: the model the promotion ledger names for D (``loanpipe.ml.model.champion_for``: the one serving
   after the latest record before D); on the first run one is bootstrapped from ``train/``
   (candidate feature sets compared by K-fold CV, a guard against plain CatBoost, a calibrated PD).
3. **score** with the champion (label never read): each row's PD, rating grade (``risk.master_scale``) and reason
   codes (``risk.reason_codes``, SHAP in the same pass) -> ``test_sample_inference/run_date=D`` published atomically.
4. **evaluate** on the batch's labels: ROC/PR AUC, Gini, KS, Brier, oracle AUC (synthetic data), calibration by
   decile with the Jeffreys test, ROC, histogram and reliability PNGs, PSI drift of the score and each model
   feature (categories included) against the training reference with traffic lights; the validation figures
   (``validation``: AUC with its DeLong interval, lift by decile, each grade against its PDs) and the trend over
   the last 30 run dates (``history``).
5. **train_sup**: the labelled batch is appended once as ``train_sup/run_date=D`` (a rerun replaces that
   partition, nothing else); train_sup *as of D* is train + the batches of dates <= D, deduplicated by id (the
   latest date wins), columns by name (``train_sup_as_of``). The daily write is one batch, whatever the history.
6. **challenger** trained on train_sup minus the batch's validation rows, with the champion's features, or with
   features chosen again by the CV comparison every ``model.rediscover_every_days`` or when a feature's PSI
   exceeds ``model.rediscover_psi``. Champion and challenger compared on those rows (their raw scores: ranking)
   with the paired DeLong test; promoted only when better at the configured significance. A promoted challenger
   then gets its own PD calibrator (the cross-fit the bootstrap uses) before the ledger names it: only a model
   that serves needs one, and the cross-fit is the costliest part of training a challenger.
   A promotion also brings the grade migration of the batch (``grade_migration``) and the new champion's model
   card into the report.
7. **artifacts**: the plots, ``metrics.json``, ``summary.json`` (every number, path, version and duration) and
   ``report.html`` (the report as the email shows it) published together as ``artifacts/runs/D/``; an AUC under
   the floor marks the run as an alert.
"""

from __future__ import annotations

import datetime as dt
import sys
import time
from contextlib import contextmanager
from typing import Any

import numpy as np

from loanpipe.core import catalog, contract, storage
from loanpipe.core.config import Config
from loanpipe.core.schema import DataSchema, SchemaError
from loanpipe.core.storage import Lake
from loanpipe.core.transaction import lease, run_date_transaction
from loanpipe.ml import calibration, metrics, psi, report, risk, training
from loanpipe.ml.engine import choose_engine
from loanpipe.ml.model import (ModelBundle, champion_for, find_model, last_discovery, ledger, load_model,
                               record_decision, save_model, version_for)
from loanpipe.ml import model_card
from loanpipe.ml.scoring import FileBatch, predict_frame, reads_files, score_batch

REPORT_PAGE = "report.html"


class BatchError(ValueError):
    """The run date's batch is unusable; nothing was written and the champion stays."""


class Timer:
    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def step(self, name: str):  # noqa: ANN201
        start = time.monotonic()
        try:
            yield
        finally:
            self.seconds[name] = round(time.monotonic() - start, 2)


# -- stages ----------------------------------------------------------------------------------------------

def check_batch(df: Any, schema: DataSchema, source: str, on_extra_columns: str = "fail") -> tuple[Any, list[str]]:
    """Validate a batch's columns against the lake schema: (the batch, the columns dropped).
    Raises BatchError naming the problem. A missing column always fails; a column the lake does not have fails,
    or is dropped with a warning (``quality.on_extra_columns``). Row-level problems are the data contract's
    (``loanpipe.core.contract``): those rows are set aside, not the batch."""
    expected = schema.lake_columns()
    present = [c for c in df.columns if c != storage.PARTITION_KEY]
    missing = [c for c in expected if c not in present]
    extra = [c for c in present if c not in expected]
    if missing:
        features = [c for c in missing if c in set(schema.features)]
        raise BatchError(f"{source}: missing column(s) {missing[:10]} ({len(missing)} in all"
                         f"{f', model features among them: {features[:10]}' if features else ''}); the batch must "
                         "have the columns of test/ — regenerate it with data_gen")
    if extra and on_extra_columns == "fail":
        raise BatchError(f"{source}: unexpected column(s) {extra[:10]}; the batch must have exactly the columns of "
                         "test/ — regenerate it with data_gen, re-ingest with the new columns, or set "
                         "quality.on_extra_columns: drop")
    if extra:
        print(f"WARNING {source}: dropped column(s) the lake does not have: {extra[:10]} ({len(extra)} in all; "
              "quality.on_extra_columns = drop)", file=sys.stderr, flush=True)
        df = df.drop(*extra)
    try:
        schema.check_spark_frame(df, source)
    except SchemaError as exc:
        raise BatchError(str(exc)) from None
    return df, extra


def score(batch: Any, champion: ModelBundle, schema: DataSchema, cfg: Config, scored_at: dt.datetime,
          files: FileBatch | None = None) -> Any:
    """The scores the business reads (the label is never read). ``files``: the batch's rows as files the scoring
    tasks read themselves (``model.scoring_reader: files``; used for a numeric model)."""
    return score_batch(batch, champion, schema, cfg.model.cutoff, scored_at, cfg.model.scoring_udf,
                       cfg.risk.master_scale, cfg.risk.reason_codes, cfg.risk.reasons_for, files)


def labelled_scores(scored: Any, batch: Any, schema: DataSchema) -> tuple[np.ndarray, np.ndarray, Any]:
    """(labels, PDs, the joined frame) of the scored rows, each application once."""
    labelled = scored.join(batch.select(schema.id_column, schema.label_column).dropDuplicates([schema.id_column]),
                           on=schema.id_column)
    pdf = labelled.select(schema.label_column, "p_default").toPandas()
    return pdf[schema.label_column].to_numpy(dtype=int), pdf["p_default"].to_numpy(dtype=float), labelled


def evaluate(y: np.ndarray, p: np.ndarray, cutoff: float) -> dict[str, Any]:
    """Ranking and calibration metrics of the served PDs against the batch's labels."""
    evaluation = metrics.classification_metrics(y, p, cutoff)
    evaluation["calibration"] = calibration.summary(y, p)
    return evaluation


def validation(y: np.ndarray, p: np.ndarray, master_scale: list[float]) -> dict[str, Any]:
    """The validation figures beyond the daily metrics: AUC with its DeLong 95% interval, lift by score decile
    (riskiest first, with the share of defaults captured), and each rating grade's observed default rate against
    its PDs (Jeffreys test)."""
    return {"auc_interval": risk.auc_interval(y, p), "lift": risk.lift_table(y, p),
            "grades": risk.grade_table(y, p, master_scale)}


def history(lake: Lake, run_date: dt.date, current: dict[str, Any], days: int = 30) -> list[dict[str, Any]]:
    """AUC, observed default rate and score PSI of the last ``days`` run dates up to ``run_date``, oldest first:
    the published runs before it (so a rerun of a date draws the same trend whatever ran after it) and
    ``current``, this run's own point."""
    points = []
    for day in [d for d in catalog.score_dates(lake) if d < run_date.isoformat()][-(days - 1):]:
        uri = catalog.run_artifact(lake, day)
        if not lake.is_published(uri):
            continue
        past = lake.read_json(catalog.run_artifact(lake, day, catalog.RUN_SUMMARY))
        points.append(trend_point(day, past["evaluation"], past["drift"]))
    return [*points, current]


def trend_point(day: str, evaluation: dict[str, Any], drift_report: dict[str, Any]) -> dict[str, Any]:
    return {"run_date": day, "roc_auc": evaluation.get("roc_auc"),
            "default_rate": evaluation.get("observed_default_rate"),
            "score_psi": (drift_report.get("score") or {}).get("psi")}


def grade_migration(batch: Any, scored: Any, promoted: ModelBundle, schema: DataSchema,
                    master_scale: list[float]) -> dict[str, Any]:
    """The date's applications by their grade under the champion that scored them and under the promoted
    challenger (its calibrated PD): the migration matrix a promotion brings."""
    ident = schema.id_column
    new = predict_frame(batch.dropDuplicates([ident]), promoted, schema).withColumnRenamed("p_default", "p_new")
    pdf = scored.dropDuplicates([ident]).select(ident, "p_default").join(new, ident).toPandas()
    return risk.migration_matrix(risk.grade_of(pdf["p_default"].to_numpy(), master_scale),
                                 risk.grade_of(pdf["p_new"].to_numpy(), master_scale), len(master_scale))


def evaluation_plots(evaluation: dict[str, Any], y: np.ndarray, p: np.ndarray, champion: str, cutoff: float,
                     run_date: dt.date) -> dict[str, tuple[str, bytes]]:
    """{artifact key: (file name, PNG)} for the run folder."""
    plots = {}
    if len(y):
        plots["reliability"] = ("reliability.png", report.reliability_png(
            evaluation["calibration"]["table"], f"Calibration, batch {run_date}"))
    if evaluation["roc_auc"] is not None:
        plots["roc_curve"] = ("roc.png", report.roc_png(y, {f"champion {champion}": p}, f"ROC, batch {run_date}"))
    plots["score_histogram"] = ("score_hist.png", report.score_hist_png(y, p, cutoff, f"Scores, batch {run_date}"))
    return plots


def drift(scored: Any, batch: Any, bundle: ModelBundle, schema: DataSchema) -> dict[str, Any]:
    """PSI of the score and of each model feature against the model's training reference, in one pass."""
    ref = bundle.spec.reference
    inputs = batch.select(schema.id_column, *bundle.spec.spark_columns()).join(
        scored.select(schema.id_column, "p_default"), on=schema.id_column)
    refs = {name: r for name, r in ref.get("features", {}).items() if r}
    if ref.get("score"):
        refs["p_default"] = ref["score"]
    shares = psi.spark_shares(inputs, refs)
    out: dict[str, Any] = {"features": {}}
    for name, r in refs.items():
        value = round(psi.psi(r["shares"], shares[name]), 5)
        entry = {"psi": value, "status": psi.psi_label(value), "light": psi.psi_light(value)}
        if name == "p_default":
            out["score"] = entry
        else:
            out["features"][name] = entry
    worst = max(out["features"].items(), key=lambda kv: kv[1]["psi"], default=(None, {"psi": 0.0}))
    out["max_feature_psi"] = {"feature": worst[0], "psi": worst[1]["psi"]}
    out["lights"] = {light: sum(1 for e in out["features"].values() if e["light"] == light)
                     for light in psi.LIGHTS}
    return out


def oracle_auc(truth: Any, labelled: Any, schema: DataSchema) -> float | None:
    """AUC of the true default probabilities (``truth``: id, p_default; synthetic lakes only) on the batch rows."""
    pdf = labelled.select(schema.id_column, schema.label_column).join(
        truth.withColumnRenamed("p_default", "_p_true"), on=schema.id_column).select(schema.label_column, "_p_true").toPandas()
    y = pdf[schema.label_column].to_numpy()
    if len(pdf) == 0 or y.min() == y.max():
        return None
    return float(metrics.classification_metrics(y, pdf["_p_true"].to_numpy())["roc_auc"])


def build_train_sup(train: Any, batches: Any | None, schema: DataSchema) -> Any:
    """train + the labelled batches, columns by name, one row per id: the latest date wins. ``batches``: one
    frame of every batch's rows with their date in ``run_date`` (as the partitioned read gives it), or None."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    cols = schema.lake_columns()
    union = train.select(*cols).withColumn("_order", F.lit(""))
    if batches is not None:
        union = union.unionByName(batches.select(*cols, F.col(storage.PARTITION_KEY).cast("string").alias("_order")))
    latest = F.row_number().over(Window.partitionBy(schema.id_column).orderBy(F.col("_order").desc()))
    return union.withColumn("_rn", latest).filter("_rn = 1").drop("_rn", "_order")


def train_sup_as_of(lake: Lake, spark: Any, schema: DataSchema, run_date: dt.date) -> tuple[Any, list[str]]:
    """train_sup as of ``run_date`` (a lazy frame) and the batch dates it holds; the batches are one read of their
    partitions (``catalog.read_dates``), so the cost does not grow with history."""
    dates = [d for d in catalog.train_sup_dates(lake) if d <= run_date.isoformat()]
    batches = catalog.read_dates(spark, catalog.train_sup(lake), [catalog.train_sup_batch(lake, d) for d in dates])
    return build_train_sup(spark.read.parquet(catalog.train(lake)), batches, schema), dates


def holdout_ids(batch: Any, schema: DataSchema, fraction: float, seed: int) -> Any:
    """The batch's validation ids: a seeded hash of the id, so a rerun picks the same rows."""
    from pyspark.sql import functions as F

    key = F.xxhash64(F.col(schema.id_column).cast("string"), F.lit(seed)) % 10_000
    return batch.select(schema.id_column).distinct().filter(F.abs(key) < int(fraction * 10_000))


def challenger_training(train_sup: Any, holdout: Any, schema: DataSchema) -> Any:
    """What the challenger learns from: train_sup less the batch's validation rows."""
    return train_sup.join(holdout, on=schema.id_column, how="left_anti")


def decide(y: np.ndarray, p_champion: np.ndarray, p_challenger: np.ndarray, significance: float) -> dict[str, Any]:
    """Promote only when the challenger's AUC is higher with the paired DeLong test's one-sided p < significance."""
    out: dict[str, Any] = {"validation_rows": int(len(y)), "significance": significance, "test": "DeLong (paired)"}
    if len(y) == 0 or y.min() == y.max():
        return {**out, "promoted": False, "reason": "not compared: the validation rows hold a single class"}
    test = metrics.delong_test(y, p_champion, p_challenger)
    better = test["difference"] > 0 and test["p_b_better"] < significance
    return {**out,
            "champion_auc": test["auc_a"], "challenger_auc": test["auc_b"], "auc_difference": test["difference"],
            "z": test["z"], "p_value": test["p_b_better"], "p_value_two_sided": test["p_two_sided"],
            "promoted": bool(better),
            "reason": (f"challenger AUC {test['auc_b']:.4f} > champion {test['auc_a']:.4f}, one-sided p = "
                       f"{test['p_b_better']:.3g} < {significance}") if better else
                      (f"kept the champion: challenger AUC {test['auc_b']:.4f} vs {test['auc_a']:.4f}, one-sided p = "
                       f"{test['p_b_better']:.3g} (needs < {significance})")}


def compare(batch: Any, holdout: Any, champion: ModelBundle, chall: ModelBundle, schema: DataSchema,
            significance: float) -> tuple[dict[str, Any], bytes | None]:
    """Both models on the same validation rows of the batch: the decision, and the two ROC curves (PNG).

    They are compared on their raw scores: promotion is about ranking (AUC), which a PD calibrator leaves
    unchanged (Platt) or nearly so (isotonic, at most ``calibration.MAX_AUC_LOSS``), and a challenger gets its
    calibrator only once it is promoted."""
    ident = schema.id_column
    rows = batch.join(holdout, on=ident, how="left_semi").dropDuplicates([ident])
    a = predict_frame(rows, champion, schema, calibrated=False).withColumnRenamed("p_default", "p_a")
    b = predict_frame(rows, chall, schema, calibrated=False).withColumnRenamed("p_default", "p_b")
    pdf = rows.select(ident, schema.label_column).join(a, ident).join(b, ident).orderBy(ident).toPandas()
    y = pdf[schema.label_column].to_numpy(dtype=int)
    decision = decide(y, pdf["p_a"].to_numpy(), pdf["p_b"].to_numpy(), significance)
    png = None
    if "champion_auc" in decision:
        png = report.roc_png(y, {"champion": pdf["p_a"].to_numpy(), "challenger": pdf["p_b"].to_numpy()},
                             "Champion vs challenger (validation rows)")
    return decision, png


def alerts(evaluation: dict[str, Any], auc_floor: float) -> list[str]:
    auc = evaluation["roc_auc"]
    if auc is None:
        return ["AUC undefined: the batch has a single class"]
    return [f"AUC {auc:.4f} is under the floor {auc_floor}"] if auc < auc_floor else []


def candidate_table(bundle: ModelBundle) -> dict[str, Any]:
    """The CV candidate table of a model's discovery, as the report shows it (feature lists shortened)."""
    disc = bundle.metadata.get("discovery") or {}
    rows = [{k: v for k, v in r.items() if k != "features"} | {"features": r["features"][:12]}
            for r in disc.get("candidates", [])]
    return {"rows": rows, "decision": disc.get("decision", {}),
            "calibration": {k: disc.get("calibration", {}).get(k) for k in ("method", "reason", "before", "after")}}


# -- the run: lake in, stages in order, lake out ----------------------------------------------------------

def load_batch(cfg: Config, lake: Lake, spark: Any, schema: DataSchema,
               run_date: dt.date) -> tuple[Any, str, list[str]]:
    """The published batch of ``run_date``, its columns checked: (frame, uri, columns dropped). Its rows are
    counted by the data contract's pass (``apply_contract``), not by a Spark job of their own."""
    uri = catalog.batch(lake, run_date)
    if not lake.is_published(uri):
        raise BatchError(f"no published batch for {run_date} at {uri}; run data_gen for that date first")
    df, dropped = check_batch(spark.read.parquet(uri), schema, uri, cfg.quality.on_extra_columns)
    return df, uri, dropped


def apply_contract(cfg: Config, lake: Lake, spark: Any, schema: DataSchema, batch: Any, source: str,
                   run_date: dt.date) -> tuple[contract.Checked, dict[str, Any]]:
    """Check the batch's rows against the lake's data contract and set the bad ones aside in
    ``test_sample_quarantine/run_date=D`` (published, empty when none); more than ``quality.max_bad_share``
    of them fails the run before anything of the date is written."""
    small = cfg.quality.driver_check_rows
    local = catalog.read_table(lake, source, batch.columns, max_rows=small) if small else None
    checked = contract.check(batch, contract.load_or_learn(lake, spark, schema), schema, cfg.quality, local)
    report = checked.report
    if report["rows_in"] == 0:
        raise BatchError(f"{source}: the batch has no rows; rerun data_gen for this date")
    if report["quarantined"] > cfg.quality.max_bad_share * report["rows_in"]:
        raise BatchError(contract.failure_text(source, report, cfg.quality.max_bad_share))
    # at most max_bad_share of the batch: written from the driver, one Parquet file (none: an empty one, no job)
    bad = checked.bad.toArrow() if report["quarantined"] else catalog.empty_table(checked.bad.schema)
    target = catalog.quarantine(lake, run_date)
    catalog.write_table(lake, bad, target, expect_rows=report["quarantined"])
    return checked, {**report, "path": target}


def champion_of(cfg: Config, lake: Lake, spark: Any, schema: DataSchema, engine: str,
                run_date: dt.date) -> tuple[ModelBundle, bool]:
    """The champion that scores ``run_date`` (the ledger's rule), and whether this date bootstrapped it: on the
    first run ever one is trained from ``train/`` (or found, when an earlier try of this date saved it) and
    recorded at once, so a crash later leaves a ledger that names it."""
    entries = ledger(lake)
    version = champion_for(lake, run_date, entries)
    if version is not None:
        return load_model(lake, version), bool(entries.get(run_date.isoformat(), {}).get("bootstrap"))
    champion = find_model(lake, version_for(run_date, "bootstrap"))
    if champion is None:
        champion = training.bootstrap(cfg, spark, spark.read.parquet(catalog.train(lake)), schema, engine, run_date)
        save_model(lake, champion)
    record_decision(lake, run_date, {"bootstrap": True, "champion": champion.version, "serving": champion.version,
                                     "promoted": False, "reason": "bootstrap from train/"})
    return champion, True


def challenger_of(cfg: Config, lake: Lake, spark: Any, schema: DataSchema, engine: str, run_date: dt.date,
                  train_c: Any, champion: ModelBundle, rediscover: str | None) -> tuple[ModelBundle, str | None]:
    """The date's challenger: the one an earlier try of this date saved, or a new one (saved at once)."""
    chall = find_model(lake, version_for(run_date, "challenger"))
    if chall is not None:
        return chall, chall.metadata.get("rediscovered")
    chall = training.challenger(cfg, spark, train_c, champion, schema, engine, run_date, rediscover)
    save_model(lake, chall)
    return chall, rediscover


def run(cfg: Config, lake: Lake, spark: Any, run_date: dt.date) -> dict[str, Any]:
    """The whole daily run for ``run_date`` as the date's transaction (its lock held, what a killed run of the
    date left repaired first); returns (and publishes) the run summary."""
    targets = [catalog.scores(lake, run_date), catalog.quarantine(lake, run_date), catalog.train_sup_batch(lake, run_date),
               catalog.run_artifact(lake, run_date),
               *(catalog.model(lake, version_for(run_date, role)) for role in ("bootstrap", "challenger"))]
    with run_date_transaction(lake, run_date, "app", targets, lease(cfg)) as tx:
        return daily(cfg, tx.lake, spark, run_date, tx.repaired)


def daily(cfg: Config, lake: Lake, spark: Any, run_date: dt.date, repaired: list[str]) -> dict[str, Any]:
    """The run's stages in order: lake in, lake out (``run`` holds the date's transaction around it)."""
    timer = Timer()
    started = dt.datetime.now(dt.UTC)
    schema = catalog.read_schema(lake)
    files: dict[str, Any] = {}  # the run folder, published whole at the end
    with timer.step("check"):
        batch, batch_uri, dropped = load_batch(cfg, lake, spark, schema, run_date)
        checked, quality = apply_contract(cfg, lake, spark, schema, batch, batch_uri, run_date)
        rows_in = quality["rows_in"]
        quality["dropped_columns"] = dropped
        batch, batch_rows = checked.good, quality["scored"]
    engine = choose_engine(spark, cfg.model.engine)

    with timer.step("champion"):
        champion, bootstrapped = champion_of(cfg, lake, spark, schema, engine, run_date)

    with timer.step("score"):
        scored_at = dt.datetime.combine(run_date, dt.time(), dt.UTC)  # the run's logical time, the same on reruns
        target = catalog.scores(lake, run_date)
        readable = (FileBatch(catalog.parquet_files(lake, batch_uri), lake.file_access(), checked.bad_ids)
                    if cfg.model.scoring_reader == "files" else None)
        scored_rows = catalog.write_dataset(lake, score(batch, champion, schema, cfg, scored_at, readable), target,
                                            expect_rows=batch_rows)["rows"]
        scored = spark.read.parquet(target)

    with timer.step("evaluate"):
        y, p, labelled = labelled_scores(scored, batch, schema)
        evaluation = evaluate(y, p, cfg.model.cutoff)
        evaluation["validation"] = validation(y, p, cfg.risk.master_scale)
        truth = catalog.truth(lake)
        evaluation["oracle_auc"] = oracle_auc(spark.read.parquet(truth), labelled, schema) if lake.has_data(truth) else None
        artifacts = {}
        for key, (name, png) in evaluation_plots(evaluation, y, p, champion.version, cfg.model.cutoff, run_date).items():
            files[name], artifacts[key] = png, catalog.run_artifact(lake, run_date, name)
        drift_report = drift(scored, batch, champion, schema)
        files["metrics.json"] = {"evaluation": evaluation, "drift": drift_report}
        artifacts["metrics"] = catalog.run_artifact(lake, run_date, "metrics.json")
        trend = history(lake, run_date, trend_point(run_date.isoformat(), evaluation, drift_report))
        files["trend.png"] = report.trend_png(trend, f"Last {len(trend)} run date(s) up to {run_date}")
        artifacts["trend"] = catalog.run_artifact(lake, run_date, "trend.png")

    with timer.step("train_sup"):
        added = catalog.write_dataset(lake, batch.select(*schema.lake_columns()), catalog.train_sup_batch(lake, run_date),
                                      expect_rows=batch_rows)
        sup_df, dates = train_sup_as_of(lake, spark, schema, run_date)
        # The de-duplicating window over train + batches runs once: its columns the challenger reads are kept
        # (memory, then disk) for its sample, its fit and its fingerprint.
        rediscover = training.rediscover_reason(cfg, champion, run_date, drift_report,
                                                last_discovery(lake, run_date, cfg.model.rediscover_every_days))
        sup_df = sup_df.select(*training.challenger_columns(champion, schema, rediscover)).persist()
        sup = {"path": catalog.train_sup(lake), "added": added["path"], "batches": dates, "rows": sup_df.count()}

    with timer.step("challenger"):
        holdout = holdout_ids(batch, schema, cfg.model.validation_fraction, cfg.model.seed)
        train_c = challenger_training(sup_df, holdout, schema)
        chall, rediscover = challenger_of(cfg, lake, spark, schema, engine, run_date, train_c, champion, rediscover)

    with timer.step("compare"):
        decision, roc_png = compare(batch, holdout, champion, chall, schema, cfg.model.significance)
        serving = chall.version if decision["promoted"] else champion.version
    migration = None
    if decision["promoted"]:  # before the ledger names it: a serving model has its calibrator and its card
        with timer.step("calibrate"):
            if training.calibration_pending(chall):
                training.calibrate_promoted(cfg, train_c, chall, schema)
            chall.metadata["promotion"] = {"champion": champion.version, **decision}
            save_model(lake, chall)
        with timer.step("migration"):
            migration = grade_migration(batch, scored, chall, schema, cfg.risk.master_scale)
    sup_df.unpersist()
    if decision["promoted"] or bootstrapped:  # the date decided something: its record (replacing a rerun's)
        record_decision(lake, run_date, {
            "bootstrap": bootstrapped, "champion": champion.version, "challenger": chall.version,
            "serving": serving, "promoted": decision["promoted"], "test": decision["test"],
            "p_value": decision.get("p_value"), "reason": decision["reason"]})
    else:
        record_decision(lake, run_date, None)
    if roc_png:
        files["champion_vs_challenger.png"] = roc_png
        artifacts["champion_vs_challenger"] = catalog.run_artifact(lake, run_date, "champion_vs_challenger.png")

    alert_reasons = alerts(evaluation, cfg.model.auc_floor)
    summary = {
        "job": "app",
        "run_date": run_date.isoformat(),
        "status": "ALERT" if alert_reasons else "OK",
        "alerts": alert_reasons,
        "engine": engine,
        "batch": {"path": batch_uri, "rows": rows_in},
        "quality": quality,
        "champion": {"version": champion.version, "bootstrapped": bootstrapped,
                     "features": champion.spec.features, "pairs": [p["name"] for p in champion.spec.pairs],
                     "calibration": (champion.spec.calibration or {}).get("method", "none"),
                     **({"candidates": candidate_table(champion)} if bootstrapped else {})},
        "scores": {"path": target, "rows": scored_rows, "cutoff": cfg.model.cutoff,
                   "read_by": "scoring tasks (pyarrow)" if reads_files(champion, cfg.model.scoring_udf, readable)
                   else "Spark"},
        "evaluation": evaluation,
        "drift": drift_report,
        "train_sup": sup,
        "challenger": {"version": chall.version, "features": chall.spec.features, "rediscovered": rediscover,
                       "calibration": "pending" if training.calibration_pending(chall) else
                       (chall.spec.calibration or {}).get("method", "none"),
                       **({"candidates": candidate_table(chall)} if rediscover else {}), **decision},
        "serving_after_run": serving,
        "risk": {"master_scale": cfg.risk.master_scale, "reason_codes": cfg.risk.reason_codes,
                 "reasons_for": cfg.risk.reasons_for,
                 "migration": migration, "trend": trend,
                 **({"model_card": model_card.render(chall)} if decision["promoted"] else {})},
        "artifacts": artifacts,
        "seconds": {**timer.seconds, "total": round((dt.datetime.now(dt.UTC) - started).total_seconds(), 2)},
        "started_at": started.isoformat(timespec="seconds"),
        "repaired": repaired,
    }
    files[catalog.RUN_SUMMARY] = summary
    files[REPORT_PAGE] = report_page(summary, files)
    artifacts["report"] = catalog.run_artifact(lake, run_date, REPORT_PAGE)
    catalog.publish_folder(lake, catalog.run_artifact(lake, run_date), files)
    return summary


def report_page(summary: dict[str, Any], files: dict[str, Any]) -> bytes:
    """The run's report as the email shows it, as a page of the run folder (its images beside it)."""
    import html

    from loanpipe.reports.emails import app_report

    images = {key: name for key, name in (("roc", "roc.png"), ("trend", "trend.png")) if name in files}
    subject, body = app_report(summary, images=images)
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(subject)}</title></head>"
            f"<body>{body}</body></html>").encode()


def main_run(run_date: str, config_path: str | None = None, spark: Any = None) -> dict[str, Any]:
    """The job as the entry script runs it."""
    from loanpipe.core.config import load_config
    from loanpipe.core.session import get_spark
    from loanpipe.core.storage import open_lake

    cfg = load_config(config_path)
    date = storage.parse_run_date(run_date)
    lake = open_lake(cfg.storage)
    spark = spark or get_spark(cfg, app_name=f"loanpipe-app-{date}")
    return run(cfg, lake, spark, date)
