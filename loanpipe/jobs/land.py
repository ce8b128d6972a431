"""Landing what an upstream system drops: outcome records, by the day they arrived.

    python -m loanpipe.jobs.land outcomes --date A FILE [FILE ...]

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


def outcome_schema(schema: DataSchema) -> pa.Schema:
    """The columns of ``outcomes/arrival_date=A/``, landed (here) or emulated (``loanpipe.jobs.data_gen``)."""
    return pa.schema([
        pa.field(schema.id_column, schema.arrow_type(schema.id_column), nullable=False),
        pa.field(schema.target_column, schema.arrow_type(schema.target_column)),
        pa.field(schema.label_column, pa.int32()), pa.field(OBSERVATION, pa.date32()),
        pa.field(SOURCE, pa.string()), pa.field(LINE, pa.int64()), pa.field(SEQUENCE, pa.int64())])


def read_outcome_file(path: Path, schema: DataSchema, sep: str) -> pd.DataFrame:
    """The file's id, target and observation date columns as text (missing cells empty), with each row's line."""
    if not path.is_file():
        raise ValueError(f"{path}: no such file; pass the outcome files to land")
    if path.suffix.lower() == ".parquet":
        frame = pd.read_parquet(path)
        if OBSERVATION in frame:  # a date or timestamp column: its day
            frame[OBSERVATION] = pd.to_datetime(frame[OBSERVATION], errors="coerce").dt.strftime("%Y-%m-%d")
        frame = frame.astype(object).where(frame.notna(), "").astype(str)
    else:
        with path.open(encoding="utf-8-sig") as fh:
            if wrong := separator_error(path, fh.readline(), sep):
                raise ValueError(wrong)
        frame = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    frame.columns = [str(c).strip() for c in frame.columns]
    for column in (schema.id_column, schema.target_column):
        if column not in frame.columns:
            raise ValueError(f"{path}: no column {column!r}; an outcome file has the columns {schema.id_column!r}, "
                             f"{schema.target_column!r} and optionally {OBSERVATION!r} (found: {list(frame.columns)[:8]})")
    out = frame[[schema.id_column, schema.target_column]].apply(lambda s: s.str.strip())
    out[OBSERVATION] = frame[OBSERVATION].str.strip() if OBSERVATION in frame else ""
    out[SOURCE] = path.name
    out[LINE] = np.arange(len(frame)) + 2  # the header is line 1
    return out


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


def land_outcomes(cfg: Config, lake: Lake, arrival: dt.date, files: list[str]) -> dict[str, Any]:
    """Land ``files`` as the outcome records that arrived on ``arrival`` (module docstring); returns a summary."""
    schema = catalog.read_schema(lake)
    paths = sorted((Path(f) for f in files), key=lambda p: (p.name, str(p)))
    if not paths:
        raise ValueError("no outcome files given; pass one or more CSV or Parquet files")
    if len({p.name for p in paths}) < len(paths):
        raise ValueError(f"two outcome files share a name ({[p.name for p in paths]}); a landed row is named by "
                         f"its file's name and line, so rename one")
    rows = pd.concat([read_outcome_file(p, schema, cfg.schema.csv_separator) for p in paths], ignore_index=True)
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
    return {"arrival_date": arrival.isoformat(), "files": [p.name for p in paths], "rows": len(rows),
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
    parser.add_argument("what", choices=["outcomes"], help="what the files hold")
    parser.add_argument("--date", required=True, help="the day they arrived (YYYY-MM-DD)")
    parser.add_argument("files", nargs="+", help="CSV or Parquet files")
    parser.add_argument("--config", help="config file (default: LOANPIPE_CONFIG or conf/default.yaml)")
    args = parser.parse_args(argv)
    cfg = load_config(args.config)
    return run_job("land", lambda: land_outcomes(cfg, open_lake(cfg.storage), dates.parse_run_date(args.date),
                                                 args.files))


if __name__ == "__main__":
    from loanpipe.jobs.cli import exit_after

    exit_after(lambda: main())
