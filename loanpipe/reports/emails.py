"""The reports' HTML, rendered with Jinja2 from the run summaries (templates in ``templates/``): the emails
Airflow sends, and the daily job's ``artifacts/runs/D/report.html`` (the same report, rendered on the Spark node,
so this package ships with the jobs).

Every value is escaped (autoescape); numbers go through the ``fmt`` filter (4 decimals, ``n/a`` for missing).
Each function returns ``(subject, html)``; the subject is plain text.
"""

from __future__ import annotations

from typing import Any

import jinja2

_ENV = jinja2.Environment(loader=jinja2.PackageLoader("loanpipe.reports", "templates"),
                          autoescape=True, trim_blocks=True, lstrip_blocks=True)


def fmt(value: Any, digits: int = 4) -> str:
    if value is None or isinstance(value, jinja2.Undefined):
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _cohort_row(r: dict[str, Any]) -> list[Any]:
    return [r["application_date"], r["rows"], r["defaults"], r["default_rate"], r["mean_pd"], r["roc_auc"]]


def _calibration_row(r: dict[str, Any]) -> list[Any]:
    return [r["bin"], r["n"], r["defaults"], r["observed_rate"], r["mean_pd"], r["jeffreys_p"]]


def _candidate_row(r: dict[str, Any], chosen: str | None) -> list[Any]:
    return [r["candidate"] + (" (chosen)" if r["candidate"] == chosen else ""), r["n_features"], r["mean_auc"],
            r["sd_auc"], ", ".join(f"{a:.3f}" for a in r["fold_aucs"]), r["seconds"]]


def _counts(counts: dict[str, int] | None) -> str:
    """``{"empty id": 2}`` as "empty id: 2"; nothing as "none"."""
    return ", ".join(f"{k}: {v}" for k, v in (counts or {}).items()) or "none"


def _rule_row(r: dict[str, Any]) -> list[Any]:
    return [r["rule"], r["value"], r["needs"], r["key"], {True: "yes", False: "no"}.get(r["passed"], "not evaluated")]


def _pct(value: Any) -> str:
    return "n/a" if value is None else f"{value:.2%}"


def _lift_row(r: dict[str, Any]) -> list[Any]:
    return [r["decile"], r["n"], r["defaults"], _pct(r["default_rate"]), f"{r['min_pd']:.4f}-{r['max_pd']:.4f}",
            "n/a" if r["lift"] is None else f"{r['lift']:.2f}", _pct(r["cumulative_share_of_defaults"])]


def _grade_row(r: dict[str, Any]) -> list[Any]:
    return [r["grade"], f"{r['pd_from']:.2%}-{r['pd_to']:.2%}", r["n"], _pct(r["share"]), r["defaults"],
            _pct(r["observed_rate"]), _pct(r["mean_pd"]), {True: "yes", False: "no"}.get(r["in_band"], "n/a"),
            r["jeffreys_p"], r.get("binomial_p")]


def _quality_row(item: tuple[str, int], examples: dict[str, list[dict[str, Any]]]) -> list[Any]:
    reason, rows = item
    return [reason, rows, "; ".join(f"id {e['id']}: {e['detail']}" for e in examples.get(reason, []))]


def _levels_row(item: tuple[str, dict[str, int]]) -> list[Any]:
    column, levels = item
    return [column, ", ".join(f"{level} ({n})" for level, n in levels.items())]


_ENV.filters.update(fmt=fmt, calibration_row=_calibration_row, cohort_row=_cohort_row, candidate_row=_candidate_row,
                    quality_row=_quality_row, levels_row=_levels_row, lift_row=_lift_row, grade_row=_grade_row,
                    rule_row=_rule_row, counts=_counts)


def _render(template: str, **values: Any) -> str:
    return _ENV.get_template(template).render(**values)


def data_gen_report(summary: dict[str, Any]) -> tuple[str, str]:
    if summary.get("source") == "inbox":
        return landing_report(summary)
    rep = summary["repeated_rows"]
    leak = rep["within_batch"] + rep["in_other_batches"] + rep["in_train_sup"]
    status = "ALERT" if leak else "OK"
    subject = (f"[loanpipe] {status} new data {summary['run_date']}: {summary['rows']} rows, "
               f"outcomes on {summary['outcomes']['arrival_date']}")
    return subject, _render("data_gen.html.j2", s=summary, rep=rep, status=status)


def landing_report(summary: dict[str, Any]) -> tuple[str, str]:
    """The new-data report in inbox mode: what landed from which files, what was set aside, and the outcomes."""
    apps, outcomes = summary["applications"], summary.get("outcomes")
    status = "ALERT" if apps["quarantined"] or (outcomes or {}).get("quarantined") else "OK"
    subject = (f"[loanpipe] {status} new data {summary['run_date']}: {apps['landed']} applications from "
               f"{len(apps['files'])} file(s)" + (f", {apps['quarantined']} quarantined" if apps["quarantined"] else "")
               + (f", {outcomes['landed']} outcomes" if outcomes else ""))
    return subject, _render("landing.html.j2", s=summary, apps=apps, outcomes=outcomes, status=status)


def app_report(summary: dict[str, Any], roc_cid: str | None = "roc.png",
               images: dict[str, str] | None = None) -> tuple[str, str]:
    """The scoring run's report. Images: ``images`` ({"roc": src, "trend": src}, the run folder's page), or
    for the email inline attachments by Content-ID: the ROC curve as ``roc_cid`` and the trend chart as
    ``trend.png`` when the run has one."""
    ev, ch, dr = summary["evaluation"], summary["challenger"], summary["drift"]
    if images is None:
        images = {**({"roc": f"cid:{roc_cid}"} if roc_cid else {}),
                  **({"trend": "cid:trend.png"} if summary["artifacts"].get("trend") else {})}
    backtested = (f"backtest AUC {fmt(ev.get('roc_auc'))} on {ev['rows']} matured" if ev.get("rows")
                  else "no matured cohort")
    subject = (f"[loanpipe] {summary['status']} scoring {summary['run_date']}: {backtested}, "
               f"{'challenger promoted' if ch.get('promoted') else 'champion kept'}")
    set_aside = (summary.get("quality") or {}).get("quarantined")
    if set_aside:
        subject += f", {set_aside} row(s) quarantined"
    top_drift = sorted(dr["features"].items(), key=lambda kv: -kv[1]["psi"])[:8]
    if ch.get("promoted") and (summary.get("risk") or {}).get("migration"):
        subject += ", grade migration inside"
    return subject, _render("app.html.j2", s=summary, ev=ev, ch=ch, dr=dr, top_drift=top_drift, images=images,
                            artifacts_dir=summary["artifacts"].get("metrics", "").rsplit("/", 1)[0])


def report_page(summary: dict[str, Any], files: dict[str, Any]) -> bytes:
    """The daily run's report as the email shows it, as a page of the run folder (``files``: that folder's
    contents, whose images it links to)."""
    import html

    images = {key: name for key, name in (("roc", "roc.png"), ("trend", "trend.png")) if name in files}
    subject, body = app_report(summary, images=images)
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(subject)}</title></head>"
            f"<body>{body}</body></html>").encode()


def data_late_report(run_date: str, deadline: str, inbox: str, scores_deadline: str, run_id: str,
                     state: str) -> tuple[str, str]:
    subject = f"[loanpipe] LATE data {run_date}: no applications landed by {deadline}"
    return subject, _render("data_late.html.j2", run_date=run_date, deadline=deadline, inbox=inbox,
                            scores_deadline=scores_deadline, run_id=run_id, state=state)


def failure_report(dag_id: str, task_id: str, run_date: str, try_number: int, error: str, log_tail: str) -> tuple[str, str]:
    subject = f"[loanpipe] FAILED {dag_id}.{task_id} for {run_date} (try {try_number})"
    return subject, _render("failure.html.j2", dag_id=dag_id, task_id=task_id, run_date=run_date,
                            try_number=try_number, error=error, log_tail=log_tail)


def deadline_report(run_date: str, deadline: str, deadline_utc: str, holdup: str, run_id: str,
                    state: str) -> tuple[str, str]:
    subject = f"[loanpipe] LATE scores {run_date}: not published by {deadline}"
    return subject, _render("deadline.html.j2", run_date=run_date, deadline=deadline, deadline_utc=deadline_utc,
                            holdup=holdup, run_id=run_id, state=state)
