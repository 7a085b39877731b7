#!/usr/bin/env bash
# The build: configure and compile libmp, its programs, examples and (unless
# told not to) tests and benchmarks. CI's test command (scripts/test.sh) and
# the Dockerfile's build stage both build with this script and nothing else.
#
#   scripts/build.sh [BUILD_DIR]          default: build/ at the top
#
# Environment: MP_BUILD_TYPE (RelWithDebInfo), MP_SANITIZE (e.g.
# address,undefined: a Debug build with sanitizers), MP_BUILD_TESTS=OFF
# (also leaves out the benchmarks), MP_JOBS (2), MP_DESTDIR (when set,
# install there afterwards: $MP_DESTDIR/usr/local/bin/mp-broker ...).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$top/build}
type=${MP_BUILD_TYPE:-RelWithDebInfo}
args=()
if [ -n "${MP_SANITIZE:-}" ]; then
    type=Debug
    args+=("-DMP_SANITIZE=$MP_SANITIZE")
fi
if [ "${MP_BUILD_TESTS:-ON}" = OFF ]; then
    args+=(-DMP_BUILD_TESTS=OFF -DMP_BUILD_BENCH=OFF)
fi
cmake -S "$top" -B "$build" -DCMAKE_BUILD_TYPE="$type" ${args[@]+"${args[@]}"} >/dev/null
cmake --build "$build" -j"${MP_JOBS:-2}"
if [ -n "${MP_DESTDIR:-}" ]; then
    DESTDIR=$MP_DESTDIR cmake --install "$build" >/dev/null
fi
