"""``cairn.aio.Client.stm``: etcd's STM run on the event loop (not public).

The transaction function is a plain function called on the loop, as the blocking form calls it
on its thread. Its reads cannot block the loop, so a read of a key not yet read in the attempt
stops it: ``stm.get`` raises ``_ReadPending``, the key is read with a native future, and the
function runs again from the start (it must be free of side effects anyway: a conflict reruns
it). Once a run reads nothing new, its writes are committed in one txn guarded as the isolation
level says (as the C++ ``RunStm``); a failed guard starts the next attempt. No thread, no
executor."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Tuple

from . import kv as _kv
from ._cairn import TxnResponse
from ._util import Bytes, _b
from .errors import UnknownError
from .recipes import Stm

if TYPE_CHECKING:
    from .aio import Client

_ISOLATION = ("serializable_snapshot", "serializable", "repeatable_read", "read_committed")


class _ReadPending(Exception):
    """Raised by a read of a key not read yet in this attempt: the function runs again once it
    is read (an exception the function catches changes nothing: the read is still made)."""


class _Read:
    __slots__ = ("exists", "value", "mod_revision", "read_revision")

    def __init__(self, exists: bool, value: bytes, mod_revision: int, read_revision: int) -> None:
        self.exists, self.value = exists, value
        self.mod_revision, self.read_revision = mod_revision, read_revision


class AioStm(Stm):
    """The ``stm`` passed to the function: ``get``, ``put``, ``delete``, ``rev`` as
    ``cairn.Stm``'s."""

    def __init__(self, isolation: str) -> None:
        super().__init__(None)
        self._snapshot_level = isolation in ("serializable_snapshot", "serializable")
        self._isolation = isolation
        self.reset()

    def reset(self) -> None:
        self._reads: Dict[bytes, _Read] = {}
        self._writes: Dict[bytes, Optional[bytes]] = {}  # None: a delete
        self._missed: List[bytes] = []
        self._snapshot = 0

    def _fetch(self, key: bytes) -> _Read:
        r = self._reads.get(key)
        if r is None:
            if key not in self._missed:
                self._missed.append(key)
            raise _ReadPending(key)
        return r

    def get(self, key: Bytes) -> Optional[bytes]:
        k = _b(key)
        if k in self._writes:
            return self._writes[k]
        r = self._fetch(k)
        return r.value if r.exists else None

    def rev(self, key: Bytes) -> int:
        r = self._fetch(_b(key))
        return r.mod_revision if r.exists else 0

    def put(self, key: Bytes, value: Bytes) -> None:
        self._writes[_b(key)] = _b(value, "value")

    def delete(self, key: Bytes) -> None:
        self._writes[_b(key)] = None

    def _read_revision(self) -> int:
        return self._snapshot if self._snapshot_level else 0

    def _store(self, key: bytes, resp: Any) -> None:
        if self._snapshot_level and self._snapshot == 0:
            self._snapshot = resp.header.revision
        read_rev = self._snapshot if self._snapshot_level else resp.header.revision
        if resp.kvs:
            kv = resp.kvs[0]
            self._reads[key] = _Read(True, bytes(kv.value), kv.mod_revision, read_rev)
        else:
            self._reads[key] = _Read(False, b"", 0, read_rev)

    def _commit(self) -> Tuple[List[Any], List[Any]]:
        compare: List[Any] = []
        if self._isolation != "read_committed":
            for k in sorted(self._reads):
                compare.append(_kv.ModRevision(k) < self._reads[k].read_revision + 1)
        if self._isolation == "serializable_snapshot" and self._snapshot > 0:
            for k in sorted(self._writes):
                if k not in self._reads:
                    compare.append(_kv.ModRevision(k) < self._snapshot + 1)
        ops: List[Any] = []
        for k in sorted(self._writes):
            v = self._writes[k]
            ops.append(_kv.Delete(k) if v is None else _kv.Put(k, v))
        return compare, ops


async def run_stm(client: "Client", fn: Callable[[Stm], None], isolation: str,
                  max_attempts: int) -> TxnResponse:
    if isolation not in _ISOLATION:
        raise ValueError(f"isolation must be one of {sorted(_ISOLATION)}")
    if max_attempts <= 0:
        raise ValueError("max_attempts must be > 0")
    stm = AioStm(isolation)
    for _ in range(max_attempts):
        stm.reset()
        while True:
            stm._writes = {}
            error: Optional[BaseException] = None
            try:
                fn(stm)
            except _ReadPending:
                pass
            except Exception as e:  # the function's own error ends the transaction
                error = e
            missed, stm._missed = stm._missed, []
            if not missed:
                break
            for key in missed:  # one after another: the first fixes the snapshot revision
                stm._store(key, await client.get_range(key, revision=stm._read_revision()))
        if error is not None:
            raise error
        compare, ops = stm._commit()
        resp = await client.txn(compare=compare, success=ops)
        if resp.succeeded:
            return resp
    aborted = UnknownError("stm: too many conflicting transactions (max_attempts)")
    aborted.kind, aborted.code = "unknown", 10  # as the blocking form's ABORTED
    raise aborted
