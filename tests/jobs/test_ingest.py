"""Ingest: generator or CSV -> validated, split, explicitly typed Parquet in the lake; bad input is refused."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import pandas as pd
import pytest

from loanpipe.core import storage
from loanpipe.ml import synth
from loanpipe.core.config import Config
from loanpipe.jobs.ingest import IngestError, run_ingest
from loanpipe.core.catalog import read_schema as read_lake_schema
from loanpipe.core.storage import open_lake

pytestmark = pytest.mark.spark


def write_kaggle_csv(path: Path, rows: int = 300, seed: int = 5) -> pd.DataFrame:
    frame, _ = synth.generate(rows, seed)
    frame.to_csv(path, index=False)
    return frame




@pytest.fixture(scope="module")
def lake_config(base_config: Config, tmp_path_factory: pytest.TempPathFactory, spark) -> Config:
    """One synthetic lake of 3,000 rows, ingested once for the module."""
    cfg = base_config.replace(storage={"root": str(tmp_path_factory.mktemp("ingest") / "lake")})
    run_ingest(cfg, rows=3000, seed=11, spark=spark)
    return cfg


def test_synthetic_ingest_writes_a_stratified_typed_split(lake_config: Config, spark) -> None:
    lake = open_lake(lake_config.storage)
    summary = lake.read_json(lake.uri(storage.ARTIFACTS, "ingest/summary.json"))
    train = spark.read.parquet(lake.uri(storage.TRAIN))
    test = spark.read.parquet(lake.uri(storage.TEST))
    assert train.count() + test.count() == 3000 == summary["rows"]
    assert test.count() == pytest.approx(900, abs=2)
    rate_train = train.filter("default = 1").count() / train.count()
    rate_test = test.filter("default = 1").count() / test.count()
    assert abs(rate_train - rate_test) < 0.003  # stratified on the label
    assert train.join(test, "id").count() == 0
    types = dict(train.dtypes)
    assert types["id"] == "bigint" and types["loss"] == "bigint" and types["default"] == "int"
    assert types["f1"] == "double" and len(train.columns) == 772
    assert lake.is_published(lake.uri(storage.TRAIN)) and lake.is_published(lake.uri(storage.TEST))
    truth = spark.read.parquet(lake.uri(storage.ARTIFACTS, "truth"))
    assert truth.count() == 3000 and truth.columns == ["id", "p_default"]
    assert read_lake_schema(lake).features[:2] == ("f1", "f2")
    assert os.listdir(lake.uri(storage.STAGING)) == []


def test_same_synthetic_data_is_not_ingested_twice(lake_config: Config, spark, folder_digest) -> None:  # noqa: ANN001
    root = lake_config.storage.root
    before = folder_digest(root)
    summary = run_ingest(lake_config, rows=3000, seed=11, spark=spark)
    assert summary["skipped"] == (f"the lake at {root} already holds synthetic:v2:rows=3000:seed=11; "
                                  "--force to ingest again")
    assert folder_digest(root) == before  # nothing written: not even the summary
    # the summary is the first ingest's, as published
    assert summary["fingerprint"] == "synthetic:v2:rows=3000:seed=11" and summary["rows"] == 3000
    assert summary["split"]["train"]["rows"] + summary["split"]["test"]["rows"] == 3000


def test_ingest_refuses_to_orphan_downstream_data(folder_digest, lake_config: Config, tmp_path: Path, spark) -> None:
    root = tmp_path / "lake"
    shutil.copytree(lake_config.storage.root, root)
    cfg = lake_config.replace(storage={"root": str(root)})
    (root / "test_sample" / "run_date=2026-01-01").mkdir(parents=True)
    (root / "test_sample" / "run_date=2026-01-01" / "part-0.parquet").write_bytes(b"x")
    with pytest.raises(IngestError, match="--reset") as same:
        run_ingest(cfg, rows=2000, seed=3, spark=spark)
    assert "columns differ" not in str(same.value)  # the same columns: nothing to list
    # a file whose columns differ from the models': the refusal lists what changed
    frame, _ = synth.generate(60, 5)
    csv_path = tmp_path / "changed.csv"
    frame.drop(columns=["f5", "f6"]).assign(extra=1.0).to_csv(csv_path, index=False)
    before = folder_digest(str(root))
    with pytest.raises(IngestError, match=r"columns differ from those the models were trained on: 1 added: extra; "
                                          r"2 removed: f5, f6\. Pass --reset"):
        run_ingest(cfg, csv_path=str(csv_path), spark=spark)
    assert folder_digest(str(root)) == before


def test_csv_ingest_with_string_categoricals_and_another_schema(config: Config, tmp_path: Path, spark) -> None:
    """Another loan dataset, by configuration alone: other id/target names, a string category, a rule."""
    csv_path = tmp_path / "loans.csv"
    n = 400
    pd.DataFrame({
        "loan_id": [f"L{i:05d}" for i in range(n)],
        "grade": [["A", "B", "C", None][i % 4] for i in range(n)],
        "income": [1000.0 + i for i in range(n)],
        "dti": [None if i % 7 == 0 else i / 10 for i in range(n)],
        "status": [i % 5 for i in range(n)],
    }).to_csv(csv_path, index=False)
    cfg = config.replace(schema={"id_column": "loan_id", "target_column": "status", "categorical_columns": ["grade"],
                                 "target_rule": {"op": ">=", "threshold": 3.0}})
    summary = run_ingest(cfg, csv_path=str(csv_path), spark=spark)
    assert summary["rows"] == n and summary["categorical"] == ["grade"]
    assert summary["default_rate"] == pytest.approx(0.4)
    lake = open_lake(cfg.storage)
    train = spark.read.parquet(lake.uri(storage.TRAIN))
    types = dict(train.dtypes)
    assert types["loan_id"] == "string" and types["grade"] == "string" and types["income"] == "double"
    assert summary["paths"]["truth"] is None


def test_text_target_derived_ids_money_as_text_and_rows_without_a_target(config: Config, tmp_path: Path,
                                                                            spark) -> None:
    """A real-world file by configuration alone: no id column, a text target ("bad"), money written "$1,200.50 ",
    and rows whose target is empty (left out and counted)."""
    csv_path = tmp_path / "loans.csv"
    n = 300
    pd.DataFrame({
        "amount": [f"${1000 + 7 * i:,}.50 " if i % 9 else "" for i in range(n)],
        "region": [["north", "south", None][i % 3] for i in range(n)],
        "age": [20 + i % 50 for i in range(n)],
        "outcome": ["" if i % 50 == 0 else ("bad" if i % 4 == 0 else "good") for i in range(n)],
    }).to_csv(csv_path, index=False)
    cfg = config.replace(schema={"id_column": None, "target_column": "outcome", "categorical_columns": ["region"],
                                 "target_rule": {"op": "==", "threshold": "bad"}, "target_is_integer": False,
                                 "numeric_strip": ["$", ","], "drop_missing_target": True})
    summary = run_ingest(cfg, csv_path=str(csv_path), spark=spark)
    assert summary["rows"] == n - 6 and summary["dropped_missing_target"] == 6
    assert "row_id" in summary["derived_id"] and summary["label_rule"] == "outcome == 'bad'"
    lake = open_lake(cfg.storage)
    df = spark.read.parquet(lake.uri(storage.TRAIN)).unionByName(spark.read.parquet(lake.uri(storage.TEST))).toPandas()
    assert dict(zip(df.columns, df.dtypes.astype(str)))["amount"] == "float64"
    row = df.set_index("row_id").sort_index()
    digest = hashlib.sha256(csv_path.read_bytes()).hexdigest()[:12]
    assert row.loc[f"{digest}-2", "amount"] == 1007.5 and pd.isna(row.loc[f"{digest}-10", "amount"])
    assert row.loc[f"{digest}-2", "default"] == 0 and row.loc[f"{digest}-5", "default"] == 1  # data rows 5, 9, ... bad
    assert f"{digest}-1" not in row.index  # its target was empty
    assert df["default"].sum() == sum(1 for i in range(n) if i % 4 == 0 and i % 50)
    # the same file again gives the same ids; a bad money cell names its line and what to do
    bad = tmp_path / "bad.csv"
    bad.write_text(csv_path.read_text().replace("$1,014.50", "$1,0x4.50"))
    with pytest.raises(IngestError, match=r"line 4 \(data row 3\), column 'amount': value '\$1,0x4.50 ' is not a number"):
        run_ingest(cfg.replace(storage={"root": str(tmp_path / "other")}), csv_path=str(bad), spark=spark)


BAD_INPUTS = {
    "missing_id": (lambda f: f.drop(columns=["id"]), r"the id column 'id' is missing"),
    "missing_target": (lambda f: f.drop(columns=["loss"]), r"the target column 'loss' is missing"),
    "non_numeric": (lambda f: f.assign(f5=f["f5"].astype(object).where(f.index != 41, "abc")),
                    r"line 43 \(data row 42\), column 'f5': value 'abc' is not a number"),
    "duplicate_ids": (lambda f: f.assign(id=f["id"].where(f.index != 10, 3)),
                      r"duplicate id value\(s\) in column 'id', e.g. 3 on data rows 3, 11"),
    "empty_id": (lambda f: f.assign(id=f["id"].astype("Int64").where(f.index != 7, pd.NA)),
                 r"line 9 \(data row 8\): the id column 'id' is empty"),
    "infinite": (lambda f: f.assign(f5=f["f5"].where(f.index != 20, float("-inf"))),
                 r"line 22 \(data row 21\), column 'f5': value -inf is infinite; fix the cell, or set "
                 r"schema.on_infinite: missing"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_csv_is_refused_and_the_lake_is_untouched(folder_digest, case: str, lake_config: Config, tmp_path: Path, spark) -> None:
    root = tmp_path / "lake"
    shutil.copytree(lake_config.storage.root, root)
    cfg = lake_config.replace(storage={"root": str(root)})
    before = folder_digest(str(root))
    frame, _ = synth.generate(60, 5)
    mutate, message = BAD_INPUTS[case]
    csv_path = tmp_path / f"{case}.csv"
    mutate(frame).to_csv(csv_path, index=False)
    with pytest.raises(IngestError, match=message) as err:
        run_ingest(cfg, csv_path=str(csv_path), reset=True, spark=spark)
    assert str(csv_path) in str(err.value)
    assert folder_digest(str(root)) == before


def test_empty_file_header_only_and_truncated_last_line(tmp_path: Path, config: Config, spark) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(IngestError, match="the file is empty"):
        run_ingest(config, csv_path=str(empty), spark=spark)
    frame, _ = synth.generate(30, 5)
    header_only = tmp_path / "header.csv"
    frame.iloc[:0].to_csv(header_only, index=False)
    with pytest.raises(IngestError, match="no data rows"):
        run_ingest(config, csv_path=str(header_only), spark=spark)
    truncated = tmp_path / "truncated.csv"
    text = frame.to_csv(index=False)
    truncated.write_text(text[: len(text) - 2000])
    with pytest.raises(IngestError, match=r"last line \(line 31, data row 30\) has \d+ of 771 fields: the file looks truncated"):
        run_ingest(config, csv_path=str(truncated), spark=spark)
    missing = tmp_path / "nope.csv"
    with pytest.raises(IngestError, match="no such file"):
        run_ingest(config, csv_path=str(missing), spark=spark)


def test_real_format_csv_round_trip(tmp_path: Path, config: Config, spark) -> None:
    csv_path = tmp_path / "train_v2.csv"
    frame = write_kaggle_csv(csv_path, rows=500)
    summary = run_ingest(config, csv_path=str(csv_path), spark=spark)
    assert summary["rows"] == 500 and summary["features"] == 769
    lake = open_lake(config.storage)
    both = spark.read.parquet(lake.uri(storage.TRAIN)).unionByName(spark.read.parquet(lake.uri(storage.TEST))).toPandas()
    both = both.sort_values("id").reset_index(drop=True)
    pd.testing.assert_series_equal(both["f10"], frame["f10"], check_names=False)
    assert (both["default"] == (frame["loss"] > 0).astype("int32")).all()


# -- real-world quirks, each on a file made for it (staging only: what the lake would receive) -------------

def _stage(cfg: Config, path: Path, tmp_path: Path):  # noqa: ANN202
    import pyarrow.parquet as pq

    from loanpipe.jobs.ingest import stage_csv

    staged = stage_csv(cfg, path, tmp_path / f"work-{path.stem}")
    return staged, pq.read_table(staged.data_dir).to_pandas()


def test_a_spreadsheet_export_is_read_as_written(config: Config, tmp_path: Path) -> None:
    """Byte-order mark, CRLF line ends, every field quoted, commas, doubled quotes and a line break inside
    quotes: what Excel's "CSV UTF-8" writes."""
    import csv

    path = tmp_path / "excel.csv"
    levels = ["Smith, John", 'say "hi"', "two\nlines", "plain"]
    with path.open("w", newline="", encoding="utf-8-sig") as fh:
        writer = csv.writer(fh, dialect="excel", quoting=csv.QUOTE_ALL)
        writer.writerow(["id", "f1", "purpose", "loss"])
        for i in range(1, 41):
            writer.writerow([i, f"{i / 10:.1f}", levels[i % 4], 5 if i % 5 == 0 else 0])
    assert path.read_bytes().startswith(b"\xef\xbb\xbf\"id\"")
    staged, frame = _stage(config.replace(schema={"categorical_columns": ["purpose"]}), path, tmp_path)
    assert staged.rows == 40 and list(frame.columns) == ["id", "f1", "purpose", "loss", "default"]
    assert frame["purpose"].tolist() == [levels[i % 4] for i in range(1, 41)]
    assert frame["f1"].tolist() == [i / 10 for i in range(1, 41)] and frame["default"].sum() == 8


def test_a_semicolon_export_is_read_by_its_configured_separator_and_refused_naming_it_otherwise(
        config: Config, tmp_path: Path) -> None:
    """A spreadsheet export in a locale that writes ";" between fields (and "," inside a quoted text): with
    schema.csv_separator ";" it is read as written; with the default "," the message names the separator found
    (it used to say that the id column was missing)."""
    path = tmp_path / "export.csv"
    path.write_text('id;f1;purpose;loss\n1;0.5;"car; used";0\n2;1.5;"a, b";7\n3;2.5;plain;0\n', encoding="utf-8-sig")
    cfg = config.replace(schema={"categorical_columns": ["purpose"]})
    staged, frame = _stage(cfg.replace(schema={"csv_separator": ";"}), path, tmp_path / "semicolon")
    assert staged.rows == 3 and frame["purpose"].tolist() == ["car; used", "a, b", "plain"]
    assert frame["f1"].tolist() == [0.5, 1.5, 2.5] and frame["default"].tolist() == [0, 1, 0]
    with pytest.raises(IngestError, match=r"export.csv: the header has no comma but 3 semicolons: the file is "
                                          r"separated by semicolons \(';'\); set schema.csv_separator: ';'"):
        _stage(cfg, path, tmp_path / "comma")
    with pytest.raises(ValueError, match="schema.csv_separator must be one character"):
        config.replace(schema={"csv_separator": ";;"})


def test_infinite_cells_can_be_stored_as_missing(config: Config, tmp_path: Path) -> None:
    path = tmp_path / "inf.csv"
    path.write_text("id,f1,f2,loss\n1,0.5,inf,0\n2,-inf,1.5,3\n3,0.25,2.5,0\n")
    staged, frame = _stage(config.replace(schema={"on_infinite": "missing"}), path, tmp_path)
    assert staged.notes["infinite_as_missing"] == 2
    assert frame["f1"].isna().tolist() == [False, True, False] and frame["f2"].isna().tolist() == [True, False, False]
    with pytest.raises(IngestError, match=r"line 2 \(data row 1\), column 'f2': value inf is infinite"):
        _stage(config, path, tmp_path / "default")


def test_thousands_of_columns(config: Config, tmp_path: Path) -> None:
    path = tmp_path / "wide.csv"
    names = [f"f{i}" for i in range(1, 3001)]
    rows = [",".join([str(r), *(f"{(r * 7 + c) % 97 / 10}" for c in range(3000)), str(r % 3)]) for r in range(1, 51)]
    path.write_text(",".join(["id", *names, "loss"]) + "\n" + "\n".join(rows) + "\n")
    staged, frame = _stage(config, path, tmp_path)
    assert staged.rows == 50 and len(staged.schema.features) == 3000 and frame.shape == (50, 3003)
    assert frame.loc[9, "f3000"] == ((10 * 7 + 2999) % 97) / 10
