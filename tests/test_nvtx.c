/* tests/test_nvtx.c - NVTX ranges and device-arena memory annotations, with and without a tool.
 *
 * ctest runs this twice: "nvtx" with no tool attached, which is how provers run, and
 * "nvtx_recorded" with NVTX_INJECTION64_PATH naming tests/nvtx_recorder, a stand-in tool that
 * keeps the heaps and regions it is told about the way compute-sanitizer's memcheck does. Every
 * test runs the same calls in both modes; with the recorder it also checks memcheck's view of
 * each byte: inside a live block accessible, in padding or above the offset not.
 *
 * No device arena can exist on a machine without a GPU, so the memory hooks (cuda/nvtx.c,
 * compiled into this test) are driven through a host arena dressed as one: the hooks are
 * installed exactly as the device backing installs them (heap registered at creation, which sets
 * on_alloc and on_release, heap unregistered at destroy), so arena.c's real allocation, free_last,
 * resize, rollback, reset and wipe paths call them. The ranges come from the library itself.
 */
#include "cuda_internal.h"
#include "internal.h"
#include "nvtx_recorder.h"

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static bool tool; /* a tool (the recorder) is attached in this run */

/* Assertions about the tool's model hold only when there is a tool. */
#define EXPECT(cond)                                                                             \
    do {                                                                                         \
        if (tool)                                                                                \
            assert_true(cond);                                                                   \
    } while (0)

/* ---- A host arena dressed as a device arena ---- */

static const na_backing *host_backing; /* the backing the arena really has */
static na_backing emulated;            /* host memory, device-arena hooks */

static void emulated_destroy(na_memory *m)
{
    na_nvtx_heap_unregister(m);
    host_backing->destroy(m);
}

static size_t zero_calls, zero_unseen; /* wipes, and wipes whose range the tool would flag */

/* The wipe kernel's view: every byte it stores to must be accessible while it runs. */
static nalloc_status emulated_zero(const na_memory *m, size_t offset, size_t length, void *stream)
{
    zero_calls++;
    const char *p = (const char *)m->base + offset;
    for (size_t i = 0; i < length; i += 64)
        if (!rec_accessible(p + i)) {
            zero_unseen++;
            break;
        }
    return host_backing->zero(m, offset, length, stream);
}

static nalloc_arena *device_like_arena(nalloc_kind kind, size_t capacity, const char *name)
{
    nalloc_arena_config c;
    nalloc_arena_config_init(&c, kind, NALLOC_MEMORY_HOST, capacity);
    c.default_align = 256; /* the device default */
    c.name = name;
    nalloc_arena *a = NULL;
    assert_int_equal(nalloc_arena_create(&c, &a), NALLOC_OK);
    host_backing = a->memory.backing;
    emulated = *host_backing;
    emulated.name = "device (emulated)";
    emulated.destroy = emulated_destroy;
    emulated.zero = emulated_zero;
    a->memory.backing = &emulated;
    na_nvtx_heap_register(&a->memory); /* as the device backing's create does */
    a->on_alloc = a->memory.on_alloc;  /* as arena creation does after the backing's create */
    assert_true((a->memory.tool != NULL) == tool);
    assert_true((a->on_alloc != NULL) == tool); /* no tool: the hook is off the allocation path */
    assert_true((a->memory.on_release != NULL) == tool);
    return a;
}

static char *base_of(const nalloc_arena *a)
{
    return (char *)a->bump.base;
}

/* memcheck's view of a block: every byte of it accessible, and the bytes just outside not
 * (unless another live block is there). */
static void expect_block(const void *p, size_t size)
{
    EXPECT(rec_is_region(p, size));
    EXPECT(rec_accessible(p) && rec_accessible((const char *)p + size - 1));
}

static void expect_gone(const void *p)
{
    EXPECT(!rec_accessible(p));
}

static int check_protocol(void **state)
{
    (void)state;
    if (tool && rec_errors() != 0)
        fail_msg("the tool saw %zu protocol errors; first: %s", rec_errors(), rec_first_error());
    return 0;
}

/* ---- Ranges (the library's own NVTX) ---- */

static void test_arena_phases_are_ranges_in_the_nalloc_domain(void **state)
{
    (void)state;
    size_t pushes = rec_calls(REC_RANGE_PUSH), pops = rec_calls(REC_RANGE_POP);
    nalloc_arena_config c;
    nalloc_arena_config_init(&c, NALLOC_KIND_SCRATCH, NALLOC_MEMORY_HOST, 1 << 20);
    nalloc_arena *a;
    assert_int_equal(nalloc_arena_create(&c, &a), NALLOC_OK);
    EXPECT(rec_calls(REC_RANGE_PUSH) == pushes + 1);
    EXPECT(strcmp(rec_last_domain(), "nalloc") == 0);
    EXPECT(strcmp(rec_last_range(), "nalloc_arena_create") == 0);
    assert_non_null(nalloc_alloc(a, 100));
    assert_int_equal(nalloc_reset(a), NALLOC_OK);
    EXPECT(strcmp(rec_last_range(), "nalloc_reset(scratch)") == 0);
    assert_int_equal(nalloc_wipe(a), NALLOC_OK);
    EXPECT(strcmp(rec_last_range(), "nalloc_wipe(scratch)") == 0);
    assert_int_equal(nalloc_arena_destroy(a), NALLOC_OK);
    EXPECT(strcmp(rec_last_range(), "nalloc_arena_destroy(scratch)") == 0);
    EXPECT(rec_calls(REC_RANGE_PUSH) == pushes + 4);
    EXPECT(rec_calls(REC_RANGE_POP) == pops + 4);
    assert_int_equal(rec_range_depth(), 0);
    if (!tool) {
        assert_false(rec_attached());
        assert_int_equal(rec_calls(REC_RANGE_PUSH), 0);
    }
}

static void test_failed_creation_still_closes_its_range(void **state)
{
    (void)state;
    nalloc_arena_config c;
    nalloc_arena_config_init(&c, NALLOC_KIND_SCRATCH, NALLOC_MEMORY_HOST, 1 << 20);
    c.fixed_address = (void *)(uintptr_t)1; /* not page-aligned: the backing refuses it */
    nalloc_arena *a;
    assert_int_not_equal(nalloc_arena_create(&c, &a), NALLOC_OK);
    assert_int_equal(rec_range_depth(), 0);
}

/* ---- Heaps and regions (cuda/nvtx.c) ---- */

static void test_without_a_tool_nothing_is_kept_or_called(void **state)
{
    (void)state;
    if (tool)
        skip();
    nalloc_arena *a = device_like_arena(NALLOC_KIND_POLY, 1 << 20, "quiet");
    assert_null(a->memory.tool);
    for (int i = 0; i < 100; i++)
        assert_non_null(nalloc_alloc(a, 1000));
    nalloc_mark m = nalloc_mark_get(a);
    void *p = nalloc_alloc(a, 5000);
    assert_int_equal(nalloc_resize_last(a, p, 5000, 9000), NALLOC_OK);
    assert_int_equal(nalloc_free_last(a, p, 9000), NALLOC_OK);
    assert_int_equal(nalloc_rollback(a, m), NALLOC_OK);
    na_nvtx_window_register(&a->memory, base_of(a), 4096);
    assert_int_equal(nalloc_reset(a), NALLOC_OK);
    assert_int_equal(nalloc_wipe(a), NALLOC_OK);
    assert_int_equal(nalloc_arena_destroy(a), NALLOC_OK);
    for (int call = 0; call < REC_CALL_COUNT; call++)
        assert_int_equal(rec_calls((rec_call)call), 0);
}

static void test_a_device_arena_is_a_heap_named_after_it(void **state)
{
    (void)state;
    size_t heaps = rec_live_heaps();
    nalloc_arena *a = device_like_arena(NALLOC_KIND_POLY, 1 << 20, "poly-gpu0");
    EXPECT(rec_live_heaps() == heaps + 1);
    EXPECT(rec_heap_at(base_of(a)) && strcmp(rec_heap_at(base_of(a)), "poly-gpu0") == 0);
    EXPECT(rec_heap_at(base_of(a) + (1 << 20) - 1) != NULL);
    EXPECT(rec_heap_at(base_of(a) + (1 << 20)) == NULL);
    expect_gone(base_of(a)); /* nothing handed out yet: no access is valid */
    assert_int_equal(nalloc_arena_destroy(a), NALLOC_OK);
    EXPECT(rec_live_heaps() == heaps);
    EXPECT(rec_live_regions() == 0);
}

static void test_each_block_is_a_region_and_the_padding_is_not(void **state)
{
    (void)state;
    nalloc_arena *a = device_like_arena(NALLOC_KIND_POLY, 1 << 20, "poly");
    char *x = nalloc_alloc(a, 1000); /* 256-aligned: [0, 1000), padding to 1024 */
    char *y = nalloc_alloc(a, 3000);
    char *z = nalloc_alloc_aligned(a, 10, 4096);
    assert_ptr_equal(x, base_of(a));
    assert_ptr_equal(y, base_of(a) + 1024);
    expect_block(x, 1000);
    expect_block(y, 3000);
    expect_block(z, 10);
    expect_gone(x + 1000);   /* the overflow compute-sanitizer is meant to catch */
    expect_gone(x + 1023);
    expect_gone(y + 3000);
    expect_gone(z + 10);     /* above the offset */
    expect_gone(base_of(a) + (1 << 20) - 1);
    EXPECT(rec_live_regions() == 3);
    assert_int_equal(nalloc_arena_destroy(a), NALLOC_OK);
}

static void test_free_last_unregisters_the_block(void **state)
{
    (void)state;
    nalloc_arena *a = device_like_arena(NALLOC_KIND_SCRATCH, 1 << 20, "scratch");
    char *x = nalloc_alloc(a, 512);
    char *y = nalloc_alloc(a, 700);
    assert_int_equal(nalloc_free_last(a, y, 700), NALLOC_OK);
    expect_block(x, 512);
    expect_gone(y);
    char *y2 = nalloc_alloc(a, 300); /* the same place, smaller */
    assert_ptr_equal(y2, y);
    expect_block(y2, 300);
    expect_gone(y2 + 300);
    EXPECT(rec_live_regions() == 2);
    assert_int_equal(nalloc_arena_destroy(a), NALLOC_OK);
}

static void test_resizing_in_place_resizes_the_region(void **state)
{
    (void)state;
    nalloc_arena *a = device_like_arena(NALLOC_KIND_SCRATCH, 1 << 20, "scratch");
    char *x = nalloc_alloc(a, 256);
    char *y = nalloc_alloc(a, 1000);
    assert_int_equal(nalloc_resize_last(a, y, 1000, 5000), NALLOC_OK);
    expect_block(y, 5000);
    assert_int_equal(nalloc_resize_last(a, y, 5000, 40), NALLOC_OK);
    expect_block(y, 40);
    expect_gone(y + 40);
    expect_block(x, 256);
    EXPECT(rec_live_regions() == 2);
    assert_int_equal(nalloc_arena_destroy(a), NALLOC_OK);
}

static void test_rollback_unregisters_exactly_the_blocks_after_the_mark(void **state)
{
    (void)state;
    enum { BEFORE = 40, AFTER = 600 };
    nalloc_arena *a = device_like_arena(NALLOC_KIND_SCRATCH, 4 << 20, "scratch");
    char *kept[BEFORE], *dropped[AFTER];
    for (int i = 0; i < BEFORE; i++)
        kept[i] = nalloc_alloc(a, 100 + (size_t)i);
    nalloc_mark m = nalloc_mark_get(a);
    for (int i = 0; i < AFTER; i++)
        dropped[i] = nalloc_alloc(a, 1 + (size_t)i % 300);
    EXPECT(rec_live_regions() == BEFORE + AFTER);
    assert_int_equal(nalloc_rollback(a, m), NALLOC_OK);
    EXPECT(rec_live_regions() == BEFORE);
    for (int i = 0; i < BEFORE; i++)
        expect_block(kept[i], 100 + (size_t)i);
    for (int i = 0; i < AFTER; i++)
        expect_gone(dropped[i]);
    assert_int_equal(nalloc_arena_destroy(a), NALLOC_OK);
}

static void test_reset_and_wipe_reset_the_whole_heap(void **state)
{
    (void)state;
    nalloc_arena *a = device_like_arena(NALLOC_KIND_SCRATCH, 1 << 20, "scratch");
    size_t resets = rec_calls(REC_HEAP_RESET);
    char *x = nalloc_alloc(a, 100);
    assert_non_null(nalloc_alloc(a, 100));
    assert_int_equal(nalloc_reset(a), NALLOC_OK);
    expect_gone(x);
    EXPECT(rec_live_regions() == 0);
    EXPECT(rec_calls(REC_HEAP_RESET) == resets + 1);
    x = nalloc_alloc(a, 100);
    expect_block(x, 100);
    assert_int_equal(nalloc_wipe(a), NALLOC_OK);
    expect_gone(x);
    EXPECT(rec_calls(REC_HEAP_RESET) > resets + 1);
    assert_int_equal(nalloc_arena_destroy(a), NALLOC_OK);
}

/* The wipe zeroes padding and released bytes too: while it runs they must not look like
 * overflows to the tool, and afterwards nothing is left registered. */
static void test_the_wipe_itself_is_not_reported(void **state)
{
    (void)state;
    nalloc_arena *a = device_like_arena(NALLOC_KIND_WITNESS, 1 << 20, "witness");
    nalloc_mark m = nalloc_mark_get(a);
    assert_non_null(nalloc_alloc(a, 5000));
    assert_int_equal(nalloc_rollback(a, m), NALLOC_OK); /* released, still dirty */
    char *x = nalloc_alloc(a, 100);
    assert_non_null(nalloc_alloc(a, 100)); /* padding between the two */
    size_t calls = zero_calls, unseen = zero_unseen;
    assert_int_equal(nalloc_wipe(a), NALLOC_OK);
    assert_int_equal(zero_calls, calls + 1);
    EXPECT(zero_unseen == unseen);
    expect_gone(x);
    EXPECT(rec_live_regions() == 0);
    assert_non_null(nalloc_alloc(a, 64));
    assert_int_equal(nalloc_arena_destroy(a), NALLOC_OK); /* the destroy-time wipe too */
    assert_int_equal(zero_calls, calls + 2);
    EXPECT(zero_unseen == unseen);
}

static void test_witness_regions_carry_the_arena_name(void **state)
{
    (void)state;
    nalloc_arena *w = device_like_arena(NALLOC_KIND_WITNESS, 1 << 20, "witness-gpu0");
    nalloc_arena *p = device_like_arena(NALLOC_KIND_POLY, 1 << 20, "poly-gpu0");
    char *secret = nalloc_alloc(w, 64);
    char *column = nalloc_alloc(p, 64);
    expect_block(secret, 64);
    EXPECT(rec_region_name(secret) && strcmp(rec_region_name(secret), "witness-gpu0") == 0);
    EXPECT(rec_region_name(column) && rec_region_name(column)[0] == '\0');
    assert_int_equal(nalloc_arena_destroy(p), NALLOC_OK);
    assert_int_equal(nalloc_arena_destroy(w), NALLOC_OK); /* wiped, then unregistered */
    EXPECT(rec_live_regions() == 0);
}

static void test_a_window_is_one_named_region(void **state)
{
    (void)state;
    nalloc_arena *a = device_like_arena(NALLOC_KIND_SCRATCH, 1 << 20, "scratch");
    char *x = nalloc_alloc(a, 100);
    char *window = nalloc_alloc(a, 64 << 10); /* the window's memory, a block like any other */
    na_nvtx_window_register(&a->memory, window, 64 << 10);
    expect_block(window, 64 << 10);
    EXPECT(rec_region_name(window) && strcmp(rec_region_name(window), "nalloc window") == 0);
    expect_block(x, 100);
    EXPECT(rec_live_regions() == 2);
    /* Ranges outside the arena are ignored, not registered. */
    na_nvtx_window_register(&a->memory, base_of(a) + (1 << 20) - 16, 32);
    na_nvtx_window_register(&a->memory, base_of(a) - 4096, 16);
    EXPECT(rec_live_regions() == 2);
    assert_int_equal(nalloc_arena_destroy(a), NALLOC_OK);
}

/* free_last moves the offset down first and calls the release hook after; another thread may
 * reallocate the bytes in between. Replay that order by hand: the new block must stay a region. */
static void test_a_release_racing_a_reallocation_keeps_the_new_block(void **state)
{
    (void)state;
    nalloc_arena *a = device_like_arena(NALLOC_KIND_SCRATCH, 1 << 20, "scratch");
    char *x = nalloc_alloc(a, 256);
    size_t y = 256;
    na_nvtx_region_alloc(&a->memory, y, 1000);       /* thread 1 holds [256, 1256) */
    a->bump.offset = y;                      /* thread 1's free_last: the CAS */
    na_nvtx_region_alloc(&a->memory, y, 200);        /* thread 2 allocates [256, 456) */
    a->bump.offset = y + 200;
    na_nvtx_heap_release(&a->memory, y);              /* thread 1's release hook, late */
    expect_block(base_of(a) + y, 200);
    expect_gone(base_of(a) + y + 200);
    expect_block(x, 256);
    /* The other order: the release hook runs between thread 3's reservation and its hook. */
    na_nvtx_region_alloc(&a->memory, y + 256, 700);  /* thread 2 holds [512, 1212) */
    a->bump.offset = y + 256;                /* thread 2's free_last: the CAS */
    a->bump.offset = y + 256 + 64;           /* thread 3 reserves [512, 576) */
    na_nvtx_heap_release(&a->memory, y + 256);        /* thread 2's release hook */
    expect_gone(base_of(a) + y + 256 + 64);  /* the dead tail is gone already */
    na_nvtx_region_alloc(&a->memory, y + 256, 64);   /* thread 3's hook */
    expect_block(base_of(a) + y + 256, 64);
    expect_block(base_of(a) + y, 200);
    EXPECT(rec_live_regions() == 3);
    assert_int_equal(nalloc_arena_destroy(a), NALLOC_OK);
}

enum { THREADS = 4, PER_THREAD = 400 };

typedef struct worker {
    nalloc_arena *arena;
    char *blocks[PER_THREAD];
    size_t sizes[PER_THREAD];
} worker;

static void *allocate_many(void *arg)
{
    worker *w = arg;
    for (int i = 0; i < PER_THREAD; i++) {
        w->sizes[i] = 1 + (size_t)(i * 37 % 500);
        w->blocks[i] = nalloc_alloc(w->arena, w->sizes[i]);
    }
    return NULL;
}

static void test_concurrent_allocations_all_become_regions(void **state)
{
    (void)state;
    nalloc_arena *a = device_like_arena(NALLOC_KIND_SCRATCH, 2 << 20, "scratch");
    static worker workers[THREADS];
    pthread_t threads[THREADS];
    for (int t = 0; t < THREADS; t++) {
        workers[t].arena = a;
        assert_int_equal(pthread_create(&threads[t], NULL, allocate_many, &workers[t]), 0);
    }
    for (int t = 0; t < THREADS; t++)
        pthread_join(threads[t], NULL);
    for (int t = 0; t < THREADS; t++)
        for (int i = 0; i < PER_THREAD; i++) {
            assert_non_null(workers[t].blocks[i]);
            expect_block(workers[t].blocks[i], workers[t].sizes[i]);
        }
    EXPECT(rec_live_regions() == THREADS * PER_THREAD);
    assert_int_equal(nalloc_reset(a), NALLOC_OK);
    EXPECT(rec_live_regions() == 0);
    assert_int_equal(nalloc_arena_destroy(a), NALLOC_OK);
}

int main(void)
{
    tool = getenv("NVTX_INJECTION64_PATH") != NULL;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_arena_phases_are_ranges_in_the_nalloc_domain, check_protocol),
        cmocka_unit_test_teardown(test_failed_creation_still_closes_its_range, check_protocol),
        cmocka_unit_test_teardown(test_without_a_tool_nothing_is_kept_or_called, check_protocol),
        cmocka_unit_test_teardown(test_a_device_arena_is_a_heap_named_after_it, check_protocol),
        cmocka_unit_test_teardown(test_each_block_is_a_region_and_the_padding_is_not, check_protocol),
        cmocka_unit_test_teardown(test_free_last_unregisters_the_block, check_protocol),
        cmocka_unit_test_teardown(test_resizing_in_place_resizes_the_region, check_protocol),
        cmocka_unit_test_teardown(test_rollback_unregisters_exactly_the_blocks_after_the_mark,
                                  check_protocol),
        cmocka_unit_test_teardown(test_reset_and_wipe_reset_the_whole_heap, check_protocol),
        cmocka_unit_test_teardown(test_the_wipe_itself_is_not_reported, check_protocol),
        cmocka_unit_test_teardown(test_witness_regions_carry_the_arena_name, check_protocol),
        cmocka_unit_test_teardown(test_a_window_is_one_named_region, check_protocol),
        cmocka_unit_test_teardown(test_a_release_racing_a_reallocation_keeps_the_new_block,
                                  check_protocol),
        cmocka_unit_test_teardown(test_concurrent_allocations_all_become_regions, check_protocol),
    };
    int failed = cmocka_run_group_tests_name(tool ? "nvtx (recorder attached)" : "nvtx (no tool)",
                                             tests, NULL, NULL);
    if (failed == 0 && tool && !rec_attached()) {
        fprintf(stderr, "NVTX_INJECTION64_PATH is set but NVTX never loaded the recorder\n");
        return 1;
    }
    return failed;
}
