"""The model registry's promotion ledger: which model scores a run date, and reruns that replace their record."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from loanpipe.core.storage import Lake
from loanpipe.ml import model


def day(n: int) -> dt.date:
    return dt.date(2026, 11, n)


@pytest.fixture()
def lake(tmp_path: Path) -> Lake:
    return Lake(str(tmp_path / "lake"))


def test_versions_are_the_run_date_and_role() -> None:
    assert model.version_for(day(29), "bootstrap") == "20261129-bootstrap"
    assert model.version_for(day(29), "challenger") == "20261129-challenger"


def test_the_champion_of_a_date_is_decided_by_the_records_before_it(lake: Lake) -> None:
    assert model.champion_for(lake, day(10)) is None and model.champion_version(lake) is None
    model.record_decision(lake, day(10), {"bootstrap": True, "champion": "B", "serving": "B"})
    assert model.champion_for(lake, day(10)) == "B"  # the bootstrap's own date
    assert model.champion_for(lake, day(5)) == "B"  # a backfill before the bootstrap uses the bootstrap
    assert model.champion_for(lake, day(11)) == "B"
    model.record_decision(lake, day(12), {"champion": "B", "serving": "C12", "promoted": True})
    model.record_decision(lake, day(15), {"champion": "C12", "serving": "C15", "promoted": True})
    assert [model.champion_for(lake, day(n)) for n in (10, 12, 13, 15, 16)] == ["B", "B", "C12", "C12", "C15"]
    assert model.champion_version(lake) == "C15"
    # a rerun of 12 replaces its own record; a rerun that decides nothing removes it
    model.record_decision(lake, day(12), {"champion": "B", "serving": "C12", "promoted": True, "p_value": 0.01})
    assert list(model.ledger(lake)) == ["2026-11-10", "2026-11-12", "2026-11-15"]
    assert model.ledger(lake)["2026-11-12"]["p_value"] == 0.01
    model.record_decision(lake, day(15), None)
    assert model.champion_version(lake) == "C12" and model.champion_for(lake, day(16)) == "C12"
    with pytest.raises(ValueError, match="needs the champion"):
        model.record_decision(lake, day(20), {"serving": "X"})
