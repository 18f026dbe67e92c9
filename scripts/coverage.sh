#!/usr/bin/env bash
# scripts/coverage.sh - the lines of the library its own test suite runs, per file.
#
# Builds build/coverage (Debug, gcc --coverage, the CUDA parts when nvcc is found: their host code
# runs against the CUDA runtime stand-in, tests/cudastub, so no GPU is needed), runs the whole
# ctest suite (gpu-labelled tests skip without a device), and prints gcovr's per-file table for
# src/ and cuda/. Exits non-zero when a file of cuda/ other than the kernels (*.cu, which gcc does
# not compile) runs less than NALLOC_COVERAGE_MIN percent of its lines (default 90). Without nvcc
# only the table is printed. docs/testing-cuda.md explains the figures.
#
# gcovr comes from PyPI: if it is not on PATH it is installed into build/gcovr-venv.
#
# Usage: scripts/coverage.sh
# Environment: NALLOC_JOBS (parallel jobs, default nproc), NALLOC_COVERAGE_MIN (percent, 90).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$NALLOC_ROOT"

need_build_tools
if find_nvcc; then cuda=ON; else cuda=OFF; log "nvcc not found: measuring the host library only"; fi
min=${NALLOC_COVERAGE_MIN:-90}

gcovr=$(command -v gcovr || true)
if [ -z "$gcovr" ]; then
  gcovr=build/gcovr-venv/bin/gcovr
  if [ ! -x "$gcovr" ]; then
    log "installing gcovr from PyPI into build/gcovr-venv"
    mkdir -p build
    python3 -m venv build/gcovr-venv >/dev/null ||
      die "python3 -m venv failed (Debian: apt-get install python3-venv)"
    build/gcovr-venv/bin/pip install --quiet gcovr || die "pip install gcovr failed"
  fi
fi

dir=build/coverage
rm -rf "$dir" # counts from an earlier run would add up
mkdir -p "$dir"
log "[coverage] configure"
# -fprofile-update=atomic: the suite's threads update the same counters (test_concurrency, the
# soak), and plain increments would lose counts, or make gcov read negative ones.
cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Debug -DNALLOC_CUDA=$cuda -DNALLOC_BUILD_TESTS=ON \
  -DNALLOC_BUILD_BENCH=OFF "-DCMAKE_C_FLAGS=--coverage -fprofile-update=atomic" \
  "-DCMAKE_CXX_FLAGS=--coverage -fprofile-update=atomic" >"$dir.configure.log" 2>&1 ||
  { cat "$dir.configure.log"; die "[coverage] configure failed"; }
log "[coverage] build"
cmake --build "$dir" -j "$NALLOC_JOBS" >"$dir.build.log" 2>&1 ||
  { tail -n 60 "$dir.build.log"; die "[coverage] build failed"; }
log "[coverage] test"
(cd "$dir" && ctest --output-on-failure -j "$NALLOC_JOBS") >"$dir.test.log" 2>&1 ||
  { tail -n 60 "$dir.test.log"; die "[coverage] tests failed"; }

log "[coverage] lines run, per file"
"$gcovr" --root . "$dir" --exclude-directories '.*CompilerId.*' \
  --filter 'src/' --filter 'cuda/' --filter 'include/' \
  --gcov-ignore-parse-errors=negative_hits.warn_once_per_file \
  --txt - --json-summary "$dir/summary.json" --json-summary-pretty

[ "$cuda" = ON ] || exit 0
python3 - "$dir/summary.json" "$min" <<'EOF'
import json, sys
summary, minimum = json.load(open(sys.argv[1])), float(sys.argv[2])
cuda = [f for f in summary["files"]
        if f["filename"].startswith("cuda/") and not f["filename"].endswith(".cu")]
low = [f for f in cuda if f["line_percent"] < minimum]
for f in low:
    print(f"coverage: {f['filename']} runs {f['line_percent']}% of its lines, "
          f"under {minimum:g}%", file=sys.stderr)
if not cuda:
    sys.exit("coverage: no file of cuda/ was measured")
sys.exit(1 if low else 0)
EOF
log "[coverage] every file of cuda/ runs at least $min% of its lines"
