"""The daily cycle (data_gen + score + evaluate + retrain + compare + artifacts) at 1x, 4x and 16x the rows,
16x being the Kaggle size (105,471 rows x 769 features).

Each size gets its own lake under var/bench/ (ingested once, kept between runs; batches, scores and models are
reset first, so every bench run starts from the same state). Per size: one bootstrap cycle (the first day: the
champion is discovered and trained) and ``--repeat`` daily cycles (champion exists); figures are medians of the
daily cycles. Each job runs as its own process, exactly as spark-submit would run it, measured by wall time and
the peak RSS of its process tree (Spark's JVM included).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from bench.common import PY, WORK, header, json_tail, median, run_measured, save, table

KAGGLE_ROWS = 105_471
STEPS = ["check", "champion", "score", "evaluate", "train_sup", "challenger", "compare", "calibrate"]


def lake_env(rows: int, extra: dict[str, str] | None = None) -> dict[str, str]:
    return {"LOANPIPE__STORAGE__ROOT": str(WORK / f"lake-{rows}"), "LOANPIPE__SPARK__MASTER": "local[2]",
            "SPARK_LOCAL_IP": "127.0.0.1", **(extra or {})}


def prepare_lake(rows: int) -> dict[str, Any]:
    """Ingest ``rows`` synthetic rows (skipped when that lake is already there); reset everything downstream."""
    from loanpipe.jobs import ingest
    from loanpipe.core.config import load_config
    from loanpipe.core.storage import open_lake

    env = lake_env(rows)
    lake = open_lake(load_config(environ=env).storage)
    ingest.reset_downstream(lake)
    out = run_measured([PY, "-m", "loanpipe.jobs.ingest", "--rows", str(rows)], env)
    summary = json_tail(out["stdout"])
    return {"rows": rows, "train": summary["split"]["train"]["rows"], "test": summary["split"]["test"]["rows"],
            "ingest_seconds": None if "skipped" in summary else out["seconds"],
            "ingest_peak_rss_gib": None if "skipped" in summary else out["peak_rss_gib"]}


BOOTSTRAP_DATE = "2030-01-01"


def ensure_lake(rows: int) -> None:
    """The lake of ``rows`` ingested, once: an existing lake, and the runs it holds, are kept."""
    from loanpipe.core import catalog
    from loanpipe.core.config import load_config
    from loanpipe.core.storage import open_lake

    lake = open_lake(load_config(environ=lake_env(rows)).storage)
    if not lake.has_data(catalog.train(lake)):
        prepare_lake(rows)


def ensure_champion(rows: int) -> None:
    """The lake of ``rows`` with a champion, for the sections that score with one (scoring, reasons): when it has
    none, the lake is prepared and its first day run (the bootstrap, ``BOOTSTRAP_DATE``); reused otherwise."""
    from loanpipe.core.config import load_config
    from loanpipe.core.storage import open_lake
    from loanpipe.ml.model import champion_version

    if champion_version(open_lake(load_config(environ=lake_env(rows)).storage)) is None:
        prepare_lake(rows)
        one_cycle(rows, BOOTSTRAP_DATE)


def one_cycle(rows: int, run_date: str, fraction: float | None = None,
              extra_env: dict[str, str] | None = None) -> dict[str, Any]:
    env = lake_env(rows, extra_env)
    gen = run_measured([PY, "data_gen/data_gen.py", "--run-date", run_date,
                        *(["--fraction", str(fraction)] if fraction else [])], env)
    app = run_measured([PY, "spark/app.py", "--run-date", run_date], env)
    summary = json_tail(app["stdout"])
    return {"run_date": run_date, "batch_rows": json_tail(gen["stdout"])["rows"], "data_gen": gen["seconds"],
            "app": app["seconds"], "total": round(gen["seconds"] + app["seconds"], 2),
            "peak_rss_gib": max(gen["peak_rss_gib"], app["peak_rss_gib"]),
            "steps": {k: summary["seconds"].get(k) for k in STEPS}, "auc": summary["evaluation"]["roc_auc"],
            "oracle_auc": summary["evaluation"].get("oracle_auc"), "train_sup_rows": summary["train_sup"]["rows"],
            "rediscovered": (summary.get("challenger") or {}).get("rediscovered"),
            "promoted": bool((summary.get("challenger") or {}).get("promoted"))}


def growth(daily: list[dict[str, Any]]) -> dict[str, Any]:
    """How the daily cycle grows with history: least-squares seconds per day of total, data_gen and app, and the
    projected change over 30 days as a share of the median (flat: under 10%). Days whose challenger chose its
    features again (every ``model.rediscover_every_days``: a cost of its own, not of history) are left out of the
    fit and listed under ``rediscovery_days``."""
    import numpy as np

    plain = [(i, c) for i, c in enumerate(daily) if not c.get("rediscovered")]
    days = np.array([i for i, _ in plain], dtype=float)
    out: dict[str, Any] = {"days": len(daily), "fitted_days": len(plain),
                           "rediscovery_days": [{"run_date": c["run_date"], "total": c["total"]}
                                                for c in daily if c.get("rediscovered")]}
    for key in ("total", "data_gen", "app"):
        values = np.array([c[key] for _, c in plain], dtype=float)
        slope = float(np.polyfit(days, values, 1)[0]) if len(plain) > 1 else 0.0
        out[key] = {"seconds_per_day": round(slope, 3), "median": round(float(np.median(values)), 2),
                    "change_over_30_days": round(30 * slope / float(np.median(values)), 3)}
    out["flat"] = abs(out["total"]["change_over_30_days"]) < 0.10
    return out


def run(info: dict[str, Any], sizes: list[int], repeat: int, fraction: float | None = None,
        name: str = "cycle", extra_env: dict[str, str] | None = None) -> dict[str, Any]:
    """The cycle section (``fraction``: the batch's share of test/, default the configured 10%; ``extra_env``:
    config overrides for the jobs), saved as bench/results/<name>.json."""
    print(header(f"daily cycle and its scaling (bootstrap + median of {repeat} daily cycles per size"
                 f"{f', batches of {fraction:.2%} of test/' if fraction else ''})", info), flush=True)
    base = dt.date.fromisoformat(BOOTSTRAP_DATE)
    header_of_result = {"machine": info, "repeat": repeat, "fraction": fraction, "config_overrides": extra_env or {}}
    per_size = []
    for rows in sizes:
        lake = prepare_lake(rows)
        cycles = [one_cycle(rows, (base + dt.timedelta(days=i)).isoformat(), fraction, extra_env)
                  for i in range(repeat + 1)]
        daily = cycles[1:]
        per_size.append({
            **lake, "bootstrap": cycles[0], "daily": daily,
            "median": {"data_gen": median([c["data_gen"] for c in daily]), "app": median([c["app"] for c in daily]),
                       "total": median([c["total"] for c in daily]),
                       "steps": {k: median([c["steps"][k] or 0 for c in daily]) for k in STEPS},
                       "batch_rows": daily[0]["batch_rows"]},
            "peak_rss_gib": max(c["peak_rss_gib"] for c in cycles),
        })
        print(f"   {rows:,} rows: bootstrap {cycles[0]['total']} s, daily median {per_size[-1]['median']['total']} s",
              flush=True)
        # kept as each size ends, so a larger size that fails leaves the smaller ones measured
        save(name, {**header_of_result, "sizes": per_size, "partial": f"{len(per_size)} of {len(sizes)} sizes"})

    full = per_size[-1]
    print(f"\nFull cycle at {full['rows']:,} rows (train {full['train']:,}, batch {full['median']['batch_rows']:,}); "
          f"seconds, median of {repeat} daily cycles; the bootstrap column is the first day")
    rows_ = [["data_gen (sample the batch)", full["median"]["data_gen"], full["bootstrap"]["data_gen"]]]
    rows_ += [[f"app: {k}", full["median"]["steps"][k], full["bootstrap"]["steps"][k] or 0.0] for k in STEPS]
    rows_ += [["app: process (Spark start, imports, exit)",
               round(full["median"]["app"] - sum(full["median"]["steps"].values()), 2),
               round(full["bootstrap"]["app"] - sum(v or 0 for v in full["bootstrap"]["steps"].values()), 2)]]
    rows_ += [["total wall time", full["median"]["total"], full["bootstrap"]["total"]],
              ["peak RSS of a job, GiB", max(c["peak_rss_gib"] for c in full["daily"]),
               full["bootstrap"]["peak_rss_gib"]]]
    print(table(["step", "daily", "bootstrap"], rows_))

    one = per_size[0]
    sizes_x = ", ".join(f"{s['rows'] / one['rows']:.0f}x" for s in per_size)
    print(f"\nScaling: the daily cycle at {sizes_x} the rows "
          "(time ratio must stay <= rows ratio + 12.5%; ingest: generate, validate, split, write, when this run did it)")
    scale_rows = []
    for s in per_size:
        ratio_rows = s["rows"] / one["rows"]
        ratio_time = s["median"]["total"] / one["median"]["total"]
        scale_rows.append([f"{ratio_rows:.0f}x", s["rows"], s["median"]["batch_rows"], s["median"]["total"],
                           f"{ratio_time:.2f}", s["bootstrap"]["total"], s["peak_rss_gib"],
                           s["ingest_seconds"] if s["ingest_seconds"] is not None else "kept",
                           "ok" if ratio_time <= ratio_rows * 1.125 else "SLOWER THAN LINEAR"])
    print(table(["size", "rows", "batch", "daily s", "time ratio", "bootstrap s", "peak GiB", "ingest s", "linear?"],
                scale_rows))
    trend = growth(full["daily"])
    print(f"\nGrowth with history at {full['rows']:,} rows over {trend['days']} daily cycles (least squares)")
    print(table(["", "median s", "s per day", "change over 30 days"],
                [[k, trend[k]["median"], trend[k]["seconds_per_day"], f"{trend[k]['change_over_30_days']:+.1%}"]
                 for k in ("total", "data_gen", "app")]))
    for day in trend["rediscovery_days"]:
        print(f"   {day['run_date']}: features chosen again, {day['total']} s (left out of the fit)")
    print(f"   train_sup rows: {full['daily'][0]['train_sup_rows']:,} on day 1, "
          f"{full['daily'][-1]['train_sup_rows']:,} on day {trend['days']}; flat: {trend['flat']}")
    full["growth"] = trend
    result = {**header_of_result, "sizes": per_size}
    print(f"   -> {save(name, result)}\n", flush=True)
    return result


def growth_run(info: dict[str, Any], rows: int = KAGGLE_ROWS, days: int = 30) -> dict[str, Any]:
    """The growth section: ``days`` daily cycles after the bootstrap at ``rows``, each batch 1/(days + 2) of
    test/ (disjoint batches: the bootstrap's and the days' all fit in test/), so train_sup grows by about a
    third of test/ over the run while the daily cost should not. Saved as bench/results/growth.json.

    The weekly re-choice of the challenger's features (``model.rediscover_every_days``) is switched off for the
    run: it is a cost of its own (the CV comparison, about 8 minutes at this size on 2 cores; once a week), not
    one of history, and four of them would double the run. A drift-triggered re-choice still happens, and such
    a day is left out of the fit (:func:`growth`)."""
    return run(info, [rows], days, fraction=round(1 / (days + 2), 6), name="growth",
               extra_env={"LOANPIPE__MODEL__REDISCOVER_EVERY_DAYS": str(days + 1)})
