/* bench/harness.h - what every nalloc benchmark needs besides the thing it measures.
 *
 * Clocks and resource usage (wall, user and system time, page faults from getrusage), the
 * resident set read from /proc (with the peak reset between proofs through clear_refs, so each
 * proof gets its own peak), a description of the machine and the build (every benchmark prints
 * it next to its figures), a small thread pool for the prover's parallel loops, a deterministic
 * random generator, medians, and an argument parser. Linux only, like the benchmarks.
 */
#ifndef NALLOC_BENCH_HARNESS_H
#define NALLOC_BENCH_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define BENCH_KIB ((size_t)1 << 10)
#define BENCH_MIB ((size_t)1 << 20)
#define BENCH_GIB ((size_t)1 << 30)

/* ---- Clocks and resource usage ---- */

double bench_now(void); /* seconds, CLOCK_MONOTONIC */

typedef struct bench_usage {
    double wall;   /* seconds, CLOCK_MONOTONIC */
    double user;   /* seconds of user CPU, all threads of the process */
    double sys;    /* seconds of system CPU, all threads */
    long minflt;   /* minor page faults (no I/O: first touch, copy-on-write, THP) */
    long majflt;   /* major page faults (I/O) */
} bench_usage;

bench_usage bench_usage_now(void);
bench_usage bench_usage_since(bench_usage start); /* now minus start, field by field */
/* The same figures (wall: now) summed over this process's threads named `name` (/proc/self/task,
 * in clock ticks): what a library's helper thread took, e.g. "nalloc-prefault". Zeros if none. */
bench_usage bench_thread_usage(const char *name);

/* Resident set, in bytes: current and peak (VmRSS, VmHWM). 0 where /proc is unreadable. */
size_t bench_rss_now(void);
size_t bench_rss_peak(void);
/* Make the peak equal to the current resident set (writes 5 to /proc/self/clear_refs, Linux 4.0+).
 * False when the kernel refuses, in which case the peak is the process-wide one. */
bool bench_rss_peak_reset(void);

/* ---- The machine and the build ---- */

/* Lines beginning with `prefix` (e.g. "# "): CPU model, cores, memory, kernel, transparent huge
 * pages mode, compiler and flags, glibc version. */
void bench_print_machine(FILE *out, const char *prefix);
unsigned bench_cpu_count(void);          /* online CPUs */
size_t bench_mem_available(void);        /* bytes, MemAvailable from /proc/meminfo; 0: unknown */
const char *bench_thp_mode(void);        /* "always", "madvise", "never" or "unknown" */

/* ---- Thread pool ---- */

/* A fixed set of threads running one parallel loop at a time. The caller's thread is worker 0,
 * so a pool of 1 runs everything inline. Items are handed out in chunks from an atomic counter,
 * so uneven items balance. */
typedef struct bench_pool bench_pool;
typedef void (*bench_pool_fn)(void *arg, size_t begin, size_t end);

bench_pool *bench_pool_create(unsigned threads); /* NULL on failure (errno set) */
void bench_pool_destroy(bench_pool *pool);
unsigned bench_pool_threads(const bench_pool *pool);
/* Call fn(arg, begin, end) over disjoint chunks covering [0, n) of at most `chunk` items (0: an
 * even split), on every worker, and return when all are done. */
void bench_pool_run(bench_pool *pool, size_t n, size_t chunk, bench_pool_fn fn, void *arg);

/* ---- Small things ---- */

static inline uint64_t bench_mix64(uint64_t z) /* splitmix64's finalizer: a good 64-bit hash */
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static inline uint64_t bench_random(uint64_t *state) /* splitmix64 */
{
    return bench_mix64(*state += 0x9e3779b97f4a7c15ull);
}

double bench_median(double *values, size_t n); /* sorts values; 0 for n == 0 */

/* Parse an unsigned integer in [min, max]. False otherwise. */
bool bench_parse_uint(const char *text, unsigned long min, unsigned long max, unsigned long *out);

#endif /* NALLOC_BENCH_HARNESS_H */
