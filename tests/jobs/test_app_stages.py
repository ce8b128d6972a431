"""The daily job's own stage adapter (``app.score``) on a tiny inline frame; ``test_app`` runs the stages together
against a lake, and each stage's logic is tested beside its module (tests/ml, tests/jobs/test_batch.py)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from pyspark.testing import assertDataFrameEqual

from loanpipe.core.schema import DataSchema
from loanpipe.jobs import app
from loanpipe.ml import risk
from loanpipe.ml.bundle import ModelBundle

pytestmark = pytest.mark.spark


def test_score_is_the_models_pd_with_decision_version_and_time(spark, tiny_frame, tiny_schema: DataSchema, tiny_bundle: ModelBundle) -> None:  # noqa: ANN001
    from loanpipe.core.config import Config

    cfg = Config().replace(model={"cutoff": 0.3}, risk={"reason_codes": 0})
    batch = tiny_frame([(1, 2.0, 1.0, 0, 0), (2, -2.0, None, 0, 0), (3, None, 0.5, 9, 1)])
    at = dt.datetime(2026, 11, 1, 6, 0, tzinfo=dt.UTC)
    got = app.score(batch, tiny_bundle, tiny_schema, cfg, at)
    # the same model in pandas, with the spec's imputation (f1 missing -> 0.0; f2 missing stays NaN)
    x = pd.DataFrame({"f1": [2.0, -2.0, 0.0], "f2": [1.0, np.nan, 0.5]})
    p = tiny_bundle.predictor().predict_proba(x)[:, 1]
    grades = risk.grade_of(p, cfg.risk.master_scale)  # reasons off: the grade is the one column added
    expected = spark.createDataFrame(
        [(i, float(pi), int(g), int(pi >= 0.3), tiny_bundle.version, at.replace(tzinfo=None))
         for i, pi, g in zip([1, 2, 3], p, grades)],
        "id long, p_default double, grade int, decision int, model_version string, scored_at timestamp")
    assertDataFrameEqual(got, expected, rtol=1e-9)
    assert "default" not in got.columns and "loss" not in got.columns  # the label is never read
