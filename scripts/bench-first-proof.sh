#!/usr/bin/env bash
# scripts/bench-first-proof.sh - what a first proof costs: every allocator in N fresh processes.
#
# A first proof is what a proving service pays at every start, every autoscaled replica and every
# crash restart. This runs the prover-shaped trace (bench/prover.h) in ROUNDS fresh processes per
# allocator, the allocators alternating, and prints each one's first proof (arena creation
# included for nalloc): its median, its fastest and slowest, the slowest over the fastest, the
# median over glibc's, and the steady state (proofs 2..N) against the floor. docs/first-proof.md
# explains the figures and what the kernel limits.
#
# The default trace is fault-heavy on purpose: the 4x trace with its columns extended by
# repetition instead of NTTs (--lde copy), so that the same 434 MiB per proof are allocated and
# written with a fraction of the arithmetic, and faulting memory in is a large share of a first
# proof, as in provers whose arithmetic runs on a GPU. Pass other trace options to change it
# (e.g. `--lde ntt --scale 1` for scripts/run.sh's trace).
#
# Output: bench-results/first-proof-<date>/ with first-proof.txt (the tables), raw.csv (every
# proof of every process), summary.csv (medians, fastest, slowest) and machine.txt. About 5
# minutes on 2 cores with the defaults.
#
# Usage: scripts/bench-first-proof.sh [bench_prover options]   e.g. --rounds 5, --pause 3,
#                                                              --modes glibc,nalloc-prefault
# Environment: NALLOC_JOBS (build jobs), NALLOC_BENCH_OUT (output folder).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$NALLOC_ROOT"

command -v cmake >/dev/null 2>&1 || apt_install cmake
command -v make >/dev/null 2>&1 || apt_install make
command -v cc >/dev/null 2>&1 || apt_install gcc
apt_install libc6-dev libjemalloc-dev libmimalloc-dev

out=${NALLOC_BENCH_OUT:-bench-results/first-proof-$(date +%Y-%m-%d_%H%M%S)}
mkdir -p "$out"
dir=build/bench
log "configure and build ($dir, Release, host only)"
cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Release -DNALLOC_CUDA=OFF -DNALLOC_BUILD_TESTS=OFF \
  -DNALLOC_BUILD_BENCH=ON >"$out/configure.log" 2>&1 ||
  { cat "$out/configure.log" >&2; die "configure failed"; }
cmake --build "$dir" -j "$NALLOC_JOBS" --target bench_prover >"$out/build.log" 2>&1 ||
  { tail -n 60 "$out/build.log" >&2; die "build failed"; }

{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
  git diff --quiet 2>/dev/null || commit="$commit (uncommitted changes)"
  echo "commit: $commit"
  uname -a
  grep -m1 'model name' /proc/cpuinfo || true
  echo "cpus: $(nproc)"
  grep -E 'MemTotal|MemAvailable' /proc/meminfo
  for f in enabled defrag; do
    echo "transparent huge pages $f: $(cat /sys/kernel/mm/transparent_hugepage/$f 2>/dev/null)"
  done
  # Free page reporting (virtio-balloon): freed memory goes back to the host, which makes the
  # next first touch of it cost a host fault as well (docs/first-proof.md).
  echo "kernel command line: $(tr ' ' '\n' 2>/dev/null </proc/cmdline |
    grep -E 'page_reporting|hugepage' | tr '\n' ' ')"
  echo "load average before: $(cat /proc/loadavg)"
} >"$out/machine.txt"

modes=floor,glibc,jemalloc,mimalloc,nalloc,nalloc-noprefault,nalloc-prefault
args=(--rounds 10 --proofs 3 --modes "$modes" --scale 4 --lde copy)
log "first proofs: ${args[*]} $*"
start=$(date +%s)
build/bench/bench/bench_prover "${args[@]}" "$@" --csv "$out/raw.csv" --summary "$out/summary.csv" |
  tee "$out/first-proof.txt"
echo "load average after: $(cat /proc/loadavg)" >>"$out/machine.txt"
log "done in $(( $(date +%s) - start )) s: $out"
