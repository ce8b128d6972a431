"""The lake catalog: every location the pipeline reads or writes, one function each, and the two ways to write.

No other module builds a lake path by hand; they ask here. Layout (same names locally and in a bucket)::

    train/ test/                                   ingest (``train``, ``test``)
    test_sample/run_date=D/                        the batch for run date D (``batch``)
    train_sup/run_date=D/                          labelled batch D, appended once (``train_sup_batch``); train_sup
                                                   as of D = train + batches <= D, latest label per id
    test_sample_inference/run_date=D/              the scores the business reads (``scores``)
    test_sample_quarantine/run_date=D/             batch D's rows that break the data contract, with the
                                                   reason (``quarantine``; ``loanpipe.core.contract``)
    outcomes/arrival_date=A/                       the outcome records that arrived on A (``outcomes``;
                                                   which labels they mature: ``loanpipe.core.maturity``)
    outcomes_quarantine/arrival_date=A/            the records of A that were refused, with the reason
                                                   (``outcomes_quarantine``)
    applications_quarantine/run_date=D/            landed application rows of D that could not be read
                                                   (``applications_quarantine``)
    artifacts/runs/D/<name>                        one daily run's plots, metrics, summary (``run_artifact``)
    artifacts/data_gen/D/summary.json              the new-data job's summary (``data_gen_summary``)
    artifacts/models/<version>/<name>              a model folder (``model``)
    artifacts/alerts/D/<name>.html                 every report and alert of date D, mailed or not (``alert``)
    artifacts/models/ledger.json                   which model scores and serves when (``ledger``)
    artifacts/schema.json, contract.json, ingest/summary.json, truth/
                                                   what ingest learnt (``schema``, ``contract``,
                                                   ``ingest_summary``, ``truth``)
    _locks/D.json, _locks/ledger.json              held while a job of run date D runs (``run_lock``), while
                                                   the ledger is updated (``lock``)
    _staging/D/                                    run date D's work in progress (``Lake.owned_by``)

Writes: :func:`write_dataset` (a Spark DataFrame, staged, counted, published whole), :func:`write_table` (a small
pyarrow Table the driver holds, the same way without a Spark job) and :func:`publish_folder` (a folder of small
files, staged and published whole). All leave nothing in ``_staging`` whatever happens.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from loanpipe.core import dates
from loanpipe.core.storage import (APPLICATIONS_QUARANTINE, ARTIFACTS, INFERENCE, OUTCOMES, OUTCOMES_QUARANTINE, QUARANTINE, TEST, TEST_SAMPLE,
                                   TRAIN, TRAIN_SUP, Lake, StorageError)

if TYPE_CHECKING:  # the schema needs pyarrow; the Airflow side asks the catalog for paths only
    from loanpipe.core.schema import DataSchema

RUNS = "runs"
MODELS = "models"
DATA_GEN = "data_gen"
ALERTS = "alerts"
RUN_SUMMARY = "summary.json"
LOCKS = "_locks"  # underscore: Spark and listings skip it


# -- data folders -------------------------------------------------------------------------------------

def train(lake: Lake) -> str:
    return lake.uri(TRAIN)


def test(lake: Lake) -> str:
    return lake.uri(TEST)


def train_sup(lake: Lake) -> str:
    return lake.uri(TRAIN_SUP)


def train_sup_batch(lake: Lake, run_date: dt.date | str) -> str:
    """The labelled batch of ``run_date`` as train_sup holds it: appended once, one partition per date."""
    return lake.partition_uri(TRAIN_SUP, run_date)


def train_sup_dates(lake: Lake) -> list[str]:
    """Run dates whose labelled batch train_sup holds (published), oldest first."""
    return [d for d in lake.list_partitions(TRAIN_SUP) if lake.is_published(train_sup_batch(lake, d))]


def batch(lake: Lake, run_date: dt.date | str) -> str:
    return lake.partition_uri(TEST_SAMPLE, run_date)


def batches_root(lake: Lake) -> str:
    return lake.uri(TEST_SAMPLE)


def read_dates(spark: Any, root: str, uris: list[str]) -> Any | None:
    """The date partitions ``uris`` of the partitioned folder ``root`` as one Spark DataFrame with its
    ``run_date`` column (None when there are none). One read, one relation, whatever the number of dates: a
    union of one read per date made the plan, and the daily jobs, slower with every date of history
    (bench/results/growth-4617ff7-stopped.json)."""
    if not uris:
        return None
    return spark.read.option("basePath", root).parquet(*uris)


def scores(lake: Lake, run_date: dt.date | str) -> str:
    return lake.partition_uri(INFERENCE, run_date)


def quarantine(lake: Lake, run_date: dt.date | str) -> str:
    return lake.partition_uri(QUARANTINE, run_date)


def scores_root(lake: Lake) -> str:
    return lake.uri(INFERENCE)


def batch_dates(lake: Lake) -> list[str]:
    """Run dates whose batch is published (complete), oldest first."""
    return [d for d in lake.list_partitions(TEST_SAMPLE) if lake.is_published(batch(lake, d))]


def outcomes(lake: Lake, arrival: dt.date | str) -> str:
    """The outcome records that arrived on ``arrival``, as landed (``loanpipe.jobs.land``)."""
    return lake.partition_uri(OUTCOMES, arrival, dates.ARRIVAL_KEY)


def outcomes_quarantine(lake: Lake, arrival: dt.date | str) -> str:
    return lake.partition_uri(OUTCOMES_QUARANTINE, arrival, dates.ARRIVAL_KEY)


def applications_quarantine(lake: Lake, run_date: dt.date | str) -> str:
    """The rows of run date D's landed application files that could not be read as applications, with the reason
    (``loanpipe.jobs.land applications``)."""
    return lake.partition_uri(APPLICATIONS_QUARANTINE, run_date)


def outcome_dates(lake: Lake) -> list[str]:
    """Arrival dates whose outcome records are published, oldest first."""
    return [d for d in lake.list_partitions(OUTCOMES, dates.ARRIVAL_KEY) if lake.is_published(outcomes(lake, d))]


def score_dates(lake: Lake) -> list[str]:
    """Run dates whose scores are published (complete), oldest first."""
    return [d for d in lake.list_partitions(INFERENCE) if lake.is_published(scores(lake, d))]


# -- artifacts -----------------------------------------------------------------------------------------

def run_artifact(lake: Lake, run_date: dt.date | str, name: str = "") -> str:
    return lake.uri(ARTIFACTS, RUNS, dates.day(run_date), name)


def data_gen_summary(lake: Lake, run_date: dt.date | str) -> str:
    return lake.uri(ARTIFACTS, DATA_GEN, dates.day(run_date), "summary.json")


def model(lake: Lake, version: str = "", name: str = "") -> str:
    """A model's folder (or one of its files); ``model(lake)`` is the folder of all models."""
    return lake.uri(ARTIFACTS, MODELS, version, name)


def alert(lake: Lake, run_date: dt.date | str, name: str = "") -> str:
    """A report or alert as it was (or should have been) mailed, kept whether or not the mail went out."""
    return lake.uri(ARTIFACTS, ALERTS, dates.day(run_date), name)


def lock(lake: Lake, name: str) -> str:
    """A lock (``loanpipe.core.transaction``): present while its holder works."""
    return lake.uri(LOCKS, f"{name}.json")


def run_lock(lake: Lake, run_date: dt.date | str) -> str:
    """The lock of a run date: present while a job of that date runs."""
    return lock(lake, dates.day(run_date))


def ledger(lake: Lake) -> str:
    """The promotion ledger (``loanpipe.ml.model``): which model scored and served after each deciding date."""
    return lake.uri(ARTIFACTS, MODELS, "ledger.json")


def schema(lake: Lake) -> str:
    return lake.uri(ARTIFACTS, "schema.json")


def read_schema(lake: Lake) -> "DataSchema":
    """The schema recorded by the last ingest."""
    from loanpipe.core.schema import DataSchema, SchemaError

    uri = schema(lake)
    if not lake.exists(uri):
        raise SchemaError(f"{uri} does not exist: the lake at {lake.root} was never ingested; run `make ingest`")
    return DataSchema.from_dict(lake.read_json(uri))


def contract(lake: Lake) -> str:
    """The data contract learnt from train/ (``loanpipe.core.contract``)."""
    return lake.uri(ARTIFACTS, "contract.json")


def ingest_summary(lake: Lake) -> str:
    return lake.uri(ARTIFACTS, "ingest", "summary.json")


def truth(lake: Lake) -> str:
    """True default probabilities of a synthetic lake's rows (absent for real data)."""
    return lake.uri(ARTIFACTS, "truth")


# What a re-ingest invalidates: every folder and artifact built on the current train/test.
DOWNSTREAM_FOLDERS = (TEST_SAMPLE, TRAIN_SUP, INFERENCE, QUARANTINE)
DOWNSTREAM_ARTIFACTS = (MODELS, RUNS, DATA_GEN, ALERTS)


def downstream(lake: Lake) -> list[tuple[str, str]]:
    """(label, uri) of every location that depends on the current train/test."""
    return [(f, lake.uri(f)) for f in DOWNSTREAM_FOLDERS] + [
        (f"{ARTIFACTS}/{a}", lake.uri(ARTIFACTS, a)) for a in DOWNSTREAM_ARTIFACTS]


# -- writing -------------------------------------------------------------------------------------------

def write_dataset(lake: Lake, df: Any, target: str, expect_rows: int | None = None,
                  inspect: Callable[[Any], Mapping[str, Any]] | None = None) -> dict[str, Any]:
    """Write the Spark DataFrame ``df`` to ``target`` as a whole: stage it, read it back, count it, publish it.

    ``inspect(written)`` may compute more from the staged copy before it is published (it may return ``rows``
    itself, saving the count). When ``expect_rows`` is given and differs, nothing is published. Returns the
    inspection with ``rows`` and ``path``. The staging folder is removed on success and on failure alike.
    """
    stage = lake.staging_uri(target.rstrip("/").rsplit("/", 1)[-1])
    try:
        df.write.mode("overwrite").parquet(stage)
        written = df.sparkSession.read.parquet(stage)
        found = dict(inspect(written)) if inspect else {}
        rows = int(found["rows"]) if "rows" in found else written.count()
        if expect_rows is not None and rows != expect_rows:
            raise StorageError(f"wrote {rows} rows for {target}, expected {expect_rows}; nothing was published")
        lake.publish(stage, target)
    finally:
        lake.remove(stage)
    return {**found, "rows": rows, "path": target}


def write_table(lake: Lake, table: Any, target: str, expect_rows: int | None = None) -> dict[str, Any]:
    """Write the (small) pyarrow Table ``table`` to ``target`` as one Parquet file from the driver, staged and
    published whole like :func:`write_dataset`: for what the driver already holds, without a Spark job."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if expect_rows is not None and table.num_rows != expect_rows:
        raise StorageError(f"{table.num_rows} rows for {target}, expected {expect_rows}; nothing was published")
    stage = lake.staging_uri(target.rstrip("/").rsplit("/", 1)[-1])
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="snappy")
    try:
        lake.write_bytes(f"{stage}/part-00000.snappy.parquet", sink.getvalue().to_pybytes())
        lake.publish(stage, target)
    finally:
        lake.remove(stage)
    return {"rows": table.num_rows, "path": target}


def parquet_files(lake: Lake, uri: str) -> list[str]:
    """The Parquet data files of the published dataset ``uri`` (its manifest's; hidden and ``_`` files left out, as
    Spark's reader leaves them), as URIs."""
    return [f for f in lake.published_files(uri)
            if f.endswith(".parquet") and not f.rsplit("/", 1)[-1].startswith((".", "_"))]


def read_table(lake: Lake, uri: str, columns: list[str] | None = None, max_rows: int | None = None,
               again: str = "read it again") -> Any:
    """The published dataset ``uri`` (exactly its manifest's Parquet files) as one pyarrow Table on the driver,
    without Spark; ``columns`` only, when given. With ``max_rows``: None when the files hold more rows than that
    (each file's footer is counted as the file is fetched: the files after the limit are not fetched, and none is
    decoded). A file that vanishes while it is read (the folder was replaced) is an error telling the caller to
    ``again``: never half of one version and half of another."""
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    files = parquet_files(lake, uri)
    parts, rows = [], 0
    for f in files:
        try:
            data = lake.read_bytes(f)
        except StorageError as exc:
            raise StorageError(f"{uri} changed while reading ({exc}): the partition was replaced or deleted; "
                               f"{again}") from None
        parts.append(pq.ParquetFile(io.BytesIO(data)))
        rows += parts[-1].metadata.num_rows
        if max_rows is not None and rows > max_rows:
            return None
    return pa.concat_tables([part.read(columns=columns) for part in parts]) if parts else None


def empty_table(spark_schema: Any) -> Any:
    """A pyarrow Table with no rows and the columns of the Spark schema ``spark_schema``."""
    from pyspark.sql.pandas.types import to_arrow_schema

    return to_arrow_schema(spark_schema).empty_table()


def publish_folder(lake: Lake, target: str, files: Mapping[str, bytes | Any]) -> str:
    """Publish a folder of small files whole: ``bytes`` values as they are, anything else as JSON."""
    stage = lake.staging_uri(target.rstrip("/").rsplit("/", 1)[-1])
    try:
        for name, content in files.items():
            if isinstance(content, bytes):
                lake.write_bytes(f"{stage}/{name}", content)
            else:
                lake.write_json(f"{stage}/{name}", content)
        lake.publish(stage, target)
    finally:
        lake.remove(stage)
    return target
