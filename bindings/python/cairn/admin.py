"""Administration: ``client.cluster``, ``client.maintenance`` and ``client.auth``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, List, Optional, Sequence

from . import _cairn
from ._util import Bytes, _b, _prefix_end

if TYPE_CHECKING:
    from .client import Client


class ClusterAPI:
    """Membership: ``client.cluster.list()``, ``add(peer_urls, learner=False)``,
    ``remove(id)``, ``update(id, peer_urls)``, ``promote(id)``. Members are dicts with id, name,
    peer_urls, client_urls and is_learner."""

    def __init__(self, client: "Client") -> None:
        self._c = client._c

    def list(self) -> List[dict]:  # type: ignore[type-arg]
        return list(_cairn.member_list(self._c).result())

    def add(self, peer_urls: Sequence[str], learner: bool = False) -> dict:  # type: ignore[type-arg]
        """Adds a member; returns it (its id is what the new member must start with)."""
        member, _ = _cairn.member_add(self._c, list(peer_urls), learner).result()
        return dict(member)

    def remove(self, id: int) -> None:
        _cairn.member_remove(self._c, id).result()

    def update(self, id: int, peer_urls: Sequence[str]) -> None:
        _cairn.member_update(self._c, id, list(peer_urls)).result()

    def promote(self, id: int) -> None:
        _cairn.member_promote(self._c, id).result()


class MaintenanceAPI:
    """``client.maintenance``: status, defragment, hash_kv, snapshot to a file, alarms."""

    def __init__(self, client: "Client") -> None:
        self._c = client._c

    def status(self, endpoint: str = "") -> Any:
        """The member's status (version, db_size, leader, raft_index, raft_term, is_learner)."""
        return self._c.status(endpoint).result()

    def defragment(self, endpoint: str = "") -> None:
        _cairn.defragment(self._c, endpoint).result()

    def hash_kv(self, endpoint: str = "", revision: int = 0) -> int:
        """The member's KV hash up to ``revision`` (0: latest)."""
        return int(_cairn.hash_kv(self._c, endpoint, revision).result()[0])

    def snapshot(self, path: str, endpoint: str = "", timeout: Optional[float] = None) -> int:
        """Streams a verified snapshot of the database into ``path``; returns its size."""
        return int(_cairn.snapshot(self._c, path, endpoint, timeout)[0])

    def alarms(self) -> List[Any]:
        """The raised alarms, as (member id, alarm) pairs (1: NOSPACE, 2: CORRUPT)."""
        return list(_cairn.alarms(self._c, 0).result())

    def disarm(self, member: int, alarm: int) -> None:
        _cairn.alarms(self._c, 2, member, alarm).result()

    def move_leader(self, target: int) -> None:
        _cairn.move_leader(self._c, target).result()


class AuthAPI:
    """``client.auth``: enable/disable, users and roles (etcd's auth API)."""

    PERMISSIONS = {"read": 0, "write": 1, "readwrite": 2}

    def __init__(self, client: "Client") -> None:
        self._c = client._c

    def enable(self) -> None:
        _cairn.auth_enable(self._c).result()

    def disable(self) -> None:
        _cairn.auth_disable(self._c).result()

    @property
    def enabled(self) -> bool:
        """Whether auth is on (the AuthStatus call: etcd 3.5+ and cairn)."""
        return bool(_cairn.auth_status(self._c).result())

    def add_user(self, name: str, password: Optional[str] = None) -> None:
        _cairn.user_add(self._c, name, password).result()

    def user_roles(self, name: str) -> List[str]:
        return list(_cairn.user_get(self._c, name).result())

    def users(self) -> List[str]:
        return list(_cairn.user_list(self._c).result())

    def delete_user(self, name: str) -> None:
        _cairn.user_delete(self._c, name).result()

    def change_password(self, name: str, password: str) -> None:
        _cairn.user_change_password(self._c, name, password).result()

    def grant_role(self, user: str, role: str) -> None:
        _cairn.user_grant_role(self._c, user, role).result()

    def revoke_role(self, user: str, role: str) -> None:
        _cairn.user_revoke_role(self._c, user, role).result()

    def add_role(self, name: str) -> None:
        _cairn.role_add(self._c, name).result()

    def roles(self) -> List[str]:
        return list(_cairn.role_list(self._c).result())

    def role_permissions(self, name: str) -> List[Any]:
        """(type, key, range_end) triples; type 0 read, 1 write, 2 readwrite."""
        return list(_cairn.role_get(self._c, name).result())

    def delete_role(self, name: str) -> None:
        _cairn.role_delete(self._c, name).result()

    def grant_permission(self, role: str, perm: str, key: Bytes, prefix: bool = False) -> None:
        if perm not in self.PERMISSIONS:
            raise ValueError("perm must be 'read', 'write' or 'readwrite'")
        k = _b(key)
        _cairn.role_grant_permission(self._c, role, self.PERMISSIONS[perm], k,
                                     _prefix_end(k) if prefix else None).result()

    def revoke_permission(self, role: str, key: Bytes, prefix: bool = False) -> None:
        k = _b(key)
        _cairn.role_revoke_permission(self._c, role, k,
                                      _prefix_end(k) if prefix else None).result()
