"""Servers for the gateway tests: a 1-member etcd ($ETCD_BINARY or /usr/bin/etcd) or cairn
($CAIRN_BINARY) on ephemeral loopback ports, and a small HTTP client (http.client) for them.
Every process started here is killed by close()."""

from __future__ import annotations

import base64
import http.client
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
from typing import Any, Dict, List, Optional, Tuple

READY_TIMEOUT = 30.0


def free_ports(n: int) -> List[int]:
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


class Server:
    """One member of `kind` ('etcd' or 'cairn'), serving clients on `port`."""

    def __init__(self, kind: str, extra_args: Optional[List[str]] = None,
                 ready_port_is_extra: bool = False) -> None:
        self.kind = kind
        self.binary = (os.environ.get("ETCD_BINARY", "/usr/bin/etcd") if kind == "etcd"
                       else os.environ["CAIRN_BINARY"])
        self.dir = tempfile.mkdtemp(prefix=f"cairn-gateway-{kind}-")
        self.proc: Optional[subprocess.Popen] = None
        self.extra_args = extra_args or []
        self.ready_port_is_extra = ready_port_is_extra  # /health is probed on extra_port
        for attempt in range(3):  # a picked port may be taken before the server binds it
            self.port, self.peer_port, self.extra_port, self.extra_port2 = free_ports(4)
            self._start()
            try:
                self._wait_ready()
                return
            except Exception:
                self._kill()
                if attempt == 2:
                    raise

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _start(self) -> None:
        peer = f"http://127.0.0.1:{self.peer_port}"
        args = [self.binary, "--name", "m0", "--data-dir", os.path.join(self.dir, "data"),
                "--listen-client-urls", self.url, "--advertise-client-urls", self.url,
                "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                "--initial-cluster", f"m0={peer}"]
        args += [a.replace("{extra_port}", str(self.extra_port))
                 .replace("{extra_port2}", str(self.extra_port2)) for a in self.extra_args]
        log = open(os.path.join(self.dir, "log"), "ab")
        self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        log.close()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"{self.kind} exited: {self.log()[-2000:]}")
            try:
                status, _ = self.get(
                    "/health", port=self.extra_port if self.ready_port_is_extra else None)
                if status == 200:
                    return
            except OSError:
                pass
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{self.kind} not ready: {self.log()[-2000:]}")
            time.sleep(0.05)  # poll interval of a bounded wait for readiness

    def log(self) -> str:
        with open(os.path.join(self.dir, "log"), "rb") as f:
            return f.read().decode(errors="replace")

    def _kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def close(self) -> None:
        self._kill()
        shutil.rmtree(self.dir, ignore_errors=True)

    def connect(self, timeout: float = 10.0, port: Optional[int] = None) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", port or self.port, timeout=timeout)

    def get(self, path: str, port: Optional[int] = None) -> Tuple[int, str]:
        c = self.connect(port=port)
        try:
            c.request("GET", path)
            r = c.getresponse()
            return r.status, r.read().decode()
        finally:
            c.close()

    def post(self, path: str, body: Any, headers: Optional[Dict[str, str]] = None
             ) -> Tuple[int, Any]:
        """POSTs `body` (a dict is sent as JSON, a str as is); returns (status, parsed JSON or
        the text when it is not JSON)."""
        c = self.connect()
        try:
            data = body if isinstance(body, str) else json.dumps(body)
            c.request("POST", path, body=data.encode(), headers=headers or {})
            r = c.getresponse()
            text = r.read().decode()
            try:
                return r.status, json.loads(text)
            except ValueError:
                return r.status, text
        finally:
            c.close()


def b64(s: str) -> str:
    """Bytes fields travel base64-encoded in the gateway's JSON."""
    return base64.b64encode(s.encode()).decode()
