"""KV, transactions and bad input, against etcd and cairn."""

import pytest

import cairn


def test_put_get_delete(client: cairn.Client) -> None:
    assert client.get("k") is None
    assert client.put("k", "v1") is None
    kv = client.get(b"k")
    assert kv is not None and kv.key == b"k" and kv.value == b"v1" and kv.version == 1
    prev = client.put("k", b"v2", prev_kv=True)
    assert prev is not None and prev.value == b"v1"
    assert client.get("k").value == b"v2"
    assert client.get("k").version == 2
    assert client.delete("k") == 1
    assert client.get("k") is None
    assert client.delete("k") == 0


def test_unicode_and_binary(client: cairn.Client) -> None:
    client.put("ключ", "значение")
    assert client.get("ключ").value == "значение".encode()
    client.put(b"\x00\xff", b"\x01\x02")
    assert client.get(b"\x00\xff").value == b"\x01\x02"


def test_prefix_range_and_sort(client: cairn.Client) -> None:
    for i in range(5):
        client.put(f"p/{i}", str(i))
    client.put("q", "x")
    assert [kv.key for kv in client.get_prefix("p/")] == [f"p/{i}".encode() for i in range(5)]
    r = client.get_range("p/1", "p/4")
    assert [kv.key for kv in r.kvs] == [b"p/1", b"p/2", b"p/3"]
    r = client.get_range("p/", "p0", limit=2, sort="descend")
    assert [kv.key for kv in r.kvs] == [b"p/4", b"p/3"] and r.more and r.count == 5
    assert all(kv.value == b"" for kv in client.get_prefix("p/", keys_only=True))
    assert client.delete("p/", prefix=True) == 5


def test_revision_reads_and_compact(client: cairn.Client) -> None:
    client.put("r", "1")
    rev1 = client.get_range("r").header.revision
    client.put("r", "2")
    assert client.get_range("r", revision=rev1).kvs[0].value == b"1"
    client.compact(rev1 + 1)
    with pytest.raises(cairn.CompactedError):
        client.get_range("r", revision=rev1)
    with pytest.raises(cairn.FutureRevisionError):
        client.get_range("r", revision=rev1 + 1000)


def test_txn(client: cairn.Client) -> None:
    client.put("t", "a")
    r = client.txn(compare=[cairn.Value("t") == "a", cairn.Version("t") > 0],
                   success=[cairn.Put("t", "b"), cairn.Get("t")],
                   failure=[cairn.Delete("t")])
    assert r.succeeded
    assert r.responses[1].get.kvs[0].value == b"b"  # ops apply in order: the read sees the put
    r = client.txn(compare=[cairn.Value("t") == "a"], success=[], failure=[cairn.Get("t")])
    assert not r.succeeded and r.responses[0].get.kvs[0].value == b"b"
    kv = client.get("t")
    assert client.txn(compare=[cairn.ModRevision("t") == kv.mod_revision,
                               cairn.CreateRevision("t") == kv.create_revision,
                               cairn.LeaseOf("t") == 0]).succeeded
    nested = client.txn(success=[cairn.Txn(compare=[cairn.Version("nope") == 0],
                                           success=[cairn.Put("n", "1")])])
    assert nested.succeeded and client.get("n").value == b"1"


def test_txn_errors(client: cairn.Client) -> None:
    with pytest.raises(cairn.DuplicateKeyError) as e:
        client.txn(success=[cairn.Put("d", "1"), cairn.Put("d", "2")])
    assert "duplicate key" in str(e.value)
    with pytest.raises(TypeError):
        cairn.Version("k") == "not an int"  # noqa: B015


def test_bad_input_gets_clear_errors(client: cairn.Client) -> None:
    with pytest.raises(TypeError, match="key must be str or bytes"):
        client.put(5, "v")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="value must be str or bytes"):
        client.put("k", None)  # type: ignore[arg-type]
    with pytest.raises(cairn.EmptyKeyError):
        client.put("", "v")
    with pytest.raises(ValueError):
        client.get_range("a", sort="sideways")
    with pytest.raises(TypeError):
        cairn.Client("127.0.0.1:2379")  # a string, not a list


def test_closed_client_raises(server) -> None:
    c = cairn.Client([server.endpoint])
    c.put("k", "v")
    c.close()
    assert c.closed
    with pytest.raises(cairn.CanceledError, match="client closed"):
        c.get("k")
    c.close()  # idempotent


def test_unreachable_endpoint() -> None:
    from conftest import free_ports
    (port,) = free_ports(1)
    with pytest.raises((cairn.UnavailableError, cairn.DeadlineExceededError)):
        cairn.Client([f"127.0.0.1:{port}"], timeout=1.0)


def test_every_error_kind_is_a_typed_public_class() -> None:
    """cairn.errors (and the _cairn.pyi stubs mypy reads) name exactly the native error
    classes, one per error kind, each a cairn.Error exported from cairn."""
    import cairn.errors

    native = {cls.__name__ for cls in cairn.ERRORS_BY_KIND.values()}
    declared = set(cairn.errors.__all__) - {"Error", "ERRORS_BY_KIND"}
    assert declared == native
    for name in native:
        cls = getattr(cairn, name)
        assert issubclass(cls, cairn.Error) and name in cairn.__all__
    assert cairn.LeaseNotFoundError is cairn.ERRORS_BY_KIND["lease_not_found"]
