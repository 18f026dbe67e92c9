/* tests/install/consumer.c - built against an installed nalloc, through find_package and through
 * pkg-config: the headers and library a user gets must be enough on their own. With
 * CONSUMER_WITH_CUDA it uses the CUDA API too (find_package's nalloc::nalloc, or pkg-config's
 * nalloc-cuda); without it, it is a host-only user (pkg-config's nalloc), who needs no CUDA. */
#include <nalloc/config.h>
#include <nalloc/nalloc.h>
#if defined(CONSUMER_WITH_CUDA)
#include <nalloc/cuda.h>
#endif

#include <stdint.h>
#include <stdio.h>
#include <string.h>

int main(void)
{
    nalloc_ctx_config config;
    nalloc_ctx_config_init(&config, NALLOC_MEMORY_HOST, 4u << 20, 1u << 20, 1u << 20);
    nalloc_ctx *ctx;
    if (nalloc_ctx_create(&config, &ctx) != NALLOC_OK)
        return 1;
    nalloc_arena *poly = nalloc_ctx_arena(ctx, NALLOC_KIND_POLY);
    char *p = nalloc_alloc(poly, 2u << 20);
    if (p == NULL || (uintptr_t)p % 4096 != 0)
        return 2;
    memset(p, 1, 2u << 20);
    if (nalloc_alloc(poly, SIZE_MAX) != NULL || nalloc_last_error() != NALLOC_ERR_NOMEM)
        return 3;
    nalloc_arena *witness = nalloc_ctx_arena(ctx, NALLOC_KIND_WITNESS);
    memset(nalloc_alloc(witness, 100), 7, 100);
    if (nalloc_wipe(witness) != NALLOC_OK)
        return 4;
#if defined(CONSUMER_WITH_CUDA)
    /* With CUDA built in, the CUDA API links too; without a device it answers, not crashes. */
    nalloc_status st = nalloc_cuda_available();
    if (st != NALLOC_OK && st != NALLOC_ERR_NO_DEVICE)
        return 5;
#endif
    printf("consumer: ok (%s)\n", nalloc_strerror(NALLOC_OK));
    return nalloc_ctx_destroy(ctx) == NALLOC_OK ? 0 : 6;
}
