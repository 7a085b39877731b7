#!/usr/bin/env bash
# test_cli.sh BUILD_DIR - mp-client against a real cluster: one mp-broker on
# a free loopback port, one mp-worker (2 executors) serving
# libexample_tasks.so. Prints PASS/FAIL per check; exits 1 on any failure,
# 77 (skipped) when the programs are not built. Every process it starts is
# killed and waited for on exit; every command runs under `timeout`.
set -u

build=${1:?usage: test_cli.sh BUILD_DIR}
. "$(dirname "$0")/testlib.sh"
tl_programs
tl_init test_cli

# mp-client with a time limit; stdout in $tmp/out, stderr in $tmp/err, status in $rc
run() {
    timeout 20 "$client_bin" "$@" >"$tmp/out" 2>"$tmp/err"
    rc=$?
}

# ---- the cluster ---------------------------------------------------------------------------

tl_broker broker 90 --bind tcp://127.0.0.1:0 || exit 1
echo "broker at $ep"
export MP_BROKER=$ep

tl_bg timeout 90 "$worker_bin" --broker "$ep" --tasks "$tasks" -p 2 >"$tmp/worker.log" 2>&1
worker_joined() {
    timeout 5 "$client_bin" --timeout 2000 status >"$tmp/status" 2>/dev/null &&
        grep -q '^workers: 1 (2 processes)' "$tmp/status"
}
if ! tl_until 100 0.1 worker_joined; then
    fail "mp-worker registered with 2 processes" "$(cat "$tmp/status" "$tmp/worker.log")"
    exit 1
fi

# ---- checks --------------------------------------------------------------------------------

run apply square 7
if [ $rc -eq 0 ] && [ "$(cat "$tmp/out")" = 49 ]; then
    pass "apply square 7 prints 49"
else
    fail "apply square 7 prints 49" "rc=$rc out=$(head -c 300 "$tmp/out")" "$(cat "$tmp/err")"
fi

run apply upper hello
if [ $rc -eq 0 ] && [ "$(cat "$tmp/out")" = '"HELLO"' ]; then
    pass "apply upper hello: a non-JSON argument is a string"
else
    fail "apply upper hello: a non-JSON argument is a string" "rc=$rc out=$(cat "$tmp/out")"
fi

seq 1 1000 >"$tmp/ints"
seq 1 1000 | awk '{ print $1 * $1 }' >"$tmp/squares"
timeout 30 "$client_bin" map square <"$tmp/ints" >"$tmp/out" 2>"$tmp/err"
rc=$?
if [ $rc -eq 0 ] && cmp -s "$tmp/out" "$tmp/squares"; then
    pass "map square over 1..1000 prints the squares in order"
else
    fail "map square over 1..1000 prints the squares in order" "rc=$rc" \
        "$(diff "$tmp/squares" "$tmp/out" | head -5)" "$(cat "$tmp/err")"
fi

seq 1 1000 | awk '{ printf "[%d, %d]\n", $1, 2 * $1 }' >"$tmp/pairs"
seq 1 1000 | awk '{ print 3 * $1 }' >"$tmp/triples"
run starmap add --input "$tmp/pairs" --chunksize 7
if [ $rc -eq 0 ] && cmp -s "$tmp/out" "$tmp/triples"; then
    pass "starmap add over [i, 2i] prints 3i in order"
else
    fail "starmap add over [i, 2i] prints 3i in order" "rc=$rc" \
        "$(diff "$tmp/triples" "$tmp/out" | head -5)" "$(cat "$tmp/err")"
fi

timeout 30 "$client_bin" map --unordered --chunksize 3 square <"$tmp/ints" >"$tmp/out" 2>"$tmp/err"
rc=$?
if [ $rc -eq 0 ] && sort -n "$tmp/out" | cmp -s - "$tmp/squares"; then
    pass "map --unordered prints the same multiset"
else
    fail "map --unordered prints the same multiset" "rc=$rc" "$(cat "$tmp/err")"
fi

# --with-input: each result beside its input line, whatever the order
paste "$tmp/ints" "$tmp/squares" >"$tmp/ints_squares"
run map square --with-input --input "$tmp/ints"
if [ $rc -eq 0 ] && cmp -s "$tmp/out" "$tmp/ints_squares"; then
    pass "map --with-input prints 'input<TAB>result' in order"
else
    fail "map --with-input prints 'input<TAB>result' in order" "rc=$rc" \
        "$(diff "$tmp/ints_squares" "$tmp/out" | head -5)" "$(cat "$tmp/err")"
fi
run map square -w --unordered --chunksize 3 --input "$tmp/ints"
if [ $rc -eq 0 ] && sort -n "$tmp/out" | cmp -s - "$tmp/ints_squares"; then
    pass "map --with-input --unordered pairs every result with its own input"
else
    fail "map --with-input --unordered pairs every result with its own input" "rc=$rc" \
        "$(sort -n "$tmp/out" | diff "$tmp/ints_squares" - | head -5)" "$(cat "$tmp/err")"
fi
paste "$tmp/pairs" "$tmp/triples" >"$tmp/pairs_triples"
run starmap add --with-input --input "$tmp/pairs" --chunksize 7
if [ $rc -eq 0 ] && cmp -s "$tmp/out" "$tmp/pairs_triples"; then
    pass "starmap --with-input prints 'input<TAB>result' in order"
else
    fail "starmap --with-input prints 'input<TAB>result' in order" "rc=$rc" \
        "$(diff "$tmp/pairs_triples" "$tmp/out" | head -5)" "$(cat "$tmp/err")"
fi
printf '3\n\n"x"\n10\n' >"$tmp/mixed"
run map square --with-input --input "$tmp/mixed"
if [ $rc -eq 1 ] && [ "$(sed -n 1p "$tmp/out")" = "$(printf '3\t9')" ] &&
    sed -n 2p "$tmp/out" | grep -q '^"x"	{"error":{"code":-4105,' &&
    [ "$(sed -n 3p "$tmp/out")" = "$(printf '10\t100')" ] && [ "$(wc -l <"$tmp/out")" -eq 3 ]; then
    pass "map --with-input: a failed item's error beside its input, blank lines skipped"
else
    fail "map --with-input: a failed item's error beside its input" "rc=$rc" "$(cat "$tmp/out" "$tmp/err")"
fi
run status --with-input
if [ $rc -eq 2 ] && grep -q 'status does not take --with-input' "$tmp/err"; then
    pass "status --with-input: exit 2, named"
else
    fail "status --with-input: exit 2, named" "rc=$rc" "$(cat "$tmp/err")"
fi

run apply no_such_task 1
if [ $rc -ne 0 ] && grep -qi 'unknown task' "$tmp/out" "$tmp/err"; then
    pass "apply no_such_task fails with an unknown task error (rc=$rc)"
else
    fail "apply no_such_task fails with an unknown task error" "rc=$rc" \
        "$(cat "$tmp/out" "$tmp/err")"
fi

# a misspelt name: the error names what the cluster serves, closest first
run apply sqaure 3
if [ $rc -ne 0 ] && grep -q "no worker serves 'sqaure'; served: 'square'" "$tmp/out" "$tmp/err"; then
    pass "apply sqaure: the error names the closest served task first"
else
    fail "apply sqaure: the error names the closest served task first" "rc=$rc" \
        "$(cat "$tmp/out" "$tmp/err")"
fi

# a failed item prints an error line in its place; the others still run
printf '[0, 10]\n[0, 1000000000]\n[10, 20]\n' >"$tmp/ranges"
run starmap count_primes --input "$tmp/ranges"
line2=$(sed -n 2p "$tmp/out")
if [ $rc -eq 1 ] && [ "$(sed -n 1p "$tmp/out")" = 4 ] && [ "$(sed -n 3p "$tmp/out")" = 4 ] &&
    [[ $line2 == '{"error":{"code":-4103,'*'"task":"count_primes"'*'"index":1'* ]]; then
    pass "a failed item prints {\"error\": ...} in its place and exits 1"
else
    fail "a failed item prints {\"error\": ...} in its place and exits 1" "rc=$rc" \
        "$(cat "$tmp/out" "$tmp/err")"
fi

run status
workers=$(grep -c '^  worker ' "$tmp/out")
total_done=$(sed -n 's/^items: \([0-9]*\) done.*/\1/p' "$tmp/out")
worker_done=$(sed -n 's/^  worker .*, \([0-9]*\) done,.*/\1/p' "$tmp/out")
if [ $rc -eq 0 ] && [ "$workers" -eq 1 ] && grep -q '^workers: 1 (2 processes)' "$tmp/out" &&
    grep -q '^  worker .*, 2 processes,' "$tmp/out" && [ "${total_done:-0}" -gt 0 ] &&
    [ "${worker_done:-0}" -gt 0 ]; then
    pass "status lists 1 worker with 2 processes and done counts > 0"
else
    fail "status lists 1 worker with 2 processes and done counts > 0" "rc=$rc" \
        "$(cat "$tmp/out" "$tmp/err")"
fi

run status --json
if [ $rc -eq 0 ] && [ "$(wc -l <"$tmp/out")" -eq 1 ] &&
    grep -q '"workers":\[{.*"processes":2,' "$tmp/out"; then
    pass "status --json prints the status map as one JSON line"
else
    fail "status --json prints the status map as one JSON line" "rc=$rc" "$(cat "$tmp/out")"
fi

run status --host "$(hostname)"
rc_here=$rc
run status --host no-such-host
if [ $rc_here -eq 0 ] && [ $rc -eq 1 ] &&
    grep -q '^mp-client: status: no worker on host no-such-host is connected' "$tmp/err"; then
    pass "status --host: 0 for this host's worker, 1 for a host without one"
else
    fail "status --host: 0 for this host's worker, 1 for a host without one" \
        "rc here=$rc_here elsewhere=$rc" "$(cat "$tmp/err")"
fi

printf '1\n2\n{"bad json\n4\n' >"$tmp/bad"
run map square --input "$tmp/bad"
if [ $rc -eq 1 ] && grep -q 'line 3' "$tmp/err" && [ "$(head -n 2 "$tmp/out" | tr '\n' ' ')" = "1 4 " ]; then
    pass "a bad JSON line exits 1 naming the line ($(head -n 1 "$tmp/err"))"
else
    fail "a bad JSON line exits 1 naming the line" "rc=$rc" "$(cat "$tmp/out" "$tmp/err")"
fi

printf '[1, 2]\n7\n' >"$tmp/notarray"
run starmap add --input "$tmp/notarray"
if [ $rc -eq 1 ] && grep -q 'line 2' "$tmp/err"; then
    pass "starmap rejects a line that is not an array, naming the line"
else
    fail "starmap rejects a line that is not an array, naming the line" "rc=$rc" \
        "$(cat "$tmp/out" "$tmp/err")"
fi

timeout 10 env -u MP_BROKER "$client_bin" apply square 1 >"$tmp/out" 2>"$tmp/err"
rc=$?
if [ $rc -eq 2 ] && [ "$(wc -l <"$tmp/err")" -eq 1 ] && grep -q 'broker' "$tmp/err"; then
    pass "no --broker and no MP_BROKER: exit 2, one line"
else
    fail "no --broker and no MP_BROKER: exit 2, one line" "rc=$rc" "$(cat "$tmp/err")"
fi

run --broker tcp://127.0.0.1:1 --timeout 300 apply square 1
if [ $rc -eq 1 ] && [ "$(wc -l <"$tmp/err")" -eq 1 ] &&
    grep -q '^mp-client: no broker answered at tcp://127.0.0.1:1 within 300 ms: is mp-broker running there' "$tmp/err"; then
    pass "unreachable broker: exit 1, one line saying it was never reached"
else
    fail "unreachable broker: exit 1, one line saying it was never reached" "rc=$rc" "$(cat "$tmp/err")"
fi

# a malformed address or a host that does not resolve: at once (the
# timeout below would be the whole wait), one line saying what is wrong
for case in "127.0.0.1:5555|2|'127.0.0.1:5555' is not a broker address: use tcp://HOST:PORT .* or ipc://PATH" \
    "tcp://no-such-host.invalid:5555|1|cannot resolve host 'no-such-host.invalid' of tcp://no-such-host.invalid:5555: " \
    "mpp+tcp://127.0.0.1:5556|2|mpp\\+tcp://127.0.0.1:5556 is a plain stream endpoint, which serves workers: give the broker's tcp:// or ipc:// endpoint"; do
    addr=${case%%|*}
    rest=${case#*|}
    want=${rest%%|*}
    pattern=${rest#*|}
    start=$(date +%s%N)
    run --broker "$addr" --timeout 20000 apply square 1
    took=$((($(date +%s%N) - start) / 1000000))
    if [ $rc -eq "$want" ] && [ $took -lt 5000 ] && [ "$(wc -l <"$tmp/err")" -eq 1 ] &&
        grep -Eq "^mp-client: $pattern" "$tmp/err"; then
        pass "broker address $addr: exit $rc after $took ms: $(cat "$tmp/err")"
    else
        fail "broker address $addr: exit $want at once, one line" "rc=$rc took=${took}ms" "$(cat "$tmp/err")"
    fi
done

run map square --frobnicate
if [ $rc -eq 2 ]; then
    pass "unknown option: exit 2"
else
    fail "unknown option: exit 2" "rc=$rc" "$(cat "$tmp/err")"
fi

# a task over --task-timeout is killed; its line says so, the others complete
printf '[0, 100]\n[0, 100000000]\n[0, 1000]\n' >"$tmp/limits"
start=$(date +%s%N)
run --task-timeout 300 starmap count_primes --input "$tmp/limits"
took=$((($(date +%s%N) - start) / 1000000))
if [ $rc -eq 1 ] && [ $took -lt 5000 ] && [ "$(sed -n 1p "$tmp/out")" = 25 ] &&
    sed -n 2p "$tmp/out" | grep -q '"code":-4116,"message":"over its time limit of 300 ms' &&
    [ "$(sed -n 3p "$tmp/out")" = 168 ]; then
    pass "--task-timeout 300: the endless item fails (-4116) after $took ms, the others complete"
else
    fail "--task-timeout 300: the endless item fails, the others complete" "rc=$rc took=${took}ms" \
        "$(cat "$tmp/out" "$tmp/err")"
fi

# ---- CURVE: keygen, an admitted key, a refused one ----------------------------------------

mkdir -p "$tmp/allow/workers" "$tmp/allow/clients"
for k in cbroker cworker cclient stranger; do
    timeout 10 "$client_bin" keygen "$tmp/$k" >/dev/null 2>&1 || fail "keygen $k"
done
cp "$tmp/cworker.key" "$tmp/allow/workers/" && cp "$tmp/cclient.key" "$tmp/allow/clients/"
tl_broker cbroker 60 --bind tcp://127.0.0.1:0 --curve-key "$tmp/cbroker.key_secret" \
    --allow-dir "$tmp/allow" || exit 1
cep=$ep
tl_bg timeout 60 "$worker_bin" --broker "$cep" --tasks "$tasks" -p 1 --curve-key \
    "$tmp/cworker.key_secret" --curve-server-key "$tmp/cbroker.key" >"$tmp/cworker.log" 2>&1
run --broker "$cep" --curve-key "$tmp/cclient.key_secret" --curve-server-key "$tmp/cbroker.key" \
    apply square 9
if [ $rc -eq 0 ] && [ "$(cat "$tmp/out")" = 81 ]; then
    pass "CURVE: an admitted client key runs apply square 9"
else
    fail "CURVE: an admitted client key runs apply square 9" "rc=$rc out=$(cat "$tmp/out")" \
        "$(cat "$tmp/err" "$tmp/cworker.log")"
fi
for who in stranger none wrong-server-key; do
    case $who in
    stranger) keys=(--curve-key "$tmp/stranger.key_secret" --curve-server-key "$tmp/cbroker.key") ;;
    none) keys=() ;;
    *) keys=(--curve-key "$tmp/cclient.key_secret" --curve-server-key "$tmp/stranger.key") ;;
    esac
    start=$(date +%s%N)
    run --broker "$cep" --timeout 10000 "${keys[@]}" apply square 9
    took=$((($(date +%s%N) - start) / 1000000))
    if [ $rc -eq 1 ] && [ $took -lt 5000 ] && [ "$(wc -l <"$tmp/err")" -eq 1 ] &&
        grep -q "^mp-client: the broker at $cep refused this client" "$tmp/err"; then
        pass "CURVE: key $who refused after $took ms: $(cat "$tmp/err")"
    else
        fail "CURVE: key $who refused at once, one line" "rc=$rc took=${took}ms" "$(cat "$tmp/err")"
    fi
done

tl_finish "$tmp/broker.err" "$tmp/worker.log"
