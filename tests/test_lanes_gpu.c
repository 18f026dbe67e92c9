/* tests/test_lanes_gpu.c - lanes of a device arena, on a real GPU (label gpu).
 *
 * Exits 77 (skipped) without a device. A device lane has no CUDA code of its own: its memory is a
 * slice of the parent's cudaMalloc block and its wipes go through the parent's device wipe at the
 * lane's offset. These checks copy device memory back to see that a lane's wipe, destroy-time
 * wipe and zeroed allocation touch exactly the lane's bytes, and that windows can be carved from
 * a lane like from any device arena.
 */
#include "testutil.h"

#include "nalloc/cuda.h"

#include <cuda_runtime_api.h>

#define CUDA_OK(call) assert_int_equal((int)(call), (int)cudaSuccess)
#define LANE_BYTES (1 * MiB)

/* Every byte of [device, device + n) equals `value`. */
static bool device_bytes_are(const void *device, size_t n, unsigned char value)
{
    unsigned char *h = malloc(n);
    assert_non_null(h);
    CUDA_OK(cudaMemcpy(h, device, n, cudaMemcpyDeviceToHost));
    bool same = true;
    for (size_t i = 0; i < n && same; i++)
        same = h[i] == value;
    free(h);
    return same;
}

static void test_device_lanes_are_wiped_one_by_one(void **state)
{
    (void)state;
    nalloc_arena_config c;
    nalloc_arena_config_init(&c, NALLOC_KIND_WITNESS, NALLOC_MEMORY_DEVICE, 64 * MiB);
    nalloc_arena *parent = make_arena_with(&c);
    nalloc_arena *lane[4];
    assert_int_equal(nalloc_arena_split(parent, 4, 0, lane), NALLOC_OK);
    unsigned char *block[4];
    nalloc_stats ps = stats_of(parent);
    for (int i = 0; i < 4; i++) {
        nalloc_stats s = stats_of(lane[i]);
        assert_int_equal(s.memory, NALLOC_MEMORY_DEVICE);
        assert_true(s.base >= ps.base && s.base + s.capacity <= ps.base + ps.capacity);
        block[i] = nalloc_alloc(lane[i], LANE_BYTES);
        assert_non_null(block[i]);
        CUDA_OK(cudaMemset(block[i], 0xab, LANE_BYTES));
    }
    CUDA_OK(cudaDeviceSynchronize());
    assert_int_equal(nalloc_wipe(parent), NALLOC_ERR_STATE); /* the lanes' memory is theirs */

    assert_int_equal(nalloc_arena_destroy(lane[1]), NALLOC_OK); /* wiped on destroy */
    assert_true(device_bytes_are(block[1], LANE_BYTES, 0));
    cudaStream_t stream;
    CUDA_OK(cudaStreamCreate(&stream));
    assert_int_equal(nalloc_wipe_async(lane[2], stream), NALLOC_OK);
    CUDA_OK(cudaStreamSynchronize(stream));
    CUDA_OK(cudaStreamDestroy(stream));
    assert_true(device_bytes_are(block[2], LANE_BYTES, 0));
    assert_true(device_bytes_are(block[0], LANE_BYTES, 0xab)); /* the neighbours are untouched */
    assert_true(device_bytes_are(block[3], LANE_BYTES, 0xab));

    /* A zeroed allocation over bytes the lane handed out before is cleared. */
    assert_int_equal(nalloc_reset(lane[0]), NALLOC_OK);
    unsigned char *z = nalloc_alloc_zeroed(lane[0], LANE_BYTES, 1, 0);
    assert_true(z == block[0]);
    assert_true(device_bytes_are(z, LANE_BYTES, 0));

    /* Windows come from a lane like from any device arena. */
    nalloc_window w;
    assert_int_equal(nalloc_window_create(lane[3], 64 * KiB, &w), NALLOC_OK);

    assert_int_equal(nalloc_arena_destroy(parent), NALLOC_OK); /* destroys lanes 0, 2 and 3 */
    assert_int_equal(nalloc_arena_destroy(lane[3]), NALLOC_ERR_STATE);
}

int main(void)
{
    if (nalloc_cuda_available() != NALLOC_OK) {
        fprintf(stderr, "lanes_gpu: no CUDA device (%s); skipped\n", nalloc_cuda_error_string());
        return 77;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_device_lanes_are_wiped_one_by_one),
    };
    return cmocka_run_group_tests_name("lanes_gpu", tests, NULL, NULL);
}
