"""A lock with a fencing-guarded write: the write commits only while we still hold the lock.

    /usr/bin/python3 samples/python/lock.py 127.0.0.1:2379
"""
import sys

import cairn

with cairn.Client(sys.argv[1:] or ["127.0.0.1:2379"]) as client:
    with client.session(ttl=10) as session:
        with session.lock("samples/lock") as lock:
            print("holding the lock, fencing token", lock.fencing_token)
            r = client.txn(compare=[lock.guard()], success=[cairn.Put("samples/owner", "me")])
            print("guarded write committed:", r.succeeded)
