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
 * are released for other threads (arena.c, through thread.c's exit); the counts stay in them.
 *
 * Signals: a handler may allocate on a thread that was in the middle of claiming a slot, and read
 * the cache entry being written. So the claim writes an entry in an order that shows a reader
 * either the old entry, no entry (uid 0), or the new one complete (uid last), and a claim made by
 * a handler that interrupted a claim does not write the cache at all: two writers interleaved
 * could leave one arena's uid with another's slot.
 */
#include "internal.h"

NA_THREAD_LOCAL na_slot_cache_entry na_slot_cache[NA_SLOT_CACHE];
static NA_THREAD_LOCAL bool claiming;       /* the thread is writing a cache entry */

static uint64_t next_uid = 1;

uint64_t na_next_uid(void)
{
    return __atomic_fetch_add(&next_uid, 1, __ATOMIC_RELAXED);
}

na_stat_slot *na_stat_slot_claim(nalloc_arena *a)
{
    size_t token = na_thread_token(); /* the thread's exit releases the slot */
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
