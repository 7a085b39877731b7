#!/usr/bin/env bash
# Installs the build tree into a temporary prefix, then builds and runs a
# consumer against it: with find_package(libmp), with pkg-config, and with
# libmp.a (its dependencies shared: Debian's static libzmq cannot be linked).
set -euo pipefail
build=$1
src=$(cd "$(dirname "$0")" && pwd)/consumer
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
libdir=$(ls -d "$tmp"/prefix/lib*/ | head -n1)
export LD_LIBRARY_PATH="$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

cmake -S "$src" -B "$tmp/cmake" -DCMAKE_PREFIX_PATH="$tmp/prefix" >/dev/null
cmake --build "$tmp/cmake" >/dev/null
"$tmp/cmake/consumer"
echo "find_package(libmp): ok"

export PKG_CONFIG_PATH="$libdir/pkgconfig"
cc -std=c11 -o "$tmp/pc-consumer" "$src/main.c" $(pkg-config --cflags --libs libmp) ${MP_CONSUMER_FLAGS:-}
"$tmp/pc-consumer"
echo "pkg-config libmp: ok"
cc -std=c11 -static-libgcc -o "$tmp/static-consumer" "$src/main.c" \
    $(pkg-config --cflags libmp) "$libdir/libmp.a" $(pkg-config --libs msgpack libzmq) -lpthread -ldl ${MP_CONSUMER_FLAGS:-}
"$tmp/static-consumer"
echo "static libmp.a: ok"
