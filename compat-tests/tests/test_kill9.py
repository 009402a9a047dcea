"""Crash safety: a producer (acks=all) sends continuously while the broker is SIGKILLed.

After a restart on the same data directory, for every partition: offsets are dense from 0 to
the high watermark, every acked value is present exactly once at the offset its ack reported,
and nothing that was never sent appears. Three kill/restart rounds per test; with and without
idempotence. (Unacked sends are purged, not retried into the restarted broker, so a
non-idempotent retry cannot legitimately duplicate an acked value.)
"""

import time
from collections import Counter

import pytest
from confluent_kafka import KafkaError

from harness import clients as C
from harness.load import ContinuousProducer

PARTITIONS = 3
ROUNDS = 3


@pytest.mark.parametrize("idempotent", [False, True], ids=["plain", "idempotent"])
def test_kill9_loses_no_acked_record(broker, topic, idempotent):
    t = topic(PARTITIONS)
    all_acked = []
    all_sent = set()
    for rnd in range(ROUNDS):
        prod = ContinuousProducer(broker.bootstrap, t, f"r{rnd}", idempotent)
        prod.start()
        deadline = time.monotonic() + 30
        # let it get going: at least 1.5 s and some acks
        time.sleep(1.5)
        while len(prod.acked) < 500 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(prod.acked) >= 500, f"round {rnd}: only {len(prod.acked)} acks"
        broker.kill9()
        prod.finish()
        assert set(prod.failed) <= {KafkaError._PURGE_QUEUE, KafkaError._PURGE_INFLIGHT,
                                     KafkaError._TRANSPORT, KafkaError._MSG_TIMED_OUT,
                                     KafkaError.NETWORK_EXCEPTION}, prod.failed
        all_acked += prod.acked
        all_sent |= prod.sent

        broker.restart()
        C.wait_topic(broker.bootstrap, t, PARTITIONS)
        for p in range(PARTITIONS):
            lo, hi = C.watermarks(broker.bootstrap, t, p)
            assert lo == 0
            recs = C.ck_read(broker.bootstrap, t, p, 0, end=hi, timeout=60)
            offsets = [r.offset for r in recs]
            assert offsets == list(range(hi)), f"round {rnd} partition {p}: offsets not dense"
            log = {r.offset: r.value for r in recs}
            counts = Counter(r.value for r in recs)
            stray = [v for v in counts if v not in all_sent]
            assert not stray, f"values never sent: {stray[:5]}"
            mine = [(o, v) for q, o, v in all_acked if q == p]
            assert all(o < hi for o, _ in mine), (
                f"round {rnd} partition {p}: acked offset {max(o for o, _ in mine)} >= HW {hi}")
            wrong = [(o, v, log.get(o)) for o, v in mine if log.get(o) != v]
            assert not wrong, f"round {rnd} partition {p}: acked value not at its offset: {wrong[:5]}"
            dup = [v for o, v in mine if counts[v] != 1]
            assert not dup, f"round {rnd} partition {p}: acked values present twice: {dup[:5]}"
