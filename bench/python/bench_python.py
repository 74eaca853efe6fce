#!/usr/bin/python3
"""Put and get ops/s from Python: cairn (blocking and asyncio) against python-etcd3 (Debian's
python3-etcd3) on the same server in the same run, with 1 and 16 concurrent callers.

    PYTHONPATH=build-bench/bindings/python /usr/bin/python3 bench/python/bench_python.py \\
        --server build-bench/server/main/cairn [--server-kind cairn|etcd] [--seconds 5]

Blocking callers are threads sharing one client; asyncio callers are tasks on one loop sharing
one cairn.aio client. Prints a markdown table and the ratios cairn / python-etcd3.
"""

import argparse
import asyncio
import os
import shutil
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


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--server", required=True, help="the server binary (cairn or etcd)")
    ap.add_argument("--seconds", type=float, default=5.0)
    args = ap.parse_args()
    workdir = tempfile.mkdtemp(prefix="cairn-pybench-")
    proc, endpoint = start_server(args.server, workdir)
    try:
        r = bench(endpoint, args.seconds)
    finally:
        proc.kill()
        proc.wait()
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"server: {args.server}, {args.seconds:g} s per point, 256-byte values\n")
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


if __name__ == "__main__":
    sys.exit(main())
