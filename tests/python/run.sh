#!/bin/sh
# run.sh TEST.py - runs one of the Python tests with /usr/bin/python3 (the
# Debian interpreter that has python3-zmq and python3-msgpack); exit 77
# (ctest: skipped) when that interpreter or those modules are missing
# (scripts/deps.sh --test installs them).
py=/usr/bin/python3
if ! [ -x "$py" ] || ! "$py" -c 'import zmq, msgpack' 2>/dev/null; then
    echo "SKIP: $py with python3-zmq and python3-msgpack is needed (scripts/deps.sh --test)"
    exit 77
fi
export PYTHONDONTWRITEBYTECODE=1 # keep the source tree clean
exec "$py" "$@"
