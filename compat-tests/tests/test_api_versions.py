"""kafka-broker-api-versions.sh (the Java AdminClient's ApiVersions handshake, v4 first).

Both targets: the tool exits 0, names broker id 1, and the core APIs are present and usable
by the Java 4.1.1 client, with the floors Kafka 4.x clients rely on (Produce advertised from 0,
see KAFKA-18659; Fetch from 4; ApiVersions 0..4).
Every API either target advertises has exactly Apache Kafka 4.1.1's range (clients infer the
broker's generation from them; gregor caps none), and target=kafka advertises all of Kafka's.
"""

import re

from harness.broker import is_kafka
from harness.java import kafka_script

LINE = re.compile(r"^\s*(\w+)\((\d+)\): (.*?),?$")
RANGE = re.compile(r"^(\d+)(?: to (\d+))? \[usable: (\d+)\]$")

# The core APIs, which both targets must advertise.
CORE = ["Produce", "Fetch", "ListOffsets", "Metadata", "ApiVersions", "CreateTopics",
        "InitProducerId", "FindCoordinator", "OffsetCommit", "OffsetFetch"]

# Every API Apache Kafka 4.1.1 advertises with a range the Java 4.1.1 client can use, as printed
# by kafka-broker-api-versions.sh against the real broker (telemetry and streams-group APIs,
# which the tool shows as UNSUPPORTED, left out).
KAFKA_4_1_1 = {
    "Produce": (0, 13), "Fetch": (4, 18), "ListOffsets": (1, 10), "Metadata": (0, 13),
    "OffsetCommit": (2, 9), "OffsetFetch": (1, 9), "FindCoordinator": (0, 6),
    "JoinGroup": (0, 9), "Heartbeat": (0, 4), "LeaveGroup": (0, 5), "SyncGroup": (0, 5),
    "DescribeGroups": (0, 6), "ListGroups": (0, 5), "SaslHandshake": (0, 1),
    "ApiVersions": (0, 4), "CreateTopics": (2, 7), "DeleteTopics": (1, 6),
    "DeleteRecords": (0, 2), "InitProducerId": (0, 5), "OffsetForLeaderEpoch": (2, 4),
    "AddPartitionsToTxn": (0, 5), "AddOffsetsToTxn": (0, 4), "EndTxn": (0, 5),
    "WriteTxnMarkers": (1, 1), "TxnOffsetCommit": (0, 5), "DescribeAcls": (1, 3),
    "CreateAcls": (1, 3), "DeleteAcls": (1, 3), "DescribeConfigs": (1, 4),
    "AlterConfigs": (0, 2), "AlterReplicaLogDirs": (1, 2), "DescribeLogDirs": (1, 4),
    "SaslAuthenticate": (0, 2), "CreatePartitions": (0, 3), "CreateDelegationToken": (1, 3),
    "RenewDelegationToken": (1, 2), "ExpireDelegationToken": (1, 2),
    "DescribeDelegationToken": (1, 3), "DeleteGroups": (0, 2), "ElectLeaders": (0, 2),
    "IncrementalAlterConfigs": (0, 1), "AlterPartitionReassignments": (0, 1),
    "ListPartitionReassignments": (0, 0), "OffsetDelete": (0, 0),
    "DescribeClientQuotas": (0, 1), "AlterClientQuotas": (0, 1),
    "DescribeUserScramCredentials": (0, 0), "AlterUserScramCredentials": (0, 0),
    "DescribeQuorum": (0, 2), "UpdateFeatures": (0, 2), "DescribeCluster": (0, 2),
    "DescribeProducers": (0, 0), "UnregisterBroker": (0, 0), "DescribeTransactions": (0, 0),
    "ListTransactions": (0, 2), "ConsumerGroupHeartbeat": (0, 1),
    "ConsumerGroupDescribe": (0, 1), "ListConfigResources": (0, 1),
    "DescribeTopicPartitions": (0, 0), "ShareGroupHeartbeat": (1, 1),
    "ShareGroupDescribe": (1, 1), "ShareFetch": (1, 1), "ShareAcknowledge": (1, 1),
    "AddRaftVoter": (0, 0), "RemoveRaftVoter": (0, 0), "InitializeShareGroupState": (0, 0),
    "ReadShareGroupState": (0, 0), "WriteShareGroupState": (0, 0),
    "DeleteShareGroupState": (0, 0), "ReadShareGroupStateSummary": (0, 0),
    "DescribeShareGroupOffsets": (0, 0), "AlterShareGroupOffsets": (0, 0),
    "DeleteShareGroupOffsets": (0, 0),
}


def parse(stdout):
    header = stdout.splitlines()[0]
    apis = {}
    for line in stdout.splitlines()[1:]:
        m = LINE.match(line)
        if not m:
            continue
        name, key, rest = m.group(1), int(m.group(2)), m.group(3)
        r = RANGE.match(rest)
        if r:
            lo = int(r.group(1))
            hi = int(r.group(2)) if r.group(2) else lo
            apis[name] = (key, lo, hi, int(r.group(3)))
        else:
            apis[name] = (key, None, None, rest)  # e.g. UNSUPPORTED
    return header, apis


def test_broker_api_versions(broker):
    r = kafka_script("kafka-broker-api-versions.sh", "--bootstrap-server", broker.bootstrap,
                     timeout=60)
    r.check()
    header, apis = parse(r.stdout)
    assert header.startswith(f"{broker.bootstrap} (id: 1 rack: null"), header
    assert header.rstrip().endswith("-> ("), header
    assert r.stdout.rstrip().endswith(")")

    for name, key in [("Produce", 0), ("Fetch", 1), ("ListOffsets", 2), ("Metadata", 3),
                      ("ApiVersions", 18)]:
        assert name in apis, f"{name} missing from:\n{r.stdout}"
        k, lo, hi, usable = apis[name]
        assert k == key
        assert lo is not None and isinstance(usable, int), f"{name} not usable: {apis[name]}"
        assert lo <= usable <= hi

    assert apis["Produce"][1] == 0, "Produce must be advertised from v0 (KAFKA-18659)"
    assert apis["Fetch"][1] == 4, "Fetch floor is v4 in Kafka 4.x"
    assert apis["ApiVersions"][1:3] == (0, 4)

    # Every advertised API must overlap what the Java 4.1.1 client speaks.
    unusable = {n: v for n, v in apis.items() if v[1] is not None and not isinstance(v[3], int)}
    assert not unusable, unusable

    # Every API a target advertises has exactly Kafka 4.1.1's range (gregor caps none), and the
    # core APIs are all there.
    advertised = {n: v[1:3] for n, v in apis.items() if v[1] is not None}
    assert set(CORE) <= set(advertised), advertised
    assert advertised == {n: KAFKA_4_1_1[n] for n in advertised}, advertised
    if is_kafka():
        assert advertised == KAFKA_4_1_1
