/* tests/test_device_math.c - the device paths' arithmetic, run on the host.
 *
 * nalloc_window_alloc_warp (nalloc/device.cuh) is ballots, one atomic, one broadcast, and the
 * NALLOC_DETAIL_HD arithmetic of nalloc/detail/warp.h. Here a warp is simulated thread by thread:
 * the ballots are computed from the threads' requests, and every thread then runs the same
 * nalloc/detail/warp.h functions the device runs. The result is compared with a sequential model
 * (threads served in the order of their index in the warp, the counter advanced by the whole
 * warp's total) for every mask shape that matters: full, a single thread, alternating, random,
 * overflowing in the middle of the warp, zero-size and oversized requests.
 *
 * The wipe kernel (cuda/wipe.cu) is na_wipe_thread from cuda/wipe_plan.h run by every thread of
 * a grid; here every thread of simulated grids runs it over a host buffer, for every start
 * alignment 0..15 and lengths 0..400, and exactly the range must come out zeroed.
 *
 * Built with or without CUDA: nothing here needs the toolkit.
 */
#include "nalloc/detail/warp.h"
#include "wipe_plan.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define WARP NALLOC_DETAIL_WARP_SIZE
#define FAILED SIZE_MAX /* a thread's offset when it got NULL */

/* ---------------------------------------------------------------------------------------------
 * A simulated warp
 * ------------------------------------------------------------------------------------------- */

/* What nalloc_window_alloc_warp does, thread by thread, for the threads in `mask`: offsets[t] is
 * the block's offset in the window, or FAILED. Threads outside the mask are left untouched. */
static void warp_alloc(size_t *counter, size_t capacity, size_t granule, unsigned mask,
                       const size_t size[WARP], size_t offsets[WARP])
{
    size_t granules[WARP];
    nalloc_detail_warp_sum sum[WARP];
    for (unsigned t = 0; t < WARP; t++) {
        granules[t] = nalloc_detail_window_granules(size[t], granule, capacity);
        sum[t] = (nalloc_detail_warp_sum){0, 0};
    }
    /* The ballot loop: __any_sync, then __ballot_sync, over the active threads only. */
    for (unsigned bit = 0; bit < 8 * sizeof(size_t); bit++) {
        unsigned any = 0, plane = 0;
        for (unsigned t = 0; t < WARP; t++) {
            if (!(mask & (1u << t)))
                continue;
            any |= (granules[t] >> bit) != 0;
            plane |= (unsigned)((granules[t] >> bit) & 1) << t;
        }
        if (!any)
            break;
        for (unsigned t = 0; t < WARP; t++)
            if (mask & (1u << t))
                nalloc_detail_warp_sum_plane(&sum[t], plane, bit, t);
    }
    unsigned leader = nalloc_detail_warp_leader(mask);
    size_t old = nalloc_detail_warp_reserve(counter, capacity, sum[leader].total * granule);
    for (unsigned t = 0; t < WARP; t++) {
        if (!(mask & (1u << t)))
            continue;
        assert_int_equal(sum[t].total, sum[leader].total); /* every thread agrees */
        size_t prefix = sum[t].prefix * granule, bytes = granules[t] * granule;
        offsets[t] = nalloc_detail_warp_fits(old, prefix, bytes, capacity) ? old + prefix : FAILED;
    }
}

/* The sequential model: active threads in index order, each served if its rounded request still
 * fits, the counter advanced by the rounded requests of every thread that could ever fit. */
static void model_alloc(size_t *counter, size_t capacity, size_t granule, unsigned mask,
                        const size_t size[WARP], size_t offsets[WARP])
{
    size_t start = *counter, at = start;
    for (unsigned t = 0; t < WARP; t++) {
        if (!(mask & (1u << t)))
            continue;
        size_t rounded = (size[t] + granule - 1) / granule * granule;
        bool valid = size[t] != 0 && size[t] <= capacity && rounded <= capacity;
        offsets[t] = FAILED;
        if (!valid)
            continue;
        if (start < capacity && at + rounded <= capacity)
            offsets[t] = at;
        at += rounded;
    }
    if (start < capacity)
        *counter = at;
}

static void check_against_model(size_t counter, size_t capacity, size_t granule, unsigned mask,
                                const size_t size[WARP])
{
    size_t got[WARP], want[WARP], c_got = counter, c_want = counter;
    for (unsigned t = 0; t < WARP; t++)
        got[t] = want[t] = 12345; /* untouched marker for inactive threads */
    warp_alloc(&c_got, capacity, granule, mask, size, got);
    model_alloc(&c_want, capacity, granule, mask, size, want);
    assert_int_equal(c_got, c_want);
    for (unsigned t = 0; t < WARP; t++) {
        assert_int_equal(got[t], want[t]);
        if ((mask & (1u << t)) && got[t] != FAILED) {
            assert_int_equal(got[t] % granule, 0);
            assert_true(got[t] + size[t] <= capacity);
        }
    }
}

static uint64_t rng_state = 0x243f6a8885a308d3u;
static uint64_t rng(void) /* splitmix64: reproducible */
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

/* ---------------------------------------------------------------------------------------------
 * Warp aggregation
 * ------------------------------------------------------------------------------------------- */

static void test_warp_helpers_match_their_definitions(void **state)
{
    (void)state;
    assert_int_equal(nalloc_detail_warp_below(0), 0);
    assert_int_equal(nalloc_detail_warp_below(5), 0x1f);
    assert_int_equal(nalloc_detail_warp_below(31), 0x7fffffffu);
    assert_int_equal(nalloc_detail_warp_leader(0x80000000u), 31);
    assert_int_equal(nalloc_detail_warp_leader(0x00010100u), 8);
    assert_int_equal(nalloc_detail_warp_rank(0xffffffffu, 17), 17);
    assert_int_equal(nalloc_detail_warp_rank(0xaaaaaaaau, 31), 15);
    assert_int_equal(nalloc_detail_warp_rank(0x00010100u, 16), 1);
    assert_int_equal(nalloc_detail_window_granules(0, 16, 1024), 0);
    assert_int_equal(nalloc_detail_window_granules(1, 16, 1024), 1);
    assert_int_equal(nalloc_detail_window_granules(17, 16, 1024), 2);
    assert_int_equal(nalloc_detail_window_granules(1024, 16, 1024), 64);
    assert_int_equal(nalloc_detail_window_granules(1025, 16, 1024), 0); /* larger than the window */
    assert_int_equal(nalloc_detail_window_granules(SIZE_MAX, 16, SIZE_MAX), 0); /* rounding wraps */
}

static void test_full_warp_of_equal_requests_gets_consecutive_blocks(void **state)
{
    (void)state;
    size_t size[WARP], off[WARP], counter = 0;
    for (unsigned t = 0; t < WARP; t++)
        size[t] = 48;
    warp_alloc(&counter, 1 << 20, 16, 0xffffffffu, size, off);
    for (unsigned t = 0; t < WARP; t++)
        assert_int_equal(off[t], 48 * t);
    assert_int_equal(counter, 48 * WARP);
}

static void test_full_warp_of_mixed_requests_matches_the_model(void **state)
{
    (void)state;
    size_t size[WARP];
    for (unsigned t = 0; t < WARP; t++)
        size[t] = 1 + t * 37 % 300;
    check_against_model(0, 1 << 20, 16, 0xffffffffu, size);
    check_against_model(4096, 1 << 20, 256, 0xffffffffu, size);
}

static void test_single_thread_is_its_own_leader(void **state)
{
    (void)state;
    for (unsigned t = 0; t < WARP; t++) {
        size_t size[WARP] = {0}, off[WARP], counter = 160;
        size[t] = 100;
        warp_alloc(&counter, 4096, 16, 1u << t, size, off);
        assert_int_equal(off[t], 160);
        assert_int_equal(counter, 160 + 112);
        check_against_model(160, 4096, 16, 1u << t, size);
    }
}

static void test_alternating_threads_skip_the_inactive_ones(void **state)
{
    (void)state;
    size_t size[WARP], off[WARP];
    for (unsigned t = 0; t < WARP; t++)
        size[t] = 16 * (t + 1); /* inactive threads ask too: a ballot must not see them */
    for (unsigned parity = 0; parity < 2; parity++) {
        unsigned mask = parity ? 0xaaaaaaaau : 0x55555555u;
        size_t counter = 0, expect = 0;
        warp_alloc(&counter, 1 << 20, 16, mask, size, off);
        for (unsigned t = parity; t < WARP; t += 2) {
            assert_int_equal(off[t], expect);
            expect += size[t];
        }
        assert_int_equal(counter, expect);
        check_against_model(0, 1 << 20, 16, mask, size);
    }
}

static void test_random_masks_and_sizes_match_the_model(void **state)
{
    (void)state;
    static const size_t granules[] = {16, 32, 256, 4096};
    for (int round = 0; round < 20000; round++) {
        unsigned mask = (unsigned)rng();
        if (mask == 0)
            mask = 1;
        if (round % 5 == 0)
            mask &= (unsigned)rng(); /* sparser masks */
        if (mask == 0)
            mask = 1u << (rng() % WARP);
        size_t granule = granules[rng() % 4];
        size_t capacity = 1 + rng() % (1u << 16);
        size_t size[WARP];
        for (unsigned t = 0; t < WARP; t++) {
            switch (rng() % 8) {
            case 0:
                size[t] = 0;
                break;
            case 1:
                size[t] = capacity + rng() % 64; /* may not fit even in an empty window */
                break;
            case 2:
                size[t] = SIZE_MAX - rng() % 64; /* rounding wraps */
                break;
            default:
                size[t] = 1 + rng() % 2048;
                break;
            }
        }
        /* A multiple of the granule, as every counter is; sometimes already past the end. */
        size_t counter = rng() % (capacity + capacity / 4 + 1) / granule * granule;
        check_against_model(counter, capacity, granule, mask, size);
    }
}

static void test_window_overflows_in_the_middle_of_a_warp(void **state)
{
    (void)state;
    size_t size[WARP], off[WARP], counter = 0;
    for (unsigned t = 0; t < WARP; t++)
        size[t] = 16;
    warp_alloc(&counter, 100, 16, 0xffffffffu, size, off);
    for (unsigned t = 0; t < 6; t++)
        assert_int_equal(off[t], 16 * t); /* 96 bytes fit in 100 */
    for (unsigned t = 6; t < WARP; t++)
        assert_int_equal(off[t], FAILED);
    assert_int_equal(counter, 16 * WARP); /* the whole warp's total: past the capacity */

    /* Sticky: the next warp finds the window full and does not touch the counter. */
    size_t again[WARP];
    warp_alloc(&counter, 100, 16, 0xffffffffu, size, again);
    for (unsigned t = 0; t < WARP; t++)
        assert_int_equal(again[t], FAILED);
    assert_int_equal(counter, 16 * WARP);
    /* And the plain path agrees. */
    size_t begin;
    assert_false(nalloc_bump_reserve_add(&counter, 100, 1, 16, &begin));
}

static void test_zero_size_requests_take_nothing_and_get_nothing(void **state)
{
    (void)state;
    size_t size[WARP], off[WARP], counter = 0;
    for (unsigned t = 0; t < WARP; t++)
        size[t] = t % 3 == 0 ? 0 : 32;
    warp_alloc(&counter, 4096, 16, 0xffffffffu, size, off);
    size_t expect = 0;
    for (unsigned t = 0; t < WARP; t++) {
        if (t % 3 == 0) {
            assert_int_equal(off[t], FAILED);
        } else {
            assert_int_equal(off[t], expect);
            expect += 32;
        }
    }
    assert_int_equal(counter, expect);

    size_t none[WARP] = {0}, c = 64;
    warp_alloc(&c, 4096, 16, 0xffffffffu, none, off);
    assert_int_equal(c, 64); /* nothing asked: no atomic */
}

static void test_oversized_request_leaves_the_room_to_the_others(void **state)
{
    (void)state;
    size_t size[WARP], off[WARP], counter = 0;
    for (unsigned t = 0; t < WARP; t++)
        size[t] = 16;
    size[3] = 4097; /* more than the whole window */
    warp_alloc(&counter, 4096, 16, 0xffffffffu, size, off);
    assert_int_equal(off[3], FAILED);
    for (unsigned t = 0; t < WARP; t++)
        if (t != 3)
            assert_int_equal(off[t], 16 * (t < 3 ? t : t - 1));
    assert_int_equal(counter, 16 * (WARP - 1));
}

static void test_full_window_is_not_bumped_further(void **state)
{
    (void)state;
    size_t size[WARP], off[WARP];
    for (unsigned t = 0; t < WARP; t++)
        size[t] = 16;
    size_t counter = 4096;
    warp_alloc(&counter, 4096, 16, 0xffffffffu, size, off);
    assert_int_equal(counter, 4096);
    assert_int_equal(nalloc_detail_warp_reserve(&counter, 4096, 16), NALLOC_DETAIL_WARP_NO_ROOM);
    assert_int_equal(nalloc_detail_warp_reserve(&counter, 4096, 0), NALLOC_DETAIL_WARP_NO_ROOM);
}

static void test_fit_check_never_wraps(void **state)
{
    (void)state;
    assert_false(nalloc_detail_warp_fits(NALLOC_DETAIL_WARP_NO_ROOM, 0, 16, SIZE_MAX - 1));
    assert_false(nalloc_detail_warp_fits(16, SIZE_MAX - 8, 16, SIZE_MAX - 1));
    assert_false(nalloc_detail_warp_fits(SIZE_MAX - 32, 16, 32, SIZE_MAX - 1));
    assert_false(nalloc_detail_warp_fits(0, 0, 0, 4096)); /* nothing asked */
    /* A leader that read the counter below the end but lost the race to another warp gets an
     * old value past the end: nothing fits, whatever the prefix. */
    for (size_t past = 1; past <= 4096; past *= 2)
        for (size_t prefix = 0; prefix <= 4096; prefix += 16)
            assert_false(nalloc_detail_warp_fits(4096 + past, prefix, 16, 4096));
    assert_true(nalloc_detail_warp_fits(4000, 80, 16, 4096));
    assert_false(nalloc_detail_warp_fits(4000, 80, 32, 4096));
}

/* The plain path (nalloc_window_alloc) is as sticky as the warp path: a request refused for lack
 * of room, though it would fit an empty window, fails every later request until the reset, even
 * the small ones that would still fit in what is left. */
static void test_a_refused_plain_request_leaves_the_window_full(void **state)
{
    (void)state;
    size_t counter = 4096 - 32, begin;
    assert_false(nalloc_detail_window_reserve(&counter, 4096, 48, 16, &begin)); /* 32 bytes left */
    assert_true(counter > 4096);
    size_t after = counter;
    assert_false(nalloc_detail_window_reserve(&counter, 4096, 16, 16, &begin)); /* would have fit */
    assert_false(nalloc_detail_window_reserve(&counter, 4096, 1, 16, &begin));
    assert_int_equal(counter, after); /* a full window is not bumped further */
    size_t size[WARP], off[WARP];
    for (unsigned t = 0; t < WARP; t++)
        size[t] = 16;
    warp_alloc(&counter, 4096, 16, 0xffffffffu, size, off);
    for (unsigned t = 0; t < WARP; t++)
        assert_int_equal(off[t], FAILED);

    /* What still fits is served, up to the last byte. */
    counter = 4096 - 32;
    assert_true(nalloc_detail_window_reserve(&counter, 4096, 17, 16, &begin));
    assert_int_equal(begin, 4096 - 32);
    assert_int_equal(counter, 4096);
    assert_false(nalloc_detail_window_reserve(&counter, 4096, 1, 16, &begin));
    assert_true(counter > 4096);
}

/* A request for nothing, or for more than the whole window, fails alone: it leaves the room to
 * the others (so does the warp path: test_oversized_request_leaves_the_room_to_the_others). */
static void test_zero_and_oversized_plain_requests_fail_alone(void **state)
{
    (void)state;
    size_t counter = 64, begin;
    assert_false(nalloc_detail_window_reserve(&counter, 4096, 0, 16, &begin));
    assert_false(nalloc_detail_window_reserve(&counter, 4096, 4097, 16, &begin));
    assert_false(nalloc_detail_window_reserve(&counter, 4096, SIZE_MAX, 16, &begin));
    assert_int_equal(counter, 64);
    assert_true(nalloc_detail_window_reserve(&counter, 4096, 100, 16, &begin));
    assert_int_equal(begin, 64);
    assert_int_equal(counter, 64 + 112);
}

/* Many warps with random masks, interleaved with plain single-thread requests on the same
 * counter, until the window is full: every block served is aligned, inside, and disjoint. */
static int compare_offsets(const void *x, const void *y)
{
    const size_t *a = x, *b = y;
    return a[0] < b[0] ? -1 : a[0] > b[0];
}

static void test_warps_and_plain_requests_share_a_window_disjointly(void **state)
{
    (void)state;
    enum { max_blocks = 200000 };
    const size_t capacity = 1 << 20, granule = 32;
    size_t(*blocks)[2] = malloc(sizeof(size_t[2]) * max_blocks);
    assert_non_null(blocks);
    size_t n = 0, counter = 0;
    bool overflowed = false;
    while (!overflowed && n + WARP + 1 < max_blocks) {
        unsigned mask = (unsigned)rng() | 1u << (rng() % WARP);
        size_t size[WARP], off[WARP];
        for (unsigned t = 0; t < WARP; t++)
            size[t] = rng() % 600;
        warp_alloc(&counter, capacity, granule, mask, size, off);
        for (unsigned t = 0; t < WARP; t++) {
            if (!(mask & (1u << t)) || size[t] == 0)
                continue;
            if (off[t] == FAILED) {
                overflowed = true;
                continue;
            }
            blocks[n][0] = off[t];
            blocks[n++][1] = size[t];
        }
        size_t begin, plain = 1 + rng() % 300;
        if (nalloc_detail_window_reserve(&counter, capacity, plain, granule, &begin)) {
            blocks[n][0] = begin;
            blocks[n++][1] = plain;
        } else {
            overflowed = true;
        }
    }
    assert_true(overflowed);
    assert_true(counter > capacity); /* sticky: */
    for (int round = 0; round < 100; round++) {
        size_t begin, size[WARP], off[WARP];
        size_t small = 1 + rng() % 300;
        assert_false(nalloc_detail_window_reserve(&counter, capacity, small, granule, &begin));
        for (unsigned t = 0; t < WARP; t++) {
            size[t] = 1 + rng() % 300;
            off[t] = FAILED; /* inactive threads are left as they are */
        }
        warp_alloc(&counter, capacity, granule, (unsigned)rng() | 1u, size, off);
        for (unsigned t = 0; t < WARP; t++)
            assert_int_equal(off[t], FAILED);
    }
    qsort(blocks, n, sizeof blocks[0], compare_offsets);
    size_t served = 0;
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(blocks[i][0] % granule, 0);
        assert_true(blocks[i][0] + blocks[i][1] <= capacity);
        if (i > 0)
            assert_true(blocks[i - 1][0] + blocks[i - 1][1] <= blocks[i][0]);
        served += blocks[i][1];
    }
    assert_true(served > capacity / 2); /* the window was really used, not refused early */
    free(blocks);
}

/* ---------------------------------------------------------------------------------------------
 * The wipe kernel's split
 * ------------------------------------------------------------------------------------------- */

static void test_wipe_plan_covers_every_range_exactly_once(void **state)
{
    (void)state;
    for (uintptr_t align = 0; align < 16; align++) {
        for (size_t len = 0; len <= 600; len++) {
            uintptr_t p = 0x7f0000001000u + align;
            na_wipe_plan plan = na_wipe_plan_of(p, len);
            assert_int_equal(plan.head + plan.words * NA_WIPE_WORD + plan.tail, len);
            assert_true(plan.tail < NA_WIPE_WORD);
            if (plan.words > 0 || plan.tail > 0) {
                assert_true(plan.head < NA_WIPE_WORD);
                assert_int_equal((p + plan.head) % NA_WIPE_WORD, 0); /* body is aligned */
            } else {
                assert_int_equal(plan.head, len);
            }
            if (plan.tail > 0)
                assert_true(plan.words > 0 || (p + plan.head) % NA_WIPE_WORD == 0);
        }
    }
    na_wipe_plan huge = na_wipe_plan_of(16, SIZE_MAX - 15);
    assert_int_equal(huge.head, 0);
    assert_int_equal(huge.words, (SIZE_MAX - 15) / 16);
    assert_int_equal(huge.tail, 0);
}

/* Every thread of a grid of `threads` runs the kernel's code over [buf + start, + len). */
static void wipe_and_check(unsigned char *buf, size_t bufsize, size_t start, size_t len,
                           size_t threads)
{
    memset(buf, 0xa5, bufsize);
    for (size_t t = 0; t < threads; t++)
        na_wipe_thread(buf + start, len, t, threads);
    for (size_t i = 0; i < bufsize; i++) {
        bool inside = i >= start && i < start + len;
        if (buf[i] != (inside ? 0 : 0xa5))
            fail_msg("start %zu len %zu threads %zu: byte %zu is 0x%02x", start, len, threads, i,
                     buf[i]);
    }
}

static void test_wipe_threads_zero_exactly_the_range_at_every_alignment(void **state)
{
    (void)state;
    static const size_t grids[] = {1, 3, 16, 32, 256};
    const size_t bufsize = 16 + 400 + 48;
    unsigned char *buf = aligned_alloc(64, 512); /* malloc'd: any store type is allowed */
    assert_non_null(buf);
    for (size_t start = 16; start < 32; start++)
        for (size_t len = 0; len <= 400; len++)
            for (size_t g = 0; g < sizeof grids / sizeof grids[0]; g++)
                wipe_and_check(buf, bufsize, start, len, grids[g]);
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_warp_helpers_match_their_definitions),
        cmocka_unit_test(test_full_warp_of_equal_requests_gets_consecutive_blocks),
        cmocka_unit_test(test_full_warp_of_mixed_requests_matches_the_model),
        cmocka_unit_test(test_single_thread_is_its_own_leader),
        cmocka_unit_test(test_alternating_threads_skip_the_inactive_ones),
        cmocka_unit_test(test_random_masks_and_sizes_match_the_model),
        cmocka_unit_test(test_window_overflows_in_the_middle_of_a_warp),
        cmocka_unit_test(test_zero_size_requests_take_nothing_and_get_nothing),
        cmocka_unit_test(test_oversized_request_leaves_the_room_to_the_others),
        cmocka_unit_test(test_full_window_is_not_bumped_further),
        cmocka_unit_test(test_fit_check_never_wraps),
        cmocka_unit_test(test_a_refused_plain_request_leaves_the_window_full),
        cmocka_unit_test(test_zero_and_oversized_plain_requests_fail_alone),
        cmocka_unit_test(test_warps_and_plain_requests_share_a_window_disjointly),
        cmocka_unit_test(test_wipe_plan_covers_every_range_exactly_once),
        cmocka_unit_test(test_wipe_threads_zero_exactly_the_range_at_every_alignment),
    };
    return cmocka_run_group_tests_name("device_math", tests, NULL, NULL);
}
