"""The daily job: score the run date's batch, evaluate, rebuild train_sup, retrain a challenger, promote.

This module only sequences; each stage lives in its own module and is unit-tested there. Steps (each timed in the
run summary):

1. **check** (``jobs.batch``): the batch ``test_sample/run_date=D``, its columns against the lake's schema, each
   row against the data contract; bad rows quarantined, too many of them stop the run before anything is written.
2. **champion** (``ml.promotion.champion_of``): the model the promotion ledger names for D; on the first run one
   is bootstrapped from ``train/`` (candidate feature sets compared by K-fold CV, a guard against plain CatBoost,
   a calibrated PD).
3. **score** (``ml.scoring``): each row's PD, rating grade and reason codes (the label is never read) ->
   ``test_sample_inference/run_date=D``, published atomically.
4. **evaluate** (``ml.evaluation``, ``ml.backtest``, ``ml.psi.drift``): the day's figures that need no label
   (rows, expected default rate, grade shares, PSI drift of the score and each model feature), and the backtest:
   the cohorts whose labels matured since the previous run date (``core.maturity``: outcomes that had arrived by
   D), their served PDs against those labels (AUC with its DeLong interval, Jeffreys per grade, by cohort); the
   30-date trend; plots (``reports.plots``).
5. **train_sup** (``ml.backtest``, ``ml.train_sup``): the newly matured applications appended once as
   ``train_sup/run_date=D``; train_sup as of D (train + every label matured by D, the latest wins) read for the
   challenger.
6. **challenger** and **compare** (``ml.promotion``): when enough matured rows exist that no model trained on,
   the newest of those cohorts are held out (out of time), a challenger is trained on the rest of train_sup
   (features chosen again on a cadence or on drift) and compared with the champion on them by the paired DeLong
   test; with too few, no challenger and the report says how many matured. A promoted challenger gets its PD
   calibrator, its card and the grade migration before the ledger names it.
7. **artifacts**: the plots, ``metrics.json``, ``summary.json`` and ``report.html`` published together as
   ``artifacts/runs/D/``; an AUC under the floor marks the run as an alert.

The run is the date's transaction (``core.transaction``): a rerun of D replaces D's outputs and gives the same ones.
"""

from __future__ import annotations

import datetime as dt
import time
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from loanpipe.core import catalog, dates
from loanpipe.core.config import Config
from loanpipe.core.context import RunContext
from loanpipe.core.storage import Lake
from loanpipe.core.transaction import lease, run_date_transaction
from loanpipe.jobs.batch import BatchError, DailyBatch, check_batch, take_batch
from loanpipe.ml import backtest, evaluation, model_card, promotion, psi, training
from loanpipe.ml.bundle import ModelBundle
from loanpipe.ml.engine import choose_engine
from loanpipe.ml.model import last_discovery, record_decision, save_model
from loanpipe.ml.scoring import FileBatch, reads_files, score_batch
from loanpipe.ml.train_sup import train_sup_as_of
from loanpipe.reports import plots
from loanpipe.reports.emails import report_page

__all__ = ["BatchError", "check_batch", "main", "main_run", "run", "score"]

REPORT_PAGE = "report.html"


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


class RunFolder:
    """``artifacts/runs/D/``: the files gathered as the stages make them, published whole at the end."""

    def __init__(self, lake: Lake, run_date: dt.date) -> None:
        self.lake, self.run_date = lake, run_date
        self.files: dict[str, Any] = {}
        self.artifacts: dict[str, str] = {}

    def add(self, key: str | None, name: str, content: Any) -> None:
        self.files[name] = content
        if key:
            self.artifacts[key] = catalog.run_artifact(self.lake, self.run_date, name)

    def publish(self) -> None:
        catalog.publish_folder(self.lake, catalog.run_artifact(self.lake, self.run_date), self.files)


@dataclass
class Scored:
    """The published scores of the batch: where, how many, read back as a frame, and who read the batch."""

    path: str
    rows: int
    frame: Any
    read_by: str


@dataclass
class Evaluated:
    """The backtest (``evaluation``: metrics on matured labels, or why there are none), drift, trend, the day's
    label-free figures and the labels that matured since the last run."""

    evaluation: dict[str, Any]
    drift: dict[str, Any]
    trend: list[dict[str, Any]]
    daily: dict[str, Any]
    labels: Any


@dataclass
class Challenge:
    """The date's challenger, what it learnt from, and how it compared with the champion."""

    model: ModelBundle | None  # None: no challenger was trained (too few matured rows to decide on)
    rediscovered: str | None
    train_sup: dict[str, Any]
    comparison: promotion.Comparison
    migration: dict[str, Any] | None

    @property
    def promoted(self) -> bool:
        return bool(self.comparison.decision["promoted"])


# -- stages: each a call into its layer, with what the run folder and the summary keep ------------------------

def score(batch: Any, champion: ModelBundle, schema: Any, cfg: Config, scored_at: dt.datetime,
          files: FileBatch | None = None) -> Any:
    """The scores the business reads (the label is never read). ``files``: the batch's rows as files the scoring
    tasks read themselves (``model.scoring_reader: files``; used for a numeric model)."""
    return score_batch(batch, champion, schema, cfg.model.cutoff, scored_at, cfg.model.scoring_udf,
                       cfg.risk.master_scale, cfg.risk.reason_codes, cfg.risk.reasons_for, files)


def score_stage(ctx: RunContext, batch: DailyBatch, champion: ModelBundle) -> Scored:
    scored_at = dt.datetime.combine(ctx.run_date, dt.time(), dt.UTC)  # the run's logical time, the same on reruns
    target = catalog.scores(ctx.lake, ctx.run_date)
    readable = (FileBatch(catalog.parquet_files(ctx.lake, batch.uri), ctx.lake.file_access(), batch.checked.bad_ids)
                if ctx.cfg.model.scoring_reader == "files" else None)
    rows = catalog.write_dataset(ctx.lake, score(batch.frame, champion, ctx.schema, ctx.cfg, scored_at, readable),
                                 target, expect_rows=batch.rows)["rows"]
    read_by = "scoring tasks (pyarrow)" if reads_files(champion, ctx.cfg.model.scoring_udf, readable) else "Spark"
    return Scored(target, rows, ctx.read(target), read_by)


def evaluate_stage(ctx: RunContext, batch: DailyBatch, scored: Scored, champion: ModelBundle,
                   folder: RunFolder) -> Evaluated:
    """The day's label-free figures, and the backtest of the cohorts whose labels matured since the last run."""
    cfg = ctx.cfg
    served = scored.frame.select("p_default", "grade").toPandas()
    daily = evaluation.daily_figures(served["p_default"].to_numpy(), served["grade"].to_numpy(), cfg.risk.master_scale)
    folder.add("score_histogram", "score_hist.png", plots.score_hist_png(
        None, served["p_default"].to_numpy(), cfg.model.cutoff, f"The day's PDs, {ctx.run_date}"))
    labels, since = backtest.matured_since(ctx)
    result, y, p = backtest.backtest(ctx, labels, since, champion)
    if result["rows"]:
        for key, (name, png) in plots.evaluation_plots(result, y, p, champion.version, cfg.model.cutoff,
                                                       f"{ctx.run_date} (backtest)").items():
            folder.add(key, name, png)
    drift = {**psi.drift(scored.frame, batch.frame, champion.spec, ctx.schema), "rows": batch.rows}
    folder.add("metrics", "metrics.json", {"daily": daily, "backtest": result, "drift": drift})
    trend = evaluation.history(ctx.lake, ctx.run_date,
                               evaluation.trend_point(ctx.run_date.isoformat(), result, drift))
    folder.add("trend", "trend.png", plots.trend_png(trend, f"Last {len(trend)} run date(s) up to {ctx.run_date}"))
    return Evaluated(result, drift, trend, daily, labels)


def no_decision(holdout: backtest.Holdout, cfg: Config, label: str) -> promotion.Comparison:
    decision = {"test": "DeLong (paired)", "alpha": cfg.model.promotion.alpha, "promoted": False,
                "reason": holdout.reason, "policy": [r.row() for r in holdout.rules], **holdout.describe(label)}
    return promotion.Comparison(decision, np.array([], int), np.array([]), np.array([]))


def challenge_stage(ctx: RunContext, timer: Timer, batch: DailyBatch, scored: Scored, champion: ModelBundle,
                    evaluated: Evaluated) -> Challenge:
    """train_sup as of D (train + the labels matured by D), and, when enough matured rows no model trained on
    exist, the challenger trained without them, compared with the champion on them and, promoted, made servable."""
    cfg, lake, schema = ctx.cfg, ctx.lake, ctx.schema
    with timer.step("train_sup"):
        added = catalog.write_dataset(lake, backtest.matured_rows(ctx, evaluated.labels),
                                      catalog.train_sup_batch(lake, ctx.run_date))
        holdout = backtest.comparison_rows(ctx, champion)
        sup_df, dates = train_sup_as_of(lake, ctx.spark, schema, ctx.run_date)
        rediscover = promotion.rediscover_reason(cfg, champion, ctx.run_date, evaluated.drift,
                                                 last_discovery(lake, ctx.run_date, cfg.model.rediscover_every_days))
        # The de-duplicating window over train + matured rows runs once: its columns the challenger reads are kept
        # (memory, then disk) for its sample, its fit, its fingerprint and the comparison.
        sup_df = sup_df.select(*promotion.challenger_columns(champion, schema, rediscover)).persist()
        sup = {"path": catalog.train_sup(lake), "added": added["path"], "added_rows": added["rows"],
               "partitions": dates, "rows": sup_df.count()}
    if not holdout.decidable:
        sup_df.unpersist()
        return Challenge(None, None, sup, no_decision(holdout, cfg, schema.label_column), None)
    with timer.step("challenger"):
        ids = ctx.spark.createDataFrame(holdout.ids[[schema.id_column]])
        train_c = promotion.challenger_training(sup_df, ids, schema)
        chall, rediscover = promotion.challenger_of(ctx, train_c, champion, rediscover)
    with timer.step("compare"):
        comparison = promotion.compare(sup_df, ids, champion, chall, schema, cfg.model.promotion,
                                        holdout.rules)
        comparison.decision.update(holdout.describe(schema.label_column))
    migration = None
    if comparison.decision["promoted"]:  # before the ledger names it: a serving model has its calibrator and card
        with timer.step("calibrate"):
            if training.calibration_pending(chall):
                training.calibrate_promoted(cfg, train_c, chall, schema)
            chall.metadata["promotion"] = {"champion": champion.version, **comparison.decision}
            save_model(lake, chall)
        with timer.step("migration"):
            migration = promotion.grade_migration(batch.frame, scored.frame, chall, schema, cfg.risk.master_scale)
    sup_df.unpersist()
    return Challenge(chall, rediscover, sup, comparison, migration)


def record(ctx: RunContext, champion: ModelBundle, bootstrapped: bool, challenge: Challenge) -> str:
    """The date's ledger record (replacing a rerun's), when the date decided something; the model serving after it."""
    decision = challenge.comparison.decision
    chall = challenge.model.version if challenge.model else None
    serving = chall if challenge.promoted else champion.version
    if challenge.promoted or bootstrapped:
        record_decision(ctx.lake, ctx.run_date, {
            "bootstrap": bootstrapped, "champion": champion.version, "challenger": chall,
            "serving": serving, "promoted": challenge.promoted, "test": decision["test"],
            "p_value": decision.get("p_value"), "reason": decision["reason"]})
    else:
        record_decision(ctx.lake, ctx.run_date, None)
    return serving


def summarize(ctx: RunContext, batch: DailyBatch, champion: ModelBundle, bootstrapped: bool, scored: Scored,
              evaluated: Evaluated, challenge: Challenge, serving: str, artifacts: dict[str, str]) -> dict[str, Any]:
    """The run summary: every number, path, version and decision of the run (the timings are added by ``daily``)."""
    cfg, chall = ctx.cfg, challenge.model
    alert_reasons = evaluation.alerts(evaluated.evaluation, cfg.model.auc_floor)
    trained = {"version": chall.version, "features": chall.spec.features,
               "calibration": "pending" if training.calibration_pending(chall) else
               (chall.spec.calibration or {}).get("method", "none")} if chall else {"version": None}
    return {
        "job": "app",
        "run_date": ctx.run_date.isoformat(),
        "status": "ALERT" if alert_reasons else "OK",
        "alerts": alert_reasons,
        "engine": ctx.engine,
        "batch": {"path": batch.uri, "rows": batch.rows_in},
        "quality": batch.quality,
        "champion": {"version": champion.version, "bootstrapped": bootstrapped,
                     "features": champion.spec.features, "pairs": [p["name"] for p in champion.spec.pairs],
                     "calibration": (champion.spec.calibration or {}).get("method", "none"),
                     **({"candidates": promotion.candidate_table(champion)} if bootstrapped else {})},
        "scores": {"path": scored.path, "rows": scored.rows, "cutoff": cfg.model.cutoff, "read_by": scored.read_by},
        "daily": evaluated.daily,
        "evaluation": evaluated.evaluation,
        "drift": evaluated.drift,
        "train_sup": challenge.train_sup,
        "challenger": {**trained, "rediscovered": challenge.rediscovered,
                       **({"candidates": promotion.candidate_table(chall)} if challenge.rediscovered else {}),
                       **challenge.comparison.decision},
        "serving_after_run": serving,
        "risk": {"master_scale": cfg.risk.master_scale, "reason_codes": cfg.risk.reason_codes,
                 "reasons_for": cfg.risk.reasons_for, "migration": challenge.migration, "trend": evaluated.trend,
                 **({"model_card": model_card.render(chall)} if challenge.promoted else {})},
        "artifacts": artifacts,
    }


# -- the run: lake in, stages in order, lake out ----------------------------------------------------------

def run(cfg: Config, lake: Lake, spark: Any, run_date: dt.date) -> dict[str, Any]:
    """The whole daily run for ``run_date`` as the date's transaction (its lock held, what a killed run of the
    date left repaired first); returns (and publishes) the run summary."""
    targets = [catalog.scores(lake, run_date), catalog.quarantine(lake, run_date), catalog.train_sup_batch(lake, run_date),
               catalog.run_artifact(lake, run_date),
               *(catalog.model(lake, dates.version_for(run_date, role)) for role in ("bootstrap", "challenger"))]
    with run_date_transaction(lake, run_date, "app", targets, lease(cfg)) as tx:
        return daily(cfg, tx.lake, spark, run_date, tx.repaired)


def daily(cfg: Config, lake: Lake, spark: Any, run_date: dt.date, repaired: list[str]) -> dict[str, Any]:
    """The run's stages in order: lake in, lake out (``run`` holds the date's transaction around it)."""
    timer = Timer()
    started = dt.datetime.now(dt.UTC)
    folder = RunFolder(lake, run_date)
    ctx = RunContext(cfg, lake, spark, catalog.read_schema(lake), run_date)
    with timer.step("check"):
        batch = take_batch(ctx)
    ctx = replace(ctx, engine=choose_engine(spark, cfg.model.engine))  # a bad batch is reported before the engine
    with timer.step("champion"):
        champion, bootstrapped = promotion.champion_of(ctx)
    with timer.step("score"):
        scored = score_stage(ctx, batch, champion)
    with timer.step("evaluate"):
        evaluated = evaluate_stage(ctx, batch, scored, champion, folder)
    challenge = challenge_stage(ctx, timer, batch, scored, champion, evaluated)
    serving = record(ctx, champion, bootstrapped, challenge)
    comparison = challenge.comparison
    if comparison.compared:
        folder.add("champion_vs_challenger", "champion_vs_challenger.png", plots.roc_png(
            comparison.y, {"champion": comparison.p_champion, "challenger": comparison.p_challenger},
            "Champion vs challenger (validation rows)"))
    summary = summarize(ctx, batch, champion, bootstrapped, scored, evaluated, challenge, serving, folder.artifacts)
    summary.update({"seconds": {**timer.seconds, "total": round((dt.datetime.now(dt.UTC) - started).total_seconds(), 2)},
                    "started_at": started.isoformat(timespec="seconds"), "repaired": repaired})
    folder.add(None, catalog.RUN_SUMMARY, summary)
    folder.add("report", REPORT_PAGE, report_page(summary, folder.files))
    folder.publish()
    return summary


def main_run(run_date: str, config_path: str | None = None, spark: Any = None) -> dict[str, Any]:
    """The job as the entry script runs it."""
    from loanpipe.core.config import load_config
    from loanpipe.core.session import get_spark
    from loanpipe.core.storage import open_lake

    cfg = load_config(config_path)
    date = dates.parse_run_date(run_date)
    lake = open_lake(cfg.storage)
    spark = spark or get_spark(cfg, app_name=f"loanpipe-app-{date}")
    return run(cfg, lake, spark, date)


ENTRY_HELP = """Daily scoring job: score the run date's batch with the champion, evaluate, retrain a challenger, promote.

    spark-submit --packages ai.catboost:catboost-spark_4.0_2.13:1.2.10 --py-files loanpipe.zip spark/app.py \\
        --run-date 2026-11-29
    python -m loanpipe.jobs.app --run-date 2026-11-29     (same thing, Spark from the configuration)

Prints the run summary as JSON (also artifacts/runs/<date>/summary.json). Exit code 2 and a message naming
the problem on bad input (no batch, bad columns, ...): the champion and earlier outputs stay as they were.
"""


def main(argv: list[str] | None = None) -> int:
    """``python -m loanpipe.jobs.app --run-date D`` (what ``spark/app.py`` runs under spark-submit)."""
    import argparse

    from loanpipe.jobs.cli import run_job

    parser = argparse.ArgumentParser(prog="app", description=ENTRY_HELP,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run-date", required=True, help="the run's logical date, YYYY-MM-DD (Airflow's {{ ds }})")
    parser.add_argument("--config", help="configuration file (default: $LOANPIPE_CONFIG or conf/default.yaml)")
    args = parser.parse_args(argv)
    return run_job("app", lambda: main_run(args.run_date, args.config))


if __name__ == "__main__":
    from loanpipe.jobs.cli import exit_after

    exit_after(main)
