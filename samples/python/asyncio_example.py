"""The asyncio API: concurrent puts, a watch as an async iterator, and an async lock.

    /usr/bin/python3 samples/python/asyncio_example.py 127.0.0.1:2379
"""
import asyncio
import sys

import cairn
import cairn.aio


async def main(endpoints: list) -> None:
    async with cairn.aio.Client(endpoints) as client:
        await asyncio.gather(*(client.put(f"samples/aio/{i}", str(i)) for i in range(10)))
        print("keys:", len(await client.get_prefix("samples/aio/")))
        watch = client.watch("samples/aio/0")
        await client.put("samples/aio/0", "changed")
        async for event in watch:
            print(event.type, event.kv.value.decode())
            break
        watch.cancel()
        async with client.session(ttl=10) as session:
            async with session.lock("samples/aio-lock") as lock:
                print("async lock held, fencing token", lock.fencing_token)


asyncio.run(main(sys.argv[1:] or ["127.0.0.1:2379"]))
