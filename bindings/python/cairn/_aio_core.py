"""The machinery of ``cairn.aio`` (not public): completing asyncio futures from the client's
threads without the GIL, and running the few blocking calls left (a snapshot, closes that join a
thread) off the event loop."""

from __future__ import annotations

import asyncio
import functools
import weakref
from typing import Any, Callable, Dict, List, Optional, Tuple

from . import _cairn
from .errors import CanceledError, DeadlineExceededError


class _Timeout:
    """The timer of one call with a timeout: cancels the native call when it fires."""

    __slots__ = ("handle", "expired")

    def __init__(self, loop: asyncio.AbstractEventLoop, seconds: float, native: Any) -> None:
        self.expired = False
        self.handle = loop.call_later(max(0.0, seconds), self._fire, native)

    def _fire(self, native: Any) -> None:
        self.expired = True
        native.cancel()


class _Call(asyncio.Future[Any]):
    """The asyncio future of one native call: cancelling it (the awaiting task being cancelled)
    cancels the call. A subclass rather than a done callback per call: no closure and no extra
    loop callback for each call."""

    __slots__ = ("native",)
    native: Any

    def cancel(self, msg: Any = None) -> bool:
        if not super().cancel(msg=msg):
            return False
        self.native.cancel()
        return True


class _LoopWaker:
    """Completes this loop's futures from the client's threads without taking the GIL there.

    A completed native call is queued on a ``_cairn.Notifier``, whose eventfd wakes the loop;
    the loop's reader makes one native call, ``notifier.settle()``, which sets the asyncio
    future of every call queued since the last wake-up (in C++: no Python frame, no dict entry
    per call) and returns the tokens posted by watches and by calls with a timeout, whose
    callbacks and futures are then handled here. One per event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.notifier = _cairn.Notifier()
        # One-shot: token -> (asyncio future, native future, its timeout or None).
        self._calls: Dict[int, Tuple["asyncio.Future[Any]", Any, Optional[_Timeout]]] = {}
        self._callbacks: Dict[int, Callable[[], None]] = {}  # until unregistered
        self._next = 0
        loop.add_reader(self.notifier.fileno(), self._drain)

    def track(self, fut: "asyncio.Future[Any]", native: Any, timeout: Optional[_Timeout]) -> None:
        """Settles ``fut`` from ``native`` on the loop once ``native`` completes."""
        if timeout is None:
            native.settle_to(self.notifier, fut)
            return
        self._next += 1
        token = self._next
        self._calls[token] = (fut, native, timeout)
        native.notify_to(self.notifier, token)

    def start(self, fn: Callable[..., Any], *args: Any) -> "asyncio.Future[Any]":
        """Starts ``fn(*args, notifier, future)``, a native call whose completion the notifier's
        settle() sets on ``future`` (``get_kv_async``...), and returns that future: one native
        call to start and register."""
        fut = _Call(loop=self.loop)
        fut.native = fn(*args, self.notifier, fut)
        return fut

    def register(self, callback: Callable[[], None]) -> int:
        """A token whose every posting runs ``callback`` on the loop, until ``unregister``."""
        self._next += 1
        self._callbacks[self._next] = callback
        return self._next

    def unregister(self, token: int) -> None:
        self._callbacks.pop(token, None)

    def _drain(self) -> None:
        calls = self._calls
        for token in self.notifier.settle():
            call = calls.pop(token, None)
            if call is not None:
                fut, native, timeout = call
                if timeout is not None:
                    timeout.handle.cancel()
                if not fut.done():
                    _settle(fut, native, timeout is not None and timeout.expired)
                continue
            callback = self._callbacks.get(token)
            if callback is not None:
                callback()


_wakers: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopWaker]" = (
    weakref.WeakKeyDictionary())
_last: List[_LoopWaker] = []  # the last one used: most programs run one loop


def _waker() -> _LoopWaker:
    loop = asyncio.get_running_loop()
    if _last and _last[0].loop is loop:
        return _last[0]
    w = _wakers.get(loop)
    if w is None:
        w = _wakers[loop] = _LoopWaker(loop)
    _last[:] = [w]
    return w


def _settle(fut: "asyncio.Future[Any]", native: Any, expired: bool = False) -> None:
    try:
        fut.set_result(native.result(0))
    except CanceledError as e:
        if expired:  # our own timeout canceled it
            fut.set_exception(DeadlineExceededError("deadline exceeded while waiting"))
        else:
            fut.set_exception(e)
    except BaseException as e:  # the call's error, delivered to the awaiting task
        fut.set_exception(e)


def _await(native: Any, timeout: Optional[float] = None) -> "asyncio.Future[Any]":
    """An asyncio future completed by a native Future (no thread, no GIL on the client side).
    ``timeout`` cancels the call after that many seconds (DeadlineExceededError). Cancelling
    the returned future cancels the call."""
    w = _waker()
    fut = _Call(loop=w.loop)
    fut.native = native
    w.track(fut, native, None if timeout is None else _Timeout(w.loop, timeout, native))
    return fut


async def _offload(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Runs a blocking call (it releases the GIL) on the loop's default executor: a pool of a
    few threads shared by every call, not a thread per call. Only for what cannot be a native
    future: the snapshot streamed into a file, and the closes that join a thread (the client's,
    a latch's, a selector's)."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(None, functools.partial(fn, *args, **kwargs))


class _Offloaded:
    """The methods of a blocking cairn object, awaitable: ``await proxy.method(...)`` runs
    ``method`` through ``_offload``. Other attributes are read as they are."""

    def __init__(self, target: Any) -> None:
        self._target = target

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._target, name)
        if not callable(attr):
            return attr

        async def call(*args: Any, **kwargs: Any) -> Any:
            return await _offload(attr, *args, **kwargs)
        call.__name__ = name
        call.__doc__ = getattr(attr, "__doc__", None)
        return call

    def __repr__(self) -> str:
        return f"<awaitable {self._target!r}>"
