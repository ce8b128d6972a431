"""The new-data job in inbox mode, as spark-submit runs it: ``loanpipe.jobs.land day`` (see its ``--help``).

    spark-submit --py-files loanpipe.zip land.py --run-date 2026-11-29 --config conf/default.yaml

Lands the run date's application files and the outcome files that arrived from ``batch.inbox``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

try:
    import loanpipe  # noqa: F401  (shipped with --py-files, or installed)
except ImportError:  # running from a checkout
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from loanpipe.jobs import land  # noqa: E402
from loanpipe.jobs.cli import adopt_bundle_version, exit_after  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    adopt_bundle_version(__file__)
    parser = argparse.ArgumentParser(prog="land.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run-date", required=True, help="the run date, YYYY-MM-DD (Airflow's {{ ds }})")
    parser.add_argument("--config", help="configuration file (default: $LOANPIPE_CONFIG or conf/default.yaml)")
    args = parser.parse_args(argv)
    return land.main(["day", "--date", args.run_date, *(["--config", args.config] if args.config else [])])


if __name__ == "__main__":
    exit_after(main)
