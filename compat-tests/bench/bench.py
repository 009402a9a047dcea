#!/usr/bin/env python3
"""gregor vs Apache Kafka 4.1.1 side-by-side benchmark (see README.md in this folder).

Started by run.sh, which installs the jars, builds the franz-go load generator and sets up a
venv with matplotlib. Python 3 stdlib only, plus matplotlib for the chart.

One broker at a time, fresh data directory per broker start, same topics and clients for both.
Every figure is the median of --rounds alternating runs (kafka, gregor, kafka, gregor, ...).
Exits non-zero if a broker fails to start or any workload errors (results are still written).
This file runs the plan; machine.py starts brokers and clients and reads /proc, workloads.py holds
what runs and what is measured around it, report.py writes the table and the chart.
"""

import argparse
import datetime
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from machine import BENCH, LOADGEN, MY_DIRS, REPO, WORK, Broker, WorkloadError, kill_children, log, \
    on_signal, run_client
from report import median_metrics, write_report
from workloads import FSYNC, SKIPPED, create_topic, loadgen, phase1, plan, run_specs, w_loadgen_produce

RESULTS = BENCH / "results"  # --quick writes to .work/quick-results/ (not committed) so it never clobbers a full run
PLAN = {}
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
        write_report(RESULTS, raw["runs"], raw["errors"], raw["warnings"], raw["plan"], raw["quick"],
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
        write_report(RESULTS, res, errors, warnings, p, args.quick, started, gregor_info, elapsed)
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
