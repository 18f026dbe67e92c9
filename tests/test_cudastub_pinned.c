/* tests/test_cudastub_pinned.c - pinned arenas and staging copies against the CUDA stand-in.
 *
 * test_pinned.c can only see the no-driver side here (refusal, or the locked-memory fallback);
 * with the stand-in the registered side runs: the arena's usable range page-locked in chunks
 * (every chunk registered once, Portable, and unregistered at destroy), wipes in stream order
 * that wait for the copies queued into the arena, and real bytes staged up to a device arena and
 * back, in stream order. Fault paths: test_cudastub_faults.c.
 */
#include "cudastub.h"
#include "nalloc/cuda.h"
#include "testutil.h"

static int reset_stub(void **state)
{
    (void)state;
    cudastub_reset(NULL);
    return 0;
}

static int check_stub(void **state)
{
    (void)state;
    cudastub_counts c = cudastub_counts_now();
    if (c.misuse != 0)
        fail_msg("stand-in misuse: %s", cudastub_misuse_text());
    assert_int_equal(c.blocks, 0);
    assert_int_equal(c.registrations, 0);
    assert_int_equal(cudaPeekAtLastError(), cudaSuccess);
    return 0;
}

static nalloc_arena *pinned_arena(nalloc_kind kind, size_t capacity, size_t chunk)
{
    nalloc_arena_config c;
    nalloc_arena_config_init(&c, kind, NALLOC_MEMORY_PINNED, capacity);
    c.pin_chunk = chunk;
    nalloc_arena *a = NULL;
    assert_int_equal(nalloc_arena_create(&c, &a), NALLOC_OK);
    return a;
}

static nalloc_arena *device_arena(size_t capacity)
{
    nalloc_arena_config c;
    nalloc_arena_config_init(&c, NALLOC_KIND_SCRATCH, NALLOC_MEMORY_DEVICE, capacity);
    nalloc_arena *a = NULL;
    assert_int_equal(nalloc_arena_create(&c, &a), NALLOC_OK);
    return a;
}

/* [base, base + size) is registered as consecutive chunks of `chunk` bytes (the last shorter),
 * each Portable, and nothing else is. */
static void assert_registered_in_chunks(const char *base, size_t size, size_t chunk)
{
    size_t chunks = 0;
    for (size_t done = 0; done < size; done += chunk, chunks++) {
        size_t len = size - done < chunk ? size - done : chunk;
        unsigned flags = 0;
        assert_true(cudastub_is_registered(base + done, len, &flags));
        assert_true(flags & cudaHostRegisterPortable);
        if (done + len < size) /* a chunk ends where the next one starts */
            assert_false(cudastub_is_registered(base + done, len + 1, NULL));
    }
    assert_int_equal(cudastub_counts_now().registrations, chunks);
    assert_int_equal(cudastub_calls(CUDASTUB_HOST_REGISTER), chunks);
}

static void test_a_pinned_arena_registers_its_usable_range_in_chunks(void **state)
{
    (void)state;
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    const struct {
        size_t capacity, chunk, expected_chunk;
    } cases[] = {
        {64 * KiB, 16 * KiB, 16 * KiB}, /* whole chunks */
        {64 * KiB, 24 * KiB, 24 * KiB}, /* a shorter last chunk */
        {64 * KiB, 5000, 2 * page},     /* rounded up to whole pages */
        {64 * KiB, 0, 64 * KiB},        /* the default (1 GiB): one chunk */
        {64 * KiB, 1 * GiB, 64 * KiB},
        {64 * KiB, SIZE_MAX, 64 * KiB}, /* too big to round up to pages: one chunk */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cudastub_reset(NULL);
        nalloc_arena *a = pinned_arena(NALLOC_KIND_SCRATCH, cases[i].capacity, cases[i].chunk);
        nalloc_stats s = stats_of(a);
        assert_true(s.pinned);
        assert_true(s.locked);
        assert_false(s.pin_fallback);
        assert_true(s.pin_seconds >= 0.0);
        assert_true(s.guard_pages);
        size_t usable = s.reserved - 2 * s.guard_size;
        assert_true(usable >= cases[i].capacity);
        assert_registered_in_chunks((const char *)s.base, usable, cases[i].expected_chunk);
        /* Host memory all the same: the CPU writes it directly. */
        char *p = nalloc_alloc(a, 1000);
        memset(p, 1, 1000);
        assert_int_equal(nalloc_arena_destroy(a), NALLOC_OK);
        assert_int_equal(cudastub_counts_now().registrations, 0);
        assert_int_equal(cudastub_calls(CUDASTUB_HOST_UNREGISTER),
                         cudastub_calls(CUDASTUB_HOST_REGISTER));
    }
}

static void test_the_fallback_flag_changes_nothing_where_there_is_a_device(void **state)
{
    (void)state;
    nalloc_arena_config c;
    nalloc_arena_config_init(&c, NALLOC_KIND_WITNESS, NALLOC_MEMORY_PINNED, 64 * KiB);
    c.flags |= NALLOC_FLAG_PIN_FALLBACK;
    nalloc_arena *a = NULL;
    assert_int_equal(nalloc_arena_create(&c, &a), NALLOC_OK);
    nalloc_stats s = stats_of(a);
    assert_true(s.pinned);
    assert_false(s.pin_fallback);
    assert_int_equal(cudastub_counts_now().registrations, 1);
    assert_int_equal(nalloc_arena_destroy(a), NALLOC_OK);
}

static void test_secret_memory_is_refused_before_anything_is_registered(void **state)
{
    (void)state;
    nalloc_arena_config c;
    nalloc_arena_config_init(&c, NALLOC_KIND_WITNESS, NALLOC_MEMORY_PINNED, 64 * KiB);
    c.flags |= NALLOC_FLAG_SECRET;
    nalloc_arena *a = NULL;
    assert_int_equal(nalloc_arena_create(&c, &a), NALLOC_ERR_UNSUPPORTED);
    assert_null(a);
    assert_int_equal(cudastub_calls(CUDASTUB_HOST_REGISTER), 0);
}

static void test_a_mapping_refused_before_pinning_registers_nothing(void **state)
{
    (void)state;
    nalloc_arena_config c;
    nalloc_arena_config_init(&c, NALLOC_KIND_SCRATCH, NALLOC_MEMORY_PINNED, 64 * KiB);
    c.fixed_address = (void *)(uintptr_t)12345; /* not page-aligned */
    nalloc_arena *a = NULL;
    assert_int_equal(nalloc_arena_create(&c, &a), NALLOC_ERR_INVALID);
    assert_null(a);
    assert_int_equal(cudastub_calls(CUDASTUB_HOST_REGISTER), 0);
}

static void test_pinned_lanes_share_the_parents_registration(void **state)
{
    (void)state;
    nalloc_arena *parent = pinned_arena(NALLOC_KIND_SCRATCH, 256 * KiB, 0);
    nalloc_arena *lanes[2];
    assert_int_equal(nalloc_arena_split(parent, 2, 32 * KiB, lanes), NALLOC_OK);
    for (int i = 0; i < 2; i++) {
        nalloc_stats s = stats_of(lanes[i]);
        assert_true(s.pinned);
        assert_true(cudastub_is_registered((void *)s.base, s.capacity, NULL));
    }
    assert_int_equal(cudastub_counts_now().registrations, 1); /* lanes register nothing */
    for (int i = 0; i < 2; i++)
        assert_int_equal(nalloc_arena_destroy(lanes[i]), NALLOC_OK);
    assert_int_equal(cudastub_counts_now().registrations, 1);
    assert_int_equal(nalloc_arena_destroy(parent), NALLOC_OK);
}

/* A download queued into a pinned arena lands when the stream gets to it: a wipe in stream order
 * must wait for it, or the download would put the data back after the wipe. */
static void test_a_pinned_wipe_in_stream_order_waits_for_queued_downloads(void **state)
{
    (void)state;
    nalloc_arena *pinned = pinned_arena(NALLOC_KIND_WITNESS, 64 * KiB, 0);
    nalloc_arena *device = device_arena(64 * KiB);
    cudaStream_t stream;
    assert_int_equal(cudaStreamCreate(&stream), cudaSuccess);
    unsigned char *host = nalloc_alloc(pinned, 8192);
    void *dev = nalloc_alloc(device, 8192);
    cudastub_fill(dev, 0x42, 8192);
    assert_int_equal(nalloc_stage_async(pinned, host, device, dev, 8192, stream), NALLOC_OK);
    assert_int_equal(host[0], 0); /* in flight */
    assert_int_equal(nalloc_wipe_async(pinned, stream), NALLOC_OK);
    assert_int_equal(cudastub_counts_now().pending, 0); /* the wipe waited for the download */
    assert_int_equal(cudaStreamSynchronize(stream), cudaSuccess);
    for (size_t i = 0; i < 8192; i++)
        assert_int_equal(peek_released(host, i), 0);
    assert_int_equal(stats_of(pinned).used, 0);

    /* nalloc_wipe waits for no stream (its caller must have finished the copies, as for any
     * host memory): a download still queued lands afterwards, in whatever is there by then. */
    host = nalloc_alloc(pinned, 8192);
    assert_int_equal(nalloc_stage_async(pinned, host, device, dev, 8192, stream), NALLOC_OK);
    assert_int_equal(nalloc_wipe(pinned), NALLOC_OK);
    assert_int_equal(cudastub_counts_now().pending, 1);
    unsigned char *again = nalloc_alloc(pinned, 8192);
    assert_ptr_equal(again, host);
    assert_int_equal(cudaStreamSynchronize(stream), cudaSuccess);
    assert_int_equal(again[8191], 0x42);
    assert_int_equal(cudaStreamDestroy(stream), cudaSuccess);
    assert_int_equal(nalloc_arena_destroy(device), NALLOC_OK);
    assert_int_equal(nalloc_arena_destroy(pinned), NALLOC_OK); /* wiped, then unregistered */
}

/* An upload and a download through a device arena, in stream order, byte for byte. */
static void test_staging_moves_bytes_up_and_back_in_stream_order(void **state)
{
    (void)state;
    nalloc_arena *pinned = pinned_arena(NALLOC_KIND_SCRATCH, 256 * KiB, 64 * KiB);
    nalloc_arena *device = device_arena(256 * KiB);
    cudaStream_t stream;
    assert_int_equal(cudaStreamCreate(&stream), cudaSuccess);
    const size_t n = 100000;
    unsigned char *in = nalloc_alloc(pinned, n), *out = nalloc_alloc(pinned, n);
    void *dev = nalloc_alloc(device, n);
    for (size_t i = 0; i < n; i++)
        in[i] = (unsigned char)(i * 7 + 3);
    memset(out, 0, n);
    assert_int_equal(nalloc_stage_async(device, dev, pinned, in, n, stream), NALLOC_OK);
    assert_int_equal(nalloc_stage_async(pinned, out, device, dev, n, stream), NALLOC_OK);
    assert_int_equal(out[1], 0); /* nothing has run yet */
    assert_int_equal(cudastub_counts_now().pending, 2);
    assert_int_equal(cudaStreamSynchronize(stream), cudaSuccess);
    assert_memory_equal(in, out, n);

    /* Part of a block, the empty copy, and stream 0 (the legacy default stream). */
    assert_int_equal(nalloc_stage_async(device, (char *)dev + 10, pinned, in + 20, 1000, 0),
                     NALLOC_OK);
    assert_int_equal(nalloc_stage_async(device, dev, pinned, in, 0, stream), NALLOC_OK);
    assert_int_equal(cudastub_counts_now().pending, 1);
    assert_int_equal(cudaStreamSynchronize(0), cudaSuccess);
    unsigned char check[1000];
    cudastub_peek(check, (char *)dev + 10, sizeof check);
    assert_memory_equal(check, in + 20, sizeof check);

    /* Past what the device arena handed out: refused before CUDA sees it. */
    size_t calls = cudastub_calls(CUDASTUB_MEMCPY_ASYNC);
    assert_int_equal(nalloc_stage_async(device, dev, pinned, in, n + 1, stream),
                     NALLOC_ERR_INVALID);
    assert_int_equal(cudastub_calls(CUDASTUB_MEMCPY_ASYNC), calls);
    assert_int_equal(cudaStreamDestroy(stream), cudaSuccess);
    assert_int_equal(nalloc_arena_destroy(device), NALLOC_OK);
    assert_int_equal(nalloc_arena_destroy(pinned), NALLOC_OK);
}

int main(void)
{
    if (nalloc_cuda_available() != NALLOC_OK)
        return 1;
#define T(name) cmocka_unit_test_setup_teardown(name, reset_stub, check_stub)
    const struct CMUnitTest tests[] = {
        T(test_a_pinned_arena_registers_its_usable_range_in_chunks),
        T(test_the_fallback_flag_changes_nothing_where_there_is_a_device),
        T(test_secret_memory_is_refused_before_anything_is_registered),
        T(test_a_mapping_refused_before_pinning_registers_nothing),
        T(test_pinned_lanes_share_the_parents_registration),
        T(test_a_pinned_wipe_in_stream_order_waits_for_queued_downloads),
        T(test_staging_moves_bytes_up_and_back_in_stream_order),
    };
    return cmocka_run_group_tests_name("cudastub_pinned", tests, NULL, NULL);
}
