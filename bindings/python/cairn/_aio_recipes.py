"""The recipes of ``cairn.aio``: locks, elections, barriers and queues under an asyncio session.

Every call holds no thread: the waits (Lock, RWLock, Semaphore, MultiLock, Barrier,
DoubleBarrier, Queue, campaign, latch) and the short calls (releases, try_acquire, hold, put,
get_nowait, size, proclaim, resign, leader, a session's open and close, register) are the
recipes' async forms, completed on the client's threads. Only the closes of a latch and a
selector, which join their thread, run on the loop's default executor (docs/python.md).
Cancelling the awaiting task (or its timeout) gives up and removes the waiting key."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import TYPE_CHECKING, Any, AsyncIterator, Callable, List, Optional, Sequence, cast

from . import _cairn
from ._aio_core import _await, _offload, _Offloaded, _waker
from ._cairn import Event, Grant, KeyValue, LeaderInfo
from ._util import Bytes, _b, _held
from .recipes import Instance

if TYPE_CHECKING:
    from .aio import Client


class _Held:
    """What the lock-like recipes share: the grant, its fencing token and guard, and the async
    context manager that acquires on entry and releases on exit."""

    _native: Any

    async def acquire(self) -> Any:
        raise NotImplementedError

    async def release(self) -> None:
        raise NotImplementedError

    @property
    def grant(self) -> Optional[Grant]:
        return cast(Optional[Grant], self._native.grant)

    @property
    def fencing_token(self) -> int:
        return int(_held(self._native.grant).fencing_token)

    def guard(self) -> Any:
        """A comparison that holds only while this is held: add it to ``txn(compare=...)``."""
        return _held(self._native.grant).guard()

    async def __aenter__(self) -> Any:
        await self.acquire()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.release()


class Lock(_Held):
    """``async with session.lock(name) as lock:``; ``lock.guard()`` fences writes."""

    def __init__(self, session: "Session", name: str) -> None:
        self._native = _cairn.Mutex(session._native, name)
        self.name = name

    async def acquire(self, timeout: Optional[float] = None) -> Grant:
        return cast(Grant, await _await(self._native.lock_async(timeout), timeout))

    async def try_acquire(self) -> Optional[Grant]:
        """Takes the lock if free, else None (never waits)."""
        return cast(Optional[Grant], await _await(self._native.try_lock_async()))

    async def release(self) -> None:
        await _await(self._native.unlock_async())


class RWLock(_Held):
    """``async with session.rwlock(name).read():`` shares, ``.write()`` (or the lock itself)
    excludes; fair (FIFO)."""

    def __init__(self, session: "Session", name: str) -> None:
        self._native = _cairn.RWMutex(session._native, name)
        self.name = name

    async def acquire(self, write: bool = True, timeout: Optional[float] = None) -> Grant:
        return cast(Grant, await _await(self._native.lock_async(write, timeout), timeout))

    async def release(self) -> None:
        await _await(self._native.unlock_async())

    @contextlib.asynccontextmanager
    async def read(self, timeout: Optional[float] = None) -> AsyncIterator["RWLock"]:
        await self.acquire(False, timeout)
        try:
            yield self
        finally:
            await self.release()

    @contextlib.asynccontextmanager
    async def write(self, timeout: Optional[float] = None) -> AsyncIterator["RWLock"]:
        await self.acquire(True, timeout)
        try:
            yield self
        finally:
            await self.release()


class Semaphore(_Held):
    """``async with session.semaphore(name, n):`` takes one of n permits, in FIFO order."""

    def __init__(self, session: "Session", name: str, permits: int) -> None:
        self._native = _cairn.Semaphore(session._native, name, permits)
        self.name = name

    async def acquire(self, timeout: Optional[float] = None) -> Grant:
        return cast(Grant, await _await(self._native.acquire_async(timeout), timeout))

    async def release(self) -> None:
        await _await(self._native.release_async())


class MultiLock:
    """Several locks taken all or none, in a canonical order: ``async with
    session.multi_lock(names):``."""

    def __init__(self, session: "Session", names: Sequence[str]) -> None:
        self._native = _cairn.MultiLock(session._native, list(names))
        self.grants: List[Grant] = []

    async def acquire(self, timeout: Optional[float] = None) -> List[Grant]:
        self.grants = list(await _await(self._native.lock_async(timeout), timeout))
        return self.grants

    async def release(self) -> None:
        await _await(self._native.unlock_async())
        self.grants = []

    def guards(self) -> List[Any]:
        """One comparison per lock: add them all to a txn to fence it."""
        return list(self._native.guards())

    async def __aenter__(self) -> "MultiLock":
        await self.acquire()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.release()


class Barrier:
    """``await hold()`` raises the barrier, ``await release()`` lowers it, ``await wait()``
    waits while it is up."""

    def __init__(self, session: "Session", name: str) -> None:
        self._native = _cairn.Barrier(session._native, name)

    async def hold(self) -> None:
        await _await(self._native.hold_async())

    async def release(self) -> None:
        await _await(self._native.release_async())

    async def wait(self, timeout: Optional[float] = None) -> None:
        await _await(self._native.wait_async(timeout), timeout)


class DoubleBarrier:
    """``await enter()`` waits until ``count`` participants are in; ``await leave()`` until all
    are out. ``async with``: enter on entry, leave on exit."""

    def __init__(self, session: "Session", name: str, count: int) -> None:
        self._native = _cairn.DoubleBarrier(session._native, name, count)

    async def enter(self, timeout: Optional[float] = None) -> None:
        await _await(self._native.enter_async(timeout), timeout)

    async def leave(self, timeout: Optional[float] = None) -> None:
        await _await(self._native.leave_async(timeout), timeout)

    async def __aenter__(self) -> "DoubleBarrier":
        await self.enter()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.leave()


class Queue:
    """A FIFO (or priority) queue: ``await put(value)``, ``await get()`` waits for an item."""

    def __init__(self, client: "Client", name: str, priority: bool = False) -> None:
        self._native = _cairn.Queue(client._c, name)
        self.priority = priority

    async def put(self, value: Bytes, priority: int = 0) -> bytes:
        """Adds an item (lower ``priority`` numbers are taken first); returns its key."""
        if priority and not self.priority:
            raise ValueError("priority needs a priority_queue")
        return bytes(await _await(self._native.enqueue_async(_b(value, "value"), priority)))

    async def get(self, timeout: Optional[float] = None) -> bytes:
        """Takes the next item's value, waiting for one."""
        return bytes((await _await(self._native.dequeue_async(timeout), timeout)).value)

    async def get_nowait(self) -> Optional[bytes]:
        item = await _await(self._native.try_dequeue_async())
        return None if item is None else bytes(item.value)

    async def size(self) -> int:
        return int(await _await(self._native.size_async()))


class Latch:
    """A leader latch under an asyncio session: ``is_leader``, ``await wait(timeout)`` (the
    latch's own thread completes it: no thread per wait), ``await close()``."""

    def __init__(self, native: Any) -> None:
        self._native = native

    @property
    def is_leader(self) -> bool:
        return bool(self._native.is_leader)

    async def wait(self, timeout: Optional[float] = None) -> Grant:
        """The grant once this participant leads."""
        return cast(Grant, await _await(self._native.wait_async(timeout), timeout))

    async def close(self) -> None:
        """Leaves the election (joins the latch's thread: on the executor)."""
        await _offload(self._native.close)


class Counter:
    """An atomic counter: ``await c.add(1)``, ``get()``, ``compare_and_set(e, d)``, ``set(v)``;
    each a native future (no executor thread)."""

    def __init__(self, client: "Client", name: Bytes) -> None:
        self._native = _cairn.Counter(client._c, _b(name))

    async def get(self) -> int:
        return int(await _await(self._native.get_async()))

    async def add(self, delta: int = 1) -> int:
        """Adds ``delta``; returns the new value."""
        return int(await _await(self._native.add_async(delta)))

    async def compare_and_set(self, expected: int, desired: int) -> bool:
        return bool(await _await(self._native.compare_and_set_async(expected, desired)))

    async def set(self, value: int) -> None:
        await _await(self._native.set_async(value))


class Cache:
    """A prefix cache: ``get(key)``, ``list()``, ``revision`` and ``len()`` read the local copy
    (no I/O); ``await wait_for_revision(rev)`` is woken by the cache's watch (no thread)."""

    def __init__(self, client: "Client", prefix: Bytes) -> None:
        from .recipes import Cache as _Cache
        self._sync = _Cache(client._sync, prefix)
        self._native = self._sync._native

    async def get(self, key: Bytes) -> Optional[KeyValue]:
        return self._sync.get(key)

    async def list(self) -> List[KeyValue]:
        return self._sync.list()

    @property
    def revision(self) -> int:
        return self._sync.revision

    def __len__(self) -> int:
        return len(self._sync)

    @property
    def resyncs(self) -> int:
        return int(self._native.resyncs)

    async def add_listener(self, fn: Callable[[List[Event], int, bool], None]) -> int:
        """fn(events, revision, resync) on a client thread (a plain function)."""
        return self._sync.add_listener(fn)

    async def remove_listener(self, id: int) -> None:
        self._native.remove_listener(id)

    async def wait_for_revision(self, revision: int, timeout: Optional[float] = None) -> None:
        await _await(self._native.wait_for_revision_async(revision, timeout), timeout)


class Resolver:
    """A live view of a service's instances: ``pick()`` and ``instances()`` read the local copy
    (no I/O); ``await wait_for(n)`` is woken by the resolver's watch (no thread)."""

    def __init__(self, client: "Client", service: str, strategy: str = "round_robin") -> None:
        from .recipes import Resolver as _Resolver
        self._sync = _Resolver(client._sync, service, strategy)

    async def pick(self) -> Instance:
        return self._sync.pick()

    async def instances(self) -> List[Instance]:
        return self._sync.instances()

    async def mark_down(self, address: str, seconds: float) -> None:
        """Leaves ``address`` out of pick() for ``seconds``."""
        self._sync.mark_down(address, seconds)

    async def wait_for(self, count: int, timeout: Optional[float] = None) -> None:
        await _await(self._sync._native.wait_for_count_async(count, timeout), timeout)


class Observer:
    """``async for leader in election.observe():`` the leaders as they change (it survives
    reconnects). Woken by the loop's eventfd: no thread, no polling. ``close()`` ends it."""

    def __init__(self, election: "Election") -> None:
        self._event = asyncio.Event()
        self._waker = _waker()
        self._token = self._waker.register(self._event.set)
        try:
            self._native = election._native.observe(notifier=self._waker.notifier,
                                                    token=self._token)
        except BaseException:
            self._waker.unregister(self._token)
            raise
        self._closed = False

    def __aiter__(self) -> "Observer":
        return self

    async def __anext__(self) -> LeaderInfo:
        while not self._closed:
            leader = self._native.poll()
            if leader is None:
                self._event.clear()
                leader = self._native.poll()  # re-check: one may have come meanwhile
            if leader is not None:
                return leader
            await self._event.wait()
        raise StopAsyncIteration

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._waker.unregister(self._token)
            self._native.close()
            self._event.set()

    async def __aenter__(self) -> "Observer":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self.close()


class Election:
    """A leader election: ``await campaign(value)`` (no thread while it waits), ``proclaim``,
    ``resign``, ``leader``, and ``observe()`` (an async iterator)."""

    def __init__(self, session: "Session", name: str) -> None:
        self._native = _cairn.Election(session._native, name)
        self.name = name

    async def campaign(self, value: Bytes, timeout: Optional[float] = None) -> Grant:
        return cast(Grant, await _await(self._native.campaign_async(_b(value, "value"), timeout),
                                       timeout))

    async def proclaim(self, value: Bytes) -> None:
        await _await(self._native.proclaim_async(_b(value, "value")))

    async def resign(self) -> None:
        await _await(self._native.resign_async())

    async def leader(self) -> LeaderInfo:
        return cast(LeaderInfo, await _await(self._native.leader_async()))

    @property
    def leadership(self) -> Optional[Grant]:
        return self._native.leadership

    def observe(self) -> Observer:
        return Observer(self)


class Session:
    """``async with client.session(ttl) as session:``; the recipes hang off it."""

    def __init__(self, client: "Client", ttl: int) -> None:
        self.client = client
        self.ttl = ttl
        self._native: Any = None

    async def open(self) -> "Session":
        self._native = await _await(_cairn.Session.create_async(self.client._c, self.ttl))
        return self

    async def close(self) -> None:
        await _await(self._native.close_async())

    async def __aenter__(self) -> "Session":
        return await self.open()

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    @property
    def lease(self) -> int:
        return int(self._native.lease)

    @property
    def alive(self) -> bool:
        return bool(self._native.alive)

    def lock(self, name: str) -> Lock:
        return Lock(self, name)

    def election(self, name: str) -> Election:
        return Election(self, name)

    def rwlock(self, name: str) -> RWLock:
        return RWLock(self, name)

    def semaphore(self, name: str, n: int) -> Semaphore:
        return Semaphore(self, name, n)

    def multi_lock(self, names: Sequence[str]) -> MultiLock:
        return MultiLock(self, names)

    def barrier(self, name: str) -> Barrier:
        return Barrier(self, name)

    def double_barrier(self, name: str, n: int) -> DoubleBarrier:
        return DoubleBarrier(self, name, n)

    def queue(self, name: str) -> Queue:
        return Queue(self.client, name)

    def priority_queue(self, name: str) -> Queue:
        return Queue(self.client, name, priority=True)

    async def latch(self, name: str, value: Bytes = b"",
                    on_leader: Optional[Callable[[Grant], None]] = None,
                    on_not_leader: Optional[Callable[[], None]] = None) -> Any:
        """A leader latch (as ``cairn.Session.latch``): ``latch.is_leader``, ``await
        latch.wait(timeout)`` (no thread while it waits), ``await latch.close()``; the callbacks
        run on a client thread. Starting it makes no call (it starts the latch's thread)."""
        return Latch(_cairn.LeaderLatch(self._native, name, _b(value, "value"), on_leader,
                                        on_not_leader))

    async def selector(self, name: str, fn: Callable[[Grant, Any], None], value: Bytes = b"",
                       requeue: bool = True) -> Any:
        """A leader selector (as ``cairn.Session.selector``): ``fn(grant, lost)``, a plain
        function, runs on the selector's thread while this process leads; ``await close()``
        (it joins that thread: on the loop's default executor). Starting it makes no call."""
        return _Offloaded(_cairn.LeaderSelector(self._native, name, fn, _b(value, "value"),
                                                requeue))

    async def register(self, service: str, id: str, address: str,
                       metadata: Optional[Any] = None) -> None:
        """Registers an instance under this session (it goes when the session ends)."""
        if not id or "/" in id:
            raise ValueError("id must be non-empty and without '/'")
        await _await(_cairn.register_endpoint_async(
            self._native, service, id, address, "" if metadata is None else json.dumps(metadata)))
