"""The daily job: score the run date's batch, evaluate, rebuild train_sup, retrain a challenger, promote.

Steps (each timed in the run summary):

1. **check** the batch ``test_sample/run_date=D`` against the lake's schema (missing/extra columns, types, null
   ids, no rows): a bad batch stops the run before anything is written; the champion and earlier outputs stay.
2. **champion**: the model the champion pointer names; on the first run one is bootstrapped from ``train/``
   (candidate feature sets compared by K-fold CV, a guard against plain CatBoost, a calibrated PD).
3. **score** with the champion (label never read) -> ``test_sample_inference/run_date=D`` published atomically.
4. **evaluate** on the batch's labels: ROC/PR AUC, Gini, KS, Brier, oracle AUC (synthetic data), calibration by
   decile with the Jeffreys test, ROC, histogram and reliability PNGs, PSI drift of the score and each model
   feature (categories included) against the training reference.
5. **train_sup** = train + every published batch up to D, deduplicated by id (latest wins), columns by name;
   rebuilt whole each run, so a rerun adds nothing twice.
6. **challenger** trained on train_sup minus the batch's validation rows, with the champion's features, or with
   features chosen again by the CV comparison every ``model.rediscover_every_days`` or when a feature's PSI
   exceeds ``model.rediscover_psi``; its own calibrator. Champion and challenger compared on
   those rows with the paired DeLong test; promoted only when better at the configured significance.
7. **summary** JSON under ``artifacts/runs/D/`` with every number, path, version and duration; an AUC under
   the floor marks the run as an alert.
"""

from __future__ import annotations

import datetime as dt
import time
from contextlib import contextmanager
from typing import Any

import numpy as np

from loanpipe import calibration, metrics, report, storage, training
from loanpipe.config import Config
from loanpipe.engine import choose_engine
from loanpipe.ingest import TRUTH_DIR, read_lake_schema
from loanpipe.model import ModelBundle, champion_version, load_model, save_model, set_champion
from loanpipe.schema import DataSchema, SchemaError
from loanpipe.scoring import predict_frame, score_batch
from loanpipe.storage import Lake

RUNS = "runs"


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


def run_uri(lake: Lake, run_date: dt.date, name: str = "") -> str:
    return lake.uri(storage.ARTIFACTS, RUNS, run_date.isoformat(), name)


def check_batch(df: Any, schema: DataSchema, source: str) -> int:
    """Validate a batch against the lake schema; return its row count. Raises BatchError naming the problem."""
    from pyspark.sql import functions as F

    expected = schema.lake_columns()
    present = [c for c in df.columns if c != storage.PARTITION_KEY]
    missing = [c for c in expected if c not in present]
    extra = [c for c in present if c not in expected]
    if missing:
        raise BatchError(f"{source}: missing column(s) {missing[:10]} ({len(missing)} in all); the batch must have "
                         "the columns of test/ — regenerate it with data_gen")
    if extra:
        raise BatchError(f"{source}: unexpected column(s) {extra[:10]}; the batch must have exactly the columns of "
                         "test/ — regenerate it with data_gen, or re-ingest with the new columns")
    try:
        schema.check_spark_frame(df, source)
    except SchemaError as exc:
        raise BatchError(str(exc)) from None
    row = df.agg(F.count("*").alias("rows"), F.sum(F.col(schema.id_column).isNull().cast("int")).alias("null_ids")).first()
    if int(row["rows"]) == 0:
        raise BatchError(f"{source}: the batch has no rows; rerun data_gen for this date")
    if int(row["null_ids"] or 0):
        raise BatchError(f"{source}: {row['null_ids']} row(s) have an empty id column {schema.id_column!r}; "
                         "every application needs an id")
    return int(row["rows"])


def load_batch(lake: Lake, spark: Any, schema: DataSchema, run_date: dt.date) -> tuple[Any, int, str]:
    uri = lake.partition_uri(storage.TEST_SAMPLE, run_date)
    if not lake.is_published(uri):
        raise BatchError(f"no published batch for {run_date} at {uri}; run data_gen for that date first")
    df = spark.read.parquet(uri)
    return df, check_batch(df, schema, uri), uri


def rebuild_train_sup(lake: Lake, spark: Any, schema: DataSchema, run_date: dt.date) -> dict[str, Any]:
    """train + every published batch with run_date <= D, deduplicated by id (the latest label wins)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    cols = schema.lake_columns()
    train = spark.read.parquet(lake.uri(storage.TRAIN)).select(*cols).withColumn("_order", F.lit(""))
    dates = [d for d in lake.list_partitions(storage.TEST_SAMPLE)
             if d <= run_date.isoformat() and lake.is_published(lake.partition_uri(storage.TEST_SAMPLE, d))]
    union = train
    for d in dates:
        union = union.unionByName(
            spark.read.parquet(lake.partition_uri(storage.TEST_SAMPLE, d)).select(*cols).withColumn("_order", F.lit(d)))
    latest = F.row_number().over(Window.partitionBy(schema.id_column).orderBy(F.col("_order").desc()))
    dedup = union.withColumn("_rn", latest).filter("_rn = 1").drop("_rn", "_order")
    stage = lake.staging_uri("train_sup")
    try:
        dedup.write.mode("overwrite").parquet(stage)
        rows = spark.read.parquet(stage).count()
        lake.publish(stage, lake.uri(storage.TRAIN_SUP))
    finally:
        lake.remove(stage)
    return {"rows": rows, "batches": dates, "path": lake.uri(storage.TRAIN_SUP)}


def drift(scored: Any, batch: Any, bundle: ModelBundle, schema: DataSchema) -> dict[str, Any]:
    """PSI of the score and of each model feature (categories: frequent levels, other, unseen) against the model's
    training reference, in one pass over the batch."""
    from pyspark.sql import functions as F

    ref = bundle.spec.reference
    inputs = batch.select(schema.id_column, *bundle.spec.spark_columns()).join(
        scored.select(schema.id_column, "p_default"), on=schema.id_column)
    aggs, layout = [F.count("*").alias("_n")], []
    items = [(name, r) for name, r in ref.get("features", {}).items()] + [("p_default", ref.get("score", {}))]
    for name, r in items:
        if not r:
            continue
        col = F.col(f"`{name}`")
        if r.get("kind") == "categorical":
            value = col.cast("string")
            other = ~value.isin(r["levels"])
            unseen = other & ~value.isin(r["seen"]) if r.get("seen") is not None else F.lit(False)
            conds = [value == F.lit(level) for level in r["levels"]] + [other & ~unseen, unseen]
        else:
            conds = [col.isNull() | F.isnan(col)]
            bounds = [-np.inf, *r["edges"], np.inf]
            for lo, hi in zip(bounds[:-1], bounds[1:]):
                cond = ~(col.isNull() | F.isnan(col))
                if np.isfinite(lo):
                    cond = cond & (col >= F.lit(lo))
                if np.isfinite(hi):
                    cond = cond & (col < F.lit(hi))
                conds.append(cond)
        for k, cond in enumerate(conds):
            aggs.append(F.sum(cond.cast("long")).alias(f"_{len(layout)}_{k}"))
        layout.append((name, r, len(conds)))
    row = inputs.agg(*aggs).first()
    n = max(int(row["_n"]), 1)
    out: dict[str, Any] = {"features": {}}
    for i, (name, r, k) in enumerate(layout):
        shares = [int(row[f"_{i}_{j}"] or 0) / n for j in range(k)]
        value = round(metrics.psi(r["shares"], shares), 5)
        entry = {"psi": value, "status": metrics.psi_label(value)}
        if name == "p_default":
            out["score"] = entry
        else:
            out["features"][name] = entry
    worst = max(out["features"].items(), key=lambda kv: kv[1]["psi"], default=(None, {"psi": 0.0}))
    out["max_feature_psi"] = {"feature": worst[0], "psi": worst[1]["psi"]}
    return out


def oracle_auc(lake: Lake, spark: Any, schema: DataSchema, labelled: Any) -> float | None:
    """AUC of the true default probabilities on the batch rows (synthetic lakes only)."""
    uri = lake.uri(storage.ARTIFACTS, TRUTH_DIR)
    if not lake.has_data(uri):
        return None
    truth = spark.read.parquet(uri).withColumnRenamed("p_default", "_p_true")
    pdf = labelled.select(schema.id_column, schema.label_column).join(truth, on=schema.id_column) \
        .select(schema.label_column, "_p_true").toPandas()
    y = pdf[schema.label_column].to_numpy()
    if len(pdf) == 0 or y.min() == y.max():
        return None
    return float(metrics.classification_metrics(y, pdf["_p_true"].to_numpy())["roc_auc"])


def run(cfg: Config, lake: Lake, spark: Any, run_date: dt.date) -> dict[str, Any]:
    """The whole daily run for ``run_date``; returns (and writes) the run summary."""
    from pyspark.sql import functions as F

    timer = Timer()
    started = dt.datetime.now(dt.UTC)
    schema = read_lake_schema(lake)
    with timer.step("check"):
        batch, batch_rows, batch_uri = load_batch(lake, spark, schema, run_date)
    engine = choose_engine(spark, cfg.model.engine)

    with timer.step("champion"):
        version = champion_version(lake)
        bootstrapped = version is None
        if bootstrapped:
            train = spark.read.parquet(lake.uri(storage.TRAIN))
            champion = training.bootstrap(cfg, spark, train, schema, engine, run_date)
            save_model(lake, champion)
            set_champion(lake, champion.version, "bootstrap from train/", run_date, None)
        else:
            champion = load_model(lake, version)

    with timer.step("score"):
        scored_at = dt.datetime.now(dt.UTC).replace(microsecond=0)
        scores = score_batch(batch, champion, schema, cfg.model.cutoff, scored_at, cfg.model.scoring_udf)
        stage = lake.staging_uri(f"inference-{run_date}")
        target = lake.partition_uri(storage.INFERENCE, run_date)
        try:
            scores.write.mode("overwrite").parquet(stage)
            written = spark.read.parquet(stage)
            scored_rows = written.count()
            if scored_rows != batch_rows:
                raise BatchError(f"scored {scored_rows} rows for a batch of {batch_rows}; nothing was published")
            lake.publish(stage, target)
        finally:
            lake.remove(stage)
        scored = spark.read.parquet(target)

    with timer.step("evaluate"):
        labelled = scored.join(batch.select(schema.id_column, schema.label_column).dropDuplicates([schema.id_column]),
                               on=schema.id_column)
        pdf = labelled.select(schema.label_column, "p_default").toPandas()
        y, p = pdf[schema.label_column].to_numpy(dtype=int), pdf["p_default"].to_numpy(dtype=float)
        evaluation = metrics.classification_metrics(y, p, cfg.model.cutoff)
        evaluation["oracle_auc"] = oracle_auc(lake, spark, schema, labelled)
        evaluation["calibration"] = calibration.summary(y, p)
        artifacts = {}
        if len(y):
            lake.write_bytes(run_uri(lake, run_date, "reliability.png"),
                             report.reliability_png(evaluation["calibration"]["table"], f"Calibration, batch {run_date}"))
            artifacts["reliability"] = run_uri(lake, run_date, "reliability.png")
        if evaluation["roc_auc"] is not None:
            lake.write_bytes(run_uri(lake, run_date, "roc.png"),
                             report.roc_png(y, {f"champion {champion.version}": p}, f"ROC, batch {run_date}"))
            artifacts["roc_curve"] = run_uri(lake, run_date, "roc.png")
        lake.write_bytes(run_uri(lake, run_date, "score_hist.png"),
                         report.score_hist_png(y, p, cfg.model.cutoff, f"Scores, batch {run_date}"))
        artifacts["score_histogram"] = run_uri(lake, run_date, "score_hist.png")
        drift_report = drift(scored, batch, champion, schema)
        lake.write_json(run_uri(lake, run_date, "metrics.json"), {"evaluation": evaluation, "drift": drift_report})
        artifacts["metrics"] = run_uri(lake, run_date, "metrics.json")

    with timer.step("train_sup"):
        sup = rebuild_train_sup(lake, spark, schema, run_date)

    with timer.step("challenger"):
        key = F.xxhash64(F.col(schema.id_column).cast("string"), F.lit(cfg.model.seed)) % 10_000
        holdout = batch.select(schema.id_column).distinct().filter(
            F.abs(key) < int(cfg.model.validation_fraction * 10_000))
        sup_df = spark.read.parquet(lake.uri(storage.TRAIN_SUP))
        train_c = sup_df.join(holdout, on=schema.id_column, how="left_anti")
        rediscover = training.rediscover_reason(cfg, champion, run_date, drift_report)
        chall = training.challenger(cfg, spark, train_c, champion, schema, engine, run_date, rediscover)

    with timer.step("compare"):
        decision = compare(cfg, spark, schema, batch, holdout, champion, chall)
        if decision["promoted"]:
            save_model(lake, chall)
            set_champion(lake, chall.version, decision["reason"], run_date, champion.version)
        if decision.get("roc_png"):
            lake.write_bytes(run_uri(lake, run_date, "champion_vs_challenger.png"), decision.pop("roc_png"))
            artifacts["champion_vs_challenger"] = run_uri(lake, run_date, "champion_vs_challenger.png")

    auc = evaluation["roc_auc"]
    alert_reasons = []
    if auc is None:
        alert_reasons.append("AUC undefined: the batch has a single class")
    elif auc < cfg.model.auc_floor:
        alert_reasons.append(f"AUC {auc:.4f} is under the floor {cfg.model.auc_floor}")
    summary = {
        "job": "app",
        "run_date": run_date.isoformat(),
        "status": "ALERT" if alert_reasons else "OK",
        "alerts": alert_reasons,
        "engine": engine,
        "batch": {"path": batch_uri, "rows": batch_rows},
        "champion": {"version": champion.version, "bootstrapped": bootstrapped,
                     "features": champion.spec.features, "pairs": [p["name"] for p in champion.spec.pairs],
                     "calibration": (champion.spec.calibration or {}).get("method", "none"),
                     **({"candidates": _candidate_table(champion)} if bootstrapped else {})},
        "scores": {"path": target, "rows": scored_rows, "cutoff": cfg.model.cutoff},
        "evaluation": evaluation,
        "drift": drift_report,
        "train_sup": sup,
        "challenger": {"version": chall.version, "features": chall.spec.features, "rediscovered": rediscover,
                       **({"candidates": _candidate_table(chall)} if rediscover else {}), **decision},
        "serving_after_run": champion_version(lake),
        "artifacts": artifacts,
        "seconds": {**timer.seconds, "total": round((dt.datetime.now(dt.UTC) - started).total_seconds(), 2)},
        "started_at": started.isoformat(timespec="seconds"),
    }
    lake.write_json(run_uri(lake, run_date, "summary.json"), summary)
    return summary


def _candidate_table(bundle: ModelBundle) -> dict[str, Any]:
    """The CV candidate table of a model's discovery, as the report shows it (feature lists shortened)."""
    disc = bundle.metadata.get("discovery") or {}
    rows = [{k: v for k, v in r.items() if k != "features"} | {"features": r["features"][:12]}
            for r in disc.get("candidates", [])]
    return {"rows": rows, "decision": disc.get("decision", {}),
            "calibration": {k: disc.get("calibration", {}).get(k) for k in ("method", "reason", "before", "after")}}


def compare(cfg: Config, spark: Any, schema: DataSchema, batch: Any, holdout: Any, champion: ModelBundle,
            chall: ModelBundle) -> dict[str, Any]:
    """Champion vs challenger on the same held-out batch rows: paired DeLong test, promotion decision."""
    rows = batch.join(holdout, on=schema.id_column, how="left_semi").dropDuplicates([schema.id_column])
    labels = rows.select(schema.id_column, schema.label_column)
    a = predict_frame(rows, champion, schema).withColumnRenamed("p_default", "p_a")
    b = predict_frame(rows, chall, schema).withColumnRenamed("p_default", "p_b")
    pdf = labels.join(a, schema.id_column).join(b, schema.id_column).toPandas()
    y = pdf[schema.label_column].to_numpy(dtype=int)
    out: dict[str, Any] = {"validation_rows": int(len(pdf)), "significance": cfg.model.significance, "test": "DeLong (paired)"}
    if len(pdf) == 0 or y.min() == y.max():
        return {**out, "promoted": False, "reason": "not compared: the validation rows hold a single class"}
    test = metrics.delong_test(y, pdf["p_a"].to_numpy(), pdf["p_b"].to_numpy())
    better = test["difference"] > 0 and test["p_b_better"] < cfg.model.significance
    out.update({
        "champion_auc": test["auc_a"], "challenger_auc": test["auc_b"], "auc_difference": test["difference"],
        "z": test["z"], "p_value": test["p_b_better"], "p_value_two_sided": test["p_two_sided"],
        "promoted": bool(better),
        "reason": (f"challenger AUC {test['auc_b']:.4f} > champion {test['auc_a']:.4f}, one-sided p = "
                   f"{test['p_b_better']:.3g} < {cfg.model.significance}") if better else
                  (f"kept the champion: challenger AUC {test['auc_b']:.4f} vs {test['auc_a']:.4f}, one-sided p = "
                   f"{test['p_b_better']:.3g} (needs < {cfg.model.significance})"),
        "roc_png": report.roc_png(y, {"champion": pdf["p_a"].to_numpy(), "challenger": pdf["p_b"].to_numpy()},
                                  "Champion vs challenger (validation rows)"),
    })
    return out


def main_run(run_date: str, config_path: str | None = None, spark: Any = None) -> dict[str, Any]:
    """The job as the entry script runs it."""
    from loanpipe.config import load_config
    from loanpipe.session import get_spark
    from loanpipe.storage import open_lake

    cfg = load_config(config_path)
    date = storage.parse_run_date(run_date)
    lake = open_lake(cfg.storage)
    spark = spark or get_spark(cfg, app_name=f"loanpipe-app-{date}")
    return run(cfg, lake, spark, date)
