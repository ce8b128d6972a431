"""When a challenger chooses its features again (training.rediscover_reason): cadence and drift."""

from __future__ import annotations

import datetime as dt

from loanpipe.ml import training
from loanpipe.core.config import Config
from loanpipe.ml.features import FeatureSpec
from loanpipe.ml.model import ModelBundle


def champion(discovered_on: str | None) -> ModelBundle:
    spec = FeatureSpec([], [], [], [], {}, {})
    meta = {"run_date": "2026-11-01", **({"discovered_on": discovered_on} if discovered_on else {})}
    return ModelBundle("m", spec, b"", meta)


def drift(psi: float) -> dict:
    return {"max_feature_psi": {"feature": "f7", "psi": psi}}


def test_cadence_and_drift_trigger_a_new_candidate_comparison(base_config: Config) -> None:
    cfg = base_config.replace(model={"rediscover_every_days": 7, "rediscover_psi": 0.25})
    day = dt.date(2026, 11, 5)
    assert training.rediscover_reason(cfg, champion("2026-11-01"), day, drift(0.1)) is None
    assert "7 days ago" in training.rediscover_reason(cfg, champion("2026-11-01"), dt.date(2026, 11, 8), drift(0.1))
    reason = training.rediscover_reason(cfg, champion("2026-11-01"), day, drift(0.31))
    assert reason is not None and "f7 drifted: PSI 0.31 > model.rediscover_psi = 0.25" in reason
    # models made before discovered_on existed count from their run date
    assert training.rediscover_reason(cfg, champion(None), dt.date(2026, 11, 8), {}) is not None
