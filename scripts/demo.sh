#!/usr/bin/env bash
# The main job: build libmp and run the process example (workers fed by a
# Queue, printing under an RLock, results back through a Queue).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
"$top/scripts/deps.sh"
cmake -S "$top" -B "$top/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$top/build" -j2 --target example_process >/dev/null
exec "$top/build/examples/example_process" "$@"
