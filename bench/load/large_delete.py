#!/usr/bin/env python3
"""Times one DeleteRange of a large prefix on cairn and on etcd, as `etcdctl check perf
--load=xl` does at its end (it deletes its prefix of about 400k keys in one request).

For each target: start a 1-member server on loopback ports, load --keys keys of 256 B values
under --prefix (txn-put of cairn-bench, 100 puts per txn), then time
`etcdctl del --prefix <prefix>` (its own --command-timeout, default 30 s here) and check the
count it reports; with --range, first time `etcdctl get --prefix <prefix>` (values included)
as well. Prints one line per target: seconds and the deleted count, or the error.

  python3 bench/load/large_delete.py --keys=400000          # the check perf xl size
  python3 bench/load/large_delete.py --keys=20000 --targets=cairn   # a smoke run

Measurements on a loaded machine mean nothing: compare only runs made side by side on an idle one.
Uses the processes and targets of targets.py (as compare.py does: same build paths and flags).
"""

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import targets  # noqa: E402
import perf_profile  # noqa: E402


def etcdctl(a, t, args, keep_stdout=True):
    """Runs etcdctl against the target; returns (seconds, exit code, output)."""
    env = dict(os.environ, ETCDCTL_API="3")
    cmd = [a.etcdctl, "--endpoints=" + ",".join(t.endpoints),
           "--command-timeout=%ds" % a.command_timeout] + args
    t0 = time.monotonic()
    p = subprocess.run(cmd, stdout=subprocess.PIPE if keep_stdout else subprocess.DEVNULL,
                       stderr=subprocess.PIPE, env=env, timeout=a.command_timeout + 30)
    elapsed = time.monotonic() - t0
    out = ((p.stdout or b"") + p.stderr).decode(errors="replace").strip()
    return elapsed, p.returncode, out


def get_prefix(a, t):
    """One linearizable Range of the whole prefix, values included (protobuf output, discarded:
    etcdctl's own formatting of 1M keys would dominate the time)."""
    elapsed, rc, out = etcdctl(a, t, ["get", "--prefix", a.prefix, "-w", "protobuf"],
                               keep_stdout=False)
    return "range of the prefix in %.2f s" % elapsed if rc == 0 else "range failed: " + out


def delete_prefix(a, t):
    return etcdctl(a, t, ["del", "--prefix", a.prefix])


def start_profile(a, t):
    """perf record of the cairn process until finish_profile; returns once sampling has begun."""
    data = os.path.join(a.workdir_root, "perf.data")
    return perf_profile.start_recording(t.procs[0].pid, data), data


def finish_profile(a, perf):
    p, data = perf
    p.send_signal(signal.SIGINT)
    p.wait(timeout=60)
    targets.stop_process(p)  # exited: only forgets it
    script = subprocess.run(["perf", "script", "-i", data, "-F", "comm,tid,ip,sym"],
                            check=True, capture_output=True, text=True).stdout
    samples = list(perf_profile.parse_perf_script(script))
    total, by_thread, by_component, by_leaf, folded = perf_profile.summarize(samples)
    with open(a.profile, "w") as f:
        for stack, n in sorted(folded.items()):
            f.write("%s %d\n" % (stack, n))
    print("profile: %d samples (%s); by thread: %s" % (
        total, a.profile, ", ".join("%s %s" % (t, perf_profile.pct(n, total))
                                    for t, n in by_thread.most_common(6))))
    for c, n in by_component.most_common():
        print("  %s %s" % (perf_profile.pct(n, total), c))


def run_target(a, kind):
    t = targets.Target(kind, 1, a, a.workdir_root)
    try:
        if t.start() is None:
            return "%s: not started (%s)" % (kind, t.error)
        for workload, flags in targets.preload_keys(a.keys, prefix=a.prefix, key_size=16):
            r = targets.run_bench(a, t.endpoints, workload, flags)
            ok = r and r.get("ops", {}).get("ok", 0)
            if not ok:
                return "%s: preload failed: %s" % (kind, r and r.get("error"))
        ranged = (get_prefix(a, t) + "; ") if a.range else ""
        perf = start_profile(a, t) if a.profile and kind == "cairn" else None
        elapsed, rc, out = delete_prefix(a, t)
        if perf is not None:
            finish_profile(a, perf)
        if rc != 0:
            return "%s: del failed after %.2f s: %s" % (kind, elapsed, out)
        return "%s: %sdeleted %s keys in %.2f s" % (kind, ranged, out.splitlines()[-1], elapsed)
    finally:
        t.cleanup()


def main():
    build = os.path.join(targets.REPO, "build-bench")
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bench", default=os.path.join(build, "bench/load/cairn-bench"))
    ap.add_argument("--cairn", default=os.path.join(build, "server/main/cairn"))
    ap.add_argument("--etcd", default="/usr/bin/etcd")
    ap.add_argument("--etcdctl", default="/usr/bin/etcdctl")
    ap.add_argument("--keys", type=int, default=400000)
    ap.add_argument("--prefix", default="del/")
    ap.add_argument("--targets", default="cairn,etcd")
    ap.add_argument("--command-timeout", type=int, default=30)
    ap.add_argument("--start-timeout", type=float, default=30)
    ap.add_argument("--range", action="store_true",
                    help="also time one Range of the whole prefix, before the delete")
    ap.add_argument("--profile", default=None,
                    help="folded stacks of cairn during the delete (perf record) to this file")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="cairn-large-delete-") as root:
        a.workdir_root = root
        try:
            for kind in a.targets.split(","):
                print(run_target(a, kind), flush=True)
        finally:
            targets.kill_all_children()


if __name__ == "__main__":
    main()
