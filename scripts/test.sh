#!/usr/bin/env bash
# scripts/test.sh - build and run the whole test suite; exits non-zero on any failure.
#
# Three builds, each with its own ctest run:
#   release  Release, CUDA parts when nvcc is found          build/test-release
#   asan     Debug + AddressSanitizer + UndefinedBehaviorSanitizer, internal assertions on
#   tsan     ThreadSanitizer (host library only: the CUDA runtime is not TSan-instrumented)
# Tests labelled "gpu" need a device; without one they exit 77 and ctest reports them skipped.
#
# Usage: scripts/test.sh [release|asan|tsan]...   (default: all three)
# Environment: NALLOC_JOBS (parallel jobs, default nproc), NALLOC_TEST_ARGS (extra ctest args).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$NALLOC_ROOT"

need_build_tools
if find_nvcc; then cuda=AUTO; else cuda=OFF; log "nvcc not found: testing the host library only"; fi
if have_gpu; then
  log "a GPU is present: gpu-labelled tests will run"
else
  log "no GPU or driver here: gpu-labelled tests will exit 77 and show as skipped"
fi

builds=("$@")
[ ${#builds[@]} -eq 0 ] && builds=(release asan tsan)

run_build() {
  local name=$1; shift
  local dir=build/test-$name
  log "[$name] configure"
  cmake -S . -B "$dir" -DNALLOC_BUILD_TESTS=ON -DNALLOC_BUILD_BENCH=ON "$@" >"$dir.configure.log" 2>&1 ||
    { cat "$dir.configure.log"; die "[$name] configure failed"; }
  log "[$name] build"
  cmake --build "$dir" -j "$NALLOC_JOBS" >"$dir.build.log" 2>&1 ||
    { tail -n 60 "$dir.build.log"; die "[$name] build failed"; }
  log "[$name] test"
  # shellcheck disable=SC2086
  (cd "$dir" && ctest --output-on-failure -j "$NALLOC_JOBS" ${NALLOC_TEST_ARGS:-}) ||
    die "[$name] tests failed"
}

mkdir -p build
start=$(date +%s)
for b in "${builds[@]}"; do
  case $b in
    release) run_build release -DCMAKE_BUILD_TYPE=Release -DNALLOC_CUDA=$cuda ;;
    asan)
      export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=1}
      export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
      run_build asan -DCMAKE_BUILD_TYPE=Debug -DNALLOC_CUDA=$cuda -DNALLOC_SANITIZE=address,undefined ;;
    tsan)
      export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1}
      run_build tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DNALLOC_CUDA=OFF -DNALLOC_SANITIZE=thread ;;
    *) die "unknown build '$b' (release, asan, tsan)" ;;
  esac
done
log "all tests passed ($(( $(date +%s) - start )) s)"
