/* bench/bench_nvtx_hooks.c - what the NVTX memory annotations cost when no tool is attached.
 *
 * A device arena built with NVTX (the default) describes its blocks to a memory tool through
 * hooks: na_nvtx_region_alloc on every allocation and na_nvtx_heap_release on every rollback,
 * reset and wipe, installed by na_nvtx_heap_register. Without a tool they must cost nothing
 * measurable. This runs the host-side allocation path of a device arena without needing a GPU:
 * a host arena with the device's 256-byte alignment and the device backing's hooks installed
 * (cuda/nvtx.c is compiled in, as in tests/test_nvtx.c), against the same arena without hooks,
 * which is what a build with NALLOC_NVTX=OFF runs. The two are interleaved, and each figure is
 * the median of the rounds.
 *
 * Usage: bench_nvtx_hooks [--allocs N] [--rounds N]. Prints a table and `csv,...` lines.
 */
#include "cuda_internal.h"
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifndef BENCH_BUILD
#define BENCH_BUILD "unknown build"
#endif

#define BATCH 4096 /* allocations between resets: a phase's worth */

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static nalloc_arena *device_like(bool hooks, na_backing *storage)
{
    nalloc_arena_config c;
    nalloc_arena_config_init(&c, NALLOC_KIND_SCRATCH, NALLOC_MEMORY_HOST, BATCH * 256);
    c.default_align = 256;
    nalloc_arena *a = NULL;
    if (nalloc_arena_create(&c, &a) != NALLOC_OK) {
        fprintf(stderr, "bench_nvtx_hooks: cannot create an arena\n");
        exit(1);
    }
    if (hooks) {
        *storage = *a->memory.backing;
        a->memory.backing = storage;
        na_nvtx_heap_register(&a->memory); /* as the device backing's create does */
        a->on_alloc = a->memory.on_alloc;  /* as arena creation does after it */
    }
    return a;
}

/* Nanoseconds per allocation over `allocs` allocations of 64 bytes, reset every BATCH. */
static double ns_per_alloc(nalloc_arena *a, long allocs)
{
    double t0 = now();
    for (long i = 0; i < allocs; i += BATCH) {
        for (int j = 0; j < BATCH; j++) {
            void *p = nalloc_alloc(a, 64);
            __asm__ volatile("" : : "r"(p) : "memory");
        }
        if (nalloc_reset(a) != NALLOC_OK) {
            fprintf(stderr, "bench_nvtx_hooks: %s\n", nalloc_last_error_message());
            exit(1);
        }
    }
    return (now() - t0) * 1e9 / (double)allocs;
}

/* Nanoseconds per direct call of the allocation hook on an arena without a tool. */
static double ns_per_hook_call(nalloc_arena *a, long calls)
{
    double t0 = now();
    for (long i = 0; i < calls; i++) {
        na_nvtx_region_alloc(&a->memory, (size_t)(i & 1023) * 256, 64);
        __asm__ volatile("" : : : "memory");
    }
    return (now() - t0) * 1e9 / (double)calls;
}

int main(int argc, char **argv)
{
    long allocs = 20 * 1000 * 1000;
    int rounds = 11;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--allocs") == 0 && i + 1 < argc)
            allocs = atol(argv[++i]);
        else if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc)
            rounds = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: %s [--allocs N] [--rounds N]\n", argv[0]);
            return 2;
        }
    }
    if (allocs < BATCH || rounds < 1 || rounds > 101) {
        fprintf(stderr, "bench_nvtx_hooks: --allocs at least %d, --rounds 1..101\n", BATCH);
        return 2;
    }
    allocs -= allocs % BATCH;

    na_backing storage;
    nalloc_arena *plain = device_like(false, NULL);
    nalloc_arena *hooked = device_like(true, &storage);
    bool tool = hooked->memory.tool != NULL;
    printf("bench_nvtx_hooks: device-arena allocation path, NVTX hooks vs none (%s)\n",
           tool ? "A TOOL IS ATTACHED: these are the tool's costs" : "no tool attached");
    printf("# build   %s\n", BENCH_BUILD);
    printf("# %ld allocations of 64 B per round, reset every %d, %d rounds, median\n", allocs,
           BATCH, rounds);

    double without[101], with[101], hook[101];
    ns_per_alloc(plain, allocs / 4); /* warm both up */
    ns_per_alloc(hooked, allocs / 4);
    for (int r = 0; r < rounds; r++) {
        without[r] = ns_per_alloc(plain, allocs);
        with[r] = ns_per_alloc(hooked, allocs);
        hook[r] = ns_per_hook_call(hooked, allocs);
    }
    qsort(without, (size_t)rounds, sizeof without[0], compare_doubles);
    qsort(with, (size_t)rounds, sizeof with[0], compare_doubles);
    qsort(hook, (size_t)rounds, sizeof hook[0], compare_doubles);
    double w0 = without[rounds / 2], w1 = with[rounds / 2], h = hook[rounds / 2];
    printf("%-44s %10s %10s %10s\n", "", "min", "median", "max");
    printf("%-44s %10.2f %10.2f %10.2f ns\n", "nalloc_alloc, no hooks (NALLOC_NVTX=OFF)",
           without[0], w0, without[rounds - 1]);
    printf("%-44s %10.2f %10.2f %10.2f ns\n",
           tool ? "nalloc_alloc, NVTX hooks, tool attached" : "nalloc_alloc, NVTX hooks, no tool",
           with[0], w1, with[rounds - 1]);
    printf("%-44s %10.2f %10.2f %10.2f ns\n", "the hook alone (na_nvtx_region_alloc)", hook[0], h,
           hook[rounds - 1]);
    printf("difference of the medians: %+.2f ns per allocation (%+.1f%%)\n", w1 - w0,
           100.0 * (w1 - w0) / w0);
    printf("csv,nvtx_hooks,%s,%ld,%.3f,%.3f,%.3f\n", tool ? "tool" : "no_tool", allocs, w0, w1, h);

    na_nvtx_heap_unregister(&hooked->memory);
    nalloc_arena_destroy(hooked);
    nalloc_arena_destroy(plain);
    return 0;
}
