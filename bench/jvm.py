"""What the JVM's optimising compiler costs a short job: data_gen and app for one date (not a bootstrap date) on a
6,000-row lake at the quick model sizes (the end-to-end stacks' jobs), each a fresh ``python`` process and JVM,
with the default tiered compilation and with C1 only (``JDK_JAVA_OPTIONS=-XX:TieredStopAtLevel=1``, what the
quick stacks set: loanpipe.dev.stack.QUICK_JVM). Runs alternate between the two settings; medians of --repeat.

The lake (var/bench/lake-jvm) is ingested and bootstrapped on its first date once, then reused. A measured run
reruns the same later date, so every run does the same work (a rerun replaces the date's outputs).
"""

from __future__ import annotations

import sys
from typing import Any

from bench.common import ROOT, WORK, header, median, run_measured, save, table

ROWS = 6000
BOOT, DAY = "2026-11-01", "2026-11-02"
SETTINGS = {"default": "", "C1 only": "-XX:TieredStopAtLevel=1"}


def _env(lake: str, java_options: str) -> dict[str, str]:
    from loanpipe.dev.stack import QUICK_MODEL, config_env

    return {"LOANPIPE__STORAGE__ROOT": lake, "JDK_JAVA_OPTIONS": java_options, **config_env("model", QUICK_MODEL)}


def _jobs(day: str) -> dict[str, list[str]]:
    return {"data_gen": [sys.executable, str(ROOT / "data_gen" / "data_gen.py"), "--run-date", day],
            "app": [sys.executable, str(ROOT / "spark" / "app.py"), "--run-date", day]}


def ensure_lake() -> str:
    lake = WORK / "lake-jvm"
    if not (lake / "artifacts" / "runs" / BOOT / "summary.json").is_file():
        env = _env(str(lake), "")
        run_measured([sys.executable, "-m", "loanpipe.jobs.ingest", "--rows", str(ROWS), "--reset"], env)
        for cmd in _jobs(BOOT).values():
            run_measured(cmd, env)
    return str(lake)


def run(info: dict[str, Any], repeat: int) -> dict[str, Any]:
    lake = ensure_lake()
    seconds: dict[tuple[str, str], list[float]] = {}
    for _ in range(repeat):
        for setting, options in SETTINGS.items():
            for job, cmd in _jobs(DAY).items():
                seconds.setdefault((job, setting), []).append(run_measured(cmd, _env(lake, options))["seconds"])
    rows = []
    for job in _jobs(DAY):
        base, c1 = median(seconds[(job, "default")]), median(seconds[(job, "C1 only")])
        rows.append([job, base, c1, round(c1 / base, 2)])
    print(header(f"A short job's JVM: {ROWS:,}-row lake, quick model sizes, rerun of {DAY} (medians of {repeat})",
                 info))
    print(table(["job", "default s", "C1 only s", "ratio"], rows), flush=True)
    payload = {"machine": info, "rows": ROWS, "repeat": repeat, "settings": SETTINGS,
               "jobs": {job: {"default_seconds": r[1], "c1_only_seconds": r[2], "ratio": r[3],
                              "runs": {s: seconds[(job, s)] for s in SETTINGS}} for job, r in zip(_jobs(DAY), rows)}}
    save("jvm", payload)
    return payload
