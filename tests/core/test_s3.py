"""The lake on S3, against a real S3-compatible server (MinIO, started here on its own port and folder).

Covers what boto3 does (small objects, listing, publishing with a marker, rollback, faults) and the business's
fetch command on both lake kinds; Spark's s3a path runs in tests/e2e/test_main_commands.py (`make run-s3`: both
DAGs in S3 mode).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from loanpipe.jobs import fetch_scores
from loanpipe.core import storage
from loanpipe.core.config import StorageConfig
from loanpipe.core.storage import S3Credentials, S3Lake, StorageError, open_lake

ROOT = Path(__file__).resolve().parents[2]
def put_folder(lake: storage.Lake, files: dict[str, bytes]) -> str:
    stage = lake.staging_uri("t")
    for name, data in files.items():
        lake.write_bytes(f"{stage}/{name}", data)
    return stage


def test_small_objects_listing_and_removal(s3lake: S3Lake) -> None:
    uri = s3lake.uri(storage.ARTIFACTS, "runs", "2026-11-29", "summary.json")
    assert not s3lake.exists(uri)
    s3lake.write_json(uri, {"auc": 0.9})
    assert s3lake.read_json(uri) == {"auc": 0.9}
    assert s3lake.exists(uri) and s3lake.exists(s3lake.uri(storage.ARTIFACTS, "runs"))  # a "folder" exists too
    for d in ("2026-11-02", "2026-11-01"):
        s3lake.write_bytes(s3lake.uri(storage.TEST_SAMPLE, storage.partition_name(d), "part-0.parquet"), b"x")
    assert s3lake.list_partitions(storage.TEST_SAMPLE) == ["2026-11-01", "2026-11-02"]
    assert s3lake.has_data(s3lake.uri(storage.TEST_SAMPLE)) and not s3lake.has_data(s3lake.uri(storage.ARTIFACTS))
    s3lake.remove(s3lake.uri(storage.TEST_SAMPLE))
    assert s3lake.list_partitions(storage.TEST_SAMPLE) == [] and s3lake.exists(uri)
    with pytest.raises(StorageError, match=r"s3://lake/.*/nope\.json .*does not exist"):
        s3lake.read_bytes(s3lake.uri("nope.json"))


def test_publish_replaces_the_folder_and_writes_the_manifest_last(s3lake: S3Lake) -> None:
    target = s3lake.partition_uri(storage.INFERENCE, "2026-11-29")
    s3lake.publish(put_folder(s3lake, {"part-old-1.parquet": b"o1", "part-old-2.parquet": b"o2"}), target)
    stage = put_folder(s3lake, {"part-new.parquet": b"n", "_SUCCESS": b""})  # Spark's own empty marker
    s3lake.publish(stage, target)
    assert s3lake.list_files(target) == ["_SUCCESS", "part-new.parquet"]  # nothing of the old version is left
    assert s3lake.published_files(target) == [f"{target}/part-new.parquet"]
    assert s3lake.list_files(stage) == []  # staging removed
    assert s3lake.list_files(s3lake.uri(storage.STAGING)) == []


def test_a_failed_copy_rolls_back_to_the_old_version(s3lake: S3Lake, monkeypatch: pytest.MonkeyPatch) -> None:
    target = s3lake.uri(storage.ARTIFACTS, "models", "v1")
    s3lake.publish(put_folder(s3lake, {"model.cbm": b"old-model", "spec.json": b"old-spec"}), target)
    before = {f: s3lake.read_bytes(f) for f in s3lake.published_files(target)}
    stage = put_folder(s3lake, {"extra.json": b"new", "model.cbm": b"new-model", "spec.json": b"new-spec"})
    real_copy, calls = S3Lake._copy, {"n": 0}

    def flaky(self: S3Lake, src: str, dst: str) -> None:
        if src.startswith(self._key(stage)):
            calls["n"] += 1
            if calls["n"] == 3:  # the connection drops in the middle of the copy-in
                raise StorageError("copy: connection reset")
        real_copy(self, src, dst)

    monkeypatch.setattr(S3Lake, "_copy", flaky)
    with pytest.raises(StorageError, match="connection reset"):
        s3lake.publish(stage, target)
    monkeypatch.undo()
    assert s3lake.is_published(target)
    assert {f: s3lake.read_bytes(f) for f in s3lake.published_files(target)} == before
    assert s3lake.list_files(target) == ["_SUCCESS", "model.cbm", "spec.json"]


def test_wrong_keys_name_the_bucket_and_what_to_check(minio) -> None:  # noqa: ANN001
    with pytest.raises(StorageError, match=r"access denied to bucket lake \(lake s3a://lake/loans\) at http.*AWS_ACCESS_KEY_ID"):
        open_lake(minio["storage"](), S3Credentials(minio["keys"].access_key, "wrong-secret-key-0000"))


def test_missing_bucket_says_create_it(minio) -> None:  # noqa: ANN001
    with pytest.raises(StorageError, match="bucket 'no-such-bucket' does not exist.*create it"):
        open_lake(minio["storage"](root="s3a://no-such-bucket/lake"), minio["keys"])


def test_endpoint_down_fails_fast_after_retries(minio, free_port: int) -> None:  # noqa: ANN001
    started = time.monotonic()
    with pytest.raises(StorageError, match=r"cannot reach the S3 endpoint .*127\.0\.0\.1:\d+.*s3_endpoint"):
        open_lake(minio["storage"](s3_endpoint=f"http://127.0.0.1:{free_port}"), minio["keys"])
    assert time.monotonic() - started < 60


def test_endpoint_gone_after_opening_is_a_storage_error_on_every_call(minio, free_port: int) -> None:  # noqa: ANN001
    lake = open_lake(minio["storage"](s3_endpoint=f"http://127.0.0.1:{free_port}"), minio["keys"], check=False)
    for call in (lambda: lake.is_published(lake.uri("train")), lambda: lake.exists(lake.uri("train")),
                 lambda: lake.list_partitions(storage.TEST_SAMPLE), lambda: lake.read_bytes(lake.uri("x.json"))):
        with pytest.raises(StorageError, match="cannot reach the S3 endpoint"):
            call()


def test_no_credentials_at_all(minio, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(StorageError, match="no S3 credentials"):
        open_lake(minio["storage"]())


def test_scoring_tasks_read_the_bucket_s_files_with_the_driver_s_keys(minio, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    """Lake.file_access: what a scoring task reads the lake's Parquet with (pyarrow, loanpipe.ml.scoring): the keys
    given to open_lake, or those boto3's chain found for the driver (here the environment); the keys never in its
    repr; a wrong key fails the read."""
    import pickle

    import pyarrow.parquet as pq

    keys = minio["keys"]
    given = open_lake(minio["storage"](root=f"s3a://lake/t{os.urandom(4).hex()}"), keys)
    target = publish_scores(given, "2026-11-29", list(range(10)))

    def from_chain() -> storage.Lake:
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", keys.access_key)
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", keys.secret_key)
        return open_lake(minio["storage"](root=given.root))

    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")

    def read(lake: storage.Lake) -> list[str]:
        access = pickle.loads(pickle.dumps(lake.file_access()))  # as Spark sends it to a task
        assert keys.secret_key not in repr(access) and keys.access_key not in repr(access)
        files = [f for f in lake.published_files(target) if f.endswith(".parquet")]
        with access.filesystem().open_input_file(access.path(files[1])) as f:
            assert pq.read_table(f, columns=["id"]).column("id").to_pylist() == [5, 6, 7, 8, 9]
        return files

    read(given)  # the given keys, with none in the environment
    files = read(from_chain())
    wrong = storage.FileAccess(given.storage, S3Credentials(keys.access_key, "not-the-secret"))
    with pytest.raises(OSError, match="ACCESS_DENIED"):
        wrong.filesystem().open_input_file(wrong.path(files[0])).read()


# -- fetch_scores on both kinds of lake ---------------------------------------------------------------------

@pytest.fixture(params=["local", "s3"])
def any_lake(request: pytest.FixtureRequest, tmp_path: Path) -> storage.Lake:
    if request.param == "local":
        return open_lake(StorageConfig(root=str(tmp_path / "lake")))
    return request.getfixturevalue("s3lake")


def parquet_bytes(ids: list[int], version: str) -> bytes:
    import io

    buf = io.BytesIO()
    pd.DataFrame({"id": ids, "p_default": [i / 100 for i in ids], "decision": [0] * len(ids),
                  "model_version": version}).to_parquet(buf, index=False)
    return buf.getvalue()


def publish_scores(lake: storage.Lake, run_date: str, ids: list[int], version: str = "v1") -> str:
    target = lake.partition_uri(storage.INFERENCE, run_date)
    half = len(ids) // 2
    stage = put_folder(lake, {"part-0.parquet": parquet_bytes(ids[:half], version),
                              "part-1.parquet": parquet_bytes(ids[half:], version)})
    if isinstance(lake, storage.Lake) and not isinstance(lake, S3Lake):
        Path(stage).mkdir(parents=True, exist_ok=True)
    lake.publish(stage, target)
    return target


def test_fetch_latest_complete_date_and_refuse_unmarked(any_lake: storage.Lake, tmp_path: Path) -> None:
    publish_scores(any_lake, "2026-11-27", [5, 3, 1, 2])
    publish_scores(any_lake, "2026-11-28", [10, 11])
    # 2026-11-29 is being written (no marker): not "latest", and refused by name
    any_lake.write_bytes(any_lake.uri(storage.INFERENCE, "run_date=2026-11-29", "part-0.parquet"),
                         parquet_bytes([99], "v2"))
    info = fetch_scores.fetch(any_lake, None, str(tmp_path / "out" / "latest.csv"))
    assert info["run_date"] == "2026-11-28" and info["rows"] == 2
    assert pd.read_csv(tmp_path / "out" / "latest.csv")["id"].tolist() == [10, 11]
    df = fetch_scores.read_scores(any_lake, "2026-11-27")
    assert df["id"].tolist() == [1, 2, 3, 5]
    with pytest.raises(fetch_scores.NothingToFetch, match="run_date=2026-11-29 has no _SUCCESS marker"):
        fetch_scores.fetch(any_lake, "2026-11-29", str(tmp_path / "x.csv"))
    with pytest.raises(fetch_scores.NothingToFetch, match="does not exist.*complete dates: 2026-11-27, 2026-11-28"):
        fetch_scores.fetch(any_lake, "2026-11-30", str(tmp_path / "x.csv"))
    assert not (tmp_path / "x.csv").exists()


def test_partition_deleted_mid_read_is_an_error_not_a_partial_file(any_lake: storage.Lake, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    target = publish_scores(any_lake, "2026-11-28", [1, 2, 3, 4])
    real_published = type(any_lake).published_files

    def then_deleted(self: storage.Lake, uri: str) -> list[str]:
        files = real_published(self, uri)  # the manifest has been read ...
        self.remove(uri)                    # ... and a rerun / clean-up deletes the partition
        return files

    monkeypatch.setattr(type(any_lake), "published_files", then_deleted)
    out = tmp_path / "scores.csv"
    with pytest.raises(StorageError, match=r"run_date=2026-11-28 changed while reading .*fetch again"):
        fetch_scores.fetch(any_lake, "2026-11-28", str(out))
    assert not out.exists() and list(tmp_path.glob(".scores.csv*")) == []
    assert not any_lake.exists(target)


def test_fetch_command_against_the_real_server(minio, tmp_path: Path) -> None:  # noqa: ANN001
    lake = open_lake(minio["storage"](root="s3a://lake/cli"), minio["keys"])
    publish_scores(lake, "2026-11-28", list(range(1, 41)))
    env = {**os.environ, "LOANPIPE__STORAGE__ROOT": "s3a://lake/cli", "LOANPIPE__STORAGE__S3_ENDPOINT": minio["endpoint"],
           "AWS_ACCESS_KEY_ID": minio["keys"].access_key, "AWS_SECRET_ACCESS_KEY": minio["keys"].secret_key}
    cmd = [sys.executable, "-m", "loanpipe.jobs.fetch_scores"]
    out = subprocess.run([*cmd, "--latest"], env=env, capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[0] == "id,p_default,decision,model_version" and len(out.stdout.splitlines()) == 41
    assert "fetched 40 scores of 2026-11-28" in out.stderr
    missing = subprocess.run([*cmd, "--date", "2026-01-01"], env=env, capture_output=True, text=True, timeout=120,
                             cwd=ROOT)
    assert missing.returncode == 2 and "no scores for that date" in missing.stderr
    bad = subprocess.run([*cmd, "--latest"], env={**env, "AWS_SECRET_ACCESS_KEY": "not-the-secret-key"},
                         capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert bad.returncode == 1 and "access denied" in bad.stderr and "not-the-secret-key" not in bad.stderr
    assert json.dumps(minio["keys"].secret_key)[1:-1] not in out.stderr + missing.stderr + bad.stderr


def test_outcome_partitions_are_listed_by_arrival_date_beside_run_dates(any_lake: storage.Lake) -> None:
    """outcomes/ is partitioned by arrival_date=, not run_date=: both kinds of lake list each kind by its own key."""
    import pyarrow as pa

    from loanpipe.core import catalog

    for day in ("2026-11-05", "2026-11-03"):
        catalog.write_table(any_lake, pa.table({"id": [1]}), catalog.outcomes(any_lake, day))
    assert catalog.outcomes(any_lake, "2026-11-05").endswith("outcomes/arrival_date=2026-11-05")
    assert catalog.outcome_dates(any_lake) == ["2026-11-03", "2026-11-05"]
    assert any_lake.list_partitions(storage.OUTCOMES) == []  # no run_date= partitions there
    publish_scores(any_lake, "2026-11-04", [1, 2])
    assert any_lake.list_partitions(storage.INFERENCE, "arrival_date") == []
