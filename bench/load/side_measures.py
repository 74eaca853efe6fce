"""The measurements beside compare.py's workloads: the disk's fsync latency, RSS and restart
time with many keys (and a full paginated range after the restart), RSS per 10k watchers, and
`etcdctl check perf`. Each starts its own target (targets.Target) and cleans it up.
"""
import json
import os
import re
import shutil
import subprocess
import tempfile
import time

from targets import Target, preload_keys, run_bench, spawn, stop_process, summarize_run

def fsync_latency(a):
    d = tempfile.mkdtemp(prefix="fsync-", dir=a.workdir_root)
    try:
        fio = shutil.which("fio")
        if fio:
            p = subprocess.run([fio, "--rw=write", "--ioengine=sync", "--fdatasync=1",
                                "--directory=" + d, "--size=22m", "--bs=2300", "--name=etcd-probe",
                                "--output-format=json"], capture_output=True, text=True,
                               timeout=600)
            job = json.loads(p.stdout)["jobs"][0]
            pct = job["sync"]["lat_ns"]["percentile"]
            def q(k):
                return pct.get(k, 0) / 1e6
            return {"tool": "fio --rw=write --ioengine=sync --fdatasync=1 --size=22m --bs=2300",
                    "p50": q("50.000000"), "p90": q("90.000000"), "p99": q("99.000000"),
                    "p99.9": q("99.900000"), "max": job["sync"]["lat_ns"]["max"] / 1e6}
        p = subprocess.run([a.bench, "fsync-probe", "--dir=" + d, "--json=-"], capture_output=True,
                           text=True, timeout=600)
        ops = json.loads(p.stdout)["ops"]
        lat = ops["latency_ms"]
        return {"tool": "cairn-bench fsync-probe (fio recipe: 22 MiB in 2300 B writes, fdatasync "
                        "after each; fio not installed)",
                "p50": lat["p50"], "p90": lat["p90"], "p99": lat["p99"], "p99.9": lat["p99.9"],
                "max": lat["max"], "syncs_per_s": ops["throughput"]}
    finally:
        shutil.rmtree(d, ignore_errors=True)


def memory_and_restart(a, kind):
    """RSS before/after loading a.mem_keys keys, restart time with them, RSS after restart."""
    out = {}
    t = Target(kind, 1, a, a.workdir_root)
    try:
        if t.start() is None:
            return {"na": "n/a (%s)" % t.error}
        out["rss_empty"] = t.settled_rss()
        t0 = time.monotonic()
        for w, f in preload_keys(a.mem_keys):
            r = run_bench(a, t.endpoints, w, f + ["--clients=50", "--conns=5"], timeout=3600)
        out["load_s"] = time.monotonic() - t0
        ok = r["ops"]["ok"] if r and not r.get("error") else 0
        out["keys_loaded"] = ok * 100
        if ok == 0 or out["keys_loaded"] < a.mem_keys // 100 * 100:
            # A partial load (e.g. NOSPACE at the quota) would make every figure below wrong.
            return {"na": "n/a (loaded %d of %d keys: %s)" % (
                out["keys_loaded"], a.mem_keys, r and (r.get("error") or r["ops"]["errors"]))}
        out["rss_loaded"] = t.settled_rss()
        out["rss_per_key"] = (out["rss_loaded"] - out["rss_empty"]) / out["keys_loaded"]
        t.stop()
        restart = t.start(reuse_data=True)
        out["restart_s"] = restart
        if restart is None:
            out["restart_error"] = t.error
        else:
            out["rss_restarted"] = t.settled_rss()
            out.update(full_scan(a, t))
        du = subprocess.run(["du", "-sb"] + t.data_dirs, capture_output=True, text=True)
        out["data_dir_bytes"] = sum(int(line.split()[0]) for line in du.stdout.splitlines())
        return out
    finally:
        t.cleanup()


def full_scan(a, t):
    """A full paginated range (cairn-bench scan: 5,000 keys a page, at the first page's
    revision) over the loaded keys, right after the restart, stopped after a.scan_seconds."""
    r = run_bench(a, t.endpoints, "scan", ["--limit=5000", "--timeout=600",
                                           "--duration=%g" % a.scan_seconds],
                  timeout=a.scan_seconds + 900)
    if not r or r.get("error") or r["ops"]["errors"]:
        return {"scan_error": (r or {}).get("error") or (r and r["ops"]["errors"]) or "no result"}
    return {"scan_s": r["ops"]["elapsed_s"], "scan_keys": r["keys_read"]}


def watch_memory(a, kind):
    """RSS growth when 10 streams x 1,000 watchers are created (per 10k watchers)."""
    t = Target(kind, 1, a, a.workdir_root)
    try:
        if t.start() is None:
            return {"na": "n/a (%s)" % t.error}
        before = t.settled_rss()
        fd, path = tempfile.mkstemp(suffix=".json", dir=a.workdir_root)
        os.close(fd)
        p = spawn([a.bench, "--endpoints=" + t.endpoints[0], "--streams=10",
                   "--watchers-per-stream=1000", "--put-total=0", "--hold-ms=3000",
                   "--json=" + path, "watch"], stderr=subprocess.PIPE)
        during = None
        for line in p.stderr:
            if b"watchers created" in line:
                during = t.settled_rss(timeout=2.5)  # within --hold-ms, watchers all there
                break
        p.wait(timeout=120)
        stop_process(p)  # exited: only forgets it
        with open(path) as f:
            res = json.loads(f.read() or "null")
        os.unlink(path)
        if during is None:
            s = summarize_run(res) if res else {"na": "no result"}
            errs = (res or {}).get("events", {}).get("errors", {})
            return {"na": "n/a (unimplemented)" if "UNIMPLEMENTED" in errs else
                    s.get("na", "n/a (watchers not created)")}
        return {"rss_before": before, "rss_with_10k_watchers": during,
                "rss_per_10k_watchers": during - before,
                "create_s": res.get("watch_create_s") if res else None}
    finally:
        t.cleanup()


def check_perf(a, kind, load, members=1):
    t = Target(kind, members, a, a.workdir_root)
    try:
        if t.start() is None:
            return {"na": "n/a (%s)" % t.error}
        env = dict(os.environ, ETCDCTL_API="3")
        p = subprocess.run([a.etcdctl, "--endpoints=" + ",".join(t.endpoints), "check", "perf",
                            "--load=" + load], capture_output=True, text=True, env=env, timeout=300)
        text = (p.stdout + p.stderr).strip()
        lines = [l for l in re.split(r"[\r\n]+", text) if re.match(r"^(PASS|FAIL)", l.strip())]
        verdict = "PASS" if lines and lines[-1].strip() == "PASS" else "FAIL"
        thr = re.search(r"(\d+) writes/s", text)  # "Throughput is N" or "too low: N"
        return {"verdict": verdict, "writes_per_s": int(thr.group(1)) if thr else None,
                "lines": lines or re.split(r"[\r\n]+", text)[-5:]}
    finally:
        t.cleanup()
