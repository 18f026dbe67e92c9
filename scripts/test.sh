#!/usr/bin/env bash
# scripts/test.sh - build and run the whole test suite; exits non-zero on any failure.
#
# Three builds, each with its own ctest run:
#   release  Release, CUDA parts when nvcc is found          build/test-release
#   asan     Debug + AddressSanitizer + UndefinedBehaviorSanitizer, internal assertions on
#   tsan     ThreadSanitizer (host library only: the CUDA runtime is not TSan-instrumented)
# then two memory-checker steps (src/track.h; docs/testing.md, "Sanitizers and Valgrind"):
#   valgrind NALLOC_VALGRIND build, unit tests under valgrind --error-exitcode (installs valgrind)
#   fuzz     clang + libFuzzer + ASan/UBSan: the corpus once, then NALLOC_FUZZ_SECONDS (60) of
#            fuzzing; a failing input is left in build/test-fuzz/ and fails the script
# and the Rust crates (rust/, docs/rust.md):
#   rust     cargo fmt --check, clippy -D warnings, cargo test (unit, integration, doc tests) over
#            the workspace, offline; the same with --features cuda when nvcc is found; smoke runs
#            of the Rust prover benchmark (every allocator must compute the same proofs) and of
#            the global allocator's micro-benchmark
# Tests labelled "gpu" need a device; without one they exit 77 and ctest reports them skipped.
#
# Usage: scripts/test.sh [release|asan|tsan|valgrind|fuzz|rust]...   (default: all six)
# Environment: NALLOC_JOBS (parallel jobs, default nproc), NALLOC_TEST_ARGS (extra ctest args).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$NALLOC_ROOT"

need_build_tools
apt_install sqlite3 zlib1g-dev # run under the override library by tests/override/*.sh
if find_nvcc; then cuda=AUTO; else cuda=OFF; log "nvcc not found: testing the host library only"; fi
if have_gpu; then
  log "a GPU is present: gpu-labelled tests will run"
else
  log "no GPU or driver here: gpu-labelled tests will exit 77 and show as skipped"
fi

builds=("$@")
[ ${#builds[@]} -eq 0 ] && builds=(release asan tsan valgrind fuzz rust)

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

# need_cargo: cargo with rustfmt and clippy on PATH: rustup's in ~/.cargo/bin, or Debian's. On
# bookworm Debian's plain `cargo` is Rust 1.63, older than the crates need (1.77); its current
# toolchain is packaged as cargo-web, rustfmt-web and rust-web-clippy.
need_cargo() {
  [ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH"
  command -v cargo >/dev/null 2>&1 || apt_install cargo-web rustfmt-web rust-web-clippy
  command -v cargo >/dev/null 2>&1 || die "[rust] no cargo"
}

run_rust() {
  need_cargo
  local log=build/test-rust.log
  : >"$log"
  # Each step's output goes to the log; a failure shows its tail.
  step() {
    local what=$1; shift
    log "[rust] $what"
    (cd rust && "$@") >>"$log" 2>&1 || { tail -n 60 "$log"; die "[rust] $what failed (log: $log)"; }
  }
  step "cargo fmt --check" cargo fmt --all --check
  step "clippy" cargo clippy --offline --all-targets -j "$NALLOC_JOBS" -- -D warnings
  step "test" cargo test --offline -j "$NALLOC_JOBS"
  if find_nvcc; then
    step "clippy --features cuda" cargo clippy --offline --all-targets --features cuda -j "$NALLOC_JOBS" -- -D warnings
    step "test --features cuda" cargo test --offline --features cuda -j "$NALLOC_JOBS"
  else
    log "[rust] nvcc not found: the cuda feature is not built"
  fi
  # The smoke run checks, it does not time: the debug build the tests made will do.
  step "benchmark smoke run" cargo bench --offline --profile dev --bench prover -j "$NALLOC_JOBS" -- --smoke
  step "global allocator benchmark smoke run" cargo bench --offline --profile dev --bench global -j "$NALLOC_JOBS" -- --smoke
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
    valgrind)
      apt_install valgrind
      # Not under Valgrind: the stats suite (most of it re-runs itself through /proc/self/exe,
      # which under Valgrind is Valgrind) and the install check (it runs CMake, not nalloc).
      # Single cases that cannot run under Valgrind skip themselves (under_valgrind()).
      exclude=${NALLOC_VALGRIND_EXCLUDE:-'^(stats|install)$'}
      NALLOC_SOAK_OPS=${NALLOC_SOAK_OPS:-2000} NALLOC_TEST_ARGS="-L unit -E $exclude ${NALLOC_TEST_ARGS:-}" \
        run_build valgrind -DCMAKE_BUILD_TYPE=RelWithDebInfo -DNALLOC_CUDA=OFF -DNALLOC_VALGRIND=ON \
        "-DNALLOC_TEST_LAUNCHER=valgrind;--error-exitcode=99;--leak-check=no;--quiet" ;;
    fuzz)
      command -v clang >/dev/null 2>&1 || apt_install clang
      export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1}
      CC=clang run_build fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DNALLOC_DEBUG_LEVEL=2 \
        -DNALLOC_CUDA=OFF -DNALLOC_FUZZ=ON -DNALLOC_SANITIZE=address,undefined \
        -DNALLOC_BUILD_TESTS=OFF -DNALLOC_BUILD_BENCH=OFF -DBUILD_SHARED_LIBS=OFF
      seconds=${NALLOC_FUZZ_SECONDS:-60}
      log "[fuzz] libFuzzer for $seconds s"
      mkdir -p build/test-fuzz/corpus # new inputs go here; the committed corpus is only read
      NALLOC_QUIET_PROTECTIONS=1 \
      build/test-fuzz/tests/fuzz/fuzz_arena -max_total_time="$seconds" -print_final_stats=1 \
        -artifact_prefix=build/test-fuzz/ build/test-fuzz/corpus tests/fuzz/corpus \
        >build/test-fuzz.fuzz.log 2>&1 ||
        { tail -n 60 build/test-fuzz.fuzz.log; die "[fuzz] a failing input is in build/test-fuzz/"; }
      grep -E '^stat::number_of_executed_units' build/test-fuzz.fuzz.log >&2 || true ;;
    rust) run_rust ;;
    *) die "unknown build '$b' (release, asan, tsan, valgrind, fuzz, rust)" ;;
  esac
done
log "all tests passed ($(( $(date +%s) - start )) s)"
