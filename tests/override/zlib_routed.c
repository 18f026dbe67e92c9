/* tests/override/zlib_routed.c - every call into zlib routed into an arena of its own call.
 *
 * Preloaded after libnalloc_malloc.so, this library stands between a program and zlib: each zlib
 * function the program calls (the ones zlib's own test programs, example.c and minigzip.c, use)
 * pushes a route into one arena, calls the real function (dlsym RTLD_NEXT) and pops the route.
 * So everything zlib allocates inside a call comes from the arena, whatever the program does, and
 * is freed in a later call (deflateEnd, gzclose) or in the same one (compress, uncompress), while
 * the program's own allocations stay with the system allocator. Neither zlib nor its tests are
 * changed: this is "a real C library's test suite, routed per call" (tests/override/zlib_suite.sh).
 *
 * Checked: compress and uncompress leave no block alive in the arena; at exit no block is alive
 * and nothing is used (every stream ended), the arena served zlib, and nothing fell back. A
 * failed check is reported on stderr and the process exits with status 99.
 */
#define _GNU_SOURCE
#include <nalloc/nalloc.h>

#include <dlfcn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <zlib.h>

static nalloc_arena *arena;
static size_t calls, leaks;

__attribute__((constructor)) static void make_arena(void)
{
    nalloc_arena_config config;
    nalloc_arena_config_init(&config, NALLOC_KIND_SCRATCH, NALLOC_MEMORY_HOST, (size_t)256 << 20);
    config.name = "zlib";
    if (nalloc_arena_create(&config, &arena) != NALLOC_OK) {
        fprintf(stderr, "zlib_routed: cannot create the arena\n");
        _exit(99);
    }
}

__attribute__((destructor)) static void check_arena(void)
{
    nalloc_stats s;
    if (nalloc_arena_stats(arena, &s) != NALLOC_OK)
        _exit(99);
    int ok = s.live_blocks == 0 && s.used == 0 && s.allocations > 0 && s.fallbacks == 0 &&
             leaks == 0;
    fprintf(stderr,
            "zlib_routed: %zu zlib calls, each routed on its own: %zu blocks from the arena "
            "(peak %zu bytes), %zu alive at exit, %zu bytes used, %zu fallbacks, %zu calls that "
            "left blocks they should not: %s\n",
            calls, s.allocations, s.high_water, s.live_blocks, s.used, s.fallbacks, leaks,
            ok ? "ok" : "FAILED");
    if (!ok)
        _exit(99);
}

static size_t live(void)
{
    nalloc_stats s;
    return nalloc_arena_stats(arena, &s) == NALLOC_OK ? s.live_blocks : (size_t)-1;
}

/* The real function, looked up once (before the route is pushed: dlsym may allocate). */
#define REAL(name) \
    static __typeof__(&name) real_; \
    if (real_ == NULL) \
        *(void **)&real_ = dlsym(RTLD_NEXT, #name)

/* A zlib function that returns a value, called in a route of its own. */
#define ROUTED(type, name, params, args) \
    type(name) params \
    { \
        REAL(name); \
        bool routed_ = nalloc_route_push(arena) == NALLOC_OK; \
        type r = real_ args; \
        if (routed_) \
            nalloc_route_pop(); \
        leaks += !routed_; /* a push refused: counted as a failure of the run */ \
        calls++; \
        return r; \
    }

/* The same for a call that must give back everything it allocated before it returns. */
#define ROUTED_WHOLE(type, name, params, args) \
    type(name) params \
    { \
        REAL(name); \
        size_t before = live(); \
        bool routed_ = nalloc_route_push(arena) == NALLOC_OK; \
        type r = real_ args; \
        if (routed_) \
            nalloc_route_pop(); \
        leaks += !routed_; /* a push refused: counted as a failure of the run */ \
        calls++; \
        leaks += live() != before; \
        return r; \
    }

ROUTED_WHOLE(int, compress, (Bytef *dest, uLongf *destLen, const Bytef *source, uLong sourceLen),
             (dest, destLen, source, sourceLen))
ROUTED_WHOLE(int, uncompress, (Bytef *dest, uLongf *destLen, const Bytef *source, uLong sourceLen),
             (dest, destLen, source, sourceLen))
ROUTED(int, deflateInit_, (z_streamp strm, int level, const char *version, int stream_size),
       (strm, level, version, stream_size))
ROUTED(int, deflate, (z_streamp strm, int flush), (strm, flush))
ROUTED(int, deflateEnd, (z_streamp strm), (strm))
ROUTED(int, deflateParams, (z_streamp strm, int level, int strategy), (strm, level, strategy))
ROUTED(int, deflateSetDictionary, (z_streamp strm, const Bytef *dictionary, uInt dictLength),
       (strm, dictionary, dictLength))
ROUTED(int, inflateInit_, (z_streamp strm, const char *version, int stream_size),
       (strm, version, stream_size))
ROUTED(int, inflate, (z_streamp strm, int flush), (strm, flush))
ROUTED(int, inflateEnd, (z_streamp strm), (strm))
ROUTED(int, inflateSync, (z_streamp strm), (strm))
ROUTED(int, inflateSetDictionary, (z_streamp strm, const Bytef *dictionary, uInt dictLength),
       (strm, dictionary, dictLength))
ROUTED(gzFile, gzopen, (const char *path, const char *mode), (path, mode))
ROUTED(gzFile, gzdopen, (int fd, const char *mode), (fd, mode))
ROUTED(int, gzread, (gzFile file, voidp buf, unsigned len), (file, buf, len))
ROUTED(int, gzwrite, (gzFile file, voidpc buf, unsigned len), (file, buf, len))
ROUTED(int, gzputc, (gzFile file, int c), (file, c))
ROUTED(int, gzputs, (gzFile file, const char *s), (file, s))
ROUTED(int, gzgetc, (gzFile file), (file))
ROUTED(int, gzungetc, (int c, gzFile file), (c, file))
ROUTED(char *, gzgets, (gzFile file, char *buf, int len), (file, buf, len))
ROUTED(z_off_t, gzseek, (gzFile file, z_off_t offset, int whence), (file, offset, whence))
ROUTED(z_off_t, gztell, (gzFile file), (file))
ROUTED(const char *, gzerror, (gzFile file, int *errnum), (file, errnum))
ROUTED(int, gzclose, (gzFile file), (file))
ROUTED(int, gzvprintf, (gzFile file, const char *format, va_list va), (file, format, va))

int gzprintf(gzFile file, const char *format, ...)
{
    va_list va;
    va_start(va, format);
    int r = gzvprintf(file, format, va); /* routed above */
    va_end(va);
    return r;
}
