/* src/tcache.c - thread chunks: one arena, every core at full speed.
 *
 * Threads that allocate from one arena all update its offset, and the cache line holding it moves
 * between their cores on every call: two threads pay an order of magnitude more per allocation
 * than one. The JVM's thread-local allocation buffers, mimalloc's thread heaps and jemalloc's
 * tcache all answer this the same way, and so does NALLOC_FLAG_THREAD_CACHE: a thread takes a
 * chunk of the arena with one atomic on the offset and then bumps inside it alone, in its stat
 * slot (internal.h, na_chunk), coming back to the offset only when the chunk is used up.
 *
 * Chunk sizes adapt: a thread's first chunk is small (NA_TCACHE_FIRST), each refill doubles it up
 * to NA_TCACHE_MAX, and a request too big for a chunk to hold comfortably (more than a quarter of
 * the largest) bypasses chunks and takes the offset directly, as without the cache.
 *
 * Layout. When the thread's chunk is still the last thing in the arena (nobody took space after
 * it), a refill extends it in place instead of starting a new one. A thread alone in an arena
 * therefore bumps through one contiguous stretch, every block lands exactly where it would
 * without the cache, and the layout digest is the same; the only difference is that the offset
 * runs up to a chunk ahead of what was handed out. With several threads, chunks interleave, and
 * each thread's blocks are where its own sequence of requests puts them inside its chunks.
 *
 * Retiring. A chunk belongs to the epoch it was taken in: a rollback, reset or wipe bumps the
 * epoch, and the fast path compares epochs, so a retired chunk is never used again and no lock is
 * taken on the allocation path. (Phase boundaries are guaranteed not to race with allocations,
 * nalloc.h; the thread that allocates next has synchronized with the boundary and sees the new
 * epoch.) A remainder that cannot go back to the offset (something lies above it) becomes a free
 * stretch (stretch.c) that later refills take before the offset, so thousands of short-lived
 * threads do not use up an arena that one thread could not. A thread gives its remainder back
 * when it takes a mark (so that what it allocates after the mark lies above it) and when it exits.
 *
 * Statistics stay exact: "used" is the offset less the unused remainders of live chunks
 * ("cached", at most one chunk per thread that allocated) and free stretches ("deferred").
 */
#include "internal.h"

#include <sched.h>

#define NA_TCACHE_FIRST ((size_t)4 << 10) /* bytes of a thread's first chunk */
#define NA_TCACHE_MAX ((size_t)1 << 20)   /* bytes: chunks grow to this */
#define NA_TCACHE_BYPASS (NA_TCACHE_MAX / 4) /* larger requests take the offset directly */

/* ---------------------------------------------------------------------------------------------
 * Giving a remainder back (to the offset through offset.c, or as a free stretch)
 * ------------------------------------------------------------------------------------------- */

void na_tcache_give_back(nalloc_arena *a, na_chunk *c)
{
    size_t end = na_atomic_load(&c->end), cursor = na_atomic_load(&c->cursor);
    if (end == 0)
        return;
    na_atomic_store(&c->end, 0);
    if (c->epoch != __atomic_load_n(&a->epoch, __ATOMIC_RELAXED) || cursor == end)
        return; /* retired with its epoch, or used up */
    if (!na_offset_give_back(a, cursor, end))
        na_stretch_free(a, cursor, end); /* for other chunks to reuse meanwhile */
}

void na_tcache_trim(nalloc_arena *a, na_chunk *c)
{
    size_t end = na_atomic_load(&c->end), cursor = na_atomic_load(&c->cursor);
    if (end - cursor > NA_TCACHE_MAX && na_offset_give_back(a, cursor, end))
        na_atomic_store(&c->end, cursor);
}

/* ---------------------------------------------------------------------------------------------
 * Refilling
 * ------------------------------------------------------------------------------------------- */

bool na_tcache_refill(nalloc_arena *a, na_chunk *c, size_t size, size_t align, size_t *begin,
                      size_t *pad)
{
    uint64_t epoch = __atomic_load_n(&a->epoch, __ATOMIC_RELAXED);
    size_t want = c->next < NA_TCACHE_FIRST ? NA_TCACHE_FIRST : c->next;
    size_t end = na_atomic_load(&c->end);
    bool current = end != 0 && c->epoch == epoch;
    if (size > NA_TCACHE_BYPASS) {
        /* The offset directly. A chunk that is still the last thing in the arena gives its
         * remainder back first, so that the block lands where it would without the cache (at
         * the cursor, not past the remainder) and one thread's layout stays the same. */
        if (current && na_offset_give_back(a, na_atomic_load(&c->cursor), end))
            na_atomic_store(&c->end, 0);
        return nalloc_bump_reserve(&a->bump, size, align, begin, pad);
    }

    /* Still the last thing in the arena: grow it in place (exactly what the bump would do
     * without a cache, which keeps one thread's layout unchanged). */
    size_t first, last;
    if (current && nalloc_bump_fit(a->bump.base, a->bump.capacity, na_atomic_load(&c->cursor),
                                   size, align, &first, &last)) {
        size_t seen = end;
        /* A whole step more when the arena has room for it, else just this request: near
         * exhaustion, a chunk never takes room another thread's exact request could use. */
        size_t grown = want <= a->bump.capacity - end && end + want > last ? end + want : last;
        if (grown >= end &&
            __atomic_compare_exchange_n(&a->bump.offset, &seen, grown, false, __ATOMIC_ACQUIRE,
                                        __ATOMIC_RELAXED)) {
            na_atomic_store(&c->end, grown);
            na_atomic_store(&c->next, want < NA_TCACHE_MAX ? want * 2 : NA_TCACHE_MAX);
            size_t cursor = na_atomic_load(&c->cursor);
            *begin = first;
            *pad = first - cursor;
            na_atomic_store(&c->cursor, last);
            return true;
        }
    }
    /* A new chunk: a free stretch that fits, or a stretch of the offset: `want` bytes if there
     * is room, or just what this request needs, or nothing at all (a failed request takes
     * nothing, and the thread keeps its chunk). Not a stretch below the newest mark: what is
     * allocated after a mark must lie above it, or a rollback to it would not release it. The
     * old chunk's remainder goes once the new chunk is secured: back to the offset when it is
     * still the last thing there (the offset then moves down to the cursor, and the new chunk
     * starts there, where the block would land without the cache), else as a free stretch. */
    if (current && __atomic_load_n(&a->stretch_count, __ATOMIC_RELAXED) == 0) {
        /* Where a new chunk could begin at best: the cursor, when the chunk goes back to the
         * offset; else the offset. No room there and no free stretch: fail, keeping the chunk. */
        size_t offset = na_atomic_load(&a->bump.offset);
        size_t from = offset == end ? na_atomic_load(&c->cursor) : offset;
        if (!nalloc_bump_fit(a->bump.base, a->bump.capacity, from, size, align, &first, &last))
            return false;
    }
    if (current)
        na_tcache_give_back(a, c);

    na_range r;
    if (__atomic_load_n(&a->stretch_count, __ATOMIC_RELAXED) > 0 &&
        na_stretch_take_above(a, na_atomic_load(&a->mark_floor), size, align, want, &r)) {
        /* reused: [r.begin, r.end) */
    } else {
        size_t offset = na_atomic_load(&a->bump.offset);
        for (;;) {
            if (!nalloc_bump_fit(a->bump.base, a->bump.capacity, offset, size, align, &first, &last))
                return false;
            size_t chunk_end = want <= a->bump.capacity - offset && offset + want > last
                                   ? offset + want
                                   : last;
            if (__atomic_compare_exchange_n(&a->bump.offset, &offset, chunk_end, true,
                                            __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) {
                r = (na_range){offset, chunk_end};
                break;
            }
        }
    }
    if (!nalloc_bump_fit(a->bump.base, r.end, r.begin, size, align, &first, &last))
        return false; /* cannot happen: both paths checked the fit */
    __atomic_store_n(&c->epoch, epoch, __ATOMIC_RELAXED); /* statistics read it meanwhile */
    na_atomic_store(&c->begin, r.begin);
    na_atomic_store(&c->cursor, last);
    na_atomic_store(&c->end, r.end);
    na_atomic_store(&c->next, want < NA_TCACHE_MAX ? want * 2 : NA_TCACHE_MAX);
    *begin = first;
    *pad = first - r.begin;
    return true;
}

/* ---------------------------------------------------------------------------------------------
 * Phase boundaries and statistics (control lock held, or a snapshot)
 * ------------------------------------------------------------------------------------------- */

static na_stat_slot *slot_at(nalloc_arena *a, int i)
{
    return i < 0 ? &a->shared_slot : &a->slots[i];
}

/* The unused bytes of a chunk that is still current. */
static size_t remainder_of(const nalloc_arena *a, const na_chunk *c, uint64_t epoch)
{
    size_t end = na_atomic_load((size_t *)&c->end);
    size_t cursor = na_atomic_load((size_t *)&c->cursor);
    if (end == 0 || __atomic_load_n(&c->epoch, __ATOMIC_RELAXED) != epoch || cursor > end)
        return 0;
    (void)a;
    return end - cursor;
}

bool na_tcache_covers(const nalloc_arena *a, size_t begin, size_t end)
{
    uint64_t epoch = __atomic_load_n(&a->epoch, __ATOMIC_RELAXED);
    for (int i = 0; i < NA_STAT_SLOTS; i++) {
        const na_chunk *c = &a->slots[i].plain;
        size_t chunk_end = na_atomic_load((size_t *)&c->end);
        size_t cursor = na_atomic_load((size_t *)&c->cursor);
        if (chunk_end != 0 && __atomic_load_n(&c->epoch, __ATOMIC_RELAXED) == epoch &&
            cursor < chunk_end && begin < chunk_end && end > cursor)
            return true;
    }
    return false;
}

size_t na_tcache_cached(const nalloc_arena *a)
{
    uint64_t epoch = __atomic_load_n(&a->epoch, __ATOMIC_RELAXED);
    size_t cached = 0;
    for (int i = 0; i < NA_STAT_SLOTS; i++)
        cached += remainder_of(a, &a->slots[i].plain, epoch);
    return cached;
}

void na_tcache_boundary(nalloc_arena *a, size_t target)
{
    /* Remainders of the chunks this boundary retires, below the new offset, are free stretches. */
    uint64_t epoch = __atomic_load_n(&a->epoch, __ATOMIC_RELAXED);
    for (int i = -1; target != 0 && i < NA_STAT_SLOTS; i++) {
        na_chunk *c = &slot_at(a, i)->plain;
        size_t end = na_atomic_load(&c->end), cursor = na_atomic_load(&c->cursor);
        if (end == 0 || c->epoch != epoch || cursor >= target)
            continue;
        na_stretch_free(a, cursor, end < target ? end : target);
    }
}

/* ---------------------------------------------------------------------------------------------
 * Thread exit
 * ------------------------------------------------------------------------------------------- */

void na_tcache_thread_exit(nalloc_arena *a, na_stat_slot *s)
{
    na_tcache_give_back(a, &s->plain);
    na_atomic_store(&s->plain.next, 0); /* the slot's next owner starts small */
}
