"""kafkajs 2.2.4 (Node.js, pure-JS protocol implementation, npm) against the broker.

One run of `clients/js/kafkajs_scenario.js` per module (about 10 s; every step bounded, the
whole run under 60 s) does, in order: admin createTopics (3 partitions, two configs; again →
false; replication factor 3 → INVALID_REPLICATION_FACTOR), listTopics, fetchTopicMetadata,
describeCluster, describeConfigs; an idempotent producer (InitProducerId, acks=-1) sends 60
records (distinct keys and values, UTF-8 and binary, a repeated header key and an empty header
value, explicit timestamps) to known partitions, half gzip-compressed; fetchTopicOffsets and
fetchTopicOffsetsByTimestamp; a consumer group (fromBeginning) reads them, describeGroups while
it is Stable, commitOffsets, fetchOffsets, disconnect (LeaveGroup) and deleteGroups right after
it; setOffsets on a second group, listGroups, describeGroups (Empty); alterConfigs; a second
topic: createPartitions (and shrinking → INVALID_PARTITIONS), deleteTopicRecords, deleteTopics.
Each test asserts one part of that run exactly, as Kafka 4.1.1 answers it.

kafkajs speaks old protocol versions (its highest, all within Kafka 4.1.1's ranges): Produce v7,
Fetch v11, ListOffsets v3, Metadata v6, ApiVersions v2, FindCoordinator v2, JoinGroup v5,
SyncGroup v3, Heartbeat v3, LeaveGroup v3, OffsetCommit v5, OffsetFetch v4, DescribeGroups v2,
ListGroups v2, DeleteGroups v1, CreateTopics v3, DeleteTopics v1, CreatePartitions v1,
DeleteRecords v1, DescribeConfigs v2, AlterConfigs v1, InitProducerId v1.

Fails when node or clients/js/node_modules (compat-tests/install.sh runs `npm ci`) is missing.
"""

import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass

import pytest

from harness import clients as C
from harness.broker import COMPAT_DIR

JS_DIR = COMPAT_DIR / "clients" / "js"
SCRIPT = JS_DIR / "kafkajs_scenario.js"
N = 60
PARTITIONS = 3
CLIENT_ID = "gregor-compat-kafkajs"



@pytest.fixture(autouse=True)
def _kafkajs_installed():
    """install.sh installs it; a missing client is a failure, never a silent skip."""
    if shutil.which("node") is None or not (JS_DIR / "node_modules" / "kafkajs" / "package.json").exists():
        pytest.fail("node or kafkajs missing (compat-tests/clients/js/install.sh)")


def expected_record(i, ts_base):
    """Record i exactly as kafkajs_scenario.js's record(i) sends it."""
    if i % 10 == 7:
        value = bytes([0x00, 0xFF, 0x80, i, 0x0A, 0x09])
    else:
        value = f"value-{i}-\u00e9\u2713".encode()
    headers = (("idx", str(i).encode()), ("dup", f"a{i}".encode()), ("dup", f"b{i}".encode()),
               ("empty", b""))
    return C.Rec(f"key-{i}".encode(), value, headers, i % PARTITIONS, i // PARTITIONS, ts_base + i)


@dataclass
class Run:
    out: dict
    stderr: str
    topic: str
    topic2: str
    group: str
    group2: str
    prefix: str
    ts_base: int
    bootstrap: str
    port: int

    def step(self, name):
        s = self.out["steps"].get(name)
        assert s is not None, f"step {name} never ran (watchdog: {self.out.get('watchdog')}, " \
                              f"fatal: {self.out.get('fatal')})\n{self.stderr[-3000:]}"
        return s

    def ok(self, name):
        s = self.step(name)
        assert "error" not in s, f"kafkajs {name} failed: {json.dumps(s['error'], indent=1)}\n" \
                                 f"earlier attempts: {self.out.get('retried', {}).get(name)}\n" \
                                 f"--- kafkajs log ---\n{self.stderr[-3000:]}"
        return s["ok"]

    def error(self, name):
        s = self.step(name)
        assert "error" in s, f"kafkajs {name} succeeded ({s['ok']!r}), an error was expected"
        return s["error"]

    def own(self, topics):
        return sorted(t for t in topics if t.startswith(self.prefix))


@pytest.fixture(scope="module")
def kjs(module_broker):
    prefix = C.unique_name("kjs")
    # whole seconds in the recent past: well inside any retention or timestamp limits
    ts_base = int(time.time()) * 1000 - 120_000
    r = Run({}, "", f"{prefix}-main", f"{prefix}-admin", f"{prefix}-g", f"{prefix}-g2", prefix,
            ts_base, module_broker.bootstrap, module_broker.port)
    cmd = ["node", str(SCRIPT), "--bootstrap", r.bootstrap, "--topic", r.topic,
           "--topic2", r.topic2, "--group", r.group, "--group2", r.group2,
           "--ts-base", str(ts_base)]
    env = dict(os.environ, KAFKAJS_NO_PARTITIONER_WARNING="1")
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=90, cwd=str(JS_DIR), env=env)
    r.stderr = p.stderr
    assert p.stdout.strip(), f"kafkajs_scenario.js printed nothing (rc={p.returncode})\n{p.stderr[-5000:]}"
    r.out = json.loads(p.stdout)
    assert "watchdog" not in r.out, f"{r.out['watchdog']}; steps run: {r.out['order']}\n{p.stderr[-5000:]}"
    assert "fatal" not in r.out, f"{r.out['fatal']}\n{p.stderr[-5000:]}"
    assert p.returncode == 0, p.stderr[-5000:]
    return r


def by_partition(rows, key="partition"):
    return sorted(rows, key=lambda x: x[key])


def test_kafkajs_create_topics_and_metadata(kjs):
    """createTopics creates the topic (true), answers an existing one with TOPIC_ALREADY_EXISTS
    (kafkajs then returns false) and replication factor 3 on one broker with
    INVALID_REPLICATION_FACTOR; listTopics, fetchTopicMetadata (leader, replicas, ISR,
    offline replicas per partition) and describeCluster describe the single broker exactly."""
    assert kjs.ok("admin.connect") is None
    assert kjs.ok("createTopics") is True
    assert kjs.ok("createTopics.again") is False
    e = kjs.error("createTopics.rf3")
    assert (e["name"], [(x["name"], x["type"], x["code"]) for x in e["errors"]]) == (
        "KafkaJSAggregateError",
        [("KafkaJSCreateTopicError", "INVALID_REPLICATION_FACTOR", 38)])
    assert kjs.own(kjs.ok("listTopics")) == [kjs.topic]
    md = kjs.ok("fetchTopicMetadata")
    assert [t["name"] for t in md["topics"]] == [kjs.topic]
    assert by_partition(md["topics"][0]["partitions"], "partitionId") == [
        {"partitionErrorCode": 0, "partitionId": p, "leader": 1, "replicas": [1], "isr": [1],
         "offlineReplicas": []} for p in range(PARTITIONS)]
    cl = kjs.ok("describeCluster")
    assert cl["brokers"] == [{"nodeId": 1, "host": "127.0.0.1", "port": kjs.port}]
    assert cl["controller"] == 1
    assert isinstance(cl["clusterId"], str) and cl["clusterId"], cl


def _entry(name, value, source, default):
    return {"configName": name, "configValue": value, "readOnly": False, "isDefault": default,
            "configSource": source, "isSensitive": False, "configSynonyms": []}


def test_kafkajs_describe_and_alter_configs(kjs):
    """describeConfigs (v2) of the topic: the two configs set at creation with source
    DYNAMIC_TOPIC_CONFIG (1), cleanup.policy as DEFAULT_CONFIG (5), isDefault accordingly.
    alterConfigs (v1) replaces the topic's whole override set, so afterwards retention.ms is the
    new value and max.message.bytes is back to the default 1048588."""
    d = kjs.ok("describeConfigs")
    assert d == {"resources": [{
        "errorCode": 0, "errorMessage": "", "resourceType": 2, "resourceName": kjs.topic,
        "configEntries": [_entry("cleanup.policy", "delete", 5, True),
                          _entry("max.message.bytes", "200000", 1, False),
                          _entry("retention.ms", "86400000", 1, False)]}]}
    altered = kjs.ok("alterConfigs")
    assert kjs.ok("describeConfigs.altered") == {"resources": [{
        "errorCode": 0, "errorMessage": "", "resourceType": 2, "resourceName": kjs.topic,
        "configEntries": [_entry("max.message.bytes", "1048588", 5, True),
                          _entry("retention.ms", "3600000", 1, False)]}]}
    # Kafka answers a successful AlterConfigs with a null error message (DescribeConfigs: "")
    assert altered == {"resources": [{
        "errorCode": 0, "errorMessage": None, "resourceType": 2, "resourceName": kjs.topic}]}


def test_kafkajs_idempotent_produce_acks(kjs):
    """The idempotent producer's six sends (3 partitions x 2 rounds of 10 records, the first
    round gzip) are acked with error 0 and base offsets 0 and 10, logAppendTime -1 (CreateTime)
    and logStartOffset 0; so record i is at partition i % 3, offset i // 3."""
    assert kjs.ok("producer.connect") is None
    sends = kjs.ok("produce")
    assert sends == [[{"topicName": kjs.topic, "partition": p, "errorCode": 0,
                       "baseOffset": str(base), "logAppendTime": "-1", "logStartOffset": "0"}]
                     for base in (0, 10) for p in range(PARTITIONS)]
    assert kjs.out["acked"] == [{"i": i, "partition": i % PARTITIONS, "offset": str(i // PARTITIONS)}
                                for i in range(N)]
    assert kjs.ok("producer.disconnect") is None


def test_kafkajs_records_read_by_librdkafka(kjs):
    """What kafkajs produced is stored exactly: librdkafka reads every partition from offset 0
    (no ListOffsets) and gets each record's key, value (UTF-8 and binary), headers (repeated
    key, empty value, in order) and CreateTime timestamp at its acked offset, and nothing else."""
    kjs.ok("produce")
    want = [expected_record(i, kjs.ts_base) for i in range(N)]
    got = []
    for p in range(PARTITIONS):
        got += C.ck_read(kjs.bootstrap, kjs.topic, partition=p, start=0, end=20, timeout=30)
        assert C.watermarks(kjs.bootstrap, kjs.topic, p) == (0, 20)
    key = lambda r: (r.partition, r.offset)  # noqa: E731
    assert [r.full() for r in sorted(got, key=key)] == [r.full() for r in sorted(want, key=key)]


def test_kafkajs_topic_offsets(kjs):
    """fetchTopicOffsets (ListOffsets latest and earliest): high 20, low 0 on every partition.
    fetchTopicOffsetsByTimestamp: T+31 → the first record at or after it per partition (records
    33, 31, 32: offsets 11, 10, 10); T → 0; a timestamp after every record → -1 from the broker,
    which kafkajs replaces by the high watermark (20)."""
    assert by_partition(kjs.ok("fetchTopicOffsets")) == [
        {"partition": p, "offset": "20", "high": "20", "low": "0"} for p in range(PARTITIONS)]
    assert by_partition(kjs.ok("fetchTopicOffsetsByTimestamp.31")) == [
        {"partition": 0, "offset": "11"}, {"partition": 1, "offset": "10"},
        {"partition": 2, "offset": "10"}]
    assert by_partition(kjs.ok("fetchTopicOffsetsByTimestamp.0")) == [
        {"partition": p, "offset": "0"} for p in range(PARTITIONS)]
    assert by_partition(kjs.ok("fetchTopicOffsetsByTimestamp.after")) == [
        {"partition": p, "offset": "20"} for p in range(PARTITIONS)]


def test_kafkajs_group_consume_and_commit(kjs):
    """A kafkajs group consumer (fromBeginning, RoundRobinAssigner) gets all 3 partitions and
    reads exactly the 60 records — partition, offset, key, value, headers, timestamp — each
    partition in offset order, nothing more within half a second. describeGroups while it runs:
    Stable, protocol type "consumer", protocol RoundRobinAssigner, one member with its client id
    and host, its subscription and assignment as kafkajs encoded them. commitOffsets, then
    fetchOffsets gives each partition's end offset (20) with null metadata."""
    consumed = kjs.out.get("consumed")
    assert kjs.ok("consumer.connect") is None
    assert kjs.ok("consumer.subscribe") is None
    s = kjs.step("consume")
    assert "error" not in s, (f"consume failed after {len(consumed or [])} records: "
                              f"{json.dumps(s['error'])}; crashes: {kjs.out.get('crashes')}\n"
                              f"{kjs.stderr[-3000:]}")
    want = []
    for r in sorted((expected_record(i, kjs.ts_base) for i in range(N)),
                    key=lambda r: (r.partition, r.offset)):
        want.append({"topic": kjs.topic, "partition": r.partition, "offset": str(r.offset),
                     "timestamp": str(r.timestamp), "key": r.key.hex(), "value": r.value.hex(),
                     "headers": [[k, v.hex()] for k, v in r.headers]})
    # delivery interleaves partitions; within one partition it is in offset order
    assert sorted(consumed, key=lambda m: m["partition"]) == want

    groups = kjs.ok("describeGroups.stable")
    assert len(groups) == 1 and len(groups[0]["members"]) == 1, groups
    member = groups[0]["members"][0]
    assert member["memberId"].startswith(CLIENT_ID + "-"), member
    member["memberAssignment"]["assignment"][kjs.topic].sort()
    assert groups[0] == {
        "errorCode": 0, "groupId": kjs.group, "state": "Stable", "protocolType": "consumer",
        "protocol": "RoundRobinAssigner",
        "members": [{"memberId": member["memberId"], "clientId": CLIENT_ID,
                     "clientHost": "/127.0.0.1",
                     "memberMetadata": {"version": 0, "topics": [kjs.topic], "userData": ""},
                     "memberAssignment": {"version": 0, "assignment": {kjs.topic: [0, 1, 2]},
                                          "userData": ""}}]}

    assert kjs.ok("commitOffsets") is None
    assert kjs.ok("fetchOffsets") == [{"topic": kjs.topic, "partitions": [
        {"partition": p, "offset": "20", "metadata": None} for p in range(PARTITIONS)]}]
    assert kjs.ok("consumer.disconnect") is None


def test_kafkajs_delete_group_right_after_leave(kjs):
    """deleteGroups straight after the consumer's disconnect (LeaveGroup) succeeds: the group
    is Empty by the time LeaveGroup is answered. Afterwards describeGroups (v2) answers Dead with
    no error, empty protocol type and protocol and no members; listGroups no longer lists it;
    fetchOffsets gives -1 for every partition; deleting a group that never existed → GROUP_ID_NOT_FOUND (69)."""
    assert kjs.ok("consumer.disconnect") is None
    assert kjs.ok("deleteGroups") == [{"groupId": kjs.group, "errorCode": 0}]
    assert kjs.ok("describeGroups.deleted") == {"groups": [{
        "errorCode": 0, "groupId": kjs.group, "state": "Dead", "protocolType": "",
        "protocol": "", "members": []}]}
    assert kjs.group not in [g["groupId"] for g in kjs.ok("listGroups")]
    assert kjs.ok("fetchOffsets.deleted") == [{"topic": kjs.topic, "partitions": [
        {"partition": p, "offset": "-1", "metadata": None} for p in range(PARTITIONS)]}]
    e = kjs.error("deleteGroups.unknown")
    assert (e["name"], e["groups"]) == ("KafkaJSDeleteGroupsError", [
        {"groupId": kjs.group + "-never", "errorCode": 69, "type": "GROUP_ID_NOT_FOUND"}])


def test_kafkajs_set_offsets_and_list_groups(kjs):
    """admin.setOffsets (a consumer that joins the group, commits the given offsets and leaves)
    on a new group: fetchOffsets returns exactly those offsets; listGroups lists that group
    (protocol type "consumer"); describeGroups: Empty, protocol type
    "consumer", no protocol, no members; deleteGroups removes it."""
    assert kjs.ok("setOffsets") is None
    assert kjs.ok("fetchOffsets.g2") == [{"topic": kjs.topic, "partitions": [
        {"partition": 0, "offset": "7", "metadata": None},
        {"partition": 1, "offset": "8", "metadata": None},
        {"partition": 2, "offset": "9", "metadata": None}]}]
    assert [g for g in kjs.ok("listGroups") if g["groupId"] == kjs.group2] == [
        {"groupId": kjs.group2, "protocolType": "consumer"}]
    assert kjs.ok("describeGroups.empty") == {"groups": [{
        "errorCode": 0, "groupId": kjs.group2, "state": "Empty", "protocolType": "consumer",
        "protocol": "", "members": []}]}
    assert kjs.ok("deleteGroups.g2") == [{"groupId": kjs.group2, "errorCode": 0}]


def test_kafkajs_create_partitions_and_delete_topics(kjs):
    """On a second topic: createPartitions 1 → 3 (metadata then shows 3 partitions, each led by
    broker 1), 3 → 2 fails with INVALID_PARTITIONS (37); deleteTopics removes the topic from
    listTopics; deleting an unknown topic fails with UNKNOWN_TOPIC_OR_PARTITION (3) after
    kafkajs's retries."""
    assert kjs.ok("createTopics.t2") is True
    assert kjs.ok("createPartitions") is None
    md = kjs.ok("fetchTopicMetadata.t2")
    assert [t["name"] for t in md["topics"]] == [kjs.topic2]
    assert by_partition(md["topics"][0]["partitions"], "partitionId") == [
        {"partitionErrorCode": 0, "partitionId": p, "leader": 1, "replicas": [1], "isr": [1],
         "offlineReplicas": []} for p in range(3)]
    e = kjs.error("createPartitions.shrink")
    assert (e["name"], e["type"], e["code"]) == ("KafkaJSProtocolError", "INVALID_PARTITIONS", 37)
    assert kjs.ok("deleteTopics") is None
    assert kjs.own(kjs.ok("listTopics.afterDelete")) == [kjs.topic]
    e = kjs.error("deleteTopics.unknown")
    assert (e["name"], e["cause"]["name"], e["cause"]["type"], e["cause"]["code"]) == (
        "KafkaJSNumberOfRetriesExceeded", "KafkaJSProtocolError", "UNKNOWN_TOPIC_OR_PARTITION", 3)
    assert kjs.ok("admin.disconnect") is None


def test_kafkajs_delete_topic_records(kjs):
    """After 5 records on partition 0 of the second (3-partition) topic, deleteTopicRecords up to
    offset 3 (DeleteRecords v1) moves its low watermark to 3 while the high watermark stays 5 and
    the other partitions stay empty at 0 (fetchTopicOffsets before and after)."""
    assert kjs.ok("produce.t2") == [{"partition": 0, "errorCode": 0, "baseOffset": "0"}]
    assert by_partition(kjs.ok("fetchTopicOffsets.t2.before")) == [
        {"partition": 0, "offset": "5", "high": "5", "low": "0"},
        {"partition": 1, "offset": "0", "high": "0", "low": "0"},
        {"partition": 2, "offset": "0", "high": "0", "low": "0"}]
    assert kjs.ok("deleteTopicRecords") is None
    assert by_partition(kjs.ok("fetchTopicOffsets.t2")) == [
        {"partition": 0, "offset": "5", "high": "5", "low": "3"},
        {"partition": 1, "offset": "0", "high": "0", "low": "0"},
        {"partition": 2, "offset": "0", "high": "0", "low": "0"}]
