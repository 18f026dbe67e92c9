// tests/test_cudastub_thrust.cu - nalloc::thrust_allocator and nalloc::with_temp_storage on a
// device arena, against the CUDA runtime stand-in.
//
// test_thrust_alloc.cu checks the allocator against Thrust's allocator traits on a host arena;
// here the arena is a device arena (the stand-in's cudaMalloc block), and the "algorithm" given
// to with_temp_storage is what a CUB algorithm is: a sizing call, then a kernel launched with
// <<<>>> on a stream into the temporary storage. nvcc's launch stub goes through the stand-in
// (__cudaPushCallConfiguration, __cudaLaunchKernel), which runs the kernel's host twin: the
// kernel and the twin share their body (fill_thread), as nalloc's own wipe kernel does. A launch
// that fails (fault injection) is the algorithm's error, returned, with the storage given back.
#include "cudastub.h"
#include "nalloc/thrust.cuh"

#include "cxx_check.h"

#include <cstdint>
#include <cstring>
#include <new>

static const std::size_t capacity = std::size_t(1) << 20;

// The body of fill_kernel for one thread of a one-dimensional grid.
__host__ __device__ inline void fill_thread(unsigned char *p, std::size_t n, unsigned char value,
                                            std::size_t thread, std::size_t threads)
{
    for (std::size_t i = thread; i < n; i += threads)
        p[i] = value;
}

__global__ void fill_kernel(unsigned char *p, std::size_t n, unsigned char value)
{
    fill_thread(p, n, value, std::size_t(blockIdx.x) * blockDim.x + threadIdx.x,
                std::size_t(gridDim.x) * blockDim.x);
}

static cudaError_t fill_twin(const cudastub_launch *l)
{
    unsigned char *p = *static_cast<unsigned char *const *>(l->args[0]);
    std::size_t n = *static_cast<const std::size_t *>(l->args[1]);
    unsigned char value = *static_cast<const unsigned char *>(l->args[2]);
    if (n > 0 && !cudastub_kernel_access(l->device, p, n))
        return cudaErrorIllegalAddress;
    std::size_t threads = std::size_t(l->grid.x) * l->block.x;
    for (std::size_t t = 0; t < threads; t++)
        fill_thread(p, n, value, t, threads);
    return cudaSuccess;
}

static cudastub_twin fill_twin_entry()
{
    cudastub_twin t;
    std::memset(&t, 0, sizeof t);
    t.kernel = "_Z11fill_kernelPhmh"; // fill_kernel(unsigned char *, unsigned long, unsigned char)
    t.arg_count = 3;
    t.arg_sizes[0] = sizeof(unsigned char *);
    t.arg_sizes[1] = sizeof(std::size_t);
    t.arg_sizes[2] = sizeof(unsigned char);
    t.run = fill_twin;
    return t;
}
static const cudastub_twin fill = fill_twin_entry();

static nalloc_arena *device_arena()
{
    nalloc_arena_config c;
    nalloc_arena_config_init(&c, NALLOC_KIND_SCRATCH, NALLOC_MEMORY_DEVICE, capacity);
    nalloc_arena *a = nullptr;
    if (nalloc_arena_create(&c, &a) != NALLOC_OK) {
        std::fprintf(stderr, "device arena: %s\n", nalloc_cuda_error_string());
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

static bool on_device(const void *p, std::size_t n)
{
    return cudastub_block_of(0, p, n) != 0;
}

static void the_allocator_hands_out_device_memory_from_the_arena(nalloc_arena *a)
{
    nalloc::thrust_allocator alloc(a);
    char *p = alloc.allocate(1000);
    char *q = alloc.allocate(5000);
    CHECK(on_device(p, 1000) && on_device(q, 5000));
    CHECK(reinterpret_cast<std::uintptr_t>(p) % 256 == 0); // what CUB asks of its storage
    CHECK(reinterpret_cast<std::uintptr_t>(q) % 256 == 0);
    std::size_t held = used(a);
    alloc.deallocate(q, 5000);
    CHECK(used(a) < held);
    bool threw = false;
    try {
        (void)alloc.allocate(capacity);
    } catch (const std::bad_alloc &) {
        threw = true;
    }
    CHECK(threw && nalloc_last_error() == NALLOC_ERR_NOMEM);
    alloc.deallocate(p, 1000); // not the most recent block (q's padding is): kept
    CHECK(used(a) == 1024);
    CHECK(cudastub_calls(CUDASTUB_MALLOC) == 1); // the arena's block; nothing else
    CHECK(nalloc_reset(a) == NALLOC_OK);
}

// A CUB-style algorithm: sizes its storage, then fills it on `stream`.
struct fill_algorithm {
    cudaStream_t stream;
    std::size_t wanted;
    unsigned char *seen;
    int calls;

    cudaError_t operator()(void *temp, std::size_t &bytes)
    {
        calls++;
        if (temp == nullptr) {
            bytes = wanted;
            return cudaSuccess;
        }
        seen = static_cast<unsigned char *>(temp);
        fill_kernel<<<4, 128, 0, stream>>>(seen, bytes, 0x3c);
        return cudaGetLastError();
    }
};

static void with_temp_storage_runs_the_algorithm_in_stream_order(nalloc_arena *a)
{
    cudaStream_t stream;
    CHECK(cudaStreamCreate(&stream) == cudaSuccess);
    fill_algorithm algorithm = {stream, 30000, nullptr, 0};
    CHECK(nalloc::with_temp_storage(a, algorithm) == cudaSuccess);
    CHECK(algorithm.calls == 2 && on_device(algorithm.seen, 30000));
    CHECK(used(a) == 0); // given back as soon as the work is queued
    CHECK(cudastub_counts_now().pending == 1);
    cudastub_launch l;
    CHECK(cudastub_last_launch(&l) && l.grid.x == 4 && l.block.x == 128 && l.stream == stream);
    CHECK(cudaStreamSynchronize(stream) == cudaSuccess);
    static unsigned char bytes[30000];
    cudastub_peek(bytes, algorithm.seen, sizeof bytes);
    bool filled = true;
    for (unsigned char b : bytes)
        filled = filled && b == 0x3c;
    CHECK(filled);

    // The launch fails: its error is the algorithm's, and the storage is still given back.
    cudastub_fail(CUDASTUB_LAUNCH_KERNEL, 1, cudaErrorLaunchOutOfResources);
    algorithm.calls = 0;
    CHECK(nalloc::with_temp_storage(a, algorithm) == cudaErrorLaunchOutOfResources);
    CHECK(algorithm.calls == 2 && used(a) == 0);
    CHECK(cudastub_counts_now().pending == 0);
    CHECK(cudaGetLastError() == cudaSuccess); // the algorithm read its own error

    // No room: the algorithm is not called with storage, and the arena keeps nothing.
    algorithm.calls = 0;
    algorithm.wanted = 2 * capacity;
    CHECK(nalloc::with_temp_storage(a, algorithm) == cudaErrorMemoryAllocation);
    CHECK(algorithm.calls == 1 && used(a) == 0);
    CHECK(cudaStreamDestroy(stream) == cudaSuccess);
}

int main()
{
    if (nalloc_cuda_available() != NALLOC_OK) {
        std::fprintf(stderr, "the stand-in offers no device\n");
        return 1;
    }
    cudastub_add_twin(&fill);
    nalloc_arena *a = device_arena();
    the_allocator_hands_out_device_memory_from_the_arena(a);
    with_temp_storage_runs_the_algorithm_in_stream_order(a);
    CHECK(nalloc_arena_destroy(a) == NALLOC_OK);
    cudastub_counts c = cudastub_counts_now();
    CHECK(c.blocks == 0 && c.misuse == 0);
    return checks_exit_status("thrust allocator on the stand-in");
}
