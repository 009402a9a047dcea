"""Consumer-group helpers: long-running kafka-verifiable-consumer.sh / -producer.sh processes
whose JSON events are collected while they run, and librdkafka group consumers."""

import json
import os
import signal
import subprocess
import threading
import time

from confluent_kafka import Consumer

from .java import BIN_DIR


def now_ms() -> int:
    return int(time.time() * 1000)


def wait_for(cond, timeout, what, interval=0.1):
    """Poll cond() until truthy; return its value or fail with `what` (a str or a callable
    giving the diagnostics)."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for "
                                 f"{what() if callable(what) else what}")
        time.sleep(interval)


class JsonEventProc:
    """A Java tool (bin/<script>) printing one JSON event per stdout line; events are parsed
    while it runs (event['_seq'] = position in this process's output)."""

    def __init__(self, name, script, args, workdir):
        self.name = name
        self.events = []
        self.other_lines = []
        self._lock = threading.Lock()
        self.stderr_path = os.path.join(str(workdir), f"{name}.stderr")
        self._stderr = open(self.stderr_path, "wb")
        self.cmd = [str(BIN_DIR / script)] + [str(a) for a in args]
        self.proc = subprocess.Popen(self.cmd, stdout=subprocess.PIPE, stderr=self._stderr,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        self.started_ms = now_ms()
        self.killed_ms = None
        self.stop_ms = None  # when SIGTERM or SIGKILL was sent
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for raw in self.proc.stdout:
            line = raw.decode("utf-8", "replace").strip()
            if line.startswith("{"):
                try:
                    ev = json.loads(line)
                except ValueError:
                    self.other_lines.append(line)
                    continue
                with self._lock:
                    ev["_seq"] = len(self.events)
                    self.events.append(ev)
            elif line:
                self.other_lines.append(line)

    def snapshot(self, name=None):
        with self._lock:
            evs = list(self.events)
        return evs if name is None else [e for e in evs if e.get("name") == name]

    @property
    def running(self):
        return self.proc.poll() is None

    def kill9(self):
        self.killed_ms = now_ms()
        self.stop_ms = self.stop_ms or self.killed_ms
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        rc = self.proc.wait(timeout=30)
        self._reader.join(10)
        return rc

    def terminate(self, timeout=60):
        """SIGTERM (the JVM runs the tool's shutdown hook) and wait; returns the exit code."""
        self.stop_ms = now_ms()
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill9()
            raise AssertionError(f"{self.name} did not exit within {timeout}s of SIGTERM\n"
                                 f"{self.diag()}")
        self._reader.join(10)
        return rc

    def wait(self, timeout):
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill9()
            raise AssertionError(f"{self.name} did not finish within {timeout}s\n{self.diag()}")
        self._reader.join(10)
        return rc

    def close(self):
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=30)
        self._stderr.close()

    def stderr_tail(self, n=3000):
        try:
            with open(self.stderr_path, "rb") as f:
                return f.read()[-n:].decode("utf-8", "replace")
        except OSError:
            return ""

    def diag(self):
        evs = [e for e in self.snapshot() if e.get("name") != "record_data"]
        return (f"--- {self.name}: last events ---\n"
                + "\n".join(json.dumps(e) for e in evs[-15:])
                + f"\n--- {self.name}: stderr tail ---\n{self.stderr_tail()}")


class VerifiableConsumer(JsonEventProc):
    """kafka-verifiable-consumer.sh (classic group protocol, --verbose) with its partition
    ownership tracked from partitions_assigned / partitions_revoked events."""

    def __init__(self, name, bootstrap, topic, group, workdir, session_timeout_ms=6000,
                 assignor=None, instance_id=None, consumer_props=None):
        props_path = os.path.join(str(workdir), f"{name}.properties")
        props = {"heartbeat.interval.ms": "1000"}
        props.update(consumer_props or {})
        with open(props_path, "w") as f:
            f.write("".join(f"{k}={v}\n" for k, v in props.items()))
        args = ["--bootstrap-server", bootstrap, "--topic", topic, "--group-id", group,
                "--group-protocol", "classic", "--session-timeout", session_timeout_ms,
                "--reset-policy", "earliest", "--verbose", "--consumer.config", props_path]
        if assignor:
            args += ["--assignment-strategy", assignor]
        if instance_id:
            args += ["--group-instance-id", instance_id]
        super().__init__(name, "kafka-verifiable-consumer.sh", args, workdir)

    def owned(self):
        """Partitions owned after the events seen so far (assigned adds, revoked removes: right
        for eager assignment, which revokes everything first, and for cooperative)."""
        own = set()
        for e in self.snapshot():
            if e["name"] == "partitions_assigned":
                own |= {p["partition"] for p in e["partitions"]}
            elif e["name"] == "partitions_revoked":
                own -= {p["partition"] for p in e["partitions"]}
        return own

    def consumed(self):
        """{(partition, offset): value} of every record_data event."""
        return {(e["partition"], e["offset"]): e["value"]
                for e in self.snapshot("record_data")}


def ck_group_consumer(bootstrap, group, **conf) -> Consumer:
    c = {
        "bootstrap.servers": bootstrap,
        "group.id": group,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "session.timeout.ms": 6000,
        "heartbeat.interval.ms": 1000,
        "log_level": 3,
    }
    c.update(conf)
    return Consumer(c)
