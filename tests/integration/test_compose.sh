#!/usr/bin/env bash
# test_compose.sh BUILD_DIR - docker-compose.yml and the Dockerfile, without
# a Docker engine (docs/CLUSTER.md section 6):
#   1. the compose file is valid (docker-compose config, Debian's package)
#      and scalable: no fixed container name or host port on the worker,
#      healthchecks, restart policies, environment-only configuration;
#   2. the Dockerfile's build stage runs only the scripts CI's test command
#      runs (scripts/deps.sh, scripts/build.sh), on Debian 12;
#   3. the compose topology runs for real as processes: the build installed
#      as the image installs it, each service started with the compose
#      file's own command and environment (broker address and port mapped
#      to loopback), both healthchecks pass, the job prints the right count.
set -u

build=${1:?usage: test_compose.sh BUILD_DIR}
top=$(cd "$(dirname "$0")/../.." && pwd)
. "$(dirname "$0")/testlib.sh"
if ! command -v docker-compose >/dev/null || ! /usr/bin/python3 -c 'import yaml' 2>/dev/null; then
    echo "SKIP: docker-compose is not installed (scripts/deps.sh --test installs it)"
    exit 77
fi
tl_init test_compose

# ---- 1. the compose file ------------------------------------------------------------------

compose() { docker-compose --project-directory "$top" -f "$top/docker-compose.yml" "$@"; }
if compose config -q 2>"$tmp/err"; then
    pass "docker-compose config accepts docker-compose.yml"
else
    fail "docker-compose config accepts docker-compose.yml" "$(cat "$tmp/err")"
    tl_finish
fi
compose --profile job --profile setup config >"$tmp/config.yml" 2>"$tmp/err"

# the structure, checked on the resolved file; prints one line per problem
/usr/bin/python3 - "$tmp/config.yml" >"$tmp/problems" <<'PY'
import sys, yaml
c = yaml.safe_load(open(sys.argv[1]))
s = c.get("services", {})
known = {"MP_BROKER", "MP_BROKER_BIND", "MP_TASKS", "MP_PROCESSES", "MP_MAXTASKSPERCHILD",
         "MP_HEARTBEAT_MS", "MP_MAX_ATTEMPTS", "MP_MAX_MESSAGE", "MP_LOG_LEVEL", "MP_INSECURE",
         "MP_MAX_QUEUED", "MP_CURVE_KEY", "MP_CURVE_SERVER_KEY", "MP_CURVE_ALLOW_DIR"}
for name in ("broker", "worker", "job"):
    if name not in s:
        print("no service", name)
for name, svc in s.items():
    for k in svc.get("environment", {}):
        if k not in known:
            print(name, "sets", k, "which docs/CLUSTER.md does not document")
    if "build" not in svc or svc.get("image") != "libmp:latest":
        print(name, "does not build the image libmp:latest")
w = s.get("worker", {})
if "container_name" in w or "ports" in w:
    print("worker cannot scale: it has a container_name or host ports")
for name in ("broker", "worker"):
    if s.get(name, {}).get("restart") not in ("unless-stopped", "always", "on-failure"):
        print(name, "has no restart policy")
    if "test" not in s.get(name, {}).get("healthcheck", {}):
        print(name, "has no healthcheck")
if w.get("depends_on", {}).get("broker", {}).get("condition") != "service_healthy":
    print("worker does not wait for a healthy broker")
if w.get("environment", {}).get("MP_BROKER") != "tcp://broker:5555":
    print("worker is not pointed at the broker service")
if s.get("job", {}).get("restart") != "no":
    print("job restarts: a job must run once and exit with its result")
if [p.get("target") for p in s.get("broker", {}).get("ports", [])] != [5555]:
    print("broker does not publish exactly its port 5555")
PY
if [ ! -s "$tmp/problems" ]; then
    pass "services broker, worker (scalable), job; healthchecks, restart policies, env-only config"
else
    fail "compose structure" "$(cat "$tmp/problems")"
fi

# ---- 2. the Dockerfile --------------------------------------------------------------------

df=$top/Dockerfile
froms=$(grep -E '^FROM ' "$df" | awk '{ print $2 }' | tr '\n' ' ')
# RUN lines of the build stage (from the first FROM to the second)
build_runs=$(awk '/^FROM /{ n++ } n == 1 && /^RUN /{ sub(/^RUN +/, ""); print }' "$df")
bad_runs=$(printf '%s\n' "$build_runs" |
    grep -Ev '^([A-Z_]+=[^ ]+ )*scripts/(deps|build)\.sh( [^ ;&|]+)*$' || true)
if [ "$froms" = "debian:12 debian:12-slim " ] && [ -z "$bad_runs" ] &&
    printf '%s\n' "$build_runs" | grep -q '^scripts/deps.sh$' &&
    printf '%s\n' "$build_runs" | grep -q 'scripts/build.sh' &&
    grep -q '"$top/scripts/deps.sh"' "$top/scripts/test.sh" &&
    grep -q '"$top/scripts/build.sh"' "$top/scripts/test.sh" &&
    grep -q 'deps.sh --runtime' "$df"; then
    pass "Dockerfile: Debian 12 build stage runs only scripts/deps.sh and scripts/build.sh, as CI does"
else
    fail "Dockerfile build steps are CI's" "FROM: $froms" "other RUN: $bad_runs"
fi

# ---- 3. the topology, as processes ----------------------------------------------------------

dest=$tmp/image
if ! DESTDIR=$dest cmake --install "$build" >"$tmp/install.log" 2>&1; then
    fail "install the build as the image does" "$(tail -n 5 "$tmp/install.log")"
    tl_finish
fi
port=$(/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# each service's command, environment and healthcheck as bash arrays, with
# the image's paths and the broker's address mapped onto this machine
/usr/bin/python3 - "$tmp/config.yml" "$dest" "$port" "$tmp/keys" >"$tmp/services.sh" <<'PY'
import shlex, sys, yaml
c, dest, port, keys = yaml.safe_load(open(sys.argv[1])), sys.argv[2], sys.argv[3], sys.argv[4]
def local(v):
    v = str(v).replace("/usr/local/", dest + "/usr/local/").replace("/keys", keys).replace("$$", "$")
    v = v.replace("tcp://broker:5555", "tcp://127.0.0.1:" + port)
    return v.replace("tcp://*:5555", "tcp://127.0.0.1:" + port).replace("127.0.0.1:5555", "127.0.0.1:" + port)
def arr(name, items):
    print("%s=(%s)" % (name, " ".join(shlex.quote(local(i)) for i in items)))
for name, svc in c["services"].items():
    name = name.replace("-", "_")
    arr(name + "_cmd", svc["command"])
    arr(name + "_env", ["%s=%s" % kv for kv in svc.get("environment", {}).items()])
    hc = svc.get("healthcheck", {}).get("test", [])
    if hc and hc[0] == "CMD-SHELL":
        arr(name + "_health", ["sh", "-c", hc[1].replace("$$", "$")])
    else:
        arr(name + "_health", hc[1:])
PY
. "$tmp/services.sh"
export PATH="$dest/usr/local/bin:$PATH" LD_LIBRARY_PATH="$dest/usr/local/lib"
missing=
for f in "${broker_cmd[0]}" "${worker_cmd[0]}" "${job_cmd[0]}" mp-client; do
    command -v "$f" | grep -q "^$dest/" || missing+=" $f"
done
[ -e "$(printf '%s\n' "${worker_env[@]}" | sed -n 's/^MP_TASKS=//p')" ] || missing+=" MP_TASKS"
if [ -z "$missing" ]; then
    pass "the installed tree has every program and library the compose file names"
else
    fail "the installed tree has every program and library the compose file names" "missing:$missing"
    tl_finish
fi

# the keys volume, filled by the make-keys service's own command
mkdir -p "$tmp/keys"
if env "${make_keys_env[@]}" "${make_keys_cmd[@]}" >"$tmp/keys.out" 2>&1 && [ -s "$tmp/keys/broker.key_secret" ] &&
    [ -s "$tmp/keys/allow/workers/worker.key" ] && [ -s "$tmp/keys/allow/clients/client.key" ]; then
    pass "make-keys: $(cat "$tmp/keys.out")"
else
    fail "make-keys fills the keys volume" "$(cat "$tmp/keys.out")"
    tl_finish
fi
health() { tl_until 50 0.2 "$@" >/dev/null 2>&1; } # health CMD...: retry a healthcheck for up to 10 s
tl_bg env "${broker_env[@]}" timeout 120 "${broker_cmd[@]}" >"$tmp/broker.out" 2>"$tmp/broker.err"
if health env "${broker_env[@]}" "${broker_health[@]}"; then
    pass "broker: up, its healthcheck passes (${broker_health[*]})"
else
    fail "broker healthcheck" "$(cat "$tmp/broker.err")"
    tl_finish
fi
for i in 1 2; do # --scale worker=2
    tl_bg env "${worker_env[@]}" timeout 120 "${worker_cmd[@]}" 2>"$tmp/worker$i.err"
done
if health env "${worker_env[@]}" "${worker_health[@]}"; then
    pass "worker: its healthcheck passes once it has joined"
else
    fail "worker healthcheck" "$(cat "$tmp/worker1.err")"
fi
env "${job_env[@]}" timeout 120 "${job_cmd[@]}" >"$tmp/job.out" 2>"$tmp/job.err"
rc=$?
if [ $rc -eq 0 ] && grep -q '^primes below 20000000: 1270607 (200 blocks, ' "$tmp/job.out"; then
    pass "job: $(cat "$tmp/job.out")"
else
    fail "job prints the count of primes below 2*10^7" "rc=$rc" "$(cat "$tmp/job.out" "$tmp/job.err")"
fi

tl_finish "$tmp/broker.err" "$tmp/worker1.err" "$tmp/worker2.err"
