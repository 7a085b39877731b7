#!/usr/bin/env bash
# The main job: build libmp and count the primes below 20 million with an
# embedded pool (a broker thread and forked workers inside the program, no
# set-up), then with one process; prints both and the speed-up.
#   scripts/demo.sh [N] [processes]
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
"$top/scripts/deps.sh"
cmake -S "$top" -B "$top/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$top/build" -j2 --target example_primes >/dev/null
exec "$top/build/examples/example_primes" "$@"
