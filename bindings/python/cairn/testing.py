"""A test kit: real ``cairn`` members on ephemeral loopback ports, for your own tests.

    from cairn.testing import Cluster

    with Cluster(members=3) as cluster:
        client = cairn.Client(cluster.endpoints)
        ...
        cluster.kill(cluster.leader())      # SIGKILL; restart(i) brings it back on its data
        cluster.pause(0); cluster.resume(0) # SIGSTOP / SIGCONT

The ``cairn`` binary is found from the ``binary`` argument, else ``$CAIRN_BINARY``, else
``cairn`` on PATH. With pytest, ``pytest_plugins = ["cairn.testing"]`` gives the fixtures
``cairn_member`` (one member) and ``cairn_cluster`` (three members).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from typing import Iterator, List, Optional

__all__ = ["Cluster", "find_binary", "free_ports"]


def find_binary(binary: Optional[str] = None) -> str:
    """The cairn server binary to run; FileNotFoundError with what was tried."""
    for candidate in (binary, os.environ.get("CAIRN_BINARY"), shutil.which("cairn")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise FileNotFoundError("no cairn binary: pass binary=, set CAIRN_BINARY or put cairn on PATH")


def free_ports(n: int) -> List[int]:
    """`n` distinct loopback ports free right now (bound, then released)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _stopped(pid: int) -> bool:
    """Whether every thread of process `pid` is stopped (state T in /proc)."""
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:  # gone: nothing runs
        return True
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except OSError:  # that thread exited
            continue
        if state not in ("T", "t"):
            return False
    return True


class Cluster:
    """1 to 5 real cairn members in temporary data directories; cleaned up on ``close()``."""

    def __init__(self, members: int = 1, binary: Optional[str] = None,
                 ready_timeout: float = 30.0) -> None:
        if not 1 <= members <= 5:
            raise ValueError("members must be 1 to 5")
        self.binary = find_binary(binary)
        self.size = members
        self.ready_timeout = ready_timeout
        self.dir = tempfile.mkdtemp(prefix="cairn-testing-")
        self._procs: List[Optional["subprocess.Popen[bytes]"]] = [None] * members
        self._paused = [False] * members
        for attempt in range(3):  # a port taken between picking and binding: pick again
            ports = free_ports(2 * members)
            self.client_ports = ports[:members]
            self.peer_ports = ports[members:]
            try:
                for i in range(members):
                    self._start(i)
                self.wait_ready()
                return
            except Exception:
                self._stop_all()
                if attempt == 2:
                    shutil.rmtree(self.dir, ignore_errors=True)
                    raise
                shutil.rmtree(self.dir, ignore_errors=True)
                os.makedirs(self.dir)

    @property
    def endpoints(self) -> List[str]:
        return [f"127.0.0.1:{p}" for p in self.client_ports]

    def endpoint(self, i: int) -> str:
        return self.endpoints[i]

    def _name(self, i: int) -> str:
        return f"m{i}"

    def _start(self, i: int) -> None:
        initial = ",".join(f"{self._name(j)}=http://127.0.0.1:{self.peer_ports[j]}"
                           for j in range(self.size))
        args = [
            self.binary, "--name", self._name(i),
            "--data-dir", os.path.join(self.dir, self._name(i)),
            "--listen-client-urls", f"http://127.0.0.1:{self.client_ports[i]}",
            "--advertise-client-urls", f"http://127.0.0.1:{self.client_ports[i]}",
            "--listen-peer-urls", f"http://127.0.0.1:{self.peer_ports[i]}",
            "--initial-advertise-peer-urls", f"http://127.0.0.1:{self.peer_ports[i]}",
            "--initial-cluster", initial, "--initial-cluster-state", "new",
        ]
        log = open(os.path.join(self.dir, f"{self._name(i)}.log"), "ab")
        self._procs[i] = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT,
                                          start_new_session=True)
        log.close()
        self._paused[i] = False

    def leader(self, timeout: Optional[float] = None) -> int:
        """The index of the member every answering member agrees leads (waits for one)."""
        deadline = time.monotonic() + (timeout or self.ready_timeout)
        while True:
            views = {}
            ids = {}
            for i in range(self.size):
                if self._procs[i] is None or self._paused[i]:
                    continue
                from . import _cairn
                try:
                    c = _cairn.Client([self.endpoint(i)], 1.0, 1.0, None, None, None, None,
                                      None, None)
                    st = c.status(self.endpoint(i), 1.0).result()
                    c.close()
                except Exception:
                    continue
                views[i] = int(st.leader)
                ids[int(st.header.member_id)] = i
            leaders = set(views.values())
            if len(leaders) == 1:
                (lid,) = leaders
                if lid in ids:
                    return ids[lid]
            if time.monotonic() >= deadline:
                raise TimeoutError(f"no agreed leader; views: {views}")
            time.sleep(0.05)  # poll interval of a bounded wait for a condition

    def wait_ready(self) -> None:
        """Waits until the running members agree on a leader."""
        for i, p in enumerate(self._procs):
            if p is not None and p.poll() is not None:
                raise RuntimeError(f"member {i} exited: {self.log(i)[-2000:]}")
        self.leader()

    def log(self, i: int) -> str:
        with open(os.path.join(self.dir, f"{self._name(i)}.log"), "rb") as f:
            return f.read().decode(errors="replace")

    def kill(self, i: int) -> None:
        """SIGKILL member i (its data stays; restart(i) brings it back)."""
        p = self._procs[i]
        if p is not None:
            if self._paused[i]:
                p.send_signal(signal.SIGCONT)
            p.kill()
            p.wait()
        self._procs[i] = None

    def restart(self, i: int) -> None:
        self.kill(i)
        self._start(i)

    def pause(self, i: int) -> None:
        """SIGSTOP member i; returns once every thread of it is stopped (kill() returns before
        the signal is delivered, and a member still running for a moment may answer a call)."""
        p = self._procs[i]
        if p is not None:
            p.send_signal(signal.SIGSTOP)
            self._paused[i] = True
            deadline = time.monotonic() + self.ready_timeout
            while not _stopped(p.pid) and time.monotonic() < deadline:
                time.sleep(0.001)  # poll interval of a bounded wait for the stop

    def resume(self, i: int) -> None:
        p = self._procs[i]
        if p is not None:
            p.send_signal(signal.SIGCONT)
            self._paused[i] = False

    def _stop_all(self) -> None:
        for i in range(self.size):
            self.kill(i)

    def close(self) -> None:
        self._stop_all()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> "Cluster":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        if any(p is not None for p in getattr(self, "_procs", [])):
            self.close()


try:
    import pytest

    @pytest.fixture
    def cairn_member() -> Iterator[Cluster]:
        """One real cairn member, stopped after the test."""
        with Cluster(members=1) as c:
            yield c

    @pytest.fixture
    def cairn_cluster() -> Iterator[Cluster]:
        """Three real cairn members, stopped after the test."""
        with Cluster(members=3) as c:
            yield c
except ImportError:  # pytest is optional
    pass
