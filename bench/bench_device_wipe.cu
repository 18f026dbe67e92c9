/* bench/bench_device_wipe.cu - the device wipe kernel's bandwidth against cudaMemsetAsync.
 *
 * A device arena's wipe is nalloc_wipe_async(arena, stream): the host-side bookkeeping plus one
 * launch of the memset kernel over everything handed out since the last wipe. Here the arena
 * hands out `size` bytes (one nalloc_alloc) and is wiped, against cudaMemsetAsync(ptr, 0, size)
 * on the same range, on the same stream. Times are CUDA events around the call (so the wipe's
 * host-side work is included when it delays the launch), median of 21 runs after a warm-up.
 * Sizes go from 1 MiB to 4 GiB, capped at a quarter of free device memory; an odd length
 * (size + 7) exercises the byte-wise tail.
 *
 * Target (issue 3): the wipe at 90% or more of cudaMemsetAsync's bandwidth.
 */
#include "bench_device_common.h"

enum { reps = 21 };

int main()
{
    bench_device_or_skip("bench_device_wipe: device wipe kernel vs cudaMemsetAsync");
    size_t free_bytes, total_bytes;
    BENCH_CUDA(cudaMemGetInfo(&free_bytes, &total_bytes));
    size_t largest = (size_t)4 << 30;
    while (largest > free_bytes / 4)
        largest /= 2;

    nalloc_arena_config c;
    nalloc_arena_config_init(&c, NALLOC_KIND_WITNESS, NALLOC_MEMORY_DEVICE, largest + 4096);
    nalloc_arena *arena;
    BENCH_NALLOC(nalloc_arena_create(&c, &arena));
    BENCH_NALLOC(nalloc_wipe(arena)); /* the first wipe covers the whole (dirty) arena */
    cudaStream_t s;
    BENCH_CUDA(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
    bench_timer timer(s);

    std::printf("  median of %d runs; GB/s = 1e9 bytes per second\n\n", reps);
    std::printf("  %-12s %14s %14s %10s\n", "bytes", "memset GB/s", "wipe GB/s", "wipe/memset");
    for (size_t size = 1 << 20; size <= largest; size *= 4) {
        for (size_t len : {size, size + 7}) {
            if (len > largest + 4096)
                continue;
            std::vector<double> wipe_ms, memset_ms;
            for (int r = 0; r <= reps; r++) {
                void *p = nalloc_alloc(arena, len);
                if (p == nullptr) {
                    std::fprintf(stderr, "nalloc_alloc(%zu): %s\n", len,
                                 nalloc_strerror(nalloc_last_error()));
                    return 1;
                }
                timer.begin();
                BENCH_CUDA(cudaMemsetAsync(p, 0, len, s));
                double m = timer.end();
                timer.begin();
                BENCH_NALLOC(nalloc_wipe_async(arena, s));
                double w = timer.end();
                if (r > 0) {
                    memset_ms.push_back(m);
                    wipe_ms.push_back(w);
                }
            }
            double m = bench_median(memset_ms), w = bench_median(wipe_ms);
            double m_gbs = len / (m * 1e-3) / 1e9, w_gbs = len / (w * 1e-3) / 1e9;
            std::printf("  %-12zu %14.1f %14.1f %9.0f%%\n", len, m_gbs, w_gbs, 100 * w_gbs / m_gbs);
            std::printf("csv,wipe,%zu,%.6f,%.6f,%.2f,%.2f\n", len, m, w, m_gbs, w_gbs);
        }
    }
    std::printf("\n  target: wipe >= 90%% of cudaMemsetAsync\n");
    BENCH_CUDA(cudaStreamDestroy(s));
    BENCH_NALLOC(nalloc_arena_destroy(arena));
    return 0;
}
