"""Clean shutdown and restart: SIGTERM must exit 0 (Kafka: 143, the JVM's clean exit after its
shutdown hook), and after a restart on the same data directory every acked record is back at
its offset, byte for byte, and new records continue the offsets densely."""

import os

from harness import clients as C

N = int(os.environ.get("COMPAT_RESTART_RECORDS", "5000"))
PARTITIONS = 2


def make(n, start, tag):
    return [C.Rec(f"key-{i}".encode() if i % 3 else None,
                  None if i % 10 == 9 else f"{tag}-value-{i}-".encode() * (1 + i % 5),
                  (("i", str(i).encode()), ("dup", b"a"), ("dup", b"b")) if i % 2 else (),
                  i % PARTITIONS, None, None)
            for i in range(start, start + n)]


def read_all(bootstrap, topic):
    out = []
    for p in range(PARTITIONS):
        lo, hi = C.watermarks(bootstrap, topic, p)
        assert lo == 0
        out += C.ck_read(bootstrap, topic, p, 0, end=hi, timeout=60)
    return sorted((r.full() for r in out))


def test_clean_restart_keeps_records(broker, topic):
    t = topic(PARTITIONS)
    acked = C.ck_produce(broker.bootstrap, t, make(N, 0, "a"),
                         conf={"acks": "all", "compression.type": "lz4", "linger.ms": 5})
    expected = sorted(r.full() for r in acked)
    assert read_all(broker.bootstrap, t) == expected

    broker.stop()  # asserts the clean exit code
    broker.restart()
    C.wait_topic(broker.bootstrap, t, PARTITIONS)
    assert read_all(broker.bootstrap, t) == expected

    # produce more: offsets continue where they stopped, with no gap
    more = C.ck_produce(broker.bootstrap, t, make(N // 5, N, "b"),
                        conf={"acks": "all", "enable.idempotence": True})
    for p in range(PARTITIONS):
        before = sorted(r.offset for r in acked if r.partition == p)
        after = sorted(r.offset for r in more if r.partition == p)
        assert before == list(range(len(before)))
        assert after == list(range(len(before), len(before) + len(after))), f"partition {p}"
    expected = sorted(r.full() for r in acked + more)
    assert read_all(broker.bootstrap, t) == expected

    # and once more, to check the data written after the first restart also survives
    broker.stop()
    broker.restart()
    C.wait_topic(broker.bootstrap, t, PARTITIONS)
    assert read_all(broker.bootstrap, t) == expected
