"""A three-node cluster from Kafka's KRaft keys (process.roles=broker,controller,
controller.quorum.voters, a CONTROLLER listener): the nodes agree on one cluster id and every
node shows every live broker; a node killed with SIGKILL is fenced when its session expires and
shown again when it comes back; a node stopped with SIGTERM is fenced at once (controlled
shutdown). The same scenarios run against three Apache Kafka 4.1.1 nodes."""

import json
import socket
import ssl
import struct
import time

import pytest
from confluent_kafka.admin import AdminClient

from harness.admin import tool
from harness.broker import BrokerError, is_kafka
from harness.certs import client_auth, make_pki, pem_key_store
from harness.cluster import Cluster
from harness.prom import Scrape
from harness.wire import frame, read_frame

# gregor's cluster::TOPICS_NOT_PLACED.
TOPICS_NOT_PLACED = ("This gregor is a node of a cluster, which cannot create topics yet: "
                     "partition placement and replication across nodes are not implemented.")


@pytest.fixture
def cluster_factory(tmp_path):
    made = []

    def make(**overrides):
        c = Cluster(tmp_path / f"cluster{len(made)}", overrides=overrides)
        made.append(c)
        return c.start()

    yield make
    for c in made:
        c.close()


def describe_cluster(node):
    admin = AdminClient({"bootstrap.servers": node.bootstrap, "log_level": 0})
    d = admin.describe_cluster(request_timeout=10).result(timeout=15)
    return d.cluster_id, d.controller.id, {n.id: n.port for n in d.nodes}


def test_three_nodes_agree_on_one_cluster(cluster_factory):
    c = cluster_factory()
    ports = {i: n.port for i, n in c.nodes.items()}
    c.wait_brokers([1, 2, 3])
    ids = set()
    for i, node in c.nodes.items():
        cluster_id, controller, brokers = c.brokers_seen_by(i)
        assert brokers == ports, f"node {i}"
        assert controller in ports, f"node {i}: controller {controller}"
        assert len(cluster_id) == 22, cluster_id
        ids.add(cluster_id)
        d_id, d_controller, d_brokers = describe_cluster(node)
        assert (d_id, d_brokers) == (cluster_id, ports), f"node {i}"
        assert d_controller in ports
    assert len(ids) == 1, ids
    # kafka-broker-api-versions.sh asks every broker Metadata names, at its advertised endpoint.
    out = tool("kafka-broker-api-versions.sh", c.nodes[1].bootstrap).check().stdout
    headers = sorted(line for line in out.splitlines() if line.startswith("127.0.0.1:"))
    assert headers == sorted(
        f"{n.bootstrap} (id: {i} rack: null isFenced: false) -> (" for i, n in c.nodes.items()), out
    # A node restarted keeps the cluster it belongs to.
    c.nodes[2].restart()
    c.wait_brokers([1, 2, 3])
    assert c.brokers_seen_by(2)[0] in ids


def test_a_killed_node_is_fenced_then_shown_again(cluster_factory):
    c = cluster_factory()
    c.wait_brokers([1, 2, 3])
    cluster_id = c.brokers_seen_by(1)[0]
    # On gregor the controller id clients are told is the active controller: killing it also
    # makes the quorum elect another. (Kafka tells a random live broker.)
    for victim in dict.fromkeys([c.brokers_seen_by(1)[1], 3]):
        c.nodes[victim].kill9()
        others = [i for i in c.nodes if i != victim]
        # Fenced once broker.session.timeout.ms (3 s) passes without a heartbeat.
        took = c.wait_brokers(others, timeout=30)
        assert took < 25, took
        c.nodes[victim].start()
        c.wait_brokers([1, 2, 3], timeout=60)
        for i in c.nodes:
            assert c.brokers_seen_by(i)[0] == cluster_id


def test_sigterm_is_a_controlled_shutdown(cluster_factory):
    # Sessions of 30 s: a node shown gone sooner was fenced by its controlled shutdown.
    c = cluster_factory(**{"broker.session.timeout.ms": "30000"})
    c.wait_brokers([1, 2, 3])
    start = time.monotonic()
    c.nodes[2].stop()
    took = c.wait_brokers([1, 3], timeout=25)
    assert time.monotonic() - start < 25, took
    c.nodes[2].start()
    c.wait_brokers([1, 2, 3], timeout=60)


@pytest.mark.skipif(is_kafka(), reason="a limit of gregor's cluster preview, not Kafka behaviour")
def test_a_cluster_refuses_topics_it_cannot_place(cluster_factory):
    c = cluster_factory()
    c.wait_brokers([1, 2, 3])
    r = tool("kafka-topics.sh", c.nodes[1].bootstrap, "--create", "--topic", "t",
             "--partitions", "3", "--replication-factor", "1")
    assert r.returncode != 0
    assert "PolicyViolationException: " + TOPICS_NOT_PLACED in r.stdout + r.stderr
    # Nor are topics auto-created by Metadata.
    admin = AdminClient({"bootstrap.servers": c.nodes[2].bootstrap, "log_level": 0})
    md = admin.list_topics(topic="auto", timeout=10)
    assert md.topics["auto"].error is not None
    assert md.topics["auto"].error.code() == 3  # UNKNOWN_TOPIC_OR_PARTITION


def quorum_status(node):
    """kafka-metadata-quorum.sh describe --status, asked of one node, as {key: value}."""
    out = tool("kafka-metadata-quorum.sh", node.bootstrap, "describe", "--status").check().stdout
    fields = {}
    for line in out.splitlines():
        k, _, v = line.partition(":")
        fields[k] = v.strip()
    return fields


def test_kafka_metadata_quorum_describes_the_quorum(cluster_factory):
    c = cluster_factory()
    c.wait_brokers([1, 2, 3])
    cluster_id = c.brokers_seen_by(1)[0]
    statuses = {i: quorum_status(n) for i, n in c.nodes.items()}
    leaders = {s["LeaderId"] for s in statuses.values()}
    assert len(leaders) == 1, statuses
    leader = int(leaders.pop())
    assert leader in c.nodes
    for i, s in statuses.items():
        assert s["ClusterId"] == cluster_id
        assert json.loads(s["CurrentVoters"]) == [
            {"id": n, "endpoints": [f"CONTROLLER://127.0.0.1:{c.nodes[n].controller_port}"]}
            for n in sorted(c.nodes)], s
        assert s["CurrentObservers"] == "[]"
        assert int(s["HighWatermark"]) > 0 and int(s["LeaderEpoch"]) > 0
    out = tool("kafka-metadata-quorum.sh", c.nodes[2].bootstrap, "describe",
               "--replication").check().stdout
    rows = [line.split() for line in out.splitlines()[1:]]
    assert sorted((int(r[0]), r[-1]) for r in rows) == sorted(
        (n, "Leader" if n == leader else "Follower") for n in c.nodes), out
    # The leader dies: the others elect one of themselves in a later epoch.
    epoch = int(statuses[leader]["LeaderEpoch"])
    c.nodes[leader].kill9()
    other = next(i for i in c.nodes if i != leader)
    deadline = time.monotonic() + 30
    while True:
        try:
            s = quorum_status(c.nodes[other])
            if s["LeaderId"] not in ("", str(leader), "-1"):
                break
        except AssertionError:  # asked during the election
            pass
        assert time.monotonic() < deadline, "no new leader within 30 s"
        time.sleep(0.5)
    assert int(s["LeaderId"]) in c.nodes and int(s["LeaderId"]) != leader
    assert int(s["LeaderEpoch"]) > epoch


CONTROLLER_GAUGES = ("kafka_controller_kafkacontroller_activecontrollercount",
                     "kafka_controller_kafkacontroller_activebrokercount",
                     "kafka_controller_kafkacontroller_fencedbrokercount")


@pytest.mark.skipif(is_kafka(), reason="gregor's /metrics (Kafka's are JMX)")
def test_controller_gauges(cluster_factory):
    c = cluster_factory()
    c.wait_brokers([1, 2, 3])

    def gauges():
        return {i: tuple(Scrape(f"http://127.0.0.1:{port}/metrics").value(g)
                         for g in CONTROLLER_GAUGES)
                for i, port in c.metrics_ports.items() if c.nodes[i].running}

    def wait_for(expected):
        deadline = time.monotonic() + 20
        while (seen := gauges()) != expected:
            assert time.monotonic() < deadline, f"{seen} != {expected}"
            time.sleep(0.2)

    leader = int(quorum_status(c.nodes[1])["LeaderId"])
    # The active controller reports the brokers; the others report nothing.
    wait_for({i: (1.0, 3.0, 0.0) if i == leader else (0.0, 0.0, 0.0) for i in c.nodes})
    victim = next(i for i in c.nodes if i != leader)
    c.nodes[victim].kill9()
    wait_for({i: (1.0, 2.0, 1.0) if i == leader else (0.0, 0.0, 0.0)
              for i in c.nodes if i != victim})


def init_producer_id(node):
    """InitProducerId v0 with no transactional id: (error code, producer id, epoch)."""
    body = struct.pack(">hi", -1, 60000)
    with socket.create_connection(("127.0.0.1", node.port), timeout=20) as s:
        s.settimeout(20)
        s.sendall(frame(22, 0, 7, body))
        resp = read_frame(s)
    correlation, _throttle, error, pid, epoch = struct.unpack(">iihqh", resp[:20])
    assert correlation == 7
    return error, pid, epoch


def new_producer_id(node):
    """A producer id from InitProducerId, retried while the broker has no block of ids yet
    (COORDINATOR_LOAD_IN_PROGRESS: Kafka's brokers fetch their first block on demand)."""
    deadline = time.monotonic() + 30
    while (r := init_producer_id(node))[0] == 14:
        assert time.monotonic() < deadline, f"node {node.node_id}: no producer id in 30 s"
        time.sleep(0.2)
    assert (r[0], r[2]) == (0, 0), r
    return r[1]


def test_producer_ids_are_unique_across_the_cluster(cluster_factory):
    c = cluster_factory()
    c.wait_brokers([1, 2, 3])
    seen = [new_producer_id(node) for _ in range(3) for node in c.nodes.values()]
    assert len(set(seen)) == len(seen), seen
    # After the active controller dies, a restarted node's new block comes from the new one,
    # past every id given before.
    leader = int(quorum_status(c.nodes[1])["LeaderId"])
    c.nodes[leader].kill9()
    restarted = next(i for i in c.nodes if i != leader)
    c.nodes[restarted].restart()
    seen += [new_producer_id(node) for node in c.running().values()]
    assert len(set(seen)) == len(seen), seen


def controller_frame(body_hex, cluster_id=None):
    """A frame for gregor's controller listener: length, then the postcard envelope (the
    sender's cluster id, an Option<String>, then the request)."""
    cid = b"\x00" if cluster_id is None else b"\x01" + bytes([len(cluster_id)]) + cluster_id.encode()
    body = cid + bytes.fromhex(body_hex)
    return struct.pack(">I", len(body)) + body


# Frames an attack sent (request bodies): AppendEntries from "node 0" at term 2^64-1, and
# AppendEntries from "node 1" at term 1e6 with a membership of voters {4}. Each made openraft
# panic, for good, before the controller listener refused them.
HOSTILE = {
    "term u64::MAX from node 0": "00ffffffffffffffffff010001000000",
    "membership {4} at term 1e6": "00c0843d01010001c0843d0101020101040104093132372e302e302e3101c0843d0101",
}


@pytest.mark.skipif(is_kafka(), reason="gregor's controller listener protocol")
def test_hostile_controller_frames_are_refused(cluster_factory):
    c = cluster_factory()
    c.wait_brokers([1, 2, 3])
    leader = int(quorum_status(c.nodes[1])["LeaderId"])
    for name, body in HOSTILE.items():
        for node in c.nodes.values():
            with socket.create_connection(("127.0.0.1", node.controller_port), timeout=10) as s:
                s.settimeout(10)
                s.sendall(controller_frame(body))
                assert s.recv(1) == b"", f"{name}: node {node.node_id} answered"
    # Nothing changed: the same leader, every broker, no panic.
    time.sleep(2)
    for i, node in c.nodes.items():
        assert quorum_status(node)["LeaderId"] == str(leader), f"node {i}"
        assert "panicked" not in node.log_tail(200000)
        assert "refused: " in node.log_tail(200000)
    c.wait_brokers([1, 2, 3], timeout=5)


@pytest.mark.skipif(is_kafka(), reason="gregor checks the voters against its stored quorum")
def test_other_voters_than_the_stored_quorum_stop_start_up(cluster_factory):
    c = cluster_factory()
    c.wait_brokers([1, 2, 3])
    node = c.nodes[3]
    node.stop()
    stored = node.overrides.get("controller.quorum.voters") or node.quorum["voters"]
    node.quorum["voters"] = stored.replace("2@127.0.0.1:", "2@localhost:")
    with pytest.raises(BrokerError, match="exited during startup with code 1"):
        node.start()
    assert "controller.quorum.voters is " in node.log_tail()
    assert "but this node belongs to the quorum" in node.log_tail()
    node.quorum["voters"] = stored
    node.start()
    c.wait_brokers([1, 2, 3])


def test_an_ssl_controller_listener_with_client_certificates(cluster_factory, tmp_path):
    pki = make_pki(tmp_path / "pki")
    keys = {**pem_key_store(pki.node), **client_auth("required", pki.ca)}
    overrides = {f"listener.name.controller.{k}": v for k, v in keys.items()}
    overrides["listener.security.protocol.map"] = "PLAINTEXT:PLAINTEXT,CONTROLLER:SSL"
    c = cluster_factory(**overrides)
    c.wait_brokers([1, 2, 3])
    leader = quorum_status(c.nodes[1])["LeaderId"]
    assert {quorum_status(n)["LeaderId"] for n in c.nodes.values()} == {leader}
    # Plaintext on the controller listener gets no answer, nor does a certificate from another CA.
    for node in c.nodes.values():
        with socket.create_connection(("127.0.0.1", node.controller_port), timeout=10) as s:
            s.settimeout(10)
            s.sendall(controller_frame(HOSTILE["term u64::MAX from node 0"]))
            try:
                answer = s.recv(1024)
            except ConnectionResetError:
                answer = b""
            # Closed, or a TLS alert record (content type 21): never an answer.
            assert answer == b"" or answer[0] == 21, (node, answer)
        ctx = ssl.create_default_context(cafile=str(pki.ca))
        ctx.load_cert_chain(str(pki.stranger.cert), str(pki.stranger.key))
        with socket.create_connection(("127.0.0.1", node.controller_port), timeout=10) as raw:
            with pytest.raises((ssl.SSLError, ConnectionResetError, BrokenPipeError)):
                with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
                    s.sendall(b"\x00\x00\x00\x01\x00")
                    if s.recv(1) == b"":
                        raise ConnectionResetError("closed")
    # The quorum still works across its TLS links: the leader dies, another is elected.
    c.nodes[int(leader)].kill9()
    other = next(i for i in c.nodes if str(i) != leader)
    deadline = time.monotonic() + 30
    while True:
        try:
            if quorum_status(c.nodes[other])["LeaderId"] not in ("", leader, "-1"):
                break
        except AssertionError:
            pass
        assert time.monotonic() < deadline, "no new leader within 30 s"
        time.sleep(0.5)
    c.wait_brokers([i for i in c.nodes if str(i) != leader], timeout=30)
