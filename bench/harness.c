/* bench/harness.c - clocks, resource usage, machine description, thread pool (see harness.h).
 *
 * The thread pool is deliberately plain: one mutex and two condition variables, a generation
 * number that wakes the workers for each loop, and an atomic cursor they take chunks from. A
 * loop costs a few microseconds to start, which the prover pays a few hundred times per proof.
 */
#include "harness.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <gnu/libc-version.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#ifndef BENCH_COMPILER
#define BENCH_COMPILER "unknown compiler"
#endif
#ifndef BENCH_CFLAGS
#define BENCH_CFLAGS "unknown flags"
#endif

double bench_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static double timeval_seconds(struct timeval t)
{
    return (double)t.tv_sec + (double)t.tv_usec * 1e-6;
}

bench_usage bench_usage_now(void)
{
    struct rusage ru;
    bench_usage u = {.wall = bench_now()};
    if (getrusage(RUSAGE_SELF, &ru) == 0) {
        u.user = timeval_seconds(ru.ru_utime);
        u.sys = timeval_seconds(ru.ru_stime);
        u.minflt = ru.ru_minflt;
        u.majflt = ru.ru_majflt;
    }
    return u;
}

bench_usage bench_thread_usage(const char *name)
{
    bench_usage u = {.wall = bench_now()};
    DIR *d = opendir("/proc/self/task");
    if (d == NULL)
        return u;
    long ticks = sysconf(_SC_CLK_TCK);
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        char path[300], line[1024];
        snprintf(path, sizeof path, "/proc/self/task/%s/stat", e->d_name);
        FILE *f = fopen(path, "r");
        if (f == NULL)
            continue;
        bool ok = fgets(line, sizeof line, f) != NULL;
        fclose(f);
        /* "tid (comm) state ppid ...": comm may hold spaces, so read it up to the last ')'. */
        char *open = ok ? strchr(line, '(') : NULL, *close = ok ? strrchr(line, ')') : NULL;
        if (open == NULL || close == NULL || (size_t)(close - open - 1) != strlen(name) ||
            strncmp(open + 1, name, strlen(name)) != 0)
            continue;
        unsigned long minflt, majflt, utime, stime;
        if (sscanf(close + 2, "%*c %*d %*d %*d %*d %*d %*u %lu %*u %lu %*u %lu %lu", &minflt,
                   &majflt, &utime, &stime) == 4) {
            u.minflt += (long)minflt;
            u.majflt += (long)majflt;
            u.user += (double)utime / (double)ticks;
            u.sys += (double)stime / (double)ticks;
        }
    }
    closedir(d);
    return u;
}

bench_usage bench_usage_since(bench_usage start)
{
    bench_usage now = bench_usage_now();
    return (bench_usage){
        .wall = now.wall - start.wall,
        .user = now.user - start.user,
        .sys = now.sys - start.sys,
        .minflt = now.minflt - start.minflt,
        .majflt = now.majflt - start.majflt,
    };
}

/* The value of "<key>:" in a /proc file, in the file's unit (kB for the ones we read). */
static size_t proc_field(const char *path, const char *key)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return 0;
    char line[256];
    size_t keylen = strlen(key), value = 0;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, key, keylen) == 0 && line[keylen] == ':') {
            value = strtoull(line + keylen + 1, NULL, 10);
            break;
        }
    }
    fclose(f);
    return value;
}

size_t bench_rss_now(void)
{
    return proc_field("/proc/self/status", "VmRSS") * BENCH_KIB;
}

size_t bench_rss_peak(void)
{
    return proc_field("/proc/self/status", "VmHWM") * BENCH_KIB;
}

bool bench_rss_peak_reset(void)
{
    FILE *f = fopen("/proc/self/clear_refs", "w");
    if (f == NULL)
        return false;
    bool ok = fputs("5", f) >= 0;
    return fclose(f) == 0 && ok;
}

unsigned bench_cpu_count(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (unsigned)n : 1;
}

size_t bench_mem_available(void)
{
    return proc_field("/proc/meminfo", "MemAvailable") * BENCH_KIB;
}

const char *bench_thp_mode(void)
{
    static char mode[16] = "";
    if (mode[0] == '\0') {
        FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
        char line[128];
        const char *found = "unknown";
        if (f != NULL && fgets(line, sizeof line, f)) { /* "always [madvise] never" */
            char *open = strchr(line, '['), *close = open ? strchr(open, ']') : NULL;
            if (close != NULL) {
                *close = '\0';
                found = open + 1;
            }
        }
        if (f != NULL)
            fclose(f);
        snprintf(mode, sizeof mode, "%s", found);
    }
    return mode;
}

static void cpu_model(char *out, size_t size)
{
    snprintf(out, size, "unknown CPU");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (f == NULL)
        return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "model name", 10) == 0) {
            char *v = strchr(line, ':');
            if (v != NULL) {
                v++;
                while (isspace((unsigned char)*v))
                    v++;
                v[strcspn(v, "\n")] = '\0';
                snprintf(out, size, "%s", v);
            }
            break;
        }
    }
    fclose(f);
}

static bool is_virtual_machine(void)
{
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (f == NULL)
        return false;
    char line[4096];
    bool vm = false;
    while (!vm && fgets(line, sizeof line, f))
        vm = strncmp(line, "flags", 5) == 0 && strstr(line, " hypervisor") != NULL;
    fclose(f);
    return vm;
}

void bench_print_machine(FILE *out, const char *prefix)
{
    char model[256];
    struct utsname u;
    cpu_model(model, sizeof model);
    size_t total = proc_field("/proc/meminfo", "MemTotal") * BENCH_KIB;
    fprintf(out, "%smachine: %s, %u CPUs%s, %.1f GiB RAM\n", prefix, model, bench_cpu_count(),
            is_virtual_machine() ? " (virtual machine)" : "", (double)total / (double)BENCH_GIB);
    if (uname(&u) == 0)
        fprintf(out, "%skernel: %s %s %s, transparent huge pages: %s\n", prefix, u.sysname,
                u.release, u.machine, bench_thp_mode());
    fprintf(out, "%sbuild: %s, flags '%s', glibc %s\n", prefix, BENCH_COMPILER, BENCH_CFLAGS,
            gnu_get_libc_version());
}

/* ---- Thread pool ---- */

struct bench_pool {
    unsigned threads;        /* workers, the caller's thread included; >= 1 */
    pthread_t *ids;          /* threads - 1 started threads */
    pthread_mutex_t lock;
    pthread_cond_t wake;     /* a new loop (or shutdown) is posted */
    pthread_cond_t done;     /* the last worker finished the loop */
    uint64_t generation;     /* loops posted so far; guarded by lock */
    unsigned running;        /* started threads still in the current loop; guarded by lock */
    bool shutdown;           /* guarded by lock */
    /* The current loop: written by the caller before the generation moves. */
    bench_pool_fn fn;
    void *arg;
    size_t n, chunk;
    size_t cursor;           /* next item to hand out; atomic */
};

static void pool_work(bench_pool *p)
{
    for (;;) {
        size_t begin = __atomic_fetch_add(&p->cursor, p->chunk, __ATOMIC_RELAXED);
        if (begin >= p->n)
            return;
        size_t end = p->n - begin < p->chunk ? p->n : begin + p->chunk;
        p->fn(p->arg, begin, end);
    }
}

static void *pool_main(void *arg)
{
    bench_pool *p = arg;
    uint64_t seen = 0;
    pthread_mutex_lock(&p->lock);
    for (;;) {
        while (!p->shutdown && p->generation == seen)
            pthread_cond_wait(&p->wake, &p->lock);
        if (p->shutdown)
            break;
        seen = p->generation;
        pthread_mutex_unlock(&p->lock);
        pool_work(p);
        pthread_mutex_lock(&p->lock);
        if (--p->running == 0)
            pthread_cond_signal(&p->done);
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

bench_pool *bench_pool_create(unsigned threads)
{
    bench_pool *p = calloc(1, sizeof *p);
    if (p == NULL)
        return NULL;
    p->threads = threads ? threads : 1;
    p->ids = calloc(p->threads, sizeof *p->ids);
    if (p->ids == NULL) {
        free(p);
        return NULL;
    }
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->wake, NULL);
    pthread_cond_init(&p->done, NULL);
    for (unsigned i = 1; i < p->threads; i++) {
        int err = pthread_create(&p->ids[i], NULL, pool_main, p);
        if (err != 0) {
            p->threads = i; /* destroy joins the ones that started */
            bench_pool_destroy(p);
            errno = err;
            return NULL;
        }
    }
    return p;
}

void bench_pool_destroy(bench_pool *p)
{
    if (p == NULL)
        return;
    pthread_mutex_lock(&p->lock);
    p->shutdown = true;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->lock);
    for (unsigned i = 1; i < p->threads; i++)
        pthread_join(p->ids[i], NULL);
    pthread_cond_destroy(&p->done);
    pthread_cond_destroy(&p->wake);
    pthread_mutex_destroy(&p->lock);
    free(p->ids);
    free(p);
}

unsigned bench_pool_threads(const bench_pool *p)
{
    return p->threads;
}

void bench_pool_run(bench_pool *p, size_t n, size_t chunk, bench_pool_fn fn, void *arg)
{
    if (n == 0)
        return;
    if (chunk == 0)
        chunk = (n + p->threads - 1) / p->threads;
    if (p->threads == 1 || n <= chunk) {
        fn(arg, 0, n);
        return;
    }
    pthread_mutex_lock(&p->lock);
    p->fn = fn;
    p->arg = arg;
    p->n = n;
    p->chunk = chunk;
    __atomic_store_n(&p->cursor, 0, __ATOMIC_RELAXED);
    p->running = p->threads - 1;
    p->generation++;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->lock);
    pool_work(p);
    pthread_mutex_lock(&p->lock);
    while (p->running > 0)
        pthread_cond_wait(&p->done, &p->lock);
    pthread_mutex_unlock(&p->lock);
}

/* ---- Small things ---- */

static int compare_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double bench_median(double *v, size_t n)
{
    if (n == 0)
        return 0;
    qsort(v, n, sizeof *v, compare_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

bool bench_parse_uint(const char *text, unsigned long min, unsigned long max, unsigned long *out)
{
    errno = 0;
    char *end;
    if (text == NULL || !isdigit((unsigned char)text[0]))
        return false;
    unsigned long v = strtoul(text, &end, 10);
    if (*end != '\0' || errno != 0 || v < min || v > max)
        return false;
    *out = v;
    return true;
}
