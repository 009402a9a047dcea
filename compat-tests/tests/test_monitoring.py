"""gregor's Prometheus endpoint and the monitoring deliverables built on it.

- test_metrics_exact_values: a broker with metrics.address on a free port; known load (records
  per partition, one raw Produce of a known record batch, one Produce for an unknown topic,
  a group that commits known offsets); after a gauge sample (every 5 s) /metrics must carry
  exactly the expected counters and gauges.
- test_dashboards_against_prometheus: a real Prometheus (Debian package, installed by
  install.sh) configured from docker/prometheus.yml (validated by promtool) scrapes the broker
  under the same load; every panel query of every grafana/dashboards/*.json, with its Grafana
  variables expanded, must return at least one series.

gregor only: Apache Kafka exposes JMX, not this endpoint.
"""

import re
import struct
import socket
import subprocess
import time

import pytest
from confluent_kafka import TopicPartition
from kafka.record.memory_records import MemoryRecordsBuilder

from harness import clients as C
from harness import prom
from harness.broker import REPO_DIR, free_port, is_kafka

pytestmark = pytest.mark.skipif(is_kafka(), reason="gregor's /metrics endpoint (Kafka exposes JMX)")

# records produced per partition of the 3-partition topic, and the offsets the group commits
PER_PARTITION = {0: 10, 1: 7, 2: 4}
COMMITTED = {0: 3, 1: 7}  # partition 2: nothing committed
RAW_RECORDS = 5
UNKNOWN_TOPIC_OR_PARTITION = 3


def _version():
    m = re.search(r'^version\s*=\s*"([^"]+)"', (REPO_DIR / "Cargo.toml").read_text(), re.M)
    return m.group(1)


def _str(s: str) -> bytes:
    b = s.encode()
    return struct.pack(">h", len(b)) + b


def record_batch(n: int) -> bytes:
    """One uncompressed v2 record batch of n records."""
    b = MemoryRecordsBuilder(magic=2, compression_type=0, batch_size=1 << 20)
    for i in range(n):
        b.append(timestamp=None, key=None, value=f"raw-{i}".encode(), headers=[])
    b.close()
    return bytes(b.buffer())


def raw_produce(bootstrap: str, topic: str, batch: bytes, partition=0) -> int:
    """One Produce v3 request (acks=1) of `batch` to topic/partition; returns the error code.
    Raw, because clients never send Produce for a topic their metadata says is unknown."""
    body = (struct.pack(">h", -1)                          # transactional_id: null
            + struct.pack(">hi", 1, 10000)                 # acks, timeout_ms
            + struct.pack(">i", 1) + _str(topic)           # one topic
            + struct.pack(">i", 1) + struct.pack(">i", partition)
            + struct.pack(">i", len(batch)) + batch)       # one partition
    header = struct.pack(">hhi", 0, 3, 0x5EED) + _str("gregor-monitoring")
    req = header + body
    host, port = bootstrap.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(struct.pack(">i", len(req)) + req)

        def read(n):
            buf = b""
            while len(buf) < n:
                chunk = s.recv(n - len(buf))
                assert chunk, "connection closed during Produce"
                buf += chunk
            return buf

        (size,) = struct.unpack(">i", read(4))
        resp = read(size)
    corr, ntopics = struct.unpack(">ii", resp[:8])
    assert corr == 0x5EED and ntopics == 1
    (nlen,) = struct.unpack(">h", resp[8:10])
    pos = 10 + nlen
    nparts, index, error = struct.unpack(">iih", resp[pos:pos + 10])
    assert nparts == 1 and index == partition
    return error


class Load:
    """The known load both tests drive; the consumer stays in the group until close()."""

    def __init__(self, bootstrap):
        self.bootstrap = bootstrap
        self.topic = C.create_topic(bootstrap, C.unique_name("mon"), len(PER_PARTITION))
        self.raw_topic = C.create_topic(bootstrap, C.unique_name("monraw"), 1)
        self.group = C.unique_name("mongroup")
        self.unknown = C.unique_name("nope")
        self.batch = record_batch(RAW_RECORDS)
        self.consumer = None

    def run(self):
        recs = [C.Rec(None, f"p{p}-{i}".encode(), partition=p)
                for p, n in PER_PARTITION.items() for i in range(n)]
        C.ck_produce(self.bootstrap, self.topic, recs, conf={"acks": "all"})
        assert raw_produce(self.bootstrap, self.raw_topic, self.batch) == 0
        assert raw_produce(self.bootstrap, self.unknown, self.batch) == UNKNOWN_TOPIC_OR_PARTITION

        c = C.ck_consumer(self.bootstrap, **{"group.id": self.group, "session.timeout.ms": 30000,
                                             "fetch.wait.max.ms": 500})
        self.consumer = c
        c.subscribe([self.topic])
        total, got = sum(PER_PARTITION.values()), 0
        deadline = time.monotonic() + 30
        while got < total:
            assert time.monotonic() < deadline, f"consumed {got}/{total}"
            m = c.poll(0.5)
            if m is not None and m.error() is None:
                got += 1
        c.commit(offsets=[TopicPartition(self.topic, p, o) for p, o in COMMITTED.items()],
                 asynchronous=False)

    def idle(self, seconds):
        """Keep the consumer polling (parked fetches at the log end) for `seconds`."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            m = self.consumer.poll(min(0.5, max(0.0, end - time.monotonic())))
            assert m is None or m.error() is not None, "unexpected record"

    def close(self):
        if self.consumer is not None:
            self.consumer.close()
            self.consumer = None


@pytest.fixture
def load_broker(broker_factory):
    port = free_port()
    b = broker_factory(**{"metrics.address": f"127.0.0.1:{port}",
                          # every append fsyncs, so gregor_log_flush_seconds has observations
                          "log.flush.interval.messages": "1"})
    b.metrics_url = f"http://127.0.0.1:{port}/metrics"
    return b


def test_metrics_exact_values(load_broker):
    load = Load(load_broker.bootstrap)
    try:
        load.run()
        load.idle(6.0)  # gauges are sampled every 5 s
        s = prom.Scrape(load_broker.metrics_url)
    finally:
        load.close()
    t, g = load.topic, load.group

    # counters: records and bytes appended / fetched
    assert s.value("kafka_server_brokertopicmetrics_messagesin_total", topic=t) == sum(PER_PARTITION.values())
    assert s.value("kafka_server_brokertopicmetrics_messagesin_total", topic=load.raw_topic) == RAW_RECORDS
    assert s.value("kafka_server_brokertopicmetrics_bytesin_total", topic=load.raw_topic) == len(load.batch)
    assert s.value("kafka_server_brokertopicmetrics_bytesin_total", topic=t) > 0
    assert s.value("kafka_server_brokertopicmetrics_bytesout_total", topic=t) > 0
    assert s.value("kafka_server_brokertopicmetrics_bytesout_total", topic=load.raw_topic) == 0
    assert not s.series("kafka_server_brokertopicmetrics_messagesin_total", topic=load.unknown)

    # the Produce for the unknown topic is the only refused partition; every other error a produce
    # can answer has its series at zero (registered at start-up, so dashboards are never empty)
    errors = {dict(k)["error"]: v for k, v in s.series("gregor_produce_errors_total").items()}
    assert {e: v for e, v in errors.items() if v} == {"UnknownTopicOrPartition": 1.0}
    assert {"CorruptMessage", "MessageTooLarge", "InvalidRecord", "KafkaStorageError"} <= set(errors)
    assert s.value("gregor_requests_total", api="Produce") >= 3
    assert s.value("gregor_request_seconds_count", api="Produce") >= 3
    assert s.value("gregor_request_seconds_bucket", api="Produce", le="+Inf") == \
        s.value("gregor_request_seconds_count", api="Produce")
    assert s.value("gregor_requests_total", api="OffsetCommit") >= 1

    # per-partition gauges
    for p, n in PER_PARTITION.items():
        lab = {"topic": t, "partition": p}
        assert s.value("kafka_log_log_logendoffset", **lab) == n, p
        assert s.value("gregor_partition_high_watermark", **lab) == n, p
        assert s.value("kafka_log_log_logstartoffset", **lab) == 0, p
        assert s.value("kafka_log_log_size", **lab) > 0, p
    assert s.value("kafka_log_log_logendoffset", topic=load.raw_topic, partition=0) == RAW_RECORDS
    assert s.value("kafka_log_log_size", topic=load.raw_topic, partition=0) >= len(load.batch)

    # committed offsets and lag = end offset - committed, only where the group committed
    for p, off in COMMITTED.items():
        lab = {"group": g, "topic": t, "partition": p}
        assert s.value("kafka_consumergroup_current_offset", **lab) == off, p
        assert s.value("kafka_consumergroup_lag", **lab) == PER_PARTITION[p] - off, p
    assert set(int(dict(k)["partition"]) for k in s.series("kafka_consumergroup_lag", group=g)) == set(COMMITTED)
    assert s.value("gregor_group_offset_commits_total") == len(COMMITTED)
    assert s.value("gregor_group_rebalances_total") >= 1

    # the one group is Stable with its one member
    assert {dict(k)["state"]: v for k, v in s.series("gregor_groups").items()} == {
        "Stable": 1.0, "Empty": 0.0, "PreparingRebalance": 0.0, "CompletingRebalance": 0.0}
    assert s.value("gregor_group_members", group=g) == 1

    # process and storage
    assert s.value("gregor_build_info", version=_version()) == 1
    assert s.value("gregor_connections_open") >= 1
    assert s.value("gregor_fetch_waiting") is not None
    assert s.value("gregor_log_flush_seconds_count") >= 1
    assert s.value("gregor_meta_flush_seconds_count") >= 1
    assert s.value("gregor_meta_disk_bytes") > 0
    assert s.value("process_resident_memory_bytes") > 0
    assert s.value("process_open_fds") > 0


RATE_INTERVAL = "20s"  # Grafana's $__rate_interval for a 5 s scrape interval: 4 scrapes


def test_dashboards_against_prometheus(load_broker, tmp_path):
    if prom.prometheus_binary() is None:
        pytest.skip("prometheus binary not installed (compat-tests/install.sh installs the Debian "
                    "package 'prometheus' when run as root with apt-get)")
    check = subprocess.run(["promtool", "check", "config", str(prom.PROMETHEUS_YML)],
                           capture_output=True, text=True, timeout=30)
    assert check.returncode == 0, f"promtool check config:\n{check.stdout}{check.stderr}"

    boards = prom.dashboards()
    assert len(boards) >= 4, [n for n, _ in boards]
    for name, d in boards:
        ds = [v for v in d["templating"]["list"] if v["name"] == "datasource"]
        assert ds and ds[0]["type"] == "datasource" and ds[0]["query"] == "prometheus", name

    metrics_addr = load_broker.metrics_url.split("/")[2]
    p = prom.Prometheus(tmp_path / "prometheus", prom.config_for_target(metrics_addr))
    load = Load(load_broker.bootstrap)
    try:
        p.start()
        load.run()
        loaded_at = time.time()
        values = {"datasource": "prometheus", "topic": load.topic, "group": load.group,
                  "instance": metrics_addr, "__rate_interval": RATE_INTERVAL,
                  "__interval": "5s"}
        queries = []
        for name, d in boards:
            for title, ref, expr in prom.panel_targets(d):
                assert "or vector(" not in expr.replace(" ", ""), f"{name} / {title}: padded query"
                queries.append((name, title, ref, expr, prom.expand(expr, values)))

        # at least 3 scrapes after the load, then until every query has a series (or time's up)
        deadline = loaded_at + 60
        empty = queries
        while True:
            load.idle(1.0)
            since = int(time.time() - loaded_at)
            scrapes = p.query(f'count_over_time(up{{job="gregor"}}[{since}s])') if since > 0 else []
            if scrapes and float(scrapes[0]["value"][1]) >= 3:
                empty = [q for q in queries if not p.query(q[4])]
                if not empty:
                    break
            if time.time() > deadline:
                break
        up = p.query('up{job="gregor"}')
        assert up and up[0]["value"][1] == "1", f"gregor target not up: {up}\n{p.log_tail()}"
        for name, title, ref, _, expanded in empty:
            print(f"EMPTY: {name} / {title} [{ref}]: {expanded}")
        assert not empty, "panel queries without series: " + "; ".join(
            f"{n} / {t} [{r}]" for n, t, r, _, _ in empty)
        print(f"{len(queries)} panel queries in {len(boards)} dashboards all returned series")
    finally:
        load.close()
        p.close()


def test_compose_file_and_dockerfile_are_valid():
    """No Docker engine here: the compose file is checked with Debian's docker-compose (installed by
    install.sh), and the Dockerfile must build the binary exactly as the README's run command does
    (`cargo build --release --locked` of this crate) and start it with the compose stack's ports."""
    compose = REPO_DIR / "docker" / "compose.yml"
    r = subprocess.run(["docker-compose", "-f", str(compose), "config"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    for service in ("gregor:", "prometheus:", "grafana:"):
        assert service in r.stdout, r.stdout
    assert "9308" in r.stdout and "9092" in r.stdout
    dockerfile = (REPO_DIR / "docker" / "Dockerfile").read_text()
    assert "cargo build --release --locked" in dockerfile
    assert "metrics.address=0.0.0.0:9308" in dockerfile
    assert re.search(r"^USER\s+\S+", dockerfile, re.M), "the runtime image must not run as root"
    assert "HEALTHCHECK" in dockerfile
