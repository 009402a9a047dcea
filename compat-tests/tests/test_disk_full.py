"""A filling disk (gregor's own behaviour: Kafka takes a broker whose only log dir fails offline).

The data dir is a small tmpfs, mostly taken by a ballast file.

- With `gregor.log.dir.min.free.bytes` (the default keeps 64 MiB; here 4 MiB): produce
  (kafka-python, no retries) fills the disk until it gets KAFKA_STORAGE_ERROR while room is still
  left; then every acked record reads back exactly (librdkafka), further produce keeps getting
  KAFKA_STORAGE_ERROR, yet topic creation and metadata work (the meta store never saw a failed
  write), the refusals are counted in gregor_storage_errors_total and logged once rather than per
  request. With the ballast removed produce resumes at the next offset; after a restart every acked
  record is there once.
- Without the reserve, the disk really fills: appends fail with KAFKA_STORAGE_ERROR (a partial
  write is undone), reads go on, and once space is back appends resume and survive a restart.

Needs root to mount the tmpfs; skipped (with the reason) otherwise.
"""

import subprocess
import time
import urllib.request

import pytest

from harness import clients as C
from harness import logs as L
from harness.broker import free_port, is_kafka

pytestmark = pytest.mark.skipif(
    is_kafka(), reason="Kafka takes a broker whose only log dir fails offline; this is gregor's behaviour")

VALUE = 10_000


@pytest.fixture
def small_fs(tmp_path):
    mnt = tmp_path / "fs"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=40m", "tmpfs", str(mnt)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs (needs root): {r.stderr.strip()}")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def metric(port, name, labels):
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def ballast(fs, mib=None):
    """Fills `fs` with a ballast file: `mib` MiB of it, or until the disk is full."""
    path = fs / "ballast"
    with open(path, "ab") as f:
        n = 0
        while mib is None or n < mib:
            try:
                f.write(b"\0" * (1 << 20))
                f.flush()
            except OSError:
                break
            n += 1
    return path


def fill(bootstrap, topic, tag, limit=4000):
    """Produces until a KAFKA_STORAGE_ERROR; returns (acked (offset, value) pairs, the error)."""
    from kafka import KafkaProducer
    from kafka.errors import KafkaStorageError

    p = KafkaProducer(bootstrap_servers=bootstrap, acks="all", retries=0, linger_ms=0,
                      max_in_flight_requests_per_connection=1)
    acked = []
    try:
        for i in range(limit):
            v = f"{tag}-{i:05d}-".encode() + b"x" * VALUE
            try:
                md = p.send(topic, value=v, partition=0).get(timeout=30)
            except KafkaStorageError as e:
                return acked, e
            acked.append((md.offset, v))
        return acked, None
    finally:
        p.close(timeout=10)


def resume_and_restart(b, topic, acked):
    after = C.kp_produce(b.bootstrap, topic, [C.Rec(None, f"c-{i}".encode(), partition=0)
                                              for i in range(50)], retries=0)
    assert [r.offset for r in after] == list(range(len(acked), len(acked) + 50))
    b.restart()
    got = L.ck_read_all(b.bootstrap, topic)
    assert [(r.offset, r.value) for r in got] == acked + [(r.offset, r.value) for r in after]


def test_a_filling_disk_refuses_produce_early_and_recovers(broker_factory, small_fs):
    port = free_port()
    b = broker_factory(**{"log.dirs": str(small_fs), "log.segment.bytes": "1048576",
                          "gregor.log.dir.min.free.bytes": str(4 << 20),
                          "metrics.address": f"127.0.0.1:{port}"})
    t = C.create_topic(b.bootstrap, C.unique_name("full"), 1)
    weight = ballast(small_fs, 24)
    acked, err = fill(b.bootstrap, t, "a")
    assert err is not None, f"no KAFKA_STORAGE_ERROR after {len(acked)} records"
    assert len(acked) > 100, f"only {len(acked)} records fitted"
    assert [o for o, _ in acked] == list(range(len(acked)))

    # Still short of space: reads, metadata and meta writes go on; produce keeps being refused.
    got = L.ck_read_all(b.bootstrap, t)
    assert [(r.offset, r.value) for r in got] == acked
    more, err2 = fill(b.bootstrap, t, "b", limit=5)
    assert err2 is not None and more == [], "a write succeeded short of space"
    other = C.create_topic(b.bootstrap, C.unique_name("while-full"), 1)
    C.wait_topic(b.bootstrap, other, 1)
    assert metric(port, "gregor_storage_errors_total", {"op": "disk_low"}) >= 2
    log = b.log_path.read_text()
    assert log.count("produce is refused until space is freed") == 1, "logged per request"
    assert "sled" not in log, "the meta store saw a failed write"

    weight.unlink()
    time.sleep(0.1)
    resume_and_restart(b, t, acked)


def test_a_full_disk_fails_appends_cleanly_and_recovers(broker_factory, small_fs):
    b = broker_factory(**{"log.dirs": str(small_fs), "log.segment.bytes": "1048576",
                          "gregor.log.dir.min.free.bytes": "0"})
    t = C.create_topic(b.bootstrap, C.unique_name("full"), 1)
    weight = ballast(small_fs, 30)
    acked, err = fill(b.bootstrap, t, "a")
    assert err is not None and len(acked) > 100, (len(acked), err)
    ballast(small_fs)  # every last byte
    more, err2 = fill(b.bootstrap, t, "b", limit=5)
    assert err2 is not None and more == []
    got = L.ck_read_all(b.bootstrap, t)
    assert [(r.offset, r.value) for r in got] == acked
    weight.unlink()
    time.sleep(0.1)
    resume_and_restart(b, t, acked)
