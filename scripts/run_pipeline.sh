#!/usr/bin/env bash
# The README's main command: the whole pipeline through Airflow on the embedded local stack.
#   scripts/run_pipeline.sh [RUN_DATE]     (default: today, UTC; KEEP_STACK=1 leaves the stack up;
#                                           STORAGE=s3 puts the lake in the stack's S3 bucket instead of a folder)
# Starts a real OpenSSH server (the "master node"), a real SMTP server and Airflow's services, ingests a demo
# lake, runs dag_new_data then dag_app for the date through the scheduler, prints where everything is.
set -euo pipefail
cd "$(dirname "$0")/.."
export JAVA_HOME=${JAVA_HOME:-$(dirname "$(dirname "$(readlink -f "$(command -v java)")")")}
export SPARK_LOCAL_IP=127.0.0.1
RUN_DATE=${1:-$(date -u +%F)}
exec .venv/bin/python -m loanpipe.dev.stack run --date "$RUN_DATE" --storage "${STORAGE:-local}" ${KEEP_STACK:+--keep}
