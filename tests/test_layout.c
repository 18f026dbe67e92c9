/* tests/test_layout.c - deterministic layout: offsets, digests, base alignment, fixed addresses.
 *
 * The promise: the same sequence of requests gives the same offsets and the same layout digest
 * in every run, whatever the address the arena landed at. The strongest check is across
 * processes, so the sequence runs here, then in two fresh executions of this binary (each with
 * its own ASLR placement), and the three transcripts must be identical. A fixed base address
 * makes the addresses themselves repeat; a clash with an existing mapping must fail cleanly and
 * leave that mapping alone.
 */
#include "child.h"

#include <errno.h>
#include <pthread.h>
#include <sys/mman.h>


#define TRANSCRIPT_BYTES (256 * KiB)

/* A scratch arena with `add` among its flags, at `fixed` (NULL: anywhere); NULL on failure. */
static nalloc_arena *scratch_at(size_t capacity, void *fixed, unsigned add)
{
    return try_arena(NALLOC_KIND_SCRATCH, capacity, add, 0, fixed);
}

/* ---------------------------------------------------------------------------------------------
 * One thread: the same requests, the same offsets, in every process
 * ------------------------------------------------------------------------------------------- */

/* A prover-like mix of every call that moves the offset, from a fixed seed, with a line per step
 * in `out`: what was asked and the offset it got. Alignments go up to 64 KiB, well inside the
 * 8 MiB base alignment of a 16 MiB arena. */
static void run_sequence(FILE *out)
{
    nalloc_arena *a = scratch_at(16 * MiB, NULL, 0);
    if (a == NULL) {
        fprintf(out, "create failed\n");
        return;
    }
    uintptr_t base = stats_of(a).base;
    uint64_t rng = 42;
    nalloc_mark marks[8];
    unsigned depth = 0;
    void *last = NULL;
    size_t last_size = 0;
    for (int step = 0; step < 600; step++) {
        uint64_t r = test_rand(&rng);
        size_t size = 1 + (size_t)(r >> 40) % (r & 1 ? 4000 : 200000);
        size_t align = (size_t)1 << ((r >> 8) % 17);
        void *p = NULL;
        switch ((r >> 4) % 12) {
        case 0:
            if (depth < 8)
                marks[depth++] = nalloc_mark_get(a);
            fprintf(out, "mark %u\n", depth);
            continue;
        case 1:
            if (depth > 0)
                fprintf(out, "rollback %d\n", (int)nalloc_rollback(a, marks[--depth]));
            last = NULL;
            continue;
        case 2:
            if (step % 5 == 0) {
                assert_int_equal(nalloc_reset(a), NALLOC_OK);
                depth = 0;
                last = NULL;
                fprintf(out, "reset\n");
            }
            continue;
        case 3:
            if (last != NULL)
                fprintf(out, "free_last %d\n", (int)nalloc_free_last(a, last, last_size));
            last = NULL;
            continue;
        case 4:
            if (last != NULL && nalloc_resize_last(a, last, last_size, size) == NALLOC_OK) {
                last_size = size;
                fprintf(out, "resize %zu\n", size);
            }
            continue;
        case 5:
            p = nalloc_alloc_zeroed(a, size / 8 + 1, 8, 0);
            size = (size / 8 + 1) * 8;
            break;
        case 6:
            p = nalloc_realloc(a, last, last_size, size, 0);
            break;
        case 7:
        case 8:
            p = nalloc_alloc_aligned(a, size, align);
            break;
        default:
            p = nalloc_alloc(a, size);
            break;
        }
        if (p == NULL) {
            fprintf(out, "fail %zu %zu\n", size, align);
            continue;
        }
        last = p;
        last_size = size;
        fprintf(out, "block %zu %zu\n", (size_t)((uintptr_t)p - base), size);
    }
    nalloc_stats s = stats_of(a);
    fprintf(out, "digest %016llx used %zu high %zu padding %zu allocations %zu failures %zu\n",
            (unsigned long long)s.layout_digest, s.used, s.high_water, s.padding, s.allocations,
            s.failures);
    nalloc_arena_destroy(a);
}

static void test_same_requests_give_same_offsets_in_separate_processes(void **state)
{
    (void)state;
    if (under_valgrind())
        skip(); /* re-executes /proc/self/exe */
    char *here = calloc(1, TRANSCRIPT_BYTES);
    char *first = calloc(1, TRANSCRIPT_BYTES), *second = calloc(1, TRANSCRIPT_BYTES);
    assert_non_null(here);
    assert_non_null(first);
    assert_non_null(second);
    FILE *out = fmemopen(here, TRANSCRIPT_BYTES - 1, "w");
    assert_non_null(out);
    run_sequence(out);
    fclose(out);
    assert_non_null(strstr(here, "digest "));
    assert_non_null(strstr(here, "rollback 0")); /* the sequence exercises what it claims to */
    assert_non_null(strstr(here, "reset"));
    assert_non_null(strstr(here, "free_last 0"));
    assert_int_equal(child_exec_self("sequence", first, TRANSCRIPT_BYTES), 0);
    assert_int_equal(child_exec_self("sequence", second, TRANSCRIPT_BYTES), 0);
    assert_string_equal(first, here);
    assert_string_equal(second, here);
    free(here);
    free(first);
    free(second);
}

/* ---------------------------------------------------------------------------------------------
 * The digest
 * ------------------------------------------------------------------------------------------- */

static uint64_t digest_of(const size_t *sizes, int n, bool reset_after_first)
{
    nalloc_arena *a = scratch_at(1 * MiB, NULL, 0);
    assert_non_null(a);
    for (int i = 0; i < n; i++) {
        assert_non_null(nalloc_alloc(a, sizes[i]));
        if (i == 0 && reset_after_first)
            assert_int_equal(nalloc_reset(a), NALLOC_OK);
    }
    uint64_t d = stats_of(a).layout_digest;
    assert_int_equal(nalloc_arena_destroy(a), NALLOC_OK);
    return d;
}

static void test_digest_tells_sequences_apart(void **state)
{
    (void)state;
    const size_t ab[] = {64, 128}, ba[] = {128, 64}, a_only[] = {64};
    assert_true(digest_of(ab, 2, false) == digest_of(ab, 2, false)); /* other arenas, other bases */
    assert_true(digest_of(ab, 2, false) != digest_of(ba, 2, false));
    assert_true(digest_of(ab, 2, false) != digest_of(a_only, 1, false));
    /* The same blocks in the opposite order across a reset: the same set of (offset, size), told
     * apart by the phase each block was handed out in. */
    assert_true(digest_of(ab, 2, true) != digest_of(ba, 2, true));
    assert_true(digest_of(ab, 2, true) != digest_of(ab, 2, false));
    nalloc_arena *a = scratch_at(1 * MiB, NULL, 0);
    assert_int_equal(stats_of(a).layout_digest, 0); /* nothing handed out yet */
    assert_int_equal(nalloc_arena_destroy(a), NALLOC_OK);
}

typedef struct half {
    nalloc_arena *arena;
    int from, to;
} half;

static void *allocate_half(void *arg)
{
    half *h = arg;
    for (int i = h->from; i < h->to; i++)
        if (nalloc_alloc(h->arena, 100 + (size_t)i) == NULL)
            return NULL;
    return h;
}

static void test_digest_does_not_depend_on_which_thread_allocated(void **state)
{
    (void)state;
    /* The same sequence, once from this thread and once half from each of two threads run one
     * after the other: each thread keeps its own partial digest, and the sums must agree. */
    nalloc_arena *one = scratch_at(1 * MiB, NULL, 0), *two = scratch_at(1 * MiB, NULL, 0);
    assert_non_null(one);
    assert_non_null(two);
    half all = {one, 0, 200}, first = {two, 0, 100}, second = {two, 100, 200};
    assert_non_null(allocate_half(&all));
    pthread_t t;
    void *ok;
    assert_int_equal(pthread_create(&t, NULL, allocate_half, &first), 0);
    assert_int_equal(pthread_join(t, &ok), 0);
    assert_non_null(ok);
    assert_int_equal(pthread_create(&t, NULL, allocate_half, &second), 0);
    assert_int_equal(pthread_join(t, &ok), 0);
    assert_non_null(ok);
    assert_true(stats_of(one).layout_digest == stats_of(two).layout_digest);
    assert_int_equal(stats_of(one).used, stats_of(two).used);
    assert_int_equal(nalloc_arena_destroy(one), NALLOC_OK);
    assert_int_equal(nalloc_arena_destroy(two), NALLOC_OK);
}

/* ---------------------------------------------------------------------------------------------
 * Base alignment
 * ------------------------------------------------------------------------------------------- */

static void test_base_is_aligned_to_the_arena_size_up_to_1_gib(void **state)
{
    (void)state;
    const struct {
        size_t capacity, align;
    } cases[] = {
        {4 * KiB, 4 * KiB}, {64 * KiB, 64 * KiB}, {100 * KiB, 64 * KiB},
        {3 * MiB, 2 * MiB}, {(size_t)4 << 30, (size_t)1 << 30},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        nalloc_arena *a = scratch_at(cases[i].capacity, NULL, NALLOC_FLAG_NORESERVE);
        assert_non_null(a);
        assert_int_equal(stats_of(a).base % cases[i].align, 0);
        /* Any alignment up to the base's costs the same padding wherever the arena is. */
        assert_non_null(nalloc_alloc(a, 1));
        char *p = nalloc_alloc_aligned(a, 1, cases[i].align);
        if (cases[i].capacity > cases[i].align) {
            assert_non_null(p);
            assert_int_equal((uintptr_t)p - stats_of(a).base, cases[i].align);
        } else {
            assert_null(p); /* the next aligned place is the end */
        }
        assert_int_equal(nalloc_arena_destroy(a), NALLOC_OK);
    }
}

/* ---------------------------------------------------------------------------------------------
 * Fixed addresses
 * ------------------------------------------------------------------------------------------- */

/* An address with `bytes` of free address space around it (for an arena and its guards). */
static char *free_address(size_t bytes)
{
    size_t page = page_size();
    void *p = mmap(NULL, bytes + 2 * page, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                   -1, 0);
    assert_true(p != MAP_FAILED);
    munmap(p, bytes + 2 * page);
    return (char *)p + page;
}

typedef struct fixed_run {
    char *at;
    uintptr_t blocks[3];
} fixed_run;

/* Create an arena at run->at, make three requests, record where they went, destroy it. */
static bool fixed_blocks(fixed_run *run)
{
    nalloc_arena *a = scratch_at(1 * MiB, run->at, 0);
    if (a == NULL)
        return false;
    run->blocks[0] = (uintptr_t)nalloc_alloc(a, 100);
    run->blocks[1] = (uintptr_t)nalloc_alloc_aligned(a, 5000, 4096);
    run->blocks[2] = (uintptr_t)nalloc_alloc(a, 1);
    bool ok = stats_of(a).base == (uintptr_t)run->at;
    return nalloc_arena_destroy(a) == NALLOC_OK && ok;
}

static void child_repeats_fixed_blocks(void *arg)
{
    const fixed_run *parent = arg;
    fixed_run mine = {parent->at, {0, 0, 0}};
    CHILD_CHECK(fixed_blocks(&mine));
    CHILD_CHECK(memcmp(mine.blocks, parent->blocks, sizeof mine.blocks) == 0);
}

static void test_fixed_address_places_the_arena_exactly_there(void **state)
{
    (void)state;
    fixed_run first = {free_address(1 * MiB), {0, 0, 0}}, again = first;
    assert_true(fixed_blocks(&first));
    assert_true(first.blocks[0] == (uintptr_t)first.at);
    assert_true(fixed_blocks(&again));
    assert_memory_equal(first.blocks, again.blocks, sizeof first.blocks);
    /* Another process, the same addresses. */
    assert_int_equal(child_exit_code(run_in_child(child_repeats_fixed_blocks, &first)), 0);
}

static void expect_clash(char *at, size_t capacity, unsigned flags)
{
    nalloc_arena_config c;
    nalloc_arena_config_init(&c, NALLOC_KIND_WITNESS, NALLOC_MEMORY_HOST, capacity);
    c.fixed_address = at;
    c.flags |= flags;
    nalloc_arena *a = (nalloc_arena *)&c;
    errno = 0;
    assert_int_equal(nalloc_arena_create(&c, &a), NALLOC_ERR_OS);
    assert_int_equal(errno, EEXIST);
    assert_null(a);
    assert_int_equal(nalloc_last_error(), NALLOC_ERR_OS);
}

static void test_fixed_address_clash_fails_and_leaves_the_mapping_alone(void **state)
{
    (void)state;
    size_t page = page_size();
    char *x = free_address(4 * MiB) + 2 * MiB;
    char *mine = mmap(x, page, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    assert_true(mine == x);
    memset(mine, 0x42, page);
    expect_clash(x, 1 * MiB, 0);                         /* the arena itself */
    expect_clash(x + page, 1 * MiB, 0);                  /* its leading guard */
    expect_clash(x - 1 * MiB, 1 * MiB, 0);               /* its trailing guard */
    expect_clash(x - page, 1 * MiB, NALLOC_FLAG_SECRET); /* a secret arena, over the page */
    for (size_t i = 0; i < page; i++)
        assert_int_equal((unsigned char)mine[i], 0x42);
    mine[0] = 1; /* still mapped, still writable */
    assert_int_equal(munmap(mine, page), 0);

    /* Over a live arena. */
    nalloc_arena *live = scratch_at(1 * MiB, NULL, 0);
    assert_non_null(live);
    unsigned char *p = nalloc_alloc(live, 4096);
    memset(p, 0x17, 4096);
    expect_clash((char *)stats_of(live).base, 1 * MiB, 0);
    assert_int_equal(p[4095], 0x17);
    assert_non_null(nalloc_alloc(live, 4096));
    assert_int_equal(nalloc_arena_destroy(live), NALLOC_OK);
}

static void test_fixed_address_must_be_page_aligned_with_room_for_the_guard(void **state)
{
    (void)state;
    nalloc_arena_config c;
    nalloc_arena_config_init(&c, NALLOC_KIND_SCRATCH, NALLOC_MEMORY_HOST, 1 * MiB);
    nalloc_arena *a = (nalloc_arena *)&c;
    c.fixed_address = free_address(1 * MiB) + 1;
    assert_int_equal(nalloc_arena_create(&c, &a), NALLOC_ERR_INVALID);
    assert_null(a);
    c.fixed_address = (void *)(uintptr_t)sysconf(_SC_PAGESIZE);
    c.guard_size = 2 * page_size();
    assert_int_equal(nalloc_arena_create(&c, &a), NALLOC_ERR_INVALID);
    assert_null(a);
    c.guard_size = 0;
    c.fixed_address = (void *)(UINTPTR_MAX & ~(uintptr_t)0xfffff); /* runs off the top */
    assert_int_not_equal(nalloc_arena_create(&c, &a), NALLOC_OK);
    assert_null(a);
}

/* vm.mmap_min_addr: the lowest address the kernel maps for an unprivileged process. */
static uintptr_t mmap_min_addr(void)
{
    unsigned long long v = 0;
    FILE *f = fopen("/proc/sys/vm/mmap_min_addr", "r");
    if (f != NULL) {
        if (fscanf(f, "%llu", &v) != 1)
            v = 0;
        fclose(f);
    }
    return (uintptr_t)v;
}

static void test_fixed_address_whose_guard_reaches_below_mmap_min_addr_is_invalid(void **state)
{
    (void)state;
    uintptr_t page = page_size();
    nalloc_arena_config c;
    nalloc_arena_config_init(&c, NALLOC_KIND_SCRATCH, NALLOC_MEMORY_HOST, 1 * MiB);
    nalloc_arena *a = (nalloc_arena *)&c;
    /* The leading guard would start at address 0: refused as a bad argument, before any mmap
     * (root could otherwise be allowed a mapping there that others are refused). */
    c.fixed_address = (void *)page;
    assert_int_equal(nalloc_arena_create(&c, &a), NALLOC_ERR_INVALID);
    assert_null(a);
    assert_non_null(strstr(nalloc_last_error_message(), "vm.mmap_min_addr"));
    /* Or anywhere below vm.mmap_min_addr, where this kernel sets it above one page. */
    uintptr_t lowest = mmap_min_addr();
    if (lowest > page) {
        c.fixed_address = (void *)lowest; /* its guard one page below vm.mmap_min_addr */
        assert_int_equal(nalloc_arena_create(&c, &a), NALLOC_ERR_INVALID);
        assert_null(a);
    }
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "sequence") == 0) {
        run_sequence(stdout);
        return 0;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_requests_give_same_offsets_in_separate_processes),
        cmocka_unit_test(test_digest_tells_sequences_apart),
        cmocka_unit_test(test_digest_does_not_depend_on_which_thread_allocated),
        cmocka_unit_test(test_base_is_aligned_to_the_arena_size_up_to_1_gib),
        cmocka_unit_test(test_fixed_address_places_the_arena_exactly_there),
        cmocka_unit_test(test_fixed_address_clash_fails_and_leaves_the_mapping_alone),
        cmocka_unit_test(test_fixed_address_must_be_page_aligned_with_room_for_the_guard),
        cmocka_unit_test(test_fixed_address_whose_guard_reaches_below_mmap_min_addr_is_invalid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
