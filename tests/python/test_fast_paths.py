"""The short paths of get and put (native get_kv/put_kv, blocking; get_kv_async/put_kv_async
settling a _Call, asyncio, started inline or by the loop notifier's starter thread):
interrupted and cancelled against a paused member, whose calls would otherwise wait for their
60 s deadline."""

import asyncio
import os
import signal
import threading

import pytest

import cairn
import cairn.aio
from cairn._aio_core import _Call, _waker


def _interrupt_soon() -> threading.Timer:
    """Ctrl-C for this process in a moment (Python raises KeyboardInterrupt in the main thread
    when the wait next runs the signal handlers)."""
    t = threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGINT))
    t.start()
    return t


def test_blocking_get_put_interrupted_and_aio_cancelled(cairn_server) -> None:
    ep = cairn_server.endpoint
    c = cairn.Client([ep], timeout=60)
    assert c.put("k", "v") is None
    assert c.put("k", b"w", prev_kv=True).value == b"v"
    assert c.get("k").value == b"w"

    async def aio_checks(a: cairn.aio.Client) -> None:
        # A started call's future cancels its native call: the native result is CANCELLED
        # at once, not the deadline.
        fut = _waker().start(a._c.get_kv_async, "k", False)
        assert isinstance(fut, _Call)
        await asyncio.sleep(0)
        assert fut.cancel()
        with pytest.raises(cairn.CanceledError):
            fut.native.result(30)
        # The same through a task awaiting a.put: cancelling the task cancels the call.
        task = asyncio.ensure_future(a.put("k", "x"))
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        # Calls started while others are in flight are started by the notifier's starter
        # thread; cancelling them, started or still queued there, cancels them as well.
        futs = [_waker().start(a._c.get_kv_async, "k", False) for _ in range(20)]
        await asyncio.sleep(0)
        for f in futs:
            assert f.cancel()
        for f in futs:
            with pytest.raises(cairn.CanceledError):
                f.native.result(30)

    async def run() -> None:
        async with cairn.aio.Client([ep], timeout=60) as a:
            assert (await a.put("k", "y", prev_kv=True)).value == b"w"
            assert (await a.get("k")).value == b"y"
            cairn_server.proc.send_signal(signal.SIGSTOP)
            try:
                await aio_checks(a)
            finally:
                cairn_server.proc.send_signal(signal.SIGCONT)
            # Many concurrent calls (most started by the starter thread) each get their own
            # result.
            await asyncio.gather(*(a.put(f"many/{i}", str(i)) for i in range(200)))
            got = await asyncio.gather(*(a.get(f"many/{i}") for i in range(200)))
            assert [kv.value for kv in got] == [str(i).encode() for i in range(200)]

    asyncio.run(run())

    cairn_server.proc.send_signal(signal.SIGSTOP)
    try:
        for call in (lambda: c.get("k"), lambda: c.put("k", "z")):
            timer = _interrupt_soon()
            with pytest.raises(KeyboardInterrupt):
                call()
            timer.join()
    finally:
        cairn_server.proc.send_signal(signal.SIGCONT)
    assert c.get("k").value in (b"y", b"z")  # the interrupted put may or may not have landed
    c.close()
    with pytest.raises(cairn.CanceledError, match="client closed"):
        c.get("k")
    with cairn.Client([ep]) as c2:
        with pytest.raises(TypeError, match="key must be str or bytes, not int"):
            c2.get(1)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="value must be str or bytes, not NoneType"):
            c2.put("k", None)  # type: ignore[arg-type]
