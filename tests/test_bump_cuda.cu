// tests/test_bump_cuda.cu - the bump core compiled by nvcc: the kernel below instantiates the
// device path (atomicCAS/atomicAdd) for every target architecture, and main runs the host path of
// the very same NALLOC_DETAIL_HD functions. Needs no GPU: nothing is launched.
#include "bump_checks.h"

__global__ void reserve_in_kernel(nalloc_bump *bump, size_t *counter, size_t *out)
{
    size_t begin = 0, pad = 0;
    out[2 * threadIdx.x] = nalloc_bump_reserve(bump, 24, 64, &begin, &pad) ? begin : SIZE_MAX;
    out[2 * threadIdx.x + 1] =
        nalloc_bump_reserve_add(counter, bump->capacity, 24, 64, &begin) ? begin : SIZE_MAX;
}

int main()
{
    // Taking the kernel's address keeps it (and its device code) in the binary.
    printf("device entry point: %p\n", reinterpret_cast<void *>(&reserve_in_kernel));
    return bump_checks() == 0 ? 0 : 1;
}
