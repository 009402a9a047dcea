#!/usr/bin/env bash
# gregor vs Apache Kafka 4.1.1 benchmark. Usage: compat-tests/bench/run.sh [--quick] [--rounds N]
#   [--only a-tls,c-tls] [--out DIR] (see README.md)
# Installs what it needs (Kafka jars via ../install.sh, the franz-go load generator, a venv with
# matplotlib), then runs bench.py, which writes results/RESULTS.md and results/chart.png.
# Exits non-zero if a broker fails to start or any workload errors.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
cd "$HERE"

# 1. Kafka 4.1.1 jars (broker, clients, tools) into compat-tests/.jars
bash ../install.sh

# 2. gregor release binary (built only if missing: others may be editing src/; set GREGOR_BIN to
#    benchmark another binary)
if [ -z "${GREGOR_BIN:-}" ] && [ ! -x "$REPO/target/release/gregor" ]; then
  (cd "$REPO" && cargo build --release)
fi

# 3. franz-go load generator
mkdir -p .work
(cd loadgen && go build -o ../.work/loadgen .)

# 4. Python venv with matplotlib for the chart
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
if [ ! -f .venv/.requirements.stamp ] || ! cmp -s requirements.txt .venv/.requirements.stamp; then
  .venv/bin/pip install -q --disable-pip-version-check -r requirements.txt
  cp requirements.txt .venv/.requirements.stamp
fi

exec .venv/bin/python bench.py "$@"
