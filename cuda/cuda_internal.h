/* cuda/cuda_internal.h - what the CUDA layer's files share.
 *
 * The CUDA layer is thin and C-callable: backings for pinned and device arenas, the wipe and
 * window kernels, NVTX annotations. Every CUDA runtime call's result goes through na_cuda_status,
 * which turns "there is no driver or no device" into NALLOC_ERR_NO_DEVICE, anything else into
 * NALLOC_ERR_CUDA, and notes the CUDA error's name and text as the cause (status.c): the public
 * call that fails because of it carries the text in its message and nalloc_cuda_error_string().
 *
 * The backings here (pinned.c, device.c) see an arena only through backing.h's na_memory, and the
 * public calls (window.c, staging.c, wipe_async.c) only through common.h's calls on arenas: no
 * file of cuda/ sees the arena header.
 */
#ifndef NALLOC_CUDA_INTERNAL_H
#define NALLOC_CUDA_INTERNAL_H

#include "backing.h"

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

/* NVTX memory annotations for device arenas (cuda/nvtx.c when NALLOC_HAVE_NVTX; no-ops
 * otherwise). The device backing registers its block as a heap at create and unregisters it at
 * destroy. While a tool listens, registering installs na_nvtx_region_alloc and
 * na_nvtx_heap_release as the memory's on_alloc and on_release hooks, so every host-side
 * sub-allocation becomes an NVTX region and every rollback, reset or wipe resets the regions above
 * the new offset; without a tool it installs nothing, and allocations run exactly as in a build
 * without NVTX. In-kernel windows register as one region. */
#if NALLOC_HAVE_NVTX
void na_nvtx_heap_register(na_memory *m);
void na_nvtx_heap_unregister(na_memory *m);
void na_nvtx_region_alloc(const na_memory *m, size_t offset, size_t size);
void na_nvtx_heap_release(const na_memory *m, size_t offset);
void na_nvtx_window_register(const na_memory *m, const void *base, size_t size);
#else
static inline void na_nvtx_heap_register(na_memory *m) { (void)m; }
static inline void na_nvtx_heap_unregister(na_memory *m) { (void)m; }
static inline void na_nvtx_window_register(const na_memory *m, const void *base, size_t size)
{
    (void)m;
    (void)base;
    (void)size;
}
#endif

#endif /* NALLOC_CUDA_INTERNAL_H */
