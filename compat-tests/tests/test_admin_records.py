"""kafka-delete-records.sh (DeleteRecords) moves the log start offset: the tool prints each
partition's new low watermark, kafka-get-offsets.sh --time -2 reports it, a librdkafka consumer
fetching below it gets OFFSET_OUT_OF_RANGE (auto.offset.reset=error) or is reset to it
(earliest); deleting below the current start is a no-op, beyond the high watermark an
OffsetOutOfRangeException. kafka-log-dirs.sh --describe reports the topic's partitions with the
sizes of their logs. kafka-broker-api-versions.sh lists the admin APIs.
"""

import json
import time

import pytest
from confluent_kafka import KafkaError, TopicPartition

from harness import clients as C
from harness.admin import Mismatches, start_admin_broker, tool
from harness.java import kafka_script


@pytest.fixture(scope="module")
def admin_broker(tmp_path_factory):
    b = None
    try:
        b = start_admin_broker(tmp_path_factory.mktemp("admin-records"))
        yield b
    finally:
        if b is not None:
            b.close()


def delete_records(b, tmp_path, offsets):
    f = tmp_path / f"offsets-{time.monotonic_ns()}.json"
    f.write_text(json.dumps({"partitions": [{"topic": t, "partition": p, "offset": o}
                                            for t, p, o in offsets], "version": 1}))
    r = tool("kafka-delete-records.sh", b.bootstrap, "--offset-json-file", f)
    assert r.returncode == 0, f"rc {r.returncode}\n{r.stdout}\n{r.stderr[-3000:]}"
    lines = r.stdout.splitlines()
    assert lines[:2] == ["Executing records delete operation",
                         "Records delete operation completed:"], r.stdout
    return sorted(lines[2:]), r.stderr  # one line per partition, in no particular order


def first_error(c, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        msg = c.poll(0.5)
        if msg is not None:
            return msg
    raise AssertionError("no message or error within the timeout")


def test_delete_records(admin_broker, tmp_path):
    b = admin_broker
    t = C.unique_name("dr")
    C.create_topic(b.bootstrap, t, 3)
    C.ck_produce(b.bootstrap, t, [C.Rec(None, b"p%d-%d" % (p, i), (), p)
                                  for p in (0, 1) for i in range(10)])

    # -1 = up to the high watermark; partition 2 is empty
    lines, _ = delete_records(b, tmp_path, [(t, 0, 4), (t, 1, -1), (t, 2, 0)])
    assert lines == sorted([f"partition: {t}-0\tlow_watermark: 4",
                            f"partition: {t}-1\tlow_watermark: 10",
                            f"partition: {t}-2\tlow_watermark: 0"])

    r = tool("kafka-get-offsets.sh", b.bootstrap, "--topic", t, "--time", "-2")
    r.check()
    assert r.stdout.splitlines() == [f"{t}:0:4", f"{t}:1:10", f"{t}:2:0"]
    assert C.watermarks(b.bootstrap, t, 0) == (4, 10)
    assert C.watermarks(b.bootstrap, t, 1) == (10, 10)

    # below the log start offset: OFFSET_OUT_OF_RANGE, or reset to the start with earliest
    c = C.ck_consumer(b.bootstrap, **{"auto.offset.reset": "error"})
    try:
        c.assign([TopicPartition(t, 0, 2)])
        msg = first_error(c)
        assert msg.error() is not None, (msg.offset(), msg.value())
        assert msg.error().code() == KafkaError._AUTO_OFFSET_RESET, msg.error()
        assert "Offset out of range" in msg.error().str(), msg.error()
        assert msg.offset() == 2
    finally:
        c.close()
    recs = C.ck_read(b.bootstrap, t, 0, 2, 6, conf={"auto.offset.reset": "earliest"})
    assert [(r.offset, r.value) for r in recs] == [(o, b"p0-%d" % o) for o in range(4, 10)]

    from kafka import TopicPartition as KTP
    kc = C.kp_consumer(b.bootstrap, auto_offset_reset="earliest")
    try:
        tp = KTP(t, 0)
        kc.assign([tp])
        kc.seek(tp, 1)
        got = []
        deadline = time.monotonic() + 30
        while len(got) < 6 and time.monotonic() < deadline:
            for recs_ in kc.poll(timeout_ms=500).values():
                got += [(m.offset, m.value) for m in recs_]
        assert got == [(o, b"p0-%d" % o) for o in range(4, 10)]
    finally:
        kc.close()

    # lower than the current start: nothing happens; beyond the high watermark: an error
    m = Mismatches()
    lines, _ = delete_records(b, tmp_path, [(t, 0, 2)])
    m.eq("delete below the log start offset", lines, [f"partition: {t}-0\tlow_watermark: 4"])
    lines, stderr = delete_records(b, tmp_path, [(t, 0, 11)])
    m.eq("delete beyond the high watermark", lines, [
        f"partition: {t}-0\terror: org.apache.kafka.common.errors.OffsetOutOfRangeException: "
        "The requested offset is not within the range of offsets maintained by the server."])
    m.check()
    assert C.watermarks(b.bootstrap, t, 0) == (4, 10)

    # produce continues the offsets
    [r] = C.ck_produce(b.bootstrap, t, [C.Rec(None, b"more", (), 1)])
    assert (r.partition, r.offset) == (1, 10)
    assert C.watermarks(b.bootstrap, t, 1) == (10, 11)


def test_log_dirs(admin_broker):
    b = admin_broker
    t = C.unique_name("ld")
    C.create_topic(b.bootstrap, t, 2)
    C.ck_produce(b.bootstrap, t, [C.Rec(b"k%d" % i, b"v" * 100, (), 0) for i in range(50)])
    r = tool("kafka-log-dirs.sh", b.bootstrap, "--describe", "--topic-list", t)
    r.check()
    lines = r.stdout.splitlines()
    assert lines[:2] == ["Querying brokers for log directories information",
                         "Received log directory information from brokers 1"], r.stdout
    assert len(lines) == 3, r.stdout
    doc = json.loads(lines[2])
    sizes = {}
    for brk in doc["brokers"]:
        for d in brk["logDirs"]:
            d["partitions"].sort(key=lambda p: p["partition"])  # printed in no fixed order
            for p in d["partitions"]:
                sizes[p["partition"]] = p["size"]
                p["size"] = "<size>"
    assert doc == {"version": 1, "brokers": [{"broker": 1, "logDirs": [{
        "logDir": str(b.data_dir), "error": None, "partitions": [
            {"partition": f"{t}-0", "size": "<size>", "offsetLag": 0, "isFuture": False},
            {"partition": f"{t}-1", "size": "<size>", "offsetLag": 0, "isFuture": False}]}]}]}
    # the size is that of the partition's log segments on disk
    on_disk = sum(f.stat().st_size for f in (b.data_dir / f"{t}-0").glob("*.log"))
    assert sizes == {f"{t}-0": on_disk, f"{t}-1": 0}
    assert on_disk > 50 * 100


ADMIN_APIS = {  # name: (key, min, max) in Kafka 4.1.1
    "CreateTopics": (19, 2, 7), "DeleteTopics": (20, 1, 6), "DeleteRecords": (21, 0, 2),
    "DescribeConfigs": (32, 1, 4), "AlterConfigs": (33, 0, 2),
    "AlterReplicaLogDirs": (34, 1, 2), "DescribeLogDirs": (35, 1, 4),
    "CreatePartitions": (37, 0, 3), "IncrementalAlterConfigs": (44, 0, 1),
    "ListPartitionReassignments": (46, 0, 0), "DescribeCluster": (60, 0, 2),
    "DescribeTopicPartitions": (75, 0, 0),
}


def test_broker_api_versions_lists_admin_apis(admin_broker):
    from test_api_versions import parse

    r = kafka_script("kafka-broker-api-versions.sh", "--bootstrap-server",
                     admin_broker.bootstrap, timeout=60)
    r.check()
    _, apis = parse(r.stdout)
    got = {n: apis.get(n) for n in ADMIN_APIS}
    # the Java 4.1.1 client can use each one at its newest version
    assert got == {n: (k, lo, hi, hi) for n, (k, lo, hi) in ADMIN_APIS.items()}
