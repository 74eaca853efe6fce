#!/usr/bin/env python3
"""Fails on an #include that breaks Cairn's dependency rule (ARCHITECTURE.md, docs/dependencies.md).

Scans every C++ file under server/, client/, common/, recipes/ and testing/ of the source tree given by --root,
classifies each #include by what it reaches (a server folder, the client's public or private
headers, generated protobuf messages, a gRPC service stub, gRPC itself, RocksDB, ...), and checks
it against ALLOWED below: the allowed arrows, written as data. Includes of the C++ standard
library, Abseil, Boost and other system headers are not restricted.

Prints one line per offending include, `path:line: "include" (category) -- rule`, and exits 1
if there was any; exits 0 and prints a one-line summary otherwise. A file in a folder that has no
rule is an error too, so a new folder must be given its arrows here before it builds.
"""

import argparse
import os
import re
import sys

# What each folder may include. Keys are modules (server/<folder>, client/include, client/src,
# common); values are the categories (see Classify) it may include. Everything not listed is
# forbidden. Keep in step with docs/dependencies.md.
ALLOWED = {
    # The neutral ground both the server and the client build on: only the standard library and
    # Abseil (the etcd error table).
    "common": set(),
    "base": {"base", "common"},
    # The deterministic Raft core: base and itself, no protos, no I/O libraries.
    "raft": {"base", "raft"},
    # The WAL stores Raft's entries and hard state, so it sees raft's types.
    "wal": {"base", "raft", "wal"},
    "storage": {"base", "storage", "rocksdb"},
    # mvcc, lease and auth know nothing of Raft, the transport, the member or gRPC.
    "mvcc": {"base", "storage", "mvcc", "proto", "rocksdb"},
    "lease": {"base", "storage", "mvcc", "lease", "proto", "rocksdb"},
    "auth": {"base", "storage", "mvcc", "auth", "proto", "rocksdb"},
    # The peer transport may implement the peer gRPC service (and nothing else below api may).
    "transport": {"base", "raft", "transport", "proto", "grpc_peer_service", "grpc"},
    # The member: everything below api, messages only, no gRPC.
    "etcdserver": {
        "base", "raft", "wal", "storage", "mvcc", "lease", "auth", "transport", "etcdserver",
        "proto", "rocksdb",
    },
    # The request gate and the gRPC services of the etcd API. The lock and election services run
    # on the recipes over an in-process client: the SDK's public headers, the recipes, and of the
    # client's internals exactly its in-process entry point (client/src/in_process.h).
    "api": {
        "base", "common", "raft", "wal", "storage", "mvcc", "lease", "auth", "transport",
        "etcdserver", "api", "proto", "grpc_api_service", "grpc", "client_api",
        "client_in_process",
    },
    "main": {"base", "etcdserver", "api", "main"},
    # The SDK's public headers: no gRPC, no generated code, nothing of the server.
    "client/include": {"client_api"},
    "client/src": {
        "client_api", "client_src", "client_in_process", "common", "proto", "grpc_api_service",
        "grpc",
    },
    # Recipes are built on the SDK's public headers only, so they work against any etcd v3 server.
    "recipes": {"client_api"},
    # The Python extension binds the SDK and the recipes through their public headers only.
    "bindings/python": {"client_api", "bindings"},
    # The test kit (cairn/testing/*) starts cairn processes through POSIX and probes them with the
    # SDK's public headers only, so users link it without gRPC or server code.
    "testing": {"client_api"},
}

# Why a category is forbidden, printed beside the offending include.
WHY = {
    "grpc": "only api, transport and client/src may use gRPC",
    "grpc_api_service": "only api and client/src may see the etcd API's gRPC services",
    "grpc_peer_service": "only transport may implement or call the peer gRPC service",
    "proto": "the Raft core and the client's public headers carry no generated protobuf types",
    "rocksdb": "RocksDB is reached through server/storage",
    "client_api": "the server does not depend on the client SDK",
    "client_src": "client/src is private to the client library",
    "client_in_process": "only api may build an in-process client",
    "recipes": "nothing below the recipes depends on them",
}

SOURCE_EXTENSIONS = (".h", ".cc", ".inc")
INCLUDE_RE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]')


def Classify(path):
    """The category of an included path, or None for an unrestricted (system) header."""
    if path.endswith(".grpc.pb.h"):
        return "grpc_peer_service" if path.startswith("cairnpb/peer.") else "grpc_api_service"
    if path.endswith(".pb.h"):
        return "proto"
    parts = path.split("/")
    if parts[0] == "server" and len(parts) > 2:
        return parts[1]  # a server folder; unknown folders are reported by ModuleOf
    if parts[0] == "common":
        return "common"
    if parts[0] == "cairn":
        return "client_api"
    if path == "client/src/in_process.h":
        return "client_in_process"  # the one client internal api may include
    if parts[:2] == ["client", "src"]:
        return "client_src"
    if parts[0] == "recipes":
        return "recipes"
    if parts[0] == "bindings":
        return "bindings"
    if parts[0] == "testing":
        return "testing"
    if parts[0] in ("grpcpp", "grpc", "grpc++"):
        return "grpc"
    if parts[0] == "rocksdb":
        return "rocksdb"
    return None


def ModuleOf(rel):
    parts = rel.split("/")
    if parts[0] == "server":
        return parts[1] if len(parts) > 2 else None
    if parts[0] == "client":
        return "/".join(parts[:2]) if len(parts) > 2 else None
    if parts[0] in ("common", "recipes", "testing"):
        return parts[0]
    if parts[0] == "bindings":
        return "/".join(parts[:2]) if len(parts) > 2 else None
    return None


def Rule(module, category):
    allowed = ", ".join(sorted(ALLOWED[module])) or "nothing of Cairn"
    why = WHY.get(category)
    if why is None:
        why = f"{module} may include only: {allowed}"
    return f"{module} may not include {category}: {why}"


def Check(root):
    """Returns (violations, files scanned)."""
    violations = []
    scanned = 0
    for top in ("server", "client", "common", "recipes", "testing", "bindings"):
        base = os.path.join(root, top)
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames.sort()
            for name in sorted(filenames):
                if not name.endswith(SOURCE_EXTENSIONS):
                    continue
                full = os.path.join(dirpath, name)
                rel = os.path.relpath(full, root).replace(os.sep, "/")
                module = ModuleOf(rel)
                if module not in ALLOWED:
                    violations.append(f"{rel}:1: no dependency rule for folder '{module}' "
                                      "(add its arrows to tests/deps/check_deps.py)")
                    continue
                scanned += 1
                with open(full, encoding="utf-8", errors="replace") as f:
                    for lineno, line in enumerate(f, 1):
                        m = INCLUDE_RE.match(line)
                        if not m:
                            continue
                        included = m.group(2)
                        category = Classify(included)
                        if category is None:
                            continue
                        if category not in ALLOWED[module] and category != module:
                            violations.append(f'{rel}:{lineno}: "{included}" ({category}) -- '
                                              f"{Rule(module, category)}")
    return violations, scanned


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", required=True, help="the source tree to scan")
    args = parser.parse_args()
    violations, scanned = Check(args.root)
    for v in violations:
        print(v)
    if violations:
        print(f"check_deps: {len(violations)} forbidden include(s) in {args.root}")
        return 1
    if scanned == 0:
        print(f"check_deps: no source files under {args.root}")
        return 1
    print(f"check_deps: {scanned} files, every include follows the dependency rule")
    return 0


if __name__ == "__main__":
    sys.exit(main())
