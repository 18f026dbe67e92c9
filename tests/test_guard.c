/* tests/test_guard.c - guard pages: a write one byte before an arena's base, or one byte past its
 * capacity, kills the writer with SIGSEGV (checked in a forked child); the first and last usable
 * bytes are fine. For small, page-sized and huge-page-aligned arenas, and custom guard sizes. */
#include "testutil.h"

typedef struct probe {
    size_t capacity;  /* a multiple of the page size, so the guard is adjacent to the end */
    size_t guard;     /* config.guard_size, 0 for the default */
    ptrdiff_t offset; /* where to write, relative to the base */
} probe;

static void write_at(void *arg)
{
    const probe *pr = arg;
    nalloc_arena_config c;
    nalloc_arena_config_init(&c, NALLOC_KIND_SCRATCH, NALLOC_MEMORY_HOST, pr->capacity);
    c.guard_size = pr->guard;
    nalloc_arena *a;
    if (nalloc_arena_create(&c, &a) != NALLOC_OK)
        _exit(2);
    /* The whole capacity, so the probes inside it stay inside a block (memory checkers). */
    volatile char *base = nalloc_alloc_aligned(a, pr->capacity, 1);
    if (base == NULL)
        _exit(3);
    base[pr->offset] = 1;
    _exit(0);
}

static int write_in_child(size_t capacity, size_t guard, ptrdiff_t offset)
{
    probe pr = {capacity, guard, offset};
    return run_in_child(write_at, &pr);
}

static void check_guards(size_t capacity, size_t guard)
{
    ptrdiff_t cap = (ptrdiff_t)capacity;
    assert_true(exited_ok(write_in_child(capacity, guard, 0)));
    assert_true(exited_ok(write_in_child(capacity, guard, cap - 1)));
    assert_true(killed_by(write_in_child(capacity, guard, -1), SIGSEGV));
    assert_true(killed_by(write_in_child(capacity, guard, cap), SIGSEGV));
    if (guard > 4096) { /* the far end of a larger guard is still guarded */
        assert_true(killed_by(write_in_child(capacity, guard, -(ptrdiff_t)guard), SIGSEGV));
        assert_true(killed_by(write_in_child(capacity, guard, cap + (ptrdiff_t)guard - 1), SIGSEGV));
    }
}

static void test_small_arena_is_guarded_on_both_sides(void **state)
{
    (void)state;
    check_guards(4096, 0);
    check_guards(64 * KiB, 0);
}

static void test_huge_page_aligned_arena_is_guarded_on_both_sides(void **state)
{
    (void)state;
    check_guards(4 * MiB, 0);
}

static void test_larger_guards_cover_their_whole_size(void **state)
{
    (void)state;
    check_guards(64 * KiB, 64 * KiB);
}

static void test_stats_report_the_guards(void **state)
{
    (void)state;
    nalloc_arena *a = make_arena(NALLOC_KIND_SCRATCH, 10000);
    nalloc_stats s = stats_of(a);
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    assert_true(s.guard_pages);
    assert_int_equal(s.guard_size, page);
    assert_int_equal(s.capacity, 10000);
    assert_int_equal(s.reserved, 3 * page + 2 * page); /* 10000 rounds up to 3 pages */
    nalloc_arena_destroy(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_small_arena_is_guarded_on_both_sides),
        cmocka_unit_test(test_huge_page_aligned_arena_is_guarded_on_both_sides),
        cmocka_unit_test(test_larger_guards_cover_their_whole_size),
        cmocka_unit_test(test_stats_report_the_guards),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
