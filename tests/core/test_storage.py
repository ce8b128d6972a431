"""The lake's paths and atomic publishing (local folders)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loanpipe.core import storage
from loanpipe.core.storage import local
from loanpipe.core.config import StorageConfig
from loanpipe.core.storage import LocalLake, StorageError, open_lake, parse_run_date, partition_name


def test_layout_and_paths(tmp_path: Path) -> None:
    lake = open_lake(StorageConfig(root=str(tmp_path / "lake")))
    lake.ensure_layout()
    assert sorted(p.name for p in (tmp_path / "lake").iterdir()) == sorted(storage.FOLDERS)
    assert lake.partition_uri(storage.TEST_SAMPLE, "2026-11-29") == f"{tmp_path}/lake/test_sample/run_date=2026-11-29"
    assert lake.staging_uri("x") != lake.staging_uri("x")
    assert "/_staging/" in lake.staging_uri("x")  # Spark and readers skip _-prefixed folders


def test_relative_root_is_resolved(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert open_lake(StorageConfig(root="var/lake")).root == str(tmp_path / "var" / "lake")


def test_publish_replaces_the_whole_folder(tmp_path: Path) -> None:
    lake = LocalLake(str(tmp_path))
    target = lake.uri("test_sample", partition_name("2026-01-02"))
    for version in ("old", "new"):
        stage = lake.staging_uri("t")
        os.makedirs(stage)
        Path(stage, f"{version}.parquet").write_text(version)
        lake.publish(stage, target)
        assert not Path(stage).exists()
    assert sorted(os.listdir(target)) == ["_SUCCESS", "new.parquet"]  # nothing of the old version is left
    assert lake.is_published(target)
    assert lake.list_partitions("test_sample") == ["2026-01-02"]
    assert [p for p in os.listdir(Path(target).parent) if p.startswith(".")] == []


def test_failed_publish_keeps_the_old_version(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lake = LocalLake(str(tmp_path))
    target = lake.uri("train")
    os.makedirs(target)
    Path(target, "old.parquet").write_text("old")
    stage = lake.staging_uri("t")
    os.makedirs(stage)
    real_replace = os.replace
    calls = {"n": 0}

    def flaky(src: str, dst: str) -> None:
        calls["n"] += 1
        if calls["n"] == 2:  # the rename of the new version into place
            raise OSError("disk full")
        real_replace(src, dst)

    monkeypatch.setattr(local.os, "replace", flaky)
    with pytest.raises(OSError):
        lake.publish(stage, target)
    assert os.listdir(target) == ["old.parquet"]


def test_publish_without_staging_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="nothing to publish"):
        LocalLake(str(tmp_path)).publish(str(tmp_path / "nope"), str(tmp_path / "train"))


def test_small_objects_are_written_atomically(tmp_path: Path) -> None:
    lake = LocalLake(str(tmp_path))
    uri = lake.uri("artifacts", "runs", "x.json")
    lake.write_json(uri, {"a": 1})
    assert lake.read_json(uri) == {"a": 1}
    assert sorted(os.listdir(Path(uri).parent)) == ["x.json"]
    with pytest.raises(StorageError, match="does not exist"):
        lake.read_bytes(lake.uri("artifacts", "nope.json"))


@pytest.mark.parametrize("bad", ["2026-13-01", "yesterday", "", "29.11.2026"])
def test_run_date_must_be_iso(bad: str) -> None:
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        parse_run_date(bad)


@pytest.mark.parametrize("root", ["s3a://", "s3a:///prefix", "gs://bucket/x"])
def test_malformed_s3_roots_are_refused(root: str) -> None:
    with pytest.raises(StorageError, match="S3 URI|names no bucket"):
        storage.split_s3_uri(root)


def test_published_folder_carries_its_manifest(tmp_path: Path) -> None:
    lake = LocalLake(str(tmp_path))
    stage = lake.staging_uri("t")
    os.makedirs(f"{stage}/sub")
    Path(stage, "a.parquet").write_text("a")
    Path(stage, "sub", "b.parquet").write_text("b")
    target = lake.uri("train")
    lake.publish(stage, target)
    assert lake.published_files(target) == [f"{target}/a.parquet", f"{target}/sub/b.parquet"]
    os.remove(Path(target, "_SUCCESS"))
    with pytest.raises(StorageError, match="no _SUCCESS marker"):
        lake.published_files(target)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1), max_size=30))
def test_the_manifest_round_trips(files: list[str]) -> None:
    assert storage.parse_manifest(storage.manifest_json(files).encode()) == files
