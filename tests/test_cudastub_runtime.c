/* tests/test_cudastub_runtime.c - the CUDA runtime stand-in models what nalloc relies on.
 *
 * The suites that run nalloc's CUDA layer against the stand-in (test_cudastub_*.c) are only as
 * good as its model, so the model is tested here first, with plain runtime calls: device memory
 * that host code cannot touch and whose bounds are guarded, queued work that runs in stream order
 * only when waited for, sticky and non-sticky errors, a context reset that kills blocks and
 * reissues their addresses, registration bookkeeping, and faults on demand.
 */
#include "cudastub.h"
#include "testutil.h"

#include <cuda.h>
#include <pthread.h>

static int reset_stub(void **state)
{
    (void)state;
    cudastub_reset(NULL);
    return 0;
}

static void assert_no_misuse(void)
{
    cudastub_counts c = cudastub_counts_now();
    if (c.misuse != 0)
        fail_msg("stand-in misuse: %s", cudastub_misuse_text());
}

/* ---- Device memory ---- */

static void test_malloc_gives_aligned_blocks_holding_old_data(void **state)
{
    (void)state;
    size_t free_before, total;
    assert_int_equal(cudaMemGetInfo(&free_before, &total), cudaSuccess);
    assert_int_equal(total, (size_t)64 << 20);
    assert_int_equal(free_before, total);
    void *p = NULL;
    assert_int_equal(cudaMalloc(&p, 1000), cudaSuccess);
    assert_non_null(p);
    assert_int_equal((uintptr_t)p % 256, 0);
    size_t free_after;
    assert_int_equal(cudaMemGetInfo(&free_after, &total), cudaSuccess);
    assert_int_equal(free_before - free_after, 1000);
    unsigned char bytes[1000];
    cudastub_peek(bytes, p, sizeof bytes);
    for (size_t i = 0; i < sizeof bytes; i++)
        assert_int_equal(bytes[i], 0xA5); /* not zeroed, as cudaMalloc's memory is not */
    assert_true(cudastub_block_of(0, p, 1000) != 0);
    assert_int_equal(cudastub_block_of(1, p, 1000), 0); /* device 0's, not device 1's */
    assert_int_equal(cudastub_block_of(0, p, 1001), 0);
    assert_int_equal(cudaFree(p), cudaSuccess);
    assert_int_equal(cudastub_counts_now().blocks, 0);
    assert_no_misuse();
}

static void test_malloc_beyond_the_device_memory_fails(void **state)
{
    (void)state;
    void *p = NULL;
    assert_int_equal(cudaMalloc(&p, (size_t)65 << 20), cudaErrorMemoryAllocation);
    assert_int_equal(cudaGetLastError(), cudaErrorMemoryAllocation);
    assert_int_equal(cudaGetLastError(), cudaSuccess); /* not sticky */
    assert_int_equal(cudaMalloc(&p, (size_t)64 << 20), cudaSuccess);
    assert_int_equal(cudaFree(p), cudaSuccess);
}

static void touch_device_memory(void *p)
{
    *(volatile char *)p = 1;
}

static void test_host_code_cannot_touch_device_memory(void **state)
{
    (void)state;
    void *p = NULL;
    assert_int_equal(cudaMalloc(&p, 4096), cudaSuccess);
    assert_true(killed_by(run_in_child(touch_device_memory, p), SIGSEGV));
    assert_int_equal(cudaFree(p), cudaSuccess);
}

static void test_double_free_is_refused_and_counted(void **state)
{
    (void)state;
    void *p = NULL;
    assert_int_equal(cudaMalloc(&p, 4096), cudaSuccess);
    assert_int_equal(cudaFree(p), cudaSuccess);
    assert_int_equal(cudaFree(p), cudaErrorInvalidValue);
    assert_int_equal(cudastub_counts_now().misuse, 1);
    assert_non_null(strstr(cudastub_misuse_text(), "cudaFree"));
    assert_int_equal(cudaFree(NULL), cudaSuccess); /* frees nothing, as in CUDA */
}

/* A test kernel that writes one byte past the range it was given. */
static cudaError_t overrun_twin(const cudastub_launch *l)
{
    unsigned char *p = *(unsigned char *const *)l->args[0];
    size_t len = *(const size_t *)l->args[1];
    if (!cudastub_kernel_access(l->device, p, len))
        return cudaErrorIllegalAddress;
    p[len] = 0;
    return cudaSuccess;
}

static const cudastub_twin overrun = {
    .kernel = "test_overrun",
    .arg_count = 2,
    .arg_sizes = {sizeof(unsigned char *), sizeof(size_t)},
    .run = overrun_twin,
};

/* What nvcc's registration code does for a kernel, for a C test without nvcc. */
void __cudaRegisterFunction(void **handle, const char *host_fun, char *device_fun,
                            const char *device_name, int thread_limit, uint3 *tid, uint3 *bid,
                            dim3 *block_dim, dim3 *grid_dim, int *warp_size);
static char overrun_stub; /* its "host stub": only the address matters */

static cudaError_t launch_overrun(void *p, size_t len, cudaStream_t stream)
{
    void *args[] = {&p, &len};
    return cudaLaunchKernel(&overrun_stub, (dim3){1, 1, 1}, (dim3){1, 1, 1}, args, 0, stream);
}

static void test_a_kernel_writing_past_its_block_is_caught(void **state)
{
    (void)state;
    unsigned char *p = NULL;
    assert_int_equal(cudaMalloc((void **)&p, 1000), cudaSuccess); /* slack after the end */
    assert_int_equal(launch_overrun(p, 1000, NULL), cudaSuccess);
    assert_int_equal(cudastub_counts_now().misuse, 0); /* queued, not run */
    assert_int_equal(cudaDeviceSynchronize(), cudaSuccess);
    assert_int_equal(cudastub_counts_now().misuse, 1);
    assert_non_null(strstr(cudastub_misuse_text(), "past the end"));
    assert_int_equal(cudaFree(p), cudaSuccess);
}

static void test_a_kernel_outside_every_block_faults_stickily(void **state)
{
    (void)state;
    unsigned char *p = NULL;
    assert_int_equal(cudaMalloc((void **)&p, 4096), cudaSuccess);
    assert_int_equal(launch_overrun(p, 8192, NULL), cudaSuccess);
    assert_int_equal(cudaStreamSynchronize(NULL), cudaErrorIllegalAddress);
    assert_int_equal(cudaMalloc((void **)&p, 16), cudaErrorIllegalAddress);
    assert_int_equal(cudaGetLastError(), cudaErrorIllegalAddress);
    assert_int_equal(cudaGetLastError(), cudaErrorIllegalAddress); /* sticky */
    assert_int_equal(cudaDeviceReset(), cudaSuccess);
    assert_int_equal(cudaGetLastError(), cudaSuccess);
    assert_int_equal(cudastub_counts_now().blocks, 0);
}

static void test_a_launch_without_a_twin_or_with_bad_geometry_is_refused(void **state)
{
    (void)state;
    static char unknown;
    void *p = NULL;
    size_t len = 0;
    void *args[] = {&p, &len};
    assert_int_equal(cudaLaunchKernel(&unknown, (dim3){1, 1, 1}, (dim3){1, 1, 1}, args, 0, NULL),
                     cudaErrorInvalidDeviceFunction);
    assert_int_equal(cudaLaunchKernel(&overrun_stub, (dim3){0, 1, 1}, (dim3){1, 1, 1}, args, 0,
                                      NULL),
                     cudaErrorInvalidConfiguration);
    assert_int_equal(cudaLaunchKernel(&overrun_stub, (dim3){1, 1, 1}, (dim3){2048, 1, 1}, args, 0,
                                      NULL),
                     cudaErrorInvalidConfiguration);
    assert_int_equal(cudastub_counts_now().misuse, 3);
    assert_int_equal(cudastub_counts_now().launches, 0);
}

/* ---- Streams ---- */

static void test_queued_work_runs_only_when_waited_for(void **state)
{
    (void)state;
    unsigned char *p = NULL, byte;
    assert_int_equal(cudaMalloc((void **)&p, 4096), cudaSuccess);
    assert_int_equal(cudaMemsetAsync(p, 0x11, 4096, cudaStreamPerThread), cudaSuccess);
    assert_int_equal(cudastub_counts_now().pending, 1);
    cudastub_peek(&byte, p + 4095, 1);
    assert_int_equal(byte, 0xA5);
    assert_int_equal(cudaStreamSynchronize(NULL), cudaSuccess); /* legacy waits for it */
    cudastub_peek(&byte, p + 4095, 1);
    assert_int_equal(byte, 0x11);

    /* A download into registered memory is queued like the rest... */
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    unsigned char *pinned = aligned_alloc(page, page);
    assert_non_null(pinned);
    memset(pinned, 0, page);
    assert_int_equal(cudaHostRegister(pinned, page, cudaHostRegisterPortable), cudaSuccess);
    assert_int_equal(cudaMemsetAsync(p, 0x22, 16, cudaStreamPerThread), cudaSuccess);
    assert_int_equal(cudaMemcpyAsync(pinned, p, 16, cudaMemcpyDeviceToHost, cudaStreamPerThread),
                     cudaSuccess);
    assert_int_equal(pinned[0], 0); /* in flight */
    assert_int_equal(cudaStreamSynchronize(cudaStreamPerThread), cudaSuccess);
    assert_int_equal(pinned[0], 0x22);
    assert_int_equal(cudaHostUnregister(pinned), cudaSuccess);
    free(pinned);
    /* ...while one into pageable memory is complete when the call returns, after the stream's
     * earlier work, and one from pageable memory has taken its bytes, as CUDA documents. */
    unsigned char pageable[16];
    memset(pageable, 0x33, sizeof pageable);
    assert_int_equal(cudaMemcpyAsync(p, pageable, 16, cudaMemcpyHostToDevice,
                                     cudaStreamPerThread),
                     cudaSuccess);
    memset(pageable, 0, sizeof pageable); /* too late to change what is copied */
    assert_int_equal(cudastub_counts_now().pending, 1);
    assert_int_equal(cudaMemcpyAsync(pageable, p + 8, 8, cudaMemcpyDeviceToHost,
                                     cudaStreamPerThread),
                     cudaSuccess);
    assert_int_equal(cudastub_counts_now().pending, 0);
    assert_int_equal(pageable[7], 0x33);
    assert_int_equal(cudaFree(p), cudaSuccess);
    assert_no_misuse();
}

static void test_streams_keep_their_order_and_the_legacy_stream_waits_for_blocking_ones(
    void **state)
{
    (void)state;
    unsigned char *p = NULL, byte;
    cudaStream_t blocking, nonblocking;
    assert_int_equal(cudaMalloc((void **)&p, 64), cudaSuccess);
    assert_int_equal(cudaStreamCreate(&blocking), cudaSuccess);
    assert_int_equal(cudaStreamCreateWithFlags(&nonblocking, cudaStreamNonBlocking), cudaSuccess);

    assert_int_equal(cudaMemsetAsync(p, 1, 64, blocking), cudaSuccess);
    assert_int_equal(cudaMemsetAsync(p, 2, 32, blocking), cudaSuccess);
    assert_int_equal(cudaMemsetAsync(p + 32, 3, 32, nonblocking), cudaSuccess);
    assert_int_equal(cudaMemsetAsync(p, 4, 16, NULL), cudaSuccess);
    assert_int_equal(cudaStreamSynchronize(NULL), cudaSuccess);
    cudastub_peek(&byte, p, 1);
    assert_int_equal(byte, 4); /* after both blocking-stream memsets */
    cudastub_peek(&byte, p + 20, 1);
    assert_int_equal(byte, 2);
    cudastub_peek(&byte, p + 40, 1);
    assert_int_equal(byte, 1); /* the non-blocking stream's memset has not run */
    assert_int_equal(cudastub_counts_now().pending, 1);
    assert_int_equal(cudaStreamDestroy(nonblocking), cudaSuccess); /* its work completes */
    cudastub_peek(&byte, p + 40, 1);
    assert_int_equal(byte, 3);
    assert_int_equal(cudaStreamDestroy(blocking), cudaSuccess);
    assert_int_equal(cudaMemsetAsync(p, 0, 1, blocking), cudaErrorInvalidResourceHandle);
    assert_int_equal(cudaFree(p), cudaSuccess);
    assert_no_misuse();
}

static void test_work_goes_to_streams_of_the_current_device_only(void **state)
{
    (void)state;
    void *p = NULL;
    cudaStream_t on_one;
    assert_int_equal(cudaSetDevice(1), cudaSuccess);
    assert_int_equal(cudaStreamCreate(&on_one), cudaSuccess);
    assert_int_equal(cudaSetDevice(0), cudaSuccess);
    assert_int_equal(cudaMalloc(&p, 64), cudaSuccess);
    assert_int_equal(cudaMemsetAsync(p, 0, 64, on_one), cudaErrorInvalidResourceHandle);
    assert_int_equal(cudaSetDevice(1), cudaSuccess);
    assert_int_equal(cudaMemsetAsync(p, 0, 64, on_one), cudaErrorInvalidValue); /* device 0's */
    assert_int_equal(cudastub_counts_now().misuse, 1);
    assert_int_equal(cudaSetDevice(0), cudaSuccess);
    assert_int_equal(cudaFree(p), cudaSuccess);
}

static void *report_device(void *out)
{
    assert_int_equal(cudaGetDevice(out), cudaSuccess);
    return NULL;
}

static void test_the_current_device_is_per_thread(void **state)
{
    (void)state;
    assert_int_equal(cudaSetDevice(1), cudaSuccess);
    int theirs = -1, mine = -1;
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, report_device, &theirs), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(theirs, 0);
    assert_int_equal(cudaGetDevice(&mine), cudaSuccess);
    assert_int_equal(mine, 1);
    assert_int_equal(cudaSetDevice(2), cudaErrorInvalidDevice);
    assert_int_equal(cudaGetDevice(&mine), cudaSuccess);
    assert_int_equal(mine, 1);
}

/* ---- Resets and buffer ids ---- */

typedef CUresult (*pointer_attribute_fn)(void *, CUpointer_attribute, CUdeviceptr);

static pointer_attribute_fn pointer_attribute(void)
{
    void *fn = NULL;
    enum cudaDriverEntryPointQueryResult found;
    assert_int_equal(cudaGetDriverEntryPointByVersion("cuPointerGetAttribute", &fn, 12000,
                                                      cudaEnableDefault, &found),
                     cudaSuccess);
    assert_int_equal(found, cudaDriverEntryPointSuccess);
    pointer_attribute_fn f;
    *(void **)&f = fn;
    return f;
}

static void test_a_reset_kills_blocks_and_reissues_their_addresses(void **state)
{
    (void)state;
    pointer_attribute_fn query = pointer_attribute();
    void *old = NULL, *other = NULL, *again = NULL;
    unsigned long long id = 0, new_id = 0;
    assert_int_equal(cudaMalloc(&old, 8192), cudaSuccess);
    assert_int_equal(query(&id, CU_POINTER_ATTRIBUTE_BUFFER_ID, (CUdeviceptr)old), CUDA_SUCCESS);
    assert_true(id != 0);
    assert_int_equal(cudaSetDevice(1), cudaSuccess);
    assert_int_equal(cudaMalloc(&other, 8192), cudaSuccess);
    assert_int_equal(cudaSetDevice(0), cudaSuccess);

    assert_int_equal(cudaDeviceReset(), cudaSuccess);
    assert_int_equal(cudastub_counts_now().blocks, 1); /* device 1's survives */
    /* No current context until a runtime call makes the new one current. */
    assert_int_equal(query(&id, CU_POINTER_ATTRIBUTE_BUFFER_ID, (CUdeviceptr)old),
                     CUDA_ERROR_INVALID_CONTEXT);
    assert_int_equal(cudaFree(NULL), cudaSuccess);
    assert_int_equal(query(&id, CU_POINTER_ATTRIBUTE_BUFFER_ID, (CUdeviceptr)old),
                     CUDA_ERROR_INVALID_VALUE);
    assert_int_equal(cudaMalloc(&again, 8192), cudaSuccess);
    assert_ptr_equal(again, old);
    assert_int_equal(query(&new_id, CU_POINTER_ATTRIBUTE_BUFFER_ID, (CUdeviceptr)old),
                     CUDA_SUCCESS);
    assert_true(new_id != id);
    assert_int_equal(cudaFree(again), cudaSuccess);
    assert_int_equal(cudaFree(again), cudaErrorInvalidValue); /* the old block is no more */
    assert_int_equal(cudaSetDevice(1), cudaSuccess);
    assert_int_equal(cudaFree(other), cudaSuccess);
    assert_int_equal(cudastub_counts_now().misuse, 1);
}

/* ---- Registration ---- */

static void test_registration_bookkeeping_refuses_doubles_and_strangers(void **state)
{
    (void)state;
    size_t size = 4 * (size_t)sysconf(_SC_PAGESIZE);
    char *host = aligned_alloc((size_t)sysconf(_SC_PAGESIZE), size);
    assert_non_null(host);
    assert_int_equal(cudaHostRegister(host, size, cudaHostRegisterPortable), cudaSuccess);
    unsigned flags = 0;
    assert_true(cudastub_is_registered(host + 100, 100, &flags));
    assert_int_equal(flags, cudaHostRegisterPortable);
    assert_int_equal(cudaHostRegister(host + size / 2, size / 2, 0),
                     cudaErrorHostMemoryAlreadyRegistered);
    assert_int_equal(cudaHostUnregister(host + 1), cudaErrorHostMemoryNotRegistered);
    assert_int_equal(cudastub_counts_now().misuse, 2);
    assert_int_equal(cudastub_counts_now().registrations, 1);
    assert_int_equal(cudaHostUnregister(host), cudaSuccess);
    assert_int_equal(cudaHostUnregister(host), cudaErrorHostMemoryNotRegistered);
    assert_int_equal(cudastub_counts_now().registrations, 0);
    free(host);
}

/* ---- Faults ---- */

static void test_the_nth_call_fails_once_and_calls_are_traced(void **state)
{
    (void)state;
    void *p = NULL, *q = NULL;
    cudastub_trace_begin();
    cudastub_fail(CUDASTUB_MALLOC, 2, cudaErrorMemoryAllocation);
    assert_int_equal(cudaMalloc(&p, 64), cudaSuccess);
    assert_int_equal(cudaMalloc(&q, 64), cudaErrorMemoryAllocation);
    assert_int_equal(cudaMalloc(&q, 64), cudaSuccess);
    assert_int_equal(cudaFree(p), cudaSuccess);
    assert_int_equal(cudaFree(q), cudaSuccess);
    cudastub_fn trace[8];
    assert_int_equal(cudastub_trace(trace, 8), 5);
    assert_int_equal(trace[1], CUDASTUB_MALLOC);
    assert_int_equal(trace[4], CUDASTUB_FREE);
    assert_int_equal(cudastub_calls(CUDASTUB_MALLOC), 3);
    assert_string_equal(cudastub_fn_name(CUDASTUB_MALLOC), "cudaMalloc");
    assert_int_equal(cudastub_counts_now().blocks, 0);
}

static void test_an_injected_sticky_error_poisons_one_device_until_its_reset(void **state)
{
    (void)state;
    void *p = NULL;
    cudastub_fail(CUDASTUB_MEMSET_ASYNC, 1, cudaErrorIllegalAddress);
    assert_int_equal(cudaMalloc(&p, 64), cudaSuccess);
    assert_int_equal(cudaMemsetAsync(p, 0, 64, NULL), cudaErrorIllegalAddress);
    assert_int_equal(cudastub_sticky_error(0), cudaErrorIllegalAddress);
    assert_int_equal(cudaStreamSynchronize(NULL), cudaErrorIllegalAddress);
    assert_int_equal(cudaFree(p), cudaErrorIllegalAddress);
    assert_int_equal(cudaSetDevice(1), cudaSuccess); /* another context: unaffected */
    void *q = NULL;
    assert_int_equal(cudaMalloc(&q, 64), cudaSuccess);
    assert_int_equal(cudaGetLastError(), cudaErrorIllegalAddress); /* this thread's last error */
    assert_int_equal(cudaGetLastError(), cudaSuccess);               /* device 1 is not poisoned */
    assert_int_equal(cudaFree(q), cudaSuccess);
    assert_int_equal(cudaSetDevice(0), cudaSuccess);
    assert_int_equal(cudaDeviceReset(), cudaSuccess);
    assert_int_equal(cudaMalloc(&q, 64), cudaSuccess);
    assert_int_equal(cudaFree(q), cudaSuccess);
}

int main(void)
{
    __cudaRegisterFunction(NULL, &overrun_stub, NULL, "test_overrun", -1, NULL, NULL, NULL, NULL,
                           NULL);
    cudastub_add_twin(&overrun);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_malloc_gives_aligned_blocks_holding_old_data, reset_stub),
        cmocka_unit_test_setup(test_malloc_beyond_the_device_memory_fails, reset_stub),
        cmocka_unit_test_setup(test_host_code_cannot_touch_device_memory, reset_stub),
        cmocka_unit_test_setup(test_double_free_is_refused_and_counted, reset_stub),
        cmocka_unit_test_setup(test_a_kernel_writing_past_its_block_is_caught, reset_stub),
        cmocka_unit_test_setup(test_a_kernel_outside_every_block_faults_stickily, reset_stub),
        cmocka_unit_test_setup(test_a_launch_without_a_twin_or_with_bad_geometry_is_refused,
                               reset_stub),
        cmocka_unit_test_setup(test_queued_work_runs_only_when_waited_for, reset_stub),
        cmocka_unit_test_setup(
            test_streams_keep_their_order_and_the_legacy_stream_waits_for_blocking_ones,
            reset_stub),
        cmocka_unit_test_setup(test_work_goes_to_streams_of_the_current_device_only, reset_stub),
        cmocka_unit_test_setup(test_the_current_device_is_per_thread, reset_stub),
        cmocka_unit_test_setup(test_a_reset_kills_blocks_and_reissues_their_addresses, reset_stub),
        cmocka_unit_test_setup(test_registration_bookkeeping_refuses_doubles_and_strangers,
                               reset_stub),
        cmocka_unit_test_setup(test_the_nth_call_fails_once_and_calls_are_traced, reset_stub),
        cmocka_unit_test_setup(test_an_injected_sticky_error_poisons_one_device_until_its_reset,
                               reset_stub),
    };
    return cmocka_run_group_tests_name("cudastub_runtime", tests, NULL, NULL);
}
