"""Reading the same data as CSV (schema inferred, schema given) and as Parquet, in Spark and in pyarrow.

The data: the Kaggle-size lake's test/ (31,642 rows x 772 columns), also written once as one CSV file. Spark
reads into the ``noop`` sink, which materialises every column of every row (a ``count()`` would let Spark skip
parsing). Median of ``--repeat`` runs after a warm-up, in one Spark session (local[2]).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from bench.common import WORK, header, median, save, table


def run(info: dict[str, Any], lake_root: str, repeat: int) -> dict[str, Any]:
    import pyarrow.csv as pacsv
    import pyarrow.dataset as ds
    import pyarrow.parquet as pq

    from loanpipe.core import catalog, storage
    from loanpipe.core.config import load_config
    from loanpipe.core.session import get_spark

    cfg = load_config(environ={}).replace(storage={"root": lake_root}, spark={"master": "local[2]"})
    lake = storage.open_lake(cfg.storage)
    parquet_dir = catalog.test(lake)
    csv_path = WORK / "ingest-test.csv"
    if not csv_path.exists():
        pacsv.write_csv(ds.dataset(parquet_dir, format="parquet").to_table(), str(csv_path) + ".tmp")
        (WORK / "ingest-test.csv.tmp").rename(csv_path)
    spark = get_spark(cfg, app_name="bench-ingest", packages=[])
    schema = spark.read.parquet(parquet_dir).schema
    rows = spark.read.parquet(parquet_dir).count()
    parquet_mib = sum(p.stat().st_size for p in Path(parquet_dir).rglob("*.parquet")) / 2**20
    csv_mib = csv_path.stat().st_size / 2**20
    print(header(f"reading {rows:,} rows x {len(schema)} columns: CSV ({csv_mib:,.0f} MiB) vs Parquet "
                 f"({parquet_mib:,.0f} MiB), median of {repeat}", info), flush=True)

    def timed(fn: Any) -> float:
        start = time.perf_counter()
        fn()
        return time.perf_counter() - start

    cases = {
        "Spark CSV, schema inferred (inferSchema)": lambda: spark.read.csv(
            str(csv_path), header=True, inferSchema=True).write.format("noop").mode("overwrite").save(),
        "Spark CSV, schema given": lambda: spark.read.csv(
            str(csv_path), header=True, schema=schema).write.format("noop").mode("overwrite").save(),
        "Spark Parquet": lambda: spark.read.parquet(parquet_dir).write.format("noop").mode("overwrite").save(),
        "pyarrow CSV (what ingest validates with)": lambda: pacsv.read_csv(str(csv_path)),
        "pyarrow Parquet": lambda: pq.read_table(parquet_dir),
    }
    results = []
    for name, fn in cases.items():
        timed(fn)
        t = median([timed(fn) for _ in range(repeat)])
        results.append({"case": name, "median_s": t, "rows_per_s": round(rows / t)})
        print(f"   {name}: {t} s", flush=True)
    spark.stop()
    parquet_s = next(r["median_s"] for r in results if r["case"] == "Spark Parquet")
    print(table(["read", "median s", "rows/s", "vs Spark Parquet"],
                [[r["case"], r["median_s"], r["rows_per_s"], f"{r['median_s'] / parquet_s:.1f}x"] for r in results]))
    result = {"machine": info, "repeat": repeat, "rows": rows, "columns": len(schema), "csv_mib": round(csv_mib, 1),
              "parquet_mib": round(parquet_mib, 1), "results": results}
    print(f"   -> {save('ingest', result)}\n", flush=True)
    return result
