#!/usr/bin/env bash
# tests/override/zlib_suite.sh <libnalloc_malloc.so> <zlib_routed.so> <work-dir> [cc]: zlib's own
# test programs, unmodified, with every zlib call routed into an arena (issue 10: "a real C
# library ... runs its own test suite unmodified under libnalloc_malloc.so, routed per call").
#
# zlib's `make test` builds and runs example.c (compress/uncompress, gzio, deflate/inflate in
# small and large steps, flush and sync, dictionaries) and pipes data through minigzip.c. Debian's
# zlib1g-dev ships both sources; they are compiled here against the installed zlib as they are.
# Each runs plain, under the override library alone (no route), and with zlib_routed.so, which
# pushes a route around every zlib call (and checks at exit that the arena served zlib, that
# nothing is left alive or used in it, and that nothing fell back). The outputs must match.
# 77 when the sources, zlib or a C compiler are missing.
set -uo pipefail
lib=$1
shim=$2
work=$3
cc=${4:-cc}
examples=/usr/share/doc/zlib1g-dev/examples
for f in example.c minigzip.c; do
  [ -f "$examples/$f" ] || { echo "skip: $examples/$f not found (Debian: zlib1g-dev)"; exit 77; }
done
command -v "$cc" >/dev/null 2>&1 || { echo "skip: no C compiler ($cc)"; exit 77; }
rm -rf "$work"
mkdir -p "$work"
cd "$work" || exit 1
for p in example minigzip; do
  "$cc" -O1 -w "$examples/$p.c" -o "$p" -lz 2>"$p.log" ||
    { echo "skip: $p.c does not build here: $(tail -n 3 "$p.log")"; exit 77; }
done
failed=0
fail() { echo "FAIL: $*" >&2; failed=1; }
routed="$lib $shim"

# example: zlib's own checks; it prints what it verified and exits non-zero on any failure.
./example >example.plain.out 2>example.plain.err || fail "example failed plainly: $(cat example.plain.err)"
LD_PRELOAD=$lib ./example >example.preload.out 2>example.preload.err ||
  fail "example under the override: exit status $?: $(cat example.preload.err)"
cmp -s example.plain.out example.preload.out || fail "example under the override: output differs"
LD_PRELOAD=$routed ./example >example.routed.out 2>example.routed.err ||
  fail "example routed per call: exit status $?: $(cat example.routed.err)"
cmp -s example.plain.out example.routed.out || fail "example routed per call: output differs"
grep -q '^zlib_routed: .*: ok$' example.routed.err || fail "example routed per call: $(cat example.routed.err)"
echo "ok: example: $(wc -l <example.plain.out) checks passed the same three ways; $(grep '^zlib_routed' example.routed.err)"

# minigzip: `make test`'s round trip, then bigger inputs; the compressed bytes must be the same too.
echo hello world >hello.txt
seq 1 200000 >numbers.txt
head -c 3000000 /dev/urandom >random.bin
cat numbers.txt random.bin numbers.txt >mixed.bin
for input in hello.txt numbers.txt random.bin mixed.bin; do
  ./minigzip <"$input" >"$input.plain.gz" || fail "minigzip $input failed plainly"
  LD_PRELOAD=$routed ./minigzip <"$input" >"$input.routed.gz" 2>"$input.routed.err" ||
    fail "minigzip $input routed per call: exit status $?: $(cat "$input.routed.err")"
  cmp -s "$input.plain.gz" "$input.routed.gz" || fail "minigzip $input routed per call: other bytes"
  grep -q '^zlib_routed: .*: ok$' "$input.routed.err" || fail "minigzip $input: $(cat "$input.routed.err")"
  LD_PRELOAD=$routed ./minigzip -d <"$input.routed.gz" >"$input.back" 2>"$input.back.err" ||
    fail "minigzip -d $input routed per call: exit status $?: $(cat "$input.back.err")"
  cmp -s "$input" "$input.back" || fail "minigzip -d $input routed per call: not the input"
  grep -q '^zlib_routed: .*: ok$' "$input.back.err" || fail "minigzip -d $input: $(cat "$input.back.err")"
  echo "ok: minigzip $input ($(wc -c <"$input") bytes): same compressed bytes, round trip; $(grep '^zlib_routed' "$input.routed.err")"
done
exit $failed
