"""Clients after the broker's state and resources (the rest of the hostile-clients issue), against
gregor and Apache Kafka alike; each prints what the broker spent:

- (item 0) under a 6 GiB address-space limit, a request with lying array counts for every API
  version the broker advertises closes at most its own connection; the broker stays up and a
  normal client's round trip is exact afterwards;
- (item 4) a group id too long for Kafka's storage is refused (INVALID_GROUP_ID from gregor; Kafka
  closes the connection), and cannot be read back after a restart as another group's committed
  offset;
- (item 6) an incremental fetch session grown to 3,000 partitions in six steps, and a fetch naming
  one partition 120,000 times, are answered quickly and stall no one else; session ids are not
  sequential;
- (item 9) 2,000 partitions each written and read back exactly, also after a restart; gregor, told
  to keep 256 segment files open, holds under 400 descriptors (Kafka one per segment);
- (item 11) passwords in the broker's configuration are described as null and sensitive, and never
  logged;
- (item 12) 300 connections sending a removed API version are closed without 300 log lines
  (gregor); Kafka's count is printed.
"""

import resource
import socket
import struct
import threading
import time

from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource, ResourceType

from harness import clients as C
from harness.broker import api_versions_v0, is_kafka
from harness.procstat import cpu_seconds, fd_count, rss_kib
from harness.wire import compact, frame, read_frame, read_uvarint, string16, uvarint

def ask(b, data, timeout=60):
    with socket.create_connection((b.host, b.port), timeout=timeout) as s:
        s.settimeout(timeout)
        s.sendall(data)
        return read_frame(s)


# ---- item 0 ------------------------------------------------------------------------------------

def test_lying_counts_under_an_address_space_limit(broker_factory, topic):
    b = broker_factory(limits={resource.RLIMIT_AS: 6 << 30})
    t = topic(broker=b)
    C.ck_round_trip_100(b.bootstrap, t)
    pid = b.proc.pid
    rss0, cpu0 = rss_kib(pid), cpu_seconds(pid)
    apis = api_versions_v0(b.host, b.port)
    lying = b"\x7f\xff\xff\xff" * 8
    answered = closed = 0
    for api, (lo, hi) in sorted(apis.items()):
        for version in sorted({lo, hi}):
            for flexible in (False, True):
                with socket.create_connection((b.host, b.port), timeout=30) as s:
                    s.settimeout(10)
                    s.sendall(frame(api, version, 7, lying, flexible))
                    try:
                        read_frame(s)
                        answered += 1
                    except (ConnectionError, socket.timeout):
                        closed += 1
    assert b.running, "the broker died"
    took = C.ck_round_trip_100(b.bootstrap, t)
    rss1 = rss_kib(pid)
    print(f"\n{answered + closed} lying frames ({len(apis)} APIs): {answered} answered, {closed} "
          f"closed; broker RSS {rss0} -> {rss1} KiB, CPU {cpu_seconds(pid) - cpu0:.2f} s; "
          f"a round trip after: {took:.2f} s")
    if not is_kafka():
        assert rss1 - rss0 < 64 * 1024


# ---- item 4 ------------------------------------------------------------------------------------

def offset_commit_v8(group, topic, offset, correlation=1):
    partition = struct.pack(">iqi", 0, offset, -1) + b"\x00" + b"\x00"
    topics = uvarint(2) + compact(topic.encode()) + uvarint(2) + partition + b"\x00"
    body = compact(group) + struct.pack(">i", -1) + compact(b"") + b"\x00" + topics + b"\x00"
    return frame(8, 8, correlation, body, flexible=True)


def offset_commit_v8_error(resp):
    pos = 4 + 1 + 4  # correlation id, tagged fields, throttle
    _, pos = read_uvarint(resp, pos)
    n, pos = read_uvarint(resp, pos)
    pos += n - 1
    _, pos = read_uvarint(resp, pos)
    return struct.unpack_from(">ih", resp, pos)[1]


def commit(b, group, topic, offset):
    """The error of a commit, once the group's coordinator is ready (Kafka answers
    COORDINATOR_NOT_AVAILABLE, NOT_COORDINATOR or COORDINATOR_LOAD_IN_PROGRESS until
    __consumer_offsets is loaded); "closed" when the broker closes the connection instead."""
    deadline = time.monotonic() + 60
    while True:
        try:
            error = offset_commit_v8_error(ask(b, offset_commit_v8(group, topic, offset)))
        except ConnectionError:
            return "closed"
        if error not in (14, 15, 16) or time.monotonic() > deadline:
            return error
        time.sleep(0.5)


def committed(bootstrap, group, topic):
    a = AdminClient({"bootstrap.servers": bootstrap})
    f = a.list_consumer_group_offsets(
        [ConsumerGroupTopicPartitions(group, [TopicPartition(topic, 0)])])
    return [tp.offset for tp in f[group].result(timeout=30).topic_partitions]


def test_an_overlong_group_id_cannot_forge_another_groups_offset(broker_factory):
    b = broker_factory()
    C.create_topic(b.bootstrap, "t", partitions=1)
    victim = C.ck_consumer(b.bootstrap, **{"group.id": "victim", "enable.auto.commit": False})
    victim.commit(offsets=[TopicPartition("t", 0, 42)], asynchronous=False)
    victim.close()
    # "victim", then bytes that read as topic "t" partition 0 if a 16-bit length wrapped.
    forged = b"victim\x00\x01t\x00\x00\x00\x00"
    forged += b"x" * (65_542 - len(forged))
    error = commit(b, forged, "t", 999_999)
    # gregor answers INVALID_GROUP_ID; Kafka cannot parse a string that long and closes.
    print(f"\na 65,542-byte group id's commit: {error}")
    assert error == ("closed" if is_kafka() else 24)
    assert committed(b.bootstrap, "victim", "t") == [42]
    b.restart()
    assert committed(b.bootstrap, "victim", "t") == [42]


# ---- item 6 ------------------------------------------------------------------------------------

def fetch_v7(session_id, epoch, topic, partitions, correlation=1):
    body = struct.pack(">iiiibii", -1, 0, 0, 1 << 20, 0, session_id, epoch)
    body += struct.pack(">i", 1) + string16(topic) + struct.pack(">i", len(partitions))
    body += b"".join(struct.pack(">iqqi", p, 0, -1, 1024) for p in partitions)
    body += struct.pack(">i", 0)  # nothing forgotten
    return frame(1, 7, correlation, body)


def fetch_v7_answer(resp):
    """(error, session id, [(partition, error)]) of a Fetch v7 answer."""
    error, session = struct.unpack_from(">hi", resp, 8)
    pos = 14
    (topics,) = struct.unpack_from(">i", resp, pos)
    pos += 4
    parts = []
    for _ in range(topics):
        (n,) = struct.unpack_from(">h", resp, pos)
        pos += 2 + n
        (count,) = struct.unpack_from(">i", resp, pos)
        pos += 4
        for _ in range(count):
            p, e = struct.unpack_from(">ih", resp, pos)
            pos += 6 + 24
            (aborted,) = struct.unpack_from(">i", resp, pos)
            pos += 4 + max(aborted, 0) * 16
            (size,) = struct.unpack_from(">i", resp, pos)
            pos += 4 + max(size, 0)
            parts.append((p, e))
    return error, session, parts


def test_fetch_sessions_and_duplicates_are_cheap_and_stall_no_one(broker_factory, topic):
    b = broker_factory()
    big = C.unique_name("many")
    C.create_topic(b.bootstrap, big, partitions=3_000, timeout=120)
    other = topic(broker=b)
    C.ck_round_trip_100(b.bootstrap, other)
    pid = b.proc.pid
    cpu0 = cpu_seconds(pid)
    stalls = []
    stop = threading.Event()

    def normal_client():
        while not stop.is_set():
            stalls.append(C.ck_round_trip_100(b.bootstrap, other))

    bystander = threading.Thread(target=normal_client)
    bystander.start()
    try:
        with socket.create_connection((b.host, b.port), timeout=60) as s:
            s.settimeout(60)
            steps = []
            s.sendall(fetch_v7(0, 0, big, range(0, 500)))
            error, session, parts = fetch_v7_answer(read_frame(s))
            assert (error, len(parts)) == (0, 500) and session != 0
            for epoch in range(1, 6):
                t = time.monotonic()
                s.sendall(fetch_v7(session, epoch, big, range(500 * epoch, 500 * epoch + 500)))
                error, same, parts = fetch_v7_answer(read_frame(s))
                steps.append(time.monotonic() - t)
                assert (error, same) == (0, session)
                assert all(e == 0 for _, e in parts)
            # One partition named 120,000 times in a sessionless fetch.
            t = time.monotonic()
            s.sendall(fetch_v7(0, -1, big, [7] * 120_000))
            error, _, parts = fetch_v7_answer(read_frame(s))
            dup = time.monotonic() - t
            assert error == 0 and {p for p, _ in parts} == {7}
        sessions = []
        for _ in range(5):
            with socket.create_connection((b.host, b.port), timeout=30) as s2:
                s2.settimeout(30)
                s2.sendall(fetch_v7(0, 0, big, [0]))
                sessions.append(fetch_v7_answer(read_frame(s2))[1])
    finally:
        stop.set()
        bystander.join()
    print(f"\nsession grown to 3,000 partitions, steps of 500 took "
          f"{', '.join(f'{x * 1000:.0f}' for x in steps)} ms; one partition named 120,000 times: "
          f"{dup:.2f} s ({len(parts)} answered); a bystander's round trips: {len(stalls)}, slowest "
          f"{max(stalls):.2f} s; broker CPU {cpu_seconds(pid) - cpu0:.2f} s; session ids {sessions}")
    assert max(steps) < 2.0 and dup < 5.0
    assert max(stalls) < 1.0
    assert len(set(sessions)) == 5
    assert sorted(sessions) != list(range(min(sessions), min(sessions) + 5))


# ---- item 9 ------------------------------------------------------------------------------------

def test_thousands_of_partitions_hold_few_descriptors(broker_factory):
    overrides = {} if is_kafka() else {"gregor.log.open.files.max": "256"}
    b = broker_factory(limits={resource.RLIMIT_NOFILE: 4096}, **overrides)
    t = C.unique_name("wide")
    C.create_topic(b.bootstrap, t, partitions=2_000, timeout=120)
    recs = [C.Rec(None, f"p{p}".encode(), partition=p) for p in range(2_000)]
    C.ck_produce(b.bootstrap, t, recs, conf={"acks": "all", "linger.ms": 5})
    written_fds = fd_count(b.proc.pid)

    def read_all():
        consumer = C.ck_consumer(b.bootstrap, **{"enable.auto.commit": False})
        try:
            consumer.assign([TopicPartition(t, p, 0) for p in range(2_000)])
            got = {}
            deadline = time.monotonic() + 120
            while len(got) < 2_000 and time.monotonic() < deadline:
                for m in consumer.consume(1000, 1.0):
                    assert m.error() is None, m.error()
                    got[m.partition()] = (m.offset(), m.value())
            return got
        finally:
            consumer.close()

    want = {p: (0, f"p{p}".encode()) for p in range(2_000)}
    assert read_all() == want
    read_fds = fd_count(b.proc.pid)
    b.restart()
    assert read_all() == want
    restarted_fds = fd_count(b.proc.pid)
    print(f"\n2,000 partitions written and read back: broker descriptors {written_fds} after "
          f"writing, {read_fds} after reading, {restarted_fds} after a restart and a read")
    if not is_kafka():
        assert max(written_fds, read_fds, restarted_fds) < 400


# ---- item 11 -----------------------------------------------------------------------------------

SECRETS = {
    "ssl.keystore.password": "hunter2-keystore",
    "ssl.key.password": "hunter2-key",
    "ssl.truststore.password": "hunter2-truststore",
}


def test_passwords_are_described_as_null_and_sensitive_and_never_logged(broker_factory):
    b = broker_factory(**SECRETS)
    a = AdminClient({"bootstrap.servers": b.bootstrap})
    res = ConfigResource(ResourceType.BROKER, "1")
    entries = a.describe_configs([res])[res].result(timeout=30)
    got = {k: (entries[k].value, entries[k].is_sensitive) for k in SECRETS}
    assert got == {k: (None, True) for k in SECRETS}
    logged = b.log_tail(max_bytes=10_000_000)
    assert "hunter2" not in logged


# ---- item 12 -----------------------------------------------------------------------------------

def test_a_client_retrying_a_removed_version_does_not_flood_the_log(broker_factory, topic):
    b = broker_factory()
    t = topic(broker=b)
    before = b.log_tail(max_bytes=10_000_000).count("\n")
    # Produce v2 (removed in Kafka 4.0), acks=0, one empty partition: every try is closed.
    body = struct.pack(">hi", 0, 1000) + struct.pack(">i", 1) + string16(t)
    body += struct.pack(">i", 1) + struct.pack(">ii", 0, 0)
    closed = 0
    for _ in range(300):
        with socket.create_connection((b.host, b.port), timeout=10) as s:
            s.settimeout(10)
            s.sendall(frame(0, 2, 1, body))
            try:
                read_frame(s)
            except (ConnectionError, socket.timeout):
                closed += 1
    time.sleep(1)
    lines = b.log_tail(max_bytes=10_000_000).count("\n") - before
    print(f"\n300 connections sending Produce v2: {closed} closed; {lines} log lines")
    assert closed == 300
    assert b.running
    C.ck_round_trip_100(b.bootstrap, t)
    if not is_kafka():
        assert lines <= 5
