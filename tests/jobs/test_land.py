"""Landing outcome records (loanpipe.jobs.land): typed and labelled by the lake's schema, refused rows quarantined
with their reason, published whole by arrival date; a re-landing gives the same folders. No Spark: a lake with a
schema and two published batches is all it needs."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

from loanpipe.core import catalog, maturity
from loanpipe.core.config import Config
from loanpipe.core.schema import DataSchema
from loanpipe.core.storage import LocalLake
from loanpipe.jobs.land import land_outcomes

D1, D2, A = dt.date(2026, 11, 1), dt.date(2026, 11, 2), dt.date(2026, 11, 5)
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture()
def lake(config: Config) -> LocalLake:
    """A lake whose schema is the Kaggle shape's (integer id, loss > 0) with batches of ids 1-3 on D1 and 4-5 on D2."""
    lake = LocalLake(config.storage.root)
    lake.ensure_layout()
    schema = DataSchema.from_columns(config.schema, ["id", "f1", "loss"], "test")
    lake.write_json(catalog.schema(lake), schema.to_dict())
    for day, ids in ((D1, [1, 2, 3]), (D2, [4, 5])):
        catalog.write_table(lake, pa.table({"id": pa.array(ids, pa.int64()), "f1": [0.5] * len(ids)}),
                            catalog.batch(lake, day))
    return lake


def landed(lake: LocalLake, arrival: dt.date) -> tuple[pd.DataFrame, pd.DataFrame]:
    return (catalog.read_table(lake, catalog.outcomes(lake, arrival)).to_pandas(),
            catalog.read_table(lake, catalog.outcomes_quarantine(lake, arrival)).to_pandas())


def test_outcomes_land_labelled_and_the_unusable_rows_are_quarantined_with_their_reason(
        config: Config, lake: LocalLake, tmp_path: Path) -> None:
    (tmp_path / "b.csv").write_text("id,loss,observation_date\n1,0,2026-11-04\n2,17,\n99,5,\n,3,\nx,1,\n"
                                    "3,,\n4,2,2026-11-09\n5,4,yesterday\n")
    pd.DataFrame({"id": [2, 4], "loss": [0, 6]}).to_parquet(tmp_path / "a.parquet")  # lands first: by name
    summary = land_outcomes(config, lake, A, [str(tmp_path / "b.csv"), str(tmp_path / "a.parquet")])
    good, bad = landed(lake, A)
    assert good[["id", "loss", "default", "source_file", "line", "sequence"]].values.tolist() == [
        [2, 0, 0, "a.parquet", 2, 0], [4, 6, 1, "a.parquet", 3, 1], [1, 0, 0, "b.csv", 2, 2], [2, 17, 1, "b.csv", 3, 3]]
    assert good["observation_date"].tolist()[2:] == [dt.date(2026, 11, 4), None]
    assert dict(zip(bad["line"], bad["reason"])) == {
        4: "never scored: no batch up to 2026-11-05 holds this id", 5: "empty id", 6: "id is not an integer",
        7: "no target", 8: "observed after it arrived (2026-11-05)", 9: "observation_date is not a date (YYYY-MM-DD)"}
    assert summary["landed"] == 4 and summary["quarantined"] == 6 and summary["defaults"] == 2
    # what the maturity rule reads from it: id 2's later record (b.csv, line 3) wins
    outcomes = good.assign(arrival_date=A)
    apps = pd.DataFrame({"id": [1, 2, 3, 4, 5], "application_date": [D1, D1, D1, D2, D2]})
    labels = maturity.matured_labels(apps, outcomes, A, 365, "id", "default")
    assert dict(zip(labels["id"], labels["default"])) == {1: 0, 2: 1, 4: 1}


def test_an_outcome_for_an_id_landed_after_the_arrival_is_never_scored(config: Config, lake: LocalLake,
                                                                        tmp_path: Path) -> None:
    (tmp_path / "o.csv").write_text("id,loss\n4,1\n1,1\n")
    land_outcomes(config, lake, D1, [str(tmp_path / "o.csv")])  # id 4's batch is D2's
    good, bad = landed(lake, D1)
    assert good["id"].tolist() == [1] and bad["reason"].tolist() == ["never scored: no batch up to 2026-11-01 holds this id"]


def test_landing_an_arrival_again_with_the_same_files_gives_the_same_folders(config: Config, lake: LocalLake,
                                                                              tmp_path: Path) -> None:
    (tmp_path / "o.csv").write_text("id,loss\n1,3\n7,1\n")
    land_outcomes(config, lake, A, [str(tmp_path / "o.csv")])
    first = landed(lake, A)
    (tmp_path / "o.csv").write_text("id,loss\n1,0\n")
    land_outcomes(config, lake, A, [str(tmp_path / "o.csv")])
    assert landed(lake, A)[0]["loss"].tolist() == [0] and landed(lake, A)[1].empty  # replaced whole, not appended
    (tmp_path / "o.csv").write_text("id,loss\n1,3\n7,1\n")
    land_outcomes(config, lake, A, [str(tmp_path / "o.csv")])
    for before, after in zip(first, landed(lake, A)):
        pd.testing.assert_frame_equal(before, after)
    assert catalog.outcome_dates(lake) == [A.isoformat()]


@pytest.mark.parametrize("content, message", [
    ("id,target\n1,0\n", r"o.csv: no column 'loss'; an outcome file has the columns 'id', 'loss'"),
    ("id;loss\n1;0\n", r"o.csv: the header has no comma but 1 semicolons: the file is separated by semicolons"),
])
def test_a_file_without_the_id_or_the_target_is_refused_naming_both(config: Config, lake: LocalLake, tmp_path: Path,
                                                                    content: str, message: str) -> None:
    (tmp_path / "o.csv").write_text(content)
    with pytest.raises(ValueError, match=message):
        land_outcomes(config, lake, A, [str(tmp_path / "o.csv")])
    assert catalog.outcome_dates(lake) == []  # nothing landed


def test_the_command_lands_and_prints_its_summary(config: Config, lake: LocalLake, tmp_path: Path) -> None:
    (tmp_path / "o.csv").write_text("id,loss\n1,3\n")
    conf = tmp_path / "conf.yaml"
    conf.write_text(f"storage: {{root: {config.storage.root}}}\n")
    out = subprocess.run([sys.executable, "-m", "loanpipe.jobs.land", "outcomes", "--date", A.isoformat(),
                          str(tmp_path / "o.csv"), "--config", str(conf)], capture_output=True, text=True, cwd=ROOT,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["landed"] == 1
    bad = subprocess.run([sys.executable, "-m", "loanpipe.jobs.land", "outcomes", "--date", "soon", "x.csv",
                          "--config", str(conf)], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert bad.returncode == 2 and "run date 'soon' is not a date in YYYY-MM-DD form" in bad.stderr


def test_the_lake_as_of_a_date_reads_only_the_outcomes_and_applications_that_had_arrived(
        config: Config, lake: LocalLake, tmp_path: Path) -> None:
    """What the daily job of D will read: the batches up to D as applications, the outcome partitions up to D."""
    (tmp_path / "o.csv").write_text("id,loss\n1,3\n")
    land_outcomes(config, lake, D2, [str(tmp_path / "o.csv")])
    (tmp_path / "o.csv").write_text("id,loss\n1,0\n4,2\n")
    land_outcomes(config, lake, A, [str(tmp_path / "o.csv")])
    apps = maturity.read_applications(lake, D1, "id")
    assert apps.values.tolist() == [[1, D1], [2, D1], [3, D1]]
    assert len(maturity.read_applications(lake, A, "id")) == 5
    assert maturity.read_outcomes(lake, D1, ["id", "default", "sequence"]).empty
    as_of_d2 = maturity.read_outcomes(lake, D2, ["id", "default", "sequence"])
    assert as_of_d2.values.tolist() == [[1, 1, 0, D2]]
    everything = maturity.read_outcomes(lake, A, ["id", "default", "sequence"])
    labels = maturity.matured_labels(maturity.read_applications(lake, A, "id"), everything, A, 365, "id", "default")
    assert dict(zip(labels["id"], labels["default"])) == {1: 0, 4: 1}  # 1's bad record was corrected on A
