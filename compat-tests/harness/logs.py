"""Helpers for the retention and compaction tests: reading a whole partition (compaction leaves
offset gaps, so "read N records" does not apply) with librdkafka and kafka-python, the segment
files of a partition on disk, and waiting for the broker's background work."""

import time
from pathlib import Path
from typing import Callable, List

from confluent_kafka import KafkaError, TopicPartition

from . import clients as C

# Broker settings both targets get: the cleaner and the retention checker run often and start at
# once (log.initial.task.delay.ms is Kafka's internal knob for the retention scheduler's delay).
FAST_LOG_MAINTENANCE = {
    "log.cleaner.backoff.ms": "200",
    "log.retention.check.interval.ms": "500",
    "log.initial.task.delay.ms": "0",
}

# Topic settings for small, quickly rolled segments (1 MiB is Kafka 4's minimum segment.bytes).
SMALL_SEGMENTS = {
    "segment.bytes": "1048576",
    "file.delete.delay.ms": "0",
}


def ck_read_all(bootstrap, topic, partition=0, start=0, timeout=60.0, conf=None) -> List[C.Rec]:
    """Every record from `start` to the end of the partition (librdkafka, assign())."""
    c = C.ck_consumer(bootstrap, **{"enable.partition.eof": True, **(conf or {})})
    out = []
    try:
        c.assign([TopicPartition(topic, partition, start)])
        deadline = time.monotonic() + timeout
        while True:
            if time.monotonic() > deadline:
                raise AssertionError(f"ck_read_all {topic}: no end of partition in {timeout}s")
            done = False
            for m in c.consume(num_messages=10000, timeout=0.5):
                if m.error():
                    if m.error().code() == KafkaError._PARTITION_EOF:
                        done = True
                        break
                    raise AssertionError(f"ck_read_all {topic}: {m.error()}")
                out.append(C.Rec(m.key(), m.value(), C._ck_headers(m.headers()), m.partition(),
                                 m.offset(), m.timestamp()[1]))
            if done:
                return out
    finally:
        c.close()


def kp_read_all(bootstrap, topic, partition=0, start=0, timeout=60.0) -> List[C.Rec]:
    """Every record from `start` to the partition's end offset (kafka-python, assign())."""
    from kafka import TopicPartition as KTP

    c = C.kp_consumer(bootstrap)
    out = []
    try:
        tp = KTP(topic, partition)
        c.assign([tp])
        end = c.end_offsets([tp])[tp]
        c.seek(tp, start)
        deadline = time.monotonic() + timeout
        while c.position(tp) < end:
            if time.monotonic() > deadline:
                raise AssertionError(f"kp_read_all {topic}: at {c.position(tp)} of {end} "
                                     f"after {timeout}s")
            for recs in c.poll(timeout_ms=500, max_records=10000).values():
                for m in recs:
                    out.append(C.Rec(m.key, m.value, tuple(m.headers or ()), m.partition,
                                     m.offset, m.timestamp))
    finally:
        c.close()
    return out


def segment_files(broker, topic, partition=0) -> List[Path]:
    """The partition's segment files (`<20 digits>.log`), for either target."""
    d = Path(broker.data_dir) / f"{topic}-{partition}"
    return sorted(p for p in d.glob("*.log") if len(p.stem) == 20 and p.stem.isdigit())


def log_bytes(broker, topic, partition=0) -> int:
    """Bytes of the partition's segment files."""
    return sum(p.stat().st_size for p in segment_files(broker, topic, partition))


def disk_bytes(broker, topic, partition=0) -> int:
    """Disk space the partition's directory really uses (allocated blocks of every file)."""
    d = Path(broker.data_dir) / f"{topic}-{partition}"
    return sum(p.stat().st_blocks * 512 for p in d.iterdir() if p.is_file())


def wait_for(what: str, check: Callable[[], object], timeout=90.0, every=0.5):
    """Polls `check` until it returns something truthy; returns it."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except AssertionError as e:
            last = e
        else:
            if last:
                return last
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}: last {last!r}")
