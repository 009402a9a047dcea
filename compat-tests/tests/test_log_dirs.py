"""A broker with two log dirs (JBOD): kafka-log-dirs.sh --describe shows both, with a topic's
partitions spread over them and their sizes; a replica moves to the other dir, either with
kafka-reassign-partitions.sh --execute and a reassignment that names `log_dirs` (which sends
AlterPartitionReassignments with the replicas unchanged, then AlterReplicaLogDirs) and --verify,
or with a raw AlterReplicaLogDirs request (whose errors are checked too: LOG_DIR_NOT_FOUND for a
dir not in log.dirs, UNKNOWN_TOPIC_OR_PARTITION). The records read back exactly, before and after
a restart, and appends go on in the new dir.
"""

import json
import socket
import struct
import time

from harness import clients as C
from harness.admin import tool
from harness.broker import Broker

LOG_DIR_NOT_FOUND = 57
UNKNOWN_TOPIC_OR_PARTITION = 3


def log_dirs(b, topic):
    """{log dir: {partition name: size}} from kafka-log-dirs.sh --describe (future replicas, a
    move's copy in progress on Kafka, left out)."""
    r = tool("kafka-log-dirs.sh", b.bootstrap, "--describe", "--topic-list", topic)
    r.check()
    lines = r.stdout.splitlines()
    assert lines[:2] == ["Querying brokers for log directories information",
                         "Received log directory information from brokers 1"], r.stdout
    doc = json.loads(lines[2])
    [brk] = doc["brokers"]
    out = {}
    for d in brk["logDirs"]:
        assert d["error"] is None, d
        current = [p for p in d["partitions"] if not p["isFuture"]]
        assert all(p["offsetLag"] == 0 for p in current), d
        out[d["logDir"]] = {p["partition"]: p["size"] for p in current}
    return out


def reassign(b, tmp_path, doc, *args, timeout=90):
    f = tmp_path / f"reassign-{time.monotonic_ns()}.json"
    f.write_text(json.dumps(doc))
    return tool("kafka-reassign-partitions.sh", b.bootstrap, "--reassignment-json-file", str(f),
                *args, timeout=timeout)


def _str(s):
    b = s.encode()
    return struct.pack(">h", len(b)) + b


def alter_replica_log_dirs(b, moves):
    """One raw AlterReplicaLogDirs v1 round-trip: moves = [(dir, topic, [partitions])] ->
    {(topic, partition): error code}."""
    body = struct.pack(">hhi", 34, 1, 7) + _str("gregor-compat")
    body += struct.pack(">i", len(moves))
    for d, t, ps in moves:
        body += _str(d) + struct.pack(">i", 1) + _str(t) + struct.pack(">i", len(ps))
        body += b"".join(struct.pack(">i", p) for p in ps)
    with socket.create_connection((b.host, b.port), timeout=30) as s:
        s.sendall(struct.pack(">i", len(body)) + body)
        buf = b""
        while len(buf) < 4 or len(buf) < 4 + struct.unpack(">i", buf[:4])[0]:
            chunk = s.recv(65536)
            assert chunk, "connection closed"
            buf += chunk
    r = buf[4:]
    corr, _throttle, n = struct.unpack(">iii", r[:12])
    assert corr == 7
    pos, out = 12, {}
    for _ in range(n):
        (tl,) = struct.unpack(">h", r[pos:pos + 2])
        topic = r[pos + 2:pos + 2 + tl].decode()
        pos += 2 + tl
        (pn,) = struct.unpack(">i", r[pos:pos + 4])
        pos += 4
        for _ in range(pn):
            p, err = struct.unpack(">ih", r[pos:pos + 6])
            pos += 6
            out[(topic, p)] = err
    return out


def move_with_reassign_tool(b, tmp_path, t, src, dst):
    doc = {"version": 1, "partitions": [
        {"topic": t, "partition": 0, "replicas": [1], "log_dirs": [dst]}]}
    r = reassign(b, tmp_path, doc, "--execute")
    assert r.returncode == 0, f"rc {r.returncode}\n{r.stdout}\n{r.stderr[-3000:]}"
    assert "Successfully started partition reassignment" in r.stdout, r.stdout
    assert (f"Successfully started moving log directory to {dst} for replica {t}-0 with "
            "broker 1") in r.stdout, r.stdout
    deadline = time.monotonic() + 60
    while True:
        r = reassign(b, tmp_path, doc, "--verify")
        assert r.returncode == 0, f"rc {r.returncode}\n{r.stdout}\n{r.stderr[-3000:]}"
        if f"Reassignment of replica {t}-0-1 completed successfully." in r.stdout:
            break
        assert time.monotonic() < deadline, r.stdout
        time.sleep(0.5)
    assert f"Reassignment of partition {t}-0 is completed." in r.stdout, r.stdout


def move_with_request(b, tmp_path, t, src, dst):
    errors = alter_replica_log_dirs(b, [
        (dst, t, [0]),
        (src + "-not-a-log-dir", t, [1]),
        ("relative/dir", t, [2]),
        (dst, t + "-missing", [0]),
        (src, t, [9]),
    ])
    assert errors == {(t, 0): 0, (t, 1): LOG_DIR_NOT_FOUND, (t, 2): LOG_DIR_NOT_FOUND,
                      (t + "-missing", 0): UNKNOWN_TOPIC_OR_PARTITION,
                      (t, 9): UNKNOWN_TOPIC_OR_PARTITION}, errors
    deadline = time.monotonic() + 60
    while f"{t}-0" not in log_dirs(b, t)[dst]:
        assert time.monotonic() < deadline, log_dirs(b, t)
        time.sleep(0.5)
    # already there: a no-op success
    assert alter_replica_log_dirs(b, [(dst, t, [0])]) == {(t, 0): 0}


def scenario(tmp_path, move):
    work = tmp_path / "broker"
    d1, d2 = work / "logs-1", work / "logs-2"
    b = Broker(work, overrides={"log.dirs": f"{d1},{d2}"})
    try:
        b.start()
        t = C.unique_name("jbod")
        C.create_topic(b.bootstrap, t, 4)
        recs = [C.Rec(b"k%d" % i, b"p%d-v%d" % (p, i), (), p) for p in range(4) for i in range(20)]
        C.ck_produce(b.bootstrap, t, recs)

        dirs = log_dirs(b, t)
        assert sorted(dirs) == sorted([str(d1), str(d2)]), dirs
        # spread as Kafka's LogManager.nextLogDirs does: two partitions in each dir
        assert sorted(len(ps) for ps in dirs.values()) == [2, 2], dirs
        for d, ps in dirs.items():
            for name, size in ps.items():
                on_disk = sum(f.stat().st_size for f in (work / d / name).glob("*.log"))
                assert size == on_disk and size > 20 * 5, (d, name, size, on_disk)

        # move partition 0 to the dir it is not in
        src = next(d for d, ps in dirs.items() if f"{t}-0" in ps)
        dst = str(d2) if src == str(d1) else str(d1)
        move(b, tmp_path, t, src, dst)

        moved = log_dirs(b, t)
        assert f"{t}-0" in moved[dst] and f"{t}-0" not in moved[src], moved
        assert moved[dst][f"{t}-0"] == dirs[src][f"{t}-0"], (dirs, moved)
        deadline = time.monotonic() + 30
        while (work / src / f"{t}-0").exists():  # Kafka deletes the old copy asynchronously
            assert time.monotonic() < deadline, list((work / src).iterdir())
            time.sleep(0.5)

        def check(extra=()):
            for p in range(4):
                want = [r for r in recs if r.partition == p] + [r for r in extra if r.partition == p]
                got = C.ck_read(b.bootstrap, t, p, count=len(want))
                assert [g.content() for g in got] == [w.content() for w in want], p
                assert [g.offset for g in got] == list(range(len(want))), p

        check()
        more = [C.Rec(b"m%d" % i, b"after-move-%d" % i, (), 0) for i in range(10)]
        C.ck_produce(b.bootstrap, t, more)
        check(more)

        b.restart()
        after = log_dirs(b, t)
        assert f"{t}-0" in after[dst] and f"{t}-0" not in after[src], after
        check(more)
    finally:
        b.close()


def test_log_dirs_move_with_reassign_tool(tmp_path):
    scenario(tmp_path, move_with_reassign_tool)


def test_log_dirs_move_with_alter_replica_log_dirs(tmp_path):
    scenario(tmp_path, move_with_request)
