#!/usr/bin/env bash
# The test command: dependencies, a build in build/ (scripts/build.sh), and
# the whole suite.
#   MP_SANITIZE=address,undefined scripts/test.sh   -> build-asan/, sanitized
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
"$top/scripts/deps.sh" --test
build="$top/build"
[ -n "${MP_SANITIZE:-}" ] && build="$top/build-asan"
"$top/scripts/build.sh" "$build"
cd "$build" && ctest -j2 --output-on-failure --timeout 300
