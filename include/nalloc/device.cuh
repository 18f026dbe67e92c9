/* nalloc/device.cuh - allocation inside kernels, from a scratch window (CUDA only).
 *
 * The host carves a window out of a device arena (nalloc_window_create, nalloc/cuda.h) and passes
 * the nalloc_window to kernels by value. Inside a kernel:
 *
 *   nalloc_window_alloc(w, size)        one atomicAdd per calling thread;
 *   nalloc_window_alloc_warp(w, size)   one atomicAdd per warp, for any per-lane sizes and any set
 *                                       of active lanes, divergent calls included;
 *   nalloc_window_alloc_block(w, size)  one block shared by the whole thread block.
 *
 * Each returns a pointer into the window aligned to its granule (16 bytes by default), or NULL:
 * for size 0, and on exhaustion, which also raises the window's sticky overflow flag (the host
 * reads it with nalloc_window_usage and clears it with nalloc_window_reset). Once a request has
 * failed for lack of room, every later one fails too until the reset, whatever its size, so a
 * kernel that overflowed does not go on with a random subset of its blocks. (A request larger
 * than the whole window fails alone: it raises the flag but leaves the room to others.)
 *
 * All paths reserve through the one bump core (nalloc/bump.h); the plain and warp paths'
 * arithmetic is in nalloc/warp.h (nalloc_window_reserve, the warp sums), where the host tests
 * exercise it. Blocks are disjoint and inside the window for
 * any sizes and any interleaving; their contents are not zeroed. Memory ordering is relaxed, as
 * with malloc: a block written by one thread and read by another needs the caller's own
 * synchronization.
 */
#ifndef NALLOC_DEVICE_CUH
#define NALLOC_DEVICE_CUH

#if !defined(__CUDACC__)
#error "nalloc/device.cuh is for CUDA translation units (nvcc); host code includes nalloc/cuda.h"
#endif

#include "nalloc/bump.h"
#include "nalloc/cuda.h"
#include "nalloc/warp.h"

/* Raise the window's overflow flag. Every writer stores the same value, so a plain store will do. */
static __device__ __forceinline__ void nalloc_window_note_overflow(nalloc_window w)
{
    nalloc_atomic_store(&w.state->overflow, 1);
}

static __device__ __forceinline__ unsigned nalloc_lane_id(void)
{
    unsigned lane;
    asm("mov.u32 %0, %%laneid;" : "=r"(lane));
    return lane;
}

/* `size` bytes from the window with one atomicAdd; NULL for size 0 or when the window is full. */
static __device__ __forceinline__ void *nalloc_window_alloc(nalloc_window w, size_t size)
{
    size_t begin;
    if (size == 0)
        return NULL;
    if (nalloc_window_reserve(&w.state->used, w.capacity, size, w.granule, &begin))
        return (char *)w.base + begin;
    nalloc_window_note_overflow(w);
    return NULL;
}

/* As nalloc_window_alloc, but the lanes of a warp that call it together share one atomicAdd.
 * Every lane may ask for a different size (0 included); any subset of lanes may call, from any
 * branch. Lanes are served in lane order: if the window fills up in the middle of the warp, the
 * lower lanes get their blocks and the others NULL. */
static __device__ __forceinline__ void *nalloc_window_alloc_warp(nalloc_window w, size_t size)
{
    const unsigned mask = __activemask();
    const unsigned lane = nalloc_lane_id();
    const size_t granules = nalloc_lane_granules(size, w.granule, w.capacity);

    nalloc_warp_sum sum = {0, 0};
    for (unsigned bit = 0; bit < 8 * sizeof(size_t); bit++) {
        const size_t rest = granules >> bit;
        if (!__any_sync(mask, rest != 0))
            break;
        nalloc_warp_sum_plane(&sum, __ballot_sync(mask, (unsigned)(rest & 1)), bit, lane);
    }

    const unsigned leader = nalloc_lane_lowest(mask);
    unsigned long long old = NALLOC_WARP_NO_ROOM;
    if (lane == leader)
        old = nalloc_warp_reserve(&w.state->used, w.capacity, sum.total * w.granule);
    old = __shfl_sync(mask, old, (int)leader);

    const size_t bytes = granules * w.granule;
    if (nalloc_warp_lane_fits((size_t)old, sum.prefix * w.granule, bytes, w.capacity))
        return (char *)w.base + (size_t)old + sum.prefix * w.granule;
    if (size != 0)
        nalloc_window_note_overflow(w);
    return NULL;
}

/* One block of `size` bytes shared by the whole thread block: every thread of the block must call
 * it (as with __syncthreads), with the same size; all get the same pointer, or all get NULL.
 * Costs one atomicAdd and two __syncthreads. */
static __device__ __forceinline__ void *nalloc_window_alloc_block(nalloc_window w, size_t size)
{
    __shared__ void *shared_block;
    __syncthreads(); /* every thread has read the previous call's result */
    if (threadIdx.x == 0 && threadIdx.y == 0 && threadIdx.z == 0)
        shared_block = nalloc_window_alloc(w, size);
    __syncthreads();
    return shared_block;
}

#endif /* NALLOC_DEVICE_CUH */
