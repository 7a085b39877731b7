#!/usr/bin/env bash
# test_ops.sh BUILD_DIR - mp-broker and mp-worker as an operator meets them
# (docs/CLUSTER.md sections 2-4): every option has an environment twin, a
# bad option or value exits 2 with one line naming it, an address that
# cannot be bound or resolved exits 1 naming it, log lines carry a time, a
# level and the program, the level is honoured, SIGTERM exits 0.
set -u

build=${1:?usage: test_ops.sh BUILD_DIR}
. "$(dirname "$0")/testlib.sh"
tl_programs
tl_init test_ops

# expect DESC RC PATTERN CMD...: CMD exits RC and its stderr is one line
# matching the extended regular expression PATTERN
expect() {
    local desc=$1 want=$2 pattern=$3
    shift 3
    timeout 10 "$@" >"$tmp/out" 2>"$tmp/err"
    local rc=$?
    if [ $rc -eq "$want" ] && [ "$(wc -l <"$tmp/err")" -eq 1 ] && grep -Eq "$pattern" "$tmp/err"; then
        pass "$desc: exit $rc, $(cat "$tmp/err")"
    else
        fail "$desc" "rc=$rc (want $want)" "$(cat "$tmp/err")"
    fi
}

# ---- usage errors: exit 2, one line ------------------------------------------------------

expect "mp-broker --frobnicate" 2 "^mp-broker: unknown option '--frobnicate'; try --help" \
    "$broker_bin" --frobnicate
expect "mp-broker --bind (no value)" 2 "^mp-broker: missing value for option '--bind'" \
    "$broker_bin" --bind
expect "mp-worker -z" 2 "^mp-worker: unknown option '-z'; try --help" "$worker_bin" -z
expect "mp-broker --heartbeat 5" 2 "bad --heartbeat '5' \(expected 10\.\.60000\)" \
    "$broker_bin" --heartbeat 5
expect "MP_HEARTBEAT_MS=abc mp-broker" 2 "mp-broker: bad MP_HEARTBEAT_MS 'abc'" \
    env MP_HEARTBEAT_MS=abc "$broker_bin"
expect "MP_MAX_ATTEMPTS=0 mp-broker" 2 "bad MP_MAX_ATTEMPTS '0'" env MP_MAX_ATTEMPTS=0 "$broker_bin"
expect "MP_MAX_MESSAGE=1 mp-broker" 2 "bad MP_MAX_MESSAGE '1'" env MP_MAX_MESSAGE=1 "$broker_bin"
expect "mp-broker --log-level loud" 2 "bad --log-level 'loud'" "$broker_bin" --log-level loud
expect "MP_LOG_LEVEL=loud mp-broker" 2 "bad MP_LOG_LEVEL 'loud'" env MP_LOG_LEVEL=loud "$broker_bin"
expect "mp-worker without a broker" 2 'mp-worker: no broker' env -u MP_BROKER "$worker_bin"
expect "mp-worker --broker tcp://host" 2 \
    "^mp-worker: 'tcp://host' is not a broker address: use tcp://HOST:PORT .* or ipc://PATH$" \
    "$worker_bin" --broker tcp://host
expect "MP_PROCESSES=0 mp-worker" 2 "bad MP_PROCESSES '0' \(expected 1\.\.1024\)" \
    env MP_PROCESSES=0 "$worker_bin" --broker tcp://127.0.0.1:1
expect "mp-worker --processes x" 2 "bad --processes 'x'" \
    "$worker_bin" --broker tcp://127.0.0.1:1 --processes x
expect "MP_LOG_LEVEL=loud mp-worker" 2 "mp-worker: bad MP_LOG_LEVEL 'loud'" \
    env MP_LOG_LEVEL=loud "$worker_bin" --broker tcp://127.0.0.1:1

# ---- cannot start: exit 1, naming the address or file --------------------------------------

expect "mp-worker, a broker host that does not resolve" 1 \
    "^mp-worker: cannot resolve host 'no-such-host.invalid' of tcp://no-such-host.invalid:5555: " \
    "$worker_bin" --broker tcp://no-such-host.invalid:5555 -p 1

timeout 10 "$worker_bin" --broker tcp://127.0.0.1:1 -p 1 --tasks "$tmp/none.so" >"$tmp/out" 2>"$tmp/err"
rc=$?
if [ $rc -eq 1 ] && grep -q "ERROR mp-worker.*cannot load task library $tmp/none.so" "$tmp/err" &&
    grep -q '^mp-worker: cannot start' "$tmp/err"; then
    pass "mp-worker, a task library that does not load: exit 1, named"
else
    fail "mp-worker, a task library that does not load: exit 1, named" "rc=$rc" "$(cat "$tmp/err")"
fi

start=$(date +%s%N)
MP_CONNECT_TIMEOUT_MS=600 timeout 10 "$worker_bin" --broker tcp://127.0.0.1:1 -p 1 --heartbeat 100 \
    >"$tmp/out" 2>"$tmp/err"
rc=$?
took=$((($(date +%s%N) - start) / 1000000))
if [ $rc -eq 1 ] && [ $took -lt 3000 ] &&
    grep -q 'ERROR mp-worker.*no broker answered at tcp://127.0.0.1:1 within 600 ms: is mp-broker running there' "$tmp/err" &&
    [ "$(grep -c 'does not answer' "$tmp/err")" -eq 1 ]; then
    pass "MP_CONNECT_TIMEOUT_MS=600, nobody listening: exit 1 after $took ms, one warning, the address named"
else
    fail "MP_CONNECT_TIMEOUT_MS, nobody listening" "rc=$rc took=${took}ms" "$(cat "$tmp/err")"
fi

if tl_broker b1 60 --bind tcp://127.0.0.1:0; then
    timeout 10 "$broker_bin" --bind "$ep" >"$tmp/out" 2>"$tmp/err"
    rc=$?
    if [ $rc -eq 1 ] && grep -q "ERROR mp-broker.*cannot bind $ep: Address already in use" "$tmp/err"; then
        pass "mp-broker, a port in use: exit 1, the address named"
    else
        fail "mp-broker, a port in use: exit 1, the address named" "rc=$rc" "$(cat "$tmp/err")"
    fi
fi

# ---- the environment configures a whole cluster; logs; SIGTERM ------------------------------

MP_BROKER_BIND="tcp://127.0.0.1:0,ipc://$tmp/broker.ipc" MP_HEARTBEAT_MS=300 MP_LOG_LEVEL=debug \
    timeout 60 "$broker_bin" >"$tmp/broker.out" 2>"$tmp/broker.err" &
broker_pid=$!
pids+=($broker_pid)
tl_endpoint "$tmp/broker.out"
sleep 0.2
if [ "$(sed -n 2p "$tmp/broker.out")" = "ipc://$tmp/broker.ipc" ] && [ -S "$tmp/broker.ipc" ]; then
    pass "MP_BROKER_BIND binds both endpoints and prints them"
else
    fail "MP_BROKER_BIND binds both endpoints and prints them" "$(cat "$tmp/broker.out")"
fi

# in a session of its own, so that the SIGTERM below can go to its whole
# process group (supervisor, zygote, executors) as systemd or Ctrl-C do
MP_BROKER="ipc://$tmp/broker.ipc" MP_TASKS="$tasks" MP_PROCESSES=3 MP_HEARTBEAT_MS=300 \
    MP_LOG_LEVEL=warn setsid "$worker_bin" >"$tmp/worker.out" 2>"$tmp/worker.err" &
worker_pid=$!
pids+=($worker_pid)
worker_configured() {
    timeout 5 "$client_bin" --broker "$ep" --timeout 2000 status --json >"$tmp/status" 2>/dev/null &&
        grep -q '"processes":3,.*"names":\["square"' "$tmp/status"
}
if tl_until 50 0.1 worker_configured; then
    pass "MP_BROKER, MP_TASKS, MP_PROCESSES configure mp-worker"
else
    fail "MP_BROKER, MP_TASKS, MP_PROCESSES configure mp-worker" "$(cat "$tmp/status" "$tmp/worker.err")"
fi

seq 1 200 | timeout 20 "$client_bin" --broker "$ep" map square >"$tmp/out" 2>/dev/null
if [ "$(tail -n 1 "$tmp/out")" = 40000 ]; then
    pass "a map through the environment-configured cluster"
else
    fail "a map through the environment-configured cluster" "$(tail -n 3 "$tmp/out")"
fi

kill -TERM -- -$worker_pid
wait $worker_pid
rc=$?
if [ $rc -eq 0 ] && [ ! -s "$tmp/worker.out" ] && [ ! -s "$tmp/worker.err" ] &&
    ! pgrep -g $worker_pid >/dev/null; then
    pass "mp-worker at MP_LOG_LEVEL=warn: SIGTERM to its group exits 0, nothing logged, no process left"
else
    fail "mp-worker at MP_LOG_LEVEL=warn: SIGTERM to its group exits 0, nothing logged" "rc=$rc" \
        "$(cat "$tmp/worker.err")" "$(pgrep -a -g $worker_pid)"
fi

kill -TERM $broker_pid
wait $broker_pid
rc=$?
line='^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z (ERROR|WARN|INFO|DEBUG) mp-broker\[[0-9]+\]: '
lines=$(wc -l <"$tmp/broker.err")
good=$(grep -Ec "$line" "$tmp/broker.err")
if [ $rc -eq 0 ] && [ "$lines" -gt 3 ] && [ "$good" -eq "$lines" ] &&
    grep -q ' DEBUG mp-broker' "$tmp/broker.err" && grep -q ' INFO mp-broker.*signal 15' "$tmp/broker.err" &&
    [ ! -e "$tmp/broker.ipc" ]; then
    pass "mp-broker: SIGTERM exits 0, ipc file removed, $lines log lines all 'time LEVEL prog[pid]: '"
else
    fail "mp-broker: SIGTERM, log format" "rc=$rc lines=$lines good=$good" \
        "$(grep -Ev "$line" "$tmp/broker.err" | head -5)"
fi

# ---- a daemon that says it stops is gone 100 ms later ------------------------------------------

now_ms() { echo $(($(date +%s%N) / 1000000)); }
# gone_after_log PID LOG PATTERN: sends SIGTERM; prints the ms from the
# first LOG line matching PATTERN until PID has exited (a zombie counts:
# it is our child, reaped below), or "never" after 5 s
gone_after_log() {
    local pid=$1 log=$2 pattern=$3 logged= deadline=$(($(now_ms) + 5000))
    kill -TERM "$pid"
    while [ "$(now_ms)" -lt $deadline ]; do
        [ -z "$logged" ] && grep -Eq "$pattern" "$log" && logged=$(now_ms)
        if [ -n "$logged" ] && { [ ! -e /proc/$pid/stat ] ||
            [ "$(cut -d' ' -f3 /proc/$pid/stat 2>/dev/null)" = Z ]; }; then
            echo $(($(now_ms) - logged))
            wait "$pid" 2>/dev/null
            return
        fi
        sleep 0.005
    done
    echo never
}
# 100 ms; a sanitizer build's exit (LeakSanitizer scans the heap) takes
# longer by itself, so there the bound only tells a stall from an exit
bound=100
grep -q '^MP_SANITIZE:STRING=.\+' "$build/CMakeCache.txt" 2>/dev/null && bound=400
if tl_broker b2 60 --bind tcp://127.0.0.1:0 --log-level info; then
    b2=${pids[-1]}
    "$worker_bin" --broker "$ep" --tasks "$tasks" -p 2 -l info >"$tmp/w2.out" 2>"$tmp/w2.err" &
    w2=$!
    pids+=($w2)
    tl_until 100 0.05 grep -q 'ready: host' "$tmp/b2.err"
    ms=$(gone_after_log "$b2" "$tmp/b2.err" 'shutting down')
    if [ "$ms" != never ] && [ "$ms" -le $bound ]; then
        pass "mp-broker: gone $ms ms after logging that it stops (at most $bound)"
    else
        fail "mp-broker: gone within $bound ms of logging that it stops" "after: $ms ms" "$(cat "$tmp/b2.err")"
    fi
    # its broker gone, the worker must not wait to say goodbye to it
    tl_until 100 0.02 grep -q 'broker says: broker shutting down' "$tmp/w2.err"
    ms=$(gone_after_log "$w2" "$tmp/w2.err" 'and stopping')
    if [ "$ms" != never ] && [ "$ms" -le $bound ] && grep -q 'INFO mp-worker.*: stopped' "$tmp/w2.err"; then
        pass "mp-worker whose broker has gone: gone $ms ms after logging that it stops (at most $bound)"
    else
        fail "mp-worker whose broker has gone: gone within $bound ms of logging that it stops" \
            "after: $ms ms" "$(cat "$tmp/w2.err")"
    fi
fi

tl_finish "$tmp/broker.err" "$tmp/worker.err"
