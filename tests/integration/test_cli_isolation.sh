#!/usr/bin/env bash
# test_cli_isolation.sh BUILD_DIR - every input item accounted for: mp-client
# map and starmap against a broker stopped mid-map (issue 20): one line per
# input item sent, the rest counted on stderr, exit 3. Its own mp-broker and
# mp-worker on a free loopback port; every process it starts is killed and
# waited for on exit; every command runs under `timeout`.
set -u

build=${1:?usage: test_cli_isolation.sh BUILD_DIR}
. "$(dirname "$0")/testlib.sh"
tl_programs
tl_init test_cli_isolation

# ---- every input item accounted for: the broker stops mid-map ----------------------------

# a worker that takes work and never answers (SIGSTOP), then the broker
# goes away (SIGTERM) and does not come back within --timeout: each line
# that was sent gets an error line, the rest is counted and said; exit 3
tl_broker sbroker 60 --bind tcp://127.0.0.1:0 || exit 1
sep=$ep
tl_last_child && sbroker=$child
slog=$tmp/sbroker.err
tl_bg timeout 60 "$worker_bin" --broker "$sep" --tasks "$tasks" -p 2 >"$tmp/sworker.log" 2>&1
tl_last_child && sworker=$child
stopped_joined() {
    timeout 5 "$client_bin" --broker "$sep" --timeout 2000 status >"$tmp/sstatus" 2>/dev/null &&
        grep -q '^workers: 1 (2 processes)' "$tmp/sstatus"
}
tl_until 100 0.1 stopped_joined || fail "the worker to stop joined" "$(cat "$tmp/sworker.log")"
for cmd in map starmap; do
    # starmap reads 10,000 lines per call, two calls ahead: more input for it
    total=20000
    [ $cmd = starmap ] && total=40000
    if [ $cmd = map ]; then seq 1 $total >"$tmp/stop_in"; else seq 1 $total | sed 's/.*/[&, 1]/' >"$tmp/stop_in"; fi
    task=square
    [ $cmd = starmap ] && task=add
    kill -STOP "$sworker"
    hellos=$(grep -c "hello: pool" "$slog")
    timeout 60 "$client_bin" --broker "$sep" --timeout 1000 $cmd $task --chunksize 100 \
        <"$tmp/stop_in" >"$tmp/stop_out" 2>"$tmp/stop_err" &
    cpid=$!
    # the client is in (its HELLO logged, however slow a sanitized build is)
    client_in() { [ "$(grep -c "hello: pool" "$slog")" -gt "$hellos" ]; }
    tl_until 300 0.1 client_in || fail "$cmd: the client connected" "$(cat "$tmp/stop_err")"
    sleep 0.5
    kill -TERM "$sbroker"
    wait $cpid
    rc=$?
    kill -CONT "$sworker"
    lines=$(wc -l <"$tmp/stop_out")
    notrun=$(sed -n 's/.*stopped early: \(at least \)\{0,1\}\([0-9]*\) input item.*/\2/p' "$tmp/stop_err")
    if [ $rc -eq 3 ] && [ -n "$notrun" ] && [ $((lines + notrun)) -eq $total ] &&
        ! grep -q "at least" "$tmp/stop_err"; then
        pass "$cmd, broker stopped: $lines lines + $notrun not run = $total, exit 3: $(tail -n 1 "$tmp/stop_err")"
    else
        fail "$cmd, broker stopped: every input item accounted for, exit 3" "rc=$rc lines=$lines notrun=$notrun" \
            "$(cat "$tmp/stop_err")"
    fi
    # the broker again, on the same port, for the next round
    if [ $cmd = map ]; then
        tl_broker sbroker2 60 --bind "$sep" || exit 1
        tl_last_child && sbroker=$child
        slog=$tmp/sbroker2.err
        tl_until 100 0.1 stopped_joined || fail "the worker rejoined" "$(cat "$tmp/sworker.log")"
    fi
done

tl_finish "$tmp/sworker.log"
