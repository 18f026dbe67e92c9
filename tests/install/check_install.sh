#!/usr/bin/env bash
# tests/install/check_install.sh <build-dir> <work-dir> <source-dir> <doc>...
#
# Two checks that a user of an installed nalloc gets what they need:
#
# 1. Install nalloc from <build-dir> into a fresh prefix, then build and run a consumer against it
#    twice, with CMake's find_package(nalloc) and with pkg-config, warnings as errors.
# 2. The walkthrough of each <doc> (README.md, docs/install.md), run as printed. A marker comment
#    on a line before a code block says what to do with it:
#      <!-- install-test: file NAME -->      write the block to NAME in the project directory
#      <!-- install-test: run in nalloc -->  run it in a fresh copy of <source-dir>
#      <!-- install-test: run in project --> run it in the project directory
#      <!-- install-test: skip REASON -->    show it, do not run it (REASON says why)
#    The runnable blocks of one document run in order as one bash -euo pipefail session, with
#    HOME in <work-dir> and no PKG_CONFIG_PATH, CMAKE_PREFIX_PATH or LD_LIBRARY_PATH inherited:
#    the commands a page shows must be enough on their own. A shell block that runs cmake,
#    pkg-config or a compiler without a marker fails the check, so no such command goes untested
#    unless a skip marker says why.
# Fails on any error.
set -euo pipefail
build=$1
work=$2
source=$3
shift 3
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

# walkthrough <doc> <n>: run the marked blocks of <doc> in $work/walkthrough-<n>.
walkthrough() {
  local doc=$1 walk=$work/walkthrough-$2 kind arg path
  echo "== the walkthrough of $doc, as printed"
  mkdir -p "$walk/nalloc" "$walk/project" "$walk/home" "$walk/blocks"
  # A fresh copy of the sources, without build trees, version control or Rust targets.
  tar -C "$source" --exclude=./build --exclude=./.git --exclude=./bench-results \
    --exclude=target -cf - . | tar -C "$walk/nalloc" -xf -

  # Each marked block becomes blocks/<n>, listed in blocks/manifest as "run <dir> <file>",
  # "file <name> <file>" or "skip - <file>"; shell blocks with commands but no marker are listed
  # in blocks/unmarked with their line numbers.
  awk -v dir="$walk/blocks" '
    /^<!-- install-test: / {
      n++
      what = $3 == "run" ? "run " $5 : $3 == "file" ? "file " $4 : $3 == "skip" ? "skip -" : "bad " $3
      pending = 1
      next
    }
    /^```/ && !inside {
      inside = 1
      marked = pending
      pending = 0
      start = NR
      out = dir "/" n
      commands = 0
      if (marked)
        print what " " out >(dir "/manifest")
      next
    }
    /^```/ && inside {
      inside = 0
      if (marked)
        close(out)
      else if (commands)
        print "line " start >(dir "/unmarked")
      next
    }
    inside && marked { print >out }
    inside && !marked && /(^|[ ;(&|])(cmake|pkg-config|cc|nvcc) / { commands = 1 }
  ' "$doc"
  if [ -s "$walk/blocks/unmarked" ]; then
    echo "$doc has shell commands that no install-test marker covers, at:"
    cat "$walk/blocks/unmarked"
    return 1
  fi
  [ -f "$walk/blocks/manifest" ] || { echo "no install-test blocks in $doc"; return 1; }
  grep -q '^run nalloc ' "$walk/blocks/manifest" ||
    { echo "$doc builds nothing: no block runs in nalloc"; return 1; }

  # The runnable blocks, in order, as one shell session (an export in one block holds in the
  # next, as in a terminal), each preceded by a cd to its directory.
  local session=$walk/session.sh
  : >"$session"
  while read -r -u 3 kind arg path; do
    case $kind in
      file)
        cp "$path" "$walk/project/$arg" ;;
      skip)
        echo "-- not run:"
        sed 's/^/   $ /' "$path" ;;
      run)
        case $arg in
          nalloc | project) ;;
          *) echo "unknown directory '$arg' in $doc"; return 1 ;;
        esac
        { echo "echo '-- in $arg:'; cd '$walk/$arg'"; cat "$path"; } >>"$session"
        echo "-- in $arg:"
        sed 's/^/   $ /' "$path" ;;
      *)
        echo "unknown install-test marker in $doc: $kind $arg"; return 1 ;;
    esac
  done 3<"$walk/blocks/manifest"
  env -u PKG_CONFIG_PATH -u CMAKE_PREFIX_PATH -u LD_LIBRARY_PATH HOME="$walk/home" \
    bash -euo pipefail "$session" </dev/null >"$walk/session.log" 2>&1 || {
    tail -n 40 "$walk/session.log"
    echo "the walkthrough of $doc failed (log: $walk/session.log)"
    return 1
  }
  tail -n 1 "$walk/session.log"
  echo "the walkthrough of $doc works as printed"
}

n=0
for doc in "$@"; do
  n=$((n + 1))
  walkthrough "$doc" "$n"
done
