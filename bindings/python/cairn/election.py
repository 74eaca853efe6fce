"""Leader election: ``session.election(name)``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterator, Optional, cast

from . import _cairn
from ._cairn import Grant, LeaderInfo
from ._util import Bytes, _b

if TYPE_CHECKING:
    from .recipes import Session


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
