/* bench/ntt.c - radix-2 NTTs over Goldilocks and BabyBear (contract in ntt.h).
 *
 * One implementation, instantiated for both fields by NTT_DEFINE below: the two differ only in
 * the element type and the arithmetic, and keeping a single body means the Goldilocks path the
 * tests check is the very code the BabyBear path runs.
 */
#include "ntt.h"

#include <string.h>

#define NTT_DEFINE(F, T)                                                                           \
    void F##_twiddles(T *tw, unsigned log_n)                                                       \
    {                                                                                              \
        size_t half = ((size_t)1 << log_n) / 2;                                                    \
        T w = F##_root_of_unity(log_n), x = 1;                                                     \
        for (size_t j = 0; j < half; j++) {                                                        \
            tw[j] = x;                                                                             \
            x = F##_mul(x, w);                                                                     \
        }                                                                                          \
    }                                                                                              \
                                                                                                   \
    void F##_ntt(T *a, unsigned log_n, const T *tw, size_t stride)                                 \
    {                                                                                              \
        size_t n = (size_t)1 << log_n;                                                             \
        for (size_t i = 1, j = 0; i < n; i++) { /* bit-reversal permutation */                     \
            size_t bit = n >> 1;                                                                   \
            for (; j & bit; bit >>= 1)                                                             \
                j ^= bit;                                                                          \
            j ^= bit;                                                                              \
            if (i < j) {                                                                           \
                T t = a[i];                                                                        \
                a[i] = a[j];                                                                       \
                a[j] = t;                                                                          \
            }                                                                                      \
        }                                                                                          \
        for (size_t len = 2; len <= n; len <<= 1) {                                                \
            size_t half = len / 2, step = (n / len) * stride;                                      \
            for (size_t i = 0; i < n; i += len) {                                                  \
                T *lo = a + i, *hi = a + i + half;                                                 \
                for (size_t j = 0; j < half; j++) {                                                \
                    T u = lo[j], v = F##_mul(hi[j], tw[j * step]);                                 \
                    lo[j] = F##_add(u, v);                                                         \
                    hi[j] = F##_sub(u, v);                                                         \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
    }                                                                                              \
                                                                                                   \
    void F##_intt(T *a, unsigned log_n, const T *tw, size_t stride)                                \
    {                                                                                              \
        size_t n = (size_t)1 << log_n;                                                             \
        F##_ntt(a, log_n, tw, stride);                                                             \
        for (size_t k = 1; k < n - k; k++) { /* w^-ik = w^i(n-k) */                                \
            T t = a[k];                                                                            \
            a[k] = a[n - k];                                                                       \
            a[n - k] = t;                                                                          \
        }                                                                                          \
        T n_inv = F##_inv((T)(n % F##_P));                                                         \
        for (size_t k = 0; k < n; k++)                                                             \
            a[k] = F##_mul(a[k], n_inv);                                                           \
    }                                                                                              \
                                                                                                   \
    void F##_lde(const T *values, unsigned log_h, unsigned log_blowup, T shift, const T *tw,       \
                 T *out)                                                                           \
    {                                                                                              \
        size_t h = (size_t)1 << log_h, n = h << log_blowup;                                        \
        if (out != values)                                                                         \
            memmove(out, values, h * sizeof(T));                                                   \
        F##_intt(out, log_h, tw, (size_t)1 << log_blowup); /* coefficients */                      \
        T x = 1;                                                                                   \
        for (size_t i = 0; i < h; i++) { /* p(shift * X) */                                        \
            out[i] = F##_mul(out[i], x);                                                           \
            x = F##_mul(x, shift);                                                                 \
        }                                                                                          \
        memset(out + h, 0, (n - h) * sizeof(T));                                                   \
        F##_ntt(out, log_h + log_blowup, tw, 1);                                                   \
    }                                                                                              \
                                                                                                   \
    void F##_dft_naive(const T *a, size_t n, T root, T *out)                                       \
    {                                                                                              \
        T wk = 1; /* root^k */                                                                     \
        for (size_t k = 0; k < n; k++) {                                                           \
            T acc = 0, wik = 1; /* root^(i*k) */                                                   \
            for (size_t i = 0; i < n; i++) {                                                       \
                acc = F##_add(acc, F##_mul(a[i], wik));                                            \
                wik = F##_mul(wik, wk);                                                            \
            }                                                                                      \
            out[k] = acc;                                                                          \
            wk = F##_mul(wk, root);                                                                \
        }                                                                                          \
    }


NTT_DEFINE(gl, uint64_t)
NTT_DEFINE(bb, uint32_t)
