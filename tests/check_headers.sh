#!/usr/bin/env bash
# tests/check_headers.sh <cc> <c++> <include dir>... [-- <CUDA include dir>]: compile
# tests/headers_strict.c with the C compiler as C11 and with the C++ compiler as C++17, under the
# strict warning set of that file's comment, warnings as errors. Exits 77 (skipped) when the
# compilers are not installed (clang is not everywhere; scripts/test.sh installs it).
set -euo pipefail
cc=$1
cxx=$2
shift 2
here=$(cd "$(dirname "$0")" && pwd)
includes=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do
  includes+=(-I "$1")
  shift
done
if [ "${1:-}" = "--" ] && [ -n "${2:-}" ]; then
  includes+=(-isystem "$2" -DNALLOC_TEST_CUDA_H) # CUDA's own headers are not ours to police
fi
if ! command -v "$cc" >/dev/null 2>&1 || ! command -v "$cxx" >/dev/null 2>&1; then
  echo "$cc or $cxx is not installed: skipped"
  exit 77
fi
flags=(-Wall -Wextra -Wpedantic -Wconversion -Wsign-conversion -Wshadow -Wcast-qual -Wpadded
       -Waggregate-return -Werror)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
echo "$cc -std=c11 ${flags[*]}"
"$cc" -std=c11 "${flags[@]}" "${includes[@]}" -c "$here/headers_strict.c" -o "$out/c.o"
echo "$cxx -std=c++17 ${flags[*]}"
"$cxx" -std=c++17 -x c++ "${flags[@]}" "${includes[@]}" -c "$here/headers_strict.c" -o "$out/cxx.o"
echo "the public headers compile cleanly"
