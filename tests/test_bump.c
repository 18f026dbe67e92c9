/* tests/test_bump.c - the bump core (include/nalloc/bump.h) on its own: checked arithmetic at
 * the edges of the address space (with nalloc/detail/shim.h's rounding and atomics, which it
 * includes), CAS reservation, fetch-add reservation. The same functions run
 * on the device; tests/test_bump_cxx.cpp and tests/test_bump_cuda.cu compile this header as C++
 * and under nvcc and run a subset there. */
#include "testutil.h"

#include <nalloc/bump.h>

static void test_pow2_accepts_exactly_the_powers_of_two(void **state)
{
    (void)state;
    assert_false(nalloc_is_pow2(0));
    for (unsigned i = 0; i < 64; i++) {
        size_t p = (size_t)1 << i;
        assert_true(nalloc_is_pow2(p));
        if (i > 1)
            assert_false(nalloc_is_pow2(p + 1));
        if (i > 0)
            assert_false(nalloc_is_pow2(p | 1));
    }
    assert_false(nalloc_is_pow2(SIZE_MAX));
}

static void test_round_up_refuses_to_wrap(void **state)
{
    (void)state;
    size_t out = 0;
    assert_true(nalloc_detail_round_up(0, 64, &out));
    assert_int_equal(out, 0);
    assert_true(nalloc_detail_round_up(1, 64, &out));
    assert_int_equal(out, 64);
    assert_true(nalloc_detail_round_up(SIZE_MAX - 63, 64, &out));
    assert_int_equal(out, SIZE_MAX - 63);
    assert_false(nalloc_detail_round_up(SIZE_MAX - 62, 64, &out));
    assert_false(nalloc_detail_round_up(SIZE_MAX, 2, &out));
    assert_true(nalloc_detail_round_up(SIZE_MAX, 1, &out));
}

static void test_fit_places_blocks_aligned_and_in_bounds(void **state)
{
    (void)state;
    const uintptr_t bases[] = {0x1000, 0x1001, 0x10000 - 3, (uintptr_t)1 << 40};
    for (unsigned b = 0; b < sizeof bases / sizeof bases[0]; b++) {
        for (size_t align = 1; align <= 4096; align <<= 1) {
            for (size_t offset = 0; offset < 300; offset += 7) {
                for (size_t size = 1; size < 300; size += 13) {
                    size_t begin, end;
                    bool ok = nalloc_bump_fit(bases[b], 1000, offset, size, align, &begin, &end);
                    size_t pad = (size_t)(-(bases[b] + offset) & (align - 1));
                    bool expect = offset + pad + size <= 1000;
                    assert_int_equal(ok, expect);
                    if (ok) {
                        assert_int_equal((bases[b] + begin) % align, 0);
                        assert_true(begin >= offset && begin - offset < align);
                        assert_int_equal(end, begin + size);
                        assert_true(end <= 1000);
                    }
                }
            }
        }
    }
}

static void test_fit_never_wraps_at_the_top_of_the_address_space(void **state)
{
    (void)state;
    size_t begin, end;
    uintptr_t base = UINTPTR_MAX - 4095; /* a region ending exactly at the top */
    assert_true(nalloc_bump_fit(base, 4095, 0, 4095, 1, &begin, &end));
    assert_false(nalloc_bump_fit(base, 4095, 0, 4096, 1, &begin, &end));
    assert_false(nalloc_bump_fit(base, 4095, 0, SIZE_MAX, 1, &begin, &end));
    assert_false(nalloc_bump_fit(base, 4095, 1, SIZE_MAX, 1, &begin, &end));
    /* Aligning up from near the top would wrap to 0: must fail, not place a block at 0. */
    assert_false(nalloc_bump_fit(base, 4095, 1, 1, (size_t)1 << 63, &begin, &end));
    assert_false(nalloc_bump_fit(base, 4095, 1, 1, 8192, &begin, &end));
    for (unsigned i = 0; i < 64; i++)
        assert_false(nalloc_bump_fit(0x1000, 4096, 0, SIZE_MAX, (size_t)1 << i, &begin, &end));
}

static void test_fit_rejects_bad_alignment_and_overfull_offsets(void **state)
{
    (void)state;
    size_t begin, end;
    assert_false(nalloc_bump_fit(0x1000, 4096, 0, 1, 0, &begin, &end));
    assert_false(nalloc_bump_fit(0x1000, 4096, 0, 1, 3, &begin, &end));
    assert_false(nalloc_bump_fit(0x1000, 4096, 0, 1, SIZE_MAX, &begin, &end));
    assert_false(nalloc_bump_fit(0x1000, 4096, 4097, 1, 1, &begin, &end));
    assert_false(nalloc_bump_fit(0x1000, 4096, SIZE_MAX, 1, 1, &begin, &end));
    assert_true(nalloc_bump_fit(0x1000, 4096, 4096, 0, 1, &begin, &end)); /* empty fits at end */
}

static void test_init_refuses_a_region_that_wraps(void **state)
{
    (void)state;
    nalloc_bump b = {1, 2, 3};
    assert_false(nalloc_bump_init(&b, UINTPTR_MAX - 10, 11));
    assert_int_equal(b.base, 1); /* untouched */
    assert_true(nalloc_bump_init(&b, UINTPTR_MAX - 10, 10));
    assert_int_equal(b.offset, 0);
}

static void test_reserve_consumes_nothing_when_it_fails(void **state)
{
    (void)state;
    nalloc_bump b;
    assert_true(nalloc_bump_init(&b, 0x10000, 1024));
    size_t begin, pad;
    assert_true(nalloc_bump_reserve(&b, 100, 64, &begin, &pad));
    assert_int_equal(begin, 0);
    assert_int_equal(pad, 0);
    assert_true(nalloc_bump_reserve(&b, 10, 64, &begin, &pad));
    assert_int_equal(begin, 128);
    assert_int_equal(pad, 28);
    assert_int_equal(b.offset, 138);
    assert_false(nalloc_bump_reserve(&b, 1024, 1, &begin, &pad));
    assert_false(nalloc_bump_reserve(&b, SIZE_MAX, 1, &begin, &pad));
    assert_false(nalloc_bump_reserve(&b, 1, (size_t)1 << 63, &begin, &pad));
    assert_false(nalloc_bump_reserve(&b, 1, 7, &begin, &pad));
    assert_int_equal(b.offset, 138);
    assert_true(nalloc_bump_reserve(&b, 1024 - 138, 1, &begin, &pad)); /* exactly the rest */
    assert_int_equal(b.offset, 1024);
    assert_false(nalloc_bump_reserve(&b, 1, 1, &begin, &pad));
}

static void test_reserve_add_rounds_to_the_granule_and_refuses_what_cannot_fit(void **state)
{
    (void)state;
    size_t counter = 0, begin = 0;
    assert_true(nalloc_bump_reserve_add(&counter, 1024, 1, 256, &begin));
    assert_int_equal(begin, 0);
    assert_true(nalloc_bump_reserve_add(&counter, 1024, 257, 256, &begin));
    assert_int_equal(begin, 256);
    assert_int_equal(counter, 768);
    /* Larger than the whole capacity: refused without touching the counter. */
    assert_false(nalloc_bump_reserve_add(&counter, 1024, 1025, 256, &begin));
    assert_false(nalloc_bump_reserve_add(&counter, 1024, SIZE_MAX, 256, &begin));
    assert_false(nalloc_bump_reserve_add(&counter, 1024, 1, 3, &begin));
    assert_int_equal(counter, 768);
    /* Cannot fit given the counter: refused without consuming, so a smaller request still fits. */
    assert_false(nalloc_bump_reserve_add(&counter, 1024, 512, 256, &begin));
    assert_int_equal(counter, 768);
    assert_true(nalloc_bump_reserve_add(&counter, 1024, 200, 256, &begin));
    assert_int_equal(begin, 768);
    assert_false(nalloc_bump_reserve_add(&counter, 1024, 1, 256, &begin));
    assert_int_equal(counter, 1024);
    /* A counter already past the capacity (a request lost a race) refuses everything. */
    counter = 1280;
    assert_false(nalloc_bump_reserve_add(&counter, 1024, 1, 256, &begin));
    assert_int_equal(counter, 1280);
}

static void test_atomic_max_only_raises(void **state)
{
    (void)state;
    size_t v = 10;
    nalloc_detail_atomic_max(&v, 5);
    assert_int_equal(v, 10);
    nalloc_detail_atomic_max(&v, 11);
    assert_int_equal(v, 11);
    nalloc_detail_atomic_max(&v, SIZE_MAX);
    assert_int_equal(v, SIZE_MAX);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pow2_accepts_exactly_the_powers_of_two),
        cmocka_unit_test(test_round_up_refuses_to_wrap),
        cmocka_unit_test(test_fit_places_blocks_aligned_and_in_bounds),
        cmocka_unit_test(test_fit_never_wraps_at_the_top_of_the_address_space),
        cmocka_unit_test(test_fit_rejects_bad_alignment_and_overfull_offsets),
        cmocka_unit_test(test_init_refuses_a_region_that_wraps),
        cmocka_unit_test(test_reserve_consumes_nothing_when_it_fails),
        cmocka_unit_test(test_reserve_add_rounds_to_the_granule_and_refuses_what_cannot_fit),
        cmocka_unit_test(test_atomic_max_only_raises),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
