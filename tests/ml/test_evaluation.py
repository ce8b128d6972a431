"""The daily evaluation (``loanpipe.ml.evaluation``): metrics and alerts on small arrays."""

from __future__ import annotations

import numpy as np

from loanpipe.ml import evaluation


def test_evaluate_and_alerts() -> None:
    y = np.array([0, 0, 1, 1, 0])
    ev = evaluation.evaluate(y, np.array([0.1, 0.2, 0.8, 0.7, 0.3]), cutoff=0.5)
    assert ev["roc_auc"] == 1.0 and ev["true_positives"] == 2 and ev["calibration"]["table"]
    assert evaluation.alerts(ev, auc_floor=0.75) == []
    assert evaluation.alerts({"roc_auc": 0.6}, 0.75) == ["AUC 0.6000 is under the floor 0.75"]
    assert evaluation.alerts({"roc_auc": None}, 0.75) == ["AUC undefined: the batch has a single class"]
