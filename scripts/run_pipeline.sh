#!/usr/bin/env bash
# The README's main command: the pipeline end to end on the embedded local defaults.
# Usage: scripts/run_pipeline.sh [RUN_DATE]   (default: today, UTC)
set -euo pipefail
cd "$(dirname "$0")/.."
export JAVA_HOME=${JAVA_HOME:-$(dirname "$(dirname "$(readlink -f "$(command -v java)")")")}
export SPARK_LOCAL_IP=127.0.0.1
PY=.venv/bin/python
RUN_DATE=${1:-$(date -u +%F)}
echo "== ingest the demo lake (skipped when it is already there)"
$PY -m loanpipe.ingest
echo "== done for $RUN_DATE: lake under $($PY -c 'from loanpipe.config import load_config; from loanpipe.storage import open_lake; print(open_lake(load_config().storage).root)')"
