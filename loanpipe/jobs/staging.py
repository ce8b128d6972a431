"""A source file validated and converted into a local Parquet staging folder, ready for ingest's split.

The CSV is read on the driver, streaming (pyarrow's CSV reader, explicit column types): the id and target columns
exist, numeric cells are numbers, ids are present and unique, the target is present, the file is not empty and its
last line is not truncated. Every error names the file, the line/row and the column, and says what to do. The
synthetic generator stages its rows (and their true default probabilities) the same way.
"""

from __future__ import annotations

import csv
import hashlib
import io
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from loanpipe.core.config import Config
from loanpipe.core.schema import DERIVED_ID, DataSchema, SchemaError
from loanpipe.ml import synth

SEPARATORS = {",": "comma", ";": "semicolon", "\t": "tab", "|": "vertical bar"}  # the ones a header is checked for


class IngestError(ValueError):
    """Input data is unusable; the message says which file, row and column, and what to do."""


@dataclass
class Staged:
    """Validated rows in a local Parquet folder, ready for the split."""

    data_dir: Path
    truth_dir: Path | None
    schema: DataSchema
    rows: int
    defaults: int
    source: str
    fingerprint: str
    seconds: float
    notes: dict[str, Any] = field(default_factory=dict)  # what ingest did beyond copying (derived ids, dropped rows)


# -- CSV validation -------------------------------------------------------------------------------------

def _count_lines_and_tail(path: Path) -> tuple[int, bytes, bool]:
    """(number of lines, last line, file ends with newline) with a fast binary scan."""
    n = 0
    last_chunk = b""
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 24):
            n += chunk.count(b"\n")
            last_chunk = (last_chunk + chunk)[-(1 << 20):]
    ends_nl = last_chunk.endswith(b"\n")
    body = last_chunk[:-1] if ends_nl else last_chunk
    if ends_nl and body.endswith(b"\r"):
        body = body[:-1]
    tail = body.rsplit(b"\n", 1)[-1]
    return n + (0 if ends_nl else 1), tail, ends_nl


def _locate_bad_cell(path: Path, schema: DataSchema, header: list[str], sep: str) -> str:
    """Find the first cell that breaks the explicit types (slow path, only after pyarrow refused the file)."""
    numeric = [c for c in header if c in set(schema.numeric_features)
               or (c == schema.target_column and not schema.target_is_text) or (c == schema.id_column and not schema.id_is_string)]
    row0 = 0
    for chunk in pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False, chunksize=20_000, usecols=numeric,
                             encoding="utf-8-sig"):
        for col in numeric:
            values = chunk[col].str.strip()
            nonempty = values != ""
            parsed = pd.to_numeric(values.where(nonempty, "0"), errors="coerce")
            bad = parsed.isna() & nonempty
            if bad.any():
                i = int(np.flatnonzero(bad.to_numpy())[0])
                row = row0 + i + 1
                kind = "an integer" if col in (schema.id_column, schema.target_column) else "a number"
                hint = (f"fix the cell, or list {col!r} in schema.categorical_columns if it is a category"
                        if col in schema.features else "fix the cell")
                return (f"{path}: line {row + 1} (data row {row}), column {col!r}: value {values.iloc[i]!r} is not "
                        f"{kind}; {hint}")
        row0 += len(chunk)
    return ""


def _field_count_error(path: Path, n_columns: int, sep: str) -> str:
    with path.open(newline="", encoding="utf-8-sig") as fh:
        for line_no, fields in enumerate(csv.reader(fh, delimiter=sep), start=1):
            if len(fields) != n_columns:
                return (f"{path}: line {line_no} (data row {line_no - 1}) has {len(fields)} fields but the header "
                        f"has {n_columns}; fix or remove that line")
    return ""


def separator_error(path: Path, first_line: str, sep: str) -> str:
    """A message for a header that does not split on ``sep`` but does on another common separator ("" if not)."""
    if sep in first_line:
        return ""
    found = {s: first_line.count(s) for s in SEPARATORS if s != sep}
    other = max(found, key=lambda s: found[s])
    if not found[other]:
        return ""
    return (f"{path}: the header has no {SEPARATORS.get(sep, repr(sep))} but {found[other]} "
            f"{SEPARATORS[other]}s: the file is separated by {SEPARATORS[other]}s ({other!r}); set "
            f"schema.csv_separator: {other!r} in the config, or export it separated by {SEPARATORS.get(sep, repr(sep))}s")


def _read_header(path: Path, sep: str = ",") -> tuple[list[str], pd.DataFrame]:
    """The header's names and the first rows as text; errors for a missing, empty or header-only file, and for a
    file separated by another separator than ``sep``."""
    if not path.is_file():
        raise IngestError(f"{path}: no such file; pass the path of the CSV (e.g. train_v2.csv)")
    if path.stat().st_size == 0:
        raise IngestError(f"{path}: the file is empty; export the data again")
    with path.open(newline="", encoding="utf-8-sig") as fh:  # a byte-order mark, as spreadsheets write it, is not a name
        first_line = fh.readline()
    header = next(csv.reader([first_line], delimiter=sep), [])
    if len(header) == 1 and (wrong := separator_error(path, first_line, sep)):
        raise IngestError(wrong)
    header = [h.strip() for h in header]
    if not header or header == [""]:
        raise IngestError(f"{path}: the first line (header) is empty; the file needs a header row")
    try:
        sample = pd.read_csv(path, sep=sep, nrows=1000, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except Exception as exc:  # noqa: BLE001 - pandas raises many types; all mean "unreadable"
        raise IngestError(f"{path}: cannot be read as CSV ({exc})") from None
    if len(sample) == 0:
        raise IngestError(f"{path}: has a header but no data rows; export the data again")
    return header, sample


def _schema_of(cfg: Config, path: Path, header: list[str], sample: pd.DataFrame) -> DataSchema:
    """The lake schema the file's header gives under ``cfg.schema`` (the id derived when none is configured)."""
    id_col = cfg.schema.id_column
    derive_id = id_col is None
    if derive_id and DERIVED_ID in header:
        raise IngestError(f"{path}: has a column named {DERIVED_ID!r}, the name of the id derived when "
                          f"schema.id_column is null; set schema.id_column: {DERIVED_ID} to use it as the id")
    id_is_string = derive_id or (id_col in sample and not sample[id_col].str.strip().str.fullmatch(r"-?\d+").all())
    try:
        schema = DataSchema.from_columns(cfg.schema, header + ([DERIVED_ID] if derive_id else []), source=str(path),
                                         id_is_string=bool(id_is_string))
    except SchemaError as exc:
        raise IngestError(str(exc)) from None
    if schema.label_column in header:
        raise IngestError(f"{path}: has a column named {schema.label_column!r}, which ingest creates from the target; "
                          f"rename it or set schema.label_column")
    return schema


def _check_not_truncated(path: Path, header: list[str], sep: str) -> None:
    n_lines, tail, _ = _count_lines_and_tail(path)
    tail_fields = next(csv.reader(io.StringIO(tail.decode(errors="replace")), delimiter=sep), [])
    if tail.strip() and len(tail_fields) < len(header):
        raise IngestError(
            f"{path}: the last line (line {n_lines}, data row {n_lines - 1}) has {len(tail_fields)} of "
            f"{len(header)} fields: the file looks truncated; download or export it again"
        )


@dataclass
class _Counts:
    rows: int = 0
    defaults: int = 0
    seen: int = 0
    dropped: int = 0
    infinite: int = 0
    ids: list[np.ndarray] = field(default_factory=list)


def _convert_block(cfg: Config, frame: pd.DataFrame, schema: DataSchema, path: Path, cleaned: list[str],
                   fingerprint: str, counts: _Counts) -> pd.DataFrame:
    """One block of the CSV as the lake's rows: ids derived, numbers cleaned, rows checked, the label added."""
    strip = list(cfg.schema.numeric_strip)
    offset, counts.seen = counts.seen, counts.seen + len(frame)
    if cfg.schema.id_column is None:  # a derived id, stable: the same file gives the same ids, another file others
        frame[DERIVED_ID] = [f"{fingerprint[7:19]}-{offset + i + 1}" for i in range(len(frame))]
    for col in cleaned:
        frame[col] = _parse_numbers(frame[col], strip, path, col, offset, schema)
    if cfg.schema.drop_missing_target:
        keep = frame[schema.target_column].notna().to_numpy()
        counts.dropped += int((~keep).sum())
        frame = frame[keep]
    _check_batch(frame, schema, path, offset)
    counts.infinite += _infinite_cells(frame, schema, path, offset, cfg.schema.on_infinite)
    counts.ids.append(frame[schema.id_column].to_numpy())
    frame[schema.label_column] = schema.binarise(frame[schema.target_column]).astype("int32")
    counts.defaults += int(frame[schema.label_column].sum())
    counts.rows += len(frame)
    return frame


def stage_csv(cfg: Config, csv_path: str | Path, work_dir: Path) -> Staged:
    """Validate a Kaggle-format CSV and convert it into a local Parquet staging folder."""
    start = time.monotonic()
    path = Path(csv_path)
    sep = cfg.schema.csv_separator
    header, sample = _read_header(path, sep)
    schema = _schema_of(cfg, path, header, sample)
    _check_not_truncated(path, header, sep)
    types = {c: schema.arrow_type(c) for c in header if c in schema.lake_columns()}
    cleaned = [c for c, t in types.items() if cfg.schema.numeric_strip and t != pa.string()]  # text, cleaned, parsed
    types.update({c: pa.string() for c in cleaned})
    fingerprint = _file_fingerprint(path)
    convert = pacsv.ConvertOptions(column_types=types, include_columns=[c for c in header if c in types],
                                   strings_can_be_null=True, null_values=["", "NA", "NaN", "nan", "null", "NULL"])
    out_dir = work_dir / "data"
    out_dir.mkdir(parents=True)
    arrow_schema = schema.arrow_schema()
    counts = _Counts()
    try:
        reader = pacsv.open_csv(path, read_options=pacsv.ReadOptions(block_size=1 << 24), convert_options=convert,
                                parse_options=pacsv.ParseOptions(delimiter=sep, newlines_in_values=True))
        with pq.ParquetWriter(out_dir / "part-00000.parquet", arrow_schema) as writer:
            for batch in reader:
                frame = _convert_block(cfg, batch.to_pandas(), schema, path, cleaned, fingerprint, counts)
                writer.write_table(pa.Table.from_pandas(frame[schema.lake_columns()], schema=arrow_schema,
                                                        preserve_index=False))
    except pa.ArrowInvalid as exc:
        detail = _field_count_error(path, len(header), sep) or _locate_bad_cell(path, schema, header, sep)
        raise IngestError(detail or f"{path}: not a valid CSV for the configured schema ({exc})") from None
    if counts.rows == 0:
        raise IngestError(f"{path}: has a header but no data rows; export the data again")
    _check_unique_ids(np.concatenate(counts.ids), schema, path)
    return Staged(out_dir, None, schema, counts.rows, counts.defaults, str(path), fingerprint,
                  round(time.monotonic() - start, 2), _notes(cfg, counts))


def _notes(cfg: Config, counts: _Counts) -> dict[str, Any]:
    """What ingest did beyond copying, for the summary."""
    notes: dict[str, Any] = {}
    if cfg.schema.id_column is None:
        notes["derived_id"] = (f"the file has no id column: {DERIVED_ID!r} = the first 12 hex digits of its sha256 "
                               "and the data row number")
    if cfg.schema.drop_missing_target:
        notes["dropped_missing_target"] = counts.dropped
    if cfg.schema.on_infinite == "missing":
        notes["infinite_as_missing"] = counts.infinite
    return notes


def _parse_numbers(text: pd.Series, strip: list[str], path: Path, col: str, offset: int,
                   schema: DataSchema) -> pd.Series:
    """Numbers written with characters to ignore (``schema.numeric_strip``: "$60,000.00 " -> 60000.0)."""
    cleaned = text.str.strip()
    for ch in strip:
        cleaned = cleaned.str.replace(ch, "", regex=False)
    cleaned = cleaned.str.strip()
    values = pd.to_numeric(cleaned.where(cleaned != "", None), errors="coerce")
    bad = (values.isna() & cleaned.notna() & (cleaned != "")).to_numpy()
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        row = offset + i + 1
        raise IngestError(f"{path}: line {row + 1} (data row {row}), column {col!r}: value {text.iloc[i]!r} is not a "
                          f"number even without {strip}; fix the cell, or list {col!r} in schema.categorical_columns")
    if col == schema.target_column and schema.target_is_integer:
        return values.astype("Int64")
    return values.astype(float)


def _check_batch(frame: pd.DataFrame, schema: DataSchema, path: Path, offset: int) -> None:
    for col, what in ((schema.id_column, "id"), (schema.target_column, "target")):
        null = frame[col].isna().to_numpy()
        if null.any():
            row = int(frame.index[np.flatnonzero(null)[0]]) + offset + 1
            hint = " (or set schema.drop_missing_target: true to leave such rows out)" if what == "target" else ""
            raise IngestError(f"{path}: line {row + 1} (data row {row}): the {what} column {col!r} is empty; "
                              f"every row needs an {what}: fill it in or drop the row{hint}")
    if schema.target_is_integer and not schema.target_is_text:
        target = frame[schema.target_column]
        if (target < 0).any():
            row = int(frame.index[np.flatnonzero((target < 0).to_numpy())[0]]) + offset + 1
            raise IngestError(f"{path}: line {row + 1} (data row {row}): target {schema.target_column!r} is negative")


def _infinite_cells(frame: pd.DataFrame, schema: DataSchema, path: Path, offset: int, on_infinite: str) -> int:
    """Feature cells reading inf or -inf: refused naming the first (``fail``), or set missing in ``frame``
    (``missing``); returns how many were set missing."""
    columns = [c for c in schema.numeric_features if c in frame.columns]
    if not columns:
        return 0
    values = frame[columns].to_numpy(dtype=float, na_value=np.nan)
    infinite = np.isinf(values)
    if not infinite.any():
        return 0
    if on_infinite == "fail":
        i, j = (int(v[0]) for v in np.nonzero(infinite))
        row = int(frame.index[i]) + offset + 1
        raise IngestError(f"{path}: line {row + 1} (data row {row}), column {columns[j]!r}: value {values[i, j]} is "
                          "infinite; fix the cell, or set schema.on_infinite: missing to store such cells as missing")
    for j in np.flatnonzero(infinite.any(axis=0)):
        frame.loc[infinite[:, j], columns[j]] = np.nan
    return int(infinite.sum())


def _check_unique_ids(ids: np.ndarray, schema: DataSchema, path: Path) -> None:
    values, first_index, counts = np.unique(ids, return_index=True, return_counts=True)
    if (counts > 1).any():
        dup = values[counts > 1]
        rows = np.flatnonzero(ids == dup[0])[:3] + 1
        raise IngestError(
            f"{path}: {len(dup)} duplicate id value(s) in column {schema.id_column!r}, e.g. {dup[0].item()!r} on data rows "
            f"{', '.join(map(str, rows))} (lines {', '.join(str(r + 1) for r in rows)}); ids must be unique: "
            "remove the duplicates"
        )


def _file_fingerprint(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 24):
            digest.update(chunk)
    return f"sha256:{digest.hexdigest()}"


# -- synthetic data ---------------------------------------------------------------------------------------

def stage_synthetic(cfg: Config, rows: int, seed: int, work_dir: Path) -> Staged:
    """Generate ``rows`` synthetic rows (in chunks) into a local Parquet staging folder, truth beside it."""
    start = time.monotonic()
    schema = DataSchema.from_columns(cfg.schema, [synth.ID_COLUMN, *synth.FEATURE_NAMES, synth.TARGET_COLUMN],
                                     source="synthetic generator")
    out_dir, truth_dir = work_dir / "data", work_dir / "truth"
    out_dir.mkdir(parents=True)
    truth_dir.mkdir(parents=True)
    arrow_schema = schema.arrow_schema()
    n = defaults = 0
    truth_schema = pa.schema([pa.field(schema.id_column, pa.int64(), False), pa.field(synth.TRUTH_COLUMN, pa.float64())])
    with pq.ParquetWriter(out_dir / "part-00000.parquet", arrow_schema) as writer, \
            pq.ParquetWriter(truth_dir / "part-00000.parquet", truth_schema) as twriter:
        for frame, truth in synth.generate_chunks(rows, seed, cfg.synthetic.chunk_rows):
            frame[schema.label_column] = schema.binarise(frame[schema.target_column]).astype("int32")
            defaults += int(frame[schema.label_column].sum())
            writer.write_table(pa.Table.from_pandas(frame[schema.lake_columns()], schema=arrow_schema, preserve_index=False))
            twriter.write_table(pa.Table.from_pandas(truth, schema=truth_schema, preserve_index=False))
            n += len(frame)
    fingerprint = f"synthetic:v2:rows={rows}:seed={seed}"
    return Staged(out_dir, truth_dir, schema, n, defaults, f"synthetic(rows={rows}, seed={seed})", fingerprint,
                  round(time.monotonic() - start, 2))
