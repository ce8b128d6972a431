"""When the challenger chooses its features again, its validation rows and the promotion decision
(``loanpipe.ml.promotion``)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from loanpipe.core.config import Config
from loanpipe.core.schema import DataSchema
from loanpipe.core.sections import PromotionConfig
from loanpipe.ml import policy, promotion
from loanpipe.ml.bundle import ModelBundle
from loanpipe.ml.features import FeatureSpec


def test_decide_promotes_only_a_challenger_that_passes_every_rule(proc_table) -> None:  # noqa: ANN001 - a fixture
    rules = PromotionConfig(min_auc_gain=0.005, alpha=0.01, min_rows=100, min_defaults=10, cooldown_dates=14)
    enough = policy.evidence_rules(rules, 2000, 900, None)
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 2000)
    good = y + rng.normal(scale=0.5, size=2000)
    weak = y + rng.normal(scale=2.0, size=2000)
    promoted = promotion.decide(y, weak, good, rules, enough)
    assert promoted["promoted"] is True and promoted["challenger_auc"] > promoted["champion_auc"]
    assert "every rule passed" in promoted["reason"] and promoted["validation_rows"] == 2000
    assert [r["passed"] for r in promoted["policy"]] == [True] * 5
    assert [r["key"] for r in promoted["policy"]] == [f"model.promotion.{k}" for k in (
        "min_rows", "min_defaults", "cooldown_dates", "min_auc_gain", "alpha")]
    kept = promotion.decide(y, good, weak, rules, enough)
    assert kept["promoted"] is False and "kept the champion: AUC gain -" in kept["reason"]
    assert promotion.decide(y, good, good, rules, enough)["promoted"] is False
    # the same better challenger, three run dates after the serving model changed: the cool-down keeps it out
    cooling = promotion.decide(y, weak, good, rules, policy.evidence_rules(rules, 2000, 900, 3))
    assert cooling["promoted"] is False and "run dates since the serving model changed 3 (needs >= 14" in cooling["reason"]
    # a higher AUC by chance is not enough: the one-sided p must be under alpha ...
    rng = np.random.default_rng(0)
    y2 = rng.integers(0, 2, 300)
    champion = y2 + rng.normal(scale=1.0, size=300)
    lucky = champion + rng.normal(scale=0.1, size=300)
    chance = promotion.decide(y2, champion, lucky, rules, enough)
    assert chance["auc_difference"] > 0 and chance["p_value"] > 0.01 and chance["promoted"] is False
    # ... and a gain under min_auc_gain is not enough either, however significant against no gain
    tiny = PromotionConfig(min_auc_gain=0.5, alpha=0.01)
    small = promotion.decide(y, weak, good, tiny, enough)
    assert small["p_value_two_sided"] < 0.01 and small["promoted"] is False and "AUC gain" in small["reason"]
    # an observed gain over the minimum is tested against the minimum: 0.094 over 0.05 on 20 rows is not shown
    margin = PromotionConfig(min_auc_gain=0.05, alpha=0.01)
    over = promotion.decide(*proc_table, margin, policy.evidence_rules(margin, 200, 30, None))
    assert over["auc_difference"] > 0.05 and over["p_value"] == pytest.approx(0.2019, abs=1e-4)
    assert [r["passed"] for r in over["policy"]][3:] == [True, False] and over["promoted"] is False
    single = promotion.decide(np.zeros(5, int), np.arange(5.0), np.arange(5.0), rules, enough)
    assert single["promoted"] is False and single["reason"] == "not compared: the validation rows hold a single class"
    assert [r["passed"] for r in single["policy"]] == [True, True, True, None, None]


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
