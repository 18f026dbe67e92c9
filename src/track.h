/* src/track.h - the contract between arena code and the memory checkers (track.c).
 *
 * Arena code reports every transition of its memory here: handed out, resized, released, wiped.
 * track.c tells AddressSanitizer or Valgrind Memcheck (its top comment says how); in a build
 * with neither, every function below is an empty inline and costs nothing. In a build with one,
 * the inline part only tests whether a checker watches the arena (a->track_checkers), so the
 * allocation paths of an arena nobody watches stay a load and a branch longer.
 *
 * The contract arena code relies on (host-accessible arenas only; device arenas are described to
 * compute-sanitizer through NVTX instead):
 *   na_track_create(a)            after the backing reserved the memory: all of it is free space.
 *   na_track_extent(a, size, &n)  n: bytes to reserve for a block of `size` (redzone included).
 *   na_track_align(align)         the alignment to reserve at (at least one granule under ASan).
 *   na_track_alloc(a, ptr, size, extent)  [ptr, ptr + size) was handed out, extent bytes reserved.
 *   na_track_resize(a, ptr, old_size, new_size)  the most recent block changes size: called
 *                                 before the offset moves down (so nobody else can be handed the
 *                                 bytes while they are still unpoisoned) and after it moves up.
 *                                 Sizes are the caller's: under ASan the result is exact even for
 *                                 a wrong old_size that rounds to the same extent; Memcheck then
 *                                 keeps its own idea of the chunk's bytes.
 *   na_track_resize_undo(a, ptr, old_size, new_size)  a shrink announced by na_track_resize did
 *                                 not happen after all: the block is [ptr, ptr + old_size) again.
 *   na_track_zeroed(a, ptr, size) the library zeroed [ptr, ptr + size) of a live block.
 *   na_track_release(a, from, to) offsets [from, to) went back to free space (control lock held,
 *                                 or the caller owns those bytes).
 *   na_track_wipe_begin(a, end)   offsets [0, end) are about to be zeroed by the library itself.
 *   na_track_destroy(a)           the memory is about to be released.
 */
#ifndef NALLOC_TRACK_H
#define NALLOC_TRACK_H

#include "internal.h"

#if defined(__SANITIZE_ADDRESS__)
#define NA_TRACK_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define NA_TRACK_ASAN 1
#endif
#endif
#ifndef NA_TRACK_ASAN
#define NA_TRACK_ASAN 0
#endif

#if defined(NALLOC_VALGRIND) && NALLOC_VALGRIND
#define NA_TRACK_VALGRIND 1
#include <valgrind/memcheck.h>
#else
#define NA_TRACK_VALGRIND 0
#endif

#define NA_TRACK (NA_TRACK_ASAN || NA_TRACK_VALGRIND)

#if NA_TRACK_ASAN
#include <sanitizer/asan_interface.h>
#define NA_TRACK_GRANULE ((size_t)8)      /* bytes per ASan shadow byte (its default scale) */
#define NA_TRACK_STEP ((size_t)4 << 20)   /* bytes the poisoned frontier grows by: 512 KiB of shadow */
#define NA_TRACK_LIMIT ((size_t)4 << 30)  /* bytes of each arena that are watched: 512 MiB of shadow */
#else
#define NA_TRACK_GRANULE ((size_t)1)
#endif

/* *extent = bytes to reserve for a block of `size`: the size, or with a redzone the size plus the
 * redzone rounded up to a granule. False if that wraps (the request cannot fit anyway). */
static inline bool na_track_extent(const nalloc_arena *a, size_t size, size_t *extent)
{
#if NA_TRACK
    size_t redzone = a->track_redzone;
    if (na_unlikely(redzone != 0) && size != 0)
        return size <= SIZE_MAX - redzone && na_round_up(size + redzone, NA_TRACK_GRANULE, extent);
#else
    (void)a;
#endif
    *extent = size;
    return true;
}

/* The alignment to reserve at: `align` (a power of two), raised to a whole granule under ASan. */
static inline size_t na_track_align(size_t align)
{
#if NA_TRACK_ASAN
    return align < NA_TRACK_GRANULE ? NA_TRACK_GRANULE : align;
#else
    return align;
#endif
}

#if NA_TRACK

/* track.c; the _watched functions only while a checker watches the arena. */
void na_track_create(nalloc_arena *a);
void na_track_alloc_watched(nalloc_arena *a, void *ptr, size_t size, size_t extent);
void na_track_resize_watched(nalloc_arena *a, void *ptr, size_t old_size, size_t new_size);
void na_track_resize_undo_watched(nalloc_arena *a, void *ptr, size_t old_size, size_t new_size);
void na_track_zeroed_watched(nalloc_arena *a, void *ptr, size_t size);
void na_track_release_watched(nalloc_arena *a, size_t from, size_t to);
void na_track_wipe_begin_watched(nalloc_arena *a, size_t end);
void na_track_destroy_watched(nalloc_arena *a);

static inline void na_track_alloc(nalloc_arena *a, void *ptr, size_t size, size_t extent)
{
    if (na_unlikely(a->track_checkers != 0))
        na_track_alloc_watched(a, ptr, size, extent);
}

static inline void na_track_resize(nalloc_arena *a, void *ptr, size_t old_size, size_t new_size)
{
    if (na_unlikely(a->track_checkers != 0))
        na_track_resize_watched(a, ptr, old_size, new_size);
}

static inline void na_track_resize_undo(nalloc_arena *a, void *ptr, size_t old_size,
                                        size_t new_size)
{
    if (na_unlikely(a->track_checkers != 0) && old_size > new_size)
        na_track_resize_undo_watched(a, ptr, old_size, new_size);
}

static inline void na_track_zeroed(nalloc_arena *a, void *ptr, size_t size)
{
#if NA_TRACK_VALGRIND
    if (a->track_checkers & NALLOC_CHECKER_VALGRIND)
        na_track_zeroed_watched(a, ptr, size);
#else
    (void)a;
    (void)ptr;
    (void)size;
#endif
}

static inline void na_track_release(nalloc_arena *a, size_t from, size_t to)
{
    if (na_unlikely(a->track_checkers != 0) && to > from)
        na_track_release_watched(a, from, to);
}

static inline void na_track_wipe_begin(nalloc_arena *a, size_t end)
{
    if (na_unlikely(a->track_checkers != 0) && end != 0)
        na_track_wipe_begin_watched(a, end);
}

static inline void na_track_destroy(nalloc_arena *a)
{
    if (a->track_checkers != 0)
        na_track_destroy_watched(a);
}

#else /* !NA_TRACK: nothing to tell */

static inline void na_track_create(nalloc_arena *a)
{
    (void)a;
}

static inline void na_track_alloc(nalloc_arena *a, void *ptr, size_t size, size_t extent)
{
    (void)a;
    (void)ptr;
    (void)size;
    (void)extent;
}

static inline void na_track_resize(nalloc_arena *a, void *ptr, size_t old_size, size_t new_size)
{
    (void)a;
    (void)ptr;
    (void)old_size;
    (void)new_size;
}

static inline void na_track_resize_undo(nalloc_arena *a, void *ptr, size_t old_size,
                                        size_t new_size)
{
    (void)a;
    (void)ptr;
    (void)old_size;
    (void)new_size;
}

static inline void na_track_zeroed(nalloc_arena *a, void *ptr, size_t size)
{
    (void)a;
    (void)ptr;
    (void)size;
}

static inline void na_track_release(nalloc_arena *a, size_t from, size_t to)
{
    (void)a;
    (void)from;
    (void)to;
}

static inline void na_track_wipe_begin(nalloc_arena *a, size_t end)
{
    (void)a;
    (void)end;
}

static inline void na_track_destroy(nalloc_arena *a)
{
    (void)a;
}

#endif /* NA_TRACK */

#endif /* NALLOC_TRACK_H */
