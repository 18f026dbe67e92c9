#!/usr/bin/env bash
# scripts/bench.sh - every benchmark, into bench-results/<date>/, with plots.
#
#   prover-x<S>.txt, prover-x<S>-summary.csv, prover-x<S>-raw.csv
#            the prover-shaped trace at scales 1, 4 and 16 (every allocator, alternating, medians)
#   alloc-<malloc>.txt, alloc.csv   ns per allocation, 64 B..64 MiB, one thread and every CPU;
#                                   the wipe against memset (in alloc-glibc.txt)
#   bump.txt, bump.csv              the bump core: CAS against fetch-add
#   route.txt, route.csv            the malloc family against glibc (routed, unrouted, foreign free)
#   override.txt, override.csv      malloc_churn plain and under libnalloc_malloc.so, unrouted
#   machine.txt                     where it ran; *.png from scripts/plot_bench.py
#
# Takes about 30 minutes on 2 cores (the 16x trace is most of it); memory stays well inside 24 GiB
# (bench_prover prints its estimate before each scale and refuses one that does not fit).
# Usage: scripts/bench.sh [--quick]   (--quick: 1 round, scales 1 and 4, short micro-benchmarks:
#                                      checks the tooling in a few minutes; figures not for quoting)
# Environment: NALLOC_BENCH_ROUNDS (default 3), NALLOC_BENCH_SCALES (default "1 4 16"),
#              NALLOC_JOBS (build jobs), NALLOC_BENCH_OUT (output folder).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$NALLOC_ROOT"

rounds=${NALLOC_BENCH_ROUNDS:-3}
scales=${NALLOC_BENCH_SCALES:-"1 4 16"}
micro=()
if [ "${1:-}" = "--quick" ]; then
  rounds=1
  scales=${NALLOC_BENCH_SCALES:-"1 4"}
  micro=(--batches 2 --max-size 4194304)
  shift
fi
[ $# -eq 0 ] || die "usage: scripts/bench.sh [--quick]"

command -v cmake >/dev/null 2>&1 || apt_install cmake
command -v make >/dev/null 2>&1 || apt_install make
command -v cc >/dev/null 2>&1 || apt_install gcc
apt_install libc6-dev libjemalloc-dev libmimalloc-dev

out=${NALLOC_BENCH_OUT:-bench-results/$(date +%Y-%m-%d_%H%M%S)}
mkdir -p "$out"
dir=build/bench
log "configure and build ($dir, Release, host only)"
cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Release -DNALLOC_CUDA=OFF -DNALLOC_BUILD_TESTS=OFF \
  -DNALLOC_BUILD_BENCH=ON >"$out/configure.log" 2>&1 ||
  { cat "$out/configure.log" >&2; die "configure failed"; }
cmake --build "$dir" -j "$NALLOC_JOBS" >"$out/build.log" 2>&1 ||
  { tail -n 60 "$out/build.log" >&2; die "build failed"; }
b=$dir/bench

{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
  git diff --quiet 2>/dev/null || commit="$commit (uncommitted changes)"
  echo "commit: $commit"
  uname -a
  grep -m1 'model name' /proc/cpuinfo || true
  echo "cpus: $(nproc)"
  grep -E 'MemTotal|MemAvailable' /proc/meminfo
  echo "transparent huge pages: $(cat /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null)"
  echo "load average: $(cat /proc/loadavg)"
} >"$out/machine.txt"

start=$(date +%s)
for s in $scales; do
  log "prover trace at ${s}x ($rounds rounds)"
  "$b/bench_prover" --scale "$s" --rounds "$rounds" --label "$s" \
    --csv "$out/prover-x$s-raw.csv" --summary "$out/prover-x$s-summary.csv" |
    tee "$out/prover-x$s.txt"
done

log "allocation micro-benchmarks and the wipe"
mallocs=(glibc)
[ -x "$b/bench_alloc_jemalloc" ] && mallocs+=(jemalloc)
[ -x "$b/bench_alloc_mimalloc" ] && mallocs+=(mimalloc)
for m in "${mallocs[@]}"; do
  exe=$b/bench_alloc
  [ "$m" = glibc ] || exe=${exe}_$m
  log "  $m"
  "$exe" "${micro[@]}" --csv "$out/alloc-$m.csv" | tee "$out/alloc-$m.txt"
done
head -n 1 "$out/alloc-glibc.csv" >"$out/alloc.csv"
for m in "${mallocs[@]}"; do tail -n +2 "$out/alloc-$m.csv" >>"$out/alloc.csv"; done
for m in "${mallocs[@]}"; do rm -f "$out/alloc-$m.csv"; done

log "bump core: CAS against fetch-add"
bump=()
[ ${#micro[@]} -eq 0 ] || bump=(--batches 3 --count 2000000)
"$b/bench_bump" "${bump[@]}" --csv "$out/bump.csv" | tee "$out/bump.txt"

log "routing: the malloc family against glibc"
route=()
[ ${#micro[@]} -eq 0 ] || route=(--rounds 3 --calls 500000)
"$b/bench_route" "${route[@]}" --csv "$out/route.csv" | tee "$out/route.txt"

# The override library with nothing routed, on a malloc-heavy program that knows nothing of nalloc:
# plain and preloaded runs alternate, and the medians are compared.
if [ -e "$dir/libnalloc_malloc.so" ]; then
  log "the override library, unrouted, on bench/malloc_churn (plain and LD_PRELOAD alternating)"
  steps=20000000 runs=7
  [ ${#micro[@]} -eq 0 ] || { steps=2000000; runs=3; }
  {
    echo "run,mode,threads,ns_per_step"
    for threads in 1 2; do
      for i in $(seq "$runs"); do
        for mode in glibc override; do
          pre=""
          [ "$mode" = override ] && pre=$PWD/$dir/libnalloc_malloc.so
          ns=$(LD_PRELOAD=$pre "$b/malloc_churn" "$steps" "$threads" | sed -E 's/.*\(([0-9.]+) ns\/step.*/\1/')
          echo "$i,$mode,$threads,$ns"
        done
      done
    done
  } >"$out/override.csv"
  python3 - "$out/override.csv" <<'PY' | tee "$out/override.txt"
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1])))
print(f"{'threads':>7} {'glibc ns/step':>14} {'override ns/step':>17} {'ratio':>7}")
for t in sorted({r["threads"] for r in rows}):
    med = {m: statistics.median(float(r["ns_per_step"]) for r in rows if r["threads"] == t and r["mode"] == m)
           for m in ("glibc", "override")}
    print(f"{t:>7} {med['glibc']:14.1f} {med['override']:17.1f} {med['override'] / med['glibc']:7.3f}")
PY
fi

log "plots"
if py=$(find_matplotlib); then
  "$py" scripts/plot_bench.py "$out" || die "plotting failed"
else
  log "matplotlib unavailable: no plots (the CSVs are complete)"
fi
log "done in $(( $(date +%s) - start )) s: $out"
