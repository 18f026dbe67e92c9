/* src/track.c - telling memory checkers what an arena hands out.
 *
 * An arena hands out memory that malloc never sees, so AddressSanitizer and Valgrind cannot tell
 * a block from the free space after it, or a live block from one released by a reset. This file
 * is where those transitions are reported (mimalloc's track.h and LLVM's BumpPtrAllocator do the
 * same); track.h states the contract arena code relies on and keeps, inline, the test that skips
 * everything here while no checker watches an arena. In a build without a checker none of this is
 * compiled and the calls in track.h are empty, so release builds pay nothing:
 *
 *  - AddressSanitizer (detected from the compiler: -fsanitize=address): free arena space is
 *    poisoned, each block unpoisoned when handed out, and poisoned again when a rollback, reset,
 *    wipe, free_last or shrinking resize_last gives it back. ASan's shadow has one byte per 8-byte
 *    granule and can only say "the first k bytes are addressable", so two blocks must never share
 *    a granule: under ASan every block starts on a granule (alignment at least 8). That also keeps
 *    threads that allocate at once from writing the same shadow byte. Shadow costs one byte per
 *    granule, so a big arena is not poisoned at creation (a 1 TiB reservation has 128 GiB of
 *    shadow): a poisoned "frontier" grows in steps of NA_TRACK_STEP just ahead of the blocks,
 *    under its own lock, before any block beyond it is unpoisoned. Shadow above the frontier
 *    was never written, so it reads as addressable and a block there needs no unpoisoning: the
 *    cost follows what is handed out, not the capacity. Only the first NA_TRACK_LIMIT bytes of an
 *    arena are watched, which bounds the shadow written per arena (512 MiB) even for a huge block
 *    that is never touched; stray reads more than a step past everything handed out, or beyond
 *    the limit, are missed. ASan keeps a range's poison after munmap, so destroy unpoisons what
 *    was poisoned.
 *
 *  - Valgrind (CMake option NALLOC_VALGRIND, Valgrind's client-request headers): while the process
 *    runs under Valgrind, the arena is a Memcheck mempool anchored at its header: each block a
 *    MEMPOOL_ALLOC chunk (Memcheck then reports "N bytes after a block of size M alloc'd" with
 *    the allocation's stack), rollback and reset trim the pool, everything else is NOACCESS.
 *    Outside Valgrind the client requests cost a few instructions and the layout is unchanged.
 *
 *  - Redzones (config.redzone): while a checker watches the arena, every block is followed by at
 *    least that many bytes that stay poisoned (rounded so the next block starts on a fresh
 *    granule), so an overflow into the very next block is reported too. Without a checker the
 *    setting is ignored: an unpoisoned gap catches nothing, it would only hide corruption and waste
 *    memory, and the layout then stays identical to a build that never asked for one.
 *
 * Device arenas are described to compute-sanitizer through NVTX instead (cuda/nvtx.c).
 */
#include "internal.h"
#include "track.h"

#if NA_TRACK

static char *base_of(const nalloc_arena *a)
{
    return (char *)a->bump.base;
}

/* Usable bytes mapped from the base: the capacity, or the whole page-rounded middle of a host
 * mapping, whose tail past the capacity is poisoned too. */
static size_t mapped_of(const nalloc_arena *a)
{
    const na_memory *m = &a->memory;
    size_t capacity = a->bump.capacity;
    if (m->map_start != NULL && (uintptr_t)m->map_start + m->guard_size == a->bump.base &&
        m->reserved / 2 >= m->guard_size && m->reserved - 2 * m->guard_size >= capacity)
        return m->reserved - 2 * m->guard_size;
    return capacity;
}

#if NA_TRACK_ASAN

static size_t min_of(size_t x, size_t y)
{
    return x < y ? x : y;
}

/* Move the frontier past `end` (so the byte after a block is poisoned too) for bytes [begin,
 * begin + size) about to be handed out, whose redzone ends at `end`. Free space between the old
 * and the new frontier is poisoned, the caller's own bytes are skipped (their shadow above the
 * old frontier was never written). Returns the offset below which the caller must still unpoison
 * its bytes. Rare: once per NA_TRACK_STEP. */
static __attribute__((noinline, cold)) size_t extend(nalloc_arena *a, size_t begin, size_t size,
                                                     size_t end)
{
    size_t limit = begin + size; /* another thread moved the frontier: it poisoned our bytes */
    size_t cap = min_of(a->bump.capacity, NA_TRACK_LIMIT);
    pthread_mutex_lock(&a->track_lock);
    size_t frontier = a->track_frontier;
    if (end >= frontier && frontier < cap) {
        size_t to = end - end % NA_TRACK_STEP + NA_TRACK_STEP;
        if (to > cap || to < end)
            to = cap;
        char *base = base_of(a);
        size_t tail = begin + size > frontier ? begin + size : frontier;
        if (tail < to) /* above the caller's bytes first, as in na_track_create */
            ASAN_POISON_MEMORY_REGION(base + tail, to - tail);
        size_t gap_end = min_of(to, begin > frontier ? begin : frontier);
        ASAN_POISON_MEMORY_REGION(base + frontier, gap_end - frontier);
        __atomic_store_n(&a->track_frontier, to, __ATOMIC_RELEASE);
        limit = begin > frontier ? begin : frontier;
    }
    pthread_mutex_unlock(&a->track_lock);
    return limit;
}

/* Bytes [begin, begin + size), with a redzone up to `end`, are being handed out: unpoison what
 * of them may hold poison. Blocks past the watched limit are left alone. */
static void unpoison_block(nalloc_arena *a, size_t begin, size_t size, size_t end)
{
    if (na_unlikely(end > NA_TRACK_LIMIT)) {
        if (begin >= NA_TRACK_LIMIT)
            return;
        end = NA_TRACK_LIMIT;
        size = min_of(size, end - begin);
    }
    size_t limit = begin + size, frontier = __atomic_load_n(&a->track_frontier, __ATOMIC_ACQUIRE);
    if (na_unlikely(end >= frontier) && frontier < min_of(a->bump.capacity, NA_TRACK_LIMIT))
        limit = extend(a, begin, size, end);
    if (limit > begin)
        ASAN_UNPOISON_MEMORY_REGION(base_of(a) + begin, min_of(limit - begin, size));
}

/* Poison offsets [from, to) below the frontier: above it the shadow must stay unwritten. */
static void poison(nalloc_arena *a, size_t from, size_t to)
{
    to = min_of(to, __atomic_load_n(&a->track_frontier, __ATOMIC_ACQUIRE));
    if (from < to)
        ASAN_POISON_MEMORY_REGION(base_of(a) + from, to - from);
}

#endif /* NA_TRACK_ASAN */

void na_track_create(nalloc_arena *a)
{
    if (!a->memory.backing->host_accessible)
        return;
    unsigned checkers = 0;
#if NA_TRACK_ASAN
    checkers |= NALLOC_CHECKER_ASAN;
#endif
#if NA_TRACK_VALGRIND
    if (RUNNING_ON_VALGRIND)
        checkers |= NALLOC_CHECKER_VALGRIND;
#endif
    a->track_checkers = checkers;
    if (checkers == 0)
        return;
    a->track_redzone = a->config.redzone;
    char *base = base_of(a);
    size_t capacity = a->bump.capacity, mapped = mapped_of(a);
#if NA_TRACK_ASAN
    /* The tail first: a granule shared by the last usable bytes and the tail can only be marked
     * "first k bytes addressable", so poisoning the head first would leave it addressable. */
    size_t first = min_of(capacity, NA_TRACK_STEP);
    ASAN_POISON_MEMORY_REGION(base + capacity, mapped - capacity); /* under a page */
    ASAN_POISON_MEMORY_REGION(base, first);
    a->track_frontier = first;
#endif
#if NA_TRACK_VALGRIND
    if (checkers & NALLOC_CHECKER_VALGRIND) {
        VALGRIND_CREATE_MEMPOOL(a, 0, 0); /* no redzone of Memcheck's own: ours are NOACCESS */
        VALGRIND_MAKE_MEM_NOACCESS(base, mapped);
    }
#endif
    (void)base;
    (void)capacity;
    (void)mapped;
}

void na_track_alloc_watched(nalloc_arena *a, void *ptr, size_t size, size_t extent)
{
    if (extent > size)
        __atomic_fetch_add(&a->track_redzone_bytes, extent - size, __ATOMIC_RELAXED);
#if NA_TRACK_ASAN
    size_t begin = (size_t)((char *)ptr - base_of(a));
    unpoison_block(a, begin, size, begin + extent);
#endif
#if NA_TRACK_VALGRIND
    if (a->track_checkers & NALLOC_CHECKER_VALGRIND)
        VALGRIND_MEMPOOL_ALLOC(a, ptr, size);
#endif
    (void)ptr;
}

void na_track_resize_watched(nalloc_arena *a, void *ptr, size_t old_size, size_t new_size)
{
    char *p = ptr;
    size_t begin = (size_t)(p - base_of(a));
#if NA_TRACK_ASAN
    /* The result does not depend on old_size being the true size (a wrong one that rounds to the
     * same extent is accepted): [p, p + new_size) addressable, the rest up to the extent not. */
    {
        size_t old_extent = old_size, new_extent = new_size; /* the caller checked both fit */
        (void)na_track_extent(a, old_size, &old_extent);
        (void)na_track_extent(a, new_size, &new_extent);
        size_t end = old_extent > new_extent ? old_extent : new_extent;
        poison(a, begin + new_size, begin + end); /* above first, then the block */
        if (new_size > 0)
            unpoison_block(a, begin, new_size, begin + new_extent);
    }
#endif
    if (old_size == new_size)
        return;
    if (new_size < old_size) {
        /* Up to the old extent: its redzone is poisoned already, and a wrong but accepted
         * old_size (one that rounds to the same extent) leaves nothing addressable behind. */
        size_t extent = old_size;
        (void)na_track_extent(a, old_size, &extent); /* the caller checked that it fits */
#if NA_TRACK_VALGRIND
        if (a->track_checkers & NALLOC_CHECKER_VALGRIND) {
            if (new_size == 0)
                VALGRIND_MEMPOOL_FREE(a, p);
            else
                VALGRIND_MEMPOOL_CHANGE(a, p, p, new_size);
            VALGRIND_MAKE_MEM_NOACCESS(p + new_size, extent - new_size);
        }
#endif
        (void)extent;
    } else {
#if NA_TRACK_VALGRIND
        if (a->track_checkers & NALLOC_CHECKER_VALGRIND) {
            if (old_size == 0) {
                VALGRIND_MEMPOOL_ALLOC(a, p, new_size);
            } else {
                VALGRIND_MEMPOOL_CHANGE(a, p, p, new_size);
                VALGRIND_MAKE_MEM_UNDEFINED(p + old_size, new_size - old_size);
            }
        }
#endif
    }
    (void)begin;
}

/* Only after a lost race, so Memcheck is told the restored bytes are defined: they hold the
 * caller's data, and a false "uninitialised" report would be worse than a missed one. */
void na_track_resize_undo_watched(nalloc_arena *a, void *ptr, size_t old_size, size_t new_size)
{
    char *p = ptr;
#if NA_TRACK_ASAN
    size_t begin = (size_t)(p - base_of(a));
    size_t to = min_of(begin + old_size, __atomic_load_n(&a->track_frontier, __ATOMIC_ACQUIRE));
    if (begin + new_size < to)
        ASAN_UNPOISON_MEMORY_REGION(p + new_size, to - (begin + new_size));
#endif
#if NA_TRACK_VALGRIND
    if (a->track_checkers & NALLOC_CHECKER_VALGRIND) {
        if (new_size == 0)
            VALGRIND_MEMPOOL_ALLOC(a, p, old_size);
        else
            VALGRIND_MEMPOOL_CHANGE(a, p, p, old_size);
        VALGRIND_MAKE_MEM_DEFINED(p + new_size, old_size - new_size);
    }
#endif
    (void)p;
    (void)a;
    (void)old_size;
    (void)new_size;
}

#if NA_TRACK_VALGRIND
void na_track_zeroed_watched(nalloc_arena *a, void *ptr, size_t size)
{
    (void)a;
    /* Fresh pages are zero without the library writing them, which Memcheck cannot know. */
    VALGRIND_MAKE_MEM_DEFINED(ptr, size);
}
#endif

void na_track_release_watched(nalloc_arena *a, size_t from, size_t to)
{
    char *base = base_of(a);
#if NA_TRACK_ASAN
    poison(a, from, to);
#endif
#if NA_TRACK_VALGRIND
    if (a->track_checkers & NALLOC_CHECKER_VALGRIND) {
        VALGRIND_MEMPOOL_TRIM(a, base, from); /* every chunk at or above `from` is freed */
        VALGRIND_MAKE_MEM_NOACCESS(base + from, to - from);
    }
#endif
    (void)base;
}

void na_track_wipe_begin_watched(nalloc_arena *a, size_t end)
{
#if NA_TRACK_ASAN
    ASAN_UNPOISON_MEMORY_REGION(base_of(a), min_of(end, a->track_frontier));
#endif
#if NA_TRACK_VALGRIND
    if (a->track_checkers & NALLOC_CHECKER_VALGRIND)
        VALGRIND_MAKE_MEM_UNDEFINED(base_of(a), end);
#endif
    (void)end;
}

void na_track_destroy_watched(nalloc_arena *a)
{
#if NA_TRACK_ASAN
    /* Leave no poison behind: whoever maps these addresses next would inherit it. */
    char *base = base_of(a);
    size_t capacity = a->bump.capacity;
    ASAN_UNPOISON_MEMORY_REGION(base, a->track_frontier);
    ASAN_UNPOISON_MEMORY_REGION(base + capacity, mapped_of(a) - capacity);
#endif
#if NA_TRACK_VALGRIND
    if (a->track_checkers & NALLOC_CHECKER_VALGRIND) {
        VALGRIND_DESTROY_MEMPOOL(a);
        /* As under ASan: a lane's memory goes back to its parent's block, which is allocated
         * and holds what the lane left there; a mapping about to be unmapped does not care. */
        VALGRIND_MAKE_MEM_DEFINED(base_of(a), mapped_of(a));
    }
#endif
    a->track_checkers = 0;
}

#else /* !NA_TRACK */

/* ISO C wants a translation unit to declare something. */
typedef int na_track_unused;

#endif /* NA_TRACK */
