#!/usr/bin/env bash
# test_container.sh - the image and the compose cluster for real, with podman
# (docs/CLUSTER.md section 6):
#   1. ../shared/tools/podman-setup.sh installs podman and a local debian:12
#      base (SKIPPED, exit 77, when it cannot: never a silent pass);
#   2. the Dockerfile builds (its size is printed);
#   3. make-keys fills the keys volume; the broker comes up with CURVE and
#      its healthcheck passes; 3 worker containers join and pass theirs;
#   4. a map of 100,000 items from a client container: every line right;
#   5. a worker container killed (podman kill) during a long map: the map
#      still completes with the right count (each block counted once);
#   6. down -v (after the workers added with run -d) leaves no container and
#      no volume of the project.
# Label "container": run once by CI, not again under sanitizers.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
setup=$top/../shared/tools/podman-setup.sh
tmp=$(mktemp -d)
P=mpct$$
failures=0
pass() { echo "PASS: $1"; }
fail() {
    echo "FAIL: $1"
    shift
    for d in "$@"; do echo "$d" | tail -n 20 | sed 's/^/    /'; done
    failures=$((failures + 1))
}
skip() {
    echo "SKIPPED: $*"
    rm -rf "$tmp"
    exit 77
}
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo -n "$@"; fi; }
pc() { as_root podman-compose -p "$P" -f "$top/docker-compose.yml" "$@"; }
cleanup() {
    pc down -v >/dev/null 2>&1
    for c in $(as_root podman ps -aq --filter "label=io.podman.compose.project=$P" 2>/dev/null); do
        as_root podman rm -f "$c" >/dev/null 2>&1
    done
    as_root podman volume rm -f "${P}_keys" >/dev/null 2>&1
    rm -rf "$tmp"
}
until_ok() { # until_ok TRIES SLEEP CMD...: retry CMD
    local n=$1 s=$2
    shift 2
    for _ in $(seq "$n"); do "$@" >/dev/null 2>&1 && return 0; sleep "$s"; done
    return 1
}

# ---- 1. podman ---------------------------------------------------------------------------------
[ -f "$setup" ] || skip "no podman-setup.sh at $setup"
[ "$(id -u)" = 0 ] || sudo -n true 2>/dev/null || skip "podman needs root (or sudo without a password)"
if ! bash "$setup" >"$tmp/setup.log" 2>&1; then
    skip "podman cannot be set up on this machine: $(tail -n 3 "$tmp/setup.log" | tr '\n' ' ')"
fi
trap cleanup EXIT
pass "$(tail -n 1 "$tmp/setup.log")"

# ---- 2. the image ------------------------------------------------------------------------------
start=$(date +%s)
if as_root podman build --format docker -t libmp:latest "$top" >"$tmp/build.log" 2>&1; then
    size=$(as_root podman image inspect libmp:latest --format '{{.Size}}')
    pass "the image builds in $(($(date +%s) - start)) s: $((size / 1024 / 1024)) MiB"
else
    fail "the image builds" "$(tail -n 20 "$tmp/build.log")"
    exit 1
fi

# ---- 3. the cluster ----------------------------------------------------------------------------
client() { # client ARGS...: mp-client in a container of the project's network, keys mounted
    as_root podman run --rm -i --network "${P}_default" -v "${P}_keys:/keys" \
        -e MP_BROKER=tcp://broker:5555 -e MP_CURVE_KEY=/keys/client.key_secret \
        -e MP_CURVE_SERVER_KEY=/keys/broker.key libmp:latest "$@"
}
if pc run --rm make-keys >"$tmp/keys.log" 2>&1; then
    pass "make-keys: $(grep '^keys in the volume' "$tmp/keys.log")"
else
    fail "make-keys fills the keys volume" "$(cat "$tmp/keys.log")"
    exit 1
fi
pc up -d broker >"$tmp/up.log" 2>&1
if until_ok 30 1 as_root podman healthcheck run "${P}_broker_1"; then
    pass "broker: up with CURVE keys, its healthcheck passes"
else
    fail "broker healthcheck" "$(cat "$tmp/up.log")" "$(as_root podman logs "${P}_broker_1" 2>&1)"
    exit 1
fi
# podman-compose 1.0.3 (Debian 12) has no --scale: more workers are more
# containers of the service (docker compose: up -d --scale worker=3)
for i in 1 2 3; do
    as_root podman container exists "${P}_worker_$i" ||
        pc run -d --no-deps --name "${P}_worker_$i" worker >>"$tmp/up.log" 2>&1
done
three() { client mp-client --timeout 3000 status | grep -q '^workers: 3 '; }
if until_ok 30 1 three; then
    healthy=0
    for i in 1 2 3; do
        until_ok 10 1 as_root podman healthcheck run "${P}_worker_$i" && healthy=$((healthy + 1))
    done
    if [ $healthy -eq 3 ]; then
        pass "3 workers joined, their healthchecks pass: $(client mp-client status | head -n 2 | tr '\n' ' ')"
    else
        fail "3 worker healthchecks pass" "$healthy healthy"
    fi
else
    fail "3 workers join" "$(cat "$tmp/up.log")" "$(client mp-client status 2>&1)"
    exit 1
fi

# ---- 4. a map of 100,000 ---------------------------------------------------------------------
seq 0 99999 >"$tmp/in"
start=$(date +%s%N)
client mp-client map square --chunksize 1000 <"$tmp/in" >"$tmp/out" 2>"$tmp/err"
rc=$?
ms=$((($(date +%s%N) - start) / 1000000))
bad=$(awk '$1 != (NR - 1) * (NR - 1) { n++ } END { print n + 0 }' "$tmp/out")
if [ $rc -eq 0 ] && [ "$(wc -l <"$tmp/out")" -eq 100000 ] && [ "$bad" -eq 0 ]; then
    pass "a map of 100,000 from a client container: 100,000 right lines in $ms ms"
else
    fail "a map of 100,000 from a client container" "rc=$rc lines=$(wc -l <"$tmp/out") wrong=$bad" "$(cat "$tmp/err")"
fi

# ---- 5. a worker killed during a long map --------------------------------------------------------
client mp-example-job 20000000 400 >"$tmp/job.out" 2>"$tmp/job.err" &
job=$!
sleep 2
as_root podman kill "${P}_worker_2" >/dev/null 2>&1
killed=$?
wait $job
rc=$?
if [ $killed -eq 0 ] && [ $rc -eq 0 ] && grep -q '^primes below 20000000: 1270607 (400 blocks, ' "$tmp/job.out"; then
    pass "a worker container killed 2 s into a long map: $(cat "$tmp/job.out")"
else
    fail "a worker container killed during a map: it completes, each block once" \
        "kill=$killed rc=$rc" "$(cat "$tmp/job.out" "$tmp/job.err")"
fi

# ---- 6. down -------------------------------------------------------------------------------------
# podman-compose's down removes the containers it numbered; those added
# with run -d go by the project's label first (docs/CLUSTER.md 6)
as_root podman rm -f "${P}_worker_2" "${P}_worker_3" >/dev/null 2>&1
pc down -v >"$tmp/down.log" 2>&1
left=$(as_root podman ps -aq --filter "label=io.podman.compose.project=$P" | wc -l)
vols=$(as_root podman volume ls -q | grep -c "^${P}_" || true)
if [ "$left" -eq 0 ] && [ "$vols" -eq 0 ]; then
    pass "down -v leaves no container and no volume"
else
    fail "down -v leaves nothing" "$left containers, $vols volumes" "$(cat "$tmp/down.log")"
fi

[ $failures -eq 0 ] && echo "all checks passed" && exit 0
echo "$failures check(s) FAILED"
exit 1
