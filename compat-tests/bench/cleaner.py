"""Log cleaner throughput: writes RECORDS updates over KEYS keys to one partition under
cleanup.policy=delete, switches the topic to compact and times the cleaning from the broker's
disk (the partition's segment bytes before and after, and when they settle). Prints input MB/s
(segment bytes the cleaning started from over its duration) and the space reclaimed.

    compat-tests/.venv/bin/python compat-tests/bench/cleaner.py [--target gregor|kafka]
        [--records 2000000] [--keys 10000] [--value-bytes 200]
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness import clients as C  # noqa: E402
from harness import logs as L  # noqa: E402
from harness.broker import Broker  # noqa: E402
from harness.java import kafka_script  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--target", default=os.environ.get("GREGOR_COMPAT_TARGET", "gregor"))
    ap.add_argument("--records", type=int, default=2_000_000)
    ap.add_argument("--keys", type=int, default=10_000)
    ap.add_argument("--value-bytes", type=int, default=200)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as work:
        b = Broker(Path(work), overrides=L.FAST_LOG_MAINTENANCE, target_name=a.target)
        b.start()
        try:
            t = C.unique_name("clean")
            C.create_topic(b.bootstrap, t, 1, {"cleanup.policy": "delete",
                                               "segment.bytes": str(64 << 20),
                                               "min.cleanable.dirty.ratio": "0.01"})
            p = C.ck_producer(b.bootstrap, **{"linger.ms": 20, "batch.size": 1 << 20,
                                              "acks": "1"})
            pad = b"v" * a.value_bytes
            for i in range(a.records):
                while True:
                    try:
                        p.produce(t, key=f"key-{i % a.keys}".encode(), value=pad)
                        break
                    except BufferError:
                        p.poll(0.05)
            assert p.flush(300) == 0
            # A short segment.ms and one more record roll the active segment, so every update is
            # in a sealed (cleanable) segment.
            kafka_script("kafka-configs.sh", "--bootstrap-server", b.bootstrap, "--alter",
                         "--entity-type", "topics", "--entity-name", t,
                         "--add-config", "segment.ms=100").check()
            time.sleep(0.5)
            C.ck_produce(b.bootstrap, t, [C.Rec(b"sentinel", b"roll")])
            before = L.log_bytes(b, t)
            kafka_script("kafka-configs.sh", "--bootstrap-server", b.bootstrap, "--alter",
                         "--entity-type", "topics", "--entity-name", t,
                         "--add-config", "cleanup.policy=compact").check()
            started = time.monotonic()
            last, settled_at = before, None
            while time.monotonic() - started < 600:
                now = L.log_bytes(b, t)
                if now != last:
                    last, settled_at = now, time.monotonic()
                elif settled_at and time.monotonic() - settled_at > 3:
                    break
                time.sleep(0.02)
            secs = (settled_at or time.monotonic()) - started
            mb = before / 1e6
            print(f"{a.target}: {a.records} records over {a.keys} keys, {mb:.1f} MB of segments "
                  f"-> {last / 1e6:.2f} MB in {secs:.2f} s: {mb / secs:.1f} MB/s of input, "
                  f"{(before - last) / 1e6:.1f} MB reclaimed")
            for line in b.log_path.read_text(errors="replace").splitlines():
                if "cleaned log" in line:  # gregor's own account of the pass
                    print("  " + line[line.find("topic="):])
        finally:
            b.stop()


if __name__ == "__main__":
    main()
