"""How often each promotion rule changes the serving model, on synthetic streams of run dates.

* (a) stationary: 60 run dates whose applications all follow the training data's law;
* (b) a change: the same, but from date 20 on one strong feature's effect is reversed, so the serving model gets
  worse and a challenger that learnt the new law is really better.

A simulation of the daily decision in memory, not the Spark job (60 dates of that take hours): each date's
applications arrive, their outcomes mature ``LAG`` dates later; the matured rows no serving model trained on give
the comparison rows as the daily job chooses them (``loanpipe.ml.backtest.newest_cohorts``); a challenger is
CatBoost at the project's quick settings on train plus the other matured rows; the decision is
``loanpipe.ml.promotion.decide`` under each rule, with the evidence rules of ``loanpipe.ml.policy``:

* old: the paired DeLong test alone at 5% (with the same minimum rows and defaults) on the newest half of the
  unseen cohorts, as the job promoted before;
* new: ``model.promotion``'s defaults (a gain of 0.005, alpha 0.01, the minimum evidence, a 14-date cool-down, the
  comparison window capped at the newest 3 application dates).

A proposal that the new rule makes is taken as approved at once (it serves from the next date), so both rules are
counted the same way. Reported per stream and rule: the proposals and their dates, in (b) the dates from the change
to the first proposal, and the serving model's mean AUC on the applications of the dates after the change.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from bench import common

DATES, CHANGE, LAG, ROWS, TRAIN_ROWS, FEATURES, SEED = 60, 20, 2, 1000, 20000, 12, 2026
ITERATIONS = 100


def law(rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """The true coefficients (a few strong, the rest weak) and the intercept of a ~9% default rate."""
    beta = np.concatenate([[1.2, -0.9, 0.7], rng.normal(scale=0.15, size=FEATURES - 3)])
    return beta, -2.9


def draw(rng: np.random.Generator, n: int, beta: np.ndarray, intercept: float) -> tuple[np.ndarray, np.ndarray]:
    x = rng.normal(size=(n, FEATURES))
    p = 1 / (1 + np.exp(-(intercept + x @ beta)))
    return x, (rng.random(n) < p).astype(int)


def stream(changed: bool, seed: int = SEED) -> tuple[tuple[np.ndarray, np.ndarray], list[tuple[np.ndarray, np.ndarray]]]:
    """(train, the applications of each date with their outcomes)."""
    rng = np.random.default_rng(seed)
    beta, intercept = law(rng)
    flipped = beta.copy()
    flipped[0] = -beta[0]
    train = draw(rng, TRAIN_ROWS, beta, intercept)
    dates = [draw(rng, ROWS, flipped if changed and d >= CHANGE else beta, intercept) for d in range(DATES)]
    return train, dates


def fit(x: np.ndarray, y: np.ndarray) -> Any:
    from catboost import CatBoostClassifier

    from loanpipe.ml import engine

    model = CatBoostClassifier(**engine.catboost_params(ITERATIONS, 6, None, 7, 2, None), verbose=0,
                               allow_writing_files=False)
    return model.fit(x, y)


def simulate(rules: Any, train: tuple[np.ndarray, np.ndarray], dates: list[tuple[np.ndarray, np.ndarray]],
             fits: dict[tuple[int, int], Any]) -> dict[str, Any]:
    """The serving model date by date under ``rules`` (a PromotionConfig); ``fits`` caches the challengers (the
    same date and the same unseen rows give the same fit under either rule)."""
    from sklearn.metrics import roc_auc_score

    from loanpipe.ml import backtest, policy, promotion

    champion, through = fits.setdefault((-1, -1), fit(*train)), -1  # trained on train/ only
    ledger: dict[str, dict[str, Any]] = {}
    proposals, serving_auc = [], []
    for d in range(DATES):
        x_d, y_d = dates[d]
        serving_auc.append(float(roc_auc_score(y_d, champion.predict_proba(x_d)[:, 1])))
        matured = [c for c in range(d - LAG + 1)]  # cohorts whose outcomes arrived by d
        unseen = [c for c in matured if c > through]
        if not unseen:
            continue
        held = [int(c) for c in backtest.newest_cohorts({f"{c:03d}": ROWS for c in unseen}, 0.5,
                                                        rules.window_dates)]
        y_held = np.concatenate([dates[c][1] for c in held])
        last, since = policy.dates_since_change(ledger, [f"{c:03d}" for c in range(d + 1)], f"{d:03d}")
        known = policy.evidence_rules(rules, len(y_held), int(y_held.sum()), since)
        if policy.failed(known):
            continue
        key = (d, through)
        if key not in fits:
            rest = [c for c in matured if c not in held]
            fits[key] = fit(np.vstack([train[0], *[dates[c][0] for c in rest]]),
                            np.concatenate([train[1], *[dates[c][1] for c in rest]]))
        chall = fits[key]
        x_held = np.vstack([dates[c][0] for c in held])
        decision = promotion.decide(y_held, champion.predict_proba(x_held)[:, 1], chall.predict_proba(x_held)[:, 1],
                                    rules, known)
        if decision["promoted"]:
            proposals.append(d)
            ledger[f"{d:03d}"] = {"champion": "old", "serving": "new"}
            champion, through = chall, d
    return {"proposals": len(proposals), "dates": proposals, "serving_auc": serving_auc}


def run(info: dict[str, Any]) -> dict[str, Any]:
    from loanpipe.core.sections import PromotionConfig

    new = PromotionConfig()
    old = dataclasses.replace(new, min_auc_gain=0.0, alpha=0.05, cooldown_dates=0, window_dates=0)
    out: dict[str, Any] = {"dates": DATES, "change_at": CHANGE, "lag": LAG, "rows_per_date": ROWS,
                           "train_rows": TRAIN_ROWS, "features": FEATURES, "iterations": ITERATIONS,
                           "rules": {"old": dataclasses.asdict(old), "new": dataclasses.asdict(new)}, "results": []}
    rows = []
    for name, changed in (("(a) stationary", False), ("(b) change at date 20", True)):
        train, dates = stream(changed)
        fits: dict[tuple[int, int], Any] = {}
        for rule_name, rules in (("old", old), ("new", new)):
            result = simulate(rules, train, dates, fits)
            after = [d for d in result["dates"] if d >= CHANGE]
            first = (after[0] - CHANGE) if changed and after else None
            auc_after = float(np.mean(result["serving_auc"][CHANGE:]))
            out["results"].append({"stream": name, "rule": rule_name, **result,
                                   "dates_to_first_after_change": first, "mean_serving_auc_after_change": auc_after})
            rows.append([name, rule_name, result["proposals"], ", ".join(map(str, result["dates"])) or "-",
                         "-" if not changed else (first if first is not None else "none"), round(auc_after, 4)])
    print(common.header(f"Promotion rules over {DATES} run dates ({ROWS:,} applications a date, outcomes {LAG} dates "
                        f"later; old: DeLong alone at 5%; new: model.promotion's defaults)", info))
    print(common.table(["stream", "rule", "proposals", "on dates", "dates from the change to the first",
                        "serving AUC after date 20"], rows))
    common.save("promotion", {"machine": info, **out})
    return out
