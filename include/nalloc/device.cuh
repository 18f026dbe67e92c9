/* nalloc/device.cuh - allocation inside kernels, from a scratch window (CUDA only).
 *
 * The host carves a window out of a device arena (nalloc_window_create, nalloc/cuda.h) and passes
 * the nalloc_window to kernels by value. Inside a kernel:
 *
 *   nalloc_window_alloc(w, size)        one atomicAdd per calling thread;
 *   nalloc_window_alloc_warp(w, size)   one atomicAdd per warp, for any size per thread and any
 *                                       set of active threads, divergent calls included;
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
 * arithmetic is in nalloc/detail/warp.h (not API: nalloc_detail_window_reserve, the warp sums),
 * where the host tests exercise it. Blocks are disjoint and inside the window for
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
#include "nalloc/detail/warp.h"

/* Not API: raise the window's overflow flag. Every writer stores the same value, so a plain store
 * will do. */
static __device__ __forceinline__ void nalloc_detail_window_note_overflow(nalloc_window w)
{
    nalloc_detail_atomic_store(&w.state->overflow, 1);
}

/* Not API: the calling thread's index in its warp, 0..31 (the %laneid register). */
static __device__ __forceinline__ unsigned nalloc_detail_warp_index(void)
{
    unsigned index;
    asm("mov.u32 %0, %%laneid;" : "=r"(index));
    return index;
}

/* `size` bytes from the window with one atomicAdd; NULL for size 0 or when the window is full. */
static __device__ __forceinline__ void *nalloc_window_alloc(nalloc_window w, size_t size)
{
    size_t begin;
    if (size == 0)
        return NULL;
    if (nalloc_detail_window_reserve(&w.state->used, w.capacity, size, w.granule, &begin))
        return (char *)w.base + begin;
    nalloc_detail_window_note_overflow(w);
    return NULL;
}

/* As nalloc_window_alloc, but the threads of a warp that call it together share one atomicAdd.
 * Every thread may ask for a different size (0 included); any subset of a warp's threads may
 * call, from any branch. They are served in the order of their index in the warp: if the window
 * fills up in the middle of the warp, the lower ones get their blocks and the others NULL. */
static __device__ __forceinline__ void *nalloc_window_alloc_warp(nalloc_window w, size_t size)
{
    const unsigned mask = __activemask();
    const unsigned index = nalloc_detail_warp_index();
    const size_t granules = nalloc_detail_window_granules(size, w.granule, w.capacity);

    nalloc_detail_warp_sum sum = {0, 0};
    for (unsigned bit = 0; bit < 8 * sizeof(size_t); bit++) {
        const size_t rest = granules >> bit;
        if (!__any_sync(mask, rest != 0))
            break;
        nalloc_detail_warp_sum_plane(&sum, __ballot_sync(mask, (unsigned)(rest & 1)), bit, index);
    }

    const unsigned leader = nalloc_detail_warp_leader(mask);
    unsigned long long old = NALLOC_DETAIL_WARP_NO_ROOM;
    if (index == leader)
        old = nalloc_detail_warp_reserve(&w.state->used, w.capacity, sum.total * w.granule);
    old = __shfl_sync(mask, old, (int)leader);

    const size_t bytes = granules * w.granule;
    if (nalloc_detail_warp_fits((size_t)old, sum.prefix * w.granule, bytes, w.capacity))
        return (char *)w.base + (size_t)old + sum.prefix * w.granule;
    if (size != 0)
        nalloc_detail_window_note_overflow(w);
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
