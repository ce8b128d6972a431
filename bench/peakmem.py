"""Run a command and report its wall time and the peak resident memory of its whole process tree.

    python bench/peakmem.py -- python spark/app.py --run-date 2026-11-01

The peak is the largest sum of RSS over the command and all its descendants (the Spark JVM included),
sampled every 0.2 s. Prints one JSON line on stderr at the end; the command's own output passes through.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

import psutil


def measure(cmd: list[str]) -> dict[str, float]:
    start = time.monotonic()
    proc = subprocess.Popen(cmd)
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        root = psutil.Process(proc.pid)
        while not done.is_set():
            try:
                procs = [root, *root.children(recursive=True)]
                total = 0
                for p in procs:
                    try:
                        total += p.memory_info().rss
                    except psutil.Error:
                        pass
                peak = max(peak, total)
            except psutil.Error:
                pass
            done.wait(0.2)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    rc = proc.wait()
    done.set()
    thread.join()
    return {"returncode": rc, "seconds": round(time.monotonic() - start, 2), "peak_rss_mib": round(peak / 2**20, 1)}


def main() -> int:
    argv = sys.argv[1:]
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
