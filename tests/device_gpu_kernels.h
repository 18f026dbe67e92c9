/* tests/device_gpu_kernels.h - the kernels of test_device_gpu, callable from C. */
#ifndef NALLOC_TEST_DEVICE_GPU_KERNELS_H
#define NALLOC_TEST_DEVICE_GPU_KERNELS_H

#include "nalloc/cuda.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum gpu_alloc_mode {
    GPU_ALLOC_PLAIN,     /* every thread: nalloc_window_alloc(w, sizes[t]) */
    GPU_ALLOC_WARP,      /* every thread: nalloc_window_alloc_warp(w, sizes[t]) */
    GPU_ALLOC_DIVERGENT, /* by sizes[t] % 4, from different branches: 0 and 3 warp-aggregated
                            (two call sites), 1 plain, 2 warp-aggregated except threads with
                            t % 7 == 0, which do not call at all */
    GPU_ALLOC_BLOCK      /* every thread: nalloc_window_alloc_block(w, sizes[blockIdx.x]) */
} gpu_alloc_mode;

/* True when thread t with request `size` makes no call in GPU_ALLOC_DIVERGENT. */
static inline int gpu_divergent_skips(unsigned long t, size_t size)
{
    return size % 4 == 2 && t % 7 == 0;
}

/* Launch blocks x threads threads allocating as `mode` says. Thread t writes its block's offset
 * in the window to offsets[t] (SIZE_MAX for NULL) and fills its block with its id, 4 bytes
 * little-endian, repeated (GPU_ALLOC_BLOCK: the block's id, written by all its threads). */
cudaError_t gpu_alloc_grid(nalloc_window w, gpu_alloc_mode mode, unsigned blocks, unsigned threads,
                           const size_t *sizes, size_t *offsets, cudaStream_t stream);

/* Fill n bytes at p with `value` from a kernel on `stream` (a writer the wipe must follow). */
cudaError_t gpu_fill(void *p, size_t n, unsigned char value, cudaStream_t stream);

#ifdef __cplusplus
}
#endif

#endif /* NALLOC_TEST_DEVICE_GPU_KERNELS_H */
