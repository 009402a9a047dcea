"""Transactional clients against a broker without transactions fail at once, with a message saying
so, instead of retrying COORDINATOR_NOT_AVAILABLE forever (the Java producer used to sit in
"awaiting InitProducerId" until its timeout, and a Kafka Streams exactly_once_v2 app never left
REBALANCING).

Against Apache Kafka 4.1.1 the same commands commit their transactions (that is what validates the
commands themselves); against gregor they must fail within seconds: the Java producer with the
broker's message, librdkafka's init_transactions with an error.
"""

import time

import confluent_kafka
import pytest

from harness.broker import is_kafka
from harness.java import kafka_script

MESSAGE = "gregor does not support transactions yet"


def test_java_transactional_producer_fails_at_once(broker, topic):
    t = topic(partitions=1)
    started = time.monotonic()
    r = kafka_script(
        "kafka-producer-perf-test.sh", "--topic", t, "--num-records", "20", "--record-size", "10",
        "--throughput", "-1", "--transactional-id", "tx-perf", "--transaction-duration-ms", "100",
        "--producer-props", f"bootstrap.servers={broker.bootstrap}", "max.block.ms=60000",
        timeout=120)
    took = time.monotonic() - started
    if is_kafka():
        r.check()
        assert "20 records sent" in r.stdout, r.stdout
        return
    assert r.returncode != 0, r.stdout
    out = r.stdout + r.stderr
    assert MESSAGE in out, out[-3000:]
    assert "Could not find a coordinator with type TRANSACTION with key tx-perf" in out, out[-3000:]
    # The JVM's start-up is most of it; the old behaviour waited out max.block.ms (60 s).
    assert took < 40, took


def test_librdkafka_init_transactions_is_refused(broker, topic):
    t = topic(partitions=1)
    p = confluent_kafka.Producer({"bootstrap.servers": broker.bootstrap,
                                  "transactional.id": "tx-rdkafka"})
    if is_kafka():
        p.init_transactions(30)
        p.begin_transaction()
        p.produce(t, value=b"v")
        p.commit_transaction(30)
        return
    with pytest.raises(confluent_kafka.KafkaException) as e:
        p.init_transactions(10)
    err = e.value.args[0]
    assert not err.txn_requires_abort(), err
    # librdkafka retries coordinator look-ups it does not know to be fatal until its timeout;
    # what matters is that it ends with an error instead of hanging.
    assert err.code() in (confluent_kafka.KafkaError._TIMED_OUT,
                          confluent_kafka.KafkaError.UNSUPPORTED_VERSION), err
