/* tests/test_alignment.c - the alignment policy: 64 B by default, 4 KiB from the large threshold
 * up, any power of two on request (up to 1 GiB and beyond, space permitting), huge-page-aligned
 * bases for arenas of 2 MiB or more, and configured thresholds honoured. */
#include "testutil.h"

static bool aligned(const void *p, size_t align)
{
    return ((uintptr_t)p & (align - 1)) == 0;
}

static void test_small_requests_are_64_byte_aligned(void **state)
{
    (void)state;
    nalloc_arena *a = make_arena(NALLOC_KIND_SCRATCH, 64 * MiB);
    uint64_t rng = 1;
    for (int i = 0; i < 5000; i++) {
        size_t size = 1 + (size_t)(test_rand(&rng) % (MiB - 1)); /* below the 1 MiB threshold */
        if (i < 200)
            size = (size_t)i + 1; /* every small size, too */
        void *p = nalloc_alloc(a, size);
        if (p == NULL) {
            assert_int_equal(nalloc_reset(a), NALLOC_OK);
            continue;
        }
        assert_true(aligned(p, 64));
    }
    nalloc_arena_destroy(a);
}

static void test_large_requests_are_4k_aligned_from_the_threshold_up(void **state)
{
    (void)state;
    nalloc_arena *a = make_arena(NALLOC_KIND_POLY, 256 * MiB);
    const size_t sizes[] = {MiB - 1, MiB, MiB + 1, 3 * MiB + 17, 8 * MiB, 20 * MiB + 64};
    for (unsigned i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        assert_non_null(nalloc_alloc(a, 1)); /* knock the offset off any page boundary */
        void *p = nalloc_alloc(a, sizes[i]);
        assert_non_null(p);
        if (sizes[i] >= MiB)
            assert_true(aligned(p, 4096));
        else
            assert_true(aligned(p, 64));
    }
    nalloc_arena_destroy(a);
}

static void test_explicit_alignment_honours_every_power_of_two(void **state)
{
    (void)state;
    /* Room for a 1 GiB-aligned block wherever the base lands: address space only. */
    nalloc_arena_config c;
    nalloc_arena_config_init(&c, NALLOC_KIND_SCRATCH, NALLOC_MEMORY_HOST, 3 * GiB);
    c.flags |= NALLOC_FLAG_NORESERVE;
    nalloc_arena *a = make_arena_with(&c);
    for (unsigned shift = 0; shift <= 30; shift++) {
        size_t align = (size_t)1 << shift;
        assert_non_null(nalloc_alloc_aligned(a, 1, 1)); /* misalign the offset */
        void *p = nalloc_alloc_aligned(a, 24, align);
        assert_non_null(p);
        assert_true(aligned(p, align));
        nalloc_stats s = stats_of(a);
        assert_true(s.used <= s.capacity);
        if (shift >= 24)
            /* keep the big alignments from exhausting the arena */
            assert_int_equal(nalloc_reset(a), NALLOC_OK);
    }
    nalloc_arena_destroy(a);
}

static void test_explicit_alignment_may_be_smaller_than_the_default(void **state)
{
    (void)state;
    nalloc_arena *a = make_arena(NALLOC_KIND_SCRATCH, MiB);
    char *p = nalloc_alloc_aligned(a, 3, 1);
    char *q = nalloc_alloc_aligned(a, 3, 1);
    char *r = nalloc_alloc_aligned(a, 8, 8);
    if (stats_of(a).checkers & NALLOC_CHECKER_ASAN) { /* blocks start on ASan granules (track.h) */
        assert_ptr_equal(q, p + 8);
        assert_ptr_equal(r, p + 16);
    } else {
        assert_ptr_equal(q, p + 3); /* packed: an explicit alignment is what is used */
        assert_ptr_equal(r, p + 8);
    }
    nalloc_arena_destroy(a);
}

static void test_configured_threshold_and_alignments_are_used(void **state)
{
    (void)state;
    nalloc_arena_config c;
    nalloc_arena_config_init(&c, NALLOC_KIND_POLY, NALLOC_MEMORY_HOST, 16 * MiB);
    c.default_align = 128;
    c.large_threshold = 1000;
    c.large_align = 64 * KiB;
    nalloc_arena *a = make_arena_with(&c);
    for (size_t size = 1; size < 3000; size += 37) {
        assert_non_null(nalloc_alloc_aligned(a, 1, 1));
        void *p = nalloc_alloc(a, size);
        assert_non_null(p);
        assert_true(aligned(p, size >= 1000 ? 64 * KiB : 128));
        if (size >= 1000)
            assert_int_equal(nalloc_reset(a), NALLOC_OK);
    }
    nalloc_arena_destroy(a);
}

static void test_arenas_of_2_mib_or_more_get_a_huge_page_aligned_base(void **state)
{
    (void)state;
    const size_t capacities[] = {2 * MiB, 2 * MiB + 4096, 5 * MiB, 64 * MiB};
    for (unsigned i = 0; i < sizeof capacities / sizeof capacities[0]; i++) {
        nalloc_arena *a = make_arena(NALLOC_KIND_SCRATCH, capacities[i]);
        void *p = nalloc_alloc(a, 1);
        assert_true(aligned(p, 2 * MiB));
        assert_int_equal(stats_of(a).base, (uintptr_t)p);
        nalloc_arena_destroy(a);
    }
    nalloc_arena *small = make_arena(NALLOC_KIND_SCRATCH, 64 * KiB);
    assert_true(aligned(nalloc_alloc(small, 1), 4096));
    nalloc_arena_destroy(small);
}

static void test_poly_arenas_ask_for_huge_pages_by_default(void **state)
{
    (void)state;
    nalloc_arena_config c;
    nalloc_arena_config_init(&c, NALLOC_KIND_POLY, NALLOC_MEMORY_HOST, 8 * MiB);
    assert_true(c.flags & NALLOC_FLAG_HUGEPAGES);
    nalloc_arena *a = make_arena_with(&c);
    nalloc_stats s = stats_of(a);
    assert_true(s.requested & NALLOC_FLAG_HUGEPAGES);
    /* In force unless the kernel has THP compiled out: then it must be reported missing. */
    assert_true(s.huge_pages || (s.missing & NALLOC_FLAG_HUGEPAGES));
    nalloc_arena_destroy(a);
    nalloc_arena_config_init(&c, NALLOC_KIND_SCRATCH, NALLOC_MEMORY_HOST, 8 * MiB);
    assert_false(c.flags & NALLOC_FLAG_HUGEPAGES);
}

static void test_padding_is_exactly_the_bytes_skipped(void **state)
{
    (void)state;
    nalloc_arena *a = make_arena(NALLOC_KIND_SCRATCH, MiB);
    size_t requested = 0;
    uint64_t rng = 7;
    for (int i = 0; i < 500; i++) {
        size_t size = 1 + (size_t)(test_rand(&rng) % 700);
        size_t align = (size_t)1 << (test_rand(&rng) % 10);
        if (nalloc_alloc_aligned(a, size, align))
            requested += size;
    }
    nalloc_stats s = stats_of(a);
    assert_int_equal(s.used, requested + s.padding);
    nalloc_arena_destroy(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_small_requests_are_64_byte_aligned),
        cmocka_unit_test(test_large_requests_are_4k_aligned_from_the_threshold_up),
        cmocka_unit_test(test_explicit_alignment_honours_every_power_of_two),
        cmocka_unit_test(test_explicit_alignment_may_be_smaller_than_the_default),
        cmocka_unit_test(test_configured_threshold_and_alignments_are_used),
        cmocka_unit_test(test_arenas_of_2_mib_or_more_get_a_huge_page_aligned_base),
        cmocka_unit_test(test_poly_arenas_ask_for_huge_pages_by_default),
        cmocka_unit_test(test_padding_is_exactly_the_bytes_skipped),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
