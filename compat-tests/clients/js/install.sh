#!/usr/bin/env bash
# Idempotent setup for tests/test_clients_kafkajs.py and tests/test_clients_kcat.py:
# kafkajs 2.2.4 from npm (exactly as pinned in package-lock.json) and Debian's kcat. Node.js/npm
# and kcat are apt-get installed when missing and this runs as root; otherwise a missing client
# fails the installation (and so the suite): these tests are part of it.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
cd "$HERE"

apt_install() {
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    ( apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" ) >/dev/null 2>&1
  else
    return 1
  fi
}

if ! command -v npm >/dev/null 2>&1 && ! apt_install nodejs npm; then
  echo "clients/js/install.sh: npm not found and cannot apt-get install nodejs npm (needed for test_clients_kafkajs.py)" >&2
  exit 1
fi
# kafkajs: `npm ci` when node_modules does not match the lock (the stamp is a copy of the lock
# that was last installed).
if [ ! -f node_modules/kafkajs/package.json ] || ! cmp -s package-lock.json node_modules/.gregor-lock.stamp; then
  npm ci --no-audit --no-fund --loglevel=error >/dev/null
  cp package-lock.json node_modules/.gregor-lock.stamp
fi

# kcat (Debian package, librdkafka 2.0.2 on Debian 12): an older librdkafka generation.
if ! command -v kcat >/dev/null 2>&1 && ! apt_install kcat; then
  echo "clients/js/install.sh: kcat not found and cannot apt-get install it (needed for test_clients_kcat.py)" >&2
  exit 1
fi
