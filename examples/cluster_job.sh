#!/bin/sh
# mp-example-job [N] [BLOCKS] - the docker-compose example job: count the
# primes below N (default 20,000,000) on the cluster at $MP_BROKER, as
# BLOCKS (default 200) count_primes(lo, hi) calls of one starmap served by
# libexample_tasks.so. Prints the total and the time; exits like mp-client
# (0 done, 1 a failure, 2 bad usage).
set -eu
n=${1:-20000000}
blocks=${2:-200}
case "$n$blocks" in *[!0-9]*)
    echo "usage: mp-example-job [N] [BLOCKS]" >&2
    exit 2
    ;;
esac
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
awk -v n="$n" -v b="$blocks" 'BEGIN {
    s = int((n + b - 1) / b)
    for (lo = 0; lo < n; lo += s) printf "[%d, %d]\n", lo, (lo + s < n ? lo + s : n)
}' >"$tmp/ranges"
start=$(date +%s.%N)
rc=0
mp-client starmap count_primes --input "$tmp/ranges" >"$tmp/counts" || rc=$?
if [ "$rc" -ne 0 ]; then
    echo "mp-example-job: the map failed (mp-client exit $rc)" >&2
    exit "$rc"
fi
awk -v n="$n" -v start="$start" -v end="$(date +%s.%N)" \
    '{ s += $1; k++ } END { printf "primes below %d: %d (%d blocks, %.2f s)\n", n, s, k, end - start }' \
    "$tmp/counts"
