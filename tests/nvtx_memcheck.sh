#!/usr/bin/env bash
# tests/nvtx_memcheck.sh PROGRAM - compute-sanitizer catches an overflow between two
# sub-allocations of one device arena (tests/nvtx_overflow_gpu.cu), thanks to the NVTX memory
# annotations, and reports nothing for the same kernel kept in bounds.
# Exits 77 (skipped) without a GPU or without compute-sanitizer (found on PATH, in the CUDA
# toolkit, or named by NALLOC_COMPUTE_SANITIZER).
set -uo pipefail
program=$1

sanitizer=${NALLOC_COMPUTE_SANITIZER:-$(command -v compute-sanitizer || true)}
for candidate in /usr/local/cuda/bin/compute-sanitizer /usr/local/cuda/compute-sanitizer/compute-sanitizer; do
  [ -z "$sanitizer" ] && [ -x "$candidate" ] && sanitizer=$candidate
done
if [ -z "$sanitizer" ]; then
  echo "compute-sanitizer not found: skipped"
  exit 77
fi
"$program" inside >/dev/null 2>&1
case $? in
  77) echo "no CUDA device: skipped"; exit 77 ;;
  0) ;;
  *) echo "the program fails even without the sanitizer"; "$program" inside; exit 1 ;;
esac

run() { "$sanitizer" --tool memcheck --nvtx yes --error-exitcode 99 "$program" "$1" 2>&1; }

out=$(run inside); rc=$?
echo "$out"
if [ $rc -ne 0 ]; then
  echo "FAIL: memcheck reported errors for in-bounds writes (exit $rc)"
  exit 1
fi
out=$(run overflow); rc=$?
echo "$out"
if [ $rc -ne 99 ] || ! grep -q "Invalid __global__ write" <<<"$out"; then
  echo "FAIL: memcheck did not report the write one byte past the block (exit $rc)"
  exit 1
fi
echo "PASS: the overflow into the padding between two sub-allocations was reported"
