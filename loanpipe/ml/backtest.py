"""What the daily job learns from outcomes that arrive after the applications, as of its run date.

Every read here is as of the run date D: the applications landed up to D and the outcome records that had
arrived by D (``loanpipe.core.maturity``), so a rerun of D after later outcomes landed sees what D saw.

* ``matured_since``: the labels that matured as of D and not yet as of the previous run date (the cohorts D's
  report backtests and D's ``train_sup`` partition adds);
* ``backtest``: those applications' PDs as they were served on their own dates, against the matured labels: the
  AUC with its DeLong interval, each grade's Jeffreys and binomial tests, Hosmer-Lemeshow, the default rate against
  the mean PD, by cohort, and the ECB's AUC decline and concentration tests against the serving model's initial
  validation;
* ``matured_rows``: their features (as scored) with the labels, for ``train_sup/run_date=D``;
* ``comparison_rows``: the newest matured cohorts that neither the champion nor the date's challenger trains on
  (out of time), or why there are not enough of them for a decision.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from loanpipe.core import catalog, maturity, storage
from loanpipe.core.context import RunContext
from loanpipe.ml import ecb, evaluation, metrics, policy, promotion
from loanpipe.ml.bundle import ModelBundle

COHORT = maturity.APPLICATION_DATE


def previous_run_date(ctx: RunContext) -> dt.date | None:
    """The latest run date before D with a published batch (None on the first one)."""
    earlier = [d for d in catalog.batch_dates(ctx.lake) if d < ctx.run_date.isoformat()]
    return dt.date.fromisoformat(earlier[-1]) if earlier else None


def matured_since(ctx: RunContext) -> tuple[pd.DataFrame, dt.date | None]:
    """(the labels known as of D and not as of the previous run date, that date): ``id, application_date,
    label, matured_on, how`` and the outcome's target (missing when the window matured it)."""
    schema, since = ctx.schema, previous_run_date(ctx)
    apps = maturity.read_applications(ctx.lake, ctx.run_date, schema.id_column)
    columns = [schema.id_column, schema.target_column, schema.label_column, maturity.SEQUENCE]
    outcomes = maturity.read_outcomes(ctx.lake, ctx.run_date, columns)
    if outcomes.empty:
        outcomes = outcomes.astype({schema.label_column: "int64"})
    labels = maturity.newly_matured(apps, outcomes, since, ctx.run_date, ctx.cfg.outcomes.performance_window_days,
                                    schema.id_column, schema.label_column)
    return labels, since


def served_pds(ctx: RunContext, labels: pd.DataFrame) -> pd.DataFrame:
    """``labels`` joined with the PD and grade each application was served on its own date (applications whose
    date's scores are not published, or that were quarantined then, are left out)."""
    ident, parts = ctx.schema.id_column, []
    for day in sorted(set(labels[COHORT])):
        uri = catalog.scores(ctx.lake, day)
        if ctx.lake.is_published(uri):
            served = catalog.read_table(ctx.lake, uri, columns=[ident, "p_default", "grade", "model_version"]
                                        ).to_pandas()
            parts.append(served.drop_duplicates(ident).assign(**{COHORT: day}))
    if not parts:
        return labels.assign(p_default=pd.Series(dtype=float), grade=pd.Series(dtype="int32"),
                             model_version=pd.Series(dtype=object)).iloc[0:0]
    return labels.merge(pd.concat(parts, ignore_index=True), on=[ident, COHORT], how="inner")


def cohort_table(rows: pd.DataFrame, label: str) -> list[dict[str, Any]]:
    """One line per application date: rows, defaults, default rate, mean PD, AUC (None for a single class)."""
    out = []
    for day, part in rows.groupby(COHORT, sort=True):
        y, p = part[label].to_numpy(int), part["p_default"].to_numpy(float)
        out.append({"application_date": str(day), "rows": len(part), "defaults": int(y.sum()),
                    "default_rate": float(y.mean()), "mean_pd": float(p.mean()),
                    "roc_auc": metrics.classification_metrics(y, p)["roc_auc"]})
    return out


def backtest(ctx: RunContext, labels: pd.DataFrame, since: dt.date | None, held: ModelBundle | None = None
             ) -> tuple[dict[str, Any], Any, Any]:
    """(the backtest section, its labels, its PDs): the served PDs of the cohorts whose labels matured since the
    previous run date, against those labels. With none, the section says so and its metrics are None. ``held``: a
    model the caller already holds (the champion), not read again when it served the backtested rows."""
    schema, cfg = ctx.schema, ctx.cfg
    rows = served_pds(ctx, labels)
    y, p = rows[schema.label_column].to_numpy(int), rows["p_default"].to_numpy(float)
    head = {"since": since.isoformat() if since else None, "as_of": ctx.run_date.isoformat(),
            "matured": len(labels), "how": {k: int(v) for k, v in labels[maturity.HOW].value_counts().items()}}
    if rows.empty:
        why = (f"no outcome matured since {since}" if since else "no outcome has matured yet") + (
            f" (outcomes arrive after the applications; performance window "
            f"{cfg.outcomes.performance_window_days} days)")
        return {**head, "rows": 0, "roc_auc": None, "reason": why, "cohorts": []}, y, p
    result = evaluation.evaluate(y, p, cfg.model.cutoff)
    result["validation"] = {**evaluation.validation(y, p, cfg.risk.master_scale), **against_initial(ctx, rows, held)}
    result["oracle_auc"] = oracle_auc(ctx, rows)
    return {**head, **result, "reason": None, "cohorts": cohort_table(rows, schema.label_column)}, y, p


def against_initial(ctx: RunContext, rows: pd.DataFrame, held: ModelBundle | None = None) -> dict[str, Any]:
    """The ECB's AUC decline and concentration tests of the backtest's served PDs and grades, against the initial
    validation of the model that served most of them (:meth:`ModelBundle.initial_validation`); read from the lake
    unless it is ``held``."""
    from loanpipe.ml.model import find_model

    version = str(rows["model_version"].mode().iloc[0])
    bundle = held if held is not None and held.version == version else find_model(ctx.lake, version)
    initial = bundle.initial_validation() if bundle else {}
    grades = np.bincount(rows["grade"].to_numpy(int), minlength=len(ctx.cfg.risk.master_scale) + 1)[1:]
    y, p = rows[ctx.schema.label_column].to_numpy(int), rows["p_default"].to_numpy(float)
    start = initial.get("grade_counts")
    return {"initial": {"model": version, **initial},
            "auc_decline": ecb.auc_decline(initial.get("auc"), y, p),
            "concentration": ecb.concentration_test(start, grades) if start else None}


def oracle_auc(ctx: RunContext, rows: pd.DataFrame) -> float | None:
    """AUC of the true default probabilities on the backtest's rows (synthetic lakes keep them; else None)."""
    truth = catalog.truth(ctx.lake)
    if not ctx.lake.has_data(truth):
        return None
    ident = ctx.schema.id_column
    known = catalog.read_table(ctx.lake, truth, columns=[ident, "p_default"]).to_pandas()
    both = rows[[ident, ctx.schema.label_column]].merge(known, on=ident)
    y = both[ctx.schema.label_column].to_numpy(int)
    if len(y) == 0 or y.min() == y.max():
        return None
    return float(metrics.classification_metrics(y, both["p_default"].to_numpy())["roc_auc"])


def matured_rows(ctx: RunContext, labels: pd.DataFrame) -> Any:
    """The matured applications as ``train_sup`` holds them (a Spark frame): the lake's columns (their features as
    landed on their date, the outcome's target and the matured label) and their ``application_date``; only the
    applications that were scored (a quarantined row never trains)."""
    from pyspark.sql import functions as F

    schema, spark = ctx.schema, ctx.spark
    ident, target, label = schema.id_column, schema.target_column, schema.label_column
    cohorts = sorted({d.isoformat() for d in labels[COHORT]})
    known = spark.createDataFrame(
        labels[[ident, label, COHORT]].assign(**{COHORT: labels[COHORT].map(dt.date.isoformat),
                                                  "_target": labels.get(target)}).astype({"_target": object}),
        schema=f"{ident} {'string' if schema.id_is_string else 'bigint'}, {label} int, {COHORT} string, "
               f"_target {'string' if schema.target_is_text else 'double'}")
    empty = spark.createDataFrame([], schema.spark_schema()).withColumn(COHORT, F.lit(None).cast("date"))
    if not cohorts:
        return empty
    apps = catalog.read_dates(spark, catalog.batches_root(ctx.lake), [catalog.batch(ctx.lake, d) for d in cohorts])
    scored = catalog.read_dates(spark, catalog.scores_root(ctx.lake),
                                [catalog.scores(ctx.lake, d) for d in cohorts if ctx.lake.is_published(
                                    catalog.scores(ctx.lake, d))])
    if scored is None:
        return empty
    day = F.col(storage.PARTITION_KEY).cast("string").alias(COHORT)
    apps = apps.select(*schema.application_columns(), day).dropDuplicates([ident, COHORT])
    apps = apps.join(scored.select(ident, day).distinct(), on=[ident, COHORT], how="left_semi")
    joined = apps.join(F.broadcast(known), on=[ident, COHORT], how="inner")
    target_type = schema.spark_schema([target]).fields[0].dataType
    return joined.select(*schema.application_columns(), F.col("_target").cast(target_type).alias(target),
                         F.col(label).cast("int").alias(label), F.col(COHORT).cast("date").alias(COHORT))


@dataclass
class Holdout:
    """The out-of-time comparison rows (their ids and labels, their cohorts) and the promotion policy's rules known
    before a challenger is trained (``loanpipe.ml.policy.evidence_rules``): no decision unless they all pass."""

    ids: pd.DataFrame
    cohorts: list[str]
    unseen: int
    rules: list[policy.Rule]

    @property
    def decidable(self) -> bool:
        return not policy.failed(self.rules)

    @property
    def reason(self) -> str | None:
        """Why no decision can be made (None: one can)."""
        missed = policy.failed(self.rules)
        if not missed:
            return None
        rows, defaults = self.rules[0].value, self.rules[1].value
        return (f"no decision: {defaults} defaults and {rows} rows matured that no model trained on"
                f"{' (cohorts ' + ', '.join(self.cohorts) + ')' if self.cohorts else ''}; not met: "
                + "; ".join(r.text() for r in missed))

    def describe(self, label: str) -> dict[str, Any]:
        return {"validation_rows": len(self.ids), "validation_defaults": int(self.ids[label].sum()),
                "validation_cohorts": self.cohorts, "unseen_matured_rows": self.unseen}


def newest_cohorts(sizes: dict[str, int], fraction: float, most: int = 0) -> list[str]:
    """The newest whole cohorts (``sizes``: application date -> rows) holding at most ``fraction`` of all the rows,
    and at least one, at most ``most`` of them (0: no cap); in date order."""
    chosen: list[str] = []
    taken, total = 0, sum(sizes.values())
    for day in sorted(sizes, reverse=True):
        if chosen and (taken + sizes[day] > fraction * total or len(chosen) == most):
            break
        chosen.append(day)
        taken += sizes[day]
    return sorted(chosen)


def comparison_rows(ctx: RunContext, champion: ModelBundle) -> Holdout:
    """The newest cohorts of the matured rows no model has trained on: the ``train_sup`` partitions after the
    champion's own data (all of them for a champion trained on ``train/`` only), about ``model.validation_fraction``
    of those rows in whole cohorts, newest first (at least one, at most ``model.promotion.window_dates``), with the
    policy's evidence rules on them."""
    cfg, schema, lake = ctx.cfg, ctx.schema, ctx.lake
    ident, label = schema.id_column, schema.label_column
    through = champion.metadata.get(promotion.TRAINED_THROUGH) or ""
    parts = []
    for day in catalog.train_sup_dates(lake):
        if through < day <= ctx.run_date.isoformat():
            part = catalog.read_table(lake, catalog.train_sup_batch(lake, day), columns=[ident, label, COHORT])
            parts.append(part.to_pandas().assign(_written=day))
    columns = [ident, label, COHORT]
    unseen = (pd.concat(parts, ignore_index=True).sort_values("_written", kind="stable")
              .drop_duplicates(ident, keep="last")[columns] if parts else pd.DataFrame(columns=columns))
    total = len(unseen)
    cohorts = newest_cohorts(unseen[COHORT].astype(str).value_counts().to_dict(), cfg.model.validation_fraction,
                             cfg.model.promotion.window_dates)
    ids = unseen[unseen[COHORT].astype(str).isin(cohorts)].reset_index(drop=True)
    rows, defaults = len(ids), int(ids[label].sum()) if len(ids) else 0
    rules = promotion.evidence(ctx, rows, defaults)
    return Holdout(ids.astype({label: int}) if len(ids) else ids, cohorts, total, rules)

