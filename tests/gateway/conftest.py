"""Fixtures shared by the gateway tests (pytest loads this file for every test module here)."""

from __future__ import annotations

from typing import Dict, Iterator

import pytest

from gateway_servers import Server


@pytest.fixture(scope="module")
def servers() -> Iterator[Dict[str, Server]]:
    """A fresh etcd and a fresh cairn for the module, stopped at its end."""
    started: Dict[str, Server] = {}
    try:
        for kind in ("etcd", "cairn"):
            started[kind] = Server(kind)
        yield started
    finally:
        for s in started.values():
            s.close()
