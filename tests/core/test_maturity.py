"""Label maturity (loanpipe.core.maturity): which outcomes are known as of a date, read only from what had arrived."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from loanpipe.core import maturity

D = dt.date.fromisoformat
WINDOW = 30


def apps(*rows: tuple[int, str]) -> pd.DataFrame:
    return pd.DataFrame({"id": [r[0] for r in rows], "application_date": [r[1] for r in rows]})


def outcomes(*rows: tuple) -> pd.DataFrame:
    """(id, default, arrival_date[, sequence]) rows."""
    frame = pd.DataFrame({"id": [r[0] for r in rows], "default": [r[1] for r in rows],
                          "arrival_date": [r[2] for r in rows]})
    if rows and len(rows[0]) > 3:
        frame["sequence"] = [r[3] for r in rows]
    return frame


def known(a: pd.DataFrame, o: pd.DataFrame, as_of: str, window: int = WINDOW) -> dict[int, tuple[int, str, str]]:
    m = maturity.matured_labels(a, o, D(as_of), window, "id", "default")
    return {int(r.id): (int(r.default), r.how, str(r.matured_on)) for r in m.itertuples()}


def test_a_bad_outcome_counts_when_it_arrives_and_a_silent_application_only_after_its_window() -> None:
    a = apps((1, "2026-01-01"), (2, "2026-01-01"))
    o = outcomes((1, 1, "2026-01-10"))
    assert known(a, o, "2026-01-09") == {}  # nothing arrived, no window passed
    assert known(a, o, "2026-01-10") == {1: (1, "bad", "2026-01-10")}
    assert known(a, o, "2026-01-30") == {1: (1, "bad", "2026-01-10")}  # day 29 of 2's window
    assert known(a, o, "2026-01-31") == {1: (1, "bad", "2026-01-10"), 2: (0, "window", "2026-01-31")}


def test_a_good_outcome_record_counts_from_its_arrival_before_the_window_ends() -> None:
    a = apps((1, "2026-01-01"))
    o = outcomes((1, 0, "2026-01-05"))
    assert known(a, o, "2026-01-04") == {}
    assert known(a, o, "2026-01-05") == {1: (0, "good", "2026-01-05")}


def test_a_replaced_outcome_holds_until_its_replacement_arrives_and_the_later_landing_wins_a_day() -> None:
    a = apps((1, "2026-01-01"), (2, "2026-01-01"))
    o = outcomes((1, 1, "2026-01-10", 0), (1, 0, "2026-01-20", 0),  # a default, corrected ten days later
                 (2, 0, "2026-01-12", 1), (2, 1, "2026-01-12", 0))  # two records the same day: landed 2nd wins
    assert known(a, o, "2026-01-19")[1] == (1, "bad", "2026-01-10")
    assert known(a, o, "2026-01-20")[1] == (0, "good", "2026-01-20")
    assert known(a, o, "2026-01-12")[2] == (0, "good", "2026-01-12")
    # after its window an application with a record keeps the record's label (the window makes only silence good)
    assert known(a, o, "2026-03-01") == {1: (0, "good", "2026-01-20"), 2: (0, "good", "2026-01-12")}


def test_an_outcome_for_an_id_never_scored_is_named_and_matures_nothing() -> None:
    a = apps((1, "2026-01-01"))
    o = outcomes((1, 1, "2026-01-02"), (99, 1, "2026-01-02"))
    assert maturity.unknown_outcomes(a, o, "id").tolist() == [False, True]
    assert set(known(a, o, "2026-06-01")) == {1}


def test_as_of_reads_only_what_had_arrived_so_a_later_arrival_changes_nothing_before_it() -> None:
    a = apps((1, "2026-01-01"), (2, "2026-01-02"), (3, "2026-01-03"))
    early = outcomes((1, 1, "2026-01-05"))
    later = pd.concat([early, outcomes((2, 1, "2026-01-08"), (1, 0, "2026-01-09"))], ignore_index=True)
    before = maturity.matured_labels(a, early, D("2026-01-07"), WINDOW, "id", "default")
    again = maturity.matured_labels(a, later, D("2026-01-07"), WINDOW, "id", "default")
    pd.testing.assert_frame_equal(before, again)  # bit for bit: the rerun of 01-07 sees what 01-07 saw
    assert known(a, later, "2026-01-09") == {1: (0, "good", "2026-01-09"), 2: (1, "bad", "2026-01-08")}


def test_newly_matured_are_the_labels_a_backtest_has_not_seen() -> None:
    a = apps((1, "2026-01-01"), (2, "2026-01-01"), (3, "2026-01-20"))
    o = outcomes((1, 1, "2026-01-05"), (1, 0, "2026-01-15"))
    new = maturity.newly_matured(a, o, D("2026-01-10"), D("2026-02-01"), WINDOW, "id", "default")
    # 1 changed (corrected to good), 2's window passed on 01-31; 3's window is still open
    assert {int(r.id): (int(r.default), r.how) for r in new.itertuples()} == {1: (0, "good"), 2: (0, "window")}
    first = maturity.newly_matured(a, o, None, D("2026-01-10"), WINDOW, "id", "default")
    assert first["id"].tolist() == [1]


@pytest.mark.parametrize("frame, message", [
    (apps((1, "2026-01-01"), (1, "2026-01-02")), "id 1 appears more than once"),
    (apps((1, "2026-01-01"), (2, "soon")), "application_date: row 1 has no date ('soon')"),
])
def test_bad_applications_are_refused_naming_the_row(frame: pd.DataFrame, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        maturity.matured_labels(frame, outcomes(), D("2026-02-01"), WINDOW, "id", "default")


def test_an_outcome_without_an_arrival_date_is_refused_naming_the_row() -> None:
    with pytest.raises(ValueError, match=r"arrival_date: row 1 has no date \(None\)"):
        maturity.matured_labels(apps((1, "2026-01-01")), outcomes((1, 1, "2026-01-02"), (1, 0, None)),
                                D("2026-02-01"), WINDOW, "id", "default")
