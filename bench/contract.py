"""What the data contract costs at the Kaggle size: learning it from train/ (once, at ingest) and checking a
daily batch's rows (every run: the row checks, the duplicate-id window, the counts, examples and new levels).
And how often it sets aside a row that is not wrong: the share of the real public tables' test rows (lakes made
by the real_tables section) beyond their train/ ranges, at several ``quality.range_margin`` values.

Runs in-process on one local[2] session against the cycle section's lake (var/bench/lake-<rows>; made by the
cycle section, or ingested here when absent): a batch of the configured share of test/ is checked as the daily
job checks it (read from its published files: on the driver, as a daily batch is, and in one Spark pass, as a
larger one is), then again with 1% of its rows spoilt, one reason in turn. Warm figures, one session: the cycle
section shows what a run's fresh session adds.
"""

from __future__ import annotations

import time
from typing import Any

from bench.common import WORK, header, median, save, table

KAGGLE_ROWS = 105_471


def _timed(fn: Any) -> tuple[float, Any]:
    start = time.monotonic()
    out = fn()
    return round(time.monotonic() - start, 2), out


MARGINS = (0.0, 1.0, 2.0, 3.0)
WAYS = {"driver": "read and checked on the driver, the default up to quality.driver_check_rows",
        "spark": "one Spark pass, larger batches"}


def real_table_flags(spark: Any) -> list[dict[str, Any]]:
    """For each real-table lake under var/bench/: its test/ rows flagged out_of_range at each of MARGINS."""
    from loanpipe.core import catalog, contract
    from loanpipe.core.config import load_config
    from loanpipe.core.storage import open_lake

    out = []
    for root in sorted(WORK.glob("real-*")):
        lake = open_lake(load_config(environ={"LOANPIPE__STORAGE__ROOT": str(root)}).storage)
        if not lake.has_data(catalog.test(lake)):
            continue
        schema = catalog.read_schema(lake)
        learnt = contract.learn(spark.read.parquet(catalog.train(lake)), schema)
        test = spark.read.parquet(catalog.test(lake)).toArrow()  # small tables: 300 and 44,899 rows
        batches = test.to_batches()
        flagged = {}
        for m in MARGINS:
            reasons = [r for b in batches for r in contract.row_reasons(b, learnt, schema, m)[0]]
            flagged[str(m)] = sum(r == "out_of_range" for r in reasons)
        out.append({"table": root.name.removeprefix("real-"), "rows": test.num_rows, "flagged": flagged})
    return out


def synthetic_flags(sizes: tuple[int, ...] = (1_000, 6_000, 20_000), seeds: tuple[int, ...] = (1, 2, 3)) -> list[dict[str, Any]]:
    """The same on synthetic lakes of small sizes (70/30 split; ranges from the 70%): heavy tails on a small
    training set are where a narrow margin flags good rows."""
    import numpy as np
    import pyarrow as pa

    from loanpipe.core import contract
    from loanpipe.core.config import SchemaConfig
    from loanpipe.core.schema import DataSchema
    from loanpipe.ml import synth

    names = list(synth.FEATURE_NAMES)
    schema = DataSchema.from_columns(SchemaConfig(), ["id", *names, "loss"], source="synthetic")
    out = []
    for rows in sizes:
        for seed in seeds:
            frame, _ = synth.generate(rows, seed)
            train = np.random.default_rng(0).random(rows) < 0.7
            x = frame[names].to_numpy(float)
            finite = np.where(np.isfinite(x[train]), x[train], np.nan)
            with np.errstate(all="ignore"):
                lo, hi = np.nanmin(finite, axis=0), np.nanmax(finite, axis=0)
            learnt = {"numeric": {c: ([float(a), float(b)] if np.isfinite(a) and np.isfinite(b) else None)
                                  for c, a, b in zip(names, lo, hi)}, "categorical": {}}
            test = pa.RecordBatch.from_pandas(frame.loc[~train, ["id", *names]], preserve_index=False)
            flagged = {str(m): sum(r == "out_of_range" for r in contract.row_reasons(test, learnt, schema, m)[0])
                       for m in MARGINS}
            out.append({"table": f"synthetic {rows:,} rows, seed {seed}", "rows": test.num_rows, "flagged": flagged})
    return out


def run(info: dict[str, Any], rows: int = KAGGLE_ROWS, repeat: int = 3) -> dict[str, Any]:
    from pyspark.sql import functions as F

    from bench import cycle
    from loanpipe.core import catalog, contract
    from loanpipe.core.config import load_config
    from loanpipe.core.session import get_spark
    from loanpipe.core.storage import open_lake

    cycle.ensure_lake(rows)
    cfg = load_config(environ=cycle.lake_env(rows))
    lake = open_lake(cfg.storage)
    spark = get_spark(cfg, app_name="bench-contract", job="data_gen")
    schema = catalog.read_schema(lake)
    train = spark.read.parquet(catalog.train(lake))
    train_rows = train.count()
    learn_s, learnt = [], None
    for _ in range(repeat):
        seconds, learnt = _timed(lambda: contract.learn(train, schema))
        learn_s.append(seconds)
    # a daily batch's shape: the configured share of test/ (10%), kept in memory so that only the checks are timed
    batch = spark.read.parquet(catalog.test(lake)).sample(False, cfg.sampling.fraction, seed=7).cache()
    n = batch.count()
    checked_features = [c for c, r in learnt["numeric"].items() if r and r[0] < r[1]]
    spoil = {
        "clean": batch,
        "1% non_finite": batch.withColumn(checked_features[0], F.when(F.xxhash64("id") % 100 == 0, F.lit(float("inf")))
                                          .otherwise(F.col(checked_features[0]))),
        "1% out_of_range": batch.withColumn(checked_features[1], F.when(F.xxhash64("id") % 100 == 0, F.lit(1e300))
                                            .otherwise(F.col(checked_features[1]))),
    }
    # each variant published in a scratch lake, so both ways read it from its files as the daily job does
    scratch = open_lake(load_config(environ={"LOANPIPE__STORAGE__ROOT": str(WORK / "contract-batches")}).storage)
    results = []
    for day, (name, frame) in enumerate(spoil.items(), start=1):
        uri = catalog.batch(scratch, f"2030-01-{day:02d}")
        catalog.write_dataset(scratch, frame, uri, expect_rows=n)
        ways = {"driver": lambda uri=uri: catalog.read_table(scratch, uri, max_rows=cfg.quality.driver_check_rows),
                "spark": lambda: None}
        for way, local in ways.items():
            times, report = [], None
            for _ in range(repeat):
                def once() -> dict[str, Any]:
                    return contract.check(spark.read.parquet(uri), learnt, schema, cfg.quality, local()).report
                seconds, report = _timed(once)
                times.append(seconds)
            results.append({"batch": name, "way": way, "rows": n, "seconds": median(times),
                            "quarantined": report["quarantined"], "by_reason": report["by_reason"]})
    real = real_table_flags(spark) + synthetic_flags()
    spark.stop()
    print(header(f"The data contract at {rows:,} rows (train {train_rows:,}, batch {n:,} x {len(batch.columns)} "
                 f"columns; median of {repeat})", info))
    print(table(["what", "rows", "seconds", "quarantined"],
                [["learn the contract from train/ (once, at ingest)", train_rows, median(learn_s), ""]]
                + [[f"check a daily batch: {r['batch']} ({WAYS[r['way']]})", r["rows"], r["seconds"], r["quarantined"]]
                   for r in results]))
    if real:
        print("\nRows of test/ set aside as out_of_range against train/'s contract, by quality.range_margin: the real "
              "public tables, and small synthetic lakes")
        print(table(["table", "test rows", *[f"margin {m:g}" for m in MARGINS]],
                    [[r["table"], r["rows"], *[f"{r['flagged'][str(m)]} ({r['flagged'][str(m)] / r['rows']:.3%})"
                                               for m in MARGINS]] for r in real]))
    out = {"machine": info, "rows": rows, "repeat": repeat, "learn_seconds": median(learn_s),
           "numeric_checked": len(checked_features), "checks": results, "real_tables": real}
    print(f"   -> {save('contract', out)}\n", flush=True)
    return out
