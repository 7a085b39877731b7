# testlib.sh - what the shell integration tests share. Source it after
# setting `build` (the build directory):
#
#   tl_init NAME         temporary directory $tmp, the exit trap
#   tl_need FILE...      exit 77 (ctest: skipped) when a program is not built
#   tl_bg CMD...         run CMD in the background; killed and reaped on exit
#   tl_endpoint FILE     wait for mp-broker's first stdout line; sets $ep
#   pass DESC / fail DESC [DETAIL...]
#   tl_finish [LOG...]   print the LOGs' tails on failure; exit 0 or 1
#
# A test may define tl_cleanup_hook (called first on exit, e.g. to delete
# network namespaces). Every process tl_bg starts gets SIGTERM, then
# SIGKILL after 3 s, and is waited for.
pids=()
failures=0
tmp=

tl_cleanup() {
    local pid _
    if declare -F tl_cleanup_hook >/dev/null; then tl_cleanup_hook; fi
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null; done
    for _ in $(seq 30); do
        local alive=0
        for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
        [ $alive -eq 0 ] && break
        sleep 0.1
    done
    for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null; done
    [ -n "$tmp" ] && rm -rf "$tmp"
}

tl_init() {
    tmp=$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX") || exit 1
    trap tl_cleanup EXIT
    trap 'exit 1' INT TERM
}

tl_need() {
    local f
    for f in "$@"; do
        if [ ! -e "$f" ]; then
            echo "SKIP: $f is not built"
            exit 77
        fi
    done
}

tl_bg() {
    "$@" &
    pids+=($!)
}

tl_endpoint() {
    ep=
    local _
    for _ in $(seq 100); do
        ep=$(head -n 1 "$1" 2>/dev/null)
        [ -n "$ep" ] && return 0
        sleep 0.1
    done
    return 1
}

pass() { echo "PASS: $1"; }
fail() {
    echo "FAIL: $1"
    shift
    local line
    for line in "$@"; do echo "      $line"; done
    failures=$((failures + 1))
}

tl_finish() {
    if [ $failures -ne 0 ]; then
        local log
        for log in "$@"; do
            echo "--- $(basename "$log")"
            tail -n 20 "$log" 2>/dev/null
        done
        echo "$failures check(s) FAILED"
        exit 1
    fi
    echo "all checks passed"
    exit 0
}
