/* tests/headers_strict.c - the public headers under the strictest warnings users build with.
 *
 * Projects such as c-kzg-4844 build with -Wpadded -Werror (and -Waggregate-return), and an
 * include of nalloc/nalloc.h must not break them. tests/check_headers.sh compiles this file with
 * gcc and clang, as C11 and as C++17, under -Wall -Wextra -Wpedantic -Wconversion
 * -Wsign-conversion -Wshadow -Wcast-qual -Wpadded -Waggregate-return -Werror. It names every
 * public struct (a compiler lays a struct out, and warns about its padding, only when it needs
 * its size) and calls the inline functions, so their bodies are checked too. Compiled, never run.
 */
#include <nalloc/bump.h>
#include <nalloc/config.h>
#include <nalloc/nalloc.h>
#include <nalloc/detail/shim.h>
#include <nalloc/detail/warp.h>
#if defined(NALLOC_TEST_CUDA_H)
#include <nalloc/cuda.h>
#endif

size_t headers_strict_sizes(void);
size_t headers_strict_calls(nalloc_arena *arena, nalloc_ctx *ctx);

size_t headers_strict_sizes(void)
{
    size_t total = sizeof(nalloc_arena_config) + sizeof(nalloc_stats) + sizeof(nalloc_mark) +
                   sizeof(nalloc_ctx_config) + sizeof(nalloc_profile) + sizeof(nalloc_bump) +
                   sizeof(nalloc_detail_warp_sum);
#if defined(NALLOC_TEST_CUDA_H)
    total += sizeof(nalloc_window) + sizeof(nalloc_window_state);
#endif
    return total;
}

size_t headers_strict_calls(nalloc_arena *arena, nalloc_ctx *ctx)
{
    nalloc_stats stats;
    nalloc_profile profile;
    size_t begin = 0, end = 0;
    size_t n = nalloc_bump_fit(0x1000, 4096, 0, 64, 64, &begin, &end) ? end : 0;
    if (nalloc_arena_stats(arena, &stats) == NALLOC_OK)
        n += stats.used;
    if (nalloc_ctx_profile(ctx, &profile) == NALLOC_OK)
        n += profile.kinds;
    void *p = nalloc_alloc_aligned(arena, 64, 64);
    return p != NULL ? n + 1 : n;
}
