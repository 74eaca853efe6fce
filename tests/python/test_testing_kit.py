"""cairn.testing: the users' test kit. Its pytest fixture starts three real cairn members; the
test kills the leader, pauses and restarts members, and a client and a lock keep working."""

import cairn
from cairn.testing import Cluster, cairn_cluster  # noqa: F401  (the fixture, as users import it)


def test_cluster_fixture_kill_pause_restart(cairn_cluster: Cluster) -> None:  # noqa: F811
    cluster = cairn_cluster
    assert len(cluster.endpoints) == 3
    first = cluster.leader()
    with cairn.Client(cluster.endpoints, timeout=10.0) as c:
        c.put("k", "1")
        with c.session(ttl=30) as s:
            with s.lock("kit") as lock:
                cluster.kill(first)
                second = cluster.leader()
                assert second != first
                # The lock survives the leader's death: a fenced write still commits.
                r = c.txn(compare=[lock.guard()], success=[cairn.Put("k", "2")])
                assert r.succeeded
        cluster.restart(first)
        cluster.wait_ready()
        leader = cluster.leader()
        follower = next(i for i in range(3) if i != leader)
        cluster.pause(follower)  # the other two still make a quorum
        with cairn.Client([cluster.endpoint(leader)], timeout=10.0) as direct:
            direct.put("k", "3")
        assert cluster.leader() == leader  # found without the paused member
        cluster.resume(follower)
        assert c.get("k").value == b"3"
        assert {m["name"] for m in c.cluster.list()} == {"m0", "m1", "m2"}


def test_put_fails_over_from_a_paused_member(cairn_cluster: Cluster) -> None:  # noqa: F811
    """A client with every endpoint, whose member is paused (SIGSTOP: its connection stays open
    and nothing answers), sends its next put to another member within the call's timeout: the
    paused member does not answer the probe, so nothing of the put is sent to it."""
    cluster = cairn_cluster
    leader = cluster.leader()
    follower = next(i for i in range(3) if i != leader)
    order = [follower] + [i for i in range(3) if i != follower]
    with cairn.Client([cluster.endpoint(i) for i in order], timeout=5.0) as c:
        ids = {m["id"]: int(m["name"][1:]) for m in c.cluster.list()}
        paused = ids[c.txn(success=[cairn.Put("fo", "0")]).header.member_id]  # the one it uses
        cluster.pause(paused)
        try:
            if paused == leader:
                cluster.leader()  # the other two elect a new leader first
            c.put("fo", "1")
            assert c.get("fo").value == b"1"
        finally:
            cluster.resume(paused)
        assert c.get("fo").value == b"1"
