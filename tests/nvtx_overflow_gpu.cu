// tests/nvtx_overflow_gpu.cu - a kernel that runs off the end of one sub-allocation, for
// compute-sanitizer to catch (tests/nvtx_memcheck.sh runs it; label gpu).
//
// Two blocks from one device arena: a of 1000 bytes at offset 0 and b at offset 1024 (the
// 256-byte device alignment leaves 24 bytes of padding between them). Both lie inside the same
// cudaMalloc block, so without nalloc's NVTX annotations memcheck sees every byte written here as
// valid. With them, the padding belongs to no region, and a write there is reported.
//
//   nvtx_overflow_gpu inside    writes a[0..999], then wipes the arena in stream order (its
//                               kernel stores to the padding too): clean
//   nvtx_overflow_gpu overflow  writes a[0..1000]: one byte into the padding, an error
// Exits 77 without a device.
#include "nalloc/cuda.h"
#include "nalloc/nalloc.h"

#include <cstdio>
#include <cstring>

__global__ void fill(unsigned char *block, int length)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < length)
        block[i] = 0xab;
}

int main(int argc, char **argv)
{
    if (argc != 2 || (std::strcmp(argv[1], "inside") != 0 && std::strcmp(argv[1], "overflow") != 0)) {
        std::fprintf(stderr, "usage: %s inside|overflow\n", argv[0]);
        return 2;
    }
    if (nalloc_cuda_available() != NALLOC_OK)
        return 77;
    cudaFree(nullptr); // compute-sanitizer wants the runtime initialized before NVTX calls

    nalloc_arena_config c;
    nalloc_arena_config_init(&c, NALLOC_KIND_SCRATCH, NALLOC_MEMORY_DEVICE, 1 << 20);
    c.name = "overflow-test";
    nalloc_arena *arena;
    if (nalloc_arena_create(&c, &arena) != NALLOC_OK) {
        std::fprintf(stderr, "device arena: %s\n", nalloc_cuda_error_string());
        return 1;
    }
    auto *a = static_cast<unsigned char *>(nalloc_alloc(arena, 1000));
    auto *b = static_cast<unsigned char *>(nalloc_alloc(arena, 1000));
    if (a == nullptr || b == nullptr || b - a != 1024) {
        std::fprintf(stderr, "unexpected layout: a=%p b=%p\n", (void *)a, (void *)b);
        return 1;
    }
    int length = std::strcmp(argv[1], "overflow") == 0 ? 1001 : 1000;
    fill<<<(length + 255) / 256, 256>>>(a, length);
    cudaError_t err = cudaGetLastError(); // a launch that failed (no kernel image) wrote nothing
    if (err == cudaSuccess)
        err = cudaDeviceSynchronize();
    std::printf("%s: wrote %d bytes from a block of 1000: %s\n", argv[1], length,
                cudaGetErrorString(err));
    if (err == cudaSuccess && length == 1000) {
        // The wipe kernel writes the whole handed-out range, padding included: nalloc registers
        // that range for the wipe, which must not be reported, stream-ordered or not.
        cudaStream_t stream;
        nalloc_status st = NALLOC_ERR_CUDA;
        if (cudaStreamCreate(&stream) == cudaSuccess) {
            st = nalloc_wipe_async(arena, stream);
            if (st == NALLOC_OK && cudaStreamSynchronize(stream) != cudaSuccess)
                st = NALLOC_ERR_CUDA;
            cudaStreamDestroy(stream);
        }
        std::printf("inside: wipe in stream order: %s\n", nalloc_strerror(st));
        if (st != NALLOC_OK)
            err = cudaErrorUnknown;
    }
    nalloc_arena_destroy(arena);
    return err == cudaSuccess ? 0 : 1;
}
