"""How a produce (v3+) partition's records are framed into batches, as Kafka's batch iterator and
`ProduceRequest.validateRecords` read them, against gregor and Apache Kafka alike:

- no whole batch (cut short, only a header, a length past the bytes sent, nothing) is
  INVALID_RECORD; so is a magic 0 or 1 message set, and a second whole batch;
- a batch length below the smallest record, or an unknown magic, is CORRUPT_MESSAGE (for the first
  batch or one after it);
- bytes after the batch too few to frame another are ignored: the batch is appended.
"""

import struct

import crc32c

from harness import clients as C
from test_admin_replicas import TAGS, _carray, _cstr, _ncstr, _uvarint, raw_call


def zigzag(n):
    return _uvarint((n << 1) ^ (n >> 63))


def batch(values, magic=2):
    recs = b""
    for i, v in enumerate(values):
        body = b"\0" + zigzag(0) + zigzag(i) + zigzag(-1) + zigzag(len(v)) + v + zigzag(0)
        recs += zigzag(len(body)) + body
    n = len(values)
    after_crc = struct.pack(">hiqqqhii", 0, n - 1, 1000, 1000, -1, -1, -1, n) + recs
    tail = struct.pack(">ibI", 0, magic, crc32c.crc32c(after_crc)) + after_crc
    return struct.pack(">qi", 0, len(tail)) + tail


def produce_v11(b, topic, records):
    """Produce v11 of `records` to partition 0 -> (error, message)."""
    recs = _uvarint(len(records) + 1) + records
    body = _ncstr(None) + struct.pack(">hi", -1, 5000)
    body += _carray([topic], lambda t: _cstr(t) + _carray(
        [0], lambda p: struct.pack(">i", p) + recs + TAGS) + TAGS) + TAGS
    r = raw_call(b, 0, 11, body)
    r.uvarint()  # topics
    r.cstr()
    r.uvarint()  # partitions
    _index, error = r.i32(), r.i16()
    r.take(24)  # base offset, log append time, log start offset
    r.carray(lambda x: (x.i32(), x.cstr(), x.tags()))
    return error, r.cstr()


def test_records_are_framed_as_kafka_frames_them(broker):
    b = broker
    t = C.unique_name("framing")
    C.create_topic(b.bootstrap, t)
    good = batch([b"v"])
    legacy_v1 = struct.pack(">qi", 0, 22) + struct.pack(">Ibbqi", 0, 1, 0, 1000, -1) \
        + struct.pack(">i", 1) + b"v"
    legacy_v0 = legacy_v1[:16] + b"\0" + legacy_v1[17:]
    too_long = good[:8] + struct.pack(">i", len(good) + 100) + good[12:]
    negative = good[:8] + struct.pack(">i", -5) + good[12:]
    cases = [
        ("empty", b"", (87, None)),
        ("cut short", good[:-5], (87, None)),
        ("header only", good[:12], (87, None)),
        ("length past the bytes sent", too_long, (87, None)),
        ("magic 1", legacy_v1, (87, None)),
        ("magic 0", legacy_v0, (87, None)),
        ("two batches", good + good, (87, None)),
        ("negative length",
         negative, (2, "Record size -5 is less than the minimum record overhead (14)")),
    ]
    for name, records, want in cases:
        assert produce_v11(b, t, records) == want, name
    # A zero-length second batch: CORRUPT_MESSAGE.
    assert produce_v11(b, t, good + b"\0" * 20)[0] == 2
    # Five bytes after the batch cannot frame another: ignored, and the batch is appended alone.
    assert produce_v11(b, t, batch([b"kept"]) + b"\0" * 5) == (0, None)
    got = C.ck_read(b.bootstrap, t, 0, 0, count=1)
    assert [r.value for r in got] == [b"kept"]
