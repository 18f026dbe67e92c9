#include <nalloc/device.cuh>
#include <stdio.h>
#include <stdlib.h>

/* Every thread builds a list of a length only it knows, in scratch memory from the window. */
__global__ void expand(nalloc_window scratch, const unsigned *counts, unsigned **lists, unsigned n)
{
    unsigned i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n)
        return;
    /* One atomicAdd per warp, whatever each lane asks for; NULL for 0 bytes or a full window. */
    unsigned *list = (unsigned *)nalloc_window_alloc_warp(scratch, counts[i] * sizeof(unsigned));
    for (unsigned k = 0; list != NULL && k < counts[i]; k++)
        list[k] = i;
    lists[i] = list;
}

int main(void)
{
    nalloc_arena_config config;
    nalloc_arena_config_init(&config, NALLOC_KIND_SCRATCH, NALLOC_MEMORY_DEVICE, 0);
    config.device_fraction = 0.25; /* a quarter of free device memory, after the 256 MiB slack */
    nalloc_arena *arena;
    nalloc_status st = nalloc_arena_create(&config, &arena); /* one cudaMalloc */
    if (st != NALLOC_OK) {
        fprintf(stderr, "nalloc: %s (%s)\n", nalloc_strerror(st), nalloc_cuda_error_string());
        return st == NALLOC_ERR_NO_DEVICE ? 77 : 1;
    }
    const unsigned n = 1u << 20;
    unsigned *counts = (unsigned *)nalloc_alloc(arena, n * sizeof(unsigned)); /* device memory */
    unsigned **lists = (unsigned **)nalloc_alloc(arena, n * sizeof(unsigned *));
    unsigned *host = (unsigned *)malloc(n * sizeof(unsigned));
    for (unsigned i = 0; i < n; i++)
        host[i] = i % 17;
    cudaMemcpy(counts, host, n * sizeof(unsigned), cudaMemcpyHostToDevice);

    nalloc_window scratch;
    if (nalloc_window_create(arena, 64u << 20, &scratch) != NALLOC_OK)
        return 1;
    cudaStream_t stream;
    cudaStreamCreate(&stream);
    int status = 0;
    for (int round = 0; round < 3; round++) {
        nalloc_window_reset(&scratch, stream); /* empty again, in stream order */
        expand<<<n / 256, 256, 0, stream>>>(scratch, counts, lists, n);
        size_t used;
        bool overflowed;
        nalloc_window_usage(&scratch, stream, &used, &overflowed); /* waits for the stream */
        printf("round %d: %zu bytes of scratch%s\n", round, used, overflowed ? ", overflowed" : "");
        status |= overflowed;
    }
    cudaStreamDestroy(stream);
    free(host);
    return nalloc_arena_destroy(arena) == NALLOC_OK ? status : 1; /* one cudaFree */
}
