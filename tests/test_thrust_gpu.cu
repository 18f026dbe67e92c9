// tests/test_thrust_gpu.cu - Thrust and CUB with temporary storage from device arenas (label gpu).
//
// Exits 77 (skipped) without a device. With one: thrust::sort of 2^24 keys held in a polynomial
// arena, its temporary storage from a scratch arena (whose statistics must show it), through
// thrust::cuda::par(...).on(stream) and par_nosync; CUB's radix sort through
// nalloc::with_temp_storage; and an arena too small for the temporaries, which must make Thrust
// throw std::bad_alloc and leave the arena usable.
#include "nalloc/cuda.h"
#include "nalloc/nalloc.h"
#include "nalloc/thrust.cuh"

#include "cxx_check.h"

#include <cub/device/device_radix_sort.cuh>
#include <thrust/device_ptr.h>
#include <thrust/execution_policy.h>
#include <thrust/sort.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <new>
#include <vector>


#define CUDA_CHECK(call) CHECK((call) == cudaSuccess)

static const std::size_t N = std::size_t(1) << 24;

static nalloc_arena *device_arena(nalloc_kind kind, std::size_t capacity, const char *name)
{
    nalloc_arena_config c;
    nalloc_arena_config_init(&c, kind, NALLOC_MEMORY_DEVICE, capacity);
    c.name = name;
    nalloc_arena *a = nullptr;
    nalloc_status st = nalloc_arena_create(&c, &a);
    if (st != NALLOC_OK) {
        std::fprintf(stderr, "device arena '%s': %s (%s)\n", name, nalloc_strerror(st),
                     nalloc_cuda_error_string());
        std::exit(1);
    }
    return a;
}

static std::vector<std::uint32_t> random_keys()
{
    std::vector<std::uint32_t> keys(N);
    std::uint64_t x = 0x243f6a8885a308d3u;
    for (auto &k : keys) { // xorshift64*
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        k = std::uint32_t((x * 0x2545f4914f6cdd1du) >> 32);
    }
    return keys;
}

static bool sorted_on_host(const std::uint32_t *dev, cudaStream_t stream)
{
    std::vector<std::uint32_t> back(N);
    CUDA_CHECK(cudaMemcpyAsync(back.data(), dev, N * sizeof(std::uint32_t), cudaMemcpyDeviceToHost,
                               stream));
    CUDA_CHECK(cudaStreamSynchronize(stream));
    for (std::size_t i = 1; i < N; i++)
        if (back[i - 1] > back[i])
            return false;
    return true;
}

static void sort_with(nalloc_arena *poly, nalloc_arena *scratch, bool nosync, cudaStream_t stream,
                      const std::vector<std::uint32_t> &keys)
{
    nalloc_mark m = nalloc_mark_get(poly);
    auto *dev = static_cast<std::uint32_t *>(nalloc_alloc(poly, N * sizeof(std::uint32_t)));
    CHECK(dev != nullptr);
    CUDA_CHECK(cudaMemcpyAsync(dev, keys.data(), N * sizeof(std::uint32_t), cudaMemcpyHostToDevice,
                               stream));
    nalloc_stats before, after;
    CHECK(nalloc_arena_stats(scratch, &before) == NALLOC_OK);
    thrust::device_ptr<std::uint32_t> first(dev);
    nalloc::thrust_allocator alloc(scratch);
    if (nosync)
        thrust::sort(thrust::cuda::par_nosync(alloc).on(stream), first, first + N);
    else
        thrust::sort(thrust::cuda::par(nalloc::thrust_allocator(scratch)).on(stream), first,
                     first + N);
    CHECK(nalloc_arena_stats(scratch, &after) == NALLOC_OK);
    CHECK(after.allocations > before.allocations);  // the temporaries came from the arena
    CHECK(after.high_water >= N * sizeof(std::uint32_t)); // a radix sort needs a key-sized buffer
    CHECK(after.failures == before.failures);
    std::printf("thrust::sort (%s) of 2^24 keys: %zu scratch allocations, high-water %zu bytes, "
                "%zu bytes still held after the call\n",
                nosync ? "par_nosync" : "par", after.allocations - before.allocations,
                after.high_water, after.used);
    CHECK(sorted_on_host(dev, stream));
    CHECK(nalloc_reset(scratch) == NALLOC_OK);
    CHECK(nalloc_rollback(poly, m) == NALLOC_OK);
}

static void cub_sort(nalloc_arena *poly, nalloc_arena *scratch, cudaStream_t stream,
                     const std::vector<std::uint32_t> &keys)
{
    nalloc_mark m = nalloc_mark_get(poly);
    auto *in = static_cast<std::uint32_t *>(nalloc_alloc(poly, N * sizeof(std::uint32_t)));
    auto *out = static_cast<std::uint32_t *>(nalloc_alloc(poly, N * sizeof(std::uint32_t)));
    CHECK(in != nullptr && out != nullptr);
    CUDA_CHECK(cudaMemcpyAsync(in, keys.data(), N * sizeof(std::uint32_t), cudaMemcpyHostToDevice,
                               stream));
    nalloc_stats before, after;
    CHECK(nalloc_arena_stats(scratch, &before) == NALLOC_OK);
    cudaError_t err = nalloc::with_temp_storage(scratch, [&](void *temp, std::size_t &bytes) {
        return cub::DeviceRadixSort::SortKeys(temp, bytes, in, out, int(N), 0, 32, stream);
    });
    CUDA_CHECK(err);
    CHECK(nalloc_arena_stats(scratch, &after) == NALLOC_OK);
    CHECK(after.allocations == before.allocations + 1);
    CHECK(after.used == before.used); // given back: it was the most recent block
    CHECK(sorted_on_host(out, stream));
    CHECK(nalloc_rollback(poly, m) == NALLOC_OK);
}

static void too_small_an_arena_throws_bad_alloc(nalloc_arena *poly, cudaStream_t stream)
{
    nalloc_arena *tiny = device_arena(NALLOC_KIND_SCRATCH, 64 << 10, "tiny");
    nalloc_mark m = nalloc_mark_get(poly);
    auto *dev = static_cast<std::uint32_t *>(nalloc_alloc(poly, N * sizeof(std::uint32_t)));
    CUDA_CHECK(cudaMemsetAsync(dev, 0, N * sizeof(std::uint32_t), stream));
    bool threw = false;
    try {
        thrust::device_ptr<std::uint32_t> first(dev);
        thrust::sort(thrust::cuda::par(nalloc::thrust_allocator(tiny)).on(stream), first, first + N);
    } catch (const std::bad_alloc &e) {
        threw = true;
        std::printf("as expected: %s\n", e.what());
    }
    CHECK(threw);
    nalloc_stats s;
    CHECK(nalloc_arena_stats(tiny, &s) == NALLOC_OK);
    CHECK(s.failures >= 1);
    CHECK(nalloc_alloc(tiny, 1024) != nullptr); // still usable
    CHECK(nalloc_arena_destroy(tiny) == NALLOC_OK);
    CHECK(nalloc_rollback(poly, m) == NALLOC_OK);
    CUDA_CHECK(cudaStreamSynchronize(stream));
}

int main()
{
    if (nalloc_cuda_available() != NALLOC_OK) {
        std::fprintf(stderr, "no CUDA device: %s\n", nalloc_cuda_error_string());
        return 77;
    }
    nalloc_arena *poly = device_arena(NALLOC_KIND_POLY, 3 * N * sizeof(std::uint32_t), "poly");
    nalloc_arena *scratch = device_arena(NALLOC_KIND_SCRATCH, 512u << 20, "scratch");
    cudaStream_t stream;
    CUDA_CHECK(cudaStreamCreate(&stream));
    const std::vector<std::uint32_t> keys = random_keys();

    sort_with(poly, scratch, false, stream, keys);
    sort_with(poly, scratch, true, stream, keys);
    cub_sort(poly, scratch, stream, keys);
    too_small_an_arena_throws_bad_alloc(poly, stream);

    CUDA_CHECK(cudaStreamDestroy(stream));
    CHECK(nalloc_arena_destroy(scratch) == NALLOC_OK);
    CHECK(nalloc_arena_destroy(poly) == NALLOC_OK);
    return checks_exit_status("thrust");
}
