#!/usr/bin/env bash
# test_netns.sh BUILD_DIR - a cluster across hosts, for real, without Docker
# (docs/CLUSTER.md section 8). Four network namespaces joined by a bridge:
#
#   broker 10.77.0.1   mp-broker --bind tcp://10.77.0.1:5555, CURVE on
#   w1     10.77.0.2   mp-worker, configured by environment as in docker-compose.yml
#   w2     10.77.0.3   mp-worker, the same
#   client 10.77.0.4   mp-client
#
# each with its own hostname (UTS namespace), so the broker's status names
# the hosts. Checks: a map across hosts is complete, in order, and both
# worker hosts worked; w2's link goes down in the middle of a map and the
# map still completes with every result exactly once; the link comes back
# and w2 rejoins and works again. Every peer speaks CURVE (docs/PROTOCOL.md
# 10): the broker admits the workers' keys as workers and the client's as a
# client, and a worker key offered as a client's is refused.
#
# Needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN). Exits 77 (skipped), saying why,
# only where namespaces cannot be created. Every namespace and process is
# removed on exit; every step has a time limit.
set -u

build=${1:?usage: test_netns.sh BUILD_DIR}
. "$(dirname "$0")/testlib.sh"
tl_programs

ns=mp$$ # namespace prefix, unique per run
hosts=(broker w1 w2 client)
declare -A addr=([broker]=10.77.0.1 [w1]=10.77.0.2 [w2]=10.77.0.3 [client]=10.77.0.4)
HB=250 # heartbeat (ms): a silent peer is dead after 3, i.e. 750 ms

tl_cleanup_hook() {
    local h
    for h in sw "${hosts[@]}"; do ip netns del "$ns-$h" 2>/dev/null; done
}

if [ "$(id -u)" -ne 0 ] || ! ip netns add "$ns-probe" 2>/dev/null; then
    echo "SKIP: cannot create network namespaces here (needs root and iproute2)"
    exit 77
fi
ip netns del "$ns-probe"
tl_init test_netns

# ---- the network: a switch namespace with a bridge, one veth per host ------------------------

net() {
    ip netns add "$ns-sw" &&
        ip -n "$ns-sw" link add br0 type bridge &&
        ip -n "$ns-sw" link set br0 up || return 1
    local h
    for h in "${hosts[@]}"; do
        ip netns add "$ns-$h" &&
            ip link add "$ns-$h" type veth peer name "p-$h" netns "$ns-sw" &&
            ip link set "$ns-$h" netns "$ns-$h" &&
            ip -n "$ns-$h" link set "$ns-$h" name eth0 &&
            ip -n "$ns-$h" addr add "${addr[$h]}/24" dev eth0 &&
            ip -n "$ns-$h" link set eth0 up &&
            ip -n "$ns-$h" link set lo up &&
            ip -n "$ns-sw" link set "p-$h" master br0 &&
            ip -n "$ns-sw" link set "p-$h" up || return 1
    done
}
if ! net 2>"$tmp/net.err"; then
    fail "build the network" "$(cat "$tmp/net.err")"
    tl_finish
fi
# reachable: a TCP connect to a closed port is refused at once (no ping here)
if ip netns exec "$ns-client" timeout 3 bash -c "exec 3<>/dev/tcp/${addr[w2]}/9" 2>&1 |
    grep -q 'Connection refused'; then
    pass "four hosts on 10.77.0.0/24 reach each other"
else
    fail "four hosts on 10.77.0.0/24 reach each other"
    tl_finish
fi

# on HOST CMD...: CMD on host HOST, as hostname HOST (every step exec's the
# next, so on_bg's pid is the program's own and the exit trap reaches it)
on() {
    local h=$1
    shift
    ip netns exec "$ns-$h" unshare --uts sh -c 'hostname "$0" && exec "$@"' "$h" "$@"
}
on_bg() {
    local h=$1
    shift
    tl_bg ip netns exec "$ns-$h" unshare --uts sh -c 'hostname "$0" && exec "$@"' "$h" "$@"
}

# ---- the cluster ---------------------------------------------------------------------------

# keys: one pair per host, the public halves in the broker's allow-list
mkdir -p "$tmp/allow/workers" "$tmp/allow/clients"
for h in broker w1 w2 client; do
    "$client_bin" keygen "$tmp/$h" >/dev/null 2>&1
done
cp "$tmp/w1.key" "$tmp/w2.key" "$tmp/allow/workers/"
cp "$tmp/client.key" "$tmp/allow/clients/"

ep=tcp://${addr[broker]}:5555
on_bg broker timeout 120 "$broker_bin" --bind "$ep" --heartbeat $HB \
    --curve-key "$tmp/broker.key_secret" --allow-dir "$tmp/allow" \
    >"$tmp/broker.out" 2>"$tmp/broker.err"
if ! tl_endpoint "$tmp/broker.out"; then
    fail "mp-broker started on host broker" "$(cat "$tmp/broker.err")"
    tl_finish
fi
for h in w1 w2; do
    on_bg "$h" env MP_BROKER="$ep" MP_TASKS="$tasks" MP_PROCESSES=1 MP_HEARTBEAT_MS=$HB \
        MP_CURVE_KEY="$tmp/$h.key_secret" MP_CURVE_SERVER_KEY="$tmp/broker.key" \
        timeout 120 "$worker_bin" 2>"$tmp/$h.err"
done

client() {
    on client timeout 60 "$client_bin" --broker "$ep" --curve-key "$tmp/client.key_secret" \
        --curve-server-key "$tmp/broker.key" "$@"
}

# status_hosts: "w1:DONE w2:DONE" for the connected workers, sorted
status_hosts() {
    client --timeout 2000 status --json 2>/dev/null | python3 -c '
import json, sys
s = json.load(sys.stdin)
print(" ".join(sorted("%s:%d" % (w["host"], w["done"]) for w in s["workers"])))'
}

hosts_match() { # hosts_match REGEX: sets $hosts_now
    hosts_now=$(status_hosts)
    [[ $hosts_now =~ $1 ]]
}
wait_hosts() { tl_until $(($2 * 5)) 0.2 hosts_match "$1"; } # wait_hosts REGEX SECONDS

if wait_hosts '^w1:0 w2:0$' 10; then
    pass "workers on hosts w1 and w2 joined the broker on host broker"
else
    fail "workers on hosts w1 and w2 joined" "status: $hosts_now" "$(cat "$tmp/w1.err" "$tmp/w2.err")"
    tl_finish "$tmp/broker.err"
fi

# 800 ranges of 25,000 numbers; expected prime counts from a sieve
n=800
span=25000
python3 - "$n" "$span" >"$tmp/expected" <<'PY'
import sys
n, span = int(sys.argv[1]), int(sys.argv[2])
top = n * span
s = bytearray([1]) * top
s[0:2] = b"\0\0"
for i in range(2, int(top ** 0.5) + 1):
    if s[i]:
        s[i * i :: i] = bytes(len(range(i * i, top, i)))
for k in range(n):
    print(s[k * span : (k + 1) * span].count(1))
PY
awk -v n="$n" -v span="$span" 'BEGIN { for (k = 0; k < n; k++) printf "[%d, %d]\n", k * span, (k + 1) * span }' \
    >"$tmp/ranges"

# ---- 1. a map across hosts -----------------------------------------------------------------

client starmap count_primes --chunksize 4 --input "$tmp/ranges" >"$tmp/out1" 2>"$tmp/err1"
rc=$?
hosts_now=$(status_hosts)
if [ $rc -eq 0 ] && cmp -s "$tmp/out1" "$tmp/expected" &&
    [[ $hosts_now =~ ^w1:[1-9][0-9]*\ w2:[1-9][0-9]*$ ]]; then
    pass "a map of $n items from host client: complete, in order; both hosts worked ($hosts_now)"
else
    fail "a map across hosts" "rc=$rc status: $hosts_now" "$(diff "$tmp/expected" "$tmp/out1" | head -5)" \
        "$(cat "$tmp/err1")"
fi

# ---- 2. w2's link goes down in the middle of a map -----------------------------------------

# progress from the broker's done counts (starmap prints only at the end)
done_total() { status_hosts | tr ' ' '\n' | awk -F: '{ s += $2 } END { print s + 0 }'; }
base=$(done_total)
on_bg client timeout 60 "$client_bin" --broker "$ep" --curve-key "$tmp/client.key_secret" \
    --curve-server-key "$tmp/broker.key" starmap count_primes --chunksize 4 \
    --input "$tmp/ranges" >"$tmp/out2" 2>"$tmp/err2"
client_pid=${pids[-1]}
for _ in $(seq 300); do
    at=$(($(done_total) - base))
    [ $at -ge $((n / 5)) ] && break
    sleep 0.02
done
ip -n "$ns-sw" link set p-w2 down
down_at=$(date +%s%N)
wait $client_pid
rc=$?
took=$((($(date +%s%N) - down_at) / 1000000))
if [ $rc -eq 0 ] && [ "$at" -lt "$n" ] && cmp -s "$tmp/out2" "$tmp/expected" &&
    grep -q "worker .*(w2 pid .*) lost" "$tmp/broker.err"; then
    pass "w2's link down after $at of $n items: the map completed ${took} ms later, every result once, in order"
else
    fail "w2's link down mid-map" "rc=$rc at=$at" "$(diff "$tmp/expected" "$tmp/out2" | head -5)" \
        "$(cat "$tmp/err2")" "$(grep w2 "$tmp/broker.err" | tail -3)"
fi
hosts_now=$(status_hosts)
if [[ $hosts_now =~ ^w1:[0-9]+$ ]]; then
    pass "the broker dropped w2 ($hosts_now)"
else
    fail "the broker dropped w2" "status: $hosts_now"
fi

# ---- 3. the link comes back: w2 rejoins and works ------------------------------------------

ip -n "$ns-sw" link set p-w2 up
up_at=$(date +%s%N)
if wait_hosts '^w1:[0-9]+ w2:0$' 20; then
    pass "the link is back: w2 rejoined in $((($(date +%s%N) - up_at) / 1000000)) ms"
else
    fail "w2 rejoined" "status: $hosts_now" "$(tail -n 5 "$tmp/w2.err")"
fi
client starmap count_primes --chunksize 4 --input "$tmp/ranges" >"$tmp/out3" 2>"$tmp/err3"
rc=$?
hosts_now=$(status_hosts)
if [ $rc -eq 0 ] && cmp -s "$tmp/out3" "$tmp/expected" && [[ $hosts_now =~ w2:[1-9] ]]; then
    pass "the next map is complete and w2 worked in it ($hosts_now)"
else
    fail "the next map uses w2 again" "rc=$rc status: $hosts_now" "$(cat "$tmp/err3")"
fi

# ---- 4. keys in the wrong role, and no keys: refused ------------------------------------

# w1's key is a worker's: as a client's it is refused (the broker says so)
on client timeout 20 "$client_bin" --broker "$ep" --timeout 2000 --curve-key "$tmp/w1.key_secret" \
    --curve-server-key "$tmp/broker.key" apply count_primes 0 100 >/dev/null 2>"$tmp/err4"
rc=$?
if [ $rc -ne 0 ] && grep -q "refused client .*is not in clients/ of the allow-list" "$tmp/broker.err"; then
    pass "a worker's key offered as a client's is refused"
else
    fail "a worker's key offered as a client's is refused" "rc=$rc" "$(cat "$tmp/err4")"
fi
on client timeout 20 "$client_bin" --broker "$ep" --timeout 10000 apply count_primes 0 100 \
    >/dev/null 2>"$tmp/err5"
rc=$?
if [ $rc -eq 1 ] && grep -q "refused this client: it speaks CURVE" "$tmp/err5"; then
    pass "a client without keys is refused by a CURVE broker, and told to give keys"
else
    fail "a client without keys is refused by a CURVE broker" "rc=$rc" "$(cat "$tmp/err5")"
fi

tl_finish "$tmp/broker.err" "$tmp/w1.err" "$tmp/w2.err"
