/* nalloc/cuda.h - the CUDA host API of nalloc (C, usable from C++ and CUDA).
 *
 * Present when nalloc was built with its CUDA parts (nalloc/config.h: NALLOC_HAVE_CUDA == 1).
 * Device and pinned arenas are ordinary arenas: nalloc_arena_create with NALLOC_MEMORY_DEVICE or
 * NALLOC_MEMORY_PINNED, then the whole nalloc.h API. This header adds what only CUDA needs.
 *
 * Without a driver or a device every entry point returns NALLOC_ERR_NO_DEVICE (or NULL with
 * nalloc_last_error() == NALLOC_ERR_NO_DEVICE); nothing crashes, and host arenas are unaffected.
 * A failing CUDA call gives NALLOC_ERR_CUDA, with the CUDA error's text in
 * nalloc_cuda_error_string().
 */
#ifndef NALLOC_CUDA_H
#define NALLOC_CUDA_H

#include "nalloc/nalloc.h"

#include <cuda_runtime_api.h>

#ifdef __cplusplus
extern "C" {
#endif

/* NALLOC_OK when a CUDA driver and at least one device are usable, NALLOC_ERR_NO_DEVICE
 * otherwise. Probed once per process. */
NALLOC_API nalloc_status nalloc_cuda_available(void);

/* The text of the last CUDA error nalloc saw on this thread ("cudaMalloc: out of memory
 * (cudaErrorMemoryAllocation)"), or "" if none. Valid until the next nalloc call on this thread. */
NALLOC_API const char *nalloc_cuda_error_string(void);

/* nalloc_wipe in stream order: zero everything the arena handed out since the last wipe, then
 * reset. For a device arena the memset kernel is enqueued on `stream` and this returns without
 * waiting; the caller must not let any kernel or copy touch the arena's old blocks after it in
 * stream order, and must not reuse the arena from another stream before the wipe completes. For
 * host and pinned arenas the wipe is synchronous and `stream` is ignored. */
NALLOC_API nalloc_status nalloc_wipe_async(nalloc_arena *arena, cudaStream_t stream);

#ifdef __cplusplus
}
#endif

#endif /* NALLOC_CUDA_H */
