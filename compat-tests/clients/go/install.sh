#!/usr/bin/env bash
# Idempotent setup for tests/test_clients_go.py: builds compat-tests/.bin/gocompat from this Go
# module (IBM/sarama, segmentio/kafka-go and confluent-kafka-go, whose bundled static librdkafka
# needs cgo and a C compiler), with the versions pinned in go.mod/go.sum, from the Go module
# proxy. Skipped when the binary is newer than every source file. Fails (and so does the suite)
# when Go is missing or the build fails: the Go client tests are part of the suite.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
BIN="$HERE/../../.bin/gocompat"
cd "$HERE"

if ! command -v go >/dev/null 2>&1; then
  echo "clients/go/install.sh: go not found (needed for test_clients_go.py: https://go.dev/dl)" >&2
  exit 1
fi
if [ -x "$BIN" ] && [ -z "$(find . -maxdepth 1 \( -name '*.go' -o -name go.mod -o -name go.sum \) -newer "$BIN")" ]; then
  exit 0
fi
mkdir -p "$(dirname "$BIN")"
# -mod=readonly: go.sum is committed; a build never rewrites it.
if ! CGO_ENABLED=1 go build -mod=readonly -o "$BIN.tmp" . ; then
  rm -f "$BIN.tmp"
  echo "clients/go/install.sh: go build failed (needed for test_clients_go.py)" >&2
  exit 1
fi
mv "$BIN.tmp" "$BIN"
