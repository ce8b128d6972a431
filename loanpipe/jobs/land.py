"""Landing what an upstream system drops: the day's applications, and outcome records by the day they arrived.

    python -m loanpipe.jobs.land applications --date D FILE [FILE ...]
    python -m loanpipe.jobs.land applications --date D --from-inbox
    python -m loanpipe.jobs.land outcomes --date A FILE [FILE ...] | --from-inbox
    python -m loanpipe.jobs.land day --date D       (both, from the inbox: dag_new_data's job in inbox mode)

An application file (CSV with the schema's separator, or Parquet; any name) has the lake's id and feature columns
and no outcome (a target or label column is refused: outcomes land on their own). Its rows become run date D's
batch, ``test_sample/run_date=D/``, published whole; a row whose id or a number cannot be read goes to
``applications_quarantine/run_date=D/`` with its file, line and reason (the daily job then checks the rest
against the data contract). ``--from-inbox`` lands the files waiting in ``batch.inbox``'s ``applications/`` (or
``outcomes/``) folder and moves them to ``processed/D/<folder>/`` there, after a list of them is written, so a
rerun of D lands the same files again.

An outcome file (CSV with the schema's separator, or Parquet; any name) has the lake's id and target columns
(a text target is binarised by the schema's rule, as ingest does) and optionally ``observation_date``, the day
the outcome was observed. Its rows land in ``outcomes/arrival_date=A/`` with their label, the file and line they
came from and their order (``sequence``: files by name, then lines; the later record of an id wins,
``loanpipe.core.maturity``). A row that cannot be used goes to ``outcomes_quarantine/arrival_date=A/`` with its
reason: an empty or malformed id or target, a bad observation date, an observation after the arrival, or an id
that no batch up to A holds ("never scored"). A file without the id or the target column is refused whole,
naming the file and the column. Both folders are published whole, under the arrival date's lock: landing A again
with the same files gives the same folders.
"""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from loanpipe.core import catalog, dates, maturity
from loanpipe.core.config import Config
from loanpipe.core.schema import DataSchema
from loanpipe.core.storage import Lake
from loanpipe.core.transaction import lease, run_date_transaction
from loanpipe.jobs.staging import separator_error

OBSERVATION = "observation_date"
SEQUENCE, SOURCE, LINE, REASON = "sequence", "source_file", "line", "reason"


class LandingError(ValueError):
    """A file cannot be landed; the message names the file, the column or row, and what to do. Nothing changed."""


# -- applications ---------------------------------------------------------------------------------------------

def read_table_file(name: str, data: bytes, sep: str) -> pd.DataFrame:
    """A CSV (``sep``; cells as text, empty cells "") or Parquet file (its types) as a frame, names stripped."""
    if name.lower().endswith(".parquet"):
        frame = pd.read_parquet(io.BytesIO(data))
    else:
        first = data.split(b"\n", 1)[0].decode("utf-8-sig", errors="replace")
        if wrong := separator_error(Path(name), first, sep):
            raise LandingError(wrong)
        frame = pd.read_csv(io.BytesIO(data), sep=sep, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame


def application_columns(frame: pd.DataFrame, name: str, schema: DataSchema, on_extra: str) -> list[str]:
    """The file's columns checked: every id and feature column, no outcome, extra ones by ``on_extra``."""
    missing = [c for c in schema.application_columns() if c not in frame.columns]
    if missing:
        raise LandingError(f"{name}: missing column(s) {missing[:10]} ({len(missing)} in all); an application file "
                           f"has the lake's id {schema.id_column!r} and feature columns")
    outcome = [c for c in (schema.target_column, schema.label_column) if c in frame.columns]
    if outcome:
        raise LandingError(f"{name}: has the outcome column(s) {outcome}; applications land without outcomes: "
                           "drop the column(s), and land the outcomes when they arrive (land outcomes)")
    extra = [c for c in frame.columns if c not in schema.application_columns()]
    if extra and on_extra == "fail":
        raise LandingError(f"{name}: unexpected column(s) {extra[:10]}; drop them, re-ingest with the new columns, "
                           "or set quality.on_extra_columns: drop")
    return extra


def _numbers(column: pd.Series, strip: list[str]) -> tuple[pd.Series, pd.Series]:
    """(the values as floats, True where a non-empty cell is not a number)."""
    if column.dtype != object:
        values = pd.to_numeric(column, errors="coerce").astype(float)
        return values, pd.Series(False, index=column.index)
    text = column.fillna("").astype(str).str.strip()
    for ch in strip:
        text = text.str.replace(ch, "", regex=False)
    values = pd.to_numeric(text.where(text != "", None), errors="coerce").astype(float)
    return values, values.isna() & (text != "")


def type_applications(frame: pd.DataFrame, schema: DataSchema, strip: list[str]) -> tuple[pd.DataFrame, pd.Series]:
    """(the rows with the lake's types, each row's reason to refuse it or ""): an empty or malformed id, a number
    that is not one."""
    ident = schema.id_column
    reason = pd.Series("", index=frame.index)
    text_id = frame[ident].fillna("").astype(str).str.strip()
    reason[text_id == ""] = "empty id"
    if schema.id_is_string:
        ids = text_id
    else:
        parsed = pd.to_numeric(text_id, errors="coerce")
        reason[(reason == "") & (parsed.isna() | (parsed != parsed.round()))] = "id is not an integer"
        ids = parsed.fillna(0).astype("int64")
    out = {ident: ids}
    for column in schema.features:
        if column in schema.categorical:
            out[column] = frame[column].where(frame[column].astype(str).str.strip() != "", None).astype(object)
            continue
        out[column], bad = _numbers(frame[column], strip)
        reason[(reason == "") & bad] = f"column {column!r} is not a number"
    return pd.DataFrame(out), reason


def land_applications(cfg: Config, lake: Lake, day: dt.date,
                      files: list[str] | list[tuple[str, bytes]]) -> dict[str, Any]:
    """Land ``files`` (paths, or (name, bytes): one day's application files) as run date ``day``'s batch (module
    docstring)."""
    schema = catalog.read_schema(lake)
    files, names = files_to_land(files, "application")
    typed, refused = [], []
    for name, data in files:
        frame = read_table_file(name, data, cfg.schema.csv_separator)
        application_columns(frame, name, schema, cfg.quality.on_extra_columns)
        rows, reason = type_applications(frame, schema, list(cfg.schema.numeric_strip))
        lines = np.arange(len(frame)) + 2  # the header is line 1 (a Parquet file: the row number + 1)
        typed.append(rows[reason == ""])
        refused.append(pd.DataFrame({schema.id_column: frame[schema.id_column].astype(str).to_numpy(),
                                     SOURCE: name, LINE: lines, REASON: reason.to_numpy()})[(reason != "").to_numpy()])
    good = pd.concat(typed, ignore_index=True)
    bad = pd.concat(refused, ignore_index=True).astype({LINE: "int64"})
    if len(bad) > cfg.quality.max_bad_share * (len(good) + len(bad)):
        first = bad.iloc[0]
        raise LandingError(f"{len(bad)} of {len(good) + len(bad)} application rows cannot be read (more than "
                           f"quality.max_bad_share = {cfg.quality.max_bad_share}), e.g. {first[SOURCE]} line "
                           f"{first[LINE]}: {first[REASON]}; fix the file(s) and land them again. Nothing was landed")
    landed = pa.Table.from_pandas(good, preserve_index=False, schema=schema.arrow_schema(schema.application_columns()))
    targets = [catalog.batch(lake, day), catalog.applications_quarantine(lake, day)]
    with run_date_transaction(lake, day, "land-applications", targets, lease(cfg)) as tx:
        catalog.write_table(tx.lake, landed, targets[0])
        catalog.write_table(tx.lake, pa.Table.from_pandas(bad, preserve_index=False), targets[1])
    return {"job": "land-applications", "run_date": day.isoformat(), "files": sorted(names),
            "rows": len(good) + len(bad), "landed": len(good), "quarantined": len(bad),
            "reasons": {str(k): int(v) for k, v in bad[REASON].value_counts().sort_index().items()},
            "examples": bad.head(cfg.quality.examples)[[SOURCE, LINE, REASON]].to_dict("records"),
            "path": targets[0], "quarantine": targets[1]}


PROCESSED = "processed"
LISTED = "_landed.json"  # in processed/D/: the files D lands, written before they are landed and moved


def land_from_inbox(cfg: Config, lake: Lake, day: dt.date, what: str = "applications") -> dict[str, Any] | None:
    """Land the files waiting in ``batch.inbox``'s ``what`` folder (``applications/`` or ``outcomes/``; names
    starting with ``.`` or ``_``, files still being written, are left) for ``day``, then move them to
    ``processed/D/<what>/``. The files are listed there first: a rerun of D lands those files again, from wherever
    they are, and nothing newer. No application file is an error; no outcome file lands nothing (None)."""
    import dataclasses

    from loanpipe.core.storage import open_lake

    if not cfg.batch.inbox:
        raise LandingError("batch.inbox is not set: name the folder or s3a:// prefix application files arrive in")
    inbox = open_lake(dataclasses.replace(cfg.storage, root=cfg.batch.inbox))
    waiting, done = inbox.uri(what), inbox.uri(PROCESSED, day.isoformat(), what)
    listed = f"{done}/{LISTED}"
    if inbox.exists(listed):
        names = inbox.read_json(listed)["files"]
    else:
        names = [f for f in inbox.list_files(waiting) if "/" not in f and not f.startswith((".", "_"))]
        if not names and what == "outcomes":
            return None
        if not names:
            raise LandingError(f"no application files in {waiting} to land for {day}; the upstream system drops "
                               "them there (CSV or Parquet)")
        inbox.write_json(listed, {"run_date": day.isoformat(), "files": names})

    def fetch(name: str) -> bytes:
        for uri in (f"{waiting}/{name}", f"{done}/{name}"):
            if inbox.exists(uri):
                return inbox.read_bytes(uri)
        raise LandingError(f"{name}, listed for {day} in {listed}, is neither in {waiting} nor in {done}; put it "
                           f"back, or remove {listed} to land what the inbox holds now")

    files = [(name, fetch(name)) for name in names]
    land = land_applications if what == "applications" else land_outcomes
    summary = land(cfg, lake, day, files)
    for name, data in files:  # landed: moved out of the inbox (copied, then removed)
        if inbox.exists(f"{waiting}/{name}"):
            inbox.write_bytes(f"{done}/{name}", data)
            inbox.remove(f"{waiting}/{name}")
    return {**summary, "inbox": waiting, "processed": done}


def land_day(cfg: Config, lake: Lake, day: dt.date) -> dict[str, Any]:
    """The new-data job in inbox mode (``dag_new_data``): the day's application files, then the outcome files that
    arrived, from ``batch.inbox``; the summary is kept where the emulation's is (``artifacts/data_gen/D/``)."""
    start = dt.datetime.now(dt.UTC)
    apps = land_from_inbox(cfg, lake, day, "applications")
    outcomes = land_from_inbox(cfg, lake, day, "outcomes")
    summary = {"job": "land", "source": "inbox", "run_date": day.isoformat(), "rows": apps["landed"],
               "applications": apps, "outcomes": outcomes,
               "seconds": round((dt.datetime.now(dt.UTC) - start).total_seconds(), 2)}
    lake.write_json(catalog.data_gen_summary(lake, day), summary)
    return summary


def outcome_schema(schema: DataSchema) -> pa.Schema:
    """The columns of ``outcomes/arrival_date=A/``, landed (here) or emulated (``loanpipe.jobs.data_gen``)."""
    return pa.schema([
        pa.field(schema.id_column, schema.arrow_type(schema.id_column), nullable=False),
        pa.field(schema.target_column, schema.arrow_type(schema.target_column)),
        pa.field(schema.label_column, pa.int32()), pa.field(OBSERVATION, pa.date32()),
        pa.field(SOURCE, pa.string()), pa.field(LINE, pa.int64()), pa.field(SEQUENCE, pa.int64())])


def read_outcome_file(name: str, data: bytes, schema: DataSchema, sep: str) -> pd.DataFrame:
    """The file's id, target and observation date columns as text (missing cells empty), with each row's line."""
    frame = read_table_file(name, data, sep)
    if name.lower().endswith(".parquet"):
        if OBSERVATION in frame:  # a date or timestamp column: its day
            frame[OBSERVATION] = pd.to_datetime(frame[OBSERVATION], errors="coerce").dt.strftime("%Y-%m-%d")
        frame = frame.astype(object).where(frame.notna(), "").astype(str)
    for column in (schema.id_column, schema.target_column):
        if column not in frame.columns:
            raise LandingError(f"{name}: no column {column!r}; an outcome file has the columns {schema.id_column!r}, "
                               f"{schema.target_column!r} and optionally {OBSERVATION!r} (found: "
                               f"{list(frame.columns)[:8]})")
    out = frame[[schema.id_column, schema.target_column]].apply(lambda s: s.str.strip())
    out[OBSERVATION] = frame[OBSERVATION].str.strip() if OBSERVATION in frame else ""
    out[SOURCE] = name
    out[LINE] = np.arange(len(frame)) + 2  # the header is line 1
    return out


def files_to_land(files: list[str] | list[tuple[str, bytes]], kind: str) -> tuple[list[tuple[str, bytes]], list[str]]:
    """``files`` as (name, bytes) by name, and their names: at least one, no two with one name (a refused row is
    named by its file's name and line)."""
    files = named(files)
    if not files:
        raise LandingError(f"no {kind} files given; pass one or more CSV or Parquet files")
    names = [n for n, _ in files]
    if len(set(names)) < len(names):
        raise LandingError(f"two {kind} files share a name ({names}); a refused row is named by its file's name and "
                           "line, so rename one")
    return files, names


def named(files: list[str] | list[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
    """Files as (name, bytes), by name: local paths are read."""
    return sorted((f if isinstance(f, tuple) else (Path(f).name, read_local(f)) for f in files),
                  key=lambda f: f[0])


def check_rows(rows: pd.DataFrame, schema: DataSchema, applications: pd.DataFrame, arrival: dt.date) -> pd.DataFrame:
    """Each row's typed id and target, label and observation date, and the reason it is refused ("" if none);
    ``applications``: the ids scored up to the arrival (``maturity.read_applications``)."""
    ident, target = schema.id_column, schema.target_column
    reason = pd.Series("", index=rows.index)

    def refuse(mask: pd.Series, why: str) -> None:
        reason[mask & (reason == "")] = why

    refuse(rows[ident] == "", "empty id")
    if schema.id_is_string:
        ids = rows[ident]
    else:
        ids = pd.to_numeric(rows[ident], errors="coerce")
        refuse(ids.isna() | (ids != ids.round()), "id is not an integer")
        ids = ids.fillna(0).astype("int64")
    refuse(rows[target] == "", "no target")
    if schema.target_is_text:
        values = rows[target]
    else:
        values = pd.to_numeric(rows[target], errors="coerce")
        refuse(values.isna(), "target is not a number")
        values = values.fillna(0)
        values = values.astype("int64") if schema.target_is_integer else values
    observed = pd.to_datetime(rows[OBSERVATION], errors="coerce", format="%Y-%m-%d")
    refuse(observed.isna() & (rows[OBSERVATION] != ""), "observation_date is not a date (YYYY-MM-DD)")
    refuse(observed.notna() & (observed > pd.Timestamp(arrival)), f"observed after it arrived ({arrival})")
    refuse(maturity.unknown_outcomes(applications, pd.DataFrame({ident: ids}), ident),
           f"never scored: no batch up to {arrival} holds this id")
    return pd.DataFrame({ident: ids, target: values, schema.label_column: schema.binarise(values).astype("int32"),
                         OBSERVATION: [t.date() if pd.notna(t) else None for t in observed], SOURCE: rows[SOURCE],
                         LINE: rows[LINE], REASON: reason})


def land_outcomes(cfg: Config, lake: Lake, arrival: dt.date, files: list[str] | list[tuple[str, bytes]]) -> dict[str, Any]:
    """Land ``files`` (paths, or (name, bytes)) as the outcome records that arrived on ``arrival`` (module
    docstring); returns a summary."""
    schema = catalog.read_schema(lake)
    files, names = files_to_land(files, "outcome")
    rows = pd.concat([read_outcome_file(n, d, schema, cfg.schema.csv_separator) for n, d in files],
                     ignore_index=True)
    checked = check_rows(rows, schema, maturity.read_applications(lake, arrival, schema.id_column), arrival)
    checked[SEQUENCE] = np.arange(len(checked), dtype="int64")
    good, bad = checked[checked[REASON] == ""], checked[checked[REASON] != ""]
    landed = pa.Table.from_pandas(good.drop(columns=[REASON]), preserve_index=False, schema=outcome_schema(schema))
    refused = rows.loc[bad.index].assign(**{REASON: bad[REASON]}).astype({LINE: "int64"})
    targets = [catalog.outcomes(lake, arrival), catalog.outcomes_quarantine(lake, arrival)]
    with run_date_transaction(lake, arrival, "land-outcomes", targets, lease(cfg)) as tx:
        catalog.write_table(tx.lake, landed, targets[0])
        catalog.write_table(tx.lake, pa.Table.from_pandas(refused.reset_index(drop=True), preserve_index=False),
                            targets[1])
    return {"job": "land-outcomes", "arrival_date": arrival.isoformat(), "files": names, "rows": len(rows),
            "landed": len(good), "defaults": int(good[schema.label_column].sum()), "quarantined": len(bad),
            "reasons": {str(k): int(v) for k, v in bad[REASON].value_counts().sort_index().items()},
            "examples": bad.head(cfg.quality.examples)[[SOURCE, LINE, REASON]].to_dict("records"),
            "path": targets[0], "quarantine": targets[1]}


def main(argv: list[str] | None = None) -> int:
    import argparse

    from loanpipe.core.config import load_config
    from loanpipe.core.storage import open_lake
    from loanpipe.jobs.cli import run_job

    parser = argparse.ArgumentParser(prog="python -m loanpipe.jobs.land", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["applications", "outcomes", "day"],
                        help="what the files hold; day: both, from the inbox (what dag_new_data runs)")
    parser.add_argument("--date", required=True, help="the run date (applications) or the day they arrived (outcomes)")
    parser.add_argument("files", nargs="*", help="CSV or Parquet files")
    parser.add_argument("--from-inbox", action="store_true",
                        help="land the files waiting in batch.inbox's applications/ (or outcomes/) folder")
    parser.add_argument("--config", help="config file (default: LOANPIPE_CONFIG or conf/default.yaml)")
    args = parser.parse_intermixed_args(argv)  # the files may follow --date
    if args.what == "day":
        args.from_inbox = True
    if args.from_inbox == bool(args.files):
        parser.error("pass the files, or --from-inbox")
    cfg = load_config(args.config)

    def land() -> dict[str, Any]:
        day = dates.parse_run_date(args.date)
        lake = open_lake(cfg.storage)
        if args.what == "day":
            return land_day(cfg, lake, day)
        if args.from_inbox:
            return land_from_inbox(cfg, lake, day, args.what) or {"job": "land-outcomes", "landed": 0,
                                                                  "arrival_date": day.isoformat()}
        land = land_applications if args.what == "applications" else land_outcomes
        return land(cfg, lake, day, named(args.files))

    return run_job("land", land)


def read_local(path: str) -> bytes:
    if not Path(path).is_file():
        raise LandingError(f"{path}: no such file; pass the files to land")
    return Path(path).read_bytes()


if __name__ == "__main__":
    from loanpipe.jobs.cli import exit_after

    exit_after(lambda: main())
