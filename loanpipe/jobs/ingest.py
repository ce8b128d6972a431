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
import csv
import datetime as dt
import hashlib
import io
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from loanpipe.core import catalog, contract, storage
from loanpipe.ml import synth
from loanpipe.jobs.cli import run_job
from loanpipe.core.config import Config, load_config
from loanpipe.core.schema import DERIVED_ID, DataSchema, SchemaError
from loanpipe.core.storage import Lake



class IngestError(ValueError):
    """Input data is unusable; the message says which file, row and column, and what to do."""


@dataclass
class Staged:
    """Validated rows in a local Parquet folder, ready for the split."""

    data_dir: Path
    truth_dir: Path | None
    schema: DataSchema
    rows: int
    defaults: int
    source: str
    fingerprint: str
    seconds: float
    notes: dict[str, Any] = field(default_factory=dict)  # what ingest did beyond copying (derived ids, dropped rows)


# -- CSV validation -------------------------------------------------------------------------------------

def _count_lines_and_tail(path: Path) -> tuple[int, bytes, bool]:
    """(number of lines, last line, file ends with newline) with a fast binary scan."""
    n = 0
    last_chunk = b""
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 24):
            n += chunk.count(b"\n")
            last_chunk = (last_chunk + chunk)[-(1 << 20):]
    ends_nl = last_chunk.endswith(b"\n")
    body = last_chunk[:-1] if ends_nl else last_chunk
    if ends_nl and body.endswith(b"\r"):
        body = body[:-1]
    tail = body.rsplit(b"\n", 1)[-1]
    return n + (0 if ends_nl else 1), tail, ends_nl


def _locate_bad_cell(path: Path, schema: DataSchema, header: list[str]) -> str:
    """Find the first cell that breaks the explicit types (slow path, only after pyarrow refused the file)."""
    numeric = [c for c in header if c in set(schema.numeric_features)
               or (c == schema.target_column and not schema.target_is_text) or (c == schema.id_column and not schema.id_is_string)]
    row0 = 0
    for chunk in pd.read_csv(path, dtype=str, keep_default_na=False, chunksize=20_000, usecols=numeric,
                             encoding="utf-8-sig"):
        for col in numeric:
            values = chunk[col].str.strip()
            nonempty = values != ""
            parsed = pd.to_numeric(values.where(nonempty, "0"), errors="coerce")
            bad = parsed.isna() & nonempty
            if bad.any():
                i = int(np.flatnonzero(bad.to_numpy())[0])
                row = row0 + i + 1
                kind = "an integer" if col in (schema.id_column, schema.target_column) else "a number"
                hint = (f"fix the cell, or list {col!r} in schema.categorical_columns if it is a category"
                        if col in schema.features else "fix the cell")
                return (f"{path}: line {row + 1} (data row {row}), column {col!r}: value {values.iloc[i]!r} is not "
                        f"{kind}; {hint}")
        row0 += len(chunk)
    return ""


def _field_count_error(path: Path, n_columns: int) -> str:
    with path.open(newline="", encoding="utf-8-sig") as fh:
        for line_no, fields in enumerate(csv.reader(fh), start=1):
            if len(fields) != n_columns:
                return (f"{path}: line {line_no} (data row {line_no - 1}) has {len(fields)} fields but the header "
                        f"has {n_columns}; fix or remove that line")
    return ""


def stage_csv(cfg: Config, csv_path: str | Path, work_dir: Path) -> Staged:
    """Validate a Kaggle-format CSV and convert it into a local Parquet staging folder."""
    start = time.monotonic()
    path = Path(csv_path)
    if not path.is_file():
        raise IngestError(f"{path}: no such file; pass the path of the CSV (e.g. train_v2.csv)")
    if path.stat().st_size == 0:
        raise IngestError(f"{path}: the file is empty; export the data again")
    with path.open(newline="", encoding="utf-8-sig") as fh:  # a byte-order mark, as spreadsheets write it, is not a name
        header = next(csv.reader(fh), [])
    header = [h.strip() for h in header]
    if not header or header == [""]:
        raise IngestError(f"{path}: the first line (header) is empty; the file needs a header row")
    try:
        sample = pd.read_csv(path, nrows=1000, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except Exception as exc:  # noqa: BLE001 - pandas raises many types; all mean "unreadable"
        raise IngestError(f"{path}: cannot be read as CSV ({exc})") from None
    if len(sample) == 0:
        raise IngestError(f"{path}: has a header but no data rows; export the data again")
    id_col = cfg.schema.id_column
    derive_id = id_col is None
    if derive_id and DERIVED_ID in header:
        raise IngestError(f"{path}: has a column named {DERIVED_ID!r}, the name of the id derived when "
                          f"schema.id_column is null; set schema.id_column: {DERIVED_ID} to use it as the id")
    id_is_string = derive_id or (id_col in sample and not sample[id_col].str.strip().str.fullmatch(r"-?\d+").all())
    try:
        schema = DataSchema.from_columns(cfg.schema, header + ([DERIVED_ID] if derive_id else []), source=str(path),
                                         id_is_string=bool(id_is_string))
    except SchemaError as exc:
        raise IngestError(str(exc)) from None
    if schema.label_column in header:
        raise IngestError(f"{path}: has a column named {schema.label_column!r}, which ingest creates from the target; "
                          f"rename it or set schema.label_column")

    n_lines, tail, _ = _count_lines_and_tail(path)
    tail_fields = next(csv.reader(io.StringIO(tail.decode(errors="replace"))), [])
    if tail.strip() and len(tail_fields) < len(header):
        raise IngestError(
            f"{path}: the last line (line {n_lines}, data row {n_lines - 1}) has {len(tail_fields)} of "
            f"{len(header)} fields: the file looks truncated; download or export it again"
        )

    types = {c: schema.arrow_type(c) for c in header if c in schema.lake_columns()}
    strip = list(cfg.schema.numeric_strip)
    cleaned = [c for c, t in types.items() if strip and t != pa.string()]  # read as text, cleaned, then parsed
    types.update({c: pa.string() for c in cleaned})
    fingerprint = _file_fingerprint(path)
    convert = pacsv.ConvertOptions(column_types=types, include_columns=[c for c in header if c in types],
                                   strings_can_be_null=True, null_values=["", "NA", "NaN", "nan", "null", "NULL"])
    out_dir = work_dir / "data"
    out_dir.mkdir(parents=True)
    arrow_schema = schema.arrow_schema()
    rows = defaults = seen = dropped = infinite = 0
    ids: list[np.ndarray] = []
    try:
        reader = pacsv.open_csv(path, read_options=pacsv.ReadOptions(block_size=1 << 24), convert_options=convert,
                                parse_options=pacsv.ParseOptions(newlines_in_values=True))  # quoted line breaks
        with pq.ParquetWriter(out_dir / "part-00000.parquet", arrow_schema) as writer:
            for batch in reader:
                frame = batch.to_pandas()
                offset, seen = seen, seen + len(frame)
                if derive_id:  # stable: the same file gives the same ids, another file other ids
                    frame[DERIVED_ID] = [f"{fingerprint[7:19]}-{offset + i + 1}" for i in range(len(frame))]
                for col in cleaned:
                    frame[col] = _parse_numbers(frame[col], strip, path, col, offset, schema)
                if cfg.schema.drop_missing_target:
                    keep = frame[schema.target_column].notna().to_numpy()
                    dropped += int((~keep).sum())
                    frame = frame[keep]
                _check_batch(frame, schema, path, offset)
                infinite += _infinite_cells(frame, schema, path, offset, cfg.schema.on_infinite)
                ids.append(frame[schema.id_column].to_numpy())
                frame[schema.label_column] = schema.binarise(frame[schema.target_column]).astype("int32")
                defaults += int(frame[schema.label_column].sum())
                table = pa.Table.from_pandas(frame[schema.lake_columns()], schema=arrow_schema, preserve_index=False)
                writer.write_table(table)
                rows += len(frame)
    except pa.ArrowInvalid as exc:
        detail = _field_count_error(path, len(header)) or _locate_bad_cell(path, schema, header)
        raise IngestError(detail or f"{path}: not a valid CSV for the configured schema ({exc})") from None
    if rows == 0:
        raise IngestError(f"{path}: has a header but no data rows; export the data again")
    _check_unique_ids(np.concatenate(ids), schema, path)
    notes = {}
    if derive_id:
        notes["derived_id"] = (f"the file has no id column: {DERIVED_ID!r} = the first 12 hex digits of its sha256 "
                               "and the data row number")
    if cfg.schema.drop_missing_target:
        notes["dropped_missing_target"] = dropped
    if cfg.schema.on_infinite == "missing":
        notes["infinite_as_missing"] = infinite
    return Staged(out_dir, None, schema, rows, defaults, str(path), fingerprint,
                  round(time.monotonic() - start, 2), notes)


def _parse_numbers(text: pd.Series, strip: list[str], path: Path, col: str, offset: int,
                   schema: DataSchema) -> pd.Series:
    """Numbers written with characters to ignore (``schema.numeric_strip``: "$60,000.00 " -> 60000.0)."""
    cleaned = text.str.strip()
    for ch in strip:
        cleaned = cleaned.str.replace(ch, "", regex=False)
    cleaned = cleaned.str.strip()
    values = pd.to_numeric(cleaned.where(cleaned != "", None), errors="coerce")
    bad = (values.isna() & cleaned.notna() & (cleaned != "")).to_numpy()
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        row = offset + i + 1
        raise IngestError(f"{path}: line {row + 1} (data row {row}), column {col!r}: value {text.iloc[i]!r} is not a "
                          f"number even without {strip}; fix the cell, or list {col!r} in schema.categorical_columns")
    if col == schema.target_column and schema.target_is_integer:
        return values.astype("Int64")
    return values.astype(float)


def _check_batch(frame: pd.DataFrame, schema: DataSchema, path: Path, offset: int) -> None:
    for col, what in ((schema.id_column, "id"), (schema.target_column, "target")):
        null = frame[col].isna().to_numpy()
        if null.any():
            row = int(frame.index[np.flatnonzero(null)[0]]) + offset + 1
            hint = " (or set schema.drop_missing_target: true to leave such rows out)" if what == "target" else ""
            raise IngestError(f"{path}: line {row + 1} (data row {row}): the {what} column {col!r} is empty; "
                              f"every row needs an {what}: fill it in or drop the row{hint}")
    if schema.target_is_integer and not schema.target_is_text:
        target = frame[schema.target_column]
        if (target < 0).any():
            row = int(frame.index[np.flatnonzero((target < 0).to_numpy())[0]]) + offset + 1
            raise IngestError(f"{path}: line {row + 1} (data row {row}): target {schema.target_column!r} is negative")


def _infinite_cells(frame: pd.DataFrame, schema: DataSchema, path: Path, offset: int, on_infinite: str) -> int:
    """Feature cells reading inf or -inf: refused naming the first (``fail``), or set missing in ``frame``
    (``missing``); returns how many were set missing."""
    columns = [c for c in schema.numeric_features if c in frame.columns]
    if not columns:
        return 0
    values = frame[columns].to_numpy(dtype=float, na_value=np.nan)
    infinite = np.isinf(values)
    if not infinite.any():
        return 0
    if on_infinite == "fail":
        i, j = (int(v[0]) for v in np.nonzero(infinite))
        row = int(frame.index[i]) + offset + 1
        raise IngestError(f"{path}: line {row + 1} (data row {row}), column {columns[j]!r}: value {values[i, j]} is "
                          "infinite; fix the cell, or set schema.on_infinite: missing to store such cells as missing")
    for j in np.flatnonzero(infinite.any(axis=0)):
        frame.loc[infinite[:, j], columns[j]] = np.nan
    return int(infinite.sum())


def _check_unique_ids(ids: np.ndarray, schema: DataSchema, path: Path) -> None:
    values, first_index, counts = np.unique(ids, return_index=True, return_counts=True)
    if (counts > 1).any():
        dup = values[counts > 1]
        rows = np.flatnonzero(ids == dup[0])[:3] + 1
        raise IngestError(
            f"{path}: {len(dup)} duplicate id value(s) in column {schema.id_column!r}, e.g. {dup[0].item()!r} on data rows "
            f"{', '.join(map(str, rows))} (lines {', '.join(str(r + 1) for r in rows)}); ids must be unique: "
            "remove the duplicates"
        )


def _file_fingerprint(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 24):
            digest.update(chunk)
    return f"sha256:{digest.hexdigest()}"


# -- synthetic data ---------------------------------------------------------------------------------------

def stage_synthetic(cfg: Config, rows: int, seed: int, work_dir: Path) -> Staged:
    """Generate ``rows`` synthetic rows (in chunks) into a local Parquet staging folder, truth beside it."""
    start = time.monotonic()
    schema = DataSchema.from_columns(cfg.schema, [synth.ID_COLUMN, *synth.FEATURE_NAMES, synth.TARGET_COLUMN],
                                     source="synthetic generator")
    out_dir, truth_dir = work_dir / "data", work_dir / "truth"
    out_dir.mkdir(parents=True)
    truth_dir.mkdir(parents=True)
    arrow_schema = schema.arrow_schema()
    n = defaults = 0
    truth_schema = pa.schema([pa.field(schema.id_column, pa.int64(), False), pa.field(synth.TRUTH_COLUMN, pa.float64())])
    with pq.ParquetWriter(out_dir / "part-00000.parquet", arrow_schema) as writer, \
            pq.ParquetWriter(truth_dir / "part-00000.parquet", truth_schema) as twriter:
        for frame, truth in synth.generate_chunks(rows, seed, cfg.synthetic.chunk_rows):
            frame[schema.label_column] = schema.binarise(frame[schema.target_column]).astype("int32")
            defaults += int(frame[schema.label_column].sum())
            writer.write_table(pa.Table.from_pandas(frame[schema.lake_columns()], schema=arrow_schema, preserve_index=False))
            twriter.write_table(pa.Table.from_pandas(truth, schema=truth_schema, preserve_index=False))
            n += len(frame)
    fingerprint = f"synthetic:v2:rows={rows}:seed={seed}"
    return Staged(out_dir, truth_dir, schema, n, defaults, f"synthetic(rows={rows}, seed={seed})", fingerprint,
                  round(time.monotonic() - start, 2))


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
    sys.exit(main())
