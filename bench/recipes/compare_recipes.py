#!/usr/bin/env python3
"""The client-side recipes against etcd and cairn, side by side.

Starts a 1-member etcd and a 1-member cairn on fresh data dirs and ephemeral loopback ports (with
bench/load/compare.py's Target), then for every measurement point runs cairn-recipe-bench against
etcd and then against cairn, the same recipe client code on both:

  - Mutex acquire+release throughput under contention (10 and 100 contenders), with the hand-off
    latency (one holder's Unlock call -> the next holder's Lock return) p50/p99;
  - election failover (leader's session closed, i.e. revoked; optionally orphaned, i.e. the
    process "dies" and the lease expires) -> the other candidate leads, p50/p99;
  - with --bench (cairn-bench): the server-side v3lock Lock+Unlock throughput, 10 and 100 clients.

Prints a markdown report (and writes it with --out). --smoke runs every point briefly and checks
that each produced figures; it never asserts a duration. Python stdlib only. See bench/README.md.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "load"))
import compare  # noqa: E402  (bench/load/compare.py: process handling and server targets)


class RecipeTarget(compare.Target):
    """compare.Target, ready once cairn-recipe-bench ping gets an answer."""

    def _wait_ready(self, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            dead = [p for p in self.procs if p.poll() is not None]
            if dead:
                self.error = "%s exited with status %d at start" % (self.kind, dead[0].returncode)
                return False
            p = subprocess.run([self.args.recipe_bench, "--endpoints=" + self.endpoints[0],
                                "ping"], capture_output=True, timeout=30)
            if p.returncode == 0:
                return True
            time.sleep(0.1)  # a retry delay between readiness probes
        self.error = "%s not ready within %.0f s" % (self.kind, timeout)
        return False


def recipe_run(a, endpoint, workload, flags, name):
    fd, path = tempfile.mkstemp(prefix="recipe-bench-", suffix=".json")
    os.close(fd)
    cmd = [a.recipe_bench, "--endpoints=" + endpoint, "--json=" + path, "--name=" + name] + \
        flags + [workload]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        with open(path) as f:
            text = f.read().strip()
        if p.returncode != 0 or not text:
            return {"na": "exit %d: %s" % (p.returncode, (p.stderr or p.stdout).strip()[-300:])}
        return json.loads(text)
    finally:
        os.unlink(path)


def v3lock_run(a, endpoint, clients, duration):
    r = compare.run_bench(a, [endpoint], "lock", [
        "--duration=%g" % duration, "--clients=%d" % clients, "--conns=%d" % min(clients, 10),
        "--lock-names=1", "--timeout=5"], quiet=True)
    if r is None or r.get("error"):
        return {"na": (r or {}).get("error") or "no result"}
    if r["ops"]["ok"] == 0:
        return {"na": "no lock acquired: %s" % r["ops"].get("errors")}
    return {"throughput": r["ops"]["throughput"], "latency_ms": r["ops"]["latency_ms"],
            "errors": r["ops"].get("error_total", 0)}


def points(a):
    """name -> (kind of run, arguments)."""
    d = ["--duration=%g" % a.duration]
    p = {
        "mutex 10 contenders": ("recipe", "mutex", d + ["--contenders=10"]),
        "mutex 100 contenders": ("recipe", "mutex", d + ["--contenders=100"]),
        "election failover (close)": ("recipe", "election",
                                      ["--rounds=%d" % a.rounds, "--kill=close"]),
    }
    if a.orphan_rounds > 0:
        p["election failover (orphan, ttl %ds)" % a.orphan_ttl] = (
            "recipe", "election", ["--rounds=%d" % a.orphan_rounds, "--kill=orphan",
                                   "--ttl=%d" % a.orphan_ttl])
    if a.bench:
        p["v3lock 10 clients"] = ("v3lock", 10, None)
        p["v3lock 100 clients"] = ("v3lock", 100, None)
    return p


def fmt(v, digits=1):
    return "n/a" if v is None else ("%.*f" % (digits, v))


def ratio(c, e):
    return "%.2fx" % (c / e) if c is not None and e else "n/a"


def table(results):
    rows = ["| measure | etcd 3.4 | cairn | cairn/etcd |", "|---|---:|---:|---:|"]
    for name, by_kind in results.items():
        e, c = by_kind.get("etcd", {}), by_kind.get("cairn", {})
        if "na" in e or "na" in c:
            rows.append("| %s | %s | %s | n/a |" % (name, e.get("na", "ok"), c.get("na", "ok")))
            continue
        et, ct = e.get("throughput"), c.get("throughput")
        if name.startswith("mutex") or name.startswith("v3lock"):
            errs = "" if not (e.get("errors") or c.get("errors")) else \
                " (failed ops %d / %d)" % (e.get("errors", 0), c.get("errors", 0))
            rows.append("| %s: acquire+release ops/s%s | %s | %s | %s |" % (
                name, errs, fmt(et), fmt(ct), ratio(ct, et)))
        if name.startswith("mutex") or name.startswith("election"):
            what = "hand-off" if name.startswith("mutex") else "failover"
            for q in ("p50", "p99"):
                ev, cv = e["latency_ms"][q], c["latency_ms"][q]
                rows.append("| %s: %s %s ms (n=%d / %d) | %s | %s | %s |" % (
                    name, what, q, e["latency_ms"].get("n", 0), c["latency_ms"].get("n", 0),
                    fmt(ev, 2), fmt(cv, 2), ratio(cv, ev)))
        elif name.startswith("v3lock"):
            for q in ("p50", "p99"):
                ev, cv = e["latency_ms"][q], c["latency_ms"][q]
                rows.append("| %s: Lock+Unlock %s ms | %s | %s | %s |" % (
                    name, q, fmt(ev, 2), fmt(cv, 2), ratio(cv, ev)))
    return "\n".join(rows)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    build = os.path.join(compare.REPO, "build-bench")
    ap.add_argument("--recipe-bench",
                    default=os.path.join(build, "bench/recipes/cairn-recipe-bench"))
    ap.add_argument("--cairn", default=os.path.join(build, "server/main/cairn"))
    ap.add_argument("--etcd", default="/usr/bin/etcd")
    ap.add_argument("--bench", default="", help="cairn-bench, for the v3lock rows (optional)")
    ap.add_argument("--duration", type=float, default=4.0, help="seconds per mutex point")
    ap.add_argument("--rounds", type=int, default=30, help="failover rounds (close)")
    ap.add_argument("--orphan-rounds", type=int, default=0, help="failover rounds (orphan)")
    ap.add_argument("--orphan-ttl", type=int, default=2)
    ap.add_argument("--start-timeout", type=float, default=60)
    ap.add_argument("--out", default="", help="also write the markdown report here")
    ap.add_argument("--json", default="", help="also write the raw results here")
    ap.add_argument("--smoke", action="store_true",
                    help="every point briefly; exit 1 unless each produced figures")
    a = ap.parse_args()
    if a.smoke:
        a.duration, a.rounds, a.orphan_rounds = 0.5, 2, 0
    for path in (a.recipe_bench, a.cairn, a.etcd) + ((a.bench,) if a.bench else ()):
        if not os.access(path, os.X_OK):
            print("missing executable: %s" % path)
            return 1
    a.noop = ""
    a.workdir_root = tempfile.mkdtemp(prefix="recipe-bench-")
    targets = {}
    results = {}
    try:
        for kind in ("etcd", "cairn"):
            t = RecipeTarget(kind, 1, a, a.workdir_root)
            if t.start() is None:
                print("%s did not start: %s" % (kind, t.error))
                return 1
            targets[kind] = t
        for n, (name, (how, what, flags)) in enumerate(points(a).items()):
            results[name] = {}
            for kind in ("etcd", "cairn"):
                ep = targets[kind].endpoints[0]
                compare.log("%s on %s" % (name, kind))
                if how == "recipe":
                    results[name][kind] = recipe_run(a, ep, what, flags, "p%d" % n)
                else:
                    results[name][kind] = v3lock_run(a, ep, what, a.duration)
    finally:
        for t in targets.values():
            t.cleanup()
        compare.kill_all_children()
    rev = subprocess.run(["git", "-C", compare.REPO, "rev-parse", "--short", "HEAD"],
                         capture_output=True, text=True).stdout.strip()
    report = "\n".join([
        "# Recipes: cairn vs etcd (client-side recipes, same client on both)",
        "",
        "cairn %s, etcd %s, 1 member each, started side by side on loopback; %d CPUs. "
        "Mutex points %g s each; failover over %d rounds (close)%s. Generated by "
        "`bench/recipes/compare_recipes.py`." % (
            rev, subprocess.run([a.etcd, "--version"], capture_output=True,
                                text=True).stdout.split("\n")[0].replace("etcd Version: ", ""),
            os.cpu_count(), a.duration, a.rounds,
            ", %d rounds (orphan, TTL %d s)" % (a.orphan_rounds, a.orphan_ttl)
            if a.orphan_rounds else ""),
        "",
        table(results),
        ""])
    print(report)
    if a.out:
        with open(a.out, "w") as f:
            f.write(report)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=1)
    if a.smoke:
        bad = ["%s on %s: %s" % (name, kind, r["na"]) for name, by in results.items()
               for kind, r in by.items() if "na" in r]
        bad += ["%s on %s: no latency samples" % (name, kind) for name, by in results.items()
                for kind, r in by.items() if "na" not in r and "latency_ms" in r
                and r["latency_ms"].get("n", 1) == 0]
        for b in bad:
            print("FAIL " + b)
        return 1 if bad else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
