"""Listeners, against gregor and Apache Kafka alike: a broker with a second PLAINTEXT listener
(EXTERNAL, advertised as localhost) serves both, and a client is told the endpoint of the listener
it came in on: librdkafka's metadata, DescribeCluster and the group coordinator (FindCoordinator)
name 127.0.0.1 through PLAINTEXT and localhost through EXTERNAL, and records produced and read
through EXTERNAL are exact."""

from confluent_kafka import TopicPartition
from confluent_kafka.admin import AdminClient

from harness import clients as C
from harness.broker import free_port


def told(bootstrap, group):
    """(metadata brokers, DescribeCluster nodes, the group's coordinator) as (host, port)."""
    a = AdminClient({"bootstrap.servers": bootstrap})
    md = a.list_topics(timeout=30)
    cluster = a.describe_cluster(request_timeout=30).result(timeout=30)
    desc = a.describe_consumer_groups([group], request_timeout=30)[group].result(timeout=30)
    return ([(b.host, b.port) for b in md.brokers.values()],
            [(n.host, n.port) for n in cluster.nodes],
            (desc.coordinator.host, desc.coordinator.port))


def test_each_listener_tells_clients_its_own_advertised_endpoint(broker_factory):
    external = free_port()
    b = broker_factory(listeners={"EXTERNAL": (external, "localhost")})
    outside = f"127.0.0.1:{external}"
    t = C.unique_name("ext")
    C.create_topic(outside, t, partitions=1)
    recs = [C.Rec(f"k{i}".encode(), f"v{i}".encode(), partition=0) for i in range(100)]
    acked = C.ck_produce(outside, t, recs, conf={"acks": "all"})
    assert [r.offset for r in acked] == list(range(100))
    # A group with a committed offset, so both listeners can describe it.
    consumer = C.ck_consumer(outside, **{"group.id": "listeners", "enable.auto.commit": False})
    consumer.commit(offsets=[TopicPartition(t, 0, 100)], asynchronous=False)
    consumer.close()
    got = C.ck_read(outside, t, 0, 0, count=100)
    assert [(r.key, r.value) for r in got] == [(r.key, r.value) for r in recs]
    inside = ("127.0.0.1", b.port)
    assert told(b.bootstrap, "listeners") == ([inside], [inside], inside)
    there = ("localhost", external)
    assert told(outside, "listeners") == ([there], [there], there)
