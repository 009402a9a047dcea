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
