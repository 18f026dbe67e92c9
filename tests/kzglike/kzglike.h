/* tests/kzglike/kzglike.h - a toy polynomial-commitment library shaped like c-kzg-4844, for
 * testing routes and the malloc override (tests/test_kzglike.c, tests/kzglike/run_preloaded.sh).
 *
 * It knows nothing of nalloc: it calls plain malloc, calloc, realloc and free, frees in
 * allocation order as C libraries usually do, calls its own public functions from inside each
 * other (kz_blob_to_proof calls kz_commit and kz_prove, which calls kz_commit), keeps settings
 * alive across calls, and runs batches on a thread pool of its own whose workers free what the
 * caller allocated. Every result can be checked without it: over the field of p = 2^61 - 1, a
 * commitment is the polynomial's value at the setup's secret tau, a proof is the quotient
 * (f(x) - f(z)) / (x - z) evaluated there, and kz_verify checks C - y == proof * (tau - z).
 * (Not a cryptographic scheme: the secret is in the settings.)
 */
#ifndef KZGLIKE_H
#define KZGLIKE_H

#include <stddef.h>
#include <stdint.h>

#define KZ_P ((UINT64_C(1) << 61) - 1) /* the field's modulus, a Mersenne prime */

typedef enum kz_ret { KZ_OK = 0, KZ_BADARGS, KZ_MALLOC } kz_ret;

typedef struct kz_settings kz_settings;

/* Settings for polynomials of up to max_coeffs coefficients, from the secret tau. */
kz_ret kz_setup(size_t max_coeffs, uint64_t tau, kz_settings **out);
void kz_free_settings(kz_settings *s);
uint64_t kz_secret(const kz_settings *s); /* for tests that check results without the library */

/* The commitment to the polynomial with coefficients coeffs[0..n-1] (lowest first, each < KZ_P). */
kz_ret kz_commit(const kz_settings *s, const uint64_t *coeffs, size_t n, uint64_t *commitment);

/* y = f(z) and the proof of it. */
kz_ret kz_prove(const kz_settings *s, const uint64_t *coeffs, size_t n, uint64_t z, uint64_t *y,
                uint64_t *proof);

/* 1 when proof shows that the polynomial committed to by `commitment` has value y at z. */
int kz_verify(const kz_settings *s, uint64_t commitment, uint64_t z, uint64_t y, uint64_t proof);

/* A blob (bytes, 7 to a coefficient) committed to and proven at a challenge z derived from the
 * blob and its commitment (Fiat-Shamir, as c-kzg's blob proofs). */
typedef struct kz_blob_proof {
    uint64_t commitment, z, y, proof;
} kz_blob_proof;
kz_ret kz_blob_to_proof(const kz_settings *s, const uint8_t *blob, size_t len, kz_blob_proof *out);

/* A pool of worker threads, and a batch of blob proofs run on it. */
typedef struct kz_pool kz_pool;
kz_ret kz_pool_create(unsigned threads, kz_pool **out);
void kz_pool_destroy(kz_pool *pool);
kz_ret kz_batch_prove(kz_pool *pool, const kz_settings *s, const uint8_t *const *blobs,
                      const size_t *lens, size_t count, kz_blob_proof *out);

/* Field arithmetic, for checking results from outside. */
uint64_t kz_mul(uint64_t a, uint64_t b);
uint64_t kz_add(uint64_t a, uint64_t b);
uint64_t kz_sub(uint64_t a, uint64_t b);

#endif /* KZGLIKE_H */
