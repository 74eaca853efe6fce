"""Cluster, maintenance and auth from Python, with the same expectations of etcd and cairn."""

import os

import pytest

import cairn


def test_cluster_and_status(client: cairn.Client, server) -> None:
    members = client.cluster.list()
    assert len(members) == 1 and members[0]["name"] == "m0"
    assert members[0]["client_urls"] == [f"http://{server.endpoint}"]
    st = client.maintenance.status()
    assert st.leader == members[0]["id"] and st.raft_term >= 1 and st.version
    with pytest.raises(cairn.MemberBadUrlsError):
        client.cluster.add(["not a url"])
    with pytest.raises(cairn.MemberNotFoundError):
        client.cluster.remove(12345)
    with pytest.raises(ValueError):
        client.cluster.add([])


def test_maintenance(client: cairn.Client, server, tmp_path) -> None:
    client.put("k", "v")
    assert client.maintenance.hash_kv() == client.maintenance.hash_kv()
    client.maintenance.defragment()
    size = client.maintenance.snapshot(str(tmp_path / "snap.db"))
    assert size == os.path.getsize(tmp_path / "snap.db") > 0
    assert client.maintenance.alarms() == []


def test_auth(client: cairn.Client, server) -> None:
    auth = client.auth
    auth.add_user("alice", "secret")
    auth.add_role("reader")
    auth.grant_permission("reader", "read", "app/", prefix=True)
    auth.grant_role("alice", "reader")
    assert "alice" in auth.users() and auth.user_roles("alice") == ["reader"]
    assert auth.role_permissions("reader") == [(0, b"app/", b"app0")]
    with pytest.raises(cairn.UserAlreadyExistsError):
        auth.add_user("alice", "again")
    auth.add_user("root", "rootpw")
    auth.grant_role("root", "root")
    auth.enable()
    try:
        with pytest.raises(cairn.Error):  # etcd 3.4: "user name is empty"
            client.put("app/x", "anonymous")
        with cairn.Client([server.endpoint], user="alice", password="secret") as alice:
            assert alice.get("app/x") is None
            with pytest.raises(cairn.PermissionDeniedError):
                alice.put("app/x", "1")
        with pytest.raises(cairn.AuthFailedError):
            cairn.Client([server.endpoint], user="alice", password="wrong")
    finally:
        with cairn.Client([server.endpoint], user="root", password="rootpw") as root:
            root.auth.disable()
    client.put("app/x", "anonymous again")  # auth is off
    auth.delete_user("alice")
    auth.delete_role("reader")
    assert "alice" not in auth.users()
