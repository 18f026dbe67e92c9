// tests/test_thrust_alloc.cu - nalloc::thrust_allocator and nalloc::with_temp_storage, host side.
//
// Needs no GPU: Thrust's temporary-storage path (thrust::get_temporary_buffer on a
// thrust::cuda::par(alloc) policy, which is what every Thrust algorithm calls) runs on the host,
// and the allocator works on any arena, so a host arena stands in for a device one. Checked:
// Thrust's allocator traits accept the allocator and ask it for bytes; every request, however
// large, gets its bytes or std::bad_alloc, never a short block; deallocate gives back the most
// recent block only; with_temp_storage sizes, allocates, calls and gives back, and reports an
// arena with no room without calling the algorithm with a null pointer twice.
// tests/test_thrust_gpu.cu runs real Thrust and CUB algorithms on a device.
#include "nalloc/nalloc.h"
#include "nalloc/thrust.cuh"

#include "cxx_check.h"

#include <thrust/execution_policy.h>
#include <thrust/memory.h>

#include <cstdint>
#include <cstdio>
#include <limits>
#include <new>


static const std::size_t capacity = std::size_t(1) << 20;

static nalloc_arena *host_arena()
{
    nalloc_arena_config c;
    nalloc_arena_config_init(&c, NALLOC_KIND_SCRATCH, NALLOC_MEMORY_HOST, capacity);
    nalloc_arena *a = nullptr;
    if (nalloc_arena_create(&c, &a) != NALLOC_OK) {
        std::fprintf(stderr, "host arena: %s\n", nalloc_strerror(nalloc_last_error()));
        std::exit(1);
    }
    return a;
}

static std::size_t used(nalloc_arena *a)
{
    nalloc_stats s;
    CHECK(nalloc_arena_stats(a, &s) == NALLOC_OK);
    return s.used;
}

static bool inside(nalloc_arena *a, const void *p, std::size_t n)
{
    nalloc_stats s;
    CHECK(nalloc_arena_stats(a, &s) == NALLOC_OK);
    auto addr = reinterpret_cast<std::uintptr_t>(p);
    return addr >= s.base && addr - s.base <= s.used && n <= s.used - (addr - s.base);
}

template <typename F> static bool throws_bad_alloc(F &&f)
{
    try {
        f();
    } catch (const std::bad_alloc &) {
        return true;
    }
    return false;
}

static void allocate_gives_bytes_and_deallocate_gives_the_last_block_back(nalloc_arena *a)
{
    nalloc::thrust_allocator alloc(a);
    std::size_t before = used(a);
    char *p = alloc.allocate(1000);
    CHECK(inside(a, p, 1000));
    char *q = alloc.allocate(0); // a valid, distinct block
    CHECK(q != nullptr && q != p && inside(a, q, 1));
    alloc.deallocate(p, 1000); // not the most recent block: kept until a rollback
    std::size_t held = used(a);
    CHECK(held > before);
    alloc.deallocate(q, 0);
    CHECK(used(a) < held); // the most recent one is given back
    nalloc_reset(a);
}

static void every_request_gets_its_bytes_or_bad_alloc(nalloc_arena *a)
{
    nalloc::thrust_allocator alloc(a);
    nalloc_stats before, after;
    nalloc_arena_stats(a, &before);
    using size_type = nalloc::thrust_allocator::size_type;
    const size_type huge[] = {capacity + 1, size_type(PTRDIFF_MAX) + 1,
                              std::numeric_limits<size_type>::max()};
    for (size_type n : huge)
        CHECK(throws_bad_alloc([&] { (void)alloc.allocate(n); }));
    nalloc_arena_stats(a, &after);
    CHECK(after.used == before.used);            // nothing handed out
    CHECK(after.failures == before.failures + 3); // each one refused by the arena
    CHECK(nalloc_last_error() == NALLOC_ERR_NOMEM);
    char *p = alloc.allocate(capacity); // the arena is intact: all of it is still there
    CHECK(inside(a, p, capacity));
    nalloc_reset(a);
}

// What every Thrust algorithm does for its temporaries, on the host: the allocator traits of
// CCCL ask for sizeof(T) * n bytes of value_type char, and give the same count back.
static void thrust_takes_its_temporary_storage_from_the_arena(nalloc_arena *a)
{
    nalloc::thrust_allocator alloc(a);
    auto policy = thrust::cuda::par(alloc);
    std::size_t before = used(a);
    auto buf = thrust::get_temporary_buffer<std::uint64_t>(policy, 1000);
    CHECK(buf.second == 1000);
    CHECK(inside(a, thrust::raw_pointer_cast(buf.first), 1000 * sizeof(std::uint64_t)));
    CHECK(used(a) >= before + 8000);
    thrust::return_temporary_buffer(policy, buf.first, buf.second);
    CHECK(used(a) == before); // the most recent block: given back exactly
    // The allocator passed by value in one expression, as docs/cuda.md shows it.
    auto tmp = thrust::get_temporary_buffer<char>(thrust::cuda::par(nalloc::thrust_allocator(a)), 10);
    CHECK(inside(a, thrust::raw_pointer_cast(tmp.first), 10));
    thrust::return_temporary_buffer(thrust::cuda::par(nalloc::thrust_allocator(a)), tmp.first,
                                    tmp.second);
    CHECK(used(a) == before);
    CHECK(throws_bad_alloc([&] {
        (void)thrust::get_temporary_buffer<std::uint64_t>(policy, std::ptrdiff_t(capacity));
    }));
    CHECK(used(a) == before);
}

static void with_temp_storage_sizes_calls_and_gives_back(nalloc_arena *a)
{
    std::size_t before = used(a);
    int calls = 0;
    void *seen = nullptr;
    cudaError_t err = nalloc::with_temp_storage(a, [&](void *temp, std::size_t &bytes) {
        calls++;
        if (temp == nullptr) {
            bytes = 4096;
        } else {
            seen = temp;
            if (!inside(a, temp, bytes))
                return cudaErrorInvalidValue;
        }
        return cudaSuccess;
    });
    CHECK(err == cudaSuccess);
    CHECK(calls == 2 && seen != nullptr);
    CHECK(used(a) == before);

    calls = 0; // no room: the algorithm is not called again, and the arena keeps nothing
    err = nalloc::with_temp_storage(a, [&](void *temp, std::size_t &bytes) {
        calls++;
        if (temp == nullptr)
            bytes = 2 * capacity;
        return cudaSuccess;
    });
    CHECK(err == cudaErrorMemoryAllocation && calls == 1);
    CHECK(used(a) == before);

    calls = 0; // the sizing call's error is returned as it is
    err = nalloc::with_temp_storage(a, [&](void *, std::size_t &) {
        calls++;
        return cudaErrorInvalidConfiguration;
    });
    CHECK(err == cudaErrorInvalidConfiguration && calls == 1);
}

int main()
{
    nalloc_arena *a = host_arena();
    allocate_gives_bytes_and_deallocate_gives_the_last_block_back(a);
    every_request_gets_its_bytes_or_bad_alloc(a);
    thrust_takes_its_temporary_storage_from_the_arena(a);
    with_temp_storage_sizes_calls_and_gives_back(a);
    CHECK(nalloc_arena_destroy(a) == NALLOC_OK);
    return checks_exit_status("thrust allocator");
}
