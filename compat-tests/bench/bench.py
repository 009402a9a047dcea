#!/usr/bin/env python3
"""gregor vs Apache Kafka 4.1.1 side-by-side benchmark (see README.md in this folder).

Started by run.sh, which installs the jars, builds the franz-go load generator and sets up a
venv with matplotlib. Python 3 stdlib only, plus matplotlib for the chart.

One broker at a time, fresh data directory per broker start, same topics and clients for both.
Every figure is the median of --rounds alternating runs (kafka, gregor, kafka, gregor, ...);
--only runs some workloads (see workloads.phases for the phases and what each runs).
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

from machine import BENCH, LOADGEN, LOGDIR, MY_DIRS, REPO, WORK, Broker, Certs, WorkloadError, kill_children, \
    log, on_signal, run_client
from report import median_metrics, write_report
from workloads import NEEDS, SKIPPED, WORKLOADS, create_topic, loadgen, phases, plan, run_specs

# --quick and --only write to .work/quick-results/ and .work/only-results/ (not committed) unless
# --out says otherwise, so they never clobber a full run's results/
RESULTS = BENCH / "results"
PLAN = {}


def with_broker(kind, name, overrides, certs, gregor_bin, res, errors, warnings, body):
    b = Broker(kind, name, overrides, gregor_bin, certs)
    try:
        log(f"start {kind} ({name})")
        b.start(timeout=120 if kind == "kafka" else 30)
        res.setdefault("startup", {}).setdefault(kind, []).append(
            {"startup_ms": b.startup_ms, "idle_rss_mib": b.idle_rss_mib})
        log(f"  {kind} answered ApiVersions after {b.startup_ms:.0f} ms, idle RSS {b.idle_rss_mib:.0f} MiB")
        # unmeasured warm-up on its own topic (JIT for Kafka, page cache/allocator for both)
        create_topic(b, "bench-warmup", 8)
        r = run_client(loadgen(b, "produce", "-topic", "bench-warmup", "-n", str(PLAN["n_warm"]), "-size",
                               "1024", "-acks", "1", "-timeout", "300s"), b.logdir / "warmup", 330)
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


def selection(only):
    """--only's workloads (a-tls, a_tls and a' = a_java all work) plus what they need, or None"""
    if not only:
        return None
    known = [k for k, *_ in WORKLOADS if k != "startup"]
    keys = {k.strip().replace("'", "_java").replace("-", "_") for k in only.split(",") if k.strip()}
    if keys - set(known):
        sys.exit(f"--only: unknown {', '.join(sorted(keys - set(known)))}; known: "
                 + ", ".join(k.replace("_", "-") for k in known))
    for k in sorted(keys):
        if NEEDS.get(k) and NEEDS[k] not in keys:
            log(f"--only: also running {NEEDS[k]}, which {k} needs")
            keys.add(NEEDS[k])
    return [k for k in known if k in keys]


# ---- main ----------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="tiny counts, 1 round, ~3 minutes")
    ap.add_argument("--rounds", type=int, help="alternating runs per figure (default 3)")
    ap.add_argument("--only", help="comma-separated workloads, e.g. a-tls,c-tls (and what they need)")
    ap.add_argument("--out", type=Path, help="results folder (default results/; .work/quick-results/ "
                    "with --quick, .work/only-results/ with --only)")
    ap.add_argument("--report-only", action="store_true",
                    help="rewrite RESULTS.md and chart.png from raw.json in the results folder, run nothing")
    ap.add_argument("--gregor-bin", default=os.environ.get("GREGOR_BIN", str(REPO / "target/release/gregor")))
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    only = selection(args.only)
    results = args.out or (WORK / "quick-results" if args.quick else WORK / "only-results" if only else RESULTS)
    if args.report_only:
        raw = json.loads((results / "raw.json").read_text())
        meta = raw["meta"]
        SKIPPED.update(raw.get("skipped", []))
        write_report(results, raw["runs"], raw["errors"], raw["warnings"], raw["plan"], raw["quick"],
                     datetime.datetime.fromisoformat(meta["started"]), meta["gregor"],
                     meta["elapsed_s"], meta["machine"])
        log(f"rewrote {results / 'RESULTS.md'} from raw.json")
        return
    p = plan(args.quick)
    if args.rounds:
        p["rounds"] = args.rounds
    p["only"] = only
    p["workloads"] = only or [k for k, *_ in WORKLOADS if k != "startup"]
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
    shutil.rmtree(LOGDIR, ignore_errors=True)
    LOGDIR.mkdir()

    res, errors, warnings = {}, [], []
    order = ["kafka", "gregor"]
    certs = None
    try:
        log(f"plan: {p}")
        for tag, overrides, tls, specs in phases(p):
            specs = [(k, fn) for k, fn in specs if only is None or k in only]
            if not specs:
                continue
            if tls and certs is None:  # made once per run
                certs = Certs(WORK / "tls")
                log(f"TLS: CA {certs.ca}, {certs.config}")
            if any(k == "d" for k, _ in specs):  # (d) runs at 50% of Kafka's median (a) rate
                ka = median_metrics(res.get("a", {}).get("kafka", []))
                if ka:
                    p["d_rate"] = round(0.5 * ka["records_per_s"])
                else:
                    p["d_rate"] = 10000
                    errors.append("(d): no Kafka (a) figure; used a fixed 10,000 records/s")
                p["n_d"] = max(1000, int(p["d_rate"] * p["d_seconds"]))
                log(f"(d): target rate {p['d_rate']:,} records/s, {p['n_d']:,} records")
            for r in range(p["rounds"]):
                for kind in order:
                    with_broker(kind, f"{kind}-{tag}-r{r}", overrides, certs if tls else None, gbin, res,
                                errors, warnings, lambda b: run_specs(b, specs, res, errors))
    except WorkloadError as e:  # the certificates
        log(f"  ERROR {e}")
        errors.append(str(e))
    finally:
        kill_children()
        elapsed = time.monotonic() - t_start
        write_report(results, res, errors, warnings, p, args.quick, started, gregor_info, elapsed)
        for d in MY_DIRS:
            shutil.rmtree(d / "data", ignore_errors=True)
    log(f"wrote {results / 'RESULTS.md'} in {elapsed / 60:.1f} min")
    if errors:
        log(f"{len(errors)} error(s):")
        for e in errors:
            print("  - " + e.splitlines()[0], flush=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
