"""Ingest: the generator or a real Kaggle-format CSV -> validated Parquet -> ``train/`` and ``test/`` in the lake.

Steps:

1. **Read and validate** on the driver, streaming (pyarrow's CSV reader, explicit column types): the id and
   target columns exist, numeric cells are numbers, ids are present and unique, the target is present, the
   file is not empty and its last line is not truncated. Every error names the file, the line/row and the
   column, and says what to do. Output: a local Parquet staging folder with the binary label added.
2. **Split and write with Spark**: a stratified (on the label), seeded split by a hash of the id, written as
   Parquet with the explicit schema to the lake's staging area, then published (renamed into place) at the
   end. A failed ingest leaves an existing lake as it was.

Synthetic data also writes its true default probabilities to ``artifacts/truth/`` (for oracle AUC).
"""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
import time
from pathlib import Path
from typing import Any


from loanpipe.core import catalog, contract, storage
from loanpipe.jobs.cli import exit_after, run_job
from loanpipe.core.config import Config, load_config
from loanpipe.core.schema import DataSchema
from loanpipe.core.storage import Lake
from loanpipe.jobs.staging import IngestError, Staged, stage_csv, stage_synthetic

__all__ = ["IngestError", "main", "run_ingest", "stage_csv"]



# -- split and publish ------------------------------------------------------------------------------------

SPLIT_COLUMN = "split"


def with_split(df: Any, schema: DataSchema, test_fraction: float, seed: int) -> Any:
    """Add a ``split`` column ("train"/"test"): a stratified, seeded split. Within each label, rows are
    ordered by a hash of (id, seed) and the first ``test_fraction`` of them go to test, so the split is
    deterministic for the same ids and seed and exact per class.

    The ranking runs on the narrow (id, label) frame and is broadcast back, so the wide rows are never sorted
    or shuffled.
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    ident, label = schema.id_column, schema.label_column
    key = F.xxhash64(F.col(ident).cast("string"), F.lit(seed))
    rank = F.percent_rank().over(Window.partitionBy(label).orderBy("_u", ident))
    flags = (
        df.select(ident, label)
        .withColumn("_u", key)
        .select(ident, F.when(rank < test_fraction, F.lit("test")).otherwise(F.lit("train")).alias(SPLIT_COLUMN))
    )
    return df.join(F.broadcast(flags), on=ident, how="inner").select(*df.columns, SPLIT_COLUMN)


def publish_split(cfg: Config, staged: Staged, lake: Lake, spark: Any) -> dict[str, Any]:
    """Split the staged rows, write train/ and test/ (and truth) to the lake atomically; return a summary."""

    start = time.monotonic()
    schema = staged.schema
    df = spark.read.schema(schema.spark_schema()).parquet(str(staged.data_dir))
    stage = lake.staging_uri("ingest")
    stage_truth = lake.staging_uri("ingest-truth") if staged.truth_dir is not None else None
    try:
        return _write_and_publish(cfg, staged, lake, spark, df, stage, stage_truth, start)
    finally:  # on success the folders were renamed away; on failure they are debris
        for uri in (stage, stage_truth):
            if uri:
                lake.remove(uri)


def _write_and_publish(cfg: Config, staged: Staged, lake: Lake, spark: Any, df: Any, stage: str,
                       stage_truth: str | None, start: float) -> dict[str, Any]:
    from pyspark.sql import functions as F

    schema = staged.schema
    # One pass over the wide rows: both halves written at once, one folder per split value.
    with_split(df, schema, cfg.split.test_fraction, cfg.split.seed).write.partitionBy(SPLIT_COLUMN).parquet(stage)
    stage_train, stage_test = f"{stage}/{SPLIT_COLUMN}=train", f"{stage}/{SPLIT_COLUMN}=test"
    counts = {}
    for name, uri in ((storage.TRAIN, stage_train), (storage.TEST, stage_test)):
        row = spark.read.parquet(uri).agg(F.count("*").alias("n"), F.sum(schema.label_column).alias("d")).first()
        counts[name] = {"rows": int(row["n"]), "defaults": int(row["d"] or 0)}
    if counts[storage.TRAIN]["rows"] + counts[storage.TEST]["rows"] != staged.rows:
        raise IngestError(f"split lost rows: {counts} != {staged.rows}; nothing was published")
    if stage_truth is not None:
        spark.read.parquet(str(staged.truth_dir)).coalesce(1).write.mode("overwrite").parquet(stage_truth)

    # Everything is written; publish. Readers see the old lake or the new one per folder.
    lake.publish(stage_train, catalog.train(lake))
    lake.publish(stage_test, catalog.test(lake))
    truth_uri = catalog.truth(lake)
    if stage_truth is not None:
        lake.publish(stage_truth, truth_uri)
    elif lake.exists(truth_uri):
        lake.remove(truth_uri)  # truth of an earlier synthetic lake does not describe real data
    summary = {
        "source": staged.source,
        "fingerprint": staged.fingerprint,
        "rows": staged.rows,
        "default_rate": round(staged.defaults / staged.rows, 6),
        "label_rule": schema.rule_text,
        **staged.notes,
        "features": len(schema.features),
        "categorical": list(schema.categorical),
        "split": {"test_fraction": cfg.split.test_fraction, "seed": cfg.split.seed, **counts},
        "paths": {"train": catalog.train(lake), "test": catalog.test(lake),
                  "truth": truth_uri if stage_truth else None},
        "seconds": {"stage": staged.seconds, "split_and_write": round(time.monotonic() - start, 2)},
        "ingested_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    lake.write_json(catalog.schema(lake), schema.to_dict())
    t = time.monotonic()
    lake.write_json(catalog.contract(lake), contract.learn(spark.read.parquet(catalog.train(lake)), schema))
    summary["seconds"]["contract"] = round(time.monotonic() - t, 2)
    lake.write_json(catalog.ingest_summary(lake), summary)
    return summary


def downstream_state(lake: Lake) -> list[str]:
    """Folders/artifacts that depend on the current train/test (non-empty ones)."""
    return [label for label, uri in catalog.downstream(lake)
            if (lake.exists(uri) if label.startswith(storage.ARTIFACTS) else lake.has_data(uri))]


def reset_downstream(lake: Lake) -> None:
    for _, uri in catalog.downstream(lake):
        lake.remove(uri)


def schema_changes(old: DataSchema, new: DataSchema) -> list[str]:
    """How the columns of ``new`` differ from ``old`` (empty: the same), in words."""
    changes = []
    for role in ("id_column", "target_column", "label_column"):
        if getattr(old, role) != getattr(new, role):
            changes.append(f"{role} {getattr(old, role)!r} -> {getattr(new, role)!r}")
    added = [c for c in new.features if c not in set(old.features)]
    removed = [c for c in old.features if c not in set(new.features)]
    kind = [c for c in new.features if c in set(old.features) and (c in set(new.categorical)) != (c in set(old.categorical))]
    for what, cols in (("added", added), ("removed", removed), ("changed between number and category", kind)):
        if cols:
            changes.append(f"{len(cols)} {what}: {', '.join(cols[:10])}{' ...' if len(cols) > 10 else ''}")
    return changes


def current_fingerprint(lake: Lake) -> str | None:
    uri = catalog.ingest_summary(lake)
    if not lake.exists(uri) or not lake.has_data(catalog.train(lake)) or not lake.has_data(catalog.test(lake)):
        return None
    return lake.read_json(uri).get("fingerprint")


def run_ingest(cfg: Config, csv_path: str | None = None, rows: int | None = None, seed: int | None = None,
               reset: bool = False, force: bool = False, spark: Any = None) -> dict[str, Any]:
    """Ingest into the lake of ``cfg``; returns the summary (``skipped`` when the same data is already there)."""
    from loanpipe.core.storage import open_lake

    lake = open_lake(cfg.storage)
    rows = cfg.synthetic.rows if rows is None else rows
    seed = cfg.synthetic.seed if seed is None else seed
    wanted = None if csv_path else f"synthetic:v2:rows={rows}:seed={seed}"
    if wanted and not force and not reset and current_fingerprint(lake) == wanted:
        summary = lake.read_json(catalog.ingest_summary(lake))
        return {**summary, "skipped": f"the lake at {lake.root} already holds {wanted}; --force to ingest again"}
    downstream = downstream_state(lake)
    with tempfile.TemporaryDirectory(prefix="loanpipe-ingest-") as tmp:
        work = Path(tmp)
        staged = stage_csv(cfg, csv_path, work) if csv_path else stage_synthetic(cfg, rows, seed, work)
        if downstream and not reset:  # the new data is valid; say what it would orphan, and how it differs
            changes = schema_changes(catalog.read_schema(lake), staged.schema) if lake.exists(catalog.schema(lake)) else []
            raise IngestError(
                f"the lake at {lake.root} already has data built on the current train/test ({', '.join(downstream)}); "
                "ingesting new data would make it inconsistent. "
                + (f"The new data's columns differ from those the models were trained on: {'; '.join(changes)}. "
                   if changes else "")
                + "Pass --reset to remove it, or use another storage.root")
        if spark is None:
            from loanpipe.core.session import get_spark

            spark = get_spark(cfg, app_name="loanpipe-ingest", job="ingest")
        lake.ensure_layout()
        if reset:
            reset_downstream(lake)
        return publish_split(cfg, staged, lake, spark)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m loanpipe.jobs.ingest",
        description="Put a Kaggle-shaped lake (train/ and test/) under the storage root: from the synthetic "
                    "generator (default) or from a real train_v2.csv-format file.",
    )
    parser.add_argument("--config", help="configuration file (default: $LOANPIPE_CONFIG or conf/default.yaml)")
    src = parser.add_mutually_exclusive_group()
    src.add_argument("--csv", help="path of a Kaggle-format CSV (id, features..., loss) to ingest")
    src.add_argument("--rows", type=int, help="synthetic rows (default: synthetic.rows from the config)")
    src.add_argument("--full", action="store_true", help="synthetic at the real file's size (synthetic.full_rows)")
    parser.add_argument("--seed", type=int, help="synthetic seed (default: synthetic.seed)")
    parser.add_argument("--reset", action="store_true", help="also remove batches, scores, models and runs built on the old data")
    parser.add_argument("--force", action="store_true", help="ingest even if the same synthetic data is already there")
    args = parser.parse_args(argv)

    def job() -> dict[str, Any]:
        cfg = load_config(args.config)
        rows = cfg.synthetic.full_rows if args.full else args.rows
        return run_ingest(cfg, csv_path=args.csv, rows=rows, seed=args.seed, reset=args.reset, force=args.force)

    return run_job("ingest", job)


if __name__ == "__main__":
    exit_after(main)
