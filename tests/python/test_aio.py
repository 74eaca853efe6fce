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


def _os_threads() -> int:
    import os
    return len(os.listdir("/proc/self/task"))


@pytest.mark.asyncio
async def test_aio_lock_waits_hold_no_thread(server) -> None:
    """Twenty tasks wait for one lock: no thread is parked per wait (the native waits are
    thread-free and complete through the loop's eventfd), and every waiter gets the lock in
    turn once the holder lets go."""
    async with cairn.aio.Client([server.endpoint]) as c:
        sessions = [await c.session(ttl=30).__aenter__() for _ in range(21)]
        holder = sessions[0].lock("N")
        await holder.acquire()
        before = _os_threads()
        order = []

        async def wait_then_release(i: int) -> None:
            lock = sessions[i].lock("N")
            await lock.acquire()
            order.append(i)
            await lock.release()

        waits = [asyncio.ensure_future(wait_then_release(i)) for i in range(1, 21)]
        # Every waiter has put its key down before the holder lets go.
        deadline = asyncio.get_running_loop().time() + 20
        while len(await c.get_prefix("N/")) < 21:
            assert asyncio.get_running_loop().time() < deadline, "waiters did not queue"
            await asyncio.sleep(0.02)
        assert _os_threads() - before < 10
        await holder.release()
        await asyncio.wait_for(asyncio.gather(*waits), 30)
        assert sorted(order) == list(range(1, 21))
        for s in sessions:
            await s.__aexit__(None, None, None)


@pytest.mark.asyncio
async def test_aio_lock_timeout_cleans_up(server) -> None:
    async with cairn.aio.Client([server.endpoint]) as c:
        async with c.session(ttl=10) as s1, c.session(ttl=10) as s2:
            await s1.lock("TO").acquire()
            with pytest.raises(cairn.DeadlineExceededError):
                await s2.lock("TO").acquire(timeout=0.3)
            # The timed-out waiter's key is gone: only the holder's remains.
            assert len(await c.get_prefix("TO/")) == 1
            await s1.election("TE").campaign("a")
            with pytest.raises(cairn.DeadlineExceededError):
                await s2.election("TE").campaign("b", timeout=0.3)
            assert len(await c.get_prefix("TE/")) == 1


@pytest.mark.asyncio
async def test_aio_rwlock_and_semaphore(server) -> None:
    async with cairn.aio.Client([server.endpoint]) as c:
        async with c.session(ttl=10) as s1, c.session(ttl=10) as s2, \
                c.session(ttl=10) as s3:
            # Readers share; a writer waits for them and times out, leaving no key behind.
            async with s1.rwlock("RW").read(), s2.rwlock("RW").read():
                with pytest.raises(cairn.DeadlineExceededError):
                    await s3.rwlock("RW").acquire(write=True, timeout=0.3)
                assert len(await c.get_prefix("RW/")) == 2
            async with s3.rwlock("RW") as w:
                r = await c.txn(compare=[w.guard()], success=[cairn.Put("rw", "1")])
                assert r.succeeded
            # Two permits: a third holder waits until one is returned.
            a, b = s1.semaphore("S", 2), s2.semaphore("S", 2)
            await a.acquire()
            await b.acquire()
            third = asyncio.ensure_future(s3.semaphore("S", 2).acquire(timeout=20))
            deadline = asyncio.get_running_loop().time() + 20
            while len(await c.get_prefix("S/")) < 3:
                assert asyncio.get_running_loop().time() < deadline
                await asyncio.sleep(0.02)
            assert not third.done()
            await a.release()
            g = await asyncio.wait_for(third, 20)
            assert g.fencing_token > 0
            await b.release()
