#!/usr/bin/env bash
# Idempotent setup for the compatibility suite: Python venv + Kafka jars.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
cd "$HERE"

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
# pip is quick when everything is already satisfied; the stamp avoids even that.
if [ ! -f .venv/.requirements.stamp ] || ! cmp -s requirements.txt .venv/.requirements.stamp; then
  .venv/bin/pip install -q --disable-pip-version-check -r requirements.txt
  cp requirements.txt .venv/.requirements.stamp
fi

# Kafka 4.1.1 clients, tools and broker (plus the log4j2 slf4j binding) into .jars/
if [ ! -f .jars/kafka-tools-4.1.1.jar ] || [ ! -f .jars/kafka_2.13-4.1.1.jar ] \
   || [ ! -f .jars/kafka-clients-4.1.1.jar ] || [ ! -f .jars/log4j-slf4j-impl-2.24.3.jar ]; then
  mvn -q -B dependency:copy-dependencies -DoutputDirectory="$HERE/.jars"
fi
