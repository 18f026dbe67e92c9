/* tests/test_track.c - redzones and the statistics that account for them, in every build.
 *
 * With a memory checker compiled in (AddressSanitizer, or NALLOC_VALGRIND under Valgrind) every
 * block is followed by config.redzone bytes or more, rounded so the next block starts on a fresh
 * granule; without one the setting is ignored and the layout is exactly that of redzone 0. These
 * tests read which case holds from nalloc_stats (checkers, redzone) and check the layout, free_last,
 * resize_last, realloc, rollback and the statistics against the same arithmetic either way. The
 * checkers' reports themselves are tested in test_track_report.c.
 */
#include "testutil.h"

/* What the arena does with a redzone, read from its statistics. */
typedef struct layout {
    size_t redzone; /* bytes in force after each block (0 without a checker) */
    size_t granule; /* blocks start on and extents round to this many bytes */
} layout;

static layout layout_of(nalloc_arena *a)
{
    nalloc_stats s = stats_of(a);
    layout l = {s.redzone, (s.checkers & NALLOC_CHECKER_ASAN) ? 8 : 1};
    return l;
}

/* Bytes a block of `size` takes up to the next block's earliest start. */
static size_t extent(layout l, size_t size)
{
    if (l.redzone == 0)
        return size;
    return (size + l.redzone + l.granule - 1) / l.granule * l.granule;
}

static nalloc_arena *make_redzone_arena(size_t capacity, size_t redzone)
{
    nalloc_arena_config c;
    nalloc_arena_config_init(&c, NALLOC_KIND_SCRATCH, NALLOC_MEMORY_HOST, capacity);
    c.redzone = redzone;
    return make_arena_with(&c);
}

static void test_redzone_is_in_force_exactly_when_a_checker_watches(void **state)
{
    (void)state;
    nalloc_arena *a = make_redzone_arena(MiB, 24);
    nalloc_stats s = stats_of(a);
    assert_int_equal(s.redzone, s.checkers ? 24 : 0);
#if defined(__SANITIZE_ADDRESS__)
    assert_true(s.checkers & NALLOC_CHECKER_ASAN); /* the library is built like this test */
#endif
    assert_int_equal(s.redzone_bytes, 0);
    nalloc_arena_destroy(a);
}

static void test_blocks_are_separated_by_the_redzone(void **state)
{
    (void)state;
    nalloc_arena *a = make_redzone_arena(MiB, 16);
    layout l = layout_of(a);
    char *p = nalloc_alloc_aligned(a, 10, 1);
    char *q = nalloc_alloc_aligned(a, 10, 1);
    char *r = nalloc_alloc_aligned(a, 64, 64);
    assert_non_null(p);
    assert_ptr_equal(q, p + extent(l, 10));
    assert_true((size_t)(r - q) >= extent(l, 10));
    assert_int_equal((uintptr_t)r % 64, 0);
    nalloc_stats s = stats_of(a);
    /* Every byte in use is a block, alignment padding or a redzone. */
    assert_int_equal(s.used, 10 + 10 + 64 + s.padding + s.redzone_bytes);
    assert_int_equal(s.redzone_bytes, 2 * (extent(l, 10) - 10) + (extent(l, 64) - 64));
    nalloc_arena_destroy(a);
}

static void test_free_last_gives_back_the_block_and_its_redzone(void **state)
{
    (void)state;
    nalloc_arena *a = make_redzone_arena(MiB, 32);
    layout l = layout_of(a);
    char *p = nalloc_alloc(a, 100);
    char *q = nalloc_alloc(a, 100);
    assert_int_equal(nalloc_free_last(a, p, 100), NALLOC_ERR_STATE); /* not the last */
    assert_int_equal(nalloc_free_last(a, q, 100), NALLOC_OK);
    assert_int_equal(stats_of(a).used, (size_t)(q - p)); /* q's alignment padding stays */
    assert_int_equal(nalloc_free_last(a, p, 100), NALLOC_ERR_STATE); /* q's padding is in between */
    char *again = nalloc_alloc(a, 100);
    assert_ptr_equal(again, q);
    assert_int_equal(stats_of(a).used, (size_t)(q - p) + extent(l, 100));
    nalloc_arena_destroy(a);
}

static void test_resize_last_moves_the_redzone_with_the_block(void **state)
{
    (void)state;
    nalloc_arena *a = make_redzone_arena(MiB, 16);
    layout l = layout_of(a);
    char *p = nalloc_alloc_aligned(a, 100, 8);
    assert_int_equal(nalloc_resize_last(a, p, 100, 300), NALLOC_OK);
    assert_int_equal(stats_of(a).used, extent(l, 300));
    memset(p, 1, 300);
    assert_int_equal(nalloc_resize_last(a, p, 300, 40), NALLOC_OK);
    assert_int_equal(stats_of(a).used, extent(l, 40));
    char *q = nalloc_alloc_aligned(a, 8, 8);
    assert_ptr_equal(q, p + extent(l, 40));
    /* The arena has room for exactly the capacity, redzone included. */
    assert_int_equal(nalloc_resize_last(a, q, 8, MiB), NALLOC_ERR_NOMEM);
    assert_int_equal(nalloc_resize_last(a, q, 8, 8), NALLOC_OK);
    nalloc_arena_destroy(a);
}

static void test_realloc_in_place_keeps_the_redzone_after_the_block(void **state)
{
    (void)state;
    nalloc_arena *a = make_redzone_arena(MiB, 40);
    layout l = layout_of(a);
    char *p = nalloc_alloc(a, 50);
    memset(p, 7, 50);
    char *q = nalloc_realloc(a, p, 50, 500, 0);
    assert_ptr_equal(q, p);
    assert_int_equal(stats_of(a).used, extent(l, 500));
    char *r = nalloc_alloc(a, 1);
    char *moved = nalloc_realloc(a, q, 500, 600, 0); /* not the last block: copied */
    assert_non_null(moved);
    assert_true(moved >= r + extent(l, 1));
    assert_int_equal(moved[49], 7);
    nalloc_arena_destroy(a);
}

static void test_rollback_and_reset_release_redzones_too(void **state)
{
    (void)state;
    nalloc_arena *a = make_redzone_arena(MiB, 64);
    assert_non_null(nalloc_alloc(a, 1000));
    nalloc_mark m = nalloc_mark_get(a);
    size_t at_mark = stats_of(a).used;
    for (int i = 0; i < 10; i++)
        assert_non_null(nalloc_alloc(a, 333));
    assert_int_equal(nalloc_rollback(a, m), NALLOC_OK);
    assert_int_equal(stats_of(a).used, at_mark);
    assert_int_equal(nalloc_reset(a), NALLOC_OK);
    assert_int_equal(stats_of(a).used, 0);
    layout l = layout_of(a);
    assert_int_equal(stats_of(a).redzone_bytes,
                     (extent(l, 1000) - 1000) + 10 * (extent(l, 333) - 333)); /* since creation */
    nalloc_arena_destroy(a);
}

static void test_a_redzone_that_cannot_fit_fails_the_request_cleanly(void **state)
{
    (void)state;
    nalloc_arena *a = make_redzone_arena(4096, SIZE_MAX - 8);
    bool watched = layout_of(a).redzone != 0;
    char *p = nalloc_alloc(a, 16);
    if (watched) {
        assert_null(p);
        assert_int_equal(nalloc_last_error(), NALLOC_ERR_NOMEM);
    } else {
        assert_non_null(p);
    }
    nalloc_stats s = stats_of(a);
    assert_int_equal(s.failures, watched ? 1 : 0);
    assert_int_equal(s.used, watched ? 0 : 16);
    nalloc_arena_destroy(a);

    a = make_redzone_arena(4096, 100);
    watched = layout_of(a).redzone != 0;
    assert_null_with(NALLOC_ERR_NOMEM, nalloc_alloc(a, SIZE_MAX - 50));
    /* Room for 4000 bytes but not for their redzone as well. */
    p = nalloc_alloc_aligned(a, 4000, 1);
    if (watched) {
        assert_null(p);
        assert_non_null(nalloc_alloc_aligned(a, 3900, 1)); /* the failures consumed nothing */
    } else {
        assert_non_null(p);
    }
    nalloc_arena_destroy(a);
}

static void test_zeroed_allocations_with_redzones_read_zero_after_reuse(void **state)
{
    (void)state;
    nalloc_arena *a = make_redzone_arena(MiB, 16);
    unsigned char *p = nalloc_alloc(a, 4096);
    memset(p, 0xee, 4096);
    assert_int_equal(nalloc_reset(a), NALLOC_OK);
    unsigned char *z = nalloc_alloc_zeroed(a, 64, 64, 0);
    assert_ptr_equal(z, p);
    for (size_t i = 0; i < 4096; i++)
        assert_int_equal(z[i], 0);
    nalloc_arena_destroy(a);
}

static void test_an_equal_share_split_leaves_room_for_the_redzone(void **state)
{
    (void)state;
    nalloc_arena *p = make_redzone_arena(4 * MiB, 64);
    assert_non_null(nalloc_alloc(p, 100));
    nalloc_arena *lanes[3];
    assert_int_equal(nalloc_arena_split(p, 3, 0, lanes), NALLOC_OK);
    for (int i = 0; i < 3; i++) {
        assert_non_null(nalloc_alloc(lanes[i], 1000));
        assert_int_equal(nalloc_arena_destroy(lanes[i]), NALLOC_OK);
    }
    nalloc_arena_destroy(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_redzone_is_in_force_exactly_when_a_checker_watches),
        cmocka_unit_test(test_blocks_are_separated_by_the_redzone),
        cmocka_unit_test(test_free_last_gives_back_the_block_and_its_redzone),
        cmocka_unit_test(test_resize_last_moves_the_redzone_with_the_block),
        cmocka_unit_test(test_realloc_in_place_keeps_the_redzone_after_the_block),
        cmocka_unit_test(test_rollback_and_reset_release_redzones_too),
        cmocka_unit_test(test_a_redzone_that_cannot_fit_fails_the_request_cleanly),
        cmocka_unit_test(test_zeroed_allocations_with_redzones_read_zero_after_reuse),
        cmocka_unit_test(test_an_equal_share_split_leaves_room_for_the_redzone),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
