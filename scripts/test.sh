#!/usr/bin/env bash
# Builds everything and runs the whole test suite with ctest.
# Environment: CAIRN_TEST_JOBS (parallel tests, default 2), CAIRN_SANITIZE=1 (ASan+UBSan build in
# build-asan), CAIRN_SIM_SEEDS (raft simulation seeds).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=$root/build
[[ ${CAIRN_SANITIZE:-0} == 1 ]] && build=$root/build-asan
"$root/scripts/setup.sh" "$build"
# A test that fails is run once more and fails the suite only if it fails again; its first
# failure, output included, stays in the log. A stopgap, kept on the loaded 2-core CI machine:
# the three flaky failures it was added for are explained and fixed in the tests
# (MaintenanceQuotaTest: etcd applies the put it answers NOSPACE; FailoverTest and
# MaintenanceDefragTest: gRPC 1.51's spurious first-connect failure, see MakeConnectedTestChannel).
# Any test that needs the retry is a bug to chase. CAIRN_TEST_RETRY=0 turns the retry off.
retry=()
[[ ${CAIRN_TEST_RETRY:-1} == 1 ]] && retry=(--repeat until-pass:2)
ctest --test-dir "$build" --output-on-failure -j "${CAIRN_TEST_JOBS:-2}" "${retry[@]}"
