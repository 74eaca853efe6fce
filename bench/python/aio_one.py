#!/usr/bin/python3
"""ops/s of one cairn.aio point: `callers` tasks on one loop sharing one client, each doing get
(or put) of one 256-byte key for `seconds`. For A/B runs of two builds of the binding against
one server, alternating processes so that machine load hits both alike:

    for r in 1 2 3; do
      PYTHONPATH=$A/bindings/python /usr/bin/python3 bench/python/aio_one.py $EP get 16 3 A
      PYTHONPATH=$B/bindings/python /usr/bin/python3 bench/python/aio_one.py $EP get 16 3 B
    done

Prints "<label> <op> <callers> <ops/s>".
"""

import asyncio
import sys
import time

import cairn.aio


async def main(endpoint: str, op: str, callers: int, seconds: float) -> float:
    async with cairn.aio.Client([endpoint]) as a:
        value = "x" * 256
        await a.put("o/0", value)
        stop = time.monotonic() + seconds
        count = [0]

        async def loop() -> None:
            while time.monotonic() < stop:
                if op == "get":
                    await a.get("o/0")
                else:
                    await a.put("o/0", value)
                count[0] += 1
        start = time.monotonic()
        await asyncio.gather(*(loop() for _ in range(callers)))
        return count[0] / (time.monotonic() - start)


if __name__ == "__main__":
    ep, op, n, secs, label = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), \
        sys.argv[5]
    print(label, op, n, round(asyncio.run(main(ep, op, n, secs))))
