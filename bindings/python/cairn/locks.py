"""The lock recipes: ``Lock``, ``RWLock``, ``Semaphore`` and ``MultiLock``, taken under a
``Session``. Every wait releases the GIL; Ctrl-C or a timeout give up and remove the waiting key."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any, Iterator, List, Optional, Sequence, cast

from . import _cairn
from ._cairn import Error, Grant
from ._util import _held

if TYPE_CHECKING:
    from .recipes import Session


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
