/* bench/bench_device_alloc.cu - allocations per second inside kernels: CUDA's device-side malloc
 * against a nalloc window, plain (one atomicAdd per thread) and warp-aggregated (one per warp).
 *
 * The grid is one full wave: every SM filled with resident 256-thread blocks, as a kernel that
 * wants scratch memory per thread would run. Each thread makes 4 allocations of a fixed size
 * (16, 64, 256, 1024 bytes) or of mixed sizes (16..1024, hashed from the thread and iteration)
 * and stores each pointer, so no variant can be optimized away and all pay the same stores.
 * Times are CUDA-event times of the allocating kernel alone, the median of 11 runs after a
 * warm-up; device malloc's blocks are freed by a separate, untimed kernel, and the window is
 * reset (untimed) between runs. After every run every pointer is checked non-NULL (untimed): a
 * figure for an allocator that ran out is not reported.
 *
 * Targets (issue 3): nalloc >= 100x device malloc on a full grid; warp-aggregated >= 5x plain
 * when all threads of a warp allocate.
 */
#include "bench_device_common.h"

#include "nalloc/device.cuh"

#include <cstdint>

enum { threads_per_block = 256, per_thread = 4, reps = 11, max_size = 1024 };

static __device__ __forceinline__ size_t request(size_t fixed, unsigned t, unsigned i)
{
    if (fixed != 0)
        return fixed;
    uint32_t x = (t * per_thread + i) * 2654435761u;
    x ^= x >> 15;
    return 16 + x % (max_size - 15); /* 16..1024 */
}

static __global__ void alloc_malloc(size_t fixed, void **out)
{
    unsigned t = blockIdx.x * blockDim.x + threadIdx.x;
    for (unsigned i = 0; i < per_thread; i++)
        out[(size_t)t * per_thread + i] = malloc(request(fixed, t, i));
}

static __global__ void free_malloc(void **out)
{
    unsigned t = blockIdx.x * blockDim.x + threadIdx.x;
    for (unsigned i = 0; i < per_thread; i++)
        free(out[(size_t)t * per_thread + i]);
}

static __global__ void alloc_plain(nalloc_window w, size_t fixed, void **out)
{
    unsigned t = blockIdx.x * blockDim.x + threadIdx.x;
    for (unsigned i = 0; i < per_thread; i++)
        out[(size_t)t * per_thread + i] = nalloc_window_alloc(w, request(fixed, t, i));
}

static __global__ void alloc_warp(nalloc_window w, size_t fixed, void **out)
{
    unsigned t = blockIdx.x * blockDim.x + threadIdx.x;
    for (unsigned i = 0; i < per_thread; i++)
        out[(size_t)t * per_thread + i] = nalloc_window_alloc_warp(w, request(fixed, t, i));
}

enum method { use_malloc, use_plain, use_warp };
static const char *const method_names[] = {"device malloc", "nalloc plain", "nalloc warp"};

static size_t null_count(void **d_out, size_t n)
{
    std::vector<void *> h(n);
    BENCH_CUDA(cudaMemcpy(h.data(), d_out, n * sizeof(void *), cudaMemcpyDeviceToHost));
    size_t nulls = 0;
    for (void *p : h)
        nulls += p == nullptr;
    return nulls;
}

/* Median milliseconds of one allocating launch; exits if any allocation failed. */
static double run(method m, const nalloc_window &w, size_t fixed, unsigned blocks, void **d_out,
                  cudaStream_t s)
{
    bench_timer timer(s);
    std::vector<double> ms;
    for (int r = 0; r <= reps; r++) { /* r == 0: warm-up */
        if (m != use_malloc)
            BENCH_NALLOC(nalloc_window_reset(&w, s));
        timer.begin();
        if (m == use_malloc)
            alloc_malloc<<<blocks, threads_per_block, 0, s>>>(fixed, d_out);
        else if (m == use_plain)
            alloc_plain<<<blocks, threads_per_block, 0, s>>>(w, fixed, d_out);
        else
            alloc_warp<<<blocks, threads_per_block, 0, s>>>(w, fixed, d_out);
        BENCH_CUDA(cudaGetLastError());
        double t = timer.end();
        if (r > 0)
            ms.push_back(t);
        /* Every run, not only the last: a run whose allocator ran out is faster (a NULL costs
         * nothing to hand out) and would pull the median down. */
        size_t n = (size_t)blocks * threads_per_block * per_thread;
        size_t nulls = null_count(d_out, n);
        if (nulls != 0) {
            std::fprintf(stderr, "%s, size %zu, run %d: %zu of %zu allocations failed\n",
                         method_names[m], fixed, r, nulls, n);
            std::exit(1);
        }
        if (m == use_malloc) {
            free_malloc<<<blocks, threads_per_block, 0, s>>>(d_out);
            BENCH_CUDA(cudaGetLastError());
        }
    }
    BENCH_CUDA(cudaStreamSynchronize(s));
    return bench_median(ms);
}

int main()
{
    cudaDeviceProp prop = bench_device_or_skip("bench_device_alloc: in-kernel allocation rate");
    unsigned blocks = (unsigned)(prop.multiProcessorCount *
                                 (prop.maxThreadsPerMultiProcessor / threads_per_block));
    size_t threads = (size_t)blocks * threads_per_block;
    size_t n = threads * per_thread;
    size_t window_bytes = n * max_size;

    /* Device malloc's heap, set before any kernel runs: room for one launch twice over. */
    BENCH_CUDA(cudaDeviceSetLimit(cudaLimitMallocHeapSize, 2 * window_bytes));
    nalloc_arena_config c;
    nalloc_arena_config_init(&c, NALLOC_KIND_SCRATCH, NALLOC_MEMORY_DEVICE, window_bytes + (1 << 20));
    nalloc_arena *arena;
    BENCH_NALLOC(nalloc_arena_create(&c, &arena));
    nalloc_window w;
    BENCH_NALLOC(nalloc_window_create(arena, window_bytes, &w));
    void **d_out;
    BENCH_CUDA(cudaMalloc((void **)&d_out, n * sizeof(void *)));
    cudaStream_t s;
    BENCH_CUDA(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));

    std::printf("  grid     %u blocks x %d threads (one full wave), %d allocations per thread, "
                "median of %d runs\n\n",
                blocks, threads_per_block, per_thread, reps);
    std::printf("  %-8s %16s %16s %16s %12s %12s\n", "size", "malloc Malloc/s", "plain Malloc/s",
                "warp Malloc/s", "plain/malloc", "warp/plain");
    static const size_t sizes[] = {16, 64, 256, 1024, 0};
    for (size_t size : sizes) {
        double rate[3];
        for (int m = 0; m < 3; m++) {
            double ms = run((method)m, w, size, blocks, d_out, s);
            rate[m] = n / (ms * 1e-3);
            std::printf("csv,alloc,%s,%zu,%zu,%zu,%.6f,%.1f\n", method_names[m], size, threads, n,
                        ms, rate[m]);
        }
        char label[24] = "mixed";
        if (size != 0)
            std::snprintf(label, sizeof label, "%zu", size);
        std::printf("  %-8s %16.1f %16.1f %16.1f %11.1fx %11.1fx\n", label, rate[0] / 1e6,
                    rate[1] / 1e6, rate[2] / 1e6, rate[1] / rate[0], rate[2] / rate[1]);
    }
    std::printf("\n  targets: nalloc >= 100x device malloc; warp >= 5x plain\n");

    bool overflowed = false;
    BENCH_NALLOC(nalloc_window_usage(&w, s, nullptr, &overflowed));
    if (overflowed) {
        std::fprintf(stderr, "the window overflowed: the figures above are not valid\n");
        return 1;
    }
    BENCH_CUDA(cudaStreamDestroy(s));
    BENCH_CUDA(cudaFree(d_out));
    BENCH_NALLOC(nalloc_arena_destroy(arena));
    return 0;
}
