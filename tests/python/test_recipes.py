"""Sessions, locks and elections from Python, against etcd and cairn: exclusion between
processes, fencing, failover, Ctrl-C, the GIL and threads."""

import os
import signal
import subprocess
import sys
import threading
import time

import pytest

import cairn


def test_lock_with_fencing_guard(client: cairn.Client) -> None:
    with client.session(ttl=10) as s:
        with s.lock("L") as lock:
            grant = lock.grant
            assert lock.fencing_token > 0
            assert client.txn(compare=[lock.guard()], success=[cairn.Put("owner", "me")]).succeeded
            assert client.get("owner").value == b"me"
            other = client.session(ttl=10)
            assert other.lock("L").try_acquire() is None  # held: no waiting
            other.close()
        # Released: the old guard no longer holds.
        assert not client.txn(compare=[grant.guard()]).succeeded


def test_lock_timeout_and_bad_input(client: cairn.Client) -> None:
    s1 = client.session(ttl=10)
    s2 = client.session(ttl=10)
    try:
        held = s1.lock("T")
        held.acquire()
        with pytest.raises(cairn.DeadlineExceededError):
            s2.lock("T").acquire(timeout=0.5)
        held.release()
        assert s2.lock("T").acquire(timeout=10).fencing_token > 0
        with pytest.raises(ValueError):
            s1.lock("")
        with pytest.raises(ValueError):
            client.session(ttl=0)
    finally:
        s1.close()
        s2.close()


def test_election(client: cairn.Client) -> None:
    s1 = client.session(ttl=10)
    s2 = client.session(ttl=10)
    try:
        e1, e2 = s1.election("E"), s2.election("E")
        g1 = e1.campaign("one")
        assert e2.leader().value == b"one" and e2.leader().fencing_token == g1.fencing_token
        result = {}
        t = threading.Thread(target=lambda: result.update(g=e2.campaign("two")))
        t.start()
        e1.proclaim("one-again")
        assert e2.leader().value == b"one-again"
        s1.close()  # the leader's session ends: the follower takes over
        t.join(30)
        assert not t.is_alive()
        assert result["g"].fencing_token > g1.fencing_token
        assert e2.leader().value == b"two"
    finally:
        s1.close()
        s2.close()


def test_gil_is_released_during_a_lock_wait(client: cairn.Client) -> None:
    s1 = client.session(ttl=10)
    s2 = client.session(ttl=10)
    try:
        s1.lock("G").acquire()
        waiting = threading.Thread(target=lambda: s2.lock("G").acquire(timeout=3))
        waiting.daemon = True
        waiting.start()
        # This thread keeps running Python while the other one waits for the lock.
        count = 0
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            count += 1
        assert count > 10000
        s1.close()
        waiting.join(30)
        assert not waiting.is_alive()
    finally:
        s1.close()
        s2.close()


def test_eight_threads_share_one_client(client: cairn.Client) -> None:
    errors = []

    def work(i: int) -> None:
        try:
            for j in range(50):
                client.put(f"th/{i}/{j}", str(j))
                assert client.get(f"th/{i}/{j}").value == str(j).encode()
        except Exception as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(client.get_prefix("th/", keys_only=True)) == 400


LOCKER = """
import sys, time, cairn
c = cairn.Client([sys.argv[1]])
s = c.session(ttl=int(sys.argv[3]))
kind = sys.argv[4]
if kind == "lock":
    acquire = s.lock("X").acquire
elif kind == "rwlock":
    acquire = lambda: s.rwlock("X").acquire(write=True)
elif kind == "semaphore":
    acquire = s.semaphore("X", 1).acquire
elif kind == "multi_lock":  # takes W, then waits for X
    acquire = lambda: s.multi_lock(["X", "W"]).acquire()
elif kind == "double_barrier":  # the only one in, of two
    acquire = lambda: s.double_barrier("X", 2).enter()
elif kind == "queue":  # an empty queue
    acquire = lambda: s.queue("X").get()
elif kind == "latch":  # the holder leads
    acquire = s.latch("X", "me").wait
else:
    acquire = lambda: s.election("X").campaign("me")
print("waiting", flush=True)
grant = acquire()
print("locked", grant.fencing_token, flush=True)
if sys.argv[2] == "hold":
    sys.stdin.readline()          # wait (possibly while SIGSTOPped) until told to write
    r = c.txn(compare=[grant.guard()], success=[cairn.Put("fenced", "stale")])
    print("wrote", r.succeeded, flush=True)
"""


def spawn(endpoint: str, mode: str, ttl: int = 2, kind: str = "lock") -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", LOCKER, endpoint, mode, str(ttl), kind],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ))


def test_locks_exclude_between_processes_and_fence_a_paused_holder(server) -> None:
    holder = spawn(server.endpoint, "hold")
    waiter = None
    try:
        assert holder.stdout.readline().startswith("waiting")
        first = holder.stdout.readline().split()
        assert first[0] == "locked"
        waiter = spawn(server.endpoint, "take")
        assert waiter.stdout.readline().startswith("waiting")
        holder.send_signal(signal.SIGSTOP)  # frozen past its TTL: its session expires
        second = waiter.stdout.readline().split()
        assert second[0] == "locked" and int(second[1]) > int(first[1])
        holder.send_signal(signal.SIGCONT)
        holder.stdin.write("go\n")
        holder.stdin.flush()
        assert holder.stdout.readline().split() == ["wrote", "False"]  # the guard refused it
        with cairn.Client([server.endpoint]) as c:
            assert c.get("fenced") is None
    finally:
        for p in (holder, waiter):
            if p is not None:
                p.send_signal(signal.SIGCONT)
                p.kill()
                p.wait()


def _hold(s: cairn.Session, kind: str) -> None:
    """Takes what the LOCKER of `kind` then waits for."""
    if kind in ("double_barrier", "queue"):
        return  # the waiter waits for a second participant / an item
    if kind in ("lock", "multi_lock"):
        s.lock("X").acquire()
    elif kind == "rwlock":
        s.rwlock("X").acquire(write=False)  # a reader: the LOCKER's writer waits for it
    elif kind == "semaphore":
        s.semaphore("X", 1).acquire()
    else:
        s.election("X").campaign("a")


# Keys under "X/" while the LOCKER of each kind waits (the holder's and the waiter's), and after
# Ctrl-C ended its wait. A latch's wait is not its campaign: its key stays with its session.
KEYS_WHILE_WAITING = {"lock": (2, 1), "rwlock": (2, 1), "semaphore": (2, 1), "election": (2, 1),
                      "multi_lock": (2, 1), "double_barrier": (1, 0), "queue": (0, 0),
                      "latch": (2, None)}


@pytest.mark.parametrize("kind", list(KEYS_WHILE_WAITING))
def test_ctrl_c_interrupts_a_wait_and_removes_the_key(server, kind: str) -> None:
    """Ctrl-C in a blocked lock, rwlock, semaphore, multi-lock, double barrier, queue, campaign
    or latch wait raises KeyboardInterrupt and leaves no waiting key behind."""
    waiting, after = KEYS_WHILE_WAITING[kind]
    with cairn.Client([server.endpoint]) as c:
        s = c.session(ttl=30)
        _hold(s, kind)
        waiter = spawn(server.endpoint, "take", ttl=30, kind=kind)
        try:
            assert waiter.stdout.readline().startswith("waiting")
            deadline = time.monotonic() + 30
            while len(c.get_prefix("X/", keys_only=True)) < waiting and time.monotonic() < deadline:
                time.sleep(0.05)  # poll interval: the waiter's key appears
            assert len(c.get_prefix("X/", keys_only=True)) == waiting
            waiter.send_signal(signal.SIGINT)
            _, err = waiter.communicate(timeout=30)
            assert waiter.returncode != 0
            assert "KeyboardInterrupt" in err
            if after is not None:
                assert len(c.get_prefix("X/", keys_only=True)) == after  # the holder's, if any
            assert c.get_prefix("W/", keys_only=True) == []  # a multi-lock gave back what it took
        finally:
            waiter.kill()
            waiter.wait()
            s.close()
