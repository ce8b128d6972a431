"""The daily evaluation (``loanpipe.ml.evaluation``): metrics and alerts on small arrays."""

from __future__ import annotations

import numpy as np

from loanpipe.ml import evaluation


def test_evaluate_and_alerts() -> None:
    y = np.array([0, 0, 1, 1, 0])
    ev = evaluation.evaluate(y, np.array([0.1, 0.2, 0.8, 0.7, 0.3]), cutoff=0.5)
    assert ev["roc_auc"] == 1.0 and ev["true_positives"] == 2 and ev["calibration"]["table"]
    assert evaluation.alerts(ev, auc_floor=0.75) == []
    assert evaluation.alerts({"rows": 50, "roc_auc": 0.6}, 0.75) == ["backtest AUC 0.6000 is under the floor 0.75"]
    assert evaluation.alerts({"rows": 50, "roc_auc": None}, 0.75) == [
        "backtest AUC undefined: the matured cohorts hold a single class"]
    assert evaluation.alerts({"rows": 0, "roc_auc": None}, 0.75) == []  # nothing matured: nothing to alert on


def test_daily_figures_need_no_label() -> None:
    figures = evaluation.daily_figures(np.array([0.001, 0.03, 0.5, 0.004]), np.array([1, 5, 10, 2]), [0.0025] * 10)
    assert figures["rows"] == 4 and figures["expected_default_rate"] == np.mean([0.001, 0.03, 0.5, 0.004])
    assert figures["grade_shares"] == [0.25, 0.25, 0, 0, 0.25, 0, 0, 0, 0, 0.25]
