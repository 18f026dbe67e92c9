/* tests/test_cudastub_faults.c - every CUDA call of every CUDA entry point, failed in turn.
 *
 * A real device rarely fails cudaMalloc, cudaHostRegister half-way through a chunked
 * registration, or a kernel launch on demand; the stand-in does. Each walk here runs one entry
 * point once to record the CUDA calls it makes (cudastub_trace), then again once per recorded
 * call with that call failing, for three errors: a plain one (cudaErrorMemoryAllocation), one
 * that means "no device" (cudaErrorNoDevice: NALLOC_ERR_NO_DEVICE), and a sticky one
 * (cudaErrorIllegalAddress, which poisons the device's context as a kernel fault would). After
 * every run:
 *
 *  - the status is the documented one, and nalloc_last_error() is that status on failure and
 *    untouched on success (a sentinel set before the call survives);
 *  - the CUDA runtime's last error is clear (a non-sticky failure must not be left for the
 *    caller's next cudaGetLastError), and nalloc_cuda_error_string() names the error;
 *  - the caller's current device is restored (unless the restoring cudaSetDevice is what failed);
 *  - the stand-in saw no misuse, and no device block or registration is left that should not
 *    be: a failed creation leaves nothing, a failed teardown leaves only what CUDA refused to
 *    release;
 *  - where the documentation says so, the arena still works: after a non-sticky failure the same
 *    call succeeds, and a wipe then really zeroes the bytes.
 *
 * The CUDA probe (nalloc_cuda_available) runs once per process; its failures are walked in
 * test_cudastub_probe.c, one process each.
 */
#include "cudastub.h"
#include "nalloc/cuda.h"
#include "testutil.h"

#include <pthread.h>

#define CAPACITY ((size_t)256 << 10)
#define MAX_CALLS 64

typedef struct fault {
    cudastub_fn fn;  /* the call that fails */
    unsigned nth;    /* which of the entry point's calls of fn */
    size_t index;    /* its position in the entry point's calls */
    cudaError_t err; /* what it answers */
} fault;

typedef struct walk {
    const char *name;
    void (*setup)(void);                    /* the fixture, before anything is traced */
    nalloc_status (*call)(void);            /* the entry point under test */
    nalloc_status (*expect)(const fault *f); /* the documented status with `f` injected */
    void (*check)(const fault *f, nalloc_status st); /* state after the call (f NULL: no fault) */
    void (*teardown)(const fault *f, nalloc_status st); /* release, and what is left */
} walk;

/* The fixture the walks share; zeroed before each run. */
static struct {
    nalloc_arena *arena, *lane, *pinned, *device;
    nalloc_ctx *ctx;
    nalloc_window window;
    cudaStream_t stream;
    char *block;       /* a block of `arena` (or of `pinned`) the call works on */
    char *device_block;
    size_t used;       /* the arena's offset before the call */
    int caller;        /* the caller's current device */
    nalloc_status st;  /* what the call returned */
    size_t out_used;   /* window usage outputs */
    bool out_overflowed;
} fx;

static char where[256]; /* the run in progress, for failure messages */

#define WALK_TRUE(cond)                                                                          \
    do {                                                                                         \
        if (!(cond))                                                                             \
            fail_msg("%s: %s does not hold", where, #cond);                                      \
    } while (0)
#define WALK_EQ(a, b)                                                                            \
    do {                                                                                         \
        long long a_ = (long long)(a), b_ = (long long)(b);                                      \
        if (a_ != b_)                                                                            \
            fail_msg("%s: %s is %lld, not %lld", where, #a, a_, b_);                              \
    } while (0)

static bool is_sticky(const fault *f)
{
    return f != NULL && cudastub_is_sticky(f->err);
}

/* A sticky fault poisons the device that was current when it hit: the caller's, or the arena's
 * once the call had switched to it. */
static bool poisoned(int device)
{
    return cudastub_sticky_error(device) != cudaSuccess;
}

/* The status a failed CUDA call becomes. */
static nalloc_status failure_of(const fault *f)
{
    return f->err == cudaErrorNoDevice ? NALLOC_ERR_NO_DEVICE : NALLOC_ERR_CUDA;
}

static int current_device(void)
{
    int d = -1;
    assert_int_equal(cudaGetDevice(&d), cudaSuccess);
    return d;
}

static void set_sentinel_error(void)
{
    assert_null(nalloc_alloc(NULL, 1));
    assert_int_equal(nalloc_last_error(), NALLOC_ERR_INVALID);
}

static void assert_device_bytes(const void *p, size_t n, unsigned char value)
{
    unsigned char buf[4096];
    for (size_t done = 0; done < n;) {
        size_t chunk = n - done < sizeof buf ? n - done : sizeof buf;
        cudastub_peek(buf, (const char *)p + done, chunk);
        for (size_t i = 0; i < chunk; i++)
            if (buf[i] != value)
                fail_msg("%s: device byte %zu is 0x%02x, not 0x%02x", where, done + i, buf[i],
                         value);
        done += chunk;
    }
}

static void assert_left(size_t blocks, size_t registrations)
{
    cudastub_counts c = cudastub_counts_now();
    WALK_EQ(c.blocks, blocks);
    WALK_EQ(c.registrations, registrations);
    if (c.misuse != 0)
        fail_msg("%s: stand-in misuse: %s", where, cudastub_misuse_text());
}

/* One run of `w`, with `f` injected (NULL: none). */
static void run_once(const walk *w, const fault *f)
{
    cudastub_reset(NULL);
    memset(&fx, 0, sizeof fx);
    w->setup();
    fx.caller = current_device();
    set_sentinel_error();
    if (f != NULL)
        cudastub_fail(f->fn, f->nth, f->err);
    fx.st = w->call();
    cudastub_fail(f != NULL ? f->fn : CUDASTUB_MALLOC, 0, cudaSuccess); /* disarm if unused */

    nalloc_status want = f != NULL ? w->expect(f) : NALLOC_OK;
    WALK_EQ(fx.st, want);
    WALK_EQ(nalloc_last_error(), fx.st != NALLOC_OK ? fx.st : NALLOC_ERR_INVALID);
    if (!is_sticky(f))
        WALK_EQ(cudaPeekAtLastError(), cudaSuccess);
    if (fx.st == NALLOC_ERR_CUDA || fx.st == NALLOC_ERR_NO_DEVICE)
        WALK_TRUE(strstr(nalloc_cuda_error_string(), cudaGetErrorName(f->err)) != NULL);
    if (f == NULL || f->fn != CUDASTUB_SET_DEVICE || f->nth == 1)
        WALK_EQ(current_device(), fx.caller);
    else
        assert_int_equal(cudaSetDevice(fx.caller), cudaSuccess);
    if (cudastub_counts_now().misuse != 0)
        fail_msg("%s: stand-in misuse: %s", where, cudastub_misuse_text());
    w->check(f, fx.st);
    w->teardown(f, fx.st);
}

/* Walk `w`, whose call answers `baseline` when nothing fails. */
static void walk_through_expecting(const walk *w, nalloc_status baseline)
{
    cudastub_fn calls[MAX_CALLS];
    snprintf(where, sizeof where, "%s, no fault", w->name);
    cudastub_reset(NULL);
    memset(&fx, 0, sizeof fx);
    w->setup();
    fx.caller = current_device();
    set_sentinel_error();
    cudastub_trace_begin();
    fx.st = w->call();
    size_t n = cudastub_trace(calls, MAX_CALLS);
    assert_true(n > 0 && n <= MAX_CALLS);
    WALK_EQ(fx.st, baseline);
    WALK_EQ(nalloc_last_error(), baseline != NALLOC_OK ? baseline : NALLOC_ERR_INVALID);
    WALK_EQ(cudaPeekAtLastError(), cudaSuccess);
    w->check(NULL, fx.st);
    w->teardown(NULL, fx.st);

    const cudaError_t errors[] = {cudaErrorMemoryAllocation, cudaErrorNoDevice,
                                  cudaErrorIllegalAddress};
    for (size_t e = 0; e < sizeof errors / sizeof errors[0]; e++) {
        for (size_t i = 0; i < n; i++) {
            fault f = {calls[i], 0, i, errors[e]};
            for (size_t j = 0; j <= i; j++)
                f.nth += calls[j] == calls[i];
            snprintf(where, sizeof where, "%s, call %zu (%s #%u) failing with %s", w->name, i,
                     cudastub_fn_name(f.fn), f.nth, cudaGetErrorName(f.err));
            run_once(w, &f);
        }
    }
    print_message("%s: %zu CUDA calls, each failed %zu ways\n", w->name, n,
                  sizeof errors / sizeof errors[0]);
    cudastub_reset(NULL);
}

static void walk_through(const walk *w)
{
    walk_through_expecting(w, NALLOC_OK);
}

/* ---- Fixtures ---- */

static nalloc_arena *device_arena(nalloc_kind kind, int device)
{
    nalloc_arena_config c;
    nalloc_arena_config_init(&c, kind, NALLOC_MEMORY_DEVICE, CAPACITY);
    c.device = device;
    nalloc_arena *a = NULL;
    assert_int_equal(nalloc_arena_create(&c, &a), NALLOC_OK);
    return a;
}

static nalloc_arena_config pinned_config(nalloc_kind kind)
{
    nalloc_arena_config c;
    nalloc_arena_config_init(&c, kind, NALLOC_MEMORY_PINNED, 16 << 10);
    c.pin_chunk = 4096; /* four cudaHostRegister calls */
    return c;
}

static size_t used_of(const nalloc_arena *a)
{
    nalloc_stats s;
    assert_int_equal(nalloc_arena_stats(a, &s), NALLOC_OK);
    return s.used;
}

static size_t wipes_of(const nalloc_arena *a)
{
    nalloc_stats s;
    assert_int_equal(nalloc_arena_stats(a, &s), NALLOC_OK);
    return s.wipes;
}

/* A witness arena on device 1 with 3000 dirty bytes, from a thread on device 0. */
static void setup_dirty_witness_on_device_1(void)
{
    fx.arena = device_arena(NALLOC_KIND_WITNESS, 1);
    assert_int_equal(nalloc_wipe(fx.arena), NALLOC_OK);
    fx.block = nalloc_alloc(fx.arena, 3000);
    cudastub_fill(fx.block, 0x5a, 3000);
    fx.used = used_of(fx.arena);
}

/* Destroy fx.arena; with a sticky fault its device is dead and keeps the block. */
static void teardown_arena(const fault *f, nalloc_status st)
{
    (void)st;
    nalloc_status destroyed = nalloc_arena_destroy(fx.arena);
    if (!is_sticky(f)) {
        WALK_EQ(destroyed, NALLOC_OK);
        assert_left(0, 0);
    } else {
        WALK_TRUE(destroyed == NALLOC_OK || destroyed == NALLOC_ERR_CUDA);
        assert_left(cudastub_counts_now().blocks, 0);
    }
}

/* ---- Device arenas: creation ---- */

static nalloc_status create_on_device_1(void)
{
    nalloc_arena_config c;
    nalloc_arena_config_init(&c, NALLOC_KIND_POLY, NALLOC_MEMORY_DEVICE, CAPACITY);
    c.device = 1;
    fx.arena = (nalloc_arena *)&fx; /* must be overwritten */
    return nalloc_arena_create(&c, &fx.arena);
}

/* The buffer-id query and the restoring cudaSetDevice are best effort: an arena whose id is
 * unknown is simply not checked after a reset. Everything else fails creation. */
static nalloc_status expect_create(const fault *f)
{
    if (f->fn == CUDASTUB_POINTER_GET_ATTRIBUTE || (f->fn == CUDASTUB_SET_DEVICE && f->nth == 2))
        return NALLOC_OK;
    return failure_of(f);
}

static void check_create(const fault *f, nalloc_status st)
{
    if (st != NALLOC_OK) {
        WALK_TRUE(fx.arena == NULL);
        assert_left(0, 0);
        return;
    }
    WALK_TRUE(fx.arena != NULL);
    WALK_EQ(cudastub_counts_now().blocks, 1);
    WALK_TRUE(cudastub_block_of(1, (void *)(uintptr_t)nalloc_alloc(fx.arena, 1), 1) != 0);
    (void)f;
}

static void teardown_create(const fault *f, nalloc_status st)
{
    if (st == NALLOC_OK) {
        teardown_arena(f, st);
    } else if (!is_sticky(f)) { /* a failed creation leaves the device usable */
        WALK_EQ(create_on_device_1(), NALLOC_OK);
        WALK_EQ(nalloc_arena_destroy(fx.arena), NALLOC_OK);
        assert_left(0, 0);
    }
}

static void setup_nothing(void)
{
}

static void test_device_arena_creation_survives_each_failing_call(void **state)
{
    (void)state;
    const walk w = {"nalloc_arena_create (device 1 from device 0)", setup_nothing,
                    create_on_device_1, expect_create, check_create, teardown_create};
    walk_through(&w);
}

static nalloc_status create_fractional(void)
{
    nalloc_arena_config c;
    nalloc_arena_config_init(&c, NALLOC_KIND_SCRATCH, NALLOC_MEMORY_DEVICE, 0);
    c.device = 1;
    c.device_fraction = 0.25;
    c.device_slack = 1 << 20;
    fx.arena = NULL;
    return nalloc_arena_create(&c, &fx.arena);
}

static void check_fractional(const fault *f, nalloc_status st)
{
    (void)f;
    if (st != NALLOC_OK) {
        WALK_TRUE(fx.arena == NULL);
        assert_left(0, 0);
        return;
    }
    nalloc_stats s;
    assert_int_equal(nalloc_arena_stats(fx.arena, &s), NALLOC_OK);
    WALK_EQ(s.capacity, (size_t)63 << 18); /* (64 - 1) MiB / 4 */
}

static void teardown_fractional(const fault *f, nalloc_status st)
{
    if (st == NALLOC_OK)
        teardown_arena(f, st);
}

static void test_fractional_device_arena_creation_survives_each_failing_call(void **state)
{
    (void)state;
    const walk w = {"nalloc_arena_create (fractional)", setup_nothing, create_fractional,
                    expect_create, check_fractional, teardown_fractional};
    walk_through(&w);
}

/* ---- Device arenas: destruction ---- */

static void setup_poly_on_device_1(void)
{
    fx.arena = device_arena(NALLOC_KIND_POLY, 1);
    assert_non_null(nalloc_alloc(fx.arena, 1000));
}

static nalloc_status destroy_arena(void)
{
    return nalloc_arena_destroy(fx.arena);
}

/* Destroy reports nothing about releasing the block: whatever fails, the arena is gone. */
static nalloc_status expect_ok(const fault *f)
{
    (void)f;
    return NALLOC_OK;
}

/* The block stays when a call needed to free it failed: switching to its device, the buffer-id
 * check (what nobody can vouch for is not freed: it may be somebody else's), or cudaFree. */
static size_t blocks_left_by_destroy(const fault *f)
{
    if (f == NULL)
        return 0;
    switch (f->fn) {
    case CUDASTUB_GET_DEVICE:
    case CUDASTUB_POINTER_GET_ATTRIBUTE:
    case CUDASTUB_FREE:
        return 1;
    case CUDASTUB_SET_DEVICE:
        return f->nth == 1 ? 1 : 0;
    default:
        return 0;
    }
}

static void check_destroyed(const fault *f, nalloc_status st)
{
    (void)st;
    WALK_EQ(nalloc_alloc(fx.arena, 1) == NULL, 1);
    WALK_EQ(nalloc_last_error(), NALLOC_ERR_STATE);
    assert_left(blocks_left_by_destroy(f), 0);
}

static void teardown_nothing(const fault *f, nalloc_status st)
{
    (void)f;
    (void)st;
}

static void test_device_arena_destruction_survives_each_failing_call(void **state)
{
    (void)state;
    const walk w = {"nalloc_arena_destroy (device 1 from device 0)", setup_poly_on_device_1,
                    destroy_arena, expect_ok, check_destroyed, teardown_nothing};
    walk_through(&w);
}

/* A witness arena is wiped first (calls 0 to 7, as nalloc_wipe makes them): a failure there is
 * reported, and the block released all the same. The wipe's restoring cudaSetDevice (call 7) and
 * the release's calls are reported nowhere. */
static nalloc_status expect_witness_destroy(const fault *f)
{
    return f->index >= 7 ? NALLOC_OK : failure_of(f);
}

static void check_witness_destroyed(const fault *f, nalloc_status st)
{
    (void)st;
    WALK_EQ(nalloc_alloc(fx.arena, 1) == NULL, 1);
    if (is_sticky(f))
        return; /* what a poisoned device keeps depends on which one it is; no misuse, though */
    size_t left = 0;
    if (f != NULL && f->index >= 8) {
        /* A failure in the release's own calls, after the wipe's eight (cudaGetDevice, two
         * cudaSetDevice, one buffer-id query among them): as for a poly arena's destroy. */
        fault own = *f;
        own.nth -= f->fn == CUDASTUB_SET_DEVICE ? 2
                   : f->fn == CUDASTUB_GET_DEVICE || f->fn == CUDASTUB_POINTER_GET_ATTRIBUTE ? 1
                                                                                             : 0;
        left = blocks_left_by_destroy(&own);
    }
    assert_left(left, 0);
}

static void test_witness_device_arena_destruction_survives_each_failing_call(void **state)
{
    (void)state;
    const walk w = {"nalloc_arena_destroy (witness, device 1 from device 0)",
                    setup_dirty_witness_on_device_1, destroy_arena, expect_witness_destroy,
                    check_witness_destroyed, teardown_nothing};
    walk_through(&w);
}

/* ---- Device arenas: wipes ---- */

static nalloc_status wipe_arena(void)
{
    return nalloc_wipe(fx.arena);
}

/* A wipe fails when any call it needs fails, the buffer-id check included (a block nobody can
 * vouch for is not written). The restoring cudaSetDevice is not the wipe's business. */
static nalloc_status expect_wipe(const fault *f)
{
    return f->fn == CUDASTUB_SET_DEVICE && f->nth == 2 ? NALLOC_OK : failure_of(f);
}

/* After a failed wipe the arena is as it was (not reset, its dirty bytes kept); after a
 * non-sticky failure the next wipe succeeds and zeroes them. */
static void check_wipe(const fault *f, nalloc_status st)
{
    (void)f; /* what matters is whether the arena's device is poisoned */
    if (st == NALLOC_OK) {
        WALK_EQ(used_of(fx.arena), 0);
        WALK_EQ(cudastub_counts_now().pending, 0);
        assert_device_bytes(fx.block, 3000, 0);
        return;
    }
    WALK_EQ(used_of(fx.arena), fx.used);
    WALK_EQ(wipes_of(fx.arena), 1);
    if (!poisoned(1)) {
        WALK_EQ(nalloc_wipe(fx.arena), NALLOC_OK);
        assert_device_bytes(fx.block, 3000, 0);
        WALK_EQ(used_of(fx.arena), 0);
    } else { /* every later wipe fails on the poisoned device */
        WALK_EQ(nalloc_wipe(fx.arena), NALLOC_ERR_CUDA);
    }
}

static void test_device_wipe_survives_each_failing_call(void **state)
{
    (void)state;
    const walk w = {"nalloc_wipe (device 1 from device 0)", setup_dirty_witness_on_device_1,
                    wipe_arena, expect_wipe, check_wipe, teardown_arena};
    walk_through(&w);
}

static void setup_dirty_witness_and_stream(void)
{
    assert_int_equal(cudaSetDevice(1), cudaSuccess);
    assert_int_equal(cudaStreamCreate(&fx.stream), cudaSuccess);
    assert_int_equal(cudaSetDevice(0), cudaSuccess);
    setup_dirty_witness_on_device_1();
}

static nalloc_status wipe_arena_async(void)
{
    return nalloc_wipe_async(fx.arena, fx.stream);
}

static void check_wipe_async(const fault *f, nalloc_status st)
{
    (void)f; /* what matters is whether the arena's device is poisoned */
    if (st == NALLOC_OK) {
        WALK_EQ(used_of(fx.arena), 0);
        WALK_EQ(cudastub_counts_now().pending, 1); /* queued, not waited for */
        assert_device_bytes(fx.block, 3000, 0x5a);
        if (!poisoned(1)) { /* else the restoring cudaSetDevice poisoned it: the kernel is lost */
            assert_int_equal(cudaStreamSynchronize(fx.stream), cudaSuccess);
            assert_device_bytes(fx.block, 3000, 0);
        }
        return;
    }
    WALK_EQ(used_of(fx.arena), fx.used);
    WALK_EQ(cudastub_counts_now().pending, 0);
    if (!poisoned(1)) {
        WALK_EQ(nalloc_wipe_async(fx.arena, fx.stream), NALLOC_OK);
        assert_int_equal(cudaStreamSynchronize(fx.stream), cudaSuccess);
        assert_device_bytes(fx.block, 3000, 0);
    }
}

static void test_device_wipe_in_stream_order_survives_each_failing_call(void **state)
{
    (void)state;
    const walk w = {"nalloc_wipe_async (device 1 from device 0)", setup_dirty_witness_and_stream,
                    wipe_arena_async, expect_wipe, check_wipe_async, teardown_arena};
    walk_through(&w);
}

static nalloc_status alloc_zeroed(void)
{
    fx.device_block = nalloc_alloc_zeroed(fx.arena, 1, 3000, 0);
    return fx.device_block != NULL ? NALLOC_OK : nalloc_last_error();
}

static void setup_dirtied_and_rolled_back(void)
{
    setup_dirty_witness_on_device_1();
    assert_int_equal(nalloc_free_last(fx.arena, fx.block, 3000), NALLOC_OK); /* dirty, free */
    fx.used = used_of(fx.arena);
}

static void check_alloc_zeroed(const fault *f, nalloc_status st)
{
    (void)f; /* what matters is whether the arena's device is poisoned */
    if (st == NALLOC_OK) {
        WALK_TRUE(fx.device_block == fx.block);
        assert_device_bytes(fx.block, 3000, 0);
        return;
    }
    WALK_TRUE(fx.device_block == NULL);
    WALK_EQ(used_of(fx.arena), fx.used); /* the block was given back */
    if (!poisoned(1)) {
        WALK_TRUE(nalloc_alloc_zeroed(fx.arena, 1, 3000, 0) == fx.block);
        assert_device_bytes(fx.block, 3000, 0);
    }
}

static void test_device_alloc_zeroed_survives_each_failing_call(void **state)
{
    (void)state;
    const walk w = {"nalloc_alloc_zeroed (device 1 from device 0)",
                    setup_dirtied_and_rolled_back, alloc_zeroed, expect_wipe, check_alloc_zeroed,
                    teardown_arena};
    walk_through(&w);
}

/* ---- Device arenas after a context reset ---- */

/* Another thread resets device 0 (so the test thread's context is gone with it) and is given the
 * arena's old addresses: a block of the same size, full of its own data. */
static void *reset_and_reissue(void *unused)
{
    (void)unused;
    assert_int_equal(cudaSetDevice(0), cudaSuccess);
    assert_int_equal(cudaDeviceReset(), cudaSuccess);
    assert_int_equal(cudaMalloc((void **)&fx.device_block, CAPACITY), cudaSuccess);
    assert_int_equal(cudaMemset(fx.device_block, 0x77, CAPACITY), cudaSuccess);
    return NULL;
}

static void setup_arena_whose_block_was_reissued(void)
{
    fx.arena = device_arena(NALLOC_KIND_WITNESS, 0);
    char *base = (char *)(uintptr_t)nalloc_alloc(fx.arena, 1);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, reset_and_reissue, NULL), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_ptr_equal(fx.device_block, base);
    fx.used = used_of(fx.arena);
}

/* The check answers NALLOC_ERR_STATE; when a call it needs fails, it cannot tell whether the
 * address is still the arena's, and a wipe must not write there either: the call's failure. */
static nalloc_status expect_reissued_wipe(const fault *f)
{
    return failure_of(f);
}

static void check_reissued(const fault *f, nalloc_status st)
{
    (void)f;
    (void)st;
    WALK_EQ(cudastub_counts_now().launches, 0);
    WALK_TRUE(cudastub_block_of(0, fx.device_block, CAPACITY) != 0);
    assert_device_bytes(fx.device_block, CAPACITY, 0x77);
}

static void check_reissued_wipe(const fault *f, nalloc_status st)
{
    check_reissued(f, st);
    WALK_EQ(used_of(fx.arena), fx.used);
    if (!poisoned(0))
        WALK_EQ(nalloc_wipe(fx.arena), NALLOC_ERR_STATE);
    check_reissued(f, st);
}

static void teardown_reissued(const fault *f, nalloc_status st)
{
    (void)st;
    if (fx.arena != NULL && nalloc_arena_destroy(fx.arena) != NALLOC_ERR_STATE)
        WALK_TRUE(is_sticky(f));
    check_reissued(f, st); /* destroy freed nothing either */
    if (!poisoned(0)) {
        WALK_EQ(cudaFree(fx.device_block), cudaSuccess);
        assert_left(0, 0);
    }
}

static nalloc_status wipe_reissued(void)
{
    return nalloc_wipe(fx.arena);
}

static void test_wipe_after_a_context_reset_never_writes_the_new_owners_block(void **state)
{
    (void)state;
    const walk w = {"nalloc_wipe (block reissued after a reset)",
                    setup_arena_whose_block_was_reissued, wipe_reissued, expect_reissued_wipe,
                    check_reissued_wipe, teardown_reissued};
    walk_through_expecting(&w, NALLOC_ERR_STATE);
}

static nalloc_status destroy_reissued(void)
{
    nalloc_status st = nalloc_arena_destroy(fx.arena);
    fx.arena = NULL;
    return st;
}

/* The witness arena's wipe (calls 0 to 3: cudaGetDevice, the query that finds no context,
 * cudaFree(NULL), the query again) reports NALLOC_ERR_STATE, or the failure of one of its calls;
 * the release that follows frees nothing whatever fails. */
static nalloc_status expect_reissued_destroy(const fault *f)
{
    return f->index < 4 ? failure_of(f) : NALLOC_ERR_STATE;
}

static void check_reissued_destroy(const fault *f, nalloc_status st)
{
    check_reissued(f, st);
}

static void test_destroy_after_a_context_reset_never_frees_the_new_owners_block(void **state)
{
    (void)state;
    const walk w = {"nalloc_arena_destroy (block reissued after a reset)",
                    setup_arena_whose_block_was_reissued, destroy_reissued, expect_reissued_destroy,
                    check_reissued_destroy, teardown_reissued};
    walk_through_expecting(&w, NALLOC_ERR_STATE);
}

/* ---- Lanes and contexts ---- */

static void setup_lane_of_device_1(void)
{
    fx.arena = device_arena(NALLOC_KIND_WITNESS, 1);
    assert_int_equal(nalloc_wipe(fx.arena), NALLOC_OK);
    assert_int_equal(nalloc_arena_split(fx.arena, 1, 64 << 10, &fx.lane), NALLOC_OK);
    fx.block = nalloc_alloc(fx.lane, 3000);
    cudastub_fill(fx.block, 0x5a, 3000);
    fx.used = used_of(fx.lane);
}

static nalloc_status wipe_lane(void)
{
    return nalloc_wipe(fx.lane);
}

static void check_lane_wipe(const fault *f, nalloc_status st)
{
    (void)f; /* what matters is whether the arena's device is poisoned */
    if (st == NALLOC_OK) {
        assert_device_bytes(fx.block, 3000, 0);
        WALK_EQ(used_of(fx.lane), 0);
        return;
    }
    WALK_EQ(used_of(fx.lane), fx.used);
    if (!poisoned(1)) {
        WALK_EQ(nalloc_wipe(fx.lane), NALLOC_OK);
        assert_device_bytes(fx.block, 3000, 0);
    }
}

static void teardown_lane(const fault *f, nalloc_status st)
{
    nalloc_status destroyed = nalloc_arena_destroy(fx.lane);
    WALK_TRUE(destroyed == NALLOC_OK || (is_sticky(f) && destroyed == NALLOC_ERR_CUDA));
    teardown_arena(f, st);
}

static void test_device_lane_wipe_survives_each_failing_call(void **state)
{
    (void)state;
    const walk w = {"nalloc_wipe (a lane of a device 1 arena)", setup_lane_of_device_1,
                    wipe_lane, expect_wipe, check_lane_wipe, teardown_lane};
    walk_through(&w);
}

static nalloc_status create_device_ctx(void)
{
    nalloc_ctx_config c;
    nalloc_ctx_config_init(&c, NALLOC_MEMORY_DEVICE, CAPACITY, CAPACITY, CAPACITY);
    fx.ctx = (nalloc_ctx *)&fx;
    return nalloc_ctx_create(&c, &fx.ctx);
}

/* Three arenas on device 0, each GetDeviceCount, GetDevice, Malloc, buffer-id query. A failed
 * query leaves an arena unchecked; a sticky one fails the arenas created after it. */
static nalloc_status expect_ctx_create(const fault *f)
{
    if (f->fn != CUDASTUB_POINTER_GET_ATTRIBUTE)
        return failure_of(f);
    return is_sticky(f) && f->nth < 3 ? NALLOC_ERR_CUDA : NALLOC_OK;
}

static void check_ctx_create(const fault *f, nalloc_status st)
{
    if (st != NALLOC_OK) {
        WALK_TRUE(fx.ctx == NULL);
        if (!is_sticky(f)) /* a poisoned device keeps what it could not free */
            assert_left(0, 0); /* all or nothing */
    } else {
        WALK_EQ(cudastub_counts_now().blocks, 3);
    }
}

static void teardown_ctx(const fault *f, nalloc_status st)
{
    if (st != NALLOC_OK)
        return;
    nalloc_status destroyed = nalloc_ctx_destroy(fx.ctx);
    if (!is_sticky(f)) {
        WALK_EQ(destroyed, NALLOC_OK);
        assert_left(0, 0);
    }
}

static void test_device_context_creation_survives_each_failing_call(void **state)
{
    (void)state;
    const walk w = {"nalloc_ctx_create (device)", setup_nothing, create_device_ctx,
                    expect_ctx_create, check_ctx_create, teardown_ctx};
    walk_through(&w);
}

static void setup_device_ctx(void)
{
    assert_int_equal(create_device_ctx(), NALLOC_OK);
    nalloc_arena *witness = nalloc_ctx_arena(fx.ctx, NALLOC_KIND_WITNESS);
    fx.block = nalloc_alloc(witness, 3000);
    cudastub_fill(fx.block, 0x5a, 3000);
}

static nalloc_status destroy_device_ctx(void)
{
    return nalloc_ctx_destroy(fx.ctx);
}

/* The arenas go in kind order, all on device 0 (no device switches): poly's release (calls 0 to
 * 2: cudaGetDevice, the buffer-id query, cudaFree), the witness arena's wipe (3 to 8) and release
 * (9 to 11), scratch's release (12 to 14). Only the wipe's failure is reported; a sticky fault
 * before it makes it fail too. */
static nalloc_status expect_ctx_destroy(const fault *f)
{
    if (f->index > 8 || (f->index < 3 && !is_sticky(f)))
        return NALLOC_OK;
    return failure_of(f);
}

static void check_ctx_destroyed(const fault *f, nalloc_status st)
{
    (void)st;
    if (is_sticky(f))
        return; /* device 0 is poisoned: what it keeps is no longer nalloc's to free */
    bool release_failed = f != NULL && (f->index <= 2 || f->index >= 9);
    assert_left(release_failed ? 1 : 0, 0); /* only the block CUDA refused to let go of */
}

static void test_device_context_destruction_survives_each_failing_call(void **state)
{
    (void)state;
    const walk w = {"nalloc_ctx_destroy (device)", setup_device_ctx, destroy_device_ctx,
                    expect_ctx_destroy, check_ctx_destroyed, teardown_nothing};
    walk_through(&w);
}

/* ---- Pinned arenas ---- */

static nalloc_status create_pinned(void)
{
    nalloc_arena_config c = pinned_config(NALLOC_KIND_SCRATCH);
    fx.pinned = (nalloc_arena *)&fx;
    return nalloc_arena_create(&c, &fx.pinned);
}

static nalloc_status expect_failure(const fault *f)
{
    return failure_of(f);
}

static void check_pinned_create(const fault *f, nalloc_status st)
{
    if (st != NALLOC_OK) {
        WALK_TRUE(fx.pinned == NULL);
        if (!is_sticky(f)) {
            assert_left(0, 0); /* the chunks registered before the failure were unregistered */
            WALK_EQ(create_pinned(), NALLOC_OK);
            WALK_EQ(cudastub_counts_now().registrations, 4);
            WALK_EQ(nalloc_arena_destroy(fx.pinned), NALLOC_OK);
            assert_left(0, 0);
        }
        return;
    }
    nalloc_stats s;
    assert_int_equal(nalloc_arena_stats(fx.pinned, &s), NALLOC_OK);
    WALK_TRUE(s.pinned && s.locked && !s.pin_fallback);
    for (size_t chunk = 0; chunk < 4; chunk++) {
        unsigned flags = 0;
        WALK_TRUE(cudastub_is_registered((char *)s.base + chunk * 4096, 4096, &flags));
        WALK_TRUE(flags & cudaHostRegisterPortable);
    }
    WALK_EQ(cudastub_counts_now().registrations, 4);
    WALK_EQ(nalloc_arena_destroy(fx.pinned), NALLOC_OK);
    assert_left(0, 0);
}

static void test_pinned_arena_creation_survives_each_failing_call(void **state)
{
    (void)state;
    const walk w = {"nalloc_arena_create (pinned, four chunks)", setup_nothing, create_pinned,
                    expect_failure, check_pinned_create, teardown_nothing};
    walk_through(&w);
}

static void setup_pinned(void)
{
    nalloc_arena_config c = pinned_config(NALLOC_KIND_SCRATCH);
    assert_int_equal(nalloc_arena_create(&c, &fx.pinned), NALLOC_OK);
}

static nalloc_status destroy_pinned(void)
{
    return nalloc_arena_destroy(fx.pinned);
}

/* The chunk whose unregistration failed stays registered (nothing better can be done on
 * teardown); after a sticky failure, every later chunk too. */
static void check_pinned_destroyed(const fault *f, nalloc_status st)
{
    (void)st;
    size_t left = f == NULL ? 0 : is_sticky(f) ? 4 - f->index : 1;
    assert_left(0, left);
}

static void test_pinned_arena_destruction_survives_each_failing_call(void **state)
{
    (void)state;
    const walk w = {"nalloc_arena_destroy (pinned)", setup_pinned, destroy_pinned, expect_ok,
                    check_pinned_destroyed, teardown_nothing};
    walk_through(&w);
}

static void setup_pinned_with_a_download_queued(void)
{
    setup_pinned();
    fx.device = device_arena(NALLOC_KIND_SCRATCH, 0);
    assert_int_equal(cudaStreamCreate(&fx.stream), cudaSuccess);
    fx.block = nalloc_alloc(fx.pinned, 4096);
    fx.device_block = nalloc_alloc(fx.device, 4096);
    cudastub_fill(fx.device_block, 0x42, 4096);
    assert_int_equal(nalloc_stage_async(fx.pinned, fx.block, fx.device, fx.device_block, 4096,
                                        fx.stream),
                     NALLOC_OK);
    fx.used = used_of(fx.pinned);
}

static nalloc_status wipe_pinned_async(void)
{
    return nalloc_wipe_async(fx.pinned, fx.stream);
}

/* The wait fails: the bytes are zeroed anyway and the failure reported; the arena is not reset. */
static void check_pinned_wipe(const fault *f, nalloc_status st)
{
    for (size_t i = 0; i < 4096; i++)
        if (peek_released(fx.block, i) != 0)
            fail_msg("%s: pinned byte %zu is not zero after the wipe", where, i);
    WALK_EQ(used_of(fx.pinned), st == NALLOC_OK ? 0 : fx.used);
    if (st != NALLOC_OK && !is_sticky(f)) {
        WALK_EQ(nalloc_wipe_async(fx.pinned, fx.stream), NALLOC_OK);
        WALK_EQ(used_of(fx.pinned), 0);
    }
}

static void teardown_pinned_and_device(const fault *f, nalloc_status st)
{
    (void)st;
    WALK_EQ(nalloc_arena_destroy(fx.pinned), NALLOC_OK);
    nalloc_status destroyed = nalloc_arena_destroy(fx.device);
    if (!is_sticky(f)) {
        WALK_EQ(destroyed, NALLOC_OK);
        WALK_EQ(cudaStreamDestroy(fx.stream), cudaSuccess);
        assert_left(0, 0);
    }
}

static void test_pinned_wipe_in_stream_order_survives_its_failing_wait(void **state)
{
    (void)state;
    const walk w = {"nalloc_wipe_async (pinned)", setup_pinned_with_a_download_queued,
                    wipe_pinned_async, expect_failure, check_pinned_wipe,
                    teardown_pinned_and_device};
    walk_through(&w);
}

/* ---- Windows ---- */

static void setup_poly_on_device_1_with_stream(void)
{
    fx.arena = device_arena(NALLOC_KIND_POLY, 1);
    assert_int_equal(cudaSetDevice(1), cudaSuccess);
    assert_int_equal(cudaStreamCreate(&fx.stream), cudaSuccess);
    assert_int_equal(cudaSetDevice(0), cudaSuccess);
}

static nalloc_status create_window(void)
{
    memset(&fx.window, 0xab, sizeof fx.window);
    return nalloc_window_create(fx.arena, 4096, &fx.window);
}

/* Only the restoring cudaSetDevice may fail without failing the call. */
static nalloc_status expect_window(const fault *f)
{
    return f->fn == CUDASTUB_SET_DEVICE && f->nth == 2 ? NALLOC_OK : failure_of(f);
}

static void check_window_create(const fault *f, nalloc_status st)
{
    (void)f; /* what matters is whether the arena's device is poisoned */
    if (st == NALLOC_OK) {
        WALK_EQ(fx.window.device, 1);
        WALK_EQ(fx.window.capacity, 4096);
        nalloc_window_state zero = {0, 0}, state;
        cudastub_peek(&state, fx.window.state, sizeof state);
        WALK_TRUE(memcmp(&state, &zero, sizeof state) == 0);
        WALK_EQ(cudastub_counts_now().pending, 0); /* ready for kernels on any stream */
        return;
    }
    nalloc_window zero;
    memset(&zero, 0, sizeof zero);
    WALK_TRUE(memcmp(&fx.window, &zero, sizeof zero) == 0);
    WALK_EQ(used_of(fx.arena), 0); /* the arena keeps nothing */
    if (!poisoned(1))
        WALK_EQ(create_window(), NALLOC_OK);
}

static void teardown_window(const fault *f, nalloc_status st)
{
    if (!is_sticky(f))
        WALK_EQ(cudaStreamDestroy(fx.stream), cudaSuccess);
    teardown_arena(f, st);
}

static void test_window_creation_survives_each_failing_call(void **state)
{
    (void)state;
    const walk w = {"nalloc_window_create (device 1 from device 0)",
                    setup_poly_on_device_1_with_stream, create_window, expect_window,
                    check_window_create, teardown_window};
    walk_through(&w);
}

static nalloc_status create_aligned_window(void)
{
    memset(&fx.window, 0xab, sizeof fx.window);
    return nalloc_window_create_aligned(fx.arena, 4096, 4096, &fx.window);
}

static void check_aligned_window_create(const fault *f, nalloc_status st)
{
    if (st == NALLOC_OK)
        WALK_EQ((uintptr_t)fx.window.base % 4096, 0);
    check_window_create(f, st);
}

static void test_aligned_window_creation_survives_each_failing_call(void **state)
{
    (void)state;
    const walk w = {"nalloc_window_create_aligned (device 1 from device 0)",
                    setup_poly_on_device_1_with_stream, create_aligned_window, expect_window,
                    check_aligned_window_create, teardown_window};
    walk_through(&w);
}

/* A window whose kernels have used 1000 bytes and overflowed. */
static void setup_used_window(void)
{
    setup_poly_on_device_1_with_stream();
    assert_int_equal(nalloc_window_create(fx.arena, 4096, &fx.window), NALLOC_OK);
    nalloc_window_state used = {1000, 1};
    cudastub_poke(fx.window.state, &used, sizeof used);
}

static nalloc_status reset_window(void)
{
    return nalloc_window_reset(&fx.window, fx.stream);
}

static void check_window_reset(const fault *f, nalloc_status st)
{
    (void)f; /* what matters is whether the arena's device is poisoned */
    nalloc_window_state state;
    if (st == NALLOC_OK) {
        WALK_EQ(cudastub_counts_now().pending, 1); /* in stream order: queued */
        cudastub_peek(&state, fx.window.state, sizeof state);
        WALK_EQ(state.used, 1000); /* earlier work on the stream still sees the old state */
        if (!poisoned(1)) {
            assert_int_equal(cudaStreamSynchronize(fx.stream), cudaSuccess);
            cudastub_peek(&state, fx.window.state, sizeof state);
            WALK_EQ(state.used, 0);
            WALK_EQ(state.overflow, 0);
        }
        return;
    }
    WALK_EQ(cudastub_counts_now().pending, 0);
    cudastub_peek(&state, fx.window.state, sizeof state);
    WALK_EQ(state.used, 1000);
    if (!poisoned(1))
        WALK_EQ(reset_window(), NALLOC_OK);
}

static void test_window_reset_survives_each_failing_call(void **state)
{
    (void)state;
    const walk w = {"nalloc_window_reset (device 1 from device 0)", setup_used_window,
                    reset_window, expect_window, check_window_reset, teardown_window};
    walk_through(&w);
}

static nalloc_status window_usage(void)
{
    fx.out_used = 77;
    fx.out_overflowed = false;
    return nalloc_window_usage(&fx.window, fx.stream, &fx.out_used, &fx.out_overflowed);
}

static void check_window_usage(const fault *f, nalloc_status st)
{
    (void)f; /* what matters is whether the arena's device is poisoned */
    if (st == NALLOC_OK) {
        WALK_EQ(fx.out_used, 1000);
        WALK_TRUE(fx.out_overflowed);
        return;
    }
    WALK_EQ(fx.out_used, 77); /* outputs untouched on failure */
    WALK_TRUE(!fx.out_overflowed);
    if (!poisoned(1))
        WALK_EQ(window_usage(), NALLOC_OK);
}

static void test_window_usage_survives_each_failing_call(void **state)
{
    (void)state;
    const walk w = {"nalloc_window_usage (device 1 from device 0)", setup_used_window,
                    window_usage, expect_window, check_window_usage, teardown_window};
    walk_through(&w);
}

/* ---- Staging ---- */

static void setup_staging(void)
{
    setup_pinned();
    fx.device = device_arena(NALLOC_KIND_SCRATCH, 0);
    assert_int_equal(cudaStreamCreate(&fx.stream), cudaSuccess);
    fx.block = nalloc_alloc(fx.pinned, 4096);
    fx.device_block = nalloc_alloc(fx.device, 4096);
    memset(fx.block, 0x33, 4096);
}

static nalloc_status upload(void)
{
    return nalloc_stage_async(fx.device, fx.device_block, fx.pinned, fx.block, 4096, fx.stream);
}

static void check_upload(const fault *f, nalloc_status st)
{
    if (st == NALLOC_OK) {
        WALK_EQ(cudastub_counts_now().pending, 1);
        assert_int_equal(cudaStreamSynchronize(fx.stream), cudaSuccess);
        assert_device_bytes(fx.device_block, 4096, 0x33);
        return;
    }
    WALK_EQ(cudastub_counts_now().pending, 0);
    if (!is_sticky(f)) {
        WALK_EQ(upload(), NALLOC_OK);
        assert_int_equal(cudaStreamSynchronize(fx.stream), cudaSuccess);
        assert_device_bytes(fx.device_block, 4096, 0x33);
    }
}

static void test_staging_survives_its_failing_copy(void **state)
{
    (void)state;
    const walk w = {"nalloc_stage_async (upload)", setup_staging, upload, expect_failure,
                    check_upload, teardown_pinned_and_device};
    walk_through(&w);
}

static nalloc_status download(void)
{
    return nalloc_stage_async(fx.pinned, fx.block, fx.device, fx.device_block, 4096, fx.stream);
}

static void check_download(const fault *f, nalloc_status st)
{
    if (st == NALLOC_OK) {
        WALK_EQ(fx.block[0], 0x33); /* queued, not landed */
        assert_int_equal(cudaStreamSynchronize(fx.stream), cudaSuccess);
        WALK_EQ(fx.block[4095], 0x44);
        return;
    }
    WALK_EQ(cudastub_counts_now().pending, 0);
    if (!is_sticky(f)) {
        WALK_EQ(download(), NALLOC_OK);
        assert_int_equal(cudaStreamSynchronize(fx.stream), cudaSuccess);
        WALK_EQ(fx.block[4095], 0x44);
    }
}

static void setup_staging_with_device_data(void)
{
    setup_staging();
    cudastub_fill(fx.device_block, 0x44, 4096);
}

static void test_staging_survives_its_failing_download(void **state)
{
    (void)state;
    const walk w = {"nalloc_stage_async (download)", setup_staging_with_device_data, download,
                    expect_failure, check_download, teardown_pinned_and_device};
    walk_through(&w);
}

/* ---- Group ---- */

static int warm_up(void **state)
{
    (void)state;
    /* The probe and the driver entry-point query run once per process: get them done, so that
     * every walk's calls are the same in each run. */
    if (nalloc_cuda_available() != NALLOC_OK)
        return -1;
    nalloc_arena *a = device_arena(NALLOC_KIND_SCRATCH, 0);
    assert_int_equal(nalloc_arena_destroy(a), NALLOC_OK);
    cudastub_reset(NULL);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_device_arena_creation_survives_each_failing_call),
        cmocka_unit_test(test_fractional_device_arena_creation_survives_each_failing_call),
        cmocka_unit_test(test_device_arena_destruction_survives_each_failing_call),
        cmocka_unit_test(test_witness_device_arena_destruction_survives_each_failing_call),
        cmocka_unit_test(test_device_wipe_survives_each_failing_call),
        cmocka_unit_test(test_device_wipe_in_stream_order_survives_each_failing_call),
        cmocka_unit_test(test_device_alloc_zeroed_survives_each_failing_call),
        cmocka_unit_test(test_wipe_after_a_context_reset_never_writes_the_new_owners_block),
        cmocka_unit_test(test_destroy_after_a_context_reset_never_frees_the_new_owners_block),
        cmocka_unit_test(test_device_lane_wipe_survives_each_failing_call),
        cmocka_unit_test(test_device_context_creation_survives_each_failing_call),
        cmocka_unit_test(test_device_context_destruction_survives_each_failing_call),
        cmocka_unit_test(test_pinned_arena_creation_survives_each_failing_call),
        cmocka_unit_test(test_pinned_arena_destruction_survives_each_failing_call),
        cmocka_unit_test(test_pinned_wipe_in_stream_order_survives_its_failing_wait),
        cmocka_unit_test(test_window_creation_survives_each_failing_call),
        cmocka_unit_test(test_aligned_window_creation_survives_each_failing_call),
        cmocka_unit_test(test_window_reset_survives_each_failing_call),
        cmocka_unit_test(test_window_usage_survives_each_failing_call),
        cmocka_unit_test(test_staging_survives_its_failing_copy),
        cmocka_unit_test(test_staging_survives_its_failing_download),
    };
    return cmocka_run_group_tests_name("cudastub_faults", tests, warm_up, NULL);
}
