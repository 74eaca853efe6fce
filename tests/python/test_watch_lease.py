"""Watches and leases, against etcd and cairn."""

import os
import subprocess
import sys
import threading
import time

import pytest

import cairn


def test_watch_key_and_prefix(client: cairn.Client) -> None:
    with client.watch("w/", prefix=True, prev_kv=True) as w:
        client.put("w/a", "1")
        client.put("w/a", "2")
        client.delete("w/a")
        client.put("other", "x")
        e1, e2, e3 = w.get(10), w.get(10), w.get(10)
        assert (e1.type, e1.kv.key, e1.kv.value) == ("put", b"w/a", b"1")
        assert e2.prev_kv.value == b"1"
        assert e3.type == "delete" and e3.prev_kv.value == b"2"
        assert w.get(0.2) is None


def test_watch_from_revision_and_filters(client: cairn.Client) -> None:
    client.put("h", "1")
    rev = client.get("h").mod_revision
    client.delete("h")
    client.put("h", "2")
    w = client.watch("h", start_revision=rev, filters=["delete"])
    assert [e.kv.value for e in (w.get(10), w.get(10))] == [b"1", b"2"]
    w.cancel()
    assert list(w) == []  # a cancelled watch ends the iteration


def test_watch_callback(client: cairn.Client) -> None:
    seen = []
    done = threading.Event()

    def on_event(ev: cairn.Event) -> None:
        seen.append(ev.kv.key)
        if len(seen) == 3:
            done.set()

    w = client.watch("cb/", prefix=True, callback=on_event)
    for i in range(3):
        client.put(f"cb/{i}", "x")
    assert done.wait(10)
    assert seen == [b"cb/0", b"cb/1", b"cb/2"]
    w.cancel()


def test_watch_on_compacted_revision_raises(client: cairn.Client) -> None:
    client.put("c", "1")
    rev = client.get("c").mod_revision
    client.put("c", "2")
    client.put("c", "3")
    client.compact(rev + 2)
    with pytest.raises(cairn.CompactedError):
        w = client.watch("c", start_revision=rev)
        w.get(10)


def test_watch_resumes_across_server_restart(server) -> None:
    with cairn.Client([server.endpoint], timeout=10) as c:
        w = c.watch("rs/", prefix=True)
        c.put("rs/1", "a")
        assert w.get(10).kv.key == b"rs/1"
        server.restart()
        c.put("rs/2", "b")
        c.put("rs/3", "c")
        got = [w.get(30).kv.key for _ in range(2)]
        assert got == [b"rs/2", b"rs/3"]  # no gap, no duplicate
        assert w.get(0.5) is None
        w.cancel()


def test_lease_context_manager(client: cairn.Client) -> None:
    with client.lease(30) as lease:
        assert lease.id != 0
        client.put("l", "v", lease=lease)
        assert client.get("l").lease == lease.id
        assert 0 < lease.time_to_live() <= 30
        assert not lease.lost
    assert client.get("l") is None  # revoked on exit: its keys went with it


HOLDER = """
import sys, cairn
c = cairn.Client([sys.argv[1]])
lease = c.lease(2)
c.put("held", "v", lease=lease)
print(lease.id, flush=True)
sys.stdin.read()
"""


def test_lease_expires_after_holder_is_killed(server) -> None:
    p = subprocess.Popen([sys.executable, "-c", HOLDER, server.endpoint],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         env=dict(os.environ))
    try:
        lease_id = int(p.stdout.readline())
        with cairn.Client([server.endpoint]) as c:
            assert c.get("held").lease == lease_id
            p.kill()
            p.wait()
            deadline = time.monotonic() + 30
            while c.get("held") is not None and time.monotonic() < deadline:
                time.sleep(0.1)  # poll interval of a bounded wait for the expiry
            assert c.get("held") is None
    finally:
        p.kill()
        p.wait()
