#!/usr/bin/env bash
# tests/install/check_install.sh <build-dir> <work-dir> <source-dir> <install-doc>
#
# Two checks that a user of an installed nalloc gets what they need:
#
# 1. Install nalloc from <build-dir> into a fresh prefix, then build and run a consumer against it
#    twice, with CMake's find_package(nalloc) and with pkg-config, warnings as errors.
# 2. The walkthrough in <install-doc> (docs/install.md), run as printed: its code blocks marked
#    "<!-- install-test: file NAME -->" are written to a project directory, and those marked
#    "<!-- install-test: run in nalloc|project -->" are run in order, as one bash -euo pipefail
#    session, in a copy of <source-dir> or in that project directory, with HOME in <work-dir> and no
#    PKG_CONFIG_PATH, CMAKE_PREFIX_PATH or LD_LIBRARY_PATH inherited: the commands the page
#    shows must be enough on their own.
# Fails on any error.
set -euo pipefail
build=$1
work=$2
source=$3
doc=$4
here=$(cd "$(dirname "$0")" && pwd)
rm -rf "$work"
mkdir -p "$work"
prefix=$work/prefix

cmake --install "$build" --prefix "$prefix" >"$work/install.log"
libdir=$(dirname "$(find "$prefix" -name 'libnalloc.*' | head -n 1)")
(
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
)

echo "== the walkthrough of $doc, as printed"
walk=$work/walkthrough
mkdir -p "$walk/nalloc" "$walk/project" "$walk/home" "$walk/blocks"
# A copy of the sources without build trees, version control or Rust targets.
tar -C "$source" --exclude=./build --exclude=./.git --exclude=./bench-results --exclude=target \
  -cf - . | tar -C "$walk/nalloc" -xf -

# Each marked block becomes blocks/<n>, listed in blocks/manifest as "run <dir> <file>" or
# "file <name> <file>".
awk -v dir="$walk/blocks" '
  /^<!-- install-test: / {
    n++
    what = $3 == "run" ? "run " $5 : "file " $4
    pending = 1
    next
  }
  pending && /^```/ { pending = 0; inside = 1; out = dir "/" n; print what " " out >dir "/manifest"; next }
  inside && /^```/ { inside = 0; close(out); next }
  inside { print >out }
' "$doc"
[ -f "$walk/blocks/manifest" ] || { echo "no install-test blocks in $doc"; exit 1; }
runs=$(grep -c '^run ' "$walk/blocks/manifest" || true)
files=$(grep -c '^file ' "$walk/blocks/manifest" || true)
# The page shows the install, pkg-config with and without an rpath, and CMake: a marker lost in
# an edit must fail here rather than leave part of the page untested.
if [ "$runs" -lt 4 ] || [ "$files" -lt 2 ]; then
  echo "expected at least 4 runnable blocks and 2 files in $doc, found $runs and $files"
  exit 1
fi

# The runnable blocks, in order, as one shell session (an export in one block holds in the next,
# as in a terminal), each preceded by a cd to its directory.
session=$walk/session.sh
: >"$session"
while read -r -u 3 kind arg path; do
  case $kind in
    file)
      cp "$path" "$walk/project/$arg" ;;
    run)
      case $arg in
        nalloc | project) ;;
        *) echo "unknown directory '$arg' in $doc"; exit 1 ;;
      esac
      { echo "echo '-- in $arg:'; cd '$walk/$arg'"; cat "$path"; } >>"$session"
      echo "-- in $arg:"
      sed 's/^/   $ /' "$path" ;;
  esac
done 3<"$walk/blocks/manifest"
env -u PKG_CONFIG_PATH -u CMAKE_PREFIX_PATH -u LD_LIBRARY_PATH HOME="$walk/home" \
  bash -euo pipefail "$session" </dev/null >"$walk/session.log" 2>&1 ||
  { tail -n 40 "$walk/session.log"; echo "the walkthrough in $doc failed (log: $walk/session.log)"; exit 1; }
tail -n 1 "$walk/session.log"
echo "the walkthrough works as printed"
