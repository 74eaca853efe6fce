#!/usr/bin/env python3
"""Clang's thread-safety analysis over every server/ source file (ARCHITECTURE.md "Threading").

Reads the build's compile_commands.json, keeps each server/ translation unit's include paths,
macro definitions and language standard (everything else, GCC-only flags included, is dropped),
and runs `clang++ -fsyntax-only -Wthread-safety -Werror` on it, several files at a time. Shared
state annotated with ABSL_GUARDED_BY / ABSL_EXCLUSIVE_LOCKS_REQUIRED and guarded by an
absl::Mutex is then checked: touching it without holding its mutex fails the check.

Generated code (.pb.cc) and files outside <root>/server/ are skipped. Prints every diagnostic of a
failing file and exits 1 if any file fails; prints the file count and the time taken otherwise.
"""

import argparse
import concurrent.futures
import json
import os
import shlex
import subprocess
import sys
import time

# Flags the analysis adds; -Wthread-safety covers the analysis, its attributes and negative
# capabilities are not required (-Wthread-safety-negative is not part of it).
CHECK_FLAGS = ["-fsyntax-only", "-Wthread-safety", "-Werror", "-ferror-limit=50"]


def KeptFlags(args):
    """The flags of a compile command that matter to parsing the file, GCC-only ones dropped."""
    kept = []
    i = 1  # args[0] is the compiler
    while i < len(args):
        a = args[i]
        if a in ("-I", "-isystem", "-iquote", "-D", "-U", "-include"):
            kept += [a, args[i + 1]]
            i += 2
            continue
        if a.startswith(("-I", "-isystem", "-iquote", "-D", "-U", "-std=")) or a == "-pthread":
            kept.append(a)
        elif a in ("-o", "-MF", "-MT", "-MQ"):
            i += 1  # skip the operand
        i += 1
    return kept


def Entries(compile_commands, root):
    server = os.path.join(os.path.realpath(root), "server") + os.sep
    with open(compile_commands) as f:
        db = json.load(f)
    seen = set()
    out = []
    for e in db:
        path = os.path.realpath(os.path.join(e["directory"], e["file"]))
        if not path.startswith(server) or path.endswith(".pb.cc") or path in seen:
            continue
        seen.add(path)
        args = e["arguments"] if "arguments" in e else shlex.split(e["command"])
        out.append((path, e["directory"], KeptFlags(args)))
    return sorted(out)


def CheckOne(clang, entry):
    path, directory, flags = entry
    start = time.monotonic()
    p = subprocess.run([clang] + flags + CHECK_FLAGS + [path], cwd=directory,
                       capture_output=True, text=True)
    return path, p.returncode, p.stdout + p.stderr, time.monotonic() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--compile-commands", required=True)
    parser.add_argument("--root", required=True, help="source tree; its server/ files are checked")
    parser.add_argument("--clang", default="/usr/bin/clang++")
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()

    if not os.access(args.clang, os.X_OK):
        print(f"check_thread_safety: {args.clang} not found (scripts/setup.sh installs clang)")
        return 1
    entries = Entries(args.compile_commands, args.root)
    if not entries:
        print(f"check_thread_safety: no server/ files in {args.compile_commands}")
        return 1
    start = time.monotonic()
    failed = []
    times = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs) as pool:
        for path, rc, output, seconds in pool.map(lambda e: CheckOne(args.clang, e), entries):
            rel = os.path.relpath(path, args.root)
            times.append((seconds, rel))
            if rc != 0:
                failed.append(rel)
                print(f"--- {rel}\n{output}", end="" if output.endswith("\n") else "\n")
    elapsed = time.monotonic() - start
    slowest = ", ".join(f"{r} {s:.1f}s" for s, r in sorted(times, reverse=True)[:3])
    if failed:
        print(f"check_thread_safety: {len(failed)} of {len(entries)} files fail: "
              + " ".join(failed))
        return 1
    print(f"check_thread_safety: {len(entries)} files pass -Wthread-safety in {elapsed:.1f}s "
          f"with {args.jobs} jobs (slowest: {slowest})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
