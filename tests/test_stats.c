/* tests/test_stats.c - statistics that add up: used = requested + padding, counts of
 * allocations and failures, the high-water mark across rollbacks, the layout digest, the printed
 * report, prefaulting (POPULATE) observed through page residency, and options from the
 * environment. */
#include "testutil.h"

#include <stdio.h>
#include <sys/mman.h>

static void test_used_is_requested_plus_padding(void **state)
{
    (void)state;
    nalloc_arena *a = make_arena(NALLOC_KIND_SCRATCH, 4 * MiB);
    uint64_t rng = 42;
    size_t requested = 0, ok = 0, failed = 0;
    for (int i = 0; i < 3000; i++) {
        size_t size = (size_t)(test_rand(&rng) % 5000); /* zero sizes fail: counted too */
        if (nalloc_alloc(a, size)) {
            requested += size;
            ok++;
        } else {
            failed++;
        }
    }
    nalloc_stats s = stats_of(a);
    assert_int_equal(s.allocations, ok);
    assert_int_equal(s.failures, failed);
    assert_int_equal(s.used, requested + s.padding);
    assert_int_equal(s.high_water, s.used);
    assert_int_equal(s.version, NALLOC_STATS_VERSION);
    assert_int_equal(s.struct_size, sizeof s);
    assert_int_equal(s.kind, NALLOC_KIND_SCRATCH);
    assert_int_equal(s.memory, NALLOC_MEMORY_HOST);
    assert_string_equal(s.name, "scratch");
    assert_int_equal(s.capacity, 4 * MiB);
    nalloc_arena_destroy(a);
}

static void test_high_water_survives_rollback_and_reset(void **state)
{
    (void)state;
    nalloc_arena *a = make_arena(NALLOC_KIND_SCRATCH, MiB);
    nalloc_mark m = nalloc_mark_get(a);
    assert_non_null(nalloc_alloc(a, 300000));
    assert_int_equal(nalloc_rollback(a, m), NALLOC_OK);
    assert_non_null(nalloc_alloc(a, 1000));
    nalloc_stats s = stats_of(a);
    assert_int_equal(s.high_water, 300000);
    assert_int_equal(s.used, 1000);
    assert_int_equal(nalloc_reset(a), NALLOC_OK);
    assert_non_null(nalloc_alloc(a, 500000));
    assert_int_equal(stats_of(a).high_water, 500000);
    assert_int_equal(stats_of(a).rollbacks, 1);
    assert_int_equal(stats_of(a).resets, 1);
    nalloc_arena_destroy(a);
}

static uint64_t digest_of_sequence(size_t capacity, uint64_t seed, int count)
{
    nalloc_arena *a = make_arena(NALLOC_KIND_SCRATCH, capacity);
    for (int i = 0; i < count; i++) {
        uint64_t r = test_rand(&seed);
        void *p = nalloc_alloc_aligned(a, 1 + (size_t)(r % 3000), (size_t)1 << (r >> 60));
        (void)p; /* a failure (none is expected) is part of the layout too */
    }
    uint64_t d = stats_of(a).layout_digest;
    nalloc_arena_destroy(a);
    return d;
}

static void test_layout_digest_depends_on_the_layout_only(void **state)
{
    (void)state;
    uint64_t d1 = digest_of_sequence(4 * MiB, 9, 500);
    uint64_t d2 = digest_of_sequence(4 * MiB, 9, 500); /* another mapping, same requests */
    uint64_t d3 = digest_of_sequence(4 * MiB, 10, 500);
    uint64_t d4 = digest_of_sequence(4 * MiB, 9, 499);
    assert_int_not_equal(d1, 0);
    assert_true(d1 == d2);
    assert_true(d1 != d3);
    assert_true(d1 != d4);
}

static void test_print_stats_reports_the_arena(void **state)
{
    (void)state;
    nalloc_arena_config c;
    nalloc_arena_config_init(&c, NALLOC_KIND_POLY, NALLOC_MEMORY_HOST, MiB);
    c.name = "columns";
    nalloc_arena *a = make_arena_with(&c);
    assert_non_null(nalloc_alloc(a, 100));
    assert_null(nalloc_alloc(a, 0));
    char buf[1024] = {0};
    FILE *f = fmemopen(buf, sizeof buf - 1, "w");
    assert_non_null(f);
    assert_int_equal(nalloc_arena_print_stats(a, f), NALLOC_OK);
    fclose(f);
    assert_non_null(strstr(buf, "arena 'columns' (poly, host)"));
    assert_non_null(strstr(buf, "allocations 1  failures 1"));
    assert_non_null(strstr(buf, "guard-pages"));
    assert_string_equal(stats_of(a).name, "columns");
    nalloc_arena_destroy(a);
}

/* How many of the pages in [p, p + size) are resident (mincore), independent of any faults a
 * sanitizer's shadow memory takes. */
static size_t resident_pages(void *p, size_t size)
{
    size_t pages = size / 4096;
    unsigned char *vec = malloc(pages);
    assert_non_null(vec);
    assert_int_equal(mincore(p, size, vec), 0);
    size_t n = 0;
    for (size_t i = 0; i < pages; i++)
        n += vec[i] & 1;
    free(vec);
    return n;
}

static void test_populate_prefaults_every_page(void **state)
{
    (void)state;
    const size_t size = 16 * MiB;
    nalloc_arena_config c;
    nalloc_arena_config_init(&c, NALLOC_KIND_SCRATCH, NALLOC_MEMORY_HOST, size);
    nalloc_arena *lazy = make_arena_with(&c);
    c.flags |= NALLOC_FLAG_POPULATE;
    nalloc_arena *eager = make_arena_with(&c);
    nalloc_stats s = stats_of(eager);
    assert_true(s.populated);
    assert_int_equal(s.missing, 0);
    assert_false(stats_of(lazy).populated);
    assert_int_equal(resident_pages((void *)s.base, size), size / 4096);
    assert_int_equal(resident_pages((void *)stats_of(lazy).base, size), 0); /* committed on touch */
    nalloc_arena_destroy(eager);
    nalloc_arena_destroy(lazy);
}

/* Child role: report the defaults config_init takes from the environment. */
static int print_defaults(void)
{
    nalloc_arena_config c;
    nalloc_arena_config_init(&c, NALLOC_KIND_POLY, NALLOC_MEMORY_HOST, MiB);
    printf("%zu %zu %zu\n", c.large_threshold, c.large_align, c.default_align);
    return 0;
}

static void check_defaults_with(const char *env, const char *expected, bool expect_warning)
{
    char out[] = "/tmp/nalloc-opt-XXXXXX";
    int fd = mkstemp(out);
    assert_true(fd >= 0);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fd, 1);
        dup2(fd, 2);
        putenv((char *)env);
        execl("/proc/self/exe", "child", "print-defaults", (char *)NULL);
        _exit(127);
    }
    int status;
    waitpid(pid, &status, 0);
    char text[512] = {0};
    assert_true(pread(fd, text, sizeof text - 1, 0) > 0);
    close(fd);
    unlink(out);
    assert_true(exited_ok(status));
    assert_non_null(strstr(text, expected));
    assert_int_equal(strstr(text, "ignoring") != NULL, expect_warning);
}

static void test_options_come_from_the_environment(void **state)
{
    (void)state;
    check_defaults_with("NALLOC_LARGE_THRESHOLD=64k", "65536 4096 64", false);
    check_defaults_with("NALLOC_LARGE_ALIGN=2m", "1048576 2097152 64", false);
    check_defaults_with("NALLOC_HOST_ALIGN=128", "1048576 4096 128", false);
    /* Invalid values are ignored, with a warning: not a power of two, junk, negative. */
    check_defaults_with("NALLOC_LARGE_ALIGN=3000", "1048576 4096 64", true);
    check_defaults_with("NALLOC_LARGE_THRESHOLD=lots", "1048576 4096 64", true);
    check_defaults_with("NALLOC_HOST_ALIGN=-64", "1048576 4096 64", true);
    check_defaults_with("NALLOC_LARGE_THRESHOLD= -1", "1048576 4096 64", true); /* strtoull: 2^64-1 */
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "print-defaults") == 0)
        return print_defaults();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_used_is_requested_plus_padding),
        cmocka_unit_test(test_high_water_survives_rollback_and_reset),
        cmocka_unit_test(test_layout_digest_depends_on_the_layout_only),
        cmocka_unit_test(test_print_stats_reports_the_arena),
        cmocka_unit_test(test_populate_prefaults_every_page),
        cmocka_unit_test(test_options_come_from_the_environment),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
