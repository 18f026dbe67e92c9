/* tests/test_device_gpu.c - device arenas, windows and wipes on a real GPU (label gpu).
 *
 * Exits 77 (skipped) without a device. With one, every claim the device layer makes is checked
 * from the host, by copying device memory back:
 *  - device arenas hand out device pointers at the promised alignments, with marks, rollback,
 *    reset, statistics and exhaustion as on the host; fractional arenas leave the slack free;
 *  - every thread of a large grid allocates from a window (plain, warp-aggregated, divergent,
 *    per block) with mixed sizes and writes its id over its block: the host checks alignment,
 *    bounds, disjointness, and that every block still holds its owner's id;
 *  - a window that overflows (in the middle of a warp, and under a whole grid) stays in bounds,
 *    raises the flag, stays full, and comes back empty after a reset in stream order;
 *  - wipes zero exactly what was handed out since the last wipe, at every start alignment, in
 *    stream order after the kernels that wrote it.
 * The kernels are in device_gpu_kernels.cu; this file is plain C against the public API.
 */
#include "device_gpu_kernels.h"

#include "nalloc/cuda.h"
#include "nalloc/nalloc.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define CUDA_OK(call) assert_int_equal((int)(call), (int)cudaSuccess)
#define NONE SIZE_MAX

/* ---------------------------------------------------------------------------------------------
 * Helpers
 * ------------------------------------------------------------------------------------------- */

static nalloc_arena *device_arena(nalloc_kind kind, size_t capacity)
{
    nalloc_arena_config c;
    nalloc_arena_config_init(&c, kind, NALLOC_MEMORY_DEVICE, capacity);
    nalloc_arena *a = NULL;
    assert_int_equal(nalloc_arena_create(&c, &a), NALLOC_OK);
    return a;
}

static void *host_copy(const void *device, size_t n)
{
    void *h = malloc(n ? n : 1);
    assert_non_null(h);
    CUDA_OK(cudaMemcpy(h, device, n, cudaMemcpyDeviceToHost));
    return h;
}

static uint64_t rng_state = 0x9e3779b97f4a7c15u;
static uint64_t rng(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

/* Prover-ish scratch requests: mostly small, some medium, a few large, some zero. */
static size_t mixed_size(void)
{
    uint64_t r = rng() % 100;
    if (r < 5)
        return 0;
    if (r < 65)
        return 1 + rng() % 64;
    if (r < 95)
        return 65 + rng() % 960;
    return 1025 + rng() % 1024;
}

static size_t round_to(size_t x, size_t granule)
{
    return (x + granule - 1) / granule * granule;
}

typedef struct block_rec {
    size_t offset, size;
    unsigned id;
} block_rec;

static int by_offset(const void *x, const void *y)
{
    const block_rec *a = x, *b = y;
    return a->offset < b->offset ? -1 : a->offset > b->offset;
}

/* Check the blocks recorded in offsets[0..n) against the window's contents. Returns the number
 * of threads that got a block; *bytes is the sum of their rounded sizes. */
static size_t check_blocks(const nalloc_window *w, size_t n, const size_t *sizes,
                           const size_t *offsets, gpu_alloc_mode mode, unsigned block_threads,
                           size_t *bytes)
{
    block_rec *recs = malloc(sizeof *recs * (n ? n : 1));
    assert_non_null(recs);
    size_t got = 0, count = 0;
    *bytes = 0;
    for (size_t t = 0; t < n; t++) {
        unsigned id = mode == GPU_ALLOC_BLOCK ? (unsigned)(t / block_threads) : (unsigned)t;
        size_t size = mode == GPU_ALLOC_BLOCK ? sizes[id] : sizes[t];
        if (offsets[t] == NONE)
            continue;
        got++;
        assert_true(size > 0);
        assert_int_equal(offsets[t] % w->granule, 0);
        assert_true(offsets[t] + size <= w->capacity);
        if (mode == GPU_ALLOC_BLOCK && t % block_threads != 0) {
            assert_int_equal(offsets[t], offsets[t - t % block_threads]); /* one block, shared */
            continue;
        }
        recs[count++] = (block_rec){offsets[t], size, id};
        *bytes += round_to(size, w->granule);
    }
    qsort(recs, count, sizeof *recs, by_offset);
    unsigned char *mem = host_copy(w->base, w->capacity);
    for (size_t i = 0; i < count; i++) {
        if (i > 0)
            assert_true(recs[i - 1].offset + recs[i - 1].size <= recs[i].offset);
        for (size_t b = 0; b < recs[i].size; b++)
            if (mem[recs[i].offset + b] != (unsigned char)(recs[i].id >> (8 * (b & 3))))
                fail_msg("block of %u at offset %zu: byte %zu was overwritten", recs[i].id,
                         recs[i].offset, b);
    }
    free(mem);
    free(recs);
    return got;
}

/* Run a grid on a fresh window of `capacity` bytes and `granule`; checks every block served. */
typedef struct grid_result {
    size_t served, bytes, used; /* threads served, their rounded bytes, the window's count */
    bool overflowed;
} grid_result;

static grid_result run_grid_granule(nalloc_arena *a, size_t capacity, size_t granule,
                                    gpu_alloc_mode mode, unsigned blocks, unsigned threads,
                                    const size_t *sizes, size_t nsizes)
{
    nalloc_window w;
    assert_int_equal(nalloc_window_create_aligned(a, capacity, granule, &w), NALLOC_OK);
    assert_int_equal((uintptr_t)w.base % granule, 0);
    size_t n = (size_t)blocks * threads;
    size_t *d_sizes, *d_offsets;
    CUDA_OK(cudaMalloc((void **)&d_sizes, nsizes * sizeof(size_t)));
    CUDA_OK(cudaMalloc((void **)&d_offsets, n * sizeof(size_t)));
    CUDA_OK(cudaMemcpy(d_sizes, sizes, nsizes * sizeof(size_t), cudaMemcpyHostToDevice));
    CUDA_OK(gpu_alloc_grid(w, mode, blocks, threads, d_sizes, d_offsets, NULL));
    grid_result r;
    assert_int_equal(nalloc_window_usage(&w, NULL, &r.used, &r.overflowed), NALLOC_OK);
    size_t *offsets = host_copy(d_offsets, n * sizeof(size_t));
    r.served = check_blocks(&w, n, sizes, offsets, mode, threads, &r.bytes);
    free(offsets);
    CUDA_OK(cudaFree(d_sizes));
    CUDA_OK(cudaFree(d_offsets));
    return r;
}

static grid_result run_grid(nalloc_arena *a, size_t capacity, gpu_alloc_mode mode, unsigned blocks,
                            unsigned threads, const size_t *sizes, size_t nsizes)
{
    return run_grid_granule(a, capacity, NALLOC_WINDOW_GRANULE, mode, blocks, threads, sizes,
                            nsizes);
}

/* ---------------------------------------------------------------------------------------------
 * Device arenas
 * ------------------------------------------------------------------------------------------- */

static void test_device_arena_hands_out_aligned_device_pointers(void **state)
{
    (void)state;
    nalloc_arena *a = device_arena(NALLOC_KIND_POLY, 64 << 20);
    void *small = nalloc_alloc(a, 100);
    void *large = nalloc_alloc(a, 2 << 20);
    void *odd = nalloc_alloc_aligned(a, 3, 1);
    void *page = nalloc_alloc_aligned(a, 10, 65536);
    assert_non_null(small);
    assert_non_null(large);
    assert_non_null(odd);
    assert_non_null(page);
    assert_int_equal((uintptr_t)small % 256, 0);
    assert_int_equal((uintptr_t)large % 4096, 0);
    assert_int_equal((uintptr_t)page % 65536, 0);
    struct cudaPointerAttributes attr;
    CUDA_OK(cudaPointerGetAttributes(&attr, large));
    assert_int_equal(attr.type, cudaMemoryTypeDevice);
    CUDA_OK(cudaMemset(large, 0x11, 2 << 20)); /* the memory is really there */

    nalloc_stats s;
    assert_int_equal(nalloc_arena_stats(a, &s), NALLOC_OK);
    assert_int_equal(s.memory, NALLOC_MEMORY_DEVICE);
    assert_int_equal(s.capacity, 64 << 20);
    assert_int_equal(s.reserved, 64 << 20);
    assert_int_equal(s.allocations, 4);
    assert_int_equal(s.guard_size, 0);
    assert_false(s.guard_pages);

    nalloc_mark m = nalloc_mark_get(a);
    void *first = nalloc_alloc(a, 1000);
    assert_non_null(first);
    assert_int_equal(nalloc_rollback(a, m), NALLOC_OK);
    assert_ptr_equal(nalloc_alloc(a, 1000), first); /* the same place again */
    assert_null(nalloc_alloc(a, 64 << 20)); /* exhausted: NULL, arena intact */
    assert_int_equal(nalloc_last_error(), NALLOC_ERR_NOMEM);
    assert_null(nalloc_realloc(a, NULL, 0, 16, 0)); /* the CPU cannot copy device memory */
    assert_int_equal(nalloc_last_error(), NALLOC_ERR_UNSUPPORTED);
    assert_int_equal(nalloc_reset(a), NALLOC_OK);
    assert_int_equal(nalloc_arena_stats(a, &s), NALLOC_OK);
    assert_int_equal(s.used, 0);
    assert_ptr_equal(nalloc_alloc(a, 1), (void *)s.base);
    assert_int_equal(nalloc_arena_destroy(a), NALLOC_OK);
}

static void test_fractional_device_arena_leaves_the_slack(void **state)
{
    (void)state;
    size_t free_before, total;
    CUDA_OK(cudaMemGetInfo(&free_before, &total));
    nalloc_arena_config c;
    nalloc_arena_config_init(&c, NALLOC_KIND_SCRATCH, NALLOC_MEMORY_DEVICE, 0);
    c.device_fraction = 0.05;
    nalloc_arena *a;
    assert_int_equal(nalloc_arena_create(&c, &a), NALLOC_OK);
    nalloc_stats s;
    assert_int_equal(nalloc_arena_stats(a, &s), NALLOC_OK);
    assert_true(s.capacity > 0);
    assert_true(s.capacity <= (free_before - c.device_slack) / 20 + 4096);
    assert_int_equal(s.capacity % 4096, 0);
    assert_int_equal(nalloc_arena_destroy(a), NALLOC_OK);

    /* All of it, less the slack: the slack really stays free. */
    c.device_fraction = 1.0;
    assert_int_equal(nalloc_arena_create(&c, &a), NALLOC_OK);
    size_t free_after;
    CUDA_OK(cudaMemGetInfo(&free_after, &total));
    assert_true(free_after + (16u << 20) >= c.device_slack); /* allocation granularity aside */
    assert_int_equal(nalloc_arena_destroy(a), NALLOC_OK);
}

static void test_device_arena_refuses_what_the_device_cannot_give(void **state)
{
    (void)state;
    int count;
    CUDA_OK(cudaGetDeviceCount(&count));
    nalloc_arena_config c;
    nalloc_arena_config_init(&c, NALLOC_KIND_SCRATCH, NALLOC_MEMORY_DEVICE, 1 << 20);
    c.device = count; /* no such device */
    nalloc_arena *a;
    assert_int_equal(nalloc_arena_create(&c, &a), NALLOC_ERR_INVALID);
    assert_null(a);

    c.device = 0;
    c.capacity = (size_t)1 << 60; /* more than any device has */
    assert_int_equal(nalloc_arena_create(&c, &a), NALLOC_ERR_CUDA);
    assert_null(a);
    assert_non_null(strstr(nalloc_cuda_error_string(), "cudaMalloc"));

    int current;
    CUDA_OK(cudaGetDevice(&current));
    assert_int_equal(current, 0); /* the caller's device is untouched */
    CUDA_OK(cudaGetLastError());  /* and no error is left behind for the caller's next check */
    c.capacity = 1 << 20;
    assert_int_equal(nalloc_arena_create(&c, &a), NALLOC_OK);
    assert_int_equal(nalloc_arena_destroy(a), NALLOC_OK);
}

/* ---------------------------------------------------------------------------------------------
 * Windows
 * ------------------------------------------------------------------------------------------- */

enum { grid_blocks = 1024, grid_threads = 256, grid_n = grid_blocks * grid_threads };

static void test_every_thread_of_a_large_grid_allocates_disjoint_blocks(void **state)
{
    (void)state;
    size_t *sizes = malloc(grid_n * sizeof *sizes);
    assert_non_null(sizes);
    size_t demand = 0, callers = 0;
    for (size_t t = 0; t < grid_n; t++) {
        sizes[t] = mixed_size();
        demand += round_to(sizes[t], NALLOC_WINDOW_GRANULE);
    }
    nalloc_arena *a = device_arena(NALLOC_KIND_SCRATCH, demand + (64 << 20));
    static const gpu_alloc_mode modes[] = {GPU_ALLOC_PLAIN, GPU_ALLOC_WARP, GPU_ALLOC_DIVERGENT};
    for (size_t m = 0; m < 3; m++) {
        callers = 0;
        size_t expect_bytes = 0;
        for (size_t t = 0; t < grid_n; t++) {
            if (sizes[t] == 0 || (modes[m] == GPU_ALLOC_DIVERGENT && gpu_divergent_skips(t, sizes[t])))
                continue;
            callers++;
            expect_bytes += round_to(sizes[t], NALLOC_WINDOW_GRANULE);
        }
        grid_result r = run_grid(a, demand, modes[m], grid_blocks, grid_threads, sizes, grid_n);
        assert_int_equal(r.served, callers); /* room for all: everyone served */
        assert_int_equal(r.bytes, expect_bytes);
        assert_int_equal(r.used, expect_bytes);
        assert_false(r.overflowed);
        assert_int_equal(nalloc_reset(a), NALLOC_OK);
    }
    assert_int_equal(nalloc_arena_destroy(a), NALLOC_OK);
    free(sizes);
}

static void test_a_thread_block_shares_one_block(void **state)
{
    (void)state;
    enum { blocks = 512, threads = 128 };
    size_t sizes[blocks], demand = 0;
    for (size_t b = 0; b < blocks; b++) {
        sizes[b] = 1 + rng() % 5000;
        demand += round_to(sizes[b], NALLOC_WINDOW_GRANULE);
    }
    nalloc_arena *a = device_arena(NALLOC_KIND_SCRATCH, demand + (1 << 20));
    grid_result r = run_grid(a, demand, GPU_ALLOC_BLOCK, blocks, threads, sizes, blocks);
    assert_int_equal(r.served, (size_t)blocks * threads);
    assert_int_equal(r.used, demand);
    assert_false(r.overflowed);
    assert_int_equal(nalloc_arena_destroy(a), NALLOC_OK);
}

static void test_window_overflows_mid_warp_and_resets_in_stream_order(void **state)
{
    (void)state;
    nalloc_arena *a = device_arena(NALLOC_KIND_SCRATCH, 1 << 20);
    nalloc_window w;
    assert_int_equal(nalloc_window_create(a, 100, &w), NALLOC_OK);
    size_t sizes[32], *d_sizes, *d_offsets, offsets[32];
    for (int l = 0; l < 32; l++)
        sizes[l] = 16;
    CUDA_OK(cudaMalloc((void **)&d_sizes, sizeof sizes));
    CUDA_OK(cudaMalloc((void **)&d_offsets, sizeof offsets));
    CUDA_OK(cudaMemcpy(d_sizes, sizes, sizeof sizes, cudaMemcpyHostToDevice));
    cudaStream_t s;
    CUDA_OK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));

    for (int round = 0; round < 3; round++) {
        CUDA_OK(gpu_alloc_grid(w, GPU_ALLOC_WARP, 1, 32, d_sizes, d_offsets, s));
        CUDA_OK(cudaMemcpyAsync(offsets, d_offsets, sizeof offsets, cudaMemcpyDeviceToHost, s));
        size_t used;
        bool overflowed;
        assert_int_equal(nalloc_window_usage(&w, s, &used, &overflowed), NALLOC_OK);
        for (int l = 0; l < 6; l++)
            assert_int_equal(offsets[l], 16 * l); /* 96 of 100 bytes: threads 0-5 */
        for (int l = 6; l < 32; l++)
            assert_int_equal(offsets[l], NONE);
        assert_true(overflowed);
        assert_int_equal(used, 100);

        /* Sticky: another warp, plain this time, gets nothing. */
        CUDA_OK(gpu_alloc_grid(w, GPU_ALLOC_PLAIN, 1, 32, d_sizes, d_offsets, s));
        CUDA_OK(cudaMemcpyAsync(offsets, d_offsets, sizeof offsets, cudaMemcpyDeviceToHost, s));
        CUDA_OK(cudaStreamSynchronize(s));
        for (int l = 0; l < 32; l++)
            assert_int_equal(offsets[l], NONE);

        assert_int_equal(nalloc_window_reset(&w, s), NALLOC_OK);
        assert_int_equal(nalloc_window_usage(&w, s, &used, &overflowed), NALLOC_OK);
        assert_int_equal(used, 0);
        assert_false(overflowed);
    }
    CUDA_OK(cudaStreamDestroy(s));
    CUDA_OK(cudaFree(d_sizes));
    CUDA_OK(cudaFree(d_offsets));
    assert_int_equal(nalloc_arena_destroy(a), NALLOC_OK);
}

static void test_an_overflowing_grid_stays_in_bounds(void **state)
{
    (void)state;
    size_t *sizes = malloc(grid_n * sizeof *sizes);
    assert_non_null(sizes);
    size_t demand = 0;
    for (size_t t = 0; t < grid_n; t++) {
        sizes[t] = mixed_size();
        demand += round_to(sizes[t], NALLOC_WINDOW_GRANULE);
    }
    nalloc_arena *a = device_arena(NALLOC_KIND_SCRATCH, demand);
    static const gpu_alloc_mode modes[] = {GPU_ALLOC_PLAIN, GPU_ALLOC_WARP, GPU_ALLOC_DIVERGENT};
    for (size_t m = 0; m < 3; m++) {
        grid_result r = run_grid(a, demand / 3, modes[m], grid_blocks, grid_threads, sizes, grid_n);
        assert_true(r.overflowed);
        assert_int_equal(r.used, demand / 3);
        assert_true(r.bytes <= demand / 3);
        assert_true(r.served > 0);
        assert_int_equal(nalloc_reset(a), NALLOC_OK);
    }
    assert_int_equal(nalloc_arena_destroy(a), NALLOC_OK);
    free(sizes);
}

static void test_window_granule_aligns_every_block(void **state)
{
    (void)state;
    enum { blocks = 64, threads = 256, n = blocks * threads };
    size_t *sizes = malloc(n * sizeof *sizes);
    assert_non_null(sizes);
    for (size_t t = 0; t < n; t++)
        sizes[t] = 1 + rng() % 700;
    nalloc_arena *a = device_arena(NALLOC_KIND_SCRATCH, 64 << 20);
    grid_result r = run_grid_granule(a, 32 << 20, 256, GPU_ALLOC_WARP, blocks, threads, sizes, n);
    assert_int_equal(r.served, n); /* check_blocks checked each offset against the granule */
    assert_false(r.overflowed);
    free(sizes);
    assert_int_equal(nalloc_arena_destroy(a), NALLOC_OK);
}

static void test_window_create_refuses_bad_input_and_keeps_the_arena(void **state)
{
    (void)state;
    nalloc_arena *a = device_arena(NALLOC_KIND_SCRATCH, 1 << 20);
    nalloc_window w;
    assert_int_equal(nalloc_window_create(a, 0, &w), NALLOC_ERR_INVALID);
    assert_int_equal(nalloc_window_create(a, NALLOC_WINDOW_MAX_CAPACITY + 1, &w), NALLOC_ERR_INVALID);
    assert_int_equal(nalloc_window_create_aligned(a, 4096, 8, &w), NALLOC_ERR_INVALID);
    assert_int_equal(nalloc_window_create_aligned(a, 4096, 48, &w), NALLOC_ERR_INVALID);
    assert_int_equal(nalloc_window_create_aligned(a, 4096, 8192, &w), NALLOC_ERR_INVALID);
    assert_int_equal(nalloc_window_create(a, 2 << 20, &w), NALLOC_ERR_NOMEM);
    nalloc_stats s;
    assert_int_equal(nalloc_arena_stats(a, &s), NALLOC_OK);
    assert_int_equal(s.used, 0);

    nalloc_arena_config c;
    nalloc_arena_config_init(&c, NALLOC_KIND_SCRATCH, NALLOC_MEMORY_HOST, 1 << 20);
    nalloc_arena *host;
    assert_int_equal(nalloc_arena_create(&c, &host), NALLOC_OK);
    assert_int_equal(nalloc_window_create(host, 4096, &w), NALLOC_ERR_INVALID);
    assert_int_equal(nalloc_arena_destroy(host), NALLOC_OK);
    assert_int_equal(nalloc_window_create(host, 4096, &w), NALLOC_ERR_STATE);

    nalloc_window zero;
    memset(&zero, 0, sizeof zero);
    assert_int_equal(nalloc_window_reset(&zero, NULL), NALLOC_ERR_INVALID);
    assert_int_equal(nalloc_window_usage(NULL, NULL, NULL, NULL), NALLOC_ERR_INVALID);
    assert_int_equal(nalloc_arena_destroy(a), NALLOC_OK);
}

/* ---------------------------------------------------------------------------------------------
 * Wipes
 * ------------------------------------------------------------------------------------------- */

static void assert_bytes(const unsigned char *mem, size_t from, size_t to, unsigned char value)
{
    for (size_t i = from; i < to; i++)
        if (mem[i] != value)
            fail_msg("byte %zu is 0x%02x, expected 0x%02x", i, mem[i], value);
}

static void test_device_wipe_zeroes_what_was_handed_out_and_nothing_else(void **state)
{
    (void)state;
    const size_t capacity = 8 << 20;
    nalloc_arena *a = device_arena(NALLOC_KIND_WITNESS, capacity);
    nalloc_stats s;
    assert_int_equal(nalloc_arena_stats(a, &s), NALLOC_OK);
    unsigned char *base = (unsigned char *)s.base;

    /* cudaMalloc'd memory may hold an earlier owner's data: the first wipe clears it all. */
    CUDA_OK(cudaMemset(base, 0x3c, capacity));
    assert_int_equal(nalloc_wipe(a), NALLOC_OK);
    unsigned char *mem = host_copy(base, capacity);
    assert_bytes(mem, 0, capacity, 0);
    free(mem);

    /* Then only up to the high-water mark, even after a rollback lowered the offset. */
    unsigned char *p = nalloc_alloc_aligned(a, 100001, 1);
    assert_non_null(p);
    CUDA_OK(cudaMemset(p, 0xab, 100001));
    nalloc_mark m = nalloc_mark_get(a);
    unsigned char *q = nalloc_alloc_aligned(a, 50003, 1);
    CUDA_OK(cudaMemset(q, 0xcd, 50003));
    assert_int_equal(nalloc_rollback(a, m), NALLOC_OK);
    CUDA_OK(cudaMemset(base + 150004, 0xee, 4096)); /* never handed out: must survive */
    assert_int_equal(nalloc_wipe(a), NALLOC_OK);
    mem = host_copy(base, 150004 + 4096);
    assert_bytes(mem, 0, 150004, 0);
    assert_bytes(mem, 150004, 150004 + 4096, 0xee);
    free(mem);
    assert_int_equal(nalloc_arena_stats(a, &s), NALLOC_OK);
    assert_int_equal(s.wipes, 2);
    assert_int_equal(s.wiped_bytes, capacity + 150004);
    assert_int_equal(s.used, 0);
    assert_int_equal(nalloc_arena_destroy(a), NALLOC_OK); /* witness: wiped again on destroy */
}

static void test_wipe_async_follows_the_kernels_on_its_stream(void **state)
{
    (void)state;
    const size_t n = 32 << 20;
    nalloc_arena *a = device_arena(NALLOC_KIND_WITNESS, n);
    cudaStream_t s;
    CUDA_OK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
    for (int round = 0; round < 3; round++) {
        unsigned char *p = nalloc_alloc(a, n - 4096 * round);
        assert_non_null(p);
        CUDA_OK(gpu_fill(p, n - 4096 * round, 0x99, s)); /* queued, not finished */
        assert_int_equal(nalloc_wipe_async(a, s), NALLOC_OK);
        unsigned char *h;
        CUDA_OK(cudaMallocHost((void **)&h, n));
        CUDA_OK(cudaMemcpyAsync(h, p, n, cudaMemcpyDeviceToHost, s));
        CUDA_OK(cudaStreamSynchronize(s));
        assert_bytes(h, 0, n - 4096 * round, 0);
        CUDA_OK(cudaFreeHost(h));
    }
    CUDA_OK(cudaStreamDestroy(s));
    assert_int_equal(nalloc_arena_destroy(a), NALLOC_OK);
}

/* nalloc_alloc_zeroed clears [begin, begin + len) with the wipe kernel: any start, any length. */
static void test_zeroed_allocations_at_every_start_alignment(void **state)
{
    (void)state;
    static const size_t lengths[] = {1, 2, 15, 16, 17, 31, 32, 33, 100, 255, 256, 4097, 70001};
    const size_t span = 80 << 10;
    nalloc_arena *a = device_arena(NALLOC_KIND_SCRATCH, 1 << 20);
    nalloc_stats s;
    assert_int_equal(nalloc_arena_stats(a, &s), NALLOC_OK);
    unsigned char *base = (unsigned char *)s.base;
    for (size_t start = 0; start < 16; start++) {
        for (size_t i = 0; i < sizeof lengths / sizeof lengths[0]; i++) {
            /* never wiped: all of it counts as dirty */
            assert_int_equal(nalloc_reset(a), NALLOC_OK);
            CUDA_OK(cudaMemset(base, 0xf0, span));
            if (start > 0)
                assert_non_null(nalloc_alloc_aligned(a, start, 1));
            unsigned char *z = nalloc_alloc_zeroed(a, 1, lengths[i], 1);
            assert_ptr_equal(z, base + start);
            unsigned char *mem = host_copy(base, span);
            assert_bytes(mem, 0, start, 0xf0);
            assert_bytes(mem, start, start + lengths[i], 0);
            assert_bytes(mem, start + lengths[i], span, 0xf0);
            free(mem);
        }
    }
    assert_int_equal(nalloc_arena_destroy(a), NALLOC_OK);
}

/* cudaDeviceReset frees every device arena's block with its context, and the next cudaMalloc may
 * get the same addresses. A witness arena's wipe and destroy must then touch nothing: neither
 * zero nor free the memory that is now the caller's. Runs last: the reset ends everything. */
static void test_a_reset_device_is_not_written_through_a_dead_arena(void **state)
{
    (void)state;
    const size_t n = 4 << 20;
    nalloc_arena *a = device_arena(NALLOC_KIND_WITNESS, n);
    void *p = nalloc_alloc(a, n / 2);
    assert_non_null(p);
    CUDA_OK(cudaDeviceSynchronize());
    CUDA_OK(cudaDeviceReset());
    void *mine;
    CUDA_OK(cudaMalloc(&mine, n));
    fprintf(stderr, "after the reset, cudaMalloc %s the arena's addresses\n",
            (uintptr_t)mine == (uintptr_t)p ? "reused" : "did not reuse");
    CUDA_OK(cudaMemset(mine, 0x77, n));
    assert_int_equal(nalloc_wipe(a), NALLOC_ERR_STATE);
    assert_int_equal(nalloc_arena_destroy(a), NALLOC_ERR_STATE); /* released, not wiped */
    unsigned char *h = host_copy(mine, n);
    assert_bytes(h, 0, n, 0x77);
    free(h);
    CUDA_OK(cudaFree(mine)); /* still ours: nalloc did not free it */
    CUDA_OK(cudaGetLastError());
}

int main(void)
{
    if (nalloc_cuda_available() != NALLOC_OK) {
        fprintf(stderr, "device_gpu: no CUDA device (%s); skipped\n", nalloc_cuda_error_string());
        return 77;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_device_arena_hands_out_aligned_device_pointers),
        cmocka_unit_test(test_fractional_device_arena_leaves_the_slack),
        cmocka_unit_test(test_device_arena_refuses_what_the_device_cannot_give),
        cmocka_unit_test(test_every_thread_of_a_large_grid_allocates_disjoint_blocks),
        cmocka_unit_test(test_a_thread_block_shares_one_block),
        cmocka_unit_test(test_window_overflows_mid_warp_and_resets_in_stream_order),
        cmocka_unit_test(test_an_overflowing_grid_stays_in_bounds),
        cmocka_unit_test(test_window_granule_aligns_every_block),
        cmocka_unit_test(test_window_create_refuses_bad_input_and_keeps_the_arena),
        cmocka_unit_test(test_device_wipe_zeroes_what_was_handed_out_and_nothing_else),
        cmocka_unit_test(test_wipe_async_follows_the_kernels_on_its_stream),
        cmocka_unit_test(test_zeroed_allocations_at_every_start_alignment),
        cmocka_unit_test(test_a_reset_device_is_not_written_through_a_dead_arena), /* last */
    };
    return cmocka_run_group_tests_name("device_gpu", tests, NULL, NULL);
}
