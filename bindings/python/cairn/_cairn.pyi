# Type stubs of the native extension cairn._cairn (bindings/python/src).
from typing import Any, Callable, Dict, List, Optional, Sequence, Union

_Bytes = Union[str, bytes]

class Error(Exception):
    kind: str
    code: int

ERRORS_BY_KIND: Dict[str, type]

class Future:
    def result(self, timeout: Optional[float] = ...) -> Any: ...
    def done(self) -> bool: ...
    def cancel(self) -> None: ...
    def add_done_callback(self, fn: Callable[[], None]) -> None: ...

class ResponseHeader:
    cluster_id: int
    member_id: int
    revision: int
    raft_term: int

class KeyValue:
    key: bytes
    value: bytes
    create_revision: int
    mod_revision: int
    version: int
    lease: int

class GetResponse:
    header: ResponseHeader
    kvs: List[KeyValue]
    more: bool
    count: int

class PutResponse:
    header: ResponseHeader
    prev_kv: Optional[KeyValue]

class DeleteResponse:
    header: ResponseHeader
    deleted: int
    prev_kvs: List[KeyValue]

class OpResponse:
    kind: int
    get: GetResponse
    put: PutResponse
    delete: DeleteResponse
    txn: Optional["TxnResponse"]

class TxnResponse:
    header: ResponseHeader
    succeeded: bool
    responses: List[OpResponse]

class Event:
    type: str
    kv: KeyValue
    prev_kv: Optional[KeyValue]

class WatchResponse:
    header: ResponseHeader
    events: List[Event]
    created: bool
    progress_notify: bool

class LeaseGrantResponse:
    header: ResponseHeader
    id: int
    ttl: int

class LeaseTimeToLiveResponse:
    header: ResponseHeader
    id: int
    ttl: int
    granted_ttl: int
    keys: List[bytes]

class StatusResponse:
    header: ResponseHeader
    version: str
    db_size: int
    leader: int
    raft_index: int
    raft_term: int
    is_learner: bool

class Compare:
    def __init__(self, target: int, result: int, key: _Bytes, number: int = ...,
                 value: Optional[_Bytes] = ..., range_end: Optional[_Bytes] = ...) -> None: ...

class Op: ...

def op_get(key: _Bytes, range_end: Optional[_Bytes] = ..., prefix: bool = ..., limit: int = ...,
           revision: int = ..., keys_only: bool = ..., count_only: bool = ...) -> Op: ...
def op_put(key: _Bytes, value: _Bytes, lease: int = ..., prev_kv: bool = ...) -> Op: ...
def op_delete(key: _Bytes, range_end: Optional[_Bytes] = ..., prefix: bool = ...,
              prev_kv: bool = ...) -> Op: ...
def op_txn(compares: Sequence[Compare], success: Sequence[Op], failure: Sequence[Op]) -> Op: ...

class KeepAlive:
    lost: bool
    ttl: int
    id: int
    def stop(self) -> None: ...

class Watch:
    next_revision: int
    def next(self, timeout: Optional[float] = ...) -> Optional[WatchResponse]: ...
    def poll(self) -> Optional[WatchResponse]: ...
    def cancel(self) -> None: ...

class Client:
    closed: bool
    def __init__(self, endpoints: List[str], timeout: float = ..., dial_timeout: float = ...,
                 user: Optional[str] = ..., password: Optional[str] = ...,
                 ca_cert: Optional[str] = ..., cert: Optional[str] = ..., key: Optional[str] = ...,
                 namespace: Optional[str] = ...) -> None: ...
    def close(self) -> None: ...
    def get(self, key: _Bytes, range_end: Optional[_Bytes] = ..., prefix: bool = ...,
            from_key: bool = ..., limit: int = ..., revision: int = ..., sort_order: int = ...,
            sort_target: int = ..., serializable: bool = ..., keys_only: bool = ...,
            count_only: bool = ..., timeout: Optional[float] = ...) -> Future: ...
    def put(self, key: _Bytes, value: _Bytes, lease: int = ..., prev_kv: bool = ...,
            timeout: Optional[float] = ...) -> Future: ...
    def delete(self, key: _Bytes, range_end: Optional[_Bytes] = ..., prefix: bool = ...,
               from_key: bool = ..., prev_kv: bool = ..., timeout: Optional[float] = ...) -> Future: ...
    def commit(self, compares: Sequence[Compare], success: Sequence[Op], failure: Sequence[Op],
               timeout: Optional[float] = ...) -> Future: ...
    def compact(self, revision: int, physical: bool = ..., timeout: Optional[float] = ...) -> Future: ...
    def lease_grant(self, ttl: int, id: int = ..., timeout: Optional[float] = ...) -> Future: ...
    def lease_revoke(self, id: int, timeout: Optional[float] = ...) -> Future: ...
    def lease_time_to_live(self, id: int, keys: bool = ..., timeout: Optional[float] = ...) -> Future: ...
    def lease_keep_alive(self, id: int) -> KeepAlive: ...
    def status(self, endpoint: str = ..., timeout: Optional[float] = ...) -> Future: ...
    def watch(self, key: _Bytes, range_end: Optional[_Bytes] = ..., prefix: bool = ...,
              from_key: bool = ..., start_revision: int = ..., prev_kv: bool = ...,
              filter_put: bool = ..., filter_delete: bool = ..., progress_notify: bool = ...,
              notify: Optional[Callable[[], None]] = ...,
              on_response: Optional[Callable[[WatchResponse], None]] = ...) -> Watch: ...

class Grant:
    key: bytes
    fencing_token: int
    lease: int
    def guard(self) -> Compare: ...

class LeaderInfo:
    key: bytes
    value: bytes
    fencing_token: int
    mod_revision: int
    lease: int

class Session:
    lease: int
    ttl: int
    alive: bool
    @staticmethod
    def create(client: Client, ttl: int = ..., lease: int = ...,
               timeout: Optional[float] = ...) -> "Session": ...
    def close(self) -> None: ...

class Mutex:
    grant: Optional[Grant]
    def __init__(self, session: Session, name: str) -> None: ...
    def lock_async(self, timeout: Optional[float] = ...) -> Future: ...
    def try_lock(self, timeout: Optional[float] = ...) -> Optional[Grant]: ...
    def unlock(self, timeout: Optional[float] = ...) -> None: ...

class Election:
    leadership: Optional[Grant]
    def __init__(self, session: Session, name: str) -> None: ...
    def campaign_async(self, value: _Bytes, timeout: Optional[float] = ...) -> Future: ...
    def proclaim(self, value: _Bytes, timeout: Optional[float] = ...) -> None: ...
    def resign(self, timeout: Optional[float] = ...) -> None: ...
    def leader(self, timeout: Optional[float] = ...) -> LeaderInfo: ...
