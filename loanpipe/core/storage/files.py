"""A lake's files as a Spark task reads them with pyarrow (a local folder or a bucket), and the S3 keys it uses."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from loanpipe.core.config import StorageConfig
from loanpipe.core.storage.errors import StorageError


@dataclass(frozen=True)
class S3Credentials:
    """Keys handed over explicitly (e.g. from an Airflow connection); None = boto3's usual chain (environment,
    ~/.aws, instance metadata)."""

    access_key: str = field(repr=False)
    secret_key: str = field(repr=False)
    session_token: str | None = field(default=None, repr=False)


def split_s3_uri(uri: str) -> tuple[str, str]:
    """``s3a://bucket/a/b`` -> (``bucket``, ``a/b``)."""
    scheme, sep, rest = uri.partition("://")
    if not sep or scheme not in ("s3a", "s3", "s3n"):
        raise StorageError(f"{uri} is not an S3 URI (expected s3a://bucket/prefix)")
    bucket, _, key = rest.partition("/")
    if not bucket:
        raise StorageError(f"{uri} names no bucket (expected s3a://bucket/prefix)")
    return bucket, key.strip("/")


@dataclass(frozen=True)
class FileAccess:
    """A lake's files as a Spark task reads them with pyarrow, without Spark's reader: a local folder, or the
    bucket with the storage config's endpoint and the keys the driver's own boto3 client uses (sent to the
    tasks inside the job, as Spark sends its s3a settings; never printed: ``repr`` leaves them out)."""

    storage: StorageConfig | None = None  # None: a local folder
    credentials: S3Credentials | None = field(default=None, repr=False)

    def filesystem(self) -> Any:
        """A pyarrow filesystem for :meth:`path`'s paths."""
        from pyarrow import fs

        if self.storage is None:
            return fs.LocalFileSystem()
        s, keys = self.storage, self.credentials
        endpoint = s.s3_endpoint or ""
        scheme, _, host = endpoint.rpartition("://") if "://" in endpoint else ("https", "", endpoint)
        return fs.S3FileSystem(
            access_key=keys.access_key if keys else None, secret_key=keys.secret_key if keys else None,
            session_token=keys.session_token if keys else None, region=s.s3_region, scheme=scheme or "https",
            endpoint_override=host or None, force_virtual_addressing=not s.s3_path_style,
            connect_timeout=s.s3_timeout_seconds, request_timeout=max(s.s3_timeout_seconds, 60),
            retry_strategy=fs.AwsStandardS3RetryStrategy(max_attempts=s.s3_max_attempts))

    def path(self, uri: str) -> str:
        """``uri`` (a local path or ``s3a://bucket/key``) as a path of :meth:`filesystem`."""
        if self.storage is None:
            return uri
        bucket, key = split_s3_uri(uri)
        return f"{bucket}/{key}"

