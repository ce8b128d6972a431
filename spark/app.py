"""Daily scoring job: score the run date's batch with the champion, evaluate, retrain a challenger, promote.

    spark-submit --packages ai.catboost:catboost-spark_4.0_2.13:1.2.10 --py-files loanpipe.zip \
        spark/app.py --run-date 2026-11-29
    python spark/app.py --run-date 2026-11-29        (same thing, Spark from the configuration)

Prints the run summary as JSON (also artifacts/runs/<date>/summary.json). Exit code 2 and a message naming
the problem on bad input (no batch, bad columns, ...): the champion and earlier outputs stay as they were.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

try:
    import loanpipe  # noqa: F401  (shipped with --py-files, or installed)
except ImportError:  # running from a checkout
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from loanpipe.jobs.app import main_run  # noqa: E402
from loanpipe.jobs.cli import adopt_bundle_version, exit_after, run_job  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run-date", required=True, help="the run's logical date, YYYY-MM-DD (Airflow's {{ ds }})")
    parser.add_argument("--config", help="configuration file (default: $LOANPIPE_CONFIG or conf/default.yaml)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    adopt_bundle_version(__file__)
    return run_job("app", lambda: main_run(args.run_date, args.config))


if __name__ == "__main__":
    exit_after(main)  # ends the process even if catboost-spark left threads behind
