/* tests/test_lifetime.c - how memory comes back: marks and rollback (stale marks refused),
 * reset, freeing and resizing the most recent block, realloc, and zeroed allocations. */
#include "testutil.h"

static int setup(void **state)
{
    *state = make_arena(NALLOC_KIND_SCRATCH, MiB);
    return 0;
}

static int teardown(void **state)
{
    return nalloc_arena_destroy(*state) == NALLOC_OK ? 0 : -1;
}

static void test_rollback_releases_everything_after_the_mark(void **state)
{
    nalloc_arena *a = *state;
    assert_non_null(nalloc_alloc(a, 100));
    nalloc_mark m = nalloc_mark_get(a);
    size_t used = stats_of(a).used;
    void *first = nalloc_alloc(a, 1000);
    assert_non_null(nalloc_alloc(a, 5000));
    assert_int_equal(nalloc_rollback(a, m), NALLOC_OK);
    assert_int_equal(stats_of(a).used, used);
    assert_ptr_equal(nalloc_alloc(a, 1000), first); /* the same place again: deterministic */
    assert_int_equal(stats_of(a).rollbacks, 1);
}

static void test_rollback_to_the_same_mark_works_every_time(void **state)
{
    nalloc_arena *a = *state;
    nalloc_mark m = nalloc_mark_get(a);
    void *p = NULL;
    for (int phase = 0; phase < 100; phase++) {
        void *q = nalloc_alloc(a, 777);
        if (p != NULL)
            assert_ptr_equal(q, p);
        p = q;
        assert_non_null(nalloc_alloc(a, (size_t)phase * 100 + 1));
        assert_int_equal(nalloc_rollback(a, m), NALLOC_OK);
    }
}

static void test_nested_marks_roll_back_inner_first(void **state)
{
    nalloc_arena *a = *state;
    nalloc_mark outer = nalloc_mark_get(a);
    assert_non_null(nalloc_alloc(a, 100));
    nalloc_mark inner = nalloc_mark_get(a);
    assert_non_null(nalloc_alloc(a, 100));
    nalloc_mark innermost = nalloc_mark_get(a);
    assert_non_null(nalloc_alloc(a, 100));
    assert_int_equal(nalloc_rollback(a, innermost), NALLOC_OK);
    assert_int_equal(nalloc_rollback(a, inner), NALLOC_OK);
    assert_int_equal(nalloc_rollback(a, inner), NALLOC_OK);
    assert_int_equal(nalloc_rollback(a, outer), NALLOC_OK);
    assert_int_equal(stats_of(a).used, 0);
}

static void test_rollback_refuses_a_mark_released_by_an_earlier_rollback(void **state)
{
    nalloc_arena *a = *state;
    nalloc_mark low = nalloc_mark_get(a);
    assert_non_null(nalloc_alloc(a, 100));
    nalloc_mark high = nalloc_mark_get(a);
    assert_non_null(nalloc_alloc(a, 100));
    assert_int_equal(nalloc_rollback(a, low), NALLOC_OK);
    /* Grow past where `high` pointed: its offset is in range again but means something else. */
    assert_non_null(nalloc_alloc(a, 500));
    size_t used = stats_of(a).used;
    assert_int_equal(nalloc_rollback(a, high), NALLOC_ERR_STATE);
    assert_int_equal(nalloc_last_error(), NALLOC_ERR_STATE);
    assert_int_equal(stats_of(a).used, used); /* refused, not obeyed */
    assert_int_equal(nalloc_rollback(a, low), NALLOC_OK); /* `low` is still good */
}

static void test_rollback_refuses_a_mark_from_before_a_reset(void **state)
{
    nalloc_arena *a = *state;
    nalloc_mark m = nalloc_mark_get(a);
    assert_non_null(nalloc_alloc(a, 100));
    assert_int_equal(nalloc_reset(a), NALLOC_OK);
    assert_non_null(nalloc_alloc(a, 200));
    assert_int_equal(nalloc_rollback(a, m), NALLOC_ERR_STATE);
    assert_int_equal(stats_of(a).used, 200);
    nalloc_mark after = nalloc_mark_get(a);
    assert_non_null(nalloc_alloc(a, 100));
    assert_int_equal(nalloc_wipe(a), NALLOC_OK);
    assert_int_equal(nalloc_rollback(a, after), NALLOC_ERR_STATE); /* a wipe resets too */
}

static void test_rollback_refuses_a_mark_of_another_arena(void **state)
{
    nalloc_arena *a = *state;
    nalloc_arena *b = make_arena(NALLOC_KIND_SCRATCH, MiB);
    assert_non_null(nalloc_alloc(b, 10));
    nalloc_mark theirs = nalloc_mark_get(b);
    assert_non_null(nalloc_alloc(a, 100));
    assert_int_equal(nalloc_rollback(a, theirs), NALLOC_ERR_STATE);
    assert_int_equal(stats_of(a).used, 100);
    nalloc_mark zero = {0, 0, 0, 0};
    assert_int_equal(nalloc_rollback(a, zero), NALLOC_ERR_STATE); /* a forged or NULL-arena mark */
    nalloc_arena_destroy(b);
}

static void test_rollback_refuses_a_mark_ahead_of_the_offset(void **state)
{
    nalloc_arena *a = *state;
    void *p = nalloc_alloc(a, 100);
    nalloc_mark m = nalloc_mark_get(a);
    nalloc_mark forged = m;
    forged.offset += 64;
    assert_int_equal(nalloc_rollback(a, forged), NALLOC_ERR_STATE);
    /* free_last may not cross the mark either: the block is older than the mark */
    assert_int_equal(nalloc_free_last(a, p, 100), NALLOC_ERR_STATE);
    assert_int_equal(nalloc_rollback(a, m), NALLOC_OK);
}

static void test_many_rollbacks_never_obey_a_stale_mark(void **state)
{
    /* Walk the history past its capacity with rollbacks to ever-higher targets, keeping marks
     * from every step; each must be obeyed when live and refused when stale. */
    nalloc_arena *a = *state;
    enum { STEPS = 60 };
    nalloc_mark marks[STEPS];
    for (int i = 0; i < STEPS; i++) {
        assert_non_null(nalloc_alloc(a, 64));
        marks[i] = nalloc_mark_get(a);
        assert_non_null(nalloc_alloc(a, 64));
        nalloc_mark tmp = nalloc_mark_get(a);
        assert_non_null(nalloc_alloc(a, 64));
        assert_int_equal(nalloc_rollback(a, tmp), NALLOC_OK); /* history grows: targets rise */
    }
    /* Every mark is live: nothing ever released below any of them. */
    for (int i = STEPS - 1; i >= 0; i--) {
        nalloc_status st = nalloc_rollback(a, marks[i]);
        /* Recent marks are judged exactly; old ones may be refused conservatively. */
        if (i >= STEPS - 8)
            assert_int_equal(st, NALLOC_OK);
        else
            assert_true(st == NALLOC_OK || st == NALLOC_ERR_STATE);
    }
    /* Now everything above marks[0] is released: every other mark is stale. */
    assert_int_equal(nalloc_rollback(a, marks[0]), NALLOC_OK);
    assert_non_null(nalloc_alloc(a, 64 * 3 * STEPS));
    for (int i = 1; i < STEPS; i++)
        assert_int_equal(nalloc_rollback(a, marks[i]), NALLOC_ERR_STATE);
}

static void test_reset_releases_everything(void **state)
{
    nalloc_arena *a = *state;
    void *first = nalloc_alloc(a, 100);
    assert_non_null(nalloc_alloc(a, 5000));
    assert_int_equal(nalloc_reset(a), NALLOC_OK);
    nalloc_stats s = stats_of(a);
    assert_int_equal(s.used, 0);
    assert_int_equal(s.high_water, 128 + 5000); /* the 100-byte block padded to 128 */
    assert_int_equal(s.resets, 1);
    assert_ptr_equal(nalloc_alloc(a, 100), first);
}

static void test_free_last_gives_back_only_the_most_recent_block(void **state)
{
    nalloc_arena *a = *state;
    char *p = nalloc_alloc(a, 128);
    char *q = nalloc_alloc(a, 200);
    assert_int_equal(nalloc_free_last(a, p, 128), NALLOC_ERR_STATE); /* not the last */
    assert_int_equal(nalloc_free_last(a, q, 199), NALLOC_ERR_STATE); /* wrong size */
    assert_int_equal(nalloc_free_last(a, q + 1, 200), NALLOC_ERR_STATE); /* ends past the offset */
    assert_int_equal(nalloc_free_last(a, q, 200), NALLOC_OK);
    assert_int_equal(nalloc_free_last(a, q, 200), NALLOC_ERR_STATE); /* already given back */
    assert_int_equal(nalloc_free_last(a, p, 128), NALLOC_OK); /* LIFO: now p is the last */
    assert_int_equal(stats_of(a).used, 0);
    assert_ptr_equal(nalloc_alloc(a, 300), p);
    assert_int_equal(stats_of(a).high_water, 128 + 200); /* what was in use at the peak */
}

static void test_free_last_keeps_the_padding_in_front_of_a_block(void **state)
{
    nalloc_arena *a = *state;
    char *p = nalloc_alloc(a, 100); /* [0, 100) */
    char *q = nalloc_alloc(a, 200); /* [128, 328): 28 bytes of padding in front */
    assert_int_equal(nalloc_free_last(a, q, 200), NALLOC_OK);
    assert_int_equal(stats_of(a).used, 128);
    /* p ends at 100, the offset is at 128: the gap could hold a block, so p stays. */
    assert_int_equal(nalloc_free_last(a, p, 100), NALLOC_ERR_STATE);
    assert_ptr_equal(nalloc_alloc(a, 64), q); /* the padding is reused as padding */
}

static void test_free_last_refuses_pointers_outside_the_arena(void **state)
{
    nalloc_arena *a = *state;
    char *p = nalloc_alloc(a, 100);
    int local;
    assert_int_equal(nalloc_free_last(a, &local, sizeof local), NALLOC_ERR_INVALID);
    assert_int_equal(nalloc_free_last(a, NULL, 100), NALLOC_ERR_INVALID);
    assert_int_equal(nalloc_free_last(a, p, SIZE_MAX), NALLOC_ERR_INVALID);
    assert_int_equal(nalloc_free_last(a, p + MiB + 4096, 1), NALLOC_ERR_INVALID);
    assert_int_equal(stats_of(a).used, 100);
}

static void test_resize_last_grows_and_shrinks_in_place(void **state)
{
    nalloc_arena *a = *state;
    char *p = nalloc_alloc(a, 100);
    memset(p, 7, 100);
    assert_int_equal(nalloc_resize_last(a, p, 100, 10000), NALLOC_OK);
    assert_int_equal(stats_of(a).used, 10000);
    memset(p, 7, 10000);
    assert_int_equal(nalloc_resize_last(a, p, 10000, 50), NALLOC_OK);
    assert_int_equal(stats_of(a).used, 50);
    assert_int_equal(p[49], 7);
    assert_int_equal(nalloc_resize_last(a, p, 50, MiB + 1), NALLOC_ERR_NOMEM);
    assert_int_equal(nalloc_resize_last(a, p, 50, 0), NALLOC_ERR_INVALID);
    assert_int_equal(nalloc_resize_last(a, p, 51, 60), NALLOC_ERR_STATE);
    assert_int_equal(stats_of(a).used, 50);
    assert_int_equal(nalloc_resize_last(a, p, 50, MiB), NALLOC_OK); /* exactly the capacity */
    char *q = nalloc_alloc(a, 1);
    assert_null(q);
}

static void test_realloc_moves_only_when_it_must(void **state)
{
    nalloc_arena *a = *state;
    char *p = nalloc_realloc(a, NULL, 0, 100, 0);
    assert_non_null(p);
    for (int i = 0; i < 100; i++)
        p[i] = (char)i;
    char *grown = nalloc_realloc(a, p, 100, 400, 0);
    assert_ptr_equal(grown, p); /* the last block: in place */
    char *other = nalloc_alloc(a, 10);
    char *moved = nalloc_realloc(a, p, 400, 800, 0);
    assert_non_null(moved);
    assert_true(moved > other);
    for (int i = 0; i < 100; i++)
        assert_int_equal(moved[i], (char)i);
    assert_null_with(NALLOC_ERR_NOMEM, nalloc_realloc(a, moved, 800, 2 * MiB, 0));
    assert_int_equal(moved[99], 99); /* a failed realloc leaves the block alone */
    assert_null_with(NALLOC_ERR_INVALID, nalloc_realloc(a, moved, 800, 0, 0));
    int local = 0;
    assert_null_with(NALLOC_ERR_INVALID, nalloc_realloc(a, &local, sizeof local, 64, 0));
    char *aligned = nalloc_realloc(a, moved, 800, 900, 4096);
    assert_int_equal((uintptr_t)aligned % 4096, 0);
    assert_int_equal(aligned[5], 5);
}

static void test_zeroed_allocations_read_zero_after_reuse(void **state)
{
    nalloc_arena *a = *state;
    unsigned char *p = nalloc_alloc(a, 4096);
    memset(p, 0xee, 4096);
    assert_int_equal(nalloc_reset(a), NALLOC_OK);
    unsigned char *z = nalloc_alloc_zeroed(a, 1024, 4, 0);
    assert_ptr_equal(z, p);
    for (size_t i = 0; i < 4096; i++)
        assert_int_equal(z[i], 0);
    /* Beyond the dirty extent the memory is fresh; still zero. */
    unsigned char *fresh = nalloc_alloc_zeroed(a, 8, 1000, 256);
    assert_int_equal((uintptr_t)fresh % 256, 0);
    for (size_t i = 0; i < 8000; i++)
        assert_int_equal(fresh[i], 0);
}

static void test_zeroed_allocation_straddling_the_dirty_extent_is_all_zero(void **state)
{
    nalloc_arena *a = *state;
    unsigned char *p = nalloc_alloc(a, 1000);
    memset(p, 0xff, 1000);
    assert_int_equal(nalloc_reset(a), NALLOC_OK);
    assert_non_null(nalloc_alloc_aligned(a, 500, 1));
    unsigned char *z = nalloc_alloc_zeroed(a, 1, 2000, 1); /* [500, 2500): dirty up to 1000 */
    for (size_t i = 0; i < 2000; i++)
        assert_int_equal(z[i], 0);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_rollback_releases_everything_after_the_mark),
        T(test_rollback_to_the_same_mark_works_every_time),
        T(test_nested_marks_roll_back_inner_first),
        T(test_rollback_refuses_a_mark_released_by_an_earlier_rollback),
        T(test_rollback_refuses_a_mark_from_before_a_reset),
        T(test_rollback_refuses_a_mark_of_another_arena),
        T(test_rollback_refuses_a_mark_ahead_of_the_offset),
        T(test_many_rollbacks_never_obey_a_stale_mark),
        T(test_reset_releases_everything),
        T(test_free_last_gives_back_only_the_most_recent_block),
        T(test_free_last_keeps_the_padding_in_front_of_a_block),
        T(test_free_last_refuses_pointers_outside_the_arena),
        T(test_resize_last_grows_and_shrinks_in_place),
        T(test_realloc_moves_only_when_it_must),
        T(test_zeroed_allocations_read_zero_after_reuse),
        T(test_zeroed_allocation_straddling_the_dirty_extent_is_all_zero),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
