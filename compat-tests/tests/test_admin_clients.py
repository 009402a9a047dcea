"""Topic and config administration through the client libraries: confluent-kafka's
AdminClient (create_topics with configs, describe_configs, incremental_alter_configs,
alter_configs, create_partitions, delete_records, describe_cluster, delete_topics, list_topics)
and kafka-python's KafkaAdminClient (create_topics, describe_configs, alter_configs,
create_partitions, describe_cluster, delete_topics), with exact results and error texts.

Broker: harness.admin.ADMIN_BROKER_CONFIG on both targets. Kafka 4.1.1 reports
min.insync.replicas with source DYNAMIC_DEFAULT_BROKER_CONFIG (the cluster-level value its
controller writes when ELR is enabled), see test_admin_configs.py.
"""

import time

import pytest
from confluent_kafka import KafkaException, TopicPartition
from confluent_kafka.admin import (AlterConfigOpType, ConfigEntry, ConfigResource, ConfigSource,
                                   NewPartitions, NewTopic, ResourceType)

from harness import clients as C
from harness.admin import Mismatches, start_admin_broker
from test_admin_configs import TOPIC_ALL_CONFIGS

TOPIC_KEYS = sorted(ln.split("=", 1)[0] for ln in TOPIC_ALL_CONFIGS)
DEFAULTS = {ln.split("=", 1)[0]: ln.split("=", 1)[1].split(" sensitive=")[0]
            for ln in TOPIC_ALL_CONFIGS}
DEFAULTS["cleanup.policy"] = "delete"  # TOPIC_ALL_CONFIGS is for a compacted topic
MIN_ISR_SOURCE = "DYNAMIC_DEFAULT_BROKER_CONFIG"


@pytest.fixture(scope="module")
def admin_broker(tmp_path_factory):
    b = None
    try:
        b = start_admin_broker(tmp_path_factory.mktemp("admin-clients"))
        yield b
    finally:
        if b is not None:
            b.close()


def ck_error(fut):
    try:
        fut.result(timeout=30)
    except KafkaException as e:
        err = e.args[0]
        return (err.name(), err.str())
    return None


def non_default(d):
    return {k: (e.value, ConfigSource(e.source).name) for k, e in d.items()
            if ConfigSource(e.source) != ConfigSource.DEFAULT_CONFIG}


def describe(adm, res):
    return adm.describe_configs([res])[res].result(timeout=30)


def eventually(fn, want, timeout=15.0):
    """fn() until it returns `want` (config changes reach Kafka's broker asynchronously
    from its controller), then the last value."""
    deadline = time.monotonic() + timeout
    while True:
        got = fn()
        if got == want or time.monotonic() > deadline:
            return got
        time.sleep(0.2)


def test_confluent_admin(admin_broker):
    b = admin_broker.bootstrap
    adm = C.admin(b)
    m = Mismatches()
    t = C.unique_name("ck")
    assert adm.create_topics([NewTopic(t, 3, 1, config={"retention.ms": "1000",
                                                        "cleanup.policy": "compact"})],
                             operation_timeout=30)[t].result(timeout=30) is None
    C.wait_topic(b, t, 3, adm=adm)

    res = ConfigResource(ResourceType.TOPIC, t)
    d = adm.describe_configs([res])[res].result(timeout=30)
    m.eq("describe_configs keys", sorted(d), TOPIC_KEYS)
    m.eq("describe_configs non-default", non_default(d), {
        "retention.ms": ("1000", "DYNAMIC_TOPIC_CONFIG"),
        "cleanup.policy": ("compact", "DYNAMIC_TOPIC_CONFIG"),
        "min.insync.replicas": ("1", MIN_ISR_SOURCE)})
    m.eq("describe_configs defaults",
         {k: e.value for k, e in d.items() if k not in ("retention.ms", "cleanup.policy")},
         {k: v for k, v in DEFAULTS.items() if k not in ("retention.ms", "cleanup.policy")})
    m.eq("describe_configs flags", {k for k, e in d.items()
                                    if e.is_read_only or e.is_sensitive or e.is_synonym}, set())
    m.eq("retention.ms synonyms", [(s.name, s.value, ConfigSource(s.source).name)
                                   for s in d["retention.ms"].synonyms.values()],
         [("retention.ms", "1000", "DYNAMIC_TOPIC_CONFIG")])

    # errors from CreateTopics
    bad = [NewTopic(t, 1, 1), NewTopic("bad name", 1, 1), NewTopic(C.unique_name("rf"), 1, 3),
           NewTopic(C.unique_name("seg"), 1, 1, config={"segment.bytes": "10"}),
           NewTopic(C.unique_name("unk"), 1, 1, config={"foo.bar": "1"})]
    futs = adm.create_topics(bad, operation_timeout=30)
    m.eq("create_topics errors", [ck_error(futs[n.topic]) for n in bad], [
        ("TOPIC_ALREADY_EXISTS", f"Topic '{t}' already exists."),
        ("TOPIC_EXCEPTION", "Topic name is invalid: 'bad name' contains one or more characters "
                            "other than ASCII alphanumerics, '.', '_' and '-'"),
        ("INVALID_REPLICATION_FACTOR", "Unable to replicate the partition 3 time(s): The target "
         "replication factor of 3 cannot be reached because only 1 broker(s) are registered."),
        ("INVALID_CONFIG",
         "Invalid value 10 for configuration segment.bytes: Value must be at least 1048576"),
        ("INVALID_CONFIG", "Unknown topic config name: foo.bar"),
    ])

    # incremental: SET one, DELETE another, APPEND to a list
    inc = ConfigResource(ResourceType.TOPIC, t, incremental_configs=[
        ConfigEntry("max.message.bytes", "2000000", incremental_operation=AlterConfigOpType.SET),
        ConfigEntry("retention.ms", None, incremental_operation=AlterConfigOpType.DELETE),
        ConfigEntry("cleanup.policy", "delete", incremental_operation=AlterConfigOpType.APPEND)])
    assert adm.incremental_alter_configs([inc])[inc].result(timeout=30) is None
    want = {"max.message.bytes": ("2000000", "DYNAMIC_TOPIC_CONFIG"),
            "cleanup.policy": ("compact,delete", "DYNAMIC_TOPIC_CONFIG"),
            "min.insync.replicas": ("1", MIN_ISR_SOURCE)}
    m.eq("after incremental_alter_configs",
         eventually(lambda: non_default(describe(adm, res)), want),
         want)
    d = adm.describe_configs([res])[res].result(timeout=30)
    m.eq("retention.ms back to default", (d["retention.ms"].value, ConfigSource(d["retention.ms"].source).name),
         ("604800000", "DEFAULT_CONFIG"))
    bad_inc = ConfigResource(ResourceType.TOPIC, t, incremental_configs=[
        ConfigEntry("segment.bytes", "10", incremental_operation=AlterConfigOpType.SET)])
    m.eq("incremental_alter_configs invalid value",
         ck_error(adm.incremental_alter_configs([bad_inc])[bad_inc]),
         ("INVALID_CONFIG",
          "Invalid value 10 for configuration segment.bytes: Value must be at least 1048576"))

    # legacy AlterConfigs replaces the whole set of dynamic configs
    full = ConfigResource(ResourceType.TOPIC, t, set_config={"segment.bytes": "2000000"})
    assert adm.alter_configs([full])[full].result(timeout=30) is None
    want = {"segment.bytes": ("2000000", "DYNAMIC_TOPIC_CONFIG"),
            "min.insync.replicas": ("1", MIN_ISR_SOURCE)}
    m.eq("after alter_configs",
         eventually(lambda: non_default(describe(adm, res)), want),
         want)

    # partitions
    assert adm.create_partitions([NewPartitions(t, 5)])[t].result(timeout=30) is None
    C.wait_topic(b, t, 5, adm=adm)
    m.eq("create_partitions to fewer", ck_error(adm.create_partitions([NewPartitions(t, 4)])[t]),
         ("INVALID_PARTITIONS", f"The topic {t} currently has 5 partition(s); 4 would not be an "
                                f"increase."))

    # delete_records
    C.ck_produce(b, t, [C.Rec(None, b"%d" % i, (), 4) for i in range(10)])
    tp = TopicPartition(t, 4, 6)
    got = adm.delete_records([tp])
    [(k, f)] = list(got.items())
    assert (k.topic, k.partition) == (t, 4)
    assert f.result(timeout=30).low_watermark == 6
    assert C.watermarks(b, t, 4) == (6, 10)
    beyond = TopicPartition(t, 4, 11)
    [f] = adm.delete_records([beyond]).values()
    m.eq("delete_records beyond the end", ck_error(f),
         ("OFFSET_OUT_OF_RANGE", "Broker: Offset out of range"))

    # describe_cluster
    c = adm.describe_cluster(request_timeout=30).result(timeout=30)
    m.eq("describe_cluster", (c.controller.id, [(n.id, n.host, n.port, n.rack) for n in c.nodes]),
         (1, [(1, "127.0.0.1", admin_broker.port, None)]))
    assert c.cluster_id and len(c.cluster_id) == 22

    # delete_topics
    assert adm.delete_topics([t], operation_timeout=30)[t].result(timeout=30) is None
    deadline = time.monotonic() + 10
    while t in adm.list_topics(timeout=10).topics and time.monotonic() < deadline:
        time.sleep(0.2)
    assert t not in adm.list_topics(timeout=10).topics
    m.eq("delete_topics of a deleted topic", ck_error(adm.delete_topics([t])[t]),
         ("UNKNOWN_TOPIC_OR_PART", "Broker: Unknown topic or partition"))
    m.check()


def kp_message(exc):
    """The broker's error_message inside a kafka-python error's text."""
    import re
    found = re.findall(r"error_message=(['\"])(.*?)\1", str(exc))
    assert len(found) == 1, str(exc)
    return found[0][1]


def test_kafka_python_admin(admin_broker):
    from kafka.admin import (ConfigResource as KRes, ConfigResourceType, KafkaAdminClient,
                             NewPartitions as KParts, NewTopic as KTopic)
    from kafka.errors import (InvalidPartitionsError, TopicAlreadyExistsError,
                              UnknownTopicOrPartitionError)

    b = admin_broker
    m = Mismatches()
    a = KafkaAdminClient(bootstrap_servers=b.bootstrap)
    try:
        t = C.unique_name("kp")
        r = a.create_topics([KTopic(t, 2, 1, topic_configs={"retention.ms": "3000"})])
        [tr] = r["topics"]
        configs = tr.pop("configs")
        m.eq("create_topics result", {k: v for k, v in tr.items() if k != "topic_id"}, {
            "name": t, "error_code": 0, "error_message": None, "topic_config_error_code": 0,
            "num_partitions": 2, "replication_factor": 1})
        m.eq("create_topics configs", {k: (v["value"], v["config_source"])
                                       for k, v in configs.items()},
             {**{k: (v, "DEFAULT_CONFIG") for k, v in DEFAULTS.items()},
              "retention.ms": ("3000", "DYNAMIC_TOPIC_CONFIG"),
              "min.insync.replicas": ("1", MIN_ISR_SOURCE)})

        res = KRes(ConfigResourceType.TOPIC, t)
        m.eq("describe_configs (modified)", a.describe_configs([res]), {"topic": {t: {
            "retention.ms": {"value": "3000", "read_only": False,
                             "config_source": "DYNAMIC_TOPIC_CONFIG", "is_sensitive": False,
                             "synonyms": [], "config_type": "LONG", "documentation": None}}}})

        m.eq("alter_configs", a.alter_configs([KRes(ConfigResourceType.TOPIC, t,
                                                    configs={"cleanup.policy": "compact"})]),
             {"topic": {t: "OK"}})
        want = {"retention.ms": ("3000", "DYNAMIC_TOPIC_CONFIG"),
                "cleanup.policy": ("compact", "DYNAMIC_TOPIC_CONFIG")}
        m.eq("describe_configs after alter_configs", eventually(
            lambda: {k: (v["value"], v["config_source"])
                     for k, v in a.describe_configs([res])["topic"][t].items()}, want), want)

        r = a.create_partitions({t: KParts(4)})
        m.eq("create_partitions", [(x.name, x.error_code, x.error_message) for x in r.results],
             [(t, 0, None)])
        with pytest.raises(InvalidPartitionsError) as ei:
            a.create_partitions({t: KParts(3)})
        m.eq("create_partitions to fewer", kp_message(ei.value),
             f"The topic {t} currently has 4 partition(s); 3 would not be an increase.")
        with pytest.raises(TopicAlreadyExistsError) as ei:
            a.create_topics([KTopic(t, 2, 1)])
        m.eq("create_topics existing", kp_message(ei.value), f"Topic '{t}' already exists.")

        c = a.describe_cluster()
        m.eq("describe_cluster", {k: v for k, v in c.items() if k != "cluster_id"}, {
            "controller_id": 1,
            "brokers": [{"broker_id": 1, "host": "127.0.0.1", "port": b.port, "rack": None,
                         "is_fenced": False}],
            "authorized_operations": ["CREATE", "ALTER", "DESCRIBE", "CLUSTER_ACTION",
                                      "DESCRIBE_CONFIGS", "ALTER_CONFIGS", "IDEMPOTENT_WRITE"]})
        ck = C.admin(b.bootstrap)
        assert c["cluster_id"] == ck.describe_cluster().result(timeout=30).cluster_id

        r = a.delete_topics([t])
        [dr] = r["topics"]
        m.eq("delete_topics", (dr["name"], dr["error_code"], dr["error_message"]), (t, 0, None))
        with pytest.raises(UnknownTopicOrPartitionError) as ei:
            a.delete_topics([t])
        m.eq("delete_topics of a deleted topic", kp_message(ei.value),
             "This server does not host this topic-partition.")
    finally:
        a.close()
    m.check()
