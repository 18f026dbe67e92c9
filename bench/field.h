/* bench/field.h - the two prime fields STARK provers use, for the benchmark's real work.
 *
 * The prover-shaped benchmark does not just allocate and touch memory: it runs number-theoretic
 * transforms over the extended columns, which is the work nalloc's memory exists for. Two fields:
 *
 *  - Goldilocks, p = 2^64 - 2^32 + 1 (Plonky2/3, OpenVM's 8-byte elements). 2^32 divides p - 1,
 *    so radix-2 transforms exist up to 2^32 points; 7 generates the multiplicative group.
 *    Multiplication reduces the 128-bit product with 2^64 = 2^32 - 1 and 2^96 = -1 (mod p).
 *  - BabyBear, p = 15 * 2^27 + 1 (Plonky3, RISC Zero, SP1's 4-byte elements). Two-adicity 27;
 *    31 generates the multiplicative group. Multiplication is a 64-bit product and a reduction the
 *    compiler turns into multiplications.
 *
 * Every function takes and returns canonical values (in [0, p)). Header-only: the benchmark's
 * kernels and tests/test_ntt.c inline the same code.
 */
#ifndef NALLOC_BENCH_FIELD_H
#define NALLOC_BENCH_FIELD_H

#include <stdbool.h>
#include <stdint.h>

/* ---- Goldilocks ---- */

#define GL_P 0xFFFFFFFF00000001ull
#define GL_EPSILON 0xFFFFFFFFull /* 2^64 - p = 2^32 - 1 */
#define GL_TWO_ADICITY 32
#define GL_GENERATOR 7ull

static inline uint64_t gl_add(uint64_t a, uint64_t b)
{
    uint64_t s;
    if (__builtin_add_overflow(a, b, &s))
        s += GL_EPSILON; /* 2^64 + s = s + EPSILON (mod p), and that is below p: no wrap */
    return s >= GL_P ? s - GL_P : s;
}

static inline uint64_t gl_sub(uint64_t a, uint64_t b)
{
    uint64_t d;
    if (__builtin_sub_overflow(a, b, &d))
        d -= GL_EPSILON; /* d = a - b + 2^64; a - b + p = d - EPSILON, at least 1 */
    return d;
}

/* x = hi * 2^64 + lo, reduced: x = lo + hi_lo * (2^32 - 1) - hi_hi (mod p). */
static inline uint64_t gl_reduce128(unsigned __int128 x)
{
    uint64_t lo = (uint64_t)x, hi = (uint64_t)(x >> 64);
    uint64_t hi_hi = hi >> 32, hi_lo = hi & GL_EPSILON;
    uint64_t t0;
    if (__builtin_sub_overflow(lo, hi_hi, &t0))
        t0 -= GL_EPSILON; /* borrowed 2^64: give back 2^64 - p */
    uint64_t t1 = hi_lo * GL_EPSILON; /* at most (2^32 - 1)^2: no wrap */
    uint64_t t2;
    if (__builtin_add_overflow(t0, t1, &t2))
        t2 += GL_EPSILON;
    return t2 >= GL_P ? t2 - GL_P : t2;
}

static inline uint64_t gl_mul(uint64_t a, uint64_t b)
{
    return gl_reduce128((unsigned __int128)a * b);
}

/* ---- BabyBear ---- */

#define BB_P 2013265921u /* 15 * 2^27 + 1 */
#define BB_TWO_ADICITY 27
#define BB_GENERATOR 31u

static inline uint32_t bb_add(uint32_t a, uint32_t b)
{
    uint32_t s = a + b; /* < 2p < 2^32 */
    return s >= BB_P ? s - BB_P : s;
}

static inline uint32_t bb_sub(uint32_t a, uint32_t b)
{
    return a >= b ? a - b : a + (BB_P - b);
}

static inline uint32_t bb_mul(uint32_t a, uint32_t b)
{
    return (uint32_t)(((uint64_t)a * b) % BB_P);
}

/* ---- What both fields derive from their multiplication ---- */

/* The constants under the functions' prefixes, for code written once for both fields. */
#define gl_P GL_P
#define gl_GENERATOR GL_GENERATOR
#define bb_P BB_P
#define bb_GENERATOR BB_GENERATOR

/* F_pow(base, e), F_inv(a) for a != 0 (Fermat: a^(p-2)), and F_root_of_unity(log_n), a primitive
 * 2^log_n-th root of unity for log_n up to the field's two-adicity. */
#define FIELD_DERIVED(F, T)                                                                        \
    static inline T F##_pow(T base, uint64_t e)                                                    \
    {                                                                                              \
        T r = 1;                                                                                   \
        for (; e; e >>= 1, base = F##_mul(base, base))                                             \
            if (e & 1)                                                                             \
                r = F##_mul(r, base);                                                              \
        return r;                                                                                  \
    }                                                                                              \
    static inline T F##_inv(T a)                                                                   \
    {                                                                                              \
        return F##_pow(a, (uint64_t)F##_P - 2);                                                    \
    }                                                                                              \
    static inline T F##_root_of_unity(unsigned log_n)                                              \
    {                                                                                              \
        return F##_pow(F##_GENERATOR, ((uint64_t)F##_P - 1) >> log_n);                             \
    }

FIELD_DERIVED(gl, uint64_t)
FIELD_DERIVED(bb, uint32_t)

#endif /* NALLOC_BENCH_FIELD_H */
