"""A model card per model version (``artifacts/models/<v>/model_card.md``), written with the model and rendered
into the promotion email: what the model was trained on, its features and what they are, its parameters, how
its features were chosen (the CV candidate table), how it validated, its PD calibration, its known limitations
and the code that built it. Markdown built from the bundle's spec and metadata only, so it is reproducible."""

from __future__ import annotations

from typing import Any

from loanpipe.ml import risk
from loanpipe.ml.bundle import ModelBundle

LIMITATIONS = [
    "Trained and validated on the lake's own history: a population the lake has not seen (a new product, "
    "channel or region) is outside what these figures support.",
    "A PD is calibrated to the default rate of the training data; a shift in the portfolio's default rate shows "
    "as calibration drift in the daily report (Jeffreys test per grade) before it shows in AUC.",
    "Reason codes are SHAP contributions to the model's raw score: they say which inputs pushed this score up, "
    "not why the applicant would default; anonymised features (f1..f778) carry no business meaning.",
    "Engineered pair differences a - beta*b depend on both columns: a change in either one's definition "
    "breaks the pair even when each column's own PSI looks stable.",
]


def _num(value: Any, digits: int = 4) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(_num(v) for v in row) + " |" for row in rows]
    return out


def feature_rows(bundle: ModelBundle) -> list[list[Any]]:
    """Each model input: its name, what it is (raw, engineered pair, category) and how gaps are filled."""
    spec = bundle.spec
    pairs = {p["name"]: p for p in spec.pairs}
    rows = []
    for f, label in zip(spec.features, risk.feature_labels(spec.features, spec.pairs)):
        pair = pairs.get(f)
        if pair is not None:  # named as its reason codes name it
            rows.append([f, f"engineered pair: {label} (alone: AUC {_num(pair.get('auc'), 3)})", "members imputed"])
        elif f in spec.categorical:
            rows.append([f, "category", f"missing -> level {spec.imputation.get(f)!r}"])
        else:
            fill = spec.imputation.get(f)
            rows.append([f, f"raw ({spec.column_kinds.get(f, 'numeric')})",
                         "left to CatBoost" if fill is None else f"missing -> {fill:.6g}"])
    return rows


def render(bundle: ModelBundle) -> str:
    """The card as Markdown."""
    meta, spec = bundle.metadata, bundle.spec
    data = meta.get("training_data") or {}
    disc = meta.get("discovery") or {}
    cal = meta.get("calibration") or disc.get("calibration") or {}
    lines = [f"# Model card: {bundle.version}", "",
             f"- **Role**: {meta.get('role')} (run date {meta.get('run_date')}); engine {meta.get('engine')}",
             f"- **Code version**: {meta.get('code_version')}",
             f"- **Features chosen on**: {meta.get('discovered_on')}"
             + (f" (chosen again: {meta['rediscovered']})" if meta.get("rediscovered") else ""), "",
             "## Training data", "",
             f"- Trained on: {meta.get('trained_on')}; period: up to and including run date {meta.get('run_date')}",
             f"- Fingerprint: {data.get('rows')} rows, {data.get('defaults')} defaults"
             + (f" ({data['defaults'] / data['rows']:.2%})" if data.get("rows") else "")
             + f", id hash {data.get('id_hash')}",
             f"- In-sample AUC of the serving fit: {_num(meta.get('train_in_sample_auc'))}", "",
             f"## Features ({len(spec.features)})", ""]
    lines += _table(["feature", "what it is", "missing values"], feature_rows(bundle))
    params = meta.get("params") or {}
    lines += ["", "## Parameters", "", ", ".join(f"{k} = {v}" for k, v in sorted(params.items())) or "n/a", ""]
    if disc.get("candidates"):
        chosen = (disc.get("decision") or {}).get("chosen")
        lines += ["## How the features were chosen (K-fold CV on a sample)", ""]
        lines += _table(["candidate", "features", "mean CV AUC", "sd"],
                        [[r["candidate"] + (" (chosen)" if r["candidate"] == chosen else ""), r["n_features"],
                          r["mean_auc"], r["sd_auc"]] for r in disc["candidates"]])
        lines += ["", f"Rule: {(disc.get('decision') or {}).get('rule', 'n/a')}", ""]
    else:
        lines += ["## How the features were chosen", "",
                  "The champion's features, kept (no candidate comparison on this date).", ""]
    lines += validation_lines(bundle)
    lines += ["", "## PD calibration", ""]
    if cal.get("status") == "pending":
        lines += ["Pending: a challenger gets its calibrator when it is promoted."]
    else:
        lines += [f"- Method: {spec.calibration.get('method', 'none') if spec.calibration else 'none'}"
                  + (f" ({cal['reason']})" if cal.get("reason") else ""),
                  f"- CV Brier before -> after: {_num((cal.get('before') or {}).get('brier'))} -> "
                  f"{_num((cal.get('after') or {}).get('brier'))}"]
    lines += ["", "## Known limitations", "", *[f"- {item}" for item in LIMITATIONS]]
    if meta.get("engine_note"):
        lines.append(f"- {meta['engine_note']}")
    return "\n".join(lines) + "\n"


def validation_lines(bundle: ModelBundle) -> list[str]:
    """The card's validation section: the promotion's comparison and policy, or the discovery's CV AUC; and the
    initial validation figures the reports' ECB tests compare with."""
    meta = bundle.metadata
    disc = meta.get("discovery") or {}
    promotion = meta.get("promotion")
    lines = ["## Validation", ""]
    if promotion:
        lines += [f"- Against champion {promotion.get('champion')} on {promotion.get('validation_rows')} held-out "
                  f"rows of the {meta.get('run_date')} batch: AUC {_num(promotion.get('challenger_auc'))} vs "
                  f"{_num(promotion.get('champion_auc'))}, paired DeLong one-sided p = "
                  f"{_num(promotion.get('p_value'), 4)} (needs < {promotion.get('alpha')})",
                  f"- Decision: {promotion.get('reason')}"]
        if promotion.get("policy"):
            lines += ["", *_table(["promotion rule", "value", "needs", "config key", "passed"],
                                  [[r["rule"], r["value"], r["needs"], r["key"], r["passed"]]
                                   for r in promotion["policy"]])]
    elif disc.get("candidates"):
        best = max(disc["candidates"], key=lambda r: r["mean_auc"])
        lines += [f"- Best mean CV AUC of the candidates: {_num(best['mean_auc'])} (sd {_num(best['sd_auc'])})"]
    else:
        lines += ["- Not validated against a champion yet (a challenger's comparison is in its run's report)."]
    initial = bundle.initial_validation()
    if initial["auc"] is not None or initial["grade_counts"]:
        lines += [f"- Initial validation, what the reports' AUC decline and concentration tests compare with: AUC "
                  f"{_num(initial['auc'])} ({initial['auc_source']}); applications of its training sample by grade "
                  f"(1 = safest): {initial['grade_counts']}"]
    return lines
