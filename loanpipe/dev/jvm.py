"""Resolve Spark's JVM packages from Maven Central once, into the Ivy cache, and record what resolved.

``python -m loanpipe.dev.jvm resolve`` runs ``spark-submit --packages <group>`` with a no-op script for each
package group (catboost-spark; hadoop-aws + AWS SDK for s3a). Ivy keeps the jars in ``spark.ivy_dir`` (outside
the clone), so later runs resolve from the cache in seconds. The outcome of each group is written to
``.cache/jvm-packages.json``; sessions leave out a group that is unavailable instead of failing to start.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from loanpipe.core.config import Config, load_config
from loanpipe.core.session import JVM_STATUS_FILE, ivy_dir, jvm_status

NOOP = "from pyspark.sql import SparkSession\nSparkSession.builder.getOrCreate().stop()\n"


def spark_submit() -> str:
    import pyspark

    return str(Path(pyspark.__file__).parent / "bin" / "spark-submit")


def groups(cfg: Config) -> dict[str, list[str]]:
    return {"catboost": [cfg.spark.catboost_spark_package], "s3": list(cfg.spark.s3_packages)}


def resolve_group(cfg: Config, packages: list[str], timeout: int = 1500) -> dict[str, object]:
    """Resolve ``packages`` through spark-submit; return {status, packages, seconds, error?}."""
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "noop.py"
        script.write_text(NOOP)
        cmd = [spark_submit(), "--master", "local", "--packages", ",".join(packages),
               "--conf", f"spark.jars.ivy={ivy_dir(cfg)}", str(script)]
        env = dict(os.environ, SPARK_LOCAL_IP="127.0.0.1", PYSPARK_PYTHON=sys.executable)
        start = time.monotonic()
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
        seconds = round(time.monotonic() - start, 1)
    result: dict[str, object] = {"packages": packages, "seconds": seconds}
    if proc.returncode == 0:
        result["status"] = "ok"
    else:
        lines = [ln.strip() for ln in (proc.stderr + proc.stdout).splitlines()]
        reasons = ([ln for ln in lines if "unresolved dependency" in ln or "::" in ln and "not found" in ln]
                   or [ln for ln in lines if "Exception" in ln or "not found" in ln])
        result["status"] = "unavailable"
        result["error"] = (reasons or lines[-3:] or ["spark-submit failed"])[0][:500]
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["resolve", "status"])
    parser.add_argument("--config", help="configuration file (default: $LOANPIPE_CONFIG or conf/default.yaml)")
    parser.add_argument("--group", action="append", choices=["catboost", "s3"], help="only these groups")
    parser.add_argument("--retry-unavailable", action="store_true", help="try again groups recorded as unavailable")
    args = parser.parse_args(argv)
    if args.command == "status":
        print(json.dumps(jvm_status(), indent=2))
        return 0
    cfg = load_config(args.config)
    status = jvm_status()
    for name, packages in groups(cfg).items():
        if args.group and name not in args.group:
            continue
        known = status.get(name, {})
        if known.get("packages") == packages and known.get("status") == "ok" and Path(ivy_dir(cfg), "jars").is_dir():
            # Resolved before; a session re-resolves from the Ivy cache (or Maven Central) by itself if needed.
            print(f"jvm: {name}: cached ({', '.join(packages)})")
            continue
        if known.get("packages") == packages and known.get("status") == "unavailable" and not args.retry_unavailable:
            print(f"jvm: {name}: recorded as unavailable ({known.get('error')}); --retry-unavailable to try again")
            continue
        print(f"jvm: resolving {name}: {', '.join(packages)} ...", flush=True)
        status[name] = resolve_group(cfg, packages)
        print(f"jvm: {name}: {status[name]['status']} in {status[name]['seconds']} s"
              + (f" ({status[name]['error']})" if status[name]["status"] != "ok" else ""), flush=True)
        JVM_STATUS_FILE.parent.mkdir(parents=True, exist_ok=True)
        JVM_STATUS_FILE.write_text(json.dumps(status, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
