"""Every producing client x every compression codec, read back by every OTHER client.

Producers: confluent-kafka (librdkafka), kafka-python, Java (kafka-console-producer.sh, i.e.
the Java producer with its defaults: idempotent, acks=all).
Consumers: confluent-kafka, kafka-python, Java (kafka-console-consumer.sh printing timestamp,
partition, offset, headers, key and value), all assign()-based (no consumer group).

Records carry null and empty keys/values, duplicate header keys, null and empty header values
(librdkafka only: kafka-python cannot send them), UTF-8 and non-UTF-8 bytes (not through the
line-based console producer), explicit timestamps older than their batch's first record
(negative timestamp deltas), and some multi-KB values. The test asserts every consumer sees
exactly what was produced: same keys, values, headers (in order, duplicates kept), offsets
(those the producer's acks reported) and timestamps.

COMPAT_RECORDS (default 20000) sets the number of records per producer/codec.
COMPAT_JAVA_CONSUMER_CODECS (default: all) limits the codecs read by the Java console consumer.
"""

import os
import random
import time
import zlib

import pytest

from harness import clients as C

N = int(os.environ.get("COMPAT_RECORDS", "20000"))
CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]
PRODUCERS = ["confluent-kafka", "kafka-python", "java-console"]
CONSUMERS = ["confluent-kafka", "kafka-python", "java-console"]
JAVA_CONSUMER_CODECS = os.environ.get("COMPAT_JAVA_CONSUMER_CODECS", ",".join(CODECS)).split(",")

# Bytes that the line-based Java console tools cannot carry inside a field.
_TEXT = ("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
         " !\"#$%&'()*+-./;=?@[\\]^_`{|}~")
_BINARY = bytes(b for b in range(256) if b not in b"\t\n\r,:<")


def gen_records(n, seed, *, java_text_only, null_header_values, now_ms, null_key_and_value=True):
    rnd = random.Random(seed)
    recs = []
    for i in range(n):
        # key
        if i % 11 == 0:
            key = None
        elif i % 97 == 5:
            key = b""
        else:
            key = f"key-{i % 257}".encode()
        # value
        if i % 13 == 7 and (key is not None or null_key_and_value):
            value = None
        elif i % 101 == 50:
            value = b""
        else:
            kind = i % 4
            if kind == 0:
                value = (f"value {i} " * (i % 20 + 1)).encode()  # compressible
            elif kind == 1:
                value = "".join(rnd.choice(_TEXT) for _ in range(rnd.randrange(1, 200))).encode()
            elif kind == 2:
                value = f"héllo wörld ✓ 日本語 Ω {i}".encode("utf-8")
            elif java_text_only or i % 8 == 7:
                size = 3000 if i % 400 == 3 else rnd.randrange(1, 100)
                value = "".join(rnd.choice(_TEXT) for _ in range(size)).encode()
            else:  # non-UTF-8 bytes, including NUL
                value = bytes(rnd.choice(_BINARY) for _ in range(rnd.randrange(1, 120)))
        # headers
        if i % 5 == 0 and not java_text_only:
            headers = ()
        else:
            headers = [("trace", str(i).encode()), ("dup", b"first"), ("dup", f"second-{i}".encode())]
            if i % 7 == 3 and null_header_values:
                headers.append(("nullh", None))
            if i % 9 == 4:
                headers.append(("empty", b""))
            if i % 5 == 0:
                headers = [("only", b"one")]
            headers = tuple(headers)
        # explicit timestamps on some records, older than the rest (negative deltas)
        ts = None
        if not java_text_only and i % 17 == 16:
            ts = now_ms - 3_600_000 + i
        recs.append(C.Rec(key, value, headers, None, None, ts))
    return recs


class Produced:
    def __init__(self, topic, recs, t0, t1, exact_ts):
        self.topic, self.recs, self.t0, self.t1, self.exact_ts = topic, recs, t0, t1, exact_ts
        self.seen_ts = None  # for Java-produced data: timestamps the first consumer saw


@pytest.fixture(scope="module")
def produced(module_broker):
    cache = {}

    def get(producer, codec):
        key = (producer, codec)
        if key in cache:
            return cache[key]
        bootstrap = module_broker.bootstrap
        topic = C.create_topic(bootstrap, C.unique_name(f"rt-{producer}-{codec}"), 1)
        now_ms = int(time.time() * 1000)
        seed = zlib.crc32(f"{producer}/{codec}".encode())
        t0 = int(time.time() * 1000)
        if producer == "confluent-kafka":
            recs = gen_records(N, seed, java_text_only=False, null_header_values=True, now_ms=now_ms)
            out = C.ck_produce(bootstrap, topic, recs,
                               conf={"compression.type": codec, "acks": "all", "linger.ms": 5})
            exact_ts = True
        elif producer == "kafka-python":
            # kafka-python refuses records whose key and value are both null
            recs = gen_records(N, seed, java_text_only=False, null_header_values=False,
                               now_ms=now_ms, null_key_and_value=False)
            out = C.kp_produce(bootstrap, topic, recs,
                               compression_type=None if codec == "none" else codec)
            exact_ts = True
        else:
            recs = gen_records(N, seed, java_text_only=True, null_header_values=False, now_ms=now_ms)
            C.console_produce(bootstrap, topic, recs, compression=codec)
            # one idempotent producer, one partition: offsets follow input order
            out = [C.Rec(r.key, r.value, r.headers, 0, i, None) for i, r in enumerate(recs)]
            exact_ts = False
        t1 = int(time.time() * 1000)
        # Acked offsets on a fresh single-partition topic must be exactly 0..N-1.
        assert sorted(r.offset for r in out) == list(range(N)), "acked offsets not dense from 0"
        assert all(r.partition == 0 for r in out)
        if exact_ts:
            for r, o in zip(recs, out):
                if r.timestamp is not None:
                    assert o.timestamp == r.timestamp, "ack timestamp differs from the one sent"
        cache[key] = Produced(topic, sorted(out, key=lambda r: r.offset), t0, t1, exact_ts)
        return cache[key]

    return get


def _read(consumer, bootstrap, topic, n):
    if consumer == "confluent-kafka":
        return C.ck_read(bootstrap, topic, 0, 0, n, timeout=120)
    if consumer == "kafka-python":
        return C.kp_read(bootstrap, topic, 0, 0, n, timeout=120)
    return C.console_consume(bootstrap, topic, 0, n, timeout=180)


def _first_diff(expected, got):
    for i, (e, g) in enumerate(zip(expected, got)):
        if e != g:
            return f"first difference at index {i}:\n expected {e}\n got      {g}"
    return f"lengths differ: expected {len(expected)}, got {len(got)}"


CASES = [(p, c, k) for p in PRODUCERS for c in CODECS for k in CONSUMERS
         if k != p and (k != "java-console" or c in JAVA_CONSUMER_CODECS)]


@pytest.mark.parametrize("producer,codec,consumer", CASES,
                         ids=[f"{p}-{c}->{k}" for p, c, k in CASES])
def test_roundtrip(module_broker, produced, producer, codec, consumer):
    p = produced(producer, codec)
    got = _read(consumer, module_broker.bootstrap, p.topic, N)
    assert len(got) == N
    if p.exact_ts:
        expected = [r.full() for r in p.recs]
        actual = [r.full() for r in got]
    else:
        expected = [(r.partition, r.offset, r.key, r.value, r.headers) for r in p.recs]
        actual = [(r.partition, r.offset, r.key, r.value, r.headers) for r in got]
    assert actual == expected, _first_diff(expected, actual)
    if not p.exact_ts:
        # The Java producer picked the CreateTimes: they lie within the produce run and
        # every consumer reports the same ones.
        ts = [r.timestamp for r in got]
        assert all(p.t0 <= t <= p.t1 for t in ts), (min(ts), max(ts), p.t0, p.t1)
        if p.seen_ts is None:
            p.seen_ts = ts
        else:
            assert ts == p.seen_ts, "consumers disagree on timestamps"
