"""The asyncio forms, against etcd and cairn."""

import asyncio

import pytest

import cairn
import cairn.aio


@pytest.mark.asyncio
async def test_aio_kv_txn_and_watch(server) -> None:
    async with cairn.aio.Client([server.endpoint]) as c:
        assert await c.get("a") is None
        await c.put("a", "1")
        assert (await c.get("a")).value == b"1"
        r = await c.txn(compare=[cairn.Value("a") == "1"], success=[cairn.Put("b", "2")])
        assert r.succeeded
        results = await asyncio.gather(*(c.put(f"g/{i}", "x") for i in range(50)))
        assert len(results) == 50
        assert len(await c.get_prefix("g/")) == 50
        assert await c.delete("g/", prefix=True) == 50
        w = c.watch("w/", prefix=True)
        await c.put("w/1", "x")
        await c.delete("w/1")
        it = w.__aiter__()
        e1 = await asyncio.wait_for(it.__anext__(), 10)
        e2 = await asyncio.wait_for(it.__anext__(), 10)
        assert (e1.type, e2.type) == ("put", "delete")
        w.cancel()


@pytest.mark.asyncio
async def test_aio_lease_lock_and_election(server) -> None:
    async with cairn.aio.Client([server.endpoint]) as c:
        async with c.lease(30) as lease:
            await c.put("l", "v", lease=lease.id)
            assert (await c.get("l")).lease == lease.id
        assert await c.get("l") is None
        async with c.session(ttl=10) as s:
            async with s.lock("L") as lock:
                assert lock.fencing_token > 0
                r = await c.txn(compare=[lock.guard()], success=[cairn.Put("x", "1")])
                assert r.succeeded
            e = s.election("E")
            g = await e.campaign("me")
            assert (await e.leader()).fencing_token == g.fencing_token


@pytest.mark.asyncio
async def test_aio_errors_and_cancel(server) -> None:
    async with cairn.aio.Client([server.endpoint]) as c:
        with pytest.raises(cairn.EmptyKeyError):
            await c.put("", "v")
        async with c.session(ttl=10) as s1, c.session(ttl=10) as s2:
            await s1.lock("C").acquire()
            wait = asyncio.ensure_future(s2.lock("C").acquire())
            await asyncio.sleep(0)  # let the wait start
            wait.cancel()
            with pytest.raises(asyncio.CancelledError):
                await wait
