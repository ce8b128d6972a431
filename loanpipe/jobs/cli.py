"""What every entry script shares: run a job, print its summary as JSON, turn known errors into exit code 2, and\nend the process when the job is done (``exit_after``)."""

from __future__ import annotations

import json
import os
import sys
import threading
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

from loanpipe.core.config import ConfigError
from loanpipe.core.schema import SchemaError
from loanpipe.core.storage import StorageError

# Errors that mean "bad input or settings": a message for the user, no traceback, exit code 2.
USER_ERRORS: tuple[type[BaseException], ...] = (ConfigError, SchemaError, StorageError, ValueError)


def adopt_bundle_version(script: str) -> None:
    """A shipped bundle has a VERSION file beside its entry scripts: record it as the code version."""
    version_file = Path(script).resolve().with_name("VERSION")
    if version_file.is_file():
        os.environ.setdefault("LOANPIPE_CODE_VERSION", version_file.read_text().strip())


def run_job(name: str, job: Callable[[], dict[str, Any]]) -> int:
    try:
        summary = job()
    except USER_ERRORS as exc:
        print(f"{name} failed: {exc}", file=sys.stderr, flush=True)
        return 2
    print(json.dumps(summary, indent=2, default=str), flush=True)
    return 0


def exit_after(main: Callable[[], int], stop_timeout: float = 60.0) -> NoReturn:
    """Run an entry script's ``main`` and end the process with its exit code, whatever threads are left.

    catboost-spark leaves threads behind after ``fit`` that keep the driver alive; ``spark.stop()`` does not end
    them (catboost/catboost#2151, #2744), and a driver that never exits holds the Airflow SSH task until its
    timeout. So: run ``main`` (an unexpected error prints its traceback and exits 1), stop the Spark session if
    there is one (waiting at most ``stop_timeout`` seconds), flush the outputs, then ``os._exit``.
    """
    try:
        code = main()
    except SystemExit as exc:  # argparse's usage errors (2), sys.exit(n) inside main
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:  # noqa: BLE001 - anything else is a crash: show it, exit 1
        traceback.print_exc()
        code = 1
    if "pyspark" in sys.modules:
        from pyspark.sql import SparkSession

        session = SparkSession.getActiveSession()
        if session is not None:
            stopper = threading.Thread(target=session.stop, daemon=True)
            stopper.start()
            stopper.join(stop_timeout)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


# Every job's command line, one convention: ``loanpipe.jobs.<job>.main(argv) -> int``, run as ``python -m`` or from
# its spark-submit entry script, ended by ``exit_after``.
JOBS = {
    "ingest": "python -m loanpipe.jobs.ingest [--rows N | --full | --csv FILE] [--reset]: train/ and test/",
    "data_gen": "python -m loanpipe.jobs.data_gen --run-date D (spark-submit data_gen/data_gen.py): the day's batch",
    "app": "python -m loanpipe.jobs.app --run-date D (spark-submit spark/app.py): score, evaluate, retrain, promote",
    "fetch_scores": "python -m loanpipe.jobs.fetch_scores --latest | --date D [--grade 9-10] [--with-reasons]",
    "land": "python -m loanpipe.jobs.land applications --date D FILE... | --from-inbox: the day's batch; "
            "... land outcomes --date A FILE...: outcome records that arrived on A",
}


def main(argv: list[str] | None = None) -> int:
    """``python -m loanpipe.jobs.cli``: the jobs' commands (each has its own ``--help``)."""
    import argparse

    listing = "\n".join(f"  {name:13} {text}" for name, text in JOBS.items())
    parser = argparse.ArgumentParser(prog="python -m loanpipe.jobs.cli", formatter_class=argparse.RawDescriptionHelpFormatter,
                                     description=f"The jobs' command lines (each with --help):\n\n{listing}")
    parser.parse_args(argv)
    print(f"The jobs' command lines (each with --help):\n{listing}")
    return 0


if __name__ == "__main__":
    exit_after(main)
