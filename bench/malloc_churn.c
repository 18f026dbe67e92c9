/* bench/malloc_churn.c - a malloc-heavy program that knows nothing of nalloc.
 *
 * The override library (libnalloc_malloc.so) promises to be invisible when nothing is routed:
 * this is the program it is measured on, run plain and under LD_PRELOAD (scripts/bench.sh
 * route). Each thread keeps a window of live blocks of mixed sizes (16 B to 4 KiB, a few up to
 * 256 KiB), replacing a random one at every step, touching the first bytes of each, with realloc
 * and calloc mixed in: the shape of allocator benchmarks such as mimalloc-bench's "larson" and
 * "cfrac", small and deterministic. It prints the wall time of the churn and a checksum of what it
 * read back (equal under every allocator, or the allocator returned wrong memory).
 *
 * Usage: malloc_churn [steps per thread (default 20000000)] [threads (default 1)]
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define WINDOW 4096

typedef struct job {
    unsigned long steps;
    uint64_t seed;
    uint64_t checksum;
} job;

static uint64_t next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static size_t size_for(uint64_t r)
{
    if (r % 512 == 0)
        return 4096 + (size_t)(r >> 20) % (256 << 10); /* now and then a big one */
    return 16 + (size_t)(r >> 9) % (4096 - 16);
}

static void *churn(void *arg)
{
    job *j = arg;
    unsigned char *live[WINDOW] = {0};
    size_t sizes[WINDOW] = {0};
    uint64_t sum = 0;
    for (unsigned long i = 0; i < j->steps; i++) {
        uint64_t r = next(&j->seed);
        size_t k = (size_t)(r % WINDOW), size = size_for(r >> 12);
        if (live[k] != NULL)
            sum += live[k][0] + live[k][sizes[k] - 1];
        switch ((r >> 40) % 8) {
        case 0: /* grow or shrink it */
            if (live[k] != NULL) {
                unsigned char *p = realloc(live[k], size);
                if (p == NULL)
                    abort();
                live[k] = p;
                break;
            }
            /* fall through */
        case 1:
            free(live[k]);
            live[k] = calloc(1, size);
            if (live[k] == NULL)
                abort();
            sum += live[k][size / 2];
            break;
        default:
            free(live[k]);
            live[k] = malloc(size);
            if (live[k] == NULL)
                abort();
            break;
        }
        sizes[k] = size;
        live[k][0] = (unsigned char)r;
        live[k][size - 1] = (unsigned char)(r >> 8);
    }
    for (size_t k = 0; k < WINDOW; k++)
        free(live[k]);
    j->checksum = sum;
    return NULL;
}

int main(int argc, char **argv)
{
    unsigned long steps = argc > 1 ? strtoul(argv[1], NULL, 10) : 20000000ul;
    unsigned threads = argc > 2 ? (unsigned)strtoul(argv[2], NULL, 10) : 1;
    if (threads == 0 || threads > 64 || steps == 0) {
        fprintf(stderr, "usage: malloc_churn [steps] [threads 1-64]\n");
        return 2;
    }
    job jobs[64];
    pthread_t tids[64];
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (unsigned t = 0; t < threads; t++) {
        jobs[t] = (job){steps, 12345 + t, 0};
        if (pthread_create(&tids[t], NULL, churn, &jobs[t]) != 0)
            return 1;
    }
    uint64_t checksum = 0;
    for (unsigned t = 0; t < threads; t++) {
        pthread_join(tids[t], NULL);
        checksum += jobs[t].checksum;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double seconds = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9;
    printf("malloc_churn: %lu steps x %u threads in %.3f s (%.1f ns/step), checksum %llu\n", steps,
           threads, seconds, seconds * 1e9 / (double)steps, (unsigned long long)checksum);
    return 0;
}
