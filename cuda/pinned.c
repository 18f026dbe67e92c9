/* cuda/pinned.c - PLACEHOLDER until NALLOC_MEMORY_PINNED (issue 4) lands: creation reports
 * NALLOC_ERR_NO_DEVICE without a driver and NALLOC_ERR_UNSUPPORTED with one. Not a finished
 * backing; replace this file. */
#include "cuda_internal.h"

static nalloc_status not_yet(nalloc_arena *a)
{
    (void)a;
    nalloc_status st = na_cuda_ready();
    return st != NALLOC_OK ? st : NALLOC_ERR_UNSUPPORTED;
}

static void nothing(nalloc_arena *a)
{
    (void)a;
}

static nalloc_status no_zero(nalloc_arena *a, size_t offset, size_t length, void *stream)
{
    (void)a;
    (void)offset;
    (void)length;
    (void)stream;
    return NALLOC_ERR_UNSUPPORTED;
}

const na_backing na_backing_pinned = {
    .name = "pinned (placeholder)",
    .create = not_yet,
    .destroy = nothing,
    .zero = no_zero,
};
