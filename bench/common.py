"""What every benchmark shares: the header (versions, machine), medians, tables, JSON results, measured runs."""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
WORK = Path(os.environ.get("LOANPIPE_BENCH_DIR", ROOT / "var" / "bench"))
PY = sys.executable


def machine() -> dict[str, Any]:
    import catboost
    import pandas
    import pyarrow
    import pyspark

    cpu = "unknown"
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    java = subprocess.run(["java", "-version"], capture_output=True, text=True).stderr.splitlines()[:1]
    return {"cpus": os.cpu_count(), "cpu": cpu, "memory_gib": round(mem, 1), "python": platform.python_version(),
            "pyspark": pyspark.__version__, "catboost": catboost.__version__, "pandas": pandas.__version__,
            "pyarrow": pyarrow.__version__, "java": java[0] if java else "unknown",
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}


def header(title: str, info: dict[str, Any]) -> str:
    return (f"== {title}\n   {info['cpus']} cores ({info['cpu']}), {info['memory_gib']} GiB | python {info['python']}, "
            f"pyspark {info['pyspark']}, catboost {info['catboost']}, pandas {info['pandas']}, pyarrow "
            f"{info['pyarrow']} | {info['java']} | {info['date']}")


def median(values: list[float]) -> float:
    return round(statistics.median(values), 3)


def table(columns: list[str], rows: list[list[Any]]) -> str:
    cells = [[_fmt(v) for v in row] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) if cells else len(c) for i, c in enumerate(columns)]
    line = lambda r: "  ".join(v.ljust(w) if i == 0 else v.rjust(w) for i, (v, w) in enumerate(zip(r, widths)))  # noqa: E731
    return "\n".join([line(columns), line(["-" * w for w in widths]), *(line(r) for r in cells)])


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:,.2f}" if abs(v) < 1000 else f"{v:,.0f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def save(name: str, payload: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2, default=str))
    return path


class PeakRSS:
    """While in use, samples every 0.2 s the summed RSS of process ``pid`` and all its descendants (Spark's JVM
    included) and keeps the largest sum in ``peak`` (bytes)."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak, self._done = pid, 0, threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        import psutil

        while not self._done.is_set():
            try:
                root = psutil.Process(self.pid)
                total = 0
                for p in [root, *root.children(recursive=True)]:
                    try:
                        total += p.memory_info().rss
                    except psutil.Error:
                        pass
                self.peak = max(self.peak, total)
            except psutil.Error:
                pass
            self._done.wait(0.2)

    def __enter__(self) -> "PeakRSS":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()


def run_measured(cmd: list[str], env: dict[str, str] | None = None, timeout: float = 3600) -> dict[str, Any]:
    """Run ``cmd``; its wall time, the peak RSS of its whole process tree (JVM included), its stdout."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.monotonic()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env={**os.environ, **(env or {})}, cwd=ROOT)
        with PeakRSS(proc.pid) as rss:
            rc = proc.wait(timeout)
        seconds = time.monotonic() - start
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
    if rc != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {rc}:\n{stderr[-3000:]}")
    return {"seconds": round(seconds, 2), "peak_rss_gib": round(rss.peak / 2**30, 2), "stdout": stdout}


def json_tail(stdout: str) -> dict[str, Any]:
    """The JSON summary a job prints last."""
    start = stdout.rfind("\n{")
    return json.loads(stdout[start + 1 if start >= 0 else stdout.index("{"):])
