/* tests/test_headers_c11.c - the public C headers compile as strict ISO C11 (-pedantic-errors,
 * no GNU extensions), the way a consumer's C build includes them. */
#include <nalloc/bump.h>
#include <nalloc/config.h>
#include <nalloc/nalloc.h>
#include <nalloc/detail/shim.h>
#include <nalloc/detail/warp.h>

int main(void)
{
    nalloc_arena_config config;
    nalloc_arena_config_init(&config, NALLOC_KIND_POLY, NALLOC_MEMORY_HOST, 4096);
    size_t begin = 0, end = 0;
    int fits = nalloc_bump_fit(0x1000, 4096, 0, 64, 64, &begin, &end);
    return fits && end == 64 && config.default_align == 64 ? 0 : 1;
}
