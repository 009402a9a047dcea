"""ListOffsets: earliest, latest and by-timestamp lookups from three clients.

Partition 0 gets 8 records with explicit CreateTimes (relative to BASE, an hour ago so no
retention check can touch them) — one out of order and two equal:

    offset    0     1     2     3     4     5     6     7
    ts-BASE   1000  2000  3000  2500  4000  5000  5000  6000

Kafka's answer for a timestamp T is the FIRST offset whose timestamp is >= T (so T=2500 gives
offset 2, not 3), or "none" (-1 / None / empty) when no record qualifies. Partition 1 stays
empty. The first four records are sent as separate batches, the last four as one batch.
"""

import time

import pytest
from confluent_kafka import TopicPartition

from harness import clients as C
from harness.java import kafka_script

REL = [1000, 2000, 3000, 2500, 4000, 5000, 5000, 6000]
BASE = (int(time.time() * 1000) // 1000) * 1000 - 3_600_000
# relative query timestamp -> expected offset (None: no such record)
QUERIES = {
    0: 0,  # before all
    500: 0,
    1000: 0,  # equal to the first
    2000: 1,  # equal to one
    2200: 2,  # between two
    2500: 2,  # equals offset 3's timestamp, but offset 2 (3000) comes first
    3000: 2,
    3001: 4,
    4500: 5,
    5000: 5,  # two records with 5000: the first
    5999: 7,
    6000: 7,  # equal to the last
    6001: None,  # after all
}


@pytest.fixture(scope="module")
def ts_topic(module_broker):
    b = module_broker.bootstrap
    t = C.create_topic(b, C.unique_name("lo"), 2)
    recs = [C.Rec(f"k{i}".encode(), f"v{i}".encode(), (), 0, None, BASE + rel)
            for i, rel in enumerate(REL)]
    out = []
    for r in recs[:4]:  # one batch each
        out += C.ck_produce(b, t, [r], conf={"acks": "all"})
    out += C.ck_produce(b, t, recs[4:], conf={"acks": "all", "linger.ms": 200})
    assert [(r.partition, r.offset, r.timestamp) for r in out] == \
        [(0, i, BASE + rel) for i, rel in enumerate(REL)]
    return t


def test_earliest_latest_confluent(module_broker, ts_topic):
    assert C.watermarks(module_broker.bootstrap, ts_topic, 0) == (0, len(REL))
    assert C.watermarks(module_broker.bootstrap, ts_topic, 1) == (0, 0)


def test_earliest_latest_kafka_python(module_broker, ts_topic):
    from kafka import TopicPartition as KTP

    c = C.kp_consumer(module_broker.bootstrap)
    try:
        tps = [KTP(ts_topic, 0), KTP(ts_topic, 1)]
        assert c.beginning_offsets(tps) == {tps[0]: 0, tps[1]: 0}
        assert c.end_offsets(tps) == {tps[0]: len(REL), tps[1]: 0}
    finally:
        c.close()


def test_offsets_for_times_confluent(module_broker, ts_topic):
    c = C.ck_consumer(module_broker.bootstrap)
    try:
        got = {}
        for rel in QUERIES:
            res = c.offsets_for_times([TopicPartition(ts_topic, 0, BASE + rel),
                                       TopicPartition(ts_topic, 1, BASE + rel)], timeout=10)
            assert [r.error for r in res] == [None, None]
            got[rel] = res[0].offset
            assert res[1].offset == -1, f"empty partition, ts {rel}: {res[1]}"
        assert got == {rel: (-1 if o is None else o) for rel, o in QUERIES.items()}
        # the special timestamps: -2 earliest, -1 latest
        res = c.offsets_for_times([TopicPartition(ts_topic, 0, -2), TopicPartition(ts_topic, 1, -2)],
                                  timeout=10)
        assert [r.offset for r in res] == [0, 0]
        res = c.offsets_for_times([TopicPartition(ts_topic, 0, -1), TopicPartition(ts_topic, 1, -1)],
                                  timeout=10)
        assert [r.offset for r in res] == [len(REL), 0]
    finally:
        c.close()


def test_offsets_for_times_kafka_python(module_broker, ts_topic):
    from kafka import TopicPartition as KTP

    c = C.kp_consumer(module_broker.bootstrap)
    try:
        tp0, tp1 = KTP(ts_topic, 0), KTP(ts_topic, 1)
        for rel, off in QUERIES.items():
            res = c.offsets_for_times({tp0: BASE + rel, tp1: BASE + rel})
            assert res[tp1] is None, f"empty partition, ts {rel}: {res[tp1]}"
            if off is None:
                assert res[tp0] is None, f"ts {rel}: {res[tp0]}"
            else:
                # the broker also returns the found record's own timestamp
                assert (res[tp0].offset, res[tp0].timestamp) == (off, BASE + REL[off]), f"ts {rel}"
    finally:
        c.close()


def get_offsets(bootstrap, topic, time_arg):
    r = kafka_script("kafka-get-offsets.sh", "--bootstrap-server", bootstrap, "--topic", topic,
                     "--time", time_arg, timeout=60)
    r.check()
    return r.stdout.splitlines()


def test_get_offset_shell(module_broker, ts_topic):
    b, t = module_broker.bootstrap, ts_topic
    assert get_offsets(b, t, -1) == [f"{t}:0:{len(REL)}", f"{t}:1:0"]
    assert get_offsets(b, t, "latest") == [f"{t}:0:{len(REL)}", f"{t}:1:0"]
    assert get_offsets(b, t, -2) == [f"{t}:0:0", f"{t}:1:0"]
    assert get_offsets(b, t, "earliest") == [f"{t}:0:0", f"{t}:1:0"]
    for rel in (500, 2500, 5000, 6000):
        # partitions with no record at/after the timestamp are not printed
        assert get_offsets(b, t, BASE + rel) == [f"{t}:0:{QUERIES[rel]}"], f"ts {rel}"
    assert get_offsets(b, t, BASE + 6001) == [], "after all"


def test_get_offset_shell_max_timestamp(module_broker, ts_topic):
    """--time -3 (max-timestamp, ListOffsets v7+): offset of the record with the largest
    timestamp."""
    b, t = module_broker.bootstrap, ts_topic
    assert get_offsets(b, t, -3) == [f"{t}:0:7"]
