"""Run a command and report its wall time and the peak resident memory of its whole process tree.

    python bench/peakmem.py -- python spark/app.py --run-date 2026-11-01

The peak is the largest sum of RSS over the command and all its descendants (the Spark JVM included),
sampled every 0.2 s. Prints one JSON line on stderr at the end; the command's own output passes through.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import PeakRSS  # noqa: E402


def measure(cmd: list[str]) -> dict[str, float]:
    start = time.monotonic()
    proc = subprocess.Popen(cmd)
    with PeakRSS(proc.pid) as rss:
        rc = proc.wait()
    return {"returncode": rc, "seconds": round(time.monotonic() - start, 2), "peak_rss_mib": round(rss.peak / 2**20, 1)}


def main() -> int:
    argv = sys.argv[1:]
    if argv[:1] in (["-h"], ["--help"]):
        print(__doc__)
        return 0
    if argv and argv[0] == "--":
        argv = argv[1:]
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    result = measure(argv)
    print(json.dumps({"command": " ".join(argv), **result}), file=sys.stderr)
    return int(result["returncode"])


if __name__ == "__main__":
    sys.exit(main())
