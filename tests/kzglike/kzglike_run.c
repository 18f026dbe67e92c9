/* tests/kzglike/kzglike_run.c - the toy commitment library's workload as a plain program.
 *
 * Links kzglike and the C library only, and prints every result: run plainly it gives the
 * reference, run under LD_PRELOAD=libnalloc_malloc.so (with or without NALLOC_ROUTE) it must
 * print the same bytes (run_preloaded.sh compares them), and tests/test_kzglike.c compares its own
 * routed results with this program's output.
 *
 * --check-arena: the override library is preloaded with NALLOC_ROUTE, so every thread allocates
 * from its arena; look that arena up (nalloc's functions are in the process then, found with
 * dlsym, not linked) and check around every library call that the call leaves no block of its
 * own alive and that the arena served it. --expect-fallback: the arena is meant to be too small;
 * check that requests fell back (results must still match). Exit status 1 on a failed check, 2
 * when nalloc is not in the process.
 */
#include "kzglike.h"
#include "workload.h"

#include <nalloc/nalloc.h>

#include <dlfcn.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- Around each call: what the routed arena says ---- */

static nalloc_arena *(*route_current)(void);
static nalloc_status (*arena_stats_sized)(const nalloc_arena *, nalloc_stats *, size_t);
#define arena_stats(a, s) arena_stats_sized((a), (s), sizeof *(s))
static int checking, expect_fallback, failed;
static size_t calls;

typedef struct snapshot {
    size_t live, allocations;
} snapshot;

static snapshot before_call(void)
{
    nalloc_stats s;
    if (!checking || arena_stats(route_current(), &s) != NALLOC_OK)
        return (snapshot){0, 0};
    return (snapshot){s.live_blocks, s.allocations};
}

static void after_call(snapshot b, const char *what)
{
    nalloc_stats s;
    if (!checking)
        return;
    calls++;
    if (arena_stats(route_current(), &s) != NALLOC_OK) {
        fprintf(stderr, "kzglike_run: %s: no arena to look at\n", what);
        failed = 1;
        return;
    }
    if (s.live_blocks != b.live) {
        fprintf(stderr, "kzglike_run: %s left %zd blocks alive in the arena\n", what,
                (ssize_t)(s.live_blocks - b.live));
        failed = 1;
    }
    if (!expect_fallback && s.allocations == b.allocations) { /* a full arena may serve none */
        fprintf(stderr, "kzglike_run: %s allocated nothing from the arena\n", what);
        failed = 1;
    }
}

/* ---- The workload ---- */

static void print_proof(const char *what, size_t i, size_t len, const kz_blob_proof *p, int ok)
{
    printf("%s %zu (%zu bytes): commitment %016" PRIx64 " z %016" PRIx64 " y %016" PRIx64
           " proof %016" PRIx64 " %s\n",
           what, i, len, p->commitment, p->z, p->y, p->proof, ok ? "verified" : "REJECTED");
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--check-arena") == 0)
            checking = 1;
        else if (strcmp(argv[i], "--expect-fallback") == 0)
            expect_fallback = 1;
    }
    if (checking) {
        *(void **)&route_current = dlsym(RTLD_DEFAULT, "nalloc_route_current");
        *(void **)&arena_stats_sized = dlsym(RTLD_DEFAULT, "nalloc_arena_stats_sized");
        if (route_current == NULL || arena_stats_sized == NULL || route_current() == NULL) {
            fprintf(stderr, "kzglike_run: --check-arena needs the override library preloaded "
                            "with NALLOC_ROUTE\n");
            return 2;
        }
    }

    enum { COUNT = KZ_WORKLOAD_COUNT };
    const size_t *lens = kz_workload_lens;
    printf("kzglike: %d blobs\n", COUNT); /* stdout's buffer is allocated here, before any call */

    kz_settings *s = NULL;
    if (kz_setup(KZ_WORKLOAD_MAX_COEFFS, KZ_WORKLOAD_TAU, &s) != KZ_OK)
        return 3;
    const uint8_t *blobs[COUNT];
    for (size_t i = 0; i < COUNT; i++)
        if ((blobs[i] = kz_workload_blob(i)) == NULL)
            return 3;

    /* One call per blob, each nesting kz_commit and kz_prove (which nests kz_commit). */
    kz_blob_proof one[COUNT];
    for (size_t i = 0; i < COUNT; i++) {
        snapshot b = before_call();
        kz_ret ret = kz_blob_to_proof(s, blobs[i], lens[i], &one[i]);
        after_call(b, "kz_blob_to_proof");
        if (ret != KZ_OK)
            return 4;
        print_proof("blob", i, lens[i], &one[i],
                    kz_verify(s, one[i].commitment, one[i].z, one[i].y, one[i].proof));
    }

    /* The public calls one level down. */
    uint64_t coeffs[1000];
    for (size_t i = 0; i < 1000; i++)
        coeffs[i] = (i * i * 7919 + 13) % KZ_P;
    uint64_t c, y, proof;
    snapshot b = before_call();
    kz_ret ret = kz_commit(s, coeffs, 1000, &c);
    after_call(b, "kz_commit");
    b = before_call();
    if (ret == KZ_OK)
        ret = kz_prove(s, coeffs, 1000, 12345, &y, &proof);
    after_call(b, "kz_prove");
    if (ret != KZ_OK)
        return 4;
    printf("polynomial: commitment %016" PRIx64 " y %016" PRIx64 " proof %016" PRIx64 " %s\n", c,
           y, proof, kz_verify(s, c, 12345, y, proof) ? "verified" : "REJECTED");

    /* The same blobs on a pool of three threads, twice. */
    kz_pool *pool = NULL;
    if (kz_pool_create(3, &pool) != KZ_OK)
        return 3;
    for (int round = 0; round < 2; round++) {
        kz_blob_proof batch[COUNT];
        b = before_call();
        ret = kz_batch_prove(pool, s, blobs, lens, COUNT, batch);
        after_call(b, "kz_batch_prove");
        if (ret != KZ_OK)
            return 4;
        for (size_t i = 0; i < COUNT; i++)
            print_proof("batch", i, lens[i], &batch[i],
                        memcmp(&batch[i], &one[i], sizeof batch[i]) == 0 &&
                            kz_verify(s, batch[i].commitment, batch[i].z, batch[i].y,
                                      batch[i].proof));
    }
    kz_pool_destroy(pool);
    for (size_t i = 0; i < COUNT; i++)
        free((void *)blobs[i]);
    kz_free_settings(s);

    if (checking) {
        nalloc_stats st;
        arena_stats(route_current(), &st);
        if (expect_fallback != (st.fallbacks > 0)) {
            fprintf(stderr, "kzglike_run: %zu requests fell back to the system allocator (%s)\n",
                    st.fallbacks, expect_fallback ? "some were expected" : "none expected");
            failed = 1;
        }
        fprintf(stderr, "kzglike_run: %zu library calls checked in the arena: %s\n", calls,
                failed ? "FAILED" : "each left nothing alive");
    }
    return failed;
}
