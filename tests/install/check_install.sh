#!/usr/bin/env bash
# tests/install/check_install.sh <build-dir> <work-dir>: install nalloc from <build-dir> into a
# fresh prefix, then build and run a consumer against it twice: with CMake's find_package(nalloc)
# and with pkg-config. Fails on any error.
set -euo pipefail
build=$1
work=$2
here=$(cd "$(dirname "$0")" && pwd)
rm -rf "$work"
mkdir -p "$work"
prefix=$work/prefix

cmake --install "$build" --prefix "$prefix" >"$work/install.log"
libdir=$(dirname "$(find "$prefix" -name 'libnalloc.*' | head -n 1)")
export LD_LIBRARY_PATH=$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}

echo "== find_package(nalloc)"
cmake -S "$here/consumer" -B "$work/cmake" -DCMAKE_PREFIX_PATH="$prefix" >"$work/configure.log"
cmake --build "$work/cmake" >"$work/build.log"
"$work/cmake/consumer"

echo "== pkg-config nalloc"
export PKG_CONFIG_PATH=$libdir/pkgconfig
flags=$(pkg-config --cflags --libs nalloc)
echo "cc consumer.c $flags"
# shellcheck disable=SC2086
cc -std=c11 -Wall -Wextra -Werror -pedantic "$here/consumer.c" $flags -o "$work/consumer-pc"
"$work/consumer-pc"
