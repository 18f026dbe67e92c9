/* tests/test_prefault.c - prefault-ahead: the helper thread, seen from the kernel's side.
 *
 * What the helper did is asked of the kernel (mincore, /proc/self/smaps, /proc/self/task), never
 * inferred from time: every check waits for a condition with a generous bound (wait_for) and then
 * asserts what must hold. A helper that never gets the CPU on a loaded machine makes a test slow,
 * not wrong. Checks that need another process run in a forked child (tests/child.h). Residency
 * checks skip under Valgrind, whose memory is its own.
 */
#include "child.h"

#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/mman.h>
#include <time.h>

/* ThreadSanitizer cannot start threads in a child forked from a threaded process: there, the
 * fork test checks the inherited arena only. */
#if defined(__SANITIZE_THREAD__)
#define THREADS_AFTER_FORK_UNSUPPORTED 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define THREADS_AFTER_FORK_UNSUPPORTED 1
#endif
#endif
#ifndef THREADS_AFTER_FORK_UNSUPPORTED
#define THREADS_AFTER_FORK_UNSUPPORTED 0
#endif

#define WAIT_SECONDS 120.0 /* a bound for conditions that a helper meets in milliseconds */

static double now_seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* Poll cond(arg) every millisecond until it holds or WAIT_SECONDS pass; its last answer. */
static bool wait_for(bool (*cond)(void *), void *arg)
{
    double until = now_seconds() + WAIT_SECONDS;
    while (!cond(arg)) {
        if (now_seconds() > until)
            return cond(arg);
        struct timespec ms = {0, 1000000};
        nanosleep(&ms, NULL);
    }
    return true;
}

/* Pages of [p, p + size) resident now. */
static size_t resident_pages(const void *p, size_t size)
{
    size_t pages = size / page_size(), n = 0;
    unsigned char *vec = malloc(pages);
    if (vec == NULL || mincore((void *)p, size, vec) != 0) {
        free(vec);
        return SIZE_MAX;
    }
    for (size_t i = 0; i < pages; i++)
        n += vec[i] & 1;
    free(vec);
    return n;
}

/* The sum of smaps field `name` (in bytes) over the mappings inside [lo, hi). */
static size_t smaps_sum(uintptr_t lo, uintptr_t hi, const char *name)
{
    FILE *f = fopen("/proc/self/smaps", "r");
    if (f == NULL)
        return SIZE_MAX;
    char line[512];
    bool inside = false;
    size_t sum = 0, len = strlen(name);
    while (fgets(line, sizeof line, f) != NULL) {
        unsigned long start, end;
        unsigned long long kib;
        if (sscanf(line, "%lx-%lx ", &start, &end) == 2 && strchr(line, ':') > strchr(line, ' '))
            inside = start >= lo && end <= hi;
        else if (inside && strncmp(line, name, len) == 0 && line[len] == ':' &&
                 sscanf(line + len + 1, "%llu", &kib) == 1)
            sum += (size_t)kib * 1024;
    }
    fclose(f);
    return sum;
}

/* A host arena of `kind`, its defaults plus `add` minus `remove`, asserting success. */
static nalloc_arena *arena_with(nalloc_kind kind, size_t capacity, unsigned add, unsigned remove)
{
    nalloc_arena *a = try_arena(kind, capacity, add, remove, NULL);
    assert_non_null(a);
    return a;
}

typedef struct prefault_goal {
    nalloc_arena *arena;
    size_t bytes; /* prefaulted at least this much */
} prefault_goal;

static bool prefaulted_enough(void *arg)
{
    prefault_goal *g = arg;
    nalloc_stats s;
    return nalloc_arena_stats(g->arena, &s) == NALLOC_OK && s.prefaulted >= g->bytes;
}

static void wait_prefaulted(nalloc_arena *a, size_t bytes)
{
    prefault_goal g = {a, bytes};
    assert_true(wait_for(prefaulted_enough, &g));
}

typedef struct range_goal {
    const void *p;
    size_t size; /* every page of [p, p + size) resident */
} range_goal;

static bool all_resident(void *arg)
{
    range_goal *g = arg;
    return resident_pages(g->p, g->size) == g->size / page_size();
}

/* Is a thread named nalloc-prefault running in this process? */
static bool helper_running(void)
{
    DIR *d = opendir("/proc/self/task");
    if (d == NULL)
        return false;
    bool found = false;
    for (struct dirent *e; !found && (e = readdir(d)) != NULL;) {
        char path[300], name[64] = {0};
        snprintf(path, sizeof path, "/proc/self/task/%s/comm", e->d_name);
        FILE *f = fopen(path, "r");
        if (f == NULL)
            continue;
        found = fgets(name, sizeof name, f) != NULL && strncmp(name, "nalloc-prefault", 15) == 0;
        fclose(f);
    }
    closedir(d);
    return found;
}

/* The transparent huge page size, 2 MiB where sysfs does not say. */
static size_t thp_size(void)
{
    unsigned long long v = 0;
    FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/hpage_pmd_size", "r");
    if (f != NULL) {
        if (fscanf(f, "%llu", &v) != 1)
            v = 0;
        fclose(f);
    }
    return v ? (size_t)v : 2 * MiB;
}

static bool helper_gone(void *unused)
{
    (void)unused;
    return !helper_running();
}

/* ---------------------------------------------------------------------------------------------
 * What the helper faults in
 * ------------------------------------------------------------------------------------------- */

static void test_helper_faults_in_pages_nobody_touched(void **state)
{
    (void)state;
    if (under_valgrind())
        skip();
    const size_t size = 8 * MiB; /* below the 64 MiB default: the whole arena is ahead */
    nalloc_arena *a = arena_with(NALLOC_KIND_SCRATCH, size, NALLOC_FLAG_PREFAULT_AHEAD, 0);
    nalloc_stats s = stats_of(a);
    assert_int_equal(s.missing, 0);
    assert_true(s.requested & NALLOC_FLAG_PREFAULT_AHEAD);
    assert_non_null(nalloc_alloc(a, 64)); /* not written: only the helper touches the arena */
    wait_prefaulted(a, size);
    assert_int_equal(stats_of(a).prefaulted, size); /* and not a byte beyond the capacity */
    assert_int_equal(resident_pages((void *)s.base, size), size / page_size());
    nalloc_stats r;
    assert_int_equal(nalloc_arena_stats_resident(a, &r), NALLOC_OK);
    assert_true(r.resident_known);
    assert_int_equal(r.resident_bytes, size);
    assert_true(r.huge_bytes <= r.resident_bytes);
    assert_int_equal(nalloc_arena_destroy(a), NALLOC_OK);
}

static void test_without_the_flag_nothing_is_faulted_in(void **state)
{
    (void)state;
    if (under_valgrind())
        skip();
    const size_t size = 4 * MiB;
    nalloc_arena *with = arena_with(NALLOC_KIND_SCRATCH, size, NALLOC_FLAG_PREFAULT_AHEAD, 0);
    nalloc_arena *without = arena_with(NALLOC_KIND_SCRATCH, size, 0, 0);
    assert_non_null(nalloc_alloc(with, 64));
    assert_non_null(nalloc_alloc(without, 64));
    /* Once the helper has done the arena that asked, it has had every chance at the other. */
    wait_prefaulted(with, size);
    assert_int_equal(resident_pages((void *)stats_of(without).base, size), 0);
    assert_int_equal(stats_of(without).prefaulted, 0);
    nalloc_arena_destroy(with);
    nalloc_arena_destroy(without);
}

/* Child role: with NALLOC_PREFAULT_AHEAD from the environment, how far ahead does the helper go
 * in a large arena? Waits until it has prefaulted NALLOC_TEST_EXPECT bytes, then prints what it
 * has prefaulted: the helper stops exactly at its target, so a wrong `ahead` shows as a figure
 * that is too high, or (too low) as a wait that never ends. */
static int report_ahead(void)
{
    const char *expect = getenv("NALLOC_TEST_EXPECT");
    nalloc_arena *a = try_arena(NALLOC_KIND_SCRATCH, 512 * MiB, NALLOC_FLAG_PREFAULT_AHEAD, 0,
                                NULL);
    if (expect == NULL || a == NULL || nalloc_alloc(a, 64) == NULL)
        return 2;
    prefault_goal g = {a, strtoull(expect, NULL, 10)};
    if (!wait_for(prefaulted_enough, &g))
        return 3;
    printf("%zu\n", stats_of(a).prefaulted);
    nalloc_arena_destroy(a);
    return 0;
}

/* What report_ahead prints under `setting`, expecting `expect` bytes; *warned: nalloc warned. */
static size_t ahead_with(const char *setting, size_t expect, bool *warned)
{
    char out[] = "/tmp/nalloc-prefault-XXXXXX", err[] = "/tmp/nalloc-prefault-err-XXXXXX";
    int fd = mkstemp(out), efd = mkstemp(err);
    assert_true(fd >= 0 && efd >= 0);
    char expect_setting[64];
    snprintf(expect_setting, sizeof expect_setting, "NALLOC_TEST_EXPECT=%zu", expect);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fd, 1);
        dup2(efd, 2);
        putenv(expect_setting);
        if (setting != NULL)
            putenv((char *)setting);
        execl("/proc/self/exe", "child", "report-ahead", (char *)NULL);
        _exit(127);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    char text[256] = {0}, etext[512] = {0};
    (void)!pread(fd, text, sizeof text - 1, 0);
    (void)!pread(efd, etext, sizeof etext - 1, 0);
    close(fd);
    close(efd);
    unlink(out);
    unlink(err);
    assert_int_equal(child_exit_code(status), 0);
    *warned = strstr(etext, "ignoring NALLOC_PREFAULT_AHEAD") != NULL;
    return strtoull(text, NULL, 10);
}

static void test_ahead_is_the_option_and_bad_values_are_refused(void **state)
{
    (void)state;
    if (under_valgrind())
        skip(); /* re-executes /proc/self/exe */
    bool warned;
    /* One 64-byte block: the target is that block plus `ahead`, in whole pages. */
    const size_t page = page_size(), fallback = 64 * MiB + page;
    assert_int_equal(ahead_with(NULL, fallback, &warned), fallback);
    assert_false(warned);
    assert_int_equal(ahead_with("NALLOC_PREFAULT_AHEAD=8m", 8 * MiB + page, &warned),
                     8 * MiB + page);
    assert_false(warned);
    /* Refused, with a warning, and the default kept: below the minimum (one huge page), zero,
     * not a size. */
    assert_int_equal(ahead_with("NALLOC_PREFAULT_AHEAD=1m", fallback, &warned), fallback);
    assert_true(warned);
    assert_int_equal(ahead_with("NALLOC_PREFAULT_AHEAD=0", fallback, &warned), fallback);
    assert_true(warned);
    assert_int_equal(ahead_with("NALLOC_PREFAULT_AHEAD=lots", fallback, &warned), fallback);
    assert_true(warned);
}

static void test_ahead_grows_with_a_jump_and_skips_the_owners_block(void **state)
{
    (void)state;
    if (under_valgrind())
        skip();
    const size_t size = 1024 * MiB, ahead = 64 * MiB, page = page_size();
    nalloc_arena_config c;
    nalloc_arena_config_init(&c, NALLOC_KIND_SCRATCH, NALLOC_MEMORY_HOST, size);
    c.flags |= NALLOC_FLAG_PREFAULT_AHEAD | NALLOC_FLAG_NORESERVE;
    nalloc_arena *a = make_arena_with(&c);
    assert_non_null(nalloc_alloc(a, 64));
    wait_prefaulted(a, ahead + page); /* so the helper has seen the offset at 64 */
    /* A block larger than `ahead`, at the next page: the helper leaves it to its owner (who never
     * writes it here), and now keeps twice the jump it saw ahead, from the block's end on. */
    const size_t jump = 100 * MiB;
    char *p = nalloc_alloc(a, jump);
    assert_non_null(p);
    nalloc_stats s = stats_of(a);
    assert_ptr_equal(p, (char *)s.base + page);
    const size_t grown = 2 * (page + jump - 64); /* the new `ahead` */
    const size_t expect = ahead + page + (grown + page - 1) / page * page;
    wait_prefaulted(a, expect);
    assert_int_equal(stats_of(a).prefaulted, expect);
    assert_int_equal(resident_pages((char *)s.base + ahead + page, jump - ahead), 0);
    assert_int_equal(resident_pages(p + jump, grown / page * page), grown / page);
    nalloc_arena_destroy(a);
}

static void test_polynomial_arenas_prefault_by_default_and_dry_runs_do_not(void **state)
{
    (void)state;
    nalloc_arena_config c;
    nalloc_arena_config_init(&c, NALLOC_KIND_POLY, NALLOC_MEMORY_HOST, MiB);
    assert_true(c.flags & NALLOC_FLAG_PREFAULT_AHEAD);
    assert_true(c.flags & NALLOC_FLAG_HUGEPAGES);
    nalloc_arena_config_init(&c, NALLOC_KIND_POLY, NALLOC_MEMORY_DEVICE, MiB);
    assert_false(c.flags & NALLOC_FLAG_PREFAULT_AHEAD);
    for (int k = NALLOC_KIND_WITNESS; k < NALLOC_KIND_COUNT; k++) {
        nalloc_arena_config_init(&c, (nalloc_kind)k, NALLOC_MEMORY_HOST, MiB);
        assert_false(c.flags & NALLOC_FLAG_PREFAULT_AHEAD);
    }
    /* A dry run touches only what the workload touches. */
    nalloc_ctx_config dry;
    nalloc_ctx_config_init_dry_run(&dry, NALLOC_MEMORY_HOST, 0);
    for (int k = 0; k < NALLOC_KIND_COUNT; k++)
        assert_false(dry.arenas[k].flags & NALLOC_FLAG_PREFAULT_AHEAD);
}

/* Lanes are arenas of their own to the helper: each is faulted in ahead of its own offset, and the
 * parent's frontier skips the lane block (its lanes' business). */
static void test_lanes_are_prefaulted_ahead_of_their_own_offsets(void **state)
{
    (void)state;
    if (under_valgrind())
        skip();
    const size_t size = 64 * MiB, lane = 8 * MiB;
    nalloc_arena *p = arena_with(NALLOC_KIND_SCRATCH, size, NALLOC_FLAG_PREFAULT_AHEAD, 0);
    nalloc_arena *lanes[2];
    assert_int_equal(nalloc_arena_split(p, 2, lane, lanes), NALLOC_OK);
    nalloc_stats ps = stats_of(p), l0 = stats_of(lanes[0]), l1 = stats_of(lanes[1]);
    assert_int_equal(l0.missing, 0);
    char *x = nalloc_alloc(lanes[0], 4096);
    assert_non_null(x);
    memset(x, 1, 4096);
    wait_prefaulted(lanes[0], lane - 4096); /* its first page is its owner's */
    wait_prefaulted(lanes[1], lane);
    assert_int_equal(resident_pages((void *)l0.base, lane), lane / page_size());
    assert_int_equal(resident_pages((void *)l1.base, lane), lane / page_size());
    /* The parent: everything above the lane block, up to its capacity (and whatever it did of
     * the block before the split, if it got there first). */
    size_t block_end = (size_t)(l1.base + lane - ps.base);
    range_goal above = {(char *)ps.base + block_end, size - block_end};
    assert_true(wait_for(all_resident, &above));
    /* The helper counts a stretch once its fault-in returns: the pages may show before that. */
    wait_prefaulted(p, size - block_end);
    assert_true(stats_of(p).prefaulted <= size);
    assert_int_equal(nalloc_arena_destroy(p), NALLOC_OK); /* its lanes first */
}

/* ---------------------------------------------------------------------------------------------
 * Lifetime: the helper, destroy, fork
 * ------------------------------------------------------------------------------------------- */

static void test_helper_stops_when_no_arena_asks_and_starts_again(void **state)
{
    (void)state;
    if (under_valgrind())
        skip(); /* Valgrind names threads its own way */
    nalloc_arena *a = arena_with(NALLOC_KIND_SCRATCH, 2 * MiB, NALLOC_FLAG_PREFAULT_AHEAD, 0);
    assert_true(helper_running());
    assert_int_equal(nalloc_arena_destroy(a), NALLOC_OK);
    assert_true(wait_for(helper_gone, NULL));
    a = arena_with(NALLOC_KIND_SCRATCH, 2 * MiB, NALLOC_FLAG_PREFAULT_AHEAD, 0);
    assert_true(helper_running());
    nalloc_arena_destroy(a);
    assert_true(wait_for(helper_gone, NULL));
}

/* Many arenas created and destroyed while the helper faults them in: destroy must wait for the
 * helper to leave the arena's memory before unmapping it. ThreadSanitizer (scripts/test.sh tsan)
 * reports the helper reading a header being reused; here, every arena must come out intact. */
typedef struct churn {
    unsigned rounds;
    unsigned failures;
} churn;

static void *churn_arenas(void *arg)
{
    churn *c = arg;
    for (unsigned i = 0; i < c->rounds; i++) {
        nalloc_arena *a = try_arena(i % 2 ? NALLOC_KIND_POLY : NALLOC_KIND_SCRATCH,
                                    (size_t)(1 + i % 7) * MiB, NALLOC_FLAG_PREFAULT_AHEAD, 0, NULL);
        if (a == NULL) {
            c->failures++;
            continue;
        }
        char *p = nalloc_alloc(a, 4096 * (1 + i % 5));
        if (p == NULL) {
            c->failures++;
        } else {
            memset(p, 0xa5, 4096);
            if (p[4095] != (char)0xa5) /* the helper never changes what a thread wrote */
                c->failures++;
        }
        /* Destroy at once, or after the helper had its chance: both orders, over the rounds. */
        if (i % 3 == 0)
            sched_yield();
        if (nalloc_arena_destroy(a) != NALLOC_OK)
            c->failures++;
    }
    return NULL;
}

static void test_destroy_waits_for_the_helper_to_leave_the_arena(void **state)
{
    (void)state;
    enum { THREADS = 3 };
    pthread_t threads[THREADS];
    churn work[THREADS];
    /* A long-lived arena keeps the helper busy throughout (and alive between the churners'). */
    nalloc_arena *keep = arena_with(NALLOC_KIND_SCRATCH, 256 * MiB, NALLOC_FLAG_PREFAULT_AHEAD, 0);
    for (int t = 0; t < THREADS; t++) {
        work[t] = (churn){under_valgrind() ? 20 : 200, 0};
        assert_int_equal(pthread_create(&threads[t], NULL, churn_arenas, &work[t]), 0);
    }
    for (int t = 0; t < THREADS; t++) {
        assert_int_equal(pthread_join(threads[t], NULL), 0);
        assert_int_equal(work[t].failures, 0);
    }
    nalloc_stats s = stats_of(keep);
    assert_int_equal(s.missing, 0); /* the helper never gave up on it */
    assert_int_equal(nalloc_arena_destroy(keep), NALLOC_OK);
}

/* In the child: the inherited arena is not prefaulted there (reported missing) but works; a new
 * arena starts a helper in the child, which faults it in. */
static void child_after_fork_with_helper(void *arg)
{
    nalloc_arena *inherited = arg;
    nalloc_stats s;
    CHILD_CHECK(nalloc_arena_stats(inherited, &s) == NALLOC_OK);
    CHILD_CHECK(s.missing == NALLOC_FLAG_PREFAULT_AHEAD);
    char *p = nalloc_alloc(inherited, MiB);
    CHILD_CHECK(p != NULL);
    memset(p, 1, MiB);
    if (THREADS_AFTER_FORK_UNSUPPORTED)
        _exit(nalloc_arena_destroy(inherited) == NALLOC_OK ? 0 : 1);
    const size_t size = 4 * MiB;
    nalloc_arena *fresh = try_arena(NALLOC_KIND_SCRATCH, size, NALLOC_FLAG_PREFAULT_AHEAD, 0, NULL);
    CHILD_CHECK(fresh != NULL);
    CHILD_CHECK(stats_of(fresh).missing == 0);
    CHILD_CHECK(nalloc_alloc(fresh, 64) != NULL);
    prefault_goal g = {fresh, size};
    CHILD_CHECK(wait_for(prefaulted_enough, &g));
    if (!under_valgrind())
        CHILD_CHECK(resident_pages((void *)stats_of(fresh).base, size) == size / page_size());
    CHILD_CHECK(nalloc_arena_destroy(fresh) == NALLOC_OK);
    CHILD_CHECK(nalloc_arena_destroy(inherited) == NALLOC_OK);
}

static void test_fork_while_the_helper_runs(void **state)
{
    (void)state;
    /* Big enough that the helper is still at work when we fork. */
    nalloc_arena *a = arena_with(NALLOC_KIND_POLY, 512 * MiB, NALLOC_FLAG_PREFAULT_AHEAD, 0);
    assert_non_null(nalloc_alloc(a, 64));
    for (int i = 0; i < 3; i++)
        assert_int_equal(child_exit_code(run_in_child(child_after_fork_with_helper, a)), 0);
    /* The parent's helper carries on. */
    wait_prefaulted(a, 64 * MiB);
    assert_int_equal(stats_of(a).missing, 0);
    assert_int_equal(nalloc_arena_destroy(a), NALLOC_OK);
}

/* ---------------------------------------------------------------------------------------------
 * The protections stay in force
 * ------------------------------------------------------------------------------------------- */

static void test_witness_pages_faulted_in_by_the_helper_are_locked(void **state)
{
    (void)state;
    if (under_valgrind())
        skip();
    const size_t size = 2 * MiB; /* within the default RLIMIT_MEMLOCK of 8 MiB */
    nalloc_arena *w = arena_with(NALLOC_KIND_WITNESS, size, NALLOC_FLAG_PREFAULT_AHEAD, 0);
    nalloc_stats s = stats_of(w);
    if (!s.locked) { /* RLIMIT_MEMLOCK too low here: nothing to check */
        nalloc_arena_destroy(w);
        skip();
    }
    assert_int_equal(s.missing, 0);
    char *p = nalloc_alloc(w, 4096);
    assert_non_null(p);
    memset(p, 0x5a, 4096);
    wait_prefaulted(w, size - 4096); /* the first page is the block's, which its owner wrote */
    assert_int_equal(resident_pages((void *)s.base, size), size / page_size());
    /* Every resident page is locked: mlock2(MLOCK_ONFAULT) covers pages the helper faulted. */
    assert_int_equal(smaps_sum(s.base, s.base + size, "Locked"), size);
    assert_int_equal(smaps_sum(s.base, s.base + size, "Rss"), size);
    /* The wipe still covers what was written, and the helper changed none of it. */
    assert_int_equal((unsigned char)p[4095], 0x5a);
    assert_int_equal(nalloc_wipe(w), NALLOC_OK);
    assert_int_equal((unsigned char)peek_released(p, 0), 0);
    assert_int_equal(nalloc_arena_destroy(w), NALLOC_OK);
}

static void test_secret_arena_works_and_reports_prefault_missing(void **state)
{
    (void)state;
    nalloc_arena *w = arena_with(NALLOC_KIND_WITNESS, MiB,
                                 NALLOC_FLAG_SECRET | NALLOC_FLAG_PREFAULT_AHEAD, 0);
    nalloc_stats s = stats_of(w);
    if (!s.secret) { /* no memfd_secret here: an ordinary witness arena, prefaulted */
        assert_int_equal(s.missing, NALLOC_FLAG_SECRET);
        nalloc_arena_destroy(w);
        skip();
    }
    /* memfd_secret mappings refuse MADV_POPULATE_WRITE: the flag is missing, the arena fine. */
    assert_int_equal(s.missing, NALLOC_FLAG_PREFAULT_AHEAD);
    assert_true(s.locked && s.no_dump && s.wipe_on_fork);
    char *p = nalloc_alloc(w, 4096);
    assert_non_null(p);
    memset(p, 0x77, 4096);
    assert_int_equal(nalloc_wipe(w), NALLOC_OK);
    assert_int_equal((unsigned char)peek_released(p, 100), 0);
    assert_int_equal(nalloc_arena_destroy(w), NALLOC_OK);
    /* With STRICT, the missing flag fails creation instead. */
    nalloc_arena_config c;
    nalloc_arena_config_init(&c, NALLOC_KIND_WITNESS, NALLOC_MEMORY_HOST, MiB);
    c.flags |= NALLOC_FLAG_SECRET | NALLOC_FLAG_PREFAULT_AHEAD | NALLOC_FLAG_STRICT;
    nalloc_arena *strict = NULL;
    assert_int_equal(nalloc_arena_create(&c, &strict), NALLOC_ERR_UNSUPPORTED);
    assert_null(strict);
}

static void test_populated_arena_needs_no_helper(void **state)
{
    (void)state;
    nalloc_arena *a = arena_with(NALLOC_KIND_SCRATCH, 4 * MiB,
                                 NALLOC_FLAG_PREFAULT_AHEAD | NALLOC_FLAG_POPULATE, 0);
    nalloc_stats s = stats_of(a);
    assert_int_equal(s.missing, 0); /* every page is resident: prefaulting ahead is moot */
    assert_true(s.populated);
    assert_int_equal(s.prefaulted, 0);
    nalloc_arena_destroy(a);
}

/* ---------------------------------------------------------------------------------------------
 * Huge pages and the kernel's figures
 * ------------------------------------------------------------------------------------------- */

static void test_resident_figures_come_from_the_kernel(void **state)
{
    (void)state;
    if (under_valgrind())
        skip();
    /* No helper: what the kernel reports is exactly what we touched. */
    nalloc_arena *a = arena_with(NALLOC_KIND_SCRATCH, 8 * MiB, 0, NALLOC_FLAG_HUGEPAGES);
    char *p = nalloc_alloc(a, 3 * MiB);
    assert_non_null(p);
    memset(p, 1, 3 * MiB);
    nalloc_stats s;
    assert_int_equal(nalloc_arena_stats_resident(a, &s), NALLOC_OK);
    assert_true(s.resident_known);
    assert_int_equal(s.resident_bytes, resident_pages((void *)s.base, 8 * MiB) * page_size());
    assert_true(s.resident_bytes >= 3 * MiB);
    assert_int_equal(s.huge_bytes, smaps_sum(s.base, s.base + 8 * MiB, "AnonHugePages"));
    /* The plain call leaves them out. */
    assert_false(stats_of(a).resident_known);
    assert_int_equal(stats_of(a).resident_bytes, 0);
    /* A lane's memory is a slice of its parent's mapping: the kernel cannot say. */
    nalloc_arena *lanes[2];
    assert_int_equal(nalloc_arena_split(a, 2, MiB, lanes), NALLOC_OK);
    assert_int_equal(nalloc_arena_stats_resident(lanes[0], &s), NALLOC_OK);
    assert_false(s.resident_known);
    assert_int_equal(nalloc_arena_stats_resident(NULL, &s), NALLOC_ERR_INVALID);
    assert_int_equal(nalloc_arena_stats_resident(a, NULL), NALLOC_ERR_INVALID);
    nalloc_arena_destroy(a);
}

static void test_huge_pages_come_from_the_helper(void **state)
{
    (void)state;
    if (under_valgrind())
        skip();
    const size_t size = 32 * MiB;
    nalloc_arena *a = arena_with(NALLOC_KIND_POLY, size, NALLOC_FLAG_PREFAULT_AHEAD, 0);
    nalloc_stats s = stats_of(a);
    assert_true(s.requested & NALLOC_FLAG_HUGEPAGES);
    assert_non_null(nalloc_alloc(a, 64));
    wait_prefaulted(a, size);
    assert_int_equal(nalloc_arena_stats_resident(a, &s), NALLOC_OK);
    assert_true(s.resident_known);
    assert_int_equal(s.resident_bytes, size);
    /* How many are huge is the kernel's to decide (free memory, THP settings): the figure is
     * whole huge pages, and what smaps says. */
    assert_true(s.huge_bytes <= s.resident_bytes);
    assert_int_equal(s.huge_bytes % thp_size(), 0);
    print_message("      %zu of %zu bytes in huge pages (THP and free memory permitting)\n",
                  s.huge_bytes, s.resident_bytes);
    char buf[2048] = {0};
    FILE *f = fmemopen(buf, sizeof buf - 1, "w");
    assert_non_null(f);
    assert_int_equal(nalloc_arena_print_stats(a, f), NALLOC_OK);
    fclose(f);
    assert_non_null(strstr(buf, "prefault-ahead"));
    assert_non_null(strstr(buf, "prefaulted 33554432 bytes ahead"));
    assert_non_null(strstr(buf, "resident 33554432 bytes"));
    nalloc_arena_destroy(a);
}

/* A thread that outruns the helper faults its own pages; the helper leaves them alone and the
 * data stays as written, whatever the interleaving. */
static void test_writers_and_the_helper_share_the_pages(void **state)
{
    (void)state;
    const size_t size = 64 * MiB;
    nalloc_arena *a = arena_with(NALLOC_KIND_POLY, size, NALLOC_FLAG_PREFAULT_AHEAD, 0);
    uint64_t seed = 42;
    char *blocks[16];
    size_t sizes[16];
    for (int i = 0; i < 16; i++) {
        sizes[i] = (size_t)(test_rand(&seed) % (3 * MiB)) + 8;
        sizes[i] &= ~(size_t)7;
        blocks[i] = nalloc_alloc(a, sizes[i]);
        assert_non_null(blocks[i]);
        child_fill_pattern(blocks[i], sizes[i], (uint64_t)i + 1);
    }
    wait_prefaulted(a, 1); /* the helper has been at work meanwhile */
    for (int i = 0; i < 16; i++) {
        uint64_t s = (uint64_t)i + 1;
        const uint64_t *w = (const uint64_t *)blocks[i];
        for (size_t k = 0; k < sizes[i] / 8; k++)
            if (w[k] != test_rand(&s))
                fail_msg("block %d word %zu changed", i, k);
    }
    nalloc_arena_destroy(a);
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "report-ahead") == 0)
        return report_ahead();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_helper_faults_in_pages_nobody_touched),
        cmocka_unit_test(test_without_the_flag_nothing_is_faulted_in),
        cmocka_unit_test(test_ahead_is_the_option_and_bad_values_are_refused),
        cmocka_unit_test(test_ahead_grows_with_a_jump_and_skips_the_owners_block),
        cmocka_unit_test(test_polynomial_arenas_prefault_by_default_and_dry_runs_do_not),
        cmocka_unit_test(test_lanes_are_prefaulted_ahead_of_their_own_offsets),
        cmocka_unit_test(test_helper_stops_when_no_arena_asks_and_starts_again),
        cmocka_unit_test(test_destroy_waits_for_the_helper_to_leave_the_arena),
        cmocka_unit_test(test_fork_while_the_helper_runs),
        cmocka_unit_test(test_witness_pages_faulted_in_by_the_helper_are_locked),
        cmocka_unit_test(test_secret_arena_works_and_reports_prefault_missing),
        cmocka_unit_test(test_populated_arena_needs_no_helper),
        cmocka_unit_test(test_resident_figures_come_from_the_kernel),
        cmocka_unit_test(test_huge_pages_come_from_the_helper),
        cmocka_unit_test(test_writers_and_the_helper_share_the_pages),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
