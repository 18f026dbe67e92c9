/* tests/test_errors.c - every bad input gets a clear status and leaves every arena intact: NULL
 * arenas, zero and huge sizes, SIZE_MAX, non-power-of-two and huge alignments, overflowing counts,
 * bad configurations, use after destroy, and the thread-local last error. After each refusal the
 * arena must still serve requests that fit, with statistics unchanged but for the failure count. */
#include "testutil.h"

#include <pthread.h>

/* The arena's observable state, to check that a refused call changed nothing. */
typedef struct snapshot {
    size_t used, allocations, failures;
    void *next; /* where the next 64-byte-aligned 64-byte block would go */
} snapshot;

static snapshot snap(nalloc_arena *a)
{
    nalloc_stats s = stats_of(a);
    snapshot out = {s.used, s.allocations, s.failures, NULL};
    out.next = (void *)((s.base + s.used + 63) & ~(uintptr_t)63);
    return out;
}

static void assert_unchanged_but_one_failure(nalloc_arena *a, snapshot before)
{
    snapshot now = snap(a);
    assert_int_equal(now.used, before.used);
    assert_int_equal(now.allocations, before.allocations);
    assert_int_equal(now.failures, before.failures + 1);
}

static int setup(void **state)
{
    *state = make_arena(NALLOC_KIND_SCRATCH, MiB);
    return nalloc_alloc(*state, 100) != NULL ? 0 : -1;
}

static int teardown(void **state)
{
    return nalloc_arena_destroy(*state) == NALLOC_OK ? 0 : -1;
}

static void test_null_arena_is_invalid_everywhere(void **state)
{
    (void)state;
    nalloc_stats s;
    assert_null_with(NALLOC_ERR_INVALID, nalloc_alloc(NULL, 64));
    assert_null_with(NALLOC_ERR_INVALID, nalloc_alloc_aligned(NULL, 64, 64));
    assert_null_with(NALLOC_ERR_INVALID, nalloc_alloc_zeroed(NULL, 1, 64, 0));
    assert_null_with(NALLOC_ERR_INVALID, nalloc_realloc(NULL, NULL, 0, 64, 0));
    assert_int_equal(nalloc_free_last(NULL, (void *)64, 64), NALLOC_ERR_INVALID);
    assert_int_equal(nalloc_resize_last(NULL, (void *)64, 64, 128), NALLOC_ERR_INVALID);
    assert_int_equal(nalloc_arena_stats(NULL, &s), NALLOC_ERR_INVALID);
    assert_int_equal(nalloc_arena_print_stats(NULL, NULL), NALLOC_ERR_INVALID);
    assert_int_equal(nalloc_wipe(NULL), NALLOC_ERR_INVALID);
    assert_int_equal(nalloc_arena_destroy(NULL), NALLOC_ERR_INVALID);
    nalloc_mark m = nalloc_mark_get(NULL);
    assert_int_equal(nalloc_last_error(), NALLOC_ERR_INVALID);
    assert_int_equal(nalloc_rollback(NULL, m), NALLOC_ERR_INVALID);
    nalloc_last_error_clear();
    assert_int_equal(nalloc_reset(NULL), NALLOC_ERR_INVALID);
    assert_int_equal(nalloc_last_error(), NALLOC_ERR_INVALID);
}

static void test_zero_size_is_invalid_and_consumes_nothing(void **state)
{
    nalloc_arena *a = *state;
    snapshot before = snap(a);
    assert_null_with(NALLOC_ERR_INVALID, nalloc_alloc(a, 0));
    assert_unchanged_but_one_failure(a, before);
    before = snap(a);
    assert_null_with(NALLOC_ERR_INVALID, nalloc_alloc_aligned(a, 0, 64));
    assert_unchanged_but_one_failure(a, before);
    before = snap(a);
    assert_null_with(NALLOC_ERR_INVALID, nalloc_alloc_zeroed(a, 0, 8, 0));
    assert_unchanged_but_one_failure(a, before);
    before = snap(a);
    assert_null_with(NALLOC_ERR_INVALID, nalloc_alloc_zeroed(a, 8, 0, 0));
    assert_unchanged_but_one_failure(a, before);
    assert_ptr_equal(nalloc_alloc(a, 64), before.next); /* still serves what fits */
}

static void test_huge_sizes_are_refused_and_the_arena_still_serves(void **state)
{
    nalloc_arena *a = *state;
    const size_t sizes[] = {SIZE_MAX, SIZE_MAX - 1, SIZE_MAX / 2 + 1, (size_t)1 << 62, MiB + 1,
                            MiB - 100 + 1};
    for (unsigned i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        snapshot before = snap(a);
        assert_null_with(NALLOC_ERR_NOMEM, nalloc_alloc(a, sizes[i]));
        assert_unchanged_but_one_failure(a, before);
        before = snap(a);
        assert_null_with(NALLOC_ERR_NOMEM, nalloc_alloc_aligned(a, sizes[i], 4096));
        assert_unchanged_but_one_failure(a, before);
    }
    snapshot before = snap(a);
    assert_ptr_equal(nalloc_alloc(a, 64), before.next);
}

static void test_bad_alignments_are_invalid(void **state)
{
    nalloc_arena *a = *state;
    const size_t aligns[] = {0, 3, 6, 48, 100, 4095, 4097, SIZE_MAX, ((size_t)1 << 63) + 1};
    for (unsigned i = 0; i < sizeof aligns / sizeof aligns[0]; i++) {
        snapshot before = snap(a);
        assert_null_with(NALLOC_ERR_INVALID, nalloc_alloc_aligned(a, 64, aligns[i]));
        assert_unchanged_but_one_failure(a, before);
        if (aligns[i] != 0) { /* 0 means "policy" for the zeroed and realloc variants */
            before = snap(a);
            assert_null_with(NALLOC_ERR_INVALID, nalloc_alloc_zeroed(a, 1, 64, aligns[i]));
            assert_unchanged_but_one_failure(a, before);
        }
    }
}

static void test_huge_alignments_fail_cleanly_when_they_cannot_fit(void **state)
{
    nalloc_arena *a = *state;
    for (unsigned shift = 12; shift < 64; shift++) {
        size_t align = (size_t)1 << shift;
        snapshot before = snap(a);
        nalloc_stats s = stats_of(a);
        uintptr_t here = s.base + s.used;
        size_t pad = (size_t)(-here & (align - 1));
        bool fits = pad < s.capacity - s.used; /* room for the padding and one byte */
        void *p = nalloc_alloc_aligned(a, 1, align);
        if (fits) { /* possible up to the base's own alignment: mmap placed it */
            assert_non_null(p);
            assert_int_equal((uintptr_t)p % align, 0);
            nalloc_free_last(a, p, 1);
            continue;
        }
        assert_null(p);
        assert_int_equal(nalloc_last_error(), NALLOC_ERR_NOMEM);
        assert_unchanged_but_one_failure(a, before);
    }
    snapshot before = snap(a);
    assert_ptr_equal(nalloc_alloc(a, 64), before.next);
}

static void test_overflowing_counts_are_invalid(void **state)
{
    nalloc_arena *a = *state;
    snapshot before = snap(a);
    assert_null_with(NALLOC_ERR_INVALID, nalloc_alloc_zeroed(a, SIZE_MAX, 2, 0));
    assert_unchanged_but_one_failure(a, before);
    before = snap(a);
    assert_null_with(NALLOC_ERR_INVALID, nalloc_alloc_zeroed(a, (size_t)1 << 32, (size_t)1 << 32, 0));
    assert_unchanged_but_one_failure(a, before);
    before = snap(a);
    assert_null_with(NALLOC_ERR_NOMEM, nalloc_alloc_zeroed(a, (size_t)1 << 31, (size_t)1 << 31, 0));
    assert_unchanged_but_one_failure(a, before);
}

static void test_exhaustion_then_recovery(void **state)
{
    (void)state;
    nalloc_arena *a = make_arena(NALLOC_KIND_SCRATCH, 64 * KiB);
    int n = 0;
    while (nalloc_alloc(a, 1000) != NULL)
        n++;
    assert_int_equal(nalloc_last_error(), NALLOC_ERR_NOMEM);
    assert_int_equal(n, 64); /* 1000 bytes padded to 1024: exactly 64 fit in 64 KiB */
    nalloc_stats s = stats_of(a);
    assert_int_equal(s.used, 63 * 1024 + 1000);
    /* The last 24 bytes still serve a request that fits. */
    assert_non_null(nalloc_alloc_aligned(a, 24, 1));
    assert_null_with(NALLOC_ERR_NOMEM, nalloc_alloc_aligned(a, 1, 1));
    assert_int_equal(nalloc_reset(a), NALLOC_OK);
    assert_non_null(nalloc_alloc(a, 64 * KiB)); /* the whole capacity, exactly */
    assert_null_with(NALLOC_ERR_NOMEM, nalloc_alloc_aligned(a, 1, 1));
    nalloc_arena_destroy(a);
}

/* Break one field of a valid configuration; `which` indexes the case names below. */
static void spoil(nalloc_arena_config *c, unsigned which)
{
    switch (which) {
    case 0: c->capacity = 0; break;
    case 1: c->capacity = SIZE_MAX; break;
    case 2: c->kind = (nalloc_kind)7; break;
    case 3: c->memory = (nalloc_memory)9; break;
    case 4: c->default_align = 0; break;
    case 5: c->default_align = 48; break;
    case 6: c->large_align = 3; break;
    case 7: c->flags |= 1u << 30; break;
    case 8: c->guard_size = SIZE_MAX; break;
    case 9: c->guard_size = SIZE_MAX / 2 + 1; break; /* page-aligned; 2 * guard wraps to 0 */
    }
}

static void test_bad_configurations_are_refused(void **state)
{
    (void)state;
    nalloc_arena *a = (nalloc_arena *)0x1;
    nalloc_arena_config c;
    assert_int_equal(nalloc_arena_create(NULL, &a), NALLOC_ERR_INVALID);
    assert_null(a);
    nalloc_arena_config_init(&c, NALLOC_KIND_SCRATCH, NALLOC_MEMORY_HOST, 4096);
    assert_int_equal(nalloc_arena_create(&c, NULL), NALLOC_ERR_INVALID);

    static const char *const cases[] = {"zero capacity",    "SIZE_MAX capacity", "bad kind",
                                        "bad memory",       "default_align 0",   "default_align 48",
                                        "large_align 3",    "unknown flag",      "guard SIZE_MAX",
                                        "guard 2^63"};
    for (unsigned i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        nalloc_arena_config_init(&c, NALLOC_KIND_SCRATCH, NALLOC_MEMORY_HOST, 4096);
        spoil(&c, i);
        a = (nalloc_arena *)0x1;
        nalloc_status st = nalloc_arena_create(&c, &a);
        if (st == NALLOC_OK)
            fail_msg("config with %s was accepted", cases[i]);
        assert_null(a);
        assert_true(st == NALLOC_ERR_INVALID || st == NALLOC_ERR_OS);
    }
}

static void test_a_destroyed_arena_is_refused_with_state(void **state)
{
    (void)state;
    nalloc_arena *a = make_arena(NALLOC_KIND_SCRATCH, MiB);
    void *p = nalloc_alloc(a, 64);
    nalloc_mark m = nalloc_mark_get(a);
    assert_int_equal(nalloc_arena_destroy(a), NALLOC_OK);
    nalloc_stats s;
    assert_null_with(NALLOC_ERR_STATE, nalloc_alloc(a, 64));
    assert_null_with(NALLOC_ERR_STATE, nalloc_alloc_aligned(a, 64, 64));
    assert_null_with(NALLOC_ERR_STATE, nalloc_alloc_zeroed(a, 1, 64, 0));
    assert_null_with(NALLOC_ERR_STATE, nalloc_realloc(a, p, 64, 128, 0));
    assert_int_equal(nalloc_free_last(a, p, 64), NALLOC_ERR_STATE);
    assert_int_equal(nalloc_resize_last(a, p, 64, 128), NALLOC_ERR_STATE);
    assert_int_equal(nalloc_rollback(a, m), NALLOC_ERR_STATE);
    assert_int_equal(nalloc_wipe(a), NALLOC_ERR_STATE);
    assert_int_equal(nalloc_arena_stats(a, &s), NALLOC_ERR_STATE);
    nalloc_last_error_clear();
    assert_int_equal(nalloc_reset(a), NALLOC_ERR_STATE);
    assert_int_equal(nalloc_last_error(), NALLOC_ERR_STATE);
    nalloc_last_error_clear();
    nalloc_mark dead = nalloc_mark_get(a);
    assert_int_equal(dead.arena_uid, 0);
    assert_int_equal(nalloc_last_error(), NALLOC_ERR_STATE);
    assert_int_equal(nalloc_arena_destroy(a), NALLOC_ERR_STATE); /* double destroy */
}

static void test_stats_needs_somewhere_to_write(void **state)
{
    assert_int_equal(nalloc_arena_stats(*state, NULL), NALLOC_ERR_INVALID);
}

static void test_every_status_has_a_message(void **state)
{
    (void)state;
    for (int st = NALLOC_OK; st <= NALLOC_ERR_STATE; st++) {
        const char *msg = nalloc_strerror((nalloc_status)st);
        assert_non_null(msg);
        assert_true(strlen(msg) > 3);
        assert_string_not_equal(msg, nalloc_strerror((nalloc_status)1000));
    }
    assert_non_null(nalloc_strerror((nalloc_status)-1));
}

static void *fail_on_another_thread(void *arena)
{
    if (nalloc_alloc(arena, SIZE_MAX) != NULL)
        return (void *)(intptr_t)-1;
    return (void *)(intptr_t)nalloc_last_error();
}

static void test_last_error_belongs_to_the_thread(void **state)
{
    nalloc_arena *a = *state;
    assert_null_with(NALLOC_ERR_INVALID, nalloc_alloc(a, 0));
    pthread_t t;
    void *theirs;
    assert_int_equal(pthread_create(&t, NULL, fail_on_another_thread, a), 0);
    assert_int_equal(pthread_join(t, &theirs), 0);
    assert_int_equal((intptr_t)theirs, NALLOC_ERR_NOMEM);
    assert_int_equal(nalloc_last_error(), NALLOC_ERR_INVALID); /* ours, untouched */
    assert_non_null(nalloc_alloc(a, 8));
    assert_int_equal(nalloc_last_error(), NALLOC_ERR_INVALID); /* success leaves it alone */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_null_arena_is_invalid_everywhere),
        cmocka_unit_test_setup_teardown(test_zero_size_is_invalid_and_consumes_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_huge_sizes_are_refused_and_the_arena_still_serves, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_bad_alignments_are_invalid, setup, teardown),
        cmocka_unit_test_setup_teardown(test_huge_alignments_fail_cleanly_when_they_cannot_fit, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_overflowing_counts_are_invalid, setup, teardown),
        cmocka_unit_test(test_exhaustion_then_recovery),
        cmocka_unit_test(test_bad_configurations_are_refused),
        cmocka_unit_test(test_a_destroyed_arena_is_refused_with_state),
        cmocka_unit_test_setup_teardown(test_stats_needs_somewhere_to_write, setup, teardown),
        cmocka_unit_test(test_every_status_has_a_message),
        cmocka_unit_test_setup_teardown(test_last_error_belongs_to_the_thread, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
