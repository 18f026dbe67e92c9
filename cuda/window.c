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

static nalloc_status window_create(nalloc_arena *a, size_t capacity, size_t granule,
                                   nalloc_window *out, const char *call)
{
    if (out == NULL)
        return na_fail(NALLOC_ERR_INVALID, call, "out is NULL");
    memset(out, 0, sizeof *out);
    na_cause_clear();
    nalloc_status st = na_cuda_ready();
    if (st != NALLOC_OK)
        return na_fail_cause(st, call, NULL);
    if (na_arena_check(a) != NALLOC_OK)
        return na_arena_refuse(a, call);
    const na_memory *m = na_arena_memory(a);
    if (m->config->memory != NALLOC_MEMORY_DEVICE)
        return na_fail(NALLOC_ERR_INVALID, call, "arena \"%s\" is not a device arena", m->name);
    if (capacity == 0 || capacity > NALLOC_WINDOW_MAX_CAPACITY)
        return na_fail(NALLOC_ERR_INVALID, call, "capacity %zu is not in 1..2^40", capacity);
    if (!nalloc_is_pow2(granule) || granule < NALLOC_WINDOW_GRANULE ||
        granule > NALLOC_WINDOW_MAX_GRANULE)
        return na_fail(NALLOC_ERR_INVALID, call, "granule %zu is not a power of two in 16..4096",
                       granule);

    size_t align = window_align(granule);
    size_t bytes = align + capacity; /* no wrap: capacity <= 2^40 */
    unsigned char *block = na_alloc_block(a, bytes, align);
    if (block == NULL)
        return na_fail_cause(NALLOC_ERR_NOMEM, call, "a window of %zu bytes", capacity);

    int device = m->config->device, previous;
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
        /* Refused only if another thread allocated after the block (cuda.h says so). */
        (void)na_free_last(a, block, bytes);
        return na_fail_cause(st, call, "arena \"%s\"", m->name);
    }
    out->base = block + align;
    out->capacity = capacity;
    out->granule = granule;
    out->state = (nalloc_window_state *)block;
    out->device = device;
    na_nvtx_window_register(m, out->base, capacity);
    return NALLOC_OK;
}

nalloc_status nalloc_window_create_aligned(nalloc_arena *a, size_t capacity, size_t granule,
                                           nalloc_window *out)
{
    return window_create(a, capacity, granule, out, "nalloc_window_create_aligned");
}

nalloc_status nalloc_window_create(nalloc_arena *a, size_t capacity, nalloc_window *out)
{
    return window_create(a, capacity, NALLOC_WINDOW_GRANULE, out, "nalloc_window_create");
}

/* A window as nalloc_window_create makes them; catches NULL and zeroed (failed) windows. */
static bool window_valid(const nalloc_window *w)
{
    return w != NULL && w->state != NULL && w->base != NULL && w->capacity != 0 &&
           w->capacity <= NALLOC_WINDOW_MAX_CAPACITY && nalloc_is_pow2(w->granule) &&
           w->device >= 0;
}

/* The checks every call on an existing window starts with, then its device made current. Records
 * a failure as `call`'s. */
static nalloc_status window_enter(const nalloc_window *w, int *previous, const char *call)
{
    na_cause_clear();
    nalloc_status st = na_cuda_ready();
    if (st == NALLOC_OK && !window_valid(w))
        return na_fail(NALLOC_ERR_INVALID, call, "not a window nalloc_window_create made");
    if (st == NALLOC_OK)
        st = na_cuda_enter(w->device, previous);
    return st == NALLOC_OK ? st : na_fail_cause(st, call, NULL);
}

nalloc_status nalloc_window_reset(const nalloc_window *w, cudaStream_t stream)
{
    static const char call[] = "nalloc_window_reset";
    int previous;
    nalloc_status st = window_enter(w, &previous, call);
    if (st != NALLOC_OK)
        return st;
    st = na_cuda_status(cudaMemsetAsync(w->state, 0, sizeof *w->state, stream),
                        "cudaMemsetAsync (window reset)");
    na_cuda_leave(w->device, previous);
    return st == NALLOC_OK ? st : na_fail_cause(st, call, NULL);
}

nalloc_status nalloc_window_usage(const nalloc_window *w, cudaStream_t stream, size_t *used,
                                  bool *overflowed)
{
    static const char call[] = "nalloc_window_usage";
    int previous;
    nalloc_status st = window_enter(w, &previous, call);
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
        return na_fail_cause(st, call, NULL);
    if (used != NULL)
        *used = state.used < w->capacity ? state.used : w->capacity;
    if (overflowed != NULL)
        *overflowed = state.overflow != 0 || state.used > w->capacity;
    return NALLOC_OK;
}
