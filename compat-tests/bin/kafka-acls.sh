#!/usr/bin/env bash
DIR="$(cd "$(dirname "$0")" && pwd)"
exec "${JAVA:-java}" ${KAFKA_HEAP_OPTS:--Xmx512M} -Dlog4j2.configurationFile="$DIR/../harness/log4j2.properties" -cp "$DIR/../.jars/*" org.apache.kafka.tools.AclCommand "$@"
