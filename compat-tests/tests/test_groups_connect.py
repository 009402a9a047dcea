"""A classic group with protocol type "connect", driven by hand-encoded frames.

Kafka Connect workers use the classic group protocol with protocol type "connect" and opaque
member metadata / assignments. The coordinator must not interpret those bytes: the leader's
JoinGroup response lists every member's metadata unchanged, and SyncGroup hands each member
exactly the bytes the leader assigned to it. A member with another protocol type ("consumer")
is refused with INCONSISTENT_GROUP_PROTOCOL.

Frames (all non-flexible, encoded with struct): FindCoordinator v1, JoinGroup v5, SyncGroup v3,
LeaveGroup v1 (request header v1, response header v0).
"""

import socket
import struct
import threading
import time

from harness import clients as C

FIND_COORDINATOR, JOIN_GROUP, SYNC_GROUP, LEAVE_GROUP = 10, 11, 14, 13
NONE, COORDINATOR_NOT_AVAILABLE, INCONSISTENT_GROUP_PROTOCOL, MEMBER_ID_REQUIRED = 0, 15, 23, 79

SESSION_TIMEOUT_MS = 10000
REBALANCE_TIMEOUT_MS = 15000


# ---- encoding ---------------------------------------------------------------------------
def _str(s):
    b = s.encode()
    return struct.pack(">h", len(b)) + b


def _nstr(s):
    return struct.pack(">h", -1) if s is None else _str(s)


def _bytes(b):
    return struct.pack(">i", len(b)) + b


class Reader:
    def __init__(self, buf):
        self.buf, self.pos = buf, 0

    def take(self, fmt):
        vals = struct.unpack_from(fmt, self.buf, self.pos)
        self.pos += struct.calcsize(fmt)
        return vals[0] if len(vals) == 1 else vals

    def nstr(self):
        n = self.take(">h")
        if n < 0:
            return None
        s = self.buf[self.pos:self.pos + n].decode()
        self.pos += n
        return s

    def str(self):
        s = self.nstr()
        assert s is not None, "non-nullable string is null"
        return s

    def bytes(self):
        n = self.take(">i")
        assert n >= 0, "non-nullable bytes are null"
        b = self.buf[self.pos:self.pos + n]
        self.pos += n
        return b

    def done(self):
        assert self.pos == len(self.buf), f"{len(self.buf) - self.pos} trailing bytes"


class Conn:
    """One TCP connection; request header v1, response header v0."""

    def __init__(self, host, port, client_id="compat-connect", timeout=30.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.settimeout(timeout)
        self.client_id = client_id
        self.corr = 0

    def close(self):
        self.sock.close()

    def _read_exact(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("connection closed by broker")
            buf += chunk
        return buf

    def request(self, api_key, version, body) -> Reader:
        self.corr += 1
        frame = struct.pack(">hhi", api_key, version, self.corr) + _str(self.client_id) + body
        self.sock.sendall(struct.pack(">i", len(frame)) + frame)
        (size,) = struct.unpack(">i", self._read_exact(4))
        resp = self._read_exact(size)
        (corr,) = struct.unpack(">i", resp[:4])
        assert corr == self.corr, f"correlation id {corr}, expected {self.corr}"
        return Reader(resp[4:])


def find_coordinator(conn, group):
    r = conn.request(FIND_COORDINATOR, 1, _str(group) + struct.pack(">b", 0))
    _throttle, err = r.take(">ih")
    msg = r.nstr()
    node, host, port = r.take(">i"), r.str(), r.take(">i")
    r.done()
    return err, msg, node, host, port


def join_group(conn, group, member_id, protocol_type, protocols):
    body = (_str(group) + struct.pack(">ii", SESSION_TIMEOUT_MS, REBALANCE_TIMEOUT_MS)
            + _str(member_id) + _nstr(None) + _str(protocol_type)
            + struct.pack(">i", len(protocols))
            + b"".join(_str(name) + _bytes(meta) for name, meta in protocols))
    r = conn.request(JOIN_GROUP, 5, body)
    _throttle, err, generation = r.take(">ihi")
    protocol_name, leader, member = r.str(), r.str(), r.str()
    members = []
    for _ in range(r.take(">i")):
        mid, instance, meta = r.str(), r.nstr(), r.bytes()
        members.append((mid, instance, meta))
    r.done()
    return dict(error=err, generation=generation, protocol=protocol_name, leader=leader,
                member_id=member, members=members)


def join_with_member_id(conn, group, protocol_type, protocols):
    """JoinGroup v5 with an empty member id: MEMBER_ID_REQUIRED hands out the id to rejoin with
    (KIP-394); the rejoin blocks until the rebalance completes."""
    first = join_group(conn, group, "", protocol_type, protocols)
    assert first["error"] == MEMBER_ID_REQUIRED, first
    assert first["member_id"], first
    assert first["generation"] == -1 and first["members"] == [], first
    resp = join_group(conn, group, first["member_id"], protocol_type, protocols)
    assert resp["member_id"] == first["member_id"], (first, resp)
    return resp


def sync_group(conn, group, generation, member_id, assignments):
    body = (_str(group) + struct.pack(">i", generation) + _str(member_id) + _nstr(None)
            + struct.pack(">i", len(assignments))
            + b"".join(_str(m) + _bytes(a) for m, a in assignments))
    r = conn.request(SYNC_GROUP, 3, body)
    _throttle, err = r.take(">ih")
    assignment = r.bytes()
    r.done()
    return err, assignment


def leave_group(conn, group, member_id):
    r = conn.request(LEAVE_GROUP, 1, _str(group) + _str(member_id))
    _throttle, err = r.take(">ih")
    r.done()
    return err


def in_thread(fn, *args):
    box = {}

    def run():
        try:
            box["result"] = fn(*args)
        except BaseException as e:  # re-raised in the test thread
            box["error"] = e

    t = threading.Thread(target=run, daemon=True)
    t.start()

    def wait(timeout=40.0):
        t.join(timeout)
        assert not t.is_alive(), f"{fn.__name__} did not return in {timeout}s"
        if "error" in box:
            raise box["error"]
        return box["result"]

    return wait


META_A = b"\x00\x01worker-A\xff\x00\xfe" + bytes(range(256))
META_B = b""  # empty metadata must come back empty, not null
ASSIGN_X = b"\x00\x00assignment-for-1\x00" + bytes(range(255, -1, -1))
ASSIGN_Y = b"\x01Y"


def test_connect_protocol_group_opaque_metadata_and_assignments(broker):
    group = C.unique_name("connect-cluster")
    boot = Conn(broker.host, broker.port)
    deadline = time.monotonic() + 30
    try:
        while True:
            err, msg, node, host, port = find_coordinator(boot, group)
            # COORDINATOR_NOT_AVAILABLE while the offsets topic is being created: retriable
            if err != COORDINATOR_NOT_AVAILABLE or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    finally:
        boot.close()
    assert err == NONE, (err, msg)
    # single node: the coordinator is the broker itself (node.id=1)
    assert (node, host, port) == (1, broker.host, broker.port)

    c1, c2, c3 = (Conn(host, port, client_id=f"compat-connect-{i}") for i in (1, 2, 3))
    try:
        # member 1 alone: generation 1, it leads a group of one
        r1 = join_with_member_id(c1, group, "connect", [("sessioned", META_A)])
        assert r1["error"] == NONE, r1
        assert r1["protocol"] == "sessioned"
        assert r1["leader"] == r1["member_id"]
        assert r1["members"] == [(r1["member_id"], None, META_A)]
        gen1 = r1["generation"]
        m1 = r1["member_id"]

        # member 2 joins; its JoinGroup waits until member 1 rejoins. Member 1 would learn of
        # the rebalance from a heartbeat; here it rejoins until its join completes together
        # with member 2's (a rejoin that beats member 2 to the coordinator completes alone).
        w2 = in_thread(join_with_member_id, c2, group, "connect", [("sessioned", META_B)])
        deadline = time.monotonic() + 30
        while True:
            r1b = join_group(c1, group, m1, "connect", [("sessioned", META_A)])
            assert r1b["error"] == NONE, r1b
            if len(r1b["members"]) == 2 or r1b["leader"] != m1:
                break
            assert r1b["members"] == [(m1, None, META_A)], r1b
            assert time.monotonic() < deadline, "member 2 never joined"
            time.sleep(0.1)
        r2 = w2()
        assert r1b["error"] == NONE and r2["error"] == NONE, (r1b, r2)
        m2 = r2["member_id"]
        assert m2 != m1
        assert r1b["member_id"] == m1
        assert r1b["generation"] == r2["generation"] > gen1
        assert r1b["protocol"] == r2["protocol"] == "sessioned"
        assert r1b["leader"] == r2["leader"] and r1b["leader"] in (m1, m2)
        leader = r1b["leader"]
        lead_resp, follow_resp = (r1b, r2) if leader == m1 else (r2, r1b)
        # only the leader sees the members, each with its metadata byte-for-byte
        assert sorted(lead_resp["members"]) == sorted([(m1, None, META_A), (m2, None, META_B)])
        assert follow_resp["members"] == []
        gen = r1b["generation"]

        # SyncGroup: the follower waits for the leader's assignments
        follower_conn, follower_id = (c2, m2) if leader == m1 else (c1, m1)
        leader_conn = c1 if leader == m1 else c2
        wf = in_thread(sync_group, follower_conn, group, gen, follower_id, [])
        lead_sync = sync_group(leader_conn, group, gen, leader, [(m1, ASSIGN_X), (m2, ASSIGN_Y)])
        follow_sync = wf()
        got = {leader: lead_sync, follower_id: follow_sync}
        assert got[m1] == (NONE, ASSIGN_X)
        assert got[m2] == (NONE, ASSIGN_Y)

        # a "consumer" member cannot join a "connect" group
        r3 = join_group(c3, group, "", "consumer", [("range", b"\x00\x01")])
        assert r3["error"] == INCONSISTENT_GROUP_PROTOCOL, r3
        # nor can a connect member whose protocols share nothing with the group's
        r4 = join_group(c3, group, "", "connect", [("compatible", META_B)])
        assert r4["error"] == INCONSISTENT_GROUP_PROTOCOL, r4

        # the group is still intact: members leave cleanly
        assert leave_group(follower_conn, group, follower_id) == NONE
        assert leave_group(leader_conn, group, leader) == NONE
    finally:
        for c in (c1, c2, c3):
            c.close()
