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


# `perf script -F comm,tid,ip,sym` output of two samples (the format perf_profile.py reads).
PERF_SCRIPT = """cairn-apply  4242
	    7f01 rocksdb::MemTable::Add+0x12 (/usr/lib/x86_64-linux-gnu/librocksdb.so.7.8)
	    5501 cairn::mvcc::KvStore::Commit+0x40 (/work/build/server/main/cairn)

nexting_thread  4250
	    7f02 malloc+0x5 (/usr/lib/x86_64-linux-gnu/libc.so.6)
	    7f03 grpc_chttp2_stream_ref+0x1 (/usr/lib/x86_64-linux-gnu/libgrpc.so.29)
"""


def check_profile_parser():
    """perf_profile.py's parsing and sums, on a canned perf script (no perf needed)."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import perf_profile as prof
    samples = list(prof.parse_perf_script(PERF_SCRIPT))
    want = [("cairn-apply", ["rocksdb::MemTable::Add", "cairn::mvcc::KvStore::Commit"]),
            ("nexting_thread", ["malloc", "grpc_chttp2_stream_ref"])]
    if samples != want:
        return ["perf_profile.py parsed %r, expected %r" % (samples, want)]
    total, threads, components, leaves, folded = prof.summarize(samples)
    failures = []
    if total != 2 or threads["cairn-apply"] != 1 or leaves["malloc"] != 1:
        failures.append("perf_profile.py summary: %r %r %r" % (total, threads, leaves))
    if components.get("RocksDB (memtable, WAL, flush, compaction)") != 1 or components.get(
            "apply (mvcc, lessor, watch hub)") != 1 or components.get("gRPC and HTTP/2") != 1:
        failures.append("perf_profile.py components: %r" % components)
    if folded.get("cairn-apply;cairn::mvcc::KvStore::Commit;rocksdb::MemTable::Add") != 1:
        failures.append("perf_profile.py folded stacks: %r" % folded)
    return failures


def check_scripts_load():
    """Every benchmark script imports (the shared modules and each script's own code) and lists
    compare.py's workloads, so a broken import or a moved function fails here, not mid-run."""
    failures = []
    here = os.path.dirname(os.path.abspath(__file__))
    for script in ("compare.py", "large_delete.py", "perf_profile.py", "compaction_stall.py"):
        p = subprocess.run([sys.executable, os.path.join(here, script), "--help"],
                           capture_output=True, text=True, timeout=60)
        if p.returncode != 0 or "usage:" not in p.stdout:
            failures.append("%s --help: rc=%d %s" % (script, p.returncode, p.stderr[-500:]))
    p = subprocess.run([sys.executable, os.path.join(here, "compare.py"), "--list"],
                       capture_output=True, text=True, timeout=60)
    if p.returncode != 0 or "put 1000 clients" not in p.stdout:
        failures.append("compare.py --list: rc=%d %s" % (p.returncode, p.stderr[-500:]))
    return failures


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
            # Nested prefixes "p/00", "p/01" and "p/0" (2 watchers each): every put reaches 4.
            ["watch", "--streams=2", "--watchers-per-stream=3", "--watch-prefix",
             "--watched-key-total=2", "--prefix-nesting=2", "--key-prefix=p/", "--key-size=4",
             "--put-total=10", "--put-rate=0", "--drain-timeout=0.2"],
        ]
        expected_events = {len(runs) - 1: 40}
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
                if i in expected_events and r.get("events_expected") != expected_events[i]:
                    failures.append("%s: events_expected %s, want %d" % (
                        args, r.get("events_expected"), expected_events[i]))
            p = subprocess.run([a.bench, "fsync-probe", "--dir=" + tmp, "--size=23000", "--json=-"],
                               capture_output=True, text=True, timeout=60)
            if p.returncode != 0 or json.loads(p.stdout)["ops"]["ok"] != 10:
                failures.append("fsync-probe: rc=%d %s%s" % (p.returncode, p.stdout, p.stderr))
        failures += check_profile_parser()
        failures += check_scripts_load()
        for f in failures:
            print("FAIL", f)
        return 1 if failures else 0
    finally:
        noop.terminate()
        noop.wait(timeout=10)


if __name__ == "__main__":
    sys.exit(main())
