#!/usr/bin/env bash
# test_dashboard.sh BUILD_DIR - the dashboard in a real browser: installs
# headless Chromium and python3-websocket when missing (scripts/deps.sh
# --browser), then runs test_dashboard.py with Debian's python3. Skipped
# (77) only where they cannot be installed.
set -u
build=${1:?usage: test_dashboard.sh BUILD_DIR}
here=$(cd "$(dirname "$0")" && pwd)
if ! "$here/../../scripts/deps.sh" --browser; then
    echo "SKIPPED: cannot install chromium and python3-websocket"
    exit 77
fi
exec timeout 240 /usr/bin/python3 "$here/test_dashboard.py" "$build"
