# testlib.sh - what the shell integration tests share. Source it after
# setting `build` (the build directory):
#
#   tl_init NAME         temporary directory $tmp, the exit trap
#   tl_need FILE...      exit 77 (ctest: skipped) when a program is not built
#   tl_programs          $broker_bin, $worker_bin, $client_bin and $tasks (the
#                        example tasks) of the build; tl_need of all four
#   tl_bg CMD...         run CMD in the background; killed and reaped on exit
#   tl_last_child        $child: the pid of the program the last tl_bg'd
#                        `timeout` wrapper runs (its own, not another test's)
#   tl_until N SECS CMD...  run CMD until it succeeds, at most N times, SECS
#                        apart; status 1 when it never did
#   tl_endpoint FILE     wait for mp-broker's first stdout line; sets $ep
#   tl_broker NAME SECS ARG...  mp-broker ARG... in the background (at most
#                        SECS), stdout $tmp/NAME.out, stderr $tmp/NAME.err;
#                        waits for its endpoint ($ep), a failed check if none
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

tl_programs() {
    broker_bin=$build/broker/mp-broker
    worker_bin=$build/worker/mp-worker
    client_bin=$build/client/mp-client
    tasks=$build/examples/libexample_tasks.so
    tl_need "$broker_bin" "$worker_bin" "$client_bin" "$tasks"
}

tl_bg() {
    "$@" &
    pids+=($!)
}

tl_last_child() {
    child=
    for _ in $(seq 50); do
        child=$(pgrep -P "${pids[-1]}" | head -n 1)
        [ -n "$child" ] && return 0
        sleep 0.1
    done
    return 1
}

tl_until() {
    local tries=$1 delay=$2 _
    shift 2
    for _ in $(seq "$tries"); do
        "$@" && return 0
        sleep "$delay"
    done
    return 1
}

tl_first_line() { # tl_first_line FILE: sets $ep; status 1 while FILE has no line
    ep=$(head -n 1 "$1" 2>/dev/null)
    [ -n "$ep" ]
}

tl_endpoint() {
    ep=
    tl_until 100 0.1 tl_first_line "$1"
}

tl_broker() {
    local name=$1 secs=$2
    shift 2
    tl_bg timeout "$secs" "$broker_bin" "$@" >"$tmp/$name.out" 2>"$tmp/$name.err"
    tl_endpoint "$tmp/$name.out" && return 0
    fail "mp-broker printed its endpoint" "$(cat "$tmp/$name.err")"
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
