#!/usr/bin/env bash
# Builds everything and runs the whole test suite with ctest.
# Environment: CAIRN_TEST_JOBS (parallel tests, default 2), CAIRN_SANITIZE=1 (ASan+UBSan build in
# build-asan), CAIRN_SIM_SEEDS (raft simulation seeds).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=$root/build
[[ ${CAIRN_SANITIZE:-0} == 1 ]] && build=$root/build-asan
"$root/scripts/setup.sh" "$build"
ctest --test-dir "$build" --output-on-failure -j "${CAIRN_TEST_JOBS:-2}"
