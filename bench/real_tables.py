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


def table_config(table: str, root: str, base: Any = None) -> Any:
    """The table's own config (its schema and the shipped model settings) on a lake under ``root``; Spark
    settings from ``base`` when given (tests run a smaller Spark)."""
    from loanpipe.core.config import PROJECT_DIR, load_config

    cfg = load_config(PROJECT_DIR / "conf" / "tables" / f"{TABLES[table]}.yaml", environ={})
    if base is not None:
        cfg = dataclasses.replace(cfg, spark=base.spark)
    return cfg.replace(storage={"root": root})


def compare(table: str, root: str, spark: Any, base: Any = None) -> dict[str, Any]:
    from catboost import CatBoostClassifier
    from sklearn.metrics import roc_auc_score

    from loanpipe.jobs import app
    from loanpipe.ml import calibration
    from loanpipe.dev import public_tables
    from loanpipe.core import catalog
    from loanpipe.ml.features import MISSING_LEVEL
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
    sample_batch(cfg, lake, spark, make_request(cfg, RUN_DATE.isoformat()))
    t = time.monotonic()
    summary = app.run(cfg, lake, spark, RUN_DATE)
    app_s = time.monotonic() - t
    champion = load_model(lake, champion_version(lake))

    test = spark.read.parquet(catalog.test(lake))
    scored = predict_frame(test, champion, schema).join(test.select(schema.id_column, schema.label_column),
                                                        schema.id_column).toPandas()
    y_test = scored[schema.label_column].to_numpy(dtype=int)
    p_champion = scored["p_default"].to_numpy()

    t = time.monotonic()
    features, cats = list(schema.features), list(schema.categorical)
    train = spark.read.parquet(catalog.train(lake)).select(*features, schema.label_column).toPandas()
    plain_test = test.select(schema.id_column, *features).toPandas().set_index(schema.id_column)
    plain_test = plain_test.loc[scored[schema.id_column]]
    for frame in (train, plain_test):  # CatBoost needs a value in every categorical cell; that is all we add
        for c in cats:
            frame[c] = frame[c].fillna(MISSING_LEVEL)
    plain = CatBoostClassifier(verbose=0, allow_writing_files=False, random_seed=0)
    plain.fit(train[features], train[schema.label_column].to_numpy(dtype=int), cat_features=cats or None)
    p_plain = plain.predict_proba(plain_test[features])[:, 1]
    plain_s = time.monotonic() - t

    disc = champion.metadata["discovery"]
    cal_test = calibration.summary(y_test, p_champion)
    raw_test = calibration.summary(y_test, champion.predictor().predict_proba(
        champion.spec.transform_pandas(plain_test.reset_index())[champion.spec.features])[:, 1])
    return {
        "table": table, "rows": ingest["rows"], "default_rate": ingest["default_rate"],
        "train_rows": ingest["split"]["train"]["rows"], "test_rows": int(len(y_test)),
        "candidates": [{k: v for k, v in r.items() if k != "features"} for r in disc["candidates"]],
        "chosen": disc["decision"]["chosen"], "decision": disc["decision"],
        "champion_auc": float(roc_auc_score(y_test, p_champion)), "plain_catboost_auc": float(roc_auc_score(y_test, p_plain)),
        "calibration": {"method": disc["calibration"]["method"], "cv_before": disc["calibration"]["before"],
                        "cv_after": disc["calibration"]["after"],
                        "test_brier_before": raw_test["brier"], "test_brier_after": cal_test["brier"],
                        "test_worst_jeffreys_before": raw_test["worst_bin"]["jeffreys_p"],
                        "test_worst_jeffreys_after": cal_test["worst_bin"]["jeffreys_p"]},
        "seconds": {"ingest": round(ingest_s, 1), "bootstrap": champion.metadata["bootstrap_seconds"],
                    "discovery": disc["seconds"], "app_run": round(app_s, 1), "plain_catboost_fit": round(plain_s, 1)},
        "batch_auc": summary["evaluation"]["roc_auc"],
    }


def run(info: dict[str, Any], tables: list[str] | None = None) -> list[dict[str, Any]]:
    from loanpipe.core.config import load_config
    from loanpipe.core.session import get_spark

    spark = get_spark(load_config(environ={}), app_name="bench-real-tables")
    results = []
    for table in tables or list(TABLES):
        root = common.WORK / f"real-{table}"
        shutil.rmtree(root, ignore_errors=True)
        results.append(compare(table, str(root), spark))
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
