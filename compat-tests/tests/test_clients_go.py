"""Go clients against the broker: IBM/sarama 1.61.1 (at several `Version` settings),
segmentio/kafka-go 0.4.51 and confluent-kafka-go 2.11.1 (cgo, its bundled librdkafka 2.11),
all pinned in `clients/go/go.mod` and built into one binary, `.bin/gocompat`
(`clients/go/install.sh`).

Each test is one run of `gocompat <library>` (every operation bounded, the whole run under 60 s;
a few seconds normally) that does, with the library's own API:
- create a topic with 3 partitions and `retention.ms=3600000` (admin CreateTopics);
- produce 60 records to known partitions (record i → partition i % 3, acks=all) with distinct
  keys (one null), UTF-8 and binary values, five headers (a repeated key, an empty value) and
  explicit timestamps, collecting each acked (partition, offset);
- consume them in a consumer group from the earliest offset (auto offset reset), then describe
  the group while its member is active (Stable, one member, range assignor, all 3 partitions),
  commit synchronously and close the consumer (LeaveGroup);
- read the group's committed offsets back (OffsetFetch), list earliest/latest offsets
  (ListOffsets), list the groups and describe ours (Empty, no member), describe the topic's
  configs (DescribeConfigs) and its metadata (3 partitions led by node 1, one replica each);
- delete the group right after its consumer left (DeleteGroups: Kafka has completed the
  transition to Empty before it answers LeaveGroup), check it is no longer listed, delete the
  topic and wait (≤ 10 s) until Metadata no longer lists it.

Every test asserts the whole observation exactly: acked offsets dense from 0 in each partition
(record i at offset i // 3), exactly the 60 records read back — partition, offset, timestamp,
key, value and headers, no more, no fewer — committed offsets = end offsets = 20, earliest 0,
and each admin answer as Kafka 4.1.1 gives it.

sarama is run with the Version settings that matter against Kafka 4 (which removed the old
protocol versions, KIP-896): 0.11.0.0 is the oldest that produces, consumes in a group and
commits (0.10.x sends CreateTopics v0/v1 and Produce v2, both gone from Kafka 4: the broker
closes the connection); 1.1.0.0 is the oldest for the whole scenario (before it sarama sends
DescribeConfigs v0, also gone, and has no DeleteGroups: for 0.11.0.0 and 1.0.0.0 gocompat skips
DescribeConfigs, ListTopics (which describes every topic's configs) and the group deletion,
and waits for the topic's deletion through Metadata); then 2.0.0.0,
2.1.0.0, 2.8.0.0 (sarama's default), 3.6.0.0, 4.1.0.0 and the newest constant, 4.3.1.0 (newer
than the broker: sarama caps each request at the broker's ApiVersions maximum).

Request versions each configuration sends (recorded through a proxy against gregor, which
advertises Kafka 4.1.1's ranges; "a/b" = both; kafka-go sends no Heartbeat in a run this short):

| client | Produce | Fetch | ListOffsets | Metadata | OffsetCommit | OffsetFetch | JoinGroup | SyncGroup | Heartbeat | LeaveGroup | DescribeGroups | ListGroups | CreateTopics | DeleteTopics | DescribeConfigs | DeleteGroups |
|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|
| sarama 0.11.0.0 | 3 | 5 | 2 | 4 | 3 | 3 | 2 | 1 | 1 | 1 | 0 | 1 | 2 | 1 | – | – |
| sarama 1.0.0.0 | 5 | 6 | 2 | 5 | 3 | 3 | 2 | 1 | 1 | 1 | 0 | 1 | 2 | 1 | – | – |
| sarama 1.1.0.0 | 5 | 7 | 2 | 5 | 3 | 3 | 2 | 1 | 1 | 1 | 1 | 1 | 2 | 1 | 1 | 0 |
| sarama 2.0.0.0 | 6 | 8 | 3 | 6 | 4 | 4 | 3 | 2 | 2 | 2 | 2 | 2 | 3 | 2 | 2 | 1 |
| sarama 2.1.0.0 | 7 | 10 | 4 | 7 | 6 | 5 | 3 | 2 | 2 | 2 | 2 | 2 | 3 | 3 | 2 | 1 |
| sarama 2.8.0.0 | 9 | 12 | 6 | 11 | 8 | 7 | 7 | 5 | 4 | 4 | 5 | 4 | 7 | 6 | 4 | 2 |
| sarama 3.6.0.0 | 9 | 12 | 6 | 11 | 8 | 8 | 8 | 5 | 4 | 5 | 5 | 4 | 7 | 6 | 4 | 2 |
| sarama 4.1.0.0, 4.3.1.0 | 10 | 12 | 6 | 11 | 8 | 8 | 8 | 5 | 4 | 5 | 5 | 5 | 7 | 6 | 4 | 2 |
| kafka-go | 8 | 10 | 1/5 | 6/8 | 2 | 1/5 | 2 | 0 | – | 0 | 5 | 2 | 5 | 3 | 3 | 2 |
| confluent-kafka-go | 10 | 16 | 7 | 13 | 9 | 9 | 5 | 3 | 3 | 1 | 4 | 5 | 4 | 1 | 1 | 1 |

Fails when `.bin/gocompat` is missing (Go not installed, or the build failed).
"""

import json
import subprocess
import time

import pytest

from harness import clients as C
from harness.broker import COMPAT_DIR

BIN = COMPAT_DIR / ".bin" / "gocompat"
N = 60
PARTITIONS = 3



@pytest.fixture(autouse=True)
def _gocompat_installed():
    """install.sh builds it; a missing client is a failure, never a silent skip."""
    if not BIN.exists():
        pytest.fail("gocompat missing (compat-tests/clients/go/install.sh)")

SARAMA_VERSIONS = ["0.11.0.0", "1.0.0.0", "1.1.0.0", "2.0.0.0", "2.1.0.0", "2.8.0.0", "3.6.0.0",
                   "4.1.0.0", "4.3.1.0"]
# Before 1.1.0.0 sarama's DescribeConfigs is v0, which Kafka 4 no longer has, and sarama has
# no DeleteGroups: gocompat skips both (and ListTopics, which describes every topic's configs).
SARAMA_BEFORE_1_1 = {"0.11.0.0", "1.0.0.0"}


def _text(b):
    """gocompat's encoding of key/value bytes: text if valid UTF-8 without NUL, else hex."""
    if b is None:
        return None
    try:
        s = b.decode("utf-8")
        if "\x00" not in s:
            return s
    except UnicodeDecodeError:
        pass
    return "hex:" + b.hex()


def expected_record(i, lib, ts_base):
    """Record i exactly as gocompat's key(i)/value(i)/headers(i) send it, at its offset."""
    key = None if i % 20 == 13 else f"key-{i}".encode()
    value = bytes([0x00, 0xFF, 0x80, i, 0x0A, 0x09]) if i % 10 == 7 \
        else f"value-{i}-\u00e9\u2713".encode()
    headers = [["idx", str(i)], ["dup", f"a{i}"], ["dup", f"b{i}"], ["empty", ""], ["lib", lib]]
    return {"p": i % PARTITIONS, "o": i // PARTITIONS, "t": ts_base + i, "k": _text(key),
            "v": _text(value), "h": headers}


def run_gocompat(lib, bootstrap, topic, group, ts_base, *extra):
    cmd = [str(BIN), lib, "--bootstrap", bootstrap, "--topic", topic, "--group", group,
           "--ts-base", str(ts_base), "--deadline", "55", *extra]
    t0 = time.monotonic()
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=90)
    took = time.monotonic() - t0
    try:
        out = json.loads(p.stdout)
    except json.JSONDecodeError:
        out = None
    if p.returncode != 0 or out is None:
        if out is not None:  # the partial result, records summarized
            out["produced"] = f"{len(out.get('produced') or [])} acked"
            out["consumed"] = f"{len(out.get('consumed') or [])} records"
        partial = json.dumps(out, indent=1) if out is not None else p.stdout[-4000:]
        raise AssertionError(f"gocompat {lib} {' '.join(extra)} exited {p.returncode} after "
                             f"{took:.1f}s\n--- stderr ---\n{p.stderr[-4000:]}\n"
                             f"--- partial result ---\n{partial}")
    return out


def check(out, lib, topic, ts_base, version=None, describe_configs=True, delete_group=True,
          listed=None, active_extra=None, empty_extra=None):
    notes = out.pop("notes", None)
    ctx = f"(notes: {notes})"
    assert out.pop("library") == lib
    assert out.pop("version", None) == version
    # acked: record i at partition i%3, offset i//3
    assert out.pop("produced") == [[i % PARTITIONS, i // PARTITIONS] for i in range(N)], ctx
    # exactly the 60 records, sorted by (partition, offset)
    want = sorted((expected_record(i, lib, ts_base) for i in range(N)), key=lambda r: (r["p"], r["o"]))
    got = out.pop("consumed")
    assert len(got) == N, f"{len(got)} records consumed {ctx}"
    for g, w in zip(got, want):
        assert g == w, ctx
    ends = {str(p): N // PARTITIONS for p in range(PARTITIONS)}
    configs = {
        "cleanup.policy": {"value": "delete", "source": "DEFAULT_CONFIG"},
        "max.message.bytes": {"value": "1048588", "source": "DEFAULT_CONFIG"},
        "retention.ms": {"value": "3600000", "source": "DYNAMIC_TOPIC_CONFIG"},
    } if describe_configs else {}
    expected = {
        "created": "ok",
        "active_group": {"state": "Stable", "members": 1, "assignment": {topic: [0, 1, 2]},
                         **(active_extra or {})},
        "committed": ends,
        "earliest": {str(p): 0 for p in range(PARTITIONS)},
        "latest": ends,
        "listed": listed,
        "empty_group": {"state": "Empty", "members": 0, **(empty_extra or {})},
        "configs": configs,
        "partitions": [[p, 1, 1] for p in range(PARTITIONS)],
        "group_deleted": "ok" if delete_group else "skipped: needs Version >= 1.1.0.0",
        "group_listed_after_delete": not delete_group,
        "topic_deleted": "ok",
        "topic_gone": True,
    }
    assert out == expected, ctx


def _ts_base():
    # 10 minutes ago: well inside the topic's 1 h retention and Kafka's timestamp bounds
    return (int(time.time()) - 600) * 1000


@pytest.mark.parametrize("version", SARAMA_VERSIONS, ids=lambda v: "V" + v.replace(".", "_"))
def test_sarama(module_broker, version):
    """sarama at Version `version`: ClusterAdmin CreateTopic, SyncProducer (manual partitioner,
    headers, timestamps) SendMessages, ConsumerGroup (range, OffsetOldest, MarkMessage + a
    synchronous session Commit), ClusterAdmin DescribeConsumerGroups (state, protocol type
    "consumer", protocol "range", the member's assignment), ListConsumerGroupOffsets,
    Client.GetOffset (oldest/newest), ListConsumerGroups, DescribeConfig (from 1.1.0.0),
    DescribeTopics, DeleteConsumerGroup right after Close, DeleteTopic + ListTopics: all exact."""
    topic, group = C.unique_name("go-sarama"), C.unique_name("g-sarama")
    ts = _ts_base()
    out = run_gocompat("sarama", module_broker.bootstrap, topic, group, ts, "--version", version)
    check(out, "sarama", topic, ts, version=version,
          describe_configs=version not in SARAMA_BEFORE_1_1,
          delete_group=version not in SARAMA_BEFORE_1_1,
          listed={"protocol_type": "consumer"},
          active_extra={"protocol_type": "consumer", "protocol": "range"},
          empty_extra={"protocol_type": "consumer"})


def test_kafka_go(module_broker):
    """kafka-go 0.4.51: Client.CreateTopics, Writer (balancer → partition i%3, acks=all,
    headers, timestamps; offsets from its Completion callback), a group Reader (FirstOffset,
    FetchMessage, then CommitMessages), Client.DescribeGroups (Stable with the member's
    assignment; Empty after Close), OffsetFetch, ListOffsets (first/last), ListGroups (protocol
    type "consumer"), DescribeConfigs, Metadata, DeleteGroups right after Close, DeleteTopics:
    all exact."""
    topic, group = C.unique_name("go-kafkago"), C.unique_name("g-kafkago")
    ts = _ts_base()
    out = run_gocompat("kafkago", module_broker.bootstrap, topic, group, ts)
    check(out, "kafkago", topic, ts, listed={"protocol_type": "consumer"})


def test_confluent_kafka_go(module_broker):
    """confluent-kafka-go 2.11.1 (librdkafka 2.11): AdminClient CreateTopics, Producer
    (explicit partitions, headers, timestamps, acks=all; delivery reports), a subscribed
    Consumer (auto.offset.reset=earliest, enable.auto.commit=false, Poll, synchronous Commit,
    Close), AdminClient DescribeConsumerGroups (Stable, assignor "range", the member's
    assignment; Empty after Close), ListConsumerGroupOffsets (require stable), ListOffsets
    (earliest/latest), ListConsumerGroups (Empty, Classic, not simple), DescribeConfigs,
    DescribeTopics, DeleteConsumerGroups right after Close, DeleteTopics + GetMetadata: all
    exact."""
    topic, group = C.unique_name("go-ckgo"), C.unique_name("g-ckgo")
    ts = _ts_base()
    out = run_gocompat("ckgo", module_broker.bootstrap, topic, group, ts)
    check(out, "ckgo", topic, ts, listed={"simple": "false", "state": "Empty", "type": "Classic"},
          active_extra={"protocol": "range"})
