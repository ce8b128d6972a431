"""What the DAG tasks run: the remote command and the reports (no Airflow, no network)."""

from __future__ import annotations

import json

import shlex
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from loanpipe.orchestration import shipping
from loanpipe.reports import emails
from loanpipe.orchestration import tasks as orch
from loanpipe.core.config import Config


@pytest.fixture()
def cfg() -> Config:
    return Config().replace(cluster={"remote_dir": "/srv/lp", "python": "/opt/venv/bin/python",
                                     "spark_submit": "/opt/spark/bin/spark-submit", "master": "yarn",
                                     "env": {"LOANPIPE__STORAGE__ROOT": "s3a://bank-risk/loans", "X": "a b"}})


def test_remote_command(cfg: Config) -> None:
    cmd = shipping.remote_command(cfg, "app", version="v1", run_date="2026-11-29")
    assert cmd.startswith("set -e; mkdir -p /srv/lp/releases/v1 && tar -xzf /srv/lp/releases/v1.tar.gz")
    assert "cd /srv/lp/releases/v1;" in cmd
    assert "exec /opt/spark/bin/spark-submit --master yarn --deploy-mode client" in cmd
    assert "--packages ai.catboost:catboost-spark_4.0_2.13:1.2.10" in cmd
    assert "--py-files loanpipe.zip app.py --run-date 2026-11-29 --config conf/default.yaml" in cmd
    assert "LOANPIPE__STORAGE__ROOT=s3a://bank-risk/loans" in cmd and "X='a b'" in cmd
    shlex.split(cmd)  # well-formed shell
    data_gen = shipping.remote_command(cfg, "data_gen", version="v1", run_date="2026-11-29")
    assert "catboost" not in data_gen and "data_gen.py" in data_gen
    no_pkgs = shipping.remote_command(cfg.replace(cluster={"packages": False}), "app", version="v1", run_date="d")
    assert "--packages" not in no_pkgs
    with pytest.raises(ValueError, match="job must be one of"):
        shipping.remote_command(cfg, "train")


def test_remote_command_gives_catboost_spark_one_task_per_executor(cfg: Config) -> None:
    four = cfg.replace(cluster={"executor_cores": 4})
    app = shlex.split(shipping.remote_command(four, "app", version="v1", run_date="d"))
    assert "spark.executor.cores=4" in app and "spark.task.cpus=4" in app  # it trains there
    assert app.index("spark.task.cpus=4") < app.index("app.py")  # a spark-submit option, not a job argument
    data_gen = shlex.split(shipping.remote_command(four, "data_gen", version="v1", run_date="d"))
    assert "spark.executor.cores=4" in data_gen and not any("task.cpus" in a for a in data_gen)
    python_engine = shipping.remote_command(four.replace(model={"engine": "python"}), "app", version="v1", run_date="d")
    assert "task.cpus" not in python_engine  # no catboost-spark, no limit
    assert "task.cpus" not in shipping.remote_command(cfg, "app", version="v1", run_date="d")  # cores unknown


def test_remote_command_in_s3_mode(cfg: Config) -> None:
    s3 = cfg.replace(storage={"root": "s3a://bank-risk/loans"}, cluster={"env_file": "/home/lp/.config/s3 env"})
    cmd = shipping.remote_command(s3, "app", version="v1", run_date="2026-11-29")
    # one --packages flag (spark-submit keeps only the last): catboost-spark and the s3a packages together
    assert cmd.count("--packages") == 1
    assert "--packages ai.catboost:catboost-spark_4.0_2.13:1.2.10,org.apache.hadoop:hadoop-aws:3.4.1," in cmd
    # the node's own key file is sourced when present; no key ever appears on the command line
    assert "if [ -r '/home/lp/.config/s3 env' ]; then set -a; . '/home/lp/.config/s3 env'; set +a; fi;" in cmd
    assert "AWS_SECRET" not in cmd
    data_gen = shipping.remote_command(s3.replace(cluster={"s3_packages": False}), "data_gen", version="v1", run_date="d")
    assert "--packages" not in data_gen
    local = shipping.remote_command(cfg, "data_gen", version="v1", run_date="d")
    assert "hadoop-aws" not in local and "set -a" not in local


def test_airflow_reads_s3_keys_from_its_connection(cfg: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    s3 = cfg.replace(storage={"root": "s3a://bank-risk/loans"})
    monkeypatch.setenv("AIRFLOW_CONN_LOANPIPE_S3", json.dumps({"conn_type": "aws", "login": "AKID", "password": "SECRET"}))
    creds = orch.airflow_credentials(s3)
    assert creds is not None and (creds.access_key, creds.secret_key) == ("AKID", "SECRET")
    assert "SECRET" not in repr(creds)
    monkeypatch.delenv("AIRFLOW_CONN_LOANPIPE_S3")
    assert orch.airflow_credentials(s3) is None  # -> the environment
    assert orch.airflow_credentials(cfg) is None  # local lake: nothing to read


def test_templates_are_airflow_templates(cfg: Config) -> None:
    cmd = shipping.remote_command(cfg, "data_gen")
    assert "{{ params.run_date or ds }}" in cmd and "{{ ti.xcom_pull(task_ids='build_bundle')['version'] }}" in cmd
    assert shipping.remote_tarball(cfg, "v2") == "/srv/lp/releases/v2.tar.gz"


def test_build_bundle_tarball(tmp_path: Path) -> None:
    out = shipping.build_bundle(str(tmp_path))
    with tarfile.open(out["tarball"]) as tar:
        names = set(tar.getnames())
    assert {"VERSION", "app.py", "data_gen.py", "loanpipe.zip", "conf/default.yaml"} <= names
    assert out["version"] and out["tarball"].endswith(f"loanpipe-{out['version']}.tar.gz")
    with zipfile.ZipFile(Path(out["tarball"]).with_suffix("").with_suffix("") / "loanpipe.zip") as zf:
        packages = {n.split("/")[1] for n in zf.namelist() if n.count("/") >= 2}
    assert packages == {"core", "ml", "jobs", "reports"}  # the Airflow side and the local harness stay behind
    with zipfile.ZipFile(Path(out["tarball"]).with_suffix("").with_suffix("") / "loanpipe.zip") as zf:
        assert "loanpipe/reports/templates/app.html.j2" in zf.namelist()  # the job renders report.html


def test_building_the_bundle_imports_nothing_heavy(tmp_path: Path) -> None:
    """The Airflow task that builds the bundle runs in the worker: no pandas, scikit-learn, Spark or CatBoost."""
    code = ("import sys; from loanpipe.orchestration import shipping, tasks; "
            f"shipping.build_bundle({str(tmp_path)!r}); "
            "print('HEAVY', [m for m in ('pandas', 'sklearn', 'pyspark', 'catboost', 'numpy') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "HEAVY []" in out.stdout


def _app_summary(auc: float | None, status: str = "OK", promoted: bool = False) -> dict:
    return {
        "run_date": "2026-11-29", "status": status, "alerts": [] if status == "OK" else ["AUC 0.6 is under the floor 0.75"],
        "engine": "python", "champion": {"version": "m1"}, "serving_after_run": "m2" if promoted else "m1",
        "scores": {"rows": 10, "cutoff": 0.5, "path": "/lake/test_sample_inference/run_date=2026-11-29"},
        "daily": {"rows": 10, "expected_default_rate": 0.09, "grade_shares": [0.5, 0.5]},
        "evaluation": {"rows": 10, "since": "2026-11-27", "cohorts": [
                           {"application_date": "2026-11-27", "rows": 10, "defaults": 1, "default_rate": 0.1,
                            "mean_pd": 0.09, "roc_auc": auc}],
                       "roc_auc": auc, "oracle_auc": 0.99, "pr_auc": 0.8, "gini": 0.9, "ks": 0.8, "brier": 0.02,
                       "observed_default_rate": 0.1, "mean_predicted_probability": 0.09, "true_positives": 1,
                       "defaults": 1, "false_positives": 0},
        "challenger": {"version": "m2", "test": "DeLong (paired)", "champion_auc": 0.9, "challenger_auc": 0.95,
                       "p_value": 0.01 if promoted else 0.4, "promoted": promoted, "reason": "r <script>",
                       "policy": [{"rule": "one-sided DeLong p", "key": "model.promotion.alpha", "value": 0.4,
                                   "needs": "< 0.01", "passed": False},
                                  {"rule": "AUC gain", "key": "model.promotion.min_auc_gain", "value": None,
                                   "needs": ">= 0.005", "passed": None}]},
        "drift": {"score": {"psi": 0.01, "status": "stable"}, "features": {"f1": {"psi": 0.3, "status": "drift"}}},
        "artifacts": {"metrics": "/lake/artifacts/runs/2026-11-29/metrics.json"},
        "train_sup": {"path": "/lake/train_sup", "rows": 100}, "seconds": {"total": 12.5},
    }


def test_app_report_subject_and_body() -> None:
    subject, body = emails.app_report(_app_summary(0.95))
    assert subject == "[loanpipe] OK scoring 2026-11-29: backtest AUC 0.9500 on 10 matured, champion kept"
    assert "cohorts whose outcomes matured since 2026-11-27" in body and "<td>2026-11-27</td><td>10</td>" in body
    assert "cid:roc.png" in body and "DeLong" in body and "<td>f1</td><td>0.3000</td>" in body
    assert "test_sample_inference" in body and "cid:trend.png" not in body  # a run without a trend chart
    assert "<script>" not in body  # everything is escaped
    assert ("<td>one-sided DeLong p</td><td>0.4000</td><td>&lt; 0.01</td><td>model.promotion.alpha</td><td>no</td>"
            in body) and "<td>not evaluated</td>" in body  # the promotion policy, rule by rule
    subject, _ = emails.app_report(_app_summary(0.6, "ALERT", promoted=True))
    assert subject.startswith("[loanpipe] ALERT scoring") and "challenger promoted" in subject
    nothing = _app_summary(None)
    nothing["evaluation"] = {"rows": 0, "since": None, "roc_auc": None, "cohorts": [],
                             "reason": "no outcome has matured yet (r)"}
    nothing["challenger"] = {"version": None, "promoted": False, "reason": "no decision: 0 defaults ..."}
    subject, body = emails.app_report(nothing)
    assert subject == "[loanpipe] OK scoring 2026-11-29: no matured cohort, champion kept"
    assert "no outcome has matured yet (r)" in body and "no decision: 0 defaults" in body
    assert "expected default rate (mean PD)</th><td>0.0900" in body


def test_app_report_shows_the_candidate_table_and_calibration() -> None:
    summary = _app_summary(0.95)
    summary["evaluation"]["calibration"] = {
        "brier": 0.07, "log_loss": 0.25, "worst_bin": {"bin": 10, "jeffreys_p": 0.012},
        "table": [{"bin": 1, "n": 100, "defaults": 2, "observed_rate": 0.02, "mean_pd": 0.018, "jeffreys_p": 0.8},
                  {"bin": 10, "n": 100, "defaults": 60, "observed_rate": 0.6, "mean_pd": 0.48, "jeffreys_p": 0.012}]}
    summary["champion"]["candidates"] = {
        "rows": [{"candidate": "all_raw", "n_features": 769, "mean_auc": 0.86, "sd_auc": 0.01,
                  "fold_aucs": [0.85, 0.87], "seconds": 40.0},
                 {"candidate": "forward", "n_features": 9, "mean_auc": 0.985, "sd_auc": 0.002,
                  "fold_aucs": [0.984, 0.986], "seconds": 30.0}],
        "decision": {"chosen": "forward", "rule": "forward: best mean CV AUC",
                     "guard": {"passed": True}},
        "calibration": {"method": "platt", "reason": "lowest log-loss", "before": {"brier": 0.08},
                        "after": {"brier": 0.07}}}
    _, body = emails.app_report(summary)
    assert "Calibration on the batch" in body and "Jeffreys p = 0.0120 (PD rejected at 5%)" in body
    assert "Model choice (bootstrap)" in body and "forward (chosen)" in body and "0.984, 0.986" in body
    assert "guard against all raw columns: passed" in body and "PD calibration: platt" in body
    assert "chosen again" not in body  # no rediscovery this run


def test_app_report_has_the_validation_section_with_numbers() -> None:
    import numpy as np

    from loanpipe.ml import ecb, evaluation, risk

    rng = np.random.default_rng(5)
    y = (rng.random(2000) < 0.1).astype(int)
    p = np.clip(0.1 + 0.2 * (y - 0.1) + rng.normal(0, 0.05, 2000), 0.0001, 0.9999)
    scale = [0.01, 0.05, 0.1, 0.2, 1.0]
    summary = _app_summary(0.95, promoted=True)
    summary["evaluation"]["validation"] = evaluation.validation(y, p, scale)
    start = [400, 400, 400, 400, 400]
    summary["evaluation"]["validation"].update(
        initial={"model": "m1", "auc": 0.99, "auc_source": "mean 5-fold CV AUC of its discovery", "grade_counts": start},
        auc_decline=ecb.auc_decline(0.99, y, p), concentration=ecb.concentration_test(start, np.bincount(
            risk.grade_of(p, scale), minlength=6)[1:]))
    summary["drift"] = {"score": {"psi": 0.02, "status": "stable", "light": "green"},
                        "features": {"f1": {"psi": 0.3, "status": "drift", "light": "red"},
                                     "f2": {"psi": 0.12, "status": "moderate shift", "light": "amber"}},
                        "lights": {"green": 0, "amber": 1, "red": 1}}
    old = risk.grade_of(p, scale)
    summary["risk"] = {"migration": risk.migration_matrix(old, np.minimum(old + (rng.random(2000) < 0.1), 5), 5),
                       "model_card": "# Model card: m2\n\n## Features (3)"}
    summary["artifacts"]["trend"] = "/lake/artifacts/runs/2026-11-29/trend.png"
    subject, body = emails.app_report(summary)
    ci = summary["evaluation"]["validation"]["auc_interval"]
    assert subject.endswith("challenger promoted, grade migration inside")
    assert f"DeLong 95% CI {ci['low']:.4f} to {ci['high']:.4f}" in body and "Gini 0.9000, KS 0.8000" in body
    assert "share of defaults captured" in body and body.count("<td>100.00%</td>") >= 1  # the last decile's CAP
    assert "Validation: rating grades (master scale)" in body and "<td>5.00%-10.00%</td>" in body
    assert "Characteristics: 0 green, 1 amber, 1 red." in body and "color:#c22'>red (drift)" in body
    assert "Grade migration: old champion (rows) to new (columns)" in body
    hl, m = summary["evaluation"]["validation"]["hosmer_lemeshow"], summary["risk"]["migration"]
    assert f"Hosmer-Lemeshow over 5 grade(s): {hl['statistic']:.4f}, p = {hl['p_value']:.4f} <b style='color:" in body
    assert "<th>binomial p (PD too low)</th>" in body
    decline, conc = (summary["evaluation"]["validation"][k] for k in ("auc_decline", "concentration"))
    assert "Against the initial validation of m1" in body
    assert (f"AUC {decline['auc']:.4f} now against 0.9900 (mean 5-fold CV AUC of its discovery), "
            f"S = {decline['statistic']:.4f}, p = {decline['p_value']:.4f} <b style='color:") in body
    assert f"p = {conc['p_value']:.4f} <b style='color:#d90'>{conc['light']}</b>" in body  # even at the start: amber
    assert f"Herfindahl {conc['current']['herfindahl']:.4f} now against 0.0000 on its training sample" in body
    assert f"upper (to riskier grades) {m['bandwidth']['upper']:.4f}, lower (to safer) n/a" in body
    stability = m["stability"]
    assert f"{stability['cells_under_5pct']} of {stability['cells_tested']} cells hold more" in body
    assert f"Bonferroni p = {stability['p_value']:.4f} <b style='color:" in body
    assert f"<th>total</th>{''.join(f'<td>{c}</td>' for c in summary['risk']['migration']['column_totals'])}<td>2000</td>" in body
    assert "cid:trend.png" in body and "Model card of the new champion" in body and "# Model card: m2" in body
    _, page = emails.app_report(summary, images={"roc": "roc.png", "trend": "trend.png"})
    assert "src='trend.png'" in page and "cid:" not in page


def test_app_report_has_a_data_quality_section() -> None:
    summary = _app_summary(0.95)
    _, body = emails.app_report(summary)
    assert "Data quality" not in body  # a summary from before the contract: no section
    summary["quality"] = {
        "rows_in": 1000, "scored": 996, "quarantined": 4, "path": "/lake/test_sample_quarantine/run_date=2026-11-29",
        "by_reason": {"non_finite": 3, "duplicate_id": 1}, "dropped_columns": ["f999"],
        "examples": {"non_finite": [{"id": "17", "detail": "f3 = inf"}],
                     "duplicate_id": [{"id": "5", "detail": "id 5 is on 2 rows of the batch"}]},
        "new_categories": {"purpose": {"boat": 2, "yacht": 1}}}
    subject, body = emails.app_report(summary)
    assert subject.endswith("champion kept, 4 row(s) quarantined")
    assert "1000 rows in: 996 scored, 4 set aside in /lake/test_sample_quarantine/run_date=2026-11-29" in body
    assert "<td>non_finite</td><td>3</td><td>id 17: f3 = inf</td>" in body and "<td>duplicate_id</td><td>1</td>" in body
    assert body.index("non_finite") < body.index("duplicate_id")  # in the contract's order
    assert "<td>purpose</td><td>boat (2), yacht (1)</td>" in body and "Columns dropped (not in the lake): f999" in body


def test_data_gen_report_flags_leaks() -> None:
    summary = {"run_date": "2026-11-29", "rows": 100, "default_rate": 0.09, "test_rows": 1000, "fraction": 0.1,
               "with_replacement": True, "output_path": "/lake/test_sample/run_date=2026-11-29", "seconds": 3.0,
               "repeated_rows": {"within_batch": 2, "in_other_batches": 5, "in_train_sup": 0},
               "outcomes": {"arrival_date": "2026-12-01"}}
    subject, body = emails.data_gen_report(summary)
    assert subject == "[loanpipe] ALERT new data 2026-11-29: 100 rows, outcomes on 2026-12-01"
    assert "rows already in other batches" in body and "2026-12-01 (default rate 0.09)" in body


def test_the_new_data_report_in_inbox_mode_says_what_landed_and_what_was_set_aside() -> None:
    apps = {"landed": 98, "quarantined": 2, "files": ["a.csv", "b.parquet"], "reasons": {"empty id": 2},
            "path": "/lake/test_sample/run_date=2026-11-29", "quarantine": "/lake/applications_quarantine/x",
            "processed": "/inbox/processed/2026-11-29/applications"}
    summary = {"source": "inbox", "run_date": "2026-11-29", "rows": 98, "applications": apps, "outcomes": None,
               "seconds": 1.5}
    subject, body = emails.data_gen_report(summary)
    assert subject == "[loanpipe] ALERT new data 2026-11-29: 98 applications from 2 file(s), 2 quarantined"
    assert "No outcome file arrived today" in body and "/inbox/processed/2026-11-29/applications" in body
    assert "why set aside</th><td>empty id: 2</td>" in body
    summary["outcomes"] = {"landed": 40, "defaults": 4, "quarantined": 0, "reasons": {}, "files": ["o.csv"],
                           "path": "/lake/outcomes/arrival_date=2026-11-29"}
    subject, body = emails.data_gen_report({**summary, "applications": {**apps, "quarantined": 0}})
    assert subject == "[loanpipe] OK new data 2026-11-29: 98 applications from 2 file(s), 40 outcomes"
    assert "Outcomes that arrived" in body and "arrival_date=2026-11-29" in body
    assert "why set aside</th><td>none</td>" in body  # nothing set aside: no empty mapping on the page


def test_failure_report() -> None:
    subject, body = emails.failure_report("dag_app", "spark_submit_app", "2026-11-29", 2, "exit 1", "line <1>\nline 2")
    assert subject == "[loanpipe] FAILED dag_app.spark_submit_app for 2026-11-29 (try 2)"
    assert "line &lt;1&gt;" in body


def test_reports_and_alerts_that_cannot_be_mailed_are_kept_in_the_lake(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """SMTP is down (nothing listens on its port): the report task fails saying where the report is kept, and
    the failure callback that follows keeps its alert too instead of failing silently."""
    import socket
    from types import SimpleNamespace

    from loanpipe.core import catalog, storage

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEFAULT", json.dumps({
        "conn_type": "smtp", "host": "127.0.0.1", "port": port,
        "extra": {"disable_ssl": True, "disable_tls": True, "from_email": "lp@localhost", "retry_limit": 1}}))
    monkeypatch.setenv("LOANPIPE_MAIL_TO", "risk@example.com")
    monkeypatch.setenv("LOANPIPE__STORAGE__ROOT", str(tmp_path / "lake"))
    lake = storage.LocalLake(str(tmp_path / "lake"))
    summary = {"run_date": "2026-11-29", "rows": 100, "default_rate": 0.09, "test_rows": 1000, "fraction": 0.1,
               "with_replacement": False, "output_path": "/lake/test_sample/run_date=2026-11-29", "seconds": 3.0,
               "repeated_rows": {"within_batch": 0, "in_other_batches": 0, "in_train_sup": 0},
               "outcomes": {"arrival_date": "2026-12-01"}}
    lake.write_json(catalog.data_gen_summary(lake, "2026-11-29"), summary)
    kept = catalog.alert(lake, "2026-11-29", "report-dag_new_data.html")
    with pytest.raises(RuntimeError, match=rf"could not email '\[loanpipe\] OK new data 2026-11-29.*kept at {kept}"):
        orch.send_data_gen_report(ds="2026-11-29", params={})
    page = lake.read_bytes(kept).decode()
    assert "<title>[loanpipe] OK new data 2026-11-29: 100 rows" in page and "rows already in other batches" in page

    ti = SimpleNamespace(dag_id="dag_new_data", task_id="email_report", try_number=2, run_id="manual__x")
    orch.notify_failure({"ti": ti, "exception": RuntimeError("SMTP down"), "ds": "2026-11-29", "params": {}})
    alert = lake.read_bytes(catalog.alert(lake, "2026-11-29", "failure-dag_new_data-email_report-try2.html")).decode()
    assert "FAILED dag_new_data.email_report for 2026-11-29 (try 2)" in alert and "SMTP down" in alert
