"""Log compaction (cleanup.policy=compact), against gregor and Apache Kafka alike:

- 100,000 updates over 1,000 keys and tombstones for 100 of them: once the cleaner has run, the
  partition holds exactly one record per key, at the offset it was acknowledged at, with the
  latest value (null for the tombstoned keys), read identically by librdkafka and kafka-python;
  after delete.retention.ms and another cleaning the tombstoned keys are gone entirely;
- records without a key are refused on a compacted topic with INVALID_RECORD (librdkafka,
  kafka-python), and nothing is stored;
- kafka-configs.sh switches a topic from delete to compact at runtime and the cleaner takes it up;
- kill -9 while the (throttled) cleaner is rewriting a 12 MB log, three times: after every restart
  the partition reads end to end, offsets increase, every record is one that was written at that offset,
  every key's latest value is there, and the cleaning completes in the end.
"""

import random
import time

import pytest
from confluent_kafka import KafkaError

from harness import clients as C
from harness import logs as L
from harness.broker import is_kafka
from harness.java import kafka_script

KEYS = 1000
ROUNDS = 100
# segment.ms rolls the active segment once a later record arrives; the cleaner never touches the
# active segment, so a "sentinel" record produced after it lets everything before it be cleaned.
COMPACTED = {
    **L.SMALL_SEGMENTS,
    "cleanup.policy": "compact",
    "segment.ms": "1000",
    "min.cleanable.dirty.ratio": "0.01",
    "delete.retention.ms": "3000",
}


def key(k):
    return f"key-{k:04d}".encode()


def val(tag, r, k):
    return f"{tag}-{r:03d}-{k:04d}-".encode() + b"p" * 80


def produce(b, t, recs):
    return C.ck_produce(b.bootstrap, t, recs, conf={"acks": "all", "linger.ms": 10})


def sentinel(b, t, name):
    """Waits past segment.ms, then produces one record that rolls the segment."""
    time.sleep(1.2)
    return produce(b, t, [C.Rec(name.encode(), b"roll")])[0]


def latest(acked):
    """key -> the last acknowledged record for it."""
    out = {}
    for r in acked:
        out[r.key] = r
    return out


def view(recs):
    return [(r.offset, r.key, r.value) for r in recs]


def expect_exactly(b, t, want, timeout=120.0):
    """Waits until the partition holds exactly `want` (records sorted by offset), then checks that
    a second client reads the same."""
    want = sorted(want, key=lambda r: r.offset)
    L.wait_for(f"{t} compacted to {len(want)} records",
               lambda: view(L.ck_read_all(b.bootstrap, t)) == view(want), timeout=timeout)
    assert view(L.kp_read_all(b.bootstrap, t)) == view(want)


def test_compacted_topic_keeps_the_latest_value_per_key_and_drops_tombstones(broker_factory,
                                                                            topic):
    b = broker_factory(**L.FAST_LOG_MAINTENANCE)
    t = topic(broker=b, config=COMPACTED)
    updates = [C.Rec(key(k), val("v", r, k)) for r in range(ROUNDS) for k in range(KEYS)]
    acked = produce(b, t, updates)
    assert [r.offset for r in acked] == list(range(KEYS * ROUNDS))
    tombstones = produce(b, t, [C.Rec(key(k), None) for k in range(100)])
    s1 = sentinel(b, t, "sentinel-1")
    final = latest(acked + tombstones)
    assert len(final) == KEYS
    expect_exactly(b, t, list(final.values()) + [s1])
    compacted_at = time.monotonic()
    # The tombstones outlive delete.retention.ms (3 s) after that first cleaning; the next cleaning
    # removes them. Some new updates make the log dirty enough for one.
    time.sleep(max(0.0, 3.5 - (time.monotonic() - compacted_at)))
    more = produce(b, t, [C.Rec(key(k), val("w", 0, k)) for k in range(100, 200)])
    s2 = sentinel(b, t, "sentinel-2")
    final = latest(acked + tombstones + more)
    live = [r for r in final.values() if r.value is not None]
    assert len(live) == KEYS - 100
    expect_exactly(b, t, live + [s1, s2])


def test_records_without_a_key_are_refused_on_a_compacted_topic(broker, topic):
    t = topic(config={"cleanup.policy": "compact"})
    p = C.ck_producer(broker.bootstrap, acks="all")
    errors = []
    p.produce(t, value=b"no key", on_delivery=lambda err, msg: errors.append(err))
    assert p.flush(30) == 0
    assert len(errors) == 1 and errors[0] is not None, errors
    assert errors[0].code() == KafkaError.INVALID_RECORD, errors[0]

    from kafka.errors import InvalidRecordError

    with pytest.raises(InvalidRecordError):
        C.kp_produce(broker.bootstrap, t, [C.Rec(None, b"no key either")], retries=0)
    keyed = produce(broker, t, [C.Rec(b"k", b"with a key")])
    assert keyed[0].offset == 0, "the refused records took no offsets"
    assert view(L.ck_read_all(broker.bootstrap, t)) == view(keyed)


def test_kafka_configs_switches_a_topic_to_compact_at_runtime(broker_factory, topic):
    b = broker_factory(**L.FAST_LOG_MAINTENANCE)
    t = topic(broker=b, config={**COMPACTED, "cleanup.policy": "delete"})
    acked = produce(b, t, [C.Rec(key(k), val("v", r, k)) for r in range(100) for k in range(100)])
    s1 = sentinel(b, t, "sentinel-1")
    time.sleep(2.0)
    assert len(L.ck_read_all(b.bootstrap, t)) == len(acked) + 1, "compacted while delete"
    r = kafka_script("kafka-configs.sh", "--bootstrap-server", b.bootstrap, "--alter",
                     "--entity-type", "topics", "--entity-name", t,
                     "--add-config", "cleanup.policy=compact")
    r.check()
    assert r.stdout.strip() == f"Completed updating config for topic {t}.", r.stdout
    expect_exactly(b, t, list(latest(acked).values()) + [s1])


def test_kill9_during_compaction_leaves_the_log_readable_and_consistent(broker_factory, topic):
    # ~12 MB written under cleanup.policy=delete, then switched to compact: the cleaner, capped
    # at 4 MB/s, maps the log for about 3 s, then copies it segment by segment into
    # `<base>.log.cleaned` files and swaps them in. gregor caps the copying too, so each kill can
    # come right after a cleaned copy appears; Kafka copies at full speed (it throttles what it
    # reads for the map and what it writes, little here), so there the kills land while it maps.
    b = broker_factory(**L.FAST_LOG_MAINTENANCE,
                       **{"log.cleaner.io.max.bytes.per.second": "4000000"})
    t = topic(broker=b, config={**COMPACTED, "cleanup.policy": "delete"})
    acked = produce(b, t, [C.Rec(key(k), val("v", r, k)) for r in range(ROUNDS) for k in range(KEYS)])
    s1 = sentinel(b, t, "sentinel-1")
    written = {r.offset: r for r in acked + [s1]}
    final = latest(acked + [s1])
    kafka_script("kafka-configs.sh", "--bootstrap-server", b.bootstrap, "--alter",
                 "--entity-type", "topics", "--entity-name", t,
                 "--add-config", "cleanup.policy=compact").check()
    rng = random.Random(5)
    for round_ in range(3):
        if is_kafka():
            time.sleep(rng.uniform(0.5, 2.5))
        else:
            L.wait_for("a cleaned segment being written",
                       lambda: list((b.data_dir / f"{t}-0").glob("*.log.cleaned")), every=0.02)
            time.sleep(rng.uniform(0.0, 0.3))
        b.kill9()
        b.restart()
        got = L.ck_read_all(b.bootstrap, t)
        offsets = [r.offset for r in got]
        assert offsets == sorted(set(offsets)), f"round {round_}: offsets not increasing"
        for r in got:
            w = written.get(r.offset)
            assert w is not None and (r.key, r.value) == (w.key, w.value), \
                f"round {round_}: offset {r.offset} holds {r.key!r}={r.value!r}"
        present = {r.offset for r in got}
        missing = [r.offset for r in final.values() if r.offset not in present]
        assert not missing, f"round {round_}: latest values lost at offsets {missing[:10]}"
    if not is_kafka():
        # The kills did interrupt cleanings: start-up found their unfinished copies.
        log = b.log_path.read_text()
        assert "removing an unfinished cleaned segment" in log \
            or "completing an interrupted segment swap" in log, b.log_tail()
    expect_exactly(b, t, list(final.values()), timeout=240.0)
