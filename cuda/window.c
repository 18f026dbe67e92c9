/* cuda/window.c - in-kernel scratch windows, host side (contract in nalloc/cuda.h; the kernel
 * side is nalloc/device.cuh).
 *
 * A window is one block of a device arena, laid out as
 *
 *     [ nalloc_window_state | pad to the window's alignment | capacity bytes for kernels ]
 *
 * so that creating one is a single host-side allocation (nothing to undo but that block if the
 * counter cannot be zeroed) and the counter sits below the window, where a kernel overrunning its
 * last block cannot reach it. The host only ever touches the state: zeroing it at creation and on
 * reset, and reading it back, always through the CUDA runtime in stream order. Kernels bump it
 * with atomics; nothing on the host caches it.
 */
#include "cuda_internal.h"

#include "nalloc/cuda.h"

#include <string.h>

/* The window's base alignment: its granule, and never less than cudaMalloc's 256 bytes. */
static size_t window_align(size_t granule)
{
    return granule > 256 ? granule : 256;
}

nalloc_status nalloc_window_create_aligned(nalloc_arena *a, size_t capacity, size_t granule,
                                           nalloc_window *out)
{
    if (out == NULL)
        return na_set_error(NALLOC_ERR_INVALID);
    memset(out, 0, sizeof *out);
    nalloc_status st = na_cuda_ready();
    if (st != NALLOC_OK)
        return st;
    st = na_arena_check(a);
    if (st != NALLOC_OK)
        return na_set_error(st);
    if (a->config.memory != NALLOC_MEMORY_DEVICE || capacity == 0 ||
        capacity > NALLOC_WINDOW_MAX_CAPACITY || !nalloc_is_pow2(granule) ||
        granule < NALLOC_WINDOW_GRANULE || granule > NALLOC_WINDOW_MAX_GRANULE)
        return na_set_error(NALLOC_ERR_INVALID);

    size_t align = window_align(granule);
    size_t bytes = align + capacity; /* no wrap: capacity <= 2^40 */
    unsigned char *block = nalloc_alloc_aligned(a, bytes, align);
    if (block == NULL)
        return nalloc_last_error(); /* set by nalloc_alloc_aligned */

    int device = a->config.device, previous;
    st = na_cuda_enter(device, &previous);
    if (st == NALLOC_OK) {
        /* The per-thread default stream does not wait for unrelated streams, as the legacy one
         * would; waiting for it makes the zeroed counter visible to kernels on any stream. */
        st = na_cuda_status(cudaMemsetAsync(block, 0, sizeof(nalloc_window_state),
                                            cudaStreamPerThread),
                            "cudaMemsetAsync (window state)");
        if (st == NALLOC_OK)
            st = na_cuda_status(cudaStreamSynchronize(cudaStreamPerThread),
                                "cudaStreamSynchronize (window state)");
        na_cuda_leave(device, previous);
    }
    if (st != NALLOC_OK) {
        (void)nalloc_free_last(a, block, bytes); /* refused only if another block came after */
        return na_set_error(st);
    }
    out->base = block + align;
    out->capacity = capacity;
    out->granule = granule;
    out->state = (nalloc_window_state *)block;
    out->device = device;
    na_nvtx_window_register(a, out->base, capacity);
    return NALLOC_OK;
}

nalloc_status nalloc_window_create(nalloc_arena *a, size_t capacity, nalloc_window *out)
{
    return nalloc_window_create_aligned(a, capacity, NALLOC_WINDOW_GRANULE, out);
}

/* A window as nalloc_window_create makes them; catches NULL and zeroed (failed) windows. */
static bool window_valid(const nalloc_window *w)
{
    return w != NULL && w->state != NULL && w->base != NULL && w->capacity != 0 &&
           w->capacity <= NALLOC_WINDOW_MAX_CAPACITY && nalloc_is_pow2(w->granule) &&
           w->device >= 0;
}

/* The checks every call on an existing window starts with, then its device made current. */
static nalloc_status window_enter(const nalloc_window *w, int *previous)
{
    nalloc_status st = na_cuda_ready();
    if (st != NALLOC_OK)
        return st;
    if (!window_valid(w))
        return na_set_error(NALLOC_ERR_INVALID);
    return na_cuda_enter(w->device, previous);
}

nalloc_status nalloc_window_reset(const nalloc_window *w, cudaStream_t stream)
{
    int previous;
    nalloc_status st = window_enter(w, &previous);
    if (st != NALLOC_OK)
        return st;
    st = na_cuda_status(cudaMemsetAsync(w->state, 0, sizeof *w->state, stream),
                        "cudaMemsetAsync (window reset)");
    na_cuda_leave(w->device, previous);
    return st;
}

nalloc_status nalloc_window_usage(const nalloc_window *w, cudaStream_t stream, size_t *used,
                                  bool *overflowed)
{
    int previous;
    nalloc_status st = window_enter(w, &previous);
    if (st != NALLOC_OK)
        return st;
    nalloc_window_state state;
    st = na_cuda_status(cudaMemcpyAsync(&state, w->state, sizeof state, cudaMemcpyDeviceToHost,
                                        stream),
                        "cudaMemcpyAsync (window usage)");
    if (st == NALLOC_OK)
        st = na_cuda_status(cudaStreamSynchronize(stream), "cudaStreamSynchronize (window usage)");
    na_cuda_leave(w->device, previous);
    if (st != NALLOC_OK)
        return st;
    if (used != NULL)
        *used = state.used < w->capacity ? state.used : w->capacity;
    if (overflowed != NULL)
        *overflowed = state.overflow != 0 || state.used > w->capacity;
    return NALLOC_OK;
}
