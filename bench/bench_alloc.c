/* bench/bench_alloc.c - what one allocation call costs, and what a wipe costs against memset.
 *
 * Allocation. For each size from 64 B to 64 MiB (powers of four), on one thread and on every
 * CPU at once, a batch of calls is timed and the median batch reported, in nanoseconds per call:
 *   alloc  K allocations in a row, freed after the clock stops (every allocator);
 *   pair   malloc immediately followed by free, K times (the general allocators; nalloc's
 *          equivalent, nalloc_alloc + nalloc_free_last, on one thread only: with several
 *          threads on one arena the last block is rarely the caller's).
 * nalloc allocates from one arena shared by all threads (MAP_NORESERVE, so address space only),
 * and, with several threads, also from per-thread lanes of that arena (nalloc_arena_split:
 * "nalloc-lane", where no two threads share an offset, so `pair` works on every thread too).
 * The benchmark never touches the blocks, but the general allocators do: they write a header in
 * front of (or metadata beside) each block, so a batch of `alloc` that reaches fresh memory pays
 * the page faults for those headers, and glibc returns the top of its heap to the kernel when the
 * batch is freed, so the next batch faults again. That is their real cost of handing out new
 * memory; `pair` shows their cost when memory is recycled. nalloc writes nothing into a block.
 * One untimed batch warms every allocator up first. With several threads, "per call" is the
 * slowest thread's time over the calls it made (the latency a thread sees), "aggregate" that time
 * over every thread's calls.
 *
 * Wipe. On one buffer inside a populated witness arena, for sizes 4 KiB to 256 MiB: memset to
 * zero, explicit_bzero, and nalloc_wipe after allocating the buffer (nalloc_wipe zeroes up to the
 * high-water mark and resets; its fixed cost shows at small sizes). Reported in GB/s (10^9 B/s).
 *
 * Built once per malloc (bench_alloc, bench_alloc_jemalloc, bench_alloc_mimalloc); the plain
 * build also measures nalloc and the wipe.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nalloc/nalloc.h>

#include "harness.h"
#include "malloc_id.h"

#define MAX_THREADS 256
#define MAX_BATCH 100000

typedef enum op { OP_ALLOC, OP_PAIR } op;
static const char *const op_names[] = {"alloc", "pair"};

typedef struct config {
    unsigned batches;       /* timed batches per measurement; the median is reported */
    size_t max_size;        /* bytes: the largest size measured */
    size_t batch_bytes;     /* bytes per thread per batch (sets K for large sizes) */
    size_t max_batch;       /* calls per thread per batch, at most */
    size_t wipe_max;        /* bytes: the largest wipe measured */
    FILE *csv;              /* rows, or NULL */
} config;

typedef struct worker {
    pthread_barrier_t *start;
    nalloc_arena *arena;    /* NULL: malloc */
    op operation;
    size_t size, count;
    void **blocks;          /* count slots */
    double elapsed;         /* seconds of the timed loop */
    size_t failures;
} worker;

static inline void escape(void *p) /* keep the compiler from eliding malloc/free pairs */
{
    __asm__ volatile("" : : "g"(p) : "memory");
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    pthread_barrier_wait(w->start);
    double t0 = bench_now();
    if (w->arena != NULL && w->operation == OP_ALLOC) {
        for (size_t i = 0; i < w->count; i++)
            w->blocks[i] = nalloc_alloc(w->arena, w->size);
    } else if (w->arena != NULL) {
        size_t failures = 0; /* a local: workers sit side by side, w->failures would share lines */
        for (size_t i = 0; i < w->count; i++) {
            void *p = nalloc_alloc(w->arena, w->size);
            escape(p);
            failures += nalloc_free_last(w->arena, p, w->size) != NALLOC_OK;
        }
        w->failures += failures;
    } else if (w->operation == OP_ALLOC) {
        for (size_t i = 0; i < w->count; i++)
            w->blocks[i] = malloc(w->size);
    } else {
        for (size_t i = 0; i < w->count; i++) {
            void *p = malloc(w->size);
            escape(p);
            free(p);
        }
    }
    w->elapsed = bench_now() - t0;
    if (w->operation == OP_ALLOC) /* untimed: give the blocks back from the thread that made them */
        for (size_t i = 0; i < w->count; i++) {
            w->failures += w->blocks[i] == NULL;
            if (w->arena == NULL)
                free(w->blocks[i]);
        }
    return NULL;
}

/* One measurement: median over batches of the slowest thread's time; ns per call. Thread t
 * allocates from arenas[t] (the same arena for all, or one lane each), or from malloc when
 * arenas is NULL. */
static bool measure(const config *c, nalloc_arena *const *arenas, op operation, size_t size,
                    unsigned threads, size_t count, double *per_call, double *aggregate)
{
    worker w[MAX_THREADS];
    pthread_t id[MAX_THREADS];
    double *samples = malloc(c->batches * sizeof *samples);
    void **blocks = operation == OP_ALLOC ? malloc(threads * count * sizeof *blocks) : NULL;
    if (samples == NULL || (operation == OP_ALLOC && blocks == NULL)) {
        free(samples);
        free(blocks);
        return false;
    }
    size_t failures = 0;
    for (unsigned b = 0; b <= c->batches; b++) { /* batch 0 warms up, untimed */
        pthread_barrier_t start;
        pthread_barrier_init(&start, NULL, threads);
        for (unsigned t = 0; t < threads; t++) {
            w[t] = (worker){.start = &start, .arena = arenas ? arenas[t] : NULL,
                            .operation = operation, .size = size,
                            .count = count, .blocks = blocks ? blocks + t * count : NULL};
            if (t > 0 && pthread_create(&id[t], NULL, worker_main, &w[t]) != 0) {
                fprintf(stderr, "bench_alloc: pthread_create: %s\n", strerror(errno));
                exit(1);
            }
        }
        worker_main(&w[0]);
        double slowest = w[0].elapsed;
        failures += w[0].failures;
        for (unsigned t = 1; t < threads; t++) {
            pthread_join(id[t], NULL);
            slowest = w[t].elapsed > slowest ? w[t].elapsed : slowest;
            failures += w[t].failures;
        }
        pthread_barrier_destroy(&start);
        for (unsigned t = 0; arenas != NULL && t < threads; t++)
            if (nalloc_reset(arenas[t]) != NALLOC_OK) { /* a lane left alive: a harness bug */
                fprintf(stderr, "bench_alloc: %s\n", nalloc_last_error_message());
                exit(1);
            }
        if (b > 0)
            samples[b - 1] = slowest;
    }
    double wall = bench_median(samples, c->batches);
    *per_call = wall / (double)count * 1e9;
    *aggregate = wall / (double)(count * threads) * 1e9;
    free(samples);
    free(blocks);
    if (failures > 0) {
        fprintf(stderr, "bench_alloc: %zu calls failed (%s, %zu B, %u threads)\n", failures,
                op_names[operation], size, threads);
        return false;
    }
    return true;
}

static size_t calls_per_batch(const config *c, size_t size)
{
    size_t count = c->batch_bytes / size;
    if (count > c->max_batch)
        count = c->max_batch;
    return count < 16 ? 16 : count;
}

static void report(const config *c, const char *allocator, op operation, size_t size,
                   unsigned threads, double per_call, double aggregate)
{
    printf("  %-11s %-5s %9zu B %3u thr %10.1f ns %10.1f ns\n", allocator, op_names[operation],
           size, threads, per_call, aggregate);
    if (c->csv != NULL)
        fprintf(c->csv, "alloc,%s,%s,%zu,%u,%.3f,%.3f,\n", allocator, op_names[operation], size,
                threads, per_call, aggregate);
}

/* A shared, address-space-only arena big enough for every thread's batch at this size. */
static nalloc_arena *make_arena(size_t size, size_t count, unsigned threads)
{
    nalloc_arena_config ac;
    size_t align = size >= ((size_t)1 << 20) ? 4096 : 64; /* nalloc's default policy */
    size_t per_block = (size + align - 1) / align * align;
    nalloc_arena_config_init(&ac, NALLOC_KIND_SCRATCH, NALLOC_MEMORY_HOST,
                             per_block * count * threads + ((size_t)1 << 20));
    ac.flags = NALLOC_FLAG_NORESERVE;
    ac.name = "bench";
    nalloc_arena *a = NULL;
    nalloc_status st = nalloc_arena_create(&ac, &a);
    if (st != NALLOC_OK)
        fprintf(stderr, "bench_alloc: nalloc_arena_create(%zu B): %s\n", ac.capacity,
                nalloc_strerror(st));
    return a;
}

static int run_alloc(const config *c, bool with_nalloc)
{
    unsigned counts[2] = {1, bench_cpu_count()};
    unsigned nthreads = counts[1] > 1 ? 2 : 1;
    if (counts[1] > MAX_THREADS)
        counts[1] = MAX_THREADS;
    printf("\nallocation: ns per call (memory not touched), median of %u batches\n", c->batches);
    printf("  %-11s %-5s %11s %7s %13s %13s\n", "allocator", "op", "size", "threads", "per call",
           "aggregate");
    for (size_t size = 64; size <= c->max_size; size *= 4) {
        for (unsigned ti = 0; ti < nthreads; ti++) {
            unsigned threads = counts[ti];
            size_t count = calls_per_batch(c, size);
            double per_call, aggregate;
            for (int o = OP_ALLOC; o <= OP_PAIR; o++) {
                if (!measure(c, NULL, (op)o, size, threads, count, &per_call, &aggregate))
                    return 1;
                report(c, bench_malloc_name(), (op)o, size, threads, per_call, aggregate);
            }
            if (!with_nalloc)
                continue;
            nalloc_arena *a = make_arena(size, count, threads);
            if (a == NULL)
                return 1;
            nalloc_arena *shared[MAX_THREADS];
            for (unsigned t = 0; t < threads; t++)
                shared[t] = a;
            for (int o = OP_ALLOC; o <= (threads == 1 ? OP_PAIR : OP_ALLOC); o++) {
                if (!measure(c, shared, (op)o, size, threads, count, &per_call, &aggregate))
                    return 1;
                report(c, "nalloc", (op)o, size, threads, per_call, aggregate);
            }
            nalloc_arena *lanes[MAX_THREADS];
            if (threads > 1) { /* one lane per thread: an equal share of the same arena each */
                nalloc_status st = nalloc_arena_split(a, threads, 0, lanes);
                if (st != NALLOC_OK) {
                    fprintf(stderr, "bench_alloc: nalloc_arena_split: %s\n", nalloc_strerror(st));
                    return 1;
                }
                for (int o = OP_ALLOC; o <= OP_PAIR; o++) {
                    if (!measure(c, lanes, (op)o, size, threads, count, &per_call, &aggregate))
                        return 1;
                    report(c, "nalloc-lane", (op)o, size, threads, per_call, aggregate);
                }
            }
            nalloc_arena_destroy(a); /* its lanes with it */
        }
    }
    printf("  nalloc: one arena shared by every thread; nalloc-lane: one lane of it per thread\n");
    return 0;
}

/* ---- The wipe against memset ---- */

static double best_rate(double *seconds, size_t n, size_t bytes) /* GB/s of the median time */
{
    return (double)bytes / bench_median(seconds, n) / 1e9;
}

static int run_wipe(const config *c)
{
    nalloc_arena_config ac;
    nalloc_arena_config_init(&ac, NALLOC_KIND_WITNESS, NALLOC_MEMORY_HOST, c->wipe_max);
    ac.flags |= NALLOC_FLAG_POPULATE | NALLOC_FLAG_HUGEPAGES;
    nalloc_arena *a = NULL;
    nalloc_status st = nalloc_arena_create(&ac, &a);
    if (st != NALLOC_OK) {
        fprintf(stderr, "bench_alloc: witness arena of %zu B: %s\n", c->wipe_max,
                nalloc_strerror(st));
        return 1;
    }
    nalloc_stats s;
    if (nalloc_arena_stats(a, &s) != NALLOC_OK)
        return 1;
    printf("\nwipe: one buffer in a witness arena (populated%s%s), GB/s, median of %u\n",
           s.huge_pages ? ", huge pages" : "", s.locked ? ", locked" : "", c->batches * 3);
    printf("  %11s %10s %14s %12s %8s\n", "size", "memset", "explicit_bzero", "nalloc_wipe",
           "wipe/memset");
    enum { METHODS = 3 };
    unsigned reps = c->batches * 3;
    double *t[METHODS];
    for (int m = 0; m < METHODS; m++)
        if ((t[m] = malloc(reps * sizeof(double))) == NULL)
            return 1;
    for (size_t size = 4096; size <= c->wipe_max; size *= 16) {
        /* Small sizes repeat the call inside one timing, to rise above the clock's resolution. */
        size_t inner = size >= ((size_t)16 << 20) ? 1 : ((size_t)16 << 20) / size;
        for (unsigned r = 0; r < reps; r++) {
            char *p = nalloc_alloc(a, size);
            if (p == NULL)
                return 1;
            double t0 = bench_now();
            for (size_t i = 0; i < inner; i++) {
                memset(p, 0, size);
                escape(p);
            }
            double t1 = bench_now();
            for (size_t i = 0; i < inner; i++)
                explicit_bzero(p, size);
            double t2 = bench_now();
            for (size_t i = 0; i < inner; i++) {
                if (i > 0 && nalloc_alloc(a, size) == NULL) /* re-dirty: the wipe reset it */
                    return 1;
                if (nalloc_wipe(a) != NALLOC_OK)
                    return 1;
            }
            double t3 = bench_now();
            t[0][r] = (t1 - t0) / (double)inner;
            t[1][r] = (t2 - t1) / (double)inner;
            t[2][r] = (t3 - t2) / (double)inner;
        }
        double rate[METHODS];
        for (int m = 0; m < METHODS; m++)
            rate[m] = best_rate(t[m], reps, size);
        printf("  %9zu B %10.2f %14.2f %12.2f %7.0f%%\n", size, rate[0], rate[1], rate[2],
               rate[2] / rate[0] * 100);
        if (c->csv != NULL) {
            const char *names[METHODS] = {"memset", "explicit_bzero", "nalloc_wipe"};
            for (int m = 0; m < METHODS; m++)
                fprintf(c->csv, "wipe,nalloc,%s,%zu,1,%.3f,%.3f,%.0f\n", names[m], size,
                        (double)size / rate[m], (double)size / rate[m], rate[m] * 1e9);
        }
    }
    printf("  nalloc_wipe includes re-allocating the buffer (one bump) for every wipe but the "
           "first; at small sizes that and the arena's lock are its fixed cost\n");
    for (int m = 0; m < METHODS; m++)
        free(t[m]);
    nalloc_arena_destroy(a);
    return 0;
}

static void usage(FILE *out)
{
    fprintf(out, "usage: bench_alloc [--csv FILE] [--batches N] [--max-size BYTES] "
                 "[--wipe-max BYTES] [--no-wipe] [--smoke]\n"
                 "  --smoke: tiny batches, sizes up to 1 MiB\n");
}

int main(int argc, char **argv)
{
    config c = {.batches = 7,
                .max_size = (size_t)64 << 20,
                .batch_bytes = (size_t)256 << 20,
                .max_batch = MAX_BATCH,
                .wipe_max = (size_t)256 << 20};
    bool wipe = true, plain = strcmp(bench_malloc_name(), "glibc") == 0;
    const char *csv = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        unsigned long n;
        if (strcmp(a, "--smoke") == 0) {
            c.batches = 1;
            c.max_size = (size_t)1 << 20;
            c.max_batch = 1000;
            c.batch_bytes = (size_t)16 << 20;
            c.wipe_max = (size_t)1 << 20;
        } else if (strcmp(a, "--no-wipe") == 0) {
            wipe = false;
        } else if (strcmp(a, "--csv") == 0 && v != NULL) {
            csv = argv[++i];
        } else if (strcmp(a, "--batches") == 0 && bench_parse_uint(v, 1, 1000, &n)) {
            c.batches = (unsigned)n;
            i++;
        } else if (strcmp(a, "--max-size") == 0 && bench_parse_uint(v, 64, ~0ul, &n)) {
            c.max_size = n;
            i++;
        } else if (strcmp(a, "--wipe-max") == 0 && bench_parse_uint(v, 4096, ~0ul, &n)) {
            c.wipe_max = n;
            i++;
        } else {
            usage(strcmp(a, "--help") == 0 ? stdout : stderr);
            return strcmp(a, "--help") == 0 ? 0 : 2;
        }
    }
    char version[256];
    if (!bench_malloc_verify(version, sizeof version))
        return 3;
    if (csv != NULL && (c.csv = fopen(csv, "w")) == NULL) {
        fprintf(stderr, "bench_alloc: %s: %s\n", csv, strerror(errno));
        return 2;
    }
    if (c.csv != NULL)
        fprintf(c.csv, "bench,allocator,op,size,threads,ns_per_call,aggregate_ns,bytes_per_s\n");
    printf("nalloc allocation micro-benchmarks (%s)\n", version);
    bench_print_machine(stdout, "  ");
    int rc = run_alloc(&c, plain);
    if (rc == 0 && plain && wipe)
        rc = run_wipe(&c);
    if (c.csv != NULL)
        fclose(c.csv);
    return rc;
}
