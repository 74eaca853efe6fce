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
import contextlib
import json
import time
import weakref
from typing import Any, Callable, Iterator, List, Optional, Sequence, Union, cast

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
    "RWLock", "Semaphore", "MultiLock", "Barrier", "DoubleBarrier", "Queue", "Counter",
    "Resolver", "Instance", "Cache", "Stm",
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
        return cast(Grant, _cairn.wait(self._native.lock_async, timeout))

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
        return cast(Grant, _cairn.wait(self._native.campaign_async, _b(value, "value"), timeout))

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

    def observe(self) -> Iterator[LeaderInfo]:
        """The leaders, as they change (an iterator; it survives reconnects)."""
        observer = self._native.observe()
        try:
            while True:
                leader = observer.next()
                if leader is not None:
                    yield leader
        finally:
            observer.close()


class RWLock:
    """A reader-writer lock: ``with rw.read():`` shares, ``with rw.write():`` (or ``with rw:``)
    excludes; fair (FIFO). ``fencing_token`` and ``guard()`` as for ``Lock``."""

    def __init__(self, session: "Session", name: str) -> None:
        self._native: Any = _cairn.RWMutex(session._native, name)
        self.name = name

    def acquire(self, write: bool = True, timeout: Optional[float] = None) -> Grant:
        return cast(Grant, _cairn.wait(self._native.lock_async, write, timeout))

    def release(self) -> None:
        self._native.unlock()

    @contextlib.contextmanager
    def read(self, timeout: Optional[float] = None) -> Iterator["RWLock"]:
        self.acquire(False, timeout)
        try:
            yield self
        finally:
            self.release()

    @contextlib.contextmanager
    def write(self, timeout: Optional[float] = None) -> Iterator["RWLock"]:
        self.acquire(True, timeout)
        try:
            yield self
        finally:
            self.release()

    @property
    def fencing_token(self) -> int:
        return int(_held(self._native.grant).fencing_token)

    def guard(self) -> Any:
        return _held(self._native.grant).guard()

    def __enter__(self) -> "RWLock":
        self.acquire(True)
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()


class Semaphore:
    """N permits, taken in FIFO order: ``with session.semaphore("pool", 3) as permit:``."""

    def __init__(self, session: "Session", name: str, permits: int) -> None:
        self._native: Any = _cairn.Semaphore(session._native, name, permits)
        self.name = name

    def acquire(self, timeout: Optional[float] = None) -> Grant:
        return cast(Grant, _cairn.wait(self._native.acquire_async, timeout))

    def release(self) -> None:
        self._native.release()

    @property
    def fencing_token(self) -> int:
        return int(_held(self._native.grant).fencing_token)

    def guard(self) -> Any:
        return _held(self._native.grant).guard()

    def __enter__(self) -> "Semaphore":
        self.acquire()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()


class MultiLock:
    """Several locks taken all or none, in a canonical order (no deadlock)."""

    def __init__(self, session: "Session", names: Sequence[str]) -> None:
        self._native: Any = _cairn.MultiLock(session._native, list(names))
        self.grants: List[Grant] = []

    def acquire(self, timeout: Optional[float] = None) -> List[Grant]:
        self.grants = list(_cairn.wait(self._native.lock_async, timeout))
        return self.grants

    def release(self) -> None:
        self._native.unlock()
        self.grants = []

    def guards(self) -> List[Any]:
        """One comparison per lock: add them all to a txn to fence it."""
        return list(self._native.guards())

    def __enter__(self) -> "MultiLock":
        self.acquire()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()


class Barrier:
    """``hold()`` raises the barrier, ``release()`` lowers it, ``wait()`` blocks while it is up."""

    def __init__(self, session: "Session", name: str) -> None:
        self._native: Any = _cairn.Barrier(session._native, name)

    def hold(self) -> None:
        self._native.hold()

    def release(self) -> None:
        self._native.release()

    def wait(self, timeout: Optional[float] = None) -> None:
        _cairn.wait(self._native.wait_async, timeout)


class DoubleBarrier:
    """``enter()`` blocks until ``count`` participants are in; ``leave()`` until all are out.
    As a context manager: enter on entry, leave on exit."""

    def __init__(self, session: "Session", name: str, count: int) -> None:
        self._native: Any = _cairn.DoubleBarrier(session._native, name, count)

    def enter(self, timeout: Optional[float] = None) -> None:
        _cairn.wait(self._native.enter_async, timeout)

    def leave(self, timeout: Optional[float] = None) -> None:
        _cairn.wait(self._native.leave_async, timeout)

    def __enter__(self) -> "DoubleBarrier":
        self.enter()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.leave()


class Queue:
    """A FIFO (or priority) queue: each item is taken exactly once, however many consumers.
    ``get()`` blocks on a watch (no polling) until an item comes."""

    def __init__(self, client: "Client", name: str, priority: bool = False) -> None:
        self._native: Any = _cairn.Queue(client._c, name)
        self.priority = priority

    def put(self, value: Bytes, priority: int = 0) -> bytes:
        """Adds an item (lower ``priority`` numbers are taken first); returns its key."""
        if priority and not self.priority:
            raise ValueError("priority needs a priority_queue")
        return bytes(self._native.enqueue(_b(value, "value"), priority))

    def get(self, timeout: Optional[float] = None) -> bytes:
        """Takes the next item's value, waiting for one."""
        return bytes(_cairn.wait(self._native.dequeue_async, timeout).value)

    def get_nowait(self) -> Optional[bytes]:
        item = self._native.try_dequeue()
        return None if item is None else bytes(item.value)

    def __len__(self) -> int:
        return int(self._native.size())


class Counter:
    """An atomic integer stored in one key."""

    def __init__(self, client: "Client", name: Bytes) -> None:
        self._native: Any = _cairn.Counter(client._c, _b(name))

    def get(self) -> int:
        return int(self._native.get())

    def add(self, delta: int = 1) -> int:
        """Adds ``delta``; returns the new value."""
        return int(self._native.add(delta))

    def compare_and_set(self, expected: int, desired: int) -> bool:
        return bool(self._native.compare_and_set(expected, desired))

    def set(self, value: int) -> None:
        self._native.set(value)


class Resolver:
    """A live, watch-backed view of a service's instances, with a picker."""

    _STRATEGIES = {"round_robin": 0, "random": 1, "sticky": 2}

    def __init__(self, client: "Client", service: str, strategy: str = "round_robin") -> None:
        if strategy not in self._STRATEGIES:
            raise ValueError("strategy must be 'round_robin', 'random' or 'sticky'")
        self._native: Any = _cairn.Resolver(client._c, service, self._STRATEGIES[strategy])

    def instances(self) -> List["Instance"]:
        return [Instance.decode(e) for e in self._native.endpoints()]

    def pick(self) -> "Instance":
        """One instance by the strategy; raises UnavailableError-like errors when none is up."""
        return Instance.decode(self._native.pick())

    def mark_down(self, address: str, seconds: float) -> None:
        """Leaves ``address`` out of pick() for ``seconds`` (e.g. after calls to it failed)."""
        self._native.mark_down(address, seconds)

    def wait_for(self, count: int, timeout: Optional[float] = None) -> None:
        """Waits until at least ``count`` instances are registered."""
        self._native.wait_for_count(count, timeout)


class Instance:
    """A registered service instance."""

    def __init__(self, id: str, address: str, metadata: Any) -> None:
        self.id, self.address, self.metadata = id, address, metadata

    @staticmethod
    def decode(endpoint: Any) -> "Instance":
        try:
            meta = json.loads(endpoint.metadata) if endpoint.metadata else None
        except ValueError:  # registered by another tool with plain-text metadata
            meta = endpoint.metadata
        return Instance(endpoint.id or endpoint.address, endpoint.address, meta)

    def __repr__(self) -> str:
        return f"Instance(id={self.id!r}, address={self.address!r}, metadata={self.metadata!r})"


class Cache:
    """A local copy of a prefix kept current by one watch; resyncs after a compaction.
    ``add_listener(fn)``: fn(events, revision, resync) on a client thread."""

    def __init__(self, client: "Client", prefix: Bytes) -> None:
        self._native: Any = _cairn.PrefixCache(client._c, _b(prefix))

    def get(self, key: Bytes) -> Optional[KeyValue]:
        return cast(Optional[KeyValue], self._native.get(_b(key)))

    def list(self) -> List[KeyValue]:
        return list(self._native.list())

    @property
    def revision(self) -> int:
        return int(self._native.revision)

    def __len__(self) -> int:
        return len(self._native)

    def add_listener(self, fn: Callable[[List[Event], int, bool], None]) -> int:
        return int(self._native.add_listener(fn))

    def wait_for_revision(self, revision: int, timeout: Optional[float] = None) -> None:
        self._native.wait_for_revision(revision, timeout)


class Stm:
    """The reads and writes of one STM attempt (see ``Client.stm``)."""

    def __init__(self, native: Any) -> None:
        self._native = native

    def get(self, key: Bytes) -> Optional[bytes]:
        v = self._native.get(_b(key))
        return None if v is None else bytes(v)

    def put(self, key: Bytes, value: Bytes) -> None:
        self._native.put(_b(key), _b(value, "value"))

    def delete(self, key: Bytes) -> None:
        self._native.delete(_b(key))

    def rev(self, key: Bytes) -> int:
        return int(self._native.rev(_b(key)))


def _held(grant: Optional[Grant]) -> Grant:
    if grant is None:
        raise Error("not held")
    return grant


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

    def latch(self, name: str, value: Bytes = b"",
              on_leader: Optional[Callable[[Grant], None]] = None,
              on_not_leader: Optional[Callable[[], None]] = None) -> Any:
        """A leader latch: ``is_leader``, ``wait()``, callbacks on gaining and losing leadership;
        ``close()`` leaves the election."""
        return _cairn.LeaderLatch(self._native, name, _b(value, "value"), on_leader,
                                  on_not_leader)

    def selector(self, name: str, fn: Callable[[Grant, Any], None], value: Bytes = b"",
                 requeue: bool = True) -> Any:
        """Runs ``fn(grant, lost)`` on a selector thread while this process leads; ``lost`` is
        set (``lost.is_set()``, ``lost.wait(timeout)``) when leadership or the session is lost,
        and fn should return then. With ``requeue`` it campaigns again afterwards."""
        return _cairn.LeaderSelector(self._native, name, fn, _b(value, "value"), requeue)

    def register(self, service: str, id: str, address: str,
                 metadata: Optional[Any] = None) -> None:
        """Registers an instance under this session (it goes when the session ends)."""
        if not id or "/" in id:
            raise ValueError("id must be non-empty and without '/'")
        _cairn.register_endpoint(self._native, service, id, address,
                                 "" if metadata is None else json.dumps(metadata))

    def close(self) -> None:
        self._native.close()

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class ClusterAPI:
    """Membership: ``client.cluster.list()``, ``add(peer_urls, learner=False)``,
    ``remove(id)``, ``update(id, peer_urls)``, ``promote(id)``. Members are dicts with id, name,
    peer_urls, client_urls and is_learner."""

    def __init__(self, client: "Client") -> None:
        self._c = client._c

    def list(self) -> List[dict]:  # type: ignore[type-arg]
        return list(_cairn.member_list(self._c))

    def add(self, peer_urls: Sequence[str], learner: bool = False) -> dict:  # type: ignore[type-arg]
        """Adds a member; returns it (its id is what the new member must start with)."""
        member, _ = _cairn.member_add(self._c, list(peer_urls), learner)
        return dict(member)

    def remove(self, id: int) -> None:
        _cairn.member_remove(self._c, id)

    def update(self, id: int, peer_urls: Sequence[str]) -> None:
        _cairn.member_update(self._c, id, list(peer_urls))

    def promote(self, id: int) -> None:
        _cairn.member_promote(self._c, id)


class MaintenanceAPI:
    """``client.maintenance``: status, defragment, hash_kv, snapshot to a file, alarms."""

    def __init__(self, client: "Client") -> None:
        self._c = client._c

    def status(self, endpoint: str = "") -> Any:
        """The member's status (version, db_size, leader, raft_index, raft_term, is_learner)."""
        return self._c.status(endpoint).result()

    def defragment(self, endpoint: str = "") -> None:
        _cairn.defragment(self._c, endpoint)

    def hash_kv(self, endpoint: str = "", revision: int = 0) -> int:
        """The member's KV hash up to ``revision`` (0: latest)."""
        return int(_cairn.hash_kv(self._c, endpoint, revision)[0])

    def snapshot(self, path: str, endpoint: str = "", timeout: Optional[float] = None) -> int:
        """Streams a verified snapshot of the database into ``path``; returns its size."""
        return int(_cairn.snapshot(self._c, path, endpoint, timeout)[0])

    def alarms(self) -> List[Any]:
        """The raised alarms, as (member id, alarm) pairs (1: NOSPACE, 2: CORRUPT)."""
        return list(_cairn.alarms(self._c, 0))

    def disarm(self, member: int, alarm: int) -> None:
        _cairn.alarms(self._c, 2, member, alarm)

    def move_leader(self, target: int) -> None:
        _cairn.move_leader(self._c, target)


class AuthAPI:
    """``client.auth``: enable/disable, users and roles (etcd's auth API)."""

    PERMISSIONS = {"read": 0, "write": 1, "readwrite": 2}

    def __init__(self, client: "Client") -> None:
        self._c = client._c

    def enable(self) -> None:
        _cairn.auth_enable(self._c)

    def disable(self) -> None:
        _cairn.auth_disable(self._c)

    @property
    def enabled(self) -> bool:
        """Whether auth is on (the AuthStatus call: etcd 3.5+ and cairn)."""
        return bool(_cairn.auth_status(self._c))

    def add_user(self, name: str, password: Optional[str] = None) -> None:
        _cairn.user_add(self._c, name, password)

    def user_roles(self, name: str) -> List[str]:
        return list(_cairn.user_get(self._c, name))

    def users(self) -> List[str]:
        return list(_cairn.user_list(self._c))

    def delete_user(self, name: str) -> None:
        _cairn.user_delete(self._c, name)

    def change_password(self, name: str, password: str) -> None:
        _cairn.user_change_password(self._c, name, password)

    def grant_role(self, user: str, role: str) -> None:
        _cairn.user_grant_role(self._c, user, role)

    def revoke_role(self, user: str, role: str) -> None:
        _cairn.user_revoke_role(self._c, user, role)

    def add_role(self, name: str) -> None:
        _cairn.role_add(self._c, name)

    def roles(self) -> List[str]:
        return list(_cairn.role_list(self._c))

    def role_permissions(self, name: str) -> List[Any]:
        """(type, key, range_end) triples; type 0 read, 1 write, 2 readwrite."""
        return list(_cairn.role_get(self._c, name))

    def delete_role(self, name: str) -> None:
        _cairn.role_delete(self._c, name)

    def grant_permission(self, role: str, perm: str, key: Bytes, prefix: bool = False) -> None:
        if perm not in self.PERMISSIONS:
            raise ValueError("perm must be 'read', 'write' or 'readwrite'")
        k = _b(key)
        _cairn.role_grant_permission(self._c, role, self.PERMISSIONS[perm], k,
                                     _prefix_end(k) if prefix else None)

    def revoke_permission(self, role: str, key: Bytes, prefix: bool = False) -> None:
        k = _b(key)
        _cairn.role_revoke_permission(self._c, role, k, _prefix_end(k) if prefix else None)


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
        self.cluster = ClusterAPI(self)
        self.maintenance = MaintenanceAPI(self)
        self.auth = AuthAPI(self)
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

    def counter(self, name: Bytes) -> Counter:
        return Counter(self, name)

    def resolver(self, service: str, strategy: str = "round_robin") -> Resolver:
        return Resolver(self, service, strategy)

    def cache(self, prefix: Bytes) -> Cache:
        return Cache(self, prefix)

    _ISOLATION = {"serializable_snapshot": 0, "serializable": 1, "repeatable_read": 2,
                  "read_committed": 3}

    def stm(self, fn: Callable[[Stm], None], isolation: str = "serializable_snapshot",
            max_attempts: int = 64) -> TxnResponse:
        """etcd's software transactional memory: runs ``fn(stm)`` (reads with ``stm.get``,
        writes with ``stm.put``/``stm.delete``) and commits atomically, retrying ``fn`` on a
        conflict. ``isolation``: 'serializable_snapshot', 'serializable', 'repeatable_read' or
        'read_committed'. An exception raised by fn aborts (nothing is written) and propagates."""
        if isolation not in self._ISOLATION:
            raise ValueError(f"isolation must be one of {sorted(self._ISOLATION)}")
        return _cairn.run_stm(self._c, lambda native: fn(Stm(native)),
                              self._ISOLATION[isolation], max_attempts)
