/* tests/test_route_threads.c - many threads routed into one arena (docs/routing.md, "Threads").
 *
 * What is checked, however the threads interleave:
 *
 *  - N threads (2 to 16, more than the machine's cores, and then more than an arena's private
 *    slots) route into ONE arena and allocate blocks of random sizes with malloc, calloc,
 *    aligned_alloc and realloc, and free them in allocation order, in reverse and at random; some
 *    blocks go through a handoff queue to be freed by another thread, some after their owner
 *    exited. Every block is in the arena, aligned as promised, holds what its owner wrote until
 *    it is freed, and (at barriers where every thread holds its blocks) overlaps no other live
 *    block. Afterwards nothing is live, nothing is used, and nothing fell back.
 *  - nalloc_owner answers right about stable arenas while other threads create and destroy arenas
 *    around them (granules of the ownership table shared between them).
 *  - A deferred destroy racing the frees of many threads destroys the arena exactly once.
 *
 * Worker threads never call cmocka's assertions (they longjmp to the test's thread): they count
 * what they saw, and the test checks the counts after joining. NALLOC_ROUTE_ROUNDS scales the
 * work (default 30 rounds, 4 under Valgrind).
 */
#include "testutil.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

#define MAX_THREADS 80
#define PER_ROUND 96 /* blocks a thread holds at a barrier */

static size_t rounds(void)
{
    const char *env = getenv("NALLOC_ROUTE_ROUNDS");
    long v = env ? strtol(env, NULL, 10) : 0;
    return v > 0 ? (size_t)v : under_valgrind() ? 4 : 30;
}

/* ---------------------------------------------------------------------------------------------
 * Blocks that say who wrote them
 * ------------------------------------------------------------------------------------------- */

typedef struct block {
    unsigned char *p;
    size_t size;
    uint64_t tag;
    size_t align; /* what it must be aligned to */
} block;

/* Bytes of a block that carry its tag: all of a small one, the ends of a big one. */
#define TAGGED 512

static unsigned char tag_byte(uint64_t tag, size_t i)
{
    return (unsigned char)((tag >> ((i % 8) * 8)) ^ (i * 13));
}

static void tag_block(const block *b)
{
    size_t head = b->size < TAGGED ? b->size : TAGGED;
    for (size_t i = 0; i < head; i++)
        b->p[i] = tag_byte(b->tag, i);
    for (size_t i = head; i < b->size && i < head + TAGGED; i++) {
        size_t j = b->size - 1 - (i - head);
        b->p[j] = tag_byte(b->tag, j);
    }
}

static bool tag_intact(const block *b)
{
    size_t head = b->size < TAGGED ? b->size : TAGGED;
    for (size_t i = 0; i < head; i++)
        if (b->p[i] != tag_byte(b->tag, i))
            return false;
    for (size_t i = head; i < b->size && i < head + TAGGED; i++) {
        size_t j = b->size - 1 - (i - head);
        if (b->p[j] != tag_byte(b->tag, j))
            return false;
    }
    return true;
}

/* ---------------------------------------------------------------------------------------------
 * The handoff queue: blocks one thread made and another frees
 * ------------------------------------------------------------------------------------------- */

#define QUEUE_SIZE 8192

typedef struct handoff {
    pthread_mutex_t lock;
    size_t head, count;
    block items[QUEUE_SIZE];
} handoff;

static handoff queue = {.lock = PTHREAD_MUTEX_INITIALIZER};

static bool queue_put(block b)
{
    pthread_mutex_lock(&queue.lock);
    bool ok = queue.count < QUEUE_SIZE;
    if (ok) {
        queue.items[(queue.head + queue.count) % QUEUE_SIZE] = b;
        queue.count++;
    }
    pthread_mutex_unlock(&queue.lock);
    return ok;
}

static bool queue_take(block *b)
{
    pthread_mutex_lock(&queue.lock);
    bool ok = queue.count > 0;
    if (ok) {
        *b = queue.items[queue.head];
        queue.head = (queue.head + 1) % QUEUE_SIZE;
        queue.count--;
    }
    pthread_mutex_unlock(&queue.lock);
    return ok;
}

/* ---------------------------------------------------------------------------------------------
 * Workers
 * ------------------------------------------------------------------------------------------- */

typedef struct shared {
    nalloc_arena *arena;
    uintptr_t base;
    size_t capacity;
    size_t threads;
    size_t rounds;
    pthread_barrier_t barrier;
    block *published; /* every thread's live blocks at the barrier, PER_ROUND each */
    size_t *published_count;
    atomic_size_t overlaps;
} shared;

typedef struct worker {
    shared *sh;
    size_t id;
    uint64_t rng;
    block held[PER_ROUND];
    size_t count;
    /* What the worker saw; the test checks these after joining. */
    size_t allocated;  /* blocks allocated (reallocs that moved included) */
    size_t outside;    /* blocks not in the arena (a fallback, or a wild pointer) */
    size_t misaligned; /* blocks not aligned as promised */
    size_t sizes_wrong;/* nalloc_usable_size disagreeing with the request */
    size_t corrupted;  /* tags changed before their block was freed */
    size_t not_zero;   /* calloc blocks with a non-zero byte */
    size_t failed;     /* NULL returns */
    size_t handed;     /* blocks put in the queue */
    size_t taken;      /* blocks freed from the queue */
} worker;

/* The alignment a block must have: `align` asked for (at least 16), or the policy's 64 bytes,
 * 4 KiB from 1 MiB (docs/routing.md). */
static size_t promised(size_t size, size_t align)
{
    if (align != 0)
        return align < 16 ? 16 : align;
    return size >= MiB ? 4096 : 64;
}

/* Is `p` a block of the arena, aligned to `align` (promised())? */
static void check_block(worker *w, const void *p, size_t size, size_t align)
{
    shared *sh = w->sh;
    uintptr_t x = (uintptr_t)p;
    if (x < sh->base || x - sh->base > sh->capacity || size > sh->capacity - (x - sh->base) ||
        nalloc_owner(p) != sh->arena)
        w->outside++;
    if (x % align != 0)
        w->misaligned++;
    if (nalloc_usable_size(p) != size)
        w->sizes_wrong++;
}

static size_t random_size(uint64_t r)
{
    switch (r % 64) {
    case 0: return MiB + (size_t)(r >> 8) % (2 * MiB); /* bypasses chunks */
    case 1: case 2: case 3: return (size_t)(r >> 8) % (64 * KiB);
    case 4: return 0;
    default: return (size_t)(r >> 8) % 1500;
    }
}

static void allocate_one(worker *w)
{
    uint64_t r = test_rand(&w->rng);
    size_t size = random_size(r), align = 0;
    unsigned char *p;
    switch ((r >> 32) % 8) {
    case 0:
        p = nalloc_calloc(1, size);
        if (p != NULL)
            for (size_t i = 0; i < size; i += size > 4096 ? 61 : 1)
                w->not_zero += p[i] != 0;
        break;
    case 1:
        align = (size_t)16 << ((r >> 40) % 9); /* 16 B to 4 KiB */
        p = nalloc_aligned_alloc(align, size);
        break;
    case 2:
        if (w->count > 0) { /* grow or shrink the newest held block */
            block *b = &w->held[w->count - 1];
            p = nalloc_mrealloc(b->p, size);
            if (p == NULL) {
                w->failed += size != 0;
                if (size == 0) /* freed, as glibc does */
                    w->count--;
                return;
            }
            if (p != b->p) { /* moved: a new block at the policy's alignment */
                w->allocated++;
                b->align = promised(size, 0);
            }
            size_t kept = b->size < size ? b->size : size;
            /* The bytes kept from the old block's tagged head are still its. */
            block old = {p, kept < TAGGED ? kept : TAGGED, b->tag, 0};
            if (!tag_intact(&old))
                w->corrupted++;
            b->p = p;
            b->size = size;
            check_block(w, p, size, b->align);
            tag_block(b);
            return;
        }
        p = nalloc_malloc(size);
        break;
    default:
        p = nalloc_malloc(size);
        break;
    }
    if (p == NULL) {
        w->failed++;
        return;
    }
    w->allocated++;
    align = promised(size, align);
    check_block(w, p, size, align);
    block b = {p, size, (uint64_t)w->id << 48 | w->allocated, align};
    tag_block(&b);
    w->held[w->count++] = b;
}

static void free_one(worker *w, block b)
{
    if (!tag_intact(&b))
        w->corrupted++;
    nalloc_free(b.p);
}

/* Free everything held, in allocation order, in reverse or at random; every eighth block goes to
 * the queue instead, and as many from the queue are freed here. */
static void free_held(worker *w, size_t round)
{
    size_t order[PER_ROUND];
    for (size_t i = 0; i < w->count; i++)
        order[i] = i;
    int mode = (int)((round + w->id) % 3);
    if (mode == 1)
        for (size_t i = 0; i < w->count / 2; i++) {
            size_t t = order[i];
            order[i] = order[w->count - 1 - i];
            order[w->count - 1 - i] = t;
        }
    if (mode == 2)
        for (size_t i = w->count; i > 1; i--) {
            size_t j = (size_t)(test_rand(&w->rng) % i), t = order[i - 1];
            order[i - 1] = order[j];
            order[j] = t;
        }
    for (size_t k = 0; k < w->count; k++) {
        block b = w->held[order[k]];
        if (test_rand(&w->rng) % 8 == 0 && queue_put(b)) {
            w->handed++;
            block other;
            if (queue_take(&other)) { /* often another thread's */
                free_one(w, other);
                w->taken++;
            }
            continue;
        }
        free_one(w, b);
    }
    w->count = 0;
}

static int by_address(const void *x, const void *y)
{
    const block *a = x, *b = y;
    return a->p < b->p ? -1 : a->p > b->p;
}

/* At the barrier every thread's blocks are alive: no two may overlap (thread 0 looks). */
static void count_overlaps(shared *sh)
{
    size_t n = 0;
    static block all[MAX_THREADS * PER_ROUND + QUEUE_SIZE];
    for (size_t t = 0; t < sh->threads; t++)
        for (size_t i = 0; i < sh->published_count[t]; i++)
            all[n++] = sh->published[t * PER_ROUND + i];
    pthread_mutex_lock(&queue.lock);
    for (size_t i = 0; i < queue.count; i++)
        all[n++] = queue.items[(queue.head + i) % QUEUE_SIZE];
    pthread_mutex_unlock(&queue.lock);
    qsort(all, n, sizeof all[0], by_address);
    for (size_t i = 1; i < n; i++) {
        /* 0-byte blocks take no room: they may sit where the next block's header begins. */
        uintptr_t end = (uintptr_t)all[i - 1].p + all[i - 1].size;
        if (end > (uintptr_t)all[i].p || (all[i - 1].p == all[i].p))
            atomic_fetch_add(&sh->overlaps, 1);
    }
}

static void *work(void *arg)
{
    worker *w = arg;
    shared *sh = w->sh;
    if (nalloc_route_push(sh->arena) != NALLOC_OK)
        w->sizes_wrong++; /* counted with the wrong answers: the test checks it is 0 */
    for (size_t round = 0; round < sh->rounds; round++) {
        while (w->count < PER_ROUND)
            allocate_one(w);
        /* Half the rounds meet at a barrier and look for overlaps. */
        if (round % 2 == 0) {
            memcpy(&sh->published[w->id * PER_ROUND], w->held, w->count * sizeof(block));
            sh->published_count[w->id] = w->count;
            pthread_barrier_wait(&sh->barrier);
            if (w->id == 0)
                count_overlaps(sh);
            pthread_barrier_wait(&sh->barrier);
        }
        for (size_t i = 0; i < w->count; i++)
            if (!tag_intact(&w->held[i]))
                w->corrupted++;
        free_held(w, round);
    }
    nalloc_route_pop();
    return NULL;
}

static void run_threads(size_t threads, size_t capacity, size_t rounds_each)
{
    static shared sh;
    static worker w[MAX_THREADS];
    static block published[MAX_THREADS * PER_ROUND];
    static size_t published_count[MAX_THREADS];
    nalloc_arena *a = make_arena(NALLOC_KIND_SCRATCH, capacity);
    nalloc_stats s0 = stats_of(a);
    memset(&sh, 0, sizeof sh);
    sh.arena = a;
    sh.base = s0.base;
    sh.capacity = s0.capacity;
    sh.threads = threads;
    sh.rounds = rounds_each;
    sh.published = published;
    sh.published_count = published_count;
    assert_int_equal(pthread_barrier_init(&sh.barrier, NULL, (unsigned)threads), 0);
    queue.head = queue.count = 0;
    pthread_t t[MAX_THREADS];
    for (size_t i = 0; i < threads; i++) {
        memset(&w[i], 0, sizeof w[i]);
        w[i].sh = &sh;
        w[i].id = i;
        w[i].rng = 0x9e3779b97f4a7c15ull * (i + 1) + threads;
        assert_int_equal(pthread_create(&t[i], NULL, work, &w[i]), 0);
    }
    for (size_t i = 0; i < threads; i++)
        assert_int_equal(pthread_join(t[i], NULL), 0);
    pthread_barrier_destroy(&sh.barrier);

    /* What is left in the queue is freed here, after every owner exited. */
    size_t allocated = 0, handed = 0, taken = 0, corrupted = 0;
    block b;
    while (queue_take(&b)) {
        corrupted += !tag_intact(&b);
        nalloc_free(b.p);
        taken++;
    }
    for (size_t i = 0; i < threads; i++) {
        assert_int_equal(w[i].outside, 0);
        assert_int_equal(w[i].misaligned, 0);
        assert_int_equal(w[i].sizes_wrong, 0);
        assert_int_equal(w[i].not_zero, 0);
        assert_int_equal(w[i].failed, 0);
        corrupted += w[i].corrupted;
        allocated += w[i].allocated;
        handed += w[i].handed;
        taken += w[i].taken;
    }
    assert_int_equal(corrupted, 0);
    assert_int_equal(atomic_load(&sh.overlaps), 0);
    assert_int_equal(handed, taken);
    assert_true(handed > 0);
    nalloc_stats s = stats_of(a);
    assert_int_equal(s.allocations, allocated);
    assert_int_equal(s.live_blocks, 0);
    assert_int_equal(s.used, 0);
    assert_int_equal(s.fallbacks, 0);
    /* Every thread left: their chunks went back, nothing is cached or waits. */
    assert_int_equal(s.cached, 0);
    assert_int_equal(s.deferred, 0);
    assert_int_equal(nalloc_reset(a), NALLOC_OK);
    assert_int_equal(nalloc_arena_destroy(a), NALLOC_OK);
}

static void test_two_threads_share_one_arena(void **state)
{
    (void)state;
    run_threads(2, GiB, rounds());
}

static void test_five_threads_share_one_arena(void **state)
{
    (void)state;
    run_threads(5, GiB, rounds());
}

static void test_sixteen_threads_share_one_arena(void **state)
{
    (void)state;
    run_threads(16, GiB, rounds());
}

static void test_more_threads_than_private_slots_share_one_arena(void **state)
{
    (void)state;
    /* 80 threads alive at once: 16 of them use the arena's shared slot. */
    run_threads(MAX_THREADS, 4 * GiB, 2);
}

/* ---------------------------------------------------------------------------------------------
 * nalloc_owner while arenas come and go
 * ------------------------------------------------------------------------------------------- */

typedef struct churn {
    atomic_int *stop;
    uint64_t rng;
    atomic_size_t created;
    size_t wrong; /* lookups that gave a wrong answer */
} churn;

/* Create and destroy small and big arenas; check its own arenas are found while they live. */
static void *churn_arenas(void *arg)
{
    churn *c = arg;
    while (!atomic_load(c->stop)) {
        nalloc_arena_config config;
        size_t capacity = test_rand(&c->rng) % 4 == 0 ? 8 * MiB : 4 * KiB * (1 + test_rand(&c->rng) % 16);
        nalloc_arena_config_init(&config, NALLOC_KIND_SCRATCH, NALLOC_MEMORY_HOST, capacity);
        nalloc_arena *a = NULL;
        if (nalloc_arena_create(&config, &a) != NALLOC_OK)
            continue;
        atomic_fetch_add(&c->created, 1);
        nalloc_stats s;
        c->wrong += nalloc_arena_stats(a, &s) != NALLOC_OK;
        void *b = nalloc_arena_malloc(a, 100, 0);
        c->wrong += b == NULL || nalloc_owner(b) != a;
        c->wrong += nalloc_owner((void *)s.base) != a;
        c->wrong += nalloc_owner((void *)(s.base + s.capacity - 1)) != a;
        nalloc_free(b);
        c->wrong += nalloc_arena_destroy(a) != NALLOC_OK;
    }
    return NULL;
}

typedef struct reader {
    atomic_int *stop;
    nalloc_arena *arenas[4];
    void *blocks[4];
    void *system;
    atomic_size_t lookups;
    size_t wrong;
} reader;

static void *read_owners(void *arg)
{
    reader *r = arg;
    while (!atomic_load(r->stop)) {
        for (int i = 0; i < 4; i++)
            r->wrong += nalloc_owner(r->blocks[i]) != r->arenas[i];
        r->wrong += nalloc_owner(r->system) != NULL;
        r->wrong += nalloc_owner(&r->wrong) != NULL;
        if (atomic_fetch_add(&r->lookups, 6) % 600 == 0)
            sched_yield();
    }
    return NULL;
}

static void test_owner_is_right_while_other_threads_create_and_destroy_arenas(void **state)
{
    (void)state;
    enum { CHURNERS = 3, READERS = 3 };
    nalloc_arena *stable[4] = {make_arena(NALLOC_KIND_SCRATCH, 4 * KiB),
                               make_arena(NALLOC_KIND_SCRATCH, 12 * KiB),
                               make_arena(NALLOC_KIND_SCRATCH, 64 * MiB),
                               make_arena(NALLOC_KIND_SCRATCH, 8 * KiB)};
    void *blocks[4];
    for (int i = 0; i < 4; i++)
        blocks[i] = nalloc_arena_malloc(stable[i], 64, 0);
    void *sys = malloc(64);
    atomic_int stop = 0;
    churn c[CHURNERS];
    reader r[READERS];
    pthread_t tc[CHURNERS], tr[READERS];
    for (int i = 0; i < CHURNERS; i++) {
        c[i] = (churn){.stop = &stop, .rng = (uint64_t)i + 11};
        assert_int_equal(pthread_create(&tc[i], NULL, churn_arenas, &c[i]), 0);
    }
    for (int i = 0; i < READERS; i++) {
        r[i] = (reader){.stop = &stop, .system = sys};
        memcpy(r[i].arenas, stable, sizeof stable);
        memcpy(r[i].blocks, blocks, sizeof blocks);
        assert_int_equal(pthread_create(&tr[i], NULL, read_owners, &r[i]), 0);
    }
    /* Run until enough arenas came and went and every reader looked enough, however slowly the
     * threads are scheduled. */
    for (bool enough = false; !enough;) {
        sched_yield();
        size_t created = 0;
        for (int i = 0; i < CHURNERS; i++)
            created += atomic_load(&c[i].created);
        enough = created >= 600;
        for (int i = 0; i < READERS; i++)
            enough = enough && atomic_load(&r[i].lookups) >= 6000;
    }
    atomic_store(&stop, 1);
    for (int i = 0; i < CHURNERS; i++)
        assert_int_equal(pthread_join(tc[i], NULL), 0);
    for (int i = 0; i < READERS; i++)
        assert_int_equal(pthread_join(tr[i], NULL), 0);
    for (int i = 0; i < CHURNERS; i++)
        assert_int_equal(c[i].wrong, 0);
    for (int i = 0; i < READERS; i++) {
        assert_int_equal(r[i].wrong, 0);
        assert_true(atomic_load(&r[i].lookups) >= 6000);
    }
    free(sys);
    for (int i = 0; i < 4; i++) {
        nalloc_free(blocks[i]);
        assert_int_equal(nalloc_arena_destroy(stable[i]), NALLOC_OK);
    }
}

/* ---------------------------------------------------------------------------------------------
 * A deferred destroy racing many frees
 * ------------------------------------------------------------------------------------------- */

typedef struct last_frees {
    void **blocks;
    size_t n;
    atomic_int *go;
} last_frees;

static void *free_share(void *arg)
{
    last_frees *l = arg;
    while (!atomic_load(l->go))
        sched_yield();
    for (size_t i = 0; i < l->n; i++)
        nalloc_free(l->blocks[i]);
    return NULL;
}

static void test_a_deferred_destroy_racing_many_frees_destroys_once(void **state)
{
    (void)state;
    enum { FREERS = 4, EACH = 64 };
    for (int round = 0; round < 40; round++) {
        nalloc_arena *a = make_arena(NALLOC_KIND_SCRATCH, 32 * MiB);
        nalloc_stats s = stats_of(a);
        static void *blocks[FREERS][EACH];
        assert_int_equal(nalloc_route_push(a), NALLOC_OK);
        for (int t = 0; t < FREERS; t++)
            for (int i = 0; i < EACH; i++)
                blocks[t][i] = nalloc_malloc((size_t)(i * 37 + t) % (i == 5 ? 3 * MiB : 3000));
        assert_int_equal(nalloc_route_pop(), NALLOC_OK);
        atomic_int go = 0;
        last_frees l[FREERS];
        pthread_t th[FREERS];
        for (int t = 0; t < FREERS; t++) {
            l[t] = (last_frees){blocks[t], EACH, &go};
            assert_int_equal(pthread_create(&th[t], NULL, free_share, &l[t]), 0);
        }
        atomic_store(&go, 1);
        if (round % 2)
            sched_yield(); /* let the frees start first, sometimes */
        nalloc_status st = nalloc_arena_destroy_deferred(a);
        for (int t = 0; t < FREERS; t++)
            assert_int_equal(pthread_join(th[t], NULL), 0);
        if (st == NALLOC_ERR_UNSUPPORTED) {
            assert_int_equal(nalloc_arena_destroy(a), NALLOC_OK);
            skip(); /* no membarrier(2) here */
        }
        assert_int_equal(st, NALLOC_OK);
        assert_null(nalloc_owner((void *)s.base));
        assert_null(nalloc_owner(blocks[0][0]));
        assert_int_equal(nalloc_arena_destroy(a), NALLOC_ERR_STATE);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_two_threads_share_one_arena),
        cmocka_unit_test(test_five_threads_share_one_arena),
        cmocka_unit_test(test_sixteen_threads_share_one_arena),
        cmocka_unit_test(test_more_threads_than_private_slots_share_one_arena),
        cmocka_unit_test(test_owner_is_right_while_other_threads_create_and_destroy_arenas),
        cmocka_unit_test(test_a_deferred_destroy_racing_many_frees_destroys_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
