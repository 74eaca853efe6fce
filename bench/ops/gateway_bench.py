#!/usr/bin/env python3
"""Put and range through the HTTP/JSON gateway, on cairn and on etcd, in one run (issue 15,
"Performance"). For every round and each target in alternating order: start a fresh 1-member
target (bench/load/compare.py's Target), preload --keys keys through the gateway for range, run
--clients threads for --duration seconds, each with one keep-alive HTTP/1.1 connection and one
request at a time (POST /v3/kv/put or /v3/kv/range on a random key), then stop it. Prints the
median over rounds of ops/s, p50 and p99 (ms), and the ratio cairn/etcd.

The client is Python (stdlib http.client): it bounds the rate well below what either server
could take, so read the ratio, not the absolute numbers, and only from an idle machine. See
bench/README.md, "Operations benchmarks".
"""
import argparse
import base64
import http.client
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "load"))
import compare  # noqa: E402  (bench/load/compare.py: Target, process clean-up)


def b64(b):
    return base64.b64encode(b).decode()


def key_of(i):
    return b64(b"gw/%08d" % i)


def worker(endpoint, workload, keys, val_size, deadline, out, seed):
    """One client: requests until `deadline`; appends (latencies in s, errors) to `out`."""
    rnd = random.Random(seed)
    host, port = endpoint.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    lat, errors = [], 0
    path = "/v3/kv/put" if workload == "put" else "/v3/kv/range"
    while time.monotonic() < deadline:
        body = {"key": key_of(rnd.randrange(keys))}
        if workload == "put":
            body["value"] = b64(os.urandom(val_size))
        data = json.dumps(body).encode()
        t0 = time.monotonic()
        try:
            conn.request("POST", path, body=data, headers={"Content-Type": "application/json"})
            r = conn.getresponse()
            r.read()
            ok = r.status == 200
        except (OSError, http.client.HTTPException):
            ok = False
            conn.close()
            conn = http.client.HTTPConnection(host, int(port), timeout=10)
        if ok:
            lat.append(time.monotonic() - t0)
        else:
            errors += 1
    conn.close()
    out.append((lat, errors))


def run_load(endpoint, workload, a):
    out = []
    deadline = time.monotonic() + a.duration
    threads = [threading.Thread(target=worker,
                                args=(endpoint, workload, a.keys, a.val_size, deadline, out, i))
               for i in range(a.clients)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - t0
    lat = sorted(x for l, _ in out for x in l)
    errors = sum(e for _, e in out)

    def pct(p):
        return 1000 * lat[min(len(lat) - 1, int(p / 100 * len(lat)))] if lat else float("nan")
    return {"ok": len(lat), "errors": errors, "ops_s": len(lat) / elapsed,
            "p50_ms": pct(50), "p99_ms": pct(99)}


def preload(endpoint, a):
    """Every key of the key space once, through the gateway (what range reads)."""
    host, port = endpoint.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    for i in range(a.keys):
        conn.request("POST", "/v3/kv/put",
                     body=json.dumps({"key": key_of(i), "value": b64(b"v" * a.val_size)}))
        r = conn.getresponse()
        r.read()
        if r.status != 200:
            sys.exit("preload failed: HTTP %d" % r.status)
    conn.close()


def main():
    build = os.path.join(compare.REPO, "build")
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cairn", default=os.path.join(build, "server/main/cairn"))
    ap.add_argument("--etcd", default="/usr/bin/etcd")
    ap.add_argument("--bench", default=os.path.join(build, "bench/load/cairn-bench"),
                    help="cairn-bench, which compare.Target uses to see a target is ready")
    ap.add_argument("--workloads", default="put,range")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=float, default=5, help="seconds per measured run")
    ap.add_argument("--clients", type=int, default=16, help="threads, one connection each")
    ap.add_argument("--keys", type=int, default=1000, help="key space (preloaded for range)")
    ap.add_argument("--val-size", type=int, default=256)
    ap.add_argument("--start-timeout", type=float, default=60)
    ap.add_argument("--json", default=None, help="also write the results to this file")
    a = ap.parse_args()
    for path in (a.cairn, a.etcd, a.bench):
        if not os.access(path, os.X_OK):
            sys.exit("not executable: %s" % path)
    a.workdir_root = tempfile.mkdtemp(prefix="cairn-gateway-bench-", dir="/var/tmp")
    results = {}  # (workload, kind) -> [run]
    try:
        for rnd in range(a.rounds):
            for workload in a.workloads.split(","):
                kinds = ("cairn", "etcd") if rnd % 2 == 0 else ("etcd", "cairn")
                for kind in kinds:
                    t = compare.Target(kind, 1, a, a.workdir_root)
                    if t.start() is None:
                        sys.exit("%s did not start: %s" % (kind, t.error))
                    try:
                        if workload == "range":
                            preload(t.endpoints[0], a)
                        res = run_load(t.endpoints[0], workload, a)
                    finally:
                        t.cleanup()
                    compare.log("round %d %s %s: %.0f ops/s, p99 %.2f ms, %d errors" % (
                        rnd + 1, workload, kind, res["ops_s"], res["p99_ms"], res["errors"]))
                    results.setdefault((workload, kind), []).append(res)
    finally:
        compare.kill_all_children()
        shutil.rmtree(a.workdir_root, ignore_errors=True)
    print("\n| workload | target | ops/s | p50 ms | p99 ms | errors | ops/s cairn/etcd |")
    print("|---|---|---|---|---|---|---|")
    report = {}
    for workload in a.workloads.split(","):
        med = {k: {f: statistics.median(r[f] for r in results[(workload, k)])
                   for f in ("ops_s", "p50_ms", "p99_ms", "errors")}
               for k in ("cairn", "etcd")}
        ratio = med["cairn"]["ops_s"] / med["etcd"]["ops_s"] if med["etcd"]["ops_s"] else 0
        for k in ("cairn", "etcd"):
            m = med[k]
            print("| %s | %s | %.0f | %.2f | %.2f | %d | %s |" % (
                workload, k, m["ops_s"], m["p50_ms"], m["p99_ms"], m["errors"],
                "%.2f" % ratio if k == "cairn" else ""))
        report[workload] = dict(med, ratio=ratio)
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"params": {k: v for k, v in vars(a).items()}, "results": report}, f,
                      indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
