#!/usr/bin/env python3
"""Self-test of check_io.py: a clean tree passes; each kind of clock or file call outside
server/base fails with the file, the line and what to use instead; comments, strings and
server/base itself are not flagged; a stale exception fails."""

import os
import subprocess
import sys
import tempfile
import unittest

CHECK = os.path.join(os.path.dirname(os.path.abspath(__file__)), "check_io.py")

GOOD = {
    "server/base/clock.cc": "auto t = std::chrono::steady_clock::now();\n",
    "server/base/env.cc": "int fd = ::open(p, O_RDONLY);\n::fsync(fd);\n",
    "server/mvcc/watch_hub.cc":
        "// steady_clock::now() is not used here\nint64_t t = clock_->NowMs();\n",
    "server/api/x.cc": 'const char* s = "fopen(";\nauto u = "http://h:1"; int y = 0;\n',
}


def Run(files, *flags):
    with tempfile.TemporaryDirectory() as root:
        for rel, text in files.items():
            path = os.path.join(root, rel)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w") as f:
                f.write(text)
        p = subprocess.run([sys.executable, CHECK, "--root", root, *flags], capture_output=True,
                           text=True)
        return p.returncode, p.stdout + p.stderr


class CheckIoTest(unittest.TestCase):

    def assertFails(self, rel, text, want_line, want_pattern):
        files = dict(GOOD)
        files[rel] = text
        rc, out = Run(files, "--no-stale-check")
        self.assertEqual(rc, 1, out)
        self.assertIn(f'{rel}:{want_line}: "{want_pattern}"', out)

    def testGoodTreePasses(self):
        rc, out = Run(GOOD, "--no-stale-check")
        self.assertEqual(rc, 0, out)
        self.assertIn("time and files only through server/base", out)

    def testSteadyClock(self):
        self.assertFails("server/mvcc/watch_hub.cc",
                         "int a;\nauto t = std::chrono::steady_clock::now();\n", 2,
                         "steady_clock::now")

    def testSystemClock(self):
        self.assertFails("server/lease/lessor.cc", "auto t = std::chrono::system_clock::now();\n",
                         1, "system_clock::now")

    def testRawOpenAndFsync(self):
        self.assertFails("server/storage/snapshot.cc", "int fd = ::open(p, 0);\n", 1, "::open(")
        self.assertFails("server/storage/snapshot.cc", "int a;\n::fsync(fd);\n", 2, "fsync(")

    def testStreams(self):
        self.assertFails("server/transport/transport.cc", "std::ofstream out(p);\n", 1,
                         "std::ofstream")
        self.assertFails("server/etcdserver/server.cc", "FILE* f = fopen(p, \"r\");\n", 1,
                         "fopen(")

    def testSleep(self):
        self.assertFails("server/etcdserver/x.cc",
                         "std::this_thread::sleep_for(std::chrono::seconds(1));\n", 1, "sleep_for")

    def testCodeAfterAStringWithSlashesIsStillChecked(self):
        self.assertFails("server/api/y.cc",
                         'auto u = "http://h"; auto t = std::chrono::steady_clock::now();\n', 1,
                         "steady_clock::now")

    def testStaleExceptionFails(self):
        rc, out = Run(GOOD)
        self.assertEqual(rc, 1, out)
        self.assertIn("is allowed but no longer used", out)


if __name__ == "__main__":
    unittest.main()
