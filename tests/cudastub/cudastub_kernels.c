/* tests/cudastub/cudastub_kernels.c - host twins of nalloc's kernels, for the CUDA stand-in.
 *
 * A twin runs a kernel's body on the host for every thread of the launch's grid, through the same
 * NALLOC_DETAIL_HD function the kernel calls, so a "device" wipe in a stand-in test really zeroes
 * the bytes, with the kernel's own division of the range among threads. The stand-in finds a twin
 * by the device function's mangled name, which also encodes the parameter types: a kernel whose
 * signature changes no longer matches its twin, and launching it then fails as a misuse instead
 * of running the old body with misread arguments.
 *
 * Kernels in the library: cuda/wipe.cu's na_wipe_kernel(unsigned char *p, size_t len), launched
 * with __launch_bounds__(256). (In-kernel window allocation, nalloc/device.cuh, is inlined into
 * the users' kernels; the library launches none.)
 */
#include "cudastub.h"

#include "wipe_plan.h" /* cuda/: na_wipe_grid_thread */

/* Every thread of the grid, block by block: on a device they run in any order, and the body
 * gives each byte to exactly one thread, so any order gives the same bytes. */
static cudaError_t wipe_twin(const cudastub_launch *l)
{
    unsigned char *p = *(unsigned char *const *)l->args[0];
    size_t len = *(const size_t *)l->args[1];
    if (len > 0 && !cudastub_kernel_access(l->device, p, len))
        return cudaErrorIllegalAddress;
    unsigned long long blocks = (unsigned long long)l->grid.x * l->grid.y * l->grid.z;
    unsigned threads = l->block.x * l->block.y * l->block.z;
    for (unsigned long long b = 0; b < blocks; b++)
        for (unsigned t = 0; t < threads; t++)
            na_wipe_grid_thread(p, len, (unsigned)(b % l->grid.x), l->block.x, l->grid.x,
                                t % l->block.x);
    return cudaSuccess;
}

const cudastub_twin cudastub_nalloc_twins[] = {
    {
        .kernel = "_Z14na_wipe_kernelPhm",
        .arg_count = 2,
        .arg_sizes = {sizeof(unsigned char *), sizeof(size_t)},
        .max_threads = 256,
        .run = wipe_twin,
    },
};

const size_t cudastub_nalloc_twin_count =
    sizeof cudastub_nalloc_twins / sizeof cudastub_nalloc_twins[0];
