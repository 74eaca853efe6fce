#!/usr/bin/env python3
"""Time and peak memory to snapshot and restore N keys, on cairn and on etcd (issue 15,
"Performance"). For each target: start a fresh 1-member target (bench/load/compare.py's Target),
load --keys keys with cairn-bench (txn-put, --val-size bytes each), then
  save:    `etcdctl snapshot save FILE` against it: wall time, the server's peak RSS while it
           streams (sampled every 20 ms from /proc) and its RSS before, the file's size;
  restore: the target stopped, `etcdctl snapshot restore` (etcd 3.4; etcdutl in 3.5+) or
           `cairn snapshot restore` into a new data dir: wall time and the restoring process's
           peak RSS (its rusage), then the restored member started and its key count checked.
Prints one table. Measure an idle machine, a Release build; see bench/README.md.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "load"))
import compare  # noqa: E402  (bench/load/compare.py: Target, run_bench, preload_keys, rss_bytes)


def run_measured(cmd, env=None):
    """Runs `cmd`; returns (seconds, peak RSS bytes of the process, exit status, stderr)."""
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    err = p.stderr.read().decode(errors="replace")
    _, status, usage = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    return time.monotonic() - t0, usage.ru_maxrss * 1024, p.returncode, err


class PeakRss:
    """Samples a process's RSS every 20 ms until stopped; `peak` is the largest seen."""

    def __init__(self, pid):
        self.pid, self.peak, self._stop = pid, 0, threading.Event()
        self._thread = threading.Thread(target=self._run)
        self._thread.start()

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, compare.rss_bytes(self.pid) or 0)
            self._stop.wait(0.02)

    def stop(self):
        self._stop.set()
        self._thread.join()
        return self.peak


def key_count(a, endpoint):
    """The number of keys (RangeResponse.count of the whole key space, one key returned)."""
    env = dict(os.environ, ETCDCTL_API="3")
    out = subprocess.run([a.etcdctl, "--endpoints", endpoint, "get", "", "--prefix", "--limit=1",
                          "-w", "json"], env=env, capture_output=True, text=True,
                         timeout=300).stdout
    try:
        return int(json.loads(out).get("count", 0))
    except ValueError:
        return -1


def measure(a, kind):
    t = compare.Target(kind, 1, a, a.workdir_root)
    if t.start() is None:
        sys.exit("%s did not start: %s" % (kind, t.error))
    res = {}
    try:
        for workload, flags in compare.preload_keys(a.keys, prefix="snap/", val_size=a.val_size):
            r = compare.run_bench(a, t.endpoints, workload, flags)
            if not r or r.get("error"):
                sys.exit("loading %s failed: %s" % (kind, r))
        endpoint = "http://" + t.endpoints[0]
        res["keys"] = key_count(a, endpoint)
        res["server_rss_before"] = t.rss()
        snap = os.path.join(a.workdir_root, kind + ".snap")
        sampler = PeakRss(t.procs[0].pid)
        env = dict(os.environ, ETCDCTL_API="3")
        secs, _, status, err = run_measured(
            [a.etcdctl, "--endpoints", endpoint, "--command-timeout=600s", "snapshot", "save",
             snap], env)
        res["server_rss_peak_during_save"] = sampler.stop()
        if status != 0:
            sys.exit("%s snapshot save failed: %s" % (kind, err))
        res["save_s"], res["snapshot_bytes"] = secs, os.path.getsize(snap)
    finally:
        t.stop()
    # Restore into a new data dir with the same member name and peer URL, then serve from it.
    restored = os.path.join(a.workdir_root, kind + "-restored")
    cmd = t.cmds[0]
    flag = {cmd[i]: cmd[i + 1] for i in range(1, len(cmd) - 1) if cmd[i].startswith("--")}
    common = ["--data-dir", restored, "--name", flag["--name"], "--initial-cluster",
              flag["--initial-cluster"], "--initial-cluster-token",
              flag["--initial-cluster-token"], "--initial-advertise-peer-urls",
              flag["--initial-advertise-peer-urls"]]
    if kind == "etcd":
        restore = [a.etcdctl, "snapshot", "restore", snap] + common
    else:
        restore = [a.cairn, "snapshot", "restore", snap] + common
    secs, peak, status, err = run_measured(restore, dict(os.environ, ETCDCTL_API="3"))
    if status != 0:
        sys.exit("%s snapshot restore failed: %s" % (kind, err))
    res["restore_s"], res["restore_peak_rss"] = secs, peak
    t.cmds = [[restored if x == flag["--data-dir"] else x for x in cmd]]
    t.data_dirs = [restored]
    if t.start(reuse_data=True) is None:
        sys.exit("restored %s did not start: %s" % (kind, t.error))
    res["keys_after_restore"] = key_count(a, "http://" + t.endpoints[0])
    t.cleanup()
    shutil.rmtree(os.path.join(a.workdir_root, kind + "-m0-0"), ignore_errors=True)
    return res


def main():
    build = os.path.join(compare.REPO, "build")
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cairn", default=os.path.join(build, "server/main/cairn"))
    ap.add_argument("--etcd", default="/usr/bin/etcd")
    ap.add_argument("--etcdctl", default="/usr/bin/etcdctl")
    ap.add_argument("--bench", default=os.path.join(build, "bench/load/cairn-bench"))
    ap.add_argument("--keys", type=int, default=1000000)
    ap.add_argument("--val-size", type=int, default=256)
    ap.add_argument("--start-timeout", type=float, default=120)
    a = ap.parse_args()
    for path in (a.cairn, a.etcd, a.etcdctl, a.bench):
        if not os.access(path, os.X_OK):
            sys.exit("not executable: %s" % path)
    a.workdir_root = tempfile.mkdtemp(prefix="cairn-snapshot-bench-", dir="/var/tmp")
    results = {}
    try:
        for kind in ("cairn", "etcd"):
            compare.log("%s: %d keys ..." % (kind, a.keys))
            results[kind] = measure(a, kind)
    finally:
        compare.kill_all_children()
        shutil.rmtree(a.workdir_root, ignore_errors=True)
    mb = compare.mb
    print("\n| target | keys | save s | snapshot size | server RSS before / peak in save "
          "| restore s | restore peak RSS | keys after restore |")
    print("|---|---|---|---|---|---|---|---|")
    for kind, r in results.items():
        print("| %s | %d | %.2f | %s | %s / %s | %.2f | %s | %d |" % (
            kind, r["keys"], r["save_s"], mb(r["snapshot_bytes"]), mb(r["server_rss_before"]),
            mb(r["server_rss_peak_during_save"]), r["restore_s"], mb(r["restore_peak_rss"]),
            r["keys_after_restore"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
