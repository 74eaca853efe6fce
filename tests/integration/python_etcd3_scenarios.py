#!/usr/bin/python3
"""KV scenarios through python-etcd3 0.12 (Debian's python3-etcd3) against one endpoint.

Usage: /usr/bin/python3 python_etcd3_scenarios.py HOST:PORT

The server must be fresh (empty store at revision 1). Exits 0 when every check holds; otherwise
prints the failed check with expected and actual values and exits 1. Run by
python_etcd3_test.cc against etcd and cairn.
"""
import sys

import etcd3
import etcd3.exceptions

failures = []


def check(name, actual, expected):
    if actual != expected:
        failures.append("%s: expected %r, got %r" % (name, expected, actual))


def keys_values(pairs):
    return [(meta.key, value) for value, meta in pairs]


def main():
    host, port = sys.argv[1].rsplit(":", 1)
    client = etcd3.client(host=host, port=int(port), timeout=10)

    # put / get, metadata.
    client.put("/app/a", "1")  # revision 2
    client.put("/app/b", "2")  # revision 3
    resp = client.put("/app/a", "3", prev_kv=True)  # revision 4
    check("put prev_kv value", resp.prev_kv.value, b"1")
    check("put prev_kv mod_revision", resp.prev_kv.mod_revision, 2)
    check("put header revision", resp.header.revision, 4)
    value, meta = client.get("/app/a")
    check("get value", value, b"3")
    check("get key", meta.key, b"/app/a")
    check("get create_revision", meta.create_revision, 2)
    check("get mod_revision", meta.mod_revision, 4)
    check("get version", meta.version, 2)
    check("get lease", meta.lease_id, 0)
    check("get missing", client.get("/app/missing"), (None, None))
    value, _ = client.get("/app/a", serializable=True)
    check("get serializable", value, b"3")

    # get_prefix / get_all / get_range, with sorting and keys_only.
    client.put("/app/c", "0")  # revision 5
    client.put("/other", "x")  # revision 6
    check("get_prefix", keys_values(client.get_prefix("/app/")),
          [(b"/app/a", b"3"), (b"/app/b", b"2"), (b"/app/c", b"0")])
    check("get_prefix sort value descend",
          keys_values(client.get_prefix("/app/", sort_order="descend", sort_target="value")),
          [(b"/app/a", b"3"), (b"/app/b", b"2"), (b"/app/c", b"0")])
    check("get_prefix sort mod ascend",
          keys_values(client.get_prefix("/app/", sort_order="ascend", sort_target="mod")),
          [(b"/app/b", b"2"), (b"/app/a", b"3"), (b"/app/c", b"0")])
    check("get_prefix sort create descend",
          [m.key for _, m in client.get_prefix("/app/", sort_order="descend",
                                                sort_target="create")],
          [b"/app/c", b"/app/b", b"/app/a"])
    check("get_prefix sort version ascend",
          [m.key for _, m in client.get_prefix("/app/", sort_order="ascend",
                                                sort_target="version")],
          [b"/app/b", b"/app/c", b"/app/a"])
    check("get_prefix keys_only",
          keys_values(client.get_prefix("/app/", keys_only=True)),
          [(b"/app/a", b""), (b"/app/b", b""), (b"/app/c", b"")])
    check("get_all", keys_values(client.get_all()),
          [(b"/app/a", b"3"), (b"/app/b", b"2"), (b"/app/c", b"0"), (b"/other", b"x")])
    check("get_all descend",
          [m.key for _, m in client.get_all(sort_order="descend")],
          [b"/other", b"/app/c", b"/app/b", b"/app/a"])
    check("get_range", keys_values(client.get_range("/app/b", "/other")),
          [(b"/app/b", b"2"), (b"/app/c", b"0")])
    check("get_prefix empty", list(client.get_prefix("/nothing/")), [])

    # transaction: compares on value/version/create/mod, success and failure branches.
    t = client.transactions
    ok, responses = client.transaction(
        compare=[t.value("/app/a") == "3", t.version("/app/a") > 1,
                 t.create("/app/b") == 3, t.mod("/app/c") < 6],
        success=[t.put("/app/d", "new"), t.get("/app/a"), t.delete("/app/b")],
        failure=[t.put("/app/fail", "x")])  # revision 7
    check("txn succeeded", ok, True)
    check("txn responses", len(responses), 3)
    if len(responses) == 3:
        check("txn range kvs", [(v, m.key) for v, m in responses[1]], [(b"3", b"/app/a")])
        check("txn delete deleted", responses[2].response_delete_range.deleted, 1)
        check("txn put revision", responses[0].response_put.header.revision, 7)
    ok, responses = client.transaction(
        compare=[t.value("/app/a") == "nope"],
        success=[t.put("/app/x", "x")],
        failure=[t.get("/app/d"), t.put("/app/e", "e")])  # revision 8
    check("txn failure branch", ok, False)
    check("txn failure get", [(v, m.key) for v, m in responses[0]] if responses else None,
          [(b"new", b"/app/d")])
    check("txn failure put applied", client.get("/app/e")[0], b"e")
    check("txn success put not applied", client.get("/app/x"), (None, None))
    ok, _ = client.transaction(compare=[t.version("/app/missing") == 0], success=[], failure=[])
    check("txn missing key version 0", ok, True)
    ok, _ = client.transaction(compare=[t.value("/app/missing") == ""], success=[], failure=[])
    check("txn missing key value compare fails", ok, False)
    ok, _ = client.transaction(compare=[t.mod("/app/") > 0], success=[], failure=[])
    check("txn compare on missing key mod > 0", ok, False)

    # replace / put_if_not_exists.
    check("replace matching", client.replace("/app/a", "3", "4"), True)  # revision 9
    check("replace value", client.get("/app/a")[0], b"4")
    check("replace not matching", client.replace("/app/a", "3", "5"), False)
    check("replace value unchanged", client.get("/app/a")[0], b"4")
    check("put_if_not_exists new", client.put_if_not_exists("/app/n", "n"), True)  # revision 10
    check("put_if_not_exists existing", client.put_if_not_exists("/app/n", "m"), False)
    check("put_if_not_exists value", client.get("/app/n")[0], b"n")

    # delete / delete_prefix.
    check("delete existing", client.delete("/app/d"), True)  # revision 11
    check("delete missing", client.delete("/app/d"), False)
    resp = client.delete("/app/c", prev_kv=True, return_response=True)  # revision 12
    check("delete prev_kvs", [(kv.key, kv.value) for kv in resp.prev_kvs], [(b"/app/c", b"0")])
    check("delete deleted", resp.deleted, 1)
    resp = client.delete_prefix("/app/")  # revision 13: /app/a, /app/e, /app/n
    check("delete_prefix deleted", resp.deleted, 3)
    check("delete_prefix header", resp.header.revision, 13)
    check("after delete_prefix", keys_values(client.get_all()), [(b"/other", b"x")])
    resp = client.delete_prefix("/app/")
    check("delete_prefix nothing", resp.deleted, 0)
    check("delete_prefix nothing revision", resp.header.revision, 13)

    # Errors are raised as python-etcd3 exceptions with etcd's messages.
    try:
        client.put("", "v")
        failures.append("put empty key: no exception")
    except Exception as e:  # python-etcd3 0.12 raises grpc errors for InvalidArgument
        check("put empty key message", "key is not provided" in str(e), True)
    client.put("/hist", "h1")  # revision 14
    client.put("/hist", "h2")  # revision 15
    client.compact(14)
    try:
        client.get_response("/hist")  # current revision still readable
        range_request = client._build_get_range_request("/hist")
        range_request.revision = 13
        client.kvstub.Range(range_request, client.timeout)
        failures.append("range at compacted revision: no exception")
    except Exception as e:
        check("compacted message", "required revision has been compacted" in str(e), True)

    client.close()
    if failures:
        for f in failures:
            print("FAIL", f)
        return 1
    print("all python-etcd3 checks passed")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception:
        for f in failures:
            print("FAIL", f)
        raise
