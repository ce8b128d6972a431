"""The lake: one root (a local folder or an S3 prefix) with fixed folder names, and atomic publishing.

Layout (same names locally and in a bucket)::

    <root>/train/                      training data (Parquet)
    <root>/test/                       held-out data that emulates new applications (Parquet)
    <root>/test_sample/run_date=D/     the batch sampled for run date D
    <root>/train_sup/                  train enriched with labelled batches
    <root>/test_sample_inference/run_date=D/   the scores the business reads
    <root>/outcomes/arrival_date=A/    outcome records (id, target) that arrived on A
    <root>/artifacts/                  plots, metrics, models, run summaries, reports
    <root>/_staging/                   work in progress; never read by anyone (Spark skips ``_`` paths)

Every write goes to ``_staging/<unique>/`` first and is *published* at the end, and a published folder carries
a ``_SUCCESS`` marker whose content is the manifest of its files:

* local folder (:class:`~loanpipe.core.storage.local.LocalLake`): the folder is swapped in by rename, so readers see the old version or the new
  one, never half of one; a failed job leaves the previous version in place.
* S3 prefix (:class:`~loanpipe.core.storage.s3.S3Lake`; Spark writes through ``s3a://``, small objects go through boto3): S3 has no
  rename, so publishing journals its plan, removes the marker, copies the new objects in (server side),
  deletes what is left of the old version and writes the marker last. Readers that honour the marker (the
  jobs, the sensor, ``loanpipe.jobs.fetch_scores``) never read a half-published folder; a copy that fails is
  rolled back to the old version and its marker.

A process killed in the middle of a publish (SIGKILL, a lost node) cannot clean up after itself. A run date's
jobs therefore stage under ``_staging/<run date>/`` (:meth:`Lake.owned_by`) and start, holding the date's lock,
with :meth:`Lake.recover`: locally an old version left beside its target is renamed back (killed between the
two renames) or deleted (killed after them); on S3 the journal is rolled back or forward; then the date's
staging leftovers are deleted.
"""

from __future__ import annotations

from pathlib import Path

from loanpipe.core.config import StorageConfig
from loanpipe.core.dates import PARTITION_KEY, parse_run_date, partition_name
from loanpipe.core.storage.base import (APPLICATIONS_QUARANTINE, ARTIFACTS, FOLDERS, INFERENCE, JOURNAL, OUTCOMES, OUTCOMES_QUARANTINE,
                                        QUARANTINE, STAGING, SUCCESS, TEST, TEST_SAMPLE, TRAIN, TRAIN_SUP, Lake,
                                        manifest_json, parse_manifest)
from loanpipe.core.storage.errors import StorageError
from loanpipe.core.storage.files import FileAccess, S3Credentials, split_s3_uri
from loanpipe.core.storage.local import LocalLake
from loanpipe.core.storage.s3 import S3Lake, s3_client

__all__ = ["APPLICATIONS_QUARANTINE", "ARTIFACTS", "FOLDERS", "INFERENCE", "JOURNAL", "OUTCOMES", "OUTCOMES_QUARANTINE", "PARTITION_KEY",
           "QUARANTINE", "STAGING", "SUCCESS", "TEST", "TEST_SAMPLE", "TRAIN", "TRAIN_SUP", "FileAccess", "Lake", "LocalLake", "S3Credentials", "S3Lake",
           "StorageError", "manifest_json", "open_lake", "parse_manifest", "parse_run_date", "partition_name",
           "s3_client", "split_s3_uri"]


def open_lake(storage: StorageConfig, credentials: S3Credentials | None = None, check: bool = True) -> Lake:
    """The lake for a storage config: a local folder (absolute path) or an S3 prefix.

    For S3 the bucket is checked at once (``check``), so a wrong endpoint, wrong keys or a missing bucket fail
    here with a clear message instead of deep inside a Spark job.
    """
    if storage.is_s3:
        bucket, prefix = split_s3_uri(storage.root)
        lake = S3Lake(f"s3a://{bucket}/{prefix}".rstrip("/"), client=s3_client(storage, credentials),
                      endpoint=storage.s3_endpoint, storage=storage, credentials=credentials)
        if check:
            lake.check()
        return lake
    return LocalLake(str(Path(storage.root).expanduser().resolve()))
