/* tests/test_tcache.c - NALLOC_FLAG_THREAD_CACHE: one arena, many threads, each bumping in a
 * private chunk of it (src/tcache.c).
 *
 * What the cache must not change, and what it promises (issue 12):
 *  - one thread alone gets exactly the layout it gets without the cache: the same block offsets,
 *    statuses and layout digest, across alloc, free_last, resize_last, realloc, marks, rollbacks,
 *    resets and wipes, near exhaustion and with requests too big for a chunk;
 *  - statistics are exact at quiescence: `used` is what was handed out (padding included),
 *    the unused remainders of live chunks are `cached` (at most one chunk per thread), free
 *    stretches below the offset are `deferred`, and the three add up to the arena's offset;
 *  - a thread frees, shrinks, grows and reallocs its newest block inside its chunk even when
 *    other threads allocated after it; a mark gives the calling thread's chunk back, so what it
 *    allocates after the mark lies above it and a rollback releases it;
 *  - N threads (2 to 64, more than the cores) allocate, free their newest block and read their
 *    patterns back while another thread takes marks and statistics; at phase boundaries, with
 *    every worker parked, rollbacks, resets and wipes retire every chunk, and no block of a later
 *    phase overlaps one that survived;
 *  - thousands of short-lived threads do not exhaust an arena sized for one thread running the
 *    same requests (plus one chunk per thread alive at once);
 *  - a wipe zeroes everything up to the high-water mark, chunk remainders and freed stretches
 *    included, and nalloc_alloc_zeroed clears a reused remainder.
 *
 * White box: the test reads the arena's offset and base from its header (src/internal.h), to check
 * used + cached + deferred against the offset and to name blocks by their offsets. Worker threads never call cmocka's assertions
 * (they longjmp to the test's thread): they record what they saw, and the test thread checks it
 * while they are parked or after they are joined. No check depends on timing or scheduling.
 */
#include "internal.h"

#include "testutil.h"

#include <limits.h>
#include <pthread.h>

/* The largest chunk a thread takes (NA_TCACHE_MAX in src/tcache.c): `cached` is at most this
 * much per thread that allocated. */
#define MAX_CHUNK ((size_t)1 << 20)

static nalloc_arena *arena_of(size_t capacity, bool cache)
{
    nalloc_arena_config c;
    nalloc_arena_config_init(&c, NALLOC_KIND_SCRATCH, NALLOC_MEMORY_HOST, capacity);
    c.flags |= NALLOC_FLAG_NORESERVE;
    if (cache)
        c.flags |= NALLOC_FLAG_THREAD_CACHE;
    return make_arena_with(&c);
}

/* The arena's offset: the end of everything handed out, cached or deferred (white box). */
static size_t raw_offset(const nalloc_arena *a)
{
    return na_atomic_load((size_t *)&a->bump.offset);
}

static size_t offset_of(const nalloc_arena *a, const void *p)
{
    return (size_t)((uintptr_t)p - a->bump.base);
}

/* True when every byte of [p, p + n) reads zero, memory the arena may have taken back included
 * (not instrumented: see peek_released). */
__attribute__((no_sanitize_address, noinline)) static bool released_zero(const void *p, size_t n)
{
#if NALLOC_TEST_VALGRIND_HEADERS
    VALGRIND_DISABLE_ERROR_REPORTING;
#endif
    const volatile unsigned char *b = p;
    bool zero = true;
    for (size_t i = 0; i < n && zero; i++)
        zero = b[i] == 0;
#if NALLOC_TEST_VALGRIND_HEADERS
    VALGRIND_ENABLE_ERROR_REPORTING;
#endif
    return zero;
}

/* ---------------------------------------------------------------------------------------------
 * One thread: the same layout with and without the cache
 * ------------------------------------------------------------------------------------------- */

#define TWIN_BLOCKS 512
#define TWIN_MARKS 8

/* The same requests on two arenas, one without the cache (0) and one with it (1). Blocks are
 * kept as offsets, which must be the same in both. */
typedef struct twin {
    nalloc_arena *a[2];
    size_t capacity;
    size_t off[TWIN_BLOCKS], size[TWIN_BLOCKS]; /* live blocks, oldest first */
    size_t count;
    nalloc_mark marks[2][TWIN_MARKS];
    size_t mark_count[TWIN_MARKS]; /* blocks live when the mark was taken */
    size_t marks_taken;
    uint64_t rng;
} twin;

static void *ptr_in(const twin *t, int i, size_t off)
{
    return (void *)(t->a[i]->bump.base + off);
}

/* Everything the two arenas report is the same, but for what the cache adds: its chunk's
 * remainder (cached, at most one chunk), a high-water mark that counts it, and wipes that
 * zero it. */
static void twin_check(const twin *t, const char *after)
{
    nalloc_stats p = stats_of(t->a[0]), c = stats_of(t->a[1]);
    if (p.used != c.used || p.allocations != c.allocations || p.failures != c.failures ||
        p.padding != c.padding || p.layout_digest != c.layout_digest || p.rollbacks != c.rollbacks ||
        p.resets != c.resets || p.wipes != c.wipes)
        fail_msg("after %s: used %zu/%zu allocations %zu/%zu failures %zu/%zu padding %zu/%zu "
                 "digest %llx/%llx", after, p.used, c.used, p.allocations, c.allocations,
                 p.failures, c.failures, p.padding, c.padding,
                 (unsigned long long)p.layout_digest, (unsigned long long)c.layout_digest);
    assert_int_equal(p.cached, 0);
    assert_int_equal(p.deferred, 0);
    assert_int_equal(c.deferred, 0); /* one thread never leaves a stretch behind */
    assert_true(c.cached <= MAX_CHUNK);
    assert_int_equal(c.used + c.cached, raw_offset(t->a[1]));
    assert_int_equal(p.used, raw_offset(t->a[0]));
    assert_true(c.high_water >= p.high_water && c.high_water <= p.high_water + MAX_CHUNK);
    assert_true(c.wiped_bytes >= p.wiped_bytes);
}

static size_t twin_size(twin *t)
{
    uint64_t r = test_rand(&t->rng);
    size_t used = stats_of(t->a[0]).used, room = t->capacity - used;
    switch (r % 16) {
    case 0: case 1: case 2: case 3: case 4: case 5:
        return 1 + (r >> 8) % 700;
    case 6: case 7:
        return 700 + (r >> 8) % (16 * KiB);
    case 8:
        return 16 * KiB + (r >> 8) % (240 * KiB);
    case 9: /* more than a quarter of the largest chunk: bypasses chunks */
        return 256 * KiB + (r >> 8) % (2 * MiB);
    case 10:
        return room > 0 ? room : 1;
    case 11:
        return room + 1;
    case 12:
        return room > 100 ? room - (r >> 8) % 100 : 1;
    default:
        return 64 * (1 + (r >> 8) % 16);
    }
}

/* Returns the block's offset, or SIZE_MAX for NULL; fails the test if the twins disagree. */
static size_t twin_result(twin *t, void *p0, nalloc_status e0, void *p1, nalloc_status e1,
                          const char *what)
{
    size_t o0 = p0 ? offset_of(t->a[0], p0) : SIZE_MAX, o1 = p1 ? offset_of(t->a[1], p1) : SIZE_MAX;
    if (o0 != o1 || (!p0 && e0 != e1))
        fail_msg("%s: offset %zd without the cache, %zd with it (errors %d, %d)", what,
                 (ptrdiff_t)o0, (ptrdiff_t)o1, (int)e0, (int)e1);
    return o0;
}

static void twin_push(twin *t, size_t off, size_t size)
{
    if (off == SIZE_MAX || t->count == TWIN_BLOCKS)
        return;
    t->off[t->count] = off;
    t->size[t->count++] = size;
}

static void twin_step(twin *t)
{
    uint64_t r = test_rand(&t->rng);
    void *p[2];
    nalloc_status e[2], st[2];
    size_t top = t->count ? t->count - 1 : 0;
    switch (r % 20) {
    case 0: case 1: case 2: case 3: case 4: case 5: {
        size_t size = twin_size(t);
        for (int i = 0; i < 2; i++) {
            p[i] = nalloc_alloc(t->a[i], size);
            e[i] = nalloc_last_error();
        }
        twin_push(t, twin_result(t, p[0], e[0], p[1], e[1], "alloc"), size);
        break;
    }
    case 6: case 7: {
        size_t size = twin_size(t), align = (size_t)1 << ((r >> 8) % 14);
        for (int i = 0; i < 2; i++) {
            p[i] = nalloc_alloc_aligned(t->a[i], size, align);
            e[i] = nalloc_last_error();
        }
        twin_push(t, twin_result(t, p[0], e[0], p[1], e[1], "alloc_aligned"), size);
        break;
    }
    case 8: {
        size_t count = 1 + (r >> 8) % 64, size = 1 + (r >> 16) % 64;
        for (int i = 0; i < 2; i++) {
            p[i] = nalloc_alloc_zeroed(t->a[i], count, size, 0);
            e[i] = nalloc_last_error();
        }
        twin_push(t, twin_result(t, p[0], e[0], p[1], e[1], "alloc_zeroed"), count * size);
        break;
    }
    case 9: case 10: case 11: { /* the newest block, an older one, or a wrong size */
        if (t->count == 0)
            break;
        unsigned v = (unsigned)(r >> 8) % 4;
        size_t which = v == 1 && t->count > 1 ? top - 1 : top;
        size_t size = t->size[which] + (v == 2);
        for (int i = 0; i < 2; i++)
            st[i] = nalloc_free_last(t->a[i], ptr_in(t, i, t->off[which]), size);
        assert_int_equal(st[0], st[1]);
        if (st[0] == NALLOC_OK) {
            assert_int_equal(which, top);
            t->count--;
        }
        break;
    }
    case 12: case 13: {
        if (t->count == 0)
            break;
        size_t size = twin_size(t);
        for (int i = 0; i < 2; i++)
            st[i] = nalloc_resize_last(t->a[i], ptr_in(t, i, t->off[top]), t->size[top], size);
        if (st[0] != st[1])
            fail_msg("resize_last %zu -> %zu at %zu: %d without the cache, %d with it",
                     t->size[top], size, t->off[top], (int)st[0], (int)st[1]);
        if (st[0] == NALLOC_OK)
            t->size[top] = size;
        break;
    }
    case 14: { /* the newest block or an older one */
        if (t->count == 0)
            break;
        size_t which = (r >> 8) % 3 == 0 && t->count > 1 ? top - 1 : top;
        size_t size = twin_size(t), align = (r >> 16) % 2 ? 0 : (size_t)1 << ((r >> 20) % 13);
        for (int i = 0; i < 2; i++) {
            p[i] = nalloc_realloc(t->a[i], ptr_in(t, i, t->off[which]), t->size[which], size, align);
            e[i] = nalloc_last_error();
        }
        size_t off = twin_result(t, p[0], e[0], p[1], e[1], "realloc");
        if (off == t->off[which])
            t->size[which] = size;
        else
            twin_push(t, off, size);
        break;
    }
    case 15: case 16: {
        size_t k = t->marks_taken++ % TWIN_MARKS;
        for (int i = 0; i < 2; i++)
            t->marks[i][k] = nalloc_mark_get(t->a[i]);
        assert_int_equal(t->marks[0][k].offset, t->marks[1][k].offset); /* private, read to compare */
        t->mark_count[k] = t->count;
        break;
    }
    case 17: {
        if (t->marks_taken == 0)
            break;
        size_t k = (r >> 8) % (t->marks_taken < TWIN_MARKS ? t->marks_taken : TWIN_MARKS);
        for (int i = 0; i < 2; i++)
            st[i] = nalloc_rollback(t->a[i], t->marks[i][k]);
        assert_int_equal(st[0], st[1]);
        if (st[0] == NALLOC_OK) {
            while (t->count > 0 && t->off[t->count - 1] >= t->marks[0][k].offset)
                t->count--;
        }
        break;
    }
    case 18:
        for (int i = 0; i < 2; i++)
            st[i] = nalloc_reset(t->a[i]);
        assert_int_equal(st[0], NALLOC_OK);
        assert_int_equal(st[1], NALLOC_OK);
        t->count = 0;
        break;
    default:
        for (int i = 0; i < 2; i++)
            assert_int_equal(nalloc_wipe(t->a[i]), NALLOC_OK);
        t->count = 0;
        break;
    }
}

static void test_one_thread_lays_out_blocks_as_without_the_cache(void **state)
{
    (void)state;
    /* Roomy, tight (exhausted often) and odd-sized arenas. */
    const size_t capacities[] = {64 * MiB, 1 * MiB, 3 * MiB + 4097};
    for (unsigned c = 0; c < sizeof capacities / sizeof capacities[0]; c++)
        for (uint64_t seed = 1; seed <= 6; seed++) {
            twin t;
            memset(&t, 0, sizeof t);
            t.capacity = capacities[c];
            t.rng = seed * UINT64_C(0x9e3779b97f4a7c15) + c;
            t.a[0] = arena_of(t.capacity, false);
            t.a[1] = arena_of(t.capacity, true);
            char what[64];
            for (int step = 0; step < 1500; step++) {
                twin_step(&t);
                snprintf(what, sizeof what, "step %d (capacity %zu, seed %llu)", step, t.capacity,
                         (unsigned long long)seed);
                twin_check(&t, what);
            }
            nalloc_arena_destroy(t.a[0]);
            nalloc_arena_destroy(t.a[1]);
        }
}

static void test_a_request_too_big_for_a_chunk_lands_where_it_would_without_the_cache(void **state)
{
    (void)state;
    nalloc_arena *a[2] = {arena_of(64 * MiB, false), arena_of(64 * MiB, true)};
    size_t off[2][4];
    for (int i = 0; i < 2; i++) {
        char *small = nalloc_alloc(a[i], 64);
        char *big = nalloc_alloc(a[i], 300 * KiB); /* bigger than a quarter of the largest chunk */
        char *after = nalloc_alloc(a[i], 64);
        assert_non_null(small);
        assert_non_null(big);
        assert_non_null(after);
        off[i][0] = offset_of(a[i], small);
        off[i][1] = offset_of(a[i], big);
        off[i][2] = offset_of(a[i], after);
        assert_int_equal(nalloc_free_last(a[i], after, 64), NALLOC_OK);
        /* The big block, not in any chunk, is now the newest block again. */
        assert_int_equal(nalloc_free_last(a[i], big, 300 * KiB), NALLOC_OK);
        off[i][3] = stats_of(a[i]).used;
    }
    assert_memory_equal(off[0], off[1], sizeof off[0]);
    assert_int_equal(off[1][1], 64);
    assert_int_equal(stats_of(a[0]).layout_digest, stats_of(a[1]).layout_digest);
    assert_int_equal(stats_of(a[1]).deferred, 0);
    for (int i = 0; i < 2; i++)
        nalloc_arena_destroy(a[i]);
}

/* Lanes that share the room left take it from where the last block ends, not from the end of
 * the thread's chunk: the same lanes as without the cache. */
static void test_lanes_split_from_one_thread_are_the_same_as_without_the_cache(void **state)
{
    (void)state;
    nalloc_stats lane[2][2], parent[2];
    for (int i = 0; i < 2; i++) {
        nalloc_arena *a = arena_of(64 * MiB, i == 1);
        assert_non_null(nalloc_alloc(a, 4000));
        assert_non_null(nalloc_alloc(a, 200)); /* the chunk grows past the next page */
        nalloc_arena *lanes[2];
        assert_int_equal(nalloc_arena_split(a, 2, 0, lanes), NALLOC_OK);
        for (int k = 0; k < 2; k++) {
            lane[i][k] = stats_of(lanes[k]);
            lane[i][k].base -= a->bump.base;
        }
        parent[i] = stats_of(a);
        nalloc_arena_destroy(a);
    }
    for (int k = 0; k < 2; k++) {
        assert_int_equal(lane[0][k].base, lane[1][k].base);
        assert_int_equal(lane[0][k].capacity, lane[1][k].capacity);
    }
    assert_int_equal(parent[0].used, parent[1].used);
    assert_int_equal(parent[0].layout_digest, parent[1].layout_digest);
}

/* ---------------------------------------------------------------------------------------------
 * A helper thread that allocates on command, so that two threads' chunks interleave in an order
 * fixed by the test, not by the scheduler.
 * ------------------------------------------------------------------------------------------- */

typedef struct helper {
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    nalloc_arena *arena;
    size_t request;  /* bytes to allocate next; 0: none pending */
    bool zeroed;     /* with nalloc_alloc_zeroed (and checked), else filled with 0x5a */
    bool free_after; /* give the block back at once (the thread's newest: inside its chunk) */
    bool quit;
    void *result;
    bool not_zero;   /* a zeroed block did not read zero */
    nalloc_status freed; /* what free_last answered */
} helper;

static void *helper_main(void *arg)
{
    helper *h = arg;
    pthread_mutex_lock(&h->lock);
    for (;;) {
        while (h->request == 0 && !h->quit)
            pthread_cond_wait(&h->cond, &h->lock);
        if (h->request == 0)
            break;
        size_t n = h->request;
        unsigned char *p = h->zeroed ? nalloc_alloc_zeroed(h->arena, 1, n, 0) : nalloc_alloc(h->arena, n);
        for (size_t i = 0; p != NULL && h->zeroed && i < n; i++)
            h->not_zero |= p[i] != 0;
        if (p != NULL)
            memset(p, 0x5a, n);
        if (p != NULL && h->free_after)
            h->freed = nalloc_free_last(h->arena, p, n);
        h->result = p;
        h->request = 0;
        pthread_cond_broadcast(&h->cond);
    }
    pthread_mutex_unlock(&h->lock);
    return NULL;
}

/* On the heap: a test that fails leaves its helper waiting on memory no later test reuses. */
static helper *helper_start(nalloc_arena *a)
{
    helper *h = calloc(1, sizeof *h);
    assert_non_null(h);
    h->arena = a;
    pthread_mutex_init(&h->lock, NULL);
    pthread_cond_init(&h->cond, NULL);
    assert_int_equal(pthread_create(&h->thread, NULL, helper_main, h), 0);
    return h;
}

/* The helper allocates `size` bytes now (zeroed or filled with 0x5a, and given back at once if
 * asked) and keeps its chunk; returns the block. */
static void *helper_do(helper *h, size_t size, bool zeroed, bool free_after)
{
    pthread_mutex_lock(&h->lock);
    h->request = size;
    h->zeroed = zeroed;
    h->free_after = free_after;
    pthread_cond_broadcast(&h->cond);
    while (h->request != 0)
        pthread_cond_wait(&h->cond, &h->lock);
    void *p = h->result;
    pthread_mutex_unlock(&h->lock);
    if (free_after)
        assert_int_equal(h->freed, NALLOC_OK);
    assert_false(h->not_zero);
    return p;
}

static void *helper_alloc(helper *h, size_t size)
{
    return helper_do(h, size, false, false);
}

/* The helper thread exits (giving its chunk back) and is joined. */
static void helper_exit(helper *h)
{
    pthread_mutex_lock(&h->lock);
    h->quit = true;
    pthread_cond_broadcast(&h->cond);
    pthread_mutex_unlock(&h->lock);
    assert_int_equal(pthread_join(h->thread, NULL), 0);
    pthread_mutex_destroy(&h->lock);
    pthread_cond_destroy(&h->cond);
    free(h);
}

/* ---------------------------------------------------------------------------------------------
 * The newest block of a thread, inside its chunk
 * ------------------------------------------------------------------------------------------- */

static void test_a_thread_frees_resizes_and_reallocs_its_newest_block_inside_its_chunk(void **state)
{
    (void)state;
    nalloc_arena *a = arena_of(64 * MiB, true);
    helper *h = helper_start(a);
    char *p = nalloc_alloc(a, 100);
    assert_non_null(p);
    char *other = helper_alloc(h, 100); /* another thread's chunk, above ours */
    assert_non_null(other);
    assert_true(other > p + 100);

    /* Ours is the newest block of our chunk: it goes back although another thread allocated. */
    assert_int_equal(nalloc_free_last(a, p, 100), NALLOC_OK);
    char *q = nalloc_alloc(a, 200);
    assert_ptr_equal(q, p);
    memset(q, 0x11, 200);
    assert_int_equal(nalloc_resize_last(a, q, 200, 1000), NALLOC_OK);
    memset(q, 0x22, 1000);
    assert_ptr_equal(nalloc_realloc(a, q, 1000, 2000, 0), q);
    assert_int_equal(nalloc_resize_last(a, q, 2000, 300), NALLOC_OK);
    assert_int_equal(stats_of(a).failures, 0);

    /* Not the newest (a wrong size, or an older block): refused, nothing changes. */
    nalloc_stats before = stats_of(a);
    assert_int_equal(nalloc_free_last(a, q, 299), NALLOC_ERR_STATE);
    assert_int_equal(nalloc_free_last(a, other, 100), NALLOC_ERR_STATE); /* the helper's */
    assert_int_equal(stats_of(a).used, before.used);

    /* Growing past the chunk's end, with the helper's chunk after it: the block cannot grow in
     * place, though the arena has room. That is "not the last block" (NALLOC_ERR_STATE), not an
     * arena out of room; like every refused resize_last, it counts as a failure. */
    size_t past = 2 * MiB;
    assert_int_equal(nalloc_resize_last(a, q, 300, past), NALLOC_ERR_STATE);
    assert_int_equal(stats_of(a).failures, 1);
    /* realloc moves it instead, with its contents. */
    char *moved = nalloc_realloc(a, q, 300, past, 0);
    assert_non_null(moved);
    assert_true(moved != q);
    for (size_t i = 0; i < 300; i++)
        assert_int_equal((unsigned char)moved[i], 0x22);
    for (size_t i = 0; i < 100; i++)
        assert_int_equal((unsigned char)other[i], 0x5a);

    helper_exit(h);
    nalloc_arena_destroy(a);
}

/* A size that makes the thread's newest block reach into its chunk's unused remainder (up to the
 * arena's offset, which is the chunk's end) is no block: refused, or the chunk would keep handing
 * out bytes the offset no longer covers, and a later block would overlap them. */
static void test_a_wrong_size_reaching_into_the_remainder_is_refused(void **state)
{
    (void)state;
    nalloc_arena *a = arena_of(64 * MiB, true);
    char *p = nalloc_alloc(a, 100);
    assert_non_null(p);
    size_t end = raw_offset(a);
    assert_true(end > 100); /* the chunk's end */
    assert_int_equal(nalloc_free_last(a, p, end), NALLOC_ERR_STATE);
    assert_int_equal(nalloc_free_last(a, p, 101), NALLOC_ERR_STATE);
    assert_int_equal(nalloc_resize_last(a, p, end, 10), NALLOC_ERR_STATE);
    assert_int_equal(nalloc_resize_last(a, (char *)p + end, 0, 64), NALLOC_ERR_STATE);
    assert_int_equal(raw_offset(a), end);
    /* Whatever comes next is disjoint from p. */
    char *q = nalloc_alloc(a, 64);
    char *big = nalloc_alloc(a, 300 * KiB);
    assert_true(q >= p + 100 && big >= q + 64);
    assert_int_equal(nalloc_free_last(a, p, 100), NALLOC_ERR_STATE);
    nalloc_arena_destroy(a);
}

/* The same from another thread: a range that ends at the arena's offset but covers the unused
 * remainder of someone else's chunk is refused, or that thread would go on handing out bytes the
 * offset no longer covers. */
static void test_a_wrong_size_reaching_into_another_threads_remainder_is_refused(void **state)
{
    (void)state;
    nalloc_arena *a = arena_of(64 * MiB, true);
    char *mine = nalloc_alloc(a, 64);
    helper *h = helper_start(a);
    char *theirs = helper_do(h, 64, false, false); /* its chunk is the last thing in the arena */
    assert_true(theirs > mine);
    size_t end = raw_offset(a);
    assert_int_equal(nalloc_free_last(a, theirs, end - offset_of(a, theirs)), NALLOC_ERR_STATE);
    assert_int_equal(nalloc_resize_last(a, theirs, end - offset_of(a, theirs), 1), NALLOC_ERR_STATE);
    assert_int_equal(raw_offset(a), end);
    char *big = nalloc_alloc(a, 300 * KiB); /* from the offset */
    char *next = helper_do(h, 64, false, false);
    assert_true(big >= theirs + 64 && next >= theirs + 64 && (next + 64 <= big || next >= big + 300 * KiB));
    helper_exit(h);
    nalloc_arena_destroy(a);
}

/* ---------------------------------------------------------------------------------------------
 * Marks
 * ------------------------------------------------------------------------------------------- */

static void test_a_mark_gives_the_threads_chunk_back(void **state)
{
    (void)state;
    nalloc_arena *a = arena_of(64 * MiB, true);
    assert_non_null(nalloc_alloc(a, 100));
    nalloc_stats s = stats_of(a);
    assert_true(s.cached > 0);
    nalloc_mark m = nalloc_mark_get(a);
    s = stats_of(a);
    assert_int_equal(s.cached, 0);
    assert_int_equal(s.used, 100);
    assert_int_equal(raw_offset(a), 100);
    char *p = nalloc_alloc(a, 1000);
    assert_int_equal(offset_of(a, p), 128); /* right at the mark */
    assert_int_equal(nalloc_rollback(a, m), NALLOC_OK);
    s = stats_of(a);
    assert_int_equal(s.used, 100);
    assert_int_equal(s.cached, 0);
    assert_int_equal(raw_offset(a), 100);
    nalloc_arena_destroy(a);
}

/* A stretch left below the offset by an exited thread must not take what is allocated after a
 * mark: that would lie below the mark, and the rollback would not release it. */
static void test_what_a_thread_allocates_after_its_mark_lies_above_it(void **state)
{
    (void)state;
    nalloc_arena *a = arena_of(64 * MiB, true);
    helper *h = helper_start(a);
    assert_non_null(helper_alloc(h, 64)); /* the helper's chunk first */
    assert_non_null(nalloc_alloc(a, 64));  /* then ours, above it */
    helper_exit(h); /* its remainder cannot go back to the offset: a free stretch */
    nalloc_stats s = stats_of(a);
    assert_true(s.deferred > 0);
    size_t used_at_mark = s.used, deferred_at_mark = s.deferred;

    nalloc_mark m = nalloc_mark_get(a);
    for (int i = 0; i < 20; i++) {
        char *p = nalloc_alloc(a, 100);
        assert_non_null(p);
        assert_true(offset_of(a, p) >= m.offset); /* private, read to check the promise */
    }
    assert_int_equal(nalloc_rollback(a, m), NALLOC_OK);
    s = stats_of(a);
    assert_int_equal(s.used, used_at_mark);
    assert_int_equal(s.cached, 0);
    assert_int_equal(s.used + s.cached + s.deferred, raw_offset(a));
    assert_true(s.deferred <= deferred_at_mark + (m.offset - used_at_mark));
    nalloc_arena_destroy(a);
}

/* A mark taken by a thread with no chunk of its own in `a` (one made for it), as a coordinator
 * thread takes marks while the workers allocate. */
static void *take_mark(void *arg)
{
    nalloc_arena **a = arg;
    nalloc_mark *m = malloc(sizeof *m);
    if (m != NULL)
        *m = nalloc_mark_get(*a);
    return m;
}

static nalloc_mark mark_elsewhere(nalloc_arena *a)
{
    pthread_t t;
    void *m = NULL;
    assert_int_equal(pthread_create(&t, NULL, take_mark, &a), 0);
    assert_int_equal(pthread_join(t, &m), 0);
    assert_non_null(m);
    nalloc_mark copy = *(nalloc_mark *)m;
    free(m);
    return copy;
}

/* Another thread's mark does not pin the newest block inside its thread's chunk (a rollback to
 * it never reaches below the chunk's end), but the block may not grow past the chunk over that
 * mark: a rollback would release the block's tail while it lives, as without the cache. */
static void test_a_block_does_not_grow_past_another_threads_mark(void **state)
{
    (void)state;
    nalloc_arena *a = arena_of(64 * MiB, true);
    char *x = nalloc_alloc(a, 100);
    assert_non_null(x);
    size_t chunk_end = raw_offset(a);
    nalloc_mark m = mark_elsewhere(a);
    assert_int_equal(m.offset, chunk_end);

    assert_int_equal(nalloc_resize_last(a, x, 100, 200), NALLOC_OK); /* inside the chunk */
    size_t past = chunk_end + 4096 - offset_of(a, x);
    assert_int_equal(nalloc_resize_last(a, x, 200, past), NALLOC_ERR_STATE);
    assert_int_equal(raw_offset(a), chunk_end);
    memset(x, 0x5a, 200);
    char *moved = nalloc_realloc(a, x, 200, past, 0); /* moves instead */
    assert_non_null(moved);
    assert_true(moved != x);
    for (size_t i = 0; i < 200; i++)
        assert_int_equal((unsigned char)moved[i], 0x5a);

    assert_int_equal(nalloc_rollback(a, m), NALLOC_OK);
    char *y = nalloc_alloc(a, 4096);
    assert_non_null(y);
    assert_true(offset_of(a, y) >= offset_of(a, x) + 200); /* x (still live) is not handed out */
    nalloc_arena_destroy(a);
}

/* The block a split lends to lanes is out of the parent's reach while they live (nalloc.h), even
 * when it came from the splitting thread's chunk: free_last and resize_last refuse it. */
static void test_free_last_cannot_reach_the_block_lent_to_lanes(void **state)
{
    (void)state;
    nalloc_arena *p = arena_of(64 * MiB, true), *lanes[2];
    assert_non_null(nalloc_alloc(p, 64)); /* this thread has a chunk */
    assert_int_equal(nalloc_arena_split(p, 2, 4096, lanes), NALLOC_OK);
    nalloc_stats first = stats_of(lanes[0]), second = stats_of(lanes[1]);
    char *block = (char *)first.base;
    size_t size = second.base + second.capacity - first.base;
    assert_int_equal(nalloc_free_last(p, block, size), NALLOC_ERR_STATE);
    assert_int_equal(nalloc_resize_last(p, block, size, size + 64), NALLOC_ERR_STATE);
    char *after = nalloc_alloc(p, 64);
    assert_non_null(after);
    assert_true((uintptr_t)after >= second.base + second.capacity);
    char *l = nalloc_alloc(lanes[0], 64);
    assert_non_null(l);
    memset(l, 0x11, 64);
    memset(after, 0x22, 64);
    assert_int_equal((unsigned char)l[0], 0x11);
    assert_int_equal(nalloc_arena_destroy(lanes[0]), NALLOC_OK);
    assert_int_equal(nalloc_arena_destroy(lanes[1]), NALLOC_OK);
    nalloc_arena_destroy(p);
}

/* A request that fails keeps the thread's chunk, whatever the reason (no room, an alignment the
 * arena cannot give), so a request that fitted before it fits after it, even with another
 * thread's mark above the chunk (a remainder given back there could not be reused). */
static void test_a_failed_request_keeps_the_threads_chunk(void **state)
{
    (void)state;
    nalloc_arena *a = arena_of(64 * KiB, true);
    assert_non_null(nalloc_alloc(a, 100));
    (void)mark_elsewhere(a);
    nalloc_stats before = stats_of(a);
    assert_true(before.cached > 0);
    assert_null(nalloc_alloc_aligned(a, 16, (size_t)1 << 40));
    assert_null(nalloc_alloc(a, 64 * KiB));
    nalloc_stats after = stats_of(a);
    assert_int_equal(after.cached, before.cached);
    assert_int_equal(after.deferred, before.deferred);
    assert_int_equal(after.used, before.used);
    assert_non_null(nalloc_alloc(a, 100));
    nalloc_arena_destroy(a);
}

/* ---------------------------------------------------------------------------------------------
 * Statistics at quiescence
 * ------------------------------------------------------------------------------------------- */

#define QUIET_THREADS 8
#define QUIET_BLOCKS 300

typedef struct quiet_worker {
    pthread_t thread;
    nalloc_arena *arena;
    pthread_barrier_t *parked; /* crossed in pairs: the workers park, the test looks, they go on */
    uint64_t rng;
    size_t allocated, freed; /* bytes asked for by successful calls, and given back */
    size_t failures, refused; /* NULLs; free_last refusals of the thread's newest block */
    char *last;
    size_t last_size;
} quiet_worker;

static void *quiet_work(void *arg)
{
    quiet_worker *w = arg;
    for (int i = 0; i < QUIET_BLOCKS; i++) {
        uint64_t r = test_rand(&w->rng);
        size_t size = 1 + (r >> 8) % 3000, align = (size_t)1 << ((r >> 24) % 10);
        char *p = r % 3 ? nalloc_alloc(w->arena, size) : nalloc_alloc_aligned(w->arena, size, align);
        if (p == NULL) {
            w->failures++;
            continue;
        }
        w->allocated += size;
        w->last = p;
        w->last_size = size;
    }
    pthread_barrier_wait(w->parked);
    pthread_barrier_wait(w->parked);
    /* Every block was small enough for a chunk: the newest is in ours, and goes back. */
    if (w->last != NULL && nalloc_free_last(w->arena, w->last, w->last_size) != NALLOC_OK)
        w->refused++;
    else
        w->freed += w->last_size;
    pthread_barrier_wait(w->parked);
    pthread_barrier_wait(w->parked); /* the test has looked: exit */
    return NULL;
}

static void quiet_check(nalloc_arena *a, size_t live, unsigned threads, const char *when)
{
    nalloc_stats s = stats_of(a);
    if (s.used != live + s.padding)
        fail_msg("%s: used %zu, but %zu bytes are live and %zu are padding (cached %zu, deferred "
                 "%zu, offset %zu)", when, s.used, live, s.padding, s.cached, s.deferred,
                 raw_offset(a));
    assert_int_equal(s.used + s.cached + s.deferred, raw_offset(a));
    assert_true(s.cached <= threads * MAX_CHUNK);
    assert_true(s.high_water >= raw_offset(a));
}

static void test_statistics_are_exact_when_every_thread_is_parked(void **state)
{
    (void)state;
    nalloc_arena *a = arena_of(256 * MiB, true);
    pthread_barrier_t parked;
    pthread_barrier_init(&parked, NULL, QUIET_THREADS + 1);
    quiet_worker w[QUIET_THREADS];
    for (unsigned i = 0; i < QUIET_THREADS; i++) {
        w[i] = (quiet_worker){.arena = a, .parked = &parked, .rng = 0x1234567u * (i + 1)};
        assert_int_equal(pthread_create(&w[i].thread, NULL, quiet_work, &w[i]), 0);
    }
    pthread_barrier_wait(&parked);
    size_t allocated = 0, freed = 0;
    for (unsigned i = 0; i < QUIET_THREADS; i++) {
        assert_int_equal(w[i].failures, 0);
        allocated += w[i].allocated;
    }
    assert_int_equal(stats_of(a).allocations, QUIET_THREADS * QUIET_BLOCKS);
    quiet_check(a, allocated, QUIET_THREADS, "allocated");
    assert_true(stats_of(a).cached > 0);
    pthread_barrier_wait(&parked);

    pthread_barrier_wait(&parked);
    for (unsigned i = 0; i < QUIET_THREADS; i++) {
        assert_int_equal(w[i].refused, 0);
        freed += w[i].freed;
    }
    quiet_check(a, allocated - freed, QUIET_THREADS, "freed");

    pthread_barrier_wait(&parked);
    for (unsigned i = 0; i < QUIET_THREADS; i++)
        assert_int_equal(pthread_join(w[i].thread, NULL), 0);
    /* Exited threads gave their chunks back: nothing is cached any more. */
    quiet_check(a, allocated - freed, QUIET_THREADS, "exited");
    assert_int_equal(stats_of(a).cached, 0);
    pthread_barrier_destroy(&parked);

    assert_int_equal(nalloc_reset(a), NALLOC_OK);
    nalloc_stats s = stats_of(a);
    assert_int_equal(s.used, 0);
    assert_int_equal(s.cached, 0);
    assert_int_equal(s.deferred, 0);
    assert_int_equal(raw_offset(a), 0);
    nalloc_arena_destroy(a);
}

/* ---------------------------------------------------------------------------------------------
 * N threads in phases, a controller taking marks and statistics, boundaries with all parked
 * ------------------------------------------------------------------------------------------- */

#define PATTERN 32 /* bytes written and read back at each end of a block */

typedef struct pblock {
    unsigned char *ptr;
    size_t size, align;
    unsigned phase;
    unsigned char tag;
} pblock;

typedef struct phases phases;

typedef struct pworker {
    pthread_t thread;
    phases *run;
    unsigned id;
    uint64_t rng;
    pblock *blocks; /* live blocks, oldest first; the newest of this phase is freed or resized */
    size_t count, room;
    size_t allocations, failures; /* NULLs and resize_last out of room */
    size_t refused; /* resize_last refusals (not the newest block): stats count those too */
    size_t handed; /* bytes of this phase's blocks the thread holds: used grows by this + padding */
    unsigned char next_tag;
    const char *broken; /* the first thing that went wrong, or NULL */
} pworker;

struct phases {
    nalloc_arena *arena;
    pthread_barrier_t start, stop;
    unsigned workers, phase;
    size_t ops;
    unsigned finished; /* workers done with this phase (atomic) */
};

static void pfill(const pblock *b)
{
    size_t head = b->size < PATTERN ? b->size : PATTERN;
    memset(b->ptr, b->tag, head);
    memset(b->ptr + b->size - head, b->tag, head);
}

static bool pintact(const pblock *b)
{
    size_t head = b->size < PATTERN ? b->size : PATTERN;
    for (size_t i = 0; i < head; i++)
        if (b->ptr[i] != b->tag || b->ptr[b->size - 1 - i] != b->tag)
            return false;
    return true;
}

static size_t psize(uint64_t r)
{
    switch (r % 64) {
    case 0: /* too big for a chunk */
        return 256 * KiB + 1 + (r >> 8) % (64 * KiB);
    case 1: case 2: case 3:
        return 4 * KiB + (r >> 8) % (60 * KiB);
    default:
        return 1 + (r >> 8) % 1500;
    }
}

static void pkeep(pworker *w, unsigned char *p, size_t size, size_t align)
{
    if (w->count == w->room) {
        w->broken = "more blocks than the test has room for";
        return;
    }
    pblock b = {p, size, align, w->run->phase, (unsigned char)(1 + (w->id * 37 + w->next_tag++) % 255)};
    if ((uintptr_t)p % align != 0)
        w->broken = "a block is not aligned";
    pfill(&b);
    w->blocks[w->count++] = b;
    w->allocations++;
    w->handed += size;
}

static void pstep(pworker *w)
{
    nalloc_arena *a = w->run->arena;
    uint64_t r = test_rand(&w->rng);
    pblock *top = w->count > 0 && w->blocks[w->count - 1].phase == w->run->phase
                      ? &w->blocks[w->count - 1]
                      : NULL;
    unsigned kind = (unsigned)(r % 100);
    if (kind < 40 || (kind >= 60 && top == NULL)) {
        size_t size = psize(r >> 8);
        unsigned char *p = nalloc_alloc(a, size);
        if (p == NULL)
            w->failures++;
        else
            pkeep(w, p, size, size >= MiB ? 4096 : 64);
    } else if (kind < 55) {
        size_t size = 1 + (r >> 8) % 3000, align = (size_t)1 << ((r >> 24) % 13);
        unsigned char *p = nalloc_alloc_aligned(a, size, align);
        if (p == NULL)
            w->failures++;
        else
            pkeep(w, p, size, align);
    } else if (kind < 60) {
        size_t count = 1 + (r >> 8) % 40, size = 1 + (r >> 16) % 40;
        unsigned char *p = nalloc_alloc_zeroed(a, count, size, 0);
        if (p == NULL) {
            w->failures++;
            return;
        }
        for (size_t i = 0; i < count * size; i++)
            if (p[i] != 0)
                w->broken = "nalloc_alloc_zeroed gave bytes that are not zero";
        pkeep(w, p, count * size, 64);
    } else if (kind < 75) {
        nalloc_status st = nalloc_free_last(a, top->ptr, top->size);
        if (st == NALLOC_OK) {
            w->handed -= top->size;
            w->count--;
        } else if (st != NALLOC_ERR_STATE) {
            w->broken = "free_last of the newest block: neither done nor refused";
        }
    } else if (kind < 90) {
        size_t size = psize(r >> 8);
        nalloc_status st = nalloc_resize_last(a, top->ptr, top->size, size);
        if (st == NALLOC_OK) {
            w->handed += size - top->size;
            top->size = size;
            pfill(top);
        } else if (st == NALLOC_ERR_NOMEM) {
            w->failures++;
        } else if (st == NALLOC_ERR_STATE) {
            w->refused++;
        } else {
            w->broken = "resize_last of the newest block: neither done nor refused";
        }
    } else {
        size_t size = psize(r >> 8);
        unsigned char *q = nalloc_realloc(a, top->ptr, top->size, size, 0);
        if (q == NULL) {
            w->failures++;
            return;
        }
        size_t kept = top->size < size ? top->size : size;
        for (size_t i = 0; i < kept && i < PATTERN; i++)
            if (q[i] != top->tag)
                w->broken = "realloc lost the block's contents";
        if (q == top->ptr) {
            w->handed += size - top->size;
            top->size = size;
            pfill(top);
        } else {
            pkeep(w, q, size, size >= MiB ? 4096 : 64); /* the old block stays live */
        }
    }
}

static void *pwork(void *arg)
{
    pworker *w = arg;
    phases *run = w->run;
    for (;;) {
        pthread_barrier_wait(&run->start);
        if (run->phase == UINT_MAX)
            return NULL;
        w->handed = 0;
        for (size_t op = 0; op < run->ops && w->broken == NULL; op++) {
            pstep(w);
            for (size_t j = w->count > 4 ? w->count - 4 : 0; j < w->count; j++)
                if (!pintact(&w->blocks[j]))
                    w->broken = "a recent block lost its pattern";
        }
        for (size_t j = 0; j < w->count; j++)
            if (!pintact(&w->blocks[j]))
                w->broken = "a block lost its pattern";
        __atomic_fetch_add(&run->finished, 1, __ATOMIC_RELEASE);
        pthread_barrier_wait(&run->stop);
    }
}

static int by_ptr(const void *x, const void *y)
{
    const pblock *a = x, *b = y;
    return a->ptr < b->ptr ? -1 : a->ptr > b->ptr;
}

/* Every live block, the test thread's included: in bounds, aligned, intact, disjoint. */
static void check_blocks(const phases *run, pworker *w, const pblock *mine, pblock *all)
{
    nalloc_arena *a = run->arena;
    size_t n = 0, end = raw_offset(a);
    for (unsigned i = 0; i < run->workers; i++)
        for (size_t j = 0; j < w[i].count; j++)
            all[n++] = w[i].blocks[j];
    if (mine->ptr != NULL)
        all[n++] = *mine;
    qsort(all, n, sizeof *all, by_ptr);
    for (size_t j = 0; j < n; j++) {
        assert_true((uintptr_t)all[j].ptr >= a->bump.base);
        assert_true(offset_of(a, all[j].ptr) + all[j].size <= end);
        assert_int_equal((uintptr_t)all[j].ptr % all[j].align, 0);
        assert_true(pintact(&all[j]));
        if (j > 0 && all[j - 1].ptr + all[j - 1].size > all[j].ptr)
            fail_msg("blocks overlap: [%zu, +%zu) (phase %u) and [%zu, +%zu) (phase %u)",
                     offset_of(a, all[j - 1].ptr), all[j - 1].size, all[j - 1].phase,
                     offset_of(a, all[j].ptr), all[j].size, all[j].phase);
    }
}

static size_t phase_ops(void)
{
    const char *env = getenv("NALLOC_TCACHE_OPS");
    long v = env ? strtol(env, NULL, 10) : 0;
    return v > 0 ? (size_t)v : under_valgrind() ? 60 : 400;
}

static void run_phases(unsigned workers)
{
    enum { PHASES = 8, MARKS = 64 };
    /* On the heap, and not freed if the test fails: its workers stay parked on its barriers. */
    phases *run = calloc(1, sizeof *run);
    assert_non_null(run);
    run->workers = workers;
    run->ops = phase_ops();
    run->arena = arena_of(4 * GiB, true);
    nalloc_arena *a = run->arena;
    pthread_barrier_init(&run->start, NULL, workers + 1);
    pthread_barrier_init(&run->stop, NULL, workers + 1);
    pworker *w = calloc(workers, sizeof *w);
    pblock *all = calloc(workers * PHASES * run->ops * 2 + 1, sizeof *all);
    assert_non_null(w);
    assert_non_null(all);
    for (unsigned i = 0; i < workers; i++) {
        w[i].run = run;
        w[i].id = i;
        w[i].rng = UINT64_C(0x9e3779b97f4a7c15) * (i + 1) + workers;
        w[i].room = PHASES * run->ops * 2;
        w[i].blocks = calloc(w[i].room, sizeof *w[i].blocks);
        assert_non_null(w[i].blocks);
        assert_int_equal(pthread_create(&w[i].thread, NULL, pwork, &w[i]), 0);
    }
    pblock mine = {0}; /* a block the test thread allocates after each boundary */
    size_t allocations = 0, failures = 0, refused = 0;

    for (unsigned phase = 0; phase < PHASES; phase++) {
        nalloc_stats at_start = stats_of(a);
        run->phase = phase;
        __atomic_store_n(&run->finished, 0, __ATOMIC_RELAXED);
        pthread_barrier_wait(&run->start);

        /* While they work: marks and snapshots, as often as this thread gets to run-> */
        nalloc_mark marks[MARKS];
        size_t nmarks = 0, snapshots = 0;
        const char *broken = NULL;
        nalloc_stats prev = at_start;
        do {
            marks[nmarks++ % MARKS] = nalloc_mark_get(a);
            nalloc_stats s;
            if (nalloc_arena_stats(a, &s) != NALLOC_OK)
                broken = "statistics refused";
            else if (s.used > s.capacity || s.high_water > s.capacity || s.high_water < s.used)
                broken = "used or high-water out of range";
            else if (s.allocations < prev.allocations || s.failures < prev.failures ||
                     s.padding < prev.padding || s.high_water < prev.high_water)
                broken = "a counter went back";
            prev = s;
            snapshots++;
        } while (__atomic_load_n(&run->finished, __ATOMIC_ACQUIRE) < workers && broken == NULL);
        pthread_barrier_wait(&run->stop); /* every worker is parked from here on */
        if (broken != NULL)
            fail_msg("phase %u: a snapshot taken while %u threads allocated: %s", phase, workers,
                     broken);

        for (unsigned i = 0; i < workers; i++) {
            if (w[i].broken != NULL)
                fail_msg("phase %u, thread %u: %s", phase, i, w[i].broken);
            allocations += w[i].allocations;
            failures += w[i].failures;
            refused += w[i].refused;
            w[i].allocations = w[i].failures = w[i].refused = 0;
        }
        check_blocks(run, w, &mine, all);
        nalloc_stats s = stats_of(a);
        assert_int_equal(s.allocations, allocations);
        assert_int_equal(s.failures, failures + refused); /* nalloc_stats.failures: every refused
                                                             resize_last counts */
        assert_int_equal(failures, 0); /* 4 GiB of address space is plenty */
        /* Exact: what the workers hold of this phase's blocks, plus the padding in front of every
         * block allocated in it, on top of what was in use when it began. */
        size_t handed = 0;
        for (unsigned i = 0; i < workers; i++)
            handed += w[i].handed;
        if (s.used != at_start.used + handed + (s.padding - at_start.padding))
            fail_msg("phase %u: used %zu, expected %zu + %zu + %zu padding", phase, s.used,
                     at_start.used, handed, s.padding - at_start.padding);
        assert_int_equal(s.used + s.cached + s.deferred, raw_offset(a));
        assert_true(s.cached <= (workers + 1) * MAX_CHUNK); /* one chunk per thread at most */
        assert_true(s.high_water >= raw_offset(a));

        /* The boundary: a rollback to a mark taken mid-phase, a wipe or a reset. */
        nalloc_status st = NALLOC_ERR_STATE;
        size_t target = 0;
        if (phase % 4 == 0 || phase % 4 == 2) {
            nalloc_mark m = marks[(nmarks < MARKS ? nmarks : MARKS) / 2];
            st = nalloc_rollback(a, m);
            /* A mark whose place a racing free_last gave back may be refused, never obeyed wrongly. */
            assert_true(st == NALLOC_OK || st == NALLOC_ERR_STATE);
            target = m.offset; /* private, read to check the release */
        }
        if (st == NALLOC_OK) {
            s = stats_of(a);
            assert_int_equal(s.cached, 0); /* every chunk retired */
            assert_int_equal(raw_offset(a), target);
            assert_int_equal(s.used + s.deferred, target);
        } else if (phase % 4 == 1) {
            size_t end = stats_of(a).high_water;
            assert_int_equal(nalloc_wipe(a), NALLOC_OK);
            assert_true(released_zero((void *)a->bump.base, end)); /* remainders included */
            target = 0;
        } else {
            assert_int_equal(nalloc_reset(a), NALLOC_OK);
            target = 0;
        }
        if (target == 0) {
            s = stats_of(a);
            assert_int_equal(s.used, 0);
            assert_int_equal(s.cached, 0);
            assert_int_equal(s.deferred, 0);
        }
        /* Blocks wholly below the target survive; the rest went with the boundary. */
        for (unsigned i = 0; i < workers; i++) {
            size_t kept = 0;
            for (size_t j = 0; j < w[i].count; j++)
                if (offset_of(a, w[i].blocks[j].ptr) + w[i].blocks[j].size <= target)
                    w[i].blocks[kept++] = w[i].blocks[j];
            w[i].count = kept;
        }
        if (mine.ptr != NULL && offset_of(a, mine.ptr) + mine.size > target)
            mine.ptr = NULL;
        if (mine.ptr == NULL) {
            /* Ours: it must not overlap a survivor, nor what the workers allocate next. */
            mine = (pblock){nalloc_alloc(a, 64 * KiB), 64 * KiB, 64, phase, 0xee};
            assert_non_null(mine.ptr);
            pfill(&mine);
            allocations++;
        }
        check_blocks(run, w, &mine, all);
    }
    run->phase = UINT_MAX;
    pthread_barrier_wait(&run->start);
    for (unsigned i = 0; i < workers; i++) {
        assert_int_equal(pthread_join(w[i].thread, NULL), 0);
        free(w[i].blocks);
    }
    /* The workers exited and gave their chunks back: only ours is left, and a mark takes it. */
    assert_true(stats_of(a).cached <= MAX_CHUNK);
    nalloc_mark taken = nalloc_mark_get(a);
    assert_int_equal(taken.arena_uid != 0, true);
    assert_int_equal(stats_of(a).cached, 0);
    pthread_barrier_destroy(&run->start);
    pthread_barrier_destroy(&run->stop);
    free(w);
    free(all);
    free(run);
    nalloc_arena_destroy(a);
}

static void test_two_threads_allocate_in_phases_while_another_takes_marks(void **state)
{
    (void)state;
    run_phases(2);
}

static void test_eight_threads_allocate_in_phases_while_another_takes_marks(void **state)
{
    (void)state;
    run_phases(8);
}

static void test_sixteen_threads_allocate_in_phases_while_another_takes_marks(void **state)
{
    (void)state;
    run_phases(16);
}

/* 64 workers and the test thread: more threads than an arena has private slots (NA_STAT_SLOTS),
 * so one of them shares the arena's shared slot and allocates from the offset directly. */
static void test_sixty_four_threads_allocate_in_phases_while_another_takes_marks(void **state)
{
    (void)state;
    run_phases(64);
}

/* ---------------------------------------------------------------------------------------------
 * Thousands of short-lived threads
 * ------------------------------------------------------------------------------------------- */

#define SHORT_THREADS 3000
#define SHORT_WAVE 4   /* threads alive at once */
#define SHORT_BLOCKS 4 /* each keeps its first block; the others it frees, newest, at once */

typedef struct short_thread {
    nalloc_arena *arena;
    unsigned index;
    unsigned char *kept;
    size_t kept_size;
    const char *broken;
} short_thread;

static size_t short_size(unsigned thread, unsigned block)
{
    uint64_t rng = UINT64_C(0x2545f4914f6cdd1d) * (thread * SHORT_BLOCKS + block + 1);
    return 1 + test_rand(&rng) % 700;
}

static void *short_life(void *arg)
{
    short_thread *t = arg;
    for (unsigned b = 0; b < SHORT_BLOCKS; b++) {
        size_t size = short_size(t->index, b);
        unsigned char *p = nalloc_alloc(t->arena, size);
        if (p == NULL) {
            t->broken = "the arena ran out";
            return NULL;
        }
        memset(p, (int)(t->index % 251 + 1), size);
        if (b == 0) {
            t->kept = p;
            t->kept_size = size;
        } else if (nalloc_free_last(t->arena, p, size) != NALLOC_OK) {
            t->broken = "free_last of the thread's newest block was refused";
        }
    }
    return NULL;
}

static void test_thousands_of_short_lived_threads_do_not_exhaust_the_arena(void **state)
{
    (void)state;
    /* What one thread needs for the same requests: every kept block, their padding, and room
     * for the largest block freed on top of them. */
    nalloc_arena *one = arena_of(1 * GiB, false);
    for (unsigned i = 0; i < SHORT_THREADS; i++)
        for (unsigned b = 0; b < SHORT_BLOCKS; b++) {
            void *p = nalloc_alloc(one, short_size(i, b));
            assert_non_null(p);
            if (b > 0)
                assert_int_equal(nalloc_free_last(one, p, short_size(i, b)), NALLOC_OK);
        }
    size_t need = stats_of(one).high_water;
    nalloc_arena_destroy(one);

    /* The same requests from 3000 threads, a few alive at once, each may hold a chunk. Had
     * their remainders been lost, they would need about 4 KiB more each: about 12 MiB. */
    size_t capacity = need + SHORT_WAVE * MAX_CHUNK;
    nalloc_arena *a = arena_of(capacity, true);
    short_thread *t = calloc(SHORT_THREADS, sizeof *t);
    assert_non_null(t);
    for (unsigned first = 0; first < SHORT_THREADS; first += SHORT_WAVE) {
        pthread_t id[SHORT_WAVE];
        unsigned n = SHORT_THREADS - first < SHORT_WAVE ? SHORT_THREADS - first : SHORT_WAVE;
        for (unsigned k = 0; k < n; k++) {
            t[first + k] = (short_thread){.arena = a, .index = first + k};
            assert_int_equal(pthread_create(&id[k], NULL, short_life, &t[first + k]), 0);
        }
        for (unsigned k = 0; k < n; k++) {
            assert_int_equal(pthread_join(id[k], NULL), 0);
            if (t[first + k].broken != NULL)
                fail_msg("thread %u of %u (capacity %zu, one thread needs %zu): %s", first + k,
                         SHORT_THREADS, capacity, need, t[first + k].broken);
        }
    }
    size_t kept = 0;
    for (unsigned i = 0; i < SHORT_THREADS; i++) {
        for (size_t j = 0; j < t[i].kept_size; j++)
            assert_int_equal(t[i].kept[j], i % 251 + 1);
        kept += t[i].kept_size;
    }
    nalloc_stats s = stats_of(a);
    assert_int_equal(s.allocations, SHORT_THREADS * SHORT_BLOCKS);
    assert_int_equal(s.failures, 0);
    assert_int_equal(s.cached, 0); /* every thread exited */
    assert_int_equal(s.used, kept + s.padding);
    assert_int_equal(s.used + s.deferred, raw_offset(a));
    free(t);
    nalloc_arena_destroy(a);
}

/* ---------------------------------------------------------------------------------------------
 * Wipes and zeroed allocations
 * ------------------------------------------------------------------------------------------- */

static void test_a_wipe_zeroes_chunk_remainders_and_free_stretches(void **state)
{
    (void)state;
    nalloc_arena_config c;
    nalloc_arena_config_init(&c, NALLOC_KIND_WITNESS, NALLOC_MEMORY_HOST, 16 * MiB);
    c.flags = NALLOC_FLAG_THREAD_CACHE | NALLOC_FLAG_WIPE_ON_DESTROY;
    nalloc_arena *a = make_arena_with(&c);

    /* Secrets left in three places no block covers: a helper's remainder that becomes a free
     * stretch when it exits (0x5a), our own chunk's remainder (0xa5), and the remainder of a
     * chunk another helper still holds at the wipe (0x5a). */
    helper *h1 = helper_start(a), *h2 = helper_start(a);
    char *theirs = helper_do(h1, 3000, false, true);
    char *mine = nalloc_alloc(a, 2000);
    assert_true(mine > theirs);
    memset(mine, 0xa5, 2000);
    assert_int_equal(nalloc_free_last(a, mine, 2000), NALLOC_OK);
    assert_non_null(helper_do(h2, 1000, false, true));
    assert_non_null(helper_alloc(h2, 100));
    helper_exit(h1); /* its chunk lies below ours: a free stretch */
    nalloc_stats s = stats_of(a);
    assert_true(s.cached > 0);
    assert_true(s.deferred > 0);

    /* A zeroed block from our remainder reads zero although our secret was there. */
    unsigned char *z = nalloc_alloc_zeroed(a, 1, 1500, 0);
    assert_ptr_equal(z, mine);
    for (size_t i = 0; i < 1500; i++)
        assert_int_equal(z[i], 0);
    memset(z, 0xa5, 1500);

    size_t end = stats_of(a).high_water;
    assert_true(end >= raw_offset(a));
    assert_int_equal(nalloc_wipe(a), NALLOC_OK);
    s = stats_of(a);
    assert_true(s.wiped_bytes >= end);
    assert_true(released_zero((void *)a->bump.base, end));
    assert_int_equal(s.used + s.cached + s.deferred, 0);

    /* The helper's chunk was retired with the wipe: its next block starts the arena afresh. */
    char *again = helper_alloc(h2, 1000);
    assert_non_null(again);
    assert_int_equal(offset_of(a, again), 0);
    helper_exit(h2);
    assert_int_equal(nalloc_arena_destroy(a), NALLOC_OK);
}

/* A free stretch (an exited thread's remainder, where a block it gave back had data) that
 * another thread reuses for a zeroed block reads zero. */
static void test_a_zeroed_block_from_a_reused_stretch_reads_zero(void **state)
{
    (void)state;
    nalloc_arena *a = arena_of(16 * MiB, true);
    helper *h = helper_start(a);
    char *dirty = helper_do(h, 2000, false, true); /* 0x5a left in its chunk */
    assert_non_null(nalloc_alloc(a, 64));             /* our chunk, above it */
    helper_exit(h);
    assert_true(stats_of(a).deferred > 0);
    h = helper_start(a);
    char *z = helper_do(h, 1500, true, false); /* checked for zeros by the helper */
    assert_ptr_equal(z, dirty);                 /* from the stretch */
    helper_exit(h);
    nalloc_arena_destroy(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_thread_lays_out_blocks_as_without_the_cache),
        cmocka_unit_test(test_a_request_too_big_for_a_chunk_lands_where_it_would_without_the_cache),
        cmocka_unit_test(test_lanes_split_from_one_thread_are_the_same_as_without_the_cache),
        cmocka_unit_test(test_a_thread_frees_resizes_and_reallocs_its_newest_block_inside_its_chunk),
        cmocka_unit_test(test_a_wrong_size_reaching_into_the_remainder_is_refused),
        cmocka_unit_test(test_a_wrong_size_reaching_into_another_threads_remainder_is_refused),
        cmocka_unit_test(test_a_mark_gives_the_threads_chunk_back),
        cmocka_unit_test(test_what_a_thread_allocates_after_its_mark_lies_above_it),
        cmocka_unit_test(test_a_block_does_not_grow_past_another_threads_mark),
        cmocka_unit_test(test_free_last_cannot_reach_the_block_lent_to_lanes),
        cmocka_unit_test(test_a_failed_request_keeps_the_threads_chunk),
        cmocka_unit_test(test_statistics_are_exact_when_every_thread_is_parked),
        cmocka_unit_test(test_two_threads_allocate_in_phases_while_another_takes_marks),
        cmocka_unit_test(test_eight_threads_allocate_in_phases_while_another_takes_marks),
        cmocka_unit_test(test_sixteen_threads_allocate_in_phases_while_another_takes_marks),
        cmocka_unit_test(test_sixty_four_threads_allocate_in_phases_while_another_takes_marks),
        cmocka_unit_test(test_thousands_of_short_lived_threads_do_not_exhaust_the_arena),
        cmocka_unit_test(test_a_wipe_zeroes_chunk_remainders_and_free_stretches),
        cmocka_unit_test(test_a_zeroed_block_from_a_reused_stretch_reads_zero),
    };
    const char *only = getenv("NALLOC_TEST_FILTER"); /* e.g. "*short_lived*": one test alone */
    if (only != NULL)
        cmocka_set_test_filter(only);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
