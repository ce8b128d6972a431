"""What the lake tests share: a real S3-compatible server (MinIO, started on its own port and folder) and
lakes in it."""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import time

import pytest

from loanpipe.core import storage
from loanpipe.core.config import StorageConfig
from loanpipe.core.storage import S3Credentials, S3Lake, open_lake


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def minio(tmp_path_factory: pytest.TempPathFactory):
    """A MinIO server of this module's on a free port: test files on other xdist workers start their own at the same
    time (on one fixed port the second server could not bind, and its client met the first one's keys)."""
    from loanpipe.dev.s3 import minio_bin

    endpoint = f"http://127.0.0.1:{_free_port()}"
    keys = S3Credentials("loanpipetest" + secrets.token_hex(4), secrets.token_urlsafe(24))
    data = tmp_path_factory.mktemp("minio")
    log = open(data.parent / "minio.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen([minio_bin(), "server", str(data), "--address", endpoint.removeprefix("http://"),
                             "--console-address", f"127.0.0.1:{_free_port()}", "--quiet"],
                            env={**os.environ, "MINIO_ROOT_USER": keys.access_key,
                                 "MINIO_ROOT_PASSWORD": keys.secret_key, "MINIO_UPDATE": "off"},
                            stdout=log, stderr=subprocess.STDOUT)
    client = storage.s3_client(StorageConfig(root="s3a://b", s3_endpoint=endpoint), keys)
    deadline = time.monotonic() + 60
    while True:
        try:
            client.create_bucket(Bucket="lake")
            break
        except Exception:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise
            time.sleep(0.3)
    # "storage": a StorageConfig for this server (keyword arguments override its fields)
    def s3_storage(**kw) -> StorageConfig:  # noqa: ANN003
        return StorageConfig(**{"root": "s3a://lake/loans", "s3_endpoint": endpoint, "s3_max_attempts": 2,
                                "s3_timeout_seconds": 2, **kw})

    yield {"keys": keys, "client": client, "proc": proc, "endpoint": endpoint, "storage": s3_storage}
    proc.terminate()
    proc.wait(30)


@pytest.fixture()
def free_port() -> int:
    """A port nothing listens on (an endpoint that is down)."""
    return _free_port()


@pytest.fixture()
def s3lake(minio) -> S3Lake:  # noqa: ANN001
    lake = open_lake(minio["storage"](root=f"s3a://lake/t{secrets.token_hex(4)}"), minio["keys"])
    assert isinstance(lake, S3Lake)
    return lake


