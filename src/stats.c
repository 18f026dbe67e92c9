/* src/stats.c - per-thread statistics slots.
 *
 * Every allocation counts itself, its padding and its place in the layout digest. Locked
 * additions on shared counters would cost about as much as the allocation's own CAS
 * (bench/bench_bump.c measures both; its figures are in the benchmark documentation), and with
 * threads contending the counters' cache line bounces as the offset's does. So each thread owns a
 * slot per arena and adds to it without a locked instruction (na_slot_add); readers sum the slots
 * with relaxed loads (that is race-free: every access is atomic, and each slot has a single
 * writer).
 *
 * A thread finds its slot through a small thread-local cache keyed by arena uid (uids are never
 * reused, so an entry for a destroyed arena simply never matches again). On a miss it claims a
 * free slot with a CAS on its owner field, or, when all NA_STAT_SLOTS are taken, uses the arena's
 * shared slot with atomic adds: slower, still exact. When a thread exits, its slots in live arenas
 * are released for other threads; the counts stay in them.
 *
 * Signals: a handler may allocate on a thread that was in the middle of claiming a slot, and read
 * the cache entry being written. So the claim writes an entry in an order that shows a reader
 * either the old entry, no entry (uid 0), or the new one complete (uid last), and a claim made by
 * a handler that interrupted a claim does not write the cache at all: two writers interleaved
 * could leave one arena's uid with another's slot.
 */
#include "internal.h"

NA_THREAD_LOCAL na_slot_cache_entry na_slot_cache[NA_SLOT_CACHE];
static NA_THREAD_LOCAL size_t thread_token; /* 0 until the thread first claims a slot */
static NA_THREAD_LOCAL bool claiming;       /* the thread is writing a cache entry */

static size_t next_token = 1;
static uint64_t next_uid = 1;
static pthread_key_t exit_key;
static pthread_once_t exit_key_once = PTHREAD_ONCE_INIT;

uint64_t na_next_uid(void)
{
    return __atomic_fetch_add(&next_uid, 1, __ATOMIC_RELAXED);
}

static NA_THREAD_LOCAL bool exited; /* thread_exit ran: a later claim must arm it again */

static void thread_exit(void *unused)
{
    (void)unused;
    exited = true;
    na_stats_release_thread_slots();
    na_thread_text_release();
}

static void make_exit_key(void)
{
    /* If this fails, slots of exited threads are simply never reused. */
    (void)pthread_key_create(&exit_key, thread_exit);
}

static size_t my_token(void)
{
    if (na_unlikely(thread_token == 0)) {
        thread_token = __atomic_fetch_add(&next_token, 1, __ATOMIC_RELAXED);
        pthread_once(&exit_key_once, make_exit_key);
        (void)pthread_setspecific(exit_key, (void *)1); /* non-NULL, so the destructor runs */
    }
    return thread_token;
}

void na_thread_exit_hook(void)
{
    (void)my_token();
}

na_stat_slot *na_stat_slot_claim(nalloc_arena *a)
{
    size_t token = my_token();
    if (na_unlikely(exited)) {
        /* Allocating from another thread-local destructor after ours ran: ask for one more
         * round (the C library repeats destructors whose value was set again). */
        exited = false;
        (void)pthread_setspecific(exit_key, (void *)1);
    }
    na_stat_slot *slot = &a->shared_slot;
    for (unsigned i = 0; i < NA_STAT_SLOTS; i++) {
        na_stat_slot *s = &a->slots[(token + i) % NA_STAT_SLOTS];
        size_t owner = __atomic_load_n(&s->owner, __ATOMIC_ACQUIRE);
        if (owner == token) {
            slot = s; /* ours already: the cache entry was evicted by another arena */
            break;
        }
        size_t free_owner = 0;
        if (owner == 0 && __atomic_compare_exchange_n(&s->owner, &free_owner, token, false,
                                                      __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) {
            slot = s;
            break;
        }
    }
    if (claiming) /* a signal handler interrupted our own claim: leave the entry to it */
        return slot;
    claiming = true;
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    na_slot_cache_entry *e = &na_slot_cache[a->uid & (NA_SLOT_CACHE - 1)];
    e->uid = 0;
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    e->slot = slot;
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    e->uid = a->uid;
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    claiming = false;
    return slot;
}

static void release_in(void *handle, void *arg)
{
    nalloc_arena *a = handle;
    size_t token = *(const size_t *)arg;
    if (!na_arena_mapped(a))
        return;
    for (unsigned i = 0; i < NA_STAT_SLOTS; i++)
        if (__atomic_load_n(&a->slots[i].owner, __ATOMIC_RELAXED) == token)
            __atomic_store_n(&a->slots[i].owner, 0, __ATOMIC_RELEASE);
}

/* An arena where the exiting thread still holds a chunk (found under the handle lock). */
typedef struct held_chunk {
    size_t token;
    nalloc_arena *arena; /* NULL: none found */
    uint64_t uid;
    na_stat_slot *slot;
} held_chunk;

static void find_held_chunk(void *handle, void *arg)
{
    nalloc_arena *a = handle;
    held_chunk *h = arg;
    if (h->arena != NULL || !na_arena_mapped(a))
        return;
    for (unsigned i = 0; i < NA_STAT_SLOTS; i++) {
        na_stat_slot *s = &a->slots[i];
        if (__atomic_load_n(&s->owner, __ATOMIC_RELAXED) == h->token &&
            (nalloc_atomic_load(&s->plain.end) != 0 || nalloc_atomic_load(&s->blocks.end) != 0)) {
            h->arena = a;
            h->uid = a->uid;
            h->slot = s;
            return;
        }
    }
}

void na_stats_release_thread_slots(void)
{
    size_t token = thread_token;
    if (token == 0)
        return;
    /* Chunks first, one arena at a time, each under its control lock but outside the handle lock
     * (destroy takes them the other way round): the plain chunk's remainder goes back or to the
     * orphans, the malloc family's chunk is abandoned to its last free. */
    for (;;) {
        held_chunk h = {token, NULL, 0, NULL};
        na_handle_foreach(find_held_chunk, &h);
        if (h.arena == NULL)
            break;
        pthread_mutex_lock(&h.arena->control);
        if (na_arena_mapped(h.arena) && h.arena->uid == h.uid) {
            na_tcache_thread_exit(h.arena, h.slot);
            na_blocks_thread_exit(h.arena, h.slot);
        } else { /* destroyed meanwhile: the slot's chunks died with it */
            nalloc_atomic_store(&h.slot->plain.end, 0);
            nalloc_atomic_store(&h.slot->blocks.end, 0);
        }
        pthread_mutex_unlock(&h.arena->control);
    }
    na_handle_foreach(release_in, &token);
    for (unsigned i = 0; i < NA_SLOT_CACHE; i++)
        na_slot_cache[i].uid = 0;
}
