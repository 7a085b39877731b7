#!/bin/sh
# python_pip_install: the package installs with pip into a venv made from
# /usr/bin/python3 (--system-site-packages: python3-zmq and python3-msgpack
# from Debian; --no-build-isolation --no-deps: offline), and the installed
# copy imports from outside the source tree and runs `python -m libmp.worker`.
# Exit 77 (skipped) without python3-venv or the modules.
set -u
src=$(cd "$(dirname "$0")/../../python" && pwd)
py=/usr/bin/python3
if ! "$py" -c 'import zmq, msgpack, ensurepip' 2>/dev/null; then
    echo "SKIP: $py with python3-zmq, python3-msgpack and python3-venv is needed"
    exit 77
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/libmp-pip.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' INT TERM
cp -r "$src" "$tmp/src" # pip builds in the tree: keep the source tree clean
timeout 60 "$py" -m venv --system-site-packages "$tmp/venv" || { echo "FAIL: venv"; exit 1; }
if ! timeout 120 "$tmp/venv/bin/pip" install -q --no-build-isolation --no-deps --no-index \
    "$tmp/src" >"$tmp/pip.log" 2>&1; then
    echo "FAIL: pip install"; cat "$tmp/pip.log"; exit 1
fi
cd "$tmp" || exit 1
out=$(VIRTUAL_ENV_DIR="$tmp/venv" timeout 20 "$tmp/venv/bin/python" -c '
import libmp, libmp.worker, os
assert libmp.__file__.startswith(os.environ["VIRTUAL_ENV_DIR"]), libmp.__file__
print(libmp.__version__, libmp.Pool.__name__, libmp.TaskError.__name__)' 2>&1)
case "$out" in
"1.0.0 Pool TaskError") echo "PASS: installed package imports: $out" ;;
*) echo "FAIL: import: $out"; exit 1 ;;
esac
if ! timeout 20 "$tmp/venv/bin/python" -m libmp.worker --help | grep -q "module:function"; then
    echo "FAIL: python -m libmp.worker --help"; exit 1
fi
echo "PASS: python -m libmp.worker --help"
timeout 60 "$tmp/venv/bin/pip" uninstall -q -y libmp >/dev/null 2>&1 || { echo "FAIL: uninstall"; exit 1; }
echo "all checks passed"
