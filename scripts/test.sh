#!/usr/bin/env bash
# The test command: dependencies, a build in build/, and the whole suite.
#   MP_SANITIZE=address,undefined scripts/test.sh   -> build-asan/, sanitized
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
"$top/scripts/deps.sh"
build="$top/build"
args=(-DCMAKE_BUILD_TYPE=RelWithDebInfo)
if [ -n "${MP_SANITIZE:-}" ]; then
    build="$top/build-asan"
    args=(-DCMAKE_BUILD_TYPE=Debug "-DMP_SANITIZE=$MP_SANITIZE")
fi
cmake -S "$top" -B "$build" "${args[@]}" >/dev/null
cmake --build "$build" -j2
cd "$build" && ctest -j2 --output-on-failure --timeout 300
