"""The promotion policy's rules (loanpipe.ml.policy), each at its boundary, and the cool-down's count of run dates
from the ledger."""

from __future__ import annotations

import pytest

from loanpipe.core.sections import ConfigError, PromotionConfig
from loanpipe.ml import policy

RULES = PromotionConfig(min_auc_gain=0.005, alpha=0.01, min_rows=200, min_defaults=30, cooldown_dates=14)


def passed(rules: list[policy.Rule]) -> list[bool | None]:
    return [r.passed for r in rules]


def test_each_evidence_rule_at_its_boundary() -> None:
    assert passed(policy.evidence_rules(RULES, 200, 30, 14)) == [True, True, True]
    assert passed(policy.evidence_rules(RULES, 199, 30, 14)) == [False, True, True]
    assert passed(policy.evidence_rules(RULES, 200, 29, 14)) == [True, False, True]
    assert passed(policy.evidence_rules(RULES, 200, 30, 13)) == [True, True, False]
    assert passed(policy.evidence_rules(RULES, 200, 30, None)) == [True, True, True]  # never changed: no cool-down


def test_each_model_rule_at_its_boundary() -> None:
    assert passed(policy.model_rules(RULES, 0.005, 0.0099)) == [True, True]
    assert passed(policy.model_rules(RULES, 0.0049, 0.0099)) == [False, True]
    assert passed(policy.model_rules(RULES, 0.005, 0.01)) == [True, False]  # p must be strictly under alpha
    assert passed(policy.model_rules(RULES, None, None)) == [None, None]  # not compared: not passed


def test_the_verdict_names_every_failed_rule_with_its_value_threshold_and_key() -> None:
    rules = policy.evidence_rules(RULES, 150, 12, 20) + policy.model_rules(RULES, 0.02, 0.2)
    ok, why = policy.verdict(rules)
    assert not ok and why == ("kept the champion: comparison rows 150 (needs >= 200, model.promotion.min_rows); "
                              "defaults among them 12 (needs >= 30, model.promotion.min_defaults); one-sided DeLong "
                              "p (gain above the minimum) 0.2 (needs < 0.01, model.promotion.alpha)")
    ok, why = policy.verdict(policy.evidence_rules(RULES, 500, 60, None) + policy.model_rules(RULES, 0.02, 0.001))
    assert ok and why.startswith("every rule passed: comparison rows 500") and "none yet" in why
    assert policy.failed(policy.model_rules(RULES, None, None)) != []  # a rule not evaluated does not pass
    assert rules[0].row() == {"rule": "comparison rows", "key": "model.promotion.min_rows", "value": 150,
                              "needs": ">= 200", "passed": False}


def test_the_cool_down_counts_run_dates_since_the_serving_model_last_changed() -> None:
    ledger = {"2026-11-01": {"champion": "b", "serving": "b", "bootstrap": True},   # a bootstrap is no change
              "2026-11-03": {"champion": "b", "serving": "c1"},                      # a promotion
              "2026-11-06": {"champion": "c1", "serving": "c1"}}                     # a record that changed nothing
    dates = ["2026-11-01", "2026-11-02", "2026-11-03", "2026-11-04", "2026-11-06", "2026-11-09"]
    assert policy.dates_since_change(ledger, dates, "2026-11-03") == (None, None)  # only records before D count
    assert policy.dates_since_change(ledger, dates, "2026-11-09") == ("2026-11-03", 3)  # 04, 06 and 09 itself
    assert policy.dates_since_change(ledger, dates, "2026-11-10") == ("2026-11-03", 4)  # D counts before its batch
    assert policy.dates_since_change({"2026-11-01": ledger["2026-11-01"]}, dates, "2026-11-09") == (None, None)


@pytest.mark.parametrize("bad", [{"alpha": 0}, {"alpha": 1.5}, {"min_auc_gain": -0.01}, {"cooldown_dates": -1},
                                 {"min_rows": -5}])
def test_a_policy_out_of_range_is_refused(bad: dict) -> None:
    with pytest.raises(ConfigError, match=f"model.promotion.{next(iter(bad))}"):
        PromotionConfig(**bad)
