"""Helpers for the topic/config administration tests (test_admin_*.py): running Kafka's
admin tools and parsing what they print."""

import re
from pathlib import Path

from .broker import Broker
from .java import kafka_script

# Broker settings the admin tests give both targets explicitly, so that the sources Kafka
# reports for them (STATIC_BROKER_CONFIG) are expected from gregor too. min.insync.replicas and
# default.replication.factor are also in the Kafka-only base config; num.partitions=2 makes
# "--create without --partitions" distinguishable from 1.
ADMIN_BROKER_CONFIG = {
    "num.partitions": "2",
    "min.insync.replicas": "1",
    "default.replication.factor": "1",
}

TOPIC_ID = re.compile(r"^[A-Za-z0-9_-]{22}$")


def start_admin_broker(workdir, **extra):
    cfg = dict(ADMIN_BROKER_CONFIG)
    cfg.update(extra)
    b = Broker(Path(workdir), overrides=cfg)
    b.start()
    return b


def tool(script, bootstrap, *args, timeout=90):
    """Run compat-tests/bin/<script> --bootstrap-server <bootstrap> args... -> ToolResult."""
    return kafka_script(script, "--bootstrap-server", bootstrap, *args, timeout=timeout)


def _fields(line):
    """'Topic: a\tPartition: 0\tElr: ' -> {'Topic': 'a', 'Partition': '0', 'Elr': ''}"""
    out = {}
    for f in line.strip("\t").split("\t"):
        k, sep, v = f.partition(":")
        assert sep, f"unparseable field {f!r} in {line!r}"
        out[k] = v[1:] if v.startswith(" ") else v
    return out


def parse_topics_describe(stdout):
    """kafka-topics.sh --describe -> {topic: {'fields': {...}, 'configs': {k: v},
    'partitions': {p: {...}}}} (every line must parse)."""
    topics = {}
    cur = None
    for line in stdout.splitlines():
        if not line.strip():
            continue
        if line.startswith("Topic:"):
            f = _fields(line)
            cfg = f.pop("Configs")
            configs = dict(kv.split("=", 1) for kv in cfg.split(",")) if cfg else {}
            cur = topics[f["Topic"]] = {"fields": f, "configs": configs, "partitions": {}}
        elif line.startswith("\tTopic:"):
            f = _fields(line)
            assert cur is not None and f.pop("Topic") == cur["fields"]["Topic"], line
            cur["partitions"][int(f.pop("Partition"))] = f
        else:
            raise AssertionError(f"unexpected line {line!r} in:\n{stdout}")
    return topics


CONFIG_LINE = re.compile(r"^  (\S+?)=(.*) sensitive=(true|false) synonyms=\{(.*)\}$")


def parse_configs_describe(stdout):
    """kafka-configs.sh --describe -> [(header, {key: (value, sensitive, synonyms-text)})]."""
    sections = []
    for line in stdout.splitlines():
        if not line.strip():
            continue
        m = CONFIG_LINE.match(line)
        if m:
            assert sections, f"config line before a header: {line!r}"
            sections[-1][1][m.group(1)] = (m.group(2), m.group(3), m.group(4))
        else:
            assert not line.startswith(" "), f"unparseable config line {line!r}"
            sections.append((line, {}))
    return sections


class Mismatches:
    """Compare several independent results and report every difference at the end, so one
    failing check does not hide the others."""

    def __init__(self):
        self.items = []

    def eq(self, what, got, want):
        if got == want:
            return True
        if isinstance(got, list) and isinstance(want, list):
            import difflib
            diff = "\n".join(difflib.unified_diff([str(x) for x in want], [str(x) for x in got],
                                                  "expected (Kafka 4.1.1)", "actual", lineterm="",
                                                  n=0))
            self.items.append(f"{what}:\n{diff}")
        else:
            self.items.append(f"{what}:\n  expected: {want!r}\n  actual:   {got!r}")
        return False

    def check(self):
        assert not self.items, (f"{len(self.items)} mismatch(es):\n\n" + "\n\n".join(self.items))
