"""Offsets committed synchronously by group members (librdkafka and kafka-python, subscribed,
each in its own group) right before the broker is SIGKILLed are all there after the restart:
the last commit that returned wins, for every partition."""

from confluent_kafka import TopicPartition

from harness import clients as C
from harness.groups import ck_group_consumer, wait_for

PARTITIONS = 3
PER_PARTITION = 100
ROUNDS = 25


def final_offset(p, i):
    # a different value per partition and round, within the log
    return min(PER_PARTITION, 3 * i + p)


def ck_committed(bootstrap, group, topic):
    c = ck_group_consumer(bootstrap, group)
    try:
        tps = c.committed([TopicPartition(topic, p) for p in range(PARTITIONS)], timeout=60)
        assert all(tp.error is None for tp in tps), tps
        return {tp.partition: tp.offset for tp in tps}
    finally:
        c.close()


def kp_committed(bootstrap, group, topic):
    from kafka import TopicPartition as KTP

    c = C.kp_consumer(bootstrap, group_id=group)
    try:
        return {p: c.committed(KTP(topic, p)) for p in range(PARTITIONS)}
    finally:
        c.close()


def test_sync_commits_survive_kill9(broker, topic):
    from kafka import TopicPartition as KTP
    from kafka.structs import OffsetAndMetadata

    t = topic(PARTITIONS)
    C.ck_produce(broker.bootstrap, t, [C.Rec(None, b"%d" % i, (), i % PARTITIONS)
                                       for i in range(PARTITIONS * PER_PARTITION)])
    g_ck, g_kp = C.unique_name("k9-ck"), C.unique_name("k9-kp")

    ck = ck_group_consumer(broker.bootstrap, g_ck)
    kp = C.kp_consumer(broker.bootstrap, group_id=g_kp, session_timeout_ms=6000,
                       heartbeat_interval_ms=1000)
    try:
        ck.subscribe([t])
        kp.subscribe([t])

        def ck_assigned():
            ck.poll(0.2)
            return len(ck.assignment()) == PARTITIONS

        def kp_assigned():
            kp.poll(timeout_ms=200)
            return len(kp.assignment()) == PARTITIONS

        wait_for(ck_assigned, 60, "the librdkafka member's assignment")
        wait_for(kp_assigned, 60, "the kafka-python member's assignment")

        for i in range(1, ROUNDS + 1):
            ck.commit(offsets=[TopicPartition(t, p, final_offset(p, i))
                               for p in range(PARTITIONS)], asynchronous=False)
            kp.commit({KTP(t, p): OffsetAndMetadata(final_offset(p, i), "", -1)
                       for p in range(PARTITIONS)})
        # both last commits returned: kill the broker at once
        broker.kill9()
    finally:
        # (after kill9 the broker is gone: close() must not wait long for LeaveGroup)
        kp.close(autocommit=False, timeout_ms=2000)
        ck.close()

    broker.restart()
    want = {p: final_offset(p, ROUNDS) for p in range(PARTITIONS)}
    assert ck_committed(broker.bootstrap, g_ck, t) == want
    assert kp_committed(broker.bootstrap, g_kp, t) == want
    assert ck_committed(broker.bootstrap, g_kp, t) == want

