/* cuda/wipe_async.c - nalloc_wipe_async: an arena's wipe in stream order (contract in
 * nalloc/cuda.h).
 *
 * The wipe itself is arena.c's, the same as nalloc_wipe's: every byte handed out since the last
 * wipe is zeroed and the arena reset, under its control lock. Only the stream differs: the
 * backings take it as an opaque pointer (NULL meaning "synchronous"), so a device arena launches
 * its memset kernel on it and a pinned arena waits for it before zeroing on the host
 * (cuda/device.c, cuda/pinned.c). This file only turns the caller's cudaStream_t into that
 * pointer, which is why it sits on top of the arena code rather than beside the backings.
 */
#include "cuda_internal.h"

#include "nalloc/cuda.h"

nalloc_status nalloc_wipe_async(nalloc_arena *arena, cudaStream_t stream)
{
    static const char call[] = "nalloc_wipe_async";
    if (na_arena_check(arena) != NALLOC_OK)
        return na_arena_refuse(arena, call);
    na_cause_clear();
    /* NULL means "synchronous" to the backings; stream 0 is the legacy default stream. */
    nalloc_status st =
        na_arena_wipe(arena, stream != NULL ? (void *)stream : (void *)cudaStreamLegacy);
    return st == NALLOC_OK ? st
                           : na_fail_cause(st, call, "arena \"%s\"", na_arena_memory(arena)->name);
}
