/* tests/test_route.c - routes and the malloc family (src/route.c, src/blocks.c, src/owner.c).
 *
 * What the malloc family promises (docs/routing.md), one check per promise:
 *
 *  - Routes: a per-thread stack, nestable (the innermost wins), a NULL route steps out to the
 *    system allocator, 16 deep at most (a 17th push is refused and routes nothing), a scope that
 *    pops on every way out of a C block, and a process-wide default route for threads that push
 *    none.
 *  - The C standard's semantics for malloc, calloc, aligned_alloc, posix_memalign, realloc and
 *    free, routed or not, and bad input (impossible sizes, overflow, bad alignments, double
 *    frees, interior pointers, nalloc_alloc blocks, pointers of destroyed arenas) refused with a
 *    status and the arena left as it was.
 *  - Every block aligned as promised, and nalloc_owner telling arena blocks (lanes included)
 *    from everything else.
 *  - Frees in allocation order, in reverse and at random, from the allocating thread or another
 *    one, while it lives or after it exited, give everything back: used and live_blocks read 0.
 *  - A full arena falls back to the system allocator and counts it; live blocks make the phase
 *    boundaries refuse; a deferred destroy happens at the last free; unchecked resets forget.
 *  - A free never writes a block's bytes (a witness arena's secret stays where it was until the
 *    wipe), and the wipe zeroes them, headers included.
 *
 * The multi-threaded stress of one arena is tests/test_route_threads.c.
 */
#include "internal.h" /* a thread's statistics slot, for the route that outlives its exit */

#include "child.h"

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>

/* Impossible sizes must come back NULL with ENOMEM from the system allocator too, which under a
 * sanitizer is the sanitizer's: let it return NULL instead of aborting (the environment's
 * ASAN_OPTIONS and TSAN_OPTIONS still add to this). */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
    return "allocator_may_return_null=1";
}
const char *__tsan_default_options(void);
const char *__tsan_default_options(void)
{
    return "allocator_may_return_null=1";
}

/* What every test ends with: no route left on this thread, no default route. */
static int no_routes_left(void **state)
{
    (void)state;
    while (nalloc_route_depth() > 0)
        nalloc_route_pop();
    nalloc_route_set_default(NULL);
    return 0;
}

static nalloc_arena *scratch(size_t capacity)
{
    return make_arena(NALLOC_KIND_SCRATCH, capacity);
}

static bool in_arena(const nalloc_arena *a, const void *p)
{
    nalloc_stats s = stats_of(a);
    return (uintptr_t)p >= s.base && (uintptr_t)p - s.base < s.capacity;
}

/* Every malloc-family block of `a` is freed: nothing counted as used or live. */
static void assert_reclaimed(const nalloc_arena *a)
{
    nalloc_stats s = stats_of(a);
    assert_int_equal(s.live_blocks, 0);
    assert_int_equal(s.used, 0);
}

/* The arena's statistics that a refused call must leave as they were. */
typedef struct snapshot {
    size_t used, live, allocations, deferred, cached, fallbacks;
} snapshot;

static snapshot snap(const nalloc_arena *a)
{
    nalloc_stats s = stats_of(a);
    return (snapshot){s.used, s.live_blocks, s.allocations, s.deferred, s.cached, s.fallbacks};
}

static void assert_same_snapshot(snapshot x, snapshot y)
{
    assert_int_equal(x.used, y.used);
    assert_int_equal(x.live, y.live);
    assert_int_equal(x.allocations, y.allocations);
    assert_int_equal(x.deferred, y.deferred);
    assert_int_equal(x.cached, y.cached);
    assert_int_equal(x.fallbacks, y.fallbacks);
}

/* Fill and check a block with bytes derived from `tag`, so that overlaps and stray writes show. */
static void fill(void *p, size_t n, unsigned tag)
{
    unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        b[i] = (unsigned char)(tag * 31 + i * 7);
}

static bool holds(const void *p, size_t n, unsigned tag)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i] != (unsigned char)(tag * 31 + i * 7))
            return false;
    return true;
}

/* ---------------------------------------------------------------------------------------------
 * Routes
 * ------------------------------------------------------------------------------------------- */

static void test_routes_nest_and_the_innermost_wins(void **state)
{
    (void)state;
    nalloc_arena *outer = scratch(4 * MiB), *inner = scratch(4 * MiB);
    assert_null(nalloc_route_current());
    assert_int_equal(nalloc_route_depth(), 0);

    assert_int_equal(nalloc_route_push(outer), NALLOC_OK);
    void *a = nalloc_malloc(100);
    assert_int_equal(nalloc_route_push(inner), NALLOC_OK);
    assert_ptr_equal(nalloc_route_current(), inner);
    assert_int_equal(nalloc_route_depth(), 2);
    void *b = nalloc_malloc(100);
    assert_int_equal(nalloc_route_pop(), NALLOC_OK);
    assert_ptr_equal(nalloc_route_current(), outer);
    void *c = nalloc_malloc(100);
    assert_int_equal(nalloc_route_pop(), NALLOC_OK);
    void *d = nalloc_malloc(100);

    assert_ptr_equal(nalloc_owner(a), outer);
    assert_ptr_equal(nalloc_owner(b), inner);
    assert_ptr_equal(nalloc_owner(c), outer);
    assert_null(nalloc_owner(d)); /* unrouted: the system allocator */
    assert_true(in_arena(outer, a) && in_arena(inner, b) && in_arena(outer, c));
    nalloc_free(a);
    nalloc_free(b);
    nalloc_free(c);
    nalloc_free(d);
    assert_reclaimed(outer);
    assert_reclaimed(inner);
    assert_int_equal(nalloc_arena_destroy(outer), NALLOC_OK);
    assert_int_equal(nalloc_arena_destroy(inner), NALLOC_OK);
}

static void test_a_null_route_steps_out_to_the_system_allocator(void **state)
{
    (void)state;
    nalloc_arena *a = scratch(4 * MiB);
    assert_int_equal(nalloc_route_push(a), NALLOC_OK);
    assert_int_equal(nalloc_route_push(NULL), NALLOC_OK);
    assert_null(nalloc_route_current());
    assert_int_equal(nalloc_route_depth(), 2);
    void *sys = nalloc_malloc(64), *sysz = nalloc_calloc(4, 16), *sysa = nalloc_aligned_alloc(256, 64);
    assert_null(nalloc_owner(sys));
    assert_null(nalloc_owner(sysz));
    assert_null(nalloc_owner(sysa));
    assert_int_equal((uintptr_t)sysa % 256, 0);
    assert_int_equal(nalloc_route_pop(), NALLOC_OK);
    void *mine = nalloc_malloc(64);
    assert_ptr_equal(nalloc_owner(mine), a);
    /* Each goes back where it came from, whatever the route is now. */
    nalloc_free(sys);
    nalloc_free(sysz);
    nalloc_free(sysa);
    nalloc_free(mine);
    assert_int_equal(nalloc_route_pop(), NALLOC_OK);
    assert_reclaimed(a);
    assert_int_equal(stats_of(a).fallbacks, 0);
    assert_int_equal(nalloc_arena_destroy(a), NALLOC_OK);
}

static void test_a_seventeenth_route_is_refused_and_routes_nothing(void **state)
{
    (void)state;
    nalloc_arena *a = scratch(4 * MiB), *b = scratch(4 * MiB);
    for (int i = 0; i < 16; i++)
        assert_int_equal(nalloc_route_push(i % 2 ? b : a), NALLOC_OK);
    assert_int_equal(nalloc_route_depth(), 16);
    assert_ptr_equal(nalloc_route_current(), b);
    assert_int_equal(nalloc_route_push(a), NALLOC_ERR_NOMEM);
    assert_int_equal(nalloc_last_error(), NALLOC_ERR_NOMEM);
    assert_int_equal(nalloc_route_push(NULL), NALLOC_ERR_NOMEM);
    assert_int_equal(nalloc_route_depth(), 16);
    assert_ptr_equal(nalloc_route_current(), b); /* still the 16th */
    void *p = nalloc_malloc(10);
    assert_ptr_equal(nalloc_owner(p), b);
    nalloc_free(p);
    for (int i = 16; i > 0; i--) {
        assert_ptr_equal(nalloc_route_current(), i % 2 ? a : b);
        assert_int_equal(nalloc_route_pop(), NALLOC_OK);
    }
    assert_int_equal(nalloc_route_depth(), 0);
    assert_int_equal(nalloc_arena_destroy(a), NALLOC_OK);
    assert_int_equal(nalloc_arena_destroy(b), NALLOC_OK);
}

static void test_a_pop_without_a_route_is_refused(void **state)
{
    (void)state;
    assert_int_equal(nalloc_route_depth(), 0);
    assert_int_equal(nalloc_route_pop(), NALLOC_ERR_STATE);
    assert_int_equal(nalloc_last_error(), NALLOC_ERR_STATE);
    assert_int_equal(nalloc_route_depth(), 0);
}

static void test_routes_into_destroyed_arenas_are_refused(void **state)
{
    (void)state;
    nalloc_arena *a = scratch(MiB);
    assert_int_equal(nalloc_arena_destroy(a), NALLOC_OK);
    assert_int_equal(nalloc_route_push(a), NALLOC_ERR_STATE);
    assert_int_equal(nalloc_route_depth(), 0);
    assert_int_equal(nalloc_route_set_default(a), NALLOC_ERR_STATE);
    assert_null(nalloc_route_current());

    /* An arena destroyed while routed into: the route serves from the system allocator. */
    nalloc_arena *b = scratch(MiB);
    assert_int_equal(nalloc_route_push(b), NALLOC_OK);
    assert_int_equal(nalloc_arena_destroy(b), NALLOC_OK);
    void *p = nalloc_malloc(100), *q = nalloc_calloc(10, 10), *r = nalloc_aligned_alloc(64, 64);
    assert_non_null(p);
    assert_non_null(q);
    assert_non_null(r);
    assert_null(nalloc_owner(p));
    assert_null(nalloc_owner(q));
    assert_null(nalloc_owner(r));
    nalloc_free(p);
    nalloc_free(q);
    nalloc_free(r);
    assert_int_equal(nalloc_route_pop(), NALLOC_OK);
}

/* Create arenas until one takes the handle of `dead` (destroyed: the handle slab reuses its slot);
 * every arena made on the way is in others[0..*n). */
static nalloc_arena *take_handle_of(const nalloc_arena *dead, nalloc_arena **others, size_t *n)
{
    for (*n = 0; *n < 64;) {
        nalloc_arena *x = scratch(MiB);
        others[(*n)++] = x;
        if (x == dead)
            return x;
    }
    fail_msg("64 new arenas and none took the destroyed arena's handle");
    return NULL;
}

/* No block of `p`, `q` and `r` (freed here) came from `b`, which holds no live block. */
static void assert_none_from(const nalloc_arena *b, void *p, void *q, void *r)
{
    assert_non_null(p);
    assert_non_null(q);
    assert_non_null(r);
    assert_ptr_not_equal(nalloc_owner(p), b);
    assert_ptr_not_equal(nalloc_owner(q), b);
    assert_ptr_not_equal(nalloc_owner(r), b);
    assert_int_equal(stats_of(b).live_blocks, 0);
    nalloc_free(p);
    nalloc_free(q);
    nalloc_free(r);
}

/* A destroyed arena's handle may hold a newer arena by now: a route to the old one (pushed, or
 * the default route) serves from the system allocator, never from the newer arena, which this
 * thread never routed into (its live blocks would make its reset refuse). */
static void test_a_route_to_a_destroyed_arena_does_not_follow_its_handle(void **state)
{
    (void)state;
    nalloc_arena *others[2][64];
    size_t n[2];
    nalloc_arena *a = scratch(MiB);
    assert_int_equal(nalloc_route_push(a), NALLOC_OK);
    nalloc_free(nalloc_malloc(64)); /* this thread's slot and chunk in `a` in use */
    assert_int_equal(nalloc_arena_destroy(a), NALLOC_OK);
    nalloc_arena *b = take_handle_of(a, others[0], &n[0]);
    assert_null(nalloc_route_current());
    assert_null(nalloc_routed_alloc(64, 0));
    assert_null(nalloc_routed_alloc_zeroed(64, 0));
    void *m = NULL;
    assert_int_equal(nalloc_posix_memalign(&m, 64, 64), 0);
    nalloc_free(m);
    assert_none_from(b, nalloc_malloc(64), nalloc_calloc(4, 16), nalloc_aligned_alloc(64, 64));
    assert_int_equal(nalloc_route_pop(), NALLOC_OK);

    nalloc_arena *d = scratch(MiB);
    assert_int_equal(nalloc_route_set_default(d), NALLOC_OK);
    void *p = nalloc_malloc(64);
    assert_ptr_equal(nalloc_owner(p), d);
    nalloc_free(p);
    assert_int_equal(nalloc_arena_destroy(d), NALLOC_OK);
    nalloc_arena *e = take_handle_of(d, others[1], &n[1]);
    assert_null(nalloc_route_current());
    assert_none_from(e, nalloc_malloc(64), nalloc_calloc(4, 16), nalloc_aligned_alloc(64, 64));
    for (size_t k = 0; k < 2; k++)
        for (size_t i = 0; i < n[k]; i++)
            assert_int_equal(nalloc_arena_destroy(others[k][i]), NALLOC_OK);
}

/* A function with several ways out, each of which must leave the route depth as it found it. */
static int scoped(nalloc_arena *a, int way, size_t *depth_inside)
{
    NALLOC_ROUTE_SCOPE(a);
    *depth_inside = nalloc_route_depth();
    if (way == 0)
        return 0;
    for (int i = 0; i < 3; i++) {
        NALLOC_ROUTE_SCOPE(NULL); /* nested scopes: a library stepping out */
        if (way == 1)
            return 1;
        if (way == 2)
            break;
        if (way == 3)
            continue;
    }
    if (way == 4) {
        assert_int_equal(nalloc_route_push(a), NALLOC_OK); /* left pushed: the scope pops it too */
        assert_int_equal(nalloc_route_push(a), NALLOC_OK);
        return 4;
    }
    {
        NALLOC_ROUTE_SCOPE(a);
        if (way == 5)
            goto out;
    }
out:
    return way;
}

static void test_the_scope_macro_pops_on_every_return_path(void **state)
{
    (void)state;
    nalloc_arena *a = scratch(MiB);
    for (size_t base = 0; base < 3; base++) {
        for (size_t i = 0; i < base; i++)
            assert_int_equal(nalloc_route_push(NULL), NALLOC_OK);
        for (int way = 0; way < 7; way++) {
            size_t inside = 0;
            assert_int_equal(scoped(a, way, &inside), way);
            assert_int_equal(inside, base + 1);
            assert_int_equal(nalloc_route_depth(), base);
        }
        for (size_t i = 0; i < base; i++)
            assert_int_equal(nalloc_route_pop(), NALLOC_OK);
    }
    /* The scope's arena serves the block's mallocs. */
    {
        NALLOC_ROUTE_SCOPE(a);
        void *p = nalloc_malloc(32);
        assert_ptr_equal(nalloc_owner(p), a);
        nalloc_free(p);
    }
    assert_int_equal(nalloc_route_depth(), 0);
    assert_int_equal(nalloc_arena_destroy(a), NALLOC_OK);
}

static void test_a_refused_scope_pops_nothing(void **state)
{
    (void)state;
    nalloc_arena *a = scratch(MiB), *dead = scratch(MiB);
    assert_int_equal(nalloc_arena_destroy(dead), NALLOC_OK);
    assert_int_equal(nalloc_route_push(a), NALLOC_OK);
    {
        NALLOC_ROUTE_SCOPE(dead); /* refused: routes nothing, pops nothing */
        assert_int_equal(nalloc_route_depth(), 1);
        assert_ptr_equal(nalloc_route_current(), a);
    }
    assert_int_equal(nalloc_route_depth(), 1);
    for (int i = 1; i < 16; i++)
        assert_int_equal(nalloc_route_push(a), NALLOC_OK);
    {
        NALLOC_ROUTE_SCOPE(NULL); /* the 17th: refused */
        nalloc_route_scope s = nalloc_route_scope_begin(NULL);
        assert_int_equal(s, 0);
        assert_int_equal(nalloc_last_error(), NALLOC_ERR_NOMEM);
        nalloc_route_scope_end(&s);
        assert_int_equal(nalloc_route_depth(), 16);
        assert_ptr_equal(nalloc_route_current(), a);
    }
    assert_int_equal(nalloc_route_depth(), 16);
    for (int i = 0; i < 16; i++)
        assert_int_equal(nalloc_route_pop(), NALLOC_OK);
    assert_int_equal(nalloc_arena_destroy(a), NALLOC_OK);
}

typedef struct probe {
    nalloc_arena *route; /* nalloc_route_current() seen by the thread */
    nalloc_arena *owner; /* nalloc_owner of a block it allocated */
    size_t depth;
    void *block;         /* left for the test to free */
    nalloc_arena *push;  /* pushed by the thread first, if not NULL */
    nalloc_status pushed; /* what that push answered */
} probe;

static void *probe_thread(void *arg)
{
    probe *p = arg;
    if (p->push != NULL)
        p->pushed = nalloc_route_push(p->push);
    p->route = nalloc_route_current();
    p->depth = nalloc_route_depth();
    p->block = nalloc_malloc(48);
    p->owner = nalloc_owner(p->block);
    if (p->push != NULL)
        nalloc_route_pop();
    return NULL;
}

static void run_probe(probe *p)
{
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, probe_thread, p), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    if (p->push != NULL)
        assert_int_equal(p->pushed, NALLOC_OK);
}

static void test_routes_belong_to_their_thread(void **state)
{
    (void)state;
    nalloc_arena *a = scratch(MiB), *b = scratch(MiB);
    assert_int_equal(nalloc_route_push(a), NALLOC_OK);
    probe p = {0};
    run_probe(&p); /* a new thread starts with no route */
    assert_null(p.route);
    assert_int_equal(p.depth, 0);
    assert_null(p.owner);
    nalloc_free(p.block);
    probe q = {.push = b};
    run_probe(&q);
    assert_ptr_equal(q.route, b);
    assert_ptr_equal(q.owner, b);
    assert_ptr_equal(nalloc_route_current(), a); /* untouched by the other thread's push */
    nalloc_free(q.block); /* freed here, after the thread that made it exited */
    assert_int_equal(nalloc_route_pop(), NALLOC_OK);
    assert_reclaimed(b);
    assert_int_equal(nalloc_arena_destroy(a), NALLOC_OK);
    assert_int_equal(nalloc_arena_destroy(b), NALLOC_OK);
}

/* A route left pushed when its thread exits, used by a thread-local destructor that runs after
 * nalloc's own: the thread's slot in the arena was freed at its exit, and another thread (here
 * the test's main thread) has claimed it and allocates from its chunk. The late allocation must
 * not bump that chunk or count in that slot: it takes a slot of its own. (White box: the slot
 * and its counts are internal.h's.) */
static struct {
    nalloc_arena *arena;
    pthread_key_t key;
    na_stat_slot *slot;          /* the exiting thread's slot, claimed again by main */
    sem_t released, claimed, done;
    size_t mallocs_before, mallocs_after, cursor_before, cursor_after;
    void *block;                 /* the late allocation, freed by main */
} late;

static void late_allocation(void *value)
{
    (void)value;
    if (__atomic_load_n(&late.slot->owner, __ATOMIC_ACQUIRE) != 0) {
        /* nalloc's destructor has not run yet: come back in the next round */
        (void)pthread_setspecific(late.key, (void *)1);
        return;
    }
    sem_post(&late.released);
    while (sem_wait(&late.claimed) != 0)
        continue;
    late.mallocs_before = __atomic_load_n(&late.slot->mallocs, __ATOMIC_RELAXED);
    late.cursor_before = na_atomic_load(&late.slot->blocks.cursor);
    late.block = nalloc_malloc(64); /* the route is still pushed */
    late.mallocs_after = __atomic_load_n(&late.slot->mallocs, __ATOMIC_RELAXED);
    late.cursor_after = na_atomic_load(&late.slot->blocks.cursor);
    sem_post(&late.done);
}

static void *exit_with_a_route(void *arg)
{
    (void)arg;
    if (nalloc_route_push(late.arena) != NALLOC_OK) { /* main fails: late.slot is NULL */
        sem_post(&late.released);
        return NULL;
    }
    nalloc_free(nalloc_malloc(64));
    for (unsigned i = 0; i < NA_STAT_SLOTS; i++) /* the one slot in use: this thread's */
        if (__atomic_load_n(&late.arena->slots[i].owner, __ATOMIC_RELAXED) != 0)
            late.slot = &late.arena->slots[i];
    (void)pthread_setspecific(late.key, (void *)1);
    return NULL; /* the route stays pushed */
}

static void test_a_route_outliving_its_thread_takes_no_slot_of_another(void **state)
{
    (void)state;
    nalloc_arena *a = scratch(MiB), *armed = scratch(MiB);
    /* This thread's exit handling exists before the test's key, so nalloc's destructor comes
     * first (late_allocation waits for it either way). */
    nalloc_free(nalloc_arena_malloc(armed, 64, 0));
    late.arena = a;
    assert_int_equal(pthread_key_create(&late.key, late_allocation), 0);
    assert_int_equal(sem_init(&late.released, 0, 0), 0);
    assert_int_equal(sem_init(&late.claimed, 0, 0), 0);
    assert_int_equal(sem_init(&late.done, 0, 0), 0);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, exit_with_a_route, NULL), 0);
    while (sem_wait(&late.released) != 0)
        continue;
    assert_non_null(late.slot);
    /* Every other slot taken (as by other threads), so that main's claim is the freed one. */
    size_t fake = SIZE_MAX / 2;
    for (unsigned i = 0; i < NA_STAT_SLOTS; i++)
        if (&a->slots[i] != late.slot)
            assert_true(__atomic_compare_exchange_n(&a->slots[i].owner, &(size_t){0}, fake + i,
                                                    false, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED));
    void *mine = nalloc_arena_malloc(a, 64, 0);
    assert_non_null(mine);
    assert_true(__atomic_load_n(&late.slot->owner, __ATOMIC_RELAXED) != 0); /* main's now */
    sem_post(&late.claimed);
    while (sem_wait(&late.done) != 0)
        continue;
    assert_int_equal(pthread_join(t, NULL), 0);

    assert_non_null(late.block);
    assert_ptr_equal(nalloc_owner(late.block), a); /* still routed */
    assert_int_equal(late.mallocs_after, late.mallocs_before);
    assert_int_equal(late.cursor_after, late.cursor_before);
    nalloc_free(late.block);
    nalloc_free(mine);
    for (unsigned i = 0; i < NA_STAT_SLOTS; i++)
        if (__atomic_load_n(&a->slots[i].owner, __ATOMIC_RELAXED) == fake + i)
            __atomic_store_n(&a->slots[i].owner, 0, __ATOMIC_RELEASE);
    assert_reclaimed(a);
    assert_int_equal(pthread_key_delete(late.key), 0);
    sem_destroy(&late.released);
    sem_destroy(&late.claimed);
    sem_destroy(&late.done);
    assert_int_equal(nalloc_arena_destroy(a), NALLOC_OK);
    assert_int_equal(nalloc_arena_destroy(armed), NALLOC_OK);
}

/* A fork while another thread holds an arena's stretch lock (it is reusing or giving back free
 * space, as routed malloc and free do) waits for it, so the child does not inherit it held and
 * hang in its first such call. The other thread holds the lock for a while after the fork began;
 * the child's calls take it, under an alarm that turns a hang into a failure. */
static struct {
    nalloc_arena *arena;
    sem_t locked, done;
} held;

static void *hold_the_stretch_lock(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&held.arena->chunk_lock);
    sem_post(&held.locked);
    struct timespec pause = {0, 500 * 1000 * 1000};
    nanosleep(&pause, NULL); /* time for the fork to start while it is held; any length passes */
    pthread_mutex_unlock(&held.arena->chunk_lock);
    sem_post(&held.done);
    return NULL;
}

static void use_the_stretches(void *arg)
{
    nalloc_arena *a = arg;
    alarm(30);
    void *p = nalloc_arena_malloc(a, 2 * MiB, 0), *q = nalloc_arena_malloc(a, 2 * MiB, 0);
    CHILD_CHECK(p != NULL && q != NULL);
    nalloc_free(p); /* below q: a free stretch (the lock) */
    void *r = nalloc_arena_malloc(a, 2 * MiB, 0); /* looks at the stretches (the lock) */
    CHILD_CHECK(r != NULL);
    nalloc_free(r);
    nalloc_free(q);
}

static void test_a_fork_waits_for_the_stretch_lock(void **state)
{
    (void)state;
    held.arena = scratch(64 * MiB);
    assert_int_equal(sem_init(&held.locked, 0, 0), 0);
    assert_int_equal(sem_init(&held.done, 0, 0), 0);
    /* Detached, and waited for by its semaphore: the child's copy of the process must not see a
     * thread it could join (ThreadSanitizer reports those as leaked at the child's exit). */
    pthread_attr_t detached;
    pthread_attr_init(&detached);
    pthread_attr_setdetachstate(&detached, PTHREAD_CREATE_DETACHED);
    pthread_t t;
    assert_int_equal(pthread_create(&t, &detached, hold_the_stretch_lock, NULL), 0);
    pthread_attr_destroy(&detached);
    while (sem_wait(&held.locked) != 0)
        continue;
    int status = run_in_child(use_the_stretches, held.arena);
    while (sem_wait(&held.done) != 0)
        continue;
    assert_true(exited_ok(status));
    sem_destroy(&held.locked);
    sem_destroy(&held.done);
    assert_int_equal(nalloc_arena_destroy(held.arena), NALLOC_OK);
}

/* Roles run in a fresh process (child_exec_self), for what depends on the process's history. */

/* "busy-stream-at-exit": a witness arena with a live malloc-family block at exit (so the exit
 * wipe flushes stdio first) while another thread holds stdin's lock for ever, as one blocked
 * reading it would: the process must still exit. */
static sem_t stream_held;

static void *hold_stdin(void *arg)
{
    (void)arg;
    flockfile(stdin);
    sem_post(&stream_held);
    for (;;)
        pause();
    return NULL;
}

static int busy_stream_at_exit_role(void)
{
    alarm(20); /* a hang fails the test instead of stalling it */
    nalloc_arena *w = try_arena(NALLOC_KIND_WITNESS, MiB, 0, 0, NULL);
    if (w == NULL || nalloc_arena_malloc(w, 100, 0) == NULL || sem_init(&stream_held, 0, 0) != 0)
        return 2;
    pthread_t t;
    if (pthread_create(&t, NULL, hold_stdin, NULL) != 0)
        return 3;
    while (sem_wait(&stream_held) != 0)
        continue;
    printf("exiting\n");
    return 0; /* exit runs the wipe while the other thread holds stdin */
}

/* "fork-handler-allocates": a fork handler installed before the process's first arena runs its
 * parent and child parts before nalloc's, on the forking thread, while nalloc holds the arenas'
 * stretch locks across the fork; one that frees below the top and reuses free space (the lock)
 * must not deadlock. */
static nalloc_arena *fork_arena;

static void stretch_work_in_a_fork_handler(void)
{
    void *p = nalloc_arena_malloc(fork_arena, 2 * MiB, 0), *q = nalloc_arena_malloc(fork_arena, 2 * MiB, 0);
    nalloc_free(p); /* below q: a free stretch */
    nalloc_free(nalloc_arena_malloc(fork_arena, 2 * MiB, 0));
    nalloc_free(q);
}

static int fork_handler_allocates_role(void)
{
    alarm(20); /* a hang fails the test instead of stalling it */
    /* The test (and ctest) read our output until every copy is closed: a child hung in its fork
     * handler (no alarm there) must not hold one. */
    int devnull = open("/dev/null", O_WRONLY);
    if (devnull < 0 || dup2(devnull, STDOUT_FILENO) < 0 || dup2(devnull, STDERR_FILENO) < 0)
        return 6;
    if (pthread_atfork(NULL, stretch_work_in_a_fork_handler, stretch_work_in_a_fork_handler) != 0)
        return 2;
    fork_arena = try_arena(NALLOC_KIND_SCRATCH, 64 * MiB, 0, 0, NULL);
    if (fork_arena == NULL)
        return 3;
    pid_t pid = fork();
    if (pid < 0)
        return 4;
    if (pid == 0)
        _exit(0);
    int status;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return 5;
    return 0;
}

static void test_exit_does_not_wait_for_a_stream_another_thread_holds(void **state)
{
    (void)state;
    if (under_valgrind())
        skip(); /* /proc/self/exe is Valgrind there: no fresh process of this test */
    char out[64];
    assert_int_equal(child_exec_self("busy-stream-at-exit", out, sizeof out), 0);
    assert_string_equal(out, "exiting\n");
}

static void test_a_fork_handler_may_use_the_malloc_family(void **state)
{
    (void)state;
    if (under_valgrind())
        skip(); /* /proc/self/exe is Valgrind there: no fresh process of this test */
    char out[64];
    assert_int_equal(child_exec_self("fork-handler-allocates", out, sizeof out), 0);
}

static void test_the_default_route_serves_threads_without_a_route(void **state)
{
    (void)state;
    nalloc_arena *d = scratch(4 * MiB), *own = scratch(MiB);
    assert_int_equal(nalloc_route_set_default(d), NALLOC_OK);
    assert_ptr_equal(nalloc_route_current(), d);
    assert_int_equal(nalloc_route_depth(), 0);
    void *here = nalloc_malloc(10);
    assert_ptr_equal(nalloc_owner(here), d);

    probe p = {0};
    run_probe(&p);
    assert_ptr_equal(p.route, d);
    assert_ptr_equal(p.owner, d);
    probe q = {.push = own}; /* a route of its own wins over the default */
    run_probe(&q);
    assert_ptr_equal(q.owner, own);

    assert_int_equal(nalloc_route_push(NULL), NALLOC_OK); /* so does a NULL route */
    void *sys = nalloc_malloc(10);
    assert_null(nalloc_owner(sys));
    assert_int_equal(nalloc_route_pop(), NALLOC_OK);

    assert_int_equal(nalloc_route_set_default(NULL), NALLOC_OK);
    assert_null(nalloc_route_current());
    void *sys2 = nalloc_malloc(10);
    assert_null(nalloc_owner(sys2));
    nalloc_free(here);
    nalloc_free(p.block);
    nalloc_free(q.block);
    nalloc_free(sys);
    nalloc_free(sys2);
    assert_reclaimed(d);
    assert_reclaimed(own);
    assert_int_equal(nalloc_arena_destroy(d), NALLOC_OK);
    assert_int_equal(nalloc_arena_destroy(own), NALLOC_OK);
}

/* ---------------------------------------------------------------------------------------------
 * The C standard's semantics, routed and not
 * ------------------------------------------------------------------------------------------- */

/* Run `fn` unrouted, then routed into a fresh arena (checked empty afterwards). */
static void both_ways(void (*fn)(nalloc_arena *routed))
{
    fn(NULL);
    nalloc_arena *a = scratch(16 * MiB);
    assert_int_equal(nalloc_route_push(a), NALLOC_OK);
    fn(a);
    assert_int_equal(nalloc_route_pop(), NALLOC_OK);
    assert_reclaimed(a);
    assert_int_equal(nalloc_arena_destroy(a), NALLOC_OK);
}

static void zero_sizes(nalloc_arena *a)
{
    void *p[8];
    p[0] = nalloc_malloc(0);
    p[1] = nalloc_malloc(0);
    p[2] = nalloc_calloc(0, 0);
    p[3] = nalloc_calloc(0, 100);
    p[4] = nalloc_calloc(100, 0);
    p[5] = nalloc_aligned_alloc(64, 0);
    assert_int_equal(nalloc_posix_memalign(&p[6], 32, 0), 0);
    p[7] = nalloc_mrealloc(NULL, 0);
    for (int i = 0; i < 8; i++) {
        assert_non_null(p[i]);
        assert_ptr_equal(nalloc_owner(p[i]), a);
        for (int j = 0; j < i; j++)
            assert_ptr_not_equal(p[i], p[j]); /* unique */
    }
    assert_int_equal((uintptr_t)p[5] % 64, 0);
    for (int i = 0; i < 8; i++)
        nalloc_free(p[i]);
}

static void test_zero_sizes_return_unique_pointers(void **state)
{
    (void)state;
    both_ways(zero_sizes);
}

static void impossible_sizes(nalloc_arena *a)
{
    snapshot before = a != NULL ? snap(a) : (snapshot){0};
    const size_t sizes[] = {(size_t)1 << 62, SIZE_MAX, SIZE_MAX - 15, SIZE_MAX / 2 + 1};
    /* Valgrind reports sizes that would be negative as signed ("fishy") as errors. */
    size_t count = under_valgrind() ? 1 : sizeof sizes / sizeof sizes[0];
    for (size_t i = 0; i < count; i++) {
        errno = 0;
        assert_null(nalloc_malloc(sizes[i]));
        assert_int_equal(errno, ENOMEM);
        errno = 0;
        assert_null(nalloc_aligned_alloc(4096, sizes[i]));
        assert_int_equal(errno, ENOMEM);
        void *out = (void *)&out;
        assert_int_equal(nalloc_posix_memalign(&out, 64, sizes[i]), ENOMEM);
        assert_ptr_equal(out, (void *)&out); /* untouched on failure */
        errno = 0;
        assert_null(nalloc_calloc(1, sizes[i]));
        assert_int_equal(errno, ENOMEM);
        errno = 0;
        assert_null(nalloc_mrealloc(NULL, sizes[i]));
        assert_int_equal(errno, ENOMEM);
    }
    /* calloc's multiplication overflows. */
    const size_t pairs[][2] = {{SIZE_MAX, 2}, {2, SIZE_MAX}, {(size_t)1 << 32, (size_t)1 << 32},
                               {SIZE_MAX / 3 + 1, 3}};
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        errno = 0;
        assert_null(nalloc_calloc(pairs[i][0], pairs[i][1]));
        assert_int_equal(errno, ENOMEM);
    }
    if (a != NULL) {
        snapshot after = snap(a);
        assert_int_equal(after.used, before.used);
        assert_int_equal(after.live, before.live);
        assert_int_equal(after.allocations, before.allocations);
    }
}

static void test_impossible_sizes_fail_with_enomem(void **state)
{
    (void)state;
    both_ways(impossible_sizes);
}

static void bad_alignments(nalloc_arena *a)
{
    const size_t aligns[] = {0, 3, 6, 24, 48, 100, 4097, SIZE_MAX, ((size_t)1 << 40) + 1};
    for (size_t i = 0; i < sizeof aligns / sizeof aligns[0]; i++) {
        errno = 0;
        assert_null(nalloc_aligned_alloc(aligns[i], 64));
        assert_int_equal(errno, EINVAL);
        void *out = (void *)&out;
        assert_int_equal(nalloc_posix_memalign(&out, aligns[i], 64), EINVAL);
        assert_ptr_equal(out, (void *)&out);
    }
    /* posix_memalign: a power of two, and a multiple of sizeof(void *). */
    void *out = NULL;
    assert_int_equal(nalloc_posix_memalign(&out, 1, 8), EINVAL);
    assert_int_equal(nalloc_posix_memalign(&out, 2, 8), EINVAL);
    assert_int_equal(nalloc_posix_memalign(&out, 4, 8), EINVAL);
    assert_int_equal(nalloc_posix_memalign(NULL, 64, 8), EINVAL);
    assert_int_equal(nalloc_posix_memalign(&out, sizeof(void *), 8), 0);
    assert_ptr_equal(nalloc_owner(out), a);
    nalloc_free(out);
    /* aligned_alloc: any power of two, the small ones too. */
    for (size_t align = 1; align <= 8; align *= 2) {
        void *p = nalloc_aligned_alloc(align, 24);
        assert_non_null(p);
        assert_ptr_equal(nalloc_owner(p), a);
        assert_int_equal((uintptr_t)p % align, 0);
        nalloc_free(p);
    }
    if (a != NULL)
        assert_int_equal(stats_of(a).live_blocks, 0);
}

static void test_bad_alignments_fail_with_einval(void **state)
{
    (void)state;
    both_ways(bad_alignments);
}

static void test_huge_alignments_are_honoured_or_fail_cleanly(void **state)
{
    (void)state;
    nalloc_arena *a = scratch(16 * MiB);
    assert_int_equal(nalloc_route_push(a), NALLOC_OK);
    /* Larger than a chunk, and up to a quarter of the arena: served by the arena. */
    const size_t served[] = {8 * KiB, 64 * KiB, 1 * MiB, 4 * MiB};
    void *p[4];
    for (int i = 0; i < 4; i++) {
        p[i] = nalloc_aligned_alloc(served[i], 100);
        assert_non_null(p[i]);
        assert_int_equal((uintptr_t)p[i] % served[i], 0);
        assert_ptr_equal(nalloc_owner(p[i]), a);
        fill(p[i], 100, (unsigned)i);
    }
    for (int i = 0; i < 4; i++)
        assert_true(holds(p[i], 100, (unsigned)i));
    /* More than the arena holds: the system allocator (aligned too), or NULL. Not under
     * Valgrind, whose own memalign stops the process for alignments above 16 MiB. */
    if (under_valgrind())
        goto arena_only;
    size_t fallbacks = stats_of(a).fallbacks;
    void *big = nalloc_aligned_alloc(32 * MiB, 100);
    assert_non_null(big);
    assert_int_equal((uintptr_t)big % (32 * MiB), 0);
    assert_null(nalloc_owner(big));
    assert_int_equal(stats_of(a).fallbacks, fallbacks + 1);
    nalloc_free(big);
    errno = 0;
    assert_null(nalloc_aligned_alloc((size_t)1 << 62, 100));
    assert_true(errno == ENOMEM || errno == EINVAL);
#if !defined(__SANITIZE_ADDRESS__) /* GCC 12's ASan fails a CHECK of its own on this one */
    errno = 0;
    assert_null(nalloc_aligned_alloc((size_t)1 << 63, 1));
    assert_true(errno == ENOMEM || errno == EINVAL);
#endif
arena_only:
    for (int i = 0; i < 4; i++)
        nalloc_free(p[i]);
    assert_int_equal(nalloc_route_pop(), NALLOC_OK);
    assert_reclaimed(a);
    /* Still serving as before. */
    void *q = nalloc_arena_malloc(a, 5 * MiB, 0);
    assert_non_null(q);
    nalloc_free(q);
    assert_reclaimed(a);
    assert_int_equal(nalloc_arena_destroy(a), NALLOC_OK);
}

static void test_every_block_is_aligned(void **state)
{
    (void)state;
    nalloc_arena *a = scratch(256 * MiB);
    nalloc_stats s = stats_of(a);
    assert_int_equal(nalloc_route_push(a), NALLOC_OK);
    enum { N = 3000 };
    static void *blocks[N];
    uint64_t rng = 7;
    size_t n = 0;
    /* Policy alignment: 64 below 1 MiB, 4 KiB from it (docs/routing.md). */
    for (size_t size = 0; size < 1200; size++, n++) {
        blocks[n] = nalloc_malloc(size);
        assert_non_null(blocks[n]);
        assert_int_equal((uintptr_t)blocks[n] % 64, 0);
    }
    const size_t big[] = {MiB - 33, MiB - 32, MiB - 1, MiB, MiB + 1, 3 * MiB + 5};
    for (size_t i = 0; i < sizeof big / sizeof big[0]; i++, n++) {
        blocks[n] = nalloc_malloc(big[i]);
        assert_non_null(blocks[n]);
        assert_int_equal((uintptr_t)blocks[n] % (big[i] >= MiB ? 4096 : 64), 0);
    }
    for (; n < N - 400; n++) {
        size_t align = (size_t)1 << (test_rand(&rng) % 17), size = test_rand(&rng) % 3000;
        blocks[n] = nalloc_aligned_alloc(align, size);
        assert_non_null(blocks[n]);
        assert_int_equal((uintptr_t)blocks[n] % (align < 16 ? 16 : align), 0);
    }
    for (; n < N - 200; n++) {
        blocks[n] = nalloc_calloc(1 + test_rand(&rng) % 50, 1 + test_rand(&rng) % 50);
        assert_non_null(blocks[n]);
        assert_int_equal((uintptr_t)blocks[n] % 64, 0);
    }
    for (; n < N; n++) {
        size_t align = (size_t)8 << (test_rand(&rng) % 10);
        assert_int_equal(nalloc_posix_memalign(&blocks[n], align, test_rand(&rng) % 500), 0);
        assert_int_equal((uintptr_t)blocks[n] % (align < 16 ? 16 : align), 0);
    }
    for (size_t i = 0; i < N; i++) {
        assert_ptr_equal(nalloc_owner(blocks[i]), a);
        assert_true((uintptr_t)blocks[i] >= s.base && (uintptr_t)blocks[i] < s.base + s.capacity);
    }
    assert_int_equal(stats_of(a).live_blocks, N);
    assert_int_equal(stats_of(a).fallbacks, 0);
    for (size_t i = 0; i < N; i++)
        nalloc_free(blocks[i]);
    assert_int_equal(nalloc_route_pop(), NALLOC_OK);
    assert_reclaimed(a);
    assert_int_equal(nalloc_arena_destroy(a), NALLOC_OK);
}

static void test_blocks_hold_their_bytes_and_do_not_overlap(void **state)
{
    (void)state;
    nalloc_arena *a = scratch(64 * MiB);
    assert_int_equal(nalloc_route_push(a), NALLOC_OK);
    enum { N = 2000 };
    static unsigned char *blocks[N];
    static size_t sizes[N];
    uint64_t rng = 99;
    for (int i = 0; i < N; i++) {
        sizes[i] = test_rand(&rng) % (i % 100 == 0 ? 1500 * KiB : 2000);
        blocks[i] = nalloc_malloc(sizes[i]);
        assert_non_null(blocks[i]);
        fill(blocks[i], sizes[i], (unsigned)i);
        assert_int_equal(nalloc_usable_size(blocks[i]), sizes[i]);
    }
    for (int i = 0; i < N; i++)
        assert_true(holds(blocks[i], sizes[i], (unsigned)i));
    for (int i = 0; i < N; i++)
        nalloc_free(blocks[i]);
    assert_int_equal(nalloc_route_pop(), NALLOC_OK);
    assert_reclaimed(a);
    assert_int_equal(nalloc_arena_destroy(a), NALLOC_OK);
}

/* ---------------------------------------------------------------------------------------------
 * Bad frees: reported, nothing freed, the arena intact
 * ------------------------------------------------------------------------------------------- */

static void test_free_of_null_does_nothing(void **state)
{
    (void)state;
    nalloc_arena *a = scratch(MiB);
    nalloc_free(NULL);
    assert_int_equal(nalloc_route_push(a), NALLOC_OK);
    void *p = nalloc_malloc(10);
    snapshot before = snap(a);
    nalloc_free(NULL);
    assert_false(nalloc_free_if_owned(NULL));
    assert_same_snapshot(before, snap(a));
    nalloc_free(p);
    assert_int_equal(nalloc_route_pop(), NALLOC_OK);
    assert_reclaimed(a);
    assert_int_equal(nalloc_arena_destroy(a), NALLOC_OK);
}

/* Set this thread's last error to something other than `status`, with calls that change nothing
 * (an alignment that is not a power of two, a rollback to a mark of another arena). */
static void prime_error(nalloc_arena *a, nalloc_status status)
{
    nalloc_mark stale = {0, 0, 0, 0};
    if (status == NALLOC_ERR_STATE)
        assert_null(nalloc_alloc_aligned(a, 1, 3)); /* NALLOC_ERR_INVALID */
    else
        assert_int_equal(nalloc_rollback(a, stale), NALLOC_ERR_STATE);
    assert_int_not_equal(nalloc_last_error(), status);
}

/* Does a memory checker (ASan, Valgrind) watch arenas in this build? Then the header of a block
 * already freed, or of a "block" in free space, is poisoned, and nalloc_free reading it to refuse
 * the pointer is reported by the checker as the bad free it is (test_a_checker_reports_...). */
static bool checker_watches(void)
{
    nalloc_arena *a = scratch(4 * KiB);
    bool watched = stats_of(a).checkers != 0;
    nalloc_arena_destroy(a);
    return watched;
}

/* nalloc_free(p) (and nalloc_free_if_owned) must refuse with `status` and change nothing.
 * `in_free_space`: p's header would lie in memory no live block holds, which a checker reports
 * instead (not checked in checker builds). */
static void assert_refused_free(nalloc_arena *a, void *p, nalloc_status status, bool in_free_space)
{
    if (in_free_space && checker_watches())
        return;
    snapshot before = snap(a);
    prime_error(a, status);
    nalloc_free(p);
    assert_int_equal(nalloc_last_error(), status);
    assert_same_snapshot(before, snap(a));
    prime_error(a, status);
    assert_true(nalloc_free_if_owned(p)); /* the arena's address: handled, by refusing */
    assert_int_equal(nalloc_last_error(), status);
    assert_same_snapshot(before, snap(a));
}

static void test_a_double_free_is_reported_and_frees_nothing(void **state)
{
    (void)state;
    nalloc_arena *a = scratch(16 * MiB);
    assert_int_equal(nalloc_route_push(a), NALLOC_OK);
    char *x = nalloc_malloc(100), *y = nalloc_malloc(100), *z = nalloc_malloc(100);
    fill(z, 100, 3);
    /* y: freed below the top, so only marked; freeing it again is refused. */
    nalloc_free(y);
    assert_refused_free(a, y, NALLOC_ERR_STATE, false);
    /* z: popped from the top (and y with it); its header is gone, so a second free is no block. */
    nalloc_free(z);
    assert_refused_free(a, z, NALLOC_ERR_INVALID, true);
    assert_refused_free(a, y, NALLOC_ERR_INVALID, true);
    /* A big block, outside any chunk. */
    char *big = nalloc_malloc(3 * MiB);
    nalloc_free(big);
    assert_refused_free(a, big, NALLOC_ERR_INVALID, true);
    /* x still works. */
    assert_int_equal(nalloc_usable_size(x), 100);
    fill(x, 100, 1);
    nalloc_free(x);
    assert_refused_free(a, x, NALLOC_ERR_INVALID, true);
    assert_int_equal(nalloc_route_pop(), NALLOC_OK);
    assert_reclaimed(a);
    assert_int_equal(nalloc_arena_destroy(a), NALLOC_OK);
}

static void free_twice(void *unused)
{
    (void)unused;
    nalloc_arena *a = scratch(MiB);
    assert_int_equal(nalloc_route_push(a), NALLOC_OK);
    void *p = nalloc_malloc(100);
    nalloc_free(p);
    nalloc_free(p); /* the checker reports this and ends the process */
    _exit(0);
}

static void test_a_checker_reports_a_double_free(void **state)
{
    (void)state;
    /* Under AddressSanitizer the header of a freed block is poisoned: the second free's look at
     * it is reported (and the child dies) instead of being refused quietly. */
    nalloc_arena *a = scratch(4 * KiB);
    unsigned checkers = stats_of(a).checkers;
    nalloc_arena_destroy(a);
    if (!(checkers & NALLOC_CHECKER_ASAN))
        skip(); /* no checker to report it (Valgrind's verdict comes at exit, in the parent) */
    assert_false(exited_ok(run_in_child(free_twice, NULL)));
}

static void test_an_interior_pointer_is_reported_and_frees_nothing(void **state)
{
    (void)state;
    nalloc_arena *a = scratch(16 * MiB);
    assert_int_equal(nalloc_route_push(a), NALLOC_OK);
    char *p = nalloc_malloc(4096), *q = nalloc_malloc(100), *big = nalloc_malloc(2 * MiB);
    memset(p, 0x5a, 4096); /* what an interior "header" is read from (Valgrind: defined) */
    memset(big, 0x5a, 4096);
    const size_t offsets[] = {1, 8, 15, 16, 32, 48, 64, 1000, 4095};
    for (size_t i = 0; i < sizeof offsets / sizeof offsets[0]; i++) {
        assert_refused_free(a, p + offsets[i], NALLOC_ERR_INVALID, false);
        assert_refused_free(a, big + offsets[i], NALLOC_ERR_INVALID, false);
        assert_int_equal(nalloc_usable_size(p + offsets[i]), 0);
        assert_int_equal(nalloc_resize_in_place(p + offsets[i], 8), NALLOC_ERR_INVALID);
    }
    /* Pointers into the headers, and just before the block. */
    assert_refused_free(a, p - 8, NALLOC_ERR_INVALID, false);
    assert_refused_free(a, p - 16, NALLOC_ERR_INVALID, false);
    assert_refused_free(a, p - 32, NALLOC_ERR_INVALID, true);
    assert_refused_free(a, q - 16, NALLOC_ERR_INVALID, false);
    /* Blocks that look right once the refusal left them alone. */
    assert_int_equal(nalloc_usable_size(p), 4096);
    assert_int_equal(nalloc_usable_size(q), 100);
    assert_int_equal(nalloc_usable_size(big), 2 * MiB);
    nalloc_free(big);
    nalloc_free(q);
    nalloc_free(p);
    assert_int_equal(nalloc_route_pop(), NALLOC_OK);
    assert_reclaimed(a);
    /* Pointers to nowhere in particular inside the arena: its very first byte, and its last. */
    nalloc_stats s = stats_of(a);
    assert_refused_free(a, (void *)s.base, NALLOC_ERR_INVALID, true);
    assert_refused_free(a, (void *)(s.base + s.capacity - 16), NALLOC_ERR_INVALID, true);
    assert_int_equal(nalloc_arena_destroy(a), NALLOC_OK);
}

static void test_a_nalloc_alloc_block_passed_to_nalloc_free_is_refused(void **state)
{
    (void)state;
    nalloc_arena *a = scratch(16 * MiB);
    char *blocks[6];
    blocks[0] = nalloc_alloc(a, 100);          /* at offset 0: no room for a header */
    blocks[1] = nalloc_alloc(a, 100);
    blocks[2] = nalloc_alloc_aligned(a, 16, 16);
    blocks[3] = nalloc_alloc(a, 2 * MiB);
    assert_int_equal(nalloc_route_push(a), NALLOC_OK);
    void *routed = nalloc_malloc(50); /* malloc-family blocks and nalloc_alloc blocks share it */
    assert_int_equal(nalloc_route_pop(), NALLOC_OK);
    blocks[4] = nalloc_alloc(a, 64);
    blocks[5] = nalloc_alloc_zeroed(a, 3, 32, 32);
    for (int i = 0; i < 6; i++) {
        assert_non_null(blocks[i]);
        fill(blocks[i], 16, (unsigned)i);
        assert_ptr_equal(nalloc_owner(blocks[i]), a); /* the arena's, by address */
        assert_refused_free(a, blocks[i], NALLOC_ERR_INVALID, i > 0);
        if (i == 0 || !checker_watches())
            assert_int_equal(nalloc_usable_size(blocks[i]), 0);
        assert_true(holds(blocks[i], 16, (unsigned)i)); /* and untouched */
    }
    nalloc_free(routed);
    assert_int_equal(stats_of(a).live_blocks, 0);
    /* The nalloc_alloc blocks are still there; a reset takes them. */
    assert_int_equal(nalloc_reset(a), NALLOC_OK);
    assert_int_equal(stats_of(a).used, 0);
    assert_int_equal(nalloc_arena_destroy(a), NALLOC_OK);
}

static void test_pointers_of_destroyed_arenas_belong_to_nobody(void **state)
{
    (void)state;
    nalloc_arena *a = scratch(4 * MiB);
    assert_int_equal(nalloc_route_push(a), NALLOC_OK);
    void *p = nalloc_malloc(100), *big = nalloc_malloc(2 * MiB);
    nalloc_free(p);
    nalloc_free(big);
    assert_int_equal(nalloc_route_pop(), NALLOC_OK);
    void *plain = nalloc_alloc(a, 100);
    assert_int_equal(nalloc_arena_destroy(a), NALLOC_OK);
    assert_null(nalloc_owner(p));
    assert_null(nalloc_owner(big));
    assert_null(nalloc_owner(plain));
    /* Nobody's: nalloc_free_if_owned leaves them to the caller (they would go to the system
     * allocator through nalloc_free, which is the caller's bug: they are no system blocks). */
    assert_false(nalloc_free_if_owned(p));
    assert_false(nalloc_free_if_owned(big));
    assert_false(nalloc_free_if_owned(plain));
    assert_int_equal(nalloc_resize_in_place(p, 10), NALLOC_ERR_INVALID);
    assert_null(nalloc_arena_malloc(a, 10, 0));
    assert_int_equal(nalloc_last_error(), NALLOC_ERR_STATE);
}

static void test_free_if_owned_leaves_system_pointers_to_the_caller(void **state)
{
    (void)state;
    nalloc_arena *a = scratch(MiB);
    assert_int_equal(nalloc_route_push(a), NALLOC_OK);
    void *mine = nalloc_malloc(10);
    assert_int_equal(nalloc_route_pop(), NALLOC_OK);
    void *sys = malloc(10);
    int on_stack = 0;
    static int in_data;
    assert_false(nalloc_free_if_owned(sys));
    assert_false(nalloc_free_if_owned(&on_stack));
    assert_false(nalloc_free_if_owned(&in_data));
    assert_false(nalloc_free_if_owned((void *)(uintptr_t)16));
    assert_false(nalloc_free_if_owned((void *)UINTPTR_MAX));
    free(sys); /* still the caller's, and still valid */
    assert_int_equal(stats_of(a).live_blocks, 1);
    assert_true(nalloc_free_if_owned(mine));
    assert_reclaimed(a);
    assert_int_equal(nalloc_arena_destroy(a), NALLOC_OK);
}

static void test_usable_size_is_the_requested_size(void **state)
{
    (void)state;
    nalloc_arena *a = scratch(16 * MiB);
    assert_int_equal(nalloc_usable_size(NULL), 0);
    void *sys = nalloc_malloc(100);
    assert_true(nalloc_usable_size(sys) >= 100);
    assert_int_equal(nalloc_usable_size(sys), malloc_usable_size(sys));
    nalloc_free(sys);
    assert_int_equal(nalloc_route_push(a), NALLOC_OK);
    const size_t sizes[] = {0, 1, 15, 16, 17, 1000, MiB, 2 * MiB + 3};
    void *p[8];
    for (int i = 0; i < 8; i++) {
        p[i] = nalloc_malloc(sizes[i]);
        assert_int_equal(nalloc_usable_size(p[i]), sizes[i]);
    }
    void *z = nalloc_calloc(7, 9);
    assert_int_equal(nalloc_usable_size(z), 63);
    nalloc_free(z);
    bool watched = checker_watches();
    for (int i = 0; i < 8; i++) {
        nalloc_free(p[i]);
        if (!watched)
            assert_int_equal(nalloc_usable_size(p[i]), 0); /* freed: no longer a block */
    }
    assert_int_equal(nalloc_route_pop(), NALLOC_OK);
    assert_reclaimed(a);
    assert_int_equal(nalloc_arena_destroy(a), NALLOC_OK);
}

/* ---------------------------------------------------------------------------------------------
 * nalloc_owner
 * ------------------------------------------------------------------------------------------- */

static void test_owner_finds_arena_blocks_and_nothing_else(void **state)
{
    (void)state;
    nalloc_arena *a = scratch(8 * MiB), *small = scratch(64 * KiB), *big = scratch(64 * MiB);
    nalloc_stats s = stats_of(a), ss = stats_of(small), bs = stats_of(big);
    /* Every byte of the range, and none outside it. */
    assert_ptr_equal(nalloc_owner((void *)s.base), a);
    assert_ptr_equal(nalloc_owner((void *)(s.base + s.capacity - 1)), a);
    assert_null(nalloc_owner((void *)(s.base - 1)));
    assert_null(nalloc_owner((void *)(s.base + s.capacity)));
    assert_ptr_equal(nalloc_owner((void *)ss.base), small);
    assert_ptr_equal(nalloc_owner((void *)(ss.base + ss.capacity - 1)), small);
    assert_null(nalloc_owner((void *)(ss.base + ss.capacity)));
    assert_null(nalloc_owner((void *)(ss.base - 1)));
    for (size_t off = 0; off < bs.capacity; off += 3 * MiB + 4097)
        assert_ptr_equal(nalloc_owner((void *)(bs.base + off)), big);
    /* System memory, the stack, static data, NULL, the top of the address space. */
    void *sys = malloc(100), *sys_big = malloc(8 * MiB);
    int on_stack;
    static int in_data;
    assert_null(nalloc_owner(sys));
    assert_null(nalloc_owner(sys_big));
    assert_null(nalloc_owner(&on_stack));
    assert_null(nalloc_owner(&in_data));
    assert_null(nalloc_owner(NULL));
    assert_null(nalloc_owner((void *)UINTPTR_MAX));
    assert_null(nalloc_owner((void *)((uintptr_t)1 << 47)));
    assert_null(nalloc_owner((void *)((uintptr_t)1 << 56)));
    free(sys);
    free(sys_big);
    /* Blocks of every kind. */
    void *plain = nalloc_alloc(small, 100);
    assert_ptr_equal(nalloc_owner(plain), small);
    assert_int_equal(nalloc_route_push(big), NALLOC_OK);
    void *m = nalloc_malloc(10), *mb = nalloc_malloc(3 * MiB);
    assert_ptr_equal(nalloc_owner(m), big);
    assert_ptr_equal(nalloc_owner(mb), big);
    assert_ptr_equal(nalloc_owner((char *)mb + 3 * MiB - 1), big); /* interior: by address */
    nalloc_free(m);
    nalloc_free(mb);
    assert_int_equal(nalloc_route_pop(), NALLOC_OK);
    /* Destroyed: nobody's. */
    assert_int_equal(nalloc_arena_destroy(small), NALLOC_OK);
    assert_null(nalloc_owner(plain));
    assert_null(nalloc_owner((void *)ss.base));
    assert_int_equal(nalloc_arena_destroy(big), NALLOC_OK);
    assert_null(nalloc_owner(m));
    assert_null(nalloc_owner((void *)(bs.base + bs.capacity / 2)));
    assert_ptr_equal(nalloc_owner((void *)s.base), a); /* the others untouched */
    assert_int_equal(nalloc_arena_destroy(a), NALLOC_OK);
    assert_null(nalloc_owner((void *)s.base));
}

static void test_owner_tells_many_small_arenas_apart(void **state)
{
    (void)state;
    /* Small arenas share 2 MiB granules of the ownership table: each address still finds its own. */
    enum { N = 300 };
    static nalloc_arena *arenas[N];
    static nalloc_stats st[N];
    for (int i = 0; i < N; i++) {
        arenas[i] = scratch(4 * KiB + (size_t)(i % 7) * 4 * KiB);
        st[i] = stats_of(arenas[i]);
    }
    for (int i = 0; i < N; i++) {
        assert_ptr_equal(nalloc_owner((void *)st[i].base), arenas[i]);
        assert_ptr_equal(nalloc_owner((void *)(st[i].base + st[i].capacity - 1)), arenas[i]);
        assert_null(nalloc_owner((void *)(st[i].base - 1))); /* a guard page */
        assert_null(nalloc_owner((void *)(st[i].base + st[i].capacity)));
    }
    /* Destroy every other one: the survivors are still found, the dead are not. */
    for (int i = 0; i < N; i += 2)
        assert_int_equal(nalloc_arena_destroy(arenas[i]), NALLOC_OK);
    for (int i = 0; i < N; i++) {
        nalloc_arena *want = i % 2 ? arenas[i] : NULL;
        assert_ptr_equal(nalloc_owner((void *)st[i].base), want);
        assert_ptr_equal(nalloc_owner((void *)(st[i].base + st[i].capacity / 2)), want);
    }
    for (int i = 1; i < N; i += 2)
        assert_int_equal(nalloc_arena_destroy(arenas[i]), NALLOC_OK);
}

static void test_lanes_own_their_blocks_and_can_be_routed_into(void **state)
{
    (void)state;
    nalloc_arena *p = scratch(16 * MiB);
    nalloc_arena *lanes[3];
    assert_int_equal(nalloc_arena_split(p, 3, 2 * MiB, lanes), NALLOC_OK);
    nalloc_stats ps = stats_of(p);
    for (int i = 0; i < 3; i++) {
        nalloc_stats ls = stats_of(lanes[i]);
        assert_ptr_equal(nalloc_owner((void *)ls.base), lanes[i]); /* the innermost */
        assert_ptr_equal(nalloc_owner((void *)(ls.base + ls.capacity - 1)), lanes[i]);
    }
    assert_ptr_equal(nalloc_owner((void *)ps.base), lanes[0]); /* the lanes' block comes first */
    assert_ptr_equal(nalloc_owner((void *)(ps.base + ps.capacity - 1)), p);

    void *blocks[3][10];
    for (int i = 0; i < 3; i++) {
        assert_int_equal(nalloc_route_push(lanes[i]), NALLOC_OK);
        for (int j = 0; j < 10; j++) {
            blocks[i][j] = nalloc_malloc(1000 * (size_t)(j + 1));
            assert_ptr_equal(nalloc_owner(blocks[i][j]), lanes[i]);
        }
        assert_int_equal(nalloc_route_pop(), NALLOC_OK);
    }
    assert_int_equal(nalloc_route_push(p), NALLOC_OK);
    void *in_parent = nalloc_malloc(100);
    assert_ptr_equal(nalloc_owner(in_parent), p);
    assert_int_equal(nalloc_route_pop(), NALLOC_OK);
    for (int i = 0; i < 3; i++) {
        for (int j = 0; j < 10; j++)
            nalloc_free(blocks[i][(j * 3) % 10]); /* out of order */
        assert_reclaimed(lanes[i]);
        assert_int_equal(nalloc_arena_destroy(lanes[i]), NALLOC_OK);
    }
    nalloc_free(in_parent);
    assert_int_equal(stats_of(p).live_blocks, 0);
    assert_int_equal(nalloc_arena_destroy(p), NALLOC_OK);
}

static void test_a_parent_is_not_destroyed_while_a_lane_has_live_blocks(void **state)
{
    (void)state;
    nalloc_arena *p = scratch(8 * MiB);
    nalloc_arena *lane;
    assert_int_equal(nalloc_arena_split(p, 1, MiB, &lane), NALLOC_OK);
    void *b = nalloc_arena_malloc(lane, 100, 0);
    assert_non_null(b);
    fill(b, 100, 5);
    /* Destroying the parent would destroy the lane, and the block's memory with it. */
    assert_int_equal(nalloc_arena_destroy(p), NALLOC_ERR_STATE);
    assert_ptr_equal(nalloc_owner(b), lane);
    assert_true(holds(b, 100, 5));
    nalloc_free(b);
    assert_reclaimed(lane);
    assert_int_equal(nalloc_arena_destroy(p), NALLOC_OK); /* and the lane with it */
}

static void test_a_parent_is_not_destroyed_while_a_doomed_lane_waits_for_its_blocks(void **state)
{
    (void)state;
    nalloc_arena *p = scratch(8 * MiB);
    nalloc_arena *lane;
    assert_int_equal(nalloc_arena_split(p, 1, MiB, &lane), NALLOC_OK);
    void *b = nalloc_arena_malloc(lane, 100, 0);
    assert_non_null(b);
    nalloc_status st = nalloc_arena_destroy_deferred(lane);
    if (st == NALLOC_ERR_UNSUPPORTED) {
        nalloc_free(b);
        assert_int_equal(nalloc_arena_destroy(p), NALLOC_OK);
        skip();
    }
    assert_int_equal(st, NALLOC_OK);
    assert_int_equal(nalloc_arena_destroy(p), NALLOC_ERR_STATE); /* not a hang, not a destroy */
    assert_int_equal(nalloc_arena_destroy_deferred(p), NALLOC_ERR_STATE);
    assert_ptr_equal(nalloc_owner(b), lane);
    nalloc_free(b); /* the lane goes */
    assert_ptr_equal(nalloc_owner(b), p);
    assert_int_equal(nalloc_arena_destroy(p), NALLOC_OK);
}

/* nalloc_ctx_destroy refuses a context whose arenas have live blocks; the deferred form destroys
 * the context now and each arena with its last block (at once when it has none). */
static void test_a_context_destroyed_deferred_goes_with_its_last_block(void **state)
{
    (void)state;
    nalloc_ctx_config config;
    nalloc_ctx_config_init(&config, NALLOC_MEMORY_HOST, MiB, MiB, MiB);
    nalloc_ctx *ctx = NULL;
    assert_int_equal(nalloc_ctx_create(&config, &ctx), NALLOC_OK);
    nalloc_arena *w = nalloc_ctx_arena(ctx, NALLOC_KIND_WITNESS);
    nalloc_arena *s = nalloc_ctx_arena(ctx, NALLOC_KIND_SCRATCH);
    assert_int_equal(nalloc_route_push(w), NALLOC_OK);
    char *p = nalloc_malloc(64);
    assert_int_equal(nalloc_route_pop(), NALLOC_OK);
    assert_ptr_equal(nalloc_owner(p), w);
    fill(p, 64, 7);
    char *in_scratch = nalloc_alloc(s, 64);
    assert_non_null(in_scratch);

    assert_int_equal(nalloc_ctx_destroy(ctx), NALLOC_ERR_STATE); /* refused, nothing done */
    assert_ptr_equal(nalloc_ctx_arena(ctx, NALLOC_KIND_WITNESS), w);
    nalloc_status st = nalloc_ctx_destroy_deferred(ctx);
    if (st == NALLOC_ERR_UNSUPPORTED) { /* no membarrier(2): refused, nothing destroyed */
        nalloc_free(p);
        assert_int_equal(nalloc_ctx_destroy(ctx), NALLOC_OK);
        skip();
    }
    assert_int_equal(st, NALLOC_OK);
    assert_null(nalloc_ctx_arena(ctx, NALLOC_KIND_POLY)); /* the context is gone */
    assert_null(nalloc_owner(in_scratch));                /* so is the arena without blocks */
    assert_ptr_equal(nalloc_owner(p), w);                 /* not the one with a live block */
    assert_true(holds(p, 64, 7));
    nalloc_free(p);
    assert_null(nalloc_owner(p)); /* destroyed with its last block */
    assert_int_equal(nalloc_ctx_destroy_deferred(ctx), NALLOC_ERR_STATE);
    assert_int_equal(nalloc_ctx_destroy_deferred(NULL), NALLOC_ERR_INVALID);
}

static void test_a_context_is_not_destroyed_while_its_lanes_have_live_blocks(void **state)
{
    (void)state;
    nalloc_ctx_config config;
    nalloc_ctx_config_init(&config, NALLOC_MEMORY_HOST, 4 * MiB, 0, 4 * MiB);
    assert_int_equal(nalloc_ctx_config_omit(&config, NALLOC_KIND_WITNESS), NALLOC_OK);
    nalloc_ctx *ctx;
    assert_int_equal(nalloc_ctx_create(&config, &ctx), NALLOC_OK);
    nalloc_arena *lane;
    assert_int_equal(nalloc_arena_split(nalloc_ctx_arena(ctx, NALLOC_KIND_SCRATCH), 1, MiB, &lane),
                     NALLOC_OK);
    void *b = nalloc_arena_malloc(lane, 100, 0);
    assert_non_null(b);
    assert_int_equal(nalloc_ctx_destroy(ctx), NALLOC_ERR_STATE);
    assert_ptr_equal(nalloc_owner(b), lane);
    nalloc_free(b);
    assert_int_equal(nalloc_ctx_destroy(ctx), NALLOC_OK);
}

/* ---------------------------------------------------------------------------------------------
 * Frees in any order
 * ------------------------------------------------------------------------------------------- */

enum order { ALLOCATION_ORDER, REVERSE_ORDER, RANDOM_ORDER, INTERLEAVED };

/* Allocate n blocks of mixed sizes (a few big enough to bypass chunks), free them in `order`. */
static void free_in_order(enum order order, uint64_t seed, size_t n)
{
    nalloc_arena *a = scratch(512 * MiB);
    assert_int_equal(nalloc_route_push(a), NALLOC_OK);
    void **p = calloc(n, sizeof *p);
    size_t *sizes = calloc(n, sizeof *sizes), *perm = calloc(n, sizeof *perm);
    assert_non_null(p);
    uint64_t rng = seed;
    for (size_t i = 0; i < n; i++) {
        uint64_t r = test_rand(&rng);
        sizes[i] = r % 64 == 0 ? MiB + r % (2 * MiB) : r % 8 == 0 ? r % 60000 : r % 300;
        p[i] = r % 16 == 1 ? nalloc_calloc(1, sizes[i]) : nalloc_malloc(sizes[i]);
        assert_ptr_equal(nalloc_owner(p[i]), a);
        fill(p[i], sizes[i] < 256 ? sizes[i] : 256, (unsigned)i);
        perm[i] = i;
        if (order == INTERLEAVED && r % 3 == 0 && i > 0) {
            size_t j = (size_t)(test_rand(&rng) % i); /* free an earlier one now */
            if (p[j] != NULL) {
                assert_true(holds(p[j], sizes[j] < 256 ? sizes[j] : 256, (unsigned)j));
                nalloc_free(p[j]);
                p[j] = NULL;
            }
        }
    }
    assert_int_equal(stats_of(a).fallbacks, 0);
    if (order == REVERSE_ORDER)
        for (size_t i = 0; i < n / 2; i++) {
            size_t t = perm[i];
            perm[i] = perm[n - 1 - i];
            perm[n - 1 - i] = t;
        }
    if (order == RANDOM_ORDER || order == INTERLEAVED)
        for (size_t i = n - 1; i > 0; i--) {
            size_t j = (size_t)(test_rand(&rng) % (i + 1)), t = perm[i];
            perm[i] = perm[j];
            perm[j] = t;
        }
    for (size_t k = 0; k < n; k++) {
        size_t i = perm[k];
        if (p[i] == NULL)
            continue;
        assert_true(holds(p[i], sizes[i] < 256 ? sizes[i] : 256, (unsigned)i));
        nalloc_free(p[i]);
        p[i] = NULL;
        /* Halfway: what is left still counts. */
        if (k == n / 2)
            assert_true(stats_of(a).live_blocks > 0 || order == INTERLEAVED);
    }
    assert_reclaimed(a);
    nalloc_stats s = stats_of(a);
    assert_int_equal(s.deferred, 0); /* nothing waits: the only chunk is this thread's */
    /* Everything came back: the whole arena can be handed out again in one piece. */
    assert_int_equal(nalloc_route_pop(), NALLOC_OK);
    free(p);
    free(sizes);
    free(perm);
    assert_int_equal(nalloc_reset(a), NALLOC_OK);
    assert_int_equal(nalloc_arena_destroy(a), NALLOC_OK);
}

/* free_in_order over seeds 1 to `seeds` (one seed and fewer blocks under Valgrind, whose pools
 * are slow). */
static void free_in_order_seeds(enum order order, uint64_t seeds)
{
    for (uint64_t seed = 1; seed <= (under_valgrind() ? 1 : seeds); seed++)
        free_in_order(order, seed, under_valgrind() ? 2000 : 5000);
}

static void test_frees_in_allocation_order_reclaim_everything(void **state)
{
    (void)state;
    free_in_order_seeds(ALLOCATION_ORDER, 4);
}

static void test_frees_in_reverse_order_reclaim_everything(void **state)
{
    (void)state;
    free_in_order_seeds(REVERSE_ORDER, 4);
}

static void test_frees_in_random_order_reclaim_everything(void **state)
{
    (void)state;
    free_in_order_seeds(RANDOM_ORDER, 8);
}

static void test_frees_between_allocations_reclaim_everything(void **state)
{
    (void)state;
    free_in_order_seeds(INTERLEAVED, 8);
}

static void test_allocation_order_frees_give_memory_back_as_they_go(void **state)
{
    (void)state;
    /* A library that allocates and frees in allocation order, over and over, keeping a few
     * blocks alive (a queue): 200 MB go through an arena of 16 MiB without falling back. (Inside
     * one chunk the oldest block cannot go back while newer ones live; it goes when the chunk is
     * left behind and its last block freed, so the arena needs room for two of the largest
     * chunks, 4 MiB each, whatever the queue holds: docs/routing.md.) */
    nalloc_arena *a = scratch(16 * MiB);
    assert_int_equal(nalloc_route_push(a), NALLOC_OK);
    enum { WINDOW = 8 };
    void *ring[WINDOW] = {0};
    for (int i = 0; i < 30000; i++) {
        if (ring[i % WINDOW] != NULL)
            nalloc_free(ring[i % WINDOW]); /* the oldest */
        ring[i % WINDOW] = nalloc_malloc(1000 + (size_t)(i % 5) * 3000);
        assert_ptr_equal(nalloc_owner(ring[i % WINDOW]), a);
    }
    for (int i = 0; i < WINDOW; i++)
        nalloc_free(ring[(30000 + i) % WINDOW]);
    assert_int_equal(stats_of(a).fallbacks, 0);
    assert_int_equal(nalloc_route_pop(), NALLOC_OK);
    assert_reclaimed(a);
    assert_int_equal(nalloc_arena_destroy(a), NALLOC_OK);
}

static void test_an_older_free_is_given_back_when_the_blocks_above_go(void **state)
{
    (void)state;
    nalloc_arena *a = scratch(4 * MiB);
    assert_int_equal(nalloc_route_push(a), NALLOC_OK);
    void *x = nalloc_malloc(1000), *y = nalloc_malloc(1000), *z = nalloc_malloc(1000);
    size_t used3 = stats_of(a).used;
    nalloc_free(x); /* below the top: remembered, counted as deferred */
    nalloc_stats s = stats_of(a);
    assert_int_equal(s.live_blocks, 2);
    assert_true(s.deferred >= 1000);
    assert_true(s.used < used3);
    nalloc_free(z); /* the top: popped at once */
    nalloc_free(y); /* the last: y, then x below it */
    assert_reclaimed(a);
    assert_int_equal(stats_of(a).deferred, 0);
    assert_int_equal(nalloc_route_pop(), NALLOC_OK);
    assert_int_equal(nalloc_arena_destroy(a), NALLOC_OK);
}

/* ---------------------------------------------------------------------------------------------
 * Other threads
 * ------------------------------------------------------------------------------------------- */

typedef struct maker {
    nalloc_arena *arena;
    void **blocks;
    size_t n;
    atomic_int stage; /* 1: blocks made; 2: told to go on; 3: done */
    bool keep_route;  /* allocate once more after stage 2, then exit */
    nalloc_status pushed; /* what the route push answered */
} maker;

static void *make_blocks(void *arg)
{
    maker *m = arg;
    m->pushed = nalloc_route_push(m->arena);
    for (size_t i = 0; i < m->n; i++)
        m->blocks[i] = nalloc_malloc(16 + i % 700);
    atomic_store(&m->stage, 1);
    while (atomic_load(&m->stage) != 2)
        sched_yield();
    if (m->keep_route)
        nalloc_free(nalloc_malloc(10)); /* the owner comes back: it pops what others freed */
    nalloc_route_pop();
    atomic_store(&m->stage, 3);
    return NULL;
}

static void cross_thread(bool free_while_alive, bool owner_returns)
{
    nalloc_arena *a = scratch(64 * MiB);
    enum { N = 3000 };
    static void *blocks[N];
    maker m = {.arena = a, .blocks = blocks, .n = N, .keep_route = owner_returns};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, make_blocks, &m), 0);
    while (atomic_load(&m.stage) != 1)
        sched_yield();
    assert_int_equal(m.pushed, NALLOC_OK);
    for (size_t i = 0; i < N; i++)
        assert_ptr_equal(nalloc_owner(blocks[i]), a);
    if (free_while_alive) {
        /* The owner is alive and holds its chunk: blocks are marked, counted as deferred. */
        uint64_t rng = 5;
        for (size_t i = N; i > 1; i--) {
            size_t j = (size_t)(test_rand(&rng) % i);
            void *tmp = blocks[i - 1];
            blocks[i - 1] = blocks[j];
            blocks[j] = tmp;
        }
        for (size_t i = 0; i < N; i++)
            nalloc_free(blocks[i]);
        nalloc_stats s = stats_of(a);
        assert_int_equal(s.live_blocks, 0);
        assert_int_equal(s.used, 0);
    }
    atomic_store(&m.stage, 2);
    assert_int_equal(pthread_join(t, NULL), 0);
    if (!free_while_alive)
        for (size_t i = 0; i < N; i++)
            nalloc_free(blocks[N - 1 - i]); /* after the owner exited */
    assert_reclaimed(a);
    nalloc_stats s = stats_of(a);
    assert_int_equal(s.deferred, 0); /* its chunk went back when the thread left */
    assert_int_equal(s.cached, 0);
    assert_int_equal(nalloc_reset(a), NALLOC_OK);
    assert_int_equal(nalloc_arena_destroy(a), NALLOC_OK);
}

static void test_blocks_freed_by_another_thread_while_their_owner_lives_are_reclaimed(void **state)
{
    (void)state;
    cross_thread(true, false);
    cross_thread(true, true);
}

static void test_blocks_freed_after_their_owner_exited_are_reclaimed(void **state)
{
    (void)state;
    cross_thread(false, false);
    cross_thread(false, true);
}

static void *leave_one_block(void *arg)
{
    return nalloc_arena_malloc(arg, 100, 0);
}

/* A thread that exits leaving one small block behind keeps only what its blocks took: the rest of
 * its chunk goes back at once, so hundreds of such threads fit in an arena that holds a few dozen
 * chunks, and used counts the blocks, not the chunks. */
static void test_a_thread_that_exits_leaving_a_block_does_not_pin_its_chunk(void **state)
{
    (void)state;
    enum { THREADS = 256 };
    nalloc_arena *a = scratch(2 * MiB); /* 32 first chunks of 64 KiB */
    void *blocks[THREADS];
    for (unsigned i = 0; i < THREADS; i++) {
        pthread_t t;
        assert_int_equal(pthread_create(&t, NULL, leave_one_block, a), 0);
        assert_int_equal(pthread_join(t, &blocks[i]), 0);
        assert_non_null(blocks[i]);
        fill(blocks[i], 100, i);
    }
    nalloc_stats s = stats_of(a);
    assert_int_equal(s.live_blocks, THREADS);
    assert_true(s.used <= (size_t)THREADS * 512); /* block, its header, a chunk header, padding */
    for (unsigned i = 0; i < THREADS; i++) {
        assert_true(holds(blocks[i], 100, i));
        nalloc_free(blocks[i]);
    }
    assert_reclaimed(a);
    assert_int_equal(nalloc_arena_destroy(a), NALLOC_OK);
}

/* A request that fails (no room, or an alignment the arena cannot give) takes nothing: the
 * thread keeps its chunk, and what fitted before fits after. */
static void test_a_failed_request_keeps_the_threads_chunk(void **state)
{
    (void)state;
    nalloc_arena *a = scratch(64 * KiB);
    void *p = nalloc_arena_malloc(a, 100, 0);
    assert_non_null(p);
    snapshot before = snap(a);
    assert_true(before.cached > 0);
    assert_null(nalloc_arena_malloc(a, 64 * KiB, 0));
    assert_null(nalloc_arena_malloc(a, 16, (size_t)1 << 40));
    snapshot after = snap(a);
    assert_int_equal(after.used, before.used);
    assert_int_equal(after.cached, before.cached);
    assert_int_equal(after.deferred, before.deferred);
    void *q = nalloc_arena_malloc(a, 100, 0);
    assert_non_null(q);
    nalloc_free(q);
    nalloc_free(p);
    assert_reclaimed(a);
    assert_int_equal(nalloc_arena_destroy(a), NALLOC_OK);
}

static void test_blocks_freed_after_the_route_ended_are_reclaimed(void **state)
{
    (void)state;
    nalloc_arena *a = scratch(16 * MiB), *b = scratch(16 * MiB);
    void *p[100];
    {
        NALLOC_ROUTE_SCOPE(a);
        for (int i = 0; i < 100; i++)
            p[i] = nalloc_malloc((size_t)i * 100);
    }
    assert_null(nalloc_route_current());
    for (int i = 0; i < 50; i++)
        nalloc_free(p[i]); /* unrouted */
    assert_int_equal(nalloc_route_push(b), NALLOC_OK);
    for (int i = 50; i < 100; i++)
        nalloc_free(p[i]); /* routed elsewhere */
    assert_int_equal(nalloc_route_pop(), NALLOC_OK);
    assert_reclaimed(a);
    assert_int_equal(stats_of(b).allocations, 0);
    assert_int_equal(nalloc_arena_destroy(a), NALLOC_OK);
    assert_int_equal(nalloc_arena_destroy(b), NALLOC_OK);
}

/* ---------------------------------------------------------------------------------------------
 * Big blocks, calloc, realloc
 * ------------------------------------------------------------------------------------------- */

static void test_big_blocks_bypass_chunks_and_come_back_in_any_order(void **state)
{
    (void)state;
    nalloc_arena *a = scratch(64 * MiB);
    assert_int_equal(nalloc_route_push(a), NALLOC_OK);
    for (int order = 0; order < 3; order++) {
        void *p[6];
        for (int i = 0; i < 6; i++) {
            p[i] = nalloc_malloc(MiB + (size_t)i * 777 * KiB);
            assert_ptr_equal(nalloc_owner(p[i]), a);
            assert_int_equal((uintptr_t)p[i] % 4096, 0);
            fill(p[i], 4096, (unsigned)i);
            void *small = nalloc_malloc(100); /* chunks between them */
            nalloc_free(small);
        }
        const int orders[3][6] = {{0, 1, 2, 3, 4, 5}, {5, 4, 3, 2, 1, 0}, {2, 4, 0, 5, 1, 3}};
        for (int k = 0; k < 6; k++) {
            int i = orders[order][k];
            assert_true(holds(p[i], 4096, (unsigned)i));
            nalloc_free(p[i]);
        }
        assert_reclaimed(a);
    }
    /* The whole arena in big blocks, twice: nothing was lost in between. */
    for (int round = 0; round < 2; round++) {
        void *p[7];
        for (int i = 0; i < 7; i++) {
            p[i] = nalloc_malloc(8 * MiB);
            assert_ptr_equal(nalloc_owner(p[i]), a);
        }
        for (int i = 0; i < 7; i++)
            nalloc_free(p[(i * 3) % 7]);
    }
    assert_int_equal(stats_of(a).fallbacks, 0);
    assert_int_equal(nalloc_route_pop(), NALLOC_OK);
    assert_reclaimed(a);
    assert_int_equal(nalloc_arena_destroy(a), NALLOC_OK);
}

static void test_big_blocks_reuse_the_room_of_older_ones_freed_below_them(void **state)
{
    (void)state;
    /* A thread keeping two big buffers and freeing the older one each time: the freed one lies
     * under the newer, so it cannot go back to the offset; the next big block must take its room
     * rather than climb until the arena is full of free stretches (16 GB go through 64 MiB). */
    nalloc_arena *a = scratch(64 * MiB);
    assert_int_equal(nalloc_route_push(a), NALLOC_OK);
    void *ring[2] = {NULL, NULL};
    for (int i = 0; i < 4000; i++) {
        nalloc_free(ring[i % 2]);
        ring[i % 2] = nalloc_malloc(2 * MiB + (size_t)(i % 3) * 100 * KiB);
        assert_ptr_equal(nalloc_owner(ring[i % 2]), a);
        fill(ring[i % 2], 64, (unsigned)i);
        if (i > 0) /* the older one, allocated the step before, is untouched */
            assert_true(holds(ring[(i + 1) % 2], 64, (unsigned)(i - 1)));
    }
    nalloc_stats s = stats_of(a);
    assert_int_equal(s.fallbacks, 0);
    assert_true(s.high_water <= 16 * MiB); /* a few buffers' worth, not the arena */
    nalloc_free(ring[0]);
    nalloc_free(ring[1]);
    assert_int_equal(nalloc_route_pop(), NALLOC_OK);
    assert_reclaimed(a);
    assert_int_equal(stats_of(a).deferred, 0);
    assert_int_equal(nalloc_arena_destroy(a), NALLOC_OK);
}

static bool all_zero(const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i] != 0)
            return false;
    return true;
}

static void test_calloc_zeroes_reused_memory(void **state)
{
    (void)state;
    nalloc_arena *a = scratch(64 * MiB);
    assert_int_equal(nalloc_route_push(a), NALLOC_OK);
    const size_t sizes[] = {1, 100, 4000, 60000, 900 * KiB, 2 * MiB, 5 * MiB};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t n = sizes[i];
        /* The newest block, freed and taken again. */
        unsigned char *p = nalloc_malloc(n);
        memset(p, 0xAB, n);
        nalloc_free(p);
        unsigned char *z = nalloc_calloc(n, 1);
        assert_ptr_equal(nalloc_owner(z), a);
        assert_true(all_zero(z, n));
        memset(z, 0xCD, n);
        nalloc_free(z);
        /* An older block freed below the top, given back when the top goes, taken again. */
        unsigned char *x = nalloc_malloc(n), *y = nalloc_malloc(16);
        memset(x, 0xEF, n);
        nalloc_free(x);
        nalloc_free(y);
        z = nalloc_calloc(1, n);
        assert_true(all_zero(z, n));
        unsigned char *w = nalloc_calloc(n / 4 + 1, 4);
        assert_true(all_zero(w, n / 4 * 4 + 4));
        nalloc_free(w);
        nalloc_free(z);
    }
    /* A chunk made of another thread's freed chunk (a free stretch). */
    maker m = {.arena = a, .blocks = calloc(200, sizeof(void *)), .n = 200};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, make_blocks, &m), 0);
    while (atomic_load(&m.stage) != 1)
        sched_yield();
    assert_int_equal(m.pushed, NALLOC_OK);
    for (size_t i = 0; i < m.n; i++)
        memset(m.blocks[i], 0x77, 16 + i % 700);
    void *keep = nalloc_malloc(3 * MiB); /* above the other thread's chunk: it cannot go back */
    for (size_t i = 0; i < m.n; i++)
        nalloc_free(m.blocks[i]);
    atomic_store(&m.stage, 2);
    assert_int_equal(pthread_join(t, NULL), 0);
    free(m.blocks);
    for (int i = 0; i < 2000; i++) {
        unsigned char *z = nalloc_calloc(1, 16 + (size_t)i % 700);
        assert_true(all_zero(z, 16 + (size_t)i % 700));
        memset(z, 0x55, 16 + (size_t)i % 700);
        if (i % 3 == 0)
            nalloc_free(z); /* some stay: the chunk fills up and takes the stretch */
    }
    nalloc_free(keep);
    assert_int_equal(nalloc_route_pop(), NALLOC_OK);
    assert_int_equal(nalloc_reset_unchecked(a), NALLOC_OK); /* the blocks kept above are dead */
    assert_int_equal(nalloc_arena_destroy(a), NALLOC_OK);
}

static void test_mrealloc_grows_in_place_when_newest_and_moves_otherwise(void **state)
{
    (void)state;
    nalloc_arena *a = scratch(64 * MiB);
    assert_int_equal(nalloc_route_push(a), NALLOC_OK);
    /* The newest block grows and shrinks where it is. */
    unsigned char *p = nalloc_mrealloc(NULL, 100);
    assert_ptr_equal(nalloc_owner(p), a);
    fill(p, 100, 1);
    unsigned char *q = nalloc_mrealloc(p, 5000);
    assert_ptr_equal(q, p);
    assert_true(holds(q, 100, 1));
    assert_int_equal(nalloc_usable_size(q), 5000);
    q = nalloc_mrealloc(q, 50);
    assert_ptr_equal(q, p);
    assert_true(holds(q, 50, 1));
    assert_int_equal(nalloc_usable_size(q), 50);
    /* An older block moves, with its bytes, and the old one is freed. */
    unsigned char *newer = nalloc_malloc(10);
    unsigned char *moved = nalloc_mrealloc(q, 3000);
    assert_ptr_not_equal(moved, q);
    assert_ptr_equal(nalloc_owner(moved), a);
    assert_true(holds(moved, 50, 1));
    if (!checker_watches())
        assert_int_equal(nalloc_usable_size(q), 0); /* freed */
    assert_int_equal(stats_of(a).live_blocks, 2);
    /* Growing past the chunk moves it too; shrinking an older block in place is fine either way. */
    unsigned char *grown = nalloc_mrealloc(moved, 3 * MiB);
    assert_ptr_equal(nalloc_owner(grown), a);
    assert_true(holds(grown, 50, 1));
    /* A big block at the top of the arena grows in place. */
    unsigned char *g2 = nalloc_mrealloc(grown, 6 * MiB);
    assert_ptr_equal(g2, grown);
    assert_true(holds(g2, 50, 1));
    nalloc_free(newer);
    nalloc_free(g2);
    assert_reclaimed(a);

    /* Repeated growth of one vector, as a library would, in chunks and out of them. */
    unsigned char *v = NULL;
    size_t len = 0;
    for (size_t cap = 16; cap <= 8 * MiB; cap *= 2) {
        v = nalloc_mrealloc(v, cap);
        assert_non_null(v);
        assert_ptr_equal(nalloc_owner(v), a);
        assert_true(holds(v, len, 9));
        fill(v, cap, 9);
        len = cap;
    }
    nalloc_free(v);
    assert_int_equal(nalloc_route_pop(), NALLOC_OK);
    assert_reclaimed(a);
    assert_int_equal(stats_of(a).fallbacks, 0);
    assert_int_equal(nalloc_arena_destroy(a), NALLOC_OK);
}

static void test_mrealloc_follows_the_c_library(void **state)
{
    (void)state;
    nalloc_arena *a = scratch(4 * MiB);
    /* A system block stays with the system allocator, routed or not. */
    unsigned char *s = nalloc_malloc(100);
    fill(s, 100, 2);
    assert_int_equal(nalloc_route_push(a), NALLOC_OK);
    s = nalloc_mrealloc(s, 200);
    assert_null(nalloc_owner(s));
    assert_true(holds(s, 100, 2));
    /* Size 0 frees and returns NULL (glibc's behaviour). */
    unsigned char *p = nalloc_malloc(100);
    assert_null(nalloc_mrealloc(p, 0));
    assert_int_equal(stats_of(a).live_blocks, 0);
    /* A failure leaves the old block as it was. */
    p = nalloc_malloc(100);
    fill(p, 100, 3);
    errno = 0;
    assert_null(nalloc_mrealloc(p, under_valgrind() ? (size_t)1 << 62 : SIZE_MAX - 8));
    assert_int_equal(errno, ENOMEM);
    assert_true(holds(p, 100, 3));
    assert_int_equal(nalloc_usable_size(p), 100);
    /* Unrouted, an arena block grows by moving to the system allocator. */
    assert_int_equal(nalloc_route_pop(), NALLOC_OK);
    unsigned char *above = nalloc_arena_malloc(a, 10, 0); /* so p cannot grow in place */
    unsigned char *m = nalloc_mrealloc(p, 1000);
    assert_null(nalloc_owner(m));
    assert_true(holds(m, 100, 3));
    nalloc_free(above);
    assert_reclaimed(a);
    /* And a pointer that is no block is refused, not reallocated. */
    void *plain = nalloc_alloc(a, 64);
    if (!checker_watches()) { /* its "header" is free space: a checker reports the look at it */
        errno = 0;
        assert_null(nalloc_mrealloc(plain, 128));
        assert_int_equal(nalloc_last_error(), NALLOC_ERR_INVALID);
    }
    nalloc_free(m);
    nalloc_free(s);
    assert_int_equal(nalloc_reset(a), NALLOC_OK);
    assert_int_equal(nalloc_arena_destroy(a), NALLOC_OK);
}

static void test_resize_in_place(void **state)
{
    (void)state;
    nalloc_arena *a = scratch(16 * MiB);
    assert_int_equal(nalloc_route_push(a), NALLOC_OK);
    void *x = nalloc_malloc(100), *y = nalloc_malloc(100);
    assert_int_equal(nalloc_resize_in_place(y, 2000), NALLOC_OK);
    assert_int_equal(nalloc_usable_size(y), 2000);
    assert_int_equal(nalloc_resize_in_place(x, 50), NALLOC_ERR_NOMEM); /* not the newest */
    assert_int_equal(nalloc_usable_size(x), 100);
    assert_int_equal(nalloc_resize_in_place(y, 16 * MiB), NALLOC_ERR_NOMEM);
    assert_int_equal(nalloc_usable_size(y), 2000);
    assert_int_equal(nalloc_resize_in_place(y, SIZE_MAX), NALLOC_ERR_NOMEM);
    void *sys = malloc(10);
    assert_int_equal(nalloc_resize_in_place(sys, 5), NALLOC_ERR_INVALID);
    assert_int_equal(nalloc_resize_in_place(NULL, 5), NALLOC_ERR_INVALID);
    free(sys);
    void *big = nalloc_malloc(2 * MiB);
    assert_int_equal(nalloc_resize_in_place(big, 4 * MiB), NALLOC_OK);
    assert_int_equal(nalloc_resize_in_place(big, MiB + 1), NALLOC_OK);
    assert_int_equal(nalloc_usable_size(big), MiB + 1);
    nalloc_free(big);
    nalloc_free(y);
    nalloc_free(x);
    assert_int_equal(nalloc_route_pop(), NALLOC_OK);
    assert_reclaimed(a);
    assert_int_equal(nalloc_arena_destroy(a), NALLOC_OK);
}

/* ---------------------------------------------------------------------------------------------
 * A full arena falls back
 * ------------------------------------------------------------------------------------------- */

static void test_a_full_arena_falls_back_to_the_system_and_counts_it(void **state)
{
    (void)state;
    nalloc_arena *a = scratch(256 * KiB);
    assert_int_equal(nalloc_route_push(a), NALLOC_OK);
    enum { N = 400 };
    unsigned char *p[N];
    size_t in_arena = 0, fallback = 0;
    for (int i = 0; i < N; i++) {
        switch (i % 4) {
        case 0: p[i] = nalloc_malloc(1000); break;
        case 1: p[i] = nalloc_calloc(250, 4); break;
        case 2: p[i] = nalloc_aligned_alloc(256, 1000); break;
        default: assert_int_equal(nalloc_posix_memalign((void **)&p[i], 128, 1000), 0); break;
        }
        assert_non_null(p[i]);
        if (i % 4 == 1)
            assert_true(all_zero(p[i], 1000));
        if (i % 4 >= 2)
            assert_int_equal((uintptr_t)p[i] % (i % 4 == 2 ? 256 : 128), 0);
        fill(p[i], 1000, (unsigned)i);
        if (nalloc_owner(p[i]) == a)
            in_arena++;
        else
            fallback++;
    }
    assert_true(in_arena > 100);
    assert_true(fallback > 0);
    nalloc_stats s = stats_of(a);
    assert_int_equal(s.fallbacks, fallback);
    assert_int_equal(s.live_blocks, in_arena);
    for (int i = 0; i < N; i++)
        assert_true(holds(p[i], 1000, (unsigned)i));
    /* A block bigger than the arena, and a grow that does not fit. */
    void *huge = nalloc_malloc(MiB);
    assert_null(nalloc_owner(huge));
    p[0] = nalloc_mrealloc(p[0], 512 * KiB);
    assert_true(holds(p[0], 1000, 0));
    for (int i = 0; i < N; i++)
        nalloc_free(p[i]); /* each where it came from */
    nalloc_free(huge);
    assert_reclaimed(a);
    assert_true(stats_of(a).fallbacks >= fallback + 1);
    /* Room again: served by the arena. */
    void *again = nalloc_malloc(1000);
    assert_ptr_equal(nalloc_owner(again), a);
    nalloc_free(again);
    assert_int_equal(nalloc_route_pop(), NALLOC_OK);
    assert_int_equal(nalloc_arena_destroy(a), NALLOC_OK);
}

static void test_arena_malloc_never_falls_back(void **state)
{
    (void)state;
    nalloc_arena *a = scratch(128 * KiB);
    void *p[200];
    int n = 0;
    while (n < 200 && (p[n] = nalloc_arena_malloc(a, 1000, 0)) != NULL)
        n++;
    assert_true(n > 50 && n < 200);
    assert_int_equal(nalloc_last_error(), NALLOC_ERR_NOMEM);
    assert_int_equal(stats_of(a).fallbacks, 0);
    assert_null_with(NALLOC_ERR_INVALID, nalloc_arena_malloc(NULL, 10, 0));
    assert_null_with(NALLOC_ERR_INVALID, nalloc_arena_malloc(a, 10, 3));
    assert_null_with(NALLOC_ERR_NOMEM, nalloc_arena_malloc(a, SIZE_MAX, 0));
    void *aligned = NULL;
    for (int i = 0; i < n; i++)
        nalloc_free(p[i]);
    aligned = nalloc_arena_malloc(a, 100, 4096);
    assert_non_null(aligned);
    assert_int_equal((uintptr_t)aligned % 4096, 0);
    nalloc_free(aligned);
    assert_reclaimed(a);
    assert_int_equal(nalloc_arena_destroy(a), NALLOC_OK);
}

/* ---------------------------------------------------------------------------------------------
 * What live blocks protect
 * ------------------------------------------------------------------------------------------- */

static void test_live_blocks_make_phase_boundaries_refuse(void **state)
{
    (void)state;
    nalloc_arena *a = scratch(4 * MiB);
    nalloc_mark m = nalloc_mark_get(a);
    void *plain = nalloc_alloc(a, 100);
    void *b = nalloc_arena_malloc(a, 100, 0);
    fill(b, 100, 4);
    snapshot before = snap(a);
    assert_int_equal(nalloc_rollback(a, m), NALLOC_ERR_STATE);
    assert_int_equal(nalloc_reset(a), NALLOC_ERR_STATE);
    assert_int_equal(nalloc_wipe(a), NALLOC_ERR_STATE);
    assert_int_equal(nalloc_arena_destroy(a), NALLOC_ERR_STATE);
    assert_same_snapshot(before, snap(a));
    assert_true(holds(b, 100, 4));
    assert_ptr_equal(nalloc_owner(b), a);
    nalloc_free(b);
    (void)plain;
    assert_int_equal(nalloc_rollback(a, m), NALLOC_OK);
    assert_int_equal(stats_of(a).used, 0);
    assert_int_equal(nalloc_arena_destroy(a), NALLOC_OK);

    /* A context refuses too, for any of its arenas. */
    nalloc_ctx_config config;
    nalloc_ctx_config_init(&config, NALLOC_MEMORY_HOST, 4 * MiB, 4 * MiB, 4 * MiB);
    nalloc_ctx *ctx;
    assert_int_equal(nalloc_ctx_create(&config, &ctx), NALLOC_OK);
    for (int k = 0; k < NALLOC_KIND_COUNT; k++) {
        nalloc_arena *ka = nalloc_ctx_arena(ctx, (nalloc_kind)k);
        assert_int_equal(nalloc_route_push(ka), NALLOC_OK);
        void *kb = nalloc_malloc(10);
        assert_int_equal(nalloc_route_pop(), NALLOC_OK);
        assert_int_equal(nalloc_ctx_destroy(ctx), NALLOC_ERR_STATE);
        assert_ptr_equal(nalloc_owner(kb), ka); /* nothing destroyed */
        nalloc_free(kb);
    }
    assert_int_equal(nalloc_ctx_destroy(ctx), NALLOC_OK);
}

static void test_a_deferred_destroy_happens_at_the_last_free(void **state)
{
    (void)state;
    nalloc_arena *a = scratch(16 * MiB);
    nalloc_stats s = stats_of(a);
    assert_int_equal(nalloc_route_push(a), NALLOC_OK);
    void *p[3] = {nalloc_malloc(100), nalloc_malloc(2 * MiB), nalloc_malloc(100)};
    nalloc_status st = nalloc_arena_destroy_deferred(a);
    if (st == NALLOC_ERR_UNSUPPORTED) {
        for (int i = 0; i < 3; i++)
            nalloc_free(p[i]);
        nalloc_route_pop();
        assert_int_equal(nalloc_arena_destroy(a), NALLOC_OK);
        skip(); /* no membarrier(2) here */
    }
    assert_int_equal(st, NALLOC_OK);
    /* Doomed: it serves nothing (the route falls back), every call but a free is refused. */
    void *sys = nalloc_malloc(100);
    assert_null(nalloc_owner(sys));
    nalloc_free(sys);
    assert_int_equal(nalloc_arena_stats(a, &s), NALLOC_ERR_STATE);
    assert_int_equal(nalloc_route_push(a), NALLOC_ERR_STATE);
    assert_null_with(NALLOC_ERR_STATE, nalloc_alloc(a, 10));
    assert_null_with(NALLOC_ERR_STATE, nalloc_arena_malloc(a, 10, 0));
    assert_int_equal(nalloc_reset(a), NALLOC_ERR_STATE);
    assert_int_equal(nalloc_arena_destroy(a), NALLOC_ERR_STATE);
    assert_int_equal(nalloc_arena_destroy_deferred(a), NALLOC_ERR_STATE);
    /* Its blocks are still its own, and freeable in any order. */
    for (int i = 0; i < 3; i++)
        assert_ptr_equal(nalloc_owner(p[i]), a);
    nalloc_free(p[1]);
    nalloc_free(p[0]);
    assert_ptr_equal(nalloc_owner(p[2]), a);
    nalloc_free(p[2]); /* the last: destroyed now */
    assert_null(nalloc_owner(p[2]));
    assert_null(nalloc_owner((void *)s.base));
    assert_int_equal(nalloc_route_pop(), NALLOC_OK);
}

static void test_a_deferred_destroy_without_blocks_destroys_at_once(void **state)
{
    (void)state;
    nalloc_arena *a = scratch(MiB);
    nalloc_stats s = stats_of(a);
    nalloc_status st = nalloc_arena_destroy_deferred(a);
    if (st == NALLOC_ERR_UNSUPPORTED) {
        assert_int_equal(nalloc_arena_destroy(a), NALLOC_OK);
        skip();
    }
    assert_int_equal(st, NALLOC_OK);
    assert_null(nalloc_owner((void *)s.base));
    assert_int_equal(nalloc_arena_destroy(a), NALLOC_ERR_STATE);
    assert_int_equal(nalloc_arena_destroy_deferred(NULL), NALLOC_ERR_INVALID);
}

typedef struct last_free {
    void *block;
    atomic_int go;
} last_free;

static void *free_when_told(void *arg)
{
    last_free *l = arg;
    while (!atomic_load(&l->go))
        sched_yield();
    nalloc_free(l->block);
    return NULL;
}

static void test_a_deferred_destroy_racing_the_last_free_destroys_once(void **state)
{
    (void)state;
    /* The last free runs on another thread while the destroy is being deferred: whichever comes
     * second destroys the arena, exactly once, and nothing is left. Both interleavings are hit
     * over the rounds (which one a round gets is up to the scheduler; either must be right). */
    for (int round = 0; round < 200; round++) {
        nalloc_arena *a = scratch(MiB);
        nalloc_stats s = stats_of(a);
        assert_int_equal(nalloc_route_push(a), NALLOC_OK);
        last_free l = {.block = nalloc_malloc(64 + (size_t)round)};
        assert_int_equal(nalloc_route_pop(), NALLOC_OK);
        pthread_t t;
        assert_int_equal(pthread_create(&t, NULL, free_when_told, &l), 0);
        atomic_store(&l.go, 1);
        nalloc_status st = nalloc_arena_destroy_deferred(a);
        assert_int_equal(pthread_join(t, NULL), 0);
        if (st == NALLOC_ERR_UNSUPPORTED) {
            assert_int_equal(nalloc_arena_destroy(a), NALLOC_OK);
            skip();
        }
        assert_int_equal(st, NALLOC_OK);
        assert_null(nalloc_owner((void *)s.base));
        assert_int_equal(nalloc_arena_destroy(a), NALLOC_ERR_STATE);
    }
}

static void test_unchecked_reset_and_wipe_forget_live_blocks(void **state)
{
    (void)state;
    nalloc_arena *a = scratch(16 * MiB);
    for (int wipe = 0; wipe < 2; wipe++) {
        assert_int_equal(nalloc_route_push(a), NALLOC_OK);
        for (int i = 0; i < 100; i++)
            assert_non_null(nalloc_malloc(100 + (size_t)i * 1000)); /* forgotten below */
        assert_non_null(nalloc_malloc(3 * MiB));
        assert_int_equal(nalloc_route_pop(), NALLOC_OK);
        assert_int_equal(stats_of(a).live_blocks, 101);
        assert_int_equal(nalloc_reset(a), NALLOC_ERR_STATE);
        assert_int_equal(wipe ? nalloc_wipe_unchecked(a) : nalloc_reset_unchecked(a), NALLOC_OK);
        nalloc_stats s = stats_of(a);
        assert_int_equal(s.live_blocks, 0);
        assert_int_equal(s.used, 0);
        assert_int_equal(s.deferred, 0);
        /* And it serves again from the start. */
        assert_int_equal(nalloc_route_push(a), NALLOC_OK);
        void *p = nalloc_malloc(10);
        assert_ptr_equal(nalloc_owner(p), a);
        nalloc_free(p);
        assert_int_equal(nalloc_route_pop(), NALLOC_OK);
        assert_reclaimed(a);
    }
    assert_int_equal(nalloc_reset_unchecked(NULL), NALLOC_ERR_INVALID);
    assert_int_equal(nalloc_wipe_unchecked(NULL), NALLOC_ERR_INVALID);
    assert_int_equal(nalloc_arena_destroy(a), NALLOC_OK);
    assert_int_equal(nalloc_reset_unchecked(a), NALLOC_ERR_STATE);
    assert_int_equal(nalloc_wipe_unchecked(a), NALLOC_ERR_STATE);
}

/* ---------------------------------------------------------------------------------------------
 * Secrets: a free never writes the block, a wipe zeroes it
 * ------------------------------------------------------------------------------------------- */

static bool released_holds(const void *p, size_t n, unsigned tag)
{
    for (size_t i = 0; i < n; i++)
        if (peek_released(p, i) != (unsigned char)(tag * 31 + i * 7))
            return false;
    return true;
}

static bool released_zero(const void *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (peek_released(p, i) != 0)
            return false;
    return true;
}

typedef struct freer {
    void *block;
} freer;

static void *free_it(void *arg)
{
    nalloc_free(((freer *)arg)->block);
    return NULL;
}

static void test_a_free_never_writes_the_blocks_bytes(void **state)
{
    (void)state;
    nalloc_arena *w = make_arena(NALLOC_KIND_WITNESS, 16 * MiB);
    assert_int_equal(nalloc_route_push(w), NALLOC_OK);
    const size_t sizes[] = {1, 31, 100, 4096, 70000, 2 * MiB};
    enum { K = sizeof sizes / sizeof sizes[0] };
    unsigned char *p[K][4];
    for (size_t i = 0; i < K; i++)
        for (int j = 0; j < 4; j++) {
            p[i][j] = nalloc_malloc(sizes[i]);
            fill(p[i][j], sizes[i], (unsigned)(i * 4 + (size_t)j));
        }
    /* Every way a block can be freed: the newest (popped), an older one (marked), one whose free
     * pops others below it, and one freed by another thread. */
    for (size_t i = K; i-- > 0;) {
        unsigned tag = (unsigned)(i * 4);
        nalloc_free(p[i][1]); /* below the top: marked */
        assert_true(released_holds(p[i][1], sizes[i], tag + 1));
        freer f = {p[i][2]};
        pthread_t t;
        assert_int_equal(pthread_create(&t, NULL, free_it, &f), 0);
        assert_int_equal(pthread_join(t, NULL), 0);
        assert_true(released_holds(p[i][2], sizes[i], tag + 2));
        nalloc_free(p[i][3]); /* the top: popped, with 2 and 1 below it */
        assert_true(released_holds(p[i][3], sizes[i], tag + 3));
        assert_true(released_holds(p[i][2], sizes[i], tag + 2));
        assert_true(released_holds(p[i][1], sizes[i], tag + 1));
        nalloc_free(p[i][0]);
        assert_true(released_holds(p[i][0], sizes[i], tag));
    }
    /* A thread's chunk released when it exits, after another thread freed its blocks. */
    maker m = {.arena = w, .blocks = calloc(50, sizeof(void *)), .n = 50};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, make_blocks, &m), 0);
    while (atomic_load(&m.stage) != 1)
        sched_yield();
    assert_int_equal(m.pushed, NALLOC_OK);
    for (size_t i = 0; i < m.n; i++)
        fill(m.blocks[i], 16 + i % 700, (unsigned)(100 + i));
    void *keep = nalloc_malloc(2 * MiB); /* above the chunk: it becomes a free stretch */
    for (size_t i = 0; i < m.n; i++)
        nalloc_free(m.blocks[i]);
    atomic_store(&m.stage, 2);
    assert_int_equal(pthread_join(t, NULL), 0);
    for (size_t i = 0; i < m.n; i++)
        assert_true(released_holds(m.blocks[i], 16 + i % 700, (unsigned)(100 + i)));
    nalloc_free(keep);
    assert_int_equal(nalloc_route_pop(), NALLOC_OK);
    assert_reclaimed(w);
    for (size_t i = 0; i < m.n; i++)
        assert_true(released_holds(m.blocks[i], 16 + i % 700, (unsigned)(100 + i)));

    /* The wipe zeroes them all, and their headers. */
    assert_int_equal(nalloc_wipe(w), NALLOC_OK);
    for (size_t i = 0; i < K; i++)
        for (int j = 0; j < 4; j++) {
            assert_true(released_zero(p[i][j], sizes[i]));
            assert_true(released_zero(p[i][j] - 32, 32));
        }
    for (size_t i = 0; i < m.n; i++) {
        assert_true(released_zero(m.blocks[i], 16 + i % 700));
        assert_true(released_zero((unsigned char *)m.blocks[i] - 32, 32));
    }
    free(m.blocks);
    assert_int_equal(nalloc_arena_destroy(w), NALLOC_OK);
}

static void test_a_wipe_zeroes_a_freed_routed_secret(void **state)
{
    (void)state;
    nalloc_arena *w = make_arena(NALLOC_KIND_WITNESS, 4 * MiB);
    static const char secret[] = "the witness: 0x5eC12e7 5eC12e7 5eC12e7";
    char *copies[8];
    {
        NALLOC_ROUTE_SCOPE(w);
        for (int i = 0; i < 8; i++) {
            copies[i] = nalloc_malloc(sizeof secret + (size_t)i * 1000);
            memcpy(copies[i], secret, sizeof secret);
        }
        for (int i = 0; i < 8; i++)
            nalloc_free(copies[(i * 5) % 8]);
    }
    assert_reclaimed(w);
    for (int i = 0; i < 8; i++)
        for (size_t k = 0; k < sizeof secret; k++)
            assert_int_equal(peek_released(copies[i], k), (unsigned char)secret[k]);
    assert_int_equal(nalloc_wipe(w), NALLOC_OK);
    for (int i = 0; i < 8; i++) {
        assert_true(released_zero(copies[i], sizeof secret));
        assert_true(released_zero(copies[i] - 32, 32));
    }
    assert_true(stats_of(w).wiped_bytes >= 8 * sizeof secret);
    assert_int_equal(nalloc_arena_destroy(w), NALLOC_OK);
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "busy-stream-at-exit") == 0)
        return busy_stream_at_exit_role();
    if (argc == 2 && strcmp(argv[1], "fork-handler-allocates") == 0)
        return fork_handler_allocates_role();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_routes_nest_and_the_innermost_wins, no_routes_left),
        cmocka_unit_test_teardown(test_a_null_route_steps_out_to_the_system_allocator, no_routes_left),
        cmocka_unit_test_teardown(test_a_seventeenth_route_is_refused_and_routes_nothing, no_routes_left),
        cmocka_unit_test_teardown(test_a_pop_without_a_route_is_refused, no_routes_left),
        cmocka_unit_test_teardown(test_routes_into_destroyed_arenas_are_refused, no_routes_left),
        cmocka_unit_test_teardown(test_a_route_to_a_destroyed_arena_does_not_follow_its_handle, no_routes_left),
        cmocka_unit_test_teardown(test_the_scope_macro_pops_on_every_return_path, no_routes_left),
        cmocka_unit_test_teardown(test_a_refused_scope_pops_nothing, no_routes_left),
        cmocka_unit_test_teardown(test_routes_belong_to_their_thread, no_routes_left),
        cmocka_unit_test_teardown(test_a_fork_waits_for_the_stretch_lock, no_routes_left),
        cmocka_unit_test_teardown(test_exit_does_not_wait_for_a_stream_another_thread_holds, no_routes_left),
        cmocka_unit_test_teardown(test_a_fork_handler_may_use_the_malloc_family, no_routes_left),
        cmocka_unit_test_teardown(test_a_route_outliving_its_thread_takes_no_slot_of_another, no_routes_left),
        cmocka_unit_test_teardown(test_the_default_route_serves_threads_without_a_route, no_routes_left),
        cmocka_unit_test_teardown(test_zero_sizes_return_unique_pointers, no_routes_left),
        cmocka_unit_test_teardown(test_impossible_sizes_fail_with_enomem, no_routes_left),
        cmocka_unit_test_teardown(test_bad_alignments_fail_with_einval, no_routes_left),
        cmocka_unit_test_teardown(test_huge_alignments_are_honoured_or_fail_cleanly, no_routes_left),
        cmocka_unit_test_teardown(test_every_block_is_aligned, no_routes_left),
        cmocka_unit_test_teardown(test_blocks_hold_their_bytes_and_do_not_overlap, no_routes_left),
        cmocka_unit_test_teardown(test_free_of_null_does_nothing, no_routes_left),
        cmocka_unit_test_teardown(test_a_double_free_is_reported_and_frees_nothing, no_routes_left),
        cmocka_unit_test_teardown(test_a_checker_reports_a_double_free, no_routes_left),
        cmocka_unit_test_teardown(test_an_interior_pointer_is_reported_and_frees_nothing, no_routes_left),
        cmocka_unit_test_teardown(test_a_nalloc_alloc_block_passed_to_nalloc_free_is_refused, no_routes_left),
        cmocka_unit_test_teardown(test_pointers_of_destroyed_arenas_belong_to_nobody, no_routes_left),
        cmocka_unit_test_teardown(test_free_if_owned_leaves_system_pointers_to_the_caller, no_routes_left),
        cmocka_unit_test_teardown(test_usable_size_is_the_requested_size, no_routes_left),
        cmocka_unit_test_teardown(test_owner_finds_arena_blocks_and_nothing_else, no_routes_left),
        cmocka_unit_test_teardown(test_owner_tells_many_small_arenas_apart, no_routes_left),
        cmocka_unit_test_teardown(test_lanes_own_their_blocks_and_can_be_routed_into, no_routes_left),
        cmocka_unit_test_teardown(test_a_parent_is_not_destroyed_while_a_lane_has_live_blocks, no_routes_left),
        cmocka_unit_test_teardown(test_a_parent_is_not_destroyed_while_a_doomed_lane_waits_for_its_blocks, no_routes_left),
        cmocka_unit_test_teardown(test_a_context_is_not_destroyed_while_its_lanes_have_live_blocks, no_routes_left),
        cmocka_unit_test_teardown(test_a_context_destroyed_deferred_goes_with_its_last_block, no_routes_left),
        cmocka_unit_test_teardown(test_frees_in_allocation_order_reclaim_everything, no_routes_left),
        cmocka_unit_test_teardown(test_frees_in_reverse_order_reclaim_everything, no_routes_left),
        cmocka_unit_test_teardown(test_frees_in_random_order_reclaim_everything, no_routes_left),
        cmocka_unit_test_teardown(test_frees_between_allocations_reclaim_everything, no_routes_left),
        cmocka_unit_test_teardown(test_allocation_order_frees_give_memory_back_as_they_go, no_routes_left),
        cmocka_unit_test_teardown(test_an_older_free_is_given_back_when_the_blocks_above_go, no_routes_left),
        cmocka_unit_test_teardown(test_blocks_freed_by_another_thread_while_their_owner_lives_are_reclaimed, no_routes_left),
        cmocka_unit_test_teardown(test_blocks_freed_after_their_owner_exited_are_reclaimed, no_routes_left),
        cmocka_unit_test_teardown(test_blocks_freed_after_the_route_ended_are_reclaimed, no_routes_left),
        cmocka_unit_test_teardown(test_a_thread_that_exits_leaving_a_block_does_not_pin_its_chunk, no_routes_left),
        cmocka_unit_test_teardown(test_a_failed_request_keeps_the_threads_chunk, no_routes_left),
        cmocka_unit_test_teardown(test_big_blocks_bypass_chunks_and_come_back_in_any_order, no_routes_left),
        cmocka_unit_test_teardown(test_big_blocks_reuse_the_room_of_older_ones_freed_below_them, no_routes_left),
        cmocka_unit_test_teardown(test_calloc_zeroes_reused_memory, no_routes_left),
        cmocka_unit_test_teardown(test_mrealloc_grows_in_place_when_newest_and_moves_otherwise, no_routes_left),
        cmocka_unit_test_teardown(test_mrealloc_follows_the_c_library, no_routes_left),
        cmocka_unit_test_teardown(test_resize_in_place, no_routes_left),
        cmocka_unit_test_teardown(test_a_full_arena_falls_back_to_the_system_and_counts_it, no_routes_left),
        cmocka_unit_test_teardown(test_arena_malloc_never_falls_back, no_routes_left),
        cmocka_unit_test_teardown(test_live_blocks_make_phase_boundaries_refuse, no_routes_left),
        cmocka_unit_test_teardown(test_a_deferred_destroy_happens_at_the_last_free, no_routes_left),
        cmocka_unit_test_teardown(test_a_deferred_destroy_without_blocks_destroys_at_once, no_routes_left),
        cmocka_unit_test_teardown(test_a_deferred_destroy_racing_the_last_free_destroys_once, no_routes_left),
        cmocka_unit_test_teardown(test_unchecked_reset_and_wipe_forget_live_blocks, no_routes_left),
        cmocka_unit_test_teardown(test_a_free_never_writes_the_blocks_bytes, no_routes_left),
        cmocka_unit_test_teardown(test_a_wipe_zeroes_a_freed_routed_secret, no_routes_left),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
