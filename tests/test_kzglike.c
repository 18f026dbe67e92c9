/* tests/test_kzglike.c - a library we did not write for nalloc, routed call by call (issue 10,
 * item 6: the c-kzg-shaped test).
 *
 * tests/kzglike is a small commitment library in the style of c-kzg-4844: plain malloc and free,
 * frees in allocation order, public calls nested inside each other, settings kept across calls,
 * and a thread pool whose workers free what the caller allocated. This driver is linked with
 * libnalloc_malloc.so before the C library, so the library's malloc is nalloc's, and runs it
 *
 *  - unrouted, and as the plain program tests/kzglike/kzglike_run (not linked with nalloc): the
 *    reference, checked here without the library (commitments and values recomputed directly);
 *  - with a route pushed around each call: the same results, and after each call the arena has
 *    no block alive and nothing used (so it could be reset), with no fallback;
 *  - on the pool, routed through the caller's route alone (the workers then use the system
 *    allocator and free the caller's task records in the arena), and through the default route
 *    too (one arena for every thread, none per thread);
 *  - from several threads at once, each with its route into one arena;
 *  - in an arena too small for it: requests fall back to the system allocator, counted, and the
 *    results are still right.
 *
 * The run under LD_PRELOAD with NALLOC_ROUTE is tests/kzglike/run_preloaded.sh.
 */
#include "testutil.h"

#include "kzglike/kzglike.h"
#include "kzglike/workload.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>

enum { COUNT = KZ_WORKLOAD_COUNT };

static kz_settings *settings;
static kz_pool *pool;
static uint8_t *blobs[COUNT];
static kz_blob_proof reference[COUNT]; /* from the plain program */
static uint64_t poly_reference[3];     /* its kz_commit / kz_prove results */

/* ---------------------------------------------------------------------------------------------
 * The reference: the plain program's output
 * ------------------------------------------------------------------------------------------- */

/* Run the plain program and keep its stdout (NUL-terminated, malloc'd), or NULL. */
static char *run_plain_program(void)
{
    int fds[2];
    if (pipe(fds) != 0)
        return NULL;
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        return NULL;
    if (pid == 0) {
        dup2(fds[1], STDOUT_FILENO);
        close(fds[0]);
        close(fds[1]);
        execl(KZGLIKE_RUN, "kzglike_run", (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    size_t cap = 1 << 16, used = 0;
    char *out = malloc(cap);
    for (ssize_t n; out != NULL && used + 1 < cap && (n = read(fds[0], out + used, cap - 1 - used)) > 0;)
        used += (size_t)n;
    close(fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    if (out == NULL || !exited_ok(status)) {
        free(out);
        return NULL;
    }
    out[used] = '\0';
    return out;
}

static int setup(void **state)
{
    (void)state;
    if (kz_setup(KZ_WORKLOAD_MAX_COEFFS, KZ_WORKLOAD_TAU, &settings) != KZ_OK ||
        kz_pool_create(3, &pool) != KZ_OK)
        return -1;
    for (size_t i = 0; i < COUNT; i++)
        if ((blobs[i] = kz_workload_blob(i)) == NULL)
            return -1;
    char *out = run_plain_program();
    if (out == NULL)
        return -1;
    size_t found = 0;
    int poly = 0;
    for (char *line = strtok(out, "\n"); line != NULL; line = strtok(NULL, "\n")) {
        size_t i, len;
        kz_blob_proof p;
        if (sscanf(line, "blob %zu (%zu bytes): commitment %" SCNx64 " z %" SCNx64 " y %" SCNx64
                         " proof %" SCNx64, &i, &len, &p.commitment, &p.z, &p.y, &p.proof) == 6 &&
            i < COUNT && strstr(line, "verified") != NULL) {
            reference[i] = p;
            found++;
        }
        poly += sscanf(line, "polynomial: commitment %" SCNx64 " y %" SCNx64 " proof %" SCNx64,
                       &poly_reference[0], &poly_reference[1], &poly_reference[2]) == 3;
        if (strstr(line, "REJECTED") != NULL)
            found = 0;
    }
    free(out);
    return found == COUNT && poly == 1 ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    kz_pool_destroy(pool);
    for (size_t i = 0; i < COUNT; i++)
        free(blobs[i]);
    kz_free_settings(settings);
    return 0;
}

static int no_routes_left(void **state)
{
    (void)state;
    while (nalloc_route_depth() > 0)
        nalloc_route_pop();
    nalloc_route_set_default(NULL);
    return 0;
}

/* The blob's polynomial evaluated at x, directly. */
static uint64_t blob_at(size_t i, uint64_t x)
{
    size_t len = kz_workload_lens[i], n = len / 7 + (len % 7 != 0);
    uint64_t acc = 0;
    for (size_t k = n; k-- > 0;) {
        uint64_t v = 0;
        for (size_t b = 0; b < 7 && k * 7 + b < len; b++)
            v |= (uint64_t)blobs[i][k * 7 + b] << (8 * b);
        acc = kz_add(v, kz_mul(acc, x));
    }
    return acc;
}

static void test_the_plain_results_check_out_without_the_library(void **state)
{
    (void)state;
    uint64_t tau = kz_secret(settings);
    for (size_t i = 0; i < COUNT; i++) {
        const kz_blob_proof *r = &reference[i];
        assert_int_equal(r->commitment, blob_at(i, tau));
        assert_int_equal(r->y, blob_at(i, r->z));
        /* The proof is the quotient (f(x) - y) / (x - z) at tau. */
        assert_int_equal(kz_sub(r->commitment, r->y), kz_mul(r->proof, kz_sub(tau, r->z)));
    }
}

/* ---------------------------------------------------------------------------------------------
 * Routed call by call
 * ------------------------------------------------------------------------------------------- */

static void test_the_override_library_comes_before_the_c_library(void **state)
{
    (void)state;
    nalloc_arena *a = make_arena(NALLOC_KIND_SCRATCH, MiB);
    void *p = malloc(100);
    assert_null(nalloc_owner(p)); /* unrouted: glibc's */
    free(p);
    assert_int_equal(nalloc_route_push(a), NALLOC_OK);
    p = malloc(100); /* the C library's name, routed */
    void *q = calloc(10, 10);
    char *r = realloc(NULL, 10);
    assert_ptr_equal(nalloc_owner(p), a);
    assert_ptr_equal(nalloc_owner(q), a);
    assert_ptr_equal(nalloc_owner(r), a);
    free(r);
    free(q);
    free(p);
    assert_int_equal(nalloc_route_pop(), NALLOC_OK);
    assert_int_equal(stats_of(a).live_blocks, 0);
    assert_int_equal(nalloc_arena_destroy(a), NALLOC_OK);
}

/* After a call: nothing of it alive or used, the arena served it, nothing fell back. */
static void assert_call_left_nothing(nalloc_arena *a, size_t allocations_before, size_t at_least)
{
    nalloc_stats s = stats_of(a);
    assert_int_equal(s.live_blocks, 0);
    assert_int_equal(s.used, 0);
    assert_true(s.allocations >= allocations_before + at_least);
}

static void test_a_route_per_call_gives_the_plain_results_and_leaves_the_arena_empty(void **state)
{
    (void)state;
    nalloc_arena *a = make_arena(NALLOC_KIND_SCRATCH, 64 * MiB);
    for (int pass = 0; pass < 3; pass++) {
        for (size_t i = 0; i < COUNT; i++) {
            size_t before = stats_of(a).allocations;
            kz_blob_proof p;
            assert_int_equal(nalloc_route_push(a), NALLOC_OK);
            kz_ret ret = kz_blob_to_proof(settings, blobs[i], kz_workload_lens[i], &p);
            assert_int_equal(nalloc_route_pop(), NALLOC_OK);
            assert_int_equal(ret, KZ_OK);
            assert_memory_equal(&p, &reference[i], sizeof p);
            /* coefficients, transcript, and the nested calls' temporaries: 6 blocks or more */
            assert_call_left_nothing(a, before, 6);
        }
        /* The public calls one level down, each with its own route. */
        uint64_t coeffs[1000], c, y, proof;
        for (size_t i = 0; i < 1000; i++)
            coeffs[i] = (i * i * 7919 + 13) % KZ_P;
        size_t before = stats_of(a).allocations;
        {
            NALLOC_ROUTE_SCOPE(a);
            assert_int_equal(kz_commit(settings, coeffs, 1000, &c), KZ_OK);
        }
        assert_call_left_nothing(a, before, 2);
        before = stats_of(a).allocations;
        {
            NALLOC_ROUTE_SCOPE(a);
            assert_int_equal(kz_prove(settings, coeffs, 1000, 12345, &y, &proof), KZ_OK);
        }
        assert_call_left_nothing(a, before, 4);
        assert_int_equal(c, poly_reference[0]);
        assert_int_equal(y, poly_reference[1]);
        assert_int_equal(proof, poly_reference[2]);
        /* Empty between passes: a reset is allowed, and the next pass starts from nothing. */
        assert_int_equal(nalloc_reset(a), NALLOC_OK);
    }
    assert_int_equal(stats_of(a).fallbacks, 0);
    assert_int_equal(nalloc_arena_destroy(a), NALLOC_OK);
}

static void test_a_library_stepping_out_of_the_route_uses_the_system(void **state)
{
    (void)state;
    nalloc_arena *a = make_arena(NALLOC_KIND_SCRATCH, 64 * MiB);
    size_t before = stats_of(a).allocations;
    assert_int_equal(nalloc_route_push(a), NALLOC_OK);
    assert_int_equal(nalloc_route_push(NULL), NALLOC_OK);
    kz_blob_proof p;
    assert_int_equal(kz_blob_to_proof(settings, blobs[4], kz_workload_lens[4], &p), KZ_OK);
    assert_int_equal(nalloc_route_pop(), NALLOC_OK);
    assert_int_equal(nalloc_route_pop(), NALLOC_OK);
    assert_memory_equal(&p, &reference[4], sizeof p);
    assert_int_equal(stats_of(a).allocations, before);
    assert_int_equal(nalloc_arena_destroy(a), NALLOC_OK);
}

/* ---------------------------------------------------------------------------------------------
 * The thread pool
 * ------------------------------------------------------------------------------------------- */

static void check_batch(const kz_blob_proof *batch)
{
    for (size_t i = 0; i < COUNT; i++)
        assert_memory_equal(&batch[i], &reference[i], sizeof batch[i]);
}

static void test_a_pool_batch_routed_by_its_caller_alone(void **state)
{
    (void)state;
    /* The caller's task records come from the arena, and the workers (no route of their own)
     * free them there; their own temporaries come from the system allocator. */
    nalloc_arena *a = make_arena(NALLOC_KIND_SCRATCH, 64 * MiB);
    for (int round = 0; round < 3; round++) {
        size_t before = stats_of(a).allocations;
        kz_blob_proof batch[COUNT];
        assert_int_equal(nalloc_route_push(a), NALLOC_OK);
        kz_ret ret = kz_batch_prove(pool, settings, (const uint8_t *const *)blobs,
                                    kz_workload_lens, COUNT, batch);
        assert_int_equal(nalloc_route_pop(), NALLOC_OK);
        assert_int_equal(ret, KZ_OK);
        check_batch(batch);
        assert_call_left_nothing(a, before, COUNT + 1); /* the tasks and their array */
    }
    assert_int_equal(stats_of(a).fallbacks, 0);
    assert_int_equal(nalloc_arena_destroy(a), NALLOC_OK);
}

static void test_a_pool_batch_routed_for_every_thread_by_the_default_route(void **state)
{
    (void)state;
    /* One arena for the caller and every worker: no per-thread arenas. */
    nalloc_arena *a = make_arena(NALLOC_KIND_SCRATCH, 256 * MiB);
    for (int round = 0; round < 3; round++) {
        size_t before = stats_of(a).allocations;
        kz_blob_proof batch[COUNT];
        assert_int_equal(nalloc_route_set_default(a), NALLOC_OK);
        assert_int_equal(nalloc_route_push(a), NALLOC_OK);
        kz_ret ret = kz_batch_prove(pool, settings, (const uint8_t *const *)blobs,
                                    kz_workload_lens, COUNT, batch);
        assert_int_equal(nalloc_route_pop(), NALLOC_OK);
        assert_int_equal(nalloc_route_set_default(NULL), NALLOC_OK);
        assert_int_equal(ret, KZ_OK);
        check_batch(batch);
        assert_call_left_nothing(a, before, COUNT + 1 + 6 * COUNT); /* the workers' too */
    }
    nalloc_stats s = stats_of(a);
    assert_int_equal(s.fallbacks, 0);
    assert_int_equal(nalloc_arena_destroy(a), NALLOC_OK);
}

typedef struct caller {
    nalloc_arena *arena;
    size_t mismatches;
    size_t failures;
} caller;

static void *call_all(void *arg)
{
    caller *c = arg;
    for (int pass = 0; pass < 2; pass++)
        for (size_t i = 0; i < COUNT; i++) {
            kz_blob_proof p;
            bool routed = nalloc_route_push(c->arena) == NALLOC_OK;
            kz_ret ret = kz_blob_to_proof(settings, blobs[i], kz_workload_lens[i], &p);
            if (routed)
                nalloc_route_pop();
            c->failures += ret != KZ_OK || !routed;
            c->mismatches += memcmp(&p, &reference[i], sizeof p) != 0;
        }
    return NULL;
}

static void test_threads_each_routing_their_calls_into_one_arena(void **state)
{
    (void)state;
    enum { THREADS = 4 };
    nalloc_arena *a = make_arena(NALLOC_KIND_SCRATCH, 256 * MiB);
    caller c[THREADS];
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++) {
        c[i] = (caller){a, 0, 0};
        assert_int_equal(pthread_create(&t[i], NULL, call_all, &c[i]), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        assert_int_equal(pthread_join(t[i], NULL), 0);
        assert_int_equal(c[i].failures, 0);
        assert_int_equal(c[i].mismatches, 0);
    }
    nalloc_stats s = stats_of(a);
    assert_int_equal(s.live_blocks, 0);
    assert_int_equal(s.used, 0);
    assert_int_equal(s.fallbacks, 0);
    assert_true(s.allocations >= THREADS * 2 * COUNT * 6);
    assert_int_equal(nalloc_arena_destroy(a), NALLOC_OK);
}

/* ---------------------------------------------------------------------------------------------
 * Too small an arena
 * ------------------------------------------------------------------------------------------- */

static void test_too_small_an_arena_falls_back_and_the_results_stay_right(void **state)
{
    (void)state;
    nalloc_arena *a = make_arena(NALLOC_KIND_SCRATCH, 64 * KiB);
    for (size_t i = 0; i < COUNT; i++) {
        kz_blob_proof p;
        assert_int_equal(nalloc_route_push(a), NALLOC_OK);
        kz_ret ret = kz_blob_to_proof(settings, blobs[i], kz_workload_lens[i], &p);
        assert_int_equal(nalloc_route_pop(), NALLOC_OK);
        assert_int_equal(ret, KZ_OK);
        assert_memory_equal(&p, &reference[i], sizeof p);
        nalloc_stats s = stats_of(a);
        assert_int_equal(s.live_blocks, 0);
        assert_int_equal(s.used, 0);
    }
    /* The small blobs fit; the big ones' arrays did not and came from the system allocator. */
    nalloc_stats s = stats_of(a);
    assert_true(s.fallbacks >= 4);
    assert_true(s.allocations >= 6 * 4);
    /* And the pool, with every thread routed into the small arena. */
    kz_blob_proof batch[COUNT];
    assert_int_equal(nalloc_route_set_default(a), NALLOC_OK);
    assert_int_equal(nalloc_route_push(a), NALLOC_OK);
    kz_ret ret = kz_batch_prove(pool, settings, (const uint8_t *const *)blobs, kz_workload_lens,
                                COUNT, batch);
    assert_int_equal(nalloc_route_pop(), NALLOC_OK);
    assert_int_equal(nalloc_route_set_default(NULL), NALLOC_OK);
    assert_int_equal(ret, KZ_OK);
    check_batch(batch);
    s = stats_of(a);
    assert_int_equal(s.live_blocks, 0);
    assert_int_equal(s.used, 0);
    assert_int_equal(nalloc_arena_destroy(a), NALLOC_OK);
}

int main(void)
{
    if (under_valgrind()) { /* its preloaded malloc comes before ours: nothing would be routed */
        printf("skipped: the override library cannot come first under Valgrind\n");
        return 77;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_the_plain_results_check_out_without_the_library),
        cmocka_unit_test_teardown(test_the_override_library_comes_before_the_c_library, no_routes_left),
        cmocka_unit_test_teardown(test_a_route_per_call_gives_the_plain_results_and_leaves_the_arena_empty, no_routes_left),
        cmocka_unit_test_teardown(test_a_library_stepping_out_of_the_route_uses_the_system, no_routes_left),
        cmocka_unit_test_teardown(test_a_pool_batch_routed_by_its_caller_alone, no_routes_left),
        cmocka_unit_test_teardown(test_a_pool_batch_routed_for_every_thread_by_the_default_route, no_routes_left),
        cmocka_unit_test_teardown(test_threads_each_routing_their_calls_into_one_arena, no_routes_left),
        cmocka_unit_test_teardown(test_too_small_an_arena_falls_back_and_the_results_stay_right, no_routes_left),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
