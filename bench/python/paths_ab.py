#!/usr/bin/python3
"""The Python client's get/put paths before and after the short paths (commit c54dd67), in one
process against one server, alternating, so machine load hits both alike:

    PYTHONPATH=build/bindings/python /usr/bin/python3 bench/python/paths_ab.py \\
        --server build/server/main/cairn [--seconds 2] [--rounds 3]

"before" re-creates the earlier Python-side path with the native calls it used (still bound):
blocking, `_c.get(key).result().kvs` (a PyFuture, a callback, the whole response converted);
asyncio, `_c.get(key)` then an asyncio future with a done-callback closure registered with the
loop's notifier by `notify_to`. "after" is cairn.Client.get/put and cairn.aio's. Prints the
median ops/s of each point and the ratio after / before.
"""

import argparse
import asyncio
import os
import shutil
import statistics
import sys
import tempfile

import cairn
import cairn.aio
from cairn._aio_core import _waker

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_python import run_tasks, run_threads, start_server  # noqa: E402

VALUE = b"x" * 256


def before_blocking(c):
    native = c._c

    def get(i, n):
        kvs = native.get(b"c/%d/%d" % (i, n % 1000), serializable=False).result().kvs
        return kvs[0] if kvs else None

    def put(i, n):
        native.put(b"c/%d/%d" % (i, n % 1000), VALUE, 0, False).result()
    return get, put


def before_aio(a):
    native = a._c

    def track(call):
        w = _waker()
        fut = w.loop.create_future()

        def on_done(f):
            if f.cancelled():
                call.cancel()
        fut.add_done_callback(on_done)
        w.track(fut, call, None)
        return fut

    async def get(i, n):
        resp = await track(native.get(b"a/%d/%d" % (i, n % 1000), serializable=False))
        return resp.kvs[0] if resp.kvs else None

    async def put(i, n):
        await track(native.put(b"a/%d/%d" % (i, n % 1000), VALUE, 0, False))
    return get, put


async def measure(endpoint, seconds, rounds):
    points = {}
    c = cairn.Client([endpoint])
    async with cairn.aio.Client([endpoint]) as a:
        bget, bput = before_blocking(c)
        aget, aput = before_aio(a)
        variants = {
            ("blocking", "get", "before"): (False, bget),
            ("blocking", "get", "after"): (False, lambda i, n: c.get(b"c/%d/%d" % (i, n % 1000))),
            ("blocking", "put", "before"): (False, bput),
            ("blocking", "put", "after"):
                (False, lambda i, n: c.put(b"c/%d/%d" % (i, n % 1000), VALUE)),
            ("aio", "get", "before"): (True, aget),
            ("aio", "get", "after"): (True, lambda i, n: a.get(b"a/%d/%d" % (i, n % 1000))),
            ("aio", "put", "before"): (True, aput),
            ("aio", "put", "after"): (True, lambda i, n: a.put(b"a/%d/%d" % (i, n % 1000), VALUE)),
        }
        for _ in range(rounds):
            for callers in (1, 16):
                for (mode, op, which), (is_aio, fn) in variants.items():
                    if is_aio:
                        r = await run_tasks(fn, callers, seconds)
                    else:
                        r = run_threads(fn, callers, seconds)
                    points.setdefault((mode, op, callers, which), []).append(r)
    c.close()
    return {k: statistics.median(v) for k, v in points.items()}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--server", required=True)
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    workdir = tempfile.mkdtemp(prefix="cairn-paths-ab-")
    proc, endpoint = start_server(args.server, workdir)
    load_before = os.getloadavg()[0]
    try:
        r = asyncio.run(measure(endpoint, args.seconds, args.rounds))
    finally:
        proc.kill()
        proc.wait()
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"{args.seconds:g} s per point, {args.rounds} rounds (medians), load average (1 min) "
          f"{load_before:.2f} before, {os.getloadavg()[0]:.2f} after\n")
    print("| form | op | callers | before ops/s | after ops/s | after / before |")
    print("|---|---|---|---|---|---|")
    for mode in ("blocking", "aio"):
        for op in ("put", "get"):
            for callers in (1, 16):
                b = r[(mode, op, callers, "before")]
                a = r[(mode, op, callers, "after")]
                print(f"| {mode} | {op} | {callers} | {b:.0f} | {a:.0f} | {a / b:.2f}x |")


if __name__ == "__main__":
    sys.exit(main())
