"""Helpers shared by the cairn modules (not public)."""

from __future__ import annotations

from typing import Optional, Union

from ._cairn import Error, Grant

Bytes = Union[str, bytes]


def _prefix_end(prefix: bytes) -> bytes:
    b = bytearray(prefix)
    while b:
        if b[-1] < 0xFF:
            b[-1] += 1
            return bytes(b)
        b.pop()
    return b"\0"


def _b(x: Bytes, what: str = "key") -> bytes:
    if isinstance(x, bytes):
        return x
    if isinstance(x, str):
        return x.encode()
    raise TypeError(f"{what} must be str or bytes, not {type(x).__name__}")


def _held(grant: Optional[Grant]) -> Grant:
    if grant is None:
        raise Error("not held")
    return grant
