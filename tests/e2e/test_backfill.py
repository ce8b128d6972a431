"""Run dates as transactions, end to end over real sshd, SMTP and Airflow (scheduler, executor, REST API).

* ``make backfill``'s command (Airflow's own backfill) over three dates, with a promotion forced on the second:
  between the first and the second date the risk team switches to a weak model (a ledger record on a date
  with no run). The first date's outcomes arrive on the second (``outcomes.lag_days`` = 2), so the second date
  backtests that cohort and its challenger must beat the weak model on it; the third has nothing new matured. Reruns of the second date, and then of the first
  one, reproduce the scores and the ledger and leave every later date as it was.
* Inbox mode (``batch.source: inbox``) over four more dates: application files without outcomes land and are
  scored, an outcome file lands two dates later, and what each date learns and reports is as of that date.
* The scores deadline: a scheduled run stuck waiting for a batch that never comes raises the LATE alert at the
  deadline, naming the task that holds the date up.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest


pytestmark = [pytest.mark.slow, pytest.mark.e2e, pytest.mark.timeout(3600)]
ROOT = Path(__file__).resolve().parents[2]
PY = sys.executable
PORTS = {"LOANPIPE_SSH_PORT": "2241", "LOANPIPE_SMTP_PORT": "1041", "LOANPIPE_AIRFLOW_PORT": "28101",
         "LOANPIPE_S3_PORT": "19041", "LOANPIPE_STACK_STORAGE": "local", "LOANPIPE_STACK_QUICK_MODEL": "1"}
D1, SWITCH, D2, D3 = "2026-11-01", "2026-11-02", "2026-11-03", "2026-11-04"
ROWS = "6000"


@pytest.fixture(scope="module")
def stack(clean_env):
    stack_dir = ROOT / "var" / f"e2e-backfill-{os.getpid()}"
    shutil.rmtree(stack_dir, ignore_errors=True)
    env = {**clean_env(), **PORTS, "LOANPIPE_STACK_DIR": str(stack_dir)}
    yield env
    subprocess.run([PY, "-m", "loanpipe.dev.stack", "stop"], env=env, capture_output=True, timeout=300, cwd=ROOT)
    if os.environ.get("LOANPIPE_KEEP_E2E") != "1":
        shutil.rmtree(stack_dir, ignore_errors=True)


def backfill(env: dict[str, str], first: str, last: str) -> dict:
    """The command behind `make backfill FROM=first TO=last` (the stack kept up between calls)."""
    out = subprocess.run([PY, "-m", "loanpipe.dev.stack", "backfill", "--from", first, "--to", last, "--keep",
                          "--rows", ROWS], env=env, capture_output=True, text=True, timeout=2400, cwd=ROOT)
    assert out.returncode == 0, (out.stdout + out.stderr)[-4000:]
    return json.loads(out.stdout[out.stdout.index("\n{\n") + 1:])  # the summary, after the progress lines


def python(env: dict[str, str], code: str) -> str:
    out = subprocess.run([PY, "-c", code], env=env, capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


def scores(root: Path, day: str) -> pd.DataFrame:
    return pd.read_parquet(root / "test_sample_inference" / f"run_date={day}").sort_values("id").reset_index(drop=True)


def marker(root: Path, day: str) -> bytes:
    """The published manifest: rewritten (new publish time) whenever the date's scores are published again."""
    return (root / "test_sample_inference" / f"run_date={day}" / "_SUCCESS").read_bytes()


def switch_to_a_weak_model(root: Path) -> str:
    """The risk team's switch on SWITCH: the champion's features, trained on shuffled labels."""
    from loanpipe.core.config import load_config
    from loanpipe.core.storage import LocalLake
    from loanpipe.ml import engine, training
    from loanpipe.ml.bundle import ModelBundle
    from loanpipe.ml.model import champion_for, load_model, record_decision, save_model

    lake = LocalLake(str(root))
    good = load_model(lake, champion_for(lake, dt.date.fromisoformat(D2)))
    train = pd.read_parquet(root / "train", columns=[*good.spec.raw_features, "default"])
    labels = np.random.default_rng(0).permutation(train["default"].to_numpy())
    native = engine.train_python(good.spec.transform_pandas(train), good.spec.features, labels,
                                 training.base_params(load_config(environ={}), iterations=30))
    weak = ModelBundle("20261102-weak", good.spec, native, {**good.metadata, "role": "manual"})
    save_model(lake, weak)
    record_decision(lake, dt.date.fromisoformat(SWITCH), {
        "bootstrap": False, "champion": good.version, "serving": weak.version, "promoted": True,
        "reason": "test: the risk team switched to a weak model"})
    return weak.version


def test_backfill_with_a_promotion_then_reruns_reproduce(mails, stack: dict[str, str]) -> None:
    root = Path(stack["LOANPIPE_STACK_DIR"]) / "lake"
    first = backfill(stack, D1, D1)
    assert first["dag_runs"] == {"dag_new_data": {D1: "success"}, "dag_app": {D1: "success"}}
    bootstrap = first["dates"][D1]["champion"]
    assert bootstrap == "20261101-bootstrap"

    weak = switch_to_a_weak_model(root)
    python(stack, "from loanpipe.dev import node; node.give_lake_to_node()")
    second = backfill(stack, D2, D3)
    assert second["dag_runs"]["dag_app"] == {D2: "success", D3: "success"}
    d2, d3 = second["dates"][D2], second["dates"][D3]
    assert d2["champion"] == weak and d2["serving_after_run"] == "20261103-challenger"  # promoted on D2
    assert d3["champion"] == "20261103-challenger"  # and it scored the next date
    summary = json.loads((root / "artifacts" / "runs" / D2 / "summary.json").read_text())
    assert summary["challenger"]["promoted"] is True and summary["challenger"]["p_value"] < 0.05
    assert summary["challenger"]["validation_cohorts"] == [D1] == [c["application_date"] for c in
                                                                   summary["evaluation"]["cohorts"]]
    third = json.loads((root / "artifacts" / "runs" / D3 / "summary.json").read_text())
    assert third["evaluation"]["rows"] == 0 and third["challenger"]["version"] is None  # nothing new matured

    ledger = (root / "artifacts" / "models" / "ledger.json").read_bytes()
    assert list(json.loads(ledger)) == [D1, SWITCH, D2]
    before = {d: scores(root, d) for d in (D1, D2, D3)}
    assert set(before[D2]["model_version"]) == {weak} and set(before[D3]["model_version"]) == {"20261103-challenger"}
    d3_marker = marker(root, D3)

    # rerun the second date: the same scores (bit for bit), the same ledger, nothing later touched
    rerun = backfill(stack, D2, D2)
    assert rerun["dates"][D2] == d2
    pd.testing.assert_frame_equal(scores(root, D2), before[D2], check_exact=True)
    assert (root / "artifacts" / "models" / "ledger.json").read_bytes() == ledger
    assert marker(root, D3) == d3_marker
    pd.testing.assert_frame_equal(scores(root, D3), before[D3], check_exact=True)

    # rerun the first date after the third: its own scores again, and the third's untouched
    again = backfill(stack, D1, D1)
    assert again["dates"][D1] == first["dates"][D1]
    pd.testing.assert_frame_equal(scores(root, D1), before[D1], check_exact=True)
    assert (root / "artifacts" / "models" / "ledger.json").read_bytes() == ledger
    assert marker(root, D3) == d3_marker

    # one run per DAG and date (a rerun clears and reruns it), none scheduled beside the backfills
    code = ("import json; from loanpipe.dev import airflow_services as af; t = af.api_token(); "
            "print(json.dumps({d: af.api('GET', f'/api/v2/dags/{d}/dagRuns', token=t)['dag_runs'] "
            "for d in ('dag_new_data', 'dag_app')}))")
    runs = json.loads(python(stack, code))
    for dag_id, dag_runs in runs.items():
        assert sorted((r["logical_date"][:10], r["run_type"]) for r in dag_runs) == [
            (D1, "backfill"), (D2, "backfill"), (D3, "backfill")], dag_id
    subjects = [m["Subject"] for m in mails(stack)]
    assert sum(f"scoring {D2}: " in s for s in subjects) == 2  # the run and its rerun, one report each
    assert any(f"scoring {D2}: " in s and "challenger promoted" in s for s in subjects), subjects
    assert not [s for s in subjects if "FAILED" in s or "LATE" in s], subjects
    assert sorted(p.name for p in (root / "artifacts" / "alerts" / D2).iterdir()) == [
        "report-dag_app.html", "report-dag_new_data.html"]


I1, I2, I3, I4 = "2026-11-10", "2026-11-11", "2026-11-12", "2026-11-13"
INBOX_ROWS = 150


def use_the_inbox(env: dict[str, str]) -> None:
    """The stack's config switched to batch.source: inbox (as the backfill command writes it), and the wait until
    Airflow has parsed dag_new_data's inbox shape."""
    code = ("import datetime as dt, time; from loanpipe.dev import stack; from loanpipe.dev import airflow_services "
            "as af; stack.write_config(None, True, {'end_date': (stack.latest_scheduled_date() - "
            "dt.timedelta(days=1)).isoformat()}); t = af.api_token(); end = time.monotonic() + 300\n"
            "while 'wait_for_applications' not in [x['task_id'] for x in af.api('GET', "
            "'/api/v2/dags/dag_new_data/tasks', token=t)['tasks']]:\n"
            "    assert time.monotonic() < end, 'dag_new_data was not parsed in inbox mode'; time.sleep(3)")
    python(env, code)


def drop(inbox: Path, folder: str, name: str, frame: pd.DataFrame) -> None:
    """A file as the upstream system drops it (written aside, then renamed into place), owned by the node's user."""
    target = inbox / folder
    target.mkdir(parents=True, exist_ok=True)
    frame.to_csv(target / f".{name}.part", index=False)
    (target / f".{name}.part").rename(target / name)
    subprocess.run(["chown", "-R", "loanpipe:loanpipe", str(inbox)], check=True)


def test_inbox_applications_land_without_outcomes_and_the_backtest_waits_for_them(mails, stack: dict[str, str]) -> None:
    """Inbox mode through Airflow over four dates: the day's application files (no target) land and are scored;
    I1's outcome file arrives on I3, so I3 backtests I1's cohort and train_sup as of I3 holds I1's applications
    and none of I2's; a rerun of I2 after I3 gives the same scores and the same report."""
    root = Path(stack["LOANPIPE_STACK_DIR"]) / "lake"
    inbox = Path(stack["LOANPIPE_STACK_DIR"]) / "inbox"
    env = {**stack, "LOANPIPE_STACK_INBOX": str(inbox)}
    use_the_inbox(env)
    test = pd.read_parquet(root / "test").sort_values("id")
    used = set(pd.read_parquet(root / "test_sample", columns=["id"])["id"])
    pool = test[~test["id"].isin(used)].reset_index(drop=True)
    apps = {day: pool.iloc[i * INBOX_ROWS:(i + 1) * INBOX_ROWS] for i, day in enumerate((I1, I2, I3, I4))}
    for day, rows in apps.items():
        if day == I3:  # I1's outcomes arrive
            drop(inbox, "outcomes", "performance-1110.csv", apps[I1][["id", "loss"]])
        drop(inbox, "applications", f"applications-{day}.csv", rows.drop(columns=["loss", "default"]))
        result = backfill(env, day, day)
        assert result["dag_runs"] == {"dag_new_data": {day: "success"}, "dag_app": {day: "success"}}
        assert not list((inbox / "applications").glob("*.csv"))  # landed and moved
    summaries = {d: json.loads((root / "artifacts" / "runs" / d / "summary.json").read_text()) for d in apps}
    for day, rows in apps.items():
        batch = pd.read_parquet(root / "test_sample" / f"run_date={day}")
        assert "loss" not in batch.columns and sorted(batch["id"]) == sorted(rows["id"])
        assert summaries[day]["scores"]["rows"] == len(scores(root, day)) > 0.95 * INBOX_ROWS
    assert (inbox / "processed" / I3 / "outcomes" / "performance-1110.csv").is_file()
    backtest = summaries[I3]["evaluation"]
    assert [c["application_date"] for c in backtest["cohorts"]] == [I1] and backtest["since"] == I2
    assert backtest["rows"] == summaries[I1]["scores"]["rows"] and 0.5 < backtest["roc_auc"] <= 1
    assert summaries[I2]["evaluation"]["rows"] == 0 and summaries[I4]["evaluation"]["rows"] == 0
    assert f"cohorts whose outcomes matured since {I2}" in (root / "artifacts" / "runs" / I3 / "report.html").read_text()
    matured = pd.read_parquet(root / "train_sup" / f"run_date={I3}")
    assert set(matured["id"]) == set(scores(root, I1)["id"]) and not set(matured["id"]) & set(apps[I2]["id"])
    earlier = pd.read_parquet(root / "train_sup", columns=["id", "run_date"])
    assert not set(earlier["id"]) & set(apps[I2]["id"])  # no partition up to I4 holds I2's applications
    # a rerun of I2 after I3's outcomes arrived: as of I2 means as of I2
    before = scores(root, I2), (root / "artifacts" / "runs" / I2 / "report.html").read_bytes()
    rerun = backfill(env, I2, I2)
    assert rerun["dag_runs"]["dag_app"] == {I2: "success"}
    pd.testing.assert_frame_equal(scores(root, I2), before[0], check_exact=True)
    assert (root / "artifacts" / "runs" / I2 / "report.html").read_bytes() == before[1]
    subjects = [m["Subject"] for m in mails(stack)]
    assert any(s.startswith(f"[loanpipe] OK new data {I3}: {INBOX_ROWS} applications from 1 file(s), "
                            f"{INBOX_ROWS} outcomes") for s in subjects), subjects


def test_a_stuck_scheduled_run_raises_the_late_alert_at_its_deadline(mails, html_of, stack: dict[str, str]) -> None:
    """dag_app's daily tick was a minute ago and its deadline is two minutes away; no new data is scheduled,
    so the run waits for a batch that never comes. At the deadline the alert names that wait."""
    now = dt.datetime.now(dt.UTC)
    tick, due = now - dt.timedelta(minutes=1), (now + dt.timedelta(minutes=2)).replace(second=0, microsecond=0)
    if tick.date() != due.date():  # within 3 minutes of midnight: wait until both fall on the new date
        time.sleep((dt.datetime.combine(due.date(), dt.time(0, 1, 5), dt.UTC) - now).total_seconds())
        now = dt.datetime.now(dt.UTC)
        tick, due = now - dt.timedelta(minutes=1), (now + dt.timedelta(minutes=2)).replace(second=0, microsecond=0)
    settings = {"schedule_new_data": None, "schedule_app": f"{tick.minute} {tick.hour} * * *",
                "scores_deadline": f"{due:%H:%M}", "end_date": None}
    python(stack, f"from loanpipe.dev import stack; stack.write_config('local', True, {settings!r})")
    before = len(mails(stack))
    deadline = time.monotonic() + 420
    late = []
    while not late:
        assert time.monotonic() < deadline, [m["Subject"] for m in mails(stack)[before:]]
        time.sleep(5)
        late = [m for m in mails(stack)[before:] if m["Subject"].startswith("[loanpipe] LATE scores")]
    [alert] = late
    today = now.date().isoformat()
    assert alert["Subject"] == f"[loanpipe] LATE scores {today}: not published by {due:%H:%M} UTC"
    received = dt.datetime.now(dt.UTC)
    assert received >= due - dt.timedelta(seconds=1)  # at the deadline, not before it
    body = html_of(alert)
    assert f"dag_app.wait_for_batch: the batch of {today} is not published" in body and "(running)" in body
    root = Path(stack["LOANPIPE_STACK_DIR"]) / "lake"
    assert (root / "artifacts" / "alerts" / today / "late-scores.html").is_file()
