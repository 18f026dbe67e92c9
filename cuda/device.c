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
 *
 * The block can die before the arena: cudaDeviceReset (or anything else that destroys the
 * device's primary context) frees it, and the next cudaMalloc in the new context may be given
 * the same addresses. A wipe kernel or a cudaFree at the old address would then zero or free
 * somebody else's memory. So the arena keeps the driver's process-wide unique id of its block
 * (CU_POINTER_ATTRIBUTE_BUFFER_ID, never reused), and wipes and destroy first check that the
 * address still belongs to that block: if not, a wipe answers NALLOC_ERR_STATE and destroy frees
 * nothing; if the driver cannot tell, a wipe answers NALLOC_ERR_CUDA and destroy frees nothing.
 * The id comes from cuPointerGetAttribute through the runtime's driver entry-point query, so the
 * library still links against cudart alone; without it nothing is checked.
 */
#include "cuda_internal.h"
#include "wipe.h"

#include <cuda.h> /* CUpointer_attribute, CUdeviceptr, CUresult: types only, no libcuda */

/* ---------------------------------------------------------------------------------------------
 * Which block is this? (the driver's buffer id)
 * ------------------------------------------------------------------------------------------- */

typedef CUresult (*na_pointer_attribute_fn)(void *data, CUpointer_attribute attribute,
                                            CUdeviceptr ptr);
static na_pointer_attribute_fn pointer_attribute; /* NULL when the driver does not offer it */
static pthread_once_t pointer_attribute_once = PTHREAD_ONCE_INIT;

static void find_pointer_attribute(void)
{
    void *fn = NULL;
    enum cudaDriverEntryPointQueryResult found = cudaDriverEntryPointSymbolNotFound;
    if (cudaGetDriverEntryPointByVersion("cuPointerGetAttribute", &fn, 12000, cudaEnableDefault,
                                         &found) != cudaSuccess) {
        (void)cudaGetLastError(); /* our failure: not left for the caller's next check */
        return;
    }
    if (found == cudaDriverEntryPointSuccess && fn != NULL)
        *(void **)&pointer_attribute = fn; /* POSIX: object and function pointers convert */
}

/* The driver's id of the allocation that holds device address `p` (CUDA_SUCCESS), or why there
 * is none: CUDA_ERROR_INVALID_VALUE for an address no allocation holds, CUDA_ERROR_NOT_SUPPORTED
 * when the query itself is not available. */
static CUresult buffer_id_of(uintptr_t p, unsigned long long *id)
{
    pthread_once(&pointer_attribute_once, find_pointer_attribute);
    if (pointer_attribute == NULL)
        return CUDA_ERROR_NOT_SUPPORTED;
    return pointer_attribute(id, CU_POINTER_ATTRIBUTE_BUFFER_ID, (CUdeviceptr)p);
}

/* The memory's state is the block's buffer id (0: unknown, nothing is checked). */
static unsigned long long block_id(const na_memory *m)
{
    return (unsigned long long)(uintptr_t)m->state;
}

/* Does the arena's base address still belong to the block it allocated? NALLOC_OK: yes, or no id
 * is known (nothing is checked). NALLOC_ERR_STATE: no (freed with its context, perhaps handed out
 * again). NALLOC_ERR_CUDA: the driver could not say (*call failed with *err: a context with a
 * sticky error, say); the address may then be somebody else's just as well, so the caller writes
 * and frees nothing there either. */
static nalloc_status block_alive(const na_memory *m, cudaError_t *err, const char **call)
{
    unsigned long long id = 0;
    if (block_id(m) == 0)
        return NALLOC_OK;
    CUresult res = buffer_id_of(m->base, &id);
    if (res == CUDA_ERROR_INVALID_CONTEXT) {
        /* A reset left this thread without a current context: the runtime makes its primary
         * context current again on its next call (cudaFree(NULL) frees nothing). */
        *err = cudaFree(NULL);
        *call = "cudaFree (making a context current)";
        if (*err != cudaSuccess) {
            (void)cudaGetLastError();
            return NALLOC_ERR_CUDA;
        }
        res = buffer_id_of(m->base, &id);
    }
    if (res == CUDA_ERROR_INVALID_VALUE || (res == CUDA_SUCCESS && id != block_id(m)))
        return NALLOC_ERR_STATE;
    if (res != CUDA_SUCCESS) {
        *err = (cudaError_t)res; /* the runtime numbers the errors both APIs share alike */
        *call = "cuPointerGetAttribute (buffer id)";
        return NALLOC_ERR_CUDA;
    }
    return NALLOC_OK;
}

/* ---------------------------------------------------------------------------------------------
 * The backing
 * ------------------------------------------------------------------------------------------- */

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
    if (bytes == 0) {
        na_cause("%zu bytes of device memory free, device_slack %zu: nothing left to take",
                 free_bytes, c->device_slack);
        return NALLOC_ERR_NOMEM;
    }
    *capacity = bytes;
    return NALLOC_OK;
}

static nalloc_status device_create(na_memory *m)
{
    nalloc_arena_config *c = m->config;
    if (c->device < 0) {
        na_cause("device %d is not a device ordinal", c->device);
        return NALLOC_ERR_INVALID;
    }
    if (c->capacity == 0 && !(c->device_fraction > 0 && c->device_fraction <= 1)) { /* NaN too */
        na_cause("capacity is 0 and device_fraction is not in (0, 1]");
        return NALLOC_ERR_INVALID;
    }
    /* Page-level protections have no meaning for device memory. */
    unsigned unavailable = c->flags & NA_FEATURE_FLAGS;
    if (unavailable && (c->flags & NALLOC_FLAG_STRICT)) {
        na_cause("NALLOC_FLAG_STRICT with page-level protections, which device memory lacks");
        return NALLOC_ERR_UNSUPPORTED;
    }

    nalloc_status st = na_cuda_ready();
    if (st != NALLOC_OK)
        return st;
    int count = 0;
    st = na_cuda_status(cudaGetDeviceCount(&count), "cudaGetDeviceCount");
    if (st != NALLOC_OK)
        return st;
    if (c->device >= count) {
        na_cause("device %d does not exist (%d devices)", c->device, count);
        return NALLOC_ERR_INVALID;
    }

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
    unsigned long long id = 0;
    if (st == NALLOC_OK && buffer_id_of((uintptr_t)base, &id) != CUDA_SUCCESS)
        id = 0; /* unknown: wipes and destroy will not check */
    na_cuda_leave(c->device, previous);
    if (st != NALLOC_OK)
        return st;

    /* No guards, no page-level protections: those fields of the memory stay zero. */
    c->capacity = capacity;
    m->base = (uintptr_t)base;
    m->capacity = capacity;
    m->reserved = capacity;
    m->state = (void *)(uintptr_t)id;
    na_nvtx_heap_register(m);
    return NALLOC_OK;
}

static void device_destroy(na_memory *m)
{
    na_nvtx_heap_unregister(m);
    /* Destroy reports no failure to release the block (the arena is released whatever CUDA says),
     * so CUDA's refusals here are not this thread's last error either: only the runtime's error
     * state is cleared. Without its device current the block cannot be freed, and stays. */
    int device = m->config->device, previous = device;
    if (cudaGetDevice(&previous) != cudaSuccess ||
        (previous != device && cudaSetDevice(device) != cudaSuccess)) {
        (void)cudaGetLastError();
        return;
    }
    /* Not known to be alive: its context may have taken it, and the address be another's. */
    cudaError_t why;
    const char *call;
    if (block_alive(m, &why, &call) == NALLOC_OK && cudaFree((void *)m->base) != cudaSuccess)
        (void)cudaGetLastError();
    na_cuda_leave(device, previous);
    m->base = 0;
    m->reserved = 0;
    m->state = NULL;
}

/* stream == NULL: the legacy default stream, then wait for it (see nalloc_wipe_async in
 * nalloc/cuda.h for what that orders against). A stream-ordered wipe also waits when a memory
 * tool watches the arena (m->tool: cuda/nvtx.c found one): the wipe registers its range as a
 * region only until the arena is reset, right after this returns, and a kernel still running
 * then would be checked against a heap with no regions and reported. Without a tool, m->tool is
 * NULL and nothing waits. */
static nalloc_status device_zero(const na_memory *m, size_t offset, size_t length, void *stream)
{
    if (length == 0)
        return NALLOC_OK;
    int device = m->config->device, previous;
    nalloc_status st = na_cuda_enter(device, &previous);
    if (st != NALLOC_OK)
        return st;
    cudaError_t why;
    const char *call;
    st = block_alive(m, &why, &call);
    if (st == NALLOC_ERR_CUDA)
        st = na_cuda_status(why, call);
    if (st != NALLOC_OK) {
        na_cuda_leave(device, previous);
        if (st == NALLOC_ERR_STATE)
            na_cause("the arena's device memory went with its CUDA context (cudaDeviceReset?)");
        return st;
    }
    cudaStream_t s = stream != NULL ? (cudaStream_t)stream : cudaStreamLegacy;
    void *p = (void *)(m->base + offset);
    st = na_cuda_status(na_cuda_wipe(device, p, length, s), "nalloc wipe kernel launch");
    if (st == NALLOC_OK && (stream == NULL || m->tool != NULL))
        st = na_cuda_status(cudaStreamSynchronize(s), "cudaStreamSynchronize (wipe)");
    na_cuda_leave(device, previous);
    return st;
}

const na_backing na_backing_device = {
    .name = "device",
    .create = device_create,
    .destroy = device_destroy,
    .zero = device_zero,
    .fresh_is_zero = false,
    .host_accessible = false,
};
