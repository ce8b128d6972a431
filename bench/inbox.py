"""A real table as production data through the inbox (``python -m bench inbox``), by configuration alone.

The SBA loans sample (150,000 lines) is ingested with ``conf/tables/sba_loans_inbox.yaml``; then, for 6 run
dates, the day's applications (``test/`` rows, id and features only) are dropped into the inbox as a CSV, and the
outcomes of the applications of two dates before (id and ``MIS_Status``, the text target) as another. Each date
runs what ``dag_new_data`` and ``dag_app`` run in inbox mode: ``land day`` (applications, then outcomes, moved to
processed/), then the daily job. The table gives each date's seconds for landing, scoring and the report
(``evaluate``: the label-free figures and the backtest), the whole daily job, and what the backtest and the
challenger saw. Not in the default run (the first date bootstraps the champion on 104,761 loans).
"""

from __future__ import annotations

import datetime as dt
import shutil
import time
from typing import Any

from bench import common

DAYS, LAG, ROWS_PER_DAY = 6, 2, 3000
FIRST = dt.date(2026, 11, 2)


def files_for(test: Any, schema: Any, days: list[dt.date]) -> tuple[dict[dt.date, Any], dict[dt.date, Any]]:
    """Each date's applications (a seeded draw of test/ rows, no outcome) and their outcomes (id, text target)."""
    rows = test.sample(n=DAYS * ROWS_PER_DAY, random_state=11).sort_values(schema.id_column)
    apps, outcomes = {}, {}
    for i, day in enumerate(days):
        part = rows.iloc[i * ROWS_PER_DAY:(i + 1) * ROWS_PER_DAY]
        apps[day] = part[schema.application_columns()]
        outcomes[day] = part[[schema.id_column, schema.target_column]]
    return apps, outcomes


def run(info: dict[str, Any]) -> dict[str, Any]:
    from loanpipe.core import catalog
    from loanpipe.core.config import PROJECT_DIR, load_config
    from loanpipe.core.session import get_spark
    from loanpipe.core.storage import open_lake
    from loanpipe.dev import public_tables
    from loanpipe.jobs import app, land
    from loanpipe.jobs.ingest import run_ingest

    root, inbox = common.WORK / "lake-sba-inbox", common.WORK / "inbox-sba"
    cfg = load_config(PROJECT_DIR / "conf" / "tables" / "sba_loans_inbox.yaml", environ={}).replace(
        storage={"root": str(root)}, batch={"inbox": str(inbox)})
    for folder in (root, inbox):
        shutil.rmtree(folder, ignore_errors=True)
    spark = get_spark(cfg, app_name="bench-inbox")
    run_ingest(cfg, csv_path=str(public_tables.fetch("sba_loans_150k")), spark=spark)
    lake = open_lake(cfg.storage)
    schema = catalog.read_schema(lake)
    days = [FIRST + dt.timedelta(days=i) for i in range(DAYS)]
    apps, outcomes = files_for(spark.read.parquet(catalog.test(lake)).toPandas(), schema, days)
    rows, dates = [], {}
    for i, day in enumerate(days):
        (inbox / "applications").mkdir(parents=True, exist_ok=True)
        apps[day].to_csv(inbox / "applications" / f"applications-{day}.csv", index=False)
        if i >= LAG:
            (inbox / "outcomes").mkdir(parents=True, exist_ok=True)
            outcomes[days[i - LAG]].to_csv(inbox / "outcomes" / f"outcomes-{days[i - LAG]}.csv", index=False)
        t = time.monotonic()
        landed = land.land_day(cfg, lake, day)
        land_s = round(time.monotonic() - t, 1)
        summary = app.run(cfg, lake, spark, day)
        sec, ev, ch = summary["seconds"], summary["evaluation"], summary["challenger"]
        dates[day.isoformat()] = {"land_seconds": land_s, "app_seconds": sec, "landed": landed["rows"],
                                  "outcomes_landed": (landed["outcomes"] or {}).get("landed", 0),
                                  "scored": summary["scores"]["rows"], "backtest": {k: ev.get(k) for k in (
                                      "rows", "roc_auc", "since", "reason")}, "challenger": ch["reason"],
                                  "status": summary["status"]}
        rows.append([day.isoformat(), landed["rows"], (landed["outcomes"] or {}).get("landed", 0), land_s,
                     sec.get("score"), sec.get("evaluate"), sec["total"], ev["rows"], ev.get("roc_auc"),
                     ch["reason"][:60]])
    spark.stop()
    print(common.table(["date", "applications", "outcomes", "land s", "score s", "report s", "app s",
                        "backtest rows", "backtest AUC", "challenger"], rows), flush=True)
    payload = {"machine": info, "table": "sba_loans_150k", "config": "conf/tables/sba_loans_inbox.yaml",
               "rows_per_day": ROWS_PER_DAY, "lag_dates": LAG, "dates": dates}
    common.save("inbox", payload)
    return payload
