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

from . import _cairn  # noqa: F401
from ._cairn import ERRORS_BY_KIND, Event, GetResponse, Grant, KeyValue, LeaderInfo, TxnResponse
from ._util import Bytes, _b, _held, _prefix_end  # noqa: F401  (aio uses them)
from .admin import AuthAPI, ClusterAPI, MaintenanceAPI
from .client import Client
from .election import Election
from .errors import *  # noqa: F401,F403  (cairn.Error and one subclass per error kind)
from .errors import __all__ as _error_names
from .kv import CreateRevision, Delete, Get, LeaseOf, ModRevision, Put, Txn, Value, Version
from .lease import Lease
from .locks import Lock, MultiLock, RWLock, Semaphore
from .recipes import (Barrier, Cache, Counter, DoubleBarrier, Instance, Queue, Resolver, Session,
                      Stm)
from .watch import Watch

__all__ = [
    "Client", "KeyValue", "Event", "Grant", "LeaderInfo", "GetResponse", "TxnResponse",
    "ERRORS_BY_KIND", "Value", "Version", "CreateRevision", "ModRevision", "LeaseOf",
    "Put", "Get", "Delete", "Txn", "Lease", "Session", "Lock", "Election", "Watch",
    "RWLock", "Semaphore", "MultiLock", "Barrier", "DoubleBarrier", "Queue", "Counter",
    "Resolver", "Instance", "Cache", "Stm", "ClusterAPI", "MaintenanceAPI", "AuthAPI",
] + list(_error_names)

# The public classes and functions read as ``cairn.X`` (help(), repr, tracebacks), wherever
# their module is.
for _name in __all__:
    _obj = globals()[_name]
    if getattr(_obj, "__module__", "").startswith("cairn."):
        try:
            _obj.__module__ = "cairn"
        except (AttributeError, TypeError):  # a native type: keeps its own
            pass
del _name, _obj
