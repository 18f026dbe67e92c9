/* tests/test_wipe.c - the secure wipe: every byte handed out since the last wipe reads zero
 * afterwards, up to the high-water mark and not just the current offset; the arena is reset; a
 * witness arena is wiped when destroyed (observed through NALLOC_VERBOSE in a child) and at exit. */
#include "testutil.h"

#include <pthread.h>
#include <stdio.h>

static bool all_zero(const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (peek_released(p, i) != 0)
            return false;
    return true;
}

static void test_wipe_zeroes_up_to_the_high_water_mark(void **state)
{
    (void)state;
    nalloc_arena *a = make_arena(NALLOC_KIND_WITNESS, 4 * MiB);
    unsigned char *base = nalloc_alloc(a, 1); /* the arena's first byte */
    assert_int_equal(nalloc_reset(a), NALLOC_OK);

    /* Write a pattern over 1.5 MiB, roll back, allocate less, then wipe. */
    nalloc_mark m = nalloc_mark_get(a);
    unsigned char *p = nalloc_alloc(a, 3 * MiB / 2);
    assert_ptr_equal(p, base);
    memset(p, 0xa5, 3 * MiB / 2);
    assert_int_equal(nalloc_rollback(a, m), NALLOC_OK);
    unsigned char *q = nalloc_alloc(a, 1000);
    memset(q, 0x5a, 1000);
    nalloc_stats before = stats_of(a);
    assert_int_equal(before.used, 1000);
    assert_int_equal(before.high_water, 3 * MiB / 2);

    assert_int_equal(nalloc_wipe(a), NALLOC_OK);
    assert_true(all_zero(base, 3 * MiB / 2)); /* the rolled-back pattern too */
    nalloc_stats after = stats_of(a);
    assert_int_equal(after.used, 0);
    assert_int_equal(after.wipes, 1);
    assert_int_equal(after.wiped_bytes, 3 * MiB / 2);
    nalloc_arena_destroy(a);
}

static void test_a_second_wipe_only_covers_what_was_handed_out_since(void **state)
{
    (void)state;
    nalloc_arena *a = make_arena(NALLOC_KIND_WITNESS, MiB);
    memset(nalloc_alloc(a, 50000), 1, 50000);
    assert_int_equal(nalloc_wipe(a), NALLOC_OK);
    memset(nalloc_alloc(a, 3000), 2, 3000);
    assert_int_equal(nalloc_wipe(a), NALLOC_OK);
    assert_int_equal(stats_of(a).wiped_bytes, 50000 + 3000);
    assert_int_equal(nalloc_wipe(a), NALLOC_OK); /* nothing handed out: nothing to do */
    assert_int_equal(stats_of(a).wiped_bytes, 53000);
    assert_int_equal(stats_of(a).wipes, 3);
    nalloc_arena_destroy(a);
}

static void test_wipe_covers_blocks_given_back_with_free_last(void **state)
{
    (void)state;
    nalloc_arena *a = make_arena(NALLOC_KIND_SCRATCH, MiB);
    unsigned char *p = nalloc_alloc(a, 8192);
    memset(p, 0x77, 8192);
    assert_int_equal(nalloc_free_last(a, p, 8192), NALLOC_OK);
    assert_int_equal(nalloc_wipe(a), NALLOC_OK);
    assert_true(all_zero(p, 8192));
    nalloc_arena_destroy(a);
}

static void test_wipe_makes_old_marks_stale(void **state)
{
    (void)state;
    nalloc_arena *a = make_arena(NALLOC_KIND_WITNESS, MiB);
    nalloc_mark m = nalloc_mark_get(a);
    assert_non_null(nalloc_alloc(a, 10));
    assert_int_equal(nalloc_wipe(a), NALLOC_OK);
    assert_int_equal(nalloc_rollback(a, m), NALLOC_ERR_STATE);
    nalloc_arena_destroy(a);
}

/* Child role: a witness arena holding a secret is destroyed with NALLOC_VERBOSE=1 set. */
static int destroy_verbosely(void)
{
    nalloc_arena_config c;
    nalloc_arena_config_init(&c, NALLOC_KIND_WITNESS, NALLOC_MEMORY_HOST, MiB);
    nalloc_arena *a;
    if (nalloc_arena_create(&c, &a) != NALLOC_OK)
        return 2;
    memset(nalloc_alloc(a, 5000), 0x42, 5000);
    return nalloc_arena_destroy(a) == NALLOC_OK ? 0 : 3;
}

static void test_destroying_a_witness_arena_wipes_it_and_verbose_reports_it(void **state)
{
    (void)state;
    if (under_valgrind())
        skip(); /* re-executes /proc/self/exe */
    char path[] = "/tmp/nalloc-wipe-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    int status = run_self("destroy-verbosely", "NALLOC_VERBOSE=1", path);
    char text[2048] = {0};
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    unlink(path);
    assert_true(exited_ok(status));
    assert_true(n > 0);
    assert_non_null(strstr(text, "arena 'witness'"));
    assert_non_null(strstr(text, "wipes 1  wiped 5000 bytes"));
    assert_non_null(strstr(text, "wipe-on-destroy"));
}

static void test_scratch_arenas_are_not_wiped_on_destroy_by_default(void **state)
{
    (void)state;
    nalloc_arena_config c;
    nalloc_arena_config_init(&c, NALLOC_KIND_SCRATCH, NALLOC_MEMORY_HOST, MiB);
    assert_false(c.flags & NALLOC_FLAG_WIPE_ON_DESTROY);
    nalloc_arena_config_init(&c, NALLOC_KIND_WITNESS, NALLOC_MEMORY_HOST, MiB);
    assert_true(c.flags & NALLOC_FLAG_WIPE_ON_DESTROY);
    assert_true(c.flags & NALLOC_FLAG_WIPE_AT_EXIT);
    nalloc_arena *a = make_arena_with(&c);
    assert_true(stats_of(a).wipe_on_destroy);
    nalloc_arena_destroy(a);
}

/* A thread that creates, fills and destroys arenas until the process exits. They are wiped at
 * exit but not on destroy, so a destroy unmaps at once, and most of the time an arena is alive
 * and dirty: the exit-time wipe is likely to be zeroing one when the thread unmaps it. */
static void *churn_arenas(void *unused)
{
    (void)unused;
    nalloc_arena_config c;
    nalloc_arena_config_init(&c, NALLOC_KIND_SCRATCH, NALLOC_MEMORY_HOST, 16 * MiB);
    c.flags = NALLOC_FLAG_WIPE_AT_EXIT;
    for (;;) {
        nalloc_arena *a;
        if (nalloc_arena_create(&c, &a) != NALLOC_OK)
            continue;
        memset(nalloc_alloc(a, 16 * MiB), 0x42, 16 * MiB);
        nalloc_arena_destroy(a);
    }
    return NULL;
}

static void child_exits_while_a_thread_destroys_arenas(void *round)
{
    pthread_t t;
    if (pthread_create(&t, NULL, churn_arenas, NULL) != 0)
        _exit(3);
    usleep(2000 + (useconds_t)(uintptr_t)round * 397 % 5000);
    exit(0); /* the exit-time wipe runs while the thread goes on */
}

static void test_exit_wipe_is_safe_against_a_thread_destroying_arenas(void **state)
{
    (void)state;
    if (under_valgrind())
        skip(); /* slow there, and the timing it needs is gone */
    for (uintptr_t round = 0; round < 20; round++) {
        int status = run_in_child(child_exits_while_a_thread_destroys_arenas, (void *)round);
        if (!exited_ok(status))
            fail_msg("round %zu: the child %s %d", (size_t)round,
                     WIFSIGNALED(status) ? "died of signal" : "exited with",
                     WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
    }
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "destroy-verbosely") == 0)
        return destroy_verbosely();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wipe_zeroes_up_to_the_high_water_mark),
        cmocka_unit_test(test_a_second_wipe_only_covers_what_was_handed_out_since),
        cmocka_unit_test(test_wipe_covers_blocks_given_back_with_free_last),
        cmocka_unit_test(test_wipe_makes_old_marks_stale),
        cmocka_unit_test(test_destroying_a_witness_arena_wipes_it_and_verbose_reports_it),
        cmocka_unit_test(test_scratch_arenas_are_not_wiped_on_destroy_by_default),
        cmocka_unit_test(test_exit_wipe_is_safe_against_a_thread_destroying_arenas),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
