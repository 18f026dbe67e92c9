/* tests/test_concurrency.c - many threads allocating from one arena at once: random sizes and
 * alignments, the arena driven to exhaustion; afterwards every block is in bounds, aligned and
 * disjoint from every other, and the statistics match what the threads saw. Also marks and
 * statistics taken while others allocate, and free_last racing with allocations.
 *
 * Worker threads never call cmocka's assertions (they longjmp to the test's thread): they count
 * what they saw, and the test checks the counts after joining. */
#include "testutil.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

enum { THREADS = 8, PER_THREAD = 4000 };

typedef struct block {
    uintptr_t begin, end;
    size_t align;
} block;

typedef struct worker {
    nalloc_arena *arena;
    uint64_t seed;
    block blocks[PER_THREAD];
    size_t count;        /* blocks recorded */
    size_t failures;     /* NULLs seen */
    size_t requested;    /* bytes asked for by successful calls */
    size_t freed;        /* blocks given back with free_last */
    size_t bad_errors;   /* NULLs whose last error was not NALLOC_ERR_NOMEM */
    int id;
    atomic_size_t *await; /* worker 0 only, or NULL: an observer's sample count (see below) */
} worker;

static atomic_int go;

static void *allocate(void *arg)
{
    worker *w = arg;
    while (!atomic_load(&go))
        sched_yield(); /* more threads than cores: let the one that starts them run */
    for (int i = 0; i < PER_THREAD; i++) {
        if (w->await != NULL && i == PER_THREAD / 2) {
            /* Halfway, wait for the observer to take a sample: then at least one sample falls
             * while this worker is mid-run, however the threads are scheduled. */
            size_t seen = atomic_load(w->await);
            while (atomic_load(w->await) == seen)
                sched_yield();
        }
        uint64_t r = test_rand(&w->seed);
        size_t size = 1 + (size_t)(r % 2000);
        size_t align = (size_t)1 << ((r >> 20) % 13);
        bool policy = (r >> 40) % 4 == 0;
        char *p = policy ? nalloc_alloc(w->arena, size) : nalloc_alloc_aligned(w->arena, size, align);
        if (p == NULL) {
            w->bad_errors += nalloc_last_error() != NALLOC_ERR_NOMEM;
            w->failures++;
            continue;
        }
        if ((r >> 50) % 8 == 0 && nalloc_free_last(w->arena, p, size) == NALLOC_OK) {
            w->freed++; /* won the race to be last: the block is gone, do not record it */
            w->requested += size;
            continue;
        }
        memset(p, w->id, size < 64 ? size : 64); /* touch it */
        w->blocks[w->count++] = (block){(uintptr_t)p, (uintptr_t)p + size, policy ? 64 : align};
        w->requested += size;
    }
    return NULL;
}

static int by_begin(const void *x, const void *y)
{
    const block *a = x, *b = y;
    return a->begin < b->begin ? -1 : a->begin > b->begin;
}

static void run_workers(nalloc_arena *a, worker *w, uint64_t seed, atomic_size_t *await)
{
    pthread_t t[THREADS];
    atomic_store(&go, 0);
    for (int i = 0; i < THREADS; i++) {
        memset(&w[i], 0, sizeof w[i]);
        w[i].arena = a;
        w[i].seed = seed * 1000 + (uint64_t)i + 1;
        w[i].id = i;
        w[i].await = i == 0 ? await : NULL;
        assert_int_equal(pthread_create(&t[i], NULL, allocate, &w[i]), 0);
    }
    atomic_store(&go, 1);
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_join(t[i], NULL), 0);
}

static void check_blocks(nalloc_arena *a, worker *w)
{
    nalloc_stats s = stats_of(a);
    static block all[THREADS * PER_THREAD];
    size_t n = 0, failures = 0, successes = 0;
    for (int i = 0; i < THREADS; i++) {
        memcpy(all + n, w[i].blocks, w[i].count * sizeof(block));
        n += w[i].count;
        failures += w[i].failures;
        successes += w[i].count + w[i].freed;
        assert_int_equal(w[i].bad_errors, 0);
    }
    qsort(all, n, sizeof all[0], by_begin);
    for (size_t i = 0; i < n; i++) {
        assert_true(all[i].begin >= s.base);
        assert_true(all[i].end <= s.base + s.capacity);
        assert_int_equal(all[i].begin % all[i].align, 0);
        if (i > 0)
            assert_true(all[i - 1].end <= all[i].begin); /* disjoint */
    }
    assert_int_equal(s.allocations, successes);
    assert_int_equal(s.failures, failures);
    assert_true(s.used <= s.capacity);
    assert_true(s.high_water >= s.used);
}

static size_t total_failures(const worker *w)
{
    size_t failures = 0;
    for (int i = 0; i < THREADS; i++)
        failures += w[i].failures;
    return failures;
}

static void test_threads_get_disjoint_aligned_blocks_in_bounds(void **state)
{
    (void)state;
    nalloc_arena *a = make_arena(NALLOC_KIND_SCRATCH, 256 * MiB); /* never exhausted */
    static worker w[THREADS];
    run_workers(a, w, 1, NULL);
    check_blocks(a, w);
    size_t failures = total_failures(w);
    assert_int_equal(failures, 0);
    nalloc_arena_destroy(a);
}

static void test_threads_exhausting_an_arena_still_get_disjoint_blocks(void **state)
{
    (void)state;
    nalloc_arena *a = make_arena(NALLOC_KIND_SCRATCH, 8 * MiB); /* about a third fits */
    static worker w[THREADS];
    run_workers(a, w, 2, NULL);
    check_blocks(a, w);
    size_t failures = total_failures(w);
    assert_true(failures > 0);
    /* Whatever was left is still usable by a request that fits. */
    nalloc_stats s = stats_of(a);
    size_t start = s.used;
    if (s.checkers & NALLOC_CHECKER_ASAN) /* blocks start on ASan granules (track.h) */
        start = (start + 7) & ~(size_t)7;
    if (s.capacity > start)
        assert_non_null(nalloc_alloc_aligned(a, s.capacity - start, 1));
    nalloc_arena_destroy(a);
}

typedef struct observer {
    nalloc_arena *arena;
    atomic_int *stop;
    atomic_size_t samples; /* worker 0 waits for one of these halfway through its run */
    size_t violations;     /* samples that broke an invariant */
} observer;

static void *observe(void *arg)
{
    observer *o = arg;
    size_t last_allocations = 0;
    while (!atomic_load(o->stop)) {
        nalloc_mark m = nalloc_mark_get(o->arena);
        nalloc_stats s;
        bool ok = nalloc_arena_stats(o->arena, &s) == NALLOC_OK && s.used <= s.capacity &&
                  m.offset <= s.capacity && s.allocations >= last_allocations; /* counts grow */
        o->violations += !ok;
        last_allocations = s.allocations;
        atomic_fetch_add(&o->samples, 1);
        sched_yield();
    }
    return NULL;
}

static void test_marks_and_statistics_while_others_allocate(void **state)
{
    (void)state;
    nalloc_arena *a = make_arena(NALLOC_KIND_SCRATCH, 256 * MiB);
    static worker w[THREADS];
    atomic_int stop = 0;
    observer o = {a, &stop, 0, 0};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, observe, &o), 0);
    run_workers(a, w, 3, &o.samples); /* returns only after a sample taken mid-run */
    atomic_store(&stop, 1);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_true(atomic_load(&o.samples) > 0);
    assert_int_equal(o.violations, 0);
    check_blocks(a, w);
    nalloc_arena_destroy(a);
}

static void *many_short_threads(void *arena)
{
    intptr_t failed = 0;
    for (int i = 0; i < 10; i++)
        failed += nalloc_alloc(arena, 64) == NULL;
    return (void *)failed;
}

static void test_statistics_stay_exact_with_more_threads_than_slots(void **state)
{
    (void)state;
    /* 100 threads, at most 40 alive at once: more than the 32 private slots, so some share the
     * atomic slot, and slots of exited threads are handed on. */
    nalloc_arena *a = make_arena(NALLOC_KIND_SCRATCH, 16 * MiB);
    for (int round = 0; round < 5; round++) {
        pthread_t t[20];
        for (int i = 0; i < 20; i++)
            assert_int_equal(pthread_create(&t[i], NULL, many_short_threads, a), 0);
        pthread_t u[20];
        for (int i = 0; i < 20; i++)
            assert_int_equal(pthread_create(&u[i], NULL, many_short_threads, a), 0);
        for (int i = 0; i < 20; i++) {
            void *failed_t, *failed_u;
            pthread_join(t[i], &failed_t);
            pthread_join(u[i], &failed_u);
            assert_null(failed_t);
            assert_null(failed_u);
        }
    }
    nalloc_stats s = stats_of(a);
    assert_int_equal(s.allocations, 5 * 40 * 10);
    assert_int_equal(s.used, 5 * 40 * 10 * 64);
    nalloc_arena_destroy(a);
}

/* Phase boundaries serialize among themselves (nalloc.h): two destroys of one arena, or of a
 * parent and its lane, may race; one wins, the other is refused, and no mutex is used after it
 * was destroyed (ThreadSanitizer checks that part). */
typedef struct racer {
    nalloc_arena *arena;
    atomic_int *ready;
    nalloc_status status;
    nalloc_status last_error; /* the thread's nalloc_last_error() afterwards (NALLOC_OK before) */
} racer;

static void *destroy_when_ready(void *arg)
{
    racer *r = arg;
    atomic_fetch_add(r->ready, 1);
    while (atomic_load(r->ready) < 2)
        sched_yield();
    r->status = nalloc_arena_destroy(r->arena);
    r->last_error = nalloc_last_error();
    return NULL;
}

static void test_destroys_racing_on_one_arena_serialize(void **state)
{
    (void)state;
    for (int round = 0; round < 200; round++) {
        bool lanes = round % 2 == 1; /* a parent against one of its lanes */
        nalloc_arena *a = make_arena(NALLOC_KIND_WITNESS, 1 * MiB), *lane[2] = {NULL, NULL};
        if (lanes)
            assert_int_equal(nalloc_arena_split(a, 2, 0, lane), NALLOC_OK);
        nalloc_arena *loser = lanes ? lane[1] : a;
        memset(nalloc_alloc(loser, 64 * KiB), 0x77, 64 * KiB); /* a wipe long enough to wait on */
        atomic_int ready = 0;
        racer r[2] = {{a, &ready, NALLOC_OK, NALLOC_OK}, {loser, &ready, NALLOC_OK, NALLOC_OK}};
        pthread_t t[2];
        for (int i = 0; i < 2; i++)
            assert_int_equal(pthread_create(&t[i], NULL, destroy_when_ready, &r[i]), 0);
        for (int i = 0; i < 2; i++)
            pthread_join(t[i], NULL);
        if (lanes) {
            assert_int_equal(r[0].status, NALLOC_OK); /* the parent always goes */
            assert_int_equal(r[0].last_error, NALLOC_OK); /* a lane it lost to is no error */
            assert_true(r[1].status == NALLOC_OK || r[1].status == NALLOC_ERR_STATE);
            assert_int_equal(nalloc_arena_destroy(lane[0]), NALLOC_ERR_STATE);
        } else {
            assert_true((r[0].status == NALLOC_OK) != (r[1].status == NALLOC_OK));
            assert_int_equal(r[0].status + r[1].status, NALLOC_ERR_STATE);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_threads_get_disjoint_aligned_blocks_in_bounds),
        cmocka_unit_test(test_threads_exhausting_an_arena_still_get_disjoint_blocks),
        cmocka_unit_test(test_marks_and_statistics_while_others_allocate),
        cmocka_unit_test(test_statistics_stay_exact_with_more_threads_than_slots),
        cmocka_unit_test(test_destroys_racing_on_one_arena_serialize),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
