/* cuda/cuda_internal.h - what the CUDA layer's files share.
 *
 * The CUDA layer is thin and C-callable: backings for pinned and device arenas, the wipe and
 * window kernels, NVTX annotations. Every CUDA runtime call's result goes through na_cuda_status,
 * which turns "there is no driver or no device" into NALLOC_ERR_NO_DEVICE, anything else into
 * NALLOC_ERR_CUDA, and notes the CUDA error's name and text as the cause (status.c): the public
 * call that fails because of it carries the text in its message and nalloc_cuda_error_string().
 */
#ifndef NALLOC_CUDA_INTERNAL_H
#define NALLOC_CUDA_INTERNAL_H

#include "internal.h"

#include <cuda_runtime_api.h>

/* NALLOC_OK for cudaSuccess; otherwise the matching status, with the CUDA error's text noted as
 * the cause (na_cause_cuda; nothing is recorded: the public call decides). `what` names the
 * call, for the text. The sticky CUDA error state is cleared (cudaGetLastError) so that one
 * failure does not poison later calls. */
nalloc_status na_cuda_status(cudaError_t err, const char *what);

/* NALLOC_OK when a driver and at least one device are usable (checked once, then cached);
 * NALLOC_ERR_NO_DEVICE otherwise, with the probe's CUDA error noted as the cause. Cheap after the
 * first call. */
nalloc_status na_cuda_ready(void);

/* Make `device` current for the calls that follow, keeping the caller's current device in
 * *previous; na_cuda_leave(device, previous) restores it. Arenas on one device stay usable from a
 * thread that works on another. */
static inline nalloc_status na_cuda_enter(int device, int *previous)
{
    nalloc_status st = na_cuda_status(cudaGetDevice(previous), "cudaGetDevice");
    if (st == NALLOC_OK && *previous != device)
        st = na_cuda_status(cudaSetDevice(device), "cudaSetDevice");
    return st;
}

static inline void na_cuda_leave(int device, int previous)
{
    /* Best effort: a failure is not left in the runtime's error state for the caller's next
     * cudaGetLastError, since the call that switched devices reports its own outcome. */
    if (previous != device && cudaSetDevice(previous) != cudaSuccess)
        (void)cudaGetLastError();
}

/* NVTX memory annotations for device arenas (cuda/nvtx.c when NALLOC_HAVE_NVTX; no-ops and NULL
 * hooks otherwise). The device backing registers its block as a heap at create and unregisters it
 * at destroy, and installs NA_NVTX_ON_ALLOC / NA_NVTX_ON_RELEASE as its on_alloc / on_release
 * hooks, so every host-side sub-allocation becomes an NVTX region and every rollback, reset or
 * wipe resets the regions above the new offset. In-kernel windows register as one region. */
#if NALLOC_HAVE_NVTX
void na_nvtx_heap_register(nalloc_arena *a);
void na_nvtx_heap_unregister(nalloc_arena *a);
void na_nvtx_region_alloc(nalloc_arena *a, size_t offset, size_t size);
void na_nvtx_heap_release(nalloc_arena *a, size_t offset);
void na_nvtx_window_register(nalloc_arena *a, const void *base, size_t size);
#define NA_NVTX_ON_ALLOC na_nvtx_region_alloc
#define NA_NVTX_ON_RELEASE na_nvtx_heap_release
#else
static inline void na_nvtx_heap_register(nalloc_arena *a) { (void)a; }
static inline void na_nvtx_heap_unregister(nalloc_arena *a) { (void)a; }
static inline void na_nvtx_window_register(nalloc_arena *a, const void *base, size_t size)
{
    (void)a;
    (void)base;
    (void)size;
}
#define NA_NVTX_ON_ALLOC NULL
#define NA_NVTX_ON_RELEASE NULL
#endif

#endif /* NALLOC_CUDA_INTERNAL_H */
