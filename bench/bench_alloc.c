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
 * slowest thread's time over the calls it made (the latency a thread sees), "aggregate" the time
 * from the first thread's start to the last one's end over every thread's calls (with more
 * threads than CPUs, threads that run one after another do not look faster than the CPUs are).
 *
 * Thread cache. 64 B allocations from one arena on 1, 2, 8 and 32 threads (more threads than CPUs
 * on purpose: the cost must not collapse when oversubscribed), three ways: every thread bumps
 * the arena's shared offset ("nalloc"), every thread bumps a private chunk of the arena
 * (NALLOC_FLAG_THREAD_CACHE, "nalloc-tcache"), and one lane per thread ("nalloc-lane"). Besides
 * per-call and aggregate time, each row gives its ratios to one thread of the same allocator in
 * the same run (issue 12's targets: per call on 2 threads at most 1.5x one thread's, aggregate
 * rate at least 1.8x), and, for the cache, the bytes its threads' chunk remainders hold once
 * every thread has made its calls (nalloc_stats.cached, per thread: memory reserved but not
 * handed out). These are `run` batches: K allocations in a row with no pointer kept (an arena
 * needs none to give its blocks back), so that the harness's own stores of 8 B per call, which
 * with several threads compete for the shared cache and memory, are not counted as the
 * allocator's.
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
#include <time.h>

#include <nalloc/nalloc.h>

#include "harness.h"
#include "malloc_id.h"

#define MAX_THREADS 256
#define MAX_BATCH 100000

typedef enum op { OP_ALLOC, OP_PAIR, OP_RUN } op;
static const char *const op_names[] = {"alloc", "pair", "run"};

typedef struct config {
    unsigned batches;       /* timed batches per measurement; the median is reported */
    size_t max_size;        /* bytes: the largest size measured */
    size_t batch_bytes;     /* bytes per thread per batch (sets K for large sizes) */
    size_t max_batch;       /* calls per thread per batch, at most */
    size_t wipe_max;        /* bytes: the largest wipe measured */
    size_t tcache_calls;    /* calls per thread per batch in the thread-cache measurement */
    FILE *csv;              /* rows, or NULL */
} config;

typedef struct worker {
    pthread_barrier_t *start;
    nalloc_arena *arena;    /* NULL: malloc */
    op operation;
    size_t size, count;
    void **blocks;          /* count slots */
    double elapsed;         /* seconds of the timed loop */
    double began, ended;    /* bench_now() at its start and end */
    double cpu;             /* seconds of this thread's CPU time in it (waits for a core excluded) */
    size_t failures;
    pthread_barrier_t *parked; /* or NULL: after the timed loop, every thread waits here while */
    nalloc_stats *snapshot;    /* thread 0 (the one with a snapshot) reads the arena's statistics */
} worker;

static inline void escape(void *p) /* keep the compiler from eliding malloc/free pairs */
{
    __asm__ volatile("" : : "g"(p) : "memory");
}

static double thread_cpu_now(void) /* seconds of CPU time used by the calling thread */
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    pthread_barrier_wait(w->start);
    double c0 = thread_cpu_now();
    double t0 = bench_now();
    w->began = t0;
    if (w->arena != NULL && w->operation == OP_ALLOC) {
        for (size_t i = 0; i < w->count; i++)
            w->blocks[i] = nalloc_alloc(w->arena, w->size);
    } else if (w->operation == OP_RUN) { /* an arena: nothing to give back, nothing kept */
        size_t failures = 0;
        for (size_t i = 0; i < w->count; i++) {
            void *p = nalloc_alloc(w->arena, w->size);
            escape(p);
            failures += p == NULL;
        }
        w->failures += failures;
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
    w->ended = bench_now();
    w->elapsed = w->ended - t0;
    w->cpu = thread_cpu_now() - c0;
    if (w->parked != NULL) { /* every thread still alive, holding what it holds */
        pthread_barrier_wait(w->parked);
        if (w->snapshot != NULL && nalloc_arena_stats(w->arena, w->snapshot) != NALLOC_OK)
            w->failures++;
        pthread_barrier_wait(w->parked);
    }
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
 * arenas is NULL. With `last`, the statistics of arenas[0] after the last batch's calls, read
 * while every thread is still alive; with `cpu_call`, the median over batches of the threads'
 * mean CPU time per call (ns: what a call costs the core that runs it, time spent waiting for a
 * core excluded, so a loaded machine disturbs it less than the wall clock). */
static bool measure_with(const config *c, nalloc_arena *const *arenas, op operation, size_t size,
                         unsigned threads, size_t count, double *per_call, double *aggregate,
                         nalloc_stats *last, double *cpu_call)
{
    worker w[MAX_THREADS];
    pthread_t id[MAX_THREADS];
    double *samples = malloc(c->batches * sizeof *samples);
    double *cpu_samples = malloc(c->batches * sizeof *cpu_samples);
    double *spans = malloc(c->batches * sizeof *spans);
    void **blocks = operation == OP_ALLOC ? malloc(threads * count * sizeof *blocks) : NULL;
    if (samples == NULL || cpu_samples == NULL || spans == NULL ||
        (operation == OP_ALLOC && blocks == NULL)) {
        free(samples);
        free(cpu_samples);
        free(spans);
        free(blocks);
        return false;
    }
    size_t failures = 0;
    for (unsigned b = 0; b <= c->batches; b++) { /* batch 0 warms up, untimed */
        pthread_barrier_t start, parked;
        pthread_barrier_init(&start, NULL, threads);
        pthread_barrier_init(&parked, NULL, threads);
        bool look = last != NULL && arenas != NULL && b == c->batches;
        for (unsigned t = 0; t < threads; t++) {
            w[t] = (worker){.start = &start, .arena = arenas ? arenas[t] : NULL,
                            .operation = operation, .size = size,
                            .count = count, .blocks = blocks ? blocks + t * count : NULL,
                            .parked = look ? &parked : NULL,
                            .snapshot = look && t == 0 ? last : NULL};
            if (t > 0 && pthread_create(&id[t], NULL, worker_main, &w[t]) != 0) {
                fprintf(stderr, "bench_alloc: pthread_create: %s\n", strerror(errno));
                exit(1);
            }
        }
        worker_main(&w[0]);
        double slowest = w[0].elapsed, cpu = w[0].cpu, first = w[0].began, last_end = w[0].ended;
        failures += w[0].failures;
        for (unsigned t = 1; t < threads; t++) {
            pthread_join(id[t], NULL);
            slowest = w[t].elapsed > slowest ? w[t].elapsed : slowest;
            first = w[t].began < first ? w[t].began : first;
            last_end = w[t].ended > last_end ? w[t].ended : last_end;
            cpu += w[t].cpu;
            failures += w[t].failures;
        }
        pthread_barrier_destroy(&start);
        pthread_barrier_destroy(&parked);
        for (unsigned t = 0; arenas != NULL && t < threads; t++)
            if (nalloc_reset(arenas[t]) != NALLOC_OK) { /* a lane left alive: a harness bug */
                fprintf(stderr, "bench_alloc: %s\n", nalloc_last_error_message());
                exit(1);
            }
        if (b > 0) {
            samples[b - 1] = slowest;
            spans[b - 1] = last_end - first;
            cpu_samples[b - 1] = cpu / (double)(count * threads) * 1e9;
        }
    }
    double wall = bench_median(samples, c->batches);
    *per_call = wall / (double)count * 1e9;
    *aggregate = bench_median(spans, c->batches) / (double)(count * threads) * 1e9;
    if (cpu_call != NULL)
        *cpu_call = bench_median(cpu_samples, c->batches);
    free(samples);
    free(cpu_samples);
    free(spans);
    free(blocks);
    if (failures > 0) {
        fprintf(stderr, "bench_alloc: %zu calls failed (%s, %zu B, %u threads)\n", failures,
                op_names[operation], size, threads);
        return false;
    }
    return true;
}

static bool measure(const config *c, nalloc_arena *const *arenas, op operation, size_t size,
                    unsigned threads, size_t count, double *per_call, double *aggregate)
{
    return measure_with(c, arenas, operation, size, threads, count, per_call, aggregate, NULL, NULL);
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

/* A shared, address-space-only arena big enough for every thread's batch at this size (and, with
 * `flags` NALLOC_FLAG_THREAD_CACHE, for a chunk remainder of up to 1 MiB per thread). */
static nalloc_arena *make_arena(size_t size, size_t count, unsigned threads, unsigned flags)
{
    nalloc_arena_config ac;
    size_t align = size >= ((size_t)1 << 20) ? 4096 : 64; /* nalloc's default policy */
    size_t per_block = (size + align - 1) / align * align;
    nalloc_arena_config_init(&ac, NALLOC_KIND_SCRATCH, NALLOC_MEMORY_HOST,
                             per_block * count * threads + ((size_t)1 << 20) * (threads + 1));
    ac.flags = NALLOC_FLAG_NORESERVE | flags;
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
            nalloc_arena *a = make_arena(size, count, threads, 0);
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

/* ---- One arena, many threads: the thread cache ---- */

static int run_tcache(const config *c)
{
    static const unsigned thread_counts[] = {1, 2, 8, 32};
    enum { COUNTS = sizeof thread_counts / sizeof thread_counts[0], KINDS = 3 };
    static const char *const names[KINDS] = {"nalloc", "nalloc-tcache", "nalloc-lane"};
    const size_t size = 64, count = c->tcache_calls;
    double base_call[KINDS] = {0}, base_aggregate[KINDS] = {0}, base_cpu[KINDS] = {0};
    printf("\nthread cache: %zu B allocations from one arena, %zu calls per thread per batch, "
           "median of %u batches, %u CPUs\n", size, count, c->batches, bench_cpu_count());
    printf("  %-14s %7s %11s %11s %9s %9s %11s %8s %14s\n", "allocator", "threads", "per call",
           "aggregate", "call/1thr", "rate/1thr", "cpu/call", "cpu/1thr", "cached/thread");
    for (unsigned ti = 0; ti < COUNTS; ti++) {
        unsigned threads = thread_counts[ti];
        for (int k = 0; k < KINDS; k++) {
            if (k == 2 && threads == 1)
                continue; /* one lane is one arena: the first row says it */
            nalloc_arena *a = make_arena(size, count, threads, k == 1 ? NALLOC_FLAG_THREAD_CACHE : 0);
            if (a == NULL)
                return 1;
            nalloc_arena *arenas[MAX_THREADS];
            for (unsigned t = 0; t < threads; t++)
                arenas[t] = a;
            if (k == 2) {
                nalloc_status st = nalloc_arena_split(a, threads, 0, arenas);
                if (st != NALLOC_OK) {
                    fprintf(stderr, "bench_alloc: nalloc_arena_split: %s\n", nalloc_strerror(st));
                    return 1;
                }
            }
            double per_call, aggregate, cpu;
            nalloc_stats last;
            memset(&last, 0, sizeof last);
            if (!measure_with(c, arenas, OP_RUN, size, threads, count, &per_call, &aggregate,
                              &last, &cpu))
                return 1;
            nalloc_arena_destroy(a); /* its lanes with it */
            int base = k == 2 ? 0 : k; /* lanes against one thread on the plain arena */
            if (threads == 1) {
                base_call[k] = per_call;
                base_aggregate[k] = aggregate;
                base_cpu[k] = cpu;
            }
            double cached = k == 1 ? (double)last.cached / threads : 0;
            printf("  %-14s %7u %8.1f ns %8.1f ns %8.2fx %8.2fx %8.1f ns %7.2fx", names[k], threads,
                   per_call, aggregate, per_call / base_call[base], base_aggregate[base] / aggregate,
                   cpu, cpu / base_cpu[base]);
            if (k == 1)
                printf(" %12.0f B", cached);
            printf("\n");
            if (c->csv != NULL) {
                fprintf(c->csv, "tcache,%s,run,%zu,%u,%.3f,%.3f,%.0f,", names[k], size, threads,
                        per_call, aggregate, (double)size / aggregate * 1e9);
                if (k == 1)
                    fprintf(c->csv, "%.0f", cached);
                fprintf(c->csv, ",%.3f\n", cpu);
            }
        }
    }
    printf("  call/1thr: per call against one thread of the same allocator (lanes: of nalloc); "
           "rate/1thr: aggregate rate against it; cpu/call: the threads' CPU time per call (waits "
           "for a core excluded), cpu/1thr against one thread; cached/thread: chunk remainders "
           "(bytes reserved, not handed out) per thread once all made their calls\n");
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
                 "[--wipe-max BYTES] [--no-wipe] [--tcache-only] [--tcache-calls N] [--smoke]\n"
                 "  --smoke: tiny batches, sizes up to 1 MiB\n"
                 "  --tcache-only: only the thread-cache measurement (64 B, 1 to 32 threads)\n");
}

int main(int argc, char **argv)
{
    config c = {.batches = 7,
                .max_size = (size_t)64 << 20,
                .batch_bytes = (size_t)256 << 20,
                .max_batch = MAX_BATCH,
                .wipe_max = (size_t)256 << 20,
                .tcache_calls = 1000000};
    bool wipe = true, sweep = true, plain = strcmp(bench_malloc_name(), "glibc") == 0;
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
            c.tcache_calls = 2000;
        } else if (strcmp(a, "--no-wipe") == 0) {
            wipe = false;
        } else if (strcmp(a, "--tcache-only") == 0) {
            sweep = wipe = false;
        } else if (strcmp(a, "--csv") == 0 && v != NULL) {
            csv = argv[++i];
        } else if (strcmp(a, "--batches") == 0 && bench_parse_uint(v, 1, 1000, &n)) {
            c.batches = (unsigned)n;
            i++;
        } else if (strcmp(a, "--max-size") == 0 && bench_parse_uint(v, 64, ~0ul, &n)) {
            c.max_size = n;
            i++;
        } else if (strcmp(a, "--tcache-calls") == 0 && bench_parse_uint(v, 16, 100000000, &n)) {
            c.tcache_calls = n;
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
        fprintf(c.csv, "bench,allocator,op,size,threads,ns_per_call,aggregate_ns,bytes_per_s,"
                       "cached_per_thread,cpu_ns_per_call\n");
    printf("nalloc allocation micro-benchmarks (%s)\n", version);
    bench_print_machine(stdout, "  ");
    int rc = sweep ? run_alloc(&c, plain) : 0;
    if (rc == 0 && plain)
        rc = run_tcache(&c);
    if (rc == 0 && plain && wipe)
        rc = run_wipe(&c);
    if (c.csv != NULL)
        fclose(c.csv);
    return rc;
}
