/* src/blocks.c - malloc-family blocks: freed one by one, in any order, without a size.
 *
 * The malloc family (route.c) serves libraries written against malloc and free: they free blocks
 * without saying how big they were, in whatever order suits them (allocation order, for most),
 * from any thread, long after the call that made them. An arena is a bump allocator, which can
 * give back only what lies at its top. So each block carries a header, and a block freed below the
 * top is remembered and given back as soon as everything above it is free. Allocation-order frees
 * then reclaim everything, at constant cost per call, without writing into the freed memory: the
 * only bytes a free touches are the block's header (32 bytes in front of it), which a wipe zeroes
 * with the rest.
 *
 * Where blocks live. Each thread allocates blocks from a chunk of its own (na_chunk in its stat
 * slot), as the thread cache does for nalloc_alloc (tcache.c): so threads routed into one arena
 * share no cache line, and a block's neighbours below it in its chunk are that thread's earlier
 * blocks. A chunk is one stretch taken from the arena's offset, with a 64-byte header of its own.
 * Requests too big for a chunk bypass it: they take the offset directly, as "shared" blocks.
 *
 *  - Inside a chunk, the owner's blocks form a stack: each header links to the block allocated
 *    before it. The owner frees its newest block by moving its cursor down, then keeps popping
 *    while the new top is marked freed; a block freed below the top (by the owner, or by any
 *    other thread) is only marked. The owner's pops are plain stores: no atomic on the path.
 *
 *  - A chunk its owner has left (it filled up, or the thread exited) is abandoned: it records how
 *    many blocks the owner left in it, frees from any thread count themselves in the chunk header,
 *    and the free that brings the count to zero releases the whole chunk (a seq_cst handshake
 *    between the owner's "abandoned with n blocks" and the freers' count decides who sees the
 *    last one, exactly once).
 *
 *  - Shared stretches (a released chunk, a freed bypass block) go back to the arena's offset when
 *    they are at its top: one compare-and-swap, as nalloc_free_last. One below the top becomes a
 *    free stretch (stretch.c): it goes back when the offset comes down to it, and meanwhile new
 *    chunks reuse it, so a thread pool's chunks recycle each other's space. Nothing is given back
 *    below the newest mark (mark_floor), as free_last.
 *
 * Liveness. Each thread counts the blocks it allocates and frees in its stat slot; the difference
 * of the sums is the number of live blocks. While any is live, the arena refuses what would pull
 * memory from under it: rollback, reset, wipe and destroy. nalloc_arena_destroy_deferred instead
 * marks the arena doomed (NA_MAGIC_DOOMED: allocations refused, frees accepted) and the free of
 * the last block destroys it; a membarrier makes that handshake exact without a fence on every
 * free.
 *
 * Checkers (track.h) see a block as its header plus its bytes; a block freed below the top keeps
 * only its header addressable, and whatever is given back is poisoned before it can be handed out.
 */
#include "blocks.h"
#include "prim.h"

#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

/* ---------------------------------------------------------------------------------------------
 * Free stretches
 * ------------------------------------------------------------------------------------------- */

/* [below, end) of the arena is free: give it back now if it is at the top, or keep it as a free
 * stretch (stretch.c) that goes back as soon as it is at the top, and that chunks may reuse. */
static void shared_free(nalloc_arena *a, size_t below, size_t end)
{
    if (na_offset_give_back(a, below, end)) {
        /* seq_cst with the inserter's count: either we see its stretch, or it sees our offset. */
        if (__atomic_load_n(&a->stretch_count, __ATOMIC_SEQ_CST) > 0)
            na_stretch_drain(a);
        return;
    }
    na_stretch_free(a, below, end);
}

/* ---------------------------------------------------------------------------------------------
 * Chunks
 * ------------------------------------------------------------------------------------------- */

/* Where the cursor goes when the block with header `h` is popped: the end of the block before it
 * in the chunk, or the chunk's first byte after its header. */
static size_t below_block(const nalloc_arena *a, const na_block *h)
{
    if (h->link == 0)
        return h->chunk + NA_CHUNK_HEADER;
    size_t prev = h->link - 1, extent = 0;
    const na_block *p = header_at(a, prev);
    (void)block_extent(a, __atomic_load_n(&p->size, __ATOMIC_RELAXED) & ~NA_BLOCK_FREED, &extent);
    return prev + extent;
}

static void chunk_abandon(nalloc_arena *a, na_chunk *c);

/* Bytes the block with header `h` (at `hoff`) took from its chunk: from where the cursor was when
 * it was allocated to its end. */
static size_t block_span(const nalloc_arena *a, const na_block *h, size_t hoff)
{
    size_t extent = 0;
    (void)block_extent(a, __atomic_load_n(&h->size, __ATOMIC_RELAXED) & ~NA_BLOCK_FREED, &extent);
    return hoff + extent - below_block(a, h);
}

/* A block of a chunk is marked freed below its owner's top: until it is popped or its chunk
 * released, its bytes are reported as deferred. */
static void mark_freed(nalloc_arena *a, na_block *h, size_t hoff)
{
    __atomic_fetch_add(&a->freed_bytes, block_span(a, h, hoff), __ATOMIC_RELAXED);
}

/* A chunk whose blocks are all free goes back to free space: the headers of blocks freed below
 * its owner's top (`top`, as na_chunk.top) and its own header stop being addressable to checkers,
 * and those blocks stop being deferred. */
static void chunk_untrack(nalloc_arena *a, size_t offset, size_t top)
{
    while (top != 0) {
        na_block *h = header_at(a, top - 1);
        __atomic_fetch_sub(&a->freed_bytes, block_span(a, h, top - 1), __ATOMIC_RELAXED);
        top = h->link;
        na_track_resize(a, h, NA_BLOCK_HEADER, 0);
    }
    na_chunk_header *ch = chunk_at(a, offset);
    ch->check = 0;
    na_track_resize(a, ch, NA_CHUNK_HEADER, 0);
}

/* Release a chunk whose blocks are all free (won the handshake below). */
static void chunk_release(nalloc_arena *a, size_t offset)
{
    na_chunk_header *ch = chunk_at(a, offset);
    size_t below = ch->below, end = ch->end;
    chunk_untrack(a, offset, ch->top);
    shared_free(a, below, end);
}

/* Who releases a chunk its owner left is decided by one word, so that nobody reads the chunk's
 * header after it may be gone: `remote` counts the blocks freed other than by the owner's own
 * path; leaving adds NA_CHUNK_ABANDONED less the blocks the owner left in it (never fewer than
 * those freed so far), and whichever addition brings it to exactly NA_CHUNK_ABANDONED (every
 * block freed) releases the chunk, once. */

/* The owner leaves its chunk (c: its na_chunk, current): the last free releases it. The unused
 * remainder above the cursor holds no block, so it goes now (back to the offset, or a free
 * stretch) and the chunk keeps only what its blocks took: a thread that exits, or moves on to a
 * new chunk, leaving one small block behind does not pin the rest until that block is freed. */
static void chunk_abandon(nalloc_arena *a, na_chunk *c)
{
    size_t offset = na_atomic_load(&c->begin), own = na_atomic_load(&c->own);
    size_t cursor = na_atomic_load(&c->cursor), end = na_atomic_load(&c->end);
    na_chunk_header *ch = chunk_at(a, offset);
    ch->top = na_atomic_load(&c->top);
    ch->end = cursor;
    na_atomic_store(&c->end, 0);
    if (cursor < end) /* before anyone can release the chunk below it */
        shared_free(a, cursor, end);
    __atomic_store_n(&ch->state, NA_CHUNK_ABANDONED | own, __ATOMIC_RELAXED); /* for debuggers */
    if (__atomic_add_fetch(&ch->remote, NA_CHUNK_ABANDONED - own, __ATOMIC_ACQ_REL) ==
        NA_CHUNK_ABANDONED)
        chunk_release(a, offset);
}

/* A block of the chunk at `offset` was freed by someone other than its owner's own path. */
static void chunk_remote_free(nalloc_arena *a, size_t offset)
{
    if (__atomic_add_fetch(&chunk_at(a, offset)->remote, 1, __ATOMIC_ACQ_REL) == NA_CHUNK_ABANDONED)
        chunk_release(a, offset);
}

/* Pop the owner's top block `h` (its checker extent `tracked`: the block, or only the header of a
 * block marked freed), then every block marked freed below it. A chunk left empty while freed
 * stretches wait below it goes back whole, so that they can go too. */
static void chunk_pop(nalloc_arena *a, na_chunk *c, na_block *h, size_t tracked)
{
    for (;;) {
        size_t cursor = below_block(a, h), link = h->link;
        /* Marked freed: it was deferred until now. (Not told by `tracked`: the owner's own free
         * of a 0-byte block tracks just its header too.) */
        if (__atomic_load_n(&h->size, __ATOMIC_RELAXED) & NA_BLOCK_FREED)
            __atomic_fetch_sub(&a->freed_bytes, na_atomic_load(&c->cursor) - cursor,
                               __ATOMIC_RELAXED);
        h->check = 0;
        na_track_resize(a, h, tracked, 0);
        na_atomic_store(&c->cursor, cursor);
        na_atomic_store(&c->top, link);
        if (link == 0)
            break;
        h = header_at(a, link - 1);
        if (!(__atomic_load_n(&h->size, __ATOMIC_ACQUIRE) & NA_BLOCK_FREED))
            return;
        tracked = NA_BLOCK_HEADER; /* a block freed below the top kept its header addressable */
    }
    if (__atomic_load_n(&a->stretch_count, __ATOMIC_RELAXED) > 0)
        chunk_abandon(a, c); /* empty: released at once (the owner's count is settled) */
}

/* Other threads freed blocks of the owner's current chunk: pop those that are now on top.
 * Checked on the owner's slow path (the chunk is full), before it grows or leaves the chunk, so
 * blocks freed elsewhere are reused before more of the arena is taken; the owner's own frees pop
 * them too, and an exit or abandon releases them with the chunk. */
static void chunk_reclaim(nalloc_arena *a, na_chunk *c)
{
    na_chunk_header *ch = chunk_at(a, na_atomic_load(&c->begin));
    size_t remote = __atomic_load_n(&ch->remote, __ATOMIC_ACQUIRE);
    if (na_likely(remote == c->remote_seen))
        return;
    c->remote_seen = remote;
    size_t top = na_atomic_load(&c->top);
    if (top == 0)
        return;
    na_block *h = header_at(a, top - 1);
    if (__atomic_load_n(&h->size, __ATOMIC_ACQUIRE) & NA_BLOCK_FREED)
        chunk_pop(a, c, h, NA_BLOCK_HEADER);
}

/* Take a new chunk (or grow the current one in place) with room for a block of `extent` bytes at
 * `align`. False when the arena has no room for even that. */
static bool chunk_refill(nalloc_arena *a, na_chunk *c, size_t extent, size_t align)
{
    uint64_t epoch = __atomic_load_n(&a->epoch, __ATOMIC_RELAXED);
    size_t want = c->next < NA_BLOCKS_FIRST ? NA_BLOCKS_FIRST : c->next;
    size_t first, last;
    if (chunk_current(a, c)) {
        /* Still the arena's last stretch and not at its full size: grow it, as tcache.c does. A
         * chunk never grows past NA_BLOCKS_MAX, so what one thread keeps (its remainder, and
         * blocks others freed that only it can pop) stays bounded. */
        size_t end = na_atomic_load(&c->end), cursor = na_atomic_load(&c->cursor);
        size_t begin = na_atomic_load(&c->begin);
        if (nalloc_bump_fit(a->bump.base, a->bump.capacity, cursor + NA_BLOCK_HEADER,
                            extent - NA_BLOCK_HEADER, align, &first, &last) &&
            last - begin <= NA_BLOCKS_MAX) {
            size_t grown = want <= a->bump.capacity - end && end + want > last ? end + want : last;
            if (grown - begin > NA_BLOCKS_MAX)
                grown = last > begin + NA_BLOCKS_MAX ? last : begin + NA_BLOCKS_MAX;
            size_t seen = end;
            if (__atomic_compare_exchange_n(&a->bump.offset, &seen, grown, false, __ATOMIC_ACQUIRE,
                                            __ATOMIC_RELAXED)) {
                chunk_at(a, na_atomic_load(&c->begin))->end = grown;
                na_atomic_store(&c->end, grown);
                na_atomic_store(&c->next, want < NA_BLOCKS_MAX ? want * 2 : NA_BLOCKS_MAX);
                return true;
            }
        }
        /* A fresh chunk begins at best where this one's remainder does (when the chunk is the
         * arena's last stretch, its remainder goes back to the offset), else at the offset. No
         * room there for even this block, and no free stretch to take: fail, keeping the chunk
         * (a failed request takes nothing). */
        size_t offset = na_atomic_load(&a->bump.offset), from = offset == end ? cursor : offset;
        size_t fresh;
        if (__atomic_load_n(&a->stretch_count, __ATOMIC_RELAXED) == 0 &&
            (__builtin_add_overflow(NA_CHUNK_HEADER + extent, align, &fresh) || from > a->bump.capacity ||
             fresh > a->bump.capacity - from))
            return false;
        chunk_abandon(a, c);
    }
    na_atomic_store(&c->end, 0);

    /* A fresh chunk: its header on a cache line, room for `want` bytes or at least this block
     * (its padding included), or nothing when even that does not fit. */
    size_t need;
    if (__builtin_add_overflow(NA_CHUNK_HEADER + align, extent, &need))
        return false;
    size_t size = want > need ? want : need, begin, pad, end;
    na_range r;
    if (__atomic_load_n(&a->stretch_count, __ATOMIC_RELAXED) > 0 &&
        na_stretch_take(a, NA_CHUNK_HEADER + NA_BLOCK_HEADER + extent, NA_CHUNK_HEADER, size, &r)) {
        /* Free space below the offset first: chunks of a thread pool reuse each other's. */
        begin = (r.begin + NA_CHUNK_HEADER - 1) & ~(NA_CHUNK_HEADER - 1);
        pad = begin - r.begin;
        end = r.end;
    } else {
        if (!nalloc_bump_reserve(&a->bump, size, NA_CHUNK_HEADER, &begin, &pad)) {
            if (size == need || !nalloc_bump_reserve(&a->bump, need, NA_CHUNK_HEADER, &begin, &pad))
                return false;
            size = need;
        }
        end = begin + size;
    }
    na_chunk_header *ch = chunk_at(a, begin);
    na_track_alloc(a, ch, NA_CHUNK_HEADER, NA_CHUNK_HEADER);
    ch->below = begin - pad;
    ch->end = end;
    ch->remote = 0;
    ch->state = NA_CHUNK_OWNED;
    ch->top = 0;
    ch->check = na_check(a, begin, 2);
    __atomic_store_n(&c->epoch, epoch, __ATOMIC_RELAXED);
    na_atomic_store(&c->begin, begin);
    na_atomic_store(&c->cursor, begin + NA_CHUNK_HEADER);
    na_atomic_store(&c->top, 0);
    na_atomic_store(&c->own, 0);
    c->remote_seen = 0; /* remote frees seen */
    na_atomic_store(&c->end, end);
    na_atomic_store(&c->next, want < NA_BLOCKS_MAX ? want * 2 : NA_BLOCKS_MAX);
    return true;
}

/* ---------------------------------------------------------------------------------------------
 * Allocation
 * ------------------------------------------------------------------------------------------- */

static void *shared_alloc(nalloc_arena *a, na_stat_slot *s, size_t size, size_t extent,
                          size_t align)
{
    size_t offset = na_atomic_load(&a->bump.offset), first, last;
    na_range r;
    /* A free stretch first, as chunks do: big blocks freed under others (a thread keeping two
     * buffers and freeing the older) are reused, instead of the offset climbing past them until
     * the arena is full of free stretches. Room for the header and any padding; what is left
     * over goes back. */
    if (__atomic_load_n(&a->stretch_count, __ATOMIC_RELAXED) > 0 && extent <= SIZE_MAX - align &&
        na_stretch_take(a, extent + align - 1, 1, extent + align - 1, &r)) {
        first = (size_t)(((a->bump.base + r.begin + NA_BLOCK_HEADER + align - 1) &
                          ~(uintptr_t)(align - 1)) - a->bump.base);
        last = first + (extent - NA_BLOCK_HEADER);
        if (last < r.end)
            na_stretch_free(a, last, r.end);
        offset = r.begin; /* where its reservation began: its free gives back from here */
        goto found;
    }
    for (;;) {
        if (offset > a->bump.capacity - NA_BLOCK_HEADER ||
            !nalloc_bump_fit(a->bump.base, a->bump.capacity, offset + NA_BLOCK_HEADER,
                             extent - NA_BLOCK_HEADER, align, &first, &last))
            return NULL;
        if (__atomic_compare_exchange_n(&a->bump.offset, &offset, last, true, __ATOMIC_ACQUIRE,
                                        __ATOMIC_RELAXED))
            break;
    }
found:;
    size_t hoff = first - NA_BLOCK_HEADER;
    na_block *h = header_at(a, hoff);
    na_track_alloc(a, h, NA_BLOCK_HEADER + size, extent);
    h->link = offset;
    h->chunk = NA_BLOCK_SHARED;
    h->check = na_check(a, hoff, 1);
    __atomic_store_n(&h->size, size, __ATOMIC_RELAXED);
    (void)s;
    return (void *)(a->bump.base + first);
}

void *na_block_alloc(nalloc_arena *a, size_t size, size_t align)
{
    if (!a->memory.backing->host_accessible)
        return NULL;
    align = block_align(a, size, align);
    size_t extent;
    if (!block_extent(a, size, &extent) || extent - NA_BLOCK_HEADER > a->bump.capacity)
        return NULL;
    na_stat_slot *s = na_stat_slot_of(a);
    void *p = NULL;
    if (s == &a->shared_slot || extent > NA_BLOCKS_BYPASS) {
        p = shared_alloc(a, s, size, extent, align);
    } else {
        na_chunk *c = &s->blocks;
        bool current = chunk_current(a, c);
        if (current)
            chunk_reclaim(a, c);
        size_t first, last, cursor = na_atomic_load(&c->cursor);
        bool fits = current &&
                    nalloc_bump_fit(a->bump.base, na_atomic_load(&c->end), cursor + NA_BLOCK_HEADER,
                                    extent - NA_BLOCK_HEADER, align, &first, &last);
        if (!fits && chunk_refill(a, c, extent, align)) {
            cursor = na_atomic_load(&c->cursor);
            fits = nalloc_bump_fit(a->bump.base, na_atomic_load(&c->end), cursor + NA_BLOCK_HEADER,
                                   extent - NA_BLOCK_HEADER, align, &first, &last);
        }
        if (!fits) {
            p = shared_alloc(a, s, size, extent, align); /* no chunk at all fits: exact bytes */
        } else {
            na_chunk_push(a, c, first - NA_BLOCK_HEADER, size, extent, last);
            p = (void *)(a->bump.base + first);
        }
    }
    if (p != NULL)
        na_slot_add(&s->mallocs, 1, s == &a->shared_slot);
    return p;
}

/* ---------------------------------------------------------------------------------------------
 * Finding and freeing a block
 * ------------------------------------------------------------------------------------------- */

/* The header of the live or freed block at `ptr`, checked, or NULL; *offset is its offset. */
static na_block *block_find(nalloc_arena *a, const void *ptr, size_t *offset)
{
    size_t at = (size_t)((uintptr_t)ptr - a->bump.base);
    if (at < NA_BLOCK_HEADER || at > a->bump.capacity || at % NA_BLOCK_MIN_ALIGN != 0)
        return NULL;
    size_t hoff = at - NA_BLOCK_HEADER;
    na_block *h = header_at(a, hoff);
    if (h->check != na_check(a, hoff, 1))
        return NULL;
    *offset = hoff;
    return h;
}

/* A live block: its header, the header's offset, the size it was asked for. */
typedef struct live_block {
    na_block *h;
    size_t offset, size;
} live_block;

/* The live block at `ptr` in *b, or why there is none: NALLOC_ERR_INVALID (no block starts
 * there), NALLOC_ERR_STATE (freed already). */
static nalloc_status find_live(nalloc_arena *a, const void *ptr, live_block *b)
{
    b->h = block_find(a, ptr, &b->offset);
    if (b->h == NULL)
        return NALLOC_ERR_INVALID;
    b->size = __atomic_load_n(&b->h->size, __ATOMIC_ACQUIRE);
    return b->size & NA_BLOCK_FREED ? NALLOC_ERR_STATE : NALLOC_OK;
}

void na_block_zero(nalloc_arena *a, void *ptr, size_t size)
{
    size_t hoff, dirty_bytes = size;
    na_block *h = block_find(a, ptr, &hoff);
    if (h != NULL && h->chunk == NA_BLOCK_SHARED && a->memory.backing->fresh_is_zero) {
        /* Taken from the offset: bytes at or above the dirty extent were never handed out since
         * the last wipe (read after the allocation, as nalloc_alloc_zeroed does). */
        size_t begin = hoff + NA_BLOCK_HEADER, dirty = na_atomic_load(&a->dirty_end);
        dirty_bytes = begin >= dirty ? 0 : (dirty - begin < size ? dirty - begin : size);
    }
    memset(ptr, 0, dirty_bytes); /* in a chunk: its bytes may have held freed blocks */
    na_track_zeroed(a, ptr, size); /* all of it reads as zero, the fresh part too */
}

bool na_block_size(nalloc_arena *a, const void *ptr, size_t *size)
{
    size_t hoff;
    na_block *h = block_find(a, ptr, &hoff);
    if (h == NULL)
        return false;
    size_t v = __atomic_load_n(&h->size, __ATOMIC_ACQUIRE);
    *size = v & ~NA_BLOCK_FREED;
    return !(v & NA_BLOCK_FREED);
}

/* Count a free in the freeing thread's slot. The caller then looks for a doomed arena
 * (na_blocks_freed). */
static void count_free(nalloc_arena *a, na_stat_slot *s)
{
    na_slot_add_release(&s->frees, 1, s == &a->shared_slot);
}

nalloc_status na_block_free(nalloc_arena *a, const void *ptr)
{
    live_block v;
    nalloc_status found = find_live(a, ptr, &v);
    if (found != NALLOC_OK)
        return found;
    na_block *h = v.h;
    size_t size = v.size, extent = 0;
    (void)block_extent(a, size, &extent);
    na_stat_slot *s = na_stat_slot_of(a);
    na_chunk *c = &s->blocks;
    if (h->chunk == NA_BLOCK_SHARED) {
        size_t seen = size;
        if (!__atomic_compare_exchange_n(&h->size, &seen, size | NA_BLOCK_FREED, false,
                                         __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
            return NALLOC_ERR_STATE; /* another thread freed it first */
        size_t below = h->link;
        h->check = 0;
        na_track_resize(a, h, NA_BLOCK_HEADER + size, 0);
        shared_free(a, below, v.offset + extent);
    } else if (s != &a->shared_slot && chunk_current(a, c) &&
               na_atomic_load(&c->begin) == h->chunk) {
        /* The owner, in its current chunk: no atomic read-modify-write needed. */
        na_atomic_store(&c->own, na_atomic_load(&c->own) - 1);
        if (na_atomic_load(&c->top) == v.offset + 1) {
            chunk_pop(a, c, h, NA_BLOCK_HEADER + size);
        } else {
            na_track_resize(a, h, NA_BLOCK_HEADER + size, NA_BLOCK_HEADER);
            mark_freed(a, h, v.offset);
            __atomic_store_n(&h->size, size | NA_BLOCK_FREED, __ATOMIC_RELEASE);
        }
    } else {
        /* Read before the mark: once the block is marked, its owner may pop it and hand out its
         * bytes (and header) again. */
        size_t chunk = h->chunk;
        na_chunk_header *ch = chunk_at(a, chunk);
        if (chunk > a->bump.capacity - NA_CHUNK_HEADER || ch->check != na_check(a, chunk, 2))
            return NALLOC_ERR_INVALID;
        /* Poisoned before it is marked: once the owner sees the mark it may hand the bytes out. */
        na_track_resize(a, h, NA_BLOCK_HEADER + size, NA_BLOCK_HEADER);
        size_t seen = size;
        mark_freed(a, h, v.offset); /* before the mark: the owner may pop it right after */
        if (!__atomic_compare_exchange_n(&h->size, &seen, size | NA_BLOCK_FREED, false,
                                         __ATOMIC_ACQ_REL, __ATOMIC_RELAXED)) {
            __atomic_fetch_sub(&a->freed_bytes, block_span(a, h, v.offset), __ATOMIC_RELAXED);
            na_track_resize_undo(a, h, NA_BLOCK_HEADER + size, NA_BLOCK_HEADER);
            return NALLOC_ERR_STATE;
        }
        chunk_remote_free(a, chunk);
    }
    /* Freed stretches wait for what lies above them; if that is this thread's own chunk, empty
     * now, it goes back whole and lets them go. */
    if (na_unlikely(__atomic_load_n(&a->stretch_count, __ATOMIC_RELAXED) > 0) &&
        s != &a->shared_slot && chunk_current(a, c) &&
        na_atomic_load(&c->cursor) == na_atomic_load(&c->begin) + NA_CHUNK_HEADER)
        chunk_abandon(a, c);
    count_free(a, s);
    return NALLOC_OK;
}

nalloc_status na_block_resize(nalloc_arena *a, void *ptr, size_t new_size)
{
    live_block v;
    nalloc_status found = find_live(a, ptr, &v);
    if (found != NALLOC_OK)
        return found;
    na_block *h = v.h;
    size_t old_extent = 0, new_extent;
    (void)block_extent(a, v.size, &old_extent);
    if (!block_extent(a, new_size, &new_extent))
        return NALLOC_ERR_NOMEM;
    size_t old_end = v.offset + old_extent;
    if (new_extent > a->bump.capacity - v.offset)
        return NALLOC_ERR_NOMEM;
    size_t new_end = v.offset + new_extent;
    na_stat_slot *s = na_stat_slot_of(a);
    na_chunk *c = &s->blocks;
    if (h->chunk == NA_BLOCK_SHARED) {
        /* The arena's last stretch: move the offset, as nalloc_resize_last. */
        if (new_end < old_end && v.offset + NA_BLOCK_HEADER < na_atomic_load(&a->mark_floor))
            return NALLOC_ERR_STATE;
        size_t seen = old_end;
        if (new_end < old_end) {
            na_arena_fold(a, old_end);
            na_track_resize(a, h, NA_BLOCK_HEADER + v.size, NA_BLOCK_HEADER + new_size);
        }
        if (!__atomic_compare_exchange_n(&a->bump.offset, &seen, new_end, false, __ATOMIC_ACQ_REL,
                                         __ATOMIC_RELAXED)) {
            if (new_end < old_end)
                na_track_resize_undo(a, h, NA_BLOCK_HEADER + v.size, NA_BLOCK_HEADER + new_size);
            return NALLOC_ERR_NOMEM;
        }
        if (new_end > old_end)
            na_track_resize(a, h, NA_BLOCK_HEADER + v.size, NA_BLOCK_HEADER + new_size);
    } else {
        /* The owner's top block, inside its chunk. */
        if (s == &a->shared_slot || !chunk_current(a, c) || na_atomic_load(&c->begin) != h->chunk ||
            na_atomic_load(&c->top) != v.offset + 1 || new_end > na_atomic_load(&c->end))
            return NALLOC_ERR_NOMEM;
        na_track_resize(a, h, NA_BLOCK_HEADER + v.size, NA_BLOCK_HEADER + new_size);
        na_atomic_store(&c->cursor, new_end);
    }
    __atomic_store_n(&h->size, new_size, __ATOMIC_RELAXED);
    return NALLOC_OK;
}

/* ---------------------------------------------------------------------------------------------
 * Liveness, phase boundaries, thread exit
 * ------------------------------------------------------------------------------------------- */

size_t na_blocks_live(const nalloc_arena *a)
{
    /* Frees first: a free counted here was preceded by its allocation's count (the block reached
     * the freeing thread through synchronization), so the sum never undercounts. */
    size_t frees = 0, mallocs = 0;
    for (int i = -1; i < NA_STAT_SLOTS; i++)
        frees += __atomic_load_n(i < 0 ? &a->shared_slot.frees : &a->slots[i].frees, __ATOMIC_ACQUIRE);
    for (int i = -1; i < NA_STAT_SLOTS; i++)
        mallocs += __atomic_load_n(i < 0 ? &a->shared_slot.mallocs : &a->slots[i].mallocs,
                                   __ATOMIC_ACQUIRE);
    frees += __atomic_load_n(&a->forgotten, __ATOMIC_RELAXED);
    return mallocs > frees ? mallocs - frees : 0;
}

size_t na_blocks_cached(const nalloc_arena *a)
{
    uint64_t epoch = __atomic_load_n(&a->epoch, __ATOMIC_RELAXED);
    size_t cached = 0;
    for (int i = 0; i < NA_STAT_SLOTS; i++) {
        const na_chunk *c = &a->slots[i].blocks;
        size_t end = na_atomic_load((size_t *)&c->end);
        size_t begin = na_atomic_load((size_t *)&c->begin);
        size_t cursor = na_atomic_load((size_t *)&c->cursor);
        if (end == 0 || __atomic_load_n(&c->epoch, __ATOMIC_RELAXED) != epoch || cursor > end)
            continue;
        /* A chunk with no live block could go back whole, its header included. */
        size_t own = na_atomic_load((size_t *)&c->own);
        const na_chunk_header *ch = chunk_at(a, begin);
        bool empty = own == __atomic_load_n(&ch->remote, __ATOMIC_RELAXED);
        cached += end - cursor + (empty ? begin + NA_CHUNK_HEADER - ch->below : 0);
    }
    return cached;
}

void na_blocks_boundary(nalloc_arena *a, size_t target)
{
    /* Only reached with no block live: every chunk of the ending epoch is empty. Those below
     * the new offset are free stretches now; the rest went with the offset. */
    uint64_t epoch = __atomic_load_n(&a->epoch, __ATOMIC_RELAXED);
    na_atomic_store(&a->freed_bytes, 0); /* every block marked freed is in a retired chunk */
    for (int i = -1; target != 0 && i < NA_STAT_SLOTS; i++) {
        na_chunk *c = i < 0 ? &a->shared_slot.blocks : &a->slots[i].blocks;
        size_t begin = na_atomic_load(&c->begin), end = na_atomic_load(&c->end);
        if (end == 0 || c->epoch != epoch || begin >= target)
            continue;
        size_t below = chunk_at(a, begin)->below;
        chunk_untrack(a, begin, na_atomic_load(&c->top));
        na_stretch_free(a, below, end < target ? end : target);
    }
}

void na_blocks_thread_exit(nalloc_arena *a, na_stat_slot *s)
{
    na_chunk *c = &s->blocks;
    if (chunk_current(a, c))
        chunk_abandon(a, c);
    na_atomic_store(&c->end, 0);
    na_atomic_store(&c->next, 0);
}

bool na_blocks_doom_supported(void)
{
    return na_prim_membarrier_ready() == 0;
}

nalloc_status na_blocks_doom(nalloc_arena *a)
{
    /* The heavy side of an asymmetric fence: after the barrier, every thread's count of a free
     * is visible to us, or that thread sees the arena doomed (na_blocks_freed). */
    if (na_prim_membarrier_ready() != 0)
        return NALLOC_ERR_UNSUPPORTED;
    __atomic_store_n(&a->magic, NA_MAGIC_DOOMED, __ATOMIC_SEQ_CST);
    (void)na_prim_membarrier(); /* ready: it cannot fail now */
    return NALLOC_OK;
}
