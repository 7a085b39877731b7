#!/usr/bin/env bash
# Installs the build tree into a fresh prefix, as the README's "Install"
# section says, with no LD_LIBRARY_PATH anywhere:
#   - each installed program starts (--version) from the prefix;
#   - a consumer builds and runs with find_package(libmp), with pkg-config
#     plus the README's one rpath flag, and with libmp.a (its dependencies
#     shared: Debian's static libzmq cannot be linked).
set -euo pipefail
build=$1
src=$(cd "$(dirname "$0")" && pwd)/consumer
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
unset LD_LIBRARY_PATH
cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
libdir=$(ls -d "$tmp"/prefix/lib*/ | head -n1)
libdir=${libdir%/}

for prog in mp-broker mp-worker mp-client; do
    out=$("$tmp/prefix/bin/$prog" --version 2>&1) || {
        echo "installed $prog does not start: $out" >&2
        exit 1
    }
    echo "installed $prog --version: $out"
done

cmake -S "$src" -B "$tmp/cmake" -DCMAKE_PREFIX_PATH="$tmp/prefix" >/dev/null
cmake --build "$tmp/cmake" >/dev/null
"$tmp/cmake/consumer"
echo "find_package(libmp): ok"

export PKG_CONFIG_PATH="$libdir/pkgconfig"
# exactly the README's command for a library outside the linker's paths
cc -std=c11 -o "$tmp/pc-consumer" "$src/main.c" $(pkg-config --cflags --libs libmp) \
    -Wl,-rpath,"$(pkg-config --variable=libdir libmp)" ${MP_CONSUMER_FLAGS:-}
"$tmp/pc-consumer"
echo "pkg-config libmp (with its rpath flag): ok"
# and without that flag it must fail the way the README says it does
cc -std=c11 -o "$tmp/pc-norpath" "$src/main.c" $(pkg-config --cflags --libs libmp) ${MP_CONSUMER_FLAGS:-}
if ldconfig -p 2>/dev/null | grep -q 'libmp\.so\.0 '; then
    echo "pkg-config libmp without the flag: not checked (a libmp is installed system-wide)"
elif "$tmp/pc-norpath" 2>/dev/null; then
    echo "a consumer without the rpath flag found libmp: the README's advice is stale" >&2
    exit 1
else
    echo "pkg-config libmp without the flag: does not start, as documented"
fi
cc -std=c11 -static-libgcc -o "$tmp/static-consumer" "$src/main.c" \
    $(pkg-config --cflags libmp) "$libdir/libmp.a" $(pkg-config --libs msgpack libzmq libczmq libsodium) -lpthread -ldl ${MP_CONSUMER_FLAGS:-}
"$tmp/static-consumer"
echo "static libmp.a: ok"
