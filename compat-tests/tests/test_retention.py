"""Retention (cleanup.policy=delete), against gregor and Apache Kafka alike:

- retention.ms (set to 30 minutes at runtime with kafka-configs.sh): records timestamped an hour
  ago are deleted as whole segments (newer records rolled their segment); the recent records stay
  at their offsets; the low watermark moves to the
  first recent offset exactly; a consumer below it gets OFFSET_OUT_OF_RANGE (librdkafka with
  auto.offset.reset=error, kafka-python with none) or resets to the new earliest offset; the disk
  space of the deleted segments is given back;
- retention.bytes: a partition fed 8 MiB with a 2 MiB cap ends at or above the cap but not by a
  whole segment, as Kafka's size retention does, keeping the newest records.
"""

import time

from harness import clients as C
from harness import logs as L
from harness.java import kafka_script

PAYLOAD = 1000


def value(tag, i):
    head = f"{tag}-{i:06d}-".encode()
    return head + b"x" * (PAYLOAD - len(head))


def produce(b, t, tag, n, ts=None):
    recs = [C.Rec(f"k{i}".encode(), value(tag, i), timestamp=ts) for i in range(n)]
    return C.ck_produce(b.bootstrap, t, recs, conf={"acks": "all", "linger.ms": 5})


def test_time_retention_drops_old_segments_and_keeps_recent_data(broker_factory, topic):
    b = broker_factory(**L.FAST_LOG_MAINTENANCE)
    t = topic(broker=b, config={**L.SMALL_SEGMENTS, "segment.ms": "60000"})
    hour_ago = int(time.time() * 1000) - 3_600_000
    old = produce(b, t, "old", 3000, ts=hour_ago)
    assert [r.offset for r in old] == list(range(3000))
    # Recent records roll the segment (their timestamps are an hour past its first one's).
    recent = produce(b, t, "new", 500)
    assert [r.offset for r in recent] == list(range(3000, 3500))
    # Within the default 7 days nothing goes.
    time.sleep(1.5)
    assert C.watermarks(b.bootstrap, t) == (0, 3500)
    before = L.disk_bytes(b, t)
    assert before >= 3500 * PAYLOAD
    # 30 minutes: the old records' segments expire, the recent records' does not.
    kafka_script("kafka-configs.sh", "--bootstrap-server", b.bootstrap, "--alter",
                 "--entity-type", "topics", "--entity-name", t,
                 "--add-config", "retention.ms=1800000").check()
    L.wait_for("the old segments to be deleted",
               lambda: C.watermarks(b.bootstrap, t) == (3000, 3500))
    # (Measured as space given back: the active segment may hold space reserved ahead of appends.)
    L.wait_for("the files to be unlinked",
               lambda: before - L.disk_bytes(b, t) >= 2900 * PAYLOAD)

    want = [(r.offset, r.key, r.value) for r in recent]
    assert [(r.offset, r.key, r.value) for r in L.ck_read_all(b.bootstrap, t)] == want
    assert [(r.offset, r.key, r.value) for r in L.kp_read_all(b.bootstrap, t)] == want

    # A consumer positioned below the log start: an error, or a reset to the new earliest.
    C.ck_expect_out_of_range(b.bootstrap, t, 10)
    C.kp_expect_out_of_range(b.bootstrap, t, 10)
    reset = C.ck_read(b.bootstrap, t, 0, start=10, count=1)
    assert (reset[0].offset, reset[0].value) == (3000, value("new", 0))


def test_size_retention_keeps_a_partition_near_its_cap(broker_factory, topic):
    b = broker_factory(**L.FAST_LOG_MAINTENANCE)
    cap = 2 * 1048576
    t = topic(broker=b, config={**L.SMALL_SEGMENTS, "retention.bytes": str(cap)})
    written = produce(b, t, "v", 8000)

    def settled():
        files = L.segment_files(b, t)
        size = sum(f.stat().st_size for f in files)
        return size < cap + 1048576 and (size, files[0].stat().st_size)

    size, first = L.wait_for("size retention", settled)
    # As Kafka: the oldest segment goes only while the rest is still at least the cap.
    assert size >= cap and size - first < cap, (size, first)
    low, high = C.watermarks(b.bootstrap, t)
    assert high == 8000 and 0 < low < 8000 - cap // (PAYLOAD + 100)
    rest = L.ck_read_all(b.bootstrap, t, start=low)
    assert [(r.offset, r.value) for r in rest] == [(r.offset, r.value) for r in written[low:]]
