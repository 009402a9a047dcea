#!/usr/bin/env bash
# Run the Kafka compatibility suite against gregor (default) or, with
# GREGOR_COMPAT_TARGET=kafka, against Apache Kafka 4.1.1. Extra args go to pytest.
# Tests marked `groups` (consumer-group coordination) are skipped unless COMPAT_ALL=1.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
"$HERE/install.sh"
cd "$HERE/.."
MARK=(-m "not groups")
if [ "${COMPAT_ALL:-0}" = "1" ]; then MARK=(); fi
exec "$HERE/.venv/bin/python" -m pytest -q -rfE "${MARK[@]}" "$HERE/tests" "$@"
