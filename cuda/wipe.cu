/* cuda/wipe.cu - the device memset kernel behind device-arena wipes (contract in cuda/wipe.h).
 *
 * A wipe zeroes one contiguous range of a device arena: everything handed out since the last
 * wipe. It is bandwidth-bound, so the kernel is as plain as a memset can be: 16-byte stores over
 * the aligned body of the range, grid-stride, with the unaligned head and tail done byte by byte
 * (the split is in wipe_plan.h, where the host tests check it). The grid is one full wave of
 * resident blocks (as many 256-thread blocks per SM as its thread limit allows: 8 on sm_80 and
 * sm_90, 6 on sm_86 and sm_89), capped by the work there is: more blocks than that run as a
 * second, partial wave that leaves most of the memory bandwidth idle while it drains, fewer leave
 * store bandwidth idle throughout.
 *
 * Launches go through cudaLaunchKernel so that the launch's own status comes back, rather than
 * whatever error an earlier unrelated call left for cudaGetLastError.
 */
#include "wipe.h"

#include "wipe_plan.h"

enum { threads_per_block = 256 };

static __global__ void __launch_bounds__(threads_per_block)
    na_wipe_kernel(unsigned char *p, size_t len)
{
    na_wipe_grid_thread(p, len, blockIdx.x, blockDim.x, gridDim.x, threadIdx.x);
}

extern "C" cudaError_t na_cuda_wipe(int device, void *p, size_t len, cudaStream_t stream)
{
    if (len == 0)
        return cudaSuccess;
    int sms = 0, threads_per_sm = 0;
    cudaError_t err = cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device);
    if (err == cudaSuccess)
        err = cudaDeviceGetAttribute(&threads_per_sm, cudaDevAttrMaxThreadsPerMultiProcessor,
                                     device);
    if (err != cudaSuccess)
        return err;
    size_t blocks_per_sm =
        threads_per_sm >= threads_per_block ? (size_t)threads_per_sm / threads_per_block : 1;
    size_t words = len / 16 + 1;
    size_t wanted = (words + threads_per_block - 1) / threads_per_block;
    size_t wave = (size_t)(sms > 0 ? sms : 1) * blocks_per_sm;
    unsigned blocks = (unsigned)(wanted < wave ? wanted : wave);
    unsigned char *bytes = (unsigned char *)p;
    void *args[] = {&bytes, &len};
    return cudaLaunchKernel((const void *)na_wipe_kernel, dim3(blocks), dim3(threads_per_block),
                            args, 0, stream);
}
