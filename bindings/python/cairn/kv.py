"""Transaction builders: comparisons (``cairn.Value(k) == v``...) and operations
(``cairn.Put``, ``cairn.Get``, ``cairn.Delete``, nested ``cairn.Txn``)."""

from __future__ import annotations

from typing import Any, Optional, Sequence

from . import _cairn
from ._util import Bytes, _b, _prefix_end

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
