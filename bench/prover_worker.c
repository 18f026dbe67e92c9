/* bench/prover_worker.c - one allocator, one process: run the prover-shaped proofs and report.
 *
 * The driver (bench_prover) starts one of these per allocator and round. This executable is built
 * three times: plain (its malloc is glibc's; it also runs nalloc and the floor, which do not use
 * malloc on their path), linked with jemalloc and linked with mimalloc. It checks that its malloc
 * is the one it was built for, sizes the arenas from a dry run of the schedule, runs the proofs,
 * and prints one CSV row per proof on stdout, with comment lines ('#') describing the run.
 *
 * What a proof's figures include. Wall, user and system time, minor and major faults are deltas
 * of clock_gettime and getrusage around the proof; the peak resident set is the kernel's, reset
 * before each proof (clear_refs). The first proof of nalloc includes creating the arenas (with
 * their prefaulting, for the populate variants): a prover pays that once, and it is part of what
 * the first proof costs. The floor's regions are mapped and prefaulted before timing starts: that
 * is the point of the floor.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "heap.h"
#include "malloc_id.h"
#include "prover.h"

typedef struct mode_desc {
    const char *name;
    heap_mode heap;
    heap_nalloc_options nalloc;
    const char *what;
} mode_desc;

static const mode_desc modes[] = {
    {"floor", HEAP_FLOOR, {0}, "pre-faulted memory, no allocator (the limit)"},
    {"glibc", HEAP_MALLOC, {0}, "glibc malloc/free"},
    {"jemalloc", HEAP_MALLOC, {0}, "jemalloc malloc/free (linked)"},
    {"mimalloc", HEAP_MALLOC, {0}, "mimalloc malloc/free (linked)"},
    {"nalloc", HEAP_NALLOC, {.defaults = true},
     "nalloc, default flags (huge pages and prefault-ahead on poly)"},
    {"nalloc-huge", HEAP_NALLOC, {.huge = true}, "nalloc, huge pages on every arena"},
    {"nalloc-populate", HEAP_NALLOC, {.populate = true, .no_huge = true},
     "nalloc, every arena prefaulted at creation, no huge pages"},
    {"nalloc-populate-huge", HEAP_NALLOC, {.populate = true, .huge = true},
     "nalloc, every arena prefaulted at creation, with huge pages"},
    {"nalloc-prefault", HEAP_NALLOC, {.defaults = true, .prefault = true},
     "nalloc, default flags and pages faulted in ahead by the helper on every arena"},
    {"nalloc-prefault-huge", HEAP_NALLOC, {.prefault = true, .huge = true},
     "nalloc, huge pages and pages faulted in ahead on every arena"},
    {"nalloc-noprefault", HEAP_NALLOC, {.defaults = true, .no_prefault = true},
     "nalloc, default flags without prefault-ahead on any arena"},
};

static void usage(FILE *out)
{
    fprintf(out,
            "usage: bench_prover_worker --mode MODE [options]\n"
            "  --mode M            floor, glibc, jemalloc, mimalloc, nalloc, nalloc-huge,\n"
            "                      nalloc-populate, nalloc-populate-huge, nalloc-prefault,\n"
            "                      nalloc-prefault-huge, nalloc-noprefault (the malloc modes need\n"
            "                      the executable linked with that malloc)\n"
            "  --proofs N          proofs back to back (default 5)\n"
            "  --threads N         worker threads (default: every CPU)\n"
            "  --round N           recorded in the CSV (default 0)\n"
            "  --dry               print the schedule's sizes and exit\n"
            "  --traces N --min-log-height N --max-log-height N --small-percent N\n"
            "  --min-width N --max-width N --elem 8|4|mixed --blowup N --scale N\n"
            "  --queries N --seed N  the trace shape (defaults in bench/prover.c)\n"
            "  --lde ntt|copy      extend columns by NTT (default) or by repeating them: the\n"
            "                      same memory, far less arithmetic (a fault-heavy first proof)\n");
}

static unsigned log2_exact(unsigned long v) /* v a power of two */
{
    unsigned l = 0;
    while ((1ul << l) < v)
        l++;
    return (1ul << l) == v ? l : 99;
}

/* Parse one prover option; false if `name` is not one. Exits on a bad value. */
static bool parse_prover_option(prover_params *p, const char *name, const char *value)
{
    static const struct {
        const char *name;
        unsigned long min, max;
        size_t offset;
    } numeric[] = {
        {"--traces", 1, 100000, offsetof(prover_params, traces)},
        {"--min-log-height", 0, 30, offsetof(prover_params, min_log_height)},
        {"--max-log-height", 0, 30, offsetof(prover_params, max_log_height)},
        {"--small-percent", 0, 100, offsetof(prover_params, small_percent)},
        {"--min-width", 1, 100000, offsetof(prover_params, min_width)},
        {"--max-width", 1, 100000, offsetof(prover_params, max_width)},
        {"--queries", 1, 10000, offsetof(prover_params, queries)},
    };
    unsigned long v;
    for (size_t i = 0; i < sizeof numeric / sizeof numeric[0]; i++) {
        if (strcmp(name, numeric[i].name) != 0)
            continue;
        if (!bench_parse_uint(value, numeric[i].min, numeric[i].max, &v)) {
            fprintf(stderr, "bench: %s wants an integer in %lu..%lu\n", name, numeric[i].min,
                    numeric[i].max);
            exit(2);
        }
        *(unsigned *)((char *)p + numeric[i].offset) = (unsigned)v;
        return true;
    }
    if (strcmp(name, "--lde") == 0) {
        if (strcmp(value, "ntt") != 0 && strcmp(value, "copy") != 0) {
            fprintf(stderr, "bench: --lde wants ntt or copy\n");
            exit(2);
        }
        p->lde_copy = strcmp(value, "copy") == 0;
    } else if (strcmp(name, "--elem") == 0) {
        p->elem = strcmp(value, "8") == 0 ? 8 : strcmp(value, "4") == 0 ? 4
                : strcmp(value, "mixed") == 0 ? 0 : 99;
    } else if (strcmp(name, "--blowup") == 0 || strcmp(name, "--scale") == 0) {
        unsigned l = bench_parse_uint(value, 1, 1u << 20, &v) ? log2_exact(v) : 99;
        if (l == 99) {
            fprintf(stderr, "bench: %s wants a power of two\n", name);
            exit(2);
        }
        *(name[2] == 'b' ? &p->log_blowup : &p->log_scale) = l;
    } else if (strcmp(name, "--seed") == 0) {
        if (!bench_parse_uint(value, 0, ~0ul, &v)) {
            fprintf(stderr, "bench: --seed wants an integer\n");
            exit(2);
        }
        p->seed = v;
    } else {
        return false;
    }
    return true;
}

static size_t round_up_2m(size_t v)
{
    size_t m = (size_t)2 << 20;
    return v == 0 ? m : (v + m - 1) / m * m;
}

int main(int argc, char **argv)
{
    prover_params params;
    prover_params_default(&params);
    const char *mode_name = NULL;
    unsigned long proofs = 5, threads = bench_cpu_count(), round = 0;
    bool dry_only = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(a, "--dry") == 0) {
            dry_only = true;
            continue;
        } else if (v == NULL) {
            fprintf(stderr, "bench: %s needs a value\n", a);
            return 2;
        } else if (strcmp(a, "--mode") == 0) {
            mode_name = v;
        } else if (strcmp(a, "--proofs") == 0) {
            if (!bench_parse_uint(v, 1, 100000, &proofs))
                return fprintf(stderr, "bench: bad --proofs\n"), 2;
        } else if (strcmp(a, "--threads") == 0) {
            if (!bench_parse_uint(v, 1, 4096, &threads))
                return fprintf(stderr, "bench: bad --threads\n"), 2;
        } else if (strcmp(a, "--round") == 0) {
            if (!bench_parse_uint(v, 0, 100000, &round))
                return fprintf(stderr, "bench: bad --round\n"), 2;
        } else if (!parse_prover_option(&params, a, v)) {
            fprintf(stderr, "bench: unknown option %s\n", a);
            usage(stderr);
            return 2;
        }
        i++;
    }
    const char *why = prover_params_check(&params);
    if (why != NULL) {
        fprintf(stderr, "bench: %s\n", why);
        return 2;
    }
    const mode_desc *mode = NULL;
    for (size_t i = 0; mode_name != NULL && i < sizeof modes / sizeof modes[0]; i++)
        if (strcmp(mode_name, modes[i].name) == 0)
            mode = &modes[i];
    if (mode == NULL && !dry_only) {
        fprintf(stderr, "bench: --mode is required (one of floor, glibc, jemalloc, mimalloc, "
                        "nalloc, nalloc-huge, nalloc-populate, nalloc-populate-huge, "
                        "nalloc-prefault, nalloc-prefault-huge, nalloc-noprefault)\n");
        return 2;
    }
    char malloc_version[256];
    if (!bench_malloc_verify(malloc_version, sizeof malloc_version))
        return 3;
    if (mode != NULL && mode->heap == HEAP_MALLOC && strcmp(mode->name, bench_malloc_name()) != 0) {
        fprintf(stderr, "bench: this executable is linked with %s, not %s\n", bench_malloc_name(),
                mode->name);
        return 3;
    }

    prover *p = prover_create(&params, (unsigned)threads);
    if (p == NULL) {
        fprintf(stderr, "bench: cannot set up the prover: %s\n", strerror(errno));
        return 2;
    }

    /* The dry run, on nalloc's own dry-run context: the arena sizes from its sizing helper and
     * the peak live bytes, touching no memory. */
    heap *dry = heap_create(HEAP_DRY, (size_t[NALLOC_KIND_COUNT]){0}, NULL, NULL);
    if (dry == NULL)
        return 2;
    prover_prove(p, dry, 0);
    size_t capacity[NALLOC_KIND_COUNT], peak_live = heap_live_peak(dry);
    if (!heap_dry_capacity(dry, capacity))
        return 2;
    for (int k = 0; k < NALLOC_KIND_COUNT; k++) /* whole huge pages, for the huge-page variants */
        capacity[k] = round_up_2m(capacity[k]);
    heap_destroy(dry);

    printf("# mode: %s: %s\n", mode ? mode->name : "dry", mode ? mode->what : "");
    printf("# malloc: %s\n", malloc_version);
    bench_print_machine(stdout, "# ");
    prover_describe(p, stdout, "# ");
    printf("#dry peak_live=%zu poly=%zu witness=%zu scratch=%zu\n", peak_live, capacity[0],
           capacity[1], capacity[2]);
    if (dry_only) {
        prover_destroy(p);
        return 0;
    }
    fflush(stdout);

    heap *h = NULL;
    double setup = 0;
    if (mode->heap != HEAP_NALLOC) { /* malloc: nothing to set up; floor: before timing */
        h = heap_create(mode->heap, capacity, NULL, &setup);
        if (h == NULL)
            return 2;
    }
    bool rss_per_proof = bench_rss_peak_reset();
    printf("mode,round,proof,wall_s,user_s,sys_s,minflt,majflt,peak_rss_bytes,end_rss_bytes,"
           "peak_live_bytes,setup_s,checksum,helper_minflt,helper_cpu_s\n");
    for (unsigned i = 0; i < proofs; i++) {
        bench_rss_peak_reset();
        bench_usage helper_start = bench_thread_usage("nalloc-prefault");
        bench_usage start = bench_usage_now();
        if (h == NULL) { /* nalloc: the first proof creates the context */
            h = heap_create(HEAP_NALLOC, capacity, &mode->nalloc, &setup);
            if (h == NULL)
                return 2;
        }
        heap_live_peak_reset(h);
        uint64_t checksum = prover_prove(p, h, i);
        bench_usage u = bench_usage_since(start);
        /* The prefault helper's share (its faults and CPU are in the process's figures too). */
        bench_usage helper = bench_thread_usage("nalloc-prefault");
        printf("%s,%lu,%u,%.6f,%.6f,%.6f,%ld,%ld,%zu,%zu,%zu,%.6f,%016llx,%ld,%.6f\n", mode->name,
               round, i + 1, u.wall, u.user, u.sys, u.minflt, u.majflt, bench_rss_peak(),
               bench_rss_now(), heap_live_peak(h), i == 0 || mode->heap == HEAP_FLOOR ? setup : 0.0,
               (unsigned long long)checksum, helper.minflt - helper_start.minflt,
               (helper.user + helper.sys) - (helper_start.user + helper_start.sys));
        fflush(stdout);
    }
    if (!rss_per_proof)
        printf("# note: /proc/self/clear_refs refused; peak RSS is the process-wide peak\n");
    if (mode->heap == HEAP_NALLOC) {
        for (int k = 0; k < NALLOC_KIND_COUNT; k++) {
            nalloc_stats s;
            nalloc_arena *a = nalloc_ctx_arena(heap_nalloc_ctx(h), (nalloc_kind)k);
            if (a != NULL && nalloc_arena_stats_resident(a, &s) == NALLOC_OK)
                printf("#arena %s capacity=%zu high_water=%zu allocations=%zu huge_pages=%d "
                       "populated=%d locked=%d missing=0x%x prefaulted=%zu collapsed=%zu "
                       "resident=%zu huge_bytes=%zu\n",
                       s.name, s.capacity, s.high_water, s.allocations, s.huge_pages, s.populated,
                       s.locked, s.missing, s.prefaulted, s.collapsed, s.resident_bytes,
                       s.huge_bytes);
        }
    }
    heap_destroy(h);
    prover_destroy(p);
    return 0;
}
