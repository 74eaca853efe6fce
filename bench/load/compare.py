#!/usr/bin/env python3
"""Side-by-side comparison of cairn and etcd, with the do-nothing server as the upper bound.

For every workload, every round, and each target (cairn, etcd, noop) in alternating order: start
the target on fresh data dirs and ephemeral loopback ports, preload what the workload reads,
run cairn-bench, stop the target. Then print the median over rounds of each figure and the ratio
cairn/etcd, and cairn's throughput as a fraction of the do-nothing server's.

Beside it: fsync latency of the disk holding the data dirs (fio with etcd's recommended
parameters when fio is installed, else cairn-bench's built-in equivalent), RSS after loading 1M
keys, restart time with those keys, RSS per 10k watchers, and `etcdctl check perf` (l and xl).

Features the target lacks (it answers UNIMPLEMENTED, or refuses a 3-member cluster) are reported
as "n/a" and picked up automatically once they work. Every process started is killed on exit,
also on error or interrupt. Python stdlib only. See bench/README.md.
"""
import argparse
import json
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time

from side_measures import check_perf, fsync_latency, memory_and_restart, watch_memory
from targets import (REPO, Target, _on_signal, kill_all_children, log, preload_keys, run_bench,
                     summarize_run)

# ---------------------------------------------------------------------------------------------
# Workloads


def workloads(a):
    """The comparison's workloads: name -> (workload, flags, preloads). Put and range follow
    etcd's op-guide/performance.md (8 B keys, 256 B values, 1,000 clients on 100 connections)."""
    d = ["--duration=%g" % a.duration]
    big = ["--clients=%d" % a.clients, "--conns=%d" % a.conns]
    kv = ["--key-size=8", "--val-size=256"]
    return {
        "put 1000 clients": ("put", d + big + kv + ["--key-space-size=100000"], []),
        "put 1 client": ("put", d + kv + ["--clients=1", "--key-space-size=100000"], []),
        "range l 1000 clients": ("range", d + big + ["--consistency=l"], preload_keys(1)),
        "range s 1000 clients": ("range", d + big + ["--consistency=s"], preload_keys(1)),
        "range l 1 client": ("range", d + ["--clients=1", "--consistency=l"], preload_keys(1)),
        "range prefix limit 100": ("range", d + ["--clients=100", "--conns=10", "--key=p/",
                                                 "--prefix", "--limit=100", "--consistency=l"],
                                   preload_keys(1000, prefix="p/", key_size=10)),
        "txn-put 10 ops": ("txn-put", d + ["--clients=100", "--conns=10", "--txn-ops=10"] + kv +
                           ["--key-space-size=100000"], []),
        "delete": ("delete", d + ["--clients=100", "--conns=10", "--sequential-keys",
                                  "--key-space-size=200000", "--key-size=8"],
                   preload_keys(200000)),
        # 10 putter clients: one closed-loop putter cannot reach 1,000 puts/s at ~1 ms a put.
        "watch put->event": ("watch", ["--clients=10", "--streams=10", "--watchers-per-stream=10",
                                       "--put-total=%d" % int(1000 * a.duration),
                                       "--put-rate=1000", "--drain-timeout=5",
                                       "--key-size=32", "--val-size=32"], []),
        # Issue 17: 10 streams x 1,000 prefix watchers. Distinct: each put under one watcher's
        # prefix, puts unlimited (100 clients): put throughput with 10k watchers registered.
        "watch 10k distinct prefixes": ("watch", [
            "--clients=100", "--conns=10", "--streams=10", "--watchers-per-stream=1000",
            "--watch-prefix", "--watched-key-total=10000", "--key-prefix=d/", "--key-size=7",
            "--put-total=%d" % int(10000 * a.duration), "--put-rate=0", "--val-size=32",
            "--drain-timeout=10", "--hold-ms=1000"], []),
        # Nested: prefixes of 3, 2 and 1 digits ("o/123", "o/12", "o/1"); each put is matched by
        # 334 watchers, so 300 puts/s are ~100k events/s.
        "watch 10k nested prefixes": ("watch", [
            "--clients=10", "--streams=10", "--watchers-per-stream=1000", "--watch-prefix",
            "--watched-key-total=1000", "--prefix-nesting=3", "--key-prefix=o/", "--key-size=5",
            "--put-total=%d" % int(300 * a.duration), "--put-rate=300", "--val-size=32",
            "--drain-timeout=10", "--hold-ms=1000"], []),
        # One watcher on a prefix receiving 10k events/s (puts to 1,000 keys under it).
        "watch 1 prefix 10k/s": ("watch", [
            "--clients=100", "--conns=10", "--streams=1", "--watchers-per-stream=1",
            "--watch-prefix", "--watched-key-total=1", "--key-prefix=s/", "--key-size=3",
            "--key-space-size=1000", "--put-total=%d" % int(10000 * a.duration),
            "--put-rate=10000", "--val-size=32", "--drain-timeout=10"], []),
        "lease-keepalive": ("lease-keepalive", d + ["--clients=100", "--conns=10"], []),
        # A waiter that never gets the lock fails after 5 s instead of holding the run 30 s.
        "lock contention": ("lock", d + ["--clients=10", "--lock-names=1", "--timeout=5"], []),
        "election contention": ("election", d + ["--clients=10", "--lock-names=1",
                                                 "--timeout=5"], []),
    }


CLUSTER_WORKLOADS = [
    "put 1000 clients",
    "put 1 client",
    "range l 1000 clients",
    "range s 1000 clients",
]


def watchers_of(flags):
    """The number of watchers a watch workload's flags create."""
    f = dict(x[2:].split("=", 1) for x in flags if "=" in x)
    return int(f.get("streams", 10)) * int(f.get("watchers-per-stream", 10))


def measure(a, kind, members, workload, flags, preloads, auth="none"):
    t = Target(kind, members, a, a.workdir_root, auth)
    try:
        if t.start() is None:
            return {"na": "n/a (%s)" % t.error}
        user = t.enable_auth()
        if user is None:
            return {"na": "n/a (%s)" % t.error}
        if kind != "noop":
            for w, f in preloads:
                run_bench(a, t.endpoints, w, f + user)
        rss = {}
        on_created = None
        if any(f.startswith("--hold-ms=") for f in flags):  # RSS per watcher, same run
            rss["before"] = t.settled_rss()
            # Within the run's --hold-ms (1 s), while every watcher still exists.
            on_created = lambda: rss.__setitem__("with", t.settled_rss(timeout=0.8))
        r = summarize_run(run_bench(a, t.endpoints, workload, flags + user,
                                    on_created=on_created))
        if rss.get("before") and rss.get("with") and "na" not in r:
            r["rss_per_watcher"] = (rss["with"] - rss["before"]) / watchers_of(flags)
        # Entries per WAL fsync over the members' lifetime: meaningful for the workloads that
        # preload nothing (the write workloads), where the measured run is nearly all of it.
        counts = t.metrics_wal_counts() if kind != "noop" and not preloads else None
        t.stop()
        if kind == "cairn" and not preloads and counts is None:
            counts = t.cairn_wal_counts()
        if counts and counts[1] > 0 and "na" not in r:
            r["entries_per_fsync"] = counts[0] / counts[1]
        return r
    finally:
        t.cleanup()


def median_of(runs, key):
    vals = [r[key] for r in runs if key in r]
    return statistics.median(vals) if vals else None


def run_comparison(a, members, names, results):
    table = workloads(a)
    kinds = ["cairn", "etcd"] + (["noop"] if members == 1 and not a.no_noop else [])
    for rnd in range(a.rounds):
        order = kinds[:2] if rnd % 2 == 0 else kinds[1::-1]
        order += kinds[2:]
        for name in names:
            workload, flags, preloads = table[name]
            for kind in order:
                r = measure(a, kind, members, workload, flags, preloads)
                results.setdefault(name, {}).setdefault(kind, []).append(r)
                brief = r.get("na") or "%.0f/s p99 %.2f ms" % (r["throughput"], r["p99"])
                log("[%d members, round %d/%d] %-24s %-5s %s" % (members, rnd + 1, a.rounds, name,
                                                                  kind, brief))


AUTH_WORKLOADS = ["put 1000 clients", "range l 1000 clients"]


def run_auth_cost(a, modes, names, results):
    """The same workloads without auth and with each auth mode, both servers, alternating."""
    table = workloads(a)
    for rnd in range(a.rounds):
        for name in names:
            workload, flags, preloads = table[name]
            for auth in ["none"] + modes:
                for kind in (["cairn", "etcd"] if rnd % 2 == 0 else ["etcd", "cairn"]):
                    r = measure(a, kind, 1, workload, flags, preloads, auth)
                    results.setdefault(name, {}).setdefault("%s/%s" % (kind, auth), []).append(r)
                    brief = r.get("na") or "%.0f/s p99 %.2f ms" % (r["throughput"], r["p99"])
                    log("[auth %s, round %d/%d] %-24s %-5s %s" % (auth, rnd + 1, a.rounds, name,
                                                                kind, brief))


def auth_cost_table(results, modes):
    lines = ["", "## Cost of auth (1 member, user with a key-range permission; medians; "
             "throughput in ops/s and its ratio to no auth)", "",
             "| workload | server | no auth | " + " | ".join(modes) + " |",
             "|---|---|---:|" + "---:|" * len(modes)]
    for name, by in results.items():
        for kind in ("cairn", "etcd"):
            base = medians({name: by}, name, kind + "/none")
            cells = []
            for m in modes:
                r = medians({name: by}, name, "%s/%s" % (kind, m))
                cells.append("n/a" if not r else "%.0f (%s)" % (
                    r["throughput"], "%.2fx" % (r["throughput"] / base["throughput"])
                    if base and base["throughput"] else "n/a"))
            lines.append("| %s | %s | %s | %s |" % (name, kind,
                                                    fmt(base and base["throughput"], 0),
                                                    " | ".join(cells)))
    return "\n".join(lines)


def fmt(v, digits=1):
    return "-" if v is None else ("%.*f" % (digits, v))


def comparison_table(results, members):
    lines = ["", "## %d member%s: medians over rounds (throughput in ops/s, or events/s for "
             "watch; latencies in ms)" % (members, "" if members == 1 else "s"), "",
             "| workload | target | throughput | p50 | p90 | p99 | p99.9 | max | entries/fsync | "
             "errors |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    ratios = ["", "| workload | cairn/etcd throughput | cairn/etcd p50 | cairn/etcd p99 | "
              "cairn/etcd p99.9 | cairn/noop throughput | etcd/noop throughput |",
              "|---|---:|---:|---:|---:|---:|---:|"]
    for name, by_kind in results.items():
        med = {}
        for kind in ("cairn", "etcd", "noop"):
            runs = by_kind.get(kind)
            if runs is None:
                continue
            ok_runs = [r for r in runs if "na" not in r]
            if not ok_runs:
                errs = runs[0].get("errors") or {}
                err = " ".join("%s=%d" % kv for kv in sorted(errs.items()))
                lines.append("| %s | %s | %s | | | | | | | %s |" % (name, kind, runs[0]["na"],
                                                                     err))
                continue
            m = {k: median_of(ok_runs, k) for k in ("throughput", "p50", "p90", "p99", "p99.9",
                                                     "max", "entries_per_fsync")}
            med[kind] = m
            errs = {}
            for r in ok_runs:
                for k, v in r["errors"].items():
                    errs[k] = errs.get(k, 0) + v
            err = " ".join("%s=%d" % kv for kv in sorted(errs.items())) or "none"
            if len(ok_runs) < len(runs):
                err += " (%d of %d runs n/a)" % (len(runs) - len(ok_runs), len(runs))
            lines.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
                name, kind, fmt(m["throughput"], 0), fmt(m["p50"], 2), fmt(m["p90"], 2),
                fmt(m["p99"], 2), fmt(m["p99.9"], 2), fmt(m["max"], 2),
                fmt(m["entries_per_fsync"], 1), err))
        c, e, n = med.get("cairn"), med.get("etcd"), med.get("noop")

        def ratio(k):
            return "%.2fx" % (c[k] / e[k]) if c and e and e[k] else "n/a"

        r_noop = "%.0f%%" % (100 * c["throughput"] / n["throughput"]) if c and n else "n/a"
        e_noop = "%.0f%%" % (100 * e["throughput"] / n["throughput"]) if e and n else "n/a"
        ratios.append("| %s | %s | %s | %s | %s | %s | %s |" % (
            name, ratio("throughput"), ratio("p50"), ratio("p99"), ratio("p99.9"), r_noop, e_noop))
    return "\n".join(lines + ratios)


def watch_table(results):
    """The watch workloads' puts and memory beside their events (medians over rounds)."""
    lines = ["", "Watch workloads: the puts (ops/s, ms) beside the events (events/s, ms), and RSS "
             "growth per watcher while they were registered", "",
             "| workload | target | puts/s | put p50 | put p99 | events/s | event p50 | "
             "event p99 | event p99.9 | RSS per watcher |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, by_kind in results.items():
        for kind in ("cairn", "etcd"):
            runs = [r for r in by_kind.get(kind, []) if "na" not in r and "put_throughput" in r]
            if not runs:
                continue
            m = {k: median_of(runs, k) for k in ("put_throughput", "put_p50", "put_p99",
                                                 "throughput", "p50", "p99", "p99.9",
                                                 "rss_per_watcher")}
            rss = "-" if m["rss_per_watcher"] is None else "%.0f B" % m["rss_per_watcher"]
            lines.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
                name, kind, fmt(m["put_throughput"], 0), fmt(m["put_p50"], 2),
                fmt(m["put_p99"], 2), fmt(m["throughput"], 0), fmt(m["p50"], 2),
                fmt(m["p99"], 2), fmt(m["p99.9"], 2), rss))
    return "\n".join(lines) if len(lines) > 5 else ""


def medians(results, name, kind):
    runs = [r for r in results.get(name, {}).get(kind, []) if "na" not in r]
    if not runs:
        return None
    return {k: median_of(runs, k) for k in ("throughput", "p99")}


def goals(report):
    """The issue's goals, judged from this run's medians (reported, never asserted)."""
    out = []
    one = report.get("compare", {}).get("1", {})
    c, e = medians(one, "put 1000 clients", "cairn"), medians(one, "put 1000 clients", "etcd")
    if c and e:
        met = c["throughput"] >= 2 * e["throughput"] and c["p99"] <= e["p99"]
        out.append("put, 1000 clients: throughput >= 2x etcd at equal or lower p99: %s "
                   "(%.2fx, p99 %.1f vs %.1f ms)" % ("met" if met else "NOT met",
                                                     c["throughput"] / e["throughput"], c["p99"],
                                                     e["p99"]))
    c, e = medians(one, "range l 1000 clients", "cairn"), medians(one, "range l 1000 clients",
                                                                   "etcd")
    if c and e:
        out.append("linearizable range >= 2x etcd: %s (%.2fx)" % (
            "met" if c["throughput"] >= 2 * e["throughput"] else "NOT met",
            c["throughput"] / e["throughput"]))
    cp = report.get("check_perf", {}).get("cairn xl")
    if cp and "verdict" in cp:
        out.append("etcdctl check perf --load=xl passes on cairn: %s (%s writes/s)" % (
            "met" if cp["verdict"] == "PASS" else "NOT met", cp["writes_per_s"]))
    m = report.get("memory", {})
    if "rss_per_key" in m.get("cairn", {}) and "rss_per_key" in m.get("etcd", {}):
        r = m["cairn"]["rss_per_key"] / m["etcd"]["rss_per_key"]
        out.append("RSS per key <= half of etcd's: %s (%.2fx)" % ("met" if r <= 0.5 else
                                                                 "NOT met", r))
    return out


# ---------------------------------------------------------------------------------------------


def prerequisites(a):
    missing = []
    for what, path in (("cairn-bench", a.bench), ("cairn-bench-noop", a.noop), ("cairn", a.cairn),
                       ("etcd", a.etcd), ("etcdctl", a.etcdctl)):
        if not (path and os.path.isfile(path) and os.access(path, os.X_OK)):
            missing.append("%s (%s)" % (what, path))
    if missing:
        sys.exit("missing prerequisites: " + ", ".join(missing) +
                 "\n(build: ninja -C build-bench cairn-bench cairn-bench-noop cairn; "
                 "etcd and etcdctl: apt-get install etcd-server etcd-client)")
    if not shutil.which("fio"):
        log("fio not installed: using cairn-bench fsync-probe (the same recipe) for fsync "
            "latency (apt-get install fio to use fio)")


def mb(v):
    return "-" if v is None else "%.1f MB" % (v / 1e6)


def main():
    build = os.path.join(REPO, "build-bench")
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bench", default=os.path.join(build, "bench/load/cairn-bench"))
    ap.add_argument("--noop", default=os.path.join(build, "bench/load/cairn-bench-noop"))
    ap.add_argument("--cairn", default=os.path.join(build, "server/main/cairn"))
    ap.add_argument("--etcd", default="/usr/bin/etcd")
    ap.add_argument("--etcdctl", default="/usr/bin/etcdctl")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=float, default=5, help="seconds per measured run")
    ap.add_argument("--clients", type=int, default=1000, help="clients of the big workloads")
    ap.add_argument("--conns", type=int, default=100, help="connections of the big workloads")
    ap.add_argument("--workloads", default="all",
                    help="comma-separated workload names, or 'all' (see --list)")
    ap.add_argument("--list", action="store_true", help="list the workloads and exit")
    ap.add_argument("--members", default="1,3", help="cluster sizes to compare (1, 3 or 1,3)")
    ap.add_argument("--no-noop", action="store_true", help="skip the do-nothing upper bound")
    ap.add_argument("--mem-keys", type=int, default=1000000, help="keys for the memory figures")
    ap.add_argument("--scan-seconds", type=float, default=300,
                    help="stop the full paginated range after this long (reported as unfinished)")
    ap.add_argument("--memory-targets", default="cairn,etcd",
                    help="targets of the memory and restart figures (cairn, etcd or both)")
    ap.add_argument("--skip", default="",
                    help="comma-separated parts to skip: compare,fsync,memory,watch-memory,"
                         "check-perf")
    ap.add_argument("--check-perf-loads", default="l,xl")
    ap.add_argument("--start-timeout", type=float, default=60)
    ap.add_argument("--workdir", default=None,
                    help="where data dirs go (default: a temp dir under /var/tmp; must be on the "
                         "disk being measured, not tmpfs)")
    ap.add_argument("--json", default=None, help="also write all results to this JSON file")
    ap.add_argument("--auth", default="",
                    help="also measure the cost of auth: comma-separated modes among simple,jwt "
                         "(put and linearizable range, 1 member, each against no auth)")
    a = ap.parse_args()
    if a.list:
        for name, (w, f, _) in workloads(a).items():
            print("%-24s cairn-bench %s %s" % (name, w, " ".join(f)))
        return 0
    prerequisites(a)
    skip = set(filter(None, a.skip.split(",")))
    names = list(workloads(a)) if a.workloads == "all" else [
        n.strip() for n in a.workloads.split(",")]
    unknown = [n for n in names if n not in workloads(a)]
    if unknown:
        sys.exit("unknown workloads: %s (see --list)" % unknown)

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGHUP, _on_signal)
    a.workdir_root = tempfile.mkdtemp(prefix="cairn-compare-", dir=a.workdir or "/var/tmp")
    report = {"started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
              "loadavg_start": open("/proc/loadavg").read().split()[:3],
              "nproc": os.cpu_count(), "params": {k: v for k, v in vars(a).items()}}
    out = []
    try:
        if "fsync" not in skip:
            log("fsync latency ...")
            report["fsync"] = fsync_latency(a)
        if "compare" not in skip:
            report["compare"] = {}
            for members in [int(m) for m in a.members.split(",")]:
                res = {}
                sel = names if members == 1 else [n for n in names if n in CLUSTER_WORKLOADS]
                run_comparison(a, members, sel, res)
                report["compare"][str(members)] = res
                out.append(comparison_table(res, members))
                out.append(watch_table(res))
        if a.auth:
            modes = [m for m in a.auth.split(",") if m]
            bad = [m for m in modes if m not in ("simple", "jwt")]
            if bad:
                sys.exit("unknown --auth modes: %s" % bad)
            res = {}
            run_auth_cost(a, modes, [n for n in names if n in AUTH_WORKLOADS] or AUTH_WORKLOADS,
                          res)
            report["auth_cost"] = res
            out.append(auth_cost_table(res, modes))
        if "memory" not in skip:
            report["memory"] = {}
            for kind in a.memory_targets.split(","):
                log("memory and restart with %d keys: %s ..." % (a.mem_keys, kind))
                report["memory"][kind] = memory_and_restart(a, kind)
        if "watch-memory" not in skip:
            report["watch_memory"] = {}
            for kind in ("cairn", "etcd"):
                log("watch memory: %s ..." % kind)
                report["watch_memory"][kind] = watch_memory(a, kind)
        if "check-perf" not in skip:
            report["check_perf"] = {}
            for members in [int(m) for m in a.members.split(",")]:
                for load in a.check_perf_loads.split(","):
                    # The do-nothing server is the ceiling: can this machine pass at all?
                    kinds = ("cairn", "etcd") + (("noop",) if members == 1 and not a.no_noop else ())
                    for kind in kinds:
                        name = "%s %s" % (kind, load) + ("" if members == 1 else
                                                         " (%d members)" % members)
                        log("etcdctl check perf --load=%s: %s ..." % (load, name))
                        report["check_perf"][name] = check_perf(a, kind, load, members)
    except KeyboardInterrupt:
        log("interrupted: stopping every process started")
        report["interrupted"] = True
    finally:
        kill_all_children()
        shutil.rmtree(a.workdir_root, ignore_errors=True)
    report["loadavg_end"] = open("/proc/loadavg").read().split()[:3]
    report["finished"] = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())

    print("# cairn vs etcd (%s; %d CPUs; load average %s at start, %s at end)" % (
        report["started"], report["nproc"], " ".join(report["loadavg_start"]),
        " ".join(report["loadavg_end"])))
    if "fsync" in report:
        f = report["fsync"]
        print("\nfsync latency (%s): p50 %.3f ms, p90 %.3f ms, p99 %.3f ms, p99.9 %.3f ms, "
              "max %.3f ms" % (f["tool"], f["p50"], f["p90"], f["p99"], f["p99.9"], f["max"]))
    for t in out:
        print(t)
    if "memory" in report:
        print("\n## Memory and restart (%d keys: 8 B keys, 256 B values, loaded as txns of 100 "
              "puts)\n" % a.mem_keys)
        print("| target | load time | RSS empty | RSS loaded | RSS per key | restart to first read | "
              "RSS after restart | full paginated range | data dir |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        for kind, m in report["memory"].items():
            if "na" in m:
                print("| %s | %s | | | | | | | |" % (kind, m["na"]))
                continue
            scan = m.get("scan_error", "-")
            if "scan_s" in m:
                scan = "%.2f s (%d keys%s)" % (
                    m["scan_s"], m["scan_keys"],
                    ", unfinished at the cap" if m["scan_keys"] < m["keys_loaded"] else "")
            print("| %s | %.1f s | %s | %s | %.0f B | %s | %s | %s | %s |" % (
                kind, m["load_s"], mb(m["rss_empty"]), mb(m["rss_loaded"]), m["rss_per_key"],
                "%.2f s" % m["restart_s"] if m.get("restart_s") is not None else
                m.get("restart_error", "-"), mb(m.get("rss_restarted")), scan,
                mb(m.get("data_dir_bytes"))))
        c, e = report["memory"].get("cairn", {}), report["memory"].get("etcd", {})
        if "rss_per_key" in c and "rss_per_key" in e and e["rss_per_key"] > 0:
            print("\nRSS per key cairn/etcd: %.2fx" % (c["rss_per_key"] / e["rss_per_key"]))
    if "watch_memory" in report:
        print("\n## Watch memory (10 streams x 1,000 watchers)\n")
        for kind, m in report["watch_memory"].items():
            print("- %s: %s" % (kind, m["na"] if "na" in m else
                                "RSS +%s per 10k watchers (%s -> %s), created in %.2f s" % (
                                    mb(m["rss_per_10k_watchers"]), mb(m["rss_before"]),
                                    mb(m["rss_with_10k_watchers"]), m["create_s"] or 0)))
    if "check_perf" in report:
        print("\n## etcdctl check perf\n")
        for key, m in report["check_perf"].items():
            print("- %s: %s" % (key, m["na"] if "na" in m else "%s (%s writes/s): %s" % (
                m["verdict"], m["writes_per_s"], "; ".join(l.strip() for l in m["lines"]))))
    g = goals(report)
    if g:
        print("\n## Goals of the issue (from this run)\n")
        for line in g:
            print("- " + line)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(report, f, indent=1)
    return 130 if report.get("interrupted") else 0


if __name__ == "__main__":
    sys.exit(main())
