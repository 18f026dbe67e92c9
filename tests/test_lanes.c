/* tests/test_lanes.c - nalloc_arena_split: per-thread lanes at deterministic places.
 *
 * What a lane promises: it is a full arena (every call works on it), it lives at a place fixed by
 * the parent's requests, its layout depends only on its own requests (however the threads using
 * the lanes interleave), its memory stays its own while it lives (the parent cannot release it),
 * and it inherits the parent's protections and wipe discipline. The multi-threaded check runs
 * with random sleeps in two fresh processes and compares per-lane digests with each other and
 * with a single-threaded run.
 */
#include "child.h"

#include <errno.h>
#include <pthread.h>
#include <sys/mman.h>
#include <time.h>


#define LANES 4

/* ---------------------------------------------------------------------------------------------
 * Where lanes go
 * ------------------------------------------------------------------------------------------- */

static void test_split_places_lanes_at_deterministic_offsets(void **state)
{
    (void)state;
    nalloc_arena *p = make_arena(NALLOC_KIND_SCRATCH, 4 * MiB);
    assert_non_null(p);
    assert_non_null(nalloc_alloc(p, 100)); /* the block starts at the next page */
    nalloc_arena *lanes[LANES];
    assert_int_equal(nalloc_arena_split(p, LANES, 10000, lanes), NALLOC_OK);
    nalloc_stats ps = stats_of(p);
    size_t stride = (10000 + page_size() - 1) / page_size() * page_size();
    for (size_t i = 0; i < LANES; i++) {
        assert_non_null(lanes[i]);
        nalloc_stats s = stats_of(lanes[i]);
        assert_int_equal(s.base - ps.base, page_size() + i * stride);
        assert_int_equal(s.capacity, 10000);
        assert_int_equal(s.used, 0);
        assert_int_equal(s.kind, NALLOC_KIND_SCRATCH);
        char name[16];
        snprintf(name, sizeof name, "scratch.%zu", i);
        assert_string_equal(s.name, name);
    }
    /* The lanes are one allocation of the parent, ending with the last lane. */
    assert_int_equal(ps.allocations, 2);
    assert_int_equal(ps.used, page_size() + (LANES - 1) * stride + 10000);
    for (size_t i = 0; i < LANES; i++)
        assert_int_equal(nalloc_arena_destroy(lanes[i]), NALLOC_OK);
    assert_int_equal(nalloc_arena_destroy(p), NALLOC_OK);
}

static void test_split_shares_the_room_equally_when_capacity_is_zero(void **state)
{
    (void)state;
    nalloc_arena *p = make_arena(NALLOC_KIND_SCRATCH, 1 * MiB);
    assert_non_null(p);
    assert_non_null(nalloc_alloc(p, 5000));
    nalloc_arena *lanes[3];
    assert_int_equal(nalloc_arena_split(p, 3, 0, lanes), NALLOC_OK);
    size_t room = 1 * MiB - 2 * page_size();
    size_t share = room / 3 / page_size() * page_size();
    for (int i = 0; i < 3; i++)
        assert_int_equal(stats_of(lanes[i]).capacity, share);
    /* Every lane can fill its share, and not a byte more. */
    for (int i = 0; i < 3; i++) {
        assert_non_null(nalloc_alloc_aligned(lanes[i], share, 1));
        assert_null(nalloc_alloc_aligned(lanes[i], 1, 1));
        assert_int_equal(nalloc_last_error(), NALLOC_ERR_NOMEM);
    }
    assert_int_equal(nalloc_arena_destroy(p), NALLOC_OK); /* destroys the lanes too */
}

static void test_split_refuses_bad_input_and_leaves_the_parent_as_it_was(void **state)
{
    (void)state;
    nalloc_arena *p = make_arena(NALLOC_KIND_SCRATCH, 1 * MiB);
    assert_non_null(p);
    assert_non_null(nalloc_alloc(p, 300));
    nalloc_stats before = stats_of(p);
    nalloc_arena *lanes[4] = {p, p, p, p};
    assert_int_equal(nalloc_arena_split(NULL, 2, 0, lanes), NALLOC_ERR_INVALID);
    assert_int_equal(nalloc_arena_split(p, 0, 0, lanes), NALLOC_ERR_INVALID);
    assert_int_equal(nalloc_arena_split(p, 2, 0, NULL), NALLOC_ERR_INVALID);
    assert_int_equal(nalloc_arena_split(p, 4, 1 * MiB, lanes), NALLOC_ERR_NOMEM);
    assert_int_equal(nalloc_arena_split(p, 2, SIZE_MAX, lanes), NALLOC_ERR_NOMEM);
    assert_int_equal(nalloc_arena_split(p, SIZE_MAX, 4096, lanes), NALLOC_ERR_NOMEM);
    assert_int_equal(nalloc_arena_split(p, 1000, 0, lanes), NALLOC_ERR_NOMEM); /* < a page each */
    assert_int_equal(nalloc_last_error(), NALLOC_ERR_NOMEM);
    for (int i = 0; i < 4; i++)
        assert_true(lanes[i] == p); /* refused before any lane was made: untouched */
    nalloc_stats after = stats_of(p);
    assert_int_equal(after.used, before.used);
    assert_int_equal(after.allocations, before.allocations);
    assert_true(after.layout_digest == before.layout_digest);
    assert_non_null(nalloc_alloc(p, 4096)); /* and it still serves requests */
    assert_int_equal(nalloc_arena_destroy(p), NALLOC_OK);
    assert_int_equal(nalloc_arena_split(p, 2, 0, lanes), NALLOC_ERR_STATE);
}

/* ---------------------------------------------------------------------------------------------
 * A lane is a full arena
 * ------------------------------------------------------------------------------------------- */

static void test_every_call_works_on_a_lane(void **state)
{
    (void)state;
    nalloc_arena *p = make_arena(NALLOC_KIND_SCRATCH, 1 * MiB);
    nalloc_arena *lane[2];
    assert_int_equal(nalloc_arena_split(p, 2, 64 * KiB, lane), NALLOC_OK);
    nalloc_arena *l = lane[0];
    char *a = nalloc_alloc(l, 100);
    assert_non_null(a);
    assert_int_equal((uintptr_t)a % 64, 0);
    char *b = nalloc_alloc_aligned(l, 10, 1024);
    assert_int_equal((uintptr_t)b % 1024, 0);
    assert_int_equal(nalloc_resize_last(l, b, 10, 20), NALLOC_OK);
    assert_int_equal(nalloc_free_last(l, b, 20), NALLOC_OK);
    nalloc_mark m = nalloc_mark_get(l);
    memset(nalloc_alloc(l, 1000), 0xee, 1000);
    assert_int_equal(nalloc_rollback(l, m), NALLOC_OK);
    unsigned char *z = nalloc_alloc_zeroed(l, 100, 10, 0); /* over the rolled-back bytes */
    assert_non_null(z);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(z[i], 0);
    char *r = nalloc_realloc(l, a, 100, 200, 0); /* not the last block: moved */
    assert_non_null(r);
    assert_true(r != a);
    assert_null(nalloc_alloc(l, 64 * KiB)); /* the lane's own capacity, not the parent's */
    assert_int_equal(nalloc_last_error(), NALLOC_ERR_NOMEM);
    nalloc_stats s = stats_of(l);
    assert_int_equal(s.rollbacks, 1);
    assert_int_equal(s.failures, 1);
    assert_true(s.layout_digest != 0);
    char text[1024] = "";
    FILE *out = fmemopen(text, sizeof text - 1, "w");
    assert_int_equal(nalloc_arena_print_stats(l, out), NALLOC_OK);
    fclose(out);
    assert_non_null(strstr(text, "'scratch.0'"));
    assert_int_equal(nalloc_wipe(l), NALLOC_OK);
    assert_int_equal(stats_of(l).used, 0);
    assert_int_equal(nalloc_reset(l), NALLOC_OK);
    assert_int_equal(nalloc_rollback(l, m), NALLOC_ERR_STATE); /* stale after the wipe */
    /* The other lane never saw any of it. */
    assert_int_equal(stats_of(lane[1]).allocations, 0);
    assert_int_equal(nalloc_arena_destroy(l), NALLOC_OK);
    assert_int_equal(nalloc_arena_destroy(l), NALLOC_ERR_STATE);
    assert_null(nalloc_alloc(l, 1));
    assert_int_equal(nalloc_last_error(), NALLOC_ERR_STATE);
    assert_int_equal(nalloc_arena_destroy(p), NALLOC_OK);
}

static void test_lanes_can_be_split_again(void **state)
{
    (void)state;
    nalloc_arena *p = make_arena(NALLOC_KIND_SCRATCH, 1 * MiB);
    nalloc_arena *lanes[2], *sub[2];
    assert_int_equal(nalloc_arena_split(p, 2, 0, lanes), NALLOC_OK);
    assert_int_equal(nalloc_arena_split(lanes[1], 2, 0, sub), NALLOC_OK);
    char *x = nalloc_alloc(sub[1], 100);
    assert_non_null(x);
    memset(x, 1, 100);
    nalloc_stats ps = stats_of(p), ls = stats_of(lanes[1]), ss = stats_of(sub[1]);
    assert_true(ss.base >= ls.base && ss.base + ss.capacity <= ls.base + ls.capacity);
    assert_true(ls.base >= ps.base && ls.base + ls.capacity <= ps.base + ps.capacity);
    assert_string_equal(ss.name, "scratch.1.1");
    /* Destroying the top destroys the whole tree. */
    assert_int_equal(nalloc_arena_destroy(p), NALLOC_OK);
    assert_int_equal(nalloc_arena_destroy(sub[0]), NALLOC_ERR_STATE);
    assert_int_equal(nalloc_arena_destroy(lanes[1]), NALLOC_ERR_STATE);
}

/* ---------------------------------------------------------------------------------------------
 * The parent meanwhile
 * ------------------------------------------------------------------------------------------- */

static void test_parent_cannot_release_memory_under_live_lanes(void **state)
{
    (void)state;
    nalloc_arena *p = make_arena(NALLOC_KIND_SCRATCH, 1 * MiB);
    nalloc_mark before = nalloc_mark_get(p);
    nalloc_arena *lanes[2];
    assert_int_equal(nalloc_arena_split(p, 2, 64 * KiB, lanes), NALLOC_OK);
    size_t used = stats_of(p).used;
    char *data = nalloc_alloc(lanes[0], 64);
    memset(data, 0x5a, 64);

    assert_int_equal(nalloc_reset(p), NALLOC_ERR_STATE); /* refused, and it says so */
    assert_int_equal(nalloc_last_error(), NALLOC_ERR_STATE);
    assert_non_null(strstr(nalloc_last_error_message(), "nalloc_reset: lanes"));
    assert_int_equal(nalloc_wipe(p), NALLOC_ERR_STATE);
    assert_int_equal(nalloc_rollback(p, before), NALLOC_ERR_STATE);
    assert_int_equal(stats_of(p).used, used);
    assert_int_equal(data[63], 0x5a);

    /* It still allocates above the lanes, and releases that freely. */
    nalloc_mark above = nalloc_mark_get(p);
    char *mine = nalloc_alloc(p, 1000);
    assert_non_null(mine);
    assert_true((uintptr_t)mine >= stats_of(lanes[1]).base + 64 * KiB);
    assert_int_equal(nalloc_free_last(p, mine, 1000), NALLOC_OK);
    assert_non_null(nalloc_alloc(p, 1000));
    assert_int_equal(nalloc_rollback(p, above), NALLOC_OK);
    assert_int_equal(stats_of(p).used, used);

    /* One lane gone is not enough; both gone, the parent is free again. */
    assert_int_equal(nalloc_arena_destroy(lanes[0]), NALLOC_OK);
    assert_int_equal(nalloc_wipe(p), NALLOC_ERR_STATE);
    assert_int_equal(nalloc_arena_destroy(lanes[1]), NALLOC_OK);
    assert_int_equal(nalloc_rollback(p, before), NALLOC_OK);
    assert_int_equal(stats_of(p).used, 0);
    assert_int_equal(nalloc_arena_split(p, 2, 64 * KiB, lanes), NALLOC_OK); /* same place again */
    assert_int_equal(nalloc_reset(lanes[0]), NALLOC_OK);
    assert_int_equal(nalloc_wipe(p), NALLOC_ERR_STATE);
    assert_int_equal(nalloc_arena_destroy(p), NALLOC_OK);
}

static void test_destroying_a_context_destroys_the_lanes_of_its_arenas(void **state)
{
    (void)state;
    nalloc_ctx_config config;
    nalloc_ctx_config_init(&config, NALLOC_MEMORY_HOST, 1 * MiB, 1 * MiB, 1 * MiB);
    nalloc_ctx *ctx;
    assert_int_equal(nalloc_ctx_create(&config, &ctx), NALLOC_OK);
    nalloc_arena *lanes[3];
    assert_int_equal(nalloc_arena_split(nalloc_ctx_arena(ctx, NALLOC_KIND_WITNESS), 3, 0, lanes),
                     NALLOC_OK);
    assert_non_null(nalloc_alloc(lanes[2], 10));
    assert_int_equal(nalloc_ctx_destroy(ctx), NALLOC_OK);
    for (int i = 0; i < 3; i++) {
        assert_null(nalloc_alloc(lanes[i], 10));
        assert_int_equal(nalloc_last_error(), NALLOC_ERR_STATE);
    }
}

/* ---------------------------------------------------------------------------------------------
 * Protections and wipes
 * ------------------------------------------------------------------------------------------- */

static void test_witness_lanes_inherit_the_protections_and_are_wiped_on_destroy(void **state)
{
    (void)state;
    nalloc_arena *w = make_arena(NALLOC_KIND_WITNESS, 1 * MiB);
    nalloc_arena *s = make_arena(NALLOC_KIND_SCRATCH, 1 * MiB);
    nalloc_arena *wl[2], *sl[2];
    assert_int_equal(nalloc_arena_split(w, 2, 0, wl), NALLOC_OK);
    assert_int_equal(nalloc_arena_split(s, 2, 0, sl), NALLOC_OK);
    nalloc_stats ws = stats_of(w), ls = stats_of(wl[1]);
    assert_true(ls.locked && ls.no_dump && ls.wipe_on_fork && ls.wipe_on_destroy);
    assert_int_equal(ls.requested, ws.requested);
    assert_int_equal(ls.missing, ws.missing);
    assert_int_equal(ls.kind, NALLOC_KIND_WITNESS);
    assert_int_equal(ls.reserved, 0); /* the memory is the parent's */

    unsigned char *secret = nalloc_alloc(wl[1], 4096);
    unsigned char *plain = nalloc_alloc(sl[1], 4096);
    memset(secret, 0xc3, 4096);
    memset(plain, 0xc3, 4096);
    nalloc_mark m = nalloc_mark_get(wl[1]);
    memset(nalloc_alloc(wl[1], 4096), 0xc3, 4096);
    assert_int_equal(nalloc_rollback(wl[1], m), NALLOC_OK);
    assert_int_equal(nalloc_arena_destroy(wl[1]), NALLOC_OK);
    assert_int_equal(nalloc_arena_destroy(sl[1]), NALLOC_OK);
    /* Still mapped (the parent's): the witness lane is zero up to its high-water mark, the
     * scratch lane kept its data. */
    for (int i = 0; i < 2 * 4096; i++)
        assert_int_equal(secret[i], 0);
    assert_int_equal(plain[0], 0xc3);
    assert_int_equal(plain[4095], 0xc3);
    assert_int_equal(nalloc_arena_destroy(w), NALLOC_OK);
    assert_int_equal(nalloc_arena_destroy(s), NALLOC_OK);
}

static void test_lane_over_dirty_parent_memory_zeroes_what_it_must(void **state)
{
    (void)state;
    nalloc_arena *p = make_arena(NALLOC_KIND_SCRATCH, 1 * MiB);
    nalloc_mark m = nalloc_mark_get(p);
    memset(nalloc_alloc(p, 256 * KiB), 0xab, 256 * KiB);
    assert_int_equal(nalloc_rollback(p, m), NALLOC_OK); /* released, not wiped */
    nalloc_arena *lanes[4];
    assert_int_equal(nalloc_arena_split(p, 4, 128 * KiB, lanes), NALLOC_OK);
    for (int i = 0; i < 4; i++) {
        unsigned char *z = nalloc_alloc_zeroed(lanes[i], 128, KiB, 1);
        assert_non_null(z);
        for (size_t j = 0; j < 128 * KiB; j++)
            if (z[j] != 0)
                fail_msg("lane %d byte %zu is %#x", i, j, z[j]);
    }
    /* A wipe of a lane zeroes its dirty part too. */
    nalloc_arena *again[2];
    for (int i = 0; i < 4; i++)
        nalloc_arena_destroy(lanes[i]);
    assert_int_equal(nalloc_rollback(p, m), NALLOC_OK);
    memset(nalloc_alloc(p, 256 * KiB), 0xab, 256 * KiB);
    assert_int_equal(nalloc_rollback(p, m), NALLOC_OK);
    assert_int_equal(nalloc_arena_split(p, 2, 128 * KiB, again), NALLOC_OK);
    assert_int_equal(nalloc_wipe(again[0]), NALLOC_OK);
    assert_int_equal(stats_of(again[0]).wiped_bytes, 128 * KiB);
    unsigned char *base = (unsigned char *)stats_of(again[0]).base;
    for (size_t j = 0; j < 128 * KiB; j++)
        assert_int_equal(peek_released(base, j), 0); /* wiped, so released */
    assert_int_equal(nalloc_arena_destroy(p), NALLOC_OK);
}

static bool resident(const void *p)
{
    unsigned char vec = 0;
    uintptr_t page = (uintptr_t)p & ~(uintptr_t)(page_size() - 1);
    assert_int_equal(mincore((void *)page, page_size(), &vec), 0);
    return vec & 1;
}

static void test_parent_wipe_skips_the_block_its_lanes_keep_clean(void **state)
{
    (void)state;
    if (under_valgrind())
        skip(); /* checks page residency */
    /* A dry-run-sized witness: 1 GiB of address space, four lanes of about 256 MiB that use a
     * page each. Zeroing the block would fault in (and lock) the whole GiB. */
    nalloc_arena_config c;
    nalloc_arena_config_init(&c, NALLOC_KIND_WITNESS, NALLOC_MEMORY_HOST, (size_t)1 << 30);
    c.flags |= NALLOC_FLAG_NORESERVE;
    nalloc_arena *p;
    assert_int_equal(nalloc_arena_create(&c, &p), NALLOC_OK);
    unsigned char *own = nalloc_alloc(p, 4096);
    memset(own, 0x99, 4096);
    nalloc_mark before = nalloc_mark_get(p);
    nalloc_arena *lanes[LANES];
    unsigned char *data[LANES];
    assert_int_equal(nalloc_arena_split(p, LANES, 0, lanes), NALLOC_OK);
    for (int i = 0; i < LANES; i++) {
        data[i] = nalloc_alloc(lanes[i], 4096);
        memset(data[i], 0x99, 4096);
    }
    unsigned char *untouched = data[2] + 64 * MiB;
    assert_false(resident(untouched));
    for (int i = 0; i < LANES; i++)
        assert_int_equal(nalloc_arena_destroy(lanes[i]), NALLOC_OK); /* each wipes itself */
    assert_int_equal(nalloc_wipe(p), NALLOC_OK);
    assert_int_equal(stats_of(p).wiped_bytes, page_size()); /* its own page, not the block */
    for (int i = 0; i < LANES; i++)
        assert_int_equal(peek_released(data[i], 4095), 0); /* wiped memory is released memory */
    assert_int_equal(peek_released(own, 0), 0);
    assert_false(resident(untouched)); /* the parent's wipe did not walk the block */
    assert_int_equal(nalloc_rollback(p, before), NALLOC_ERR_STATE); /* stale after the wipe */
    assert_int_equal(nalloc_arena_destroy(p), NALLOC_OK);
}

static void test_lanes_that_keep_their_data_leave_it_to_the_parent(void **state)
{
    (void)state;
    /* Scratch lanes do not wipe on destroy: their bytes stay dirty, and the parent's wipe and
     * alloc_zeroed must treat them so. */
    for (int wipe = 0; wipe < 2; wipe++) {
        nalloc_arena *p = make_arena(NALLOC_KIND_SCRATCH, 4 * MiB);
        assert_non_null(nalloc_alloc(p, 100));
        nalloc_mark before = nalloc_mark_get(p);
        nalloc_arena *lanes[2];
        assert_int_equal(nalloc_arena_split(p, 2, 0, lanes), NALLOC_OK);
        unsigned char *d = nalloc_alloc(lanes[1], 8192);
        memset(d, 0xff, 8192);
        assert_int_equal(nalloc_arena_destroy(lanes[0]), NALLOC_OK);
        assert_int_equal(nalloc_arena_destroy(lanes[1]), NALLOC_OK);
        assert_int_equal(d[0], 0xff); /* kept */
        if (wipe) {
            assert_int_equal(nalloc_wipe(p), NALLOC_OK);
            for (int i = 0; i < 8192; i++)
                assert_int_equal(peek_released(d, (size_t)i), 0);
        } else {
            assert_int_equal(nalloc_rollback(p, before), NALLOC_OK);
            size_t offset = (size_t)((uintptr_t)d - stats_of(p).base);
            unsigned char *z = nalloc_alloc_zeroed(p, offset + 8192, 1, 1);
            assert_non_null(z);
            for (size_t i = 0; i < offset + 8192; i++)
                if (z[i] != 0)
                    fail_msg("byte %zu is %#x after the lanes' memory came back", i, z[i]);
        }
        assert_int_equal(nalloc_arena_destroy(p), NALLOC_OK);
    }
}

static void test_parent_wipe_reaches_the_gaps_between_lanes(void **state)
{
    (void)state;
    /* Lanes of 100 bytes start a page apart: the rest of each page belongs to no lane. Bytes
     * the parent handed out there before the split must still be zeroed by the parent's wipe,
     * and read as zero when the parent hands them out zeroed again. */
    const size_t secret_size = 2 * page_size(); /* under lanes 0 and 1, and their gaps */
    for (int zeroed = 0; zeroed < 2; zeroed++) {
        nalloc_arena *p = make_arena(NALLOC_KIND_WITNESS, 1 * MiB);
        unsigned char *secret = nalloc_alloc(p, secret_size);
        memset(secret, 0x5a, secret_size);
        assert_int_equal(nalloc_reset(p), NALLOC_OK); /* released, not wiped */
        nalloc_mark before = nalloc_mark_get(p);
        nalloc_arena *lanes[LANES];
        assert_int_equal(nalloc_arena_split(p, LANES, 100, lanes), NALLOC_OK);
        assert_int_equal(stats_of(lanes[1]).base - stats_of(lanes[0]).base, page_size());
        for (int i = 0; i < LANES; i++)
            assert_int_equal(nalloc_arena_destroy(lanes[i]), NALLOC_OK); /* each wipes itself */
        if (zeroed) {
            assert_int_equal(nalloc_rollback(p, before), NALLOC_OK);
            unsigned char *z = nalloc_alloc_zeroed(p, secret_size, 1, 1);
            assert_ptr_equal(z, secret);
            for (size_t i = 0; i < secret_size; i++)
                if (z[i] != 0)
                    fail_msg("zeroed byte %zu is %#x", i, z[i]);
        } else {
            assert_int_equal(nalloc_wipe(p), NALLOC_OK);
            for (size_t i = 0; i < secret_size; i++)
                if (peek_released(secret, i) != 0)
                    fail_msg("byte %zu survived the wipe: %#x", i, peek_released(secret, i));
        }
        assert_int_equal(nalloc_arena_destroy(p), NALLOC_OK);
    }
}

/* Random sequences over a parent and a tree of lanes: allocations filled with a secret pattern,
 * marks, rollbacks, resets, free_last, splits (equal shares and odd capacities), lane destroys,
 * wipes and zeroed allocations. Whatever the sequence, a successful wipe leaves the wiped arena's
 * memory all zero and a zeroed block reads zero. Deterministic: a failure names its seed. */
enum { TREE = 16, TREE_CAPACITY = 256 * 1024 };

typedef struct tree_node {
    nalloc_arena *arena;
    nalloc_mark marks[4];
    int marks_taken;
} tree_node;

static bool wiped_clean(const unsigned char *p, size_t n, const char *what, unsigned seed, int step)
{
    for (size_t i = 0; i < n; i++)
        if (peek_released(p, i) != 0) {
            print_error("seed %u step %d: %s: byte %zu is %#x\n", seed, step, what, i,
                        peek_released(p, i));
            return false;
        }
    return true;
}

static bool run_lane_sequence(unsigned seed)
{
    uint64_t rng = (uint64_t)seed * UINT64_C(0x9e3779b97f4a7c15) | 1;
    nalloc_arena_config c;
    nalloc_arena_config_init(&c, seed % 2 ? NALLOC_KIND_WITNESS : NALLOC_KIND_SCRATCH,
                             NALLOC_MEMORY_HOST, TREE_CAPACITY);
    c.flags &= ~(unsigned)NALLOC_FLAG_LOCK; /* many arenas: stay clear of RLIMIT_MEMLOCK */
    nalloc_arena *parent = make_arena_with(&c);
    unsigned char *base = (unsigned char *)stats_of(parent).base;
    tree_node tree[TREE] = {{parent, {{0}}, 0}};
    int nodes = 1;
    bool ok = true;
    for (int step = 0; step < 300 && ok; step++) {
        int i = (int)(test_rand(&rng) % (uint64_t)nodes);
        tree_node *n = &tree[i];
        nalloc_stats s;
        if (nalloc_arena_stats(n->arena, &s) != NALLOC_OK) { /* a lane destroyed with its parent */
            tree[i] = tree[--nodes];
            continue;
        }
        uint64_t r = test_rand(&rng);
        size_t size = 1 + (size_t)(r >> 40) % 20000;
        switch (r % 12) {
        case 0: case 1: case 2: {
            unsigned char *p = nalloc_alloc(n->arena, size);
            if (p != NULL)
                memset(p, 0xa5, size);
            break;
        }
        case 3:
            n->marks[n->marks_taken < 4 ? n->marks_taken++ : (int)((r >> 8) % 4)] =
                nalloc_mark_get(n->arena);
            break;
        case 4:
            if (n->marks_taken > 0) { /* refused for a stale mark, or lanes above it */
                nalloc_status st =
                    nalloc_rollback(n->arena, n->marks[(r >> 8) % (uint64_t)n->marks_taken]);
                ok = st == NALLOC_OK || st == NALLOC_ERR_STATE;
            }
            break;
        case 5: { /* refused while lanes of the node are alive */
            nalloc_status st = nalloc_reset(n->arena);
            ok = st == NALLOC_OK || st == NALLOC_ERR_STATE;
            break;
        }
        case 6:
            if (nalloc_wipe(n->arena) == NALLOC_OK)
                ok = wiped_clean((unsigned char *)s.base, s.capacity, s.name, seed, step);
            break;
        case 7: {
            unsigned char *p = nalloc_alloc_zeroed(n->arena, size, 1, 0);
            if (p != NULL) {
                ok = wiped_clean(p, size, "zeroed block", seed, step);
                memset(p, 0xa5, size);
            }
            break;
        }
        case 8: case 9: {
            size_t count = 1 + (r >> 8) % 3, capacity = (r >> 12) % 2 ? 0 : size;
            nalloc_arena *lanes[3];
            if (nodes + (int)count <= TREE &&
                nalloc_arena_split(n->arena, count, capacity, lanes) == NALLOC_OK)
                for (size_t j = 0; j < count; j++)
                    tree[nodes++] = (tree_node){lanes[j], {{0}}, 0};
            break;
        }
        case 10:
            if (i > 0)
                (void)nalloc_arena_destroy(n->arena);
            break;
        case 11: {
            unsigned char *p = nalloc_alloc(n->arena, size);
            if (p != NULL) {
                memset(p, 0xa5, size);
                (void)nalloc_free_last(n->arena, p, size);
            }
            break;
        }
        }
    }
    for (int i = 1; i < nodes; i++)
        (void)nalloc_arena_destroy(tree[i].arena);
    if (ok) {
        assert_int_equal(nalloc_wipe(parent), NALLOC_OK);
        ok = wiped_clean(base, TREE_CAPACITY, "the parent at the end", seed, -1);
    }
    assert_int_equal(nalloc_arena_destroy(parent), NALLOC_OK);
    return ok;
}

static void test_random_lane_sequences_leave_no_secret_behind_a_wipe(void **state)
{
    (void)state;
    unsigned seeds = under_valgrind() ? 20 : 300;
    for (unsigned seed = 1; seed <= seeds; seed++)
        if (!run_lane_sequence(seed))
            fail_msg("seed %u left a secret byte behind (details above)", seed);
}

/* ---------------------------------------------------------------------------------------------
 * Threads with random timing, per-lane digests repeated across processes
 * ------------------------------------------------------------------------------------------- */

typedef struct lane_work {
    nalloc_arena *lane;
    unsigned index;
    unsigned sleep_seed; /* 0: no sleeps */
    bool ok;
} lane_work;

/* Lane i's requests depend on i alone; the sleeps between them on the seed. */
static void *work_on_lane(void *arg)
{
    lane_work *w = arg;
    uint64_t rng = 1000 + w->index;
    unsigned sleep_state = w->sleep_seed;
    nalloc_mark phase = nalloc_mark_get(w->lane);
    w->ok = true;
    for (int step = 0; step < 300; step++) {
        if (w->sleep_seed != 0 && rand_r(&sleep_state) % 8 == 0) {
            struct timespec t = {0, (long)(rand_r(&sleep_state) % 200) * 1000};
            nanosleep(&t, NULL);
        }
        uint64_t r = test_rand(&rng);
        size_t size = 1 + (size_t)(r >> 32) % 3000;
        if (r % 50 == 0) {
            if (nalloc_rollback(w->lane, phase) != NALLOC_OK)
                w->ok = false;
            phase = nalloc_mark_get(w->lane);
        } else if (r % 7 == 0) {
            char *p = nalloc_alloc_aligned(w->lane, size, (size_t)1 << (r >> 60));
            if (p == NULL || nalloc_free_last(w->lane, p, size) != NALLOC_OK)
                w->ok = false;
        } else if (nalloc_alloc(w->lane, size) == NULL) {
            w->ok = false;
        }
    }
    return NULL;
}

/* Split, run one thread per lane (or the lanes one after another, in reverse, on this thread),
 * and print each lane's place and layout. */
static void run_lanes(bool threads, FILE *out)
{
    nalloc_arena *p = make_arena(NALLOC_KIND_WITNESS, 16 * MiB);
    nalloc_arena *lanes[LANES];
    if (p == NULL || nalloc_arena_split(p, LANES, 0, lanes) != NALLOC_OK) {
        fprintf(out, "setup failed\n");
        return;
    }
    lane_work work[LANES];
    pthread_t tid[LANES];
    unsigned seed = (unsigned)time(NULL) ^ (unsigned)getpid();
    for (unsigned i = 0; i < LANES; i++)
        work[i] = (lane_work){lanes[i], i, threads ? (seed ^ (i * 7919u)) | 1u : 0, false};
    for (unsigned i = 0; i < LANES; i++) {
        if (!threads)
            work_on_lane(&work[LANES - 1 - i]);
        else if (pthread_create(&tid[i], NULL, work_on_lane, &work[i]) != 0)
            fprintf(out, "thread failed\n");
    }
    for (unsigned i = 0; threads && i < LANES; i++)
        pthread_join(tid[i], NULL);
    uintptr_t base = stats_of(p).base;
    for (unsigned i = 0; i < LANES; i++) {
        nalloc_stats s = stats_of(lanes[i]);
        fprintf(out, "lane %u ok %d at %zu digest %016llx used %zu high %zu padding %zu n %zu\n", i,
                work[i].ok, (size_t)(s.base - base), (unsigned long long)s.layout_digest, s.used,
                s.high_water, s.padding, s.allocations);
    }
    nalloc_arena_destroy(p);
}

static void test_threads_on_lanes_give_the_same_digests_in_separate_processes(void **state)
{
    (void)state;
    if (under_valgrind())
        skip(); /* re-executes /proc/self/exe */
    char here[2048] = "", first[2048], second[2048];
    FILE *out = fmemopen(here, sizeof here - 1, "w");
    run_lanes(false, out);
    fclose(out);
    assert_null(strstr(here, "ok 0"));
    assert_null(strstr(here, "failed"));
    assert_int_equal(child_exec_self("lanes", first, sizeof first), 0);
    assert_int_equal(child_exec_self("lanes", second, sizeof second), 0);
    assert_string_equal(first, here);
    assert_string_equal(second, here);
    /* And the lanes differ from each other: the digests are not all the same constant. */
    char *lane0 = strstr(here, "digest "), *lane1 = strstr(lane0 + 1, "digest ");
    assert_non_null(lane1);
    assert_memory_not_equal(lane0, lane1, 23);
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "lanes") == 0) {
        run_lanes(true, stdout);
        return 0;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_split_places_lanes_at_deterministic_offsets),
        cmocka_unit_test(test_split_shares_the_room_equally_when_capacity_is_zero),
        cmocka_unit_test(test_split_refuses_bad_input_and_leaves_the_parent_as_it_was),
        cmocka_unit_test(test_every_call_works_on_a_lane),
        cmocka_unit_test(test_lanes_can_be_split_again),
        cmocka_unit_test(test_parent_cannot_release_memory_under_live_lanes),
        cmocka_unit_test(test_destroying_a_context_destroys_the_lanes_of_its_arenas),
        cmocka_unit_test(test_witness_lanes_inherit_the_protections_and_are_wiped_on_destroy),
        cmocka_unit_test(test_lane_over_dirty_parent_memory_zeroes_what_it_must),
        cmocka_unit_test(test_parent_wipe_skips_the_block_its_lanes_keep_clean),
        cmocka_unit_test(test_lanes_that_keep_their_data_leave_it_to_the_parent),
        cmocka_unit_test(test_parent_wipe_reaches_the_gaps_between_lanes),
        cmocka_unit_test(test_random_lane_sequences_leave_no_secret_behind_a_wipe),
        cmocka_unit_test(test_threads_on_lanes_give_the_same_digests_in_separate_processes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
