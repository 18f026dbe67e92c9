/* nalloc/detail/warp.h - the arithmetic of in-kernel allocation, for host and device alike. Not
 * API: nalloc_window_alloc and nalloc_window_alloc_warp (nalloc/device.cuh) are what users call.
 *
 * nalloc_window_alloc_warp serves the threads of a warp that call it together with one atomicAdd:
 * the threads agree on their exclusive prefix sums and their total, the lowest active thread (the
 * leader) adds the total to the window's counter, and every thread adds its prefix to the old
 * value the leader broadcasts. Everything except the ballots, the atomic and the broadcast is
 * plain integer arithmetic, and it lives here as NALLOC_DETAIL_HD functions so that the host tests
 * (tests/test_device_math.c) run exactly the code a GPU runs, over every active-mask shape.
 *
 * A thread's place in its warp is its index, 0..31 (CUDA's lane id; "lane" in nalloc means one
 * thing, a per-thread sub-arena: nalloc_arena_split).
 *
 * Why bit planes. Threads may call from divergent code, so the active mask can be any subset of
 * the warp, and a shuffle-based scan needs contiguous threads. A ballot over the active mask, by
 * contrast, reads zero for every inactive thread. Writing each thread's request as a number of
 * granules c = sum_b c_b 2^b, the exclusive prefix of the thread with index i is
 *
 *     prefix(i) = sum_b 2^b * popc(ballot(c_b) & below(i))
 *
 * and the total is the same sum over all threads: one ballot per bit of the largest request in
 * the warp (a 4 KiB request in 16-byte granules is 9 bits), no shuffles, any mask.
 *
 * Overflow. The leader adds the total even when only some threads fit, so a window fills up in
 * the middle of a warp: thread i succeeds iff old + prefix(i) + its bytes <= capacity. Threads
 * past the first failing one fail too (their prefix is larger), and the counter then stands past
 * the capacity, so every later request fails: the same sticky overflow as
 * nalloc_detail_window_reserve. A thread that asks for zero bytes, or for more than the whole
 * window, contributes nothing to the sum and gets NULL.
 *
 * The plain path (one atomicAdd per thread) is here too, as nalloc_detail_window_reserve: the
 * bump core's fetch-add, made as sticky as the warp path.
 */
#ifndef NALLOC_DETAIL_WARP_H
#define NALLOC_DETAIL_WARP_H

#include "nalloc/bump.h"

#ifdef __cplusplus
extern "C" {
#endif

#define NALLOC_DETAIL_WARP_SIZE 32u

/* The old counter value the leader broadcasts when it did not touch the counter: the window was
 * already full (or nothing was asked), so every thread fails. */
#define NALLOC_DETAIL_WARP_NO_ROOM SIZE_MAX

NALLOC_DETAIL_HD unsigned nalloc_detail_warp_popc(unsigned x)
{
#if defined(__CUDA_ARCH__)
    return (unsigned)__popc(x);
#else
    return (unsigned)__builtin_popcount(x);
#endif
}

/* The lowest thread of a non-zero mask: the warp's leader. */
NALLOC_DETAIL_HD unsigned nalloc_detail_warp_leader(unsigned mask)
{
#if defined(__CUDA_ARCH__)
    return (unsigned)__ffs((int)mask) - 1u;
#else
    return (unsigned)__builtin_ctz(mask);
#endif
}

/* The threads strictly below index `index` (0..31): the %lanemask_lt register. */
NALLOC_DETAIL_HD unsigned nalloc_detail_warp_below(unsigned index)
{
    return (unsigned)(((uint64_t)1 << index) - 1u);
}

/* A thread's place among the active threads: 0 for the leader. */
NALLOC_DETAIL_HD unsigned nalloc_detail_warp_rank(unsigned mask, unsigned index)
{
    return nalloc_detail_warp_popc(mask & nalloc_detail_warp_below(index));
}

/* A request of `size` bytes in granules of `granule` bytes (a power of two), or 0 if the thread
 * asks nothing or asks more than a window of `capacity` bytes could ever give. */
NALLOC_DETAIL_HD size_t nalloc_detail_window_granules(size_t size, size_t granule, size_t capacity)
{
    size_t rounded;
    if (size == 0 || !nalloc_detail_round_up(size, granule, &rounded) || rounded > capacity)
        return 0;
    return rounded / granule;
}

/* The running sums of one warp's requests, in granules, seen from one thread. */
typedef struct nalloc_detail_warp_sum {
    size_t prefix; /* granules asked by the active threads below this one */
    size_t total;  /* granules asked by all active threads */
} nalloc_detail_warp_sum;

/* Fold in bit plane `bit`: `plane` is the ballot over the active threads of bit `bit` of their
 * granule counts; `index` is this thread's. Inactive threads read as zero in a ballot, so any
 * mask works. */
NALLOC_DETAIL_HD void nalloc_detail_warp_sum_plane(nalloc_detail_warp_sum *s, unsigned plane,
                                                   unsigned bit, unsigned index)
{
    s->prefix += (size_t)nalloc_detail_warp_popc(plane & nalloc_detail_warp_below(index)) << bit;
    s->total += (size_t)nalloc_detail_warp_popc(plane) << bit;
}

/* Does the thread's block of `bytes` (its rounded request) at `prefix` bytes past the warp's base
 * `old` end inside a window of `capacity` bytes? `old` is NALLOC_DETAIL_WARP_NO_ROOM when the
 * leader did not reserve. No operand wraps: every comparison subtracts from a larger quantity. */
NALLOC_DETAIL_HD bool nalloc_detail_warp_fits(size_t old, size_t prefix, size_t bytes,
                                              size_t capacity)
{
    return bytes != 0 && old <= capacity && prefix <= capacity - old &&
           bytes <= capacity - old - prefix;
}

/* One thread's reservation (nalloc_window_alloc): `size` bytes, rounded up to the granule, with
 * one fetch-add on *counter, as nalloc_bump_reserve_add does, and as sticky as the warp path. A
 * request refused for lack of room that would fit an empty window leaves the counter past the
 * capacity (nalloc_bump_reserve_add refuses it without touching the counter when the check before
 * its add fails), so every later request fails until the reset, the small ones included: a
 * kernel never goes on with a random subset of its blocks. A request for 0 bytes, or for more
 * than the whole window, fails alone and leaves the counter as it was. The counter stays below
 * capacity * (1 + threads racing) + 1. */
NALLOC_DETAIL_HD bool nalloc_detail_window_reserve(size_t *counter, size_t capacity, size_t size,
                                                   size_t granule, size_t *begin)
{
    if (nalloc_detail_window_granules(size, granule, capacity) == 0)
        return false;
    if (nalloc_bump_reserve_add(counter, capacity, size, granule, begin))
        return true;
    nalloc_detail_atomic_max(counter, capacity + 1); /* no wrap: the window is at most 2^40 bytes */
    return false;
}

/* The leader's reservation: add `total` bytes to *counter unless the window is already full.
 * Returns the counter's old value, or NALLOC_DETAIL_WARP_NO_ROOM without touching it. As with
 * nalloc_bump_reserve_add, a full window is not bumped further, which bounds the counter by
 * capacity + (warps racing) * 32 * capacity. */
NALLOC_DETAIL_HD size_t nalloc_detail_warp_reserve(size_t *counter, size_t capacity, size_t total)
{
    if (total == 0 || nalloc_detail_atomic_load(counter) >= capacity)
        return NALLOC_DETAIL_WARP_NO_ROOM;
    return nalloc_detail_atomic_fetch_add(counter, total);
}

#ifdef __cplusplus
}
#endif

#endif /* NALLOC_DETAIL_WARP_H */
