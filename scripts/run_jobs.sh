#!/usr/bin/env bash
# The jobs without Airflow (local Spark): ingest, data_gen, app for a date, with a short summary.
# Usage: scripts/run_jobs.sh [RUN_DATE]   (default: today, UTC)
set -euo pipefail
cd "$(dirname "$0")/.."
export JAVA_HOME=${JAVA_HOME:-$(dirname "$(dirname "$(readlink -f "$(command -v java)")")")}
export SPARK_LOCAL_IP=127.0.0.1
PY=.venv/bin/python
RUN_DATE=${1:-$(date -u +%F)}
LOGS=var/logs
mkdir -p "$LOGS"
step() {  # step NAME CMD...: run quietly, keep the log, show the JSON summary's key lines
  local name=$1; shift
  echo "== $name"
  if ! "$@" > "$LOGS/$name.json" 2> "$LOGS/$name.log"; then
    tail -5 "$LOGS/$name.log"; echo "$name failed; full log: $LOGS/$name.log" >&2; exit 1
  fi
}
step ingest   $PY -m loanpipe.jobs.ingest
step data_gen $PY data_gen/data_gen.py --run-date "$RUN_DATE"
step app      $PY spark/app.py --run-date "$RUN_DATE"
$PY - "$LOGS/app.json" "$LOGS/data_gen.json" <<'PYEOF'
import json, sys
run, batch = (json.load(open(p)) for p in sys.argv[1:3])
ev, ch = run["evaluation"], run["challenger"]
print(f"""
run {run['run_date']}: {run['status']} {'; '.join(run['alerts'])}
  batch      {batch['rows']} rows, default rate {batch['default_rate']:.3f}  ({batch['output_path']})
  champion   {run['champion']['version']} ({run['engine']} engine), features: {', '.join(run['champion']['features'])}
  AUC        {ev['roc_auc']:.4f} (oracle {ev['oracle_auc'] or float('nan'):.4f}), PR AUC {ev['pr_auc']:.4f}, KS {ev['ks']:.3f}, Brier {ev['brier']:.4f}
  challenger {ch['version']}: {ch['reason']}
  scores     {run['scores']['path']}
  artifacts  {run['artifacts']['metrics'].rsplit('/', 1)[0]}/
  time       {run['seconds']['total']} s ({', '.join(f'{k} {v}' for k, v in run['seconds'].items() if k != 'total')})""")
PYEOF
