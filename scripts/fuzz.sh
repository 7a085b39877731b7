#!/usr/bin/env bash
# scripts/fuzz.sh TARGET SECONDS [JOBS]: builds the fuzz targets with clang and
# libFuzzer in build-fuzz/ (the library instrumented too: coverage counters,
# ASan, UBSan) and fuzzes TARGET (fuzz_obj, fuzz_wire, fuzz_broker, fuzz_worker, fuzz_client, fuzz_manager, fuzz_manager_stream, fuzz_cli, fuzz_journal) for SECONDS, starting
# from the checked-in corpus (tests/fuzz/corpus/...), new inputs kept in
# build-fuzz/corpus/TARGET. Prints libFuzzer's last status line (execs, cov);
# exits non-zero on a finding (the crash file is in build-fuzz/).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
target=${1:?usage: scripts/fuzz.sh TARGET SECONDS [JOBS]}
secs=${2:?usage: scripts/fuzz.sh TARGET SECONDS [JOBS]}
jobs=${3:-1}
case "$target" in
fuzz_obj) seeds=obj ;;
fuzz_wire) seeds=wire ;;
fuzz_broker) seeds=broker ;;
fuzz_cli) seeds=cli ;;
fuzz_client) seeds=client ;;
fuzz_manager) seeds=manager ;;
fuzz_manager_stream) seeds=manager_stream ;;
fuzz_worker) seeds=worker ;;
fuzz_journal) seeds=journal ;;
*) echo "scripts/fuzz.sh: unknown target '$target' (fuzz_obj, fuzz_wire, fuzz_broker, fuzz_worker, fuzz_client, fuzz_manager, fuzz_manager_stream, fuzz_cli, fuzz_journal)" >&2; exit 2 ;;
esac
"$top/scripts/deps.sh" --fuzz
build="$top/build-fuzz"
CC=clang-14 cmake -S "$top" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMP_FUZZ=ON \
    -DMP_BUILD_EXAMPLES=OFF -DMP_BUILD_BENCH=OFF >/dev/null
cmake --build "$build" -j2 --target "$target" >/dev/null
corpus="$build/corpus/$target"
mkdir -p "$corpus"
cd "$build"
# with -jobs libFuzzer logs to fuzz-N.log: only for more than one job
par=()
[ "$jobs" -gt 1 ] && par=(-jobs="$jobs" -workers="$jobs")
"$build/tests/$target" -max_total_time="$secs" "${par[@]}" -print_final_stats=1 \
    "$corpus" "$top/tests/fuzz/corpus/$seeds" 2>"$build/$target.log" || {
    tail -n 30 "$build/$target.log" >&2
    exit 1
}
grep -E '^#[0-9]+' "$build/$target.log" | tail -n 1
grep -E 'stat::number_of_executed_units' "$build/$target.log" | tail -n 1
