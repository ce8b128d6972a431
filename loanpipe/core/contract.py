"""The data contract: what a row of a daily batch must satisfy to be scored, learnt from ``train/``.

**Learnt** once per lake from ``train/`` (:func:`learn`), at ingest, and kept as ``artifacts/contract.json``
(a lake ingested before the contract existed gets it from its first daily run, :func:`load_or_learn`):

* each numeric feature's training minimum and maximum over its finite values;
* each categorical feature's levels seen in training (up to ``MAX_LEVELS``; beyond that it is not checked).

**Checked** on every batch before scoring (:func:`check`). A row gets at most one reason, the first that
applies in this order:

* ``null_id``: the id is empty;
* ``non_finite``: a number is +inf or -inf (a missing value, null or NaN, is allowed: the model handles it);
* ``out_of_range``: a number lies beyond its training range widened on each side by ``quality.range_margin``
  times the range's width (a column constant in training has no width and is not checked);
* ``duplicate_id``: the id appears more than once in the batch with different values. An exact repeat of a
  row is not a contradiction: it is scored, and data_gen's summary counts it.

A level never seen in training is not a reason: CatBoost scores an unseen category, so the row is scored and
the level is reported (``new_categories``).

Rows with a reason are set aside whole, with their original values, ``reason`` and ``detail``; the rest is
scored. A daily batch (up to ``quality.driver_check_rows`` rows) is read and checked on the driver, with no Spark
job; a larger one in one Spark pass (``mapInArrow``, numpy per Arrow batch). Either way the checks make a narrow
table (id, row hash, reason): ids with different rows, the counts, examples and new levels are found there, and
the bad rows are picked out of the batch with a broadcast join (:func:`check`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from loanpipe.core import catalog
from loanpipe.core.config import QualityConfig
from loanpipe.core.schema import DataSchema
from loanpipe.core.storage import Lake

MAX_LEVELS = 2000
REASONS = {
    "null_id": "the id is empty",
    "non_finite": "a number is +inf or -inf",
    "out_of_range": "a number lies far beyond its training range",
    "duplicate_id": "the id appears again in the batch with different values",
}
REASON, DETAIL, NEW, ROW = "reason", "detail", "_new_levels", "_row_hash"


def learn(df: Any, schema: DataSchema) -> dict[str, Any]:
    """The contract of ``df`` (``train/``): numeric ranges and categorical levels, one pass over the data (each
    partition summarised with numpy, the driver merging the summaries)."""
    import pyarrow as pa

    cats = list(schema.categorical)
    numeric = [c for c in schema.features if c not in set(cats)]

    def summarise(batches: Iterator[Any]) -> Iterator[Any]:
        lo = np.full(len(numeric), np.inf)
        hi = np.full(len(numeric), -np.inf)
        levels: dict[str, set[str]] = {c: set() for c in cats}
        for batch in batches:
            if numeric:
                x = _matrix(batch, numeric)
                finite = np.where(np.isfinite(x), x, np.nan)
                with np.errstate(all="ignore"):
                    lo = np.fmin(lo, _nanreduce(np.nanmin, finite, np.inf))
                    hi = np.fmax(hi, _nanreduce(np.nanmax, finite, -np.inf))
            for c in cats:
                if len(levels[c]) <= MAX_LEVELS:
                    levels[c].update(v for v in batch.column(c).cast(pa.string()).to_pylist() if v is not None)
        names = numeric + cats
        yield pa.RecordBatch.from_arrays([
            pa.array(names, pa.string()),
            pa.array([*lo.tolist(), *[None] * len(cats)], pa.float64()),
            pa.array([*hi.tolist(), *[None] * len(cats)], pa.float64()),
            pa.array([None] * len(numeric) + [sorted(levels[c]) for c in cats], pa.list_(pa.string())),
        ], names=["column", "lo", "hi", "levels"])

    wanted = set(numeric + cats)  # dropping the few other columns is one JVM call; selecting ~770 is ~770
    rows = df.drop(*[c for c in df.columns if c not in wanted]).mapInArrow(
        summarise, "column string, lo double, hi double, levels array<string>").collect()
    ranges: dict[str, list[float] | None] = {}
    seen: dict[str, set[str] | None] = {c: set() for c in cats}
    for r in rows:
        if r["column"] in seen:
            if seen[r["column"]] is not None:
                seen[r["column"]] |= set(r["levels"] or [])
                if len(seen[r["column"]]) > MAX_LEVELS:
                    seen[r["column"]] = None
            continue
        lo, hi = ranges.get(r["column"]) or [np.inf, -np.inf]
        ranges[r["column"]] = [min(lo, r["lo"]), max(hi, r["hi"])]
    return {
        "numeric": {c: (ranges[c] if c in ranges and np.isfinite(ranges[c]).all() else None) for c in numeric},
        "categorical": {c: (sorted(v) if v is not None else None) for c, v in seen.items()},
    }


def _matrix(batch: Any, columns: list[str]) -> np.ndarray:
    """The Arrow batch's ``columns`` as a float matrix (nulls as NaN)."""
    return np.column_stack([batch.column(c).to_numpy(zero_copy_only=False).astype(np.float64, copy=False)
                            for c in columns]) if columns else np.empty((batch.num_rows, 0))


def _nanreduce(fn: Any, x: np.ndarray, empty: float) -> np.ndarray:
    if x.shape[0] == 0:
        return np.full(x.shape[1], empty)
    out = fn(x, axis=0)
    return np.where(np.isnan(out), empty, out)


def load_or_learn(lake: Lake, spark: Any, schema: DataSchema) -> dict[str, Any]:
    """The lake's contract; learnt from ``train/`` and kept when the lake has none yet."""
    uri = catalog.contract(lake)
    if lake.exists(uri):
        return lake.read_json(uri)
    contract = learn(spark.read.parquet(catalog.train(lake)), schema)
    lake.write_json(uri, contract)
    return contract


def row_reasons(batch: Any, contract: dict[str, Any], schema: DataSchema,
                margin: float) -> tuple[list[str | None], list[str | None], list[str | None]]:
    """(reason, detail, new levels) of each row of the Arrow batch ``batch`` (None: none), by the first check
    that fails (the module docstring's order, duplicates aside: they need the whole batch)."""
    import pyarrow as pa

    n = batch.num_rows
    reason: list[str | None] = [None] * n
    detail: list[str | None] = [None] * n
    ident = schema.id_column
    for i in np.flatnonzero(batch.column(ident).is_null().to_numpy(zero_copy_only=False)):
        reason[i], detail[i] = "null_id", f"{ident} is empty"

    ranges = {c: r for c, r in contract["numeric"].items() if c in batch.schema.names}
    columns = list(ranges)
    x = _matrix(batch, columns)
    infinite = np.isinf(x)
    for i in np.flatnonzero(infinite.any(axis=1)):
        if reason[i] is None:
            j = int(infinite[i].argmax())
            reason[i], detail[i] = "non_finite", f"{columns[j]} = {x[i, j]}"
    lo = np.array([r[0] if r else np.nan for r in ranges.values()], dtype=float)
    hi = np.array([r[1] if r else np.nan for r in ranges.values()], dtype=float)
    width = hi - lo
    checked = np.isfinite(width) & (width > 0)
    lower, upper = lo - margin * width, hi + margin * width
    with np.errstate(invalid="ignore"):
        far = checked & np.isfinite(x) & ((x < lower) | (x > upper))
    for i in np.flatnonzero(far.any(axis=1)):
        if reason[i] is None:
            j = int(far[i].argmax())
            reason[i] = "out_of_range"
            detail[i] = (f"{columns[j]} = {x[i, j]:.6g}, outside the training range [{lo[j]:.6g}, {hi[j]:.6g}] "
                         f"widened by {margin:g} x its width")

    new: list[str | None] = [None] * n
    for c, seen in contract["categorical"].items():
        if seen is None or c not in batch.schema.names:
            continue
        values = batch.column(c).cast(pa.string()).to_pylist()
        known = set(seen)
        for i, v in enumerate(values):
            if v is not None and v not in known:
                new[i] = f"{new[i]}\x1f{c}={v}" if new[i] else f"{c}={v}"
    return reason, detail, new


@dataclass
class Checked:
    """A batch checked against the contract: ``good`` the rows to score (the batch itself when no row is bad),
    ``bad`` the rows to set aside with ``reason``/``detail``, ``report`` the counts, ``bad_ids`` the ids of the bad
    rows (an id's rows are all bad or all good, so ``good`` is the batch less the rows of these ids)."""

    good: Any
    bad: Any
    report: dict[str, Any]
    bad_ids: list[Any] = field(default_factory=list)


def _split_by_id(batch: Any, local: Any, flags: Any, flagged: list[dict[str, Any]], bad_ids: list[Any],
                 ident: str) -> tuple[Any, Any]:
    """The driver's check: (good rows, bad rows with their reasons), the bad ones taken from the driver's copy and
    the good ones the batch less the bad ids (an id's rows are all bad or all good)."""
    import pyarrow as pa
    from pyspark.sql import functions as F
    from pyspark.sql.types import StructField, StructType

    spark = batch.sparkSession
    why = {(r[ident], r[ROW]): (r[REASON], r[DETAIL]) for r in flagged}
    found = [why.get(k) for k in zip(local.column(ident).to_pylist(), flags.column(ROW).to_pylist())]
    rows = local.filter(pa.array([f is not None for f in found], pa.bool_()))
    pairs = [f for f in found if f is not None]
    bad = spark.createDataFrame(rows.append_column(REASON, pa.array([p[0] for p in pairs], pa.string()))
                                .append_column(DETAIL, pa.array([p[1] for p in pairs], pa.string())))
    ids = spark.createDataFrame([(i,) for i in bad_ids],
                                StructType([StructField("_bad_id", batch.schema[ident].dataType)]))
    return batch.join(F.broadcast(ids), F.col(ident).eqNullSafe(F.col("_bad_id")), "left_anti"), bad


def check(batch: Any, contract: dict[str, Any], schema: DataSchema, quality: QualityConfig,
          local: Any = None) -> Checked:
    """Check every row of the Spark DataFrame ``batch`` (see the module docstring). The checks make a narrow
    table: each row's id, a 64-bit hash of its values, and the reason, detail and new levels of the rows that have
    them. Ids with several different hashes are contradictions (``duplicate_id``); the counts, examples and new
    levels come from that table. When no row is bad, the batch is scored as it is, with no join at all.

    * ``local`` (a small batch already read on the driver as a pyarrow Table, ``catalog.read_table``): the checks
      run on the driver, with no Spark job and no Python worker; only rows whose id repeats are hashed. A daily
      batch is a few thousand rows, and in a run's fresh session the Spark pass below costs several seconds of
      JVM and Python worker start-up that its work does not (bench/results/contract.json, cycle.json).
    * otherwise one Spark pass (``mapInArrow``, numpy per Arrow batch, ``xxhash64`` of the row in the JVM) returns
      the narrow table to the driver (about 16 bytes a clean row: 16 MB for a million rows).

    Bad rows are picked out of the batch with a broadcast join: by (id, hash) after the Spark pass; by id after
    the driver's, which is the same thing, because an id's rows are either all bad or all good (identical rows
    share their reasons, and an id with different rows is a contradiction on each of them)."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import LongType, StringType, StructField, StructType

    margin = quality.range_margin
    ident = schema.id_column
    if local is not None:
        flags = flag_table(local, row_hashes(local, ident), contract, schema, margin)
    else:
        keyed = batch.withColumn(ROW, F.expr("xxhash64(*)"))  # `*`: one SQL expression over ~770 columns

        def flag(batches: Iterator[Any]) -> Iterator[Any]:
            for b in batches:
                yield flag_table(b, b.column(ROW), contract, schema, margin)

        out_schema = StructType([batch.schema[ident], StructField(ROW, LongType()), StructField(REASON, StringType()),
                                 StructField(DETAIL, StringType()), StructField(NEW, StringType())])
        flags = keyed.mapInArrow(flag, out_schema).toArrow()
    flagged = with_duplicates(flags, ident)
    report = summarise(flags, flagged, ident, quality.examples)
    spark = batch.sparkSession
    if not flagged:
        empty = batch.limit(0).withColumns({REASON: F.lit(None).cast("string"), DETAIL: F.lit(None).cast("string")})
        return Checked(batch, empty, report)
    id_type = batch.schema[ident].dataType
    bad_ids = list({r[ident] for r in flagged})
    if local is not None:
        good, bad = _split_by_id(batch, local, flags, flagged, bad_ids, ident)
        return Checked(good, bad, report, bad_ids)
    keys = spark.createDataFrame(
        list({(r[ident], r[ROW]): (r[ident], r[ROW], r[REASON], r[DETAIL]) for r in flagged}.values()),
        StructType([StructField("_bad_id", id_type), StructField("_bad_row", LongType()),
                    StructField(REASON, StringType()), StructField(DETAIL, StringType())]))
    on = F.col(ident).eqNullSafe(F.col("_bad_id")) & (F.col(ROW) == F.col("_bad_row"))
    good = keyed.join(F.broadcast(keys), on, "left_anti").drop(ROW)
    bad = keyed.join(F.broadcast(keys), on, "inner").select(*batch.columns, REASON, DETAIL)
    return Checked(good, bad, report, bad_ids)


def flag_table(b: Any, hashes: Any, contract: dict[str, Any], schema: DataSchema, margin: float) -> Any:
    """The narrow table of the Arrow batch (or table) ``b``: id, row hash, reason, detail, new levels."""
    import pyarrow as pa

    reason, detail, new = row_reasons(b, contract, schema, margin)
    arrays = [b.column(schema.id_column), hashes, pa.array(reason, pa.string()), pa.array(detail, pa.string()),
              pa.array(new, pa.string())]
    kind = pa.Table if isinstance(b, pa.Table) else pa.RecordBatch
    return kind.from_arrays(arrays, names=[schema.id_column, ROW, REASON, DETAIL, NEW])


def row_hashes(table: Any, ident: str) -> Any:
    """A 64-bit hash of each row's values (pandas' ``hash_pandas_object``) for the rows whose id is on other
    rows too; 0 for the others (a lone row has no other version to differ from)."""
    import pandas as pd
    import pyarrow as pa

    ids = table.column(ident).to_pandas()
    repeated = (ids.duplicated(keep=False) & ids.notna()).to_numpy()
    out = np.zeros(table.num_rows, dtype=np.int64)
    if repeated.any():
        rows = table.filter(pa.array(repeated)).to_pandas()
        out[repeated] = pd.util.hash_pandas_object(rows, index=False).to_numpy().view(np.int64)
    return pa.array(out, pa.int64())


def with_duplicates(flags: Any, ident: str) -> list[dict[str, Any]]:
    """The rows of the Arrow table ``flags`` that have a reason, ``duplicate_id`` added: a row with no other
    reason whose id is on rows with different hashes (an exact repeat has the same hash and is no reason)."""
    import pyarrow.compute as pc

    has_id = flags.filter(pc.is_valid(flags[ident]))
    versions = has_id.group_by(ident).aggregate([(ROW, "count_distinct"), (ROW, "count")])
    conflicts = versions.filter(pc.greater(versions[f"{ROW}_count_distinct"], 1))
    counts = {r[ident]: (r[f"{ROW}_count"], r[f"{ROW}_count_distinct"]) for r in conflicts.to_pylist()}
    wanted = pc.is_valid(flags[REASON])
    if counts:
        wanted = pc.or_(wanted, pc.is_in(flags[ident], value_set=conflicts[ident]))
    rows = flags.filter(wanted).select([ident, ROW, REASON, DETAIL]).to_pylist()
    for r in rows:
        if r[REASON] is None:
            copies, distinct = counts[r[ident]]
            r[REASON] = "duplicate_id"
            r[DETAIL] = f"{ident} {r[ident]} is on {copies} rows of the batch, with {distinct} different sets of values"
    return rows


def summarise(flags: Any, flagged: list[dict[str, Any]], ident: str, examples: int) -> dict[str, Any]:
    """Rows in, rows set aside per reason (the first ``examples`` of each by id) and the new categorical levels."""
    import pyarrow.compute as pc

    by_reason: dict[str, int] = {}
    shown: dict[str, list[dict[str, Any]]] = {}
    order = sorted(flagged, key=lambda r: (r[ident] is not None, r[ident] if r[ident] is not None else 0, r[DETAIL]))
    for r in order:
        by_reason[r[REASON]] = by_reason.get(r[REASON], 0) + 1
        if len(shown.setdefault(r[REASON], [])) < examples:
            shown[r[REASON]].append({"id": None if r[ident] is None else str(r[ident]), "detail": r[DETAIL]})
    levels: dict[str, int] = {}
    for text in flags[NEW].filter(pc.is_valid(flags[NEW])).to_pylist():
        for level in text.split("\x1f"):
            levels[level] = levels.get(level, 0) + 1
    new_categories: dict[str, dict[str, int]] = {}
    for level, count in sorted(levels.items(), key=lambda kv: (-kv[1], kv[0])):
        column, _, value = level.partition("=")
        new_categories.setdefault(column, {})[value] = count
    quarantined = sum(by_reason.values())
    return {
        "rows_in": flags.num_rows,
        "quarantined": quarantined,
        "scored": flags.num_rows - quarantined,
        "by_reason": {k: by_reason[k] for k in REASONS if k in by_reason},
        "examples": {k: sorted(shown[k], key=lambda e: e["id"] or "") for k in REASONS if k in by_reason},
        "new_categories": new_categories,
    }


def failure_text(source: str, report: dict[str, Any], max_share: float) -> str:
    """Why a batch with too many bad rows fails its run: the share, each reason's count and examples."""
    share = report["quarantined"] / max(report["rows_in"], 1)
    lines = [f"{source}: {report['quarantined']} of {report['rows_in']} rows ({share:.1%}) break the data contract, "
             f"more than quality.max_bad_share = {max_share:.1%}; nothing was scored or published for the date. "
             "Fix the batch (or raise the share) and rerun the date:"]
    for reason, count in report["by_reason"].items():
        shown = "; ".join(f"id {e['id']}: {e['detail']}" for e in report["examples"].get(reason, []))
        lines.append(f"  {reason} ({REASONS[reason]}): {count} row(s), e.g. {shown}")
    return "\n".join(lines)
