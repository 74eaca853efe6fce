"""cairn.testing: the users' test kit. Its pytest fixture starts three real cairn members; the
test kills the leader, pauses and restarts members, and a client and a lock keep working."""

import pytest

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


def test_a_write_after_a_timed_out_one_leaves_the_paused_member(
    cairn_cluster: Cluster,  # noqa: F811
) -> None:
    """A client with every endpoint whose member is paused (SIGSTOP: its connection stays open and
    nothing answers): the write in flight may have reached it, so it is not retried elsewhere and
    times out; the member is then left, and the next write goes to another member at once."""
    cluster = cairn_cluster
    leader = cluster.leader()
    follower = next(i for i in range(3) if i != leader)
    order = [follower] + [i for i in range(3) if i != follower]
    with cairn.Client([cluster.endpoint(i) for i in order], timeout=2.0) as c:
        ids = {m["id"]: int(m["name"][1:]) for m in c.cluster.list()}
        paused = ids[c.txn(success=[cairn.Put("fo", "0")]).header.member_id]  # the one it uses
        assert paused == follower
        cluster.pause(paused)
        try:
            with pytest.raises(cairn.DeadlineExceededError):
                c.put("fo", "1")
            c.put("fo", "2")
            assert c.get("fo").value == b"2"
        finally:
            cluster.resume(paused)
