"""Group consumers (subscribe) from librdkafka (confluent-kafka) and kafka-python: consume part
of a 2-partition topic, commit offsets with metadata strings synchronously, close; restart the
broker (SIGTERM + start); a new consumer in the same group resumes exactly at the committed
offsets (first record seen = committed offset, then every record to the end, nothing skipped).
Committed offsets and their metadata come back exactly through committed(), before and after
the restart.
"""

import time

import pytest
from confluent_kafka import KafkaError, TopicPartition

from harness import clients as C
from harness.groups import ck_group_consumer

PER_PARTITION = 60
# committed offset and metadata per partition
CUT = {0: 17, 1: 41}
META = {0: "ckpt p0 ✓ {\"gen\": 3}", 1: ""}


def produce(bootstrap, topic):
    recs = [C.Rec(f"k{p}-{i}".encode(), f"v{p}-{i}".encode(), (), p)
            for i in range(PER_PARTITION) for p in (0, 1)]
    acked = C.ck_produce(bootstrap, topic, recs)
    for r in acked:
        assert r.offset == int(r.value.decode().split("-")[1]), r
    return {(r.partition, r.offset): r.value for r in acked}


# ---- confluent-kafka ----------------------------------------------------------------------
def ck_consume_until(c, want, timeout=60.0):
    """Poll a subscribed consumer until, per partition, the offsets in want[p] (a range) were
    all seen. Returns {partition: [offsets in the order seen]} (records past the range too)."""
    seen = {p: [] for p in want}
    deadline = time.monotonic() + timeout
    while not all(set(want[p]) <= {o for o, _ in seen[p]} for p in want):
        assert time.monotonic() < deadline, f"consumed {seen} in {timeout}s, want {want}"
        for m in c.consume(num_messages=100, timeout=0.5):
            if m.error():
                if m.error().code() == KafkaError._PARTITION_EOF:
                    continue
                raise AssertionError(str(m.error()))
            seen.setdefault(m.partition(), []).append((m.offset(), m.value()))
    return seen


def ck_committed(bootstrap, group, topic):
    c = ck_group_consumer(bootstrap, group)
    try:
        tps = c.committed([TopicPartition(topic, p) for p in (0, 1)], timeout=30)
        return {tp.partition: (tp.offset, tp.metadata or "") for tp in tps}
    finally:
        c.close()


def kp_committed(bootstrap, group, topic):
    from kafka import TopicPartition as KTP

    c = C.kp_consumer(bootstrap, group_id=group)
    try:
        out = {}
        for p in (0, 1):
            om = c.committed(KTP(topic, p), metadata=True)
            out[p] = (om.offset, om.metadata)
        return out
    finally:
        c.close()


def ck_first_session(bootstrap, topic, group):
    c = ck_group_consumer(bootstrap, group)
    try:
        c.subscribe([topic])
        seen = ck_consume_until(c, {p: range(CUT[p]) for p in CUT})
        for p in CUT:
            offs = [o for o, _ in seen[p]]
            assert offs[:CUT[p]] == list(range(CUT[p])), f"partition {p}: {offs}"
        c.commit(offsets=[TopicPartition(topic, p, CUT[p], metadata=META[p]) for p in CUT],
                 asynchronous=False)
        tps = c.committed([TopicPartition(topic, p) for p in CUT], timeout=30)
        assert {tp.partition: (tp.offset, tp.metadata or "") for tp in tps} == {
            p: (CUT[p], META[p]) for p in CUT}
    finally:
        c.close()


def ck_second_session(bootstrap, topic, group):
    c = ck_group_consumer(bootstrap, group)
    try:
        c.subscribe([topic])
        return ck_consume_until(c, {p: range(CUT[p], PER_PARTITION) for p in CUT})
    finally:
        c.close()


# ---- kafka-python -------------------------------------------------------------------------
def kp_group_consumer(bootstrap, group):
    return C.kp_consumer(bootstrap, group_id=group, session_timeout_ms=6000,
                         heartbeat_interval_ms=1000, consumer_timeout_ms=60000)


def kp_consume_until(c, want, timeout=60.0):
    seen = {p: [] for p in want}
    deadline = time.monotonic() + timeout
    while not all(set(want[p]) <= {o for o, _ in seen[p]} for p in want):
        assert time.monotonic() < deadline, f"consumed {seen} in {timeout}s, want {want}"
        for tp, recs in c.poll(timeout_ms=500).items():
            for m in recs:
                seen.setdefault(m.partition, []).append((m.offset, m.value))
    return seen


def kp_first_session(bootstrap, topic, group):
    from kafka import TopicPartition as KTP
    from kafka.structs import OffsetAndMetadata

    c = kp_group_consumer(bootstrap, group)
    try:
        c.subscribe([topic])
        seen = kp_consume_until(c, {p: range(CUT[p]) for p in CUT})
        for p in CUT:
            offs = [o for o, _ in seen[p]]
            assert offs[:CUT[p]] == list(range(CUT[p])), f"partition {p}: {offs}"
        c.commit({KTP(topic, p): OffsetAndMetadata(CUT[p], META[p], -1) for p in CUT})
        for p in CUT:
            om = c.committed(KTP(topic, p), metadata=True)
            assert (om.offset, om.metadata) == (CUT[p], META[p])
    finally:
        c.close(autocommit=False)


def kp_second_session(bootstrap, topic, group):
    c = kp_group_consumer(bootstrap, group)
    try:
        c.subscribe([topic])
        return kp_consume_until(c, {p: range(CUT[p], PER_PARTITION) for p in CUT})
    finally:
        c.close(autocommit=False)


CLIENTS = {
    "confluent": (ck_first_session, ck_second_session),
    "kafka-python": (kp_first_session, kp_second_session),
}


@pytest.mark.parametrize("client", list(CLIENTS))
def test_resume_from_committed_after_broker_restart(broker, topic, client):
    first, second = CLIENTS[client]
    t = topic(2)
    values = produce(broker.bootstrap, t)
    group = C.unique_name(f"py-{client}")

    first(broker.bootstrap, t, group)

    def check_committed():
        want = {p: (CUT[p], META[p]) for p in CUT}
        if client == "confluent":
            assert ck_committed(broker.bootstrap, group, t) == want
            # confluent-kafka 2.16 sends the metadata string with its C NUL terminator (and
            # reads it back as a C string); the broker keeps the bytes verbatim, which
            # kafka-python shows
            want = {p: (CUT[p], META[p] + "\x00") for p in CUT}
        # (confluent-kafka cannot read back metadata without a NUL terminator: it reads past
        # the end of the string, librdkafka#4649; so kafka-python's commits are read by it)
        assert kp_committed(broker.bootstrap, group, t) == want

    check_committed()
    broker.stop()
    broker.restart()
    check_committed()  # offsets and metadata survived the restart

    seen = second(broker.bootstrap, t, group)
    for p in CUT:
        # the first record is the committed offset; then every record, in order, to the end
        assert [o for o, _ in seen[p]] == list(range(CUT[p], PER_PARTITION)), \
            f"partition {p}: {[o for o, _ in seen[p]]}"
        assert [v for _, v in seen[p]] == [values[(p, o)] for o in range(CUT[p], PER_PARTITION)]
