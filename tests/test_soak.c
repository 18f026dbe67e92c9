/* tests/test_soak.c - a concurrency soak: what nalloc.h says is safe from many threads at once.
 *
 * Worker threads share one arena and, for a number of rounds, allocate with random sizes and
 * alignments (plain, aligned, zeroed), free and resize their own most recent block, and realloc
 * it, writing a pattern of their own into every block. Meanwhile an observer thread takes marks
 * and statistics, and checks what a snapshot may promise: used within the capacity, high-water
 * at least used, and counters that never go back. After each round, with every thread joined, the
 * blocks still live must be in bounds, aligned, pairwise disjoint and hold their patterns; zeroed
 * blocks must have read zero; the allocation and failure counts must match what the threads saw;
 * and a rollback to a mark taken during the round must release exactly down to it without
 * touching a block that ends below it. Then the arena is reset or wiped (phase boundaries, with
 * nobody else running) for the next round.
 *
 * Under ThreadSanitizer (scripts/test.sh's tsan build) this is also a data-race check of the
 * allocation path, the statistics slots, mark_get and free_last/resize_last. It runs twice: on a
 * plain arena, and with NALLOC_FLAG_THREAD_CACHE (private chunks, tcache.c), where used + cached +
 * deferred is the arena's offset and a rollback leaves the retired chunks' remainders below the
 * mark as free stretches. NALLOC_SOAK_OPS sets
 * the operations per thread per round (default 20000; the Valgrind run uses fewer).
 */
#include "testutil.h"

#include <pthread.h>

#define WORKERS 4
#define ROUNDS 3
#define MAX_MARKS 64

typedef struct block {
    unsigned char *ptr;
    size_t size;
    size_t align;
    unsigned char tag; /* every byte of the block, up to PATTERN_BYTES at each end */
} block;

#define PATTERN_BYTES 64

typedef struct worker {
    pthread_t thread;
    nalloc_arena *arena;
    uint64_t rng;
    unsigned id;
    size_t ops;
    block *blocks; /* live blocks in the order handed out; the last is "ours" for free/resize */
    size_t count;
    size_t allocations; /* successful allocation calls, as nalloc_stats counts them */
    size_t failures;    /* calls that returned NULL, and refused resize_last calls */
    size_t zeroed_dirty; /* zeroed blocks that did not read zero */
    unsigned char next_tag;
} worker;

typedef struct observer {
    pthread_t thread;
    nalloc_arena *arena;
    volatile int stop;
    nalloc_mark marks[MAX_MARKS];
    size_t mark_count;
    size_t snapshots;
    const char *broken; /* first invariant a snapshot broke, or NULL */
} observer;

static void fill(const block *b)
{
    size_t head = b->size < PATTERN_BYTES ? b->size : PATTERN_BYTES;
    memset(b->ptr, b->tag, head);
    memset(b->ptr + b->size - head, b->tag, head);
}

static bool intact(const block *b)
{
    size_t head = b->size < PATTERN_BYTES ? b->size : PATTERN_BYTES;
    for (size_t i = 0; i < head; i++)
        if (b->ptr[i] != b->tag || b->ptr[b->size - 1 - i] != b->tag)
            return false;
    return true;
}

static size_t random_size(uint64_t *rng)
{
    uint64_t r = test_rand(rng);
    switch (r % 8) {
    case 0:
        return 1 + (r >> 8) % 8;
    case 1:
        return 1 + (r >> 8) % (16 * KiB); /* occasionally bigger */
    default:
        return 1 + (r >> 8) % 700;
    }
}

static void remember(worker *w, unsigned char *p, size_t size, size_t align)
{
    block b = {p, size, align, (unsigned char)(w->id * 64 + w->next_tag++ % 64)};
    fill(&b);
    w->blocks[w->count++] = b;
}

static void *work(void *arg)
{
    worker *w = arg;
    nalloc_arena *a = w->arena;
    for (size_t op = 0; op < w->ops; op++) {
        uint64_t r = test_rand(&w->rng);
        block *last = w->count ? &w->blocks[w->count - 1] : NULL;
        unsigned kind = (unsigned)(r % 20);
        if (kind < 8) {
            size_t size = random_size(&w->rng);
            unsigned char *p = nalloc_alloc(a, size);
            if (p == NULL) {
                w->failures++;
                continue;
            }
            w->allocations++;
            remember(w, p, size, 64);
        } else if (kind < 12) {
            size_t size = random_size(&w->rng), align = (size_t)1 << (r >> 8) % 13;
            unsigned char *p = nalloc_alloc_aligned(a, size, align);
            if (p == NULL) {
                w->failures++;
                continue;
            }
            w->allocations++;
            remember(w, p, size, align);
        } else if (kind < 14) {
            size_t count = 1 + (r >> 8) % 64, size = 1 + (r >> 16) % 16;
            unsigned char *p = nalloc_alloc_zeroed(a, count, size, 0);
            if (p == NULL) {
                w->failures++;
                continue;
            }
            w->allocations++;
            for (size_t i = 0; i < count * size; i++)
                if (p[i] != 0) {
                    w->zeroed_dirty++;
                    break;
                }
            remember(w, p, count * size, 64);
        } else if (kind < 16 && last != NULL) {
            /* Succeeds only if nobody allocated after our block and no mark was taken after it. */
            if (nalloc_free_last(a, last->ptr, last->size) == NALLOC_OK)
                w->count--;
        } else if (kind < 18 && last != NULL) {
            size_t size = random_size(&w->rng);
            nalloc_status st = nalloc_resize_last(a, last->ptr, last->size, size);
            if (st == NALLOC_OK) {
                last->size = size;
                fill(last);
            } else { /* no room, or not the last block any more: a failed request either way */
                w->failures++;
            }
        } else if (last != NULL) {
            size_t size = random_size(&w->rng);
            unsigned char *q = nalloc_realloc(a, last->ptr, last->size, size, 0);
            if (q == NULL) {
                w->failures++;
                continue;
            }
            size_t kept = last->size < size ? last->size : size;
            size_t head = kept < PATTERN_BYTES ? kept : PATTERN_BYTES;
            for (size_t i = 0; i < head; i++)
                if (q[i] != last->tag)
                    w->zeroed_dirty++; /* counted as corruption: the copy lost our data */
            if (q == last->ptr) {
                last->size = size;
                fill(last);
            } else {
                w->allocations++;
                remember(w, q, size, 64); /* the old block stays live until the round ends */
            }
        }
    }
    return NULL;
}

static void *observe(void *arg)
{
    observer *o = arg;
    nalloc_stats prev;
    memset(&prev, 0, sizeof prev);
    while (!__atomic_load_n(&o->stop, __ATOMIC_ACQUIRE)) {
        if (o->mark_count < MAX_MARKS)
            o->marks[o->mark_count++] = nalloc_mark_get(o->arena);
        nalloc_stats s;
        if (nalloc_arena_stats(o->arena, &s) != NALLOC_OK) {
            o->broken = "stats refused";
            break;
        }
        o->snapshots++;
        if (s.used > s.capacity)
            o->broken = "used beyond capacity";
        else if (s.high_water < s.used)
            o->broken = "high-water below used";
        else if (s.high_water > s.capacity)
            o->broken = "high-water beyond capacity";
        else if (s.allocations < prev.allocations || s.failures < prev.failures ||
                 s.padding < prev.padding || s.high_water < prev.high_water)
            o->broken = "a counter went back";
        if (o->broken)
            break;
        prev = s;
        for (volatile int spin = 0; spin < 200; spin++) {
        }
    }
    return NULL;
}

static int by_address(const void *x, const void *y)
{
    const block *a = x, *b = y;
    return a->ptr < b->ptr ? -1 : a->ptr > b->ptr;
}

static size_t soak_ops(void)
{
    const char *env = getenv("NALLOC_SOAK_OPS");
    long v = env ? strtol(env, NULL, 10) : 0;
    return v > 0 ? (size_t)v : 20000;
}

/* The soak on one arena; `flags` are added to its configuration. */
static void soak(unsigned flags)
{
    const size_t capacity = 128 * MiB;
    nalloc_arena_config c;
    nalloc_arena_config_init(&c, NALLOC_KIND_SCRATCH, NALLOC_MEMORY_HOST, capacity);
    c.flags |= NALLOC_FLAG_NORESERVE | flags;
    nalloc_arena *a = make_arena_with(&c);
    size_t ops = soak_ops();
    worker workers[WORKERS];
    block *all = malloc(WORKERS * ops * sizeof *all);
    assert_non_null(all);
    size_t total_allocations = 0, total_failures = 0;

    for (int round = 0; round < ROUNDS; round++) {
        observer obs;
        memset(&obs, 0, sizeof obs);
        obs.arena = a;
        for (unsigned i = 0; i < WORKERS; i++) {
            worker *w = &workers[i];
            memset(w, 0, sizeof *w);
            w->arena = a;
            w->id = i;
            w->ops = ops;
            w->rng = 0x9e3779b97f4a7c15u * (round * WORKERS + i + 1);
            w->blocks = malloc(ops * sizeof *w->blocks);
            assert_non_null(w->blocks);
        }
        assert_int_equal(pthread_create(&obs.thread, NULL, observe, &obs), 0);
        for (unsigned i = 0; i < WORKERS; i++)
            assert_int_equal(pthread_create(&workers[i].thread, NULL, work, &workers[i]), 0);
        for (unsigned i = 0; i < WORKERS; i++)
            assert_int_equal(pthread_join(workers[i].thread, NULL), 0);
        __atomic_store_n(&obs.stop, 1, __ATOMIC_RELEASE);
        assert_int_equal(pthread_join(obs.thread, NULL), 0);
        if (obs.broken)
            fail_msg("round %d: a snapshot broke an invariant: %s", round, obs.broken);
        assert_true(obs.snapshots > 0);

        /* Every live block: in bounds, aligned, intact; all of them pairwise disjoint. With
         * thread chunks, the arena's offset (the end of what it gave out) is used + cached +
         * deferred: blocks lie anywhere below it. */
        nalloc_stats s = stats_of(a);
        size_t end = s.used + s.cached + s.deferred;
        if (!(flags & NALLOC_FLAG_THREAD_CACHE))
            assert_int_equal(end, s.used);
        size_t n = 0;
        for (unsigned i = 0; i < WORKERS; i++) {
            assert_int_equal(workers[i].zeroed_dirty, 0);
            total_allocations += workers[i].allocations;
            total_failures += workers[i].failures;
            for (size_t j = 0; j < workers[i].count; j++)
                all[n++] = workers[i].blocks[j];
        }
        qsort(all, n, sizeof *all, by_address);
        for (size_t j = 0; j < n; j++) {
            assert_true((uintptr_t)all[j].ptr >= s.base);
            assert_true((uintptr_t)all[j].ptr + all[j].size <= s.base + end);
            assert_int_equal((uintptr_t)all[j].ptr % all[j].align, 0);
            assert_true(intact(&all[j]));
            if (j > 0)
                assert_true(all[j - 1].ptr + all[j - 1].size <= all[j].ptr);
        }
        assert_int_equal(s.allocations, total_allocations);
        assert_int_equal(s.failures, total_failures);

        /* A mark taken mid-round: rolling back releases down to it, and a block that ended below
         * it was allocated before it and must survive what is allocated next. A mark whose place
         * a concurrent free_last gave back may be refused, never obeyed wrongly. */
        assert_true(obs.mark_count > 0);
        nalloc_mark m = obs.marks[obs.mark_count / 2];
        nalloc_status st = nalloc_rollback(a, m);
        assert_true(st == NALLOC_OK || st == NALLOC_ERR_STATE);
        if (st == NALLOC_OK) {
            /* Every chunk was retired; their remainders below the mark are free stretches. */
            nalloc_stats r = stats_of(a);
            size_t at = r.used + r.deferred;
            assert_int_equal(r.cached, 0);
            assert_int_equal(at, m.offset); /* a private field, read here to check the release */
            unsigned char *after = nalloc_alloc(a, 64 * KiB);
            if (after != NULL)
                memset(after, 0xff, 64 * KiB);
            for (size_t j = 0; j < n; j++)
                if ((uintptr_t)all[j].ptr + all[j].size <= s.base + at)
                    assert_true(intact(&all[j]));
        }
        for (unsigned i = 0; i < WORKERS; i++)
            free(workers[i].blocks);
        if (round % 2 == 0)
            assert_int_equal(nalloc_reset(a), NALLOC_OK);
        else
            assert_int_equal(nalloc_wipe(a), NALLOC_OK);
        total_allocations = stats_of(a).allocations;
        total_failures = stats_of(a).failures;
    }
    free(all);
    nalloc_arena_destroy(a);
}

static void test_threads_allocate_while_another_takes_marks_and_statistics(void **state)
{
    (void)state;
    soak(0);
}

/* The same with NALLOC_FLAG_THREAD_CACHE: each worker bumps in a private chunk, frees and resizes
 * its newest block inside it, and the observer's marks and statistics read every chunk. */
static void test_threads_allocate_from_private_chunks_while_another_takes_marks(void **state)
{
    (void)state;
    soak(NALLOC_FLAG_THREAD_CACHE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_threads_allocate_while_another_takes_marks_and_statistics),
        cmocka_unit_test(test_threads_allocate_from_private_chunks_while_another_takes_marks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
