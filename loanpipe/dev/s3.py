"""The local S3-compatible server (MinIO, built by ``scripts/install_minio.sh``): its keys (generated once, mode
600), the bucket, and the node's copy of the keys."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import time

from loanpipe.core.config import PROJECT_DIR
from loanpipe.dev.local import (NODE_HOME, NODE_S3_ENV, NODE_USER, S3_BUCKET, S3_PORT, S3_ROOT, paths, run,
                                start_process, wait_port)


def s3_endpoint() -> str:
    return f"http://127.0.0.1:{S3_PORT}"


def s3_credentials() -> dict[str, str]:
    """The local S3 server's keys: generated once per stack, kept in a file only its owner can read."""
    f = paths()["s3_credentials"]
    if not f.exists():
        f.parent.mkdir(parents=True, exist_ok=True)
        keys = {"access_key": "loanpipe" + secrets.token_hex(6), "secret_key": secrets.token_urlsafe(30)}
        fd = os.open(f, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(keys, fh)
    return json.loads(f.read_text())


def s3_env() -> dict[str, str]:
    """The keys as the standard AWS environment variables (for commands run by hand against the stack's S3)."""
    keys = s3_credentials()
    return {"AWS_ACCESS_KEY_ID": keys["access_key"], "AWS_SECRET_ACCESS_KEY": keys["secret_key"]}


def minio_bin() -> str:
    out = subprocess.run([str(PROJECT_DIR / "scripts" / "install_minio.sh")], capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"no S3 server binary: {out.stderr.strip()[-500:]}")
    return out.stdout.strip()


def write_node_s3_env() -> None:
    """The node's own copy of the S3 keys (sourced by the SSH task before spark-submit; mode 600)."""
    keys = s3_credentials()
    NODE_S3_ENV.parent.mkdir(parents=True, exist_ok=True)
    NODE_S3_ENV.write_text(f"AWS_ACCESS_KEY_ID={keys['access_key']}\nAWS_SECRET_ACCESS_KEY={keys['secret_key']}\n")
    NODE_S3_ENV.chmod(0o600)
    run(["chown", "-R", f"{NODE_USER}:{NODE_USER}", str(NODE_HOME / ".config")])


def start_s3() -> None:
    keys = s3_credentials()
    data = paths()["s3"]
    data.mkdir(parents=True, exist_ok=True)
    start_process("minio", [minio_bin(), "server", str(data), "--address", f"127.0.0.1:{S3_PORT}",
                     "--console-address", f"127.0.0.1:{S3_PORT + 1}", "--quiet"],
           {"MINIO_ROOT_USER": keys["access_key"], "MINIO_ROOT_PASSWORD": keys["secret_key"],
            "MINIO_BROWSER": "on", "MINIO_UPDATE": "off"})
    wait_port(S3_PORT, "the S3 server (MinIO)")
    ensure_bucket()
    write_node_s3_env()


def ensure_bucket(bucket: str = S3_BUCKET) -> None:
    """Create the stack's bucket once the server answers (idempotent)."""
    from botocore.exceptions import ClientError, EndpointConnectionError

    from loanpipe.core.config import StorageConfig
    from loanpipe.core.storage import S3Credentials, s3_client

    keys = s3_credentials()
    client = s3_client(StorageConfig(root=S3_ROOT, s3_endpoint=s3_endpoint()),
                       S3Credentials(keys["access_key"], keys["secret_key"]))
    deadline = time.monotonic() + 60
    while True:
        try:
            client.head_bucket(Bucket=bucket)
            return
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchBucket"):
                client.create_bucket(Bucket=bucket)
                return
            if time.monotonic() > deadline:
                raise
        except EndpointConnectionError:
            if time.monotonic() > deadline:
                raise
        time.sleep(0.5)  # MinIO answers 503 for a moment while it initialises
