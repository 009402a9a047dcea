#!/usr/bin/env python3
"""gregor vs Apache Kafka 4.1.1 side-by-side benchmark (see README.md in this folder).

Started by run.sh, which installs the jars, builds the franz-go load generator and sets up a
venv with matplotlib. Python 3 stdlib only, plus matplotlib for the chart.

One broker at a time, fresh data directory per broker start, same topics and clients for both.
Every figure is the median of --rounds alternating runs (kafka, gregor, kafka, gregor, ...).
Exits non-zero if a broker fails to start or any workload errors (results are still written).
"""

import argparse
import base64
import datetime
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import time
import traceback
import uuid
from pathlib import Path

BENCH = Path(__file__).resolve().parent
COMPAT = BENCH.parent
REPO = COMPAT.parent
JARS = COMPAT / ".jars"
LOG4J = COMPAT / "harness" / "log4j2.properties"
WORK = BENCH / ".work"
RESULTS = BENCH / "results"  # --quick writes to .work/quick-results/ (not committed) so it never clobbers a full run
LOADGEN = WORK / "loadgen"
CLK_TCK = os.sysconf("SC_CLK_TCK")
JAVA = os.environ.get("JAVA", "java")

FSYNC = {"log.flush.interval.messages": "1"}
DUR_DEFAULT = "default (page cache, no fsync per append)"
DUR_FSYNC = "fsync per append (log.flush.interval.messages=1)"

# Given to both brokers (Kafka: server.properties, gregor: --override). Kafka's default 3 s
# delay before the first rebalance of a new group would only add a constant to (c').
SHARED_CONFIG = {"group.initial.rebalance.delay.ms": "0"}

CHILDREN = set()  # pids of process groups we started; killed on exit


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def kill_children():
    for pid in list(CHILDREN):
        try:
            os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        CHILDREN.discard(pid)


def on_signal(signum, _frame):
    kill_children()
    sys.exit(128 + signum)


# ---- /proc helpers -------------------------------------------------------------------------

def proc_cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # after the ")" field 3 (state) is index 0: utime is field 14 -> index 11, stime 15 -> 12
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def proc_status_kib(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return None


def reset_hwm(pid):
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM to the current RSS (Linux >= 4.0)
        return True
    except OSError:
        return False


def machine_busy():
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    with open("/proc/stat") as f:
        vals = [int(x) for x in f.readline().split()[1:]]
    idle = vals[3] + vals[4]
    return sum(vals) - idle, sum(vals)


def machine_description():
    model = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem_kib = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
    nproc = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
    return (f"{model}, nproc={nproc}, {mem_kib / 1024 / 1024:.1f} GiB RAM, "
            f"{platform.system()} {platform.release()}")


# ---- raw ApiVersions v0 --------------------------------------------------------------------

def api_versions_v0(port, timeout=1.0):
    cid = b"gregor-bench"
    body = struct.pack(">hhih", 18, 0, 0x0BE7C4, len(cid)) + cid
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.settimeout(timeout)
        s.sendall(struct.pack(">i", len(body)) + body)
        buf = b""
        while len(buf) < 4 or len(buf) < 4 + struct.unpack(">i", buf[:4])[0]:
            chunk = s.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            buf += chunk
    corr, err = struct.unpack(">ih", buf[4:10])
    if corr != 0x0BE7C4 or err != 0:
        raise ValueError(f"ApiVersions v0: corr={corr:#x} err={err}")
    (n,) = struct.unpack(">i", buf[10:14])
    return {struct.unpack(">h", buf[14 + 6 * i:16 + 6 * i])[0] for i in range(n)}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- child processes -----------------------------------------------------------------------

class ClientRun:
    def __init__(self, rc, out, err, wall, cpu):
        self.rc, self.out, self.err, self.wall, self.cpu = rc, out, err, wall, cpu

    @property
    def cpu_pct(self):
        return 100.0 * self.cpu / self.wall if self.wall > 0 else 0.0


def run_client(cmd, logfile, timeout):
    """Run a client to completion in its own process group; CPU from wait4's rusage."""
    out_path, err_path = Path(str(logfile) + ".out"), Path(str(logfile) + ".err")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with open(out_path, "wb") as o, open(err_path, "wb") as e:
        t0 = time.monotonic()
        p = subprocess.Popen([str(c) for c in cmd], stdout=o, stderr=e, stdin=subprocess.DEVNULL,
                             start_new_session=True, cwd=str(WORK))
        CHILDREN.add(p.pid)
        ru = None
        status = None
        while True:
            pid, status, ru = os.wait4(p.pid, os.WNOHANG)
            if pid != 0:
                break
            if time.monotonic() - t0 > timeout:
                os.killpg(p.pid, signal.SIGKILL)
                pid, status, ru = os.wait4(p.pid, 0)
                status = None
                break
            time.sleep(0.02)
        wall = time.monotonic() - t0
        p.returncode = 0  # reaped by wait4 ourselves; keep Popen from trying again
        CHILDREN.discard(p.pid)
    rc = "timeout" if status is None else os.waitstatus_to_exitcode(status)
    return ClientRun(rc, out_path.read_text(errors="replace"), err_path.read_text(errors="replace"),
                     wall, ru.ru_utime + ru.ru_stime)


def java_cmd(main, *args, heap="-Xmx512M"):
    return [JAVA, heap, f"-Dlog4j2.configurationFile={LOG4J}", "-cp", f"{JARS}/*", main, *args]


class WorkloadError(Exception):
    pass


# ---- brokers -------------------------------------------------------------------------------

class Broker:
    def __init__(self, kind, name, overrides, gregor_bin):
        self.kind, self.overrides, self.gregor_bin = kind, dict(overrides), gregor_bin
        self.dir = WORK / name
        MY_DIRS.append(self.dir)
        if self.dir.exists():
            shutil.rmtree(self.dir)
        (self.dir / "data").mkdir(parents=True)
        self.port = free_port()
        self.proc = None
        self.startup_ms = None
        self.idle_rss_mib = None
        self.api_keys = set()

    @property
    def bootstrap(self):
        return f"127.0.0.1:{self.port}"

    def _kafka_props(self):
        cport = free_port()
        cfg = {
            # the minimum a single KRaft combined node needs; everything else is Kafka's default
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.bootstrap.servers": f"127.0.0.1:{cport}",
            "listeners": f"PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{cport}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "log.dirs": str(self.dir / "data"),
            "offsets.topic.replication.factor": "1",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
        }
        cfg.update(SHARED_CONFIG)
        cfg.update(self.overrides)
        props = self.dir / "server.properties"
        props.write_text("".join(f"{k}={v}\n" for k, v in cfg.items()))
        cluster = "-"
        while cluster.startswith("-"):  # argparse would take a leading '-' for an option
            cluster = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        r = subprocess.run(java_cmd("kafka.tools.StorageTool", "format", "--standalone", "-t", cluster,
                                    "-c", str(props), heap="-Xmx256M"),
                           capture_output=True, text=True, timeout=180)
        if r.returncode != 0:
            raise WorkloadError(f"StorageTool format failed: {r.stdout}\n{r.stderr}")
        return props

    def start(self, timeout):
        if self.kind == "kafka":
            props = self._kafka_props()
            cmd = [JAVA, "-Xmx1G", "-Xms1G", "-XX:+UseG1GC", f"-Dlog4j2.configurationFile={LOG4J}",
                   "-cp", f"{JARS}/*", "kafka.Kafka", str(props)]
        else:
            cmd = [str(self.gregor_bin), "--override", f"listeners=PLAINTEXT://127.0.0.1:{self.port}",
                   "--override", f"log.dirs={self.dir / 'data'}"]
            for k, v in {**SHARED_CONFIG, **self.overrides}.items():
                cmd += ["--override", f"{k}={v}"]
        self.logf = open(self.dir / "broker.log", "wb")
        t0 = time.monotonic()
        self.proc = subprocess.Popen(cmd, stdout=self.logf, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True,
                                     cwd=str(self.dir), env=dict(os.environ, NO_COLOR="1"))
        CHILDREN.add(self.proc.pid)
        while True:
            if self.proc.poll() is not None:
                raise WorkloadError(f"{self.kind} exited during start-up with {self.proc.returncode}; "
                                    f"log tail:\n{self.log_tail()}")
            try:
                self.api_keys = api_versions_v0(self.port, timeout=1.0)
                break
            except (OSError, ValueError, struct.error):
                pass
            if time.monotonic() - t0 > timeout:
                raise WorkloadError(f"{self.kind} did not answer ApiVersions within {timeout}s; "
                                    f"log tail:\n{self.log_tail()}")
            time.sleep(0.01)
        self.startup_ms = (time.monotonic() - t0) * 1000
        time.sleep(3)  # settle (Kafka finishes registering with its controller), then idle RSS
        self.check_alive()
        self.idle_rss_mib = proc_status_kib(self.proc.pid, "VmRSS") / 1024
        return self

    def check_alive(self):
        if self.proc.poll() is not None:
            raise WorkloadError(f"{self.kind} died (exit {self.proc.returncode}); log tail:\n"
                                f"{self.log_tail()}")

    def log_tail(self, n=3000):
        try:
            return (self.dir / "broker.log").read_bytes()[-n:].decode(errors="replace")
        except OSError:
            return "(no log)"

    def stop(self):
        """SIGTERM and wait; returns a warning string if the exit was not clean."""
        if self.proc is None:
            return None
        warn = None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
                warn = f"{self.kind} did not exit within 60s of SIGTERM (killed)"
        rc = self.proc.returncode
        ok = (0, 143) if self.kind == "kafka" else (0,)
        if warn is None and rc not in ok:
            warn = f"{self.kind} exited with {rc} after SIGTERM"
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        CHILDREN.discard(self.proc.pid)
        self.logf.close()
        return warn

    def cleanup_data(self):
        shutil.rmtree(self.dir / "data", ignore_errors=True)


# ---- workloads -----------------------------------------------------------------------------

PP_RE = re.compile(r"(\d+) records sent, ([\d.]+) records/sec \(([\d.]+) MB/sec\), ([\d.]+) ms avg latency, "
                   r"([\d.]+) ms max latency, (\d+) ms 50th, (\d+) ms 95th, (\d+) ms 99th, (\d+) ms 99.9th")


def loadgen(broker, *args):
    return [LOADGEN, args[0], "-brokers", broker.bootstrap, *args[1:]]


def create_topic(broker, topic, partitions, logdir):
    """CreateTopics, wait for leaders, write one record to every partition; returns seconds."""
    r = run_client(loadgen(broker, "create", "-topic", topic, "-partitions", str(partitions),
                           "-timeout", "90s"), logdir / f"create-{topic}", 120)
    if r.rc != 0:
        raise WorkloadError(f"create topic {topic} ({partitions} partitions) failed rc={r.rc}: "
                            f"{r.err.strip()[-2000:]}")
    return parse_loadgen(r)["seconds"]


def parse_loadgen(r):
    for line in r.out.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    raise WorkloadError(f"no RESULT line (rc={r.rc}); stderr: {r.err.strip()[-2000:]}")


def measure(broker, fn):
    """Run fn() (-> (metrics dict, ClientRun)); add broker CPU, peak RSS, machine busy%."""
    broker.check_alive()
    # Write back what earlier runs left dirty in the page cache first, so that no run pays for the
    # previous one's writeback (the kernel throttles writers once dirty pages pass its limits).
    s0 = time.monotonic()
    os.sync()
    presync = time.monotonic() - s0
    pid = broker.proc.pid
    reset_hwm(pid)
    cpu0 = proc_cpu_seconds(pid)
    busy0, tot0 = machine_busy()
    t0 = time.monotonic()
    m, cr = fn()
    wall = time.monotonic() - t0
    busy1, tot1 = machine_busy()
    broker.check_alive()
    cpu1 = proc_cpu_seconds(pid)
    m["broker_cpu_s"] = cpu1 - cpu0
    m["presync_s"] = presync
    if m.get("bytes"):
        m["broker_cpu_s_per_gb"] = (cpu1 - cpu0) / (m["bytes"] / 1e9)
    m["broker_peak_rss_mib"] = proc_status_kib(pid, "VmHWM") / 1024
    m["client_cpu_pct"] = cr.cpu_pct
    m["machine_busy_pct"] = 100.0 * (busy1 - busy0) / max(1, tot1 - tot0) * os.cpu_count()
    m["broker_cpu_pct"] = 100.0 * (cpu1 - cpu0) / wall
    # whatever else ran on the machine meanwhile (other people's processes, the kernel's
    # writeback, this script): machine busy minus broker minus load generator
    m["other_cpu_pct"] = max(0.0, m["machine_busy_pct"] - m["broker_cpu_pct"] - 100.0 * cr.cpu / wall)
    return m


def w_loadgen_produce(broker, topic, partitions, logdir, name, timeout, args, warmup_n=0):
    ready_s = create_topic(broker, topic, partitions, logdir)
    warm_s = None
    if warmup_n:
        # unmeasured pass with the same settings: Kafka needs one after creating many partitions
        wargs = list(args)
        wargs[wargs.index("-n") + 1] = str(warmup_n)
        r = run_client(loadgen(broker, "produce", "-topic", topic, *wargs, "-timeout", f"{int(timeout)}s"),
                       logdir / f"{name}-warmup", timeout + 30)
        if r.rc != 0:
            raise WorkloadError(f"loadgen produce (warm-up pass) rc={r.rc}: {r.err.strip()[-2000:]}")
        warm_s = parse_loadgen(r)["seconds"]

    def fn():
        r = run_client(loadgen(broker, "produce", "-topic", topic, *args,
                               "-timeout", f"{int(timeout)}s"), logdir / name, timeout + 30)
        if r.rc != 0:
            raise WorkloadError(f"loadgen produce rc={r.rc}: {r.err.strip()[-2000:]}")
        j = parse_loadgen(r)
        m = {"records": j["records"], "bytes": j["bytes"], "seconds": j["seconds"],
             "records_per_s": j["records_per_sec"], "mib_per_s": j["mib_per_sec"],
             "lat_p50_ms": j["latency_ms"]["p50"], "lat_p99_ms": j["latency_ms"]["p99"],
             "lat_p999_ms": j["latency_ms"]["p99.9"], "lat_max_ms": j["latency_ms"]["max"]}
        if j.get("target_rate"):
            m["target_rate"] = j["target_rate"]
        if warmup_n:
            m["topic_ready_s"] = ready_s
            m["warmup_s"] = warm_s
        return m, r
    return measure(broker, fn)


def w_loadgen_consume(broker, topic, expect, logdir, name, timeout):
    def fn():
        r = run_client(loadgen(broker, "consume", "-topic", topic, "-n", str(expect),
                               "-timeout", f"{int(timeout)}s"), logdir / name, timeout + 30)
        if r.rc != 0:
            raise WorkloadError(f"loadgen consume rc={r.rc}: {r.err.strip()[-2000:]}")
        j = parse_loadgen(r)
        return {"records": j["records"], "bytes": j["bytes"], "seconds": j["seconds"],
                "records_per_s": j["records_per_sec"], "mib_per_s": j["mib_per_sec"]}, r
    return measure(broker, fn)


def w_wire(broker, mode, topic, logdir, name, timeout, args):
    """loadgen's wire modes (raw protocol requests, see loadgen/wire.go)."""
    def fn():
        r = run_client(loadgen(broker, mode, "-topic", topic, *args, "-timeout", f"{int(timeout)}s"),
                       logdir / name, timeout + 30)
        if r.rc != 0:
            raise WorkloadError(f"loadgen {mode} rc={r.rc}: {r.err.strip()[-2000:]}")
        j = parse_loadgen(r)
        m = {"records": j["records"], "bytes": j["bytes"], "seconds": j["seconds"],
             "records_per_s": j["records_per_sec"], "mib_per_s": j["mib_per_sec"]}
        if j.get("latency_ms"):  # per request, not per record
            m.update(lat_p50_ms=j["latency_ms"]["p50"], lat_p99_ms=j["latency_ms"]["p99"],
                     lat_p999_ms=j["latency_ms"]["p99.9"])
        return m, r
    return measure(broker, fn)


def w_wire_produce(broker, topic, logdir, name, timeout, n, size, acks, batch_records):
    create_topic(broker, topic, 8, logdir)
    n -= n % (batch_records * 8)  # whole requests of one batch per partition
    return w_wire(broker, "wire-produce", topic, logdir, name, timeout,
                  ["-n", str(n), "-size", str(size), "-acks", acks, "-batch-records", str(batch_records)])


def w_producer_perf(broker, topic, partitions, n, size, acks, logdir, name, timeout):
    create_topic(broker, topic, partitions, logdir)

    def fn():
        cmd = java_cmd("org.apache.kafka.tools.ProducerPerformance", "--topic", topic,
                       "--num-records", str(n), "--record-size", str(size), "--throughput", "-1",
                       "--producer-props", f"bootstrap.servers={broker.bootstrap}", f"acks={acks}",
                       "compression.type=none")
        r = run_client(cmd, logdir / name, timeout)
        matches = PP_RE.findall(r.out)
        if r.rc != 0 or not matches or "Exception" in r.err:
            raise WorkloadError(f"ProducerPerformance rc={r.rc}: {r.err.strip()[-2000:]} "
                                f"{r.out.strip()[-500:]}")
        sent, rps, mbs, _avg, lmax, p50, _p95, p99, p999 = matches[-1]
        if int(sent) != n:
            raise WorkloadError(f"ProducerPerformance sent {sent} of {n}")
        return {"records": n, "bytes": n * size, "records_per_s": float(rps),
                "mib_per_s": float(mbs), "lat_p50_ms": float(p50), "lat_p99_ms": float(p99),
                "lat_p999_ms": float(p999), "lat_max_ms": float(lmax)}, r
    return measure(broker, fn)


def w_consumer_perf(broker, topic, n, logdir, name, timeout):
    def fn():
        cmd = java_cmd("org.apache.kafka.tools.ConsumerPerformance", "--bootstrap-server",
                       broker.bootstrap, "--topic", topic, "--messages", str(n),
                       "--group", f"bench-{uuid.uuid4().hex[:8]}", "--timeout", "60000")
        r = run_client(cmd, logdir / name, timeout)
        rows = [l for l in r.out.splitlines() if re.match(r"^\d{4}-\d\d-\d\d", l.strip())]
        if r.rc != 0 or not rows:
            raise WorkloadError(f"ConsumerPerformance rc={r.rc}: {r.err.strip()[-2000:]} {r.out[-500:]}")
        f = [x.strip() for x in rows[-1].split(",")]
        # start, end, MB, MB/s, nMsg, nMsg/s, rebalance ms, fetch ms, fetch MB/s, fetch nMsg/s
        got = int(f[4])
        if got < n:
            raise WorkloadError(f"ConsumerPerformance consumed {got} of {n}")
        return {"records": got, "bytes": float(f[2]) * 1024 * 1024, "records_per_s": float(f[9]),
                "mib_per_s": float(f[8]), "group_join_ms": float(f[6])}, r
    return measure(broker, fn)


# ---- plan ----------------------------------------------------------------------------------

def plan(quick):
    if quick:
        return dict(rounds=1, n_a=20000, n_java=10000, n_b=20000, n_e=50000, n_f=10000, n_f_warm=2000,
                    d_seconds=2, n_fsync=5000, n_warm=20000, timeout=120)
    return dict(rounds=3, n_a=2000000, n_java=1000000, n_b=1000000, n_e=5000000, n_f=500000,
                n_f_warm=20000, d_seconds=20, n_fsync=500000, n_warm=300000, timeout=600)


# (key, label, durability, direction) in report order
WORKLOADS = [
    ("startup", "start-up (process start to first ApiVersions v0 answer), idle RSS", DUR_DEFAULT),
    ("a", "(a) produce 1 KiB, 8 partitions, acks=1, unthrottled [franz-go]", DUR_DEFAULT),
    ("a_java", "(a') produce 1 KiB, 8 partitions, acks=1, unthrottled [ProducerPerformance]", DUR_DEFAULT),
    ("b", "(b) produce 1 KiB, 8 partitions, acks=all, unthrottled [franz-go]", DUR_DEFAULT),
    ("b_java", "(b') produce 1 KiB, 8 partitions, acks=all (idempotent), unthrottled [ProducerPerformance]", DUR_DEFAULT),
    ("c", "(c) consume (a)'s topic from earliest, assign() all partitions [franz-go]", DUR_DEFAULT),
    ("c_java", "(c') consume (a)'s topic from earliest [ConsumerPerformance, consumer group]", DUR_DEFAULT),
    ("a_wire", "(a-wire) = (a) from the lean wire generator: pre-encoded 64 KiB batches, 5 requests in flight [loadgen wire-produce]", DUR_DEFAULT),
    ("b_wire", "(b-wire) = (b) acks=all from the lean wire generator [loadgen wire-produce]", DUR_DEFAULT),
    ("c_wire", "(c-wire) = (c) with raw Fetch requests, one in flight, batch headers walked [loadgen wire-consume]", DUR_DEFAULT),
    ("e_wire", "(e-wire) = (e) 100 B records, 640 per batch, from the lean wire generator [loadgen wire-produce]", DUR_DEFAULT),
    ("d", "(d) produce 1 KiB, 8 partitions, acks=1, fixed rate = 50% of Kafka's (a) peak, linger 0 [franz-go]", DUR_DEFAULT),
    ("e", "(e) produce 100 B, 8 partitions, acks=1, unthrottled [franz-go]", DUR_DEFAULT),
    ("f", "(f) produce 1 KiB to 1,000 partitions, 20 producers round-robin, small batches, acks=1 [franz-go]", DUR_DEFAULT),
    ("a_fsync", "(a-fsync) = (a) with fsync per append on both brokers [franz-go]", DUR_FSYNC),
]


def phase1(broker, p, logdir, res, errors):
    to = p["timeout"]
    specs = [
        ("a", lambda: w_loadgen_produce(broker, "bench-a", 8, logdir, "a", to,
                                        ["-n", str(p["n_a"]), "-size", "1024", "-acks", "1"])),
        ("a_java", lambda: w_producer_perf(broker, "bench-a-java", 8, p["n_java"], 1024, "1",
                                           logdir, "a_java", to)),
        ("b", lambda: w_loadgen_produce(broker, "bench-b", 8, logdir, "b", to,
                                        ["-n", str(p["n_b"]), "-size", "1024", "-acks", "all"])),
        ("b_java", lambda: w_producer_perf(broker, "bench-b-java", 8, p["n_java"], 1024, "all",
                                           logdir, "b_java", to)),
        ("c", lambda: w_loadgen_consume(broker, "bench-a", p["n_a"] + 8, logdir, "c", to)),
        # ConsumerPerformance needs consumer groups: FindCoordinator (10) + JoinGroup (11)
        ("c_java", (lambda: w_consumer_perf(broker, "bench-a", p["n_a"] + 8, logdir, "c_java", to))
         if {10, 11} <= broker.api_keys else None),
        ("a_wire", lambda: w_wire_produce(broker, "bench-a-wire", logdir, "a_wire", to, p["n_a"], 1024, "1", 64)),
        ("b_wire", lambda: w_wire_produce(broker, "bench-b-wire", logdir, "b_wire", to, p["n_b"], 1024, "all", 64)),
        ("c_wire", lambda: w_wire(broker, "wire-consume", "bench-a", logdir, "c_wire", to,
                                  ["-n", str(p["n_a"] + 8)])),
        ("e_wire", lambda: w_wire_produce(broker, "bench-e-wire", logdir, "e_wire", to, p["n_e"], 100, "1", 640)),
        ("e", lambda: w_loadgen_produce(broker, "bench-e", 8, logdir, "e", to,
                                        ["-n", str(p["n_e"]), "-size", "100", "-acks", "1"])),
        ("f", lambda: w_loadgen_produce(broker, "bench-f", 1000, logdir, "f", to,
                                        ["-n", str(p["n_f"]), "-size", "1024", "-acks", "1",
                                         "-producers", "20", "-partitioner", "roundrobin",
                                         "-max-buffered", "1000", "-batch-bytes", "16384"],
                                        warmup_n=p["n_f_warm"])),
    ]
    run_specs(broker, specs, res, errors)


def run_specs(broker, specs, res, errors):
    for key, fn in specs:
        if fn is None:
            res.setdefault(key, {}).setdefault(broker.kind, [])
            SKIPPED.add(f"{key}/{broker.kind}")
            log(f"  {broker.kind} {key}: skipped (broker does not advertise FindCoordinator+JoinGroup)")
            continue
        log(f"  {broker.kind} {key} ...")
        try:
            m = fn()
            res.setdefault(key, {}).setdefault(broker.kind, []).append(m)
            log(f"  {broker.kind} {key}: {summary(m)}")
        except WorkloadError as e:
            msg = f"{broker.kind} workload {key}: {e}"
            log("  ERROR " + msg)
            errors.append(msg)
            res.setdefault(key, {}).setdefault(broker.kind, [])
            if broker.proc.poll() is not None:
                break


def summary(m):
    parts = []
    if "records_per_s" in m:
        parts.append(f"{m['records_per_s']:,.0f} rec/s {m.get('mib_per_s', 0):.1f} MiB/s")
    if "lat_p99_ms" in m:
        parts.append(f"p50/p99/p99.9 {m['lat_p50_ms']:.2f}/{m['lat_p99_ms']:.2f}/{m['lat_p999_ms']:.2f} ms")
    if "broker_cpu_s_per_gb" in m:
        parts.append(f"broker {m['broker_cpu_s_per_gb']:.2f} CPU-s/GB")
    if "broker_peak_rss_mib" in m:
        parts.append(f"peak RSS {m['broker_peak_rss_mib']:.0f} MiB")
    if "client_cpu_pct" in m:
        parts.append(f"client CPU {m['client_cpu_pct']:.0f}%")
    return ", ".join(parts)


PLAN = {}
MY_DIRS = []  # broker directories this run created (only these are cleaned up)
SKIPPED = set()  # "workload/broker" not run because the broker lacks the APIs it needs
LOGDIR = WORK / "logs"


def logdir_of(b):
    return LOGDIR / b.dir.name


def with_broker(kind, name, overrides, gregor_bin, res, errors, warnings, body):
    b = Broker(kind, name, overrides, gregor_bin)
    try:
        log(f"start {kind} ({name})")
        b.start(timeout=120 if kind == "kafka" else 30)
        res.setdefault("startup", {}).setdefault(kind, []).append(
            {"startup_ms": b.startup_ms, "idle_rss_mib": b.idle_rss_mib})
        log(f"  {kind} answered ApiVersions after {b.startup_ms:.0f} ms, idle RSS {b.idle_rss_mib:.0f} MiB")
        # unmeasured warm-up on its own topic (JIT for Kafka, page cache/allocator for both)
        create_topic(b, "bench-warmup", 8, logdir_of(b))
        r = run_client(loadgen(b, "produce", "-topic", "bench-warmup", "-n", str(PLAN["n_warm"]), "-size",
                               "1024", "-acks", "1", "-timeout", "300s"), logdir_of(b) / "warmup", 330)
        if r.rc != 0:
            raise WorkloadError(f"warm-up produce rc={r.rc}: {r.err.strip()[-2000:]}")
        body(b)
    except WorkloadError as e:
        msg = f"{kind} ({name}): {e}"
        log("  ERROR " + msg)
        errors.append(msg)
    finally:
        w = b.stop()
        if w:
            log("  WARNING " + w)
            warnings.append(f"{name}: {w}")
        b.cleanup_data()


def median_metrics(runs):
    if not runs:
        return None
    keys = set().union(*(r.keys() for r in runs))
    return {k: statistics.median([r[k] for r in runs if k in r]) for k in keys}


# ---- report --------------------------------------------------------------------------------

METRICS = [  # (key, label, fmt, better)
    ("startup_ms", "time to first ApiVersions (ms)", "{:,.0f}", "lower"),
    ("idle_rss_mib", "idle RSS after start (MiB)", "{:,.0f}", "lower"),
    ("records_per_s", "records/s", "{:,.0f}", "higher"),
    ("mib_per_s", "MiB/s", "{:,.1f}", "higher"),
    ("target_rate", "target rate (records/s)", "{:,.0f}", None),
    ("lat_p50_ms", "latency p50 (ms)", "{:,.2f}", "lower"),
    ("lat_p99_ms", "latency p99 (ms)", "{:,.2f}", "lower"),
    ("lat_p999_ms", "latency p99.9 (ms)", "{:,.2f}", "lower"),
    ("broker_cpu_s_per_gb", "broker CPU-seconds per GB", "{:,.2f}", "lower"),
    ("broker_peak_rss_mib", "broker peak RSS during run (MiB)", "{:,.0f}", "lower"),
    ("client_cpu_pct", "load generator CPU (% of one core)", "{:,.0f}", None),
    ("broker_cpu_pct", "broker CPU (% of one core)", "{:,.0f}", None),
    ("machine_busy_pct", "whole machine CPU busy (% of one core; 200 = both cores)", "{:,.0f}", None),
    ("other_cpu_pct", "CPU of everything else on the machine (% of one core)", "{:,.0f}", None),
    ("group_join_ms", "consumer group join (ms)", "{:,.0f}", None),
    ("topic_ready_s", "CreateTopics until every partition took a write (s)", "{:,.2f}", "lower"),
    ("warmup_s", "first (unmeasured) pass of n_f_warm records after that (s)", "{:,.2f}", "lower"),
]


def fmt(v, f):
    return "—" if v is None else f.format(v)


SPREAD = {"records_per_s", "lat_p99_ms"}  # these also show (min–max) over the runs


def write_report(res, errors, warnings, p, quick, started, gregor_info, elapsed, machine=None):
    RESULTS.mkdir(parents=True, exist_ok=True)
    machine = machine or machine_description()
    med = {k: {b: median_metrics(res.get(k, {}).get(b, [])) for b in ("kafka", "gregor")}
           for k, *_ in WORKLOADS}
    (RESULTS / "raw.json").write_text(json.dumps({
        "meta": {"started": started.isoformat(), "elapsed_s": elapsed, "gregor": gregor_info,
                 "machine": machine},
        "plan": p, "quick": quick, "runs": res, "errors": errors, "warnings": warnings,
        "skipped": sorted(SKIPPED)}, indent=1))
    lines = []
    A = lines.append
    A(f"# gregor vs Apache Kafka 4.1.1 — benchmark results{' (QUICK MODE: tiny counts, not meaningful)' if quick else ''}")
    A("")
    A(f"- Date: {started.strftime('%Y-%m-%d %H:%M UTC')}; took {elapsed / 60:.1f} min (`compat-tests/bench/run.sh{' --quick' if quick else ''}`)")
    A(f"- Machine: {machine}. Broker and load generator share these cores.")
    A(f"- gregor: {gregor_info}")
    A(f"- Kafka: 4.1.1 from Maven Central jars, one KRaft combined node, Kafka defaults, "
      f"`-Xmx1G -Xms1G -XX:+UseG1GC`, Java {java_version()}")
    A(f"- Clients: franz-go v1.22.3 load generator (`loadgen/`, compression none, random payload, "
      f"idempotence off unless stated, linger 10 ms = franz-go default) and Kafka 4.1.1 "
      f"ProducerPerformance / ConsumerPerformance (Java client defaults, compression none). "
      f"The *-wire rows use loadgen's wire modes: raw protocol requests encoded once before the clock "
      f"starts (32 distinct requests of one batch per partition, random bytes, correct CRCs, sent in "
      f"rotation with 5 in flight, every response's offsets checked) and raw Fetch requests (Kafka's "
      f"consumer defaults: 50 MiB per response, 1 MiB per partition, one in flight), so the client "
      f"costs little more than its socket I/O and the broker is what is measured; their latency is per "
      f"request.")
    A(f"- Each figure is the median of {p['rounds']} alternating run(s) (kafka, gregor, kafka, gregor, ...), "
      f"each broker start with a fresh data directory on the same disk. Records per run: "
      f"(a) {p['n_a']:,}; (a'),(b') {p['n_java']:,}; (b) {p['n_b']:,}; (e) {p['n_e']:,}; "
      f"(f) {p['n_f']:,}; (d) {p['d_seconds']} s at the target rate; (a-fsync) {p['n_fsync']:,}.")
    A(f"- After each broker start: 3 s idle (idle RSS), then an unmeasured warm-up of {p['n_warm']:,} "
      f"1 KiB records to a separate topic. Every topic is created with CreateTopics and gets one 1-byte "
      f"record per partition before its measured run (so (c) reads {p['n_a']:,} + 8 records). (f) also "
      f"runs an unmeasured first pass of {p['n_f_warm']:,} records with the same settings (time reported). "
      f"Before each measured run the harness calls sync(2) and waits for it, so a run starts with no "
      f"dirty pages left by the one before (a run that writes faster than the disk still meets the "
      f"kernel's dirty-page throttling within itself).")
    A("- Latency = per-record produce latency from Produce() call (for (d): from the record's "
      "scheduled send time, open loop) to acknowledgement; unthrottled runs mostly measure client queueing.")
    A("- Broker CPU-seconds per GB: utime+stime delta of the broker process over the run ÷ payload GB "
      "(10^9 bytes of record values) moved. Peak RSS: VmHWM, reset before each run via /proc/PID/clear_refs.")
    A("- Kafka and gregor columns: median over the runs; records/s and p99 also show (min–max). "
      "Medians are taken per metric, so one row's figures may come from different runs.")
    A("- ratio = gregor / Kafka (of the medians); the 'better' column says which direction is better for that metric.")
    A("")
    if errors:
        A("## Errors")
        A("")
        for e in errors:
            A("```")
            A(e.strip()[:3000])
            A("```")
        A("")
    if warnings:
        A("## Warnings")
        A("")
        for w in warnings:
            A(f"- {w}")
        A("")
    A("## Results")
    A("")
    A("| workload | metric | Kafka 4.1.1 | gregor | ratio gregor/Kafka | better | durability |")
    A("|---|---|---:|---:|---:|---|---|")
    for key, label, dur in WORKLOADS:
        mk, mg = med[key]["kafka"], med[key]["gregor"]
        nk = len(res.get(key, {}).get("kafka", []))
        ng = len(res.get(key, {}).get("gregor", []))
        def na(b):
            return "n/a (needs consumer groups)" if f"{key}/{b}" in SKIPPED else "FAILED"
        if mk is None and mg is None:
            A(f"| {label} | — | {na('kafka')} | {na('gregor')} | — | | {dur} |")
            continue
        for mkey, mlabel, f, better in METRICS:
            kv = mk.get(mkey) if mk else None
            gv = mg.get(mkey) if mg else None
            if kv is None and gv is None:
                continue
            gs = fmt(gv, f) if mg is not None else na("gregor")
            ks = fmt(kv, f) if mk is not None else na("kafka")
            if mkey in SPREAD and p["rounds"] > 1:
                for b, m in (("kafka", mk), ("gregor", mg)):
                    vals = [r[mkey] for r in res.get(key, {}).get(b, []) if mkey in r]
                    if m is not None and len(vals) > 1:
                        rng = f" ({fmt(min(vals), f)}–{fmt(max(vals), f)})"
                        if b == "kafka":
                            ks += rng
                        else:
                            gs += rng
            ratio = f"{gv / kv:.2f}" if (kv and gv is not None and better) else ""
            A(f"| {label} | {mlabel} | {ks} | {gs} | {ratio} | {better or ''} | {dur} |")
        if key != "startup" and ((nk != p["rounds"] and f"{key}/kafka" not in SKIPPED)
                                 or (ng != p["rounds"] and f"{key}/gregor" not in SKIPPED)):
            A(f"| {label} | successful runs | {nk} | {ng} | | | |")
    A("")
    sat = []
    for key, label, _ in WORKLOADS:
        for b in ("kafka", "gregor"):
            m = med[key][b]
            if m and m.get("client_cpu_pct", 0) >= 90:
                sat.append(f"- {label} on {b}: load generator used {m['client_cpu_pct']:.0f}% of a core "
                           f"(machine {m.get('machine_busy_pct', 0):.0f}% of one core busy) — client-bound; "
                           f"the broker may be faster than this figure shows.")
    noisy = []
    for key, label, _ in WORKLOADS:
        for b in ("kafka", "gregor"):
            for i, m in enumerate(res.get(key, {}).get(b, [])):
                if m.get("other_cpu_pct", 0) >= 25:
                    noisy.append(f"{key}/{b} run {i + 1}: {m['other_cpu_pct']:.0f}%")
    A("## Other load on the machine")
    A("")
    if noisy:
        A("Runs during which processes other than the broker and the load generator (e.g. other "
          "people's tests on this shared machine, kernel writeback) used >= 25% of a core: "
          + "; ".join(noisy) + ". Their figures are perturbed; the medians damp this only partly.")
    else:
        A("- No run saw >= 25% of a core used by other processes.")
    A("")
    A("## Client CPU saturation")
    A("")
    A("\n".join(sat) if sat else "- No run had its load generator at >= 90% of one core.")
    A("")
    A("With 2 cores shared by broker and client, a machine-busy figure near 200% means the box, "
      "not only the broker, was the bottleneck.")
    A("")
    A("![chart](chart.png)")
    A("")
    (RESULTS / "RESULTS.md").write_text("\n".join(lines))
    try:
        chart(med, quick)
    except Exception:
        errors.append("chart: " + traceback.format_exc())
        log("ERROR chart: " + traceback.format_exc())


def chart(med, quick):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ck, cg = "#4C72B0", "#DD8452"
    fig, axes = plt.subplots(2, 2, figsize=(15, 10.5))
    fig.suptitle("gregor vs Apache Kafka 4.1.1 — single node, 2 cores shared with the client"
                 + ("  (QUICK MODE, not meaningful)" if quick else ""), fontsize=14, fontweight="bold")

    def bars(ax, keys, labels, metric, title, ylabel, valfmt):
        import numpy as np
        x = np.arange(len(keys))
        w = 0.38
        for i, (b, c) in enumerate((("kafka", ck), ("gregor", cg))):
            vals = []
            for k in keys:
                m = med.get(k, {}).get(b) if isinstance(k, str) else None
                vals.append((m or {}).get(metric, 0) or 0)
            rects = ax.bar(x + (i - 0.5) * w, vals, w, label="Kafka 4.1.1" if b == "kafka" else "gregor",
                           color=c)
            for r, v in zip(rects, vals):
                ax.annotate(valfmt(v) if v else "n/a", (r.get_x() + r.get_width() / 2, r.get_height()),
                            ha="center", va="bottom", fontsize=8, xytext=(0, 2), textcoords="offset points")
        ax.set_xticks(x)
        ax.set_xticklabels(labels, fontsize=9)
        ax.set_title(title, fontsize=11)
        ax.set_ylabel(ylabel)
        ax.legend(fontsize=9)
        ax.margins(y=0.15)
        ax.grid(axis="y", alpha=0.3)

    tp = ["a", "a_wire", "a_java", "b", "b_wire", "b_java", "c", "c_wire", "c_java", "e", "e_wire", "f",
          "a_fsync"]
    tpl = ["(a)\nacks=1", "(a) wire", "(a') Java", "(b)\nacks=all", "(b) wire", "(b') Java",
           "(c)\nconsume", "(c) wire", "(c') Java", "(e)\n100 B", "(e) wire", "(f) 1000\npart.",
           "(a) fsync"]
    bars(axes[0][0], tp, tpl, "mib_per_s", "Throughput (higher is better)", "MiB/s",
         lambda v: f"{v:,.0f}")
    bars(axes[0][1], tp, tpl, "broker_cpu_s_per_gb", "Broker CPU-seconds per GB (lower is better)",
         "CPU-s / GB", lambda v: f"{v:.1f}")

    # latency at fixed rate
    import numpy as np
    ax = axes[1][0]
    pcts = [("lat_p50_ms", "p50"), ("lat_p99_ms", "p99"), ("lat_p999_ms", "p99.9")]
    x = np.arange(len(pcts))
    w = 0.38
    for i, (b, c) in enumerate((("kafka", ck), ("gregor", cg))):
        m = med.get("d", {}).get(b) or {}
        vals = [m.get(k, 0) or 0 for k, _ in pcts]
        rects = ax.bar(x + (i - 0.5) * w, vals, w, color=c, label="Kafka 4.1.1" if b == "kafka" else "gregor")
        for r, v in zip(rects, vals):
            ax.annotate(f"{v:.2f}" if v else "n/a", (r.get_x() + r.get_width() / 2, r.get_height()),
                        ha="center", va="bottom", fontsize=9, xytext=(0, 2), textcoords="offset points")
    rate = (med.get("d", {}).get("kafka") or med.get("d", {}).get("gregor") or {}).get("target_rate", 0)
    ax.set_xticks(x)
    ax.set_xticklabels([l for _, l in pcts])
    ax.set_title(f"(d) produce latency at a fixed {rate:,.0f} records/s of 1 KiB (lower is better)", fontsize=11)
    ax.set_ylabel("ms (log scale)")
    ax.set_yscale("log")
    ax.legend(fontsize=9)
    ax.margins(y=0.15)
    ax.grid(axis="y", alpha=0.3)

    # memory + startup
    ax = axes[1][1]
    groups = [("startup", "idle_rss_mib", "idle RSS"), ("a", "broker_peak_rss_mib", "peak RSS (a)"),
              ("e", "broker_peak_rss_mib", "peak RSS (e)"), ("f", "broker_peak_rss_mib", "peak RSS (f)")]
    x = np.arange(len(groups))
    for i, (b, c) in enumerate((("kafka", ck), ("gregor", cg))):
        vals = [((med.get(k, {}).get(b) or {}).get(mk, 0) or 0) for k, mk, _ in groups]
        rects = ax.bar(x + (i - 0.5) * w, vals, w, color=c, label="Kafka 4.1.1" if b == "kafka" else "gregor")
        for r, v in zip(rects, vals):
            ax.annotate(f"{v:,.0f}" if v else "n/a", (r.get_x() + r.get_width() / 2, r.get_height()),
                        ha="center", va="bottom", fontsize=9, xytext=(0, 2), textcoords="offset points")
    sk = (med.get("startup", {}).get("kafka") or {}).get("startup_ms")
    sg = (med.get("startup", {}).get("gregor") or {}).get("startup_ms")
    ax.set_xticks(x)
    ax.set_xticklabels([l for *_, l in groups])
    ax.set_title("Broker memory, MiB (lower is better)\n"
                 f"start-up to first ApiVersions: Kafka {fmt(sk, '{:,.0f}')} ms, gregor {fmt(sg, '{:,.0f}')} ms",
                 fontsize=11)
    ax.set_ylabel("MiB")
    ax.legend(fontsize=9)
    ax.margins(y=0.15)
    ax.grid(axis="y", alpha=0.3)

    fig.tight_layout(rect=(0, 0, 1, 0.96))
    fig.savefig(RESULTS / "chart.png", dpi=110)
    plt.close(fig)


def java_version():
    r = subprocess.run([JAVA, "-version"], capture_output=True, text=True)
    m = re.search(r'version "([^"]+)"', r.stderr)
    return m.group(1) if m else "?"


def gregor_description(bin_path, src):
    r = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "src", "Cargo.toml", "Cargo.lock"],
                           capture_output=True, text=True).stdout.strip()
    mtime = datetime.datetime.fromtimestamp(src.stat().st_mtime, datetime.timezone.utc)
    return (f"release build `{src}` (built {mtime:%Y-%m-%d %H:%M UTC}; repo HEAD {r.stdout.strip()}"
            f"{', src/ has uncommitted changes' if dirty else ''}), defaults, copied to {bin_path} for the run")


# ---- main ----------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="tiny counts, 1 round, ~3 minutes")
    ap.add_argument("--rounds", type=int, help="alternating runs per figure (default 3)")
    ap.add_argument("--report-only", action="store_true",
                    help="rewrite RESULTS.md and chart.png from results/raw.json, run nothing")
    ap.add_argument("--gregor-bin", default=os.environ.get("GREGOR_BIN", str(REPO / "target/release/gregor")))
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    global RESULTS
    if args.quick:
        RESULTS = BENCH / ".work" / "quick-results"
    if args.report_only:
        raw = json.loads((RESULTS / "raw.json").read_text())
        meta = raw["meta"]
        SKIPPED.update(raw.get("skipped", []))
        write_report(raw["runs"], raw["errors"], raw["warnings"], raw["plan"], raw["quick"],
                     datetime.datetime.fromisoformat(meta["started"]), meta["gregor"],
                     meta["elapsed_s"], meta["machine"])
        log(f"rewrote {RESULTS / 'RESULTS.md'} and chart.png from raw.json")
        return
    p = plan(args.quick)
    if args.rounds:
        p["rounds"] = args.rounds
    PLAN.update(p)
    started = datetime.datetime.now(datetime.timezone.utc)
    t_start = time.monotonic()
    WORK.mkdir(exist_ok=True)
    import fcntl
    lock = open(WORK / "bench.lock", "w")
    try:  # one run at a time: a second run would share .work/ (and the machine's cores)
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        sys.exit("another bench.py run holds .work/bench.lock; wait for it to finish")
    src = Path(args.gregor_bin)
    if not src.exists():
        sys.exit(f"gregor binary not found at {src}; build it with `cargo build --release`")
    # Snapshot the binary: others may rebuild target/release/gregor while we run.
    gbin = WORK / "gregor"
    shutil.copy2(src, gbin)
    gregor_info = gregor_description(gbin, src)
    if not LOADGEN.exists():
        sys.exit(f"{LOADGEN} missing: run run.sh")
    logdir = LOGDIR
    shutil.rmtree(logdir, ignore_errors=True)
    logdir.mkdir()

    res, errors, warnings = {}, [], []
    order = ["kafka", "gregor"]
    try:
        log(f"plan: {p}")
        # Phase 1: (a) (a') (b) (b') (c) (c') (e) (f), alternating brokers.
        for r in range(p["rounds"]):
            for kind in order:
                with_broker(kind, f"{kind}-p1-r{r}", {}, gbin, res, errors, warnings,
                            lambda b, r=r: phase1(b, p, logdir / f"{b.kind}-p1-r{r}", res, errors))
        # Phase 2: (d) at 50% of Kafka's median (a) rate.
        ka = median_metrics(res.get("a", {}).get("kafka", []))
        if ka:
            rate = round(0.5 * ka["records_per_s"])
        else:
            rate = 10000
            errors.append("(d): no Kafka (a) figure; used a fixed 10,000 records/s")
        n_d = max(1000, int(rate * p["d_seconds"]))
        log(f"(d): target rate {rate:,} records/s, {n_d:,} records")
        for r in range(p["rounds"]):
            for kind in order:
                with_broker(kind, f"{kind}-p2-r{r}", {}, gbin, res, errors, warnings,
                            lambda b, r=r: run_specs(b, [("d", lambda: w_loadgen_produce(
                                b, "bench-d", 8, logdir_of(b), "d", p["timeout"],
                                ["-n", str(n_d), "-size", "1024", "-acks", "1", "-rate", str(rate),
                                 "-linger", "0"]))], res, errors))
        # Phase 3: (a) with fsync per append on both.
        for r in range(p["rounds"]):
            for kind in order:
                with_broker(kind, f"{kind}-p3-r{r}", FSYNC, gbin, res, errors, warnings,
                            lambda b, r=r: run_specs(b, [("a_fsync", lambda: w_loadgen_produce(
                                b, "bench-a-fsync", 8, logdir_of(b), "a_fsync", p["timeout"],
                                ["-n", str(p["n_fsync"]), "-size", "1024", "-acks", "1"]))], res, errors))
    finally:
        kill_children()
        elapsed = time.monotonic() - t_start
        write_report(res, errors, warnings, p, args.quick, started, gregor_info, elapsed)
        for d in MY_DIRS:
            shutil.rmtree(d / "data", ignore_errors=True)
    log(f"wrote {RESULTS / 'RESULTS.md'} and chart.png in {elapsed / 60:.1f} min")
    if errors:
        log(f"{len(errors)} error(s):")
        for e in errors:
            print("  - " + e.splitlines()[0], flush=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
