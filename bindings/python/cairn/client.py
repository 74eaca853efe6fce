"""``cairn.Client``: KV, transactions, watches, leases, and the entry points of the recipes and
the administration APIs."""

from __future__ import annotations

import atexit
import weakref
from typing import Any, Callable, List, Optional, Sequence, Union, cast

from . import _cairn
from ._cairn import Event, GetResponse, KeyValue, TxnResponse
from ._util import Bytes, _b
from .admin import AuthAPI, ClusterAPI, MaintenanceAPI
from .lease import Lease
from .recipes import Cache, Counter, Resolver, Session, Stm
from .watch import Watch

# Every open client, closed at interpreter exit before Python stops taking callbacks.
_open_clients: "weakref.WeakSet[Client]" = weakref.WeakSet()


@atexit.register
def _close_all() -> None:
    for client in list(_open_clients):
        client.close()


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
        return self._c.get_kv(key, serializable)

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
        return self._c.put_kv(key, value, lease_id, prev_kv)

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
