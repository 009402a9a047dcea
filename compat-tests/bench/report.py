"""The report: medians over the runs, results/RESULTS.md (ratios gregor/Kafka), raw.json and the
chart."""

import json
import re
import statistics
import subprocess
import traceback

from machine import JAVA, log, machine_description
from workloads import SKIPPED, WORKLOADS


def median_metrics(runs):
    if not runs:
        return None
    keys = set().union(*(r.keys() for r in runs))
    vals = {k: [r[k] for r in runs if k in r] for k in keys}
    return {k: " / ".join(sorted(set(v))) if isinstance(v[0], str) else statistics.median(v)
            for k, v in vals.items()}



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
    ("tls", "TLS version and cipher suite (as the load generator negotiated them)", "{}", None),
]


def fmt(v, f):
    return "—" if v is None else f.format(v)


SPREAD = {"records_per_s", "lat_p99_ms"}  # these also show (min–max) over the runs


def write_report(results, res, errors, warnings, p, quick, started, gregor_info, elapsed, machine=None):
    """Writes raw.json, RESULTS.md and chart.png into the folder `results`."""
    results.mkdir(parents=True, exist_ok=True)
    machine = machine or machine_description()
    only = p.get("only")  # --only: no chart
    planned = p.get("workloads", list(res))  # (raw.json from before "workloads": what it holds)
    rows = [w for w in WORKLOADS if w[0] == "startup" or w[0] in planned]
    med = {k: {b: median_metrics(res.get(k, {}).get(b, [])) for b in ("kafka", "gregor")}
           for k, *_ in WORKLOADS}
    cmd = "compat-tests/bench/run.sh" + (" --quick" if quick else "") + (
        f" --only {','.join(k.replace('_', '-') for k in only)} --rounds {p['rounds']}" if only else "")
    (results / "raw.json").write_text(json.dumps({
        "meta": {"started": started.isoformat(), "elapsed_s": elapsed, "gregor": gregor_info,
                 "machine": machine},
        "plan": p, "quick": quick, "runs": res, "errors": errors, "warnings": warnings,
        "skipped": sorted(SKIPPED)}, indent=1))
    lines = []
    A = lines.append
    A(f"# gregor vs Apache Kafka 4.1.1 — benchmark results{' (QUICK MODE: tiny counts, not meaningful)' if quick else ''}")
    A("")
    A(f"- Date: {started.strftime('%Y-%m-%d %H:%M UTC')}; took {elapsed / 60:.1f} min (`{cmd}`)")
    A(f"- Machine: {machine}. Broker and load generator share these cores.")
    A(f"- gregor: {gregor_info}")
    A(f"- Kafka: 4.1.1 from Maven Central jars, one KRaft combined node, Kafka defaults, "
      f"`-Xmx1G -Xms1G -XX:+UseG1GC`, Java {java_version()}")
    A("- Clients: franz-go v1.22.3 load generator (`loadgen/`, compression none, random payload, "
      "idempotence off unless stated, linger 10 ms = franz-go default) and Kafka 4.1.1 "
      "ProducerPerformance / ConsumerPerformance (Java client defaults, compression none). "
      "The *-wire rows use loadgen's wire modes: raw protocol requests encoded once before the clock "
      "starts (32 distinct requests of one batch per partition, random bytes, correct CRCs, sent in "
      "rotation with 5 in flight, every response's offsets checked) and raw Fetch requests (Kafka's "
      "consumer defaults: 50 MiB per response, 1 MiB per partition, one in flight), so the client "
      "costs little more than its socket I/O and the broker is what is measured; their latency is per "
      "request.")
    A(f"- Each figure is the median of {p['rounds']} alternating run(s) (kafka, gregor, kafka, gregor, ...), "
      f"each broker start with a fresh data directory on the same disk. Records per run: "
      f"(a) {p['n_a']:,}; (a'),(b') {p['n_java']:,}; (b) {p['n_b']:,}; (e) {p['n_e']:,}; "
      f"(f) {p['n_f']:,}; (d) {p['d_seconds']} s at the target rate; (a-fsync) {p['n_fsync']:,}"
      + ("; (a-tls) as (a)." if {"a_tls", "c_tls"} & set(planned) else "."))
    if {"a_tls", "c_tls"} & set(planned):
        A("- TLS rows: each broker started with an SSL listener beside its PLAINTEXT one (set-up, warm-up "
          "and CreateTopics go over PLAINTEXT, the measured run over SSL), the same ssl.* keys for both: "
          "a PEM key store (P-256 key, certificate signed by a CA made for the run with openssl) and "
          "`ssl.cipher.suites=TLS_AES_256_GCM_SHA384` (Kafka's own pick; gregor's default pick with a Go "
          "client would be AES-128-GCM). The load generator trusts the CA (`-tls-ca`, franz-go "
          "`kgo.DialTLSConfig`). gregor cannot use sendfile under TLS: it reads and encrypts fetched data.")
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
    for key, label, dur in rows:
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
    for key, label, _ in rows:
        for b in ("kafka", "gregor"):
            m = med[key][b]
            if m and m.get("client_cpu_pct", 0) >= 90:
                sat.append(f"- {label} on {b}: load generator used {m['client_cpu_pct']:.0f}% of a core "
                           f"(machine {m.get('machine_busy_pct', 0):.0f}% of one core busy) — client-bound; "
                           f"the broker may be faster than this figure shows.")
    noisy = []
    for key, label, _ in rows:
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
    if only is None:
        A("![chart](chart.png)")
        A("")
    (results / "RESULTS.md").write_text("\n".join(lines))
    if only is not None:
        return
    try:
        chart(results, med, quick)
    except Exception:
        errors.append("chart: " + traceback.format_exc())
        log("ERROR chart: " + traceback.format_exc())


def chart(results, med, quick):
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
          "a_fsync", "a_tls", "c_tls"]
    tpl = ["(a)\nacks=1", "(a) wire", "(a') Java", "(b)\nacks=all", "(b) wire", "(b') Java",
           "(c)\nconsume", "(c) wire", "(c') Java", "(e)\n100 B", "(e) wire", "(f) 1000\npart.",
           "(a) fsync", "(a) TLS", "(c) TLS"]
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
    fig.savefig(results / "chart.png", dpi=110)
    plt.close(fig)


def java_version():
    r = subprocess.run([JAVA, "-version"], capture_output=True, text=True)
    m = re.search(r'version "([^"]+)"', r.stderr)
    return m.group(1) if m else "?"
