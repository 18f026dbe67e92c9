/* bench/ntt.h - radix-2 number-theoretic transforms and low-degree extensions.
 *
 * The prover-shaped benchmark extends every trace column the way a STARK prover does: interpolate
 * the column's h values (an inverse NTT of size h), shift the polynomial onto a coset, and
 * evaluate it on h * blowup points (a forward NTT). That is most of a CPU prover's arithmetic, and
 * it streams through every byte of the extended columns nalloc hands out.
 *
 * The transforms are iterative, decimation in time, with a bit-reversal permutation first:
 * natural order in, natural order out, so out[k] = sum_i a[i] * w^(i*k) with w = root_of_unity(n).
 * The butterflies read their twiddles from a table the caller builds once per size and passes in
 * (the benchmark puts it in scratch memory, as provers do): tw[j] = w_N^j for j < N/2, where
 * N = n * stride, so one table for the extended size serves the smaller inverse transform too
 * (stride = blowup). The inverse is the forward transform, the reversal k -> n - k, and a scaling
 * by 1/n.
 *
 * Sizes are powers of two: log_n up to the field's two-adicity (Goldilocks 32, BabyBear 27).
 * tests/test_ntt.c checks every function against the O(n^2) definition on small sizes.
 */
#ifndef NALLOC_BENCH_NTT_H
#define NALLOC_BENCH_NTT_H

#include <stddef.h>
#include <stdint.h>

#include "field.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Goldilocks (8-byte elements). */
void gl_twiddles(uint64_t *tw, unsigned log_n);       /* tw[j] = w_n^j, j < n/2 (n >= 2) */
void gl_ntt(uint64_t *a, unsigned log_n, const uint64_t *tw, size_t stride);
void gl_intt(uint64_t *a, unsigned log_n, const uint64_t *tw, size_t stride);
/* out[0, h << log_blowup): the polynomial interpolating values[0, h) on the subgroup of size h,
 * evaluated on shift * (the subgroup of size h << log_blowup). tw: gl_twiddles for that size.
 * values and out may be the same array when it has room for the extension. */
void gl_lde(const uint64_t *values, unsigned log_h, unsigned log_blowup, uint64_t shift,
            const uint64_t *tw, uint64_t *out);
/* out[k] = sum_i a[i] * root^(i*k), the O(n^2) definition (tests only). */
void gl_dft_naive(const uint64_t *a, size_t n, uint64_t root, uint64_t *out);

/* BabyBear (4-byte elements): the same functions. */
void bb_twiddles(uint32_t *tw, unsigned log_n);
void bb_ntt(uint32_t *a, unsigned log_n, const uint32_t *tw, size_t stride);
void bb_intt(uint32_t *a, unsigned log_n, const uint32_t *tw, size_t stride);
void bb_lde(const uint32_t *values, unsigned log_h, unsigned log_blowup, uint32_t shift,
            const uint32_t *tw, uint32_t *out);
void bb_dft_naive(const uint32_t *a, size_t n, uint32_t root, uint32_t *out);

#ifdef __cplusplus
}
#endif

#endif /* NALLOC_BENCH_NTT_H */
