"""asyncio forms of the cairn API: ``await client.put(...)``, ``async for ev in client.watch(...)``.

The calls run on the client's own threads, which complete asyncio futures without taking the
GIL: they post to an eventfd the loop reads (one ``_LoopWaker`` per loop), and the loop settles
every completed future in one pass. No thread per call and no blocking of the event loop.
Cancelling the awaiting task cancels the call. Lock waits and campaigns hold no thread either.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from typing import Any, AsyncIterator, Callable, Dict, List, Optional, Sequence, Tuple, Union, cast

from . import _cairn
from . import _b, Event, Grant, KeyValue, LeaseNotFoundError, TxnResponse  # type: ignore[attr-defined]
from . import CanceledError, DeadlineExceededError, _held  # type: ignore[attr-defined]

Bytes = Union[str, bytes]

__all__ = ["Client", "Watch", "Session", "Lock", "RWLock", "Semaphore", "Election", "Lease"]


class _LoopWaker:
    """Completes this loop's futures from the client's threads without taking the GIL there.

    A native call posts a token to a ``_cairn.Notifier``; its eventfd wakes the loop, whose
    reader drains every posted token and runs the callbacks registered for them, in one pass.
    One per event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.notifier = _cairn.Notifier()
        self._callbacks: Dict[int, Tuple[Callable[[], None], bool]] = {}
        self._next = 0
        loop.add_reader(self.notifier.fileno(), self._drain)

    def register(self, callback: Callable[[], None], once: bool = True) -> int:
        """A token whose posting runs ``callback`` on the loop (once, unless ``once`` is False;
        then until ``unregister``)."""
        self._next += 1
        self._callbacks[self._next] = (callback, once)
        return self._next

    def unregister(self, token: int) -> None:
        self._callbacks.pop(token, None)

    def _drain(self) -> None:
        for token in self.notifier.drain():
            entry = self._callbacks.get(token)
            if entry is None:
                continue
            if entry[1]:
                del self._callbacks[token]
            entry[0]()


_wakers: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopWaker]" = (
    weakref.WeakKeyDictionary())


def _waker() -> _LoopWaker:
    loop = asyncio.get_running_loop()
    w = _wakers.get(loop)
    if w is None:
        w = _wakers[loop] = _LoopWaker(loop)
    return w


def _settle(fut: "asyncio.Future[Any]", native: Any, expired: bool = False) -> None:
    if fut.done():
        return
    try:
        fut.set_result(native.result(0))
    except CanceledError as e:
        if expired:  # our own timeout canceled it
            fut.set_exception(DeadlineExceededError("deadline exceeded while waiting"))
        else:
            fut.set_exception(e)
    except BaseException as e:  # the call's error, delivered to the awaiting task
        fut.set_exception(e)


def _await(native: Any, timeout: Optional[float] = None) -> "asyncio.Future[Any]":
    """An asyncio future completed by a native Future (no thread, no GIL on the client side).
    ``timeout`` cancels the call after that many seconds (DeadlineExceededError)."""
    loop = asyncio.get_running_loop()
    fut = loop.create_future()
    expired = [False]
    timer: Optional[asyncio.TimerHandle] = None
    if timeout is not None:
        def expire() -> None:
            expired[0] = True
            native.cancel()
        timer = loop.call_later(max(0.0, timeout), expire)

    def on_done() -> None:
        if timer is not None:
            timer.cancel()
        _settle(fut, native, expired[0])

    waker = _waker()
    token = waker.register(on_done)
    fut.add_done_callback(lambda f: native.cancel() if f.cancelled() else None)
    native.notify_to(waker.notifier, token)
    return fut


class Watch:
    """An async iterator of watch events; ``cancel()`` ends it."""

    def __init__(self, client: "Client", key: bytes, **kwargs: Any) -> None:
        self._event = asyncio.Event()
        self._pending: List[Event] = []
        self._waker = _waker()
        self._token = self._waker.register(self._event.set, once=False)
        try:
            self._native = client._c.watch(key, notifier=self._waker.notifier, token=self._token,
                                           **kwargs)
        except BaseException:
            self._waker.unregister(self._token)
            raise

    def __aiter__(self) -> "Watch":
        return self

    async def __anext__(self) -> Event:
        while not self._pending:
            try:
                resp = self._native.poll()
                if resp is None:
                    self._event.clear()
                    resp = self._native.poll()  # re-check: a response may have come meanwhile
            except StopIteration:
                raise StopAsyncIteration
            if resp is None:
                await self._event.wait()
                continue
            self._pending.extend(resp.events)
        return self._pending.pop(0)

    def cancel(self) -> None:
        self._native.cancel()
        self._waker.unregister(self._token)
        self._event.set()

    async def __aenter__(self) -> "Watch":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self.cancel()


class Lease:
    """``async with client.lease(ttl) as lease:`` grants, keeps alive, and revokes on exit."""

    def __init__(self, client: "Client", ttl: int) -> None:
        self.client = client
        self.ttl = ttl
        self.id = 0
        self._keeper: Any = None

    async def grant(self) -> "Lease":
        resp = await _await(self.client._c.lease_grant(self.ttl))
        self.id, self.ttl = resp.id, resp.ttl
        self._keeper = self.client._c.lease_keep_alive(self.id)
        return self

    async def revoke(self) -> None:
        if self._keeper is not None:
            self._keeper.stop()
        try:
            await _await(self.client._c.lease_revoke(self.id))
        except LeaseNotFoundError:
            pass

    async def __aenter__(self) -> "Lease":
        return await self.grant()

    async def __aexit__(self, *exc: Any) -> None:
        await self.revoke()


class Lock:
    """``async with session.lock(name) as lock:``; ``lock.guard()`` fences writes."""

    def __init__(self, session: "Session", name: str) -> None:
        self._native = _cairn.Mutex(session._native, name)

    async def acquire(self, timeout: Optional[float] = None) -> Grant:
        return cast(Grant, await _await(self._native.lock_async(timeout), timeout))

    async def release(self) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self._native.unlock)

    def _grant(self) -> Grant:
        g = self._native.grant
        if g is None:
            raise _cairn.Error("lock not held")
        return g

    @property
    def fencing_token(self) -> int:
        return int(self._grant().fencing_token)

    def guard(self) -> Any:
        return self._grant().guard()

    async def __aenter__(self) -> "Lock":
        await self.acquire()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.release()


class RWLock:
    """``async with session.rwlock(name).read():`` shares, ``.write()`` (or the lock itself)
    excludes; fair (FIFO). Each wait runs on a native thread (the recipe's blocking form)."""

    def __init__(self, session: "Session", name: str) -> None:
        self._native = _cairn.RWMutex(session._native, name)

    async def acquire(self, write: bool = True, timeout: Optional[float] = None) -> Grant:
        return cast(Grant, await _await(self._native.lock_async(write, timeout), timeout))

    async def release(self) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self._native.unlock)

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

    @property
    def fencing_token(self) -> int:
        return int(_held(self._native.grant).fencing_token)

    def guard(self) -> Any:
        return _held(self._native.grant).guard()

    async def __aenter__(self) -> "RWLock":
        await self.acquire(True)
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.release()


class Semaphore:
    """``async with session.semaphore(name, n):`` takes one of n permits, in FIFO order. The
    wait runs on a native thread (the recipe's blocking form)."""

    def __init__(self, session: "Session", name: str, permits: int) -> None:
        self._native = _cairn.Semaphore(session._native, name, permits)

    async def acquire(self, timeout: Optional[float] = None) -> Grant:
        return cast(Grant, await _await(self._native.acquire_async(timeout), timeout))

    async def release(self) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self._native.release)

    @property
    def fencing_token(self) -> int:
        return int(_held(self._native.grant).fencing_token)

    def guard(self) -> Any:
        return _held(self._native.grant).guard()

    async def __aenter__(self) -> "Semaphore":
        await self.acquire()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.release()


class Election:
    def __init__(self, session: "Session", name: str) -> None:
        self._native = _cairn.Election(session._native, name)

    async def campaign(self, value: Bytes, timeout: Optional[float] = None) -> Grant:
        return cast(Grant, await _await(self._native.campaign_async(_b(value, "value"), timeout),
                                       timeout))

    async def resign(self) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self._native.resign)

    async def leader(self) -> Any:
        return await asyncio.get_running_loop().run_in_executor(None, self._native.leader)


class Session:
    """``async with client.session(ttl) as session:``."""

    def __init__(self, client: "Client", ttl: int) -> None:
        self.client = client
        self.ttl = ttl
        self._native: Any = None

    async def __aenter__(self) -> "Session":
        loop = asyncio.get_running_loop()
        self._native = await loop.run_in_executor(
            None, lambda: _cairn.Session.create(self.client._c, self.ttl))
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self._native.close)

    def lock(self, name: str) -> Lock:
        return Lock(self, name)

    def election(self, name: str) -> Election:
        return Election(self, name)

    def rwlock(self, name: str) -> RWLock:
        return RWLock(self, name)

    def semaphore(self, name: str, permits: int) -> Semaphore:
        return Semaphore(self, name, permits)


class Client:
    """The asyncio client: the same calls as ``cairn.Client``, awaitable."""

    def __init__(self, endpoints: Optional[Sequence[str]] = None, timeout: float = 5.0,
                 user: Optional[str] = None, password: Optional[str] = None,
                 ca_cert: Optional[str] = None, cert: Optional[str] = None,
                 key: Optional[str] = None, namespace: Optional[str] = None) -> None:
        from . import Client as _Sync
        self._sync = _Sync(endpoints, timeout, user, password, ca_cert, cert, key, namespace)
        self._c = self._sync._c

    async def close(self) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self._sync.close)

    async def __aenter__(self) -> "Client":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    async def get(self, key: Bytes, serializable: bool = False) -> Optional[KeyValue]:
        resp = await _await(self._c.get(_b(key), serializable=serializable))
        return resp.kvs[0] if resp.kvs else None

    async def get_prefix(self, prefix: Bytes, keys_only: bool = False) -> List[KeyValue]:
        resp = await _await(self._c.get(_b(prefix), prefix=True, keys_only=keys_only))
        return list(resp.kvs)

    async def put(self, key: Bytes, value: Bytes, lease: Union[None, int, Lease] = None,
                  prev_kv: bool = False) -> Optional[KeyValue]:
        lease_id = lease.id if isinstance(lease, Lease) else (lease or 0)
        resp = await _await(self._c.put(_b(key), _b(value, "value"), lease_id, prev_kv))
        return resp.prev_kv if prev_kv else None

    async def delete(self, key: Bytes, prefix: bool = False) -> int:
        resp = await _await(self._c.delete(_b(key), prefix=prefix))
        return int(resp.deleted)

    async def txn(self, compare: Sequence[Any] = (), success: Sequence[Any] = (),
                  failure: Sequence[Any] = ()) -> TxnResponse:
        return cast(TxnResponse,
                    await _await(self._c.commit(list(compare), list(success), list(failure))))

    async def compact(self, revision: int, physical: bool = False) -> None:
        await _await(self._c.compact(revision, physical))

    def watch(self, key: Bytes, prefix: bool = False, start_revision: Optional[int] = None,
              prev_kv: bool = False) -> Watch:
        return Watch(self, _b(key), prefix=prefix, start_revision=start_revision or 0,
                     prev_kv=prev_kv)

    def lease(self, ttl: int) -> Lease:
        return Lease(self, ttl)

    def session(self, ttl: int = 60) -> Session:
        return Session(self, ttl)
