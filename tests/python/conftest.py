"""Fixtures of the Python binding tests: a 1-member etcd and a 1-member cairn on ephemeral
loopback ports (each test runs against both), stopped after the test. The cairn binary comes from
$CAIRN_BINARY (ctest sets it), etcd from $ETCD_BINARY or /usr/bin/etcd."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from typing import Iterator, List, Optional

import pytest

import cairn
from cairn.testing import free_ports  # noqa: F401 (test_kv uses it too)

READY_TIMEOUT = 30.0


class Server:
    """One member of `kind` ('etcd' or 'cairn'); restart() keeps its data and ports."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.binary = (os.environ.get("ETCD_BINARY", "/usr/bin/etcd") if kind == "etcd"
                       else os.environ["CAIRN_BINARY"])
        self.dir = tempfile.mkdtemp(prefix=f"cairn-pytest-{kind}-")
        self.proc: Optional[subprocess.Popen] = None
        for attempt in range(3):  # the picked port may be taken before the server binds it
            self.client_port, self.peer_port = free_ports(2)
            self.start()
            try:
                self.wait_ready()
                return
            except Exception:
                self.kill()
                if attempt == 2:
                    raise

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.client_port}"

    def start(self) -> None:
        peer = f"http://127.0.0.1:{self.peer_port}"
        client = f"http://127.0.0.1:{self.client_port}"
        args = [self.binary, "--name", "m0", "--data-dir", os.path.join(self.dir, "data"),
                "--listen-client-urls", client, "--advertise-client-urls", client,
                "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                "--initial-cluster", f"m0={peer}"]
        log = open(os.path.join(self.dir, "log"), "ab")
        self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        log.close()

    def wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"{self.kind} exited: {self.log()[-2000:]}")
            try:
                with cairn.Client([self.endpoint], timeout=1.0) as c:
                    c.get("ready-probe")
                    return
            except cairn.Error:
                if time.monotonic() >= deadline:
                    raise
            time.sleep(0.05)  # poll interval of a bounded wait for readiness

    def log(self) -> str:
        with open(os.path.join(self.dir, "log"), "rb") as f:
            return f.read().decode(errors="replace")

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def restart(self) -> None:
        self.kill()
        self.start()
        self.wait_ready()

    def close(self) -> None:
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(params=["etcd", "cairn"])
def server(request: pytest.FixtureRequest) -> Iterator[Server]:
    s = Server(request.param)
    yield s
    s.close()


@pytest.fixture
def cairn_server() -> Iterator[Server]:
    s = Server("cairn")
    yield s
    s.close()


@pytest.fixture
def client(server: Server) -> Iterator[cairn.Client]:
    with cairn.Client([server.endpoint]) as c:
        yield c
