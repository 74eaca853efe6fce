#!/usr/bin/python3
"""Put and get ops/s from Python: cairn (blocking and asyncio) against python-etcd3 (Debian's
python3-etcd3) on the same server in the same run, with 1 and 16 concurrent callers.

    PYTHONPATH=build-bench/bindings/python /usr/bin/python3 bench/python/bench_python.py \\
        --server build-bench/server/main/cairn [--seconds 5] [--rounds 3] \\
        [--floor build-bench/bench/python/cairn-sdk-floor]

Blocking callers are threads sharing one client; asyncio callers are tasks on one loop sharing
one cairn.aio client. Prints a markdown table and the ratios cairn / python-etcd3 (with
--rounds, the median of the rounds for each point, the rounds alternating the clients). With
--floor, also the C++ floor on the same server: the SDK's own blocking get/put and gRPC's
synchronous stub (what python-etcd3's grpcio does underneath), at 1 and 16 callers, so the
per-call time of one caller can be set against python-etcd3's.
"""

import argparse
import asyncio
import os
import shutil
import statistics
import socket
import subprocess
import sys
import tempfile
import threading
import time

import cairn
import cairn.aio


def free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def start_server(binary, workdir):
    client_port, peer_port = free_ports(2)
    peer, client = f"http://127.0.0.1:{peer_port}", f"http://127.0.0.1:{client_port}"
    proc = subprocess.Popen(
        [binary, "--name", "m0", "--data-dir", os.path.join(workdir, "data"),
         "--listen-client-urls", client, "--advertise-client-urls", client,
         "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
         "--initial-cluster", f"m0={peer}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"127.0.0.1:{client_port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            with cairn.Client([endpoint], timeout=1.0) as c:
                c.get("probe")
            return proc, endpoint
        except cairn.Error:
            if time.monotonic() > deadline:
                proc.kill()
                raise
            time.sleep(0.05)


def run_threads(fn, callers, seconds):
    stop = time.monotonic() + seconds
    counts = [0] * callers

    def loop(i):
        n = 0
        while time.monotonic() < stop:
            fn(i, n)
            n += 1
        counts[i] = n

    threads = [threading.Thread(target=loop, args=(i,)) for i in range(callers)]
    start = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(counts) / (time.monotonic() - start)


async def run_tasks(fn, callers, seconds):
    stop = time.monotonic() + seconds
    counts = [0] * callers

    async def loop(i):
        n = 0
        while time.monotonic() < stop:
            await fn(i, n)
            n += 1
        counts[i] = n

    start = time.monotonic()
    await asyncio.gather(*(loop(i) for i in range(callers)))
    return sum(counts) / (time.monotonic() - start)


def bench(endpoint, seconds):
    import etcd3  # Debian's python3-etcd3
    host, port = endpoint.split(":")
    results = {}
    value = "x" * 256
    c = cairn.Client([endpoint])
    e = etcd3.client(host=host, port=int(port))
    for callers in (1, 16):
        results[("put", "python-etcd3", callers)] = run_threads(
            lambda i, n: e.put(f"e/{i}/{n % 1000}", value), callers, seconds)
        results[("put", "cairn", callers)] = run_threads(
            lambda i, n: c.put(f"c/{i}/{n % 1000}", value), callers, seconds)
        results[("get", "python-etcd3", callers)] = run_threads(
            lambda i, n: e.get(f"e/{i}/{n % 1000}"), callers, seconds)
        results[("get", "cairn", callers)] = run_threads(
            lambda i, n: c.get(f"c/{i}/{n % 1000}"), callers, seconds)

        async def aio(callers=callers):
            async with cairn.aio.Client([endpoint]) as a:
                put = await run_tasks(lambda i, n: a.put(f"a/{i}/{n % 1000}", value), callers,
                                      seconds)
                get = await run_tasks(lambda i, n: a.get(f"a/{i}/{n % 1000}"), callers, seconds)
            return put, get
        results[("put", "cairn.aio", callers)], results[("get", "cairn.aio", callers)] = \
            asyncio.run(aio())
    c.close()
    e.close()
    return results


def floor(binary, endpoint, seconds):
    """The C++ floor on the same server: {(path, op, callers): (ops/s, p50 us)}."""
    out = {}
    for path in ("sdk", "grpc"):
        for op in ("put", "get"):
            for callers in (1, 16):
                line = subprocess.run(
                    [binary, f"--endpoint={endpoint}", f"--path={path}", f"--op={op}",
                     f"--clients={callers}", f"--seconds={seconds:g}"],
                    check=True, capture_output=True, text=True).stdout.split()
                out[(path, op, callers)] = (float(line[3]), float(line[4]))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--server", required=True, help="the server binary (cairn or etcd)")
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--rounds", type=int, default=1, help="medians over this many rounds")
    ap.add_argument("--floor", help="cairn-sdk-floor: also measure the C++ floor")
    args = ap.parse_args()
    workdir = tempfile.mkdtemp(prefix="cairn-pybench-")
    proc, endpoint = start_server(args.server, workdir)
    load_before = os.getloadavg()
    try:
        rounds = [bench(endpoint, args.seconds) for _ in range(args.rounds)]
        fl = floor(args.floor, endpoint, args.seconds) if args.floor else None
    finally:
        proc.kill()
        proc.wait()
        shutil.rmtree(workdir, ignore_errors=True)
    load_after = os.getloadavg()
    r = {k: statistics.median(x[k] for x in rounds) for k in rounds[0]}
    print(f"server: {args.server}, {args.seconds:g} s per point, 256-byte values, "
          f"{args.rounds} round(s) (medians); load average (1 min) {load_before[0]:.2f} before, "
          f"{load_after[0]:.2f} after\n")
    print("| op | callers | python-etcd3 ops/s | cairn ops/s | cairn.aio ops/s | cairn / etcd3 "
          "| cairn.aio / etcd3 | cairn.aio / cairn |")
    print("|---|---|---|---|---|---|---|---|")
    for op in ("put", "get"):
        for callers in (1, 16):
            e3 = r[(op, "python-etcd3", callers)]
            cb = r[(op, "cairn", callers)]
            ca = r[(op, "cairn.aio", callers)]
            print(f"| {op} | {callers} | {e3:.0f} | {cb:.0f} | {ca:.0f} | {cb / e3:.2f}x "
                  f"| {ca / e3:.2f}x | {ca / cb:.2f}x |")
    if fl is None:
        return 0
    print("\nThe C++ floor on the same server (cairn-sdk-floor): ops/s and p50 latency; "
          "for 1 caller, the mean time per call beside python-etcd3's and cairn's.\n")
    print("| op | callers | C++ SDK blocking ops/s (p50 us) | gRPC sync stub ops/s (p50 us) "
          "| per call: python-etcd3 / cairn / C++ SDK |")
    print("|---|---|---|---|---|")
    for op in ("put", "get"):
        for callers in (1, 16):
            sdk, grpc = fl[("sdk", op, callers)], fl[("grpc", op, callers)]
            per_call = ""
            if callers == 1:
                per_call = (f"{1e6 / r[(op, 'python-etcd3', 1)]:.0f} / "
                            f"{1e6 / r[(op, 'cairn', 1)]:.0f} / {1e6 / sdk[0]:.0f} us")
            print(f"| {op} | {callers} | {sdk[0]:.0f} ({sdk[1]:.0f}) | {grpc[0]:.0f} "
                  f"({grpc[1]:.0f}) | {per_call} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
