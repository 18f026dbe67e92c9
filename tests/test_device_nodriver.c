/* tests/test_device_nodriver.c - every CUDA entry point of the device layer, with no driver.
 *
 * This machine and CI have the CUDA toolkit but no driver and no GPU: that is how most builds of
 * nalloc will first meet CUDA. Every call must answer NALLOC_ERR_NO_DEVICE (bad arguments
 * NALLOC_ERR_INVALID, whatever the machine), never crash, leave the CUDA error's text readable,
 * and leave host arenas working. Where CUDA answers anything but "no device" (a machine with a
 * GPU) this suite has nothing to check and exits 77 (skipped); test_device_gpu covers that case.
 */
#include "nalloc/cuda.h"
#include "nalloc/nalloc.h"

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "testutil.h" /* peek_released */

static void assert_no_device_text(void)
{
    const char *text = nalloc_cuda_error_string();
    assert_non_null(text);
    assert_true(strlen(text) > 0);
}

static void test_cuda_reports_no_device(void **state)
{
    (void)state;
    assert_int_equal(nalloc_cuda_available(), NALLOC_ERR_NO_DEVICE);
    assert_int_equal(nalloc_last_error(), NALLOC_ERR_NO_DEVICE);
    assert_no_device_text();
}

static void test_device_arena_creation_reports_no_device(void **state)
{
    (void)state;
    for (int kind = 0; kind < NALLOC_KIND_COUNT; kind++) {
        nalloc_arena_config c;
        nalloc_arena_config_init(&c, (nalloc_kind)kind, NALLOC_MEMORY_DEVICE, 1 << 20);
        nalloc_arena *a = (nalloc_arena *)(uintptr_t)1;
        assert_int_equal(nalloc_arena_create(&c, &a), NALLOC_ERR_NO_DEVICE);
        assert_null(a);
        assert_int_equal(nalloc_last_error(), NALLOC_ERR_NO_DEVICE);
        assert_no_device_text();

        c.capacity = 0; /* sized from free device memory */
        c.device_fraction = 0.5;
        assert_int_equal(nalloc_arena_create(&c, &a), NALLOC_ERR_NO_DEVICE);
        assert_null(a);
    }
}

static void test_device_context_creation_reports_no_device(void **state)
{
    (void)state;
    nalloc_ctx_config c;
    nalloc_ctx_config_init(&c, NALLOC_MEMORY_DEVICE, 1 << 20, 1 << 20, 1 << 20);
    nalloc_ctx *ctx = (nalloc_ctx *)(uintptr_t)1;
    assert_int_equal(nalloc_ctx_create(&c, &ctx), NALLOC_ERR_NO_DEVICE);
    assert_null(ctx);
}

static void test_bad_device_configs_are_invalid_even_without_a_device(void **state)
{
    (void)state;
    nalloc_arena_config c;
    nalloc_arena *a;
    const double fractions[] = {0.0, -0.5, 1.5, NAN, INFINITY};
    for (size_t i = 0; i < sizeof fractions / sizeof fractions[0]; i++) {
        nalloc_arena_config_init(&c, NALLOC_KIND_SCRATCH, NALLOC_MEMORY_DEVICE, 0);
        c.device_fraction = fractions[i];
        assert_int_equal(nalloc_arena_create(&c, &a), NALLOC_ERR_INVALID);
        assert_null(a);
    }
    nalloc_arena_config_init(&c, NALLOC_KIND_SCRATCH, NALLOC_MEMORY_DEVICE, 1 << 20);
    c.device = -1;
    assert_int_equal(nalloc_arena_create(&c, &a), NALLOC_ERR_INVALID);
    /* Host page protections cannot be had on device memory: refused under STRICT. */
    nalloc_arena_config_init(&c, NALLOC_KIND_WITNESS, NALLOC_MEMORY_DEVICE, 1 << 20);
    c.flags |= NALLOC_FLAG_LOCK | NALLOC_FLAG_STRICT;
    assert_int_equal(nalloc_arena_create(&c, &a), NALLOC_ERR_UNSUPPORTED);
    assert_null(a);
}

static void test_device_arena_defaults_follow_cudamalloc(void **state)
{
    (void)state;
    nalloc_arena_config c;
    nalloc_arena_config_init(&c, NALLOC_KIND_POLY, NALLOC_MEMORY_DEVICE, 1 << 20);
    assert_int_equal(c.default_align, 256);
    assert_int_equal(c.large_align, 4096);
    assert_int_equal(c.large_threshold, 1 << 20);
    assert_int_equal(c.device, 0);
    assert_int_equal(c.device_slack, (size_t)256 << 20);
}

static void test_window_calls_report_no_device(void **state)
{
    (void)state;
    nalloc_window w;
    memset(&w, 0xab, sizeof w);
    assert_int_equal(nalloc_window_create(NULL, 4096, &w), NALLOC_ERR_NO_DEVICE);
    nalloc_window zero;
    memset(&zero, 0, sizeof zero);
    assert_memory_equal(&w, &zero, sizeof w); /* a failed create leaves a zeroed window */
    assert_int_equal(nalloc_window_create_aligned(NULL, 4096, 256, &w), NALLOC_ERR_NO_DEVICE);
    assert_int_equal(nalloc_window_reset(&w, NULL), NALLOC_ERR_NO_DEVICE);
    size_t used = 77;
    bool overflowed = true;
    assert_int_equal(nalloc_window_usage(&w, NULL, &used, &overflowed), NALLOC_ERR_NO_DEVICE);
    assert_int_equal(used, 77); /* outputs untouched on failure */
    assert_true(overflowed);
    assert_int_equal(nalloc_window_reset(NULL, NULL), NALLOC_ERR_NO_DEVICE);
    assert_int_equal(nalloc_window_usage(NULL, NULL, NULL, NULL), NALLOC_ERR_NO_DEVICE);
    assert_int_equal(nalloc_last_error(), NALLOC_ERR_NO_DEVICE);
}

static void test_window_create_without_an_output_is_invalid(void **state)
{
    (void)state;
    assert_int_equal(nalloc_window_create(NULL, 4096, NULL), NALLOC_ERR_INVALID);
    assert_int_equal(nalloc_last_error(), NALLOC_ERR_INVALID);
}

/* The one CUDA entry point that needs no device: a host arena's wipe ignores the stream. */
static void test_wipe_async_wipes_a_host_arena_without_a_device(void **state)
{
    (void)state;
    nalloc_arena_config c;
    nalloc_arena_config_init(&c, NALLOC_KIND_SCRATCH, NALLOC_MEMORY_HOST, 1 << 16);
    nalloc_arena *a;
    assert_int_equal(nalloc_arena_create(&c, &a), NALLOC_OK);
    unsigned char *p = nalloc_alloc(a, 1000);
    assert_non_null(p);
    memset(p, 0x5a, 1000);
    assert_int_equal(nalloc_wipe_async(a, NULL), NALLOC_OK);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(peek_released(p, (size_t)i), 0);
    nalloc_stats s;
    assert_int_equal(nalloc_arena_stats(a, &s), NALLOC_OK);
    assert_int_equal(s.used, 0);
    assert_int_equal(s.wipes, 1);
    assert_int_equal(nalloc_arena_destroy(a), NALLOC_OK);
    assert_int_equal(nalloc_wipe_async(NULL, NULL), NALLOC_ERR_INVALID);
}

/* The error model holds on the CUDA path too (nalloc.h, "Errors"): the failing call's message
 * names it and carries the CUDA cause, which is also nalloc_cuda_error_string; calls that succeed
 * afterwards, CUDA entry points included, change neither; a clear empties both. */
static void test_cuda_failures_follow_the_error_model(void **state)
{
    (void)state;
    nalloc_arena_config c;
    nalloc_arena_config_init(&c, NALLOC_KIND_SCRATCH, NALLOC_MEMORY_DEVICE, 1 << 20);
    c.name = "columns";
    nalloc_arena *dev;
    assert_int_equal(nalloc_arena_create(&c, &dev), NALLOC_ERR_NO_DEVICE);
    const char *m = nalloc_last_error_message();
    assert_true(strncmp(m, "nalloc_arena_create: arena \"columns\": cudaGetDeviceCount: ",
                        strlen("nalloc_arena_create: arena \"columns\": cudaGetDeviceCount: ")) ==
                0);
    char cuda[256];
    snprintf(cuda, sizeof cuda, "%s", nalloc_cuda_error_string());
    assert_true(strncmp(cuda, "cudaGetDeviceCount: ", 20) == 0);
    assert_non_null(strstr(m, cuda)); /* the same text, in the message */
    char message[320];
    snprintf(message, sizeof message, "%s", m);

    /* Successes, some of them through the CUDA layer, leave all three alone. */
    nalloc_arena *host;
    nalloc_arena_config_init(&c, NALLOC_KIND_WITNESS, NALLOC_MEMORY_HOST, 1 << 16);
    assert_int_equal(nalloc_arena_create(&c, &host), NALLOC_OK);
    assert_non_null(nalloc_alloc(host, 100));
    assert_int_equal(nalloc_wipe_async(host, NULL), NALLOC_OK);
    assert_int_equal(nalloc_arena_destroy(host), NALLOC_OK);
    assert_int_equal(nalloc_last_error(), NALLOC_ERR_NO_DEVICE);
    assert_string_equal(nalloc_last_error_message(), message);
    assert_string_equal(nalloc_cuda_error_string(), cuda);

    /* A failure without a CUDA cause leaves no stale CUDA text behind. */
    assert_int_equal(nalloc_window_create(NULL, 4096, NULL), NALLOC_ERR_INVALID);
    assert_string_equal(nalloc_last_error_message(), "nalloc_window_create: out is NULL");
    assert_string_equal(nalloc_cuda_error_string(), "");
    assert_int_equal(nalloc_cuda_available(), NALLOC_ERR_NO_DEVICE);
    assert_true(strncmp(nalloc_last_error_message(), "nalloc_cuda_available: ", 23) == 0);
    nalloc_window w;
    assert_int_equal(nalloc_window_create_aligned(NULL, 4096, 256, &w), NALLOC_ERR_NO_DEVICE);
    assert_true(strncmp(nalloc_last_error_message(), "nalloc_window_create_aligned: ", 30) == 0);
    nalloc_last_error_clear();
    assert_int_equal(nalloc_last_error(), NALLOC_OK);
    assert_string_equal(nalloc_last_error_message(), "");
    assert_string_equal(nalloc_cuda_error_string(), "");
}

static void test_host_arenas_work_after_device_failures(void **state)
{
    (void)state;
    nalloc_arena_config c;
    nalloc_arena *dev = NULL;
    nalloc_arena_config_init(&c, NALLOC_KIND_WITNESS, NALLOC_MEMORY_DEVICE, 1 << 20);
    assert_int_equal(nalloc_arena_create(&c, &dev), NALLOC_ERR_NO_DEVICE);

    nalloc_arena *host;
    nalloc_arena_config_init(&c, NALLOC_KIND_WITNESS, NALLOC_MEMORY_HOST, 1 << 20);
    assert_int_equal(nalloc_arena_create(&c, &host), NALLOC_OK);
    nalloc_window w;
    /* A host arena is no place for a window; with no device the answer is still NO_DEVICE. */
    assert_int_equal(nalloc_window_create(host, 4096, &w), NALLOC_ERR_NO_DEVICE);
    unsigned char *p = nalloc_alloc(host, 4096);
    assert_non_null(p);
    assert_int_equal((uintptr_t)p % 64, 0);
    memset(p, 1, 4096);
    assert_int_equal(nalloc_wipe(host), NALLOC_OK);
    assert_int_equal(peek_released(p, 4095), 0);
    nalloc_stats s;
    assert_int_equal(nalloc_arena_stats(host, &s), NALLOC_OK);
    assert_int_equal(s.allocations, 1);
    assert_int_equal(s.failures, 0);
    assert_int_equal(nalloc_arena_destroy(host), NALLOC_OK);
}

int main(void)
{
    if (nalloc_cuda_available() != NALLOC_ERR_NO_DEVICE) {
        fprintf(stderr, "device_nodriver: CUDA is usable here (or fails otherwise: %s); "
                        "nothing to check\n", nalloc_cuda_error_string());
        return 77;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cuda_reports_no_device),
        cmocka_unit_test(test_device_arena_creation_reports_no_device),
        cmocka_unit_test(test_device_context_creation_reports_no_device),
        cmocka_unit_test(test_bad_device_configs_are_invalid_even_without_a_device),
        cmocka_unit_test(test_device_arena_defaults_follow_cudamalloc),
        cmocka_unit_test(test_window_calls_report_no_device),
        cmocka_unit_test(test_window_create_without_an_output_is_invalid),
        cmocka_unit_test(test_wipe_async_wipes_a_host_arena_without_a_device),
        cmocka_unit_test(test_cuda_failures_follow_the_error_model),
        cmocka_unit_test(test_host_arenas_work_after_device_failures),
    };
    return cmocka_run_group_tests_name("device_nodriver", tests, NULL, NULL);
}
