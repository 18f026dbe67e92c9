/* nalloc/bump.h - the one bump allocator, for host code, device code and kernels alike.
 *
 * Every allocation nalloc makes, on the host for a host, pinned or device arena and inside a
 * kernel for a scratch window, is "reserve `size` bytes at alignment `align` in the region
 * [base, base + capacity)". This header is the only implementation of that. It knows nothing of
 * the OS or of CUDA: a base address, a capacity and an offset. The same functions compile as C11,
 * as C++ and under nvcc for host and device, so the host tests exercise exactly the code a GPU
 * runs. The atomics and checked rounding they share are nalloc/detail/shim.h (not API).
 *
 * Two ways to advance the offset:
 *
 *  - nalloc_bump_reserve: compare-and-swap. Exact alignment (padding only where the address needs
 *    it), and a request that does not fit changes nothing, so an arena that refused a large
 *    request still serves every smaller one that fits. Lock-free, not wait-free: a CAS fails only
 *    because another allocation succeeded. Host arenas use it. It costs more than a fetch-add,
 *    single-threaded a little, and with several threads hammering one arena about twice as much,
 *    because a failed CAS is one more trip of the cache line (bench/bench_bump.c measures both;
 *    the figures, with the machine they were measured on, are in the benchmark documentation).
 *    We pay that for the guarantee only a CAS gives: a refused request consumes nothing. Threads
 *    that allocate all the time should not share one offset anyway: lanes (nalloc_arena_split)
 *    give each its own.
 *
 *  - nalloc_bump_reserve_add: one fetch-add (atomicAdd on a GPU), no retry loop. Every request on
 *    the counter is rounded up to one power-of-two granule, so offsets stay aligned without
 *    padding. A request that loses a race for the last bytes still consumes what it asked for: the
 *    counter passes the capacity and every later request fails, the sticky overflow kernels want
 *    (the 32 threads of a warp retrying a CAS on one word is what this path exists to avoid).
 *
 * Overflow: no input wraps. The region's end base + capacity must not wrap (nalloc_bump_init
 * checks), padding is computed as (-address) mod align, and every comparison is a subtraction
 * from a quantity known to be larger.
 */
#ifndef NALLOC_BUMP_H
#define NALLOC_BUMP_H

#include "nalloc/detail/shim.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Checked arithmetic ---- */

NALLOC_DETAIL_HD bool nalloc_is_pow2(size_t x)
{
    return x != 0 && (x & (x - 1)) == 0;
}

/* Where would `size` bytes at `align` go if the region [base, base + capacity) had `offset` bytes
 * in use? True, with [*begin, *end) the block's offsets, if it fits; false otherwise, including
 * for align not a power of two and offset > capacity. Pure: touches nothing. */
NALLOC_DETAIL_HD bool nalloc_bump_fit(uintptr_t base, size_t capacity, size_t offset, size_t size,
                                      size_t align, size_t *begin, size_t *end)
{
    if (!nalloc_is_pow2(align) || offset > capacity)
        return false;
    uintptr_t here = base + offset; /* no wrap: base + capacity does not */
    size_t pad = (size_t)((0 - here) & ((uintptr_t)align - 1));
    size_t room = capacity - offset;
    if (pad > room || size > room - pad)
        return false;
    *begin = offset + pad;
    *end = *begin + size;
    return true;
}

/* ---- The bump region ---- */

typedef struct nalloc_bump {
    uintptr_t base;  /* address of offset 0 (host or device); base + capacity does not wrap */
    size_t capacity; /* bytes */
    size_t offset;   /* bytes in use, padding included; <= capacity; only touched atomically */
} nalloc_bump;

/* Set up an empty region. False (and *b untouched) if base + capacity would wrap. */
NALLOC_DETAIL_HD bool nalloc_bump_init(nalloc_bump *b, uintptr_t base, size_t capacity)
{
    if (base > UINTPTR_MAX - capacity)
        return false;
    b->base = base;
    b->capacity = capacity;
    b->offset = 0;
    return true;
}

/* Reserve `size` bytes at `align` (a power of two) with compare-and-swap. On success returns true,
 * *begin is the block's offset and *pad the alignment bytes skipped in front of it. On failure
 * returns false and the region is unchanged. Safe from any number of threads at once. */
NALLOC_DETAIL_HD bool nalloc_bump_reserve(nalloc_bump *b, size_t size, size_t align,
                                          size_t *begin, size_t *pad)
{
    size_t offset = nalloc_detail_atomic_load(&b->offset);
    for (;;) {
        size_t first, end;
        if (!nalloc_bump_fit(b->base, b->capacity, offset, size, align, &first, &end))
            return false;
#if defined(__CUDA_ARCH__)
        if (nalloc_detail_atomic_cas(&b->offset, &offset, end)) {
#else
        /* Acquire on the host: bytes another thread gave back with nalloc_free_last (a release
         * CAS) are reused only after everything it did with them, as malloc after free. The
         * same lock cmpxchg as relaxed on x86. */
        if (__atomic_compare_exchange_n(&b->offset, &offset, end, true, __ATOMIC_ACQUIRE,
                                        __ATOMIC_RELAXED)) {
#endif
            *begin = first;
            *pad = first - offset;
            return true;
        }
    }
}

/* Reserve `size` bytes with one fetch-add on *counter, in a region of `capacity` bytes whose base
 * is aligned to `granule` (a power of two). The size is rounded up to the granule, so the offset
 * returned in *begin is granule-aligned. A request that cannot fit given the counter's current
 * value fails without touching it. One that loses a race (the room went to other threads between
 * that check and its add) fails having consumed its rounded size, leaving the counter past the
 * capacity, so every later request fails too: the sticky overflow kernels observe. Each add is of
 * at most `capacity` bytes and only made while the counter is at most `capacity`, so the counter
 * stays below capacity * (1 + number of threads racing), far from wrapping. */
NALLOC_DETAIL_HD bool nalloc_bump_reserve_add(size_t *counter, size_t capacity, size_t size,
                                              size_t granule, size_t *begin)
{
    size_t rounded;
    if (!nalloc_is_pow2(granule) || !nalloc_detail_round_up(size, granule, &rounded) ||
        rounded > capacity)
        return false;
    if (nalloc_detail_atomic_load(counter) > capacity - rounded)
        return false;
    size_t first = nalloc_detail_atomic_fetch_add(counter, rounded);
    if (first > capacity - rounded)
        return false;
    *begin = first;
    return true;
}

#ifdef __cplusplus
}
#endif

#endif /* NALLOC_BUMP_H */
