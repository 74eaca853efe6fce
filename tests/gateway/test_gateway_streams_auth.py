"""The gateway against etcd 3.4's, part two (docs/gateway.md): streams whose request body is read
as it arrives (a chunked watch that sends a cancel after its first answers came back, a keepalive
that renews twice on one request), and calls with auth on, the token in the `Authorization`
header. Each scenario runs on a fresh etcd and a fresh cairn; the JSON must match apart from ids
and the token (normalized below)."""

from __future__ import annotations

import base64
import json
import socket
from typing import Any, Dict, List, Tuple


from gateway_servers import Server, b64

SOCKET_TIMEOUT = 10.0  # bound of each read: a stream that stops answering fails the test




def norm(v: Any) -> Any:
    """Drops the cluster and member ids (random per cluster and member)."""
    if isinstance(v, dict):
        return {k: norm(x) for k, x in v.items() if k not in ("cluster_id", "member_id")}
    if isinstance(v, list):
        return [norm(x) for x in v]
    return v


class ChunkedStream:
    """A POST whose body is sent in chunks over a raw socket, one `send` at a time, while the
    newline-delimited JSON answers are read in between."""

    def __init__(self, server: Server, path: str) -> None:
        self.sock = socket.create_connection(("127.0.0.1", server.port), timeout=SOCKET_TIMEOUT)
        self.sock.sendall((f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                           "Content-Type: application/json\r\n"
                           "Transfer-Encoding: chunked\r\n\r\n").encode())
        self.raw = b""
        self.header_done = False
        self.body = b""  # decoded response body not yet returned as lines

    def send(self, obj: Any) -> None:
        data = (json.dumps(obj) + "\n").encode()
        self.sock.sendall(b"%x\r\n%s\r\n" % (len(data), data))

    def end_body(self) -> None:
        self.sock.sendall(b"0\r\n\r\n")

    def _recv(self) -> None:
        data = self.sock.recv(65536)
        assert data, "connection closed"
        self.raw += data

    def _decode(self) -> None:
        """Moves complete chunks from `raw` to `body`."""
        while True:
            if not self.header_done:
                end = self.raw.find(b"\r\n\r\n")
                if end < 0:
                    return
                status_line = self.raw.split(b"\r\n", 1)[0]
                assert status_line.startswith(b"HTTP/1.1 200"), self.raw
                self.raw = self.raw[end + 4:]
                self.header_done = True
            line_end = self.raw.find(b"\r\n")
            if line_end < 0:
                return
            size = int(self.raw[:line_end], 16)
            if len(self.raw) < line_end + 2 + size + 2:
                return
            self.body += self.raw[line_end + 2:line_end + 2 + size]
            self.raw = self.raw[line_end + 2 + size + 2:]

    def next(self) -> Any:
        while b"\n" not in self.body:
            self._decode()
            if b"\n" in self.body:
                break
            self._recv()
        line, self.body = self.body.split(b"\n", 1)
        return json.loads(line)

    def close(self) -> None:
        self.sock.close()


def watch_lines(w: ChunkedStream, s: Server, key: str, kind: str, interleaved: bool) -> List[Any]:
    """Interleaved: create, a put, cancel, a second create from the put's revision (five answers),
    each request sent after the answers to the previous one came back on the same request. Not
    interleaved: create and cancel in one body, ended before anything is read (two answers)."""
    w.send({"create_request": {"key": key}})
    if not interleaved:
        # Only create and cancel: etcd 3.4's gateway sometimes loses the answer to a second
        # create that follows them in the same ended body (3 runs in 20 here), cairn never does.
        w.send({"cancel_request": {"watch_id": "0"}})
        w.end_body()
        return [w.next(), w.next()]
    lines = [w.next()]  # created, while the request's body is still open
    s.post("/v3/kv/put", {"key": key, "value": b64(kind)})
    lines.append(w.next())  # the event
    w.send({"cancel_request": {"watch_id": lines[0]["result"].get("watch_id", "0")}})
    lines.append(w.next())  # canceled
    w.send({"create_request": {"key": key,
                               "start_revision": lines[1]["result"]["header"]["revision"]}})
    lines += [w.next(), w.next()]  # created, then the past event
    return lines


def test_chunked_watch_body_same_as_etcd(servers: Dict[str, Server]) -> None:
    """A body sent in chunks, then ended, before the answers are read: etcd 3.4 answers only then
    (on HTTP/1.1 Go's server reads the rest of the body before it writes the response header),
    so this is the part of a chunked stream the two can be compared on."""
    key = b64("chunked/whole")
    got: Dict[str, List[Any]] = {}
    for kind, s in servers.items():
        w = ChunkedStream(s, "/v3/watch")
        got[kind] = watch_lines(w, s, key, kind, interleaved=False)
        w.close()
    assert norm(got["cairn"]) == norm(got["etcd"])
    assert [bool(l["result"].get("canceled")) for l in got["cairn"]] == [False, True]


def test_watch_cancel_after_first_answers(servers: Dict[str, Server]) -> None:
    """cairn reads a watch's body as it arrives and answers at once, so one chunked request can
    create, see events, cancel and create again (etcd 3.4 would hold its answers until the body
    ends: see above; the cairn-only case)."""
    s = servers["cairn"]
    w = ChunkedStream(s, "/v3/watch")
    lines = watch_lines(w, s, b64("chunked/k"), "cairn", interleaved=True)
    w.close()
    # The same write on etcd, so the two keep equal revisions for the tests after this one.
    servers["etcd"].post("/v3/kv/put", {"key": b64("chunked/k"), "value": b64("cairn")})
    r = [l["result"] for l in lines]
    assert r[0]["created"] is True
    assert base64.b64decode(r[1]["events"][0]["kv"]["value"]) == b"cairn"
    first_id = r[0].get("watch_id", "0")  # 0, a default, is omitted from the JSON
    assert r[2]["canceled"] is True and r[2].get("watch_id", "0") == first_id
    assert r[3]["created"] is True and r[3].get("watch_id", "0") != first_id
    assert r[4]["events"][0]["kv"]["mod_revision"] == r[1]["header"]["revision"]


def test_keepalive_renews_as_requests_arrive(servers: Dict[str, Server]) -> None:
    lease = "7373"
    got: Dict[str, List[Any]] = {}
    for kind, s in servers.items():
        s.post("/v3/lease/grant", {"TTL": "30", "ID": lease})
        k = ChunkedStream(s, "/v3/lease/keepalive")
        k.send({"ID": lease})
        k.send({"ID": lease})
        k.end_body()
        got[kind] = [k.next(), k.next()]
        k.close()
    assert norm(got["cairn"]) == norm(got["etcd"])
    # cairn answers each renewal before the next is sent.
    s = servers["cairn"]
    k = ChunkedStream(s, "/v3/lease/keepalive")
    for _ in range(3):
        k.send({"ID": lease})
        assert k.next()["result"]["TTL"] == "30"
    k.close()
    for s in servers.values():
        s.post("/v3/lease/revoke", {"ID": lease})


def test_oversized_request_object_ends_the_stream(servers: Dict[str, Server]) -> None:
    """One request object larger than the HTTP body limit (docs/limits.md) ends the stream with
    code 8; the server goes on serving."""
    s = servers["cairn"]
    w = ChunkedStream(s, "/v3/watch")
    w.send({"create_request": {"key": b64("big")}})
    assert w.next()["result"]["created"] is True
    limit = 2 * 1572864 + 512 * 1024  # HttpBodyBytesMax(--max-request-bytes default)
    piece = b"x" * 65536
    w.sock.sendall(b"%x\r\n%s\r\n" % (len(b'{"create_request":{"key":"'), b'{"create_request":{"key":"'))
    sent = 0
    try:
        while sent <= limit:
            w.sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
            sent += len(piece)
    except OSError:
        pass  # the server may close before the whole object is sent
    end = w.next()
    assert end["error"]["grpc_code"] == 8, end
    w.close()
    status, _ = s.post("/v3/kv/range", {"key": b64("big")})
    assert status == 200


def post(s: Server, path: str, body: Any, token: str = "") -> Tuple[int, Any]:
    return s.post(path, body, headers={"Authorization": token} if token else None)


def test_auth_token_in_authorization_header() -> None:
    started: Dict[str, Server] = {}
    try:
        for kind in ("etcd", "cairn"):
            started[kind] = Server(kind)
        results: Dict[str, List[Tuple[int, Any]]] = {}
        for kind, s in started.items():
            r: List[Tuple[int, Any]] = []
            for path, body in [
                ("/v3/auth/role/add", {"name": "root"}),
                ("/v3/auth/user/add", {"name": "root", "password": "rootpw"}),
                ("/v3/auth/user/grant", {"user": "root", "role": "root"}),
                ("/v3/auth/user/add", {"name": "alice", "password": "alicepw"}),
                ("/v3/auth/enable", {}),
            ]:
                r.append(post(s, path, body))
            status, auth = post(s, "/v3/auth/authenticate", {"name": "root", "password": "rootpw"})
            assert status == 200, auth
            token = auth.pop("token")
            assert token
            r.append((status, auth))
            status, alice = post(s, "/v3/auth/authenticate",
                                 {"name": "alice", "password": "alicepw"})
            alice_token = alice.pop("token")
            r.append((status, alice))
            r.append(post(s, "/v3/auth/authenticate", {"name": "root", "password": "wrong"}))
            r.append(post(s, "/v3/kv/put", {"key": b64("a"), "value": b64("1")}))  # no token
            r.append(post(s, "/v3/kv/put", {"key": b64("a"), "value": b64("1")}, token))
            r.append(post(s, "/v3/kv/range", {"key": b64("a")}, token))
            r.append(post(s, "/v3/kv/range", {"key": b64("a")}, alice_token))  # denied
            r.append(post(s, "/v3/kv/range", {"key": b64("a")}, "not-a-token"))
            r.append(post(s, "/v3/auth/user/list", {}, token))
            r.append(post(s, "/v3/auth/disable", {}, token))
            r.append(post(s, "/v3/kv/range", {"key": b64("a")}))  # auth off again
            results[kind] = r
        want = [(c, norm(j)) for c, j in results["etcd"]]
        got = [(c, norm(j)) for c, j in results["cairn"]]
        for i, (w, g) in enumerate(zip(want, got)):
            assert g == w, f"call {i}: etcd {w} cairn {g}"
        assert len(got) == len(want)
        # The refusals: no token, alice without a role, an unknown token, a wrong password.
        codes = [j.get("code") for _, j in got]
        assert 3 in codes and 7 in codes and 16 in codes
    finally:
        for s in started.values():
            s.close()
