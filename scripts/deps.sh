#!/usr/bin/env bash
# Installs the Debian packages libmp builds with, when any is missing.
set -euo pipefail
pkgs=(libzmq3-dev libczmq-dev libmsgpack-dev libcmocka-dev libjansson-dev pkg-config cmake gcc python3)
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
echo "installing: ${missing[*]}" >&2
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
