/* tests/test_staging.c - nalloc_stage_async refuses bad ranges before calling CUDA.
 *
 * Neither a pinned nor a device arena can be created without a driver, so this white-box test
 * dresses host arenas as them (it sets config.memory, and `pinned` for the pinned one; the
 * checks read nothing else). Without a driver, any call that reaches CUDA answers
 * NALLOC_ERR_NO_DEVICE, so NALLOC_ERR_INVALID proves a request was refused by the checks alone.
 * tests/test_pinned_gpu.c stages real data between real arenas on a device.
 */
#include "internal.h"
#include "nalloc/cuda.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

typedef struct arenas {
    nalloc_arena *pinned; /* a host arena dressed as a pinned arena */
    nalloc_arena *device; /* a host arena dressed as a device arena */
    nalloc_arena *host;   /* a plain host arena */
    char *staged;         /* 64 KiB block in `pinned` */
    char *on_device;      /* 64 KiB block in `device` */
} arenas;

#define BLOCK (64u << 10)
#define CAPACITY (1u << 20)

static bool have_device;

static nalloc_arena *host_arena(void)
{
    nalloc_arena_config c;
    nalloc_arena_config_init(&c, NALLOC_KIND_SCRATCH, NALLOC_MEMORY_HOST, CAPACITY);
    nalloc_arena *a = NULL;
    assert_int_equal(nalloc_arena_create(&c, &a), NALLOC_OK);
    return a;
}

static int setup(void **state)
{
    have_device = nalloc_cuda_available() == NALLOC_OK;
    arenas *t = test_calloc(1, sizeof *t);
    t->pinned = host_arena();
    t->pinned->config.memory = NALLOC_MEMORY_PINNED;
    t->pinned->memory.pinned = true;
    t->device = host_arena();
    t->device->config.memory = NALLOC_MEMORY_DEVICE;
    t->host = host_arena();
    t->staged = nalloc_alloc(t->pinned, BLOCK);
    t->on_device = nalloc_alloc(t->device, BLOCK);
    assert_non_null(t->staged);
    assert_non_null(t->on_device);
    *state = t;
    return 0;
}

static int teardown(void **state)
{
    arenas *t = *state;
    t->pinned->memory.pinned = false;
    t->pinned->config.memory = NALLOC_MEMORY_HOST;
    t->device->config.memory = NALLOC_MEMORY_HOST;
    assert_int_equal(nalloc_arena_destroy(t->pinned), NALLOC_OK);
    assert_int_equal(nalloc_arena_destroy(t->device), NALLOC_OK);
    assert_int_equal(nalloc_arena_destroy(t->host), NALLOC_OK);
    test_free(t);
    return 0;
}

/* Upload and download of [offset, offset + size) of both blocks. */
static nalloc_status upload(arenas *t, size_t dst_off, size_t src_off, size_t size)
{
    return nalloc_stage_async(t->device, t->on_device + dst_off, t->pinned, t->staged + src_off,
                              size, NULL);
}

static nalloc_status download(arenas *t, size_t dst_off, size_t src_off, size_t size)
{
    return nalloc_stage_async(t->pinned, t->staged + dst_off, t->device, t->on_device + src_off,
                              size, NULL);
}

/* A request that passes every check reaches cudaMemcpyAsync; without a driver that answers
 * NALLOC_ERR_NO_DEVICE. (With one, these arenas are host memory in disguise: do not copy.) */
static void expect_reaches_cuda(nalloc_status st)
{
    if (!have_device)
        assert_int_equal(st, NALLOC_ERR_NO_DEVICE);
}

static void test_ranges_inside_both_blocks_reach_cuda(void **state)
{
    arenas *t = *state;
    if (have_device)
        skip();
    expect_reaches_cuda(upload(t, 0, 0, BLOCK));
    expect_reaches_cuda(download(t, 0, 0, BLOCK));
    expect_reaches_cuda(upload(t, 100, 200, 1000));
    expect_reaches_cuda(download(t, BLOCK - 1, BLOCK - 1, 1));
    assert_true(strstr(nalloc_cuda_error_string(), "cudaMemcpyAsync") != NULL);
}

static void test_an_empty_copy_succeeds_without_cuda(void **state)
{
    arenas *t = *state;
    assert_int_equal(upload(t, 0, 0, 0), NALLOC_OK);
    assert_int_equal(download(t, BLOCK, BLOCK, 0), NALLOC_OK); /* at the end of what was handed out */
    assert_int_equal(upload(t, BLOCK + 1, 0, 0), NALLOC_ERR_INVALID); /* but not past it */
}

static void test_ranges_past_the_handed_out_part_are_invalid(void **state)
{
    arenas *t = *state;
    /* Inside the arena's capacity, but beyond its current offset. */
    assert_int_equal(upload(t, 0, 0, BLOCK + 1), NALLOC_ERR_INVALID);
    assert_int_equal(upload(t, 1, 0, BLOCK), NALLOC_ERR_INVALID);
    assert_int_equal(upload(t, 0, 1, BLOCK), NALLOC_ERR_INVALID);
    assert_int_equal(download(t, BLOCK, 0, 1), NALLOC_ERR_INVALID);
    assert_int_equal(download(t, 0, BLOCK, 1), NALLOC_ERR_INVALID);
    assert_int_equal(download(t, 0, 2 * BLOCK, 16), NALLOC_ERR_INVALID);
    assert_int_equal(nalloc_last_error(), NALLOC_ERR_INVALID);
}

static void test_sizes_that_would_wrap_are_invalid(void **state)
{
    arenas *t = *state;
    assert_int_equal(upload(t, 0, 0, SIZE_MAX), NALLOC_ERR_INVALID);
    assert_int_equal(download(t, 16, 16, SIZE_MAX - 8), NALLOC_ERR_INVALID);
    assert_int_equal(upload(t, BLOCK - 1, 0, (size_t)0 - (uintptr_t)(t->on_device + BLOCK - 1)),
                     NALLOC_ERR_INVALID);
}

static void test_pointers_outside_the_arena_are_invalid(void **state)
{
    arenas *t = *state;
    char outside[64];
    assert_int_equal(nalloc_stage_async(t->device, t->on_device - 1, t->pinned, t->staged, 1, NULL),
                     NALLOC_ERR_INVALID);
    assert_int_equal(nalloc_stage_async(t->device, t->on_device, t->pinned, outside, 64, NULL),
                     NALLOC_ERR_INVALID);
    assert_int_equal(nalloc_stage_async(t->device, NULL, t->pinned, t->staged, 1, NULL),
                     NALLOC_ERR_INVALID);
    assert_int_equal(nalloc_stage_async(t->device, t->on_device, t->pinned, NULL, 1, NULL),
                     NALLOC_ERR_INVALID);
    /* A block of the other arena. */
    assert_int_equal(nalloc_stage_async(t->device, t->staged, t->pinned, t->on_device, 1, NULL),
                     NALLOC_ERR_INVALID);
}

static void test_arenas_of_the_wrong_memory_kinds_are_invalid(void **state)
{
    arenas *t = *state;
    char *h = nalloc_alloc(t->host, 256);
    assert_non_null(h);
    /* host <-> device, host <-> pinned, and same-kind pairs. */
    assert_int_equal(nalloc_stage_async(t->device, t->on_device, t->host, h, 16, NULL),
                     NALLOC_ERR_INVALID);
    assert_int_equal(nalloc_stage_async(t->host, h, t->device, t->on_device, 16, NULL),
                     NALLOC_ERR_INVALID);
    assert_int_equal(nalloc_stage_async(t->pinned, t->staged, t->host, h, 16, NULL),
                     NALLOC_ERR_INVALID);
    assert_int_equal(nalloc_stage_async(t->pinned, t->staged, t->pinned, t->staged + 64, 16, NULL),
                     NALLOC_ERR_INVALID);
    assert_int_equal(nalloc_stage_async(t->device, t->on_device, t->device, t->on_device + 64, 16,
                                        NULL),
                     NALLOC_ERR_INVALID);
    assert_int_equal(nalloc_stage_async(t->host, h, t->host, h + 64, 16, NULL), NALLOC_ERR_INVALID);
}

static void test_null_and_destroyed_arenas_are_refused(void **state)
{
    arenas *t = *state;
    assert_int_equal(nalloc_stage_async(NULL, t->on_device, t->pinned, t->staged, 1, NULL),
                     NALLOC_ERR_INVALID);
    assert_int_equal(nalloc_stage_async(t->device, t->on_device, NULL, t->staged, 1, NULL),
                     NALLOC_ERR_INVALID);
    nalloc_arena *gone = host_arena();
    char *p = nalloc_alloc(gone, 64);
    gone->config.memory = NALLOC_MEMORY_DEVICE;
    assert_int_equal(nalloc_arena_destroy(gone), NALLOC_OK);
    assert_int_equal(nalloc_stage_async(gone, p, t->pinned, t->staged, 1, NULL), NALLOC_ERR_STATE);
    assert_int_equal(nalloc_stage_async(t->pinned, t->staged, gone, p, 1, NULL), NALLOC_ERR_STATE);
}

static void test_a_fallback_pinned_arena_answers_no_device(void **state)
{
    arenas *t = *state;
    if (have_device)
        skip(); /* no fallback happens with a driver */
    nalloc_arena_config c;
    nalloc_arena_config_init(&c, NALLOC_KIND_SCRATCH, NALLOC_MEMORY_PINNED, CAPACITY);
    c.flags |= NALLOC_FLAG_PIN_FALLBACK;
    nalloc_arena *fallback;
    assert_int_equal(nalloc_arena_create(&c, &fallback), NALLOC_OK);
    char *p = nalloc_alloc(fallback, 64);
    assert_int_equal(nalloc_stage_async(t->device, t->on_device, fallback, p, 64, NULL),
                     NALLOC_ERR_NO_DEVICE);
    assert_int_equal(nalloc_stage_async(fallback, p, t->device, t->on_device, 64, NULL),
                     NALLOC_ERR_NO_DEVICE);
    assert_int_equal(nalloc_arena_destroy(fallback), NALLOC_OK);
}

static void test_a_block_released_by_rollback_is_no_longer_stageable(void **state)
{
    arenas *t = *state;
    nalloc_mark m = nalloc_mark_get(t->pinned);
    char *later = nalloc_alloc(t->pinned, 4096);
    assert_non_null(later);
    if (!have_device)
        expect_reaches_cuda(
            nalloc_stage_async(t->device, t->on_device, t->pinned, later, 4096, NULL));
    assert_int_equal(nalloc_rollback(t->pinned, m), NALLOC_OK);
    assert_int_equal(nalloc_stage_async(t->device, t->on_device, t->pinned, later, 4096, NULL),
                     NALLOC_ERR_INVALID);
    assert_int_equal(nalloc_stage_async(t->device, t->on_device, t->pinned, later, 1, NULL),
                     NALLOC_ERR_INVALID);
}

static void test_refusals_leave_both_arenas_as_they_were(void **state)
{
    arenas *t = *state;
    nalloc_stats p0, d0, p1, d1;
    assert_int_equal(nalloc_arena_stats(t->pinned, &p0), NALLOC_OK);
    assert_int_equal(nalloc_arena_stats(t->device, &d0), NALLOC_OK);
    for (size_t size = 1; size < 4 * BLOCK; size = size * 3 + 1) {
        size_t off = size <= BLOCK ? BLOCK - size + 1 : 0; /* one byte too far, or far too big */
        assert_int_equal(upload(t, off, 0, size), NALLOC_ERR_INVALID);
        assert_int_equal(upload(t, 0, off, size), NALLOC_ERR_INVALID);
        assert_int_equal(download(t, off, 0, size), NALLOC_ERR_INVALID);
        assert_int_equal(download(t, 0, off, size), NALLOC_ERR_INVALID);
    }
    assert_int_equal(nalloc_arena_stats(t->pinned, &p1), NALLOC_OK);
    assert_int_equal(nalloc_arena_stats(t->device, &d1), NALLOC_OK);
    assert_memory_equal(&p0, &p1, sizeof p0);
    assert_memory_equal(&d0, &d1, sizeof d0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_ranges_inside_both_blocks_reach_cuda, setup, teardown),
        cmocka_unit_test_setup_teardown(test_an_empty_copy_succeeds_without_cuda, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ranges_past_the_handed_out_part_are_invalid, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_sizes_that_would_wrap_are_invalid, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pointers_outside_the_arena_are_invalid, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_arenas_of_the_wrong_memory_kinds_are_invalid, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_null_and_destroyed_arenas_are_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_fallback_pinned_arena_answers_no_device, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_a_block_released_by_rollback_is_no_longer_stageable,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_refusals_leave_both_arenas_as_they_were, setup,
                                        teardown),
    };
    return cmocka_run_group_tests_name("staging", tests, NULL, NULL);
}
