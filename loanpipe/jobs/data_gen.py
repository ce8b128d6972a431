"""The new-data job: sample one run date's batch from ``test/`` into ``test_sample/run_date=D/``.

Production scoring receives a new batch of applications every day; this job emulates it, through the same
path real data takes: the batch holds the applications only (id and features, no target or label), and their
outcomes land as records in ``outcomes/arrival_date=A/`` with A = D + ``outcomes.lag_days``, as
``loanpipe.jobs.land outcomes`` lands a real outcome file. Reads as of a date before A do not see them
(``loanpipe.core.maturity``).

* **New data is new.** Rows already in another date's batch are not sampled again, so batches are disjoint.
* **Leak emulation** (``with_replacement``): rows are drawn with replacement from all of ``test/``, so the same
  application can appear twice, or in both an earlier batch and this one, or in ``train_sup/``. The summary
  counts those repeats, so the leak is measured, not hidden.
* **Deterministic and idempotent.** The seed defaults to one derived from the run date; which rows are taken is
  decided by a hash of (id, seed), so a rerun for the same date (with the same other batches) gives the same
  batch and replaces exactly that date's partition. The batch is written to staging and published at the end:
  a failed run leaves every partition, including the previous version of its own, as it was.
"""

from __future__ import annotations

import datetime as dt
import time
import zlib
from dataclasses import dataclass
from typing import Any

from loanpipe.core import catalog, dates, storage
from loanpipe.core.config import Config
from loanpipe.core.schema import DERIVED_ID, DataSchema, SchemaError
from loanpipe.core.storage import Lake
from loanpipe.core.transaction import lease, run_date_transaction


class SamplingError(ValueError):
    """The batch cannot be sampled; the message says why and what to do. Nothing was written."""


@dataclass(frozen=True)
class SampleRequest:
    run_date: dt.date
    fraction: float
    seed: int
    with_replacement: bool


def default_seed(run_date: dt.date, base_seed: int) -> int:
    """A seed that depends only on the run date (and the configured base seed)."""
    return zlib.crc32(f"{run_date.isoformat()}:{base_seed}".encode()) & 0x7FFFFFFF


def make_request(cfg: Config, run_date: str, fraction: float | None = None, seed: int | None = None,
                 with_replacement: bool | None = None) -> SampleRequest:
    """Validate the job's arguments (run date, fraction) against the configuration's defaults."""
    date = dates.parse_run_date(run_date)
    if cfg.batch.source != "emulated":
        raise SamplingError(f"batch.source is {cfg.batch.source}: the day's applications are landed from "
                            f"{cfg.batch.inbox} (python -m loanpipe.jobs.land applications --date {date} "
                            "--from-inbox), not sampled from test/")
    fraction = cfg.sampling.fraction if fraction is None else fraction
    if not 0.0 < fraction <= 1.0:
        raise SamplingError(f"fraction must be in (0, 1] (got {fraction}); e.g. 0.1 samples 10% of test/")
    return SampleRequest(
        run_date=date,
        fraction=fraction,
        seed=default_seed(date, cfg.split.seed) if seed is None else seed,
        with_replacement=cfg.sampling.with_replacement if with_replacement is None else with_replacement,
    )


def load_test(cfg: Config, lake: Lake, spark: Any) -> tuple[Any, DataSchema]:
    """``test/`` as a DataFrame, checked against the configured schema."""
    uri = catalog.test(lake)
    if not lake.has_data(uri):
        raise SamplingError(f"{uri} is missing or empty: there is nothing to sample; run `make ingest` first")
    df = spark.read.parquet(uri)
    expected = expected_schema_config(cfg, lake)
    try:
        schema = DataSchema.from_columns(expected, df.columns, source=uri, id_is_string=dict(df.dtypes).get(
            cfg.schema.id_column or DERIVED_ID) == "string")  # a derived id is text
        schema.check_spark_frame(df, uri)
    except SchemaError as exc:
        raise SamplingError(f"test/ does not match the configured schema: {exc}") from None
    if schema.label_column not in df.columns:
        raise SamplingError(f"{uri} has no {schema.label_column!r} column: it was not written by ingest; re-ingest it")
    return df, schema


def expected_schema_config(cfg: Config, lake: Lake) -> Any:
    """The configured schema, with the feature list the lake was ingested with when the config leaves it open."""
    import dataclasses

    recorded = catalog.schema(lake)
    if cfg.schema.feature_columns is not None or not lake.exists(recorded):
        return cfg.schema
    features = [c for c in DataSchema.from_dict(lake.read_json(recorded)).features
                if c not in set(cfg.schema.exclude_columns)]
    return dataclasses.replace(cfg.schema, feature_columns=features)


def other_batches_ids(lake: Lake, spark: Any, schema: DataSchema, run_date: dt.date) -> Any:
    """Ids in the published batches of every other run date (narrow: id and run_date only)."""
    from pyspark.sql import functions as F

    others = [d for d in catalog.batch_dates(lake) if d != run_date.isoformat()]
    frame = catalog.read_dates(spark, catalog.batches_root(lake), [catalog.batch(lake, d) for d in others])
    if frame is None:
        return None
    return frame.select(schema.id_column, F.col(storage.PARTITION_KEY).cast("string").alias("_from"))


def sample_batch(cfg: Config, lake: Lake, spark: Any, request: SampleRequest) -> dict[str, Any]:
    """Sample, write and publish the batch for ``request.run_date`` as the date's transaction (its lock held,
    what a killed run left repaired first); return the summary."""
    targets = [catalog.batch(lake, request.run_date), catalog.outcomes(lake, arrival_of(cfg, request.run_date))]
    with run_date_transaction(lake, request.run_date, "data_gen", targets, lease(cfg)) as tx:
        return _sample_batch(cfg, tx.lake, spark, request, tx.repaired)


def arrival_of(cfg: Config, run_date: dt.date) -> dt.date:
    """The day the emulated outcomes of ``run_date``'s batch arrive."""
    return run_date + dt.timedelta(days=cfg.outcomes.lag_days)


def outcome_records(drawn: Any, schema: DataSchema, run_date: dt.date, arrival: dt.date) -> Any:
    """The batch's outcomes as the records a landing writes (``loanpipe.jobs.land.outcome_schema``): one per drawn
    row, in id order, observed on their arrival."""
    import pyarrow as pa

    from loanpipe.jobs import land

    ident = schema.id_column
    rows = drawn.select(ident, schema.target_column, schema.label_column).toPandas()
    rows = rows.sort_values(ident, kind="stable").reset_index(drop=True)
    rows[land.OBSERVATION] = arrival
    rows[land.SOURCE] = f"data_gen {run_date.isoformat()}"
    rows[land.LINE] = rows.index.to_numpy() + 1
    rows[land.SEQUENCE] = rows.index.to_numpy()
    return pa.Table.from_pandas(rows, preserve_index=False, schema=land.outcome_schema(schema))


def draw(spark: Any, test: Any, ident: str, total: int, needed: int, earlier: Any | None,
         request: SampleRequest) -> Any:
    """The batch's rows of ``test`` (``total`` rows): ``needed`` of them by a seeded hash of the id, none that an
    earlier batch holds; or, with replacement, ``needed`` row positions drawn by numpy (seeded), so the same
    application may come out more than once."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    key = F.xxhash64(F.col(ident).cast("string"), F.lit(request.seed))
    if not request.with_replacement:
        pool = test.select(ident)
        if earlier is not None:
            pool = pool.join(earlier.select(ident).distinct(), on=ident, how="left_anti")
        chosen = pool.withColumn("_k", key).orderBy("_k", ident).limit(needed).select(ident)
        return test.join(F.broadcast(chosen), on=ident, how="left_semi")
    import numpy as np

    numbered = test.select(ident).withColumn("_pos", F.row_number().over(Window.orderBy(key, F.col(ident))) - 1)
    positions = np.random.default_rng(request.seed).integers(0, total, size=needed)
    picks = spark.createDataFrame([(int(p),) for p in positions], "_pos long")
    chosen = picks.join(numbered, on="_pos").select(ident)
    return test.join(F.broadcast(chosen), on=ident, how="inner")


def _sample_batch(cfg: Config, lake: Lake, spark: Any, request: SampleRequest, repaired: list[str]) -> dict[str, Any]:
    start = time.monotonic()
    test, schema = load_test(cfg, lake, spark)
    ident = schema.id_column
    total = test.count()
    needed = max(1, round(request.fraction * total))
    earlier = other_batches_ids(lake, spark, schema, request.run_date)
    drawn = draw(spark, test, ident, total, needed, earlier, request)
    batch = drawn.select(*schema.application_columns())  # what arrives on D: no outcome
    target = catalog.batch(lake, request.run_date)

    def inspect(written: Any) -> dict[str, Any]:
        stats = batch_stats(lake, spark, schema, written, earlier)
        if stats["rows"] < needed and not request.with_replacement:  # the pool ran out: it held only these rows
            available = int(stats["rows"])
            raise SamplingError(
                f"only {available} unsampled rows are left in test/ ({total} rows, {total - available} already in "
                f"other batches), but the batch needs {needed} (fraction {request.fraction}); lower --fraction, "
                "pass --with-replacement, or re-ingest a larger lake")
        return stats

    stats = catalog.write_dataset(lake, batch, target, expect_rows=needed, inspect=inspect)
    repeats = stats["repeats"]
    rows = int(stats["rows"])
    arrival = arrival_of(cfg, request.run_date)
    records = outcome_records(drawn, schema, request.run_date, arrival)
    outcomes = catalog.write_table(lake, records, catalog.outcomes(lake, arrival), expect_rows=rows)
    defaults = int(records.column(schema.label_column).to_numpy().sum())
    summary = {
        "job": "data_gen",
        "run_date": request.run_date.isoformat(),
        "rows": rows,
        "test_rows": total,
        "fraction": request.fraction,
        "seed": request.seed,
        "with_replacement": request.with_replacement,
        "defaults": defaults,
        "default_rate": round(defaults / rows, 6),
        "repeated_rows": {"within_batch": rows - int(stats["distinct"]), **repeats},
        "output_path": target,
        "outcomes": {"arrival_date": arrival.isoformat(), "path": outcomes["path"], "rows": outcomes["rows"]},
        "seconds": round(time.monotonic() - start, 2),
        "finished_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "repaired": repaired,
    }
    lake.write_json(catalog.data_gen_summary(lake, request.run_date), summary)
    return summary


def batch_stats(lake: Lake, spark: Any, schema: DataSchema, batch: Any, earlier: Any) -> dict[str, Any]:
    """Rows and distinct ids of ``batch``, and its repeats: rows whose id already appeared in other dates' batches
    or in ``train_sup/``. One Spark action (each id flagged by left joins to the distinct earlier ids), not one
    per figure."""
    from pyspark.sql import functions as F

    ident = schema.id_column
    flagged = batch.select(ident)
    sup = catalog.read_dates(spark, catalog.train_sup(lake),
                             [catalog.train_sup_batch(lake, d) for d in catalog.train_sup_dates(lake)])
    seen = {"in_other_batches": earlier.select(ident) if earlier is not None else None,
            "in_train_sup": sup.select(ident) if sup is not None else None}
    for flag, ids in seen.items():
        if ids is not None:
            flagged = flagged.join(ids.distinct().withColumn(flag, F.lit(1)), on=ident, how="left")
    row = flagged.agg(F.count("*").alias("rows"), F.countDistinct(ident).alias("distinct"),
                      *[F.sum(F.col(flag)).alias(flag) for flag, ids in seen.items() if ids is not None]).first()
    stats = row.asDict()
    return {"rows": stats["rows"], "distinct": stats["distinct"],
            "repeats": {flag: int(stats.get(flag) or 0) for flag in seen}}


def run(run_date: str, fraction: float | None = None, seed: int | None = None, with_replacement: bool | None = None,
        config_path: str | None = None, spark: Any = None) -> dict[str, Any]:
    """The job as the entry script runs it: configuration, session, lake, sample, summary."""
    from loanpipe.core.config import load_config
    from loanpipe.core.session import get_spark
    from loanpipe.core.storage import open_lake

    cfg = load_config(config_path)
    request = make_request(cfg, run_date, fraction, seed, with_replacement)  # validate before starting Spark
    lake = open_lake(cfg.storage)
    spark = spark or get_spark(cfg, app_name=f"loanpipe-data_gen-{request.run_date}", job="data_gen")
    return sample_batch(cfg, lake, spark, request)


def main(argv: list[str] | None = None) -> int:
    """``python -m loanpipe.jobs.data_gen --run-date D`` (what ``data_gen/data_gen.py`` runs under spark-submit)."""
    import argparse

    from loanpipe.jobs.cli import run_job

    parser = argparse.ArgumentParser(prog="data_gen", description=ENTRY_HELP,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run-date", required=True, help="the run's logical date, YYYY-MM-DD (Airflow's {{ ds }})")
    parser.add_argument("--fraction", type=float, help="share of test/ to sample (default: sampling.fraction, 0.1)")
    parser.add_argument("--seed", type=int, help="sampling seed (default: derived from the run date)")
    parser.add_argument("--with-replacement", action="store_true", default=None,
                        help="sample with replacement from all of test/: emulates a data leak (repeats are counted)")
    parser.add_argument("--config", help="configuration file (default: $LOANPIPE_CONFIG or conf/default.yaml)")
    args = parser.parse_args(argv)
    return run_job("data_gen", lambda: run(args.run_date, args.fraction, args.seed, args.with_replacement,
                                           args.config))


ENTRY_HELP = """New-data job: sample the run date's batch of "new" applications from test/ into test_sample/
(id and features), and land their outcomes as arriving outcomes.lag_days later (outcomes/arrival_date=A/).

    spark-submit data_gen/data_gen.py --run-date 2026-11-29 [--fraction 0.1] [--seed N] [--with-replacement]
    python -m loanpipe.jobs.data_gen --run-date 2026-11-29     (same thing, Spark from the configuration)

Prints the run summary as JSON (also written to artifacts/data_gen/<date>/summary.json). Exit code 2 and a
message naming the problem on bad input; nothing is written then.
"""


if __name__ == "__main__":
    from loanpipe.jobs.cli import exit_after

    exit_after(main)
