/* src/override.c - libnalloc_malloc.so: the C library's malloc, routed into arenas.
 *
 * Loaded with LD_PRELOAD, or linked before the C library, this library defines malloc, free and
 * the rest of their family over nalloc's malloc family (src/route.c), so a program or a library we
 * did not write allocates from an arena wherever a route is pushed, and C++ new and delete (which
 * call malloc and free) follow. With no route it must be invisible: every call goes to glibc's own
 * allocator, and a free costs one look at the ownership table (src/owner.c) more.
 *
 * Where glibc's own functions accept arguments nalloc's stricter ones refuse (aligned_alloc and
 * memalign with an alignment that is not a power of two, which glibc rounds up), the unrouted
 * path hands them to glibc unchanged, so results stay the same; routed, the alignment is rounded
 * up as glibc would.
 *
 * NALLOC_ROUTE=<kind>:<size> (kind poly, witness or scratch; size with an optional k, m or g
 * suffix, e.g. scratch:4g) creates one host arena at start-up and routes every thread with no
 * route of its own into it, for short-lived processes. The arena lives until the process ends
 * (blocks in it may be freed as late as exit handlers); if it ever ran out of room, a line on
 * stderr at exit says how many requests the system allocator served instead.
 */
#include <nalloc/nalloc.h>

#include "parse_size.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NA_EXPORT __attribute__((visibility("default")))

extern void *__libc_memalign(size_t align, size_t size);

/* glibc's memalign: an alignment that is not a power of two is rounded up to one. */
static size_t round_align(size_t align)
{
    size_t a = sizeof(void *) * 2;
    while (a < align && a <= SIZE_MAX / 2)
        a *= 2;
    return a;
}

NA_EXPORT void *malloc(size_t size)
{
    return nalloc_malloc(size);
}

NA_EXPORT void free(void *ptr)
{
    nalloc_free(ptr);
}

NA_EXPORT void *calloc(size_t count, size_t size)
{
    return nalloc_calloc(count, size);
}

NA_EXPORT void *realloc(void *ptr, size_t size)
{
    return nalloc_mrealloc(ptr, size);
}

NA_EXPORT void *reallocarray(void *ptr, size_t count, size_t size)
{
    size_t bytes;
    if (__builtin_mul_overflow(count, size, &bytes)) {
        errno = ENOMEM;
        return NULL;
    }
    return nalloc_mrealloc(ptr, bytes);
}

NA_EXPORT void *memalign(size_t align, size_t size)
{
    if (nalloc_route_current() == NULL)
        return __libc_memalign(align, size);
    return nalloc_aligned_alloc(round_align(align), size);
}

NA_EXPORT void *aligned_alloc(size_t align, size_t size)
{
    return memalign(align, size); /* glibc's aligned_alloc is its memalign */
}

NA_EXPORT int posix_memalign(void **out, size_t align, size_t size)
{
    return nalloc_posix_memalign(out, align, size);
}

NA_EXPORT void *valloc(size_t size)
{
    return memalign((size_t)sysconf(_SC_PAGESIZE), size);
}

NA_EXPORT void *pvalloc(size_t size)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    if (size > SIZE_MAX - page) {
        errno = ENOMEM;
        return NULL;
    }
    return memalign(page, (size + page - 1) & ~(page - 1));
}

NA_EXPORT size_t malloc_usable_size(void *ptr)
{
    return nalloc_usable_size(ptr);
}

/* ---------------------------------------------------------------------------------------------
 * NALLOC_ROUTE
 * ------------------------------------------------------------------------------------------- */

static nalloc_arena *process_route;
static char route_spec[64];

static bool parse_kind(const char *text, size_t len, nalloc_kind *kind)
{
    static const char *const names[NALLOC_KIND_COUNT] = {"poly", "witness", "scratch"};
    for (int k = 0; k < NALLOC_KIND_COUNT; k++) {
        if (strlen(names[k]) == len && strncmp(text, names[k], len) == 0) {
            *kind = (nalloc_kind)k;
            return true;
        }
    }
    return false;
}

static void report_fallbacks(void)
{
    nalloc_stats s;
    if (process_route == NULL || nalloc_arena_stats(process_route, &s) != NALLOC_OK)
        return;
    if (s.fallbacks > 0)
        fprintf(stderr,
                "nalloc: NALLOC_ROUTE=%s: %zu allocation%s did not fit in the arena and came "
                "from the system allocator (peak use %zu of %zu bytes)\n",
                route_spec, s.fallbacks, s.fallbacks == 1 ? "" : "s", s.high_water, s.capacity);
}

__attribute__((constructor)) static void route_from_environment(void)
{
    const char *spec = getenv("NALLOC_ROUTE");
    if (spec == NULL || *spec == '\0')
        return;
    snprintf(route_spec, sizeof route_spec, "%s", spec);
    const char *colon = strchr(spec, ':');
    nalloc_kind kind;
    size_t size;
    if (colon == NULL || !parse_kind(spec, (size_t)(colon - spec), &kind) ||
        !na_parse_size(colon + 1, 40, &size) || size == 0) {
        fprintf(stderr, "nalloc: ignoring NALLOC_ROUTE=%s (expected <poly|witness|scratch>:<size>, "
                        "e.g. scratch:4g)\n", route_spec);
        return;
    }
    nalloc_arena_config config;
    nalloc_arena_config_init(&config, kind, NALLOC_MEMORY_HOST, size);
    config.name = "NALLOC_ROUTE";
    /* Not at exit: stdio's buffers may live in the arena, and exit handlers registered before
     * ours may still use the heap after the exit-time wipe would have run. The memory dies with
     * the process. Not on fork either (a witness arena's default): a forked child (a shell's
     * command substitution, a subprocess) goes on using its copy of the heap. */
    config.flags &= ~(unsigned)(NALLOC_FLAG_WIPE_AT_EXIT | NALLOC_FLAG_WIPEONFORK);
    nalloc_status st = nalloc_arena_create(&config, &process_route);
    if (st != NALLOC_OK) {
        fprintf(stderr, "nalloc: NALLOC_ROUTE=%s: cannot create the arena (%s); not routing\n",
                route_spec, nalloc_strerror(st));
        return;
    }
    (void)nalloc_route_set_default(process_route);
    atexit(report_fallbacks);
}
