/* tests/testutil.h - small helpers shared by the cmocka suites.
 *
 * cmocka needs <stdarg.h>, <stddef.h>, <stdint.h> and <setjmp.h> before <cmocka.h>; include this
 * header instead of cmocka.h directly.
 */
#ifndef NALLOC_TESTUTIL_H
#define NALLOC_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <nalloc/nalloc.h>

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define NALLOC_TEST_VALGRIND_HEADERS 1
#endif
#endif
#ifndef NALLOC_TEST_VALGRIND_HEADERS
#define NALLOC_TEST_VALGRIND_HEADERS 0
#endif

#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)
#define GiB ((size_t)1 << 30)

/* A host arena of `kind` and `capacity`, asserting that creation succeeds. */
static inline nalloc_arena *make_arena(nalloc_kind kind, size_t capacity)
{
    nalloc_arena_config config;
    nalloc_arena_config_init(&config, kind, NALLOC_MEMORY_HOST, capacity);
    nalloc_arena *arena = NULL;
    assert_int_equal(nalloc_arena_create(&config, &arena), NALLOC_OK);
    assert_non_null(arena);
    return arena;
}

/* A host arena from an explicit configuration, asserting success. */
static inline nalloc_arena *make_arena_with(const nalloc_arena_config *config)
{
    nalloc_arena *arena = NULL;
    assert_int_equal(nalloc_arena_create(config, &arena), NALLOC_OK);
    return arena;
}

static inline nalloc_stats stats_of(const nalloc_arena *arena)
{
    nalloc_stats s;
    assert_int_equal(nalloc_arena_stats(arena, &s), NALLOC_OK);
    return s;
}

/* Expect `call` (an expression returning a pointer) to return NULL with last error `status`. */
#define assert_null_with(status, call)                                                             \
    do {                                                                                           \
        void *p_ = (void *)(call);                                                                 \
        assert_null(p_);                                                                           \
        assert_int_equal(nalloc_last_error(), (status));                                          \
    } while (0)

/* Run fn(arg) in a forked child with stderr silenced and the default action for fatal signals
 * (cmocka catches them in the parent); return its wait status. */
static inline int run_in_child(void (*fn)(void *), void *arg)
{
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        const int fatal[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT};
        for (unsigned i = 0; i < sizeof fatal / sizeof fatal[0]; i++)
            signal(fatal[i], SIG_DFL);
        FILE *devnull = freopen("/dev/null", "w", stderr);
        (void)devnull;
        fn(arg);
        _exit(0);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    return status;
}

/* Run this test executable again as `/proc/self/exe <role>` with `env_setting` ("NAME=value",
 * or NULL) added to the environment and stderr sent to `stderr_path`; return its wait status.
 * A fresh process reads nalloc's options from the environment anew, which a fork does not. */
static inline int run_self(const char *role, const char *env_setting, const char *stderr_path)
{
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (env_setting != NULL)
            putenv((char *)env_setting);
        if (stderr_path != NULL && freopen(stderr_path, "w", stderr) == NULL)
            _exit(126);
        execl("/proc/self/exe", "child", role, (char *)NULL);
        _exit(127);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    return status;
}

/* Read byte i of memory the arena took back (after a wipe, reset or rollback), on purpose: memory
 * checkers report such reads (src/track.h), so this one is not instrumented for ASan (nor inlined
 * into code that is: compilers refuse to mix the attributes), and Valgrind's error reporting is
 * off while it reads (a no-op outside Valgrind). */
__attribute__((no_sanitize_address, noinline, unused)) static unsigned char
peek_released(const void *p, size_t i)
{
#if NALLOC_TEST_VALGRIND_HEADERS
    VALGRIND_DISABLE_ERROR_REPORTING;
#endif
    unsigned char byte = ((const volatile unsigned char *)p)[i];
#if NALLOC_TEST_VALGRIND_HEADERS
    VALGRIND_ENABLE_ERROR_REPORTING;
#endif
    return byte;
}

/* True when this test runs under Valgrind (its preload library is in the environment). A few
 * checks cannot run there: re-executing /proc/self/exe (which is Valgrind itself), tens of GiB of
 * address space (Valgrind manages its own, smaller), page residency (Valgrind's memory is its
 * own). They call skip() under Valgrind, and run in every other build. */
static inline bool under_valgrind(void)
{
    const char *preload = getenv("LD_PRELOAD");
    return preload != NULL && strstr(preload, "vgpreload") != NULL;
}

static inline bool killed_by(int status, int sig)
{
    return WIFSIGNALED(status) && WTERMSIG(status) == sig;
}

static inline bool exited_ok(int status)
{
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

/* A small deterministic PRNG (xorshift64*), so failures reproduce. */
static inline uint64_t test_rand(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * UINT64_C(2685821657736338717);
}

#endif /* NALLOC_TESTUTIL_H */
