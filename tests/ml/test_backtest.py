"""The daily job's reads of outcomes as of its date (``loanpipe.ml.backtest``) on a small lake written with pyarrow:
the cohorts matured since the previous run, their backtest, and the out-of-time comparison rows."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

from loanpipe.core import catalog
from loanpipe.core.config import Config
from loanpipe.core.context import RunContext
from loanpipe.core.schema import DataSchema
from loanpipe.core.storage import LocalLake
from loanpipe.ml import backtest, ecb
from loanpipe.ml.bundle import ModelBundle
from loanpipe.ml.model import save_model

D1, D2, D3, D4 = (dt.date(2026, 11, d) for d in (1, 2, 3, 4))
SCHEMA = DataSchema(id_column="id", target_column="loss", label_column="default", features=("f1",), categorical=())


def table(frame: pd.DataFrame) -> pa.Table:
    return pa.Table.from_pandas(frame, preserve_index=False)


def outcome(ids: list[int], labels: list[int], sequence: int = 0) -> pa.Table:
    return table(pd.DataFrame({"id": ids, "loss": [7 * v for v in labels], "default": labels,
                               "sequence": range(sequence, sequence + len(ids))}).astype({"default": "int32"}))


@pytest.fixture()
def lake(tmp_path: Path) -> LocalLake:
    """Batches on D1 (ids 1-6) and D2 (7-12), D1's scores, D1's outcomes arriving on D3 and a correction of
    id 2 (good -> bad) arriving on D4."""
    lake = LocalLake(str(tmp_path / "lake"))
    for day, ids in ((D1, range(1, 7)), (D2, range(7, 13)), (D3, range(13, 15)), (D4, range(15, 17))):
        catalog.write_table(lake, table(pd.DataFrame({"id": list(ids), "f1": [0.5] * len(ids)})),
                            catalog.batch(lake, day))
    catalog.write_table(lake, table(pd.DataFrame({"id": range(1, 7), "p_default": [0.9, 0.1, 0.2, 0.25, 0.3, 0.05],
                                                  "grade": [10, 7, 8, 10, 9, 6], "model_version": "m1"})
                                    .astype({"grade": "int32"})), catalog.scores(lake, D1))
    catalog.write_table(lake, outcome([1, 2, 3, 4, 5, 6], [1, 0, 0, 1, 0, 0]), catalog.outcomes(lake, D3))
    catalog.write_table(lake, outcome([2], [1]), catalog.outcomes(lake, D4))
    return lake


def context(lake: LocalLake, day: dt.date, promotion: dict | None = None, **model: object) -> RunContext:
    rules = {"min_rows": 4, "min_defaults": 1, **(promotion or {})}
    cfg = Config().replace(model={"promotion": rules, **model})
    return RunContext(cfg, lake, None, SCHEMA, day)


def test_a_day_with_no_matured_cohort_says_so(lake: LocalLake) -> None:
    labels, since = backtest.matured_since(context(lake, D2))
    assert since == D1 and labels.empty
    section, y, p = backtest.backtest(context(lake, D2), labels, since)
    assert section["rows"] == 0 and section["roc_auc"] is None and len(y) == 0
    assert section["reason"].startswith("no outcome matured since 2026-11-01")


def test_the_backtest_reads_the_pds_served_then_against_the_labels_matured_since_the_last_run(lake: LocalLake,
                                                                                           small_model) -> None:
    labels, since = backtest.matured_since(context(lake, D3))
    assert since == D2 and sorted(labels["id"]) == [1, 2, 3, 4, 5, 6]
    assert labels["loss"].tolist() == [7, 0, 0, 7, 0, 0]  # the record's target travels with the label
    section, y, p = backtest.backtest(context(lake, D3), labels, since)
    # defaults at .9 and .25, goods at .1 .2 .3 .05: 7 of the 8 pairs ranked right
    assert section["rows"] == 6 and section["roc_auc"] == 0.875 and section["defaults"] == 2
    assert section["cohorts"] == [{"application_date": "2026-11-01", "rows": 6, "defaults": 2, "default_rate": 2 / 6,
                                   "mean_pd": pytest.approx(1.8 / 6), "roc_auc": 0.875}]
    assert section["how"] == {"bad": 2, "good": 4} and section["validation"]["auc_interval"]
    v = section["validation"]  # m1, which served them, is not in the lake: nothing to compare with
    assert v["initial"] == {"model": "m1"} and v["auc_decline"] is None and v["concentration"] is None
    # published with its initial validation: a mean CV AUC of .95 and its training sample's grades
    bundle, _ = small_model
    start = [0, 0, 0, 0, 0, 10, 10, 10, 10, 10]
    bundle.spec.reference = {"score": {"grade_counts": start}}
    save_model(lake, ModelBundle("m1", bundle.spec, bundle.native, {
        "discovery": {"candidates": [{"candidate": "all_raw", "n_features": 3, "mean_auc": 0.95, "sd_auc": 0.01}],
                      "decision": {"chosen": "all_raw"},
                      "cv": {"folds": 5}}}))
    v = backtest.backtest(context(lake, D3), labels, since)[0]["validation"]
    assert v["initial"] == {"model": "m1", "auc": 0.95, "auc_source": "mean 5-fold CV AUC of its discovery",
                            "grade_counts": start}
    assert v["auc_decline"] == ecb.auc_decline(0.95, y, p) and v["auc_decline"]["auc"] == 0.875
    assert v["concentration"] == ecb.concentration_test(start, [0, 0, 0, 0, 0, 1, 1, 1, 1, 2])
    # the model the job holds (the champion that served them) is used as it is, not read from the lake again
    held = ModelBundle("m1", bundle.spec, bundle.native, {"promotion": {"challenger_auc": 0.9}})
    assert backtest.backtest(context(lake, D3), labels, since, held)[0]["validation"]["initial"]["auc"] == 0.9
    # D4: only the corrected outcome is new, with its new label
    later, since = backtest.matured_since(context(lake, D4))
    assert since == D3 and later[["id", "default"]].values.tolist() == [[2, 1]]
    # as of D3 means as of D3: the correction that arrived on D4 is not read by a rerun of D3
    again, _ = backtest.matured_since(context(lake, D3))
    pd.testing.assert_frame_equal(again, labels)


def sup(lake: LocalLake, day: dt.date, ids: list[int], labels: list[int], cohort: dt.date) -> None:
    catalog.write_table(lake, table(pd.DataFrame({"id": ids, "default": labels, "application_date": [cohort] * len(ids)})
                                    .astype({"default": "int32"})), catalog.train_sup_batch(lake, day))


def test_the_comparison_rows_are_the_newest_cohorts_no_model_trained_on(lake: LocalLake) -> None:
    sup(lake, D3, [1, 2, 3, 4, 5, 6], [1, 0, 0, 1, 0, 0], D1)
    sup(lake, D4, [7, 8, 9, 10, 11, 12], [0, 1, 0, 0, 1, 0], D2)
    bootstrap = ModelBundle("b", None, None, {})  # trained on train/ only: every matured row is unseen
    held = backtest.comparison_rows(context(lake, D4), bootstrap)
    assert held.decidable and held.cohorts == ["2026-11-02"] and sorted(held.ids["id"]) == [7, 8, 9, 10, 11, 12]
    assert held.describe("default") == {"validation_rows": 6, "validation_defaults": 2,
                                        "validation_cohorts": ["2026-11-02"], "unseen_matured_rows": 12}
    # a larger share takes the next cohort too; as of D3 only D3's partition is read
    assert backtest.comparison_rows(context(lake, D4, validation_fraction=1.0), bootstrap).cohorts == [
        "2026-11-01", "2026-11-02"]
    assert backtest.comparison_rows(context(lake, D3), bootstrap).cohorts == ["2026-11-01"]
    # ... but never more application dates than model.promotion.window_dates
    capped = context(lake, D4, {"window_dates": 1}, validation_fraction=1.0)
    assert backtest.comparison_rows(capped, bootstrap).cohorts == ["2026-11-02"]
    # a challenger trained through D3 saw D3's partition: only D4's rows are unseen
    promoted = ModelBundle("c", None, None, {"train_sup_through": "2026-11-03"})
    assert backtest.comparison_rows(context(lake, D4, validation_fraction=1.0), promoted).unseen == 6
    # too few defaults: no decision, and how many matured
    short = backtest.comparison_rows(context(lake, D4, {"min_defaults": 30}), bootstrap)
    assert not short.decidable
    assert short.reason == ("no decision: 2 defaults and 6 rows matured that no model trained on (cohorts "
                            "2026-11-02); not met: defaults among them 2 (needs >= 30, "
                            "model.promotion.min_defaults)")
    assert not backtest.comparison_rows(context(lake, D2), bootstrap).decidable  # nothing yet
    # the serving model changed on D2 (a switch the risk team recorded): D4 is 2 run dates after it (D3 and D4
    # itself), so under a cool-down of 3 no challenger is trained, and under 2 one is
    from loanpipe.ml.model import record_decision

    record_decision(lake, D2, {"champion": "b", "serving": "manual", "promoted": True})
    cooling = backtest.comparison_rows(context(lake, D4, {"cooldown_dates": 3}), bootstrap)
    assert not cooling.decidable and cooling.reason.endswith(
        "not met: run dates since the serving model changed 2 (needs >= 3, model.promotion.cooldown_dates)")
    assert backtest.comparison_rows(context(lake, D4, {"cooldown_dates": 2}), bootstrap).decidable


def test_a_model_s_initial_validation_is_its_promotion_s_auc_or_its_discovery_s() -> None:
    from loanpipe.ml.features import FeatureSpec

    spec = FeatureSpec(raw_features=["f1"], pairs=[], features=["f1"], categorical=[], imputation={"f1": None},
                       column_kinds={"f1": "continuous"}, reference={"score": {"grade_counts": [3, 2, 1]}})
    discovery = {"candidates": [{"candidate": "top_k", "mean_auc": 0.8}, {"candidate": "all_raw", "mean_auc": 0.7}],
                 "decision": {"chosen": "all_raw"}, "cv": {"folds": 3}}
    booted = ModelBundle("b", spec, b"", {"discovery": discovery})
    assert booted.initial_validation() == {"auc": 0.7, "auc_source": "mean 3-fold CV AUC of its discovery",
                                           "grade_counts": [3, 2, 1]}  # the chosen candidate's, not the best's
    promoted = ModelBundle("c", spec, b"", {"discovery": discovery, "run_date": "2026-11-03",
                                            "promotion": {"challenger_auc": 0.75}})
    assert promoted.initial_validation()["auc"] == 0.75
    assert promoted.initial_validation()["auc_source"] == "on the comparison rows of its promotion (2026-11-03)"
    waiting = ModelBundle("w", spec, b"", {"calibration": {"status": "pending"}})  # not promoted: raw PDs
    assert waiting.initial_validation() == {"auc": None, "auc_source": None, "grade_counts": None}
    assert ModelBundle("old", FeatureSpec(raw_features=[], pairs=[], features=[], categorical=[], imputation={},
                                          column_kinds={}), b"", {}).initial_validation() == {
        "auc": None, "auc_source": None, "grade_counts": None}


def test_newest_cohorts_by_share_and_by_count() -> None:
    sizes = {"2026-11-01": 10, "2026-11-02": 10, "2026-11-03": 10, "2026-11-04": 10}
    assert backtest.newest_cohorts(sizes, 0.5) == ["2026-11-03", "2026-11-04"]  # 20 of 40 rows
    assert backtest.newest_cohorts(sizes, 1.0, 3) == ["2026-11-02", "2026-11-03", "2026-11-04"]
    assert backtest.newest_cohorts(sizes, 1.0, 0) == sorted(sizes)  # 0: no cap
    assert backtest.newest_cohorts(sizes, 0.01, 3) == ["2026-11-04"]  # at least one
