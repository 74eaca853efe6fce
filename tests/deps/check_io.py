#!/usr/bin/env python3
"""Fails when code under server/ reads the clock or touches files other than through server/base.

ARCHITECTURE.md principle 2 ("a deterministic core, I/O at the edges") and docs/dependencies.md
("What base provides"): time comes from an injected base::Clock, files from an injected base::Env,
so tests and the simulation can substitute their own. This check scans every .h, .cc and .inc
under <root>/server/ except server/base/ (where the real Clock and Env live) for the calls that
bypass them (FORBIDDEN below). Comments and string literals are ignored.

A justified exception goes in ALLOWED with the reason; an ALLOWED entry that no longer matches
anything fails the check too, so the list never outlives its reasons.

Prints `path:line: "pattern" -- why` per offence and exits 1 if there is any; exits 0 with a
one-line summary otherwise.
"""

import argparse
import os
import sys

# What may not appear outside server/base, and what to use instead.
FORBIDDEN = {
    "steady_clock::now": "read time through an injected base::Clock (NowMs)",
    "system_clock::now": "read time through an injected base::Clock (WallMs)",
    "absl::Now(": "read time through an injected base::Clock",
    "sleep_for": "wait on a condition (absl::CondVar / Mutex::Await), not a sleep",
    "sleep_until": "wait on a condition (absl::CondVar / Mutex::Await), not a sleep",
    "::open(": "open files through an injected base::Env",
    "fopen(": "open files through an injected base::Env",
    "fsync(": "sync files through base::Env (WritableFile::Sync, Env::SyncDir)",
    "fdatasync(": "sync files through base::Env (WritableFile::Sync)",
    "::rename(": "rename files through base::Env::RenameFile",
    "::unlink(": "remove files through base::Env::RemoveFile",
    "std::ofstream": "write files through an injected base::Env",
    "std::ifstream": "read files through an injected base::Env",
    "std::fstream": "use files through an injected base::Env",
    "std::filesystem::remove": "remove files through base::Env::RemoveFile",
    "std::filesystem::rename": "rename files through base::Env::RenameFile",
    "std::filesystem::create_director": "create directories through base::Env::CreateDirs",
    "std::filesystem::directory_iterator": "list directories through base::Env::ListDir",
}

# Justified exceptions: (path under the root, pattern) -> why.
ALLOWED = {
    # gRPC deadlines are absolute times that gRPC enforces on its own real clock; a time from an
    # injected (possibly simulated) Clock would mean nothing to it.
    ("server/transport/transport.cc", "system_clock::now"):
        "gRPC call and shutdown deadlines (absolute, on gRPC's clock)",
    ("server/api/client_server.cc", "system_clock::now"):
        "grpc::Server::Shutdown deadline (absolute, on gRPC's clock)",
    # The pause between reconnects of a peer's gRPC stream paces the real network, like the
    # deadlines above; it is a bounded condition wait that Stop() interrupts, not a sleep.
    ("server/transport/transport.cc", "absl::Now("):
        "reconnect backoff of a gRPC stream (real network time)",
    # RocksDB does its own file I/O on the real file system, so the directory that holds its
    # database is created there; the WAL and snapshot directories go through the Env.
    ("server/etcdserver/server.cc", "std::filesystem::create_director"):
        "the parent directory of the RocksDB database (RocksDB is not behind base::Env)",
    # A failed restore removes the data dir it made, RocksDB's files included; Env has no
    # recursive removal, and RocksDB's files are not behind it anyway.
    ("server/etcdserver/snapshot_restore.cc", "std::filesystem::remove"):
        "cleanup of a half-made data dir (RocksDB files included) after a failed restore",
}

SOURCE_EXTENSIONS = (".h", ".cc", ".inc")


def StripCommentsAndStrings(text):
    """`text` with comments and the contents of string and character literals blanked out,
    newlines kept (so line numbers stay right)."""
    out = []
    i, n = 0, len(text)
    state = None  # None, "line", "block", '"', "'"
    while i < n:
        c = text[i]
        nxt = text[i + 1] if i + 1 < n else ""
        if state is None:
            if c == "/" and nxt == "/":
                state = "line"
                i += 2
                continue
            if c == "/" and nxt == "*":
                state = "block"
                i += 2
                continue
            if c in "\"'":
                state = c
            out.append(c)
        elif state == "line":
            if c == "\n":
                state = None
                out.append(c)
        elif state == "block":
            if c == "*" and nxt == "/":
                state = None
                i += 2
                continue
            if c == "\n":
                out.append(c)
        else:  # inside a string or character literal
            if c == "\\":
                i += 2
                continue
            if c == state:
                state = None
                out.append(c)
            elif c == "\n":
                out.append(c)
        i += 1
    return "".join(out)


def Check(root):
    """Returns (offences, stale allow-list entries, files scanned)."""
    offences = []
    used = set()
    scanned = 0
    server = os.path.join(root, "server")
    for dirpath, dirnames, filenames in os.walk(server):
        dirnames.sort()
        rel_dir = os.path.relpath(dirpath, root).replace(os.sep, "/")
        if rel_dir == "server/base" or rel_dir.startswith("server/base/"):
            continue
        for name in sorted(filenames):
            if not name.endswith(SOURCE_EXTENSIONS):
                continue
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, root).replace(os.sep, "/")
            scanned += 1
            with open(full, encoding="utf-8", errors="replace") as f:
                code = StripCommentsAndStrings(f.read())
            for lineno, line in enumerate(code.split("\n"), 1):
                for pattern, why in FORBIDDEN.items():
                    if pattern not in line:
                        continue
                    if (rel, pattern) in ALLOWED:
                        used.add((rel, pattern))
                        continue
                    offences.append(f'{rel}:{lineno}: "{pattern}" -- {why}')
    stale = [f'{path}: "{pattern}" is allowed but no longer used (drop it from ALLOWED)'
             for (path, pattern) in sorted(ALLOWED) if (path, pattern) not in used]
    return offences, stale, scanned


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", required=True, help="the source tree to scan")
    parser.add_argument("--no-stale-check", action="store_true",
                        help="do not fail on ALLOWED entries that match nothing (self-tests)")
    args = parser.parse_args()
    offences, stale, scanned = Check(args.root)
    if args.no_stale_check:
        stale = []
    for line in offences + stale:
        print(line)
    if offences or stale:
        print(f"check_io: {len(offences)} clock or file call(s) outside server/base, "
              f"{len(stale)} stale exception(s)")
        return 1
    if scanned == 0:
        print(f"check_io: no source files under {args.root}/server")
        return 1
    print(f"check_io: {scanned} files, time and files only through server/base")
    return 0


if __name__ == "__main__":
    sys.exit(main())
