"""An election: campaign, lead (proclaiming a value), then resign so another process can lead.

    /usr/bin/python3 samples/python/election.py 127.0.0.1:2379
"""
import sys

import cairn

with cairn.Client(sys.argv[1:] or ["127.0.0.1:2379"]) as client:
    with client.session(ttl=10) as session:
        election = session.election("samples/election")
        leadership = election.campaign("instance-1")
        print("leading with fencing token", leadership.fencing_token)
        election.proclaim("instance-1 (ready)")
        print("leader says:", election.leader().value.decode())
        election.resign()
