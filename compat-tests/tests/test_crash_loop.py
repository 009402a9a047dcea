"""Crash consistency under a mixed load: the broker is SIGKILLed at a random moment, again and
again (COMPAT_CRASH_ITERATIONS, default 20 against gregor, 3 against Kafka whose restarts take
seconds), while at the same time
  - an idempotent producer (acks=all) writes to a 3-partition topic,
  - a committer commits growing offsets for a consumer group (synchronous commits),
  - an admin thread creates and deletes topics,
  - a keyed producer writes to a compacted topic the cleaner keeps cleaning (segments roll every
    300 ms), and another to a topic whose 1-second retention keeps deleting segments.
After every restart: the broker starts cleanly; every acked record is present exactly once at its
acked offset and the offsets are dense; the group's committed offsets never go backwards and are
never ahead of what was attempted; every topic whose creation was acknowledged and whose deletion
was not attempted exists, and none whose deletion was acknowledged does; the compacted topic reads
end to end with increasing offsets, every record the one written at its offset, and for every key
its latest acked record or a later one; the retention topic holds, from its low watermark on, every
acked record at its offset with no gap."""

import os
import random
import threading
import time
from collections import Counter

from confluent_kafka import Consumer, KafkaException, TopicPartition
from confluent_kafka.admin import NewTopic

from harness import clients as C
from harness import logs as L
from harness.load import ContinuousProducer
from harness.broker import is_kafka

PARTITIONS = 3
ITERATIONS = int(os.environ.get("COMPAT_CRASH_ITERATIONS", "3" if is_kafka() else "20"))


class Committer(threading.Thread):
    """Commits offset n, n+1, ... for partition 0 of `topic` in `group`, synchronously."""

    def __init__(self, bootstrap, group, topic, start):
        super().__init__(daemon=True)
        self.c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False,
                           "log_level": 0, "socket.timeout.ms": 2000, "session.timeout.ms": 6000})
        self.topic, self.next = topic, start
        self.acked = start - 1      # highest commit acknowledged
        self.attempted = start - 1  # highest commit sent
        self.stop = threading.Event()

    def run(self):
        while not self.stop.is_set():
            self.attempted = self.next
            try:
                self.c.commit(offsets=[TopicPartition(self.topic, 0, self.next)], asynchronous=False)
                self.acked = self.next
                self.next += 1
            except KafkaException:
                time.sleep(0.05)

    def finish(self):
        self.stop.set()
        self.join(15)
        try:
            self.c.close()
        except KafkaException:
            pass


class TopicChurner(threading.Thread):
    def __init__(self, bootstrap, rnd):
        super().__init__(daemon=True)
        self.adm = C.admin(bootstrap)
        self.rnd = rnd
        self.created, self.delete_attempted, self.deleted = set(), set(), set()
        self.stop = threading.Event()

    def run(self):
        k = 0
        while not self.stop.is_set():
            name = f"churn-{self.rnd}-{k}"
            k += 1
            try:
                self.adm.create_topics([NewTopic(name, 1, 1)])[name].result(timeout=5)
                self.created.add(name)
                if k % 2 == 0:
                    self.delete_attempted.add(name)
                    self.adm.delete_topics([name])[name].result(timeout=5)
                    self.deleted.add(name)
            except Exception:  # the broker died under us: those outcomes are unknown
                time.sleep(0.05)

    def finish(self):
        self.stop.set()
        self.join(15)


def committed(bootstrap, group, topic):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False, "log_level": 0})
    try:
        return c.committed([TopicPartition(topic, 0)], timeout=30)[0].offset
    finally:
        c.close()


def check_compacted(bootstrap, topic, acked, written, key_of):
    """Offsets increase, each record is the one written at its offset (acked ones by value), and
    every key's latest acked record survives or was superseded by a later one in the log."""
    got = L.ck_read_all(bootstrap, topic)
    offsets = [r.offset for r in got]
    assert offsets == sorted(set(offsets)), "compacted topic: offsets not increasing"
    by_offset = {o: v for _, o, v in acked}
    for r in got:
        assert r.value in written and r.key == key_of(r.value), f"offset {r.offset}: {r.value!r}"
        assert by_offset.get(r.offset, r.value) == r.value, f"offset {r.offset} changed"
    newest = {}
    for r in got:
        newest[r.key] = max(newest.get(r.key, -1), r.offset)
    latest_acked = {}
    for _, o, v in acked:
        k = key_of(v)
        latest_acked[k] = max(latest_acked.get(k, -1), o)
    lost = [(k, o) for k, o in latest_acked.items() if newest.get(k, -1) < o]
    assert not lost, f"compacted topic: latest acked records lost {lost[:5]}"


def check_retained(bootstrap, topic, acked):
    """From the low watermark on: dense offsets and every acked record at its offset."""
    lo, hi = C.watermarks(bootstrap, topic)
    recs = C.ck_read(bootstrap, topic, 0, lo, end=hi, timeout=60)
    assert [r.offset for r in recs] == list(range(lo, hi)), "retention topic: offsets not dense"
    log = {r.offset: r.value for r in recs}
    wrong = [(o, v) for _, o, v in acked if o >= lo and log.get(o) != v]
    assert not wrong, f"retention topic: acked records missing or moved: {wrong[:5]}"


def test_sigkill_loop_keeps_acked_data_offsets_and_topics(broker_factory, topic):
    broker = broker_factory(**L.FAST_LOG_MAINTENANCE)
    t = topic(PARTITIONS, broker=broker)
    compacted = topic(broker=broker, config={**L.SMALL_SEGMENTS, "cleanup.policy": "compact",
                                             "segment.ms": "300",
                                             "min.cleanable.dirty.ratio": "0.01"})
    retained = topic(broker=broker, config={**L.SMALL_SEGMENTS, "retention.ms": "1000",
                                            "segment.ms": "300"})
    c_acked, c_sent, r_acked = [], set(), []
    group = C.unique_name("crash")
    rng = random.Random(int(os.environ.get("COMPAT_CRASH_SEED", "7")))
    all_acked, all_sent = [], set()
    last_committed = -1
    commit_next = 0
    topics_present, topics_gone = set(), set()
    for rnd in range(ITERATIONS):
        prod = ContinuousProducer(broker.bootstrap, t, f"r{rnd}", idempotent=True, partitions=PARTITIONS)
        comm = Committer(broker.bootstrap, group, t, commit_next)
        churn = TopicChurner(broker.bootstrap, rnd)
        keyed = ContinuousProducer(broker.bootstrap, compacted, f"c{rnd}", idempotent=True,
                                   partitions=1, keys=50)
        aging = ContinuousProducer(broker.bootstrap, retained, f"a{rnd}", idempotent=False,
                                   partitions=1)
        for th in (prod, comm, churn, keyed, aging):
            th.start()
        time.sleep(0.3 + rng.random() * 1.2)  # a random moment in the middle of it all
        broker.kill9()
        for th in (keyed, aging):
            th.finish()
        prod.finish()
        comm.stop.set()
        churn.stop.set()
        broker.restart()  # fails the test if the broker does not come back cleanly
        # Requests caught by the kill may be retried against the restarted broker: settle them
        # before judging (a consumer also closes quicker with a broker to talk to).
        comm.finish()
        churn.finish()
        all_acked += prod.acked
        all_sent |= prod.sent
        topics_present |= churn.created - churn.delete_attempted
        topics_present -= churn.deleted
        topics_gone |= churn.deleted

        C.wait_topic(broker.bootstrap, t, PARTITIONS)
        for p in range(PARTITIONS):
            lo, hi = C.watermarks(broker.bootstrap, t, p)
            recs = C.ck_read(broker.bootstrap, t, p, 0, end=hi, timeout=60)
            assert [r.offset for r in recs] == list(range(lo, hi)), f"round {rnd} p{p}: offsets not dense"
            log = {r.offset: r.value for r in recs}
            counts = Counter(r.value for r in recs)
            assert all(v in all_sent for v in counts), f"round {rnd} p{p}: a value never sent"
            mine = [(o, v) for q, o, v in all_acked if q == p]
            wrong = [(o, v, log.get(o)) for o, v in mine if log.get(o) != v]
            assert not wrong, f"round {rnd} p{p}: acked records missing or moved: {wrong[:5]}"
            assert all(counts[v] == 1 for _, v in mine), f"round {rnd} p{p}: an acked record twice"

        got = committed(broker.bootstrap, group, t)
        assert got >= comm.acked, f"round {rnd}: committed offset went back to {got} (acked {comm.acked})"
        assert got >= last_committed, f"round {rnd}: committed offset went backwards {last_committed} -> {got}"
        assert got <= comm.attempted, f"round {rnd}: committed {got} beyond any attempt ({comm.attempted})"
        last_committed = got
        commit_next = max(got, comm.acked) + 1

        c_acked += keyed.acked
        c_sent |= keyed.sent
        check_compacted(broker.bootstrap, compacted, c_acked, c_sent, keyed.key_of_value)
        r_acked += aging.acked
        check_retained(broker.bootstrap, retained, r_acked)

        listed = set(C.admin(broker.bootstrap).list_topics(timeout=30).topics)
        assert topics_present <= listed, f"round {rnd}: acked topics missing: {sorted(topics_present - listed)[:5]}"
        assert not (topics_gone & listed), f"round {rnd}: deleted topics back: {sorted(topics_gone & listed)[:5]}"
    assert len(all_acked) > ITERATIONS * 50, f"only {len(all_acked)} records acked over {ITERATIONS} rounds"
