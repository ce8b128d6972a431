"""The benchmark helpers (not the benchmarks: those print numbers, they do not pass or fail)."""

from __future__ import annotations

import sys

import pytest

from bench import common


def test_table_aligns_and_formats() -> None:
    text = common.table(["path", "rows", "s"], [["a", 1234567, 0.12345], ["longer name", 5, 1234.5]])
    lines = text.splitlines()
    assert lines[0].startswith("path") and set(lines[1]) <= {"-", " "}
    assert "1,234,567" in lines[2] and "0.12" in lines[2] and "1,234" in lines[3]
    assert len({len(line) for line in lines}) == 1  # every row as wide as the header


def test_json_tail_takes_the_last_summary() -> None:
    out = 'log line {not json\n{\n  "a": 1\n}\nnoise\n{\n  "rows": 3,\n  "x": {"y": 2}\n}\n'
    assert common.json_tail(out) == {"rows": 3, "x": {"y": 2}}


def test_run_measured_reports_time_memory_and_output() -> None:
    code = "b = bytearray(200 * 2**20); import time; time.sleep(0.6); print('{\"ok\": true}')"
    result = common.run_measured([sys.executable, "-c", code])
    assert result["seconds"] >= 0.6 and result["peak_rss_gib"] >= 0.15
    assert common.json_tail(result["stdout"]) == {"ok": True}
    with pytest.raises(RuntimeError, match="exited 3"):
        common.run_measured([sys.executable, "-c", "import sys; sys.exit(3)"])


def test_growth_is_the_least_squares_slope_over_30_days() -> None:
    from bench.cycle import growth

    flat = [{"total": 100.0 + (i % 2), "data_gen": 30.0, "app": 70.0 + (i % 2)} for i in range(10)]
    trend = growth(flat)
    assert trend["flat"] and abs(trend["total"]["seconds_per_day"]) < 0.2
    rising = [{"total": 100.0 + 2 * i, "data_gen": 30.0 + 2 * i, "app": 70.0} for i in range(10)]
    trend = growth(rising)
    assert trend["total"]["seconds_per_day"] == 2.0 and not trend["flat"]
    assert trend["data_gen"]["change_over_30_days"] == round(60 / 39, 3) and trend["app"]["seconds_per_day"] == 0.0


def test_growth_leaves_the_feature_reselection_days_out_of_the_fit() -> None:
    """A weekly re-selection day costs minutes of its own; it is listed, not read as growth with history."""
    from bench.cycle import growth

    daily = [{"run_date": f"d{i}", "total": 100.0, "data_gen": 30.0, "app": 70.0} for i in range(14)]
    for i in (6, 13):
        daily[i].update(total=580.0, app=550.0, rediscovered="7 days since the features were chosen")
    trend = growth(daily)
    assert trend["flat"] and trend["total"]["seconds_per_day"] == 0.0 and trend["fitted_days"] == 12
    assert trend["rediscovery_days"] == [{"run_date": "d6", "total": 580.0}, {"run_date": "d13", "total": 580.0}]


@pytest.mark.parametrize("days", [5, 30, 60])
def test_growth_batches_fit_in_test_without_repeats(days: int, monkeypatch) -> None:
    """The growth section's bootstrap batch and its `days` daily batches are disjoint draws from test/: they must
    all fit (the Kaggle test split holds 31,641 rows), or data_gen would stop on the last days."""
    from bench import cycle

    seen: dict = {}
    monkeypatch.setattr(cycle, "run", lambda info, sizes, repeat, fraction=None, name="cycle", extra_env=None:
                        seen.update(sizes=sizes, repeat=repeat, fraction=fraction, name=name, env=extra_env))
    cycle.growth_run({}, 105_471, days)
    assert seen["repeat"] == days and seen["name"] == "growth" and seen["sizes"] == [105_471]
    # the weekly feature re-choice stays out of the run: no date in it is that many days after the first
    assert int(seen["env"]["LOANPIPE__MODEL__REDISCOVER_EVERY_DAYS"]) > days
    assert (days + 1) * max(1, round(seen["fraction"] * 31_641)) <= 31_641


def test_sections_make_the_lake_and_champion_they_need_once(tmp_path, monkeypatch) -> None:  # noqa: ANN001
    """`python -m bench scoring` on a fresh clone bootstraps a champion first (it used to stop with "has no
    champion"); a lake that has one is reused as it is."""
    import datetime as dt

    from bench import cycle
    from loanpipe.core.config import load_config
    from loanpipe.core.storage import open_lake
    from loanpipe.ml.model import record_decision

    monkeypatch.setattr(cycle, "WORK", tmp_path)
    calls: list[tuple] = []
    monkeypatch.setattr(cycle, "prepare_lake", lambda rows: calls.append(("prepare", rows)))
    monkeypatch.setattr(cycle, "one_cycle", lambda rows, day, *a, **k: calls.append(("cycle", rows, day)))
    cycle.ensure_champion(500)
    cycle.ensure_lake(500)
    assert calls == [("prepare", 500), ("cycle", 500, "2030-01-01"), ("prepare", 500)]  # nothing there yet
    lake = open_lake(load_config(environ=cycle.lake_env(500)).storage)
    lake.ensure_layout()
    lake.write_bytes(f"{lake.root}/train/part-0.parquet", b"x")
    record_decision(lake, dt.date(2030, 1, 1), {"champion": "v1", "serving": "v1", "bootstrap": True})
    calls.clear()
    cycle.ensure_champion(500)
    cycle.ensure_lake(500)
    assert calls == []  # the lake and its champion are reused


def test_plain_catboost_is_fitted_once_per_rows_and_version(tmp_path, monkeypatch) -> None:  # noqa: ANN001
    """The recorded AUC is used only for the very same rows (and CatBoost): a changed cell fits again."""
    import numpy as np
    import pandas as pd

    from bench import real_tables

    monkeypatch.setattr(real_tables, "PLAIN_RESULTS", tmp_path / "plain.json")
    rng = np.random.default_rng(3)
    x = pd.DataFrame({"a": rng.normal(size=300), "c": rng.choice(["u", "v"], size=300)})
    y = (x["a"] + rng.normal(size=300) > 0.5).astype(int).to_numpy()
    fitted = real_tables.plain_catboost(x[:200], y[:200], ["c"], x[200:], y[200:], record=True)
    assert fitted["source"] == "fitted now" and 0.5 < fitted["auc"] <= 1
    again = real_tables.plain_catboost(x[:200], y[:200], ["c"], x[200:], y[200:], record=False)
    assert again["source"].startswith("recorded") and again["auc"] == fitted["auc"]
    changed = x.copy()
    changed.loc[5, "a"] += 1.0
    assert real_tables.plain_catboost(changed[:200], y[:200], ["c"], x[200:], y[200:], record=False)["source"] == \
        "fitted now"
    flipped = y.copy()
    flipped[250] = 1 - flipped[250]
    assert real_tables.plain_catboost(x[:200], y[:200], ["c"], x[200:], flipped[200:], record=False)["source"] == \
        "fitted now"
