"""Watches: ``client.watch(key)`` returns a ``Watch``, an iterator of events."""

from __future__ import annotations

import time
from typing import Any, List, Optional

from ._cairn import Event


class Watch:
    """An iterator of watch events (``cairn.Event``). It resumes after reconnects with no gap and
    no duplicate; it raises ``cairn.CompactedError`` when its start revision was compacted.
    ``cancel()`` ends it (iteration then stops)."""

    def __init__(self, native: Any) -> None:
        self._native = native
        self._pending: List[Event] = []

    def __iter__(self) -> "Watch":
        return self

    def __next__(self) -> Event:
        while not self._pending:
            resp = self._native.next()
            if resp is not None:
                self._pending.extend(resp.events)
        return self._pending.pop(0)

    def get(self, timeout: Optional[float] = None) -> Optional[Event]:
        """The next event, or None when none arrives within ``timeout`` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._pending:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            resp = self._native.next(left)
            if resp is None:
                return None
            self._pending.extend(resp.events)
        return self._pending.pop(0)

    def cancel(self) -> None:
        self._native.cancel()

    def __enter__(self) -> "Watch":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.cancel()
