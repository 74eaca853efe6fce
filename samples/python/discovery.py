"""Service discovery: register two instances, resolve them, pick round-robin.

    /usr/bin/python3 samples/python/discovery.py 127.0.0.1:2379
"""
import sys

import cairn

with cairn.Client(sys.argv[1:] or ["127.0.0.1:2379"]) as client:
    resolver = client.resolver("samples/api")
    with client.session(ttl=10) as s1, client.session(ttl=10) as s2:
        s1.register("samples/api", "api-1", "10.0.0.1:8080", {"zone": "a"})
        s2.register("samples/api", "api-2", "10.0.0.2:8080", {"zone": "b"})
        resolver.wait_for(2, timeout=10)
        for instance in resolver.instances():
            print("instance", instance)
        print("picked", resolver.pick().address, "then", resolver.pick().address)
