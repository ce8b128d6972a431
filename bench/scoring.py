"""Scoring throughput: the pipeline's Spark path (read -> preprocess -> mapInPandas CatBoost -> write) against
plain CatBoost ``predict_proba`` on an in-memory array (the hardware's limit), on the same rows.

    .venv/bin/python bench/scoring.py --lake var/lake [--repeat 3]

Needs a lake with a champion (run the app once). Scores all of ``test/``. Prints a table (median of --repeat
runs) and writes bench/results/scoring.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lake", default=str(ROOT / "var" / "lake"))
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)

    import catboost
    import pyspark

    from loanpipe import storage
    from loanpipe.config import load_config
    from loanpipe.ingest import read_lake_schema
    from loanpipe.model import champion_version, load_model
    from loanpipe.scoring import score_batch
    from loanpipe.session import get_spark

    cfg = load_config().replace(storage={"root": args.lake})
    lake = storage.open_lake(cfg.storage)
    schema = read_lake_schema(lake)
    bundle = load_model(lake, champion_version(lake))
    spark = get_spark(cfg, app_name="bench-scoring", packages=[])
    test_uri = lake.uri(storage.TEST)
    rows = spark.read.parquet(test_uri).count()
    out_uri = lake.uri(storage.STAGING, "bench-scoring")

    def spark_path() -> float:
        start = time.perf_counter()
        batch = spark.read.parquet(test_uri)
        score_batch(batch, bundle, schema, 0.5, dt.datetime.now(dt.UTC)).write.mode("overwrite").parquet(out_uri)
        return time.perf_counter() - start

    frame = spark.read.parquet(test_uri).select(*bundle.spec.raw_features).toPandas()
    x = bundle.spec.transform_pandas(frame)[bundle.spec.features]
    model = bundle.predictor()

    def limit() -> float:
        start = time.perf_counter()
        model.predict_proba(x)
        return time.perf_counter() - start

    spark_path()  # warm-up: JVM, codegen, Python workers
    limit()
    results = {}
    for name, fn in (("spark: read, preprocess, mapInPandas CatBoost, write", spark_path),
                     ("limit: CatBoost predict_proba on an in-memory frame", limit)):
        times = [fn() for _ in range(args.repeat)]
        results[name] = {"median_s": round(statistics.median(times), 3), "rows_per_s": round(rows / statistics.median(times))}
    lake.remove(out_uri)
    limit_rate = results["limit: CatBoost predict_proba on an in-memory frame"]["rows_per_s"]
    header = (f"scoring {rows} rows x {len(bundle.spec.features)} model features | pyspark {pyspark.__version__}, "
              f"catboost {catboost.__version__}, python {platform.python_version()}, {platform.machine()}, "
              f"median of {args.repeat}")
    print(header)
    print(f"{'path':<58} {'median s':>9} {'rows/s':>10} {'vs limit':>9}")
    for name, r in results.items():
        print(f"{name:<58} {r['median_s']:>9.3f} {r['rows_per_s']:>10} {r['rows_per_s'] / limit_rate:>9.3f}")
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "scoring.json").write_text(json.dumps({"header": header, "rows": rows, "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
