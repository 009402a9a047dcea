"""The Java producer with its defaults (enable.idempotence=true, acks=all: InitProducerId and
idempotent Produce) via kafka-verifiable-producer.sh, to a 3-partition topic.

Every acked value must be read back exactly once at the partition/offset its ack reported, with
no other record in the log. The group-based read (kafka-verifiable-consumer.sh: FindCoordinator,
JoinGroup, SyncGroup, Heartbeat, OffsetCommit, LeaveGroup) is marked `groups`.
"""

import json
import os
from collections import Counter

import pytest

from harness import clients as C
from harness.java import kafka_script

N = int(os.environ.get("COMPAT_VERIFIABLE_RECORDS", "10000"))
PARTITIONS = 3


def events(stdout, name=None):
    out = []
    for line in stdout.splitlines():
        line = line.strip()
        if not line.startswith("{"):
            continue
        ev = json.loads(line)
        if name is None or ev.get("name") == name:
            out.append(ev)
    return out


def verifiable_produce(bootstrap, topic, n):
    r = kafka_script("kafka-verifiable-producer.sh", "--bootstrap-server", bootstrap,
                     "--topic", topic, "--max-messages", n, "--repeating-keys", 7, timeout=180)
    r.check()
    evs = events(r.stdout)
    errors = [e for e in evs if e["name"] == "producer_send_error"]
    assert not errors, f"{len(errors)} send errors, first: {errors[:3]}"
    acked = [e for e in evs if e["name"] == "producer_send_success"]
    tool = [e for e in evs if e["name"] == "tool_data"]
    assert tool and tool[-1]["sent"] == n and tool[-1]["acked"] == n, tool
    assert len(acked) == n
    assert sorted(int(e["value"]) for e in acked) == list(range(n))
    assert all(e["topic"] == topic for e in acked)
    # (partition, offset) -> (key, value)
    by_pos = {}
    for e in acked:
        pos = (e["partition"], e["offset"])
        assert pos not in by_pos, f"two acks for {pos}: {by_pos[pos]} and {e}"
        by_pos[pos] = (e["key"], e["value"])
    per_part = Counter(p for p, _ in by_pos)
    assert set(per_part) == set(range(PARTITIONS)), f"not every partition got records: {per_part}"
    for p, cnt in per_part.items():
        # one idempotent producer, fresh topic: acked offsets are dense from 0
        assert sorted(o for q, o in by_pos if q == p) == list(range(cnt)), f"partition {p}"
    return by_pos, per_part


def test_verifiable_producer_read_back_by_offset(broker, topic):
    t = topic(PARTITIONS)
    by_pos, per_part = verifiable_produce(broker.bootstrap, t, N)
    consumed = {}
    for p in range(PARTITIONS):
        lo, hi = C.watermarks(broker.bootstrap, t, p)
        assert (lo, hi) == (0, per_part[p]), f"partition {p} watermarks"
        for r in C.ck_read(broker.bootstrap, t, p, 0, end=hi, timeout=60):
            assert (r.partition, r.offset) not in consumed
            consumed[(r.partition, r.offset)] = (r.key.decode(), r.value.decode())
    assert consumed == by_pos


def test_verifiable_consumer_group_reads_every_ack_once(broker, topic):
    t = topic(PARTITIONS)
    by_pos, per_part = verifiable_produce(broker.bootstrap, t, N)
    r = kafka_script("kafka-verifiable-consumer.sh", "--bootstrap-server", broker.bootstrap,
                     "--topic", t, "--group-id", C.unique_name("g"), "--reset-policy", "earliest",
                     "--max-messages", N, "--verbose", timeout=180)
    r.check()
    evs = events(r.stdout)
    diag = f"stdout tail:\n{r.stdout[-2000:]}\nstderr tail:\n{r.stderr[-3000:]}"
    assigned = [e for e in evs if e["name"] == "partitions_assigned"]
    assert assigned, f"no partitions_assigned event\n{diag}"
    assert sorted(p["partition"] for p in assigned[0]["partitions"]) == [0, 1, 2], diag
    consumed = Counter()
    values = {}
    for e in evs:
        if e["name"] == "record_data":
            pos = (e["partition"], e["offset"])
            consumed[pos] += 1
            values[pos] = (e["key"], e["value"])
    dups = [pos for pos, c in consumed.items() if c > 1]
    assert not dups, f"consumed twice: {dups[:10]}"
    assert len(values) == len(by_pos), f"consumed {len(values)} of {len(by_pos)}\n{diag}"
    assert values == by_pos
    commits = [e for e in evs if e["name"] == "offsets_committed"]
    assert commits and all(c["success"] for c in commits), commits
    last = {(o["partition"]): o["offset"] for c in commits for o in c["offsets"]}
    assert last == {p: per_part[p] for p in range(PARTITIONS)}
