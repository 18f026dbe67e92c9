/* tests/bump_checks.h - a compiler-independent check of the bump core, included by
 * test_bump_cxx.cpp (g++) and test_bump_cuda.cu (nvcc) to prove that nalloc/bump.h compiles and
 * behaves the same as C++ and under nvcc. Returns the number of failed checks. */
#ifndef NALLOC_BUMP_CHECKS_H
#define NALLOC_BUMP_CHECKS_H

#include <nalloc/bump.h>
#include <nalloc/nalloc.h>
#include <nalloc/detail/warp.h>

#include <stdio.h>

#define BUMP_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);               \
            failures++;                                                                            \
        }                                                                                          \
    } while (0)

static int bump_checks(void)
{
    int failures = 0;
    nalloc_bump b;
    size_t begin = 0, pad = 0, counter = 0;
    BUMP_CHECK(nalloc_bump_init(&b, 0x10000, 1024));
    BUMP_CHECK(nalloc_bump_reserve(&b, 100, 64, &begin, &pad) && begin == 0 && pad == 0);
    BUMP_CHECK(nalloc_bump_reserve(&b, 10, 64, &begin, &pad) && begin == 128 && pad == 28);
    BUMP_CHECK(!nalloc_bump_reserve(&b, SIZE_MAX, 1, &begin, &pad));
    BUMP_CHECK(!nalloc_bump_reserve(&b, 1, 3, &begin, &pad));
    BUMP_CHECK(b.offset == 138);
    BUMP_CHECK(!nalloc_bump_init(&b, UINTPTR_MAX - 10, 11));
    BUMP_CHECK(nalloc_bump_reserve_add(&counter, 1024, 1, 256, &begin) && begin == 0);
    BUMP_CHECK(!nalloc_bump_reserve_add(&counter, 1024, SIZE_MAX, 256, &begin));
    BUMP_CHECK(counter == 256);
    BUMP_CHECK(nalloc_is_pow2((size_t)1 << 63) && !nalloc_is_pow2(0));
    /* The public header's types are usable from this language too. */
    nalloc_arena_config config;
    nalloc_arena_config_init(&config, NALLOC_KIND_SCRATCH, NALLOC_MEMORY_HOST, 4096);
    BUMP_CHECK(config.capacity == 4096 && config.default_align == 64);
    return failures;
}

#endif /* NALLOC_BUMP_CHECKS_H */
