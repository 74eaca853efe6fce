"""The HTTP side's limits and extra listeners on one cairn (docs/gateway.md, docs/limits.md):
/metrics and the probes, --listen-metrics-urls and --listen-client-http-urls, an oversized body,
a request that is not HTTP, a flood of connections beyond the connection limit, a watch whose
reader never reads, and a clean stop with streams open. Each ends with the server still
serving."""

from __future__ import annotations

import base64
import http.client
import json
import os
import select
import signal
import socket
import subprocess
import time
from typing import Iterator, List

import pytest

from gateway_servers import Server

ETCDCTL = os.environ.get("ETCDCTL_BINARY", "/usr/bin/etcdctl")
MAX_HTTP_CONNECTIONS = 256  # kMaxHttpConnections in server/api/gateway/http_server.h


@pytest.fixture(scope="module")
def cairn() -> Iterator[Server]:
    s = Server("cairn", ["--listen-metrics-urls", "http://127.0.0.1:{extra_port}"])
    yield s
    s.close()


def b64(s: str) -> str:
    return base64.b64encode(s.encode()).decode()


def still_serving(s: Server) -> None:
    status, body = s.post("/v3/kv/put", {"key": b64("alive"), "value": b64("yes")})
    assert status == 200, body


def test_metrics_and_probes(cairn: Server) -> None:
    still_serving(cairn)
    cairn.post("/v3/kv/range", {"key": b64("alive")})
    conn = cairn.connect()
    conn.request("GET", "/metrics")
    r = conn.getresponse()
    text = r.read().decode()
    conn.close()
    assert r.status == 200
    assert r.getheader("Content-Type").startswith("text/plain; version=0.0.4")
    # Label order is free in the text format: match the set of labels.
    want = {'grpc_type="unary"', 'grpc_service="etcdserverpb.KV"', 'grpc_method="Range"',
            'grpc_code="OK"'}
    lines = [l for l in text.splitlines() if l.startswith("grpc_server_handled_total{")
             and set(l[l.index("{") + 1:l.index("}")].split(",")) == want]
    assert len(lines) == 1 and int(lines[0].rsplit(" ", 1)[1]) >= 1, text[:2000]

    # --listen-metrics-urls: /metrics and /health, nothing else.
    assert cairn.get("/metrics", port=cairn.extra_port)[0] == 200
    assert cairn.get("/health", port=cairn.extra_port) == (200, '{"health":"true"}')
    assert cairn.get("/version", port=cairn.extra_port)[0] == 404
    assert cairn.get("/livez") == (200, "ok\n")
    status, text = cairn.get("/readyz?verbose")
    assert status == 200 and "[+]linearizable_read ok\n" in text and text.endswith("ok\n")


def test_http_only_urls() -> None:
    # --listen-client-http-urls serves HTTP only, and the client URLs then serve gRPC only.
    s = Server("cairn", ["--listen-client-http-urls", "http://127.0.0.1:{extra_port}"],
               ready_port_is_extra=True)
    try:
        assert s.get("/version", port=s.extra_port) == (
            200, '{"etcdserver":"3.5.0","etcdcluster":"3.5.0"}')
        env = dict(os.environ, ETCDCTL_API="3")
        subprocess.run([ETCDCTL, "--endpoints", s.url, "--command-timeout=10s", "put", "k",
                        "grpc"], check=True, env=env, stdout=subprocess.DEVNULL, timeout=30)
        conn = s.connect(port=s.extra_port)
        conn.request("POST", "/v3/kv/range", body=json.dumps({"key": b64("k")}).encode())
        r = conn.getresponse()
        assert r.status == 200 and json.loads(r.read())["kvs"][0]["value"] == b64("grpc")
        conn.close()
        with pytest.raises((OSError, http.client.HTTPException)):
            s.get("/version")  # HTTP/1.1 bytes reach the gRPC server, which closes
    finally:
        s.close()


def test_oversized_body(cairn: Server) -> None:
    # Default --max-request-bytes is 1.5 MiB; the body limit is twice that plus 512 KiB. The
    # header announces more: the answer comes before the body is sent.
    with socket.create_connection(("127.0.0.1", cairn.port), timeout=10) as sock:
        sock.sendall(b"POST /v3/kv/put HTTP/1.1\r\nHost: x\r\nContent-Length: 8388608\r\n\r\n{")
        data = b""
        while b"\r\n\r\n" not in data or not data.endswith(b"}"):
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413"), data
    assert json.loads(body)["code"] == 8
    # A body within the HTTP limit whose request exceeds --max-request-bytes: etcd's error.
    status, body = cairn.post("/v3/kv/put", {"key": b64("big"),
                                             "value": base64.b64encode(b"x" * (1600 * 1024)).decode()})
    assert (status, body["error"]) == (400, "etcdserver: request is too large"), body
    still_serving(cairn)


def test_not_http(cairn: Server) -> None:
    with socket.create_connection(("127.0.0.1", cairn.port), timeout=10) as sock:
        sock.sendall(b"NOT HTTP AT ALL\r\n\r\n")
        data = sock.recv(4096)
    assert data.startswith(b"HTTP/1.1 400"), data
    still_serving(cairn)


def test_connection_flood(cairn: Server) -> None:
    extra = 20
    socks: List[socket.socket] = []
    try:
        for _ in range(MAX_HTTP_CONNECTIONS + extra):
            s = socket.create_connection(("127.0.0.1", cairn.port), timeout=10)
            s.sendall(b"GET /health HTTP/1.1\r\n")  # a request that never completes
            socks.append(s)
        # The connections beyond the limit are answered 503 and closed.
        refused = 0
        pending = list(socks)
        deadline = time.monotonic() + 20
        while refused < extra and time.monotonic() < deadline:
            readable, _, _ = select.select(pending, [], [], 0.5)
            for s in readable:
                data = s.recv(4096)
                assert data.startswith(b"HTTP/1.1 503"), data
                refused += 1
                pending.remove(s)
        assert refused == extra
        # gRPC on the same port is not affected.
        env = dict(os.environ, ETCDCTL_API="3")
        subprocess.run([ETCDCTL, "--endpoints", cairn.url, "--command-timeout=10s", "put",
                        "flood", "grpc"], check=True, env=env, stdout=subprocess.DEVNULL,
                       timeout=30)
    finally:
        for s in socks:
            s.close()
    # Once the flood is gone, HTTP is served again.
    deadline = time.monotonic() + 20
    while True:
        status, _ = cairn.get("/health")
        if status == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.05)  # poll interval of a bounded wait for the connections to end
    assert status == 200
    still_serving(cairn)


def test_watch_reader_that_never_reads(cairn: Server) -> None:
    # A watch whose reader stops reading fills its socket; the writes it watches still finish.
    with socket.create_connection(("127.0.0.1", cairn.port), timeout=10) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        body = json.dumps({"create_request": {"key": b64("slow")}}).encode()
        sock.sendall(b"POST /v3/watch HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s"
                     % (len(body), body))
        value = base64.b64encode(b"v" * 65536).decode()
        for _ in range(100):
            status, resp = cairn.post("/v3/kv/put", {"key": b64("slow"), "value": value})
            assert status == 200, resp
    still_serving(cairn)


def test_stop_with_streams_open() -> None:
    s = Server("cairn")
    try:
        w = s.connect()
        w.request("POST", "/v3/watch", body=json.dumps({"create_request": {"key": b64("k")}}))
        assert w.getresponse().status == 200
        k = s.connect()
        k.request("POST", "/v3/lease/grant", body=json.dumps({"TTL": "30", "ID": "7"}))
        assert k.getresponse().status == 200
        assert s.proc is not None
        s.proc.send_signal(signal.SIGTERM)
        assert s.proc.wait(timeout=30) == 0
        w.close()
        k.close()
    finally:
        s.close()


# grpc-gateway v1's HTTP status of each gRPC code (docs/gateway.md, "Errors").
HTTP_STATUS = {1: 408, 2: 500, 3: 400, 4: 504, 5: 404, 6: 409, 7: 403, 8: 429, 9: 412, 10: 409,
               11: 400, 12: 501, 13: 500, 14: 503, 15: 500, 16: 401}


def test_every_route_answers_in_shape(cairn: Server) -> None:
    # Maintenance and Auth are routed generically: whatever the service answers (a result, or
    # UNIMPLEMENTED while it has no such method), the answer has the gateway's shape.
    for path in ["/v3/maintenance/alarm", "/v3/maintenance/status",
                 "/v3/maintenance/defragment", "/v3/maintenance/hash",
                 "/v3/maintenance/hashkv", "/v3/maintenance/transfer-leadership",
                 "/v3/auth/authenticate", "/v3/auth/user/list", "/v3/auth/role/list",
                 "/v3/auth/user/get", "/v3/auth/role/get", "/v3beta/auth/user/list"]:
        status, body = cairn.post(path, {})
        assert isinstance(body, dict), (path, body)
        if status == 200:
            assert "header" in body, (path, body)
        else:
            # (gRPC's generated base class answers UNIMPLEMENTED with no message.)
            assert body["error"] == body["message"], (path, body)
            assert body["message"] or body["code"] == 12, (path, body)
            assert status == HTTP_STATUS[body["code"]], (path, status, body)
    conn = cairn.connect()
    conn.request("POST", "/v3/maintenance/snapshot", body=b"{}")
    r = conn.getresponse()
    if r.status == 200:
        lines = [json.loads(l) for l in r.read().splitlines()]
        assert lines and all(set(l) == {"result"} for l in lines)
    else:
        body = json.loads(r.read())
        assert r.status == HTTP_STATUS[body["code"]] and body["error"] == body["message"]
    conn.close()
