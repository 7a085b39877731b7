#!/usr/bin/env bash
# test_journal_cli.sh BUILD_DIR - mp-client's durable-job commands
# (docs/JOURNAL.md) against mp-broker --journal DIR and one mp-worker:
# submit from stdin, fetch (results in order, each once), starsubmit, an
# unknown job, the broker SIGKILLed after a submit and restarted on the same
# journal, forget. Prints PASS/FAIL per check; exits 1 on any failure, 77
# when the programs are not built. Every process it starts is reaped.
set -u

build=${1:?usage: test_journal_cli.sh BUILD_DIR}
. "$(dirname "$0")/testlib.sh"
tl_programs
tl_init test_journal_cli

run() { # mp-client with a time limit; $tmp/out, $tmp/err, $rc
    timeout 60 "$client_bin" "$@" >"$tmp/out" 2>"$tmp/err"
    rc=$?
}

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
journal=$tmp/journal
start_broker() {
    tl_broker broker 120 --bind "tcp://127.0.0.1:$port" --heartbeat 300 --journal "$journal" &&
        broker_parent=${pids[-1]} # timeout's pid: the broker is its child
}
start_broker || exit 1
export MP_BROKER=$ep
tl_bg timeout 120 "$worker_bin" --broker "$ep" --tasks "$tasks" -p 2 --heartbeat 300 \
    >"$tmp/worker.log" 2>&1

seq 1 2000 >"$tmp/ints"
seq 1 2000 | awk '{ print $1 * $1 }' >"$tmp/squares"

run submit squares square --input "$tmp/ints"
if [ $rc -eq 0 ] && grep -q "2000 items stored" "$tmp/err"; then
    pass "submit squares square: 2000 items stored"
else
    fail "submit squares square: 2000 items stored" "rc=$rc" "$(cat "$tmp/err")"
fi

run fetch squares
if [ $rc -eq 0 ] && cmp -s "$tmp/out" "$tmp/squares"; then
    pass "fetch squares prints the 2000 squares in order, each once"
else
    fail "fetch squares prints the 2000 squares in order, each once" "rc=$rc" \
        "$(diff "$tmp/squares" "$tmp/out" | head -5)" "$(cat "$tmp/err")"
fi

printf '[1, 2]\n[3, 4]\n[5, 6]\n' | timeout 30 "$client_bin" starsubmit sums add >/dev/null 2>"$tmp/err"
run fetch sums
if [ $rc -eq 0 ] && [ "$(tr '\n' ' ' <"$tmp/out")" = "3 7 11 " ]; then
    pass "starsubmit sums add, fetch sums: 3 7 11"
else
    fail "starsubmit sums add, fetch sums: 3 7 11" "rc=$rc out=$(cat "$tmp/out")" "$(cat "$tmp/err")"
fi

run fetch nosuchjob
if [ $rc -eq 1 ] && grep -q "no such job" "$tmp/err" && [ ! -s "$tmp/out" ]; then
    pass "fetch of an unknown job: exit 1, 'no such job'"
else
    fail "fetch of an unknown job: exit 1, 'no such job'" "rc=$rc" "$(cat "$tmp/err")"
fi

# a job of slow items, the broker SIGKILLed right after the submit, restarted
run submit slow square --chunksize 10 --input "$tmp/ints"
kill -KILL "$(pgrep -P "$broker_parent")"
wait "$broker_parent" 2>/dev/null
sleep 0.3
start_broker || exit 1
run fetch slow
if [ $rc -eq 0 ] && cmp -s "$tmp/out" "$tmp/squares"; then
    pass "the broker SIGKILLed after a submit and restarted: fetch gets every result once, in order"
else
    fail "the broker SIGKILLed after a submit and restarted: fetch gets every result once" \
        "rc=$rc lines=$(wc -l <"$tmp/out")" "$(cat "$tmp/err")" "$(cat "$tmp/broker.err")"
fi

run forget slow && run forget squares && run forget sums
run fetch slow
if [ $rc -eq 1 ] && grep -q "no such job" "$tmp/err" && [ "$(stat -c %s "$journal/journal")" = 8 ]; then
    pass "forget: the jobs are gone, the journal holds only its header"
else
    fail "forget: the jobs are gone" "rc=$rc size=$(stat -c %s "$journal/journal")" "$(cat "$tmp/err")"
fi

tl_finish "$tmp/broker.err" "$tmp/worker.log"
