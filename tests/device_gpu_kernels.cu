/* tests/device_gpu_kernels.cu - kernels for test_device_gpu.c, written against the public
 * in-kernel API only (nalloc/device.cuh), as a user's kernel would be. */
#include "device_gpu_kernels.h"

#include "nalloc/device.cuh"

static __device__ void fill_with_id(unsigned char *p, size_t size, unsigned id, size_t first,
                                    size_t step)
{
    for (size_t i = first; i < size; i += step)
        p[i] = (unsigned char)(id >> (8 * (i & 3)));
}

static __global__ void alloc_grid(nalloc_window w, gpu_alloc_mode mode, const size_t *sizes,
                                  size_t *offsets)
{
    const unsigned t = blockIdx.x * blockDim.x + threadIdx.x;
    size_t size = mode == GPU_ALLOC_BLOCK ? sizes[blockIdx.x] : sizes[t];
    void *p = NULL;
    switch (mode) {
    case GPU_ALLOC_PLAIN:
        p = nalloc_window_alloc(w, size);
        break;
    case GPU_ALLOC_WARP:
        p = nalloc_window_alloc_warp(w, size);
        break;
    case GPU_ALLOC_DIVERGENT:
        if (size % 4 == 0) {
            p = nalloc_window_alloc_warp(w, size);
        } else if (size % 4 == 1) {
            p = nalloc_window_alloc(w, size);
        } else if (size % 4 == 2) {
            if (t % 7 != 0)
                p = nalloc_window_alloc_warp(w, size);
        } else {
            p = nalloc_window_alloc_warp(w, size);
        }
        break;
    case GPU_ALLOC_BLOCK:
        p = nalloc_window_alloc_block(w, size);
        break;
    }
    offsets[t] = p == NULL ? SIZE_MAX : (size_t)((char *)p - (char *)w.base);
    if (p == NULL)
        return;
    if (mode == GPU_ALLOC_BLOCK)
        fill_with_id((unsigned char *)p, size, blockIdx.x, threadIdx.x, blockDim.x);
    else
        fill_with_id((unsigned char *)p, size, t, 0, 1);
}

static __global__ void fill(unsigned char *p, size_t n, unsigned char value)
{
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        p[i] = value;
}

extern "C" cudaError_t gpu_alloc_grid(nalloc_window w, gpu_alloc_mode mode, unsigned blocks,
                                      unsigned threads, const size_t *sizes, size_t *offsets,
                                      cudaStream_t stream)
{
    alloc_grid<<<blocks, threads, 0, stream>>>(w, mode, sizes, offsets);
    return cudaGetLastError();
}

extern "C" cudaError_t gpu_fill(void *p, size_t n, unsigned char value, cudaStream_t stream)
{
    fill<<<256, 256, 0, stream>>>((unsigned char *)p, n, value);
    return cudaGetLastError();
}
