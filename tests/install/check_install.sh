#!/usr/bin/env bash
# tests/install/check_install.sh <build-dir> <work-dir>: install nalloc from <build-dir> into a
# fresh prefix, then build and run a consumer against it: with CMake's find_package(nalloc), with
# pkg-config's nalloc (host only: no CUDA flags in it), and, where the CUDA parts were built, with
# pkg-config's nalloc-cuda and the CUDA API. Fails on any error.
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

echo "== pkg-config nalloc (host only)"
export PKG_CONFIG_PATH=$libdir/pkgconfig
flags=$(pkg-config --cflags --libs nalloc)
case $flags in
  *cuda*) echo "nalloc.pc hands host-only users CUDA flags: $flags"; exit 1 ;;
esac
echo "cc consumer.c $flags"
# shellcheck disable=SC2086
cc -std=c11 -Wall -Wextra -Werror -pedantic "$here/consumer.c" $flags -o "$work/consumer-pc"
"$work/consumer-pc"

# The CUDA API has its own entry, where the CUDA parts were built (nalloc/config.h says so).
if grep -q '^#define NALLOC_HAVE_CUDA 1' "$prefix/include/nalloc/config.h"; then
  echo "== pkg-config nalloc-cuda"
  pkg-config --exists nalloc-cuda || { echo "nalloc-cuda.pc is missing"; exit 1; }
  flags=$(pkg-config --cflags --libs nalloc-cuda)
  echo "cc -DCONSUMER_WITH_CUDA consumer.c $flags"
  # shellcheck disable=SC2086
  cc -std=c11 -Wall -Wextra -Werror -pedantic -DCONSUMER_WITH_CUDA "$here/consumer.c" $flags \
    -o "$work/consumer-pc-cuda"
  "$work/consumer-pc-cuda"
elif pkg-config --exists nalloc-cuda; then
  echo "nalloc-cuda.pc installed by a build without the CUDA parts"
  exit 1
fi
