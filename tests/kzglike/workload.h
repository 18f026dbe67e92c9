/* tests/kzglike/workload.h - the blobs and settings that kzglike_run.c and tests/test_kzglike.c
 * both use, so that their results can be compared. */
#ifndef KZGLIKE_WORKLOAD_H
#define KZGLIKE_WORKLOAD_H

#include "kzglike.h"

#include <stdlib.h>

/* Blob lengths: one coefficient up to one too big for a chunk (1.2 MB -> 171429 coefficients,
 * 1.4 MB of them), so that every kind of block is made. */
static const size_t kz_workload_lens[] = {1, 7, 8, 100, 999, 4096, 30000, 100000, 1200000};
#define KZ_WORKLOAD_COUNT (sizeof kz_workload_lens / sizeof kz_workload_lens[0])
#define KZ_WORKLOAD_MAX_COEFFS ((size_t)1 << 18)
#define KZ_WORKLOAD_TAU (UINT64_C(0x1234567890abcde) % KZ_P)

/* Blob i of the workload (malloc'd; the caller frees it). NULL if malloc failed. */
static inline uint8_t *kz_workload_blob(size_t i)
{
    size_t len = kz_workload_lens[i];
    uint8_t *b = malloc(len);
    uint64_t x = (i + 1) * UINT64_C(0x9e3779b97f4a7c15) + 1;
    for (size_t k = 0; b != NULL && k < len; k++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        b[k] = (uint8_t)x;
    }
    return b;
}

#endif /* KZGLIKE_WORKLOAD_H */
