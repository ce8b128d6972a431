"""When the challenger chooses its features again, its validation rows and the promotion decision
(``loanpipe.ml.promotion``)."""

from __future__ import annotations

import datetime as dt

import numpy as np

from loanpipe.core.config import Config
from loanpipe.core.schema import DataSchema
from loanpipe.ml import promotion
from loanpipe.ml.bundle import ModelBundle
from loanpipe.ml.features import FeatureSpec


def test_decide_promotes_only_a_significantly_better_challenger() -> None:
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 2000)
    good = y + rng.normal(scale=0.5, size=2000)
    weak = y + rng.normal(scale=2.0, size=2000)
    promoted = promotion.decide(y, weak, good, significance=0.05)
    assert promoted["promoted"] is True and promoted["challenger_auc"] > promoted["champion_auc"]
    assert promoted["reason"].startswith("challenger AUC") and promoted["validation_rows"] == 2000
    kept = promotion.decide(y, good, weak, significance=0.05)
    assert kept["promoted"] is False and kept["reason"].startswith("kept the champion")
    same = promotion.decide(y, good, good, significance=0.05)
    assert same["promoted"] is False
    # higher AUC by chance is not enough: the one-sided p must be under the significance
    rng = np.random.default_rng(0)
    y2 = rng.integers(0, 2, 300)
    champion = y2 + rng.normal(scale=1.0, size=300)
    lucky = champion + rng.normal(scale=0.1, size=300)
    chance = promotion.decide(y2, champion, lucky, significance=0.05)
    assert chance["auc_difference"] > 0 and chance["p_value"] > 0.05 and chance["promoted"] is False
    single = promotion.decide(np.zeros(5, int), np.arange(5.0), np.arange(5.0), significance=0.05)
    assert single == {"validation_rows": 5, "significance": 0.05, "test": "DeLong (paired)", "promoted": False,
                      "reason": "not compared: the validation rows hold a single class"}


def champion(discovered_on: str | None) -> ModelBundle:
    spec = FeatureSpec([], [], [], [], {}, {})
    meta = {"run_date": "2026-11-01", **({"discovered_on": discovered_on} if discovered_on else {})}
    return ModelBundle("m", spec, b"", meta)


def drift(psi: float) -> dict:
    return {"max_feature_psi": {"feature": "f7", "psi": psi}}


def test_cadence_and_drift_trigger_a_new_candidate_comparison(base_config: Config) -> None:
    cfg = base_config.replace(model={"rediscover_every_days": 7, "rediscover_psi": 0.25})
    day = dt.date(2026, 11, 5)
    assert promotion.rediscover_reason(cfg, champion("2026-11-01"), day, drift(0.1)) is None
    assert "7 days ago" in promotion.rediscover_reason(cfg, champion("2026-11-01"), dt.date(2026, 11, 8), drift(0.1))
    reason = promotion.rediscover_reason(cfg, champion("2026-11-01"), day, drift(0.31))
    assert reason is not None and "f7 drifted: PSI 0.31 > model.rediscover_psi = 0.25" in reason
    # a PSI measured on a few rows is mostly sampling noise (about 9/rows for 10 bins): reported, not acted on
    small = base_config.replace(model={"rediscover_every_days": 7, "rediscover_psi": 0.25,
                                       "rediscover_psi_min_rows": 500})
    assert promotion.rediscover_reason(small, champion("2026-11-01"), day, {**drift(0.58), "rows": 30}) is None
    assert "PSI 0.58" in promotion.rediscover_reason(small, champion("2026-11-01"), day, {**drift(0.58), "rows": 500})
    assert "7 days ago" in promotion.rediscover_reason(small, champion("2026-11-01"), dt.date(2026, 11, 8),
                                                     {**drift(0.58), "rows": 30})  # the cadence still holds
    # models made before discovered_on existed count from their run date
    assert promotion.rediscover_reason(cfg, champion(None), dt.date(2026, 11, 8), {}) is not None
