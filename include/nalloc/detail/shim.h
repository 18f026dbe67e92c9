/* nalloc/detail/shim.h - what nalloc's inline code needs on host and device alike. Not API.
 *
 * The bump core (nalloc/bump.h) and the in-kernel allocation paths (nalloc/device.cuh,
 * nalloc/detail/warp.h) are one set of functions compiled as C11, as C++ and by nvcc for host and
 * device, so the host tests run exactly the code a GPU runs. What makes that possible is here:
 * the macro that declares such a function, an atomic shim that is GCC's __atomic builtins on the
 * host and atomicCAS/atomicAdd on the device, and checked rounding. Users call none of it; names
 * are nalloc_detail_* and NALLOC_DETAIL_*, and may change in any release.
 */
#ifndef NALLOC_DETAIL_SHIM_H
#define NALLOC_DETAIL_SHIM_H

#include <stddef.h>
#include <stdint.h>
#ifndef __cplusplus
#include <stdbool.h>
#endif

/* NALLOC_DETAIL_HD: a function compiled for both host and device, inlined everywhere. */
#if defined(__CUDACC__)
#define NALLOC_DETAIL_HD static __host__ __device__ __forceinline__
#elif defined(__GNUC__)
#define NALLOC_DETAIL_HD static inline __attribute__((always_inline))
#else
#define NALLOC_DETAIL_HD static inline
#endif

#if !defined(__CUDA_ARCH__) && !defined(__GNUC__)
#error "nalloc/bump.h needs GCC-style __atomic builtins on the host (gcc, clang, or nvcc's host pass)"
#endif

/* size_t counters are updated with atomicCAS/atomicAdd on unsigned long long on the device. */
#if defined(__cplusplus)
static_assert(sizeof(size_t) == sizeof(unsigned long long), "nalloc needs a 64-bit size_t");
#else
_Static_assert(sizeof(size_t) == sizeof(unsigned long long), "nalloc needs a 64-bit size_t");
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ---- The atomic shim: relaxed ordering throughout. Disjointness of blocks needs only the single
 * total order of successful updates of one word; publishing a block's contents to another thread
 * is the caller's synchronization, as with malloc. ---- */

NALLOC_DETAIL_HD size_t nalloc_detail_atomic_load(const size_t *p)
{
#if defined(__CUDA_ARCH__)
    return *(const volatile size_t *)p;
#else
    return __atomic_load_n(p, __ATOMIC_RELAXED);
#endif
}

NALLOC_DETAIL_HD void nalloc_detail_atomic_store(size_t *p, size_t v)
{
#if defined(__CUDA_ARCH__)
    *(volatile size_t *)p = v;
#else
    __atomic_store_n(p, v, __ATOMIC_RELAXED);
#endif
}

/* If *p == *expected, store desired and return true; otherwise load *p into *expected. */
NALLOC_DETAIL_HD bool nalloc_detail_atomic_cas(size_t *p, size_t *expected, size_t desired)
{
#if defined(__CUDA_ARCH__)
    unsigned long long seen =
        atomicCAS((unsigned long long *)p, (unsigned long long)*expected, (unsigned long long)desired);
    bool ok = seen == (unsigned long long)*expected;
    *expected = (size_t)seen;
    return ok;
#else
    return __atomic_compare_exchange_n(p, expected, desired, true, __ATOMIC_RELAXED,
                                       __ATOMIC_RELAXED);
#endif
}

NALLOC_DETAIL_HD size_t nalloc_detail_atomic_fetch_add(size_t *p, size_t v)
{
#if defined(__CUDA_ARCH__)
    return (size_t)atomicAdd((unsigned long long *)p, (unsigned long long)v);
#else
    return __atomic_fetch_add(p, v, __ATOMIC_RELAXED);
#endif
}

/* Raise *p to at least v. */
NALLOC_DETAIL_HD void nalloc_detail_atomic_max(size_t *p, size_t v)
{
    size_t seen = nalloc_detail_atomic_load(p);
    while (seen < v && !nalloc_detail_atomic_cas(p, &seen, v)) {
    }
}

/* ---- Checked arithmetic ---- */

/* *out = x rounded up to a multiple of `align` (a power of two); false if that wraps. */
NALLOC_DETAIL_HD bool nalloc_detail_round_up(size_t x, size_t align, size_t *out)
{
    size_t mask = align - 1;
    if (x > SIZE_MAX - mask)
        return false;
    *out = (x + mask) & ~mask;
    return true;
}

#ifdef __cplusplus
}
#endif

#endif /* NALLOC_DETAIL_SHIM_H */
