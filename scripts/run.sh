#!/usr/bin/env bash
# scripts/run.sh - the main job: what nalloc changes for a prover, measured and explained.
#
# Builds nalloc and its benchmarks (Release, host only: the trace needs no CUDA) into build/run,
# shows a witness wipe on real memory, then runs the prover-shaped trace (bench/prover.h: 40
# tables, NTT-extended columns, Merkle trees, FRI) at twice the default heights (217 MiB live per
# proof) with glibc malloc, jemalloc, mimalloc and nalloc, each in its own process, alternating
# over 3 rounds of 3 proofs, against the floor (the same schedule on prefaulted memory with no
# allocator). It prints the table in the layout of docs/performance.md and a verdict computed from
# the run's own numbers: time added per proof, page faults, kernel time and peak memory, nalloc
# against the best general-purpose allocator, with the run's noise. Then it draws the plot.
#
# The scale is 2x because that is the smallest at which every general-purpose allocator pays page
# faults on every proof (at 1x glibc keeps its heap between proofs), and it still runs in about a
# minute on 2 cores once built. On a fresh Debian machine, as root, it installs what it needs (a
# compiler, CMake, libjemalloc-dev, libmimalloc-dev; matplotlib for the plot).
# Progress goes to stderr, the table and the verdict to stdout; CSVs and the plot to build/run/.
#
# Usage: scripts/run.sh [bench_prover options]   they override the defaults, e.g. --rounds 6,
#          --scale 4, --threads 1, --modes floor,glibc,jemalloc,mimalloc,nalloc,nalloc-huge
#          (build/run/bench/bench_prover --help lists them)
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
log "configure ($dir: Release, host only)"
configure_build "$dir" "$dir.configure.log" -DCMAKE_BUILD_TYPE=Release -DNALLOC_CUDA=OFF \
  -DNALLOC_BUILD_TESTS=OFF -DNALLOC_BUILD_BENCH=ON
log "build (the library, the benchmark and one worker per allocator)"
build_targets "$dir" "$dir.build.log" bench_prover wipe_demo

log "the witness wipe, on real memory"
"$dir/bench/wipe_demo"

# The scale goes into the CSV names, where scripts/plot_bench.py reads it from; a --scale among
# the user's options wins over the default, as every later option does in bench_prover.
scale=2
args=("$@")
for ((i = 0; i + 1 < ${#args[@]}; i++)); do
  [ "${args[i]}" = --scale ] && scale=${args[i + 1]}
done
rm -f "$dir"/prover-x*-summary.csv "$dir"/prover-x*-raw.csv
{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  grep -m1 'model name' /proc/cpuinfo || true
  echo "cpus: $(nproc)"
  grep -E 'MemTotal' /proc/meminfo
} >"$dir/machine.txt"

log "the prover-shaped trace at ${scale}x: each allocator in its own process, in turn"
start=$SECONDS
"$dir/bench/bench_prover" --scale 2 --modes floor,glibc,jemalloc,mimalloc,nalloc --rounds 3 \
  --proofs 3 --label "$scale" "$@" \
  --csv "$dir/prover-x$scale-raw.csv" --summary "$dir/prover-x$scale-summary.csv"
log "measured in $((SECONDS - start)) s; every proof: $dir/prover-x$scale-raw.csv, the medians:" \
  "$dir/prover-x$scale-summary.csv"

if py=$(find_matplotlib); then
  "$py" scripts/plot_bench.py --prover "$dir" >&2 && log "plot: $dir/prover.png"
else
  log "matplotlib is not available: no plot (the CSVs are complete)"
fi
