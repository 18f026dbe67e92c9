/* cuda/spill_probe.cu - the in-kernel allocation paths, compiled only to be checked by ptxas.
 *
 * nalloc/device.cuh's functions are inlined into the caller's kernels, so the library itself
 * contains none of them. These kernels instantiate each path in the tightest setting a caller is
 * likely to use (32 registers per thread, full occupancy), and
 * cuda/sources.cmake builds them with ptxas warning on spills and warnings as errors: a change
 * that makes an allocation path spill registers to local memory fails the build. The object is
 * never linked into anything.
 */
#include "nalloc/device.cuh"

/* 32 registers: what a kernel gets at full occupancy (2048 threads per SM on sm_80/90). */
#if __CUDACC_VER_MAJOR__ > 12 || (__CUDACC_VER_MAJOR__ == 12 && __CUDACC_VER_MINOR__ >= 4)
#define NA_PROBE_BOUNDS __maxnreg__(32)
#else
#define NA_PROBE_BOUNDS __launch_bounds__(1024, 1) /* 64 registers */
#endif

__global__ void NA_PROBE_BOUNDS na_probe_window_alloc(nalloc_window w, const size_t *sizes,
                                                      void **out)
{
    unsigned t = blockIdx.x * blockDim.x + threadIdx.x;
    out[t] = nalloc_window_alloc(w, sizes[t]);
}

__global__ void NA_PROBE_BOUNDS na_probe_window_alloc_warp(nalloc_window w, const size_t *sizes,
                                                           void **out)
{
    unsigned t = blockIdx.x * blockDim.x + threadIdx.x;
    if (sizes[t] & 1) /* divergent: two groups of threads, two aggregated reservations */
        out[t] = nalloc_window_alloc_warp(w, sizes[t]);
    else
        out[t] = nalloc_window_alloc_warp(w, sizes[t] + 1);
}

__global__ void NA_PROBE_BOUNDS na_probe_window_alloc_block(nalloc_window w, size_t size,
                                                            void **out)
{
    out[blockIdx.x * blockDim.x + threadIdx.x] = nalloc_window_alloc_block(w, size);
}
