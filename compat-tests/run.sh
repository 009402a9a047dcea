#!/usr/bin/env bash
# Run the Kafka compatibility suite against gregor (default) or, with
# GREGOR_COMPAT_TARGET=kafka, against Apache Kafka 4.1.1. Extra args go to pytest.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
"$HERE/install.sh"
cd "$HERE/.."
exec "$HERE/.venv/bin/python" -m pytest -q -rfE "$HERE/tests" "$@"
