#!/usr/bin/env bash
# scripts/gpu-check.sh - everything that needs a GPU, on a machine that has one.
#
# Builds Release with the CUDA parts (build/gpu-check), runs the gpu-labelled tests (they must
# run, not skip: a skip here is a failure), then the unit tests of the same build, then the device
# benchmarks, and prints their tables. The benchmarks' CSV lines and the full logs are kept in
# build/gpu-check/results/. Exits non-zero on any failure.
#
# Usage: scripts/gpu-check.sh [--no-bench]
# Environment: NALLOC_JOBS (parallel build jobs), CMAKE_CUDA_ARCHITECTURES (default: the
# project's list; e.g. 90 to build for an H100 only, which is faster).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$NALLOC_ROOT"

bench=1
[ "${1:-}" = "--no-bench" ] && bench=0

need_build_tools
find_nvcc || die "nvcc not found: install the CUDA toolkit (or put it on PATH)"
have_gpu || die "no GPU visible (nvidia-smi -L lists none): nothing to check here"
nvidia-smi -L >&2

dir=build/gpu-check
results=$dir/results
mkdir -p "$dir" "$results"
archs=()
[ -n "${CMAKE_CUDA_ARCHITECTURES:-}" ] && archs=(-DCMAKE_CUDA_ARCHITECTURES="$CMAKE_CUDA_ARCHITECTURES")

log "configure (Release, CUDA ON)"
cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Release -DNALLOC_CUDA=ON -DNALLOC_BUILD_TESTS=ON \
  -DNALLOC_BUILD_BENCH=ON "${archs[@]}" >"$results/configure.log" 2>&1 ||
  { cat "$results/configure.log"; die "configure failed"; }
log "build"
cmake --build "$dir" -j "$NALLOC_JOBS" >"$results/build.log" 2>&1 ||
  { tail -n 60 "$results/build.log"; die "build failed"; }

log "gpu-labelled tests"
# A skipped gpu test on a GPU machine means it did not see the device: that is a failure here.
# Tests labelled "tool" also need an external tool (compute-sanitizer), so they run apart, below.
# Verbose: what the tests print (Thrust's scratch use, chunk-crossing copy times, whether a reset
# reused the arena's addresses) is part of what a GPU run reports.
(cd "$dir" && ctest -L gpu -LE tool -V 2>&1 | tee "$results/ctest-gpu.log") ||
  die "gpu tests failed"
grep -q "Skipped" "$results/ctest-gpu.log" && die "gpu tests were skipped although a GPU is present"

log "gpu tests that need compute-sanitizer (skipped, and said so, where it is not installed)"
(cd "$dir" && ctest -L tool --output-on-failure 2>&1 | tee "$results/ctest-tool.log") ||
  die "tool-assisted gpu tests failed"
grep -q "Skipped" "$results/ctest-tool.log" &&
  log "NOTE: compute-sanitizer not found: the NVTX overflow check did not run (set NALLOC_COMPUTE_SANITIZER)"

log "unit tests (same build)"
(cd "$dir" && ctest -L unit --output-on-failure -j "$NALLOC_JOBS" >"$results/ctest-unit.log" 2>&1) ||
  { tail -n 60 "$results/ctest-unit.log"; die "unit tests failed"; }

if [ $bench -eq 1 ]; then
  for b in device_alloc device_wipe device_proof pinned nvtx_hooks; do
    log "bench_$b"
    "$dir/bench/bench_$b" | tee "$results/bench_$b.txt" || die "bench_$b failed"
    grep '^csv,' "$results/bench_$b.txt" >"$results/bench_$b.csv" || true
  done
fi
log "gpu check passed; logs and CSV in $results"
