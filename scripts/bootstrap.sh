#!/usr/bin/env bash
# Idempotent set-up of what a command needs on a fresh Debian machine, and nothing more:
#   scripts/bootstrap.sh [fast|run|s3|all]
#     fast  a virtualenv with the pinned requirements and this package (editable): tests without Spark or services
#     run   + Java 17, OpenSSH (the local "master node"), Spark's JVM packages   (make run, make jobs, make ingest)
#     s3    + the local S3 server (MinIO, built once with Go) and the s3a JVM packages (make run-s3, make stack-up)
#     all   + Chromium for the screenshots (make test, make screens; what CI runs)
# Safe to run again: each step is skipped when its stamp says it is done for the same inputs.
set -euo pipefail
cd "$(dirname "$0")/.."
PROFILE=${1:-all}
case "$PROFILE" in fast|run|s3|all) ;; *) echo "bootstrap: profile must be fast, run, s3 or all (got $PROFILE)" >&2; exit 2;; esac
ROOT=$PWD
PY=${PYTHON:-python3.11}
VENV=$ROOT/.venv
STAMPS=$ROOT/.cache/stamps
mkdir -p "$STAMPS"
log() { printf '[bootstrap] %s\n' "$*"; }
wants() { case "$PROFILE:$1" in all:*|s3:run|s3:s3|run:run) return 0;; *) return 1;; esac; }

# 1. Debian packages ------------------------------------------------------------------------------------------
DEB_PACKAGES=(python3-venv procps make)
wants run && DEB_PACKAGES+=(openjdk-17-jre-headless openssh-server openssh-client)
# chromium + chromium-driver: the headless browser of scripts/take_screens.py (screens/ and its test)
[ "$PROFILE" = all ] && DEB_PACKAGES+=(chromium chromium-driver)
missing=()
for p in "${DEB_PACKAGES[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if ((${#missing[@]})); then
  if [ "$(id -u)" != 0 ] && ! command -v sudo >/dev/null; then
    log "missing Debian packages: ${missing[*]} (run as root or install them by hand)"; exit 1
  fi
  SUDO=$([ "$(id -u)" = 0 ] && echo "" || echo sudo)
  log "installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# 2. Python virtualenv ----------------------------------------------------------------------------------------
# uv (from PyPI, pinned) installs the pinned tree in parallel, several times faster than pip; if uv cannot be
# installed or fails, pip installs the same pins.
UV_VERSION=0.13.9
pip_install() {
  if "$VENV/bin/python" -m pip install -q "uv==$UV_VERSION" &&
     UV_NATIVE_TLS=1 "$VENV/bin/uv" pip install --python "$VENV/bin/python" -q "$@"; then
    return 0
  fi
  log "uv did not install $*; pip instead"
  "$VENV/bin/python" -m pip install -q "$@"
}

req_hash=$(cat requirements.txt requirements.lock pyproject.toml | sha256sum | cut -c1-16)
if [ ! -x "$VENV/bin/python" ]; then
  log "creating virtualenv $VENV"
  "$PY" -m venv "$VENV"
fi
if [ "$(cat "$STAMPS/pip" 2>/dev/null)" != "$req_hash" ]; then
  log "installing Python requirements (pinned, with uv)"
  {
    "$VENV/bin/python" -m pip install -q --upgrade pip &&
    pip_install -r requirements.txt -c requirements.lock &&
    pip_install --no-deps -e . &&
    "$VENV/bin/python" -m ipykernel install --sys-prefix --name loanpipe --display-name "Python (loanpipe)"
  } > .cache/pip.log 2>&1 || { tail -30 .cache/pip.log; log "pip install failed (full log: .cache/pip.log)"; exit 1; }
  echo "$req_hash" > "$STAMPS/pip"
fi

if ! wants run; then log "ready ($PROFILE) in ${SECONDS} s: $("$VENV/bin/python" --version)"; exit 0; fi

# 3. Spark's JVM packages (catboost-spark; hadoop-aws + AWS SDK for s3a), cached outside the clone --------------
export JAVA_HOME=${JAVA_HOME:-$(dirname "$(dirname "$(readlink -f "$(command -v java)")")")}
if wants s3; then "$VENV/bin/python" -m loanpipe.dev.jvm resolve; else "$VENV/bin/python" -m loanpipe.dev.jvm resolve --group catboost; fi

# 4. The local S3-compatible server for S3 mode (MinIO, built once with Go; see scripts/install_minio.sh) --------
if wants s3; then scripts/install_minio.sh > "$ROOT/.cache/minio-path"; fi
log "ready ($PROFILE) in ${SECONDS} s: $("$VENV/bin/python" --version), $("$VENV/bin/python" -c 'import pyspark; print("pyspark", pyspark.__version__)'), java $(java -version 2>&1 | head -1 | cut -d'"' -f2)"
