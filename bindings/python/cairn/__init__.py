"""Cairn: a Python client for etcd v3 clusters (etcd 3.4+ and cairn), with coordination recipes.

    import cairn

    with cairn.Client(["127.0.0.1:2379"]) as client:
        client.put("greeting", "hello")
        print(client.get("greeting").value)          # b'hello'
        with client.session(ttl=10) as session:
            with session.lock("jobs") as lock:
                client.txn(compare=[lock.guard()], success=[cairn.Put("jobs/owner", "me")])

Keys and values accept ``str`` (UTF-8) or ``bytes`` and come back as ``bytes``. Every call that
waits releases the GIL; Ctrl-C interrupts a blocked wait. Errors are ``cairn.Error`` subclasses,
one per error kind (``cairn.LeaseNotFoundError``, ``cairn.CompactedError``...), carrying etcd's
message. ``cairn.aio`` has the same surface for asyncio. See docs/python.md.
"""

from __future__ import annotations

import atexit
import time
import weakref
from typing import Any, Callable, List, Optional, Sequence, Union, cast

from . import _cairn
from ._cairn import (  # noqa: F401  (re-exported)
    ERRORS_BY_KIND,
    Error,
    Event,
    GetResponse,
    Grant,
    KeyValue,
    LeaderInfo,
    TxnResponse,
)

# One exception class per error kind of the C++ SDK, all derived from cairn.Error.
for _cls in ERRORS_BY_KIND.values():
    globals()[_cls.__name__] = _cls
del _cls

Bytes = Union[str, bytes]

__all__ = [
    "Client", "Error", "KeyValue", "Event", "Grant", "LeaderInfo",
    "Value", "Version", "CreateRevision", "ModRevision", "LeaseOf",
    "Put", "Get", "Delete", "Txn", "Lease", "Session", "Lock", "Election", "Watch",
] + [c.__name__ for c in ERRORS_BY_KIND.values()]

# Every open client, closed at interpreter exit before Python stops taking callbacks.
_open_clients: "weakref.WeakSet[Client]" = weakref.WeakSet()


@atexit.register
def _close_all() -> None:
    for client in list(_open_clients):
        client.close()


def _prefix_end(prefix: bytes) -> bytes:
    b = bytearray(prefix)
    while b:
        if b[-1] < 0xFF:
            b[-1] += 1
            return bytes(b)
        b.pop()
    return b"\0"


def _b(x: Bytes, what: str = "key") -> bytes:
    if isinstance(x, bytes):
        return x
    if isinstance(x, str):
        return x.encode()
    raise TypeError(f"{what} must be str or bytes, not {type(x).__name__}")


# ---- transactions -------------------------------------------------------------------------------

_TARGETS = {"version": 0, "create": 1, "mod": 2, "value": 3, "lease": 4}
_RESULTS = {"==": 0, ">": 1, "<": 2, "!=": 3}


class _Target:
    """The left side of a transaction comparison: ``cairn.Value(k) == b"v"``."""

    _target = "version"

    def __init__(self, key: Bytes, prefix: bool = False) -> None:
        self.key = _b(key)
        self.range_end = _prefix_end(self.key) if prefix else None

    def _cmp(self, op: str, other: Any) -> _cairn.Compare:
        if self._target == "value":
            return _cairn.Compare(_TARGETS["value"], _RESULTS[op], self.key, 0,
                                  _b(other, "value"), self.range_end)
        if isinstance(other, bool) or not isinstance(other, int):
            raise TypeError(f"{type(self).__name__} compares with an int, not "
                            f"{type(other).__name__}")
        return _cairn.Compare(_TARGETS[self._target], _RESULTS[op], self.key, other, None,
                              self.range_end)

    def __eq__(self, other: Any) -> _cairn.Compare:  # type: ignore[override]
        return self._cmp("==", other)

    def __ne__(self, other: Any) -> _cairn.Compare:  # type: ignore[override]
        return self._cmp("!=", other)

    def __lt__(self, other: Any) -> _cairn.Compare:
        return self._cmp("<", other)

    def __gt__(self, other: Any) -> _cairn.Compare:
        return self._cmp(">", other)

    __hash__ = None  # type: ignore[assignment]


class Value(_Target):
    """Compares a key's value."""
    _target = "value"


class Version(_Target):
    """Compares a key's version (0: the key does not exist)."""
    _target = "version"


class CreateRevision(_Target):
    """Compares a key's create revision (a lock's fencing token)."""
    _target = "create"


class ModRevision(_Target):
    """Compares a key's last modification revision."""
    _target = "mod"


class LeaseOf(_Target):
    """Compares the lease a key is attached to."""
    _target = "lease"


def Put(key: Bytes, value: Bytes, lease: Optional[int] = None, prev_kv: bool = False) -> Any:
    """A put inside a transaction."""
    return _cairn.op_put(_b(key), _b(value, "value"), lease or 0, prev_kv)


def Get(key: Bytes, prefix: bool = False, range_end: Optional[Bytes] = None,
        limit: int = 0, revision: int = 0, keys_only: bool = False) -> Any:
    """A read inside a transaction."""
    return _cairn.op_get(_b(key), None if range_end is None else _b(range_end), prefix, limit,
                         revision, keys_only)


def Delete(key: Bytes, prefix: bool = False, range_end: Optional[Bytes] = None,
           prev_kv: bool = False) -> Any:
    """A delete inside a transaction."""
    return _cairn.op_delete(_b(key), None if range_end is None else _b(range_end), prefix,
                            prev_kv)


def Txn(compare: Sequence[Any] = (), success: Sequence[Any] = (),
        failure: Sequence[Any] = ()) -> Any:
    """A transaction nested inside another one."""
    return _cairn.op_txn(list(compare), list(success), list(failure))


# ---- watches ------------------------------------------------------------------------------------

class Watch:
    """An iterator of watch events (``cairn.Event``). It resumes after reconnects with no gap and
    no duplicate; it raises ``cairn.CompactedError`` when its start revision was compacted.
    ``cancel()`` ends it (iteration then stops)."""

    def __init__(self, native: Any) -> None:
        self._native = native
        self._pending: List[Event] = []

    def __iter__(self) -> "Watch":
        return self

    def __next__(self) -> Event:
        while not self._pending:
            resp = self._native.next()
            if resp is not None:
                self._pending.extend(resp.events)
        return self._pending.pop(0)

    def get(self, timeout: Optional[float] = None) -> Optional[Event]:
        """The next event, or None when none arrives within ``timeout`` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._pending:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            resp = self._native.next(left)
            if resp is None:
                return None
            self._pending.extend(resp.events)
        return self._pending.pop(0)

    def cancel(self) -> None:
        self._native.cancel()

    def __enter__(self) -> "Watch":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.cancel()


# ---- leases and recipes -------------------------------------------------------------------------

class Lease:
    """A granted lease kept alive by the client; revoked when the ``with`` block exits."""

    def __init__(self, client: "Client", ttl: int) -> None:
        resp = client._c.lease_grant(ttl).result()
        self.client = client
        self.id: int = resp.id
        self.ttl: int = resp.ttl
        self._keeper = client._c.lease_keep_alive(self.id)

    @property
    def lost(self) -> bool:
        """True once the lease expired or could not be renewed in time."""
        return bool(self._keeper.lost)

    def time_to_live(self) -> int:
        """Seconds the server says the lease has left (-1: gone)."""
        return int(self.client._c.lease_time_to_live(self.id).result().ttl)

    def revoke(self) -> None:
        self._keeper.stop()
        try:
            self.client._c.lease_revoke(self.id).result()
        except LeaseNotFoundError:  # type: ignore[name-defined]  # noqa: F821
            pass

    def __enter__(self) -> "Lease":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.revoke()


class Lock:
    """A distributed mutex (etcd's layout: ``etcdctl lock`` and the server's v3lock exclude it).
    ``with session.lock(name) as lock:`` holds it for the block; ``lock.fencing_token`` and
    ``lock.guard()`` make writes that commit only while the lock is still held."""

    def __init__(self, session: "Session", name: str) -> None:
        self._native: _cairn.Mutex = _cairn.Mutex(session._native, name)
        self.name = name

    def acquire(self, timeout: Optional[float] = None) -> Grant:
        """Waits for the lock (Ctrl-C or ``timeout`` give up and remove our key)."""
        return cast(Grant, self._native.lock_async(timeout).result())

    def try_acquire(self) -> Optional[Grant]:
        """Takes the lock if free, else None (never waits)."""
        return self._native.try_lock()

    def release(self) -> None:
        self._native.unlock()

    @property
    def grant(self) -> Optional[Grant]:
        return self._native.grant

    @property
    def fencing_token(self) -> int:
        g = self._native.grant
        if g is None:
            raise Error("lock not held")
        return int(g.fencing_token)

    def guard(self) -> Any:
        """A comparison that holds only while this lock is held: add it to ``txn(compare=...)``."""
        g = self._native.grant
        if g is None:
            raise Error("lock not held")
        return g.guard()

    def __enter__(self) -> "Lock":
        self.acquire()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()


class Election:
    """A leader election (etcd's layout: ``etcdctl elect`` campaigns in the same election)."""

    def __init__(self, session: "Session", name: str) -> None:
        self._native: _cairn.Election = _cairn.Election(session._native, name)
        self.name = name

    def campaign(self, value: Bytes, timeout: Optional[float] = None) -> Grant:
        """Blocks until this process leads; returns the leadership (with its fencing token)."""
        return cast(Grant, self._native.campaign_async(_b(value, "value"), timeout).result())

    def proclaim(self, value: Bytes) -> None:
        self._native.proclaim(_b(value, "value"))

    def resign(self) -> None:
        self._native.resign()

    def leader(self) -> LeaderInfo:
        """The current leader; raises NoLeaderError-like errors when there is none."""
        return self._native.leader()

    @property
    def leadership(self) -> Optional[Grant]:
        return self._native.leadership


class Session:
    """A lease kept alive for the recipes; every lock or leadership taken under it ends with it.
    ``close()`` (or leaving the ``with`` block) revokes the lease."""

    def __init__(self, client: "Client", ttl: int = 60, lease: Optional[int] = None) -> None:
        self.client = client
        self._native: _cairn.Session = _cairn.Session.create(client._c, ttl, lease or 0)

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

    def close(self) -> None:
        self._native.close()

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


# ---- the client ---------------------------------------------------------------------------------

class Client:
    """A client of an etcd v3 cluster (etcd or cairn). Thread-safe: share one between threads.

    ``endpoints`` are ``host:port`` (or ``http(s)://host:port``); ``timeout`` is the default call
    deadline in seconds; ``user``/``password`` authenticate; ``ca_cert``/``cert``/``key`` enable
    TLS (mutual with cert and key); ``namespace`` prefixes every key transparently."""

    def __init__(self, endpoints: Optional[Sequence[str]] = None, timeout: float = 5.0,
                 user: Optional[str] = None, password: Optional[str] = None,
                 ca_cert: Optional[str] = None, cert: Optional[str] = None,
                 key: Optional[str] = None, namespace: Optional[str] = None) -> None:
        if endpoints is None:
            endpoints = ["127.0.0.1:2379"]
        if isinstance(endpoints, (str, bytes)):
            raise TypeError("endpoints must be a list of 'host:port' strings")
        self._c = _cairn.Client(list(endpoints), timeout, timeout, user, password, ca_cert, cert,
                                key, namespace)
        _open_clients.add(self)

    # -- lifecycle
    def close(self) -> None:
        """Closes the client: watches end, keepalives stop, later calls raise CanceledError."""
        self._c.close()

    @property
    def closed(self) -> bool:
        return bool(self._c.closed)

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- KV
    def get(self, key: Bytes, serializable: bool = False) -> Optional[KeyValue]:
        """The key's current KeyValue, or None."""
        kvs = self._c.get(_b(key), serializable=serializable).result().kvs
        return kvs[0] if kvs else None

    def get_prefix(self, prefix: Bytes, keys_only: bool = False) -> List[KeyValue]:
        """Every key starting with ``prefix``, in key order."""
        return list(self._c.get(_b(prefix), prefix=True, keys_only=keys_only).result().kvs)

    def get_range(self, start: Bytes, end: Optional[Bytes] = None, limit: int = 0,
                  revision: int = 0, serializable: bool = False, keys_only: bool = False,
                  sort: Optional[str] = None) -> GetResponse:
        """Keys in [start, end) (``end=None``: just ``start``); ``sort`` is 'ascend' or
        'descend' by key. Returns the response (``kvs``, ``more``, ``count``, ``header``)."""
        order = {None: 0, "ascend": 1, "descend": 2}
        if sort not in order:
            raise ValueError("sort must be None, 'ascend' or 'descend'")
        return cast(GetResponse,
                    self._c.get(_b(start), None if end is None else _b(end), limit=limit,
                                revision=revision, serializable=serializable,
                                keys_only=keys_only, sort_order=order[sort]).result())

    def put(self, key: Bytes, value: Bytes, lease: Union[None, int, Lease] = None,
            prev_kv: bool = False) -> Optional[KeyValue]:
        """Writes the key; returns the previous KeyValue when ``prev_kv`` (else None)."""
        lease_id = lease.id if isinstance(lease, Lease) else (lease or 0)
        resp = self._c.put(_b(key), _b(value, "value"), lease_id, prev_kv).result()
        return resp.prev_kv if prev_kv else None

    def delete(self, key: Bytes, prefix: bool = False) -> int:
        """Deletes the key (or every key under the prefix); returns how many were deleted."""
        return int(self._c.delete(_b(key), prefix=prefix).result().deleted)

    def compact(self, revision: int, physical: bool = False) -> None:
        self._c.compact(revision, physical).result()

    def txn(self, compare: Sequence[Any] = (), success: Sequence[Any] = (),
            failure: Sequence[Any] = ()) -> TxnResponse:
        """Runs ``success`` if every comparison holds, else ``failure``, atomically."""
        return cast(TxnResponse,
                    self._c.commit(list(compare), list(success), list(failure)).result())

    # -- watches
    def watch(self, key: Bytes, prefix: bool = False, start_revision: Optional[int] = None,
              prev_kv: bool = False, filters: Sequence[str] = (),
              callback: Optional[Callable[[Event], None]] = None) -> Watch:
        """Watches a key (or a prefix). Returns an iterator of events. With ``callback``, each
        event is passed to it on a client thread instead. ``filters`` may hold 'put' and/or
        'delete' (events of those types are left out)."""
        for f in filters:
            if f not in ("put", "delete"):
                raise ValueError("filters may hold 'put' and 'delete'")
        on_response: Optional[Callable[[Any], None]] = None
        if callback is not None:
            user_callback = callback

            def deliver(resp: Any) -> None:
                for ev in resp.events:
                    user_callback(ev)
            on_response = deliver
        native = self._c.watch(_b(key), prefix=prefix, start_revision=start_revision or 0,
                               prev_kv=prev_kv, filter_put="put" in filters,
                               filter_delete="delete" in filters, on_response=on_response)
        return Watch(native)

    # -- leases and recipes
    def lease(self, ttl: int) -> Lease:
        """Grants a lease of ``ttl`` seconds and keeps it alive until revoked."""
        return Lease(self, ttl)

    def session(self, ttl: int = 60) -> Session:
        """A session (a kept-alive lease) for the recipes."""
        return Session(self, ttl)
