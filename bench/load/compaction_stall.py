#!/usr/bin/env python3
"""Do writes stall while a large compaction runs? (issue 17: "compaction of 1M revisions does not
stall writes: p99 put latency during a compaction is no worse than etcd's").

For each target, alternating over --rounds: start a fresh 1-member server (targets.Target),
write --revisions history entries (txn-put of 100 puts on --keys keys, so each key has many old
versions), then run the same put load twice for --seconds each:
  baseline:   no compaction;
  compacting: `etcdctl compact <revision> --physical` issued --delay seconds into the run, for
              the revision at the end of the preload (the whole history but the newest versions).
Prints the medians over rounds of the put throughput and p99/max latency of both runs, and how
long the physical compaction took. Compare only runs side by side on an idle machine.

  python3 bench/load/compaction_stall.py --revisions 1000000 --rounds 3
  python3 bench/load/compaction_stall.py --revisions 20000 --rounds 1 --seconds 2   # a smoke run

With --profile FILE (cairn only), the cairn process is sampled with Debian's linux-perf from the
compaction request until it returns; the folded stacks go to FILE and the share per thread, per
frame of the compactor thread (cairn-compact) and the top leaf functions are printed (the method of
perf_profile.py, which see).
"""

import argparse
import collections
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import targets  # noqa: E402
import perf_profile  # noqa: E402

PUT_FLAGS = ["--clients=100", "--conns=10", "--key-size=8", "--val-size=256",
             "--key-space-size=100000", "--key-prefix=w/"]


def etcdctl(a, t, args, timeout):
    env = dict(os.environ, ETCDCTL_API="3")
    return subprocess.run([a.etcdctl, "--endpoints=" + ",".join(t.endpoints)] + args,
                          capture_output=True, text=True, env=env, timeout=timeout)


def revision(a, t):
    p = etcdctl(a, t, ["endpoint", "status", "-w", "json"], 30)
    return int(json.loads(p.stdout)[0]["Status"]["header"]["revision"])


def put_run(a, t, compact_at):
    """One put run; with compact_at, compacts to that revision --delay s in. Returns a dict."""
    result = {}

    def compact():
        time.sleep(a.delay)
        perf = None
        if a.profile and t.kind == "cairn":
            data = os.path.join(a.workdir_root, "perf-%d.data" % len(a.profiles))
            perf = perf_profile.start_recording(t.procs[0].pid, data)
        t0 = time.monotonic()
        p = etcdctl(a, t, ["compact", str(compact_at), "--physical",
                           "--command-timeout=%ds" % a.command_timeout], a.command_timeout + 30)
        result["compact_s"] = time.monotonic() - t0
        if perf:
            perf.send_signal(2)
            perf.wait(timeout=60)
            targets.stop_process(perf)  # exited: only forgets it
            a.profiles.append((data, result["compact_s"]))
        result["compact_error"] = "" if p.returncode == 0 else (p.stdout + p.stderr).strip()

    th = threading.Thread(target=compact) if compact_at else None
    if th:
        th.start()
    r = targets.run_bench(a, t.endpoints, "put", ["--duration=%g" % a.seconds] + PUT_FLAGS)
    if th:
        th.join()
    ops = (r or {}).get("ops", {})
    result.update(throughput=ops.get("throughput"), p99=ops.get("latency_ms", {}).get("p99"),
                  max=ops.get("latency_ms", {}).get("max"), errors=ops.get("error_total"))
    return result


def run_round(a, kind):
    if kind == "cairn-before":  # another cairn binary (--cairn-before), e.g. a build before a change
        b = argparse.Namespace(**vars(a))
        b.cairn = a.cairn_before
        t = targets.Target("cairn", 1, b, a.workdir_root)
    else:
        t = targets.Target(kind, 1, a, a.workdir_root)
    try:
        if t.start() is None:
            return {"error": "not started (%s)" % t.error}
        total = a.revisions // 100
        r = targets.run_bench(a, t.endpoints, "txn-put", [
            "--txn-ops=100", "--total=%d" % total, "--key-space-size=%d" % a.keys,
            "--key-size=16", "--val-size=256", "--key-prefix=h/", "--clients=10", "--conns=2"])
        if not r or r.get("ops", {}).get("ok", 0) < total:
            return {"error": "preload failed: %s" % (r and r.get("error"))}
        rev = revision(a, t)
        base = put_run(a, t, None)
        during = put_run(a, t, rev)
        out = {"baseline": base, "compacting": during, "revision": rev}
        if t.kind == "cairn":  # the compactor's own account (its log line at the end)
            with open(t.logs[0], errors="replace") as f:
                f.seek(t.log_offsets[0])  # this run's lines only (the log file is shared)
                out["compactor_log"] = [ln.strip() for ln in f if "compacted history" in ln]
        return out
    finally:
        t.cleanup()


def report_profile(a):
    """Summarizes the perf samples taken during the compactions (--profile)."""
    samples = []
    seconds = 0.0
    for data, secs in a.profiles:
        script = subprocess.run(["perf", "script", "-i", data, "-F", "comm,tid,ip,sym"],
                                check=True, capture_output=True, text=True).stdout
        samples += list(perf_profile.parse_perf_script(script))
        seconds += secs
    total, by_thread, _, by_leaf, folded = perf_profile.summarize(samples)
    with open(a.profile, "w") as f:
        for stack, n in sorted(folded.items()):
            f.write("%s %d\n" % (stack, n))
    pct = perf_profile.pct
    print("# cairn during %d physical compaction(s), %.1f s: %d samples (%.2f CPUs busy)\n"
          % (len(a.profiles), seconds, total, total / 999.0 / max(seconds, 1e-9)))
    print("| thread | samples |\n|---|---:|")
    for name, n in by_thread.most_common(12):
        print("| %s | %s |" % (name, pct(n, total)))
    compactor = [f for thr, f in samples if thr == "cairn-compact"]
    inclusive = collections.Counter()
    for frames in compactor:
        for fr in set(frames):
            inclusive[fr] += 1
    print("\n| cairn-compact: frame (inclusive) | of the thread |\n|---|---:|")
    for fr, n in inclusive.most_common(40):
        print("| `%s` | %s |" % (fr[:110], pct(n, len(compactor))))
    print("\n| leaf function (self, all threads) | samples |\n|---|---:|")
    for leaf, n in by_leaf.most_common(20):
        print("| `%s` | %s |" % (leaf[:110], pct(n, total)))
    print("\nfolded stacks: %s\n" % a.profile)


def med(rounds, run, field):
    vals = [r[run][field] for r in rounds if run in r and r[run].get(field) is not None]
    return statistics.median(vals) if vals else None


def fmt(v, digits=1):
    return "-" if v is None else ("%.*f" % (digits, v))


def main():
    build = os.path.join(targets.REPO, "build")
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bench", default=os.path.join(build, "bench/load/cairn-bench"))
    ap.add_argument("--cairn", default=os.path.join(build, "server/main/cairn"))
    ap.add_argument("--etcd", default="/usr/bin/etcd")
    ap.add_argument("--etcdctl", default="/usr/bin/etcdctl")
    ap.add_argument("--revisions", type=int, default=1000000, help="history entries preloaded")
    ap.add_argument("--keys", type=int, default=100000, help="keys the history is spread over")
    ap.add_argument("--seconds", type=float, default=10, help="length of each put run")
    ap.add_argument("--delay", type=float, default=1, help="compaction start into the run")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--targets", default="cairn,etcd",
                    help="comma-separated: cairn, etcd, cairn-before (the --cairn-before binary)")
    ap.add_argument("--cairn-before", default=None, help="the cairn binary of target cairn-before")
    ap.add_argument("--command-timeout", type=int, default=300)
    ap.add_argument("--start-timeout", type=float, default=60)
    ap.add_argument("--profile", default=None,
                    help="folded stacks of cairn during its compactions (linux-perf)")
    a = ap.parse_args()
    a.profiles = []
    results = {k: [] for k in a.targets.split(",")}
    with tempfile.TemporaryDirectory(prefix="cairn-compaction-stall-", dir="/var/tmp") as root:
        a.workdir_root = root
        try:
            for rnd in range(a.rounds):
                for kind in results:
                    r = run_round(a, kind)
                    results[kind].append(r)
                    targets.log("[round %d/%d] %s: %s" % (rnd + 1, a.rounds, kind, r))
        finally:
            targets.kill_all_children()
        if a.profiles:
            report_profile(a)
    print("| target | history entries | baseline puts/s | p99 ms | max ms | during compaction "
          "puts/s | p99 ms | max ms | physical compaction s | errors |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for kind, rounds in results.items():
        errs = sorted({r.get("error") or r.get("compacting", {}).get("compact_error") or ""
                       for r in rounds} - {""})
        print("| %s | %d | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            kind, a.revisions, fmt(med(rounds, "baseline", "throughput"), 0),
            fmt(med(rounds, "baseline", "p99")), fmt(med(rounds, "baseline", "max")),
            fmt(med(rounds, "compacting", "throughput"), 0), fmt(med(rounds, "compacting", "p99")),
            fmt(med(rounds, "compacting", "max")), fmt(med(rounds, "compacting", "compact_s"), 2),
            "; ".join(errs) or "none"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
