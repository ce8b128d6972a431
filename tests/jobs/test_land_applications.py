"""Landing the day's applications (``loanpipe.jobs.land applications``): typed by the lake's schema, no outcome,
unreadable rows quarantined with file, line and reason, published whole; from the inbox, moved to processed/D/
after being listed, so a rerun of D lands the same files. No Spark."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from loanpipe.core import catalog
from loanpipe.core.config import Config
from loanpipe.core.schema import DataSchema
from loanpipe.core.storage import LocalLake
from loanpipe.jobs import data_gen
from loanpipe.jobs.land import LandingError, land_applications, land_from_inbox

D1, D2 = dt.date(2026, 11, 1), dt.date(2026, 11, 2)
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture()
def lake(config: Config) -> LocalLake:
    """A lake whose schema has an integer id, two numeric features, a categorical one and the target loss."""
    lake = LocalLake(config.storage.root)
    lake.ensure_layout()
    schema = DataSchema.from_columns(config.schema.__class__(**{**config.schema.__dict__,
                                                                "categorical_columns": ["purpose"]}),
                                     ["id", "f1", "f2", "purpose", "loss"], "test")
    lake.write_json(catalog.schema(lake), schema.to_dict())
    return lake


def batch(lake: LocalLake, day: dt.date) -> pd.DataFrame:
    return catalog.read_table(lake, catalog.batch(lake, day)).to_pandas()


def quarantined(lake: LocalLake, day: dt.date) -> pd.DataFrame:
    return catalog.read_table(lake, catalog.applications_quarantine(lake, day)).to_pandas()


def test_applications_land_typed_and_unreadable_rows_are_quarantined(config: Config, lake: LocalLake) -> None:
    csv = b"id,f1,f2,purpose\n1,0.5,,car\n2,x,3,\n3,1e3,4,boat\n,1,2,car\n" + b"".join(
        f"{i},{i / 10},1,car\n".encode() for i in range(10, 400))
    parquet_rows = pd.DataFrame({"id": [7, 8], "f1": [0.25, None], "f2": [1.0, 2.0], "purpose": ["yacht", None]})
    parquet = parquet_rows.to_parquet()
    cfg = config.replace(quality={"max_bad_share": 0.01})
    summary = land_applications(cfg, lake, D1, [("b.csv", csv), ("a.parquet", parquet)])
    assert summary["rows"] == 396 and summary["landed"] == 394 and summary["quarantined"] == 2
    assert summary["reasons"] == {"column 'f1' is not a number": 1, "empty id": 1}
    got = batch(lake, D1)
    assert list(got.columns) == ["id", "f1", "f2", "purpose"]  # the application's columns: no target, no label
    assert got["id"].tolist()[:4] == [7, 8, 1, 3]  # files by name, then lines
    assert str(got["id"].dtype) == "int64" and str(got["f1"].dtype) == "float64"
    assert got["f1"].fillna(-1).tolist()[:4] == [0.25, -1, 0.5, 1000.0] and got["f2"].fillna(-1).tolist()[2] == -1
    assert got["purpose"].tolist()[:4] == ["yacht", None, "car", "boat"]
    bad = quarantined(lake, D1)
    assert bad[["source_file", "line", "reason"]].values.tolist() == [
        ["b.csv", 3, "column 'f1' is not a number"], ["b.csv", 5, "empty id"]]
    # landing D1 again with the same files gives the same batch
    land_applications(cfg, lake, D1, [("b.csv", csv), ("a.parquet", parquet)])
    pd.testing.assert_frame_equal(batch(lake, D1), got)


@pytest.mark.parametrize("content, message", [
    (b"id,f1,purpose\n1,2,car\n", r"a.csv: missing column\(s\) \['f2'\]"),
    (b"id,f1,f2,purpose,loss\n1,2,3,car,0\n", r"a.csv: has the outcome column\(s\) \['loss'\]; applications land "
                                              r"without outcomes"),
    (b"id,f1,f2,purpose,extra\n1,2,3,car,0\n", r"a.csv: unexpected column\(s\) \['extra'\]"),
    (b"id;f1;f2;purpose\n1;2;3;car\n", r"a.csv: the header has no comma but 3 semicolons.*schema.csv_separator: ';'"),
    (b"id,f1,f2,purpose\n1,x,3,car\n2,1,2,car\n", r"1 of 2 application rows cannot be read.*a.csv line 2: column "
                                                  r"'f1' is not a number.*Nothing was landed"),
])
def test_a_file_that_cannot_land_is_refused_naming_it_and_nothing_changes(config: Config, lake: LocalLake,
                                                                         content: bytes, message: str) -> None:
    with pytest.raises(LandingError, match=message):
        land_applications(config, lake, D1, [("a.csv", content)])
    assert not lake.exists(catalog.batch(lake, D1)) and not lake.exists(catalog.applications_quarantine(lake, D1))


def test_a_semicolon_export_lands_with_the_configured_separator(config: Config, lake: LocalLake) -> None:
    cfg = config.replace(schema={"csv_separator": ";", "numeric_strip": [","]})
    land_applications(cfg, lake, D1, [("export.csv", b"id;f1;f2;purpose\n1;1,500.5;2;car\n")])
    assert batch(lake, D1)[["id", "f1"]].values.tolist() == [[1, 1500.5]]


def test_the_inbox_is_landed_and_moved_and_a_rerun_lands_the_same_files(config: Config, lake: LocalLake,
                                                                        tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    (inbox / "applications").mkdir(parents=True)
    cfg = config.replace(batch={"source": "inbox", "inbox": str(inbox)})
    with pytest.raises(LandingError, match="no application files in .*inbox/applications to land for 2026-11-01"):
        land_from_inbox(cfg, lake, D1)
    assert land_from_inbox(cfg, lake, D1, "outcomes") is None  # no outcome arrived: nothing to land
    (inbox / "applications" / "apps-0601.csv").write_text("id,f1,f2,purpose\n1,1,2,car\n2,3,4,boat\n")
    (inbox / "applications" / ".apps-0602.csv.part").write_text("id,f1")  # still being written: left alone
    summary = land_from_inbox(cfg, lake, D1)
    assert summary["files"] == ["apps-0601.csv"] and summary["landed"] == 2
    assert sorted(p.name for p in (inbox / "applications").iterdir()) == [".apps-0602.csv.part"]
    done = inbox / "processed" / "2026-11-01" / "applications"
    assert sorted(p.name for p in done.iterdir()) == ["_landed.json", "apps-0601.csv"]
    first = batch(lake, D1)
    # the next day's file arrives; a rerun of D1 lands D1's files again, not it
    (inbox / "applications" / "apps-0602.csv").write_text("id,f1,f2,purpose\n3,1,2,car\n")
    again = land_from_inbox(cfg, lake, D1)
    assert again["files"] == ["apps-0601.csv"]
    pd.testing.assert_frame_equal(batch(lake, D1), first)
    assert land_from_inbox(cfg, lake, D2)["files"] == ["apps-0602.csv"]
    assert batch(lake, D2)["id"].tolist() == [3]
    # outcomes dropped into outcomes/ land as arriving on the day they are landed, and move the same way
    (inbox / "outcomes").mkdir()
    (inbox / "outcomes" / "perf.csv").write_text("id,loss\n1,0\n2,40\n99,1\n")
    landed = land_from_inbox(cfg, lake, D2, "outcomes")
    assert landed["landed"] == 2 and landed["quarantined"] == 1 and landed["arrival_date"] == "2026-11-02"
    records = catalog.read_table(lake, catalog.outcomes(lake, D2)).to_pandas()
    assert records[["id", "default"]].values.tolist() == [[1, 0], [2, 1]]
    assert (inbox / "processed" / "2026-11-02" / "outcomes" / "perf.csv").is_file()
    # in inbox mode the emulation does not sample
    with pytest.raises(data_gen.SamplingError, match="batch.source is inbox.*land applications --date 2026-11-03"):
        data_gen.make_request(cfg, "2026-11-03")


def test_the_command_lands_files_and_refuses_a_bad_one_with_exit_code_2(config: Config, lake: LocalLake,
                                                                        tmp_path: Path) -> None:
    import yaml

    conf = tmp_path / "conf.yaml"
    conf.write_text(yaml.safe_dump(config.to_dict()))
    good, bad = tmp_path / "good.csv", tmp_path / "bad.csv"
    good.write_text("id,f1,f2,purpose\n1,1,2,car\n")
    bad.write_text("id,f1,f2,purpose,loss\n1,1,2,car,0\n")
    run = lambda *a: subprocess.run([sys.executable, "-m", "loanpipe.jobs.land", "applications", "--date",  # noqa: E731
                                     "2026-11-01", *a, "--config", str(conf)], capture_output=True, text=True,
                                    cwd=ROOT, timeout=120)
    ok = run(str(good))
    assert ok.returncode == 0 and '"landed": 1' in ok.stdout, ok.stderr
    refused = run(str(bad))
    assert refused.returncode == 2 and "has the outcome column(s) ['loss']" in refused.stderr
    assert run().returncode == 2  # neither files nor --from-inbox
