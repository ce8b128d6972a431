"""Which model serves a run date, and whether the date's challenger replaces it.

* ``champion_of``: the model the promotion ledger names for the date, or a champion bootstrapped from ``train/``
  on the first run ever;
* ``challenger_of``: the date's challenger (reused when an earlier try of the date saved it);
* ``rediscover_reason`` and ``challenger_columns``: whether it chooses its features again (cadence, drift);
* ``challenger_training``: train_sup less the comparison rows (``loanpipe.ml.backtest.comparison_rows``);
* ``evidence``, ``decide`` and ``compare``: both models on those rows, promoted only when every rule of the
  promotion policy holds (``loanpipe.ml.policy``: evidence, cool-down, AUC gain, the paired DeLong test);
* ``grade_migration``: the batch's applications by their grade under the old and the new champion.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import numpy as np

from loanpipe.core import catalog
from loanpipe.core.config import Config
from loanpipe.core.context import RunContext
from loanpipe.core.schema import DataSchema
from loanpipe.core.sections import PromotionConfig
from loanpipe.ml import metrics, policy, risk, training
from loanpipe.ml.bundle import ModelBundle
from loanpipe.core.dates import version_for
from loanpipe.ml.model import champion_for, find_model, ledger, load_model, record_decision, save_model
from loanpipe.ml.scoring import predict_frame

TRAINED_THROUGH = "train_sup_through"  # a challenger's metadata: train_sup's partitions up to it were its data


@dataclass
class Comparison:
    """Champion and challenger on the same validation rows: the decision, and the rows' labels and raw scores."""

    decision: dict[str, Any]
    y: np.ndarray
    p_champion: np.ndarray
    p_challenger: np.ndarray

    @property
    def compared(self) -> bool:
        return "champion_auc" in self.decision


def champion_of(ctx: RunContext) -> tuple[ModelBundle, bool]:
    """The champion that scores the run date (the ledger's rule), and whether this date bootstrapped it: on the
    first run ever one is trained from ``train/`` (or found, when an earlier try of this date saved it) and
    recorded at once, so a crash later leaves a ledger that names it."""
    lake, run_date = ctx.lake, ctx.run_date
    entries = ledger(lake)
    version = champion_for(lake, run_date, entries)
    if version is not None:
        return load_model(lake, version), bool(entries.get(run_date.isoformat(), {}).get("bootstrap"))
    champion = find_model(lake, version_for(run_date, "bootstrap"))
    if champion is None:
        champion = training.bootstrap(ctx.cfg, ctx.spark, ctx.read(catalog.train(lake)), ctx.schema, ctx.engine,
                                      run_date)
        save_model(lake, champion)
    record_decision(lake, run_date, {"bootstrap": True, "champion": champion.version, "serving": champion.version,
                                     "promoted": False, "reason": "bootstrap from train/"})
    return champion, True


def challenger_of(ctx: RunContext, train_c: Any, champion: ModelBundle,
                  rediscover: str | None) -> tuple[ModelBundle, str | None]:
    """The date's challenger: the one an earlier try of this date saved, or a new one (saved at once)."""
    chall = find_model(ctx.lake, version_for(ctx.run_date, "challenger"))
    if chall is not None:
        return chall, chall.metadata.get("rediscovered")
    chall = training.challenger(ctx.cfg, ctx.spark, train_c, champion, ctx.schema, ctx.engine, ctx.run_date,
                                rediscover)
    chall.metadata[TRAINED_THROUGH] = ctx.run_date.isoformat()  # its data: train_sup partitions up to the date
    save_model(ctx.lake, chall)
    return chall, rediscover


def rediscover_reason(cfg: Config, champion: ModelBundle, run_date: dt.date, drift: dict[str, Any],
                      last_discovery: dt.date | None = None) -> str | None:
    """Why today's challenger re-runs the candidate comparison (None: it keeps the champion's features).

    The cadence counts from the latest choice of features: the champion's, or a later challenger's that chose
    them again without being promoted (``last_discovery``, see ``loanpipe.ml.model.last_discovery``); counted
    from the champion's alone, every day after the first rediscovery would repeat it while the champion stays.
    Drift counts only on a batch of ``model.rediscover_psi_min_rows`` rows or more (``drift["rows"]``): on a few
    rows a feature's PSI is large from sampling alone."""
    since = dt.date.fromisoformat(champion.metadata.get("discovered_on") or champion.metadata["run_date"])
    if last_discovery is not None and last_discovery > since:
        since = last_discovery
    if (run_date - since).days >= cfg.model.rediscover_every_days:
        return (f"the features were chosen on {since} ({(run_date - since).days} days ago; "
                f"model.rediscover_every_days = {cfg.model.rediscover_every_days})")
    worst, rows = drift.get("max_feature_psi") or {}, drift.get("rows")
    if rows is not None and rows < cfg.model.rediscover_psi_min_rows:  # the PSI of a few rows is mostly noise
        return None
    if (worst.get("psi") or 0.0) > cfg.model.rediscover_psi:
        return f"feature {worst['feature']} drifted: PSI {worst['psi']} > model.rediscover_psi = {cfg.model.rediscover_psi}"
    return None


def challenger_columns(champion: ModelBundle, schema: DataSchema, rediscover: str | None) -> list[str]:
    """The training-data columns :func:`challenger` reads: every feature when it chooses them again, else the
    champion's raw inputs (with the id and the label)."""
    inputs = schema.features if rediscover else champion.spec.raw_features
    return [schema.id_column, schema.label_column, *inputs]


def challenger_training(train_sup: Any, holdout: Any, schema: DataSchema) -> Any:
    """What the challenger learns from: train_sup less the comparison rows (``holdout``: their ids)."""
    return train_sup.join(holdout, on=schema.id_column, how="left_anti")


def since_last_change(ctx: RunContext) -> tuple[str | None, int | None]:
    """(the date the serving model last changed before D, the run dates since; both None if it never changed)."""
    return policy.dates_since_change(ledger(ctx.lake), catalog.batch_dates(ctx.lake), ctx.run_date.isoformat())


def evidence(ctx: RunContext, rows: int, defaults: int) -> list[policy.Rule]:
    """The policy's rules known before a challenger is trained, for the date's comparison rows."""
    _, since = since_last_change(ctx)
    return policy.evidence_rules(ctx.cfg.model.promotion, rows, defaults, since)


def decide(y: np.ndarray, p_champion: np.ndarray, p_challenger: np.ndarray, rules: PromotionConfig,
           known: list[policy.Rule]) -> dict[str, Any]:
    """Promote only when every rule of the policy holds: ``known`` (the evidence rules, measured before the fit)
    and the comparison's own: the AUC gain, and the paired DeLong test's one-sided p that the gain exceeds
    ``min_auc_gain`` (a gain just over it by chance does not pass; a superiority-by-a-margin test)."""
    out: dict[str, Any] = {"validation_rows": int(len(y)), "test": "DeLong (paired)", "alpha": rules.alpha,
                           "min_auc_gain": rules.min_auc_gain}
    if len(y) == 0 or y.min() == y.max():
        checked = known + policy.model_rules(rules, None, None)
        return {**out, "promoted": False, "policy": [r.row() for r in checked],
                "reason": "not compared: the validation rows hold a single class"}
    test = metrics.delong_test(y, p_champion, p_challenger, margin=rules.min_auc_gain)
    checked = known + policy.model_rules(rules, test["difference"], test["p_b_better"])
    promoted, why = policy.verdict(checked)
    return {**out,
            "champion_auc": test["auc_a"], "challenger_auc": test["auc_b"], "auc_difference": test["difference"],
            "z": test["z"], "p_value": test["p_b_better"], "p_value_two_sided": test["p_two_sided"],
            "promoted": promoted, "policy": [r.row() for r in checked],
            "reason": (f"challenger AUC {test['auc_b']:.4f} vs champion {test['auc_a']:.4f}: " if promoted else
                       f"challenger AUC {test['auc_b']:.4f} vs {test['auc_a']:.4f}, ") + why}


def compare(rows: Any, holdout: Any, champion: ModelBundle, chall: ModelBundle, schema: DataSchema,
            rules: PromotionConfig, known: list[policy.Rule]) -> Comparison:
    """Both models on the same comparison rows (those of ``rows`` whose id ``holdout`` holds), and the decision.

    They are compared on their raw scores: promotion is about ranking (AUC), which a PD calibrator leaves
    unchanged (Platt) or nearly so (isotonic, at most ``calibration.MAX_AUC_LOSS``), and a challenger gets its
    calibrator only once it is promoted."""
    ident = schema.id_column
    rows = rows.join(holdout, on=ident, how="left_semi").dropDuplicates([ident])
    a = predict_frame(rows, champion, schema, calibrated=False).withColumnRenamed("p_default", "p_a")
    b = predict_frame(rows, chall, schema, calibrated=False).withColumnRenamed("p_default", "p_b")
    pdf = rows.select(ident, schema.label_column).join(a, ident).join(b, ident).orderBy(ident).toPandas()
    y = pdf[schema.label_column].to_numpy(dtype=int)
    p_a, p_b = pdf["p_a"].to_numpy(), pdf["p_b"].to_numpy()
    return Comparison(decide(y, p_a, p_b, rules, known), y, p_a, p_b)


def grade_migration(batch: Any, scored: Any, promoted: ModelBundle, schema: DataSchema,
                    master_scale: list[float]) -> dict[str, Any]:
    """The date's applications by their grade under the champion that scored them and under the promoted
    challenger (its calibrated PD): the migration matrix a promotion brings."""
    ident = schema.id_column
    new = predict_frame(batch.dropDuplicates([ident]), promoted, schema).withColumnRenamed("p_default", "p_new")
    pdf = scored.dropDuplicates([ident]).select(ident, "p_default").join(new, ident).toPandas()
    return risk.migration_matrix(risk.grade_of(pdf["p_default"].to_numpy(), master_scale),
                                 risk.grade_of(pdf["p_new"].to_numpy(), master_scale), len(master_scale))


def candidate_table(bundle: ModelBundle) -> dict[str, Any]:
    """The CV candidate table of a model's discovery, as the report shows it (feature lists shortened)."""
    disc = bundle.metadata.get("discovery") or {}
    rows = [{k: v for k, v in r.items() if k != "features"} | {"features": r["features"][:12]}
            for r in disc.get("candidates", [])]
    return {"rows": rows, "decision": disc.get("decision", {}),
            "calibration": {k: disc.get("calibration", {}).get(k) for k in ("method", "reason", "before", "after")}}
