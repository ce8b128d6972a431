"""Label maturity: which applications' outcomes are known as of a date, and what they are.

Applications arrive without an outcome; whether a loan defaults is known only later. An application's label is
known **as of D** when, counting only the outcome records that had *arrived* by D:

* its latest outcome record is bad: a default counts as soon as it arrives;
* its latest outcome record is good: a good outcome reported early (a loan repaid, say) counts from its arrival;
* it has no outcome record and its performance window (``window_days`` after the application date) has passed by
  D: it is good, since no bad outcome arrived in the window.

The latest record wins (by arrival date, then by the order the records were landed), so a corrected outcome
replaces the earlier one from its own arrival on; before that arrival the earlier one still holds. Nothing that
arrived after D is read, so the labels as of D do not change when later outcomes land: a rerun of D sees what D saw.

An outcome record for an id that was never scored has no application to attach to: :func:`unknown_outcomes`
names those rows, for the landing step to quarantine with their reason.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from loanpipe.core.storage import Lake

# the columns both frames carry (the lake's id and label columns are named by the schema; these are the dates)
APPLICATION_DATE = "application_date"
ARRIVAL_DATE = "arrival_date"
SEQUENCE = "sequence"  # the order records were landed in, within an arrival date (later wins)
MATURED_ON = "matured_on"
HOW = "how"  # bad | good | window: which rule matured the label

BAD, GOOD, WINDOW = "bad", "good", "window"


def _dates(values: pd.Series, what: str) -> pd.Series:
    parsed = pd.to_datetime(values, errors="coerce")
    missing = np.flatnonzero(parsed.isna().to_numpy())
    if len(missing):
        row = int(missing[0])
        raise ValueError(f"{what}: row {row} has no date ({values.iloc[row]!r}); every row needs one (YYYY-MM-DD)")
    return parsed.dt.date


def latest_outcomes(outcomes: pd.DataFrame, as_of: dt.date, id_column: str, label_column: str) -> pd.DataFrame:
    """Each id's latest outcome record among those that arrived by ``as_of``: ``id, label, arrival_date`` and the
    records' other columns (the target, say), ``sequence`` left out."""
    columns = [id_column, label_column, ARRIVAL_DATE,
               *[c for c in outcomes.columns if c not in (id_column, label_column, ARRIVAL_DATE, SEQUENCE)]]
    if outcomes.empty:
        return pd.DataFrame({c: pd.Series(dtype=outcomes[c].dtype if c in outcomes else object) for c in columns})
    arrived = outcomes.assign(**{ARRIVAL_DATE: _dates(outcomes[ARRIVAL_DATE], "outcomes' arrival_date")})
    arrived = arrived[arrived[ARRIVAL_DATE] <= as_of]
    order = [ARRIVAL_DATE, SEQUENCE] if SEQUENCE in arrived else [ARRIVAL_DATE]
    arrived = arrived.reset_index(drop=True).rename_axis("_landed").reset_index()
    latest = arrived.sort_values([*order, "_landed"], kind="stable").drop_duplicates(id_column, keep="last")
    return latest[columns].reset_index(drop=True)


def matured_labels(applications: pd.DataFrame, outcomes: pd.DataFrame, as_of: dt.date, window_days: int,
                   id_column: str, label_column: str) -> pd.DataFrame:
    """The applications whose label is known as of ``as_of`` (module docstring): ``id, application_date, label,
    matured_on, how`` and the deciding record's other columns (missing for a label matured by the window), in the
    applications' order. ``applications``: ``id, application_date`` (one row per id);
    ``outcomes``: ``id, label (0/1), arrival_date`` and optionally ``sequence``. Outcomes of ids not among the
    applications are left out here (:func:`unknown_outcomes` names them)."""
    if window_days < 1:
        raise ValueError(f"outcomes.performance_window_days must be at least 1 (got {window_days})")
    apps = applications[[id_column, APPLICATION_DATE]].copy()
    apps[APPLICATION_DATE] = _dates(apps[APPLICATION_DATE], "applications' application_date")
    if apps[id_column].duplicated().any():
        dup = apps.loc[apps[id_column].duplicated(), id_column].iloc[0]
        raise ValueError(f"applications: id {dup} appears more than once; an application is landed once")
    latest = latest_outcomes(outcomes, as_of, id_column, label_column)
    merged = apps.merge(latest, on=id_column, how="left", validate="one_to_one")
    window_end = merged[APPLICATION_DATE].map(lambda d: d + dt.timedelta(days=window_days))
    has_record = merged[ARRIVAL_DATE].notna()
    record_label = merged[label_column].fillna(0).astype(int)
    by_window = ~has_record & (window_end <= as_of)
    known = has_record | by_window
    out = merged[known].copy()
    out[label_column] = np.where(has_record[known], record_label[known], 0).astype(int)
    out[MATURED_ON] = np.where(has_record[known], merged.loc[known, ARRIVAL_DATE], window_end[known])
    out[HOW] = np.where(~has_record[known], WINDOW, np.where(out[label_column] == 1, BAD, GOOD))
    extra = [c for c in latest.columns if c not in (id_column, label_column, ARRIVAL_DATE)]
    return out[[id_column, APPLICATION_DATE, label_column, MATURED_ON, HOW, *extra]].reset_index(drop=True)


def newly_matured(applications: pd.DataFrame, outcomes: pd.DataFrame, since: dt.date | None, as_of: dt.date,
                  window_days: int, id_column: str, label_column: str) -> pd.DataFrame:
    """The labels known as of ``as_of`` that were not yet known as of ``since`` (all of them when ``since`` is
    None): the cohorts a backtest on ``as_of`` has not seen before. A label that changed in between (a corrected
    outcome) is in it with its new value."""
    now = matured_labels(applications, outcomes, as_of, window_days, id_column, label_column)
    if since is None:
        return now
    before = matured_labels(applications, outcomes, since, window_days, id_column, label_column)
    seen = now.merge(before[[id_column, label_column]], on=[id_column, label_column], how="left", indicator=True)
    return now[(seen["_merge"] == "left_only").to_numpy()].reset_index(drop=True)


def unknown_outcomes(applications: pd.DataFrame, outcomes: pd.DataFrame, id_column: str) -> pd.Series:
    """True for each outcome record whose id no application has (to be quarantined: "no application scored
    with this id")."""
    return ~outcomes[id_column].isin(set(applications[id_column]))


# -- reading them from the lake, as of a date ---------------------------------------------------------------

def _read_dated(lake: "Lake", days: list[str], uri_of: Any, upto: dt.date, columns: list[str],
                date_column: str) -> pd.DataFrame:
    """``columns`` of each published partition of ``days`` (oldest first) up to ``upto``, with its date as
    ``date_column``."""
    from loanpipe.core import catalog

    parts = []
    for day in days:
        date = dt.date.fromisoformat(day)
        if date > upto:
            break
        table = catalog.read_table(lake, uri_of(lake, day), columns=columns)
        if table is not None:
            parts.append(table.to_pandas().assign(**{date_column: date}))
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in [*columns, date_column]})
    return pd.concat(parts, ignore_index=True)


def read_outcomes(lake: "Lake", as_of: dt.date, columns: list[str]) -> pd.DataFrame:
    """Every outcome record that had arrived by ``as_of`` (``outcomes/arrival_date<=as_of``), with its
    ``arrival_date``: ``columns`` (the id, the label, ``sequence``) of each landed partition, oldest first."""
    from loanpipe.core import catalog

    return _read_dated(lake, catalog.outcome_dates(lake), catalog.outcomes, as_of, columns, ARRIVAL_DATE)


def read_applications(lake: "Lake", upto: dt.date, id_column: str) -> pd.DataFrame:
    """Every application landed as a run date's batch up to ``upto``: its id and ``application_date`` (the run
    date). An id in two batches (the emulation's sampling with replacement) keeps its first date."""
    from loanpipe.core import catalog

    apps = _read_dated(lake, catalog.batch_dates(lake), catalog.batch, upto, [id_column], APPLICATION_DATE)
    return apps.drop_duplicates(id_column, keep="first").reset_index(drop=True)
