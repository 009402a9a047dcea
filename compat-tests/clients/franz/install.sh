#!/usr/bin/env bash
# Idempotent setup for tests/test_clients_franz.py: builds compat-tests/.bin/franzcompat from this
# Go module (twmb/franz-go, pinned in go.mod/go.sum) from the Go module proxy. Skipped when the
# binary is newer than every source file; fails (and so does the suite) when Go is missing or the
# build fails.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
BIN="$HERE/../../.bin/franzcompat"
cd "$HERE"

if ! command -v go >/dev/null 2>&1; then
  echo "clients/franz/install.sh: go not found (needed for test_clients_franz.py: https://go.dev/dl)" >&2
  exit 1
fi
if [ -x "$BIN" ] && [ -z "$(find . -maxdepth 1 \( -name '*.go' -o -name go.mod -o -name go.sum \) -newer "$BIN")" ]; then
  exit 0
fi
mkdir -p "$(dirname "$BIN")"
# -mod=readonly: go.sum is committed; a build never rewrites it.
if ! go build -mod=readonly -o "$BIN.tmp" . ; then
  rm -f "$BIN.tmp"
  echo "clients/franz/install.sh: go build failed (needed for test_clients_franz.py)" >&2
  exit 1
fi
mv "$BIN.tmp" "$BIN"
