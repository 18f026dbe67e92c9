/* tests/test_stats.c - statistics that add up: used = requested + padding, counts of
 * allocations and failures, the high-water mark across rollbacks, the layout digest, the printed
 * report, prefaulting (POPULATE) observed through page residency, and options from the
 * environment. */
#include "testutil.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>

static void test_used_is_requested_plus_padding(void **state)
{
    (void)state;
    nalloc_arena *a = make_arena(NALLOC_KIND_SCRATCH, 4 * MiB);
    uint64_t rng = 42;
    size_t requested = 0, ok = 0, failed = 0;
    for (int i = 0; i < 3000; i++) {
        size_t size = (size_t)(test_rand(&rng) % 5000); /* zero sizes fail: counted too */
        if (nalloc_alloc(a, size)) {
            requested += size;
            ok++;
        } else {
            failed++;
        }
    }
    nalloc_stats s = stats_of(a);
    assert_int_equal(s.allocations, ok);
    assert_int_equal(s.failures, failed);
    assert_int_equal(s.used, requested + s.padding);
    assert_int_equal(s.high_water, s.used);
    assert_int_equal(s.version, NALLOC_STATS_VERSION);
    assert_int_equal(s.struct_size, sizeof s);
    assert_int_equal(s.kind, NALLOC_KIND_SCRATCH);
    assert_int_equal(s.memory, NALLOC_MEMORY_HOST);
    assert_string_equal(s.name, "scratch");
    assert_int_equal(s.capacity, 4 * MiB);
    nalloc_arena_destroy(a);
}

/* failures counts allocation requests that failed, whatever the reason, resize_last included;
 * refusals that request no memory are returned, not counted (nalloc.h, nalloc_stats). */
static void test_failures_count_every_refused_request_for_memory(void **state)
{
    (void)state;
    nalloc_arena *a = make_arena(NALLOC_KIND_SCRATCH, 64 * KiB);
    assert_null(nalloc_alloc(a, 0));                     /* zero size */
    assert_null(nalloc_alloc(a, MiB));                   /* no room */
    assert_null(nalloc_alloc_aligned(a, 64, 3));         /* bad alignment */
    assert_null(nalloc_alloc_zeroed(a, SIZE_MAX, 2, 0)); /* overflow */
    assert_null(nalloc_realloc(a, NULL, 0, 0, 0));       /* zero size */
    char *first = nalloc_alloc(a, 64), *second = nalloc_alloc(a, 64);
    assert_non_null(first);
    assert_non_null(second);
    assert_int_equal(nalloc_resize_last(a, second, 64, MiB), NALLOC_ERR_NOMEM);
    assert_int_equal(nalloc_resize_last(a, first, 64, 128), NALLOC_ERR_STATE); /* not the last */
    assert_int_equal(stats_of(a).failures, 7);

    /* Not requests for memory: refused, returned, not counted. */
    nalloc_mark m = nalloc_mark_get(a);
    assert_int_equal(nalloc_free_last(a, first, 64), NALLOC_ERR_STATE);
    assert_int_equal(nalloc_reset(a), NALLOC_OK);
    assert_int_equal(nalloc_rollback(a, m), NALLOC_ERR_STATE); /* stale */
    nalloc_arena *lanes[1];
    assert_int_equal(nalloc_arena_split(a, 1, 4 * KiB, lanes), NALLOC_OK);
    assert_int_equal(nalloc_reset(a), NALLOC_ERR_STATE);      /* live lanes */
    assert_int_equal(nalloc_wipe(a), NALLOC_ERR_STATE);
    assert_int_equal(nalloc_arena_split(a, 1, MiB, lanes), NALLOC_ERR_NOMEM);
    assert_int_equal(stats_of(a).failures, 7);
    assert_int_equal(nalloc_arena_destroy(a), NALLOC_OK);
}

/* A signal handler that allocates from the arena its thread was allocating from (nalloc.h,
 * "Signals"): the interrupted thread's count and the handler's must both land. Each thread adds
 * to its own statistics slot without a locked instruction; if that were a load, an add and a
 * store, a handler running between the load and the store would have its addition overwritten.
 * A timer signals the allocating thread itself every few microseconds, so handlers run between
 * arbitrary instructions of its allocations, thousands of times. */
static nalloc_arena *signalled_arena;
static volatile sig_atomic_t handler_allocations, handler_failures;

static void allocate_in_handler(int sig)
{
    (void)sig;
    if (nalloc_alloc(signalled_arena, 64) != NULL)
        handler_allocations = handler_allocations + 1;
    else
        handler_failures = handler_failures + 1;
}

static void test_statistics_stay_exact_when_a_signal_handler_allocates(void **state)
{
    (void)state;
#if !defined(__x86_64__) || defined(__SANITIZE_THREAD__)
    skip(); /* exact on x86-64 only, and not under ThreadSanitizer (src/internal.h, na_slot_add) */
#endif
    if (under_valgrind())
        skip(); /* millions of allocations and signals: too slow there, and nothing to add */
    enum { SIGNALS = 10000, ROUND = 1 << 16 }; /* handlers to see; allocations between resets */
    const double give_up_after = 20; /* seconds: a bound on a starved run, not a pass criterion */
    nalloc_arena_config c;
    nalloc_arena_config_init(&c, NALLOC_KIND_SCRATCH, NALLOC_MEMORY_HOST, (size_t)4 * ROUND * 64);
    c.flags |= NALLOC_FLAG_NORESERVE; /* address space: the blocks are never touched */
    signalled_arena = make_arena_with(&c);
    if (stats_of(signalled_arena).checkers != 0) {
        /* A memory checker's bookkeeping takes a lock on the allocation path (src/track.c): the
         * promise is for arenas no checker watches (nalloc.h, "Signals"). */
        assert_int_equal(nalloc_arena_destroy(signalled_arena), NALLOC_OK);
        skip();
    }
    assert_non_null(nalloc_alloc(signalled_arena, 64)); /* this thread's slot, claimed outside */
    handler_allocations = handler_failures = 0;
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = allocate_in_handler;
    sigemptyset(&sa.sa_mask);
    assert_int_equal(sigaction(SIGUSR1, &sa, &old), 0);
    sigset_t usr1;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);

    /* A timer that signals this thread (not the process) every 20 microseconds. */
    struct sigevent ev;
    memset(&ev, 0, sizeof ev);
    ev.sigev_notify = SIGEV_THREAD_ID;
    ev.sigev_signo = SIGUSR1;
    ev._sigev_un._tid = (pid_t)syscall(SYS_gettid);
    timer_t timer;
    assert_int_equal(timer_create(CLOCK_MONOTONIC, &ev, &timer), 0);
    struct itimerspec every = {{0, 20000}, {0, 20000}};
    assert_int_equal(timer_settime(timer, 0, &every, NULL), 0);

    size_t mine = 1, my_failures = 0;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        for (int i = 0; i < ROUND; i++) {
            if (nalloc_alloc(signalled_arena, 64) != NULL)
                mine++;
            else
                my_failures++;
        }
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double elapsed = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
        if (handler_allocations >= SIGNALS || elapsed > give_up_after || my_failures > 0)
            break;
        /* Room for the next round: a reset is a phase boundary, so no handler may run in it. */
        pthread_sigmask(SIG_BLOCK, &usr1, NULL);
        assert_int_equal(nalloc_reset(signalled_arena), NALLOC_OK);
        pthread_sigmask(SIG_UNBLOCK, &usr1, NULL);
    }
    pthread_sigmask(SIG_BLOCK, &usr1, NULL); /* one may still be pending */
    assert_int_equal(timer_delete(timer), 0);
    assert_int_equal(sigaction(SIGUSR1, &old, NULL), 0);
    pthread_sigmask(SIG_UNBLOCK, &usr1, NULL);

    nalloc_stats s = stats_of(signalled_arena);
    print_message("%zu allocations here, %d in signal handlers\n", mine, (int)handler_allocations);
    assert_int_equal(my_failures, 0); /* the arena had room for every round */
    assert_int_equal(handler_failures, 0);
    assert_true(handler_allocations > 0); /* the handlers did interrupt the loop */
    assert_int_equal(s.allocations, mine + (size_t)handler_allocations);
    assert_int_equal(s.padding, 0);
    assert_int_equal(nalloc_arena_destroy(signalled_arena), NALLOC_OK);
}

/* nalloc_stats as a program built against an older header has it: the 1.0 fields, no more. The
 * library must fill those and write nothing past them. (Today's struct is the 1.0 struct; once
 * fields are added, this is an older caller for real.) */
typedef struct stats_1_0 {
    uint32_t version, struct_size;
    const char *name;
    nalloc_kind kind;
    nalloc_memory memory;
    size_t capacity, used, high_water, allocations, failures, padding, resets, rollbacks, wipes,
        wiped_bytes, reserved, guard_size;
    uintptr_t base;
    uint64_t layout_digest;
    double pin_seconds;
    unsigned requested, missing, checkers;
    bool guard_pages, populated, huge_pages, locked, no_dump, wipe_on_fork, wipe_on_destroy,
        secret, pinned, pin_fallback, unused[2];
    size_t redzone, redzone_bytes;
} stats_1_0;

static void test_stats_fill_no_more_than_the_callers_struct(void **state)
{
    (void)state;
    nalloc_arena *a = make_arena(NALLOC_KIND_SCRATCH, MiB);
    assert_non_null(nalloc_alloc(a, 1000));
    assert_null(nalloc_alloc(a, 0));
    nalloc_stats now = stats_of(a);

    /* An older caller: its fields filled, the bytes after its struct untouched. */
    struct {
        stats_1_0 stats;
        unsigned char after[64];
    } old;
    memset(&old, 0xee, sizeof old);
    assert_int_equal(nalloc_arena_stats_sized(a, (nalloc_stats *)(void *)&old.stats,
                                              sizeof old.stats),
                     NALLOC_OK);
    assert_int_equal(old.stats.version, NALLOC_STATS_VERSION);
    assert_int_equal(old.stats.struct_size, sizeof old.stats);
    assert_int_equal(old.stats.used, now.used);
    assert_int_equal(old.stats.allocations, 1);
    assert_int_equal(old.stats.failures, 1);
    assert_int_equal(old.stats.redzone_bytes, now.redzone_bytes);
    for (size_t i = 0; i < sizeof old.after; i++)
        assert_int_equal(old.after[i], 0xee);

    /* A newer caller (a struct larger than the library's): the library's fields, the rest left
     * as they were, and struct_size says how far it wrote. */
    struct {
        nalloc_stats stats;
        unsigned char later_fields[64];
    } newer;
    memset(&newer, 0xee, sizeof newer);
    assert_int_equal(nalloc_arena_stats_sized(a, &newer.stats, sizeof newer), NALLOC_OK);
    assert_int_equal(newer.stats.struct_size, sizeof(nalloc_stats));
    assert_int_equal(newer.stats.used, now.used);
    for (size_t i = 0; i < sizeof newer.later_fields; i++)
        assert_int_equal(newer.later_fields[i], 0xee);

    /* Smaller than any struct ever published: refused, nothing written. */
    memset(&old, 0xee, sizeof old);
    assert_int_equal(nalloc_arena_stats_sized(a, (nalloc_stats *)(void *)&old.stats,
                                              offsetof(stats_1_0, redzone_bytes)),
                     NALLOC_ERR_INVALID);
    assert_int_equal(old.stats.version, 0xeeeeeeee);
    assert_int_equal(nalloc_arena_destroy(a), NALLOC_OK);
}

static void test_high_water_survives_rollback_and_reset(void **state)
{
    (void)state;
    nalloc_arena *a = make_arena(NALLOC_KIND_SCRATCH, MiB);
    nalloc_mark m = nalloc_mark_get(a);
    assert_non_null(nalloc_alloc(a, 300000));
    assert_int_equal(nalloc_rollback(a, m), NALLOC_OK);
    assert_non_null(nalloc_alloc(a, 1000));
    nalloc_stats s = stats_of(a);
    assert_int_equal(s.high_water, 300000);
    assert_int_equal(s.used, 1000);
    assert_int_equal(nalloc_reset(a), NALLOC_OK);
    assert_non_null(nalloc_alloc(a, 500000));
    assert_int_equal(stats_of(a).high_water, 500000);
    assert_int_equal(stats_of(a).rollbacks, 1);
    assert_int_equal(stats_of(a).resets, 1);
    nalloc_arena_destroy(a);
}

static uint64_t digest_of_sequence(size_t capacity, uint64_t seed, int count)
{
    nalloc_arena *a = make_arena(NALLOC_KIND_SCRATCH, capacity);
    for (int i = 0; i < count; i++) {
        uint64_t r = test_rand(&seed);
        void *p = nalloc_alloc_aligned(a, 1 + (size_t)(r % 3000), (size_t)1 << (r >> 60));
        (void)p; /* a failure (none is expected) is part of the layout too */
    }
    uint64_t d = stats_of(a).layout_digest;
    nalloc_arena_destroy(a);
    return d;
}

static void test_layout_digest_depends_on_the_layout_only(void **state)
{
    (void)state;
    uint64_t d1 = digest_of_sequence(4 * MiB, 9, 500);
    uint64_t d2 = digest_of_sequence(4 * MiB, 9, 500); /* another mapping, same requests */
    uint64_t d3 = digest_of_sequence(4 * MiB, 10, 500);
    uint64_t d4 = digest_of_sequence(4 * MiB, 9, 499);
    assert_int_not_equal(d1, 0);
    assert_true(d1 == d2);
    assert_true(d1 != d3);
    assert_true(d1 != d4);
}

static void test_print_stats_reports_the_arena(void **state)
{
    (void)state;
    nalloc_arena_config c;
    nalloc_arena_config_init(&c, NALLOC_KIND_POLY, NALLOC_MEMORY_HOST, MiB);
    c.name = "columns";
    nalloc_arena *a = make_arena_with(&c);
    assert_non_null(nalloc_alloc(a, 100));
    assert_null(nalloc_alloc(a, 0));
    char buf[1024] = {0};
    FILE *f = fmemopen(buf, sizeof buf - 1, "w");
    assert_non_null(f);
    assert_int_equal(nalloc_arena_print_stats(a, f), NALLOC_OK);
    fclose(f);
    assert_non_null(strstr(buf, "arena 'columns' (poly, host)"));
    assert_non_null(strstr(buf, "allocations 1  failures 1"));
    assert_non_null(strstr(buf, "guard-pages"));
    assert_string_equal(stats_of(a).name, "columns");
    nalloc_arena_destroy(a);
}

/* How many of the pages in [p, p + size) are resident (mincore), independent of any faults a
 * sanitizer's shadow memory takes. */
static size_t resident_pages(void *p, size_t size)
{
    size_t pages = size / 4096;
    unsigned char *vec = malloc(pages);
    assert_non_null(vec);
    assert_int_equal(mincore(p, size, vec), 0);
    size_t n = 0;
    for (size_t i = 0; i < pages; i++)
        n += vec[i] & 1;
    free(vec);
    return n;
}

static void test_populate_prefaults_every_page(void **state)
{
    (void)state;
    const size_t size = 16 * MiB;
    nalloc_arena_config c;
    nalloc_arena_config_init(&c, NALLOC_KIND_SCRATCH, NALLOC_MEMORY_HOST, size);
    nalloc_arena *lazy = make_arena_with(&c);
    c.flags |= NALLOC_FLAG_POPULATE;
    nalloc_arena *eager = make_arena_with(&c);
    nalloc_stats s = stats_of(eager);
    assert_true(s.populated);
    assert_int_equal(s.missing, 0);
    assert_false(stats_of(lazy).populated);
    assert_int_equal(resident_pages((void *)s.base, size), size / 4096);
    assert_int_equal(resident_pages((void *)stats_of(lazy).base, size), 0); /* committed on touch */
    nalloc_arena_destroy(eager);
    nalloc_arena_destroy(lazy);
}

/* Child role: report the defaults config_init takes from the environment, and whether an arena
 * can still be created and allocated from with them. */
static int print_defaults(void)
{
    nalloc_arena_config c;
    nalloc_arena_config_init(&c, NALLOC_KIND_POLY, NALLOC_MEMORY_HOST, MiB);
    printf("%zu %zu %zu guard %zu slack %zu chunk %zu\n", c.large_threshold, c.large_align,
           c.default_align, c.guard_size, c.device_slack, c.pin_chunk);
    nalloc_arena *a = NULL;
    bool usable = nalloc_arena_create(&c, &a) == NALLOC_OK && nalloc_alloc(a, 100) != NULL;
    printf("%s\n", usable ? "usable" : "unusable");
    return a != NULL && nalloc_arena_destroy(a) != NALLOC_OK;
}

static void check_defaults_with(const char *env, const char *expected, bool expect_warning)
{
    char out[] = "/tmp/nalloc-opt-XXXXXX";
    int fd = mkstemp(out);
    assert_true(fd >= 0);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fd, 1);
        dup2(fd, 2);
        putenv((char *)env);
        execl("/proc/self/exe", "child", "print-defaults", (char *)NULL);
        _exit(127);
    }
    int status;
    waitpid(pid, &status, 0);
    char text[512] = {0};
    assert_true(pread(fd, text, sizeof text - 1, 0) > 0);
    close(fd);
    unlink(out);
    assert_true(exited_ok(status));
    assert_non_null(strstr(text, expected));
    assert_int_equal(strstr(text, "ignoring") != NULL, expect_warning);
}

static void test_options_come_from_the_environment(void **state)
{
    (void)state;
    check_defaults_with("NALLOC_LARGE_THRESHOLD=64k", "65536 4096 64", false);
    check_defaults_with("NALLOC_LARGE_ALIGN=2m", "1048576 2097152 64", false);
    check_defaults_with("NALLOC_HOST_ALIGN=128", "1048576 4096 128", false);
    check_defaults_with("NALLOC_LARGE_THRESHOLD=64K", "65536 4096 64", false); /* either case */
    check_defaults_with("NALLOC_LARGE_ALIGN=2M", "1048576 2097152 64", false);
    check_defaults_with("NALLOC_GUARD_SIZE=64k", "guard 65536", false);
    /* Invalid values are ignored, with a warning: not a power of two, junk, negative. */
    check_defaults_with("NALLOC_LARGE_ALIGN=3000", "1048576 4096 64", true);
    check_defaults_with("NALLOC_LARGE_THRESHOLD=lots", "1048576 4096 64", true);
    check_defaults_with("NALLOC_HOST_ALIGN=-64", "1048576 4096 64", true);
    check_defaults_with("NALLOC_LARGE_THRESHOLD= -1", "1048576 4096 64", true); /* strtoull: 2^64-1 */
}

/* Values that parse but would make every later creation or allocation fail are refused, with a
 * warning naming the variable and the range it takes, and the default stays: nalloc stays
 * usable. */
static void test_options_that_would_break_every_call_are_refused(void **state)
{
    (void)state;
    static const struct {
        const char *env, *expected_default, *named;
    } cases[] = {
        {"NALLOC_GUARD_SIZE=18446744073709551615", "guard 0", "NALLOC_GUARD_SIZE"},
        {"NALLOC_HOST_ALIGN=1g", "1048576 4096 64", "NALLOC_HOST_ALIGN"},
        {"NALLOC_LARGE_THRESHOLD=0", "1048576 4096 64", "NALLOC_LARGE_THRESHOLD"},
        {"NALLOC_LARGE_ALIGN=4g", "1048576 4096 64", "NALLOC_LARGE_ALIGN"},
        {"NALLOC_PIN_CHUNK=18446744073709551615", "chunk 1073741824", "NALLOC_PIN_CHUNK"},
        {"NALLOC_DEVICE_SLACK=18446744073709551615", "slack 268435456", "NALLOC_DEVICE_SLACK"},
        {"NALLOC_VERBOSE=7", "1048576 4096 64", "NALLOC_VERBOSE"},
    };
    for (unsigned i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char out[] = "/tmp/nalloc-opt-XXXXXX";
        int fd = mkstemp(out);
        assert_true(fd >= 0);
        fflush(NULL);
        pid_t pid = fork();
        if (pid == 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            putenv((char *)cases[i].env);
            execl("/proc/self/exe", "child", "print-defaults", (char *)NULL);
            _exit(127);
        }
        int status;
        waitpid(pid, &status, 0);
        char text[1024] = {0};
        assert_true(pread(fd, text, sizeof text - 1, 0) > 0);
        close(fd);
        unlink(out);
        assert_true(exited_ok(status));
        if (strstr(text, cases[i].expected_default) == NULL || strstr(text, "unusable") != NULL)
            fail_msg("%s changed the defaults: %s", cases[i].env, text);
        /* One warning line: the variable, and what it accepts. */
        const char *warning = strstr(text, "nalloc: ignoring ");
        assert_non_null(warning);
        assert_non_null(strstr(warning, cases[i].named));
        assert_non_null(strstr(warning, "expected"));
        assert_true(strchr(warning, '\n') != NULL && strstr(strchr(warning, '\n') + 1,
                                                             "nalloc: ignoring") == NULL);
    }
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "print-defaults") == 0)
        return print_defaults();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_used_is_requested_plus_padding),
        cmocka_unit_test(test_failures_count_every_refused_request_for_memory),
        cmocka_unit_test(test_stats_fill_no_more_than_the_callers_struct),
        cmocka_unit_test(test_statistics_stay_exact_when_a_signal_handler_allocates),
        cmocka_unit_test(test_high_water_survives_rollback_and_reset),
        cmocka_unit_test(test_layout_digest_depends_on_the_layout_only),
        cmocka_unit_test(test_print_stats_reports_the_arena),
        cmocka_unit_test(test_populate_prefaults_every_page),
        cmocka_unit_test(test_options_come_from_the_environment),
        cmocka_unit_test(test_options_that_would_break_every_call_are_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
