"""fetch_scores' risk views: the riskiest grades first, reason columns only when asked for, clear refusals."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
import pytest

from loanpipe.core import catalog
from loanpipe.core.config import StorageConfig
from loanpipe.core.storage import open_lake
from loanpipe.jobs import fetch_scores

SCORES = pd.DataFrame({
    "id": [1, 2, 3, 4, 5],
    "p_default": [0.01, 0.62, 0.40, 0.003, 0.55],
    "grade": [3, 10, 10, 2, 10],
    "decision": [0, 1, 0, 0, 1],
    "reason_1": [None, "f271 = 0.9", "f2 = 5", None, "f528 - 0.9981*f527 = 0.02"],
    "reason_2": [None, "f4 = 1", None, None, None],
    "model_version": "20300101-bootstrap",
})


def publish(tmp_path: Path, frame: pd.DataFrame, run_date: str = "2030-01-02"):  # noqa: ANN201
    lake = open_lake(StorageConfig(root=str(tmp_path / "lake")))
    buf = io.BytesIO()
    frame.to_parquet(buf, index=False)
    catalog.publish_folder(lake, catalog.scores(lake, run_date), {"part-0.parquet": buf.getvalue()})
    return lake


def test_a_decline_list_with_reasons(tmp_path: Path) -> None:
    lake = publish(tmp_path, SCORES)
    out = tmp_path / "declines.csv"
    info = fetch_scores.fetch(lake, None, str(out), with_reasons=True, grades=(9, 10))
    df = pd.read_csv(out)
    assert info["rows"] == 3 and df["id"].tolist() == [2, 5, 3]  # riskiest first
    assert df["reason_1"].tolist() == ["f271 = 0.9", "f528 - 0.9981*f527 = 0.02", "f2 = 5"]
    plain = fetch_scores.select(SCORES, "x")
    assert "reason_1" not in plain.columns and len(plain) == 5 and plain["id"].tolist() == [1, 2, 3, 4, 5]
    assert fetch_scores.select(SCORES, "x", grades=(2, 3))["id"].tolist() == [1, 4]


def test_grade_ranges_parse_and_bad_ones_say_how(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert fetch_scores.parse_grades("9") == (9, 9) and fetch_scores.parse_grades("8-10") == (8, 10)
    for bad in ("x", "10-8", "0", "8-"):
        with pytest.raises(ValueError, match="--grade"):
            fetch_scores.parse_grades(bad)
    publish(tmp_path, SCORES)
    rc = fetch_scores.main(["--grade", "high", "--config", str(_config(tmp_path))])
    assert rc == 2 and "a range of grades (8-10)" in capsys.readouterr().err


def test_scores_from_before_grades_and_reasons_are_refused_by_name(tmp_path: Path) -> None:
    lake = publish(tmp_path, SCORES.drop(columns=["grade", "reason_1", "reason_2"]))
    with pytest.raises(ValueError, match="run_date=2030-01-02 has no grade column.*rerun the scoring DAG"):
        fetch_scores.fetch(lake, None, str(tmp_path / "x.csv"), grades=(9, 10))
    with pytest.raises(ValueError, match="has no reason columns.*risk.reason_codes = 0"):
        fetch_scores.fetch(lake, None, str(tmp_path / "x.csv"), with_reasons=True)
    assert not (tmp_path / "x.csv").exists()
    assert fetch_scores.fetch(lake, None, str(tmp_path / "all.csv"))["rows"] == 5


def _config(tmp_path: Path) -> Path:
    path = tmp_path / "conf.yaml"
    path.write_text(f"storage:\n  root: {tmp_path / 'lake'}\n")
    return path
