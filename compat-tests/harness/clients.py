"""Producing and consuming with the three client stacks: librdkafka (confluent-kafka),
kafka-python, and Apache Kafka's Java clients (through its command-line tools).

Everything is normalized to `Rec` so tests compare byte-for-byte.
"""

import contextlib
import os
import tempfile
import time
import uuid
from dataclasses import dataclass
from typing import List, Optional, Tuple

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from .java import kafka_script, kafka_script_bytes

Header = Tuple[str, Optional[bytes]]


@dataclass(frozen=True)
class Rec:
    key: Optional[bytes]
    value: Optional[bytes]
    headers: Tuple[Header, ...] = ()
    partition: Optional[int] = None
    offset: Optional[int] = None
    timestamp: Optional[int] = None

    def content(self):
        return (self.key, self.value, self.headers)

    def full(self):
        return (self.partition, self.offset, self.timestamp, self.key, self.value, self.headers)


def unique_name(prefix="t"):
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


# ----------------------------------------------------------------------------------------
# Security: credentials as each client stack spells them. Every produce/consume helper below
# takes `auth=`: Tls(...) for SSL, Sasl(...) for SASL_PLAINTEXT, Sasl(..., tls=Tls(...)) for
# SASL_SSL (None: PLAINTEXT).
# ----------------------------------------------------------------------------------------

_JAAS_MODULES = {
    "PLAIN": "org.apache.kafka.common.security.plain.PlainLoginModule",
    "SCRAM-SHA-256": "org.apache.kafka.common.security.scram.ScramLoginModule",
    "SCRAM-SHA-512": "org.apache.kafka.common.security.scram.ScramLoginModule",
}


@dataclass(frozen=True)
class Tls:
    """TLS: the CA certificates the client trusts (a PEM file; None: the system's) and, for
    client authentication, its own certificate (`cert`: PEM chain, `key`: PKCS#8 PEM,
    `pem_store`: key then chain in one file, Java's PEM key store). `java_extra`: more Java
    client properties, e.g. (("ssl.enabled.protocols", "TLSv1.2"),)."""
    ca: Optional[str] = None
    cert: Optional[str] = None
    key: Optional[str] = None
    pem_store: Optional[str] = None
    java_extra: Tuple[Tuple[str, str], ...] = ()

    @classmethod
    def of(cls, ca, identity=None, **kw):
        """Trusting `ca`; authenticating with a harness.certs.Identity when given."""
        if identity is not None:
            kw.update(cert=str(identity.cert), key=str(identity.key),
                      pem_store=str(identity.pem_store))
        return cls(ca=str(ca), **kw)

    def librdkafka(self) -> dict:
        c = {"security.protocol": "SSL"}
        if self.ca:
            c["ssl.ca.location"] = self.ca
        if self.cert:
            c.update({"ssl.certificate.location": self.cert, "ssl.key.location": self.key})
        return c

    def kafka_python(self) -> dict:
        c = {"security_protocol": "SSL"}
        if self.ca:
            c["ssl_cafile"] = self.ca
        if self.cert:
            c.update({"ssl_certfile": self.cert, "ssl_keyfile": self.key})
        return c

    def java(self) -> dict:
        c = {"security.protocol": "SSL"}
        if self.ca:
            c.update({"ssl.truststore.type": "PEM", "ssl.truststore.location": self.ca})
        if self.pem_store:
            c.update({"ssl.keystore.type": "PEM", "ssl.keystore.location": self.pem_store})
        c.update(dict(self.java_extra))
        return c


@dataclass(frozen=True)
class Sasl:
    mechanism: str  # PLAIN, SCRAM-SHA-256, SCRAM-SHA-512
    username: str
    password: str
    tls: Optional[Tls] = None  # SASL_SSL with it, SASL_PLAINTEXT without

    @property
    def protocol(self) -> str:
        return "SASL_SSL" if self.tls else "SASL_PLAINTEXT"

    def librdkafka(self) -> dict:
        return {**(self.tls.librdkafka() if self.tls else {}),
                "security.protocol": self.protocol, "sasl.mechanism": self.mechanism,
                "sasl.username": self.username, "sasl.password": self.password}

    def kafka_python(self) -> dict:
        return {**(self.tls.kafka_python() if self.tls else {}),
                "security_protocol": self.protocol, "sasl_mechanism": self.mechanism,
                "sasl_plain_username": self.username, "sasl_plain_password": self.password}

    def java(self) -> dict:
        """Java client properties (security.protocol, sasl.mechanism, sasl.jaas.config)."""
        for v in (self.username, self.password):
            assert '"' not in v and "\\" not in v, v
        jaas = (f'{_JAAS_MODULES[self.mechanism]} required username="{self.username}" '
                f'password="{self.password}";')
        return {**(self.tls.java() if self.tls else {}),
                "security.protocol": self.protocol, "sasl.mechanism": self.mechanism,
                "sasl.jaas.config": jaas}


def _ck_conf(conf, auth):
    c = dict(auth.librdkafka()) if auth else {}
    c.update(conf or {})
    return c


def _kp_conf(conf, auth):
    c = dict(auth.kafka_python()) if auth else {}
    c.update(conf)
    return c


@contextlib.contextmanager
def java_client_config(auth):
    """A temporary client properties file for a Java tool's --producer.config,
    --consumer.config or --command-config; None (no file) without `auth`."""
    if auth is None:
        yield None
        return
    fd, path = tempfile.mkstemp(prefix="compat-client-", suffix=".properties")
    try:
        with os.fdopen(fd, "w") as f:
            f.write("".join(f"{k}={v}\n" for k, v in auth.java().items()))
        yield path
    finally:
        os.unlink(path)


# ----------------------------------------------------------------------------------------
# Admin
# ----------------------------------------------------------------------------------------

def admin(bootstrap) -> AdminClient:
    return AdminClient({"bootstrap.servers": bootstrap, "log_level": 0})


def wait_topic(bootstrap, name, partitions=None, timeout=30.0, adm=None):
    """Poll Metadata until `name` exists, has `partitions` partitions, all with a leader."""
    adm = adm or admin(bootstrap)
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            md = adm.list_topics(topic=name, timeout=5)
            t = md.topics.get(name)
            if t is not None and t.error is None and t.partitions:
                if (partitions is None or len(t.partitions) == partitions) and all(
                        p.leader >= 0 and p.error is None for p in t.partitions.values()):
                    return t
            last = t.error if t is not None else "absent"
        except KafkaException as e:
            last = e
        if time.monotonic() > deadline:
            raise AssertionError(f"topic {name} not ready after {timeout}s: {last}")
        time.sleep(0.1)


def create_topic(bootstrap, name, partitions=1, config=None, timeout=30.0):
    adm = admin(bootstrap)
    fut = adm.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1,
                                      config=dict(config or {}))],
                            operation_timeout=timeout, request_timeout=timeout)[name]
    fut.result(timeout=timeout)  # raises KafkaException on error
    wait_topic(bootstrap, name, partitions, timeout=timeout, adm=adm)
    return name


# ----------------------------------------------------------------------------------------
# confluent-kafka (librdkafka)
# ----------------------------------------------------------------------------------------

def ck_producer(bootstrap, **conf) -> Producer:
    c = {"bootstrap.servers": bootstrap, "log_level": 3}
    c.update(conf)
    return Producer(c)


def ck_produce(bootstrap, topic, recs: List[Rec], conf=None, timeout=120.0,
               auth=None) -> List[Rec]:
    """Produce recs in order; return them completed with the partition/offset/timestamp the
    delivery reports carried. Any delivery error fails."""
    p = ck_producer(bootstrap, **_ck_conf(conf, auth))
    results = [None] * len(recs)
    errors = []

    def make_cb(i):
        def cb(err, msg):
            if err is not None:
                errors.append((i, err))
            else:
                results[i] = (msg.partition(), msg.offset(), msg.timestamp()[1])
        return cb

    for i, r in enumerate(recs):
        kw = {}
        if r.partition is not None:
            kw["partition"] = r.partition
        if r.timestamp is not None:
            kw["timestamp"] = r.timestamp
        if r.headers:
            kw["headers"] = list(r.headers)
        while True:
            try:
                p.produce(topic, value=r.value, key=r.key, on_delivery=make_cb(i), **kw)
                break
            except BufferError:
                p.poll(0.05)
        p.poll(0)
    left = p.flush(timeout)
    assert left == 0, f"{left} messages still undelivered after {timeout}s"
    assert not errors, f"{len(errors)} delivery errors, first: {errors[:3]}"
    return [Rec(r.key, r.value, r.headers, *results[i]) for i, r in enumerate(recs)]


def ck_consumer(bootstrap, **conf) -> Consumer:
    c = {
        "bootstrap.servers": bootstrap,
        # assign()-only consumer with explicit start offsets: no JoinGroup, no commits.
        # The Python binding insists on a group.id, so librdkafka still looks up the group
        # coordinator (FindCoordinator); a broker without groups only makes it log errors.
        "group.id": "compat-assign-only",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "log_level": 3,
    }
    c.update(conf)
    return Consumer(c)


def _ck_headers(h):
    return tuple(h) if h else ()


def ck_read(bootstrap, topic, partition=0, start=0, count=None, end=None, timeout=60.0,
            conf=None, auth=None) -> List[Rec]:
    """Read `count` records (or up to offset `end`, exclusive) from topic/partition starting at
    `start` with an assign()-based librdkafka consumer."""
    assert count is not None or end is not None
    if count is None:
        count = end - start
    out = []
    if count <= 0:
        return out
    c = ck_consumer(bootstrap, **_ck_conf(conf, auth))
    try:
        c.assign([TopicPartition(topic, partition, start)])
        deadline = time.monotonic() + timeout
        while len(out) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"ck_read {topic}/{partition}: got {len(out)} of {count} "
                                     f"records in {timeout}s")
            for m in c.consume(num_messages=min(10000, count - len(out)), timeout=0.5):
                if m.error():
                    if m.error().code() == KafkaError._PARTITION_EOF:
                        continue
                    raise AssertionError(f"ck_read {topic}/{partition}: {m.error()}")
                out.append(Rec(m.key(), m.value(), _ck_headers(m.headers()), m.partition(),
                               m.offset(), m.timestamp()[1]))
    finally:
        c.close()
    return out[:count] if end is None else [r for r in out if r.offset < end]


def ck_expect_out_of_range(bootstrap, topic, offset, partition=0):
    """A librdkafka consumer (auto.offset.reset=error) at `offset` reports Offset out of range."""
    c = ck_consumer(bootstrap, **{"auto.offset.reset": "error"})
    try:
        c.assign([TopicPartition(topic, partition, offset)])
        msg = None
        for _ in range(30):
            msg = c.poll(1.0)
            if msg is not None:
                break
        assert msg is not None and msg.error() is not None, "no error reported"
        assert msg.error().code() == KafkaError._AUTO_OFFSET_RESET, msg.error()
        assert "Offset out of range" in msg.error().str(), msg.error()
        return msg
    finally:
        c.close()


def kp_expect_out_of_range(bootstrap, topic, offset, partition=0):
    """A kafka-python consumer (auto_offset_reset=none) at `offset` raises
    OffsetOutOfRangeError naming that position."""
    from kafka import TopicPartition as KTP
    from kafka.errors import OffsetOutOfRangeError

    kc = kp_consumer(bootstrap, auto_offset_reset="none")
    try:
        tp = KTP(topic, partition)
        kc.assign([tp])
        kc.seek(tp, offset)
        try:
            for _ in range(20):
                kc.poll(timeout_ms=500)
        except OffsetOutOfRangeError as e:
            assert e.args[0] == {tp: offset}, e.args
            return
        raise AssertionError("kafka-python: no OffsetOutOfRangeError")
    finally:
        kc.close()


def watermarks(bootstrap, topic, partition=0, timeout=10.0):
    c = ck_consumer(bootstrap)
    try:
        return c.get_watermark_offsets(TopicPartition(topic, partition), timeout=timeout,
                                       cached=False)
    finally:
        c.close()


# ----------------------------------------------------------------------------------------
# kafka-python
# ----------------------------------------------------------------------------------------

def kp_produce(bootstrap, topic, recs: List[Rec], timeout=120.0, auth=None,
               **conf) -> List[Rec]:
    from kafka import KafkaProducer

    c = dict(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    c.update(_kp_conf(conf, auth))
    p = KafkaProducer(**c)
    try:
        futs = []
        for r in recs:
            futs.append(p.send(topic, value=r.value, key=r.key,
                               headers=list(r.headers) if r.headers else None,
                               partition=r.partition, timestamp_ms=r.timestamp))
        p.flush(timeout=timeout)
        out = []
        for r, f in zip(recs, futs):
            md = f.get(timeout=timeout)  # raises the broker's error
            out.append(Rec(r.key, r.value, r.headers, md.partition, md.offset, md.timestamp))
        return out
    finally:
        p.close(timeout=10)


def kp_consumer(bootstrap, auth=None, **conf):
    from kafka import KafkaConsumer

    c = dict(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
             auto_offset_reset="earliest", consumer_timeout_ms=1000)
    c.update(_kp_conf(conf, auth))
    return KafkaConsumer(**c)


def kp_read(bootstrap, topic, partition=0, start=0, count=None, timeout=60.0, auth=None,
            **conf):
    from kafka import TopicPartition as KTP

    c = kp_consumer(bootstrap, auth=auth, **conf)
    out = []
    try:
        tp = KTP(topic, partition)
        c.assign([tp])
        c.seek(tp, start)
        deadline = time.monotonic() + timeout
        while len(out) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"kp_read {topic}/{partition}: got {len(out)} of {count} "
                                     f"records in {timeout}s")
            batch = c.poll(timeout_ms=500, max_records=10000)
            for recs in batch.values():
                for m in recs:
                    out.append(Rec(m.key, m.value, tuple(m.headers or ()), m.partition,
                                   m.offset, m.timestamp))
    finally:
        c.close()
    return out[:count]


# ----------------------------------------------------------------------------------------
# Java: kafka-console-producer.sh / kafka-console-consumer.sh
# ----------------------------------------------------------------------------------------

NULL = "<NULL>"  # null.marker / null.literal: never occurs in generated data
CONSOLE_FORMAT_PROPS = [
    "--property", "print.timestamp=true",
    "--property", "print.partition=true",
    "--property", "print.offset=true",
    "--property", "print.headers=true",
    "--property", "print.key=true",
    "--property", "print.value=true",
    "--property", "key.separator=\t",
    "--property", "headers.separator=,",
    "--property", f"null.literal={NULL}",
]


def _b(s: Optional[bytes]) -> bytes:
    return NULL.encode() if s is None else s


def console_consume(bootstrap, topic, partition, count, timeout=120.0, extra=(),
                    auth=None) -> List[Rec]:
    """kafka-console-consumer.sh --partition P --offset earliest --max-messages N, printing
    timestamp/partition/offset/headers/key/value; parsed back to Rec exactly."""
    args = ["--bootstrap-server", bootstrap, "--topic", topic, "--partition", str(partition),
            "--offset", "earliest", "--max-messages", str(count),
            "--timeout-ms", str(int(timeout * 1000) - 15000)] + CONSOLE_FORMAT_PROPS + list(extra)
    with java_client_config(auth) as props:
        if props:
            args += ["--consumer.config", props]
        r = kafka_script_bytes("kafka-console-consumer.sh", *args, timeout=timeout)
    lines = r.stdout.split(b"\n")
    assert lines[-1] == b"", f"output does not end in a newline: {lines[-1][:200]!r}"
    lines = lines[:-1]
    assert len(lines) == count, (f"console consumer printed {len(lines)} of {count} records, "
                                 f"rc={r.returncode}\n{r.stderr[-3000:]}")
    assert r.returncode == 0, r.stderr[-3000:]
    out = []
    for line in lines:
        f = line.split(b"\t", 5)
        assert len(f) == 6, f"unparseable console line {line[:300]!r}"
        ts_s, part_s, off_s, hdr_s, key, value = f
        assert ts_s.startswith(b"CreateTime:"), line[:200]
        assert part_s.startswith(b"Partition:") and off_s.startswith(b"Offset:"), line[:200]
        headers = ()
        if hdr_s != b"NO_HEADERS":
            hs = []
            for pair in hdr_s.split(b","):
                k, _, v = pair.partition(b":")
                hs.append((k.decode(), None if v == NULL.encode() else v))
            headers = tuple(hs)
        out.append(Rec(None if key == NULL.encode() else key,
                       None if value == NULL.encode() else value,
                       headers, int(part_s[10:]), int(off_s[7:]), int(ts_s[11:])))
    return out


def console_line(r: Rec) -> bytes:
    """One kafka-console-producer.sh input line: headers<TAB>key<TAB>value."""
    hdr = b",".join(k.encode() + b":" + _b(v) for k, v in r.headers)
    return hdr + b"\t" + _b(r.key) + b"\t" + _b(r.value)


def console_produce(bootstrap, topic, recs: List[Rec], compression="none", timeout=180.0,
                    extra=(), auth=None):
    """Feed recs to kafka-console-producer.sh (Java producer defaults: idempotent, acks=all)."""
    for r in recs:
        assert r.headers, "console producer lines need at least one header (parse.headers)"
    data = b"".join(console_line(r) + b"\n" for r in recs)
    args = ["--bootstrap-server", bootstrap, "--topic", topic,
            "--compression-codec", compression,
            "--property", "parse.key=true",
            "--property", "parse.headers=true",
            "--property", "key.separator=\t",
            "--property", "headers.delimiter=\t",
            "--property", "headers.separator=,",
            "--property", "headers.key.separator=:",
            "--property", f"null.marker={NULL}"] + list(extra)
    with java_client_config(auth) as props:
        if props:
            args += ["--producer.config", props]
        r = kafka_script("kafka-console-producer.sh", *args, timeout=timeout, input=data)
    r.check()
    assert "ERROR" not in r.stderr, r.stderr[-3000:]
    return r


def ck_round_trip_100(bootstrap, topic):
    """Produces 100 records with acks=all and reads them back; returns the seconds it took."""
    recs = [Rec(None, f"normal-{i:03d}".encode(), partition=0) for i in range(100)]
    t = time.monotonic()
    acked = ck_produce(bootstrap, topic, recs, conf={"acks": "all", "linger.ms": 0})
    got = ck_read(bootstrap, topic, 0, acked[0].offset, count=100)
    took = time.monotonic() - t
    assert [r.value for r in got] == [r.value for r in recs]
    return took
