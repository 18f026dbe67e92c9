/* bench/malloc_id.c - which malloc serves this process, proven rather than assumed.
 *
 * The benchmarks compare allocators by linking one executable per allocator: the same sources
 * built plainly (glibc), against libjemalloc, and against libmimalloc, whose malloc and free then
 * take the place of glibc's for the whole process. (Linking rather than LD_PRELOAD: the choice is
 * fixed in the binary, cannot leak into child processes or be lost by a wrapper script, and works
 * the same on every machine.) Interposition can still fail silently, for instance if a library
 * were linked in the wrong order, so each build checks, through the allocator's own statistics,
 * that a malloc call really reaches it. This file is compiled once per executable with
 * BENCH_MALLOC_JEMALLOC, BENCH_MALLOC_MIMALLOC or neither (glibc); BENCH_SANITIZED marks a
 * sanitizer build, whose runtime owns malloc.
 */
#include "malloc_id.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(BENCH_MALLOC_JEMALLOC)
#include <jemalloc/jemalloc.h>
#elif defined(BENCH_MALLOC_MIMALLOC)
#include <mimalloc.h>
#else
#include <gnu/libc-version.h>
#include <malloc.h>
#endif

const char *bench_malloc_name(void)
{
#if defined(BENCH_MALLOC_JEMALLOC)
    return "jemalloc";
#elif defined(BENCH_MALLOC_MIMALLOC)
    return "mimalloc";
#else
    return "glibc";
#endif
}

bool bench_malloc_verify(char *version, size_t size)
{
    const size_t probe_size = 12345;
    bool ok = false;
#if defined(BENCH_SANITIZED)
    /* A sanitizer runtime replaces malloc whatever we link: say so instead of checking. */
    void *probe = malloc(probe_size);
    ok = probe != NULL;
    snprintf(version, size, "the sanitizer runtime's malloc (sanitized build)");
#elif defined(BENCH_MALLOC_JEMALLOC)
    const char *v = "?";
    size_t vlen = sizeof v;
    uint64_t before = 0, after = 0;
    size_t len = sizeof before;
    mallctl("version", &v, &vlen, NULL, 0);
    mallctl("thread.allocated", &before, &len, NULL, 0);
    void *probe = malloc(probe_size);
    mallctl("thread.allocated", &after, &len, NULL, 0);
    ok = probe != NULL && after - before >= probe_size;
    snprintf(version, size, "jemalloc %s", v);
#elif defined(BENCH_MALLOC_MIMALLOC)
    char *probe = malloc(probe_size);
    if (probe != NULL)
        probe[0] = 1; /* mimalloc.h declares that the query reads the block */
    ok = probe != NULL && mi_is_in_heap_region(probe);
    int v = mi_version();
    snprintf(version, size, "mimalloc %d.%d.%d", v / 100, v / 10 % 10, v % 10);
#else
    struct mallinfo2 before = mallinfo2();
    void *probe = malloc(probe_size);
    struct mallinfo2 after = mallinfo2();
    ok = probe != NULL && after.uordblks - before.uordblks >= probe_size;
    snprintf(version, size, "glibc %s", gnu_get_libc_version());
#endif
    free(probe);
    if (!ok)
        fprintf(stderr, "bench: malloc in this process is not %s's\n", bench_malloc_name());
    return ok;
}
