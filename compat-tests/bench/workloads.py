"""The workloads: topic set-up, the load generators (franz-go loadgen, its wire modes, Kafka's
perf tools) and what is measured around each run."""

import json
import os
import re
import time
import uuid

from machine import LOADGEN, WorkloadError, java_cmd, log, machine_busy, proc_cpu_seconds, \
    proc_status_kib, reset_hwm, run_client

FSYNC = {"log.flush.interval.messages": "1"}
DUR_DEFAULT = "default (page cache, no fsync per append)"
DUR_FSYNC = "fsync per append (log.flush.interval.messages=1)"
SKIPPED = set()  # "workload/broker" not run because the broker lacks the APIs it needs


PP_RE = re.compile(r"(\d+) records sent, ([\d.]+) records/sec \(([\d.]+) MB/sec\), ([\d.]+) ms avg latency, "
                   r"([\d.]+) ms max latency, (\d+) ms 50th, (\d+) ms 95th, (\d+) ms 99th, (\d+) ms 99.9th")


def loadgen(broker, mode, *args, tls=False):
    """loadgen against the broker's PLAINTEXT listener, or with tls its SSL listener"""
    if tls:
        return [LOADGEN, mode, "-brokers", broker.ssl_bootstrap, "-tls-ca", broker.certs.ca, *args]
    return [LOADGEN, mode, "-brokers", broker.bootstrap, *args]


def create_topic(broker, topic, partitions):
    """CreateTopics, wait for leaders, write one record to every partition; returns seconds."""
    r = run_client(loadgen(broker, "create", "-topic", topic, "-partitions", str(partitions),
                           "-timeout", "90s"), broker.logdir / f"create-{topic}", 120)
    if r.rc != 0:
        raise WorkloadError(f"create topic {topic} ({partitions} partitions) failed rc={r.rc}: "
                            f"{r.err.strip()[-2000:]}")
    return parse_loadgen(r)["seconds"]


def parse_loadgen(r):
    for line in r.out.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    raise WorkloadError(f"no RESULT line (rc={r.rc}); stderr: {r.err.strip()[-2000:]}")


def loadgen_metrics(j):
    m = {"records": j["records"], "bytes": j["bytes"], "seconds": j["seconds"],
         "records_per_s": j["records_per_sec"], "mib_per_s": j["mib_per_sec"]}
    if j.get("tls"):
        m["tls"] = j["tls"]  # the negotiated version and cipher suite
    return m


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


def w_loadgen_produce(broker, topic, partitions, name, timeout, args, warmup_n=0, tls=False):
    ready_s = create_topic(broker, topic, partitions)
    warm_s = None
    if warmup_n:
        # unmeasured pass with the same settings: Kafka needs one after creating many partitions
        wargs = list(args)
        wargs[wargs.index("-n") + 1] = str(warmup_n)
        r = run_client(loadgen(broker, "produce", "-topic", topic, *wargs, "-timeout", f"{int(timeout)}s",
                               tls=tls), broker.logdir / f"{name}-warmup", timeout + 30)
        if r.rc != 0:
            raise WorkloadError(f"loadgen produce (warm-up pass) rc={r.rc}: {r.err.strip()[-2000:]}")
        warm_s = parse_loadgen(r)["seconds"]

    def fn():
        r = run_client(loadgen(broker, "produce", "-topic", topic, *args, "-timeout", f"{int(timeout)}s",
                               tls=tls), broker.logdir / name, timeout + 30)
        if r.rc != 0:
            raise WorkloadError(f"loadgen produce rc={r.rc}: {r.err.strip()[-2000:]}")
        j = parse_loadgen(r)
        m = loadgen_metrics(j)
        m.update(lat_p50_ms=j["latency_ms"]["p50"], lat_p99_ms=j["latency_ms"]["p99"],
                 lat_p999_ms=j["latency_ms"]["p99.9"], lat_max_ms=j["latency_ms"]["max"])
        if j.get("target_rate"):
            m["target_rate"] = j["target_rate"]
        if warmup_n:
            m["topic_ready_s"] = ready_s
            m["warmup_s"] = warm_s
        return m, r
    return measure(broker, fn)


def w_loadgen_consume(broker, topic, expect, name, timeout, tls=False):
    def fn():
        r = run_client(loadgen(broker, "consume", "-topic", topic, "-n", str(expect),
                               "-timeout", f"{int(timeout)}s", tls=tls), broker.logdir / name, timeout + 30)
        if r.rc != 0:
            raise WorkloadError(f"loadgen consume rc={r.rc}: {r.err.strip()[-2000:]}")
        return loadgen_metrics(parse_loadgen(r)), r
    return measure(broker, fn)


def w_wire(broker, mode, topic, name, timeout, args):
    """loadgen's wire modes (raw protocol requests, see loadgen/wire.go)."""
    def fn():
        r = run_client(loadgen(broker, mode, "-topic", topic, *args, "-timeout", f"{int(timeout)}s"),
                       broker.logdir / name, timeout + 30)
        if r.rc != 0:
            raise WorkloadError(f"loadgen {mode} rc={r.rc}: {r.err.strip()[-2000:]}")
        j = parse_loadgen(r)
        m = loadgen_metrics(j)
        if j.get("latency_ms"):  # per request, not per record
            m.update(lat_p50_ms=j["latency_ms"]["p50"], lat_p99_ms=j["latency_ms"]["p99"],
                     lat_p999_ms=j["latency_ms"]["p99.9"])
        return m, r
    return measure(broker, fn)


def w_wire_produce(broker, topic, name, timeout, n, size, acks, batch_records):
    create_topic(broker, topic, 8)
    n -= n % (batch_records * 8)  # whole requests of one batch per partition
    return w_wire(broker, "wire-produce", topic, name, timeout,
                  ["-n", str(n), "-size", str(size), "-acks", acks, "-batch-records", str(batch_records)])


def w_producer_perf(broker, topic, partitions, n, size, acks, name, timeout):
    create_topic(broker, topic, partitions)

    def fn():
        cmd = java_cmd("org.apache.kafka.tools.ProducerPerformance", "--topic", topic,
                       "--num-records", str(n), "--record-size", str(size), "--throughput", "-1",
                       "--producer-props", f"bootstrap.servers={broker.bootstrap}", f"acks={acks}",
                       "compression.type=none")
        r = run_client(cmd, broker.logdir / name, timeout)
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


def w_consumer_perf(broker, topic, n, name, timeout):
    def fn():
        cmd = java_cmd("org.apache.kafka.tools.ConsumerPerformance", "--bootstrap-server",
                       broker.bootstrap, "--topic", topic, "--messages", str(n),
                       "--group", f"bench-{uuid.uuid4().hex[:8]}", "--timeout", "60000")
        r = run_client(cmd, broker.logdir / name, timeout)
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


# (key, label, durability) in report order
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
    ("a_tls", "(a-tls) = (a) over TLS: SSL listener, TLS 1.3 [franz-go]", DUR_DEFAULT),
    ("c_tls", "(c-tls) = (c) over TLS: consume (a-tls)'s topic [franz-go]", DUR_DEFAULT),
]

# workload -> the one it needs first: the topic it reads, or for (d) Kafka's (a) rate
NEEDS = {"c": "a", "c_java": "a", "c_wire": "a", "d": "a", "c_tls": "a_tls"}


def phases(p):
    """The run order: [(tag, broker overrides, TLS listener?, [(key, fn(broker) -> metrics)])].
    Every phase starts each broker p["rounds"] times, alternating, and runs its workloads in order
    on each start; a fn returning None means skipped. (d) reads p["d_rate"] and p["n_d"], which
    bench.py sets from phase p1's figures before p2 starts."""
    to = p["timeout"]

    def a_args(n):
        return ["-n", str(n), "-size", "1024", "-acks", "1"]

    return [
        ("p1", {}, False, [
            ("a", lambda b: w_loadgen_produce(b, "bench-a", 8, "a", to, a_args(p["n_a"]))),
            ("a_java", lambda b: w_producer_perf(b, "bench-a-java", 8, p["n_java"], 1024, "1", "a_java", to)),
            ("b", lambda b: w_loadgen_produce(b, "bench-b", 8, "b", to,
                                              ["-n", str(p["n_b"]), "-size", "1024", "-acks", "all"])),
            ("b_java", lambda b: w_producer_perf(b, "bench-b-java", 8, p["n_java"], 1024, "all", "b_java", to)),
            ("c", lambda b: w_loadgen_consume(b, "bench-a", p["n_a"] + 8, "c", to)),
            # ConsumerPerformance needs consumer groups: FindCoordinator (10) + JoinGroup (11)
            ("c_java", lambda b: w_consumer_perf(b, "bench-a", p["n_a"] + 8, "c_java", to)
             if {10, 11} <= b.api_keys else None),
            ("a_wire", lambda b: w_wire_produce(b, "bench-a-wire", "a_wire", to, p["n_a"], 1024, "1", 64)),
            ("b_wire", lambda b: w_wire_produce(b, "bench-b-wire", "b_wire", to, p["n_b"], 1024, "all", 64)),
            ("c_wire", lambda b: w_wire(b, "wire-consume", "bench-a", "c_wire", to, ["-n", str(p["n_a"] + 8)])),
            ("e_wire", lambda b: w_wire_produce(b, "bench-e-wire", "e_wire", to, p["n_e"], 100, "1", 640)),
            ("e", lambda b: w_loadgen_produce(b, "bench-e", 8, "e", to,
                                              ["-n", str(p["n_e"]), "-size", "100", "-acks", "1"])),
            ("f", lambda b: w_loadgen_produce(b, "bench-f", 1000, "f", to,
                                              ["-n", str(p["n_f"]), "-size", "1024", "-acks", "1",
                                               "-producers", "20", "-partitioner", "roundrobin",
                                               "-max-buffered", "1000", "-batch-bytes", "16384"],
                                              warmup_n=p["n_f_warm"])),
        ]),
        ("p2", {}, False, [
            ("d", lambda b: w_loadgen_produce(b, "bench-d", 8, "d", to, a_args(p["n_d"]) + [
                "-rate", str(p["d_rate"]), "-linger", "0"])),
        ]),
        ("p3", FSYNC, False, [
            ("a_fsync", lambda b: w_loadgen_produce(b, "bench-a-fsync", 8, "a_fsync", to, a_args(p["n_fsync"]))),
        ]),
        ("tls", {}, True, [
            ("a_tls", lambda b: w_loadgen_produce(b, "bench-a-tls", 8, "a_tls", to, a_args(p["n_a"]), tls=True)),
            ("c_tls", lambda b: w_loadgen_consume(b, "bench-a-tls", p["n_a"] + 8, "c_tls", to, tls=True)),
        ]),
    ]


def run_specs(broker, specs, res, errors):
    for key, fn in specs:
        log(f"  {broker.kind} {key} ...")
        try:
            m = fn(broker)
            res.setdefault(key, {}).setdefault(broker.kind, [])
            if m is None:
                SKIPPED.add(f"{key}/{broker.kind}")
                log(f"  {broker.kind} {key}: skipped (broker does not advertise FindCoordinator+JoinGroup)")
                continue
            res[key][broker.kind].append(m)
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
    if "tls" in m:
        parts.append(m["tls"])
    return ", ".join(parts)
