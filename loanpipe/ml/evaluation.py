"""How the served PDs did on a batch's labels: the daily metrics, the validation figures, the oracle, the alerts
and the trend over past run dates.

The functions on arrays are pure (``evaluate``, ``validation``, ``alerts``, ``trend_point``); ``labelled_scores``
and ``oracle_auc`` join Spark frames; ``history`` reads the published run summaries through the catalog.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np

from loanpipe.core import catalog
from loanpipe.core.schema import DataSchema
from loanpipe.core.storage import Lake
from loanpipe.ml import calibration, metrics, risk

TREND_DAYS = 30


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


def oracle_auc(truth: Any, labelled: Any, schema: DataSchema) -> float | None:
    """AUC of the true default probabilities (``truth``: id, p_default; synthetic lakes only) on the batch rows."""
    pdf = labelled.select(schema.id_column, schema.label_column).join(
        truth.withColumnRenamed("p_default", "_p_true"), on=schema.id_column).select(schema.label_column, "_p_true").toPandas()
    y = pdf[schema.label_column].to_numpy()
    if len(pdf) == 0 or y.min() == y.max():
        return None
    return float(metrics.classification_metrics(y, pdf["_p_true"].to_numpy())["roc_auc"])


def alerts(evaluation: dict[str, Any], auc_floor: float) -> list[str]:
    """Why the run is an alert (empty: it is not): an AUC under the floor, or one that cannot be computed."""
    auc = evaluation["roc_auc"]
    if auc is None:
        return ["AUC undefined: the batch has a single class"]
    return [f"AUC {auc:.4f} is under the floor {auc_floor}"] if auc < auc_floor else []


def trend_point(day: str, evaluation: dict[str, Any], drift_report: dict[str, Any]) -> dict[str, Any]:
    """One run date's point of the trend: its AUC, observed default rate and score PSI."""
    return {"run_date": day, "roc_auc": evaluation.get("roc_auc"),
            "default_rate": evaluation.get("observed_default_rate"),
            "score_psi": (drift_report.get("score") or {}).get("psi")}


def history(lake: Lake, run_date: dt.date, current: dict[str, Any], days: int = TREND_DAYS) -> list[dict[str, Any]]:
    """AUC, observed default rate and score PSI of the last ``days`` run dates up to ``run_date``, oldest first:
    the published runs before it (so a rerun of a date draws the same trend whatever ran after it) and
    ``current``, this run's own point."""
    points = []
    for day in [d for d in catalog.score_dates(lake) if d < run_date.isoformat()][-(days - 1):]:
        if not lake.is_published(catalog.run_artifact(lake, day)):
            continue
        past = lake.read_json(catalog.run_artifact(lake, day, catalog.RUN_SUMMARY))
        points.append(trend_point(day, past["evaluation"], past["drift"]))
    return [*points, current]
