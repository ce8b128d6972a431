"""Screenshots of a real run, for the README: the pipeline runs on the local stack (S3 mode: the lake in the stack's
MinIO bucket), then a real headless browser (Debian's Chromium, driven by Selenium through Debian's
chromedriver; nothing is downloaded) photographs what a user would look at.

    .venv/bin/python scripts/take_screens.py [--date 2026-11-29] [--rows 20000] [--out screens] [--keep]
    .venv/bin/python scripts/take_screens.py --from-run --date 2026-11-29   # after `make run-s3 RUN_DATE=...`

Writes PNG files named by what they show (see SHOTS) and screens/manifest.json (date, versions, what each shows).
With --from-run it photographs the run that `make run-s3` already made for the date (the stack's services are
started again on the same folder; nothing runs twice). The stack is stopped afterwards unless --keep. Ports and
the stack folder follow the usual LOANPIPE_* variables.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import json
import mailbox
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from loanpipe.core import catalog  # noqa: E402
from loanpipe.dev import local, s3, stack  # noqa: E402

WIDTH, HEIGHT = 1440, 900
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
SHOTS = {
    "01_data_notebook_eda.png": "model/model.ipynb: the data (target, missingness, column kinds)",
    "02_new_data_email.png": "dag_new_data's email: the batch sampled for the date",
    "03_baseline_model_notebook.png": "model/model.ipynb: cross-validated AUC of raw, selected and engineered features",
    "04_spark_model_notebook.png": "spark/spark_model.ipynb: the same on PySpark, checked against pandas",
    "05_storage_bucket.png": "the lake's folders in the S3 bucket (MinIO console)",
    "06_storage_run_artifacts.png": "a run's artifacts in the bucket: metrics, plots, summary",
    "07_storage_models.png": "versioned models and the promotion ledger in the bucket",
    "08_score_histogram.png": "the day's PDs against the cut-off, no outcome needed (artifact of the run)",
    "09_trend.png": "the trend over the run dates: backtest AUC, default rate, score PSI (artifact of the run)",
    "10_airflow_dag_list.png": "Airflow: the pipeline's DAGs",
    "11_airflow_dag_new_data_run.png": "Airflow: a successful dag_new_data run",
    "12_airflow_dag_app_run.png": "Airflow: a successful dag_app run",
    "13_airflow_spark_submit_log.png": "Airflow: the spark-submit task's log (the job on the master node over SSH)",
    "14_airflow_connections.png": "Airflow: connections (SSH with pinned host key, SMTP, S3), secrets masked",
    "15_email_report.png": "dag_app's email report as received (HTML, ROC inline)",
    "16_report_validation.png": "the run's report page (artifacts/runs/D/report.html): the day's scores and the "
                                "backtest section (on the first date: none matured yet, and why)",
    "17_decline_list.png": "a decline list with reason codes, read from the lake by fetch_scores (grades 9-10)",
}


def browser() -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                f"--window-size={WIDTH},{HEIGHT}", "--hide-scrollbars", "--force-device-scale-factor=1"):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    driver.set_window_size(WIDTH, HEIGHT)
    # the viewport, not the window, must be WIDTH x HEIGHT
    inner = driver.execute_script("return [window.innerWidth, window.innerHeight]")
    driver.set_window_size(2 * WIDTH - inner[0], 2 * HEIGHT - inner[1])
    return driver


def wait_text(driver: Any, text: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if text in driver.find_element("tag name", "body").text:
                time.sleep(1.0)  # let charts and late requests settle
                return
        except Exception:  # noqa: BLE001 - the page is still loading
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{driver.current_url} did not show {text!r} within {seconds:.0f} s")


def shoot(driver: Any, out: Path, name: str) -> None:
    driver.save_screenshot(str(out / name))
    print(f"  {name}", flush=True)


def scroll_to(driver: Any, text: str) -> None:
    el = driver.find_element("xpath", f"//*[self::h1 or self::h2 or self::h3 or self::p][contains(., {json.dumps(text)})]")
    driver.execute_script("arguments[0].scrollIntoView({block: 'start'});", el)
    time.sleep(0.3)


def notebook_html(path: Path, work: Path) -> Path:
    out = subprocess.run([str(ROOT / ".venv" / "bin" / "jupyter"), "nbconvert", "--to", "html", "--output-dir",
                          str(work), str(path)], capture_output=True, text=True, timeout=300)
    if out.returncode != 0:
        raise RuntimeError(f"nbconvert {path} failed: {out.stderr[-1000:]}")
    return work / (path.stem + ".html")


def email_html(box: Path, subject_part: str, work: Path) -> Path:
    """The newest message whose subject contains ``subject_part``, as an HTML file with its inline images."""
    messages = [m for m in mailbox.Maildir(str(box), factory=None, create=False) if subject_part in (m["Subject"] or "")]
    if not messages:
        raise RuntimeError(f"no email with {subject_part!r} in {box}")
    msg = sorted(messages, key=lambda m: m["Date"] or "")[-1]
    html = next(p.get_payload(decode=True).decode() for p in msg.walk() if p.get_content_type() == "text/html")
    for part in msg.walk():
        cid = (part.get("Content-ID") or "").strip("<>")
        if cid and part.get_content_maintype() == "image":
            data = base64.b64encode(part.get_payload(decode=True)).decode()
            html = html.replace(f"cid:{cid}", f"data:{part.get_content_type()};base64,{data}")
    head = (f"<div style='font:14px sans-serif;border-bottom:1px solid #ccc;padding:8px;margin-bottom:8px'>"
            f"<b>From:</b> {msg['From']}<br><b>To:</b> {msg['To']}<br><b>Subject:</b> {msg['Subject']}</div>")
    path = work / f"mail-{abs(hash(subject_part))}.html"
    path.write_text(f"<html><body style='font-family:sans-serif;margin:16px'>{head}{html}</body></html>")
    return path


def minio_pages(driver: Any, out: Path, run_date: str) -> None:
    keys = s3.s3_credentials()
    console = f"http://127.0.0.1:{local.S3_PORT + 1}"
    driver.get(f"{console}/login")
    wait_text(driver, "Login", 60)
    driver.find_element("id", "accessKey").send_keys(keys["access_key"])
    driver.find_element("id", "secretKey").send_keys(keys["secret_key"])
    driver.find_element("xpath", "//button[@type='submit']").click()
    time.sleep(3)

    def browse(prefix: str, expect: str, name: str) -> None:
        driver.get(f"{console}/browser/{local.S3_BUCKET}/{quote(prefix, safe='')}")
        wait_text(driver, expect, 60)
        for button in driver.find_elements("xpath", "//button[normalize-space()='Acknowledge']"):
            button.click()  # the console's one-time licence notice
            time.sleep(0.5)
        shoot(driver, out, name)

    browse("lake/", "test_sample_inference", "05_storage_bucket.png")
    browse(f"lake/artifacts/runs/{run_date}/", "score_hist.png", "06_storage_run_artifacts.png")
    browse("lake/artifacts/models/", "ledger.json", "07_storage_models.png")


def airflow_pages(driver: Any, out: Path, runs: dict[str, str]) -> None:
    base = f"http://127.0.0.1:{local.API_PORT}"
    driver.get(f"{base}/dags")
    wait_text(driver, "dag_new_data")
    shoot(driver, out, "10_airflow_dag_list.png")
    for dag_id, name in (("dag_new_data", "11_airflow_dag_new_data_run.png"), ("dag_app", "12_airflow_dag_app_run.png")):
        driver.get(f"{base}/dags/{dag_id}/runs/{runs[dag_id]}")
        wait_text(driver, "email_report")
        shoot(driver, out, name)
    driver.get(f"{base}/dags/dag_app/runs/{runs['dag_app']}/tasks/spark_submit_app")
    wait_text(driver, "started_at", 90)  # the end of the job's run summary, streamed back over SSH
    shoot(driver, out, "13_airflow_spark_submit_log.png")
    driver.get(f"{base}/connections")
    wait_text(driver, "loanpipe_ssh")
    shoot(driver, out, "14_airflow_connections.png")


def report_page(lake: Any, run_date: str, work: Path) -> Path:
    """The run's report.html with the images beside it, copied from the lake."""
    folder = work / "run"
    folder.mkdir(exist_ok=True)
    for name in ("report.html", "roc.png", "trend.png"):
        if lake.exists(catalog.run_artifact(lake, run_date, name)):  # roc.png: once outcomes have matured
            (folder / name).write_bytes(lake.read_bytes(catalog.run_artifact(lake, run_date, name)))
    return folder / "report.html"


def decline_list_page(lake: Any, run_date: str, work: Path) -> Path:
    """What ``fetch_scores --date D --grade 9-10 --with-reasons`` returns, as a page."""
    from loanpipe.jobs import fetch_scores

    df = fetch_scores.select(fetch_scores.read_scores(lake, run_date), catalog.scores(lake, run_date),
                             with_reasons=True, grades=(9, 10))
    cmd = f"python -m loanpipe.jobs.fetch_scores --date {run_date} --grade 9-10 --with-reasons"
    path = work / "declines.html"
    path.write_text(f"<html><body style='font-family:sans-serif;margin:16px'><h3>Decline list with reasons</h3>"
                    f"<p><code>{cmd}</code>: {len(df)} applications in grades 9-10, riskiest first</p>"
                    f"{df.head(20).to_html(index=False, na_rep='', float_format=lambda v: f'{v:.4f}')}</body></html>")
    return path


def the_run(run_date: str, rows: int | None, existing: bool) -> dict[str, Any]:
    """The date's run on the stack (S3 mode), left up: made now, or (``existing``) the one already there."""
    if not existing:
        result = stack.run_pipeline(run_date, keep=True, mode="s3", rows=rows)
        return {**{k: result[k] for k in ("storage", "backtest", "status", "runs_per_dag")},
                "runs": {r["dag_id"]: r["run_id"] for r in result["dag_runs"]}}
    from loanpipe.dev.airflow_services import api, api_token

    print("stack: starting it again for the run already made ...", flush=True)
    stack.start(airflow=True, mode="s3", scheduled=False)
    token = api_token()
    runs, totals = {}, {}
    for dag_id in stack.DAGS:
        listed = api("GET", f"/api/v2/dags/{dag_id}/dagRuns?limit=100", token=token)
        totals[dag_id] = listed["total_entries"]
        done = [r for r in listed["dag_runs"] if (r.get("conf") or {}).get("run_date") == run_date
                and r["state"] == "success"]
        if not done:
            raise RuntimeError(f"no successful {dag_id} run for {run_date} in {local.paths()['airflow']}: "
                               f"run `make run-s3 RUN_DATE={run_date}` first, or drop --from-run")
        runs[dag_id] = done[-1]["dag_run_id"]
    lake = stack.stack_lake()
    summary = lake.read_json(catalog.run_artifact(lake, run_date, catalog.RUN_SUMMARY))
    backtest = summary["evaluation"]["reason"] or {k: summary["evaluation"].get(k) for k in ("rows", "roc_auc")}
    return {"storage": lake.describe(), "backtest": backtest, "status": summary["status"],
            "runs_per_dag": totals, "runs": runs}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--date", default=dt.datetime.now(dt.UTC).date().isoformat())
    parser.add_argument("--rows", type=int, help="demo lake rows (default: synthetic.rows, 20,000)")
    parser.add_argument("--out", default=str(ROOT / "screens"))
    parser.add_argument("--keep", action="store_true", help="leave the stack up afterwards")
    parser.add_argument("--from-run", action="store_true",
                        help="photograph the date's run `make run-s3` already made on this stack, without a new run")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    driver = None
    try:
        result = the_run(args.date, args.rows, args.from_run)
        runs = result["runs"]
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            driver = browser()
            print("screenshots:", flush=True)
            model_nb = notebook_html(ROOT / "model" / "model.ipynb", work)
            driver.get(model_nb.as_uri())
            wait_text(driver, "Baseline CatBoost")
            scroll_to(driver, "EDA: target, missingness")
            shoot(driver, out, "01_data_notebook_eda.png")
            driver.get(email_html(local.paths()["mail"], f"new data {args.date}", work).as_uri())
            wait_text(driver, "New data batch")
            shoot(driver, out, "02_new_data_email.png")
            driver.get(model_nb.as_uri())
            wait_text(driver, "Baseline CatBoost")
            scroll_to(driver, "candidates compared by cross-validation")
            shoot(driver, out, "03_baseline_model_notebook.png")
            driver.get(notebook_html(ROOT / "spark" / "spark_model.ipynb", work).as_uri())
            wait_text(driver, "The same model on PySpark")
            scroll_to(driver, "The candidate comparison")
            shoot(driver, out, "04_spark_model_notebook.png")
            minio_pages(driver, out, args.date)
            lake = stack.stack_lake()
            for artifact, name in (("score_hist.png", "08_score_histogram.png"), ("trend.png", "09_trend.png")):
                (out / name).write_bytes(lake.read_bytes(catalog.run_artifact(lake, args.date, artifact)))
                print(f"  {name} (the run's own plot)", flush=True)
            airflow_pages(driver, out, runs)
            driver.get(email_html(local.paths()["mail"], f"scoring {args.date}", work).as_uri())
            wait_text(driver, "expected default rate")
            shoot(driver, out, "15_email_report.png")
            driver.get(report_page(lake, args.date, work).as_uri())
            wait_text(driver, "Backtest")
            scroll_to(driver, "The day's scores")
            shoot(driver, out, "16_report_validation.png")
            driver.get(decline_list_page(lake, args.date, work).as_uri())
            wait_text(driver, "Decline list with reasons")
            shoot(driver, out, "17_decline_list.png")
    finally:
        if driver is not None:
            driver.quit()
        if not args.keep:
            stack.stop()
    manifest = {"run_date": args.date, "storage": result["storage"], "backtest": result["backtest"], "status": result["status"],
                "runs_per_dag": result["runs_per_dag"],
                "taken_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                "seconds": round(time.monotonic() - started, 1), "shots": SHOTS}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2))
    print(json.dumps({k: v for k, v in manifest.items() if k != "shots"}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
