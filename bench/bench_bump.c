/* bench/bench_bump.c - the bump core's two ways to advance an offset, against each other.
 *
 * nalloc/bump.h offers nalloc_bump_reserve (compare-and-swap: exact alignment, a failed request
 * consumes nothing) and nalloc_bump_reserve_add (one fetch-add: sizes rounded to a granule, a
 * request that loses the race for the last bytes consumes them anyway). Host arenas use the CAS;
 * the comment at the top of bump.h justifies that with this benchmark's figures.
 *
 * Each thread makes `count` reservations of `size` bytes (alignment and granule 64 by default)
 * from one region with room for all of them; no memory is behind the region, so this times the
 * atomic alone. One thread, then every CPU contending on the same counter. Reported, median of
 * the batches: ns per reservation as one thread sees it (the slowest thread's time over its
 * calls) and aggregate (that time over every thread's calls: the machine's throughput).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nalloc/bump.h>

#include "harness.h"

#define MAX_THREADS 256

/* METHOD_CAS_COUNTED is the design src/stats.c rejected: the CAS plus two locked additions to
 * shared statistics counters (allocations, padding), as if nalloc kept its statistics that way. */
typedef enum method { METHOD_CAS, METHOD_ADD, METHOD_CAS_COUNTED } method;
static const char *const method_names[] = {"cas (nalloc_bump_reserve)",
                                           "fetch-add (nalloc_bump_reserve_add)",
                                           "cas + 2 shared atomic counters"};
static const char *const method_keys[] = {"cas", "fetch-add", "cas+counters"};

typedef struct shared {
    nalloc_bump region;      /* base 2^20, room for every call; its offset is the contended word */
    size_t counter;          /* METHOD_ADD's offset */
    size_t allocations;      /* METHOD_CAS_COUNTED's shared statistics */
    size_t padding;
    pthread_barrier_t start;
    method how;
    size_t size, align, count;
} shared;

typedef struct worker {
    shared *s;
    double elapsed;          /* seconds */
    size_t failures;
    size_t checksum;         /* sum of offsets: keeps the loop honest */
} worker;

static void *worker_main(void *arg)
{
    worker *w = arg;
    shared *s = w->s;
    size_t sum = 0, failures = 0, begin, pad;
    pthread_barrier_wait(&s->start);
    double t0 = bench_now();
    if (s->how == METHOD_CAS) {
        for (size_t i = 0; i < s->count; i++) {
            if (nalloc_bump_reserve(&s->region, s->size, s->align, &begin, &pad))
                sum += begin;
            else
                failures++;
        }
    } else if (s->how == METHOD_CAS_COUNTED) {
        for (size_t i = 0; i < s->count; i++) {
            if (nalloc_bump_reserve(&s->region, s->size, s->align, &begin, &pad)) {
                __atomic_fetch_add(&s->allocations, 1, __ATOMIC_RELAXED);
                __atomic_fetch_add(&s->padding, pad, __ATOMIC_RELAXED);
                sum += begin;
            } else {
                failures++;
            }
        }
    } else {
        for (size_t i = 0; i < s->count; i++) {
            if (nalloc_bump_reserve_add(&s->counter, s->region.capacity, s->size, s->align, &begin))
                sum += begin;
            else
                failures++;
        }
    }
    w->elapsed = bench_now() - t0;
    w->failures = failures;
    w->checksum = sum;
    return NULL;
}

static bool measure(method how, unsigned threads, size_t size, size_t align, size_t count,
                    unsigned batches, double *per_call, double *aggregate)
{
    shared s = {.how = how, .size = size, .align = align, .count = count};
    worker w[MAX_THREADS];
    pthread_t id[MAX_THREADS];
    double samples[1000];
    size_t rounded = (size + align - 1) / align * align;
    for (unsigned b = 0; b < batches; b++) {
        if (!nalloc_bump_init(&s.region, (uintptr_t)1 << 20, rounded * count * threads))
            return false;
        s.counter = 0;
        pthread_barrier_init(&s.start, NULL, threads);
        for (unsigned t = 0; t < threads; t++) {
            w[t] = (worker){.s = &s};
            if (t > 0 && pthread_create(&id[t], NULL, worker_main, &w[t]) != 0) {
                fprintf(stderr, "bench_bump: pthread_create: %s\n", strerror(errno));
                return false;
            }
        }
        worker_main(&w[0]);
        double slowest = w[0].elapsed;
        size_t failures = w[0].failures;
        for (unsigned t = 1; t < threads; t++) {
            pthread_join(id[t], NULL);
            slowest = w[t].elapsed > slowest ? w[t].elapsed : slowest;
            failures += w[t].failures;
        }
        pthread_barrier_destroy(&s.start);
        if (failures > 0) { /* the region has room for every call: a failure is a bug */
            fprintf(stderr, "bench_bump: %zu reservations failed\n", failures);
            return false;
        }
        samples[b] = slowest;
    }
    double wall = bench_median(samples, batches);
    *per_call = wall / (double)count * 1e9;
    *aggregate = wall / (double)(count * threads) * 1e9;
    return true;
}

int main(int argc, char **argv)
{
    unsigned long batches = 9, size = 64, align = 64;
    unsigned long count = 20000000;
    const char *csv_path = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        bool ok = true;
        if (strcmp(a, "--smoke") == 0) {
            batches = 1;
            count = 100000;
            continue;
        } else if (strcmp(a, "--csv") == 0 && v != NULL) {
            csv_path = v;
        } else if (strcmp(a, "--batches") == 0) {
            ok = bench_parse_uint(v, 1, 1000, &batches);
        } else if (strcmp(a, "--count") == 0) {
            ok = bench_parse_uint(v, 1, 1ul << 32, &count);
        } else if (strcmp(a, "--size") == 0) {
            ok = bench_parse_uint(v, 1, 1ul << 20, &size);
        } else if (strcmp(a, "--align") == 0) {
            ok = bench_parse_uint(v, 1, 1ul << 20, &align) && nalloc_is_pow2(align);
        } else {
            ok = false;
        }
        if (!ok) {
            fprintf(stderr, "usage: bench_bump [--count N] [--batches N] [--size B] [--align B] "
                            "[--csv FILE] [--smoke]\n");
            return strcmp(a, "--help") == 0 ? 0 : 2;
        }
        i++;
    }
    FILE *csv = NULL;
    if (csv_path != NULL) {
        if ((csv = fopen(csv_path, "w")) == NULL) {
            fprintf(stderr, "bench_bump: %s: %s\n", csv_path, strerror(errno));
            return 2;
        }
        fprintf(csv, "method,threads,size,align,ns_per_call,aggregate_ns\n");
    }
    unsigned cpus = bench_cpu_count() > MAX_THREADS ? MAX_THREADS : bench_cpu_count();
    printf("nalloc bump core: %lu reservations of %lu B (alignment/granule %lu) per thread, "
           "median of %lu batches\n", count, size, align, batches);
    bench_print_machine(stdout, "  ");
    printf("  %-36s %7s %13s %13s\n", "method", "threads", "per call", "aggregate");
    unsigned thread_counts[2] = {1, cpus};
    for (int ti = 0; ti < (cpus > 1 ? 2 : 1); ti++)
        for (int m = METHOD_CAS; m <= METHOD_CAS_COUNTED; m++) {
            double per_call, aggregate;
            if (!measure((method)m, thread_counts[ti], size, align, count, (unsigned)batches,
                         &per_call, &aggregate))
                return 1;
            printf("  %-36s %7u %10.2f ns %10.2f ns\n", method_names[m], thread_counts[ti],
                   per_call, aggregate);
            if (csv != NULL)
                fprintf(csv, "%s,%u,%lu,%lu,%.3f,%.3f\n", method_keys[m],
                        thread_counts[ti], size, align, per_call, aggregate);
        }
    if (csv != NULL)
        fclose(csv);
    return 0;
}
