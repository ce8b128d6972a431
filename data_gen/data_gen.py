"""New-data job: sample the run date's batch of "new" applications from test/ into test_sample/.

    spark-submit data_gen/data_gen.py --run-date 2026-11-29 [--fraction 0.1] [--seed N] [--with-replacement]
    python data_gen/data_gen.py --run-date 2026-11-29          (same thing, Spark from the configuration)

Prints the run summary as JSON (also written to artifacts/data_gen/<date>/summary.json). Exit code 2 and a
message naming the problem on bad input; nothing is written then.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

try:
    import loanpipe  # noqa: F401  (shipped with --py-files, or installed)
except ImportError:  # running from a checkout
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from loanpipe.jobs.cli import adopt_bundle_version, exit_after, run_job  # noqa: E402
from loanpipe.jobs import sampling  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run-date", required=True, help="the run's logical date, YYYY-MM-DD (Airflow's {{ ds }})")
    parser.add_argument("--fraction", type=float, help="share of test/ to sample (default: sampling.fraction, 0.1)")
    parser.add_argument("--seed", type=int, help="sampling seed (default: derived from the run date)")
    parser.add_argument("--with-replacement", action="store_true", default=None,
                        help="sample with replacement from all of test/: emulates a data leak (repeats are counted)")
    parser.add_argument("--config", help="configuration file (default: $LOANPIPE_CONFIG or conf/default.yaml)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    adopt_bundle_version(__file__)
    return run_job("data_gen", lambda: sampling.run(args.run_date, args.fraction, args.seed, args.with_replacement,
                                                     args.config))


if __name__ == "__main__":
    exit_after(main)
