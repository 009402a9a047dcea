"""kafka-topics.sh (TopicCommand): --create with and without --partitions/--replication-factor
and with --config, --list (exact set), --describe of all topics and of one (TopicId,
PartitionCount, ReplicationFactor, Configs, per-partition Leader/Replicas/Isr/Elr),
--alter --partitions, --delete (gone from --list; re-created it is a new topic: new TopicId,
offsets from 0), and the exact errors the tool prints for an existing topic, illegal names,
an unreachable replication factor, fewer partitions and an invalid config value.

One broker for the module (num.partitions=2, see harness.admin.ADMIN_BROKER_CONFIG); the
tests run in file order and the first one owns --list.

On Kafka 4.1.1 every topic shows `min.insync.replicas=1` in Configs: the controller writes a
cluster-level min.insync.replicas (DYNAMIC_DEFAULT_BROKER_CONFIG) when ELR is enabled, which
is the default for a new 4.1 cluster, and TopicCommand prints every non-default config.
"""

import pytest

from harness import clients as C
from harness.admin import (TOPIC_ID, Mismatches, parse_topics_describe, start_admin_broker,
                           tool)

MIN_ISR = {"min.insync.replicas": "1"}
TOOL_ERR = "Error while executing topic command : "


@pytest.fixture(scope="module")
def admin_broker(tmp_path_factory):
    b = None
    try:
        b = start_admin_broker(tmp_path_factory.mktemp("admin-topics"))
        yield b
    finally:
        if b is not None:
            b.close()


def topics(b, *args):
    return tool("kafka-topics.sh", b.bootstrap, *args)


def ok(r):
    assert r.returncode == 0, f"rc {r.returncode}\n{r.stdout}\n{r.stderr[-3000:]}"
    return r.stdout


def partitions(n):
    return {p: {"Leader": "1", "Replicas": "1", "Isr": "1", "Elr": "", "LastKnownElr": ""}
            for p in range(n)}


def test_create_list_describe(admin_broker):
    b = admin_broker
    t1, t2, t3 = (C.unique_name(p) for p in ("full", "dflt", "parts"))
    assert ok(topics(b, "--create", "--topic", t1, "--partitions", "3", "--replication-factor",
                     "1", "--config", "retention.ms=1000", "--config", "cleanup.policy=compact")
              ) == f"Created topic {t1}.\n"
    # broker defaults: num.partitions=2, default.replication.factor=1
    assert ok(topics(b, "--create", "--topic", t2)) == f"Created topic {t2}.\n"
    assert ok(topics(b, "--create", "--topic", t3, "--partitions", "4")) == f"Created topic {t3}.\n"

    assert sorted(ok(topics(b, "--list")).splitlines()) == sorted([t1, t2, t3])

    everything = parse_topics_describe(ok(topics(b, "--describe")))
    assert sorted(everything) == sorted([t1, t2, t3])
    ids = {t: d["fields"].pop("TopicId") for t, d in everything.items()}
    for t, tid in ids.items():
        assert TOPIC_ID.match(tid) and tid != "AAAAAAAAAAAAAAAAAAAAAA", (t, tid)
    assert len(set(ids.values())) == 3
    assert everything == {
        t1: {"fields": {"Topic": t1, "PartitionCount": "3", "ReplicationFactor": "1"},
             "configs": {**MIN_ISR, "cleanup.policy": "compact", "retention.ms": "1000"},
             "partitions": partitions(3)},
        t2: {"fields": {"Topic": t2, "PartitionCount": "2", "ReplicationFactor": "1"},
             "configs": MIN_ISR, "partitions": partitions(2)},
        t3: {"fields": {"Topic": t3, "PartitionCount": "4", "ReplicationFactor": "1"},
             "configs": MIN_ISR, "partitions": partitions(4)},
    }

    one = parse_topics_describe(ok(topics(b, "--describe", "--topic", t1)))
    assert list(one) == [t1]
    assert one[t1]["fields"].pop("TopicId") == ids[t1]
    assert one[t1] == everything[t1]

    # the id the tool prints is the one clients see in Metadata
    from confluent_kafka import TopicCollection
    adm = C.admin(b.bootstrap)
    d = adm.describe_topics(TopicCollection([t1]))[t1].result(timeout=30)
    # (librdkafka prints Uuids in standard base64, Kafka's tools in URL-safe base64)
    assert str(d.topic_id).replace("+", "-").replace("/", "_") == ids[t1]


def test_alter_partitions(admin_broker):
    b = admin_broker
    t = C.unique_name("grow")
    C.create_topic(b.bootstrap, t, 2)
    C.ck_produce(b.bootstrap, t, [C.Rec(None, b"x", (), p) for p in (0, 1)])
    assert ok(topics(b, "--alter", "--topic", t, "--partitions", "5")) == ""
    d = parse_topics_describe(ok(topics(b, "--describe", "--topic", t)))[t]
    d["fields"].pop("TopicId")
    assert d == {"fields": {"Topic": t, "PartitionCount": "5", "ReplicationFactor": "1"},
                 "configs": MIN_ISR, "partitions": partitions(5)}
    # old partitions keep their data, new ones are empty and writable
    C.wait_topic(b.bootstrap, t, 5)
    assert [C.watermarks(b.bootstrap, t, p) for p in range(5)] == [(0, 1)] * 2 + [(0, 0)] * 3
    [r] = C.ck_produce(b.bootstrap, t, [C.Rec(None, b"new", (), 4)])
    assert (r.partition, r.offset) == (4, 0)


def test_delete_and_recreate(admin_broker):
    b = admin_broker
    t = C.unique_name("del")
    C.create_topic(b.bootstrap, t, 1)
    old_id = parse_topics_describe(ok(topics(b, "--describe", "--topic", t)))[t]["fields"]["TopicId"]
    C.ck_produce(b.bootstrap, t, [C.Rec(None, b"old%d" % i) for i in range(5)])
    assert C.watermarks(b.bootstrap, t) == (0, 5)
    before = set(C.admin(b.bootstrap).list_topics(timeout=10).topics)
    assert t in before

    assert ok(topics(b, "--delete", "--topic", t)) == ""
    listed = ok(topics(b, "--list")).splitlines()
    assert t not in listed
    assert sorted(listed) == sorted(before - {t})

    assert ok(topics(b, "--create", "--topic", t, "--partitions", "1")) == f"Created topic {t}.\n"
    d = parse_topics_describe(ok(topics(b, "--describe", "--topic", t)))[t]
    new_id = d["fields"].pop("TopicId")
    assert TOPIC_ID.match(new_id) and new_id != old_id
    assert d == {"fields": {"Topic": t, "PartitionCount": "1", "ReplicationFactor": "1"},
                 "configs": MIN_ISR, "partitions": partitions(1)}
    C.wait_topic(b.bootstrap, t, 1)
    assert C.watermarks(b.bootstrap, t) == (0, 0)
    [r] = C.ck_produce(b.bootstrap, t, [C.Rec(None, b"new")])
    assert r.offset == 0
    assert [x.value for x in C.ck_read(b.bootstrap, t, 0, 0, 1)] == [b"new"]

    # deleting a topic that is not there is refused by the tool itself
    r = topics(b, "--delete", "--topic", t + "-nope")
    assert r.returncode == 1
    assert r.stdout == f"{TOOL_ERR}Topic '{t}-nope' does not exist as expected\n"


def test_create_errors(admin_broker):
    """The tool exits 1, prints `Error while executing topic command : <msg>` on stdout and
    logs `ERROR <exception class>: <msg>` on stderr. All cases are run, then compared at once."""
    b = admin_broker
    t = C.unique_name("exists")
    C.create_topic(b.bootstrap, t, 2)
    before = set(C.admin(b.bootstrap).list_topics(timeout=10).topics)
    warn = ("WARNING: Due to limitations in metric names, topics with a period ('.') or "
            "underscore ('_') could collide. To avoid issues it is best to use either, but not "
            "both.\n")
    rf3 = C.unique_name("rf3")
    cases = [
        (["--create", "--topic", t], "",
         "org.apache.kafka.common.errors.TopicExistsException", f"Topic '{t}' already exists."),
        (["--create", "--topic", "bad name"], "",
         "org.apache.kafka.common.errors.InvalidTopicException",
         "Topic name is invalid: 'bad name' contains one or more characters other than "
         "ASCII alphanumerics, '.', '_' and '-'"),
        (["--create", "--topic", "."], warn,
         "org.apache.kafka.common.errors.InvalidTopicException",
         "Topic name is invalid: '.' is not allowed"),
        (["--create", "--topic", rf3, "--replication-factor", "3"], "",
         "org.apache.kafka.common.errors.InvalidReplicationFactorException",
         "Unable to replicate the partition 3 time(s): The target replication factor of 3 "
         "cannot be reached because only 1 broker(s) are registered."),
        (["--alter", "--topic", t, "--partitions", "1"], "",
         "org.apache.kafka.common.errors.InvalidPartitionsException",
         f"The topic {t} currently has 2 partition(s); 1 would not be an increase."),
        # validated by TopicCommand itself (LogConfig.validate) before any request
        (["--create", "--topic", C.unique_name("segbytes"), "--config", "segment.bytes=10"], "",
         "org.apache.kafka.common.config.ConfigException",
         "Invalid value 10 for configuration segment.bytes: Value must be at least 1048576"),
    ]
    m = Mismatches()
    for args, prefix, exc, msg in cases:
        r = topics(b, *args)
        m.eq(f"kafka-topics.sh {' '.join(args)}: exit code and stdout",
             (r.returncode, r.stdout), (1, f"{prefix}{TOOL_ERR}{msg}\n"))
        m.eq(f"kafka-topics.sh {' '.join(args)}: stderr has 'ERROR {exc}: {msg}'",
             f"ERROR {exc}: {msg}\n" in r.stderr, True)
    m.check()

    # nothing was created or changed
    assert set(C.admin(b.bootstrap).list_topics(timeout=10).topics) == before
    assert len(C.wait_topic(b.bootstrap, t).partitions) == 2
