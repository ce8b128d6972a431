"""How the served PDs did: the day's label-free figures, the metrics and validation figures on matured labels
(``loanpipe.ml.backtest`` gathers them), the alerts and the trend over past run dates.

The functions on arrays are pure (``daily_figures``, ``evaluate``, ``validation``, ``alerts``, ``trend_point``);
``history`` reads the published run summaries through the catalog.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np

from loanpipe.core import catalog
from loanpipe.core.storage import Lake
from loanpipe.ml import calibration, ecb, metrics, risk

TREND_DAYS = 30


def evaluate(y: np.ndarray, p: np.ndarray, cutoff: float) -> dict[str, Any]:
    """Ranking and calibration metrics of the served PDs against the batch's labels."""
    evaluation = metrics.classification_metrics(y, p, cutoff)
    evaluation["calibration"] = calibration.summary(y, p)
    return evaluation


def validation(y: np.ndarray, p: np.ndarray, master_scale: list[float]) -> dict[str, Any]:
    """The validation figures beyond the daily metrics: AUC with its DeLong 95% interval, lift by score decile
    (riskiest first, with the share of defaults captured), each rating grade's observed default rate against its
    PDs (Jeffreys and binomial tests), and the Hosmer-Lemeshow test over the grades."""
    grades = risk.grade_table(y, p, master_scale)
    return {"auc_interval": risk.auc_interval(y, p), "lift": risk.lift_table(y, p), "grades": grades,
            "hosmer_lemeshow": ecb.hosmer_lemeshow(grades)}


def daily_figures(p: np.ndarray, grades: np.ndarray, master_scale: list[float]) -> dict[str, Any]:
    """What the day's scores say before any outcome is known: rows, the expected default rate (the mean
    calibrated PD) and each grade's share of the applications."""
    p, grades = np.asarray(p, float), np.asarray(grades, int)
    counts = np.bincount(grades, minlength=len(master_scale) + 1)[1:] if len(grades) else np.zeros(len(master_scale))
    return {"rows": int(len(p)), "expected_default_rate": float(p.mean()) if len(p) else None,
            "grade_shares": [round(float(c) / max(len(p), 1), 6) for c in counts]}


def alerts(backtest: dict[str, Any], auc_floor: float) -> list[str]:
    """Why the run is an alert (empty: it is not): the backtest's AUC under the floor, or undefined on matured
    cohorts of a single class. A day with no matured cohort has no AUC to alert on."""
    if not backtest.get("rows"):
        return []
    auc = backtest["roc_auc"]
    if auc is None:
        return ["backtest AUC undefined: the matured cohorts hold a single class"]
    return [f"backtest AUC {auc:.4f} is under the floor {auc_floor}"] if auc < auc_floor else []


def trend_point(day: str, evaluation: dict[str, Any], drift_report: dict[str, Any]) -> dict[str, Any]:
    """One run date's point of the trend: its backtest's AUC and observed default rate, and its score PSI."""
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
