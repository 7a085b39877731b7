#!/usr/bin/env bash
# test_drain.sh BUILD_DIR - operations (docs/CLUSTER.md 4): `mp-client drain`
# takes a worker out while a map runs (the worker finishes what it holds,
# takes nothing new, exits 0; the map completes on the other worker); a
# broker sent SIGTERM mid-map lets the running dispatches finish, exits 0,
# and the map completes, every item once, on the broker started again at
# the same address; mp-worker --maxtasksperchild recycles its executors.
# Its own daemons on free loopback ports; every process is killed and
# waited for on exit; every command runs under `timeout`.
set -u

build=${1:?usage: test_drain.sh BUILD_DIR}
. "$(dirname "$0")/testlib.sh"
tl_programs
tasks=$build/tests/libtest_tasks.so
tl_need "$tasks"
tl_init test_drain
py=/usr/bin/python3

# wait_for PID SECS: its exit status, or 124 after SECS (then it is killed)
wait_for() {
    local _
    for _ in $(seq $(($2 * 10))); do
        kill -0 "$1" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$1" 2>/dev/null; then
        kill -KILL "$1" 2>/dev/null
        wait "$1" 2>/dev/null
        return 124
    fi
    wait "$1"
}
status_json() { timeout 5 "$client_bin" --broker "$ep" --timeout 2000 status --json; }
nworkers() { status_json | "$py" -c 'import json,sys; print(len(json.load(sys.stdin)["workers"]))'; }
has_workers() { [ "$(nworkers 2>/dev/null)" = "$1" ]; }
lines_of() { seq 1 "$1" | sed 's/.*/[300, &]/'; } # sleep_ms(300) returns the line's number

# ---- drain a worker mid-map ------------------------------------------------------------

tl_broker broker 120 --bind tcp://127.0.0.1:0 || exit 1
tl_bg timeout 120 "$worker_bin" --broker "$ep" --tasks "$tasks" -p 1 >"$tmp/w1.log" 2>&1
w1_wrap=${pids[-1]}
tl_last_child && w1=$child
tl_bg timeout 120 "$worker_bin" --broker "$ep" --tasks "$tasks" -p 1 >"$tmp/w2.log" 2>&1
tl_last_child && w2=$child
tl_until 100 0.1 has_workers 2 || fail "two workers joined"
# the id STATUS gives the worker of pid $1
id_of() {
    status_json | "$py" -c '
import json, sys
print(next(w["id"] for w in json.load(sys.stdin)["workers"] if w["pid"] == int(sys.argv[1])))' "$1"
}
id1=$(id_of "$w1")
lines_of 20 >"$tmp/in20"
tl_bg timeout 60 "$client_bin" --broker "$ep" starmap sleep_ms --input "$tmp/in20" >"$tmp/map1.out" 2>"$tmp/map1.err"
map1=${pids[-1]}
sleep 0.5
if timeout 30 "$client_bin" --broker "$ep" drain "$id1" >"$tmp/drain.out" 2>"$tmp/drain.err"; then
    pass "mp-client drain $id1 returned 0 once the worker was gone"
else
    fail "mp-client drain $id1 returned 0" "$(cat "$tmp/drain.err")"
fi
grep -q "draining worker $id1" "$tmp/drain.err" && grep -q "drained and stopped" "$tmp/drain.err" &&
    pass "drain said what it did" || fail "drain said what it did" "$(cat "$tmp/drain.err")"
wait_for "$w1_wrap" 30
w1_rc=$?
[ "$w1_rc" -eq 0 ] && pass "the drained worker exited 0" || fail "the drained worker exited 0 ($w1_rc)"
grep -q "drained: stopping" "$tmp/w1.log" && pass "the worker logged why it stopped" ||
    fail "the worker logged why it stopped" "$(tail -3 "$tmp/w1.log")"
wait_for "$map1" 60
m1=$?
if [ "$m1" -eq 0 ] && [ "$(seq 1 20 | paste -sd' ')" = "$(paste -sd' ' "$tmp/map1.out")" ]; then
    pass "the map completed: 20 results, in order, each once"
else
    fail "the map completed (exit $m1)" "$(head -3 "$tmp/map1.out")" "$(tail -3 "$tmp/map1.err")"
fi
has_workers 1 && pass "one worker left" || fail "one worker left"
timeout 5 "$client_bin" --broker "$ep" drain 999999 >/dev/null 2>"$tmp/drain2.err"
[ $? -eq 1 ] && grep -q "no worker 999999" "$tmp/drain2.err" && pass "drain of an unknown id: exit 1, said" ||
    fail "drain of an unknown id" "$(cat "$tmp/drain2.err")"

# ---- maxtasksperchild in cluster mode ---------------------------------------------------

tl_bg timeout 120 "$worker_bin" --broker "$ep" --tasks "$tasks" -p 1 --maxtasksperchild 2 >"$tmp/w3.log" 2>&1
tl_until 100 0.1 has_workers 2 || fail "the recycling worker joined"
id2=$(id_of "$w2")
timeout 30 "$client_bin" --broker "$ep" drain "$id2" >/dev/null 2>&1 # only the recycling worker is left
pids_seen=$(for _ in $(seq 10); do timeout 10 "$client_bin" --broker "$ep" apply get_pid; done | sort -u | wc -l)
[ "$pids_seen" -eq 5 ] && pass "--maxtasksperchild 2: 10 applies ran in 5 executors" ||
    fail "--maxtasksperchild 2: 10 applies ran in 5 executors ($pids_seen)"

# ---- mp-client top: the cluster, redrawn; --no-progress ----------------------------------

timeout 10 "$client_bin" --broker "$ep" top --iterations 2 --interval 200 >"$tmp/top.out" 2>&1
top_rc=$?
if [ $top_rc -eq 0 ] && [ "$(grep -c '^mp-client top: broker' "$tmp/top.out")" -eq 2 ] &&
    grep -Eq '^ +[0-9]+ .* idle$' "$tmp/top.out" && grep -q 'ITEMS/S' "$tmp/top.out"; then
    pass "top: 2 snapshots, the worker's line"
else
    fail "top: 2 snapshots, the worker's line (exit $top_rc)" "$(head -8 "$tmp/top.out")"
fi
echo '[1, 7]' | timeout 10 "$client_bin" --broker "$ep" --no-progress starmap sleep_ms >"$tmp/np.out" 2>&1 &&
    [ "$(cat "$tmp/np.out")" = 7 ] && pass "--no-progress" || fail "--no-progress" "$(cat "$tmp/np.out")"

# ---- SIGTERM on a busy broker: what runs finishes, the rest comes back --------------------

port=$("$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
tl_broker b2 120 --bind "tcp://127.0.0.1:$port" --drain-ms 5000 || exit 1
tl_last_child && b2=$child
tl_bg timeout 120 "$worker_bin" --broker "$ep" --tasks "$tasks" -p 2 >"$tmp/w4.log" 2>&1
tl_until 100 0.1 has_workers 1 || fail "a worker joined the second broker"
lines_of 30 >"$tmp/in30"
tl_bg timeout 90 "$client_bin" --broker "$ep" --timeout 30000 starmap sleep_ms --input "$tmp/in30" >"$tmp/map2.out" 2>"$tmp/map2.err"
map2=${pids[-1]}
sleep 1
t0=$(date +%s%N)
kill -TERM "$b2"
for _ in $(seq 100); do kill -0 "$b2" 2>/dev/null || break; sleep 0.05; done
t1=$(date +%s%N)
kill -0 "$b2" 2>/dev/null && fail "the broker stopped within its drain time"
ms=$(((t1 - t0) / 1000000))
grep -q "draining ([1-9][0-9]* dispatches running" "$tmp/b2.err" &&
    pass "SIGTERM: the broker drained its running dispatches (exited in $ms ms)" ||
    fail "SIGTERM: the broker drained" "$(tail -3 "$tmp/b2.err")"
tl_broker b3 120 --bind "tcp://127.0.0.1:$port" || exit 1
wait_for "$map2" 60
m2=$?
if [ "$m2" -eq 0 ] && [ "$(seq 1 30 | paste -sd' ')" = "$(paste -sd' ' "$tmp/map2.out")" ]; then
    pass "the map completed on the next broker: 30 results, in order, each once"
else
    fail "the map completed on the next broker (exit $m2)" "$(tail -3 "$tmp/map2.err")"
fi

tl_finish "$tmp/broker.err" "$tmp/w1.log" "$tmp/drain.err" "$tmp/map1.err" "$tmp/b2.err" \
    "$tmp/w4.log" "$tmp/map2.err"
