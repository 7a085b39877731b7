#!/usr/bin/env bash
# Installs the Debian 12 packages libmp needs, when any is missing.
#   scripts/deps.sh            to build: compilers, the four libraries, jansson
#   scripts/deps.sh --test     to build and run the whole suite: also iproute2
#                              (network namespaces), docker-compose (compose
#                              file validation) and python3-zmq, python3-msgpack,
#                              python3-venv (python/: docs/PYTHON.md)
#   scripts/deps.sh --runtime  to run mp-broker, mp-worker, mp-client (the
#                              Docker image's runtime stage)
#   scripts/deps.sh --fuzz     to build and run the fuzz targets (scripts/fuzz.sh):
#                              clang and libFuzzer
#   scripts/deps.sh --browser  the dashboard's browser test: headless Chromium and
#                              python3-websocket (its DevTools protocol client)
set -euo pipefail
build=(libzmq3-dev libczmq-dev libsodium-dev libmsgpack-dev libcmocka-dev libjansson-dev libmicrohttpd-dev pkg-config cmake make gcc libc6-dev python3)
case "${1:-}" in
"") pkgs=("${build[@]}") ;;
--test) pkgs=("${build[@]}" iproute2 docker-compose python3-zmq python3-msgpack python3-venv) ;;
--runtime) pkgs=(libzmq5 libczmq4 libsodium23 libmsgpackc2 libjansson4 libmicrohttpd12) ;;
--fuzz) pkgs=("${build[@]}" clang-14 libclang-rt-14-dev) ;;
--browser) pkgs=(chromium python3-websocket) ;;
*) echo "usage: scripts/deps.sh [--test | --runtime | --fuzz | --browser]" >&2; exit 2 ;;
esac
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
echo "installing: ${missing[*]}" >&2
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
