"""Leases: ``client.lease(ttl)`` grants one and keeps it alive until revoked."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import LeaseNotFoundError

if TYPE_CHECKING:
    from .client import Client


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
        except LeaseNotFoundError:
            pass

    def __enter__(self) -> "Lease":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.revoke()
