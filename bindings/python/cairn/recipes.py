"""The session and the recipes hanging off it or off the client: barriers, queues, counters,
service discovery, the prefix cache and STM's transaction handle."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Callable, List, Optional, Sequence, cast

from . import _cairn
from ._cairn import Event, Grant, KeyValue
from ._util import Bytes, _b
from .election import Election
from .locks import Lock, MultiLock, RWLock, Semaphore

if TYPE_CHECKING:
    from .client import Client


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
        """Waits until at least ``count`` instances are registered (no thread held; Ctrl-C
        interrupts it)."""
        _cairn.wait(self._native.wait_for_count_async, count, timeout)


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
