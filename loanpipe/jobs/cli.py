"""What every entry script shares: run a job, print its summary as JSON, turn known errors into exit code 2."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

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
