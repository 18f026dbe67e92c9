/* tests/test_track_report.c - memory checkers report bad accesses inside an arena.
 *
 * An arena is one mapping to AddressSanitizer and Valgrind unless nalloc tells them which parts
 * are blocks (src/track.h). Each probe here runs in a forked child, like an independent client of
 * the library: a read past a block into space nobody was handed, a read after reset, rollback,
 * free_last, a shrinking resize_last or a wipe, an overflow into the next block's redzone. Under
 * AddressSanitizer the child dies with a "use-after-poison" report on its stderr, which the parent
 * reads; under Valgrind (a build with NALLOC_VALGRIND, run under valgrind) the child counts
 * Memcheck's errors before and after the probe and sends the difference up a pipe. In-bounds use,
 * however busy, is reported by neither. Without a checker there is nothing to observe: exit 77.
 */
#include "testutil.h"

#include <errno.h>
#include <sys/mman.h>

#if defined(NALLOC_VALGRIND) && NALLOC_VALGRIND
#include <valgrind/memcheck.h>
#define ERRORS_SO_FAR() ((long)VALGRIND_COUNT_ERRORS)
#else
#define ERRORS_SO_FAR() 0L
#endif

static unsigned checker; /* NALLOC_CHECKER_ASAN or NALLOC_CHECKER_VALGRIND */
static volatile unsigned char sink;

static nalloc_arena *arena(size_t capacity, size_t redzone)
{
    nalloc_arena_config c;
    nalloc_arena_config_init(&c, NALLOC_KIND_SCRATCH, NALLOC_MEMORY_HOST, capacity);
    c.redzone = redzone;
    c.flags |= NALLOC_FLAG_NORESERVE;
    nalloc_arena *a = NULL;
    if (nalloc_arena_create(&c, &a) != NALLOC_OK)
        _exit(2); /* in the child: the parent sees an unexpected status */
    return a;
}

static unsigned char *filled(unsigned char *p, size_t n)
{
    if (p == NULL)
        _exit(3);
    memset(p, 0x5c, n);
    return p;
}

/* What a child did: its wait status, its stderr, and the Memcheck errors its probe caused. */
typedef struct outcome {
    int status;
    long errors;
    char text[16384];
} outcome;

static void run_probe(void (*probe)(void), outcome *out)
{
    int err_pipe[2], count_pipe[2];
    assert_int_equal(pipe(err_pipe), 0);
    assert_int_equal(pipe(count_pipe), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(err_pipe[0]);
        close(count_pipe[0]);
        dup2(err_pipe[1], STDERR_FILENO);
        long before = ERRORS_SO_FAR();
        probe();
        long caused = ERRORS_SO_FAR() - before;
        ssize_t n = write(count_pipe[1], &caused, sizeof caused);
        _exit(n == (ssize_t)sizeof caused ? 0 : 4);
    }
    close(err_pipe[1]);
    close(count_pipe[1]);
    size_t used = 0;
    for (;;) {
        ssize_t n = read(err_pipe[0], out->text + used, sizeof out->text - 1 - used);
        if (n > 0 && used + (size_t)n < sizeof out->text - 1)
            used += (size_t)n;
        else if (n == 0 || (n < 0 && errno != EINTR))
            break;
    }
    out->text[used] = '\0';
    out->errors = -1;
    if (read(count_pipe[0], &out->errors, sizeof out->errors) != (ssize_t)sizeof out->errors)
        out->errors = -1; /* the child died before it could say */
    close(err_pipe[0]);
    close(count_pipe[0]);
    assert_int_equal(waitpid(pid, &out->status, 0), pid);
}

static void expect_reported(void (*probe)(void))
{
    static outcome o;
    run_probe(probe, &o);
    if (checker == NALLOC_CHECKER_ASAN) {
        if (strstr(o.text, "AddressSanitizer: use-after-poison") == NULL ||
            strstr(o.text, "READ of size 1") == NULL)
            fail_msg("no ASan report; child status %d, stderr:\n%s", o.status, o.text);
        assert_false(exited_ok(o.status));
    } else {
        if (o.errors < 1)
            fail_msg("Memcheck counted %ld errors (status %d)", o.errors, o.status);
    }
}

static void expect_clean(void (*probe)(void))
{
    static outcome o;
    run_probe(probe, &o);
    if (!exited_ok(o.status) || o.errors != 0 || strstr(o.text, "AddressSanitizer") != NULL)
        fail_msg("in-bounds use reported: status %d, %ld errors, stderr:\n%s", o.status, o.errors,
                 o.text);
}

/* ---- Probes: each runs in a fresh child ---- */

static void read_just_past_a_block(void)
{
    nalloc_arena *a = arena(MiB, 0);
    unsigned char *p = filled(nalloc_alloc(a, 100), 100);
    sink = p[100];
}

static void read_far_past_the_last_block(void)
{
    nalloc_arena *a = arena(MiB, 0);
    unsigned char *p = filled(nalloc_alloc(a, 100), 100);
    sink = p[70000];
}

static void read_past_a_block_beyond_the_first_poisoned_step(void)
{
    nalloc_arena *a = arena(64 * MiB, 0);
    if (nalloc_alloc(a, 10 * MiB) == NULL) /* never touched */
        _exit(5);
    unsigned char *p = filled(nalloc_alloc(a, 100), 100);
    sink = p[100];
}

static void read_after_reset(void)
{
    nalloc_arena *a = arena(MiB, 0);
    unsigned char *p = filled(nalloc_alloc(a, 64), 64);
    if (nalloc_reset(a) != NALLOC_OK)
        _exit(5);
    sink = p[0];
}

static void read_after_rollback(void)
{
    nalloc_arena *a = arena(MiB, 0);
    (void)filled(nalloc_alloc(a, 64), 64);
    nalloc_mark m = nalloc_mark_get(a);
    unsigned char *p = filled(nalloc_alloc(a, 64), 64);
    if (nalloc_rollback(a, m) != NALLOC_OK)
        _exit(5);
    sink = p[10];
}

static void read_after_free_last(void)
{
    nalloc_arena *a = arena(MiB, 0);
    unsigned char *p = filled(nalloc_alloc(a, 256), 256);
    if (nalloc_free_last(a, p, 256) != NALLOC_OK)
        _exit(5);
    sink = p[255];
}

static void read_past_a_shrunk_block(void)
{
    nalloc_arena *a = arena(MiB, 0);
    unsigned char *p = filled(nalloc_alloc(a, 100), 100);
    if (nalloc_resize_last(a, p, 100, 10) != NALLOC_OK)
        _exit(5);
    sink = p[10];
}

static void read_after_wipe(void)
{
    nalloc_arena *a = arena(MiB, 0);
    unsigned char *p = filled(nalloc_alloc(a, 4096), 4096);
    if (nalloc_wipe(a) != NALLOC_OK)
        _exit(5);
    sink = p[4095];
}

static void overflow_into_the_next_block_hits_its_redzone(void)
{
    nalloc_arena *a = arena(MiB, 16);
    unsigned char *p = filled(nalloc_alloc_aligned(a, 16, 8), 16);
    (void)filled(nalloc_alloc_aligned(a, 16, 8), 16);
    sink = p[16];
}

/* Without a redzone the byte after p is q's first: in bounds of q, so nothing to report. This is
 * the limit redzones exist for. */
static void overflow_into_an_adjacent_block_without_redzone(void)
{
    nalloc_arena *a = arena(MiB, 0);
    unsigned char *p = filled(nalloc_alloc_aligned(a, 16, 8), 16);
    unsigned char *q = filled(nalloc_alloc_aligned(a, 16, 8), 16);
    if (q != p + 16)
        _exit(6);
    sink = p[16];
}

static void touch(unsigned char *p, size_t n)
{
    memset(p, 0x3c, n);
    for (size_t i = 0; i < n; i++)
        sink = p[i];
}

static void busy_in_bounds_use(void)
{
    nalloc_arena *a = arena(64 * MiB, 8);
    for (int round = 0; round < 3; round++) {
        nalloc_mark m = nalloc_mark_get(a);
        unsigned char *kept = nalloc_alloc_aligned(a, 33, 1);
        touch(kept, 33);
        nalloc_mark inner = nalloc_mark_get(a);
        for (size_t size = 1; size < 5000; size = size * 3 + 1)
            touch(nalloc_alloc_aligned(a, size, 1), size);
        unsigned char *big = nalloc_alloc(a, 5 * MiB); /* crosses the first poisoned step */
        touch(big + 5 * MiB - 4096, 4096);
        if (nalloc_rollback(a, inner) != NALLOC_OK)
            _exit(5);
        touch(kept, 33);
        unsigned char *r = nalloc_alloc(a, 100);
        touch(r, 100);
        if (nalloc_resize_last(a, r, 100, 1000) != NALLOC_OK)
            _exit(5);
        touch(r, 1000);
        r = nalloc_realloc(a, r, 1000, 3000, 0);
        touch(r, 3000);
        unsigned char *z = nalloc_alloc_zeroed(a, 100, 10, 0);
        for (size_t i = 0; i < 1000; i++)
            if (z[i] != 0)
                _exit(7);
        unsigned char *moved = nalloc_realloc(a, r, 3000, 4000, 0); /* r is not last: copied */
        touch(moved, 4000);
        if (nalloc_rollback(a, m) != NALLOC_OK)
            _exit(5);
        if (round == 1 && nalloc_wipe(a) != NALLOC_OK)
            _exit(5);
        if (round == 2)
            if (nalloc_reset(a) != NALLOC_OK)
                _exit(5);
    }
    if (nalloc_arena_destroy(a) != NALLOC_OK)
        _exit(5);
}

/* ASan keeps poison after munmap; a destroyed arena must leave none for the next mapping there. */
static void reuse_the_addresses_of_a_destroyed_arena(void)
{
    nalloc_arena *a = arena(MiB, 0);
    nalloc_stats s;
    if (nalloc_arena_stats(a, &s) != NALLOC_OK)
        _exit(5);
    (void)filled(nalloc_alloc(a, 1000), 1000);
    if (nalloc_reset(a) != NALLOC_OK)
        _exit(5);
    if (nalloc_arena_destroy(a) != NALLOC_OK)
        _exit(5);
    unsigned char *again = mmap((void *)s.base, MiB, PROT_READ | PROT_WRITE,
                                MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (again != (unsigned char *)s.base)
        _exit(0); /* the kernel put something there first: nothing to check */
    for (size_t i = 0; i < MiB; i += 8)
        sink = again[i];
}

/* ---- Tests ---- */

static void test_a_read_just_past_a_block_is_reported(void **state)
{
    (void)state;
    expect_reported(read_just_past_a_block);
    expect_reported(read_far_past_the_last_block);
    expect_reported(read_past_a_block_beyond_the_first_poisoned_step);
}

static void test_a_read_after_reset_is_reported(void **state)
{
    (void)state;
    expect_reported(read_after_reset);
}

static void test_a_read_after_rollback_is_reported(void **state)
{
    (void)state;
    expect_reported(read_after_rollback);
}

static void test_a_read_of_a_freed_or_shrunk_last_block_is_reported(void **state)
{
    (void)state;
    expect_reported(read_after_free_last);
    expect_reported(read_past_a_shrunk_block);
}

static void test_a_read_after_wipe_is_reported(void **state)
{
    (void)state;
    expect_reported(read_after_wipe);
}

static void test_a_redzone_catches_an_overflow_into_the_next_block(void **state)
{
    (void)state;
    expect_reported(overflow_into_the_next_block_hits_its_redzone);
    expect_clean(overflow_into_an_adjacent_block_without_redzone);
}

static void test_in_bounds_use_is_not_reported(void **state)
{
    (void)state;
    expect_clean(busy_in_bounds_use);
}

static void test_a_destroyed_arena_leaves_no_poison_behind(void **state)
{
    (void)state;
    expect_clean(reuse_the_addresses_of_a_destroyed_arena);
}

int main(void)
{
    nalloc_arena_config c;
    nalloc_arena_config_init(&c, NALLOC_KIND_SCRATCH, NALLOC_MEMORY_HOST, 4096);
    nalloc_arena *a;
    nalloc_stats s;
    if (nalloc_arena_create(&c, &a) != NALLOC_OK || nalloc_arena_stats(a, &s) != NALLOC_OK)
        return 1;
    nalloc_arena_destroy(a);
#if defined(__SANITIZE_ADDRESS__)
    if (!(s.checkers & NALLOC_CHECKER_ASAN)) {
        fprintf(stderr, "built with AddressSanitizer, but the library does not poison\n");
        return 1;
    }
#endif
#if defined(NALLOC_VALGRIND) && NALLOC_VALGRIND
    if (RUNNING_ON_VALGRIND && !(s.checkers & NALLOC_CHECKER_VALGRIND)) {
        fprintf(stderr, "running under Valgrind, but the library does not describe arenas\n");
        return 1;
    }
#endif
    checker = s.checkers & NALLOC_CHECKER_ASAN       ? NALLOC_CHECKER_ASAN
              : s.checkers & NALLOC_CHECKER_VALGRIND ? NALLOC_CHECKER_VALGRIND
                                                     : 0;
    if (checker == 0) {
        printf("no memory checker watches arenas in this build: skipped\n");
        return 77;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_read_just_past_a_block_is_reported),
        cmocka_unit_test(test_a_read_after_reset_is_reported),
        cmocka_unit_test(test_a_read_after_rollback_is_reported),
        cmocka_unit_test(test_a_read_of_a_freed_or_shrunk_last_block_is_reported),
        cmocka_unit_test(test_a_read_after_wipe_is_reported),
        cmocka_unit_test(test_a_redzone_catches_an_overflow_into_the_next_block),
        cmocka_unit_test(test_in_bounds_use_is_not_reported),
        cmocka_unit_test(test_a_destroyed_arena_leaves_no_poison_behind),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
