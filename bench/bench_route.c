/* bench/bench_route.c - what routing costs: the malloc family against glibc.
 *
 * docs/routing.md promises that a routed allocation is an arena bump and that code which never
 * routes pays almost nothing for nalloc being there. This measures both, single-threaded, as
 * allocate-and-free pairs of one small block (the case where per-call overhead shows most):
 *
 *   glibc            malloc + free (glibc's tcache: the baseline every program already pays)
 *   routed           nalloc_malloc + nalloc_free with a route pushed (the arena's fast path)
 *   unrouted         nalloc_malloc + nalloc_free with no route (what the override library does)
 *   free-foreign     glibc malloc + nalloc_free: nalloc_free of a pointer no arena owns
 *   owner            nalloc_owner of a pointer inside an arena, with N arenas alive
 *
 * Calls go through volatile function pointers so the compiler cannot pair and drop them. Each
 * figure is the median over rounds of the per-call time; run it on a quiet machine, it is a
 * nanosecond benchmark. Output: a table on stdout, and CSV with --csv FILE.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nalloc/nalloc.h>

#include "harness.h"

#define MAX_ROUNDS 64

static void *volatile sink;
static void *(*volatile sys_malloc)(size_t) = malloc;
static void (*volatile sys_free)(void *) = free;
static void *(*volatile n_malloc)(size_t) = nalloc_malloc;
static void (*volatile n_free)(void *) = nalloc_free;

typedef struct options {
    size_t calls;       /* pairs per round */
    unsigned rounds;
    size_t size;        /* bytes per block */
    unsigned arenas;    /* arenas alive for the owner figure */
    const char *csv;
} options;

typedef double (*case_fn)(const options *o, nalloc_arena *a);

static double time_glibc(const options *o, nalloc_arena *a)
{
    (void)a;
    double t = bench_now();
    for (size_t i = 0; i < o->calls; i++) {
        void *p = sys_malloc(o->size);
        sink = p;
        sys_free(p);
    }
    return (bench_now() - t) / (double)o->calls;
}

static double time_nalloc(const options *o)
{
    double t = bench_now();
    for (size_t i = 0; i < o->calls; i++) {
        void *p = n_malloc(o->size);
        sink = p;
        n_free(p);
    }
    return (bench_now() - t) / (double)o->calls;
}

static double time_routed(const options *o, nalloc_arena *a)
{
    if (nalloc_route_push(a) != NALLOC_OK)
        return -1;
    double ns = time_nalloc(o);
    (void)nalloc_route_pop();
    return ns;
}

static double time_unrouted(const options *o, nalloc_arena *a)
{
    (void)a;
    return time_nalloc(o);
}

static double time_free_foreign(const options *o, nalloc_arena *a)
{
    (void)a;
    double t = bench_now();
    for (size_t i = 0; i < o->calls; i++) {
        void *p = sys_malloc(o->size);
        sink = p;
        n_free(p);
    }
    return (bench_now() - t) / (double)o->calls;
}

static double time_owner(const options *o, nalloc_arena *a)
{
    void *p = nalloc_arena_malloc(a, o->size, 0);
    if (p == NULL)
        return -1;
    nalloc_arena *(*volatile owner)(const void *) = nalloc_owner;
    size_t hits = 0;
    double t = bench_now();
    for (size_t i = 0; i < o->calls; i++)
        hits += owner(p) == a;
    double ns = (bench_now() - t) / (double)o->calls;
    nalloc_free(p);
    return hits == o->calls ? ns : -1;
}

static void usage(FILE *out)
{
    fprintf(out, "usage: bench_route [--calls N] [--rounds N] [--size BYTES] [--arenas N] "
                 "[--csv FILE] [--smoke]\n");
}

int main(int argc, char **argv)
{
    options o = {2000000, 15, 64, 256, NULL};
    for (int i = 1; i < argc; i++) {
        unsigned long v;
        if (strcmp(argv[i], "--smoke") == 0) {
            o.calls = 20000;
            o.rounds = 2;
            o.arenas = 8;
        } else if (i + 1 < argc && strcmp(argv[i], "--calls") == 0 &&
                   bench_parse_uint(argv[i + 1], 1, 1000000000, &v)) {
            o.calls = v;
            i++;
        } else if (i + 1 < argc && strcmp(argv[i], "--rounds") == 0 &&
                   bench_parse_uint(argv[i + 1], 1, MAX_ROUNDS, &v)) {
            o.rounds = (unsigned)v;
            i++;
        } else if (i + 1 < argc && strcmp(argv[i], "--size") == 0 &&
                   bench_parse_uint(argv[i + 1], 1, 1 << 20, &v)) {
            o.size = v;
            i++;
        } else if (i + 1 < argc && strcmp(argv[i], "--arenas") == 0 &&
                   bench_parse_uint(argv[i + 1], 1, 4096, &v)) {
            o.arenas = (unsigned)v;
            i++;
        } else if (i + 1 < argc && strcmp(argv[i], "--csv") == 0) {
            o.csv = argv[++i];
        } else {
            usage(stderr);
            return 2;
        }
    }

    /* The measured arena among `arenas` live ones, small and large, so the ownership table holds
     * as many ranges as a prover with per-thread and per-phase arenas would. */
    nalloc_arena **all = calloc(o.arenas, sizeof *all);
    if (all == NULL)
        return 1;
    for (unsigned i = 0; i < o.arenas; i++) {
        nalloc_arena_config c;
        nalloc_arena_config_init(&c, NALLOC_KIND_SCRATCH, NALLOC_MEMORY_HOST,
                                 i % 4 == 0 ? (size_t)64 << 20 : (size_t)256 << 10);
        c.flags |= NALLOC_FLAG_NORESERVE;
        if (nalloc_arena_create(&c, &all[i]) != NALLOC_OK) {
            fprintf(stderr, "bench_route: cannot create arena %u: %s\n", i,
                    nalloc_last_error_message());
            return 1;
        }
    }
    nalloc_arena *a = all[0];

    static const struct {
        const char *name;
        case_fn fn;
    } cases[] = {{"glibc malloc+free", time_glibc},
                 {"routed nalloc_malloc+nalloc_free", time_routed},
                 {"unrouted nalloc_malloc+nalloc_free", time_unrouted},
                 {"glibc malloc + nalloc_free", time_free_foreign},
                 {"nalloc_owner (arena block)", time_owner}};
    enum { CASES = sizeof cases / sizeof cases[0] };
    double samples[CASES][MAX_ROUNDS], median[CASES];
    for (unsigned r = 0; r < o.rounds; r++) /* interleaved, so drift hits every case alike */
        for (unsigned c = 0; c < CASES; c++)
            samples[c][r] = cases[c].fn(&o, a) * 1e9;

    printf("# bench_route: %zu pairs x %u rounds, %zu-byte blocks, %u arenas alive\n", o.calls,
           o.rounds, o.size, o.arenas);
    bench_print_machine(stdout, "# ");
    printf("%-38s %10s\n", "case", "ns (median)");
    for (unsigned c = 0; c < CASES; c++) {
        median[c] = bench_median(samples[c], o.rounds);
        printf("%-38s %10.2f\n", cases[c].name, median[c]);
    }
    printf("%-38s %+10.2f\n", "routed pair - glibc pair", median[1] - median[0]);
    printf("%-38s %+10.2f\n", "unrouted pair - glibc pair", median[2] - median[0]);
    printf("%-38s %+10.2f\n", "nalloc_free - free (foreign pointer)", median[3] - median[0]);
    if (o.csv != NULL) {
        FILE *f = fopen(o.csv, "w");
        if (f == NULL) {
            perror(o.csv);
            return 1;
        }
        fprintf(f, "case,ns,size,arenas\n");
        for (unsigned c = 0; c < CASES; c++)
            fprintf(f, "%s,%.3f,%zu,%u\n", cases[c].name, median[c], o.size, o.arenas);
        fclose(f);
    }
    for (unsigned c = 0; c < CASES; c++)
        if (median[c] < 0) {
            fprintf(stderr, "bench_route: case '%s' failed\n", cases[c].name);
            return 1;
        }
    for (unsigned i = 0; i < o.arenas; i++)
        nalloc_arena_destroy(all[i]);
    free(all);
    return 0;
}
