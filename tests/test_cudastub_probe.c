/* tests/test_cudastub_probe.c - what nalloc asks CUDA once per process, failed in turn.
 *
 * nalloc probes for a driver and a device once (nalloc_cuda_available, cuda_common.c) and looks
 * up the driver's pointer-attribute query once (device.c). Both answers are kept for the life of
 * the process, so each failure needs a process of its own: ctest runs this program once per role,
 * with the stand-in set up before nalloc's first CUDA call.
 *
 *   no_device          a machine without a GPU: every entry point answers NALLOC_ERR_NO_DEVICE
 *   probe_fails        cudaGetDeviceCount fails (not for lack of a device): NALLOC_ERR_CUDA
 *   probe_no_driver    cudaGetDeviceCount says the driver is too old: NALLOC_ERR_NO_DEVICE
 *   no_buffer_ids      the driver offers no cuPointerGetAttribute: arenas work, unchecked
 *   entry_point_fails  the entry-point query fails: the same, and its error is not left behind
 */
#include "cudastub.h"
#include "nalloc/cuda.h"
#include "testutil.h"

static void assert_clean(void)
{
    cudastub_counts c = cudastub_counts_now();
    if (c.misuse != 0)
        fail_msg("stand-in misuse: %s", cudastub_misuse_text());
    assert_int_equal(c.blocks, 0);
    assert_int_equal(c.registrations, 0);
    assert_int_equal(cudaPeekAtLastError(), cudaSuccess);
}

static nalloc_status create(nalloc_memory memory, unsigned extra_flags, nalloc_arena **out)
{
    nalloc_arena_config c;
    nalloc_arena_config_init(&c, NALLOC_KIND_WITNESS, memory, 1 << 16);
    c.flags |= extra_flags;
    *out = NULL;
    return nalloc_arena_create(&c, out);
}

/* Every CUDA entry point answers `expected`, and host arenas (and the pinned fallback) work. */
static void assert_every_entry_point_answers(nalloc_status expected)
{
    nalloc_arena *a;
    assert_int_equal(create(NALLOC_MEMORY_DEVICE, 0, &a), expected);
    assert_null(a);
    assert_int_equal(nalloc_last_error(), expected);
    assert_int_equal(create(NALLOC_MEMORY_PINNED, 0, &a), expected);
    assert_null(a);
    nalloc_ctx_config cc;
    nalloc_ctx_config_init(&cc, NALLOC_MEMORY_DEVICE, 1 << 16, 1 << 16, 1 << 16);
    nalloc_ctx *ctx = NULL;
    assert_int_equal(nalloc_ctx_create(&cc, &ctx), expected);
    assert_null(ctx);
    nalloc_window w;
    assert_int_equal(nalloc_window_create(NULL, 4096, &w), expected);
    assert_int_equal(nalloc_window_reset(&w, 0), expected);
    assert_int_equal(nalloc_window_usage(&w, 0, NULL, NULL), expected);

    nalloc_arena *host = NULL;
    assert_int_equal(create(NALLOC_MEMORY_HOST, 0, &host), NALLOC_OK);
    assert_int_equal(nalloc_wipe_async(host, 0), NALLOC_OK); /* needs no device */
    assert_int_equal(create(NALLOC_MEMORY_PINNED, NALLOC_FLAG_PIN_FALLBACK, &a), NALLOC_OK);
    nalloc_stats s = stats_of(a);
    assert_true(s.pin_fallback);
    assert_false(s.pinned);
    void *p = nalloc_alloc(a, 100), *q = nalloc_alloc(host, 100);
    assert_int_equal(nalloc_stage_async(host, q, a, p, 100, 0), NALLOC_ERR_NO_DEVICE);
    assert_int_equal(nalloc_arena_destroy(a), NALLOC_OK);
    assert_int_equal(nalloc_arena_destroy(host), NALLOC_OK);
    assert_int_equal(cudastub_calls(CUDASTUB_MALLOC), 0);
    assert_int_equal(cudastub_calls(CUDASTUB_HOST_REGISTER), 0);
    assert_clean();
}

static void test_without_a_device_every_entry_point_answers_no_device(void **state)
{
    (void)state;
    assert_int_equal(nalloc_cuda_available(), NALLOC_ERR_NO_DEVICE);
    assert_non_null(strstr(nalloc_cuda_error_string(), "cudaErrorNoDevice"));
    assert_every_entry_point_answers(NALLOC_ERR_NO_DEVICE);
    assert_int_equal(cudastub_calls(CUDASTUB_GET_DEVICE_COUNT), 1); /* probed once */
}

static void test_a_failed_probe_is_a_cuda_error_for_the_life_of_the_process(void **state)
{
    (void)state;
    assert_int_equal(nalloc_cuda_available(), NALLOC_ERR_CUDA);
    assert_int_equal(nalloc_last_error(), NALLOC_ERR_CUDA);
    assert_non_null(strstr(nalloc_cuda_error_string(), "cudaGetDeviceCount"));
    assert_non_null(strstr(nalloc_cuda_error_string(), "cudaErrorMemoryAllocation"));
    assert_int_equal(nalloc_cuda_available(), NALLOC_ERR_CUDA);
    assert_every_entry_point_answers(NALLOC_ERR_CUDA);
    assert_int_equal(cudastub_calls(CUDASTUB_GET_DEVICE_COUNT), 1);
    /* Each failure that the probe caused carries the probe's text (the CUDA text belongs to
     * the thread's last failure, nalloc/cuda.h), however much failed in between. */
    assert_int_equal(nalloc_cuda_available(), NALLOC_ERR_CUDA);
    assert_non_null(strstr(nalloc_cuda_error_string(), "cudaGetDeviceCount"));
}

static void test_a_driver_too_old_is_no_device(void **state)
{
    (void)state;
    assert_int_equal(nalloc_cuda_available(), NALLOC_ERR_NO_DEVICE);
    assert_non_null(strstr(nalloc_cuda_error_string(), "cudaErrorInsufficientDriver"));
    assert_every_entry_point_answers(NALLOC_ERR_NO_DEVICE);
}

/* Without the buffer-id query, device arenas work and nothing is checked. */
static void assert_device_arenas_work_unchecked(void)
{
    assert_int_equal(nalloc_cuda_available(), NALLOC_OK);
    assert_null(nalloc_alloc(NULL, 1)); /* a last error that successes must leave alone */
    nalloc_arena *a;
    assert_int_equal(create(NALLOC_MEMORY_DEVICE, 0, &a), NALLOC_OK);
    assert_int_equal(nalloc_last_error(), NALLOC_ERR_INVALID);
    char *p = nalloc_alloc(a, 4096);
    cudastub_fill(p, 0x5a, 4096);
    assert_int_equal(nalloc_wipe(a), NALLOC_OK);
    unsigned char bytes[4096];
    cudastub_peek(bytes, p, sizeof bytes);
    for (size_t i = 0; i < sizeof bytes; i++)
        assert_int_equal(bytes[i], 0);
    assert_int_equal(nalloc_arena_destroy(a), NALLOC_OK);
    assert_int_equal(nalloc_last_error(), NALLOC_ERR_INVALID);
    assert_int_equal(cudastub_calls(CUDASTUB_GET_DRIVER_ENTRY_POINT), 1); /* looked up once */
    assert_int_equal(cudastub_calls(CUDASTUB_POINTER_GET_ATTRIBUTE), 0);
    assert_clean();
}

static void test_without_buffer_ids_device_arenas_work_unchecked(void **state)
{
    (void)state;
    assert_device_arenas_work_unchecked();
}

static void test_a_failed_entry_point_query_is_not_left_behind(void **state)
{
    (void)state;
    assert_device_arenas_work_unchecked();
}

int main(int argc, char **argv)
{
    const char *role = argc > 1 ? argv[1] : "";
    cudastub_config config;
    cudastub_config_default(&config);
    struct CMUnitTest test;
    if (strcmp(role, "no_device") == 0) {
        config.devices = 0;
        cudastub_reset(&config);
        test = (struct CMUnitTest)cmocka_unit_test(
            test_without_a_device_every_entry_point_answers_no_device);
    } else if (strcmp(role, "probe_fails") == 0) {
        cudastub_reset(&config);
        cudastub_fail(CUDASTUB_GET_DEVICE_COUNT, 1, cudaErrorMemoryAllocation);
        test = (struct CMUnitTest)cmocka_unit_test(
            test_a_failed_probe_is_a_cuda_error_for_the_life_of_the_process);
    } else if (strcmp(role, "probe_no_driver") == 0) {
        cudastub_reset(&config);
        cudastub_fail(CUDASTUB_GET_DEVICE_COUNT, 1, cudaErrorInsufficientDriver);
        test = (struct CMUnitTest)cmocka_unit_test(test_a_driver_too_old_is_no_device);
    } else if (strcmp(role, "no_buffer_ids") == 0) {
        config.buffer_ids = false;
        cudastub_reset(&config);
        test = (struct CMUnitTest)cmocka_unit_test(
            test_without_buffer_ids_device_arenas_work_unchecked);
    } else if (strcmp(role, "entry_point_fails") == 0) {
        cudastub_reset(&config);
        cudastub_fail(CUDASTUB_GET_DRIVER_ENTRY_POINT, 1, cudaErrorMemoryAllocation);
        test = (struct CMUnitTest)cmocka_unit_test(
            test_a_failed_entry_point_query_is_not_left_behind);
    } else {
        fprintf(stderr, "usage: %s no_device|probe_fails|probe_no_driver|no_buffer_ids|"
                        "entry_point_fails\n", argv[0]);
        return 2;
    }
    const struct CMUnitTest tests[] = {test};
    return cmocka_run_group_tests_name(role, tests, NULL, NULL);
}
