#!/usr/bin/env python3
"""Self-test of check_deps.py: it passes a tree that follows the rule and fails, naming the file,
the line and the rule, on each kind of forbidden include."""

import os
import subprocess
import sys
import tempfile
import unittest

CHECK = os.path.join(os.path.dirname(os.path.abspath(__file__)), "check_deps.py")

# A tiny tree that follows the rule.
GOOD = {
    "common/etcd_errors.h": '#include <string_view>\n#include "absl/status/status.h"\n',
    "server/base/errors.h": '#include "common/etcd_errors.h"\n',
    "server/raft/raft.h": '#include "server/base/check.h"\n#include "server/raft/types.h"\n',
    "server/wal/wal.h": '#include "server/raft/message.h"\n',
    "server/mvcc/kv_store.h": '#include "etcdserverpb/rpc.pb.h"\n#include "server/storage/backend.h"\n',
    "server/transport/transport.cc": '#include "cairnpb/peer.grpc.pb.h"\n#include <grpcpp/server.h>\n',
    "server/api/services.h": '#include "etcdserverpb/rpc.grpc.pb.h"\n',
    "server/api/recipe_services.cc": ('#include "cairn/recipes/mutex.h"\n'
                                      '#include "client/src/in_process.h"\n'),
    "client/include/cairn/kv.h": '#include "absl/status/status.h"\n#include "cairn/types.h"\n',
    "client/src/core.h": '#include <grpcpp/grpcpp.h>\n#include "etcdserverpb/rpc.grpc.pb.h"\n',
    "recipes/include/cairn/recipes/mutex.h": '#include "cairn/client.h"\n#include <string>\n',
    "testing/include/cairn/testing/cluster.h": '#include "cairn/client.h"\n#include <sys/types.h>\n',
}


def Run(files):
    with tempfile.TemporaryDirectory() as root:
        for rel, text in files.items():
            path = os.path.join(root, rel)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w") as f:
                f.write(text)
        p = subprocess.run([sys.executable, CHECK, "--root", root], capture_output=True,
                           text=True)
        return p.returncode, p.stdout + p.stderr


class CheckDepsTest(unittest.TestCase):

    def assertFails(self, rel, text, want_line, want_rule):
        files = dict(GOOD)
        files[rel] = text
        rc, out = Run(files)
        self.assertEqual(rc, 1, out)
        self.assertIn(f"{rel}:{want_line}:", out)
        self.assertIn(want_rule, out)

    def testGoodTreePasses(self):
        rc, out = Run(GOOD)
        self.assertEqual(rc, 0, out)
        self.assertIn("every include follows the dependency rule", out)

    def testRaftIncludingTheMember(self):
        self.assertFails("server/raft/raft.cc",
                         '#include "server/raft/raft.h"\n\n#include "server/etcdserver/server.h"\n',
                         3, "raft may not include etcdserver")

    def testRaftIncludingProtos(self):
        self.assertFails("server/raft/raft.cc", '#include "cairnpb/internal.pb.h"\n', 1,
                         "raft may not include proto")

    def testStorageIncludingTheWal(self):
        # CRC-32C and the Env are in base: storage needs nothing of the WAL.
        self.assertFails("server/storage/snapshot.cc", '#include "server/wal/wal.h"\n', 1,
                         "storage may not include wal")

    def testMvccIncludingRaft(self):
        self.assertFails("server/mvcc/kv_store.cc", '#include "server/raft/raw_node.h"\n', 1,
                         "mvcc may not include raft")

    def testLeaseIncludingGrpc(self):
        self.assertFails("server/lease/lessor.cc", '#  include <grpcpp/grpcpp.h>\n', 1,
                         "lease may not include grpc: only api, transport and client/src")

    def testEtcdserverIncludingAService(self):
        self.assertFails("server/etcdserver/server.cc", '#include "etcdserverpb/rpc.grpc.pb.h"\n',
                         1, "etcdserver may not include grpc_api_service")

    def testTransportIncludingTheApiService(self):
        self.assertFails("server/transport/transport.cc", '#include "etcdserverpb/rpc.grpc.pb.h"\n',
                         1, "transport may not include grpc_api_service")

    def testClientPublicHeaderIncludingGeneratedCode(self):
        self.assertFails("client/include/cairn/kv.h", '#include "etcdserverpb/rpc.pb.h"\n', 1,
                         "client/include may not include proto")

    def testClientPublicHeaderIncludingGrpc(self):
        self.assertFails("client/include/cairn/kv.h", "#include <grpcpp/grpcpp.h>\n", 1,
                         "client/include may not include grpc")

    def testClientIncludingTheServer(self):
        self.assertFails("client/src/kv.cc", '#include "server/base/errors.h"\n', 1,
                         "client/src may not include base")

    def testCommonIncludingTheServer(self):
        self.assertFails("common/etcd_errors.h", '#include "server/base/check.h"\n', 1,
                         "common may not include base")

    def testRecipesIncludingClientInternals(self):
        self.assertFails("recipes/src/mutex.cc", '#include "client/src/core.h"\n', 1,
                         "recipes may not include client_src")

    def testRecipesIncludingGeneratedCode(self):
        self.assertFails("recipes/src/mutex.cc", '#include "cairn/client.h"\n#include "etcdserverpb/rpc.pb.h"\n',
                         2, "recipes may not include proto")

    def testTestKitIncludingTheHarnessOrGrpc(self):
        self.assertFails("testing/src/cluster.cc", '#include "cairn/client.h"\n#include <grpcpp/grpcpp.h>\n',
                         2, "testing may not include grpc")
        self.assertFails("testing/src/cluster.cc", '#include "server/base/check.h"\n', 1,
                         "testing may not include base")

    def testServerIncludingRecipes(self):
        self.assertFails("server/api/services.cc", '#include "recipes/include/cairn/recipes/mutex.h"\n',
                         1, "api may not include recipes")

    def testApiIncludingOtherClientInternals(self):
        self.assertFails("server/api/recipe_services.cc", '#include "client/src/core.h"\n', 1,
                         "api may not include client_src")

    def testMemberIncludingTheInProcessClient(self):
        self.assertFails("server/etcdserver/server.cc", '#include "client/src/in_process.h"\n', 1,
                         "etcdserver may not include client_in_process")

    def testRecipesIncludingTheInProcessClient(self):
        self.assertFails("recipes/src/mutex.cc", '#include "client/src/in_process.h"\n', 1,
                         "recipes may not include client_in_process")

    def testFolderWithoutARule(self):
        self.assertFails("server/newthing/x.cc", "#include <string>\n", 1,
                         "no dependency rule for folder 'newthing'")

    def testEmptyTreeFails(self):
        rc, out = Run({"README.md": "nothing\n"})
        self.assertEqual(rc, 1, out)


if __name__ == "__main__":
    unittest.main()
