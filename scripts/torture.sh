#!/usr/bin/env bash
# Long reliability runs (issue 16 item 5; docs/reliability.md): the register workload against real
# members with faults drawn from a seed, each run's history checked by tests/history.
#
#   scripts/torture.sh --members 5 --faults partition,kill,pause,member,disk --duration 600 --seed 7
#   scripts/torture.sh --runs 20 --seed 100 --duration 30        # seeds 100..119
#   scripts/torture.sh --server etcd --seed 7                     # the same harness against etcd 3.4
#
# A failing run prints its seed and keeps history + member logs in the directory it names; the
# same --seed (and the same other flags) replays the same fault schedule.
# Options: --build DIR (default build), --workload register|lock, --server cairn|etcd, --members N, --faults LIST,
# --duration SECONDS (faults: partition, kill, pause, member, disk; partition needs root: the run
# enters its own network namespace), --seed N, --runs N, --clients N, --snapshot-count N.
set -euo pipefail
cd "$(dirname "$0")/.."

build=build workload=register server=cairn members=3 faults=kill,pause,member,disk duration=600 seed=1 runs=1 clients=4 snapshot=100
while [[ $# -gt 0 ]]; do
  case "$1" in
    --build) build=$2 ;;
    --server) server=$2 ;;
    --workload) workload=$2 ;;
    --members) members=$2 ;;
    --faults) faults=$2 ;;
    --duration) duration=$2 ;;
    --seed) seed=$2 ;;
    --runs) runs=$2 ;;
    --clients) clients=$2 ;;
    --snapshot-count) snapshot=$2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift 2
done

bin="$build/tests/reliability/cairn-torture"
if [[ ! -x "$bin" ]]; then
  echo "building cairn-torture and cairn in $build" >&2
  ninja -C "$build" -j1 cairn-torture cairn
fi
export CAIRN_BINARY="${CAIRN_BINARY:-$PWD/$build/server/main/cairn}"

failed=0
for ((i = 0; i < runs; i++)); do
  s=$((seed + i))
  if ! "$bin" --workload "$workload" --server "$server" --members "$members" --faults "$faults" --duration "$duration" \
      --seed "$s" --clients "$clients" --snapshot-count "$snapshot"; then
    echo "FAILED: replay with: scripts/torture.sh --server $server --members $members --faults $faults --duration $duration --seed $s" >&2
    failed=$((failed + 1))
  fi
done
echo "torture: $runs run(s), $failed failed"
[[ $failed -eq 0 ]]
