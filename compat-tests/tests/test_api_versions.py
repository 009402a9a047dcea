"""kafka-broker-api-versions.sh (the Java AdminClient's ApiVersions handshake, v4 first).

Both targets: the tool exits 0, names broker id 1, and the core APIs are present and usable
by the Java 4.1.1 client, with the floors Kafka 4.x clients rely on (Produce advertised from 0,
see KAFKA-18659; Fetch from 4; ApiVersions 0..4).
Both targets advertise exactly Apache Kafka 4.1.1's ranges for the core APIs (clients infer the
broker's generation from them; gregor caps none of these).
"""

import re

from harness.java import kafka_script

LINE = re.compile(r"^\s*(\w+)\((\d+)\): (.*?),?$")
RANGE = re.compile(r"^(\d+)(?: to (\d+))? \[usable: (\d+)\]$")

# What Apache Kafka 4.1.1 advertises (checked against the real broker).
KAFKA_4_1_1 = {
    "Produce": (0, 13), "Fetch": (4, 18), "ListOffsets": (1, 10), "Metadata": (0, 13),
    "ApiVersions": (0, 4), "CreateTopics": (2, 7), "InitProducerId": (0, 5),
    "FindCoordinator": (0, 6), "OffsetCommit": (2, 9), "OffsetFetch": (1, 9),
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

    got = {n: apis[n][1:3] for n in KAFKA_4_1_1}
    assert got == KAFKA_4_1_1
