"""Which release of the code is running (recorded in every model's metadata and in the shipped bundle)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path


def code_version() -> str:
    """The release being run: $LOANPIPE_CODE_VERSION (set by the shipped bundle), else git, else 'unknown'."""
    if os.environ.get("LOANPIPE_CODE_VERSION"):
        return os.environ["LOANPIPE_CODE_VERSION"]
    try:
        out = subprocess.run(["git", "describe", "--always", "--dirty"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).resolve().parent)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"
