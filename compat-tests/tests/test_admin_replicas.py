"""Replica and quorum administration on a single node, with Kafka 4.1.1's own tools and raw
requests, every answer exact:

- kafka-leader-election.sh (ElectLeaders, key 43): preferred and unclean elections for all
  partitions (nothing printed: the controller leaves out partitions that need no election),
  for one partition and for a JSON list ("Valid replica already elected for partitions ..."),
  and for an unknown topic or partition (UNKNOWN_TOPIC_OR_PARTITION with Kafka's message, exit 1).
- kafka-reassign-partitions.sh (AlterPartitionReassignments 45, ListPartitionReassignments 46):
  --list with nothing in progress, --execute of a reassignment onto the only broker (same
  replicas), --verify, --cancel, a reassignment to broker 7 refused; raw requests for what the
  tool never sends: cancelling with nothing in progress (NO_REASSIGNMENT_IN_PROGRESS for each
  partition), broker 7 / a duplicate / an empty replica list (INVALID_REPLICA_ASSIGNMENT),
  an unknown topic or partition (UNKNOWN_TOPIC_OR_PARTITION), each with Kafka's message. The
  records produced before read back exactly afterwards.
- kafka-metadata-quorum.sh describe --status / --replication (DescribeQuorum 55 and
  DescribeCluster 60): the node is the leader and the only voter, no observers, no follower
  lag, the cluster id is the one Metadata and DescribeCluster give. Epochs, offsets and
  timestamps are only checked for shape, they legitimately differ.
- ListConfigResources (key 74; v1 is KIP-1142, new in 4.1): raw v1 requests (TOPIC lists every
  topic Metadata lists, internal ones included; GROUP lists only groups with dynamic configs,
  so a group with committed offsets only is not listed; BROKER and BROKER_LOGGER list the node;
  no types = all five; any other type = UNSUPPORTED_VERSION and nothing listed) and v0 (client
  metrics only); kafka-client-metrics.sh --list / --describe and kafka-configs.sh --describe
  --entity-type client-metrics (which send it); kafka-configs.sh --describe --entity-type
  groups (ListGroups + ListConfigResources + DescribeConfigs of each group).
"""

import json
import re
import socket
import struct
import time

from confluent_kafka import TopicPartition

from harness import clients as C
from harness.admin import Mismatches, parse_topics_describe, tool
from harness.broker import is_kafka
from harness.groups import ck_group_consumer

NODE = 1  # node.id the harness gives both targets

UNKNOWN_TOPIC_OR_PARTITION = 3
UNSUPPORTED_VERSION = 35
INVALID_REPLICA_ASSIGNMENT = 39
NO_REASSIGNMENT_IN_PROGRESS = 85

TOPIC, BROKER, BROKER_LOGGER, CLIENT_METRICS, GROUP = 2, 4, 8, 16, 32

UNKNOWN_TOPIC_EXC = "org.apache.kafka.common.errors.UnknownTopicOrPartitionException"


# ---- raw flexible-version frames (request header v2, response header v1) ------------------

def _uvarint(n):
    out = b""
    while True:
        b, n = n & 0x7F, n >> 7
        if not n:
            return out + bytes([b])
        out += bytes([b | 0x80])


TAGS = _uvarint(0)  # no tagged fields


def _cstr(s):
    b = s.encode()
    return _uvarint(len(b) + 1) + b


def _carray(items, enc):
    """COMPACT_(NULLABLE_)ARRAY; None = null."""
    if items is None:
        return _uvarint(0)
    return _uvarint(len(items) + 1) + b"".join(enc(i) for i in items)


class _Reader:
    def __init__(self, buf):
        self.buf, self.pos = buf, 0

    def take(self, n):
        v = self.buf[self.pos:self.pos + n]
        assert len(v) == n, f"response too short: {self.buf!r}"
        self.pos += n
        return v

    def i8(self):
        return struct.unpack(">b", self.take(1))[0]

    def i16(self):
        return struct.unpack(">h", self.take(2))[0]

    def i32(self):
        return struct.unpack(">i", self.take(4))[0]

    def bool(self):
        return self.take(1) != b"\0"

    def uvarint(self):
        shift = n = 0
        while True:
            b = self.take(1)[0]
            n |= (b & 0x7F) << shift
            if not b & 0x80:
                return n
            shift += 7

    def cstr(self):
        n = self.uvarint()
        return None if n == 0 else self.take(n - 1).decode()

    def carray(self, item):
        n = self.uvarint()
        return None if n == 0 else [item(self) for _ in range(n - 1)]

    def tags(self):
        for _ in range(self.uvarint()):
            self.uvarint()
            self.take(self.uvarint())

    def end(self):
        self.tags()
        assert self.pos == len(self.buf), f"{len(self.buf) - self.pos} trailing bytes"


def raw_call(b, api_key, version, body, corr=0x5EED):
    """One request with a v2 header (flexible versions) -> reader past the v1 response header."""
    cid = b"gregor-compat"
    frame = struct.pack(">hhih", api_key, version, corr, len(cid)) + cid + TAGS + body
    with socket.create_connection((b.host, b.port), timeout=30) as s:
        s.settimeout(30)
        s.sendall(struct.pack(">i", len(frame)) + frame)
        buf = b""
        while len(buf) < 4 or len(buf) < 4 + struct.unpack(">i", buf[:4])[0]:
            chunk = s.recv(65536)
            assert chunk, f"connection closed (api {api_key} v{version})"
            buf += chunk
    r = _Reader(buf[4:])
    assert r.i32() == corr
    r.tags()
    return r


def list_config_resources(b, types, version=1):
    """ListConfigResources -> (error code, sorted [(name, type)]); v0 has no types (and its
    resources no type: None)."""
    body = (_carray(types, lambda t: struct.pack(">b", t)) if version >= 1 else b"") + TAGS
    r = raw_call(b, 74, version, body)
    r.i32()  # throttle

    def item(r):
        name = r.cstr()
        ty = r.i8() if version >= 1 else None
        r.tags()
        return (name, ty)

    err = r.i16()
    res = r.carray(item)
    r.end()
    return err, sorted(res, key=lambda x: (x[1] or 0, x[0]))


def alter_partition_reassignments(b, topics, version=0):
    """AlterPartitionReassignments: topics = [(name, [(partition, replicas or None)])] ->
    (top-level error, message, [(topic, partition, error, message)]) (v1: allow RF change
    sent as true, and the response's echo checked)."""
    def part(p):
        idx, replicas = p
        return (struct.pack(">i", idx) + _carray(replicas, lambda x: struct.pack(">i", x))
                + TAGS)

    body = struct.pack(">i", 30000) + (b"\x01" if version >= 1 else b"")
    body += _carray(topics, lambda t: _cstr(t[0]) + _carray(t[1], part) + TAGS) + TAGS
    r = raw_call(b, 45, version, body)
    r.i32()  # throttle
    if version >= 1:
        assert r.bool() is True, "AllowReplicationFactorChange echo"
    err, msg = r.i16(), r.cstr()
    out = []

    def presp(r):
        x = (r.i32(), r.i16(), r.cstr())
        r.tags()
        return x

    def tresp(r):
        name = r.cstr()
        for p, e, m in r.carray(presp):
            out.append((name, p, e, m))
        r.tags()

    r.carray(tresp)
    r.end()
    return err, msg, out


def list_partition_reassignments(b, topics):
    """ListPartitionReassignments v0: topics = None (all) or [(name, [partitions])] ->
    (error, message, [(topic, partition, replicas, adding, removing)])."""
    body = struct.pack(">i", 30000)
    body += _carray(topics, lambda t: _cstr(t[0]) + _carray(t[1], lambda p: struct.pack(">i", p))
                    + TAGS) + TAGS
    r = raw_call(b, 46, 0, body)
    r.i32()
    err, msg = r.i16(), r.cstr()
    out = []
    ints = lambda r: r.carray(lambda r: r.i32())  # noqa: E731

    def ptr(r):
        x = (r.i32(), ints(r), ints(r), ints(r))
        r.tags()
        return x

    def ttr(r):
        name = r.cstr()
        for p in r.carray(ptr):
            out.append((name,) + p)
        r.tags()

    r.carray(ttr)
    r.end()
    return err, msg, out


# ---- helpers ---------------------------------------------------------------------------

def ok(r):
    assert r.returncode == 0, f"{r.args}: rc {r.returncode}\n{r.stdout}\n{r.stderr[-3000:]}"
    return r.stdout


def produce_all(b, t, partitions, n=10):
    recs = [C.Rec(b"k%d" % i, b"%s-p%d-v%d" % (t.encode(), p, i), (("h", b"%d" % i),), p)
            for p in range(partitions) for i in range(n)]
    return C.ck_produce(b.bootstrap, t, recs)


def check_records(b, t, partitions, recs):
    for p in range(partitions):
        want = [r for r in recs if r.partition == p]
        got = C.ck_read(b.bootstrap, t, p, count=len(want))
        assert [g.full() for g in got] == [w.full() for w in want], (t, p)
        assert [g.offset for g in got] == list(range(len(want))), (t, p)


def replicas_of(b, t):
    """{partition: (Leader, Replicas, Isr)} from kafka-topics.sh --describe."""
    d = parse_topics_describe(ok(tool("kafka-topics.sh", b.bootstrap, "--describe",
                                      "--topic", t)))
    return {p: (f["Leader"], f["Replicas"], f["Isr"]) for p, f in d[t]["partitions"].items()}


def elect(b, *args):
    return tool("kafka-leader-election.sh", b.bootstrap, *args)


def reassign(b, tmp_path, doc, *args):
    f = tmp_path / f"reassign-{time.monotonic_ns()}.json"
    f.write_text(json.dumps(doc))
    return tool("kafka-reassign-partitions.sh", b.bootstrap, "--reassignment-json-file", str(f),
                *args)


def stderr_head(r):
    return r.stderr.splitlines()[:1]


# ---- kafka-leader-election.sh ----------------------------------------------------------

def test_leader_election(module_broker, tmp_path):
    b = module_broker
    m = Mismatches()
    t, t1 = C.unique_name("elect"), C.unique_name("elect1")
    C.create_topic(b.bootstrap, t, 3)
    C.create_topic(b.bootstrap, t1, 1)
    recs = produce_all(b, t, 3)
    before = replicas_of(b, t)
    assert before == {p: (str(NODE), str(NODE), str(NODE)) for p in range(3)}, before

    # Every partition: the controller leaves out the ones that need no election, so the
    # result is empty and the tool prints nothing.
    for etype in ("preferred", "unclean"):
        r = elect(b, "--election-type", etype, "--all-topic-partitions")
        m.eq(f"{etype} --all-topic-partitions (rc, stdout)", (r.returncode, r.stdout), (0, ""))

    # Named partitions: ELECTION_NOT_NEEDED for each.
    r = elect(b, "--election-type", "preferred", "--topic", t, "--partition", "0")
    m.eq("preferred --topic --partition 0", (r.returncode, r.stdout),
         (0, f"Valid replica already elected for partitions {t}-0\n"))
    r = elect(b, "--election-type", "unclean", "--topic", t, "--partition", "2")
    m.eq("unclean --topic --partition 2", (r.returncode, r.stdout),
         (0, f"Valid replica already elected for partitions {t}-2\n"))

    # Unknown topic / partition: the controller's UNKNOWN_TOPIC_OR_PARTITION message.
    nosuch = C.unique_name("nosuch")
    for etype, topic, part, msg in [
        ("preferred", nosuch, 0, f"No such topic as {nosuch}"),
        ("unclean", nosuch, 0, f"No such topic as {nosuch}"),
        ("preferred", t, 7, f"No such partition as {t}-7"),
    ]:
        r = elect(b, "--election-type", etype, "--topic", topic, "--partition", str(part))
        m.eq(f"{etype} {topic}-{part}", (r.returncode, r.stdout, stderr_head(r)), (
            1, f"Error completing leader election ({etype.upper()}) for partition: "
               f"{topic}-{part}: {UNKNOWN_TOPIC_EXC}: {msg}\n",
            ["1 replica(s) could not be elected"]))

    # A JSON list across two topics with an unknown one: the no-op line (a Java HashSet, in
    # hash order) then the error, exit 1.
    f = tmp_path / "election.json"
    f.write_text(json.dumps({"partitions": [
        {"topic": t, "partition": 1}, {"topic": t1, "partition": 0},
        {"topic": t, "partition": 0}, {"topic": nosuch, "partition": 3}]}))
    r = elect(b, "--election-type", "preferred", "--path-to-json-file", str(f))
    lines = r.stdout.splitlines()
    prefix = "Valid replica already elected for partitions "
    m.eq("--path-to-json-file rc", r.returncode, 1)
    m.eq("--path-to-json-file lines", len(lines), 2)
    if lines and lines[0].startswith(prefix):
        m.eq("--path-to-json-file no-op partitions", sorted(lines[0][len(prefix):].split(", ")),
             sorted([f"{t}-0", f"{t}-1", f"{t1}-0"]))
    else:
        m.eq("--path-to-json-file first line", lines[:1], [prefix + "..."])
    m.eq("--path-to-json-file error line", lines[1:], [
        f"Error completing leader election (PREFERRED) for partition: {nosuch}-3: "
        f"{UNKNOWN_TOPIC_EXC}: No such topic as {nosuch}"])
    m.eq("--path-to-json-file stderr", stderr_head(r), ["1 replica(s) could not be elected"])

    m.eq("replicas after the elections", replicas_of(b, t), before)
    m.check()
    check_records(b, t, 3, recs)


# ---- kafka-reassign-partitions.sh and the raw reassignment requests ----------------------

def test_reassign_partitions(module_broker, tmp_path):
    b = module_broker
    m = Mismatches()
    t, t2 = C.unique_name("reassign"), C.unique_name("reassign2")
    C.create_topic(b.bootstrap, t, 3)
    C.create_topic(b.bootstrap, t2, 1)
    recs, recs2 = produce_all(b, t, 3), produce_all(b, t2, 1)
    same = {p: (str(NODE), str(NODE), str(NODE)) for p in range(3)}
    assert replicas_of(b, t) == same

    none_found = "No partition reassignments found.\n"
    m.eq("--list before", ok(tool("kafka-reassign-partitions.sh", b.bootstrap, "--list")),
         none_found)

    doc = {"version": 1, "partitions": [
        {"topic": t, "partition": p, "replicas": [NODE]} for p in range(3)]}
    current = {"version": 1, "partitions": [
        {"topic": t, "partition": p, "replicas": [NODE], "log_dirs": ["any"]} for p in range(3)]}
    r = reassign(b, tmp_path, doc, "--execute")
    m.eq("--execute", (r.returncode, r.stdout), (0, (
        "Current partition replica assignment\n\n"
        + json.dumps(current, separators=(",", ":")) + "\n\n"
        "Save this to use as the --reassignment-json-file option during rollback\n"
        f"Successfully started partition reassignments for {t}-0,{t}-1,{t}-2\n")))

    verified = ("Status of partition reassignment:\n"
                + "".join(f"Reassignment of partition {t}-{p} is completed.\n" for p in range(3))
                + "\nClearing broker-level throttles on broker 1\n"
                f"Clearing topic-level throttles on topic {t}\n")
    deadline = time.monotonic() + 30
    while True:  # same replicas: complete at once on Kafka; allow a moment anyway
        r = reassign(b, tmp_path, doc, "--verify")
        if (r.returncode, r.stdout) == (0, verified) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    m.eq("--verify", (r.returncode, r.stdout), (0, verified))

    m.eq("--list after", ok(tool("kafka-reassign-partitions.sh", b.bootstrap, "--list")),
         none_found)
    r = reassign(b, tmp_path, doc, "--cancel")
    # (the tool prints "...moves are active." without a newline)
    m.eq("--cancel", (r.returncode, r.stdout), (0, (
        "None of the specified partition reassignments are active.\n"
        "None of the specified partition moves are active."
        "Clearing broker-level throttles on broker 1\n"
        f"Clearing topic-level throttles on topic {t}\n")))

    # a reassignment to a broker that does not exist: the tool checks DescribeCluster's nodes
    r = reassign(b, tmp_path, {"version": 1, "partitions": [
        {"topic": t2, "partition": 0, "replicas": [7]}]}, "--execute")
    m.eq("--execute to broker 7", (r.returncode, r.stdout.splitlines()[:2]), (1, [
        "Error: Unknown broker id 7",
        "org.apache.kafka.tools.AdminCommandFailedException: Unknown broker id 7"]))

    # Raw: cancelling with nothing in progress; the broker-side refusals.
    nosuch = C.unique_name("nosuch")
    m.eq("cancel (null replicas), nothing in progress", alter_partition_reassignments(b, [
        (t, [(0, None), (1, None)]), (t2, [(0, None)])]), (0, None, [
            (t, 0, NO_REASSIGNMENT_IN_PROGRESS, None),
            (t, 1, NO_REASSIGNMENT_IN_PROGRESS, None),
            (t2, 0, NO_REASSIGNMENT_IN_PROGRESS, None)]))
    m.eq("reassign refusals", alter_partition_reassignments(b, [
        (t2, [(0, [7])]),
        (t, [(0, [NODE, NODE]), (1, []), (5, [NODE])]),
        (nosuch, [(0, [NODE])]),
    ]), (0, None, [
        (t2, 0, INVALID_REPLICA_ASSIGNMENT,
         "The manual partition assignment includes broker 7, but no such broker is registered."),
        (t, 0, INVALID_REPLICA_ASSIGNMENT,
         f"The manual partition assignment includes the broker {NODE} more than once."),
        (t, 1, INVALID_REPLICA_ASSIGNMENT,
         "The manual partition assignment includes an empty replica list."),
        (t, 5, UNKNOWN_TOPIC_OR_PARTITION, f"Unable to find partition {t}:5."),
        (nosuch, 0, UNKNOWN_TOPIC_OR_PARTITION, f"Unable to find a topic named {nosuch}."),
    ]))
    m.eq("reassign onto the same replica (v0)",
         alter_partition_reassignments(b, [(t2, [(0, [NODE])])]), (0, None, [(t2, 0, 0, None)]))
    m.eq("reassign onto the same replica (v1)",
         alter_partition_reassignments(b, [(t2, [(0, [NODE])])], version=1),
         (0, None, [(t2, 0, 0, None)]))
    m.eq("ListPartitionReassignments (all)", list_partition_reassignments(b, None),
         (0, None, []))
    m.eq("ListPartitionReassignments (named, and an unknown topic)",
         list_partition_reassignments(b, [(t, [0, 1, 2]), (nosuch, [0])]), (0, None, []))
    m.eq("--list at the end", ok(tool("kafka-reassign-partitions.sh", b.bootstrap, "--list")),
         none_found)

    m.eq("replicas after", replicas_of(b, t), same)
    m.eq("replicas after (t2)", replicas_of(b, t2), {0: (str(NODE),) * 3})
    m.check()
    check_records(b, t, 3, recs)
    check_records(b, t2, 1, recs2)


# ---- kafka-metadata-quorum.sh ----------------------------------------------------------

UUID22 = re.compile(r"^[A-Za-z0-9_-]{22}$")
ZERO_UUID = "AAAAAAAAAAAAAAAAAAAAAA"
REPLICATION_HEADER = ["NodeId", "DirectoryId", "LogEndOffset", "Lag", "LastFetchTimestamp",
                      "LastCaughtUpTimestamp", "Status"]


def pretty_table(stdout):
    """Rows of ToolsUtils.prettyPrintTable output, after checking it is exactly that format
    (each cell left-justified to its column's widest cell, each followed by a tab)."""
    lines = stdout.splitlines()
    rows = [ln.split("\t") for ln in lines]
    for row in rows:
        assert row[-1] == "", f"row does not end with a tab: {row!r}\n{stdout}"
    rows = [[c.rstrip(" ") for c in row[:-1]] for row in rows]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    rendered = ["".join(c.ljust(w) + "\t" for c, w in zip(row, widths)) for row in rows]
    assert rendered == lines, f"not prettyPrintTable's layout:\n{stdout}"
    return rows


def test_metadata_quorum(module_broker):
    b = module_broker
    m = Mismatches()
    adm = C.admin(b.bootstrap)
    cluster_id = adm.describe_cluster(request_timeout=30).result(timeout=30).cluster_id
    md_cluster_id = adm.list_topics(timeout=30).cluster_id
    assert cluster_id and UUID22.match(cluster_id), cluster_id
    assert md_cluster_id == cluster_id, (md_cluster_id, cluster_id)
    if is_kafka():
        props = (b.data_dir / "meta.properties").read_text()
        assert f"cluster.id={cluster_id}\n" in props, props

    r = tool("kafka-metadata-quorum.sh", b.bootstrap, "describe", "--status")
    out = ok(r)
    fields = {}
    for ln in out.splitlines():
        k, sep, v = ln.partition(":")
        assert sep and re.match(r"^ +\S", v) and len(k) + 1 + len(v) - len(v.lstrip(" ")) == 24, \
            f"unexpected --status line {ln!r}"
        fields[k] = v.lstrip(" ")
    m.eq("--status keys", list(fields), ["ClusterId", "LeaderId", "LeaderEpoch", "HighWatermark",
                                         "MaxFollowerLag", "MaxFollowerLagTimeMs",
                                         "CurrentVoters", "CurrentObservers"])
    m.eq("ClusterId", fields.get("ClusterId"), cluster_id)
    m.eq("LeaderId", fields.get("LeaderId"), str(NODE))
    # the leader is the only voter: it is its own most lagging follower
    m.eq("MaxFollowerLag", fields.get("MaxFollowerLag"), "0")
    m.eq("MaxFollowerLagTimeMs", fields.get("MaxFollowerLagTimeMs"), "0")
    m.eq("CurrentObservers", fields.get("CurrentObservers"), "[]")
    for k in ("LeaderEpoch", "HighWatermark"):
        m.eq(f"{k} is a non-negative integer", bool(re.match(r"^\d+$", fields.get(k, ""))), True)
    voters = json.loads(fields.get("CurrentVoters", "null"))
    directory_id = ZERO_UUID
    if m.eq("CurrentVoters: one voter", isinstance(voters, list) and len(voters), 1):
        [v] = voters
        m.eq("voter id", v.get("id"), NODE)
        m.eq("voter keys", sorted(set(v) - {"directoryId", "endpoints"}), ["id"])
        if "directoryId" in v:  # left out when the directory id is the zero UUID
            directory_id = v["directoryId"]
            m.eq("voter directoryId", bool(UUID22.match(directory_id)) and directory_id != ZERO_UUID,
                 True)
        eps = v.get("endpoints", [])
        if is_kafka():
            m.eq("voter endpoints", eps, [f"CONTROLLER://127.0.0.1:{b.controller_port}"])
            props = (b.data_dir / "meta.properties").read_text()
            m.eq("voter directoryId = meta.properties directory.id",
                 f"directory.id={directory_id}\n" in props, True)
        else:  # this node's own listener, if any is given
            m.eq("voter endpoints", all(re.match(rf"^[A-Z_]+://127\.0\.0\.1:{b.port}$", e)
                                        for e in eps), True)

    for extra in ((), ("--human-readable",)):
        r = tool("kafka-metadata-quorum.sh", b.bootstrap, "describe", "--replication", *extra)
        rows = pretty_table(ok(r))
        m.eq(f"--replication {extra} header", rows[0], REPLICATION_HEADER)
        m.eq(f"--replication {extra} rows", len(rows), 2)
        if len(rows) == 2:
            row = dict(zip(REPLICATION_HEADER, rows[1]))
            m.eq(f"--replication {extra} leader row", {k: row[k] for k in (
                "NodeId", "DirectoryId", "Lag", "Status")}, {
                "NodeId": str(NODE), "DirectoryId": directory_id, "Lag": "0",
                "Status": "Leader"})
            m.eq(f"--replication {extra} LogEndOffset >= HighWatermark",
                 row["LogEndOffset"].isdigit() and fields.get("HighWatermark", "").isdigit()
                 and int(row["LogEndOffset"]) >= int(fields["HighWatermark"]), True)
            ts = r"^(-1|\d+ ms ago)$" if extra else r"^(-1|\d{13})$"
            for k in ("LastFetchTimestamp", "LastCaughtUpTimestamp"):
                m.eq(f"--replication {extra} {k} {row[k]!r} matches {ts}",
                     bool(re.match(ts, row[k])), True)
                if not extra and row[k] != "-1":  # not in the future
                    m.eq(f"{k} not after now", int(row[k]) <= time.time() * 1000 + 1000, True)
    m.check()


# ---- ListConfigResources (key 74) --------------------------------------------------------

def metadata_topics(b):
    """Every topic Metadata lists (internal ones included)."""
    return sorted(C.admin(b.bootstrap).list_topics(timeout=30).topics)


def test_list_config_resources(broker):
    b = broker
    m = Mismatches()
    t1, t2 = C.unique_name("lcr1"), C.unique_name("lcr2")
    C.create_topic(b.bootstrap, t1, 1)
    C.create_topic(b.bootstrap, t2, 3)
    node = [(str(NODE), BROKER), (str(NODE), BROKER_LOGGER)]

    # before any group exists: exactly the two topics
    m.eq("v1 [TOPIC, GROUP], no group yet", list_config_resources(b, [TOPIC, GROUP]),
         (0, [(t1, TOPIC), (t2, TOPIC)]))

    # a group with committed offsets only: not listed (GROUP lists groups with dynamic
    # configs). Kafka now also has __consumer_offsets, which TOPIC lists as Metadata does.
    grp = C.unique_name("lcr-group")
    c = ck_group_consumer(b.bootstrap, grp)
    try:
        c.commit(offsets=[TopicPartition(t1, 0, 0)], asynchronous=False)
    finally:
        c.close()
    topics = metadata_topics(b)
    assert set(topics) - {"__consumer_offsets"} == {t1, t2}, topics
    topic_res = [(n, TOPIC) for n in topics]
    m.eq("v1 [TOPIC, GROUP]", list_config_resources(b, [TOPIC, GROUP]), (0, topic_res))
    m.eq("v1 [GROUP]", list_config_resources(b, [GROUP]), (0, []))
    m.eq("v1 [TOPIC]", list_config_resources(b, [TOPIC]), (0, topic_res))
    m.eq("v1 [BROKER, BROKER_LOGGER]", list_config_resources(b, [BROKER, BROKER_LOGGER]),
         (0, node))
    m.eq("v1 [CLIENT_METRICS]", list_config_resources(b, [CLIENT_METRICS]), (0, []))
    m.eq("v1 [] (every supported type)", list_config_resources(b, []),
         (0, sorted(node + topic_res, key=lambda x: (x[1], x[0]))))
    m.eq("v0 (client metrics only)", list_config_resources(b, None, version=0), (0, []))
    for types in ([0], [1], [64], [TOPIC, 3], [-1]):
        m.eq(f"v1 {types}: unsupported", list_config_resources(b, types),
             (UNSUPPORTED_VERSION, []))

    # the tools that send it (ListConfigResources v1 with [CLIENT_METRICS])
    r = tool("kafka-client-metrics.sh", b.bootstrap, "--list")
    m.eq("kafka-client-metrics.sh --list", (r.returncode, r.stdout), (0, "\n"))
    r = tool("kafka-client-metrics.sh", b.bootstrap, "--describe")
    m.eq("kafka-client-metrics.sh --describe", (r.returncode, r.stdout), (0, ""))
    r = tool("kafka-configs.sh", b.bootstrap, "--describe", "--entity-type", "client-metrics")
    m.eq("kafka-configs.sh --describe --entity-type client-metrics", (r.returncode, r.stdout),
         (0, ""))
    m.check()


def test_configs_describe_groups(broker):
    """kafka-configs.sh --describe --entity-type groups without a name: the groups ListGroups
    gives plus those ListConfigResources(GROUP) gives, each then described (DescribeConfigs of
    a GROUP resource: no dynamic configs here)."""
    b = broker
    t = C.unique_name("cfg-groups")
    C.create_topic(b.bootstrap, t, 1)
    grp = C.unique_name("cfg-group")
    c = ck_group_consumer(b.bootstrap, grp)
    try:
        c.commit(offsets=[TopicPartition(t, 0, 0)], asynchronous=False)
    finally:
        c.close()
    r = tool("kafka-configs.sh", b.bootstrap, "--describe", "--entity-type", "groups")
    assert (r.returncode, r.stdout) == (0, f"Dynamic configs for group {grp} are:\n"), \
        f"rc {r.returncode}\n{r.stdout}\n{r.stderr[-3000:]}"
