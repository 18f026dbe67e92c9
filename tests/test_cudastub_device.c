/* tests/test_cudastub_device.c - device arenas against the CUDA runtime stand-in.
 *
 * What test_device_gpu.c checks on a real device, and what no device volunteers on demand, run
 * here on every build with the toolkit: the block behind a device arena and its bookkeeping, the
 * caller's current device kept across every call, fractional sizing, the wipe kernel zeroing
 * exactly its range at every alignment (its host twin runs the kernel's body over the whole grid)
 * with the launch geometry the design asks for, stream-ordered wipes that really are queued, the
 * context-reset check by buffer id, lanes and contexts on device memory, and sticky errors. The
 * fault paths of each entry point are walked in test_cudastub_faults.c.
 */
#include "cudastub.h"
#include "nalloc/cuda.h"
#include "testutil.h"
#include "wipe.h" /* cuda/: the kernel's launcher, na_cuda_wipe */

#define CAPACITY ((size_t)1 << 20)

static int reset_stub(void **state)
{
    (void)state;
    cudastub_reset(NULL);
    return 0;
}

/* The stand-in saw nothing real CUDA would refuse, and nalloc left no CUDA error behind. */
static int check_stub(void **state)
{
    (void)state;
    cudastub_counts c = cudastub_counts_now();
    if (c.misuse != 0)
        fail_msg("stand-in misuse: %s", cudastub_misuse_text());
    assert_int_equal(cudaPeekAtLastError(), cudaSuccess);
    return 0;
}

/* A last error no call here produces, to see that successful calls leave it alone. */
static void set_sentinel_error(void)
{
    assert_null(nalloc_alloc(NULL, 1));
    assert_int_equal(nalloc_last_error(), NALLOC_ERR_INVALID);
}

static nalloc_arena *device_arena(nalloc_kind kind, size_t capacity, int device)
{
    nalloc_arena_config c;
    nalloc_arena_config_init(&c, kind, NALLOC_MEMORY_DEVICE, capacity);
    c.device = device;
    nalloc_arena *a = NULL;
    assert_int_equal(nalloc_arena_create(&c, &a), NALLOC_OK);
    assert_non_null(a);
    return a;
}

static int current_device(void)
{
    int d = -1;
    assert_int_equal(cudaGetDevice(&d), cudaSuccess);
    return d;
}

/* Every byte of device range [p, p + n) equals `value`. */
static void assert_device_bytes(const void *p, size_t n, unsigned char value)
{
    unsigned char buf[4096];
    for (size_t done = 0; done < n;) {
        size_t chunk = n - done < sizeof buf ? n - done : sizeof buf;
        cudastub_peek(buf, (const char *)p + done, chunk);
        for (size_t i = 0; i < chunk; i++)
            if (buf[i] != value)
                fail_msg("device byte %zu of %zu is 0x%02x, not 0x%02x", done + i, n, buf[i],
                         value);
        done += chunk;
    }
}

/* ---- The block ---- */

static void test_a_device_arena_is_one_block_of_its_device(void **state)
{
    (void)state;
    set_sentinel_error();
    nalloc_arena *a = device_arena(NALLOC_KIND_POLY, CAPACITY, 1);
    assert_int_equal(nalloc_last_error(), NALLOC_ERR_INVALID);
    nalloc_stats s = stats_of(a);
    assert_int_equal(s.memory, NALLOC_MEMORY_DEVICE);
    assert_int_equal(s.capacity, CAPACITY);
    assert_int_equal(s.reserved, CAPACITY);
    assert_int_equal(s.guard_size, 0);
    assert_false(s.pinned);
    assert_true(cudastub_block_of(1, (void *)s.base, CAPACITY) != 0);
    cudastub_counts c = cudastub_counts_now();
    assert_int_equal(c.blocks, 1);
    assert_int_equal(c.block_bytes, CAPACITY);

    char *p = nalloc_alloc(a, 1000), *q = nalloc_alloc(a, 1000);
    assert_non_null(p);
    assert_int_equal((uintptr_t)p % 256, 0); /* cudaMalloc's alignment by default */
    assert_int_equal((uintptr_t)q - (uintptr_t)p, 1024);
    assert_true(cudastub_block_of(1, p, 2024) != 0);
    assert_int_equal(current_device(), 0);
    assert_int_equal(nalloc_arena_destroy(a), NALLOC_OK);
    assert_int_equal(cudastub_counts_now().blocks, 0);
    assert_int_equal(current_device(), 0);
    assert_int_equal(nalloc_last_error(), NALLOC_ERR_INVALID);
}

static void test_every_call_on_another_device_restores_the_callers_device(void **state)
{
    (void)state;
    assert_int_equal(cudaSetDevice(1), cudaSuccess);
    nalloc_arena *a = device_arena(NALLOC_KIND_WITNESS, CAPACITY, 0);
    assert_int_equal(current_device(), 1);
    assert_non_null(nalloc_alloc(a, 4096));
    assert_int_equal(nalloc_wipe(a), NALLOC_OK);
    assert_int_equal(current_device(), 1);
    assert_non_null(nalloc_alloc_zeroed(a, 1, 4096, 0));
    assert_int_equal(current_device(), 1);
    nalloc_window w;
    assert_int_equal(nalloc_window_create(a, 4096, &w), NALLOC_OK);
    assert_int_equal(w.device, 0);
    assert_int_equal(current_device(), 1);
    assert_int_equal(nalloc_window_reset(&w, NULL), NALLOC_OK);
    assert_int_equal(current_device(), 1);
    size_t used = 1;
    assert_int_equal(nalloc_window_usage(&w, NULL, &used, NULL), NALLOC_OK);
    assert_int_equal(used, 0);
    assert_int_equal(current_device(), 1);
    assert_int_equal(nalloc_arena_destroy(a), NALLOC_OK);
    assert_int_equal(current_device(), 1);
    assert_int_equal(cudastub_counts_now().blocks, 0);
}

static void test_a_fractional_arena_takes_its_share_of_free_memory_after_the_slack(void **state)
{
    (void)state;
    void *other = NULL;
    assert_int_equal(cudaMalloc(&other, (size_t)8 << 20), cudaSuccess);
    nalloc_arena_config c;
    nalloc_arena_config_init(&c, NALLOC_KIND_SCRATCH, NALLOC_MEMORY_DEVICE, 0);
    c.device_fraction = 0.5;
    c.device_slack = (size_t)4 << 20;
    nalloc_arena *a = NULL;
    assert_int_equal(nalloc_arena_create(&c, &a), NALLOC_OK);
    assert_int_equal(stats_of(a).capacity, (size_t)26 << 20); /* (64 - 8 - 4) / 2 MiB */
    assert_int_equal(nalloc_arena_destroy(a), NALLOC_OK);

    c.device_fraction = 1.0;
    c.device_slack = 12345;
    assert_int_equal(nalloc_arena_create(&c, &a), NALLOC_OK);
    assert_int_equal(stats_of(a).capacity, (((size_t)56 << 20) - 12345) & ~(size_t)4095);
    assert_int_equal(nalloc_arena_destroy(a), NALLOC_OK);

    c.device_slack = (size_t)56 << 20; /* nothing left once the slack is set aside */
    assert_int_equal(nalloc_arena_create(&c, &a), NALLOC_ERR_NOMEM);
    assert_null(a);
    assert_int_equal(nalloc_last_error(), NALLOC_ERR_NOMEM);
    assert_int_equal(cudastub_counts_now().blocks, 1);
    assert_int_equal(cudaFree(other), cudaSuccess);
}

static void test_a_device_the_machine_lacks_is_invalid(void **state)
{
    (void)state;
    nalloc_arena_config c;
    nalloc_arena_config_init(&c, NALLOC_KIND_SCRATCH, NALLOC_MEMORY_DEVICE, CAPACITY);
    c.device = 2;
    nalloc_arena *a = NULL;
    assert_int_equal(nalloc_arena_create(&c, &a), NALLOC_ERR_INVALID);
    assert_null(a);
    c.device = 0;
    c.capacity = (size_t)65 << 20; /* more than the device has */
    assert_int_equal(nalloc_arena_create(&c, &a), NALLOC_ERR_CUDA);
    assert_non_null(strstr(nalloc_cuda_error_string(), "cudaErrorMemoryAllocation"));
    assert_int_equal(cudastub_counts_now().blocks, 0);
}

/* ---- Wipes ---- */

static void test_the_first_wipe_zeroes_the_whole_block_and_later_ones_the_dirty_part(void **state)
{
    (void)state;
    nalloc_arena *a = device_arena(NALLOC_KIND_WITNESS, CAPACITY, 0);
    char *base = (char *)stats_of(a).base;
    assert_device_bytes(base, CAPACITY, 0xA5); /* cudaMalloc's memory holds old data */
    assert_int_equal(nalloc_wipe(a), NALLOC_OK);
    assert_device_bytes(base, CAPACITY, 0);
    assert_int_equal(stats_of(a).wiped_bytes, CAPACITY);

    char *p = nalloc_alloc(a, 3000);
    assert_int_equal(cudaMemset(p, 0x5a, 3000), cudaSuccess);
    assert_int_equal(nalloc_wipe(a), NALLOC_OK);
    assert_device_bytes(base, CAPACITY, 0);
    nalloc_stats s = stats_of(a);
    assert_int_equal(s.wiped_bytes, CAPACITY + 3000);
    assert_int_equal(s.wipes, 2);
    assert_int_equal(s.used, 0);
    assert_int_equal(cudastub_counts_now().pending, 0); /* nalloc_wipe waits */
    assert_int_equal(nalloc_arena_destroy(a), NALLOC_OK);
}

/* The wipe kernel launched directly (cuda/wipe.h) at every start alignment and many lengths:
 * exactly the range is zeroed, whatever the head, body and tail split of the kernel's body. */
static void test_the_wipe_kernel_zeroes_exactly_its_range_at_every_alignment(void **state)
{
    (void)state;
    unsigned char *base = NULL;
    assert_int_equal(cudaMalloc((void **)&base, 16384), cudaSuccess);
    const size_t lengths[] = {1, 2, 15, 16, 17, 31, 32, 33, 47, 100, 255, 256, 257, 4095, 4113};
    unsigned char around[64];
    for (size_t start = 0; start < 32; start++) {
        for (size_t i = 0; i < sizeof lengths / sizeof lengths[0]; i++) {
            size_t len = lengths[i];
            cudastub_fill(base, 0x5a, 16384);
            assert_int_equal(na_cuda_wipe(0, base + start, len, cudaStreamLegacy), cudaSuccess);
            assert_int_equal(cudaStreamSynchronize(cudaStreamLegacy), cudaSuccess);
            assert_device_bytes(base + start, len, 0);
            assert_device_bytes(base, start, 0x5a);
            cudastub_peek(around, base + start + len, sizeof around);
            for (size_t j = 0; j < sizeof around; j++)
                assert_int_equal(around[j], 0x5a);
        }
    }
    assert_int_equal(cudaFree(base), cudaSuccess);
}

/* nalloc_alloc_zeroed clears a dirty block with the wipe kernel from wherever the block starts
 * (with alignment 1, anywhere; in sanitizer builds, at their granule), and exactly the block. */
static void test_alloc_zeroed_clears_exactly_its_block_wherever_it_starts(void **state)
{
    (void)state;
    nalloc_arena *a = device_arena(NALLOC_KIND_SCRATCH, 64 << 10, 0);
    char *base = (char *)stats_of(a).base;
    unsigned char around[64];
    size_t launches = cudastub_counts_now().launches;
    for (size_t start = 0; start < 20; start++) {
        for (size_t len = 1; len < 40; len += 3) {
            nalloc_mark m = nalloc_mark_get(a);
            cudastub_fill(base, 0x5a, 16384);
            if (start > 0)
                assert_non_null(nalloc_alloc_aligned(a, start, 1));
            char *p = nalloc_alloc_zeroed(a, 1, len, 1);
            assert_non_null(p);
            assert_true(p >= base + start);
            assert_device_bytes(p, len, 0);
            assert_device_bytes(base, (size_t)(p - base), 0x5a);
            cudastub_peek(around, p + len, sizeof around);
            for (size_t j = 0; j < sizeof around; j++)
                assert_int_equal(around[j], 0x5a);
            assert_int_equal(nalloc_rollback(a, m), NALLOC_OK);
        }
    }
    assert_int_equal(cudastub_counts_now().launches - launches, 20 * 13);
    assert_int_equal(nalloc_arena_destroy(a), NALLOC_OK);
}

/* One full wave of resident 256-thread blocks (as many per multiprocessor as its thread limit
 * holds, at least one), capped by the work: one 16-byte word per thread, plus one. */
static unsigned expected_blocks(size_t len, int sms, int threads_per_sm)
{
    size_t per_sm = threads_per_sm >= 256 ? (size_t)threads_per_sm / 256 : 1;
    size_t wave = (size_t)(sms > 0 ? sms : 1) * per_sm;
    size_t work = (len / 16 + 1 + 255) / 256;
    return (unsigned)(work < wave ? work : wave);
}

static void test_the_wipe_kernel_runs_one_wave_of_blocks_capped_by_the_work(void **state)
{
    (void)state;
    const struct {
        int sms, threads_per_sm;
    } machines[] = {{4, 2048}, {3, 1536}, {5, 128}, {0, 2048}, {132, 2048}};
    const size_t capacities[] = {4096, 65536, (size_t)1 << 20, (size_t)3 << 20};
    for (size_t m = 0; m < sizeof machines / sizeof machines[0]; m++) {
        cudastub_config config;
        cudastub_config_default(&config);
        config.multiprocessors = machines[m].sms;
        config.threads_per_multiprocessor = machines[m].threads_per_sm;
        cudastub_reset(&config);
        for (size_t i = 0; i < sizeof capacities / sizeof capacities[0]; i++) {
            nalloc_arena *a = device_arena(NALLOC_KIND_SCRATCH, capacities[i], 0);
            assert_int_equal(nalloc_wipe(a), NALLOC_OK); /* the whole capacity is dirty */
            cudastub_launch l;
            assert_true(cudastub_last_launch(&l));
            assert_string_equal(l.kernel, "_Z14na_wipe_kernelPhm");
            assert_int_equal(l.block.x * l.block.y * l.block.z, 256);
            assert_int_equal(l.grid.y * l.grid.z, 1);
            assert_int_equal(l.grid.x, expected_blocks(capacities[i], machines[m].sms,
                                                       machines[m].threads_per_sm));
            assert_int_equal(l.shared, 0);
            assert_device_bytes((void *)stats_of(a).base, capacities[i], 0);
            assert_int_equal(nalloc_arena_destroy(a), NALLOC_OK);
        }
    }
}

static void test_a_wipe_in_stream_order_is_queued_behind_the_streams_work(void **state)
{
    (void)state;
    nalloc_arena *a = device_arena(NALLOC_KIND_WITNESS, CAPACITY, 0);
    assert_int_equal(nalloc_wipe(a), NALLOC_OK);
    cudaStream_t stream;
    assert_int_equal(cudaStreamCreate(&stream), cudaSuccess);
    char *p = nalloc_alloc(a, 8192);
    static unsigned char secret[8192];
    memset(secret, 0x42, sizeof secret);
    assert_int_equal(cudaMemcpyAsync(p, secret, sizeof secret, cudaMemcpyHostToDevice, stream),
                     cudaSuccess);
    assert_int_equal(nalloc_wipe_async(a, stream), NALLOC_OK);
    assert_int_equal(stats_of(a).used, 0); /* reset on return, host-side */
    assert_int_equal(cudastub_counts_now().pending, 2); /* the upload and the wipe, not run */
    assert_device_bytes(p, 8192, 0);                    /* the upload has not landed yet */
    assert_int_equal(cudaStreamSynchronize(stream), cudaSuccess);
    assert_device_bytes(p, 8192, 0); /* it landed, and the wipe after it */
    cudastub_launch l;
    assert_true(cudastub_last_launch(&l));
    assert_ptr_equal(l.stream, stream);

    /* Stream 0 is the legacy default stream, whatever the caller's default. */
    assert_non_null(nalloc_alloc(a, 100));
    assert_int_equal(nalloc_wipe_async(a, 0), NALLOC_OK);
    assert_true(cudastub_last_launch(&l));
    assert_ptr_equal(l.stream, cudaStreamLegacy);
    assert_int_equal(cudastub_counts_now().pending, 1);
    assert_int_equal(cudaStreamDestroy(stream), cudaSuccess);
    assert_int_equal(nalloc_arena_destroy(a), NALLOC_OK);
    assert_int_equal(cudastub_counts_now().pending, 0); /* cudaFree waits for the device */
}

static void test_a_wipe_on_another_devices_stream_fails_and_keeps_the_arena(void **state)
{
    (void)state;
    nalloc_arena *a = device_arena(NALLOC_KIND_WITNESS, CAPACITY, 0);
    cudaStream_t on_one;
    assert_int_equal(cudaSetDevice(1), cudaSuccess);
    assert_int_equal(cudaStreamCreate(&on_one), cudaSuccess);
    assert_int_equal(cudaSetDevice(0), cudaSuccess);
    assert_non_null(nalloc_alloc(a, 4096));
    assert_int_equal(nalloc_wipe_async(a, on_one), NALLOC_ERR_CUDA);
    assert_int_equal(nalloc_last_error(), NALLOC_ERR_CUDA);
    assert_non_null(strstr(nalloc_cuda_error_string(), "cudaErrorInvalidResourceHandle"));
    nalloc_stats s = stats_of(a);
    assert_int_equal(s.used, 4096); /* not reset: the wipe did not happen */
    assert_int_equal(s.wipes, 0);
    assert_int_equal(nalloc_wipe(a), NALLOC_OK);
    assert_device_bytes((void *)s.base, CAPACITY, 0);
    assert_int_equal(cudaStreamDestroy(on_one), cudaSuccess);
    assert_int_equal(nalloc_arena_destroy(a), NALLOC_OK);
}

static void test_alloc_zeroed_on_a_device_arena_waits_for_its_kernel(void **state)
{
    (void)state;
    nalloc_arena *a = device_arena(NALLOC_KIND_SCRATCH, CAPACITY, 1);
    size_t launches = cudastub_counts_now().launches;
    char *p = nalloc_alloc_zeroed(a, 100, 40, 0);
    assert_non_null(p);
    assert_int_equal(cudastub_counts_now().launches, launches + 1); /* fresh memory is dirty */
    assert_int_equal(cudastub_counts_now().pending, 0);
    assert_device_bytes(p, 4000, 0);
    assert_int_equal(nalloc_arena_destroy(a), NALLOC_OK);
}

/* ---- Resets ---- */

static void test_after_a_context_reset_wipes_and_destroy_leave_the_new_owner_alone(void **state)
{
    (void)state;
    nalloc_arena *poly = device_arena(NALLOC_KIND_POLY, CAPACITY, 0);
    nalloc_arena *witness = device_arena(NALLOC_KIND_WITNESS, CAPACITY / 2, 0);
    uintptr_t old_base = stats_of(poly).base;
    assert_int_equal(cudaDeviceReset(), cudaSuccess);
    assert_int_equal(cudastub_counts_now().blocks, 0);

    /* The thread has no current context now: the check makes the new one current first. */
    size_t frees = cudastub_calls(CUDASTUB_FREE);
    assert_int_equal(nalloc_wipe(poly), NALLOC_ERR_STATE);
    assert_int_equal(cudastub_calls(CUDASTUB_FREE), frees + 1); /* cudaFree(NULL) */
    assert_int_equal(nalloc_last_error(), NALLOC_ERR_STATE);

    /* Somebody else is given the old addresses. */
    void *theirs = NULL;
    assert_int_equal(cudaMalloc(&theirs, CAPACITY), cudaSuccess);
    assert_int_equal((uintptr_t)theirs, old_base);
    assert_int_equal(cudaMemset(theirs, 0x77, CAPACITY), cudaSuccess);
    assert_int_equal(nalloc_wipe_async(poly, 0), NALLOC_ERR_STATE);
    assert_null_with(NALLOC_ERR_STATE, nalloc_alloc_zeroed(poly, 1, 16, 0));
    assert_int_equal(nalloc_arena_destroy(poly), NALLOC_OK); /* frees nothing */
    /* A witness arena reports the wipe it could not do. */
    assert_int_equal(nalloc_arena_destroy(witness), NALLOC_ERR_STATE);
    assert_device_bytes(theirs, CAPACITY, 0x77);
    assert_int_equal(cudastub_counts_now().blocks, 1);
    assert_int_equal(cudaFree(theirs), cudaSuccess);
}

static void test_a_reset_of_another_device_leaves_an_arena_working(void **state)
{
    (void)state;
    nalloc_arena *a = device_arena(NALLOC_KIND_WITNESS, CAPACITY, 1);
    assert_int_equal(cudaDeviceReset(), cudaSuccess); /* device 0 */
    assert_non_null(nalloc_alloc(a, 100));
    assert_int_equal(nalloc_wipe(a), NALLOC_OK);
    assert_int_equal(nalloc_arena_destroy(a), NALLOC_OK);
    assert_int_equal(cudastub_counts_now().blocks, 0);
}

/* ---- Lanes and contexts ---- */

static void test_device_lanes_wipe_their_own_slices_with_the_kernel(void **state)
{
    (void)state;
    nalloc_arena *parent = device_arena(NALLOC_KIND_WITNESS, CAPACITY, 1);
    assert_int_equal(nalloc_wipe(parent), NALLOC_OK);
    nalloc_arena *lanes[4];
    assert_int_equal(nalloc_arena_split(parent, 4, 64 << 10, lanes), NALLOC_OK);
    char *blocks[4];
    for (int i = 0; i < 4; i++) {
        blocks[i] = nalloc_alloc(lanes[i], 5000);
        assert_non_null(blocks[i]);
        assert_true(cudastub_block_of(1, blocks[i], 5000) != 0);
        cudastub_fill(blocks[i], 0x10 + i, 5000);
    }
    assert_int_equal(nalloc_wipe(lanes[2]), NALLOC_OK);
    cudastub_launch l;
    assert_true(cudastub_last_launch(&l));
    assert_int_equal(l.device, 1);
    for (int i = 0; i < 4; i++)
        assert_device_bytes(blocks[i], 5000, i == 2 ? 0 : 0x10 + i);
    assert_int_equal(nalloc_wipe(parent), NALLOC_ERR_STATE); /* lanes alive */
    for (int i = 0; i < 4; i++)
        assert_int_equal(nalloc_arena_destroy(lanes[i]), NALLOC_OK); /* each wipes itself */
    for (int i = 0; i < 4; i++)
        assert_device_bytes(blocks[i], 5000, 0);
    assert_int_equal(nalloc_arena_destroy(parent), NALLOC_OK);
    assert_int_equal(cudastub_counts_now().blocks, 0);
    assert_int_equal(current_device(), 0);
}

static void test_a_device_context_holds_three_device_blocks(void **state)
{
    (void)state;
    nalloc_ctx_config c;
    nalloc_ctx_config_init(&c, NALLOC_MEMORY_DEVICE, 1 << 20, 1 << 19, 1 << 18);
    nalloc_ctx *ctx = NULL;
    assert_int_equal(nalloc_ctx_create(&c, &ctx), NALLOC_OK);
    cudastub_counts counts = cudastub_counts_now();
    assert_int_equal(counts.blocks, 3);
    assert_int_equal(counts.block_bytes, (1 << 20) + (1 << 19) + (1 << 18));
    nalloc_arena *witness = nalloc_ctx_arena(ctx, NALLOC_KIND_WITNESS);
    char *p = nalloc_alloc(witness, 1000);
    assert_true(cudastub_block_of(0, p, 1000) != 0);
    size_t launches = counts.launches;
    assert_int_equal(nalloc_ctx_destroy(ctx), NALLOC_OK);
    assert_int_equal(cudastub_counts_now().launches, launches + 1); /* the witness arena's wipe */
    assert_int_equal(cudastub_counts_now().blocks, 0);
}

/* ---- Sticky errors ---- */

static void test_after_a_sticky_error_device_calls_fail_and_destroy_still_releases(void **state)
{
    (void)state;
    nalloc_arena *witness = device_arena(NALLOC_KIND_WITNESS, CAPACITY, 0);
    nalloc_arena *poly = device_arena(NALLOC_KIND_POLY, CAPACITY, 0);
    nalloc_arena *other = device_arena(NALLOC_KIND_WITNESS, CAPACITY, 1);
    nalloc_arena *host = make_arena(NALLOC_KIND_SCRATCH, CAPACITY);
    cudastub_fail(CUDASTUB_STREAM_SYNCHRONIZE, 1, cudaErrorIllegalAddress); /* a kernel faulted */
    assert_int_equal(nalloc_wipe(witness), NALLOC_ERR_CUDA);
    assert_non_null(strstr(nalloc_cuda_error_string(), "cudaErrorIllegalAddress"));
    assert_int_equal(nalloc_wipe(witness), NALLOC_ERR_CUDA);
    assert_int_equal(nalloc_wipe_async(poly, 0), NALLOC_ERR_CUDA);
    nalloc_window w;
    assert_int_equal(nalloc_window_create(poly, 4096, &w), NALLOC_ERR_CUDA);
    assert_int_equal(stats_of(poly).used, 0); /* the window's block was given back */
    nalloc_arena *fresh = NULL;
    nalloc_arena_config c;
    nalloc_arena_config_init(&c, NALLOC_KIND_SCRATCH, NALLOC_MEMORY_DEVICE, CAPACITY);
    assert_int_equal(nalloc_arena_create(&c, &fresh), NALLOC_ERR_CUDA);
    assert_null(fresh);
    /* Host-side bookkeeping goes on; so do device 1 and host arenas. */
    assert_non_null(nalloc_alloc(poly, 1000));
    assert_int_equal(nalloc_wipe(other), NALLOC_OK);
    assert_non_null(nalloc_alloc(host, 1000));
    assert_int_equal(nalloc_wipe(host), NALLOC_OK);

    set_sentinel_error();
    assert_int_equal(nalloc_arena_destroy(poly), NALLOC_OK);
    assert_int_equal(nalloc_last_error(), NALLOC_ERR_INVALID); /* a success records nothing */
    assert_int_equal(nalloc_arena_destroy(witness), NALLOC_ERR_CUDA); /* its wipe failed */
    assert_int_equal(nalloc_arena_destroy(other), NALLOC_OK);
    assert_int_equal(nalloc_arena_destroy(host), NALLOC_OK);
    /* Device 0's blocks could not be freed: only its reset (or the process's end) takes them. */
    assert_int_equal(cudastub_counts_now().blocks, 2);
    assert_int_equal(cudaDeviceReset(), cudaSuccess);
    assert_int_equal(cudastub_counts_now().blocks, 0);
    assert_int_equal(nalloc_arena_create(&c, &fresh), NALLOC_OK);
    assert_int_equal(nalloc_arena_destroy(fresh), NALLOC_OK);
}

static void test_a_successful_destroy_leaves_the_last_error_untouched(void **state)
{
    (void)state;
    nalloc_arena *a = device_arena(NALLOC_KIND_POLY, CAPACITY, 0);
    set_sentinel_error();
    cudastub_fail(CUDASTUB_FREE, 1, cudaErrorUnknown);
    assert_int_equal(nalloc_arena_destroy(a), NALLOC_OK);
    assert_int_equal(nalloc_last_error(), NALLOC_ERR_INVALID);
    assert_int_equal(cudaPeekAtLastError(), cudaSuccess);
    assert_int_equal(cudastub_counts_now().blocks, 1); /* cudaFree refused it: nothing else to do */
}

int main(void)
{
    if (nalloc_cuda_available() != NALLOC_OK) {
        fprintf(stderr, "cudastub_device: the stand-in offers no device: %s\n",
                nalloc_cuda_error_string());
        return 1;
    }
#define T(name) cmocka_unit_test_setup_teardown(name, reset_stub, check_stub)
    const struct CMUnitTest tests[] = {
        T(test_a_device_arena_is_one_block_of_its_device),
        T(test_every_call_on_another_device_restores_the_callers_device),
        T(test_a_fractional_arena_takes_its_share_of_free_memory_after_the_slack),
        T(test_a_device_the_machine_lacks_is_invalid),
        T(test_the_first_wipe_zeroes_the_whole_block_and_later_ones_the_dirty_part),
        T(test_the_wipe_kernel_zeroes_exactly_its_range_at_every_alignment),
        T(test_alloc_zeroed_clears_exactly_its_block_wherever_it_starts),
        T(test_the_wipe_kernel_runs_one_wave_of_blocks_capped_by_the_work),
        T(test_a_wipe_in_stream_order_is_queued_behind_the_streams_work),
        T(test_a_wipe_on_another_devices_stream_fails_and_keeps_the_arena),
        T(test_alloc_zeroed_on_a_device_arena_waits_for_its_kernel),
        T(test_after_a_context_reset_wipes_and_destroy_leave_the_new_owner_alone),
        T(test_a_reset_of_another_device_leaves_an_arena_working),
        T(test_device_lanes_wipe_their_own_slices_with_the_kernel),
        T(test_a_device_context_holds_three_device_blocks),
        T(test_after_a_sticky_error_device_calls_fail_and_destroy_still_releases),
        T(test_a_successful_destroy_leaves_the_last_error_untouched),
    };
    return cmocka_run_group_tests_name("cudastub_device", tests, NULL, NULL);
}
