/* tests/test_pinned_gpu.c - pinned arenas and staging on a real device (label gpu).
 *
 * Exits 77 (skipped) without a device. With one: a pinned arena's whole usable range is
 * registered with CUDA, chunk by chunk; a polynomial goes host -> device -> host through
 * nalloc_stage_async and comes back as it left, with a change made on the device in between;
 * bad ranges are refused on real arenas too; and a pinned arena is reused across proofs without
 * registering anything again.
 */
#include "nalloc/cuda.h"
#include "nalloc/nalloc.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define CUDA_OK(call) assert_int_equal((call), cudaSuccess)

static nalloc_arena *make_arena(nalloc_kind kind, nalloc_memory memory, size_t capacity,
                                size_t pin_chunk)
{
    nalloc_arena_config c;
    nalloc_arena_config_init(&c, kind, memory, capacity);
    if (pin_chunk)
        c.pin_chunk = pin_chunk;
    nalloc_arena *a = NULL;
    nalloc_status st = nalloc_arena_create(&c, &a);
    if (st != NALLOC_OK)
        fail_msg("creating a %s arena: %s (%s)", memory == NALLOC_MEMORY_DEVICE ? "device" : "pinned",
                 nalloc_strerror(st), nalloc_cuda_error_string());
    return a;
}

/* CUDA knows `p` as page-locked host memory. */
static void assert_registered(const void *p)
{
    struct cudaPointerAttributes attr;
    CUDA_OK(cudaPointerGetAttributes(&attr, p));
    assert_int_equal(attr.type, cudaMemoryTypeHost);
}

static void test_the_whole_arena_is_registered_in_chunks(void **state)
{
    (void)state;
    const size_t chunk = 1 << 20, capacity = (16 << 20) + 12345;
    nalloc_arena *a = make_arena(NALLOC_KIND_POLY, NALLOC_MEMORY_PINNED, capacity, chunk);
    nalloc_stats s;
    assert_int_equal(nalloc_arena_stats(a, &s), NALLOC_OK);
    assert_true(s.pinned);
    assert_false(s.pin_fallback);
    assert_true(s.locked);
    assert_true(s.pin_seconds > 0.0);
    const char *base = (const char *)s.base;
    for (size_t off = 0; off < capacity; off += chunk / 2) /* every chunk's start and middle */
        assert_registered(base + off);
    assert_registered(base + capacity - 1);
    assert_int_equal(nalloc_arena_destroy(a), NALLOC_OK);
}

static void test_a_polynomial_makes_the_round_trip_through_the_device(void **state)
{
    (void)state;
    enum { N = 1 << 22 }; /* 2^22 Goldilocks elements: 32 MiB */
    nalloc_arena *pinned = make_arena(NALLOC_KIND_POLY, NALLOC_MEMORY_PINNED, 80 << 20, 0);
    nalloc_arena *device = make_arena(NALLOC_KIND_POLY, NALLOC_MEMORY_DEVICE, 40 << 20, 0);
    uint64_t *in = nalloc_alloc(pinned, N * sizeof(uint64_t));
    uint64_t *out = nalloc_alloc(pinned, N * sizeof(uint64_t));
    uint64_t *dev = nalloc_alloc(device, N * sizeof(uint64_t));
    assert_non_null(in);
    assert_non_null(out);
    assert_non_null(dev);
    for (size_t i = 0; i < N; i++)
        in[i] = i * UINT64_C(0x9e3779b97f4a7c15);
    memset(out, 0, N * sizeof(uint64_t));

    cudaStream_t stream;
    CUDA_OK(cudaStreamCreate(&stream));
    assert_int_equal(nalloc_stage_async(device, dev, pinned, in, N * sizeof(uint64_t), stream),
                     NALLOC_OK);
    /* A change on the device, so the data provably went there and back. */
    CUDA_OK(cudaMemsetAsync(dev + 1000, 0xff, 24 * sizeof(uint64_t), stream));
    assert_int_equal(nalloc_stage_async(pinned, out, device, dev, N * sizeof(uint64_t), stream),
                     NALLOC_OK);
    CUDA_OK(cudaStreamSynchronize(stream));
    for (size_t i = 0; i < N; i++) {
        uint64_t want = i >= 1000 && i < 1024 ? UINT64_MAX : in[i];
        if (out[i] != want)
            fail_msg("element %zu came back as %llx, not %llx", i, (unsigned long long)out[i],
                     (unsigned long long)want);
    }
    /* Partial copies at odd offsets. */
    assert_int_equal(nalloc_stage_async(pinned, (char *)out + 3, device, (char *)dev + 5, 1001,
                                        stream),
                     NALLOC_OK);
    CUDA_OK(cudaStreamSynchronize(stream));
    assert_memory_equal((char *)out + 3, (char *)in + 5, 1001);

    /* Bad ranges on real arenas are refused, and nothing was copied. */
    size_t bytes = N * sizeof(uint64_t);
    assert_int_equal(nalloc_stage_async(device, dev, pinned, in, bytes + 1, stream),
                     NALLOC_ERR_INVALID);
    assert_int_equal(nalloc_stage_async(device, dev + 1, pinned, in, bytes, stream),
                     NALLOC_ERR_INVALID);
    assert_int_equal(nalloc_stage_async(pinned, out, pinned, in, 8, stream), NALLOC_ERR_INVALID);
    CUDA_OK(cudaStreamDestroy(stream));
    assert_int_equal(nalloc_arena_destroy(device), NALLOC_OK);
    assert_int_equal(nalloc_arena_destroy(pinned), NALLOC_OK);
}

static void test_proofs_reuse_the_pinned_pages_without_registering_again(void **state)
{
    (void)state;
    nalloc_arena *pinned = make_arena(NALLOC_KIND_SCRATCH, NALLOC_MEMORY_PINNED, 8 << 20, 0);
    nalloc_stats first, later;
    assert_int_equal(nalloc_arena_stats(pinned, &first), NALLOC_OK);
    void *p = NULL;
    for (int proof = 0; proof < 5; proof++) {
        void *q = nalloc_alloc(pinned, 4 << 20);
        assert_non_null(q);
        assert_true(p == NULL || p == q); /* the same pages, proof after proof */
        p = q;
        assert_registered(p);
        nalloc_reset(pinned);
    }
    assert_int_equal(nalloc_arena_stats(pinned, &later), NALLOC_OK);
    assert_true(later.pin_seconds == first.pin_seconds);
    assert_int_equal(nalloc_arena_destroy(pinned), NALLOC_OK);
}

static void test_a_pinned_witness_arena_is_wiped_and_unregistered(void **state)
{
    (void)state;
    nalloc_arena *w = make_arena(NALLOC_KIND_WITNESS, NALLOC_MEMORY_PINNED, 1 << 20, 0);
    unsigned char *secret = nalloc_alloc(w, 4096);
    memset(secret, 0x5a, 4096);
    assert_int_equal(nalloc_wipe_async(w, NULL), NALLOC_OK);
    for (size_t i = 0; i < 4096; i++)
        assert_int_equal(secret[i], 0);
    memset(nalloc_alloc(w, 4096), 0x5a, 4096);
    assert_int_equal(nalloc_arena_destroy(w), NALLOC_OK);
    /* The same address range may be registered afresh by a new arena: nothing was left behind. */
    nalloc_arena *again = make_arena(NALLOC_KIND_WITNESS, NALLOC_MEMORY_PINNED, 1 << 20, 0);
    assert_int_equal(nalloc_arena_destroy(again), NALLOC_OK);
}

int main(void)
{
    if (nalloc_cuda_available() != NALLOC_OK) {
        fprintf(stderr, "no CUDA device: %s\n", nalloc_cuda_error_string());
        return 77;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_the_whole_arena_is_registered_in_chunks),
        cmocka_unit_test(test_a_polynomial_makes_the_round_trip_through_the_device),
        cmocka_unit_test(test_proofs_reuse_the_pinned_pages_without_registering_again),
        cmocka_unit_test(test_a_pinned_witness_arena_is_wiped_and_unregistered),
    };
    return cmocka_run_group_tests_name("pinned_gpu", tests, NULL, NULL);
}
