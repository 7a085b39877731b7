#!/usr/bin/env bash
# The test command: dependencies, a build in build/ (scripts/build.sh), and
# the whole suite but the container test (label "container": the image and
# the compose cluster with podman, minutes long) and the dashboard's browser
# test (label "browser": it installs Chromium); .ci/run runs both:
# cd build && ctest -L 'container|browser'.
#   MP_SANITIZE=address,undefined scripts/test.sh   -> build-asan/, sanitized
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
"$top/scripts/deps.sh" --test
build="$top/build"
[ -n "${MP_SANITIZE:-}" ] && build="$top/build-asan"
"$top/scripts/build.sh" "$build"
cd "$build" && ctest -j2 -LE 'container|browser' --output-on-failure --timeout 300
