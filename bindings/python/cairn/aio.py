"""asyncio forms of the cairn API: ``await client.put(...)``, ``async for ev in client.watch(...)``.

The same surface as the blocking API. KV, transactions, leases, watches, every recipe call
(waits, releases, tries, enqueues, elections' proclaim/resign/leader, sessions' open and close,
registrations), counters, the cache's wait, membership, maintenance and auth run on the client's
own threads, which complete asyncio futures without taking the GIL: they post to an eventfd the
loop reads (one ``_LoopWaker`` per loop), and the loop settles every completed future in one pass.
STM runs its function on the loop over those calls. No thread per call and no blocking of the
event loop. Cancelling the awaiting task cancels the call. What remains on the loop's default
executor (the snapshot into a file, and the closes that join a thread: the client's, a latch's,
a selector's) is listed in docs/python.md.
"""

from __future__ import annotations

import asyncio
from typing import Any, Awaitable, Callable, Dict, List, Optional, Sequence, Union, cast

from . import _cairn

from ._aio_core import _await, _offload, _waker
from ._aio_stm import run_stm
from ._aio_recipes import (Barrier, Cache, Counter, DoubleBarrier, Election, Latch, Lock,
                           MultiLock, Observer, Queue, Resolver, RWLock, Semaphore, Session)
from ._cairn import Event, GetResponse, KeyValue, TxnResponse
from ._util import Bytes, _b, _prefix_end
from .errors import LeaseNotFoundError
from .recipes import Stm

__all__ = ["Client", "Watch", "Session", "Lock", "RWLock", "Semaphore", "MultiLock", "Barrier",
           "DoubleBarrier", "Queue", "Election", "Observer", "Lease", "Latch", "Counter", "Cache",
           "Resolver", "ClusterAPI", "MaintenanceAPI", "AuthAPI"]


class Watch:
    """An async iterator of watch events; ``cancel()`` ends it."""

    def __init__(self, client: "Client", key: bytes, **kwargs: Any) -> None:
        self._event = asyncio.Event()
        self._pending: List[Event] = []
        self._waker = _waker()
        self._token = self._waker.register(self._event.set)
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


class ClusterAPI:
    """``await client.cluster.list()``, ``add(peer_urls, learner=False)``, ``remove(id)``,
    ``update(id, peer_urls)``, ``promote(id)``: native futures, as the blocking API returns."""

    def __init__(self, client: "Client") -> None:
        self._c = client._c

    async def list(self) -> List[Dict[str, Any]]:
        return list(await _await(_cairn.member_list(self._c)))

    async def add(self, peer_urls: Sequence[str], learner: bool = False) -> Dict[str, Any]:
        member, _ = await _await(_cairn.member_add(self._c, list(peer_urls), learner))
        return dict(member)

    async def remove(self, id: int) -> None:
        await _await(_cairn.member_remove(self._c, id))

    async def update(self, id: int, peer_urls: Sequence[str]) -> None:
        await _await(_cairn.member_update(self._c, id, list(peer_urls)))

    async def promote(self, id: int) -> None:
        await _await(_cairn.member_promote(self._c, id))


class MaintenanceAPI:
    """``await client.maintenance.status()``, ``defragment()``, ``hash_kv()``, ``alarms()``,
    ``disarm(member, alarm)``, ``move_leader(id)``: native futures; ``snapshot(path)`` streams
    into a file with the SDK's blocking call, on the loop's default executor."""

    def __init__(self, client: "Client") -> None:
        self._client = client
        self._c = client._c

    async def status(self, endpoint: str = "") -> Any:
        return await _await(self._c.status(endpoint))

    async def defragment(self, endpoint: str = "") -> None:
        await _await(_cairn.defragment(self._c, endpoint))

    async def hash_kv(self, endpoint: str = "", revision: int = 0) -> int:
        return int((await _await(_cairn.hash_kv(self._c, endpoint, revision)))[0])

    async def snapshot(self, path: str, endpoint: str = "", timeout: Optional[float] = None) -> int:
        return int(await _offload(self._client._sync.maintenance.snapshot, path, endpoint,
                                  timeout))

    async def alarms(self) -> List[Any]:
        return list(await _await(_cairn.alarms(self._c, 0)))

    async def disarm(self, member: int, alarm: int) -> None:
        await _await(_cairn.alarms(self._c, 2, member, alarm))

    async def move_leader(self, target: int) -> None:
        await _await(_cairn.move_leader(self._c, target))


class AuthAPI:
    """``await client.auth.add_user(name, password)``... as ``cairn.Client.auth``'s calls (and
    ``await client.auth.enabled``): native futures."""

    PERMISSIONS = {"read": 0, "write": 1, "readwrite": 2}

    def __init__(self, client: "Client") -> None:
        self._c = client._c

    async def enable(self) -> None:
        await _await(_cairn.auth_enable(self._c))

    async def disable(self) -> None:
        await _await(_cairn.auth_disable(self._c))

    @property
    def enabled(self) -> Awaitable[bool]:
        """``await client.auth.enabled``: whether auth is on."""
        return cast(Awaitable[bool], _await(_cairn.auth_status(self._c)))

    async def add_user(self, name: str, password: Optional[str] = None) -> None:
        await _await(_cairn.user_add(self._c, name, password))

    async def user_roles(self, name: str) -> List[str]:
        return list(await _await(_cairn.user_get(self._c, name)))

    async def users(self) -> List[str]:
        return list(await _await(_cairn.user_list(self._c)))

    async def delete_user(self, name: str) -> None:
        await _await(_cairn.user_delete(self._c, name))

    async def change_password(self, name: str, password: str) -> None:
        await _await(_cairn.user_change_password(self._c, name, password))

    async def grant_role(self, user: str, role: str) -> None:
        await _await(_cairn.user_grant_role(self._c, user, role))

    async def revoke_role(self, user: str, role: str) -> None:
        await _await(_cairn.user_revoke_role(self._c, user, role))

    async def add_role(self, name: str) -> None:
        await _await(_cairn.role_add(self._c, name))

    async def roles(self) -> List[str]:
        return list(await _await(_cairn.role_list(self._c)))

    async def role_permissions(self, name: str) -> List[Any]:
        return list(await _await(_cairn.role_get(self._c, name)))

    async def delete_role(self, name: str) -> None:
        await _await(_cairn.role_delete(self._c, name))

    async def grant_permission(self, role: str, perm: str, key: Bytes,
                               prefix: bool = False) -> None:
        if perm not in self.PERMISSIONS:
            raise ValueError("perm must be 'read', 'write' or 'readwrite'")
        k = _b(key)
        await _await(_cairn.role_grant_permission(self._c, role, self.PERMISSIONS[perm], k,
                                                  _prefix_end(k) if prefix else None))

    async def revoke_permission(self, role: str, key: Bytes, prefix: bool = False) -> None:
        k = _b(key)
        await _await(_cairn.role_revoke_permission(self._c, role, k,
                                                   _prefix_end(k) if prefix else None))


class Client:
    """The asyncio client: the same calls as ``cairn.Client``, awaitable."""

    def __init__(self, endpoints: Optional[Sequence[str]] = None, timeout: float = 5.0,
                 user: Optional[str] = None, password: Optional[str] = None,
                 ca_cert: Optional[str] = None, cert: Optional[str] = None,
                 key: Optional[str] = None, namespace: Optional[str] = None) -> None:
        from .client import Client as _Sync
        self._sync = _Sync(endpoints, timeout, user, password, ca_cert, cert, key, namespace)
        self._c = self._sync._c
        #: Membership (``await client.cluster.list()``...): native futures.
        self.cluster = ClusterAPI(self)
        #: ``await client.maintenance.status()``...: native futures (the snapshot: executor).
        self.maintenance = MaintenanceAPI(self)
        #: ``await client.auth.add_user(...)``...: native futures.
        self.auth = AuthAPI(self)

    async def close(self) -> None:
        """Closes the client: joins its threads, so on the loop's default executor."""
        await _offload(self._sync.close)

    @property
    def closed(self) -> bool:
        return self._sync.closed

    async def __aenter__(self) -> "Client":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    async def get(self, key: Bytes, serializable: bool = False) -> Optional[KeyValue]:
        kv: Optional[KeyValue] = await _waker().start(self._c.get_kv_async, key, serializable)
        return kv

    async def get_prefix(self, prefix: Bytes, keys_only: bool = False) -> List[KeyValue]:
        resp = await _await(self._c.get(_b(prefix), prefix=True, keys_only=keys_only))
        return list(resp.kvs)

    async def get_range(self, start: Bytes, end: Optional[Bytes] = None, limit: int = 0,
                        revision: int = 0, serializable: bool = False, keys_only: bool = False,
                        sort: Optional[str] = None) -> GetResponse:
        """As ``cairn.Client.get_range``."""
        order = {None: 0, "ascend": 1, "descend": 2}
        if sort not in order:
            raise ValueError("sort must be None, 'ascend' or 'descend'")
        return cast(GetResponse, await _await(
            self._c.get(_b(start), None if end is None else _b(end), limit=limit,
                        revision=revision, serializable=serializable, keys_only=keys_only,
                        sort_order=order[sort])))

    async def put(self, key: Bytes, value: Bytes, lease: Union[None, int, Lease] = None,
                  prev_kv: bool = False) -> Optional[KeyValue]:
        lease_id = lease.id if isinstance(lease, Lease) else (lease or 0)
        prev: Optional[KeyValue] = await _waker().start(self._c.put_kv_async, key, value,
                                                        lease_id, prev_kv)
        return prev

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
              prev_kv: bool = False, filters: Sequence[str] = ()) -> Watch:
        """An async iterator of events (as ``cairn.Client.watch``; ``filters`` may hold 'put'
        and/or 'delete')."""
        for f in filters:
            if f not in ("put", "delete"):
                raise ValueError("filters may hold 'put' and 'delete'")
        return Watch(self, _b(key), prefix=prefix, start_revision=start_revision or 0,
                     prev_kv=prev_kv, filter_put="put" in filters,
                     filter_delete="delete" in filters)

    def lease(self, ttl: int) -> Lease:
        return Lease(self, ttl)

    def session(self, ttl: int = 60) -> Session:
        return Session(self, ttl)

    def counter(self, name: Bytes) -> Counter:
        """An atomic counter: ``await c.add(1)``, ``await c.get()``, ``compare_and_set``, ``set``."""
        return Counter(self, name)

    def resolver(self, service: str, strategy: str = "round_robin") -> Resolver:
        """A live view of a service's instances: ``await r.pick()``, ``await r.instances()``,
        ``await r.wait_for(n)``."""
        return Resolver(self, service, strategy)

    def cache(self, prefix: Bytes) -> Cache:
        """A prefix cache: ``await c.get(key)``, ``await c.list()``, ``await
        c.wait_for_revision(rev)``; ``c.revision`` as the blocking one."""
        return Cache(self, prefix)

    async def stm(self, fn: Callable[[Stm], None], isolation: str = "serializable_snapshot",
                  max_attempts: int = 64) -> TxnResponse:
        """As ``cairn.Client.stm``; ``fn`` (a plain function) runs on the event loop, and again
        from the start after each first read of a key (the read is a native future), so it must
        have no side effects besides the ``stm`` (see ``cairn._aio_stm``)."""
        return await run_stm(self, fn, isolation, max_attempts)
