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

# Prometheus + promtool for tests/test_monitoring.py (Debian package; optional: the test skips if
# the binary cannot be installed). Only installs the binaries: a temporary policy-rc.d stops the
# package from starting its daemon, and nothing here ever runs it.
if ! command -v prometheus >/dev/null 2>&1 || ! command -v promtool >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    policy_rc=/usr/sbin/policy-rc.d
    added_policy=
    if [ ! -e "$policy_rc" ]; then
      printf '#!/bin/sh\nexit 101\n' > "$policy_rc" && chmod +x "$policy_rc" && added_policy=1
    fi
    ( apt-get update -qq \
      && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus ) \
      >/dev/null 2>&1 || echo "install.sh: could not install prometheus (test_monitoring will skip its Prometheus test)" >&2
    if [ -n "$added_policy" ]; then rm -f "$policy_rc"; fi
  else
    echo "install.sh: prometheus not found and cannot apt-get install it (not root or no apt-get)" >&2
  fi
fi

# docker-compose (Debian package) validates docker/compose.yml without a Docker engine.
if ! command -v docker-compose >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    ( apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker-compose ) \
      >/dev/null 2>&1 || echo "install.sh: could not install docker-compose" >&2
  else
    echo "install.sh: docker-compose not found and cannot apt-get install it" >&2
  fi
fi
"$HERE/clients/js/install.sh"  # kafkajs (npm ci) and kcat (apt) for test_clients_kafkajs/kcat.py
"$HERE/clients/go/install.sh"  # sarama, kafka-go, confluent-kafka-go (Go module proxy) for test_clients_go.py
"$HERE/clients/franz/install.sh"  # franz-go (Go module proxy) for test_clients_franz.py
