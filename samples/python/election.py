"""A leader selector: a microservice that does its leader-only work while it leads, and stops
when it loses leadership (here it resigns after one round).

    /usr/bin/python3 samples/python/election.py 127.0.0.1:2379
"""
import sys
import threading

import cairn

done = threading.Event()


def lead(grant: cairn.Grant, lost) -> None:
    print("leading with fencing token", grant.fencing_token)
    # ... leader-only work, checking lost.is_set() or waiting on lost.wait(timeout) ...
    done.set()


with cairn.Client(sys.argv[1:] or ["127.0.0.1:2379"]) as client:
    with client.session(ttl=10) as session:
        selector = session.selector("samples/election", lead, value="instance-1", requeue=False)
        done.wait(30)
        selector.close()
        print("leaderships:", selector.leaderships)
