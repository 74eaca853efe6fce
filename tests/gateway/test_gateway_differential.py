"""The HTTP/JSON gateway against etcd 3.4's: the same requests to a fresh etcd and a fresh cairn
give the same status and the same JSON, apart from what must differ (normalized below, each with
its reason). The requests of each test run on both servers in the same order, so revisions stay
equal and are compared as they are."""

from __future__ import annotations

import base64
import json
import os
import subprocess
from typing import Any, Dict, List, Tuple


from gateway_servers import Server, b64

ETCDCTL = os.environ.get("ETCDCTL_BINARY", "/usr/bin/etcdctl")




def norm(v: Any) -> Any:
    """Drops the cluster and member ids: random per cluster and member (etcd hashes them with the
    start time), so they differ between any two clusters."""
    if isinstance(v, dict):
        return {k: norm(x) for k, x in v.items() if k not in ("cluster_id", "member_id")}
    if isinstance(v, list):
        return [norm(x) for x in v]
    return v


def both(servers: Dict[str, Server], path: str, body: Any) -> Tuple[Any, Any]:
    e = servers["etcd"].post(path, body)
    c = servers["cairn"].post(path, body)
    return e, c


def same(servers: Dict[str, Server], path: str, body: Any) -> Tuple[int, Any]:
    (es, ej), (cs, cj) = both(servers, path, body)
    assert (cs, norm(cj)) == (es, norm(ej)), f"{path} {body}"
    return cs, cj


class Stream:
    """A streaming gateway call (watch, keepalive): newline-delimited JSON objects."""

    def __init__(self, server: Server, path: str, body: str) -> None:
        self.conn = server.connect(timeout=10)
        self.conn.request("POST", path, body=body.encode())
        self.resp = self.conn.getresponse()
        assert self.resp.status == 200

    def next(self) -> Any:
        line = self.resp.readline()
        assert line, "stream ended"
        return json.loads(line)

    def close(self) -> None:
        self.conn.close()


def test_kv(servers: Dict[str, Server]) -> None:
    a, b, c = b64("kv/a"), b64("kv/b"), b64("kv/c")
    rng = {"key": b64("kv/"), "range_end": b64("kv0")}
    for path, body in [
        ("/v3/kv/put", {"key": a, "value": b64("1")}),
        ("/v3/kv/put", {"key": b, "value": b64("2"), "prev_kv": True}),
        ("/v3/kv/put", {"key": a, "value": b64("3"), "prev_kv": True}),
        ("/v3/kv/range", rng),
        ("/v3/kv/range", dict(rng, keys_only=True, sort_order="DESCEND", sort_target="KEY",
                              limit="1")),
        ("/v3beta/kv/range", {"key": a, "count_only": True}),
        ("/v3/kv/range", {"key": a, "serializable": True, "revision": "2"}),
        ("/v3/kv/txn", {"compare": [{"key": a, "target": "VALUE", "result": "EQUAL",
                                     "value": b64("3")}],
                        "success": [{"request_put": {"key": c, "value": b64("4")}},
                                    {"request_range": {"key": a}}]}),
        ("/v3/kv/txn", {"compare": [{"key": a, "target": "MOD", "result": "LESS",
                                     "mod_revision": "1"}],
                        "failure": [{"request_delete_range": {"key": c, "prev_kv": True}}]}),
        ("/v3/kv/deleterange", dict(rng, prev_kv=True)),
        ("/v3/kv/range", {"key": a}),
        ("/v3/kv/put", {"key": a, "value": b64("5"), "ignoredUnknownField": 1}),
        ("/v3/kv/range", {"key": a, "keysOnly": True}),  # lowerCamelCase names are accepted too
        ("/v3/kv/range", json.dumps({"key": a}) + " trailing text is ignored"),
    ]:
        status, _ = same(servers, path, body)
        assert status == 200, (path, body)


def test_errors(servers: Dict[str, Server]) -> None:
    for path, body, status, code in [
        ("/v3/kv/put", {"key": "", "value": b64("v")}, 400, 3),  # key is not provided
        ("/v3/kv/range", "", 400, 3),  # an empty body is {}: key is not provided
        ("/v3/kv/range", {"key": b64("x"), "revision": "1000000"}, 400, 11),  # future revision
        ("/v3/lease/revoke", {"ID": "987654"}, 404, 5),  # lease not found
        ("/v3/kv/txn", {"success": [{"request_put": {"key": b64("d")}},
                                    {"request_put": {"key": b64("d")}}]}, 400, 3),
    ]:
        got, body_json = same(servers, path, body)
        assert got == status and body_json["code"] == code, (path, body_json)
        assert body_json["error"] == body_json["message"]

    # Malformed JSON: 400 with code 3 on both. The message is the JSON parser's own (Go's
    # encoding/json in etcd, protobuf's in cairn), so only its presence is compared.
    for bad in ['{"key":', '[1]', '{"key": 5}', 'garbage']:
        (es, ej), (cs, cj) = both(servers, "/v3/kv/range", bad)
        assert (cs, cj["code"]) == (es, ej["code"]) == (400, 3), (bad, ej, cj)
        assert cj["error"] == cj["message"] and cj["message"]

    # Unknown paths and methods: Go's net/http texts.
    for method, path, status, text in [
        ("POST", "/v3/kv/nope", 404, "Not Found\n"),
        ("POST", "/v3alpha/kv/range", 404, "404 page not found\n"),
        ("GET", "/v3/kv/range", 405, "Method Not Allowed\n"),
    ]:
        results = []
        for s in (servers["etcd"], servers["cairn"]):
            conn = s.connect()
            conn.request(method, path, body=b"{}" if method == "POST" else None)
            r = conn.getresponse()
            results.append((r.status, r.read().decode()))
            conn.close()
        assert results[0] == results[1] == (status, text), (path, results)


def test_compaction_and_watch(servers: Dict[str, Server]) -> None:
    key = b64("w/k")
    same(servers, "/v3/kv/put", {"key": key, "value": b64("1")})
    _, r = same(servers, "/v3/kv/range", {"key": key})
    rev = int(r["header"]["revision"])
    same(servers, "/v3/kv/compaction", {"revision": str(rev), "physical": True})
    status, body = same(servers, "/v3/kv/range", {"key": key, "revision": str(rev - 1)})
    assert (status, body["code"]) == (400, 11)  # required revision has been compacted
    status, body = same(servers, "/v3/kv/compaction", {"revision": str(rev)})
    assert status == 400

    lines: Dict[str, List[Any]] = {}
    for kind, s in servers.items():
        # A watch with an event.
        w = Stream(s, "/v3/watch", json.dumps({"create_request": {"key": key}}))
        got = [w.next()]
        s.post("/v3/kv/put", {"key": key, "value": b64("2")})
        got.append(w.next())
        w.close()
        # Create and cancel in one body: created, then canceled.
        body = (json.dumps({"create_request": {"key": key, "prev_kv": True}}) +
                json.dumps({"cancel_request": {"watch_id": "0"}}))
        w = Stream(s, "/v3beta/watch", body)
        got += [w.next(), w.next()]
        w.close()
        # A body that goes on with something else than a request: the requests before it.
        w = Stream(s, "/v3/watch",
                   json.dumps({"create_request": {"key": key}}) + "\n{\"create_request\": 5}")
        got.append(w.next())
        w.close()
        # From a compacted revision: canceled with compact_revision.
        w = Stream(s, "/v3/watch",
                   json.dumps({"create_request": {"key": key, "start_revision": "1"}}))
        got += [w.next(), w.next()]
        w.close()
        lines[kind] = got
    assert norm(lines["cairn"]) == norm(lines["etcd"])
    assert lines["cairn"][1]["result"]["events"][0]["kv"]["value"] == b64("2")


def test_lease(servers: Dict[str, Server]) -> None:
    lease = "4242"  # explicit: a granted id is random
    same(servers, "/v3/lease/grant", {"TTL": "30", "ID": lease})
    got = {}
    for kind, s in servers.items():
        k = Stream(s, "/v3/lease/keepalive", json.dumps({"ID": lease}))
        got[kind] = k.next()
        k.close()
    assert norm(got["cairn"]) == norm(got["etcd"])
    for path in ("/v3/lease/timetolive", "/v3/kv/lease/timetolive"):
        (es, ej), (cs, cj) = both(servers, path, {"ID": lease, "keys": True})
        # The remaining TTL depends on when each server is asked: within the granted TTL.
        assert 0 < int(cj.pop("TTL")) <= 30 and 0 < int(ej.pop("TTL")) <= 30
        assert (cs, norm(cj)) == (es, norm(ej))
    for path in ("/v3/lease/leases", "/v3/kv/lease/leases"):
        (es, ej), (cs, cj) = both(servers, path, {})
        assert cs == es == 200
        # Other tests' leases may be listed too; the order of the list is unspecified.
        assert {"ID": lease} in cj["leases"] and {"ID": lease} in ej["leases"]
    same(servers, "/v3/kv/lease/revoke", {"ID": lease})
    status, body = same(servers, "/v3/lease/revoke", {"ID": lease})
    assert (status, body["code"]) == (404, 5)
    # A keepalive of a lease that is gone answers TTL 0 (not an error).
    got = {}
    for kind, s in servers.items():
        k = Stream(s, "/v3/lease/keepalive", json.dumps({"ID": lease}))
        got[kind] = k.next()
        k.close()
    assert norm(got["cairn"]) == norm(got["etcd"])


def test_cluster_and_maintenance(servers: Dict[str, Server]) -> None:
    (es, ej), (cs, cj) = both(servers, "/v3/cluster/member/list", {})
    assert cs == es == 200
    for body in (ej, cj):
        for m in body["members"]:
            # Member ids are random; the URLs carry each server's own ephemeral ports.
            assert int(m.pop("ID")) > 0
            assert m.pop("peerURLs") and m.pop("clientURLs")
    assert norm(cj) == norm(ej)
    # /version and the Status RPC report one version, on each server.
    for s in servers.values():
        status, text = s.get("/version")
        version = json.loads(text)
        assert status == 200 and set(version) == {"etcdserver", "etcdcluster"}
        _, st = s.post("/v3/maintenance/status", {})
        assert st["version"] == version["etcdserver"]
        assert s.get("/health") == (200, '{"health":"true"}')


def test_lock_and_election(servers: Dict[str, Server]) -> None:
    # Explicit lease ids: the lock and election keys are name/<lease id in hex>.
    same(servers, "/v3/lease/grant", {"TTL": "30", "ID": "5151"})
    same(servers, "/v3/lease/grant", {"TTL": "30", "ID": "6161"})
    _, lock = same(servers, "/v3/lock/lock", {"name": b64("lk"), "lease": "5151"})
    assert base64.b64decode(lock["key"]) == b"lk/141f"
    same(servers, "/v3/lock/unlock", {"key": lock["key"]})
    _, c = same(servers, "/v3/election/campaign",
                {"name": b64("el"), "lease": "6161", "value": b64("v1")})
    leader = c["leader"]
    same(servers, "/v3/election/leader", {"name": b64("el")})
    same(servers, "/v3/election/proclaim", {"leader": leader, "value": b64("v2")})
    _, l2 = same(servers, "/v3beta/election/leader", {"name": b64("el")})
    assert l2["kv"]["value"] == b64("v2")
    same(servers, "/v3/election/resign", {"leader": leader})
    status, body = same(servers, "/v3/election/leader", {"name": b64("el")})
    assert (status, body["code"], body["error"]) == (500, 2, "election: no leader")
    same(servers, "/v3/lease/revoke", {"ID": "5151"})
    same(servers, "/v3/lease/revoke", {"ID": "6161"})


def test_grpc_and_http_on_one_port(servers: Dict[str, Server]) -> None:
    for s in servers.values():
        env = dict(os.environ, ETCDCTL_API="3")
        ctl = [ETCDCTL, "--endpoints", s.url, "--command-timeout=10s"]
        subprocess.run(ctl + ["put", "port/k", "grpc"], check=True, env=env,
                       stdout=subprocess.DEVNULL, timeout=30)
        _, r = s.post("/v3/kv/range", {"key": b64("port/k")})
        assert r["kvs"][0]["value"] == b64("grpc")
        s.post("/v3/kv/put", {"key": b64("port/k"), "value": b64("http")})
        out = subprocess.run(ctl + ["get", "--print-value-only", "port/k"], check=True, env=env,
                             stdout=subprocess.PIPE, timeout=30).stdout.decode()
        assert out.strip() == "http"
