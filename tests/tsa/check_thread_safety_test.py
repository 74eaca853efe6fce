#!/usr/bin/env python3
"""Self-test of check_thread_safety.py on a small temporary tree: it passes correctly locked code,
fails (naming the file and the guarded member) when an ABSL_GUARDED_BY annotation is violated,
drops GCC-only flags of the compile command, and skips generated and non-server files."""

import json
import os
import subprocess
import sys
import tempfile
import unittest

CHECK = os.path.join(os.path.dirname(os.path.abspath(__file__)), "check_thread_safety.py")

HEADER = """#pragma once
#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

class Counter {
 public:
  void Add(int n) ABSL_LOCKS_EXCLUDED(mu_);
  int value() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  void AddLocked(int n) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { value_ += n; }
  mutable absl::Mutex mu_;
  int value_ ABSL_GUARDED_BY(mu_) = 0;
};
"""

GOOD = """#include "server/x/counter.h"

void Counter::Add(int n) {
  absl::MutexLock l(&mu_);
  AddLocked(n);
}

int Counter::value() const {
  absl::MutexLock l(&mu_);
  return value_;
}
"""

# Reads the guarded member without its mutex, and calls a REQUIRES function without it.
BAD = """#include "server/x/counter.h"

void Counter::Add(int n) { AddLocked(n); }

int Counter::value() const { return value_; }
"""


def Run(sources):
    """Writes server/x/counter.h plus `sources` ({relative path: text}) and checks them."""
    with tempfile.TemporaryDirectory() as root:
        os.makedirs(os.path.join(root, "server", "x"))
        with open(os.path.join(root, "server", "x", "counter.h"), "w") as f:
            f.write(HEADER)
        db = []
        for rel, text in sources.items():
            path = os.path.join(root, rel)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w") as f:
                f.write(text)
            # As CMake writes it for GCC, with a flag clang does not know.
            db.append({
                "directory": root,
                "command": f"/usr/bin/c++ -I{root} -DNDEBUG -O2 -g -Wall -Wextra -Werror "
                           "-Wno-error=maybe-uninitialized -pthread -std=c++20 "
                           f"-o {rel}.o -c {path}",
                "file": path,
            })
        cc = os.path.join(root, "compile_commands.json")
        with open(cc, "w") as f:
            json.dump(db, f)
        p = subprocess.run([sys.executable, CHECK, "--compile-commands", cc, "--root", root,
                            "--jobs", "2"], capture_output=True, text=True)
        return p.returncode, p.stdout + p.stderr


class CheckThreadSafetyTest(unittest.TestCase):

    def testCorrectLockingPasses(self):
        rc, out = Run({"server/x/counter.cc": GOOD})
        self.assertEqual(rc, 0, out)
        self.assertIn("1 files pass", out)

    def testViolatedAnnotationFails(self):
        rc, out = Run({"server/x/counter.cc": BAD})
        self.assertEqual(rc, 1, out)
        self.assertIn("server/x/counter.cc", out)
        self.assertIn("requires holding mutex 'mu_'", out)
        self.assertIn("reading variable 'value_'", out)

    def testOneBadFileAmongGoodOnesFails(self):
        rc, out = Run({"server/x/a.cc": GOOD, "server/x/b.cc": BAD, "server/x/c.cc": GOOD})
        self.assertEqual(rc, 1, out)
        self.assertIn("1 of 3 files fail: server/x/b.cc", out)

    def testGeneratedAndNonServerFilesAreSkipped(self):
        rc, out = Run({"server/x/counter.cc": GOOD, "server/x/gen.pb.cc": BAD,
                       "client/src/other.cc": BAD})
        self.assertEqual(rc, 0, out)
        self.assertIn("1 files pass", out)

    def testNoServerFilesFails(self):
        rc, out = Run({"client/src/other.cc": GOOD})
        self.assertEqual(rc, 1, out)


if __name__ == "__main__":
    unittest.main()
