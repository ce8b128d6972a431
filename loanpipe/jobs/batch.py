"""The run date's batch as the daily job takes it in: published, its columns checked against the lake's schema,
each row checked against the data contract (``loanpipe.core.contract``), the bad rows quarantined.

Missing or extra columns, wrong types or no rows stop the run before anything is written. Bad rows go to
``test_sample_quarantine/run_date=D`` with their reason and the rest is scored; more than
``quality.max_bad_share`` of them stops the run before anything of the date is written.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

from loanpipe.core import catalog, contract, storage
from loanpipe.core.context import RunContext
from loanpipe.core.schema import DataSchema, SchemaError


class BatchError(ValueError):
    """The run date's batch is unusable; nothing was written and the champion stays."""


@dataclass
class DailyBatch:
    """The checked batch: its good rows (``frame``), where it was read, and the contract's report."""

    frame: Any
    uri: str
    checked: contract.Checked
    quality: dict[str, Any]

    @property
    def rows_in(self) -> int:
        return self.quality["rows_in"]

    @property
    def rows(self) -> int:
        """The rows that are scored: the batch less its quarantined rows."""
        return self.quality["scored"]


def check_batch(df: Any, schema: DataSchema, source: str, on_extra_columns: str = "fail") -> tuple[Any, list[str]]:
    """Validate a batch's columns against the lake schema: (the batch, the columns dropped).
    Raises BatchError naming the problem. A missing column always fails; a column the lake does not have fails,
    or is dropped with a warning (``quality.on_extra_columns``). Row-level problems are the data contract's
    (``loanpipe.core.contract``): those rows are set aside, not the batch."""
    expected = schema.application_columns()
    present = [c for c in df.columns if c != storage.PARTITION_KEY]
    missing = [c for c in expected if c not in present]
    extra = [c for c in present if c not in expected]
    if missing:
        features = [c for c in missing if c in set(schema.features)]
        raise BatchError(f"{source}: missing column(s) {missing[:10]} ({len(missing)} in all"
                         f"{f', model features among them: {features[:10]}' if features else ''}); the batch must "
                         "have the id and feature columns of test/ — regenerate it with data_gen")
    if extra and on_extra_columns == "fail":
        outcome = [c for c in extra if c in (schema.target_column, schema.label_column)]
        raise BatchError(f"{source}: unexpected column(s) {extra[:10]}; the batch must have exactly the id and "
                         "feature columns of test/ "
                         f"{'(outcomes land separately: loanpipe.jobs.land outcomes) ' if outcome else ''}"
                         "— regenerate it with data_gen, re-ingest with the new columns, or set "
                         "quality.on_extra_columns: drop")
    if extra:
        print(f"WARNING {source}: dropped column(s) the lake does not have: {extra[:10]} ({len(extra)} in all; "
              "quality.on_extra_columns = drop)", file=sys.stderr, flush=True)
        df = df.drop(*extra)
    try:
        schema.check_spark_frame(df, source, need_target=False)
    except SchemaError as exc:
        raise BatchError(str(exc)) from None
    return df, extra


def load_batch(ctx: RunContext) -> tuple[Any, str, list[str]]:
    """The published batch of the run date, its columns checked: (frame, uri, columns dropped). Its rows are
    counted by the data contract's pass (``apply_contract``), not by a Spark job of their own."""
    uri = catalog.batch(ctx.lake, ctx.run_date)
    if not ctx.lake.is_published(uri):
        raise BatchError(f"no published batch for {ctx.run_date} at {uri}; run data_gen for that date first")
    df, dropped = check_batch(ctx.read(uri), ctx.schema, uri, ctx.cfg.quality.on_extra_columns)
    return df, uri, dropped


def apply_contract(ctx: RunContext, batch: Any, source: str) -> tuple[contract.Checked, dict[str, Any]]:
    """Check the batch's rows against the lake's data contract and set the bad ones aside in
    ``test_sample_quarantine/run_date=D`` (published, empty when none); more than ``quality.max_bad_share``
    of them fails the run before anything of the date is written."""
    cfg, lake = ctx.cfg, ctx.lake
    small = cfg.quality.driver_check_rows
    local = catalog.read_table(lake, source, batch.columns, max_rows=small) if small else None
    checked = contract.check(batch, contract.load_or_learn(lake, ctx.spark, ctx.schema), ctx.schema, cfg.quality, local)
    report = checked.report
    if report["rows_in"] == 0:
        raise BatchError(f"{source}: the batch has no rows; rerun data_gen for this date")
    if report["quarantined"] > cfg.quality.max_bad_share * report["rows_in"]:
        raise BatchError(contract.failure_text(source, report, cfg.quality.max_bad_share))
    # at most max_bad_share of the batch: written from the driver, one Parquet file (none: an empty one, no job)
    bad = checked.bad.toArrow() if report["quarantined"] else catalog.empty_table(checked.bad.schema)
    target = catalog.quarantine(lake, ctx.run_date)
    catalog.write_table(lake, bad, target, expect_rows=report["quarantined"])
    return checked, {**report, "path": target}


def take_batch(ctx: RunContext) -> DailyBatch:
    """The check stage: the batch loaded, its columns checked, its bad rows quarantined."""
    frame, uri, dropped = load_batch(ctx)
    checked, quality = apply_contract(ctx, frame, uri)
    return DailyBatch(checked.good, uri, checked, {**quality, "dropped_columns": dropped})
