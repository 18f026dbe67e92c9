/* bench/bench_pinned.c - pinned arenas against the usual ways of getting staging memory.
 *
 * Two questions, both from the prover's point of view (DESIGN.md section 1, issue 4's targets):
 *
 *  1. Bandwidth. Is a block of a pinned arena as fast a copy source as a cudaHostAlloc buffer
 *     (target: 95% or more), and how much faster than pageable malloc memory? Host-to-device and
 *     device-to-host, into and out of a device-arena block, at several sizes; the pinned arena
 *     copies through nalloc_stage_async (its range checks included), the others through
 *     cudaMemcpyAsync. Median of the repeats, timed with CUDA events.
 *
 *  2. Set-up cost per proof. A prover that gets its staging buffer per proof pays for pinning
 *     every time: cudaHostAlloc + cudaFreeHost, or malloc + cudaHostRegister + cudaHostUnregister
 *     + free. A pinned arena pays once, at creation, and then a proof's set-up is a reset and a
 *     bump (target: zero after the first proof). Each method's first proof and the median of the
 *     later ones.
 *
 * Usage: bench_pinned [--sizes MiB,MiB,...] [--repeats N] [--setup-mib MiB] [--proofs N]
 * Prints a table and `csv,...` lines; exits 0 without a device, saying so.
 */
#include "nalloc/cuda.h"
#include "nalloc/nalloc.h"

#include <cuda_runtime_api.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifndef BENCH_BUILD
#define BENCH_BUILD "unknown build"
#endif

#define MIB ((size_t)1 << 20)
#define MAX_SIZES 16

#define CHECK_CUDA(call)                                                                         \
    do {                                                                                         \
        cudaError_t err_ = (call);                                                               \
        if (err_ != cudaSuccess) {                                                               \
            fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #call,                        \
                    cudaGetErrorString(err_));                                                   \
            exit(1);                                                                             \
        }                                                                                        \
    } while (0)

#define CHECK_NALLOC(call)                                                                       \
    do {                                                                                         \
        nalloc_status st_ = (call);                                                              \
        if (st_ != NALLOC_OK) {                                                                  \
            fprintf(stderr, "%s:%d: %s: %s %s\n", __FILE__, __LINE__, #call,                     \
                    nalloc_strerror(st_), nalloc_cuda_error_string());                           \
            exit(1);                                                                             \
        }                                                                                        \
    } while (0)

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

static double median(double *v, size_t n)
{
    qsort(v, n, sizeof v[0], compare_doubles);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void print_machine(void)
{
    struct cudaDeviceProp prop;
    int driver = 0, runtime = 0;
    CHECK_CUDA(cudaGetDeviceProperties(&prop, 0));
    CHECK_CUDA(cudaDriverGetVersion(&driver));
    CHECK_CUDA(cudaRuntimeGetVersion(&runtime));
    char cpu[128] = "unknown CPU";
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[256];
    while (f != NULL && fgets(line, sizeof line, f) != NULL)
        if (strncmp(line, "model name", 10) == 0) {
            char *colon = strchr(line, ':');
            if (colon != NULL) {
                snprintf(cpu, sizeof cpu, "%s", colon + 2);
                cpu[strcspn(cpu, "\n")] = '\0';
            }
            break;
        }
    if (f != NULL)
        fclose(f);
    printf("# device  %s, sm_%d%d, PCI %04x:%02x:%02x\n", prop.name, prop.major, prop.minor,
           prop.pciDomainID, prop.pciBusID, prop.pciDeviceID);
    printf("# host    %s\n", cpu);
    printf("# cuda    driver %d, runtime %d\n", driver, runtime);
    printf("# build   %s\n", BENCH_BUILD);
    printf("csv,device,%s,sm_%d%d,%d,%d\n", prop.name, prop.major, prop.minor, driver, runtime);
}

/* ---- 1. Bandwidth ---- */

typedef enum source { FROM_ARENA, FROM_HOSTALLOC, FROM_MALLOC, SOURCES } source;
static const char *const source_names[SOURCES] = {"pinned arena", "cudaHostAlloc", "malloc"};

typedef struct buffers {
    nalloc_arena *pinned, *device;
    char *arena_block;  /* in the pinned arena */
    char *hostalloc;    /* cudaHostAlloc */
    char *pageable;     /* malloc, every page touched */
    char *device_block; /* in the device arena */
} buffers;

/* Median GB/s of `repeats` copies of `size` bytes; to_device chooses the direction. */
static double bandwidth(const buffers *b, source src, size_t size, int repeats, bool to_device,
                        cudaStream_t stream)
{
    char *host = src == FROM_ARENA ? b->arena_block : src == FROM_HOSTALLOC ? b->hostalloc
                                                                            : b->pageable;
    cudaEvent_t start, stop;
    CHECK_CUDA(cudaEventCreate(&start));
    CHECK_CUDA(cudaEventCreate(&stop));
    double *gbps = calloc((size_t)repeats, sizeof *gbps);
    for (int r = -1; r < repeats; r++) { /* r == -1 warms up */
        CHECK_CUDA(cudaEventRecord(start, stream));
        if (src == FROM_ARENA && to_device)
            CHECK_NALLOC(nalloc_stage_async(b->device, b->device_block, b->pinned, host, size,
                                            stream));
        else if (src == FROM_ARENA)
            CHECK_NALLOC(nalloc_stage_async(b->pinned, host, b->device, b->device_block, size,
                                            stream));
        else if (to_device)
            CHECK_CUDA(cudaMemcpyAsync(b->device_block, host, size, cudaMemcpyHostToDevice, stream));
        else
            CHECK_CUDA(cudaMemcpyAsync(host, b->device_block, size, cudaMemcpyDeviceToHost, stream));
        CHECK_CUDA(cudaEventRecord(stop, stream));
        CHECK_CUDA(cudaEventSynchronize(stop));
        float ms = 0;
        CHECK_CUDA(cudaEventElapsedTime(&ms, start, stop));
        if (r >= 0)
            gbps[r] = (double)size / (ms * 1e-3) / 1e9;
    }
    double m = median(gbps, (size_t)repeats);
    free(gbps);
    CHECK_CUDA(cudaEventDestroy(start));
    CHECK_CUDA(cudaEventDestroy(stop));
    return m;
}

static void run_bandwidth(const size_t *sizes, int nsizes, int repeats)
{
    size_t largest = 0;
    for (int i = 0; i < nsizes; i++)
        largest = sizes[i] > largest ? sizes[i] : largest;
    buffers b;
    nalloc_arena_config c;
    nalloc_arena_config_init(&c, NALLOC_KIND_POLY, NALLOC_MEMORY_PINNED, largest);
    CHECK_NALLOC(nalloc_arena_create(&c, &b.pinned));
    nalloc_arena_config_init(&c, NALLOC_KIND_POLY, NALLOC_MEMORY_DEVICE, largest);
    CHECK_NALLOC(nalloc_arena_create(&c, &b.device));
    b.arena_block = nalloc_alloc(b.pinned, largest);
    b.device_block = nalloc_alloc(b.device, largest);
    CHECK_CUDA(cudaHostAlloc((void **)&b.hostalloc, largest, cudaHostAllocPortable));
    b.pageable = malloc(largest);
    if (b.arena_block == NULL || b.device_block == NULL || b.pageable == NULL) {
        fprintf(stderr, "bench_pinned: no memory for %zu MiB buffers\n", largest / MIB);
        exit(1);
    }
    memset(b.arena_block, 1, largest);
    memset(b.hostalloc, 1, largest);
    memset(b.pageable, 1, largest);
    nalloc_stats s;
    CHECK_NALLOC(nalloc_arena_stats(b.pinned, &s));
    printf("\n1. Copy bandwidth, GB/s (median of %d; pinned arena of %zu MiB registered in "
           "%.3f s)\n",
           repeats, largest / MIB, s.pin_seconds);
    printf("%-5s %10s %14s %14s %14s %12s\n", "dir", "size", source_names[0], source_names[1],
           source_names[2], "arena/host");
    cudaStream_t stream;
    CHECK_CUDA(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
    for (int dir = 0; dir < 2; dir++) {
        bool to_device = dir == 0;
        for (int i = 0; i < nsizes; i++) {
            double g[SOURCES];
            for (int src = 0; src < SOURCES; src++) {
                g[src] = bandwidth(&b, (source)src, sizes[i], repeats, to_device, stream);
                printf("csv,bandwidth,%s,%s,%zu,%.3f\n", to_device ? "h2d" : "d2h",
                       source_names[src], sizes[i], g[src]);
            }
            printf("%-5s %6zu MiB %14.2f %14.2f %14.2f %11.1f%%\n", to_device ? "h2d" : "d2h",
                   sizes[i] / MIB, g[0], g[1], g[2], 100.0 * g[0] / g[1]);
        }
    }
    CHECK_CUDA(cudaStreamDestroy(stream));
    CHECK_CUDA(cudaFreeHost(b.hostalloc));
    free(b.pageable);
    CHECK_NALLOC(nalloc_arena_destroy(b.device));
    CHECK_NALLOC(nalloc_arena_destroy(b.pinned));
}

/* ---- 2. Set-up cost per proof ---- */

typedef enum method { PER_PROOF_HOSTALLOC, PER_PROOF_REGISTER, ARENA, METHODS } method;
static const char *const method_names[METHODS] = {
    "cudaHostAlloc per proof", "malloc+cudaHostRegister per proof", "pinned arena"};

/* Seconds each proof spent getting (and, for the per-proof methods, giving back) a pinned
 * buffer of `size` bytes. Proof 0 of the arena includes creating it. */
static void setup_costs(method m, size_t size, int proofs, double *seconds)
{
    nalloc_arena *arena = NULL;
    for (int p = 0; p < proofs; p++) {
        double t0 = now();
        char *buf = NULL;
        if (m == PER_PROOF_HOSTALLOC) {
            CHECK_CUDA(cudaHostAlloc((void **)&buf, size, cudaHostAllocPortable));
        } else if (m == PER_PROOF_REGISTER) {
            buf = malloc(size);
            if (buf == NULL)
                exit(1);
            CHECK_CUDA(cudaHostRegister(buf, size, cudaHostRegisterPortable));
        } else {
            if (arena == NULL) {
                nalloc_arena_config c;
                nalloc_arena_config_init(&c, NALLOC_KIND_POLY, NALLOC_MEMORY_PINNED, size);
                CHECK_NALLOC(nalloc_arena_create(&c, &arena));
            }
            nalloc_reset(arena);
            buf = nalloc_alloc(arena, size);
        }
        double got = now() - t0;
        buf[0] = (char)p; /* the prover uses it */
        t0 = now();
        if (m == PER_PROOF_HOSTALLOC) {
            CHECK_CUDA(cudaFreeHost(buf));
        } else if (m == PER_PROOF_REGISTER) {
            CHECK_CUDA(cudaHostUnregister(buf));
            free(buf);
        }
        seconds[p] = got + (now() - t0);
    }
    if (arena != NULL)
        CHECK_NALLOC(nalloc_arena_destroy(arena));
}

static void run_setup(size_t size, int proofs)
{
    printf("\n2. Pinned staging buffer of %zu MiB, set-up cost per proof (%d proofs)\n",
           size / MIB, proofs);
    printf("%-36s %14s %18s\n", "method", "first proof", "later (median)");
    double *seconds = calloc((size_t)proofs, sizeof *seconds);
    for (int m = 0; m < METHODS; m++) {
        setup_costs((method)m, size, proofs, seconds);
        for (int p = 0; p < proofs; p++)
            printf("csv,setup,%s,%zu,%d,%.9f\n", method_names[m], size, p, seconds[p]);
        double first = seconds[0];
        double later = proofs > 1 ? median(seconds + 1, (size_t)proofs - 1) : 0;
        printf("%-36s %12.3f ms %16.6f ms\n", method_names[m], first * 1e3, later * 1e3);
    }
    free(seconds);
}

/* ---- Arguments ---- */

static int parse_sizes(const char *text, size_t *sizes)
{
    int n = 0;
    char *copy = strdup(text), *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok != NULL && n < MAX_SIZES;
         tok = strtok_r(NULL, ",", &save)) {
        long v = strtol(tok, NULL, 10);
        if (v <= 0) {
            fprintf(stderr, "bench_pinned: bad size '%s' (MiB)\n", tok);
            exit(2);
        }
        sizes[n++] = (size_t)v * MIB;
    }
    free(copy);
    return n;
}

int main(int argc, char **argv)
{
    size_t sizes[MAX_SIZES] = {4 * MIB, 64 * MIB, 256 * MIB};
    int nsizes = 3, repeats = 20, proofs = 8;
    size_t setup_size = 1024 * MIB;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--sizes") == 0 && i + 1 < argc)
            nsizes = parse_sizes(argv[++i], sizes);
        else if (strcmp(argv[i], "--repeats") == 0 && i + 1 < argc)
            repeats = atoi(argv[++i]);
        else if (strcmp(argv[i], "--setup-mib") == 0 && i + 1 < argc)
            setup_size = (size_t)atol(argv[++i]) * MIB;
        else if (strcmp(argv[i], "--proofs") == 0 && i + 1 < argc)
            proofs = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: %s [--sizes MiB,...] [--repeats N] [--setup-mib MiB] "
                            "[--proofs N]\n", argv[0]);
            return 2;
        }
    }
    if (nsizes < 1 || repeats < 1 || proofs < 1 || setup_size == 0) {
        fprintf(stderr, "bench_pinned: sizes, repeats, proofs must be positive\n");
        return 2;
    }
    printf("bench_pinned: pinned arenas against cudaHostAlloc and pageable memory\n");
    if (nalloc_cuda_available() != NALLOC_OK) {
        printf("no CUDA device (%s): skipped; device figures need a GPU (scripts/gpu-check.sh)\n",
               nalloc_cuda_error_string());
        return 0;
    }
    print_machine();
    run_bandwidth(sizes, nsizes, repeats);
    run_setup(setup_size, proofs);
    return 0;
}
