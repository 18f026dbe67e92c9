/* bench/prover_driver.c - bench_prover: the prover-shaped benchmark, every allocator, medians.
 *
 * Each allocator runs in its own process (bench_prover_worker, built once per malloc), so no
 * allocator inherits another's heap, page cache or huge pages. Rounds alternate the order of the
 * allocators, so slow drift in the machine (other tenants, thermal state) spreads over all of them
 * instead of landing on one. Every figure is a median: over rounds for the first proof, over
 * every proof 2..N of every round for the steady state.
 *
 * Every allocator is shown as a ratio to the floor, the same schedule over memory that was
 * mapped and prefaulted before timing started and is carved with no allocator at all. The floor
 * is what the work itself costs; what an allocator adds on top of it is its overhead.
 *
 * The driver also checks the work: each proof's transcript checksum must be the same under every
 * allocator and in every round, or the run fails (the smoke test relies on that).
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

#define MAX_MODES 16
#define MAX_ARGS 64

static const char *const default_modes = "floor,glibc,jemalloc,mimalloc,nalloc,nalloc-huge,"
                                         "nalloc-populate,nalloc-populate-huge";

typedef struct sample { /* one proof of one worker process */
    unsigned round, proof;
    double wall, user, sys;
    double minflt, majflt;
    double peak_rss, peak_live, setup;
    unsigned long long checksum;
} sample;

typedef struct mode_run {
    char name[32];
    char executable[PATH_MAX + 64]; /* the worker that runs this mode */
    sample *samples;
    size_t count, capacity;
    char malloc_version[128];
} mode_run;

typedef struct summary { /* medians of one mode and phase */
    size_t samples;
    double wall, user, sys, minflt, majflt, peak_rss, setup;
} summary;

static void die(const char *fmt, const char *arg)
{
    fprintf(stderr, "bench_prover: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n");
    exit(1);
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: bench_prover [options] [worker options]\n"
            "  --modes LIST   comma-separated, from (and by default) %s\n"
            "  --rounds N     processes per allocator, alternating (default 3)\n"
            "  --proofs N     proofs per process: the first, then the steady state (default 4)\n"
            "  --csv FILE     every proof of every process, as CSV\n"
            "  --summary FILE the table's medians, as CSV\n"
            "  --label TEXT   first column of the summary CSV (e.g. the scale)\n"
            "  --force        run even if the memory estimate exceeds what is available\n"
            "  --smoke        a tiny trace, 1 round, 2 proofs: checks that everything runs and\n"
            "                 that every allocator computes the same proofs (a few seconds)\n"
            "Worker options (the trace shape, --threads, --scale...): bench_prover_worker --help\n",
            default_modes);
}

/* The directory this executable lives in: the workers are built next to it. */
static void self_dir(char *out, size_t size)
{
    ssize_t n = readlink("/proc/self/exe", out, size - 1);
    if (n <= 0)
        die("cannot read /proc/self/exe: %s", strerror(errno));
    out[n] = '\0';
    char *slash = strrchr(out, '/');
    if (slash != NULL)
        *slash = '\0';
}

/* Run `argv` with its stdout on a pipe; call line_fn for every line; return its exit status. */
static int run_worker(char *const argv[], void (*line_fn)(void *, char *), void *ctx)
{
    int fds[2];
    if (pipe(fds) != 0)
        die("pipe: %s", strerror(errno));
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0)
        die("fork: %s", strerror(errno));
    if (pid == 0) {
        dup2(fds[1], STDOUT_FILENO);
        close(fds[0]);
        close(fds[1]);
        execv(argv[0], argv);
        fprintf(stderr, "bench_prover: cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    close(fds[1]);
    FILE *in = fdopen(fds[0], "r");
    if (in == NULL)
        die("fdopen: %s", strerror(errno));
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, in) > 0) {
        line[strcspn(line, "\n")] = '\0';
        line_fn(ctx, line);
    }
    free(line);
    fclose(in);
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            die("waitpid: %s", strerror(errno));
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* ---- The dry run: shape, machine, sizes ---- */

typedef struct dry_info {
    char header[8][512]; /* the worker's machine and trace lines */
    unsigned header_lines;
    size_t peak_live, capacity[3];
} dry_info;

static void dry_line(void *ctx, char *line)
{
    dry_info *d = ctx;
    if (strncmp(line, "#dry ", 5) == 0) {
        sscanf(line, "#dry peak_live=%zu poly=%zu witness=%zu scratch=%zu", &d->peak_live,
               &d->capacity[0], &d->capacity[1], &d->capacity[2]);
    } else if (strncmp(line, "# ", 2) == 0 && strncmp(line, "# mode", 6) != 0 &&
               strncmp(line, "# malloc", 8) != 0 && d->header_lines < 8) {
        snprintf(d->header[d->header_lines++], sizeof d->header[0], "%s", line + 2);
    }
}

/* ---- Worker output ---- */

static void sample_line(void *ctx, char *line)
{
    mode_run *m = ctx;
    if (strncmp(line, "# malloc: ", 10) == 0) {
        snprintf(m->malloc_version, sizeof m->malloc_version, "%s", line + 10);
        return;
    }
    if (line[0] == '#' || strncmp(line, "mode,", 5) == 0)
        return;
    sample s;
    char name[64];
    if (sscanf(line, "%63[^,],%u,%u,%lf,%lf,%lf,%lf,%lf,%lf,%*f,%lf,%lf,%llx", name, &s.round,
               &s.proof, &s.wall, &s.user, &s.sys, &s.minflt, &s.majflt, &s.peak_rss,
               &s.peak_live, &s.setup, &s.checksum) != 12)
        die("unreadable worker output: %s", line);
    if (m->count == m->capacity) {
        m->capacity = m->capacity ? 2 * m->capacity : 64;
        m->samples = realloc(m->samples, m->capacity * sizeof *m->samples);
        if (m->samples == NULL)
            die("%s", "out of memory");
    }
    m->samples[m->count++] = s;
}

static double median_of(const mode_run *m, bool first, size_t field_offset)
{
    double *v = malloc((m->count + 1) * sizeof *v);
    size_t n = 0;
    if (v == NULL)
        die("%s", "out of memory");
    for (size_t i = 0; i < m->count; i++)
        if ((m->samples[i].proof == 1) == first)
            v[n++] = *(const double *)((const char *)&m->samples[i] + field_offset);
    double r = bench_median(v, n);
    free(v);
    return r;
}

static summary summarize(const mode_run *m, bool first)
{
    summary s = {0};
    for (size_t i = 0; i < m->count; i++)
        s.samples += (m->samples[i].proof == 1) == first;
#define MEDIAN(field) median_of(m, first, offsetof(sample, field))
    s.wall = MEDIAN(wall);
    s.user = MEDIAN(user);
    s.sys = MEDIAN(sys);
    s.minflt = MEDIAN(minflt);
    s.majflt = MEDIAN(majflt);
    s.peak_rss = MEDIAN(peak_rss);
    s.setup = MEDIAN(setup);
#undef MEDIAN
    return s;
}

/* Every proof index must give the same checksum under every allocator and in every round. */
static void check_checksums(const mode_run *modes, unsigned count, unsigned proofs)
{
    for (unsigned p = 1; p <= proofs; p++) {
        const sample *ref = NULL;
        const char *ref_mode = NULL;
        for (unsigned m = 0; m < count; m++)
            for (size_t i = 0; i < modes[m].count; i++) {
                const sample *s = &modes[m].samples[i];
                if (s->proof != p)
                    continue;
                if (ref == NULL) {
                    ref = s;
                    ref_mode = modes[m].name;
                } else if (s->checksum != ref->checksum) {
                    fprintf(stderr,
                            "bench_prover: proof %u computed %016llx under %s (round %u) but "
                            "%016llx under %s (round %u)\n",
                            p, s->checksum, modes[m].name, s->round, ref->checksum, ref_mode,
                            ref->round);
                    exit(1);
                }
            }
    }
}

/* ---- Output ---- */

static double mib(double bytes)
{
    return bytes / (double)BENCH_MIB;
}

/* 1234567 as "1,234,567": page-fault counts are read at a glance. */
static const char *grouped(double value, char *buf, size_t size)
{
    char digits[32];
    snprintf(digits, sizeof digits, "%.0f", value < 0 ? -value : value);
    size_t n = strlen(digits), o = 0;
    if (value <= -0.5 && o + 1 < size)
        buf[o++] = '-';
    for (size_t i = 0; i < n && o + 2 < size; i++) {
        if (i > 0 && (n - i) % 3 == 0)
            buf[o++] = ',';
        buf[o++] = digits[i];
    }
    buf[o] = '\0';
    return buf;
}

static const mode_run *find_mode(const mode_run *modes, unsigned count, const char *name)
{
    for (unsigned m = 0; m < count; m++)
        if (strcmp(modes[m].name, name) == 0)
            return &modes[m];
    return NULL;
}

/* The 1-minute load average, or -1 where /proc/loadavg cannot be read. Other programs running
 * during the benchmark are the main source of noise in its wall times. */
static double load_average(void)
{
    double load = -1;
    FILE *f = fopen("/proc/loadavg", "r");
    if (f != NULL) {
        if (fscanf(f, "%lf", &load) != 1)
            load = -1;
        fclose(f);
    }
    return load;
}

/* The run's noise in one phase: how far a proof's wall time typically lies from the median of
 * its own allocator, pooled over every allocator (the median absolute deviation, in seconds).
 * Each allocator's proofs come from several processes at different times, so this includes the
 * drift of a shared machine, not only the jitter inside one process. */
static double phase_noise(const mode_run *modes, unsigned count, bool first)
{
    size_t total = 0, n = 0;
    for (unsigned m = 0; m < count; m++)
        total += modes[m].count;
    double *dev = malloc((total + 1) * sizeof *dev);
    if (dev == NULL)
        die("%s", "out of memory");
    for (unsigned m = 0; m < count; m++) {
        double med = median_of(&modes[m], first, offsetof(sample, wall));
        for (size_t i = 0; i < modes[m].count; i++)
            if ((modes[m].samples[i].proof == 1) == first)
                dev[n++] = fabs(modes[m].samples[i].wall - med);
    }
    double r = bench_median(dev, n);
    free(dev);
    return r;
}

static size_t min_samples(const mode_run *modes, unsigned count, bool first)
{
    size_t least = SIZE_MAX;
    for (unsigned m = 0; m < count; m++) {
        size_t n = summarize(&modes[m], first).samples;
        least = n < least ? n : least;
    }
    return least;
}

/* The table: one row per allocator, the same columns as docs/performance.md (Markdown, padded so
 * that it also reads as a table in a terminal). */
enum { COLUMNS = 12, CELL = 24 };

static void print_markdown(FILE *out, char (*cells)[COLUMNS][CELL], unsigned rows)
{
    size_t width[COLUMNS] = {0};
    for (unsigned r = 0; r < rows; r++)
        for (int c = 0; c < COLUMNS; c++)
            if (strlen(cells[r][c]) > width[c])
                width[c] = strlen(cells[r][c]);
    for (unsigned r = 0; r < rows; r++) {
        for (int c = 0; c < COLUMNS; c++) {
            if (r == 1) { /* the alignment row: names left, figures right */
                fprintf(out, "| ");
                for (size_t k = 0; k + 1 < width[c]; k++)
                    fputc('-', out);
                fprintf(out, "%c ", c == 0 ? '-' : ':');
            } else if (c == 0) {
                fprintf(out, "| %-*s ", (int)width[c], cells[r][c]);
            } else {
                fprintf(out, "| %*s ", (int)width[c], cells[r][c]);
            }
        }
        fprintf(out, "|\n");
    }
}

static void print_table(FILE *out, const mode_run *modes, unsigned count, const dry_info *dry,
                        unsigned rounds, unsigned proofs, const double load[2])
{
    summary floor[2] = {{0}, {0}}; /* first, steady */
    const mode_run *fm = find_mode(modes, count, "floor");
    if (fm != NULL) {
        floor[0] = summarize(fm, true);
        floor[1] = summarize(fm, false);
    }
    fprintf(out, "\nnalloc prover-shaped benchmark\n");
    for (unsigned i = 0; i < dry->header_lines; i++)
        fprintf(out, "  %s\n", dry->header[i]);
    fprintf(out, "  %u rounds x %u proofs per process, allocators alternating; medians of the "
                 "first proof (one per round) and of proofs 2..%u (the steady state)\n",
            rounds, proofs, proofs);
    if (load[0] >= 0 && load[1] >= 0)
        fprintf(out, "  load average (1 min): %.2f before the first round, %.2f after the last, on %u "
                     "CPUs (this benchmark's own threads count in it)\n",
                load[0], load[1], bench_cpu_count());
    fprintf(out, "  x floor, +ms: wall time over the floor's (the same schedule on prefaulted "
                 "memory, no allocator); sys ms: kernel time;\n  faults: minor page faults; peak "
                 "RSS / live: the peak resident set over the peak live bytes (%.1f MiB)\n\n",
            mib((double)dry->peak_live));

    char(*cells)[COLUMNS][CELL] = calloc(count + 2, sizeof *cells);
    if (cells == NULL)
        die("%s", "out of memory");
    static const char *const head[COLUMNS] = {
        "allocator", "first proof ms", "x floor", "+ms", "sys ms", "faults", "steady ms",
        "x floor", "+ms", "sys ms", "faults", "peak RSS / live"};
    for (int c = 0; c < COLUMNS; c++)
        snprintf(cells[0][c], CELL, "%s", head[c]);
    for (unsigned m = 0; m < count; m++) {
        char (*row)[CELL] = cells[m + 2];
        snprintf(row[0], CELL, "%.*s", CELL - 1, modes[m].name);
        double rss = 0;
        for (int phase = 0; phase < 2; phase++) {
            summary s = summarize(&modes[m], phase == 0);
            char(*cell)[CELL] = row + 1 + 5 * phase;
            double fw = floor[phase].wall;
            if (s.samples == 0) {
                for (int c = 0; c < 5; c++)
                    snprintf(cell[c], CELL, "-");
                continue;
            }
            snprintf(cell[0], CELL, "%.1f", s.wall * 1e3);
            snprintf(cell[1], CELL, fw > 0 ? "%.2f" : "-", s.wall / fw);
            if (fw <= 0)
                snprintf(cell[2], CELL, "-");
            else if (&modes[m] == fm)
                snprintf(cell[2], CELL, "0");
            else
                snprintf(cell[2], CELL, "%+.1f", (s.wall - fw) * 1e3);
            snprintf(cell[3], CELL, "%.1f", s.sys * 1e3);
            grouped(s.minflt, cell[4], CELL);
            rss = s.peak_rss > rss ? s.peak_rss : rss;
        }
        snprintf(row[11], CELL, "%.2f", rss / (double)dry->peak_live);
    }
    print_markdown(out, cells, count + 2);
    free(cells);

    fprintf(out, "\n");
    for (unsigned m = 0; m < count; m++) {
        summary f = summarize(&modes[m], true);
        if (strncmp(modes[m].name, "nalloc", 6) == 0)
            fprintf(out, "  %s: creating the arenas took %.1f ms of its first proof\n",
                    modes[m].name, f.setup * 1e3);
        else if (strcmp(modes[m].name, "floor") == 0)
            fprintf(out, "  floor: mapping and prefaulting took %.1f ms before timing (not "
                         "counted)\n", f.setup * 1e3);
        else
            fprintf(out, "  %s: %s\n", modes[m].name, modes[m].malloc_version);
    }
}

/* The verdict, in words, from this run's figures alone: nalloc (the library's defaults, or the
 * first nalloc variant run) against the general-purpose allocator with the fastest steady proof.
 * A wall-time difference is called measured only when it is more than twice the run's noise. */
static void print_verdict(FILE *out, const mode_run *modes, unsigned count, const dry_info *dry,
                          unsigned proofs)
{
    static const char *const general[] = {"glibc", "jemalloc", "mimalloc"};
    const mode_run *fm = find_mode(modes, count, "floor"), *na = find_mode(modes, count, "nalloc");
    for (unsigned m = 0; na == NULL && m < count; m++)
        if (strncmp(modes[m].name, "nalloc", 6) == 0)
            na = &modes[m];
    bool steady = proofs > 1;
    const mode_run *best = NULL;
    double best_wall = 0;
    for (size_t g = 0; g < sizeof general / sizeof general[0]; g++) {
        const mode_run *m = find_mode(modes, count, general[g]);
        if (m == NULL)
            continue;
        double w = summarize(m, !steady).wall;
        if (best == NULL || w < best_wall) {
            best = m;
            best_wall = w;
        }
    }
    fprintf(out, "\nVerdict");
    if (fm == NULL || na == NULL || best == NULL) {
        fprintf(out, ": it needs the floor, nalloc and a general-purpose allocator in --modes\n");
        return;
    }
    char a[32], b[32];
    bool unsure = false; /* a wall-time comparison the run cannot decide */
    fprintf(out, ": %s against %s (the general-purpose allocator with the fastest %s proof in "
                 "this run), %.1f MiB live per proof\n",
            na->name, best->name, steady ? "steady" : "first", mib((double)dry->peak_live));
    for (int phase = steady ? 1 : 0; phase >= 0; phase--) {
        bool first = phase == 0;
        summary fl = summarize(fm, first), n = summarize(na, first), g = summarize(best, first);
        double noise = phase_noise(modes, count, first), diff = g.wall - n.wall;
        fprintf(out, "  %-16s %+.1f ms over the floor for %s, %+.1f ms for %s: %.1f ms (%.1f%%) "
                     "%s", first ? "first proof:" : "repeated proofs:", (n.wall - fl.wall) * 1e3,
                na->name, (g.wall - fl.wall) * 1e3, best->name, fabs(diff) * 1e3,
                100 * fabs(diff) / g.wall, diff >= 0 ? "faster" : "slower");
        if (min_samples(modes, count, first) < 2) {
            fprintf(out, " (one proof each: no noise estimate)\n");
            unsure = true;
        } else if (fabs(diff) > 2 * noise) {
            fprintf(out, " (noise +-%.1f ms: a real difference)\n", noise * 1e3);
        } else {
            fprintf(out, " (noise +-%.1f ms: within the noise)\n", noise * 1e3);
            unsure = true;
        }
        fprintf(out, "  %-16s %s page faults per proof for %s, %s for %s; %.1f ms against %.1f "
                     "ms in the kernel\n", "", grouped(n.minflt, a, sizeof a), na->name,
                grouped(g.minflt, b, sizeof b), best->name, n.sys * 1e3, g.sys * 1e3);
    }
    double nr = 0, gr = 0;
    for (int phase = 0; phase < 2; phase++) {
        summary n = summarize(na, phase == 0), g = summarize(best, phase == 0);
        nr = n.peak_rss > nr ? n.peak_rss : nr;
        gr = g.peak_rss > gr ? g.peak_rss : gr;
    }
    fprintf(out, "  %-16s %.2fx the peak live bytes for %s, %.2fx for %s\n", "peak memory:",
            nr / (double)dry->peak_live, na->name, gr / (double)dry->peak_live, best->name);
    if (unsure)
        fprintf(out, "  Wall times this close are not told apart by this run: page faults, kernel time "
                     "and memory are; for time,\n  rerun with more rounds (--rounds 6) or on an "
                     "idle machine.\n");
}

static void write_summary(const char *path, const char *label, const mode_run *modes,
                          unsigned count, const dry_info *dry)
{
    FILE *f = fopen(path, "w");
    if (f == NULL)
        die("cannot write the summary: %s", strerror(errno));
    summary floor[2] = {{0}, {0}};
    for (unsigned m = 0; m < count; m++)
        if (strcmp(modes[m].name, "floor") == 0) {
            floor[0] = summarize(&modes[m], true);
            floor[1] = summarize(&modes[m], false);
        }
    fprintf(f, "label,mode,phase,samples,wall_s,wall_x_floor,over_floor_s,user_s,sys_s,minflt,"
               "majflt,peak_rss_bytes,peak_live_bytes,rss_x_live,setup_s,malloc\n");
    for (unsigned m = 0; m < count; m++)
        for (int phase = 0; phase < 2; phase++) {
            summary s = summarize(&modes[m], phase == 0);
            if (s.samples == 0)
                continue;
            double fw = floor[phase].wall;
            fprintf(f, "%s,%s,%s,%zu,%.6f,%.4f,%.6f,%.6f,%.6f,%.0f,%.0f,%.0f,%zu,%.4f,%.6f,%s\n",
                    label, modes[m].name, phase == 0 ? "first" : "steady", s.samples, s.wall,
                    fw > 0 ? s.wall / fw : 0, fw > 0 ? s.wall - fw : 0, s.user, s.sys, s.minflt,
                    s.majflt, s.peak_rss, dry->peak_live, s.peak_rss / (double)dry->peak_live,
                    s.setup, modes[m].malloc_version);
        }
    fclose(f);
}

static void write_raw(const char *path, const char *label, const mode_run *modes, unsigned count)
{
    FILE *f = fopen(path, "w");
    if (f == NULL)
        die("cannot write the CSV: %s", strerror(errno));
    fprintf(f, "label,mode,round,proof,wall_s,user_s,sys_s,minflt,majflt,peak_rss_bytes,"
               "peak_live_bytes,setup_s,checksum\n");
    for (unsigned m = 0; m < count; m++)
        for (size_t i = 0; i < modes[m].count; i++) {
            const sample *s = &modes[m].samples[i];
            fprintf(f, "%s,%s,%u,%u,%.6f,%.6f,%.6f,%.0f,%.0f,%.0f,%.0f,%.6f,%016llx\n", label,
                    modes[m].name, s->round, s->proof, s->wall, s->user, s->sys, s->minflt,
                    s->majflt, s->peak_rss, s->peak_live, s->setup, s->checksum);
        }
    fclose(f);
}

/* ---- main ---- */

static const char *worker_for(const char *mode) /* the executable suffix that runs a mode */
{
    if (strcmp(mode, "jemalloc") == 0)
        return "bench_prover_worker_jemalloc";
    if (strcmp(mode, "mimalloc") == 0)
        return "bench_prover_worker_mimalloc";
    return "bench_prover_worker";
}

int main(int argc, char **argv)
{
    const char *modes_arg = default_modes, *csv = NULL, *summary_csv = NULL, *label = "1";
    unsigned long rounds = 3, proofs = 4;
    bool force = false, smoke = false;
    char *pass[MAX_ARGS];
    int npass = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        bool takes_value = true;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(a, "--force") == 0) {
            force = true;
            takes_value = false;
        } else if (strcmp(a, "--smoke") == 0) {
            smoke = true;
            takes_value = false;
        } else if (v == NULL) {
            die("%s needs a value", a);
        } else if (strcmp(a, "--modes") == 0) {
            modes_arg = v;
        } else if (strcmp(a, "--rounds") == 0) {
            if (!bench_parse_uint(v, 1, 1000, &rounds))
                die("bad --rounds %s", v);
        } else if (strcmp(a, "--proofs") == 0) {
            if (!bench_parse_uint(v, 1, 10000, &proofs))
                die("bad --proofs %s", v);
        } else if (strcmp(a, "--csv") == 0) {
            csv = v;
        } else if (strcmp(a, "--summary") == 0) {
            summary_csv = v;
        } else if (strcmp(a, "--label") == 0) {
            label = v;
        } else { /* a worker option and its value */
            if (npass + 2 >= MAX_ARGS - 12)
                die("%s", "too many options");
            pass[npass++] = argv[i];
            pass[npass++] = argv[i + 1];
        }
        if (takes_value)
            i++;
    }
    if (smoke) { /* a tiny trace that still has every phase; explicit options win */
        static char *smoke_args[] = {"--traces", "6", "--min-log-height", "3", "--max-log-height",
                                     "6", "--max-width", "24", "--queries", "4"};
        char *merged[MAX_ARGS];
        int n = 0;
        for (size_t i = 0; i < sizeof smoke_args / sizeof smoke_args[0]; i++)
            merged[n++] = smoke_args[i];
        for (int i = 0; i < npass; i++)
            merged[n++] = pass[i];
        memcpy(pass, merged, (size_t)n * sizeof *pass);
        npass = n;
        rounds = 1;
        proofs = proofs > 2 ? 2 : proofs;
    }

    char dir[PATH_MAX];
    self_dir(dir, sizeof dir);

    /* The modes, and the executables that run them; missing mallocs are skipped, said so. */
    mode_run modes[MAX_MODES];
    unsigned count = 0;
    char list[1024];
    snprintf(list, sizeof list, "%s", modes_arg);
    for (char *save = NULL, *tok = strtok_r(list, ",", &save); tok != NULL;
         tok = strtok_r(NULL, ",", &save)) {
        if (count == MAX_MODES)
            die("%s", "too many modes");
        mode_run *m = &modes[count];
        memset(m, 0, sizeof *m);
        snprintf(m->name, sizeof m->name, "%s", tok);
        snprintf(m->executable, sizeof m->executable, "%s/%s", dir, worker_for(tok));
        if (access(m->executable, X_OK) != 0) {
            fprintf(stderr, "bench_prover: skipping %s: %s was not built (install lib%s-dev and "
                            "reconfigure)\n", tok, worker_for(tok), tok);
            continue;
        }
        count++;
    }
    if (count == 0)
        die("%s", "no allocator to run");

    /* The dry run: the shape, the sizes, and whether this fits in memory. */
    char *argv_worker[MAX_ARGS];
    int n = 0;
    char dry_exe[PATH_MAX + 32], round_text[16], proofs_text[16];
    snprintf(dry_exe, sizeof dry_exe, "%s/bench_prover_worker", dir);
    argv_worker[n++] = dry_exe;
    argv_worker[n++] = "--dry";
    for (int i = 0; i < npass; i++)
        argv_worker[n++] = pass[i];
    argv_worker[n] = NULL;
    dry_info dry = {0};
    if (run_worker(argv_worker, dry_line, &dry) != 0 || dry.peak_live == 0)
        die("%s", "the dry run failed (see above)");
    size_t arenas = dry.capacity[0] + dry.capacity[1] + dry.capacity[2];
    size_t need = arenas > dry.peak_live * 3 / 2 ? arenas : dry.peak_live * 3 / 2;
    size_t available = bench_mem_available();
    fprintf(stderr, "bench_prover: peak live %.1f MiB per proof; the largest footprint expected "
                    "is %.1f MiB of %.1f MiB available\n",
            mib((double)dry.peak_live), mib((double)need), mib((double)available));
    if (available > 0 && need > available / 10 * 9 && !force)
        die("%s", "not enough memory for this size (--force to try anyway)");

    /* The rounds: every mode once per round, the order rotated each round. */
    double load[2] = {load_average(), -1};
    double start = bench_now();
    for (unsigned r = 0; r < rounds; r++) {
        for (unsigned k = 0; k < count; k++) {
            mode_run *m = &modes[(k + r) % count];
            n = 0;
            snprintf(round_text, sizeof round_text, "%u", r);
            snprintf(proofs_text, sizeof proofs_text, "%lu", proofs);
            argv_worker[n++] = m->executable;
            argv_worker[n++] = "--mode";
            argv_worker[n++] = m->name;
            argv_worker[n++] = "--round";
            argv_worker[n++] = round_text;
            argv_worker[n++] = "--proofs";
            argv_worker[n++] = proofs_text;
            for (int i = 0; i < npass; i++)
                argv_worker[n++] = pass[i];
            argv_worker[n] = NULL;
            double t0 = bench_now();
            size_t before = m->count;
            int status = run_worker(argv_worker, sample_line, m);
            if (status != 0 || m->count - before != proofs) {
                fprintf(stderr, "bench_prover: %s exited with status %d after %zu of %lu proofs\n",
                        m->name, status, m->count - before, proofs);
                return 1;
            }
            fprintf(stderr,
                    "bench_prover: [round %u/%lu] %-20s %lu proofs in %6.2f s (%.0f s so far)\n",
                    r + 1, rounds, m->name, proofs, bench_now() - t0, bench_now() - start);
        }
    }
    load[1] = load_average();
    check_checksums(modes, count, (unsigned)proofs);
    fprintf(stderr, "bench_prover: every allocator computed the same %lu proofs (checksums "
                    "match)\n", proofs);
    print_table(stdout, modes, count, &dry, (unsigned)rounds, (unsigned)proofs, load);
    print_verdict(stdout, modes, count, &dry, (unsigned)proofs);
    if (summary_csv != NULL)
        write_summary(summary_csv, label, modes, count, &dry);
    if (csv != NULL)
        write_raw(csv, label, modes, count);
    for (unsigned m = 0; m < count; m++)
        free(modes[m].samples);
    return 0;
}
