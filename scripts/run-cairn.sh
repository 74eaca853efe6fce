#!/usr/bin/env bash
# Builds Cairn if needed and starts `cairn` on its embedded default: one member serving
# 127.0.0.1:2379 with its data in ./default.cairn. Extra arguments go to cairn (see cairn --help).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/setup.sh" "$root/build" cairn
exec "$root/build/server/main/cairn" "$@"
