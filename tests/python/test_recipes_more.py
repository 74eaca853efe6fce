"""The other recipes from Python, against etcd and cairn."""

import threading
import time

import pytest

import cairn


@pytest.fixture
def session(client: cairn.Client):
    s = client.session(ttl=10)
    yield s
    s.close()


def test_rwlock(client: cairn.Client, session) -> None:
    other = client.session(ttl=10)
    try:
        rw1, rw2 = session.rwlock("rw"), other.rwlock("rw")
        with rw1.read():
            with rw2.read(timeout=10):  # readers share
                pass
            with pytest.raises(cairn.DeadlineExceededError):
                rw2.acquire(write=True, timeout=0.5)  # a writer waits for the reader
        with rw1:  # write
            assert client.txn(compare=[rw1.guard()], success=[cairn.Put("rw-out", "1")]).succeeded
    finally:
        other.close()


def test_semaphore_and_multi_lock(client: cairn.Client, session) -> None:
    sessions = [client.session(ttl=10) for _ in range(3)]
    try:
        a, b, c = (s.semaphore("sem", 2) for s in sessions)
        a.acquire()
        b.acquire()
        with pytest.raises(cairn.DeadlineExceededError):
            c.acquire(timeout=0.5)
        a.release()
        assert c.acquire(timeout=10).fencing_token > 0
        with pytest.raises(ValueError):
            session.semaphore("sem0", 0)
        with session.multi_lock(["m2", "m1"]) as ml:
            assert len(ml.grants) == 2
            assert client.txn(compare=ml.guards(), success=[cairn.Put("ml", "x")]).succeeded
    finally:
        for s in sessions:
            s.close()


def test_barriers(client: cairn.Client, session) -> None:
    b = session.barrier("gate")
    b.hold()
    with pytest.raises(cairn.DeadlineExceededError):
        b.wait(timeout=0.5)
    b.release()
    b.wait(timeout=10)
    others = [client.session(ttl=10) for _ in range(2)]
    try:
        entered = []
        threads = [threading.Thread(target=lambda s=s: (s.double_barrier("db", 3).enter(10),
                                                        entered.append(1)))
                   for s in others]
        for t in threads:
            t.start()
        db = session.double_barrier("db", 3)
        db.enter(timeout=10)
        for t in threads:
            t.join(30)
        assert len(entered) == 2
    finally:
        for s in others:
            s.close()


def test_queues(client: cairn.Client, session) -> None:
    q = session.queue("jobs")
    for i in range(3):
        q.put(f"job{i}")
    assert len(q) == 3
    assert [q.get(timeout=10) for _ in range(3)] == [b"job0", b"job1", b"job2"]
    assert q.get_nowait() is None
    got = []
    t = threading.Thread(target=lambda: got.append(q.get(timeout=30)))
    t.start()
    q.put("late")
    t.join(30)
    assert got == [b"late"]
    pq = session.priority_queue("pjobs")
    pq.put("low", priority=9)
    pq.put("high", priority=1)
    assert pq.get(timeout=10) == b"high"
    with pytest.raises(ValueError):
        q.put("x", priority=3)  # a plain queue has no priorities


def test_counter_and_stm(client: cairn.Client) -> None:
    c = client.counter("hits")
    assert c.get() == 0
    threads = [threading.Thread(target=lambda: [c.add() for _ in range(20)]) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert c.get() == 80
    assert c.compare_and_set(80, 100) and not c.compare_and_set(80, 1)

    client.put("acct/a", "100")
    client.put("acct/b", "0")

    def transfer(stm: cairn.Stm) -> None:
        a = int(stm.get("acct/a"))
        b = int(stm.get("acct/b"))
        stm.put("acct/a", str(a - 10))
        stm.put("acct/b", str(b + 10))

    threads = [threading.Thread(target=lambda: client.stm(transfer)) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert (client.get("acct/a").value, client.get("acct/b").value) == (b"50", b"50")
    with pytest.raises(ZeroDivisionError):
        client.stm(lambda stm: (stm.put("acct/a", "0"), 1 / 0))
    assert client.get("acct/a").value == b"50"  # nothing written
    with pytest.raises(ValueError):
        client.stm(transfer, isolation="whatever")


def test_discovery_and_cache(client: cairn.Client, session) -> None:
    r = client.resolver("svc")
    session.register("svc", "a", "10.0.0.1:80", {"zone": "x"})
    other = client.session(ttl=10)
    other.register("svc", "b", "10.0.0.2:80")
    r.wait_for(2, timeout=10)
    got = {i.address: i for i in r.instances()}
    assert got["10.0.0.1:80"].id == "a" and got["10.0.0.1:80"].metadata == {"zone": "x"}
    picks = {r.pick().address for _ in range(4)}
    assert picks == {"10.0.0.1:80", "10.0.0.2:80"}  # round robin visits both
    r.mark_down("10.0.0.1:80", 60)
    assert {r.pick().address for _ in range(3)} == {"10.0.0.2:80"}
    other.close()  # its instance goes with its session

    cache = client.cache("cfg/")
    events = []
    cache.add_listener(lambda evs, rev, resync: events.extend(e.kv.key for e in evs))
    client.put("cfg/a", "1")
    rev = client.get("cfg/a").mod_revision
    cache.wait_for_revision(rev, timeout=10)
    assert cache.get("cfg/a").value == b"1" and len(cache) == 1
    deadline = time.monotonic() + 10
    while not events and time.monotonic() < deadline:
        time.sleep(0.01)  # poll interval: the listener runs on a client thread
    assert events == [b"cfg/a"]


def test_observe_latch_and_selector(client: cairn.Client, session) -> None:
    e = session.election("obs")
    leaders = e.observe()
    e.campaign("first")
    assert next(leaders).value == b"first"
    e.proclaim("second")
    assert next(leaders).value == b"second"
    e.resign()

    other = client.session(ttl=10)
    try:
        latch = session.latch("latch", "me")
        latch.wait(timeout=10)
        assert latch.is_leader
        gained = threading.Event()
        latch2 = other.latch("latch", "you", on_leader=lambda g: gained.set())
        assert not latch2.is_leader
        latch.close()
        assert gained.wait(10) and latch2.is_leader
        latch2.close()

        ran = threading.Event()

        def lead(grant: cairn.Grant, lost) -> None:
            assert grant.fencing_token > 0
            ran.set()
            lost.wait(30)  # lead until told to stop

        sel = other.selector("sel", lead, requeue=False)
        assert ran.wait(10)
        sel.close()
        assert sel.leaderships == 1
    finally:
        other.close()


def test_resolver_wait_is_interrupted_by_ctrl_c(cairn_server) -> None:
    """A blocking resolver wait holds no thread and, like the recipe waits, is interrupted by
    Ctrl-C (KeyboardInterrupt) long before its timeout; the resolver stays usable."""
    import os
    import signal
    with cairn.Client([cairn_server.endpoint]) as c:
        r = c.resolver("ki")
        timer = threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGINT))
        timer.start()
        with pytest.raises(KeyboardInterrupt):
            r.wait_for(1, timeout=60)
        timer.join()
        with c.session(ttl=10) as s:
            s.register("ki", "a", "10.0.0.1:80")
            r.wait_for(1, timeout=20)
        with pytest.raises(cairn.DeadlineExceededError):
            r.wait_for(5, timeout=0.2)
