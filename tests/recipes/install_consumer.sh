#!/usr/bin/env bash
# Installs the cairn package (component `client`: cairn::client, cairn::recipes, cairn::testing)
# from BUILD_DIR into a temporary prefix, builds tests/recipes/install_consumer against it with
# find_package(cairn), and runs it with CAIRN_BINARY set to the built server (the temporary prefix
# is not the prefix the package was configured for, so the installed-path fallback cannot apply).
#   install_consumer.sh BUILD_DIR CONSUMER_SOURCE_DIR CAIRN_BINARY
set -euo pipefail
build=$1
source=$2
cairn=$3
work=$(mktemp -d "${TMPDIR:-/tmp}/cairn-install-test-XXXXXX")
trap 'rm -rf "$work"' EXIT
cmake --install "$build" --prefix "$work/prefix" --component client >"$work/install.log" 2>&1 ||
  { cat "$work/install.log"; exit 1; }
test -f "$work/prefix/include/cairn/testing/cluster.h"
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
cmake -S "$source" -B "$work/build" "${generator[@]}" -DCMAKE_PREFIX_PATH="$work/prefix" \
  >"$work/configure.log" 2>&1 || { cat "$work/configure.log"; exit 1; }
cmake --build "$work/build" -j 1 >"$work/build.log" 2>&1 || { cat "$work/build.log"; exit 1; }
CAIRN_BINARY="$cairn" "$work/build/consumer"
