"""The model registry's promotion ledger: which model scores a run date, and reruns that replace their record."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from loanpipe.core import dates
from loanpipe.ml.bundle import ModelBundle
from loanpipe.core.storage import Lake, LocalLake
from loanpipe.ml import model


def day(n: int) -> dt.date:
    return dt.date(2026, 11, n)


@pytest.fixture()
def lake(tmp_path: Path) -> Lake:
    return LocalLake(str(tmp_path / "lake"))


def test_versions_are_the_run_date_and_role() -> None:
    assert dates.version_for(day(29), "bootstrap") == "20261129-bootstrap"
    assert dates.version_for(day(29), "challenger") == "20261129-challenger"


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


def test_last_discovery_is_the_latest_challenger_that_chose_its_features_again(lake: Lake) -> None:
    from loanpipe.ml.features import FeatureSpec

    def challenger(n: int, discovered_on: str) -> None:
        spec = FeatureSpec([], [], [], [], {}, {})
        model.save_model(lake, ModelBundle(dates.version_for(day(n), "challenger"), spec, b"m",
                                                 {"discovered_on": discovered_on}))

    assert model.last_discovery(lake, day(20), 7) is None
    challenger(12, "2026-11-12")  # chose its features again on its own date
    challenger(14, "2026-11-01")  # kept the champion's (chosen on the 1st)
    assert model.last_discovery(lake, day(15), 7) == day(12)
    assert model.last_discovery(lake, day(19), 7) is None  # 7 days later: outside the window, due again
    assert model.last_discovery(lake, day(12), 7) is None  # a date's own challenger does not count


def test_the_cadence_counts_from_the_latest_choice_not_the_champions(base_config) -> None:  # noqa: ANN001
    from loanpipe.ml import promotion
    from loanpipe.ml.features import FeatureSpec

    cfg = base_config.replace(model={"rediscover_every_days": 7})
    champion = ModelBundle("b", FeatureSpec([], [], [], [], {}, {}), b"", {"run_date": "2026-11-01",
                                                                                "discovered_on": "2026-11-01"})
    calm = {"max_feature_psi": {"feature": "f1", "psi": 0.0}}
    assert promotion.rediscover_reason(cfg, champion, day(8), calm) is not None  # due: the champion's is 7 days old
    # the 8th's challenger chose again (not promoted): the 9th is not due, the 15th is
    assert promotion.rediscover_reason(cfg, champion, day(9), calm, last_discovery=day(8)) is None
    assert "2026-11-08 (7 days ago" in promotion.rediscover_reason(cfg, champion, day(15), calm, last_discovery=day(8))
