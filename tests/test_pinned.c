/* tests/test_pinned.c - pinned arenas: what creation answers, with and without a driver.
 *
 * On machines without a CUDA driver (ours, CI) a pinned arena is refused with
 * NALLOC_ERR_NO_DEVICE, or, with NALLOC_FLAG_PIN_FALLBACK, is a locked host arena that says so in
 * its statistics. On a machine with a device the same tests check the other side: the arena is
 * registered, and the fallback flag changes nothing. tests/test_pinned_gpu.c moves data through
 * pinned arenas on a real device.
 */
#include "nalloc/cuda.h"
#include "nalloc/nalloc.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "testutil.h" /* peek_released */

static bool have_device;

static int probe_device(void **state)
{
    (void)state;
    have_device = nalloc_cuda_available() == NALLOC_OK;
    return 0;
}

static nalloc_arena_config pinned_config(nalloc_kind kind, size_t capacity, unsigned extra_flags)
{
    nalloc_arena_config c;
    nalloc_arena_config_init(&c, kind, NALLOC_MEMORY_PINNED, capacity);
    c.flags |= extra_flags;
    return c;
}

static void test_pinned_without_a_driver_is_refused_with_no_device(void **state)
{
    (void)state;
    if (have_device)
        skip();
    nalloc_arena_config c = pinned_config(NALLOC_KIND_POLY, 4 << 20, 0);
    nalloc_arena *a = (nalloc_arena *)&c; /* must be overwritten with NULL */
    assert_int_equal(nalloc_arena_create(&c, &a), NALLOC_ERR_NO_DEVICE);
    assert_null(a);
    assert_int_equal(nalloc_last_error(), NALLOC_ERR_NO_DEVICE);
    assert_true(strlen(nalloc_cuda_error_string()) > 0);
}

static void test_fallback_gives_a_locked_host_arena_and_says_so(void **state)
{
    (void)state;
    nalloc_arena_config c = pinned_config(NALLOC_KIND_SCRATCH, 4 << 20, NALLOC_FLAG_PIN_FALLBACK);
    nalloc_arena *a;
    assert_null(nalloc_alloc(NULL, 1)); /* some earlier failure on this thread */
    char before[256];
    snprintf(before, sizeof before, "%s", nalloc_last_error_message());
    assert_int_equal(nalloc_arena_create(&c, &a), NALLOC_OK);
    assert_int_equal(nalloc_last_error(), NALLOC_ERR_INVALID); /* a success leaves it alone */
    assert_string_equal(nalloc_last_error_message(), before);  /* the probe's failure too */
    assert_string_equal(nalloc_cuda_error_string(), "");
    nalloc_stats s;
    assert_int_equal(nalloc_arena_stats(a, &s), NALLOC_OK);
    assert_int_equal(s.memory, NALLOC_MEMORY_PINNED);
    if (have_device) {
        assert_true(s.pinned);
        assert_false(s.pin_fallback);
        assert_true(s.locked);
    } else {
        assert_false(s.pinned);
        assert_true(s.pin_fallback);
        assert_true(s.requested & NALLOC_FLAG_LOCK); /* the fallback asks for locking */
        /* Locked unless RLIMIT_MEMLOCK refused it, in which case it is reported missing. */
        assert_true(s.locked != ((s.missing & NALLOC_FLAG_LOCK) != 0));
        assert_true(s.pin_seconds == 0.0);
    }
    assert_true(s.guard_pages);
    assert_int_equal(s.capacity, 4 << 20);
    assert_int_equal(nalloc_arena_destroy(a), NALLOC_OK);
}

static void test_fallback_arena_allocates_wipes_and_destroys_like_a_host_arena(void **state)
{
    (void)state;
    nalloc_arena_config c = pinned_config(NALLOC_KIND_WITNESS, 1 << 20, NALLOC_FLAG_PIN_FALLBACK);
    nalloc_arena *a;
    assert_int_equal(nalloc_arena_create(&c, &a), NALLOC_OK);
    unsigned char *p = nalloc_alloc(a, 4096);
    assert_non_null(p);
    assert_int_equal((uintptr_t)p % 64, 0);
    memset(p, 0xa5, 4096);
    assert_int_equal(nalloc_wipe_async(a, NULL), NALLOC_OK); /* synchronous for host memory */
    for (size_t i = 0; i < 4096; i++)
        assert_int_equal(peek_released(p, i), 0);
    nalloc_stats s;
    assert_int_equal(nalloc_arena_stats(a, &s), NALLOC_OK);
    assert_int_equal(s.wiped_bytes, 4096);
    assert_int_equal(s.used, 0);
    memset(nalloc_alloc(a, 100), 0x5a, 100);
    assert_int_equal(nalloc_arena_destroy(a), NALLOC_OK); /* wiped again, then released */
}

static void test_secret_memory_cannot_be_pinned(void **state)
{
    (void)state;
    unsigned variants[] = {NALLOC_FLAG_SECRET, NALLOC_FLAG_SECRET | NALLOC_FLAG_PIN_FALLBACK};
    for (size_t i = 0; i < 2; i++) {
        nalloc_arena_config c = pinned_config(NALLOC_KIND_WITNESS, 1 << 20, variants[i]);
        nalloc_arena *a;
        assert_int_equal(nalloc_arena_create(&c, &a), NALLOC_ERR_UNSUPPORTED);
        assert_null(a);
    }
}

static void test_bad_config_is_invalid_before_any_device_check(void **state)
{
    (void)state;
    nalloc_arena_config c = pinned_config(NALLOC_KIND_POLY, 0, 0);
    nalloc_arena *a;
    assert_int_equal(nalloc_arena_create(&c, &a), NALLOC_ERR_INVALID);
    c = pinned_config(NALLOC_KIND_POLY, 1 << 20, 0);
    c.default_align = 3;
    assert_int_equal(nalloc_arena_create(&c, &a), NALLOC_ERR_INVALID);
    c = pinned_config(NALLOC_KIND_POLY, 1 << 20, 1u << 30); /* an unknown flag */
    assert_int_equal(nalloc_arena_create(&c, &a), NALLOC_ERR_INVALID);
}

static void test_a_small_pin_chunk_still_covers_the_whole_arena(void **state)
{
    (void)state;
    /* 4 MiB in 64 KiB chunks, and a chunk that is not a whole number of pages. */
    size_t chunks[] = {64 << 10, 12345, 0};
    for (size_t i = 0; i < 3; i++) {
        nalloc_arena_config c = pinned_config(NALLOC_KIND_POLY, 4 << 20, NALLOC_FLAG_PIN_FALLBACK);
        c.pin_chunk = chunks[i];
        nalloc_arena *a;
        assert_int_equal(nalloc_arena_create(&c, &a), NALLOC_OK);
        char *p = nalloc_alloc(a, 4 << 20);
        assert_non_null(p);
        memset(p, 1, 4 << 20);
        nalloc_stats s;
        assert_int_equal(nalloc_arena_stats(a, &s), NALLOC_OK);
        assert_true(s.pinned == have_device);
        assert_int_equal(nalloc_arena_destroy(a), NALLOC_OK);
    }
}

static void test_failed_pinned_creation_leaves_host_arenas_alone(void **state)
{
    (void)state;
    nalloc_arena_config hc;
    nalloc_arena_config_init(&hc, NALLOC_KIND_SCRATCH, NALLOC_MEMORY_HOST, 1 << 20);
    nalloc_arena *host;
    assert_int_equal(nalloc_arena_create(&hc, &host), NALLOC_OK);
    char *p = nalloc_alloc(host, 1000);
    memset(p, 7, 1000);
    nalloc_stats before, after;
    assert_int_equal(nalloc_arena_stats(host, &before), NALLOC_OK);
    for (int i = 0; i < 50; i++) {
        nalloc_arena_config c = pinned_config(NALLOC_KIND_POLY, 1 << 20, NALLOC_FLAG_SECRET);
        nalloc_arena *a;
        assert_int_not_equal(nalloc_arena_create(&c, &a), NALLOC_OK);
        if (!have_device) {
            c = pinned_config(NALLOC_KIND_POLY, 1 << 20, 0);
            assert_int_equal(nalloc_arena_create(&c, &a), NALLOC_ERR_NO_DEVICE);
        }
    }
    assert_int_equal(nalloc_arena_stats(host, &after), NALLOC_OK);
    assert_int_equal(after.used, before.used);
    assert_int_equal(after.allocations, before.allocations);
    assert_int_equal(after.failures, before.failures);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(p[i], 7);
    assert_int_equal(nalloc_arena_destroy(host), NALLOC_OK);
}

static void test_a_pinned_context_falls_back_all_or_nothing(void **state)
{
    (void)state;
    nalloc_ctx_config cc;
    nalloc_ctx_config_init(&cc, NALLOC_MEMORY_PINNED, 1 << 20, 1 << 20, 1 << 20);
    nalloc_ctx *ctx;
    if (!have_device) {
        assert_int_equal(nalloc_ctx_create(&cc, &ctx), NALLOC_ERR_NO_DEVICE);
        assert_null(ctx);
    }
    for (int k = 0; k < NALLOC_KIND_COUNT; k++)
        cc.arenas[k].flags |= NALLOC_FLAG_PIN_FALLBACK;
    assert_int_equal(nalloc_ctx_create(&cc, &ctx), NALLOC_OK);
    for (int k = 0; k < NALLOC_KIND_COUNT; k++) {
        nalloc_stats s;
        assert_int_equal(nalloc_arena_stats(nalloc_ctx_arena(ctx, (nalloc_kind)k), &s), NALLOC_OK);
        assert_true(s.pin_fallback != have_device);
    }
    assert_int_equal(nalloc_ctx_destroy(ctx), NALLOC_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pinned_without_a_driver_is_refused_with_no_device),
        cmocka_unit_test(test_fallback_gives_a_locked_host_arena_and_says_so),
        cmocka_unit_test(test_fallback_arena_allocates_wipes_and_destroys_like_a_host_arena),
        cmocka_unit_test(test_secret_memory_cannot_be_pinned),
        cmocka_unit_test(test_bad_config_is_invalid_before_any_device_check),
        cmocka_unit_test(test_a_small_pin_chunk_still_covers_the_whole_arena),
        cmocka_unit_test(test_failed_pinned_creation_leaves_host_arenas_alone),
        cmocka_unit_test(test_a_pinned_context_falls_back_all_or_nothing),
    };
    return cmocka_run_group_tests_name("pinned", tests, probe_device, NULL);
}
