"""A loop of put/get/watch-create/cancel calls does not grow the process without bound."""

import resource

import cairn


def rss_kib() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def test_no_unbounded_growth(cairn_server) -> None:
    with cairn.Client([cairn_server.endpoint]) as c:
        def round_(n: int) -> None:
            for i in range(n):
                c.put("leak", str(i))
                c.get("leak")
                if i % 10 == 0:
                    c.watch("leak").cancel()
        round_(2000)  # warm up: caches, arenas, the interpreter
        before = rss_kib()
        round_(10000)
        grown = rss_kib() - before
        assert grown < 32 * 1024, f"RSS grew by {grown} KiB over 10,000 rounds"
