"""The promotion policy (config ``model.promotion``): the rules a challenger must pass to replace the champion.

Every rule is reported with its value, its threshold and its config key, passed or not, in the decision that the
report, the ledger and the model card show:

* evidence: at least ``min_rows`` matured comparison rows and ``min_defaults`` defaults among them;
* stability: at least ``cooldown_dates`` run dates since the serving model last changed (a promotion, or a switch
  the risk team recorded); never changed counts as passed;
* gain: the challenger's AUC at least ``min_auc_gain`` above the champion's on the same rows;
* significance: the paired DeLong test's one-sided p under ``alpha``, tested against the gain ``min_auc_gain``
  (H0: the gain is at most that), so an observed gain just over the minimum by chance does not pass.

The first two are known before a challenger is trained: when either fails, none is (its fit would decide
nothing). The old rule, kept for the benchmark (``bench/promotion.py``), was significance alone at 5%.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Any

from loanpipe.core.sections import PromotionConfig

OPS = {">=": operator.ge, "<": operator.lt}
KEY = "model.promotion."


@dataclass(frozen=True)
class Rule:
    """One rule of the policy: ``value op threshold``; a value of None was not measured (a rule that could not be
    evaluated yet, or the cool-down of a model that never changed, which ``passes_without_value`` says)."""

    name: str
    key: str
    value: float | int | None
    op: str
    threshold: float | int
    passes_without_value: bool = False

    @property
    def passed(self) -> bool | None:
        if self.value is None:
            return True if self.passes_without_value else None
        return bool(OPS[self.op](self.value, self.threshold))

    def row(self) -> dict[str, Any]:
        return {"rule": self.name, "key": KEY + self.key, "value": self.value, "needs": f"{self.op} {self.threshold}",
                "passed": self.passed}

    def text(self) -> str:
        value = "none yet" if self.value is None else (f"{self.value:.4g}" if isinstance(self.value, float)
                                                       else str(self.value))
        return f"{self.name} {value} (needs {self.op} {self.threshold}, {KEY}{self.key})"


def evidence_rules(policy: PromotionConfig, rows: int, defaults: int, dates_since_change: int | None) -> list[Rule]:
    """The rules known before a challenger is trained: the comparison rows, their defaults, the cool-down."""
    return [Rule("comparison rows", "min_rows", rows, ">=", policy.min_rows),
            Rule("defaults among them", "min_defaults", defaults, ">=", policy.min_defaults),
            Rule("run dates since the serving model changed", "cooldown_dates", dates_since_change, ">=",
                 policy.cooldown_dates, passes_without_value=True)]


def model_rules(policy: PromotionConfig, auc_gain: float | None, p_value: float | None) -> list[Rule]:
    """The rules on the comparison itself (None: not compared)."""
    return [Rule("AUC gain", "min_auc_gain", auc_gain, ">=", policy.min_auc_gain),
            Rule("one-sided DeLong p (gain above the minimum)", "alpha", p_value, "<", policy.alpha)]


def failed(rules: list[Rule]) -> list[Rule]:
    """The rules that did not pass (a rule not evaluated has not passed)."""
    return [r for r in rules if r.passed is not True]


def verdict(rules: list[Rule]) -> tuple[bool, str]:
    """(whether every rule passed, why in one line: the failed rules, or all of them when promoted)."""
    missed = failed(rules)
    if missed:
        return False, "kept the champion: " + "; ".join(r.text() for r in missed)
    return True, "every rule passed: " + "; ".join(r.text() for r in rules)


def dates_since_change(ledger: dict[str, dict[str, Any]], run_dates: list[str], run_date: str) -> tuple[str | None, int | None]:
    """(the latest date before ``run_date`` whose ledger record changed the serving model, the run dates after it
    up to and including ``run_date``); (None, None) when it never changed. A bootstrap is not a change."""
    changes = [d for d, r in ledger.items() if d < run_date and r.get("serving") != r.get("champion")]
    if not changes:
        return None, None
    last = max(changes)
    return last, sum(1 for d in set(run_dates) | {run_date} if last < d <= run_date)
