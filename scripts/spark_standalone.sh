#!/usr/bin/env bash
# Start/stop a Spark standalone master + its workers on loopback, from the pip-installed PySpark.
#   scripts/spark_standalone.sh start|stop|status      (master: spark://127.0.0.1:${SPARK_MASTER_PORT:-7077})
# SPARK_WORKER_INSTANCES workers (default 1) of SPARK_WORKER_CORES cores each (default 2): 2 x 1 is the
# YARN-shaped run (one executor per worker, as on a cluster's nodes).
# The pip package has spark-daemon.sh but not start-master.sh/start-worker.sh, hence the daemon calls.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export SPARK_HOME=$(.venv/bin/python -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))')
export JAVA_HOME=${JAVA_HOME:-$(dirname "$(dirname "$(readlink -f "$(command -v java)")")")}
export SPARK_LOCAL_IP=127.0.0.1
export PYSPARK_PYTHON=$ROOT/.venv/bin/python
STATE=${SPARK_STANDALONE_DIR:-$ROOT/var/spark-standalone}
export SPARK_LOG_DIR=$STATE/logs SPARK_PID_DIR=$STATE/pids SPARK_WORKER_DIR=$STATE/work
PORT=${SPARK_MASTER_PORT:-7077}
UI_PORT=${SPARK_MASTER_UI_PORT:-8080}
WORKER_UI_PORT=${SPARK_WORKER_UI_PORT:-8081}
CORES=${SPARK_WORKER_CORES:-2}
WORKERS=${SPARK_WORKER_INSTANCES:-1}
MEMORY=${SPARK_WORKER_MEMORY:-8g}
DAEMON=$SPARK_HOME/sbin/spark-daemon.sh
MASTER_URL=spark://127.0.0.1:$PORT

wait_port() {
  for _ in $(seq 1 60); do
    (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0
    sleep 0.5
  done
  echo "spark-standalone: port $1 did not open; see $SPARK_LOG_DIR" >&2; return 1
}

case "${1:-}" in
  start)
    mkdir -p "$SPARK_LOG_DIR" "$SPARK_PID_DIR" "$SPARK_WORKER_DIR"
    chmod +x "$SPARK_HOME"/sbin/*.sh "$SPARK_HOME"/bin/* 2>/dev/null || true
    "$DAEMON" start org.apache.spark.deploy.master.Master 1 --host 127.0.0.1 --port "$PORT" --webui-port "$UI_PORT" >/dev/null
    wait_port "$PORT"
    for i in $(seq 1 "$WORKERS"); do
      ui=$((WORKER_UI_PORT + i - 1))
      "$DAEMON" start org.apache.spark.deploy.worker.Worker "$i" --host 127.0.0.1 --cores "$CORES" --memory "$MEMORY" \
        --webui-port "$ui" --work-dir "$SPARK_WORKER_DIR/worker-$i" "$MASTER_URL" >/dev/null
      wait_port "$ui"
    done
    echo "$MASTER_URL"
    ;;
  stop)
    for i in $(seq 1 "$WORKERS"); do "$DAEMON" stop org.apache.spark.deploy.worker.Worker "$i" >/dev/null || true; done
    "$DAEMON" stop org.apache.spark.deploy.master.Master 1 >/dev/null || true
    ;;
  status)
    "$DAEMON" status org.apache.spark.deploy.master.Master 1 || true
    for i in $(seq 1 "$WORKERS"); do "$DAEMON" status org.apache.spark.deploy.worker.Worker "$i" || true; done
    ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
