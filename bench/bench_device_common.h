/* bench/bench_device_common.h - what the device benchmarks share: finding the device (or saying
 * why there is none and exiting 0), stating the machine and the build, timing with CUDA events,
 * and the median of repeated runs. Header-only; each bench_device_*.cu includes it once.
 *
 * Every benchmark prints a table for people and `csv,...` lines for scripts (grep '^csv,').
 */
#ifndef NALLOC_BENCH_DEVICE_COMMON_H
#define NALLOC_BENCH_DEVICE_COMMON_H

#include "nalloc/cuda.h"

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "bench_device_build.h" /* NALLOC_BENCH_BUILD: build type, nvcc, flags, archs */

/* Exit 1 with the CUDA error's text when a call fails: a benchmark has no partial answer. */
#define BENCH_CUDA(call)                                                                         \
    do {                                                                                         \
        cudaError_t bench_err_ = (call);                                                         \
        if (bench_err_ != cudaSuccess) {                                                         \
            std::fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #call,                   \
                         cudaGetErrorString(bench_err_));                                        \
            std::exit(1);                                                                        \
        }                                                                                        \
    } while (0)

#define BENCH_NALLOC(call)                                                                       \
    do {                                                                                         \
        nalloc_status bench_st_ = (call);                                                        \
        if (bench_st_ != NALLOC_OK) {                                                            \
            std::fprintf(stderr, "%s:%d: %s: %s %s\n", __FILE__, __LINE__, #call,                \
                         nalloc_strerror(bench_st_), nalloc_cuda_error_string());                \
            std::exit(1);                                                                        \
        }                                                                                        \
    } while (0)

/* The device's properties, or exit(0) with a one-line reason when there is none: benchmarks are
 * built everywhere and run where a GPU is. */
static inline cudaDeviceProp bench_device_or_skip(const char *name)
{
    if (nalloc_cuda_available() != NALLOC_OK) {
        std::printf("%s: no CUDA device (%s): skipped; device figures need a GPU "
                    "(scripts/gpu-check.sh)\n",
                    name, nalloc_cuda_error_string());
        std::exit(0);
    }
    cudaDeviceProp prop;
    BENCH_CUDA(cudaGetDeviceProperties(&prop, 0));
    int driver = 0, runtime = 0;
    BENCH_CUDA(cudaDriverGetVersion(&driver));
    BENCH_CUDA(cudaRuntimeGetVersion(&runtime));
    size_t free_bytes, total_bytes;
    BENCH_CUDA(cudaMemGetInfo(&free_bytes, &total_bytes));
    std::printf("%s\n", name);
    std::printf("  device   %s, sm_%d%d, %d SMs, %.1f GiB (%.1f GiB free)\n", prop.name, prop.major,
                prop.minor, prop.multiProcessorCount, total_bytes / 1073741824.0,
                free_bytes / 1073741824.0);
    std::printf("  cuda     driver %d, runtime %d, nvcc %d.%d\n", driver, runtime,
                __CUDACC_VER_MAJOR__, __CUDACC_VER_MINOR__);
    std::printf("  build    %s\n", NALLOC_BENCH_BUILD);
    std::printf("csv,device,%s,sm_%d%d,%d,%zu\n", prop.name, prop.major, prop.minor,
                prop.multiProcessorCount, total_bytes);
    return prop;
}

/* Milliseconds between two events recorded around work on one stream. */
struct bench_timer {
    cudaEvent_t start, stop;
    cudaStream_t stream;
    explicit bench_timer(cudaStream_t s) : stream(s)
    {
        BENCH_CUDA(cudaEventCreate(&start));
        BENCH_CUDA(cudaEventCreate(&stop));
    }
    ~bench_timer()
    {
        cudaEventDestroy(start);
        cudaEventDestroy(stop);
    }
    void begin() { BENCH_CUDA(cudaEventRecord(start, stream)); }
    double end()
    {
        BENCH_CUDA(cudaEventRecord(stop, stream));
        BENCH_CUDA(cudaEventSynchronize(stop));
        float ms = 0;
        BENCH_CUDA(cudaEventElapsedTime(&ms, start, stop));
        return ms;
    }
};

static inline double bench_median(std::vector<double> v)
{
    std::sort(v.begin(), v.end());
    size_t n = v.size();
    return n == 0 ? 0 : (n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2);
}

#endif /* NALLOC_BENCH_DEVICE_COMMON_H */
