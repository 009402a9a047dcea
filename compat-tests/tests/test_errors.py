"""Error paths clients depend on, with the exact error each client reports.

A broker started with message.max.bytes=100000 and auto.create.topics.enable=false:
- a record batch over message.max.bytes -> MESSAGE_TOO_LARGE (10), nothing stored; a record
  under the limit is stored;
- Metadata/Produce for an unknown topic -> UNKNOWN_TOPIC_OR_PARTITION (3), topic not created;
- Fetch beyond the log end -> OFFSET_OUT_OF_RANGE (1), surfaced when auto.offset.reset=error.
With default config: Metadata for an unknown topic (producer metadata, auto-create allowed)
creates it with num.partitions partitions.
"""

import os

import pytest
from confluent_kafka import KafkaError

from harness import clients as C
from harness.broker import Broker

STRICT = {"message.max.bytes": 100000, "auto.create.topics.enable": "false"}


@pytest.fixture(scope="module")
def strict_broker(tmp_path_factory):
    b = Broker(tmp_path_factory.mktemp("strict"), overrides=STRICT)
    try:
        b.start()
        yield b
    finally:
        b.close()


def _deliver(bootstrap, topic, value, **conf):
    errs = []
    p = C.ck_producer(bootstrap, **conf)
    p.produce(topic, value, on_delivery=lambda e, m: errs.append((e, m.offset())))
    assert p.flush(30) == 0
    assert len(errs) == 1
    return errs[0]


def test_record_larger_than_message_max_bytes(strict_broker):
    b = strict_broker.bootstrap
    t = C.create_topic(b, C.unique_name("big"), 1)
    big = os.urandom(200_000)
    ok = os.urandom(90_000)

    err, _ = _deliver(b, t, big, acks="all")
    assert err is not None and err.code() == KafkaError.MSG_SIZE_TOO_LARGE, err

    from kafka import KafkaProducer
    from kafka.errors import MessageSizeTooLargeError

    kp = KafkaProducer(bootstrap_servers=b, acks="all")
    try:
        with pytest.raises(MessageSizeTooLargeError):
            kp.send(t, big).get(timeout=30)
    finally:
        kp.close(timeout=10)

    err, off = _deliver(b, t, ok, acks="all")
    assert err is None and off == 0
    assert C.watermarks(b, t, 0) == (0, 1), "rejected batches must not be stored"
    [rec] = C.ck_read(b, t, 0, 0, 1)
    assert rec.value == ok


def test_unknown_topic_without_auto_create(strict_broker):
    b = strict_broker.bootstrap
    name = C.unique_name("nope")
    md = C.admin(b).list_topics(topic=name, timeout=10)
    assert md.topics[name].error is not None
    assert md.topics[name].error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART

    err, _ = _deliver(b, name, b"x", **{"topic.metadata.propagation.max.ms": 1000})
    assert err is not None and err.code() == KafkaError.UNKNOWN_TOPIC_OR_PART, err

    assert name not in C.admin(b).list_topics(timeout=10).topics


def test_fetch_beyond_end_is_offset_out_of_range(strict_broker):
    b = strict_broker.bootstrap
    t = C.create_topic(b, C.unique_name("oor"), 1)
    C.ck_produce(b, t, [C.Rec(None, f"v{i}".encode()) for i in range(10)], conf={"acks": "all"})

    msg = C.ck_expect_out_of_range(b, t, 100)
    assert msg.offset() == 100
    C.kp_expect_out_of_range(b, t, 100)

    # reading from the last valid offset still works, and the end offset itself is empty
    [last] = C.ck_read(b, t, 0, 9, 1)
    assert (last.offset, last.value) == (9, b"v9")


def test_auto_create_on_metadata(broker):
    b = broker.bootstrap
    # librdkafka producer: Metadata with allow_auto_topic_creation=true, then Produce
    t1 = C.unique_name("auto")
    err, off = _deliver(b, t1, b"first")
    assert err is None and off == 0
    md = C.wait_topic(b, t1)
    assert sorted(md.partitions) == [0]

    # kafka-python: a bare Metadata request (partitions_for) auto-creates too
    from kafka import KafkaProducer

    t2 = C.unique_name("auto")
    kp = KafkaProducer(bootstrap_servers=b, max_block_ms=30000)
    try:
        assert kp.partitions_for(t2) == {0}
    finally:
        kp.close(timeout=10)
    assert sorted(C.wait_topic(b, t2).partitions) == [0]
    assert C.watermarks(b, t2, 0) == (0, 0)


def test_auto_create_uses_num_partitions(broker_factory):
    b = broker_factory(**{"num.partitions": 3}).bootstrap
    t = C.unique_name("auto3")
    err, off = _deliver(b, t, b"x")
    assert err is None and off == 0
    assert sorted(C.wait_topic(b, t).partitions) == [0, 1, 2]
