/* cuda/device.c - the device backing: an arena's memory as one cudaMalloc block.
 *
 * Production provers stopped using cudaMallocAsync pools for their big buffers and carve one
 * large block themselves: cudaMalloc costs microseconds to milliseconds and cudaFree synchronizes
 * the whole device, so both belong at startup, not in every proof. A device arena is exactly
 * that: one cudaMalloc at creation, one cudaFree at destruction, and in between the same bump
 * core, marks and statistics as a host arena, handing out device addresses from host code
 * (and, through scratch windows, from kernels: cuda/window.c, nalloc/device.cuh).
 *
 * Sizing. Either config.capacity bytes, or (capacity 0) config.device_fraction of the device's
 * free memory after config.device_slack bytes are set aside: the CUDA context needs room to load
 * kernel modules and for the device heap, and provers that took everything found that out the
 * hard way (they leave 64-256 MiB).
 *
 * Devices. Every CUDA call runs with config.device current and then restores the caller's
 * current device, so an arena on device 1 works from a thread that computes on device 0.
 *
 * Memory from cudaMalloc is not zeroed and may hold the previous owner's data, so a device arena
 * starts dirty over its whole capacity (fresh_is_zero = false): its first wipe clears it all.
 * Wipes run the memset kernel of cuda/wipe.cu, in stream order when asked.
 */
#include "cuda_internal.h"
#include "wipe.h"

/* Capacity for a fractional arena: that fraction of (free - slack), rounded down to 4 KiB.
 * NALLOC_ERR_NOMEM when nothing is left. */
static nalloc_status fractional_capacity(const nalloc_arena_config *c, size_t *capacity)
{
    size_t free_bytes = 0, total_bytes = 0;
    nalloc_status st = na_cuda_status(cudaMemGetInfo(&free_bytes, &total_bytes), "cudaMemGetInfo");
    if (st != NALLOC_OK)
        return st;
    size_t available = free_bytes > c->device_slack ? free_bytes - c->device_slack : 0;
    double wanted = (double)available * c->device_fraction; /* fraction in (0, 1] */
    size_t bytes = wanted >= (double)available ? available : (size_t)wanted;
    bytes &= ~(size_t)4095;
    if (bytes == 0)
        return NALLOC_ERR_NOMEM;
    *capacity = bytes;
    return NALLOC_OK;
}

static nalloc_status device_create(nalloc_arena *a)
{
    nalloc_arena_config *c = &a->config;
    if (c->device < 0)
        return NALLOC_ERR_INVALID;
    if (c->capacity == 0 && !(c->device_fraction > 0 && c->device_fraction <= 1)) /* NaN too */
        return NALLOC_ERR_INVALID;
    /* Page-level protections have no meaning for device memory. */
    unsigned unavailable = c->flags & NA_FEATURE_FLAGS;
    if (unavailable && (c->flags & NALLOC_FLAG_STRICT))
        return NALLOC_ERR_UNSUPPORTED;

    nalloc_status st = na_cuda_ready();
    if (st != NALLOC_OK)
        return st;
    int count = 0;
    st = na_cuda_status(cudaGetDeviceCount(&count), "cudaGetDeviceCount");
    if (st != NALLOC_OK)
        return st;
    if (c->device >= count)
        return NALLOC_ERR_INVALID;

    int previous;
    st = na_cuda_enter(c->device, &previous);
    if (st != NALLOC_OK)
        return st;
    size_t capacity = c->capacity;
    if (capacity == 0)
        st = fractional_capacity(c, &capacity);
    void *base = NULL;
    if (st == NALLOC_OK)
        st = na_cuda_status(cudaMalloc(&base, capacity), "cudaMalloc");
    if (st == NALLOC_OK && !nalloc_bump_init(&a->bump, (uintptr_t)base, capacity)) {
        (void)cudaFree(base);
        st = NALLOC_ERR_INVALID;
    }
    na_cuda_leave(c->device, previous);
    if (st != NALLOC_OK)
        return st;

    c->capacity = capacity;
    a->reserved = capacity;
    a->guard_size = 0;
    a->guard_pages = false;
    a->in_force = 0;
    a->cuda = NULL;
    na_nvtx_heap_register(a);
    return NALLOC_OK;
}

static void device_destroy(nalloc_arena *a)
{
    na_nvtx_heap_unregister(a);
    int previous;
    if (na_cuda_enter(a->config.device, &previous) != NALLOC_OK)
        return;
    (void)na_cuda_status(cudaFree((void *)a->bump.base), "cudaFree");
    na_cuda_leave(a->config.device, previous);
    a->bump.base = 0;
    a->reserved = 0;
}

/* stream == NULL: the legacy default stream, then wait for it (see nalloc_wipe_async in
 * nalloc/cuda.h for what that orders against). */
static nalloc_status device_zero(nalloc_arena *a, size_t offset, size_t length, void *stream)
{
    if (length == 0)
        return NALLOC_OK;
    int previous;
    nalloc_status st = na_cuda_enter(a->config.device, &previous);
    if (st != NALLOC_OK)
        return st;
    cudaStream_t s = stream != NULL ? (cudaStream_t)stream : cudaStreamLegacy;
    void *p = (void *)(a->bump.base + offset);
    st = na_cuda_status(na_cuda_wipe(a->config.device, p, length, s), "nalloc wipe kernel launch");
    if (st == NALLOC_OK && stream == NULL)
        st = na_cuda_status(cudaStreamSynchronize(s), "cudaStreamSynchronize (wipe)");
    na_cuda_leave(a->config.device, previous);
    return st;
}

const na_backing na_backing_device = {
    .name = "device",
    .create = device_create,
    .destroy = device_destroy,
    .zero = device_zero,
    .on_alloc = NA_NVTX_ON_ALLOC,
    .on_release = NA_NVTX_ON_RELEASE,
    .fresh_is_zero = false,
    .host_accessible = false,
};
