/* tests/test_cudastub_window.c - in-kernel scratch windows, host side, against the CUDA stand-in.
 *
 * A window is one block of a device arena: its state (the counter and the overflow flag) below,
 * the kernels' bytes above. Here the host side runs for real: the layout and alignment of the
 * block, the state zeroed before creation returns, resets and usage reads in stream order (what
 * kernels queued earlier on the stream wrote is what a usage read sees; a reset is queued behind
 * them), and every refusal leaving the arena untouched. Kernels are played by copies into the
 * state queued on the stream. Fault paths: test_cudastub_faults.c.
 */
#include "cudastub.h"
#include "nalloc/cuda.h"
#include "testutil.h"

static nalloc_arena *arena; /* a device arena on device 0, fresh for each test */

static int setup(void **state)
{
    (void)state;
    cudastub_reset(NULL);
    nalloc_arena_config c;
    nalloc_arena_config_init(&c, NALLOC_KIND_SCRATCH, NALLOC_MEMORY_DEVICE, 1 << 20);
    assert_int_equal(nalloc_arena_create(&c, &arena), NALLOC_OK);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    assert_int_equal(nalloc_arena_destroy(arena), NALLOC_OK);
    cudastub_counts c = cudastub_counts_now();
    if (c.misuse != 0)
        fail_msg("stand-in misuse: %s", cudastub_misuse_text());
    assert_int_equal(c.blocks, 0);
    assert_int_equal(cudaPeekAtLastError(), cudaSuccess);
    return 0;
}

static nalloc_window_state state_of(const nalloc_window *w)
{
    nalloc_window_state s;
    cudastub_peek(&s, w->state, sizeof s);
    return s;
}

/* What a kernel on `stream` would do to the window's state. */
static void queue_state_write(const nalloc_window *w, size_t used, size_t overflow,
                              cudaStream_t stream)
{
    static nalloc_window_state s[16];
    static unsigned next;
    nalloc_window_state *src = &s[next++ % 16];
    src->used = used;
    src->overflow = overflow;
    assert_int_equal(cudaMemcpyAsync(w->state, src, sizeof *src, cudaMemcpyHostToDevice, stream),
                     cudaSuccess);
}

static void test_a_window_sits_above_its_zeroed_state_in_one_block(void **state)
{
    (void)state;
    const size_t granules[] = {16, 64, 256, 1024, 4096};
    for (size_t i = 0; i < sizeof granules / sizeof granules[0]; i++) {
        size_t granule = granules[i], align = granule > 256 ? granule : 256;
        nalloc_mark m = nalloc_mark_get(arena);
        size_t used = stats_of(arena).used;
        nalloc_window w;
        assert_int_equal(nalloc_window_create_aligned(arena, 10000, granule, &w), NALLOC_OK);
        assert_int_equal((uintptr_t)w.base % align, 0);
        assert_ptr_equal((char *)w.state, (char *)w.base - align); /* below, out of reach */
        assert_int_equal(w.capacity, 10000);
        assert_int_equal(w.granule, granule);
        assert_int_equal(w.device, 0);
        assert_true(cudastub_block_of(0, w.state, align + 10000) != 0);
        assert_true(stats_of(arena).used - used <= 2 * align + 10000); /* one block */
        nalloc_window_state s = state_of(&w);
        assert_int_equal(s.used, 0); /* the block held garbage; the state was zeroed... */
        assert_int_equal(s.overflow, 0);
        assert_int_equal(cudastub_counts_now().pending, 0); /* ...and waited for */
        assert_int_equal(nalloc_rollback(arena, m), NALLOC_OK);
    }
    nalloc_window w;
    assert_int_equal(nalloc_window_create(arena, 4096, &w), NALLOC_OK);
    assert_int_equal(w.granule, NALLOC_WINDOW_GRANULE);
}

static void test_bad_windows_are_refused_and_the_arena_keeps_nothing(void **state)
{
    (void)state;
    nalloc_arena_config c;
    nalloc_arena_config_init(&c, NALLOC_KIND_SCRATCH, NALLOC_MEMORY_PINNED, 1 << 16);
    nalloc_arena *pinned = NULL, *host = make_arena(NALLOC_KIND_SCRATCH, 1 << 16), *dead = NULL;
    assert_int_equal(nalloc_arena_create(&c, &pinned), NALLOC_OK);
    nalloc_arena_config_init(&c, NALLOC_KIND_SCRATCH, NALLOC_MEMORY_DEVICE, 1 << 16);
    assert_int_equal(nalloc_arena_create(&c, &dead), NALLOC_OK);
    assert_int_equal(nalloc_arena_destroy(dead), NALLOC_OK);
    size_t memsets = cudastub_calls(CUDASTUB_MEMSET_ASYNC);
    const struct {
        nalloc_arena *a;
        size_t capacity, granule;
        nalloc_status expected;
    } cases[] = {
        {arena, 0, 16, NALLOC_ERR_INVALID},
        {arena, NALLOC_WINDOW_MAX_CAPACITY + 1, 16, NALLOC_ERR_INVALID},
        {arena, 4096, 8, NALLOC_ERR_INVALID},
        {arena, 4096, 24, NALLOC_ERR_INVALID},
        {arena, 4096, 8192, NALLOC_ERR_INVALID},
        {arena, 1 << 20, 16, NALLOC_ERR_NOMEM}, /* no room for it and its state */
        {host, 4096, 16, NALLOC_ERR_INVALID},
        {pinned, 4096, 16, NALLOC_ERR_INVALID},
        {dead, 4096, 16, NALLOC_ERR_STATE},
        {NULL, 4096, 16, NALLOC_ERR_INVALID},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        nalloc_window w;
        memset(&w, 0xab, sizeof w);
        nalloc_status st = nalloc_window_create_aligned(cases[i].a, cases[i].capacity,
                                                        cases[i].granule, &w);
        assert_int_equal(st, cases[i].expected);
        assert_int_equal(nalloc_last_error(), cases[i].expected);
        nalloc_window zero;
        memset(&zero, 0, sizeof zero);
        assert_memory_equal(&w, &zero, sizeof w);
    }
    assert_int_equal(nalloc_window_create(arena, 4096, NULL), NALLOC_ERR_INVALID);
    assert_int_equal(stats_of(arena).used, 0);
    assert_int_equal(cudastub_calls(CUDASTUB_MEMSET_ASYNC), memsets); /* CUDA saw none of them */
    assert_int_equal(nalloc_arena_destroy(pinned), NALLOC_OK);
    assert_int_equal(nalloc_arena_destroy(host), NALLOC_OK);
}

static void test_usage_reads_what_the_streams_earlier_work_left(void **state)
{
    (void)state;
    cudaStream_t stream;
    assert_int_equal(cudaStreamCreate(&stream), cudaSuccess);
    nalloc_window w;
    assert_int_equal(nalloc_window_create(arena, 4096, &w), NALLOC_OK);
    const struct {
        size_t used, overflow, expected_used;
        bool expected_overflowed;
    } cases[] = {
        {0, 0, 0, false},
        {300, 0, 300, false},
        {4096, 0, 4096, false},
        {4112, 0, 4096, true}, /* past the capacity: a request did not fit */
        {100, 1, 100, true},
        {(size_t)1 << 41, 1, 4096, true},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        queue_state_write(&w, cases[i].used, cases[i].overflow, stream);
        size_t used = 12345;
        bool overflowed = !cases[i].expected_overflowed;
        assert_int_equal(nalloc_window_usage(&w, stream, &used, &overflowed), NALLOC_OK);
        assert_int_equal(used, cases[i].expected_used);
        assert_int_equal(overflowed, cases[i].expected_overflowed);
        assert_int_equal(cudastub_counts_now().pending, 0);
    }
    assert_int_equal(nalloc_window_usage(&w, stream, NULL, NULL), NALLOC_OK);
    assert_int_equal(cudaStreamDestroy(stream), cudaSuccess);
}

static void test_a_reset_is_queued_behind_earlier_work_and_before_later_work(void **state)
{
    (void)state;
    cudaStream_t stream;
    assert_int_equal(cudaStreamCreate(&stream), cudaSuccess);
    nalloc_window w;
    assert_int_equal(nalloc_window_create(arena, 4096, &w), NALLOC_OK);
    queue_state_write(&w, 1000, 1, stream); /* a kernel that overflowed */
    assert_int_equal(nalloc_window_reset(&w, stream), NALLOC_OK);
    assert_int_equal(cudastub_counts_now().pending, 2); /* returns without waiting */
    assert_int_equal(state_of(&w).used, 0);             /* nothing has run yet */
    queue_state_write(&w, 48, 0, stream);               /* the next kernel */
    size_t used = 0;
    bool overflowed = true;
    assert_int_equal(nalloc_window_usage(&w, stream, &used, &overflowed), NALLOC_OK);
    assert_int_equal(used, 48);
    assert_false(overflowed);

    queue_state_write(&w, 1000, 1, stream);
    assert_int_equal(nalloc_window_reset(&w, 0), NALLOC_OK); /* the legacy stream waits too */
    assert_int_equal(nalloc_window_usage(&w, 0, &used, &overflowed), NALLOC_OK);
    assert_int_equal(used, 0);
    assert_false(overflowed);
    assert_int_equal(cudaStreamDestroy(stream), cudaSuccess);
}

static void test_calls_on_a_window_that_is_not_one_are_refused(void **state)
{
    (void)state;
    nalloc_window good, w;
    assert_int_equal(nalloc_window_create(arena, 4096, &good), NALLOC_OK);
    nalloc_window bad[6];
    for (int i = 0; i < 6; i++)
        bad[i] = good;
    memset(&bad[0], 0, sizeof bad[0]); /* what a failed create leaves */
    bad[1].state = NULL;
    bad[2].base = NULL;
    bad[3].capacity = NALLOC_WINDOW_MAX_CAPACITY + 1;
    bad[4].granule = 24;
    bad[5].device = -1;
    size_t calls = cudastub_calls(CUDASTUB_MEMSET_ASYNC) + cudastub_calls(CUDASTUB_MEMCPY_ASYNC);
    for (int i = 0; i < 6; i++) {
        w = bad[i];
        size_t used = 77;
        bool overflowed = true;
        assert_int_equal(nalloc_window_reset(&w, 0), NALLOC_ERR_INVALID);
        assert_int_equal(nalloc_window_usage(&w, 0, &used, &overflowed), NALLOC_ERR_INVALID);
        assert_int_equal(nalloc_last_error(), NALLOC_ERR_INVALID);
        assert_int_equal(used, 77);
        assert_true(overflowed);
    }
    assert_int_equal(nalloc_window_reset(NULL, 0), NALLOC_ERR_INVALID);
    assert_int_equal(nalloc_window_usage(NULL, 0, NULL, NULL), NALLOC_ERR_INVALID);
    assert_int_equal(cudastub_calls(CUDASTUB_MEMSET_ASYNC) + cudastub_calls(CUDASTUB_MEMCPY_ASYNC),
                     calls);
}

static void test_a_window_of_device_1_is_used_from_device_0(void **state)
{
    (void)state;
    nalloc_arena_config c;
    nalloc_arena_config_init(&c, NALLOC_KIND_SCRATCH, NALLOC_MEMORY_DEVICE, 1 << 16);
    c.device = 1;
    nalloc_arena *on_one = NULL;
    assert_int_equal(nalloc_arena_create(&c, &on_one), NALLOC_OK);
    nalloc_window w;
    assert_int_equal(nalloc_window_create(on_one, 4096, &w), NALLOC_OK);
    assert_int_equal(w.device, 1);
    assert_true(cudastub_block_of(1, w.state, sizeof(nalloc_window_state)) != 0);
    assert_int_equal(nalloc_window_reset(&w, cudaStreamPerThread), NALLOC_OK);
    size_t used = 1;
    assert_int_equal(nalloc_window_usage(&w, cudaStreamPerThread, &used, NULL), NALLOC_OK);
    assert_int_equal(used, 0);
    int device = -1;
    assert_int_equal(cudaGetDevice(&device), cudaSuccess);
    assert_int_equal(device, 0);
    assert_int_equal(nalloc_arena_destroy(on_one), NALLOC_OK);
}

int main(void)
{
    if (nalloc_cuda_available() != NALLOC_OK)
        return 1;
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_a_window_sits_above_its_zeroed_state_in_one_block),
        T(test_bad_windows_are_refused_and_the_arena_keeps_nothing),
        T(test_usage_reads_what_the_streams_earlier_work_left),
        T(test_a_reset_is_queued_behind_earlier_work_and_before_later_work),
        T(test_calls_on_a_window_that_is_not_one_are_refused),
        T(test_a_window_of_device_1_is_used_from_device_0),
    };
    return cmocka_run_group_tests_name("cudastub_window", tests, NULL, NULL);
}
