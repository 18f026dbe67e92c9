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

#include "testutil.h" /* peek_released */

#define CUDA_OK(call) assert_int_equal((call), cudaSuccess)

static nalloc_arena *cuda_arena(nalloc_kind kind, nalloc_memory memory, size_t capacity,
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
    nalloc_arena *a = cuda_arena(NALLOC_KIND_POLY, NALLOC_MEMORY_PINNED, capacity, chunk);
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
    nalloc_arena *pinned = cuda_arena(NALLOC_KIND_POLY, NALLOC_MEMORY_PINNED, 80 << 20, 0);
    nalloc_arena *device = cuda_arena(NALLOC_KIND_POLY, NALLOC_MEMORY_DEVICE, 40 << 20, 0);
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
    nalloc_arena *pinned = cuda_arena(NALLOC_KIND_SCRATCH, NALLOC_MEMORY_PINNED, 8 << 20, 0);
    nalloc_stats first, later;
    assert_int_equal(nalloc_arena_stats(pinned, &first), NALLOC_OK);
    void *p = NULL;
    for (int proof = 0; proof < 5; proof++) {
        void *q = nalloc_alloc(pinned, 4 << 20);
        assert_non_null(q);
        assert_true(p == NULL || p == q); /* the same pages, proof after proof */
        p = q;
        assert_registered(p);
        assert_int_equal(nalloc_reset(pinned), NALLOC_OK);
    }
    assert_int_equal(nalloc_arena_stats(pinned, &later), NALLOC_OK);
    assert_true(later.pin_seconds == first.pin_seconds);
    assert_int_equal(nalloc_arena_destroy(pinned), NALLOC_OK);
}

static void test_a_pinned_witness_arena_is_wiped_and_unregistered(void **state)
{
    (void)state;
    nalloc_arena *w = cuda_arena(NALLOC_KIND_WITNESS, NALLOC_MEMORY_PINNED, 1 << 20, 0);
    unsigned char *secret = nalloc_alloc(w, 4096);
    memset(secret, 0x5a, 4096);
    assert_int_equal(nalloc_wipe_async(w, NULL), NALLOC_OK);
    for (size_t i = 0; i < 4096; i++)
        assert_int_equal(peek_released(secret, i), 0);
    memset(nalloc_alloc(w, 4096), 0x5a, 4096);
    assert_int_equal(nalloc_arena_destroy(w), NALLOC_OK);
    /* The same address range may be registered afresh by a new arena: nothing was left behind. */
    nalloc_arena *again = cuda_arena(NALLOC_KIND_WITNESS, NALLOC_MEMORY_PINNED, 1 << 20, 0);
    assert_int_equal(nalloc_arena_destroy(again), NALLOC_OK);
}

/* A download into a pinned witness arena, still queued when nalloc_wipe_async is called on its
 * stream, must not land after the wipe: the wipe waits for the stream before zeroing. */
static void test_a_pinned_wipe_follows_the_copies_queued_on_its_stream(void **state)
{
    (void)state;
    const size_t n = 64 << 20;
    nalloc_arena *device = cuda_arena(NALLOC_KIND_SCRATCH, NALLOC_MEMORY_DEVICE, n, 0);
    nalloc_arena *w = cuda_arena(NALLOC_KIND_WITNESS, NALLOC_MEMORY_PINNED, n, 0);
    unsigned char *dev = nalloc_alloc(device, n);
    assert_non_null(dev);
    cudaStream_t s;
    CUDA_OK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
    for (int round = 0; round < 3; round++) {
        CUDA_OK(cudaMemsetAsync(dev, 0x5a, n, s));
        unsigned char *secret = nalloc_alloc(w, n);
        assert_non_null(secret);
        memset(secret, 0, n);
        assert_int_equal(nalloc_stage_async(w, secret, device, dev, n, s), NALLOC_OK);
        assert_int_equal(nalloc_wipe_async(w, s), NALLOC_OK); /* the copy is still queued */
        CUDA_OK(cudaStreamSynchronize(s));
        for (size_t i = 0; i < n; i += 4093)
            if (peek_released(secret, i) != 0)
                fail_msg("round %d: byte %zu came back after the wipe", round, i);
        assert_int_equal(peek_released(secret, n - 1), 0);
    }
    CUDA_OK(cudaStreamDestroy(s));
    assert_int_equal(nalloc_arena_destroy(w), NALLOC_OK);
    assert_int_equal(nalloc_arena_destroy(device), NALLOC_OK);
}

/* The fastest of 5 uploads of n bytes from `src` (a block of the pinned arena `from`) to `dst`
 * (a block of the device arena `to`), in milliseconds. */
static float fastest_upload(nalloc_arena *to, void *dst, nalloc_arena *from, const void *src,
                            size_t n, cudaStream_t s)
{
    cudaEvent_t e0, e1;
    CUDA_OK(cudaEventCreate(&e0));
    CUDA_OK(cudaEventCreate(&e1));
    float best = 1e30f;
    for (int r = 0; r < 5; r++) {
        float ms;
        CUDA_OK(cudaEventRecord(e0, s));
        assert_int_equal(nalloc_stage_async(to, dst, from, src, n, s), NALLOC_OK);
        CUDA_OK(cudaEventRecord(e1, s));
        CUDA_OK(cudaEventSynchronize(e1));
        CUDA_OK(cudaEventElapsedTime(&ms, e0, e1));
        best = ms < best ? ms : best;
    }
    CUDA_OK(cudaEventDestroy(e0));
    CUDA_OK(cudaEventDestroy(e1));
    return best;
}

/* An arena registered in many chunks is one pinned range to the copy engines: copies that cross
 * chunk boundaries (a polynomial of a large pinned arena does, every pin_chunk bytes) are correct
 * in both directions, and go as fast as copies inside one chunk. */
static void test_copies_across_pin_chunks_make_the_round_trip(void **state)
{
    (void)state;
    const size_t chunk = 1 << 20, n = 24 << 20;
    nalloc_arena *pinned = cuda_arena(NALLOC_KIND_POLY, NALLOC_MEMORY_PINNED, 2 * n, chunk);
    nalloc_arena *one = cuda_arena(NALLOC_KIND_POLY, NALLOC_MEMORY_PINNED, n, 0); /* one chunk */
    nalloc_arena *device = cuda_arena(NALLOC_KIND_POLY, NALLOC_MEMORY_DEVICE, n, 0);
    unsigned char *in = nalloc_alloc(pinned, n), *out = nalloc_alloc(pinned, n);
    unsigned char *ref = nalloc_alloc(one, n), *dev = nalloc_alloc(device, n);
    assert_non_null(in);
    assert_non_null(out);
    assert_non_null(ref);
    assert_non_null(dev);
    for (size_t i = 0; i < n; i++)
        in[i] = (unsigned char)(i * 131 + (i >> 20));
    memset(out, 0, n);
    memset(ref, 1, n);
    cudaStream_t s;
    CUDA_OK(cudaStreamCreate(&s));
    /* Unaligned ranges that straddle several chunk boundaries. */
    assert_int_equal(nalloc_stage_async(device, dev + 3, pinned, in + 3, n - 7, s), NALLOC_OK);
    assert_int_equal(nalloc_stage_async(pinned, out + 3, device, dev + 3, n - 7, s), NALLOC_OK);
    CUDA_OK(cudaStreamSynchronize(s));
    assert_memory_equal(out + 3, in + 3, n - 7);

    /* Timing: the crossing copy against the same copy from a single-chunk arena. A copy the
     * driver could not treat as pinned would be staged through a bounce buffer, several times
     * slower; a factor of 2 leaves room for noise. */
    float crossing = fastest_upload(device, dev, pinned, in, n, s);
    float single = fastest_upload(device, dev, one, ref, n, s);
    fprintf(stderr, "24 MiB upload: %.3f ms across 1 MiB pin chunks, %.3f ms from one chunk\n",
            crossing, single);
    assert_true(crossing <= 2 * single);
    CUDA_OK(cudaStreamDestroy(s));
    assert_int_equal(nalloc_arena_destroy(device), NALLOC_OK);
    assert_int_equal(nalloc_arena_destroy(one), NALLOC_OK);
    assert_int_equal(nalloc_arena_destroy(pinned), NALLOC_OK);
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
        cmocka_unit_test(test_a_pinned_wipe_follows_the_copies_queued_on_its_stream),
        cmocka_unit_test(test_copies_across_pin_chunks_make_the_round_trip),
    };
    return cmocka_run_group_tests_name("pinned_gpu", tests, NULL, NULL);
}
