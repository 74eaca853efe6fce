#!/usr/bin/env python3
"""Where a 1-member cairn spends its CPU under one cairn-bench workload (issue 17: "explain where
the time goes"). Starts cairn on a fresh data dir (targets.Target), drives it with
cairn-bench, samples it with Debian's linux-perf (`perf record -e cpu-clock -g`: the VM has no
hardware counters) for --seconds in the middle of the run, then:

  - writes the samples as folded stacks (`thread;outermost;...;leaf count` per line), the input
    of any flame-graph renderer, to --out (default bench/results/<date>-<commit>-<workload>.folded);
  - prints the share of samples per thread (cairn names its threads: docs/threading.md), per
    component (a sample counts for every component with a frame in its stack), and the top leaf
    functions.

    python3 bench/load/perf_profile.py --workload put --clients 1000 --conns 100

Measure an idle machine: samples count CPU time, and a busy machine adds waiting that is not
cairn's. See bench/README.md, "Reading a profile of the put path".
"""
import argparse
import collections
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import targets  # noqa: E402


def start_recording(pid, data, timeout=30):
    """perf record of `pid` (cpu-clock, call graphs, 999 Hz) into `data`, returned once sampling
    has begun: perf starts with its events disabled (-D -1) and is enabled through its control
    fifo, whose ack says it is sampling. Stop it with SIGINT."""
    ctl, ack = data + ".ctl", data + ".ack"
    for f in (ctl, ack):
        if os.path.exists(f):
            os.unlink(f)
        os.mkfifo(f)
    p = targets.spawn(["perf", "record", "-q", "-F", "999", "-e", "cpu-clock", "-g", "-p",
                       str(pid), "-o", data, "-D", "-1", "--control=fifo:%s,%s" % (ctl, ack)],
                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ack_fd = os.open(ack, os.O_RDONLY | os.O_NONBLOCK)
    deadline = time.monotonic() + timeout
    ctl_fd = None
    try:
        while ctl_fd is None:  # the write end opens once perf holds the read end
            try:
                ctl_fd = os.open(ctl, os.O_WRONLY | os.O_NONBLOCK)
            except OSError:
                if p.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("perf record did not start (exit %s)" % p.poll())
                select.select([], [], [], 0.05)
        os.write(ctl_fd, b"enable\n")
        reply = b""
        while b"ack" not in reply:  # perf answers "ack\n\0"
            ready, _, _ = select.select([ack_fd], [], [], max(0, deadline - time.monotonic()))
            if not ready:
                raise RuntimeError("perf record did not acknowledge 'enable'")
            reply += os.read(ack_fd, 64)
    finally:
        if ctl_fd is not None:
            os.close(ctl_fd)
        os.close(ack_fd)
    return p


# (component, substrings of a frame's symbol); a frame matches the first component it names.
COMPONENTS = [
    ("RocksDB (memtable, WAL, flush, compaction)", ["rocksdb::", "LZ4_"]),
    ("raft and the WAL", ["cairn::raft::", "cairn::wal::", "RaftDriver"]),
    ("apply (mvcc, lessor, watch hub)", ["cairn::mvcc::", "cairn::lease::", "Applier"]),
    ("request path (api: gate, handlers, services)", ["cairn::api::"]),
    ("gRPC and HTTP/2", ["grpc", "chttp2"]),
    ("protobuf", ["google::protobuf", "etcdserverpb::", "mvccpb::", "cairnpb::"]),
    ("malloc/free", ["malloc", "_int_free", "cfree", "free@", "operator new", "operator delete",
                     "unlink_chunk"]),
    ("locks and wakeups (futex, absl::Mutex)", ["futex", "absl::debian3::Mutex",
                                                "absl::lts", "Mutex::", "CondVar"]),
    ("fsync", ["fdatasync", "fsync", "Sync"]),
    ("kernel: network", ["tcp_", "sock_", "__sys_sendmsg", "__sys_recvmsg", "skb", "inet_"]),
    ("kernel: scheduling", ["schedule", "finish_task_switch"]),
]


def parse_perf_script(text):
    """Yields (thread, [frames from leaf to root]) for each sample of `perf script` output."""
    thread, frames = None, []
    for line in text.splitlines():
        if not line.strip():
            if thread is not None:
                yield thread, frames
            thread, frames = None, []
            continue
        if not line[0].isspace():
            if thread is not None:
                yield thread, frames
            # "comm tid ..." (comm may hold spaces: take everything before the tid column)
            parts = line.split()
            tid_at = next((i for i, p in enumerate(parts) if p.isdigit()), 1)
            thread, frames = " ".join(parts[:tid_at]) or "?", []
            continue
        parts = line.strip().split(None, 1)
        sym = parts[1] if len(parts) > 1 else parts[0]
        sym = sym.rsplit(" (", 1)[0]  # drop " (/path/to/dso)"
        if "+0x" in sym:
            sym = sym[:sym.rindex("+0x")]
        frames.append(sym)
    if thread is not None:
        yield thread, frames


def component_of(frame):
    for name, needles in COMPONENTS:
        if any(n in frame for n in needles):
            return name
    return None


def summarize(samples):
    total = len(samples)
    by_thread = collections.Counter(t for t, _ in samples)
    by_component = collections.Counter()
    by_leaf = collections.Counter()
    folded = collections.Counter()
    for thread, frames in samples:
        present = {c for c in (component_of(f) for f in frames) if c}
        for c in present:
            by_component[c] += 1
        by_leaf[frames[0] if frames else "?"] += 1
        folded[";".join([thread] + [f.replace(";", ":") for f in reversed(frames)])] += 1
    return total, by_thread, by_component, by_leaf, folded


def pct(n, total):
    return "%.1f%%" % (100.0 * n / total) if total else "-"


def main():
    build = os.path.join(targets.REPO, "build")
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cairn", default=os.path.join(build, "server/main/cairn"))
    ap.add_argument("--bench", default=os.path.join(build, "bench/load/cairn-bench"))
    ap.add_argument("--workload", default="put", help="a cairn-bench workload: put, range, ...")
    ap.add_argument("--clients", type=int, default=1000)
    ap.add_argument("--conns", type=int, default=100)
    ap.add_argument("--seconds", type=float, default=8, help="sampling time")
    ap.add_argument("--frequency", type=int, default=999, help="samples per second per CPU")
    ap.add_argument("--out", default=None, help="folded stacks file")
    ap.add_argument("--start-timeout", type=float, default=60)
    a = ap.parse_args()
    for tool in ("perf",):
        if subprocess.call(["which", tool], stdout=subprocess.DEVNULL) != 0:
            sys.exit("missing %s (Debian: apt-get install linux-perf)" % tool)
    a.etcd = a.noop = a.etcdctl = None
    workdir = tempfile.mkdtemp(prefix="cairn-profile-", dir="/var/tmp")
    a.workdir_root = workdir
    target = targets.Target("cairn", 1, a, workdir)
    try:
        if target.start() is None:
            sys.exit("cairn did not start: %s" % target.error)
        pid = target.procs[0].pid
        warmup = 2.0
        flags = ["--duration=%d" % int(a.seconds + 2 * warmup), "--clients=%d" % a.clients,
                 "--conns=%d" % a.conns, "--key-size=8", "--val-size=256",
                 "--key-space-size=100000"]
        bench = targets.spawn([a.bench, a.workload, "--endpoints=" + ",".join(target.endpoints)]
                              + flags, stdout=subprocess.PIPE)
        time.sleep(warmup)
        data = os.path.join(workdir, "perf.data")
        subprocess.run(["perf", "record", "-q", "-F", str(a.frequency), "-e", "cpu-clock", "-g",
                        "-p", str(pid), "-o", data, "--", "sleep", str(a.seconds)],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        out, _ = bench.communicate(timeout=a.seconds + 60)
        script = subprocess.run(["perf", "script", "-i", data, "-F", "comm,tid,ip,sym"],
                                check=True, capture_output=True, text=True).stdout
    finally:
        target.stop()
        targets.kill_all_children()
        shutil.rmtree(workdir, ignore_errors=True)
    samples = list(parse_perf_script(script))
    total, by_thread, by_component, by_leaf, folded = summarize(samples)
    commit = subprocess.run(["git", "-C", targets.REPO, "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip() or "unknown"
    path = a.out or os.path.join(targets.REPO, "bench", "results", "%s-%s-%s.folded" % (
        time.strftime("%Y-%m-%d"), commit, a.workload))
    with open(path, "w") as f:
        for stack, n in sorted(folded.items()):
            f.write("%s %d\n" % (stack, n))
    cpus = total / a.frequency / a.seconds
    print("# cairn %s at %s: %d clients, %d connections; %d samples in %.0f s (%.2f CPUs busy)"
          % (a.workload, commit, a.clients, a.conns, total, a.seconds, cpus))
    print("\ncairn-bench: " + " ".join(out.decode().split("\n")[1].split()[:3]) + " ...")
    print("\n| thread | samples |\n|---|---:|")
    for t, n in by_thread.most_common(15):
        print("| %s | %s |" % (t, pct(n, total)))
    print("\n| component (inclusive) | samples |\n|---|---:|")
    for c, n in by_component.most_common():
        print("| %s | %s |" % (c, pct(n, total)))
    print("\n| leaf function (self) | samples |\n|---|---:|")
    for leaf, n in by_leaf.most_common(20):
        print("| `%s` | %s |" % (leaf[:110], pct(n, total)))
    print("\nfolded stacks: %s" % path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
