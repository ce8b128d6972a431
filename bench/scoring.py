"""Scoring throughput, read to write, over the same Parquet batches at 1x, 4x and 16x the Kaggle test size
(31,642 rows x 772 columns, copies with new ids), by every path we have, against the hardware's limit:

* catboost-spark's model ``transform`` (skipped, and said so, when its JVM package does not resolve here);
* the pipeline's path as the daily job runs it (the default): the scoring tasks read the batch's Parquet files
  themselves with pyarrow (only id + the model's raw columns), make the inputs with numpy, score with the
  broadcast CatBoost model in ``mapInArrow``; Spark writes Parquet;
* the pipeline's path through Spark's reader, with ``mapInArrow`` and with ``mapInPandas``: Spark reads the
  batch's Parquet and preprocesses as Spark columns (``model.scoring_reader: spark``);
* the limit: CatBoost ``predict_proba`` on an in-memory float matrix of the same rows (no I/O, no Spark).

All in one Spark session (local[2]); after a warm-up of each path the runs are interleaved (path A, B, C,
A, B, C, ...) and each figure is the median of ``--repeat`` runs; ratios are to the limit.
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Any

from bench.common import WORK, header, median, save, table

SCALES = (1, 4, 16)


def scaled_inputs(test_uri: str, scales: tuple[int, ...]) -> dict[int, Path]:
    """var/bench/scoring-<k>x/: k copies of test/ with ids shifted (written once with pyarrow, then reused)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.dataset as ds
    import pyarrow.parquet as pq

    out: dict[int, Path] = {}
    table_ = None
    for k in scales:
        folder = WORK / f"scoring-{k}x"
        done = folder / "_SUCCESS"
        if not done.exists():
            if table_ is None:
                table_ = ds.dataset(test_uri, format="parquet").to_table()
            folder.mkdir(parents=True, exist_ok=True)
            for j in range(k):
                ids = pc.add(table_.column("id"), pa.scalar(j * 1_000_000_000, table_.schema.field("id").type))
                pq.write_table(table_.set_column(table_.schema.get_field_index("id"), "id", ids),
                               folder / f"part-{j:03d}.parquet", use_dictionary=False)
            done.write_text("")
        out[k] = folder
    return out


def champion_lake(lake_root: str) -> tuple[Any, Any, Any, Any]:
    """(config, lake, schema, champion) of the bench lake at ``lake_root``; it must have a champion."""
    from loanpipe.core import storage
    from loanpipe.core.catalog import read_schema as read_lake_schema
    from loanpipe.core.config import load_config
    from loanpipe.ml.model import champion_version, load_model

    cfg = load_config(environ={}).replace(storage={"root": lake_root}, spark={"master": "local[2]"})
    lake = storage.open_lake(cfg.storage)
    version = champion_version(lake)
    if version is None:
        raise RuntimeError(f"{lake_root} has no champion: bench.cycle.ensure_champion(rows) bootstraps one (python -m "
                           "bench scoring does it first)")
    return cfg, lake, read_lake_schema(lake), load_model(lake, version)


def run(info: dict[str, Any], lake_root: str, repeat: int, scales: tuple[int, ...] = SCALES) -> dict[str, Any]:
    import numpy as np

    from loanpipe.core import catalog
    from loanpipe.ml.scoring import FileBatch, score_batch
    from loanpipe.core.session import get_spark, jvm_class_available, jvm_status

    cfg, lake, schema, bundle = champion_lake(lake_root)
    version = bundle.version
    inputs = scaled_inputs(catalog.test(lake), scales)
    spark = get_spark(cfg, app_name="bench-scoring")
    print(header(f"scoring throughput, read to write (median of {repeat}; model {version}, "
                 f"{len(bundle.spec.features)} features from {len(bundle.spec.raw_features)} raw columns)", info),
          flush=True)
    when = dt.datetime.now(dt.UTC)
    out_uri = str(WORK / "scoring-out")

    def spark_path(udf: str, src: Path, files: bool = False) -> float:
        start = time.perf_counter()
        batch = spark.read.parquet(str(src))
        readable = FileBatch(catalog.parquet_files(lake, str(src)), lake.file_access()) if files else None
        score_batch(batch, bundle, schema, 0.5, when, udf, files=readable).write.mode("overwrite").parquet(out_uri)
        return time.perf_counter() - start

    catboost_spark = jvm_class_available(spark, "ai.catboost.spark.CatBoostClassificationModel")

    def catboost_spark_path(src: Path) -> float:
        from catboost_spark import CatBoostClassificationModel  # noqa: PLC0415 - only where it resolves
        from pyspark.ml.feature import VectorAssembler

        model_path = WORK / "model.cbm"
        model_path.write_bytes(bundle.native)
        model = CatBoostClassificationModel.loadNativeModel(str(model_path))
        start = time.perf_counter()
        batch = spark.read.parquet(str(src)).select("id", *bundle.spec.spark_columns())
        assembled = VectorAssembler(inputCols=list(bundle.spec.features), outputCol="features").transform(batch)
        model.transform(assembled).select("id", "probability").write.mode("overwrite").parquet(out_uri)
        return time.perf_counter() - start

    base = spark.read.parquet(str(inputs[scales[0]])).select(*bundle.spec.raw_features).toPandas()
    x1 = bundle.spec.transform_pandas(base)[bundle.spec.features].to_numpy(dtype=np.float64)
    predictor = bundle.predictor()
    results: list[dict[str, Any]] = []
    for k in scales:
        rows = spark.read.parquet(str(inputs[k])).count()
        x = np.tile(x1, (k, 1))
        paths: dict[str, Any] = {
            "pipeline: tasks read the files, mapInArrow (default)": lambda src=inputs[k]: spark_path("arrow", src, True),
            "pipeline: Spark's reader, mapInArrow": lambda src=inputs[k]: spark_path("arrow", src),
            "pipeline: Spark's reader, mapInPandas": lambda src=inputs[k]: spark_path("pandas", src),
            "limit: predict_proba in memory": lambda x=x: _timed(lambda: predictor.predict_proba(x)),
        }
        if catboost_spark:
            paths["catboost-spark transform"] = lambda src=inputs[k]: catboost_spark_path(src)
        for fn in paths.values():
            fn()  # warm-up (JVM code generation, Python workers, model load)
        times: dict[str, list[float]] = {name: [] for name in paths}
        for _ in range(repeat):  # interleaved, so drift in the machine's speed hits every path alike
            for name, fn in paths.items():
                times[name].append(fn())
        for name, t in times.items():
            results.append({"scale": k, "rows": rows, "path": name, "median_s": median(t),
                            "rows_per_s": round(rows / median(t)), "runs_s": [round(x, 3) for x in t]})
        if not catboost_spark:
            status = jvm_status().get("catboost", {})
            results.append({"scale": k, "rows": rows, "path": "catboost-spark transform", "median_s": None,
                            "rows_per_s": None, "skipped": f"not measured: {status.get('error', 'not on the classpath')}"})
        print(f"   {k}x done", flush=True)
    spark.stop()
    lake.remove(out_uri)

    limit = {r["scale"]: r["rows_per_s"] for r in results if r["path"].startswith("limit")}
    rows_out = []
    for r in results:
        ratio = "" if r["rows_per_s"] is None else f"{r['rows_per_s'] / limit[r['scale']]:.3f}"
        rows_out.append([r["path"], f"{r['scale']}x", r["rows"],
                         r["median_s"] if r["median_s"] is not None else "skipped",
                         r["rows_per_s"] if r["rows_per_s"] is not None else "-", ratio])
    print(table(["path", "size", "rows", "median s", "rows/s", "vs limit"], rows_out))
    skipped = [r["skipped"] for r in results if "skipped" in r]
    if skipped:
        print(f"   catboost-spark: {skipped[0]}")
    result = {"machine": info, "repeat": repeat, "model": version, "results": results}
    print(f"   -> {save('scoring', result)}\n", flush=True)
    return result


def run_reasons(info: dict[str, Any], lake_root: str, repeat: int, scale: int = 16) -> dict[str, Any]:
    """The cost of reason codes: the pipeline's scoring (mapInArrow) of the ``scale``x batch (506k rows at 16x),
    read to write, without and with the rating grade and ``risk.reason_codes`` reasons (CatBoost SHAP values in
    the same Arrow pass); interleaved, medians of ``repeat``. Saved as bench/results/reasons.json."""
    from loanpipe.core import catalog
    from loanpipe.core.session import get_spark
    from loanpipe.ml.scoring import score_batch

    cfg, lake, schema, bundle = champion_lake(lake_root)
    version = bundle.version
    src = scaled_inputs(catalog.test(lake), (scale,))[scale]
    spark = get_spark(cfg, app_name="bench-reasons")
    n = cfg.risk.reason_codes or 4
    print(header(f"reason codes: scoring {scale}x the Kaggle test size without and with grade + {n} reasons "
                 f"(median of {repeat}; model {version}, {len(bundle.spec.features)} features)", info), flush=True)
    when = dt.datetime.now(dt.UTC)
    out_uri = str(WORK / "scoring-out")
    rows = spark.read.parquet(str(src)).count()

    cutoff = cfg.model.cutoff

    def path(reasons: int, reasons_for: str) -> float:
        start = time.perf_counter()
        score_batch(spark.read.parquet(str(src)), bundle, schema, cutoff, when, "arrow",
                    cfg.risk.master_scale if reasons else None, reasons, reasons_for
                    ).write.mode("overwrite").parquet(out_uri)
        return time.perf_counter() - start

    paths = {"scores only (p_default, decision)": (0, "all"), f"scores + grade + {n} reasons": (n, "all"),
             f"scores + grade + {n} reasons for the declined only (risk.reasons_for)": (n, "declined")}
    for r in paths.values():
        path(*r)  # warm-up
    declined = spark.read.parquet(out_uri).filter("decision = 1").count()
    times: dict[str, list[float]] = {name: [] for name in paths}
    for _ in range(repeat):
        for name, r in paths.items():
            times[name].append(path(*r))
    spark.stop()
    lake.remove(out_uri)
    results = [{"path": name, "rows": rows, "median_s": median(t), "rows_per_s": round(rows / median(t)),
                "runs_s": [round(x, 3) for x in t]} for name, t in times.items()]
    print(f"declined at model.cutoff = {cutoff}: {declined:,} of {rows:,} rows ({declined / rows:.1%})")
    base = results[0]["median_s"]
    print(table(["path", "rows", "median s", "rows/s", "time vs scores only"],
                [[r["path"], r["rows"], r["median_s"], r["rows_per_s"], f"{r['median_s'] / base:.2f}x"]
                 for r in results]))
    calls = shap_call_cost(bundle, catalog.test(lake), repeat)
    print(f"\nOne CatBoost SHAP call ({bundle.version}, in-process, all cores): a fixed cost per call, then per row; "
          "scoring explains its Arrow batches in blocks of ~loanpipe.ml.scoring.SHAP_BLOCK_CELLS cells")
    print(table(["rows in the call", "median s", "ms per 1,000 rows"],
                [[c["rows"], c["median_s"], round(1000 * c["median_s"] / c["rows"] * 1000, 1)] for c in calls]))
    result = {"machine": info, "repeat": repeat, "model": version, "features": len(bundle.spec.features),
              "reason_codes": n, "cutoff": cutoff, "declined_rows": declined, "results": results, "shap_calls": calls}
    print(f"   -> {save('reasons', result)}\n", flush=True)
    return result


def shap_call_cost(bundle: Any, test_uri: str, repeat: int, sizes: tuple[int, ...] = (1_000, 10_000, 100_000)
                   ) -> list[dict[str, Any]]:
    """Seconds of one SHAP call on the first ``sizes`` rows of test/ (the model's features made by its spec),
    medians of ``repeat``: what blocks of Arrow batches save (the fixed part is paid once per block)."""
    import numpy as np
    import pandas as pd

    from loanpipe.ml.engine import load_native
    from loanpipe.ml.scoring import _shap

    files = sorted(Path(test_uri).rglob("*.parquet"))
    raw = pd.concat([pd.read_parquet(f, columns=list(bundle.spec.raw_features)) for f in files], ignore_index=True)
    x = bundle.spec.transform_pandas(raw)[list(bundle.spec.features)].to_numpy(float)
    model = load_native(bundle.native)
    out = []
    for size in sizes:
        rows = x[:size] if len(x) >= size else x[np.resize(np.arange(len(x)), size)]
        _shap(model, rows[:100], [])  # warm-up
        t = [_timed(lambda: _shap(model, rows, [])) for _ in range(repeat)]
        out.append({"rows": size, "median_s": round(median(t), 3), "runs_s": [round(v, 3) for v in t]})
    return out


def _timed(fn: Any) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def run_profile(info: dict[str, Any], lake_root: str, repeat: int, scales: tuple[int, ...] = (16, 160)) -> dict[str, Any]:
    """Where the scoring path's time goes (issue 17): the pipeline's path built up one part at a time over the
    same Parquet batch, each part's cost being its row's time less the row above: first through Spark's reader
    (``model.scoring_reader: spark``), then with the scoring tasks reading the files themselves (``files:``
    rows, the default). At 16x (506k rows) and 160x (5.06M rows) the Kaggle test size, in one Spark session
    (local[2]); Spark's ``noop`` sink runs a query without writing, so only the write rows write Parquet.
    Interleaved after a warm-up, medians of ``repeat``. Saved as bench/results/scoring_profile.json."""
    import numpy as np
    import pyarrow as pa

    from loanpipe.core import catalog
    from loanpipe.core.session import get_spark
    from loanpipe.ml.scoring import FileBatch, file_list, predict_frame, score_batch, task_inputs

    cfg, lake, schema, bundle = champion_lake(lake_root)
    spec, ident = bundle.spec, schema.id_column
    features = list(spec.features)
    inputs = scaled_inputs(catalog.test(lake), scales)
    spark = get_spark(cfg, app_name="bench-scoring-profile")
    batch_rows = int(spark.conf.get("spark.sql.execution.arrow.maxRecordsPerBatch"))
    print(header(f"scoring path, part by part (median of {repeat}; model {bundle.version}, {len(features)} features "
                 f"from {len(spec.raw_features)} raw columns; arrow batches of {batch_rows} rows)", info), flush=True)
    when = dt.datetime.now(dt.UTC)
    out_uri = str(WORK / "scoring-out")
    id_type = "string" if schema.id_is_string else "long"

    def to_python(batches: Any) -> Any:  # Arrow into the Python worker and a narrow batch back, no model
        for b in batches:
            yield pa.RecordBatch.from_arrays([b.column(ident), pa.array(np.zeros(b.num_rows))], names=[ident, "p"])

    def to_matrix(batches: Any) -> Any:  # ... and the float matrix predict_proba gets
        for b in batches:
            x = np.column_stack([b.column(f).to_numpy(zero_copy_only=False).astype(np.float64, copy=False)
                                 for f in features])
            yield pa.RecordBatch.from_arrays([b.column(ident), pa.array(x[:, 0])], names=[ident, "p"])

    def frame(src: Path) -> Any:
        return spark.read.parquet(str(src))

    def readable(src: Path) -> FileBatch:
        return FileBatch(catalog.parquet_files(lake, str(src)), lake.file_access())

    def files_only(src: Path) -> Any:  # each task reads its files and makes the model inputs; no model
        batch = readable(src)

        def read(paths: Any) -> Any:
            for b in task_inputs(paths, batch, spec, ident, batch_rows):
                yield pa.RecordBatch.from_arrays([b.column(ident), pa.array(np.zeros(b.num_rows))], names=[ident, "p"])

        return file_list(spark, batch).mapInArrow(read, f"{ident} {id_type}, p double")

    parts: dict[str, Any] = {
        "read: Parquet decode of id + the raw columns": lambda s: frame(s).select(ident, *spec.raw_features),
        "+ preprocessing (Spark column expressions)": lambda s: frame(s).select(ident, *spec.spark_columns()),
        "+ Arrow to the Python worker and back": lambda s: frame(s).select(ident, *spec.spark_columns()).mapInArrow(
            to_python, f"{ident} {id_type}, p double"),
        "+ Arrow columns to a float matrix": lambda s: frame(s).select(ident, *spec.spark_columns()).mapInArrow(
            to_matrix, f"{ident} {id_type}, p double"),
        "+ CatBoost predict_proba + calibrator (predict_frame)": lambda s: predict_frame(frame(s), bundle, schema),
        "+ grade, decision, version, time (score_batch)": lambda s: score_batch(
            frame(s), bundle, schema, 0.5, when, "arrow", cfg.risk.master_scale),
    }
    write_name = "+ Parquet write (read to write)"
    # the daily job's path (model.scoring_reader: files): the scoring tasks read the Parquet files themselves
    file_parts: dict[str, Any] = {
        "files: pyarrow read + the inputs (numpy) in each task": files_only,
        "files: + CatBoost predict_proba + calibrator (predict_frame)": lambda s: predict_frame(
            frame(s), bundle, schema, files=readable(s)),
        "files: + grade, decision, version, time (score_batch)": lambda s: score_batch(
            frame(s), bundle, schema, 0.5, when, "arrow", cfg.risk.master_scale, files=readable(s)),
    }
    file_write_name = "files: + Parquet write (read to write)"

    def timed_query(build: Any, src: Path, write: bool) -> float:
        start = time.perf_counter()
        df = build(src)
        (df.write.mode("overwrite").parquet(out_uri) if write else df.write.format("noop").mode("overwrite").save())
        return time.perf_counter() - start

    results: list[dict[str, Any]] = []
    for k in scales:
        src = inputs[k]
        rows = frame(src).count()
        tasks = frame(src).select(ident).rdd.getNumPartitions()
        base = frame(src).select(*spec.raw_features).limit(50_000).toPandas()
        x1 = spec.transform_pandas(base)[features].to_numpy(dtype=np.float64)
        x = x1[np.resize(np.arange(len(x1)), rows)]
        predictor = bundle.predictor()
        runs: dict[str, Any] = {name: (lambda b=build, s=src: timed_query(b, s, False)) for name, build in parts.items()}
        runs[write_name] = lambda s=src: timed_query(parts["+ grade, decision, version, time (score_batch)"], s, True)
        runs.update({name: (lambda b=build, s=src: timed_query(b, s, False)) for name, build in file_parts.items()})
        runs[file_write_name] = lambda s=src: timed_query(
            file_parts["files: + grade, decision, version, time (score_batch)"], s, True)
        runs["limit: predict_proba in memory (all cores)"] = lambda x=x: _timed(lambda: predictor.predict_proba(x))
        for fn in runs.values():
            fn()  # warm-up
        times: dict[str, list[float]] = {name: [] for name in runs}
        for _ in range(repeat):
            for name, fn in runs.items():
                times[name].append(fn())
        previous = 0.0
        for name, t in times.items():
            m = median(t)
            limit = name.startswith("limit")
            if name == next(iter(file_parts)):
                previous = 0.0  # the files path's parts add up from its own first row
            results.append({"scale": k, "rows": rows, "tasks": tasks, "part": name, "median_s": round(m, 3),
                            "part_s": None if limit else round(m - previous, 3), "rows_per_s": round(rows / m),
                            "runs_s": [round(v, 3) for v in t]})
            previous = previous if limit else m
        mine = [r for r in results if r["scale"] == k]
        limit = mine[-1]["rows_per_s"]
        print(f"\n{rows:,} rows ({k}x), {tasks} tasks")
        print(table(["part", "cumulative s", "this part s", "rows/s", "vs limit"],
                    [[r["part"], r["median_s"], r["part_s"] if r["part_s"] is not None else "-", r["rows_per_s"],
                      f"{r['rows_per_s'] / limit:.3f}"] for r in mine]), flush=True)
        result = {"machine": info, "repeat": repeat, "model": bundle.version, "features": len(features),
                  "results": results}
        print(f"   -> {save('scoring_profile', result)} (after {k}x)\n", flush=True)  # each size kept as it ends
    spark.stop()
    lake.remove(out_uri)
    return result
