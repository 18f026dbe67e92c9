// tests/thrust_consumer.cu - a Thrust program written against the names DESIGN.md promises, built
// by tests/thrust_install.cmake against an installed nalloc (headers and library only), the way
// a prover's own build would use it. Runs when a device is present; exits 77 otherwise.
#include <nalloc/cuda.h>
#include <nalloc/nalloc.h>
#include <nalloc/thrust.cuh>

#include <thrust/device_ptr.h>
#include <thrust/execution_policy.h>
#include <thrust/reduce.h>
#include <thrust/sequence.h>

#include <cstdio>

int main()
{
    if (nalloc_cuda_available() != NALLOC_OK)
        return 77;
    nalloc_arena_config config;
    nalloc_arena_config_init(&config, NALLOC_KIND_SCRATCH, NALLOC_MEMORY_DEVICE, 64u << 20);
    nalloc_arena *scratch = nullptr;
    if (nalloc_arena_create(&config, &scratch) != NALLOC_OK)
        return 1;
    cudaStream_t stream;
    cudaStreamCreate(&stream);

    const int n = 1 << 20;
    thrust::device_ptr<long long> v(static_cast<long long *>(nalloc_alloc(scratch, n * sizeof(long long))));
    thrust::sequence(thrust::cuda::par(nalloc::thrust_allocator(scratch)).on(stream), v, v + n);
    nalloc::thrust_allocator alloc(scratch);
    long long sum = thrust::reduce(thrust::cuda::par_nosync(alloc).on(stream), v, v + n, 0LL);
    cudaStreamSynchronize(stream);

    std::printf("sum of 0..%d = %lld\n", n - 1, sum);
    cudaStreamDestroy(stream);
    nalloc_arena_destroy(scratch);
    return sum == (long long)n * (n - 1) / 2 ? 0 : 1;
}
