#!/usr/bin/env bash
# Builds versitygw (Apache-2.0), the stack's second S3 server, from the Go module proxy into the
# same cache as build-k8s.sh, keyed by version, so later runs on this machine reuse it.
set -euo pipefail
VERSITYGW_VERSION="${VERSITYGW_VERSION:-v1.8.0}"
CACHE="${VAULTKEEPER_CACHE:-$HOME/.cache/vaultkeeper}"
BIN="$CACHE/bin"
mkdir -p "$BIN"
if [ ! -x "$BIN/versitygw-$VERSITYGW_VERSION" ]; then
  start=$(date +%s)
  GOBIN="$CACHE/build/versitygw-$VERSITYGW_VERSION" go install -trimpath -ldflags='-s -w' \
    "github.com/versity/versitygw/cmd/versitygw@$VERSITYGW_VERSION"
  mv "$CACHE/build/versitygw-$VERSITYGW_VERSION/versitygw" "$BIN/versitygw-$VERSITYGW_VERSION"
  echo "versitygw $VERSITYGW_VERSION built in $(( $(date +%s) - start ))s"
fi
ln -sf "versitygw-$VERSITYGW_VERSION" "$BIN/versitygw"
echo "versitygw ready in $BIN"
