"""The pipeline's champion against plain CatBoost on real public credit tables (loanpipe.dev.public_tables).

For each table: ingest it by configuration alone (``conf/tables/<name>.yaml``), sample one day's batch, run the
daily job (which bootstraps the champion: CV candidates, guard, calibration), then score all of ``test/`` with
the champion and compare with CatBoost at its default settings trained on all columns of the same ``train/``
rows. ``tests/e2e/test_real_tables.py`` asserts on the same function; ``python -m bench real_tables`` records it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import shutil
import time
from typing import Any

from bench import common

TABLES = {"german_credit": "german_credit", "sba_loans_150k": "sba_loans"}  # table -> its config
RUN_DATE = dt.date(2026, 11, 1)
PLAIN_RESULTS = common.RESULTS / "plain_catboost.json"


def table_config(table: str, root: str, base: Any = None) -> Any:
    """The table's own config (its schema and the shipped model settings) on a lake under ``root``; Spark
    settings from ``base`` when given (tests run a smaller Spark)."""
    from loanpipe.core.config import PROJECT_DIR, load_config

    cfg = load_config(PROJECT_DIR / "conf" / "tables" / f"{TABLES[table]}.yaml", environ={})
    if base is not None:
        cfg = dataclasses.replace(cfg, spark=base.spark)
    return cfg.replace(storage={"root": root})


def plain_catboost(x: Any, y: Any, cats: list[str], x_test: Any, y_test: Any, record: bool) -> dict[str, Any]:
    """Plain CatBoost's AUC on the test rows: CatBoost at its defaults (seed 0) fitted on ``x, y``.

    CatBoost is deterministic for a seed, so the same rows with the same CatBoost on the same number of cores give
    the same model: its AUC is kept in ``bench/results/plain_catboost.json`` under a digest of all of those, and the
    model is fitted again only when one of them changed. ``record``: write a new fit's AUC there (the bench does;
    the tests only read it, so a test on changed data always fits)."""
    import hashlib
    import json
    import os

    import catboost
    import pandas as pd
    from sklearn.metrics import roc_auc_score

    h = hashlib.sha256(f"catboost {catboost.__version__}, {os.cpu_count()} cores, {sorted(cats)}".encode())
    for part in (x, pd.Series(y), x_test, pd.Series(y_test)):
        h.update(pd.util.hash_pandas_object(part, index=False).to_numpy().tobytes())
        h.update(repr(list(getattr(part, "columns", []))).encode())
    key = h.hexdigest()
    recorded = json.loads(PLAIN_RESULTS.read_text()) if PLAIN_RESULTS.exists() else {}
    if key in recorded:
        return {**recorded[key], "source": f"recorded in bench/results/{PLAIN_RESULTS.name} (same rows, same CatBoost)"}
    t = time.monotonic()
    plain = catboost.CatBoostClassifier(verbose=0, allow_writing_files=False, random_seed=0)
    plain.fit(x, y, cat_features=cats or None)
    result = {"auc": float(roc_auc_score(y_test, plain.predict_proba(x_test)[:, 1])),
              "fit_seconds": round(time.monotonic() - t, 1), "train_rows": len(x), "test_rows": len(x_test),
              "catboost": catboost.__version__}
    if record:
        PLAIN_RESULTS.write_text(json.dumps({**recorded, key: result}, indent=2, sort_keys=True) + "\n")
    return {**result, "source": "fitted now"}


def plain_reference(spark: Any, lake: Any, schema: Any, record: bool = False) -> tuple[dict[str, Any], Any]:
    """Plain CatBoost fitted on the lake's ``train/`` rows and scored on all of ``test/`` (both in id order, every
    column; a missing category becomes its own level, all that CatBoost needs): its result (:func:`plain_catboost`)
    and the test rows, id and label included."""
    from loanpipe.core import catalog
    from loanpipe.ml.features import MISSING_LEVEL

    features, cats, ident, label = list(schema.features), list(schema.categorical), schema.id_column, \
        schema.label_column
    train, test = ((spark.read.parquet(path).select(ident, *features, label).toPandas()
                    .sort_values(ident, ignore_index=True)) for path in (catalog.train(lake), catalog.test(lake)))
    for frame in (train, test):
        for c in cats:
            frame[c] = frame[c].fillna(MISSING_LEVEL)
    plain = plain_catboost(train[features], train[label].to_numpy(dtype=int), cats, test[features],
                           test[label].to_numpy(dtype=int), record)
    return plain, test


def compare(table: str, root: str, spark: Any, base: Any = None, record: bool = False,
            daily: bool = True) -> dict[str, Any]:
    """One table end to end: ingest, the champion (``daily``: through the daily job on one day's batch, which
    bootstraps it and then scores, evaluates and challenges; else the bootstrap alone), plain CatBoost, and
    both scored on all of ``test/``."""
    from sklearn.metrics import roc_auc_score

    from loanpipe.jobs import app
    from loanpipe.ml import calibration, engine, training
    from loanpipe.dev import public_tables
    from loanpipe.core import catalog
    from loanpipe.jobs.ingest import run_ingest
    from loanpipe.core.catalog import read_schema as read_lake_schema
    from loanpipe.ml.model import champion_version, load_model
    from loanpipe.jobs.data_gen import make_request, sample_batch
    from loanpipe.ml.scoring import predict_frame
    from loanpipe.core.storage import open_lake

    cfg = table_config(table, root, base)
    csv = public_tables.fetch(table)
    t = time.monotonic()
    ingest = run_ingest(cfg, csv_path=str(csv), spark=spark)
    ingest_s = time.monotonic() - t
    lake = open_lake(cfg.storage)
    schema = read_lake_schema(lake)
    t = time.monotonic()
    if daily:
        sample_batch(cfg, lake, spark, make_request(cfg, RUN_DATE.isoformat()))
        summary = app.run(cfg, lake, spark, RUN_DATE)
        champion = load_model(lake, champion_version(lake))
        # the discovery report and its time are the bootstrap's (the model that scored the date), also when a
        # challenger was promoted the same day and serves now
        boot = load_model(lake, summary["champion"]["version"])
    else:
        summary = None
        boot = champion = training.bootstrap(cfg, spark, spark.read.parquet(catalog.train(lake)), schema,
                                             engine.choose_engine(spark, cfg.model.engine), RUN_DATE)
    app_s = time.monotonic() - t

    plain, plain_test = plain_reference(spark, lake, schema, record)
    test = spark.read.parquet(catalog.test(lake))
    scored = predict_frame(test, champion, schema).join(test.select(schema.id_column, schema.label_column),
                                                        schema.id_column).toPandas()
    scored = scored.sort_values(schema.id_column, ignore_index=True)  # the rows in plain_test's order
    assert scored[schema.id_column].tolist() == plain_test[schema.id_column].tolist()
    y_test = scored[schema.label_column].to_numpy(dtype=int)
    p_champion = scored["p_default"].to_numpy()
    disc = boot.metadata["discovery"]
    cal_test = calibration.summary(y_test, p_champion)
    raw_test = calibration.summary(y_test, champion.predictor().predict_proba(
        champion.spec.transform_pandas(plain_test)[champion.spec.features])[:, 1])
    return {
        "table": table, "rows": ingest["rows"], "default_rate": ingest["default_rate"],
        "train_rows": ingest["split"]["train"]["rows"], "test_rows": int(len(y_test)),
        "candidates": [{k: v for k, v in r.items() if k != "features"} for r in disc["candidates"]],
        "chosen": disc["decision"]["chosen"], "decision": disc["decision"],
        "champion_auc": float(roc_auc_score(y_test, p_champion)), "plain_catboost_auc": plain["auc"],
        "plain_catboost": plain["source"],
        "calibration": {"method": disc["calibration"]["method"], "cv_before": disc["calibration"]["before"],
                        "cv_after": disc["calibration"]["after"],
                        "test_brier_before": raw_test["brier"], "test_brier_after": cal_test["brier"],
                        "test_worst_jeffreys_before": raw_test["worst_bin"]["jeffreys_p"],
                        "test_worst_jeffreys_after": cal_test["worst_bin"]["jeffreys_p"]},
        "seconds": {"ingest": round(ingest_s, 1), "bootstrap": boot.metadata["bootstrap_seconds"],
                    "discovery": disc["seconds"], "app_run" if daily else "bootstrap_run": round(app_s, 1),
                    **({"app_steps": summary["seconds"]} if summary else {}),
                    "plain_catboost_fit": plain["fit_seconds"]},
        **({"batch": {"scored": summary["scores"]["rows"], **summary["daily"]}} if summary else {}),
    }


def run(info: dict[str, Any], tables: list[str] | None = None) -> list[dict[str, Any]]:
    from loanpipe.core.config import load_config
    from loanpipe.core.session import get_spark

    spark = get_spark(load_config(environ={}), app_name="bench-real-tables")
    results = []
    for table in tables or list(TABLES):
        root = common.WORK / f"real-{table}"
        shutil.rmtree(root, ignore_errors=True)
        results.append(compare(table, str(root), spark, record=True))
    spark.stop()
    print(common.header("Real public tables: the pipeline's champion vs plain CatBoost (defaults, all columns)", info))
    print(common.table(
        ["table", "rows", "chosen", "champion AUC", "plain AUC", "diff", "Brier before", "after", "worst J-p before",
         "after", "bootstrap s", "plain fit s"],
        [[r["table"], r["rows"], r["chosen"], f"{r['champion_auc']:.4f}", f"{r['plain_catboost_auc']:.4f}",
          f"{r['champion_auc'] - r['plain_catboost_auc']:+.4f}", f"{r['calibration']['test_brier_before']:.5f}",
          f"{r['calibration']['test_brier_after']:.5f}", f"{r['calibration']['test_worst_jeffreys_before']:.2g}",
          f"{r['calibration']['test_worst_jeffreys_after']:.2g}", r["seconds"]["bootstrap"],
          r["seconds"]["plain_catboost_fit"]] for r in results]))
    for r in results:
        print(f"\n{r['table']}: candidates (mean CV AUC, sd) -> {r['chosen']}")
        print(common.table(["candidate", "features", "mean", "sd", "fold AUCs", "seconds"],
                           [[c["candidate"], c["n_features"], f"{c['mean_auc']:.4f}", f"{c['sd_auc']:.4f}",
                             " ".join(f"{a:.3f}" for a in c["fold_aucs"]), c["seconds"]] for c in r["candidates"]]))
    common.save("real_tables", {"machine": info, "results": results})
    return results


if __name__ == "__main__":
    run(common.machine())
