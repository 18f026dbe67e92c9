#!/usr/bin/env bash
# scripts/run.sh - the main job: nalloc against the system allocators on a prover-shaped workload.
#
# Builds nalloc and its benchmarks (Release, host only: the trace needs no CUDA) into build/run,
# runs the prover-shaped trace (bench/prover.h: ~40 tables, NTT-extended columns, Merkle trees,
# FRI) with glibc malloc, jemalloc, mimalloc and nalloc, each in its own process, alternating over
# 3 rounds, against the floor (the same schedule on prefaulted memory with no allocator), prints
# the table, then demonstrates a witness wipe. On a fresh Debian machine, as root, it installs
# what it needs (a compiler, CMake, libjemalloc-dev, libmimalloc-dev). About a minute on 2 cores
# once built. Progress goes to stderr, the table to stdout; the CSVs land in build/run/.
#
# Usage: scripts/run.sh [bench_prover options]   e.g. --rounds 5, --threads 1, --scale 4,
#                                                 --modes floor,glibc,nalloc (see --help)
# Environment: NALLOC_JOBS (parallel build jobs, default nproc).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$NALLOC_ROOT"

# Apt's --no-install-recommends leaves out make and the C library headers, which a bare
# compiler and CMake need: ask for them by name.
command -v cmake >/dev/null 2>&1 || apt_install cmake
command -v make >/dev/null 2>&1 || apt_install make
command -v cc >/dev/null 2>&1 || apt_install gcc
apt_install libc6-dev libjemalloc-dev libmimalloc-dev

dir=build/run
mkdir -p "$dir"
log "configure ($dir, Release, host only)"
cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Release -DNALLOC_CUDA=OFF -DNALLOC_BUILD_TESTS=OFF \
  -DNALLOC_BUILD_BENCH=ON >"$dir/configure.log" 2>&1 ||
  { cat "$dir/configure.log" >&2; die "configure failed"; }
log "build"
cmake --build "$dir" -j "$NALLOC_JOBS" --target bench_prover wipe_demo >"$dir/build.log" 2>&1 ||
  { tail -n 60 "$dir/build.log" >&2; die "build failed"; }

log "prover-shaped benchmark (each allocator in its own process; progress below)"
"$dir/bench/bench_prover" --csv "$dir/prover-raw.csv" --summary "$dir/prover-summary.csv" "$@"
log "per-proof figures: $dir/prover-raw.csv; the table's medians: $dir/prover-summary.csv"

"$dir/bench/wipe_demo"
