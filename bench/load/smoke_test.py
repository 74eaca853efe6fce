#!/usr/bin/env python3
"""Smoke test for cairn-bench: start the do-nothing server on an ephemeral port, run each
workload briefly against it, and check that the table and JSON reports come out with their fields.
Never asserts a duration or a throughput."""
import argparse
import json
import os
import subprocess
import sys
import tempfile


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bench", required=True)
    ap.add_argument("--noop", required=True)
    a = ap.parse_args()
    noop = subprocess.Popen([a.noop, "--listen", "127.0.0.1:0"], stdout=subprocess.PIPE, text=True)
    try:
        line = noop.stdout.readline().strip()
        if not line.startswith("listening on "):
            print("noop server did not start: %r" % line)
            return 1
        endpoint = line[len("listening on "):]
        failures = []
        runs = [
            ["put", "--clients=4", "--total=200", "--key-space-size=100"],
            ["range", "--clients=2", "--total=100", "--prefix", "--limit=10"],
            ["txn-put", "--total=50", "--txn-ops=4"],
            ["delete", "--total=50", "--sequential-keys"],
            ["lease-keepalive", "--clients=2", "--total=50"],
            ["lock", "--clients=2", "--total=20"],
            ["election", "--clients=2", "--total=20"],
            ["watch", "--streams=2", "--watchers-per-stream=3", "--put-total=10",
             "--put-rate=0", "--drain-timeout=0.2"],
            ["put", "--clients=2", "--duration=0.3", "--rate=200"],
        ]
        with tempfile.TemporaryDirectory() as tmp:
            for i, args in enumerate(runs):
                out = os.path.join(tmp, "r%d.json" % i)
                cmd = [a.bench, "--endpoints=" + endpoint, "--json=" + out] + args
                p = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
                if p.returncode != 0 or "p99" not in p.stdout:
                    failures.append("%s: rc=%d\n%s%s" % (args, p.returncode, p.stdout, p.stderr))
                    continue
                r = json.load(open(out))
                ops = r["ops"]
                for field in ("ok", "errors", "throughput", "latency_ms"):
                    if field not in ops:
                        failures.append("%s: JSON lacks ops.%s" % (args, field))
                for q in ("p50", "p90", "p99", "p99.9", "max"):
                    if q not in ops["latency_ms"]:
                        failures.append("%s: JSON lacks latency %s" % (args, q))
                if ops["ok"] <= 0:
                    failures.append("%s: no successful operation: %s" % (args, ops))
            p = subprocess.run([a.bench, "fsync-probe", "--dir=" + tmp, "--size=23000", "--json=-"],
                               capture_output=True, text=True, timeout=60)
            if p.returncode != 0 or json.loads(p.stdout)["ops"]["ok"] != 10:
                failures.append("fsync-probe: rc=%d %s%s" % (p.returncode, p.stdout, p.stderr))
        for f in failures:
            print("FAIL", f)
        return 1 if failures else 0
    finally:
        noop.terminate()
        noop.wait(timeout=10)


if __name__ == "__main__":
    sys.exit(main())
