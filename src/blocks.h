/* src/blocks.h - the malloc family's block and chunk headers, and its fast paths (blocks.c has
 * the design and the rest). Included by blocks.c and route.c only. */
#ifndef NALLOC_BLOCKS_H
#define NALLOC_BLOCKS_H

#include "internal.h"
#include "track.h"

#define NA_BLOCK_HEADER ((size_t)32) /* bytes of header in front of every block */
#define NA_CHUNK_HEADER ((size_t)64) /* bytes of header at the start of every chunk */
#define NA_BLOCK_FREED ((size_t)1 << 63)  /* in na_block.size */
#define NA_BLOCK_SHARED (~(size_t)0)      /* na_block.chunk of a block outside any chunk */
#define NA_BLOCK_MIN_ALIGN ((size_t)16)   /* what malloc promises (max_align_t) */

#define NA_BLOCKS_FIRST ((size_t)64 << 10) /* bytes of a thread's first chunk */
#define NA_BLOCKS_MAX ((size_t)4 << 20)    /* bytes: chunks grow to this */
#define NA_BLOCKS_BYPASS (NA_BLOCKS_MAX / 4) /* larger blocks take the offset directly */

#define NA_CHUNK_OWNED ((size_t)0)
#define NA_CHUNK_ABANDONED ((size_t)1 << 63) /* | the blocks the owner left in it */

/* In front of every block (header offset = block offset - NA_BLOCK_HEADER). */
typedef struct na_block {
    size_t size;    /* the caller's bytes, | NA_BLOCK_FREED once freed below the top (atomic) */
    size_t link;    /* in a chunk: header offset of the block allocated before it in the chunk,
                       + 1 (0: the chunk's first); shared: offset where its reservation began */
    size_t chunk;   /* in a chunk: offset of the chunk's header; NA_BLOCK_SHARED otherwise */
    uint64_t check; /* na_check(arena, header offset, 1): this arena wrote this header */
} na_block;

/* At the start of every chunk. */
typedef struct na_chunk_header {
    size_t below;   /* the arena's offset before the chunk was taken: where it goes back to */
    size_t end;     /* offset just past the chunk (grows while the owner extends it in place) */
    size_t remote;  /* blocks of the chunk freed other than by its owner's own frees, plus
                       NA_CHUNK_ABANDONED less the blocks the owner left once it left (atomic;
                       blocks.c, chunk_abandon) */
    size_t state;   /* NA_CHUNK_OWNED, or NA_CHUNK_ABANDONED | the blocks the owner left: for
                       debuggers only (atomic) */
    size_t top;     /* the owner's top when it abandoned the chunk (na_chunk.top) */
    uint64_t check; /* na_check(arena, chunk offset, 2) */
    size_t spare[2];
} na_chunk_header;

_Static_assert(sizeof(na_block) == NA_BLOCK_HEADER, "block header size");
_Static_assert(sizeof(na_chunk_header) == NA_CHUNK_HEADER, "chunk header size");

/* The check word of a header this arena wrote at `offset` (what: 1 for a block, 2 for a chunk).
 * It tells a header from bytes that merely sit where one would (an interior pointer, a
 * nalloc_alloc block passed to free, a header already popped), not an attacker's forgery. */
static inline uint64_t na_check(const nalloc_arena *a, size_t offset, unsigned what)
{
    return ((uint64_t)offset * UINT64_C(0x9e3779b97f4a7c15) + what) ^ a->check_salt;
}

static inline na_block *header_at(const nalloc_arena *a, size_t offset)
{
    return (na_block *)(a->bump.base + offset);
}

static inline na_chunk_header *chunk_at(const nalloc_arena *a, size_t offset)
{
    return (na_chunk_header *)(a->bump.base + offset);
}

/* Bytes reserved for a block of `size`: its header, the size, and a redzone in checker builds. */
static inline bool block_extent(const nalloc_arena *a, size_t size, size_t *extent)
{
    return size <= SIZE_MAX - NA_BLOCK_HEADER && na_track_extent(a, NA_BLOCK_HEADER + size, extent);
}

/* Is `c` a chunk of the current epoch? */
static inline bool chunk_current(const nalloc_arena *a, const na_chunk *c)
{
    return na_atomic_load((size_t *)&c->end) != 0 &&
           __atomic_load_n(&c->epoch, __ATOMIC_RELAXED) == __atomic_load_n(&a->epoch, __ATOMIC_RELAXED);
}

/* The block alignment for a request: `align`, or the arena's policy for 0, at least 16. */
static inline size_t block_align(const nalloc_arena *a, size_t size, size_t align)
{
    if (align == 0)
        align = size >= a->large_threshold ? a->large_align : a->default_align;
    return na_track_align(align < NA_BLOCK_MIN_ALIGN ? NA_BLOCK_MIN_ALIGN : align);
}

/* After a free was counted in the freeing thread's slot (na_block_free, na_block_free_fast): the
 * last free of a doomed arena's blocks destroys it (nalloc_arena_destroy_deferred). */
static inline void na_blocks_freed(nalloc_arena *a)
{
    /* Between the count and this load only the compiler must keep order: the membarrier in
     * nalloc_arena_destroy_deferred is the fence for both sides. */
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    if (na_unlikely(__atomic_load_n(&a->magic, __ATOMIC_RELAXED) == NA_MAGIC_DOOMED))
        na_arena_doomed_free(a);
}

/* ---------------------------------------------------------------------------------------------
 * The fast paths, inlined into the malloc family (route.c): a block in the calling thread's
 * current chunk, and the free of that thread's newest block. Everything else (a new chunk, a
 * bypass, another thread's block, a block below the top) takes the full paths in blocks.c.
 * ------------------------------------------------------------------------------------------- */

/* Push a block of `size` bytes (`extent` with its header and any redzone), its header at `hoff`,
 * on the calling thread's chunk `c`, whose cursor moves to `last`, the block's end: plain stores,
 * the owner's alone. Both allocation paths end here (na_block_alloc_fast, na_block_alloc). */
static inline void na_chunk_push(nalloc_arena *a, na_chunk *c, size_t hoff, size_t size,
                                 size_t extent, size_t last)
{
    na_block *h = header_at(a, hoff);
    na_track_alloc(a, h, NA_BLOCK_HEADER + size, extent);
    h->link = na_atomic_load(&c->top);
    h->chunk = na_atomic_load(&c->begin);
    h->check = na_check(a, hoff, 1);
    __atomic_store_n(&h->size, size, __ATOMIC_RELAXED);
    na_atomic_store(&c->top, hoff + 1);
    na_atomic_store(&c->cursor, last);
    na_atomic_store(&c->own, na_atomic_load(&c->own) + 1);
}

/* A block of `size` bytes at `align` (0: policy) from the chunk of slot `s` (the calling thread's
 * in `a`), or NULL: use na_block_alloc. The arena is alive and host-accessible. The slow path
 * catches everything unusual: no chunk (end 0, so nothing fits), the shared slot (it never holds
 * a chunk), a retired chunk, a block too big for a chunk. Blocks other threads freed are popped
 * by the slow path (chunk_reclaim) when the chunk is full, and below the top by the owner's own
 * frees: not looked for here, where it would cost a read of the chunk header's line, which those
 * threads write. */
static inline void *na_block_alloc_fast(nalloc_arena *a, na_stat_slot *s, size_t size, size_t align)
{
    na_chunk *c = &s->blocks;
    size_t end = na_atomic_load(&c->end), cursor = na_atomic_load(&c->cursor), extent;
    if (align == 0 && na_likely(size < a->large_threshold))
        align = na_track_align(a->block_align);
    else
        align = block_align(a, size, align);
    if (na_unlikely(!block_extent(a, size, &extent) || extent > NA_BLOCKS_BYPASS ||
                    __atomic_load_n(&c->epoch, __ATOMIC_RELAXED) !=
                        __atomic_load_n(&a->epoch, __ATOMIC_RELAXED)))
        return NULL;
    /* The block's first byte: aligned, with room for its header between the cursor and it. */
    uintptr_t user = (a->bump.base + cursor + NA_BLOCK_HEADER + align - 1) & ~(uintptr_t)(align - 1);
    size_t first = (size_t)(user - a->bump.base);
    if (na_unlikely(first > end || end - first < extent - NA_BLOCK_HEADER))
        return NULL;
    na_chunk_push(a, c, first - NA_BLOCK_HEADER, size, extent, first + extent - NA_BLOCK_HEADER);
    na_slot_add(&s->mallocs, 1, false);
    return (void *)user;
}

/* Free `ptr` if it is the calling thread's newest block in its current chunk, with no freed
 * block below it to pop and nothing waiting for the chunk; false (nothing done): use
 * na_block_free. The chunk's top names the newest block's header, so a pointer that matches it is
 * that block (the check word still catches a header the caller overwrote); any other pointer, a
 * system one included, fails the first comparison. */
static inline bool na_block_free_fast(nalloc_arena *a, na_stat_slot *s, void *ptr)
{
    na_chunk *c = &s->blocks;
    size_t hoff = (size_t)((uintptr_t)ptr - a->bump.base) - NA_BLOCK_HEADER;
    size_t top = na_atomic_load(&c->top);
    if (na_likely(top != hoff + 1) || na_unlikely(top == 0)) /* 0: no block (ptr - base was 31) */
        return false;
    na_block *h = header_at(a, hoff);
    if (na_unlikely(h->check != na_check(a, hoff, 1) || na_atomic_load(&c->end) == 0 ||
                    __atomic_load_n(&c->epoch, __ATOMIC_RELAXED) !=
                        __atomic_load_n(&a->epoch, __ATOMIC_RELAXED)))
        return false;
    size_t size = __atomic_load_n(&h->size, __ATOMIC_RELAXED), link = h->link, below;
    if (link == 0) {
        below = h->chunk + NA_CHUNK_HEADER;
        if (__atomic_load_n(&a->stretch_count, __ATOMIC_RELAXED) > 0)
            return false; /* the chunk empties: it may have to go back whole */
    } else {
        const na_block *prev = header_at(a, link - 1);
        size_t prev_size = __atomic_load_n(&prev->size, __ATOMIC_ACQUIRE), prev_extent;
        if (na_unlikely((prev_size & NA_BLOCK_FREED) ||
                        !block_extent(a, prev_size, &prev_extent)))
            return false; /* a freed block to pop after it */
        below = link - 1 + prev_extent;
    }
    if (na_unlikely(size & NA_BLOCK_FREED))
        return false;
    h->check = 0;
    na_track_resize(a, h, NA_BLOCK_HEADER + size, 0);
    na_atomic_store(&c->own, na_atomic_load(&c->own) - 1);
    na_atomic_store(&c->cursor, below);
    na_atomic_store(&c->top, link);
    na_slot_add_release(&s->frees, 1, false);
    na_blocks_freed(a);
    return true;
}

#endif /* NALLOC_BLOCKS_H */
