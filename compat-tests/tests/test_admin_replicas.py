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
- Group configs (KIP-848, resource type GROUP): kafka-configs.sh --alter / --describe [--all] /
  --delete-config for a group with offsets and for one that exists only through its configs,
  refusals (unknown key, outside the broker's bounds) with Kafka's messages; raw DescribeConfigs
  (every config of any group, existing or not, in Kafka's order with type, source, synonyms and
  documentation; an empty name refused), IncrementalAlterConfigs and AlterConfigs (every
  refusal with Kafka's error and message, validate_only, DELETE, whole replacement) and
  ListConfigResources (a group whose configs were all removed stays listed until a restart, as
  in Kafka).
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


def _ncstr(s):
    return _uvarint(0) if s is None else _cstr(s)


def describe_configs(b, resources, synonyms=True, docs=True):
    """DescribeConfigs v4: resources = [(type, name, keys or None)] -> [(error, message, type,
    name, [(name, value, read_only, source, sensitive, [(name, value, source)], type, doc)])]"""
    body = _carray(resources, lambda r: struct.pack(">b", r[0]) + _cstr(r[1])
                   + _carray(r[2], _cstr) + TAGS)
    body += struct.pack(">??", synonyms, docs) + TAGS
    r = raw_call(b, 32, 4, body)
    r.i32()  # throttle

    def syn(r):
        x = (r.cstr(), r.cstr(), r.i8())
        r.tags()
        return x

    def cfg(r):
        x = (r.cstr(), r.cstr(), r.bool(), r.i8(), r.bool(), r.carray(syn), r.i8(), r.cstr())
        r.tags()
        return x

    def res(r):
        x = (r.i16(), r.cstr(), r.i8(), r.cstr(), r.carray(cfg))
        r.tags()
        return x

    out = r.carray(res)
    r.end()
    return out


def _alter_response(r):
    r.i32()  # throttle

    def res(r):
        x = (r.i16(), r.cstr(), r.i8(), r.cstr())
        r.tags()
        return x

    out = r.carray(res)
    r.end()
    return out


def incremental_alter_configs(b, resources, validate_only=False):
    """IncrementalAlterConfigs v1: resources = [(type, name, [(key, op, value)])] ->
    [(error, message, type, name)]"""
    body = _carray(resources, lambda r: struct.pack(">b", r[0]) + _cstr(r[1])
                   + _carray(r[2], lambda c: _cstr(c[0]) + struct.pack(">b", c[1])
                             + _ncstr(c[2]) + TAGS) + TAGS)
    return _alter_response(raw_call(b, 44, 1, body + struct.pack(">?", validate_only) + TAGS))


def alter_configs(b, resources, validate_only=False):
    """AlterConfigs v2: resources = [(type, name, [(key, value)])] -> [(error, message, type,
    name)]"""
    body = _carray(resources, lambda r: struct.pack(">b", r[0]) + _cstr(r[1])
                   + _carray(r[2], lambda c: _cstr(c[0]) + _ncstr(c[1]) + TAGS) + TAGS)
    return _alter_response(raw_call(b, 33, 2, body + struct.pack(">?", validate_only) + TAGS))


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
    m.eq("reassign nothing", alter_partition_reassignments(b, []), (0, "", []))
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

    # kafka-configs.sh --alter of the group and of one that exists only through its configs
    m = Mismatches()
    lone = C.unique_name("cfg-only-group")

    def configs(*args):
        r = tool("kafka-configs.sh", b.bootstrap, *args)
        return r.returncode, r.stdout

    def alter(group, *args):
        return configs("--alter", "--entity-type", "groups", "--entity-name", group, *args)

    def describe(*args):
        return configs("--describe", "--entity-type", "groups", *args)

    def line(key, value, source="DYNAMIC_GROUP_CONFIG"):
        return f"  {key}={value} sensitive=false synonyms={{{source}:{key}={value}}}\n"

    def done(group):
        return 0, f"Completed updating config for group {group}.\n"

    m.eq("alter grp", alter(grp, "--add-config", "consumer.session.timeout.ms=50000"), done(grp))
    m.eq("alter lone", alter(lone, "--add-config", "consumer.heartbeat.interval.ms=6000,"
                                                   "share.isolation.level=read_committed"),
         done(lone))
    grp_dynamic = (f"Dynamic configs for group {grp} are:\n"
                   + line("consumer.session.timeout.ms", "50000"))
    lone_dynamic = (f"Dynamic configs for group {lone} are:\n"
                    + line("consumer.heartbeat.interval.ms", "6000")
                    + line("share.isolation.level", "read_committed"))
    m.eq("describe grp", describe("--entity-name", grp), (0, grp_dynamic))
    m.eq("describe lone", describe("--entity-name", lone), (0, lone_dynamic))
    # every group: the one with offsets (ListGroups) and the one ListConfigResources gives
    rc, out = describe()
    m.eq("describe every group", (rc, sorted("Dynamic" + blk for blk in out.split("Dynamic")[1:])),
         (0, sorted([grp_dynamic, lone_dynamic])))
    defaults = {
        "consumer.heartbeat.interval.ms": "5000", "consumer.session.timeout.ms": "45000",
        "share.auto.offset.reset": "latest", "share.heartbeat.interval.ms": "5000",
        "share.isolation.level": "read_uncommitted", "share.record.lock.duration.ms": "30000",
        "share.session.timeout.ms": "45000", "streams.heartbeat.interval.ms": "5000",
        "streams.num.standby.replicas": "0", "streams.session.timeout.ms": "45000",
    }
    m.eq("describe --all grp", describe("--entity-name", grp, "--all"),
         (0, f"All configs for group {grp} are:\n" + "".join(
             line(k, "50000") if k == "consumer.session.timeout.ms"
             else line(k, v, "DEFAULT_CONFIG") for k, v in sorted(defaults.items()))))
    # a group that neither exists nor has configs: the tool says so; --all describes it anyway
    m.eq("describe unknown", describe("--entity-name", "no-such-group"),
         (0, "The group 'no-such-group' doesn't exist and doesn't have dynamic config.\n"))
    m.eq("describe --all unknown", describe("--entity-name", "no-such-group", "--all"),
         (0, "All configs for group no-such-group are:\n" + "".join(
             line(k, v, "DEFAULT_CONFIG") for k, v in sorted(defaults.items()))))
    m.eq("ListConfigResources [GROUP]", list_config_resources(b, [GROUP]),
         (0, sorted([(grp, GROUP), (lone, GROUP)])))

    # refusals, with Kafka's exception and message
    for args, cause in [
        (("--add-config", "bogus=5"), "Unknown group config name: bogus"),
        (("--add-config", "consumer.session.timeout.ms=5"),
         "consumer.session.timeout.ms must be greater than or equal to "
         "group.consumer.min.session.timeout.ms"),
        (("--add-config", "consumer.heartbeat.interval.ms=16000"),
         "consumer.heartbeat.interval.ms must be less than or equal to "
         "group.consumer.max.heartbeat.interval.ms"),
    ]:
        r = tool("kafka-configs.sh", b.bootstrap, "--alter", "--entity-type", "groups",
                 "--entity-name", grp, *args)
        m.eq(f"alter {args}: refused", (r.returncode, r.stdout), (1, ""))
        m.eq(f"alter {args}: cause in stderr",
             f"InvalidConfigurationException: {cause}\n" in r.stderr, True)

    # --delete-config: nothing dynamic is left, and both groups stay listed (as in Kafka)
    m.eq("delete grp", alter(grp, "--delete-config", "consumer.session.timeout.ms"), done(grp))
    m.eq("delete lone", alter(lone, "--delete-config",
                              "consumer.heartbeat.interval.ms,share.isolation.level"), done(lone))
    m.eq("describe grp after delete", describe("--entity-name", grp),
         (0, f"Dynamic configs for group {grp} are:\n"))
    m.eq("describe lone after delete", describe("--entity-name", lone),
         (0, f"Dynamic configs for group {lone} are:\n"))
    m.eq("ListConfigResources [GROUP] after delete", list_config_resources(b, [GROUP]),
         (0, sorted([(grp, GROUP), (lone, GROUP)])))
    m.check()


GROUP_CONFIG_DOCS = {
    "consumer.session.timeout.ms":
        "The timeout to detect client failures when using the consumer group protocol.",
    "streams.heartbeat.interval.ms": "The heartbeat interval given to the members.",
    "share.auto.offset.reset":
        "The strategy to initialize the share-partition start offset. <ul><li>earliest: "
        "automatically reset the offset to the earliest offset</li><li>latest: automatically "
        "reset the offset to the latest offset</li><li>by_duration:&lt;duration&gt;: "
        "automatically reset the offset to a configured duration from the current timestamp. "
        "&lt;duration&gt; must be specified in ISO8601 format (PnDTnHnMn.nS). Negative "
        "duration is not allowed.</li><li>anything else: throw exception to the share "
        "consumer.</li></ul>",
    "share.record.lock.duration.ms":
        "The record acquisition lock duration in milliseconds for share groups.",
    "consumer.heartbeat.interval.ms":
        "The heartbeat interval given to the members of a consumer group.",
    "share.session.timeout.ms":
        "The timeout to detect client failures when using the share group protocol.",
    "share.isolation.level":
        "Controls how to read records written transactionally. If set to \"read_committed\", "
        "the share group will only deliver transactional records which have been committed. If "
        "set to \"read_uncommitted\", the share group will return all messages, even "
        "transactional messages which have been aborted. Non-transactional records will be "
        "returned unconditionally in either mode.",
    "streams.session.timeout.ms":
        "The timeout to detect client failures when using the streams group protocol.",
    "share.heartbeat.interval.ms":
        "The heartbeat interval given to the members of a share group.",
    "streams.num.standby.replicas": "The number of standby replicas for each task.",
}

# Kafka's order (its hash map's), defaults and types (INT 3, STRING 2)
GROUP_CONFIG_DEFAULTS = [
    ("consumer.session.timeout.ms", "45000", 3),
    ("streams.heartbeat.interval.ms", "5000", 3),
    ("share.auto.offset.reset", "latest", 2),
    ("share.record.lock.duration.ms", "30000", 3),
    ("consumer.heartbeat.interval.ms", "5000", 3),
    ("share.session.timeout.ms", "45000", 3),
    ("share.isolation.level", "read_uncommitted", 2),
    ("streams.session.timeout.ms", "45000", 3),
    ("share.heartbeat.interval.ms", "5000", 3),
    ("streams.num.standby.replicas", "0", 3),
]

INVALID_CONFIG, INVALID_REQUEST, UNKNOWN_SERVER_ERROR = 40, 42, -1
DYNAMIC_GROUP, DEFAULT = 8, 5
SET, DELETE, APPEND, SUBTRACT = 0, 1, 2, 3


def test_group_configs_raw(broker):
    """DescribeConfigs, IncrementalAlterConfigs, AlterConfigs and ListConfigResources for GROUP
    resources, exactly as Kafka 4.1.1 answers them."""
    b = broker
    m = Mismatches()

    def described(group, dynamic=None, keys=None, synonyms=True, docs=True):
        dynamic = dynamic or {}
        want = []
        for k, v, ty in GROUP_CONFIG_DEFAULTS:
            if keys and k not in keys:
                continue
            value, source = (dynamic[k], DYNAMIC_GROUP) if k in dynamic else (v, DEFAULT)
            want.append((k, value, False, source, False,
                         [(k, value, source)] if synonyms else [], ty,
                         GROUP_CONFIG_DOCS[k] if docs else None))
        return [(0, "", GROUP, group, want)]

    # any group, existing or not; an empty name refused; configuration keys filter
    m.eq("describe unknown group", describe_configs(b, [(GROUP, "g1", None)]), described("g1"))
    m.eq("describe without synonyms and docs",
         describe_configs(b, [(GROUP, "g1", [])], synonyms=False, docs=False),
         described("g1", synonyms=False, docs=False))
    m.eq("describe empty name and a key filter",
         describe_configs(b, [(GROUP, "", None),
                              (GROUP, "g1", ["consumer.session.timeout.ms", "nope"])]),
         [(INVALID_REQUEST, "Group name must not be empty", GROUP, "", [])]
         + described("g1", keys=["consumer.session.timeout.ms"]))
    m.eq("nothing listed yet", list_config_resources(b, [GROUP]), (0, []))

    # every refusal (validate_only: nothing is applied either way)
    def bad(code, msg):
        return [(code, msg, GROUP, "gv")]

    fine = [(0, None, GROUP, "gv")]
    ge = "must be greater than or equal to"
    le = "must be less than or equal to"
    reset_must = ("The value must be either 'earliest', 'latest' or of the format "
                  "'by_duration:<PnDTnHnMn.nS>'.")
    for ops, want in [
        ([("consumer.session.timeout.ms", SET, " 50000 ")], fine),
        ([("nope", SET, "1"), ("aaa", SET, "x")],
         bad(INVALID_CONFIG, "Unknown group config name: aaa")),
        ([("consumer.session.timeout.ms", SET, "abc")],
         bad(INVALID_CONFIG, "Invalid value abc for configuration consumer.session.timeout.ms: "
                             "Not a number of type INT")),
        ([("consumer.session.timeout.ms", SET, "0")],
         bad(INVALID_CONFIG, "Invalid value 0 for configuration consumer.session.timeout.ms: "
                             "Value must be at least 1")),
        ([("consumer.session.timeout.ms", SET, "1000")],
         bad(INVALID_CONFIG, f"consumer.session.timeout.ms {ge} "
                             "group.consumer.min.session.timeout.ms")),
        ([("consumer.session.timeout.ms", SET, "70000")],
         bad(INVALID_CONFIG, f"consumer.session.timeout.ms {le} "
                             "group.consumer.max.session.timeout.ms")),
        ([("consumer.heartbeat.interval.ms", SET, "1000")],
         bad(INVALID_CONFIG, f"consumer.heartbeat.interval.ms {ge} "
                             "group.consumer.min.heartbeat.interval.ms")),
        ([("share.auto.offset.reset", SET, "none")],
         bad(INVALID_CONFIG, "Invalid value none for configuration share.auto.offset.reset: "
                             "Invalid value `none` for configuration share.auto.offset.reset. "
                             + reset_must)),
        ([("share.auto.offset.reset", SET, "by_duration:PT1H")], fine),
        ([("share.auto.offset.reset", SET, "by_duration:-PT1H")],
         bad(INVALID_CONFIG, "Invalid value by_duration:-PT1H for configuration "
                             "share.auto.offset.reset: Invalid value `by_duration:-PT1H` for "
                             "configuration share.auto.offset.reset. " + reset_must)),
        ([("share.isolation.level", SET, "READ_COMMITTED")],
         bad(INVALID_CONFIG, "Invalid value READ_COMMITTED for configuration "
                             "share.isolation.level: String must be one of: read_committed, "
                             "read_uncommitted")),
        ([("share.isolation.level", SET, " read_committed ")], fine),
        ([("streams.num.standby.replicas", SET, "3")],
         bad(INVALID_CONFIG, f"streams.num.standby.replicas {le} "
                             "group.streams.max.standby.replicas")),
        ([("streams.num.standby.replicas", SET, "-1")],
         bad(INVALID_CONFIG, "Invalid value -1 for configuration streams.num.standby.replicas: "
                             "Value must be at least 0")),
        ([("share.record.lock.duration.ms", SET, "10000")],
         bad(INVALID_CONFIG, f"share.record.lock.duration.ms {ge} "
                             "group.share.min.record.lock.duration.ms")),
        ([("consumer.session.timeout.ms", APPEND, "1")],
         bad(INVALID_CONFIG, "Can't APPEND to key consumer.session.timeout.ms because its type "
                             "is not LIST.")),
        ([("nope", SUBTRACT, "1")],
         bad(INVALID_CONFIG, "Can't SUBTRACT to key nope because its type is not LIST.")),
        ([("consumer.session.timeout.ms", SET, None)],
         bad(INVALID_REQUEST, "Null value not supported for : consumer.session.timeout.ms")),
        ([("consumer.session.timeout.ms", SET, "50000"),
          ("consumer.session.timeout.ms", DELETE, None)],
         bad(INVALID_REQUEST, "Error due to duplicate config keys")),
        ([("consumer.session.timeout.ms", DELETE, None)], fine),
        ([("consumer.session.timeout.ms", 7, "1")], bad(UNKNOWN_SERVER_ERROR, None)),
        ([("consumer.heartbeat.interval.ms", SET, "10000"),
          ("consumer.session.timeout.ms", SET, "46000")], fine),
    ]:
        m.eq(f"validate_only {ops}", incremental_alter_configs(b, [(GROUP, "gv", ops)], True),
             want)
    default_group = [(INVALID_REQUEST, "Default group resources are not allowed.", GROUP, "")]
    m.eq("empty name", incremental_alter_configs(
        b, [(GROUP, "", [("consumer.session.timeout.ms", SET, "50000")])]), default_group)
    m.eq("a group twice", incremental_alter_configs(b, [(GROUP, "gd", []), (GROUP, "gd", [])]),
         [(INVALID_REQUEST, "Each resource must appear at most once.", GROUP, "gd")] * 2)
    # changes of nothing record nothing
    m.eq("delete on a fresh group", incremental_alter_configs(
        b, [(GROUP, "gdel", [("consumer.session.timeout.ms", DELETE, None)])]),
        [(0, None, GROUP, "gdel")])
    m.eq("nothing listed after validate_only and no-ops", list_config_resources(b, [GROUP]),
         (0, []))

    # SET (values printed back parsed), whole-config checks, legacy replacement
    m.eq("set", incremental_alter_configs(b, [(GROUP, "g1", [
        ("consumer.session.timeout.ms", SET, " 50000 "),
        ("share.isolation.level", SET, "read_committed")])]), [(0, None, GROUP, "g1")])
    m.eq("describe after set", describe_configs(b, [(GROUP, "g1", None)]),
         described("g1", {"consumer.session.timeout.ms": "50000",
                          "share.isolation.level": "read_committed"}))
    m.eq("heartbeat below the group's own session timeout", incremental_alter_configs(
        b, [(GROUP, "g1", [("consumer.heartbeat.interval.ms", SET, "15000")])]),
        [(0, None, GROUP, "g1")])
    hb = "consumer.heartbeat.interval.ms"
    m.eq("legacy set", alter_configs(b, [(GROUP, "g2", [(hb, "6000")])]),
         [(0, None, GROUP, "g2")])
    m.eq("legacy null", alter_configs(b, [(GROUP, "g2", [(hb, None)])]),
         [(INVALID_REQUEST, f"Null value not supported for : {hb}", GROUP, "g2")])
    m.eq("legacy unknown", alter_configs(b, [(GROUP, "g2", [("x", "1")])]),
         [(INVALID_CONFIG, "Unknown group config name: x", GROUP, "g2")])
    m.eq("legacy empty name", alter_configs(b, [(GROUP, "", [(hb, "6000")])]), default_group)
    m.eq("legacy validate_only", alter_configs(b, [(GROUP, "g3", [(hb, "6000")])], True),
         [(0, None, GROUP, "g3")])
    m.eq("describe legacy", describe_configs(b, [(GROUP, "g2", [hb])]),
         described("g2", {hb: "6000"}, keys=[hb]))
    m.eq("listed", list_config_resources(b, [GROUP]), (0, [("g1", GROUP), ("g2", GROUP)]))

    # removing every config of a group: it stays listed until a restart
    m.eq("legacy replace with nothing", alter_configs(b, [(GROUP, "g2", [])]),
         [(0, None, GROUP, "g2")])
    m.eq("describe emptied", describe_configs(b, [(GROUP, "g2", [hb])]),
         described("g2", keys=[hb]))
    m.eq("delete", incremental_alter_configs(b, [(GROUP, "g1", [
        ("consumer.session.timeout.ms", DELETE, None), ("share.isolation.level", DELETE, "")])]),
        [(0, None, GROUP, "g1")])
    m.eq("describe after delete", describe_configs(b, [(GROUP, "g1", None)]),
         described("g1", {hb: "15000"}))
    m.eq("still listed", list_config_resources(b, [GROUP]), (0, [("g1", GROUP), ("g2", GROUP)]))

    b.restart()
    m.eq("listed after restart", list_config_resources(b, [GROUP]), (0, [("g1", GROUP)]))
    m.eq("describe after restart", describe_configs(b, [(GROUP, "g1", None)]),
         described("g1", {hb: "15000"}))
    m.check()


def test_alter_configs_requests_are_checked_before_any_resource(broker):
    """Kafka's ConfigAdminManager.preprocess, for every resource type: a resource named twice
    (both refused), a config key named twice, a null value (except DELETE in the incremental API)
    and an unknown resource type are INVALID_REQUEST, whether or not the resource exists."""
    b = broker
    t = C.unique_name("pre")
    C.create_topic(b.bootstrap, t)
    twice = "Each resource must appear at most once."
    dup = "Error due to duplicate config keys"
    for name, ops, want in [
        ("a topic twice", [(TOPIC, t, []), (TOPIC, t, [])],
         [(INVALID_REQUEST, twice, TOPIC, t)] * 2),
        ("a key twice", [(TOPIC, t, [("retention.ms", SET, "1000"), ("retention.ms", DELETE, None)])],
         [(INVALID_REQUEST, dup, TOPIC, t)]),
        ("a null SET", [(TOPIC, t, [("retention.ms", SET, None), ("segment.ms", SET, None)])],
         [(INVALID_REQUEST, "Null value not supported for : retention.ms, segment.ms", TOPIC, t)]),
        ("a key twice on a missing topic", [(TOPIC, "no-such-topic", [("a", SET, "1"), ("a", SET, "2")])],
         [(INVALID_REQUEST, dup, TOPIC, "no-such-topic")]),
        ("a broker twice", [(BROKER, "1", []), (BROKER, "1", [])],
         [(INVALID_REQUEST, twice, BROKER, "1")] * 2),
        ("an unknown type", [(99, "x", [])], [(INVALID_REQUEST, "Unknown resource type 99", 99, "x")]),
    ]:
        assert incremental_alter_configs(b, ops, True) == want, name
    # The legacy API refuses every null value and repeated keys the same way.
    assert alter_configs(b, [(TOPIC, t, [("retention.ms", None)])], True) == \
        [(INVALID_REQUEST, "Null value not supported for : retention.ms", TOPIC, t)]
    assert alter_configs(b, [(TOPIC, t, [("retention.ms", "1"), ("retention.ms", "2")])], True) == \
        [(INVALID_REQUEST, dup, TOPIC, t)]
    # (A resource named twice in the legacy API: Kafka 4.1.1 never answers; gregor refuses both.)
    # The legacy API knows no broker loggers.
    assert alter_configs(b, [(BROKER_LOGGER, "1", [("root", "INFO")])], True) == \
        [(INVALID_REQUEST, "Unknown resource type 8", BROKER_LOGGER, "1")]
    missing = "The topic 'no-such-topic' does not exist."
    assert alter_configs(b, [(TOPIC, "no-such-topic", [("retention.ms", "1")])], True) == \
        [(UNKNOWN_TOPIC_OR_PARTITION, missing, TOPIC, "no-such-topic")]
    for name, ops, want in [
        ("a missing topic", [(TOPIC, "no-such-topic", [("retention.ms", SET, "1")])],
         [(UNKNOWN_TOPIC_OR_PARTITION, missing, TOPIC, "no-such-topic")]),
        ("the default topic", [(TOPIC, "", [("retention.ms", SET, "1")])],
         [(INVALID_REQUEST, "Default topic resources are not allowed.", TOPIC, "")]),
        ("APPEND to a long", [(TOPIC, t, [("retention.ms", APPEND, "1")])],
         [(INVALID_CONFIG, "Can't APPEND to key retention.ms because its type is not LIST.",
           TOPIC, t)]),
        ("SUBTRACT from a long", [(TOPIC, t, [("retention.ms", SUBTRACT, "1")])],
         [(INVALID_CONFIG, "Can't SUBTRACT to key retention.ms because its type is not LIST.",
           TOPIC, t)]),
        ("an unknown operation", [(TOPIC, t, [("retention.ms", 7, "1")])],
         [(UNKNOWN_SERVER_ERROR, None, TOPIC, t)]),
        ("DELETE of an unknown key", [(TOPIC, t, [("zz", DELETE, None)])], [(0, None, TOPIC, t)]),
    ]:
        assert incremental_alter_configs(b, ops, True) == want, name


def test_find_coordinator_success_messages(broker):
    """A found coordinator's error_message is Kafka's: "NONE" (the error's name) before v4, ""
    from v4 on (per key)."""
    def v3():
        r = raw_call(broker, 10, 3, _cstr("g") + struct.pack(">b", 0) + TAGS)
        r.i32()
        return r.i16(), r.cstr()

    def v4_up(version):
        r = raw_call(broker, 10, version, struct.pack(">b", 0) + _carray(["g"], _cstr) + TAGS)
        r.i32()
        r.uvarint()
        key, _node, _host, _port = r.cstr(), r.i32(), r.cstr(), r.i32()
        return key, r.i16(), r.cstr()

    deadline = time.monotonic() + 60
    while v3()[0] != 0:  # Kafka creates __consumer_offsets first (COORDINATOR_NOT_AVAILABLE)
        assert time.monotonic() < deadline
        time.sleep(0.5)
    assert v3() == (0, "NONE")
    assert v4_up(4) == ("g", 0, "")
    assert v4_up(6) == ("g", 0, "")
    # Key types with no coordinator here: share groups (2) get an empty message from v4 on; any
    # other type the error's generic text.
    generic = ("This most likely occurs because of a request being malformed by the client "
               "library or the message was sent to an incompatible broker. See the broker logs "
               "for more details.")
    r = raw_call(broker, 10, 4, struct.pack(">b", 2) + _carray(["g"], _cstr) + TAGS)
    r.i32()
    r.uvarint()
    assert (r.cstr(), r.i32(), r.cstr(), r.i32(), r.i16(), r.cstr()) == ("g", -1, "", -1, 42, "")
    r = raw_call(broker, 10, 3, _cstr("g") + struct.pack(">b", 3) + TAGS)
    r.i32()
    assert (r.i16(), r.cstr()) == (42, generic)
