"""The asyncio forms of the rest of the surface, against etcd and cairn: every recipe, the
resolver, the cache, counters, STM and administration."""

import asyncio

import pytest

import cairn
import cairn.aio


async def _until(cond, what: str, seconds: float = 20) -> None:
    """Awaits cond() (a coroutine function) becoming true; fails after `seconds`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while not await cond():
        assert loop.time() < deadline, what
        await asyncio.sleep(0.02)  # poll interval of a bounded wait


@pytest.mark.asyncio
async def test_aio_multi_lock_barriers_and_queues(server) -> None:
    async with cairn.aio.Client([server.endpoint]) as c:
        async with c.session(ttl=10) as s1, c.session(ttl=10) as s2:
            async with s1.multi_lock(["m/a", "m/b"]) as ml:
                assert len(ml.grants) == 2
                r = await c.txn(compare=ml.guards(), success=[cairn.Put("m/out", "1")])
                assert r.succeeded
                with pytest.raises(cairn.DeadlineExceededError):
                    await s2.multi_lock(["m/b"]).acquire(timeout=0.3)
            assert await c.get_prefix("m/a/") == []

            b = s1.barrier("bar")
            await b.hold()
            waiting = asyncio.ensure_future(s2.barrier("bar").wait(timeout=20))
            with pytest.raises(cairn.DeadlineExceededError):
                await s2.barrier("bar").wait(timeout=0.2)
            assert not waiting.done()
            await b.release()
            await asyncio.wait_for(waiting, 20)

            d1, d2 = s1.double_barrier("db", 2), s2.double_barrier("db", 2)
            await asyncio.wait_for(asyncio.gather(d1.enter(timeout=20), d2.enter(timeout=20)), 30)
            await asyncio.wait_for(asyncio.gather(d1.leave(timeout=20), d2.leave(timeout=20)), 30)

            q = s1.queue("q")
            got = asyncio.ensure_future(s2.queue("q").get(timeout=20))
            await q.put("one")
            assert await asyncio.wait_for(got, 20) == b"one"
            assert await q.get_nowait() is None and await q.size() == 0
            pq = s1.priority_queue("pq")
            await pq.put("low", priority=5)
            await pq.put("high", priority=1)
            assert [await pq.get(timeout=10), await pq.get(timeout=10)] == [b"high", b"low"]
            with pytest.raises(ValueError):
                await q.put("x", priority=3)


@pytest.mark.asyncio
async def test_aio_election_observe_and_lock_forms(server) -> None:
    async with cairn.aio.Client([server.endpoint]) as c:
        async with c.session(ttl=10) as s1, c.session(ttl=10) as s2:
            e1, e2 = s1.election("E"), s2.election("E")
            async with e2.observe() as leaders:
                it = leaders.__aiter__()
                await e1.campaign("first")
                assert (await asyncio.wait_for(it.__anext__(), 10)).value == b"first"
                await e1.proclaim("second")
                assert (await asyncio.wait_for(it.__anext__(), 10)).value == b"second"
                assert e1.leadership is not None
                waiting = asyncio.ensure_future(e2.campaign("next", timeout=20))
                await _until(lambda: _count(c, "E/", 2), "campaign did not queue")
                await e1.resign()
                assert (await asyncio.wait_for(waiting, 20)).fencing_token > 0
                assert (await asyncio.wait_for(it.__anext__(), 10)).value == b"next"
                assert (await e1.leader()).value == b"next"

            latch = await s1.latch("LA", "me")
            await latch.wait(timeout=10)
            assert latch.is_leader
            await latch.close()
            led = asyncio.Event()
            loop = asyncio.get_running_loop()

            def lead(grant: cairn.Grant, lost) -> None:
                loop.call_soon_threadsafe(led.set)
                lost.wait(30)

            sel = await s2.selector("SE", lead, requeue=False)
            await asyncio.wait_for(led.wait(), 10)
            await sel.close()
            assert sel.leaderships == 1

            lock = s1.lock("TL")
            assert await lock.try_acquire() is not None
            assert await s2.lock("TL").try_acquire() is None
            await lock.release()
            assert s1.alive and s1.lease > 0

            # A semaphore wait that times out leaves no key; the holder's permit stays.
            sem = s1.semaphore("TS", 1)
            await sem.acquire()
            with pytest.raises(cairn.DeadlineExceededError):
                await s2.semaphore("TS", 1).acquire(timeout=0.3)
            assert len(await c.get_prefix("TS/")) == 1
            await sem.release()


async def _count(c: cairn.aio.Client, prefix: str, n: int) -> bool:
    return len(await c.get_prefix(prefix)) >= n


@pytest.mark.asyncio
async def test_aio_counter_stm_resolver_and_cache(server) -> None:
    async with cairn.aio.Client([server.endpoint]) as c:
        hits = c.counter("hits")
        await asyncio.gather(*(hits.add(1) for _ in range(10)))
        assert await hits.get() == 10
        assert await hits.compare_and_set(10, 20)

        await c.put("acct/a", "100")
        await c.put("acct/b", "0")

        def transfer(stm: cairn.Stm) -> None:
            stm.put("acct/a", str(int(stm.get("acct/a")) - 10))
            stm.put("acct/b", str(int(stm.get("acct/b")) + 10))

        await asyncio.gather(*(c.stm(transfer) for _ in range(3)))
        assert (await c.get("acct/b")).value == b"30"

        r = c.resolver("svc")
        async with c.session(ttl=10) as s:
            await s.register("svc", "a", "10.0.0.1:80", {"zone": "x"})
            await r.wait_for(1, timeout=10)
            assert (await r.pick()).address == "10.0.0.1:80"
            assert [i.id for i in await r.instances()] == ["a"]

        cache = c.cache("cfg/")
        await c.put("cfg/a", "1")
        rev = (await c.get("cfg/a")).mod_revision
        await cache.wait_for_revision(rev, timeout=10)
        assert (await cache.get("cfg/a")).value == b"1"
        assert cache.revision >= rev

        got = await c.get_range("acct/", "acct0", sort="descend")
        assert [kv.key for kv in got.kvs] == [b"acct/b", b"acct/a"]

        async with c.watch("f/", prefix=True, filters=["put"]) as w:
            await c.put("f/1", "x")
            await c.delete("f/1")
            ev = await asyncio.wait_for(w.__anext__(), 10)
            assert (ev.type, ev.kv.key) == ("delete", b"f/1")  # the put was filtered out
        with pytest.raises(ValueError):
            c.watch("f/", filters=["nope"])


@pytest.mark.asyncio
async def test_aio_administration(server) -> None:
    async with cairn.aio.Client([server.endpoint]) as c:
        members = await c.cluster.list()
        assert len(members) == 1
        st = await c.maintenance.status()
        assert st.leader == members[0]["id"]
        assert await c.maintenance.alarms() == []
        with pytest.raises(cairn.MemberNotFoundError):
            await c.cluster.remove(12345)
        await c.auth.add_user("bob", "pw")
        assert "bob" in await c.auth.users()
        await c.auth.delete_user("bob")
    assert c.closed


class _NoExecutor:
    """A default executor that fails the test when anything is run on it."""

    @staticmethod
    def install() -> None:
        from concurrent.futures import ThreadPoolExecutor

        class NoExecutor(ThreadPoolExecutor):
            def submit(self, fn, /, *args, **kwargs):  # type: ignore[no-untyped-def]
                raise AssertionError("ran on the executor")

        asyncio.get_running_loop().set_default_executor(NoExecutor())


@pytest.mark.asyncio
async def test_aio_short_recipe_calls_complete_without_the_executor(server) -> None:
    """Sessions' open and close, try_acquire and every release, a barrier's hold, a queue's put,
    get_nowait and size, proclaim, resign, leader and register are native futures."""
    _NoExecutor.install()
    c = cairn.aio.Client([server.endpoint])
    try:
        s1, s2 = await c.session(ttl=10).open(), await c.session(ttl=10).open()
        mine, theirs = s1.lock("sx/l"), s2.lock("sx/l")
        assert (await mine.try_acquire()) is not None
        assert await theirs.try_acquire() is None
        assert len(await c.get_prefix("sx/l/")) == 1  # the failed try left no key
        await mine.release()
        assert (await theirs.try_acquire()) is not None
        await theirs.release()
        rw, sem = s1.rwlock("sx/rw"), s1.semaphore("sx/sem", 2)
        await rw.acquire(write=False)
        await sem.acquire()
        async with s1.multi_lock(["sx/m1", "sx/m2"]):
            assert len(await c.get_prefix("sx/m")) == 2
        await rw.release()
        await sem.release()
        assert await c.get_prefix("sx/") == []
        bar = s1.barrier("sx/bar")
        await bar.hold()
        assert len(await c.get_prefix("sx/bar")) == 1
        await bar.release()
        q = s1.queue("sx/q")
        await q.put("a")
        assert await q.size() == 1
        assert await q.get_nowait() == b"a"
        assert await q.get_nowait() is None
        e = s1.election("sx/e")
        await e.campaign("v1", timeout=10)
        await e.proclaim("v2")
        assert (await e.leader()).value == b"v2"
        await e.resign()
        await s1.register("sx/svc", "a", "10.0.0.1:80", {"zone": "x"})
        assert len(await c.get_prefix("sx/svc/")) == 1
        await s1.close()
        assert not s1.alive
        assert await c.get_prefix("sx/svc/") == []  # revoked with the session's lease
        await s2.close()
    finally:
        c._sync.close()


@pytest.mark.asyncio
async def test_aio_auth_and_stm_complete_without_the_executor(server) -> None:
    """Auth calls are native futures; STM runs its function on the loop over native reads and
    a native txn, rerunning it after each first read, and stays serializable."""
    _NoExecutor.install()
    c = cairn.aio.Client([server.endpoint])
    try:
        if server.kind == "cairn":  # AuthStatus: etcd 3.5+ (Debian's etcd is 3.4)
            assert await c.auth.enabled is False
        await c.auth.add_user("sxuser", "pw")
        await c.auth.add_role("sxrole")
        await c.auth.grant_permission("sxrole", "read", "sx/", prefix=True)
        assert [p[1] for p in await c.auth.role_permissions("sxrole")] == [b"sx/"]
        await c.auth.grant_role("sxuser", "sxrole")
        assert await c.auth.user_roles("sxuser") == ["sxrole"]
        await c.auth.revoke_role("sxuser", "sxrole")
        await c.auth.revoke_permission("sxrole", "sx/", prefix=True)
        await c.auth.change_password("sxuser", "pw2")
        assert "sxrole" in await c.auth.roles() and "sxuser" in await c.auth.users()
        await c.auth.delete_role("sxrole")
        await c.auth.delete_user("sxuser")
        with pytest.raises(cairn.UserNotFoundError):
            await c.auth.delete_user("sxuser")

        await c.put("sx/a", "100")
        await c.put("sx/b", "0")
        runs = []

        def transfer(stm: cairn.Stm) -> None:
            runs.append(1)
            stm.put("sx/a", str(int(stm.get("sx/a") or b"0") - 10))
            stm.put("sx/b", str(int(stm.get("sx/b") or b"0") + 10))

        await asyncio.gather(*(c.stm(transfer) for _ in range(5)))
        assert (await c.get("sx/a")).value == b"50"
        assert (await c.get("sx/b")).value == b"50"
        assert len(runs) >= 15  # each transaction ran again after each of its two first reads

        def fail(stm: cairn.Stm) -> None:
            stm.put("sx/a", b"lost" + (stm.get("sx/a") or b""))
            raise ValueError("no")

        with pytest.raises(ValueError):
            await c.stm(fail)
        assert (await c.get("sx/a")).value == b"50"
        for level in ("serializable_snapshot", "serializable", "repeatable_read",
                      "read_committed"):
            def copy(stm: cairn.Stm) -> None:
                assert stm.rev("sx/a") > 0
                stm.put("sx/copy", stm.get("sx/a") or b"")
                stm.delete("sx/b")

            assert (await c.stm(copy, isolation=level)).succeeded
            assert (await c.get("sx/copy")).value == b"50" and await c.get("sx/b") is None
        with pytest.raises(ValueError):
            await c.stm(transfer, isolation="nope")
    finally:
        c._sync.close()


def _os_threads() -> int:
    import os
    return len(os.listdir("/proc/self/task"))


@pytest.mark.asyncio
async def test_aio_rwlock_semaphore_and_barrier_waits_hold_no_thread(server) -> None:
    """Five waiters each on a rwlock, a semaphore and a barrier park no thread per wait; all of
    them get through once the holders let go."""
    async with cairn.aio.Client([server.endpoint]) as c:
        sessions = [await c.session(ttl=30).open() for _ in range(6)]
        holder = sessions[0]
        writer, permit, bar = holder.rwlock("NT"), holder.semaphore("NS", 1), holder.barrier("NB")
        await writer.acquire(write=True)
        await permit.acquire()
        await bar.hold()
        before = _os_threads()

        async def take_and_give_back(sem: cairn.aio.Semaphore) -> None:
            await sem.acquire(timeout=30)
            await sem.release()

        waits = []
        for s in sessions[1:]:
            waits.append(asyncio.ensure_future(s.rwlock("NT").acquire(write=False, timeout=30)))
            waits.append(asyncio.ensure_future(take_and_give_back(s.semaphore("NS", 1))))
            waits.append(asyncio.ensure_future(s.barrier("NB").wait(timeout=30)))
        await _until(lambda: _count(c, "NT/", 6), "rwlock waiters did not queue")
        await _until(lambda: _count(c, "NS/", 6), "semaphore waiters did not queue")
        assert _os_threads() - before < 10
        assert not any(w.done() for w in waits)
        await writer.release()
        await permit.release()
        await bar.release()
        await asyncio.wait_for(asyncio.gather(*waits), 30)
        for s in sessions:
            await s.close()


@pytest.mark.asyncio
async def test_aio_multi_lock_double_barrier_queue_and_latch_waits_hold_no_thread(server) -> None:
    """Five waiters each on a multi-lock, a double barrier, a queue and a latch park no thread
    per wait; all of them get through once the holder lets go, the group is complete, items
    come and the latch leads."""
    async with cairn.aio.Client([server.endpoint]) as c:
        sessions = [await c.session(ttl=30).open() for _ in range(6)]
        holder = sessions[0]
        held = holder.multi_lock(["NM"])
        await held.acquire()
        leader = holder.election("NL")
        await leader.campaign("holder")
        latch = await sessions[1].latch("NL", "next")
        await _until(lambda: _count(c, "NL/", 2), "latch did not campaign")
        before = _os_threads()

        async def lock_and_give_back(ml: cairn.aio.MultiLock) -> None:
            await ml.acquire(timeout=30)
            await ml.release()

        waits = []
        for i, s in enumerate(sessions[1:]):
            waits.append(asyncio.ensure_future(
                lock_and_give_back(s.multi_lock(["NM", f"NM{i}"]))))
            waits.append(asyncio.ensure_future(s.double_barrier("ND", 6).enter(timeout=30)))
            waits.append(asyncio.ensure_future(s.queue("NQ").get(timeout=30)))
            waits.append(asyncio.ensure_future(latch.wait(timeout=30)))
        await _until(lambda: _count(c, "NM/", 6), "multi-lock waiters did not queue")
        await _until(lambda: _count(c, "ND/waiters/", 5), "double barrier waiters did not enter")
        assert _os_threads() - before < 10
        assert not any(w.done() for w in waits)
        await held.release()
        await holder.double_barrier("ND", 6).enter(timeout=30)
        for i in range(5):
            await holder.queue("NQ").put(f"job{i}")
        await leader.resign()
        results = await asyncio.wait_for(asyncio.gather(*waits), 30)
        assert sorted(r for r in results if isinstance(r, bytes)) == [
            f"job{i}".encode() for i in range(5)]
        assert latch.is_leader
        await latch.close()
        for s in sessions:
            await s.close()


@pytest.mark.asyncio
async def test_aio_admin_counter_and_cache_complete_without_the_executor(server) -> None:
    """Membership, maintenance, counters, the cache's and the resolver's waits are native
    futures: a loop whose default executor is broken still runs them (the snapshot and the
    closes that join a thread still use it)."""
    from concurrent.futures import ThreadPoolExecutor

    class NoExecutor(ThreadPoolExecutor):
        def submit(self, fn, /, *args, **kwargs):  # type: ignore[no-untyped-def]
            raise AssertionError("ran on the executor")

    asyncio.get_running_loop().set_default_executor(NoExecutor())
    c = cairn.aio.Client([server.endpoint])
    try:
        members = await c.cluster.list()
        assert len(members) == 1
        assert (await c.maintenance.status()).leader == members[0]["id"]
        assert await c.maintenance.alarms() == []
        assert await c.maintenance.hash_kv() == await c.maintenance.hash_kv()
        await c.maintenance.defragment()
        with pytest.raises(cairn.MemberNotFoundError):
            await c.cluster.remove(12345)
        hits = c.counter("nx/hits")
        assert sorted(await asyncio.gather(*(hits.add(1) for _ in range(5)))) == [1, 2, 3, 4, 5]
        assert await hits.compare_and_set(5, 7) and not await hits.compare_and_set(5, 8)
        await hits.set(3)
        assert await hits.get() == 3
        cache = c.cache("nx/cfg/")
        pending = asyncio.ensure_future(cache.wait_for_revision(cache.revision + 1, timeout=20))
        await c.put("nx/cfg/a", "1")
        await asyncio.wait_for(pending, 20)
        assert (await cache.get("nx/cfg/a")).value == b"1"
        with pytest.raises(cairn.DeadlineExceededError):
            await cache.wait_for_revision(cache.revision + 1000, timeout=0.2)
        # The resolver's waits too (the registration is made with the blocking API).
        r = c.resolver("nx/svc")
        waits = [asyncio.ensure_future(r.wait_for(1, timeout=20)) for _ in range(3)]
        with cairn.Client([server.endpoint]) as b, b.session(ttl=10) as s:
            s.register("nx/svc", "a", "10.0.0.1:80", {})
            await asyncio.wait_for(asyncio.gather(*waits), 20)
            assert [i.id for i in await r.instances()] == ["a"]
        with pytest.raises(cairn.DeadlineExceededError):
            await r.wait_for(5, timeout=0.2)
    finally:
        c._sync.close()
