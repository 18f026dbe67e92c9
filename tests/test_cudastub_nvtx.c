/* tests/test_cudastub_nvtx.c - the NVTX hooks of real device arenas, against the CUDA stand-in.
 *
 * test_nvtx.c drives cuda/nvtx.c through a host arena dressed as a device arena; here the device
 * backing itself installs the hooks, on a block the stand-in allocated. ctest runs this twice:
 * "cudastub_nvtx" with no tool, as provers run, and "cudastub_nvtx_recorded" with
 * tests/nvtx_recorder as the NVTX tool, which keeps heaps and regions as compute-sanitizer's
 * memcheck does. Checked: the block is a heap named after the arena, each block a region and the
 * padding not, the wipe kernel (observed as it starts to run) writes only where the tool allows,
 * a wipe in stream order waits for its kernel under a tool and only then, and a window is one
 * region.
 */
#include "cudastub.h"
#include "nalloc/cuda.h"
#include "nvtx_recorder.h"
#include "testutil.h"

static bool tool; /* the recorder is attached in this run */

#define EXPECT(cond)                                                                             \
    do {                                                                                         \
        if (tool)                                                                                \
            assert_true(cond);                                                                   \
    } while (0)

static size_t wipes_seen, wipes_hidden; /* wipe kernels run, and those memcheck would flag */

static void observe(const cudastub_launch *l)
{
    if (strcmp(l->kernel, "_Z14na_wipe_kernelPhm") != 0)
        return;
    const char *p = *(char *const *)l->args[0];
    size_t len = *(const size_t *)l->args[1];
    wipes_seen++;
    for (size_t i = 0; i < len; i += 64)
        if (!rec_accessible(p + i) || !rec_accessible(p + len - 1)) {
            wipes_hidden++;
            return;
        }
}

static int setup(void **state)
{
    (void)state;
    cudastub_reset(NULL);
    wipes_seen = wipes_hidden = 0;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    cudastub_counts c = cudastub_counts_now();
    if (c.misuse != 0)
        fail_msg("stand-in misuse: %s", cudastub_misuse_text());
    assert_int_equal(c.blocks, 0);
    EXPECT(rec_errors() == 0);
    EXPECT(rec_live_heaps() == 0);
    EXPECT(rec_range_depth() == 0);
    return 0;
}

static nalloc_arena *device_arena(nalloc_kind kind, const char *name)
{
    nalloc_arena_config c;
    nalloc_arena_config_init(&c, kind, NALLOC_MEMORY_DEVICE, 1 << 20);
    c.name = name;
    nalloc_arena *a = NULL;
    assert_int_equal(nalloc_arena_create(&c, &a), NALLOC_OK);
    return a;
}

static void test_a_device_arenas_block_is_a_heap_and_its_blocks_regions(void **state)
{
    (void)state;
    nalloc_arena *a = device_arena(NALLOC_KIND_WITNESS, "witness-dev");
    const char *base = (const char *)stats_of(a).base;
    EXPECT(rec_live_heaps() == 1);
    EXPECT(rec_heap_at(base) != NULL && strcmp(rec_heap_at(base), "witness-dev") == 0);
    EXPECT(strcmp(rec_last_domain(), "nalloc") == 0);
    char *p = nalloc_alloc(a, 1000), *q = nalloc_alloc(a, 1000);
    EXPECT(rec_is_region(p, 1000));
    EXPECT(rec_is_region(q, 1000));
    EXPECT(!rec_accessible(p + 1000)); /* the padding up to q */
    EXPECT(!rec_accessible(q + 1000)); /* above the offset */
    EXPECT(rec_region_name(p) != NULL && strcmp(rec_region_name(p), "witness-dev") == 0);
    assert_int_equal(nalloc_free_last(a, q, 1000), NALLOC_OK);
    EXPECT(!rec_accessible(q));
    assert_int_equal(nalloc_reset(a), NALLOC_OK);
    EXPECT(!rec_accessible(p));
    EXPECT(rec_live_regions() == 0);
    assert_int_equal(nalloc_arena_destroy(a), NALLOC_OK);
    /* Without a tool nothing is kept: the allocation path has no hook at all. */
    if (!tool)
        assert_false(rec_attached());
}

static void test_the_wipe_kernel_writes_only_where_the_tool_allows(void **state)
{
    (void)state;
    nalloc_arena *a = device_arena(NALLOC_KIND_WITNESS, "wiped");
    for (int i = 0; i < 10; i++)
        assert_non_null(nalloc_alloc(a, 100 + 37 * (size_t)i)); /* padding between the blocks */
    assert_int_equal(nalloc_wipe(a), NALLOC_OK); /* the whole block: it starts dirty */
    char *d = nalloc_alloc(a, 1000);
    assert_int_equal(nalloc_free_last(a, d, 1000), NALLOC_OK); /* dirty, and free again */
    assert_non_null(nalloc_alloc_zeroed(a, 1, 500, 0));
    assert_non_null(nalloc_alloc(a, 3000));
    assert_int_equal(nalloc_arena_destroy(a), NALLOC_OK); /* wiped on destroy */
    assert_int_equal(wipes_seen, 3);
    assert_int_equal(wipes_hidden, 0);
}

static void test_a_stream_ordered_wipe_waits_for_its_kernel_only_under_a_tool(void **state)
{
    (void)state;
    nalloc_arena *a = device_arena(NALLOC_KIND_SCRATCH, "async");
    cudaStream_t stream;
    assert_int_equal(cudaStreamCreate(&stream), cudaSuccess);
    assert_non_null(nalloc_alloc(a, 4096));
    assert_int_equal(nalloc_wipe_async(a, stream), NALLOC_OK);
    /* Under a tool the wipe's range is a region only until the arena resets, right after: a
     * kernel still running then would be checked against an empty heap. */
    assert_int_equal(cudastub_counts_now().pending, tool ? 0 : 1);
    assert_int_equal(cudaStreamSynchronize(stream), cudaSuccess);
    assert_int_equal(wipes_seen, 1);
    assert_int_equal(wipes_hidden, 0);
    assert_int_equal(cudaStreamDestroy(stream), cudaSuccess);
    assert_int_equal(nalloc_arena_destroy(a), NALLOC_OK);
}

static void test_a_window_is_one_named_region(void **state)
{
    (void)state;
    nalloc_arena *a = device_arena(NALLOC_KIND_SCRATCH, "windows");
    nalloc_window w;
    assert_int_equal(nalloc_window_create(a, 10000, &w), NALLOC_OK);
    EXPECT(rec_is_region(w.base, 10000));
    EXPECT(rec_region_name(w.base) != NULL &&
           strcmp(rec_region_name(w.base), "nalloc window") == 0);
    assert_int_equal(nalloc_arena_destroy(a), NALLOC_OK);
}

int main(void)
{
    tool = getenv("NVTX_INJECTION64_PATH") != NULL;
    if (nalloc_cuda_available() != NALLOC_OK)
        return 1;
    cudastub_observe_kernels(observe);
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_a_device_arenas_block_is_a_heap_and_its_blocks_regions),
        T(test_the_wipe_kernel_writes_only_where_the_tool_allows),
        T(test_a_stream_ordered_wipe_waits_for_its_kernel_only_under_a_tool),
        T(test_a_window_is_one_named_region),
    };
    int failed = cmocka_run_group_tests_name(
        tool ? "cudastub_nvtx (recorder attached)" : "cudastub_nvtx (no tool)", tests, NULL, NULL);
    if (failed == 0 && tool && !rec_attached()) {
        fprintf(stderr, "NVTX_INJECTION64_PATH is set but NVTX never loaded the recorder\n");
        return 1;
    }
    return failed;
}
