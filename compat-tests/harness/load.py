"""A continuous acks=all producer shared by the crash tests (test_kill9, test_crash_loop)."""

import threading
import time
from collections import Counter

from . import clients as C

PARTITIONS = 3


class ContinuousProducer(threading.Thread):
    def __init__(self, bootstrap, topic, tag, idempotent, partitions=PARTITIONS, keys=None):
        super().__init__(daemon=True)
        self.partitions = partitions
        # With `keys`, record i has key key_of(i): a compacted topic's workload.
        self.keys = keys
        self.topic, self.tag = topic, tag
        self.p = C.ck_producer(bootstrap, **{
            "acks": "all",
            "enable.idempotence": idempotent,
            "linger.ms": 2,
            "message.timeout.ms": 60000,
            "log_level": 0,
        })
        self.acked = []  # (partition, offset, value)
        self.sent = set()
        self.failed = Counter()
        self.stop_flag = threading.Event()
        self.error = None

    def _cb(self, err, msg):
        if err is None:
            self.acked.append((msg.partition(), msg.offset(), msg.value()))
        else:
            self.failed[err.code()] += 1

    def run(self):
        i = 0
        try:
            while not self.stop_flag.is_set():
                v = f"{self.tag}-{i}".encode()
                try:
                    self.p.produce(self.topic, value=v, partition=i % self.partitions,
                                   key=self.key_of(i), on_delivery=self._cb)
                    self.sent.add(v)
                    i += 1
                except BufferError:
                    self.p.poll(0.01)
                    continue
                self.p.poll(0)
                if i % 200 == 0:
                    time.sleep(0.002)  # keep the broker busy but not CPU-starved
        except Exception as e:  # pragma: no cover
            self.error = e

    def key_of(self, i):
        return None if self.keys is None else f"k{i % self.keys}".encode()

    def key_of_value(self, v):
        return self.key_of(int(v.rsplit(b"-", 1)[1]))

    def finish(self):
        self.stop_flag.set()
        self.join(10)
        assert not self.is_alive()
        # drop whatever is queued or in flight: those sends are simply not acked
        self.p.purge(in_queue=True, in_flight=True, blocking=False)
        self.p.flush(5)
        self.p.poll(0)
        assert self.error is None, self.error
