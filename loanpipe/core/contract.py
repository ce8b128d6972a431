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
scored. The checks run inside Spark (``mapInArrow``, numpy per Arrow batch; ids with different rows found by a
narrow aggregation of (id, row hash) joined back by broadcast): the driver only receives the counts, a few
examples and the new levels.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
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
REASON, DETAIL, NEW = "reason", "detail", "_new_levels"


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
    """A batch checked against the contract: ``frame`` is the batch with ``reason``/``detail`` (kept in memory
    for the run), ``good`` the rows to score, ``bad`` the rows to set aside, ``report`` the counts."""

    frame: Any
    good: Any
    bad: Any
    report: dict[str, Any]

    def release(self) -> None:
        self.frame.unpersist()


def check(batch: Any, contract: dict[str, Any], schema: DataSchema, quality: QualityConfig) -> Checked:
    """Check every row of the Spark DataFrame ``batch`` (see the module docstring): one Arrow pass for the row
    checks, a narrow aggregation of (id, hash of the row's values) for ids with several different rows (joined
    back by broadcast: wide rows are never shuffled), then three small actions for the counts, the examples and
    the new levels on the kept frame."""
    import pyarrow as pa
    from pyspark.sql import functions as F
    from pyspark.sql.types import StringType, StructField, StructType

    margin = quality.range_margin
    columns = list(batch.columns)
    ident = schema.id_column

    def flag(batches: Iterator[Any]) -> Iterator[Any]:
        for b in batches:
            reason, detail, new = row_reasons(b, contract, schema, margin)
            yield pa.RecordBatch.from_arrays(
                [*b.columns, pa.array(reason, pa.string()), pa.array(detail, pa.string()), pa.array(new, pa.string())],
                names=[*b.schema.names, REASON, DETAIL, NEW])

    out_schema = StructType([*batch.schema.fields, StructField(REASON, StringType()), StructField(DETAIL, StringType()),
                             StructField(NEW, StringType())])
    flagged = batch.mapInArrow(flag, out_schema)
    # expressions over all ~770 columns are written once as SQL (`*`), not built column by column: each Python
    # call into the JVM costs about a millisecond, thousands of them seconds (bench/results/contract.json)
    conflicts = (batch.filter(F.col(ident).isNotNull()).select(ident, F.expr("xxhash64(*)").alias("_hash")).groupBy(ident)
                 .agg(F.countDistinct("_hash").alias("_versions"), F.count(F.lit(1)).alias("_copies"))
                 .filter(F.col("_versions") > 1))
    joined = flagged.join(F.broadcast(conflicts), on=ident, how="left")
    duplicate = F.col(REASON).isNull() & F.col("_versions").isNotNull()
    frame = joined.withColumns({
        REASON: F.when(duplicate, F.lit("duplicate_id")).otherwise(F.col(REASON)),
        DETAIL: F.when(duplicate, F.format_string(
            f"{ident} %s is on %d rows of the batch, with %d different sets of values",
            F.col(ident).cast("string"), F.col("_copies"), F.col("_versions"))).otherwise(F.col(DETAIL)),
    }).drop("_versions", "_copies")
    if frame.columns[:len(columns)] != columns:  # the join put the id first; keep the batch's order
        frame = frame.select(*columns, REASON, DETAIL, NEW)
    frame = frame.persist()
    report = _report(frame, schema, quality.examples)
    good = frame.filter(F.col(REASON).isNull()).drop(REASON, DETAIL, NEW)
    bad = frame.filter(F.col(REASON).isNotNull()).drop(NEW)
    return Checked(frame, good, bad, report)


def _report(frame: Any, schema: DataSchema, examples: int) -> dict[str, Any]:
    """Rows in, rows set aside per reason (with ``examples`` rows each) and the new categorical levels."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    ident = schema.id_column
    rank = F.row_number().over(Window.partitionBy(REASON).orderBy(F.col(ident).asc_nulls_first(), DETAIL))
    counted = frame.groupBy(REASON).count().collect()
    shown = (frame.filter(F.col(REASON).isNotNull()).withColumn("_rank", rank).filter(F.col("_rank") <= examples)
             .select(REASON, F.col(ident).cast("string").alias("id"), DETAIL).collect())
    levels = (frame.filter(F.col(NEW).isNotNull()).select(F.explode(F.split(F.col(NEW), "\x1f")).alias("level"))
              .groupBy("level").count().collect())
    by_reason = {r[REASON]: int(r["count"]) for r in counted if r[REASON] is not None}
    rows_in = sum(int(r["count"]) for r in counted)
    new_categories: dict[str, dict[str, int]] = {}
    for r in sorted(levels, key=lambda r: (-r["count"], r["level"])):
        column, _, value = r["level"].partition("=")
        new_categories.setdefault(column, {})[value] = int(r["count"])
    return {
        "rows_in": rows_in,
        "quarantined": sum(by_reason.values()),
        "scored": rows_in - sum(by_reason.values()),
        "by_reason": {k: by_reason[k] for k in REASONS if k in by_reason},
        "examples": {k: [{"id": r["id"], "detail": r[DETAIL]} for r in sorted(shown, key=lambda r: (r["id"] or ""))
                         if r[REASON] == k] for k in REASONS if k in by_reason},
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
