"""The daily job's spark-submit entry script: ``loanpipe.jobs.app.main`` (see its ``--help``).

    spark-submit --packages ai.catboost:catboost-spark_4.0_2.13:1.2.10 --py-files loanpipe.zip spark/app.py --run-date 2026-11-29
"""

from __future__ import annotations

import sys
from pathlib import Path

try:
    import loanpipe  # noqa: F401  (shipped with --py-files, or installed)
except ImportError:  # running from a checkout
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from loanpipe.jobs import app  # noqa: E402
from loanpipe.jobs.cli import adopt_bundle_version, exit_after  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    adopt_bundle_version(__file__)  # a shipped release names itself in a VERSION file beside this script
    return app.main(argv)


if __name__ == "__main__":
    exit_after(main)  # ends the process even if catboost-spark left threads behind
