"""Watch a prefix while writing to it.

    /usr/bin/python3 samples/python/watch.py 127.0.0.1:2379
"""
import sys

import cairn

with cairn.Client(sys.argv[1:] or ["127.0.0.1:2379"]) as client:
    with client.watch("samples/config/", prefix=True) as events:
        client.put("samples/config/color", "blue")
        client.delete("samples/config/color")
        for _ in range(2):
            event = events.get(timeout=10)
            assert event is not None
            print(event.type, event.kv.key.decode(), event.kv.value.decode())
