#!/usr/bin/env bash
# Installs the Debian 12 packages Cairn needs (only the missing ones), then configures and builds.
#   scripts/setup.sh [BUILD_DIR] [ninja targets...]
# Environment: CAIRN_BUILD_TYPE (default RelWithDebInfo), CAIRN_SANITIZE=1 for ASan+UBSan,
#              CAIRN_JOBS (default: number of cores).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
shift || true

packages=(
  build-essential cmake ninja-build pkg-config git clang
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  librocksdb-dev libssl-dev libboost-fiber-dev libboost-dev libabsl-dev libcrypt-dev
  libgtest-dev libgmock-dev libbenchmark-dev pybind11-dev python3-dev
  etcd-server etcd-client python3-etcd3 python3-protobuf openssl
  python3-pytest python3-pytest-asyncio python3-mypy
  libfuzzer-14-dev nftables iproute2
  python3-prometheus-client  # tests/metrics: /metrics parsed by a real Prometheus parser
  libgoogle-perftools-dev  # tcmalloc for the server (bench/results/2026-12-07-grouped-puts.md)
)
missing=()
for p in "${packages[@]}"; do
  [[ $p == \#* ]] && continue
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  sudo_cmd=()
  [[ $(id -u) -ne 0 ]] && sudo_cmd=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

sanitize=OFF
[[ ${CAIRN_SANITIZE:-0} == 1 ]] && sanitize=ON
# ccache, when a developer has it, shares object files between work trees (CCACHE_BASEDIR).
launcher=()
if command -v ccache >/dev/null; then
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
  export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$(dirname "$root")} CCACHE_NOHASHDIR=1
fi
cmake -S "$root" -B "$build" -G Ninja "${launcher[@]}" \
  -DCMAKE_BUILD_TYPE="${CAIRN_BUILD_TYPE:-RelWithDebInfo}" -DCAIRN_SANITIZE=$sanitize >/dev/null
ninja -C "$build" -j "${CAIRN_JOBS:-$(nproc)}" "$@"
