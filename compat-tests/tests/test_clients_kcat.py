"""kcat 1.7.1 (Debian's package, librdkafka 2.0.2) against the broker, exact output.

`-L` metadata listings (text and JSON: broker, controller, topic, partitions, leader, replicas,
ISR; auto-creation of a topic named in `-L -t`), `-P` keyed lines (`-K`) with headers (`-H`)
to explicit partitions (`-p`) under every compression codec, `-C` from the beginning to the end
(`-o beginning -e`), from an absolute offset with a count (`-o N -c N`) and relative to the end
(`-o -N`) with a `-f` format printing partition, offset, key, value, headers and timestamp,
plus the JSON envelope (`-J`); `-Q` offsets by timestamp and `-o s@TS -o e@TS` consumption
between timestamps; `-G` balanced consumer groups that
read from the beginning, exit at the end (`-e`), commit, and resume at the committed offsets.

Fails when kcat is missing (compat-tests/install.sh apt-installs it when run as root).
"""

import json
import shutil
import subprocess
import time

import pytest
from confluent_kafka import TopicPartition

from harness import clients as C

KCAT = shutil.which("kcat")


@pytest.fixture(autouse=True)
def _kcat_installed():
    """install.sh installs it; a missing client is a failure, never a silent skip."""
    if KCAT is None:
        pytest.fail("kcat missing (compat-tests/install.sh apt-get installs it)")

FMT = r"%p\t%o\t%k\t%s\t%h\t%T\n"


def kcat(bootstrap, *args, input=None, timeout=30, check=True):
    """Run kcat with a bounded time; returns CompletedProcess (bytes)."""
    cmd = [KCAT, "-b", bootstrap, "-m", "10"] + [str(a) for a in args]
    try:
        r = subprocess.run(cmd, input=input, capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        raise AssertionError(f"{' '.join(cmd)} timed out after {timeout}s\n--- stdout ---\n"
                             f"{(e.stdout or b'')[-3000:]!r}\n--- stderr ---\n{(e.stderr or b'')[-3000:]!r}")
    if check:
        assert r.returncode == 0, (f"{' '.join(cmd)} exited {r.returncode}\n--- stdout ---\n"
                                   f"{r.stdout[-3000:]!r}\n--- stderr ---\n{r.stderr[-3000:]!r}")
    return r


def lines(r):
    out = r.stdout.decode()
    assert out == "" or out.endswith("\n"), out[-300:]
    return out.splitlines()


def parse(rows):
    """FMT lines → [(partition, offset, key, value, headers, timestamp)] sorted by (p, o)."""
    out = []
    for ln in rows:
        p, o, k, v, h, ts = ln.split("\t")
        out.append((int(p), int(o), k, v, h, int(ts)))
    return sorted(out)


def origin_ok(line, topic, port):
    """kcat names the broker that answered the Metadata request: broker 1, or the bootstrap
    connection when that is the one up at the time (librdkafka picks any usable broker)."""
    return line in (f"Metadata for {topic} (from broker 1: 127.0.0.1:{port}/1):",
                    f"Metadata for {topic} (from broker -1: 127.0.0.1:{port}/bootstrap):")


def listing(topic, port, partitions):
    return [f" 1 brokers:",
            f"  broker 1 at 127.0.0.1:{port} (controller)",
            f" 1 topics:",
            f"  topic \"{topic}\" with {partitions} partitions:"] + [
        f"    partition {p}, leader 1, replicas: 1, isrs: 1" for p in range(partitions)]


def test_kcat_metadata(module_broker, topic):
    """`kcat -L -t T`: one broker (the controller) at the advertised address, the topic with 3
    partitions, each led by broker 1 with replicas and ISR [1]; `-L -J` says the same in JSON.
    `-L -t NEW` on a broker with auto.create.topics.enable creates NEW with num.partitions (1)
    partitions (Kafka's first answer may still be UNKNOWN_TOPIC_OR_PARTITION)."""
    b, port = module_broker.bootstrap, module_broker.port
    t = topic(3)
    out = lines(kcat(b, "-L", "-t", t))
    assert origin_ok(out[0], t, port), out[0]
    assert out[1:] == listing(t, port, 3)

    j = json.loads(kcat(b, "-L", "-J", "-t", t).stdout)
    assert j.pop("originating_broker") in ({"id": 1, "name": f"127.0.0.1:{port}/1"},
                                           {"id": -1, "name": f"127.0.0.1:{port}/bootstrap"})
    assert j == {"query": {"topic": t}, "controllerid": 1,
                 "brokers": [{"id": 1, "name": f"127.0.0.1:{port}"}],
                 "topics": [{"topic": t, "partitions": [
                     {"partition": p, "leader": 1, "replicas": [{"id": 1}], "isrs": [{"id": 1}]}
                     for p in range(3)]}]}

    new = C.unique_name("kcat-auto")
    deadline = time.monotonic() + 15
    while True:
        out = lines(kcat(b, "-L", "-t", new))
        if out[1:] == listing(new, port, 1) or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert origin_ok(out[0], new, port), out[0]
    assert out[1:] == listing(new, port, 1)


# partition → rounds of (compression args, lines); every line key:value, one value with a ':'
def _produce_plan():
    codecs = {0: (["-z", "snappy"], ["-X", "compression.codec=zstd"]),
              1: (["-z", "gzip"], []),
              2: (["-z", "lz4"], ["-z", "gzip"])}
    plan = []
    for rnd in range(2):
        for p in range(3):
            recs = [(f"k{p}-{rnd * 5 + j}", f"v{p}-{rnd * 5 + j}" + (":colon" if j == 4 else ""))
                    for j in range(5)]
            plan.append((p, codecs[p][rnd], recs))
    return plan


@pytest.fixture(scope="module")
def produced(module_broker):
    """A 3-partition topic filled by `kcat -P -K : -p P -H ...`: 10 records per partition in two
    runs, each run with its own codec (snappy, zstd, gzip, lz4, none). Returns (topic, expected
    rows without timestamps, (earliest, latest) wall-clock bounds of the timestamps)."""
    b = module_broker.bootstrap
    t = C.unique_name("kcat")
    C.create_topic(b, t, 3)
    rows = []
    t0 = int(time.time() * 1000)
    for p, codec, recs in _produce_plan():
        data = "".join(f"{k}:{v}\n" for k, v in recs).encode()
        kcat(b, "-P", "-t", t, "-p", p, "-K", ":", "-H", "src=kcat", "-H", f"part={p}", *codec,
             input=data)
        base = len([r for r in rows if r[0] == p])
        rows += [(p, base + j, k, v, f"src=kcat,part={p}") for j, (k, v) in enumerate(recs)]
    t1 = int(time.time() * 1000)
    return t, sorted(rows), (t0, t1)


def check_rows(got, want, bounds):
    assert [g[:5] for g in got] == [tuple(w) for w in want]
    assert all(bounds[0] <= g[5] <= bounds[1] for g in got), (bounds, [g[5] for g in got])


def test_kcat_consume_from_offset(module_broker, produced):
    """Records produced by kcat (every codec) read back from absolute offsets (no ListOffsets):
    `-p 1 -o 0 -c 10` and `-p 2 -o 3 -c 4` print exactly those records' partition, offset, key,
    value (split at the first ':' only), headers and a CreateTime taken while producing; librdkafka
    (confluent-kafka) reads the same keys, values and headers."""
    b = module_broker.bootstrap
    t, want, bounds = produced
    got = parse(lines(kcat(b, "-C", "-t", t, "-p", 1, "-o", 0, "-c", 10, "-f", FMT)))
    check_rows(got, [w for w in want if w[0] == 1], bounds)
    got = parse(lines(kcat(b, "-C", "-t", t, "-p", 2, "-o", 3, "-c", 4, "-f", FMT)))
    check_rows(got, [w for w in want if w[0] == 2 and 3 <= w[1] < 7], bounds)
    ck = C.ck_read(b, t, partition=0, start=0, end=10, timeout=30)
    assert [(r.partition, r.offset, r.key.decode(), r.value.decode(),
             ",".join(f"{k}={v.decode()}" for k, v in r.headers)) for r in ck] == \
        [w for w in want if w[0] == 0]


def test_kcat_consume_beginning_and_relative(module_broker, produced):
    """`-C -o beginning -e` prints all 30 records of the 3 partitions exactly and exits at the
    end of every partition; `-o -3 -e` on one partition prints its last 3; `-J` gives the JSON
    envelope (CreateTime, broker 1, headers as a flat list)."""
    b = module_broker.bootstrap
    t, want, bounds = produced
    got = parse(lines(kcat(b, "-C", "-t", t, "-o", "beginning", "-e", "-f", FMT)))
    check_rows(got, want, bounds)
    got = parse(lines(kcat(b, "-C", "-t", t, "-p", 0, "-o", -3, "-e", "-f", FMT)))
    check_rows(got, [w for w in want if w[0] == 0 and w[1] >= 7], bounds)
    js = [json.loads(x) for x in lines(kcat(b, "-C", "-t", t, "-p", 2, "-o", "beginning", "-e",
                                            "-J", "-q"))]
    assert all(bounds[0] <= x.pop("ts") <= bounds[1] for x in js), bounds
    assert js == [
        {"topic": t, "partition": 2, "offset": o, "tstype": "create", "broker": 1,
         "headers": ["src", "kcat", "part", "2"], "key": k, "payload": v}
        for (p, o, k, v, h) in want if p == 2]


def test_kcat_query_offsets_by_timestamp(module_broker, topic):
    """`kcat -Q -t T:P:TS` (ListOffsets by timestamp) on records with known timestamps (written by
    librdkafka, out of order and repeated): the first offset whose timestamp is >= TS, -1 after
    the last one, 0 for TS 0; several partitions in one query. `-C -o s@TS -o e@TS2` prints the
    records from the first at or after TS up to (not including) the first at or after TS2."""
    b = module_broker.bootstrap
    t = topic(2)
    base = (int(time.time()) - 600) * 1000
    ts = {0: [1000, 2000, 2000, 1500, 3000], 1: [500, 4000]}
    C.ck_produce(b, t, [C.Rec(f"k{p}{i}".encode(), b"v", (), p, None, base + d)
                        for p in ts for i, d in enumerate(ts[p])])

    def q(*specs):
        out = lines(kcat(b, "-Q", *sum((["-t", f"{t}:{p}:{x}"] for p, x in specs), [])))
        return sorted(out)

    assert q((0, base + 2000), (1, base + 1000)) == [f"{t} [0] offset 1", f"{t} [1] offset 1"]
    assert q((0, base + 1001), (1, base + 500)) == [f"{t} [0] offset 1", f"{t} [1] offset 0"]
    assert q((0, base + 3001), (1, 0)) == [f"{t} [0] offset -1", f"{t} [1] offset 0"]
    assert q((0, base + 1500)) == [f"{t} [0] offset 1"]
    assert q((0, base + 3000)) == [f"{t} [0] offset 4"]

    # the consumer side: start at a timestamp (s@), stop at the first record at or after
    # another one (e@, exclusive)
    got = lines(kcat(b, "-C", "-t", t, "-p", 0, "-o", f"s@{base + 1500}", "-o", f"e@{base + 3000}",
                     "-f", r"%o %T\n"))
    assert got == [f"{o} {base + d}" for o, d in ((1, 2000), (2, 2000), (3, 1500))]


def test_kcat_consumer_group(module_broker, topic):
    """`kcat -G GROUP -o beginning -e T` (balanced consumer group, librdkafka's default eager
    range,roundrobin assignors) joins, gets the 3 partitions, prints exactly the 9 records and
    exits at the end; it commits on the way out (OffsetFetch then gives 3 per partition). Run
    again without `-o` (auto.offset.reset=earliest) it resumes at the committed offsets: nothing;
    after 2 more records exactly those."""
    b = module_broker.bootstrap
    t = topic(3)
    g = C.unique_name("kcat-g")
    C.ck_produce(b, t, [C.Rec(f"k{i}".encode(), f"v{i}".encode(), (), i % 3) for i in range(9)])
    fmt = r"%p\t%o\t%k\t%s\n"

    def run_group(*start):
        r = kcat(b, "-G", g, *start, "-e", "-f", fmt, t, timeout=20)
        err = r.stderr.decode()
        assert f"assigned: {t} [0], {t} [1], {t} [2]" in err, err[-3000:]
        return sorted(tuple(x.split("\t")) for x in lines(r))

    assert run_group("-o", "beginning") == sorted((str(i % 3), str(i // 3), f"k{i}", f"v{i}")
                                                  for i in range(9))
    c = C.ck_consumer(b, **{"group.id": g})
    try:
        committed = c.committed([TopicPartition(t, p) for p in range(3)], timeout=10)
    finally:
        c.close()
    assert [(x.partition, x.offset, x.error) for x in committed] == [(p, 3, None) for p in range(3)]

    # without -o (which kcat applies to every assigned partition): the committed offsets, or
    # the earliest if there were none
    earliest = ("-X", "auto.offset.reset=earliest")
    assert run_group(*earliest) == []
    C.ck_produce(b, t, [C.Rec(b"k9", b"v9", (), 0), C.Rec(b"k10", b"v10", (), 2)])
    assert run_group(*earliest) == [("0", "3", "k9", "v9"), ("2", "3", "k10", "v10")]
