#!/usr/bin/env bash
# tests/kzglike/run_preloaded.sh <kzglike_run> <libnalloc_malloc.so> <work-dir>: the toy commitment
# library's workload, unmodified, under the override library (issue 10, items 4 and 6):
#   plain                                   the reference output
#   LD_PRELOAD, no route                    the same bytes (the override is invisible)
#   LD_PRELOAD, NALLOC_ROUTE=scratch:512m   the same bytes; every thread allocates from the arena,
#                                           each library call leaves nothing alive in it, nothing
#                                           falls back (kzglike_run --check-arena)
#   LD_PRELOAD, NALLOC_ROUTE=scratch:64k    the same bytes; requests fall back, and a line on
#                                           stderr at exit says so
set -euo pipefail
run=$1
lib=$2
work=$3
rm -rf "$work"
mkdir -p "$work"
fail() { echo "FAIL: $*" >&2; exit 1; }

"$run" >"$work/plain.out"
grep -q '^batch 8 .* verified$' "$work/plain.out" || fail "the plain run did not finish"

LD_PRELOAD=$lib "$run" >"$work/preloaded.out" 2>"$work/preloaded.err" ||
  fail "preloaded without a route: exit status $? ($(cat "$work/preloaded.err"))"
cmp "$work/plain.out" "$work/preloaded.out" || fail "preloaded without a route: output differs"
echo "ok: preloaded without a route: same output"

for kind in scratch poly witness; do
  NALLOC_ROUTE=$kind:512m LD_PRELOAD=$lib "$run" --check-arena >"$work/$kind.out" 2>"$work/$kind.err" ||
    fail "NALLOC_ROUTE=$kind:512m: exit status $?: $(cat "$work/$kind.err")"
  cmp "$work/plain.out" "$work/$kind.out" || fail "NALLOC_ROUTE=$kind:512m: output differs"
  if grep -q 'did not fit in the arena' "$work/$kind.err"; then fail "NALLOC_ROUTE=$kind:512m fell back"; fi
  echo "ok: NALLOC_ROUTE=$kind:512m: same output; $(tail -n 1 "$work/$kind.err")"
done

NALLOC_ROUTE=scratch:64k LD_PRELOAD=$lib "$run" --check-arena --expect-fallback \
  >"$work/small.out" 2>"$work/small.err" || fail "NALLOC_ROUTE=scratch:64k: exit status $?: $(cat "$work/small.err")"
cmp "$work/plain.out" "$work/small.out" || fail "NALLOC_ROUTE=scratch:64k: output differs"
grep -q '^nalloc: NALLOC_ROUTE=scratch:64k: [0-9]* allocations* did not fit in the arena and came from the system allocator' \
  "$work/small.err" || fail "NALLOC_ROUTE=scratch:64k: no fallback message at exit: $(cat "$work/small.err")"
echo "ok: NALLOC_ROUTE=scratch:64k: same output; $(grep '^nalloc:' "$work/small.err")"
