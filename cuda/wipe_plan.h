/* cuda/wipe_plan.h - how the device wipe kernel divides a range among threads (host and device).
 *
 * The wipe kernel (cuda/wipe.cu) zeroes [p, p + len) for any p and len. Its bandwidth comes from
 * 16-byte stores, which need 16-byte aligned addresses, so the range splits in three: an
 * unaligned head of 0..15 bytes up to the first 16-byte boundary, a body of whole 16-byte words,
 * and a tail of 0..15 bytes after the last whole word. A range that never reaches a boundary is
 * all head. Thread t of T zeroes head and tail bytes t, t + T, ... and body words t, t + T, ...
 * (grid-stride), so any grid covers the range, each byte exactly once.
 *
 * Everything here is NALLOC_DETAIL_HD and the store is a macro point: the host tests
 * (tests/test_device_math.c) run na_wipe_thread for every thread of a simulated grid, at every
 * start alignment and many lengths, and check that exactly the range was zeroed.
 */
#ifndef NALLOC_CUDA_WIPE_PLAN_H
#define NALLOC_CUDA_WIPE_PLAN_H

#include "nalloc/bump.h"

#define NA_WIPE_WORD 16 /* bytes per vector store */

typedef struct na_wipe_plan {
    size_t head;  /* bytes before the first 16-byte boundary (or the whole range); < 16 unless
                     the range is shorter */
    size_t words; /* 16-byte words in the aligned body, which starts at p + head */
    size_t tail;  /* bytes after the body; < 16 */
} na_wipe_plan;

NALLOC_DETAIL_HD na_wipe_plan na_wipe_plan_of(uintptr_t p, size_t len)
{
    na_wipe_plan plan;
    size_t to_boundary = (size_t)((0 - p) & (NA_WIPE_WORD - 1));
    if (to_boundary >= len) {
        plan.head = len;
        plan.words = 0;
        plan.tail = 0;
        return plan;
    }
    plan.head = to_boundary;
    plan.words = (len - to_boundary) / NA_WIPE_WORD;
    plan.tail = (len - to_boundary) % NA_WIPE_WORD;
    return plan;
}

/* One 16-byte zero store at a 16-byte aligned address: a single vector store on the device. */
#if defined(__CUDA_ARCH__)
#define NA_WIPE_STORE_WORD(q) (*(uint4 *)(q) = make_uint4(0, 0, 0, 0))
#else
#define NA_WIPE_STORE_WORD(q)                                                                    \
    do {                                                                                         \
        ((uint64_t *)(q))[0] = 0;                                                                \
        ((uint64_t *)(q))[1] = 0;                                                                \
    } while (0)
#endif

/* Thread `thread` of `threads` (> 0) does its share of zeroing [p, p + len). */
NALLOC_DETAIL_HD void na_wipe_thread(unsigned char *p, size_t len, size_t thread, size_t threads)
{
    na_wipe_plan plan = na_wipe_plan_of((uintptr_t)p, len);
    unsigned char *body = p + plan.head;
    unsigned char *tail = body + plan.words * NA_WIPE_WORD;
    for (size_t i = thread; i < plan.head; i += threads)
        p[i] = 0;
#if defined(__CUDA_ARCH__)
#pragma unroll 4
#endif
    for (size_t i = thread; i < plan.words; i += threads)
        NA_WIPE_STORE_WORD(body + i * NA_WIPE_WORD);
    for (size_t i = thread; i < plan.tail; i += threads)
        tail[i] = 0;
}

/* The wipe kernel's body: thread `thread_in_block` of block `block` in a one-dimensional grid of
 * `grid_dim` blocks of `block_dim` threads (threadIdx.x, blockIdx.x, blockDim.x, gridDim.x). The
 * tests' host twin of the kernel (tests/cudastub) calls it for every thread of the grid. */
NALLOC_DETAIL_HD void na_wipe_grid_thread(unsigned char *p, size_t len, unsigned block,
                                   unsigned block_dim, unsigned grid_dim, unsigned thread_in_block)
{
    size_t threads = (size_t)grid_dim * block_dim;
    size_t thread = (size_t)block * block_dim + thread_in_block;
    na_wipe_thread(p, len, thread, threads);
}

#endif /* NALLOC_CUDA_WIPE_PLAN_H */
