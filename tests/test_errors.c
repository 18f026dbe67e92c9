/* tests/test_errors.c - every bad input gets a clear status and leaves every arena intact: NULL
 * arenas, zero and huge sizes, SIZE_MAX, non-power-of-two and huge alignments, overflowing counts,
 * bad configurations, use after destroy. After each refusal the arena must still serve requests
 * that fit, with statistics unchanged but for the failure count. And the one error model of
 * nalloc.h: a failure records a status and a message naming the public call and the cause, per
 * thread; a success changes neither; nalloc_last_error_clear resets both. */
#include "testutil.h"

#include <pthread.h>

/* The arena's observable state, to check that a refused call changed nothing. */
typedef struct snapshot {
    size_t used, allocations, failures;
    void *next; /* where the next 64-byte-aligned 64-byte block would go */
} snapshot;

static snapshot snap(nalloc_arena *a)
{
    nalloc_stats s = stats_of(a);
    snapshot out = {s.used, s.allocations, s.failures, NULL};
    out.next = (void *)((s.base + s.used + 63) & ~(uintptr_t)63);
    return out;
}

static void assert_unchanged_but_one_failure(nalloc_arena *a, snapshot before)
{
    snapshot now = snap(a);
    assert_int_equal(now.used, before.used);
    assert_int_equal(now.allocations, before.allocations);
    assert_int_equal(now.failures, before.failures + 1);
}

static int setup(void **state)
{
    *state = make_arena(NALLOC_KIND_SCRATCH, MiB);
    return nalloc_alloc(*state, 100) != NULL ? 0 : -1;
}

static int teardown(void **state)
{
    return nalloc_arena_destroy(*state) == NALLOC_OK ? 0 : -1;
}

static void test_null_arena_is_invalid_everywhere(void **state)
{
    (void)state;
    nalloc_stats s;
    assert_null_with(NALLOC_ERR_INVALID, nalloc_alloc(NULL, 64));
    assert_null_with(NALLOC_ERR_INVALID, nalloc_alloc_aligned(NULL, 64, 64));
    assert_null_with(NALLOC_ERR_INVALID, nalloc_alloc_zeroed(NULL, 1, 64, 0));
    assert_null_with(NALLOC_ERR_INVALID, nalloc_realloc(NULL, NULL, 0, 64, 0));
    assert_int_equal(nalloc_free_last(NULL, (void *)64, 64), NALLOC_ERR_INVALID);
    assert_int_equal(nalloc_resize_last(NULL, (void *)64, 64, 128), NALLOC_ERR_INVALID);
    assert_int_equal(nalloc_arena_stats(NULL, &s), NALLOC_ERR_INVALID);
    assert_int_equal(nalloc_arena_print_stats(NULL, NULL), NALLOC_ERR_INVALID);
    assert_int_equal(nalloc_wipe(NULL), NALLOC_ERR_INVALID);
    assert_int_equal(nalloc_arena_destroy(NULL), NALLOC_ERR_INVALID);
    nalloc_mark m = nalloc_mark_get(NULL);
    assert_int_equal(nalloc_last_error(), NALLOC_ERR_INVALID);
    assert_int_equal(nalloc_rollback(NULL, m), NALLOC_ERR_INVALID);
    nalloc_last_error_clear();
    assert_int_equal(nalloc_reset(NULL), NALLOC_ERR_INVALID);
    assert_int_equal(nalloc_last_error(), NALLOC_ERR_INVALID);
}

static void test_zero_size_is_invalid_and_consumes_nothing(void **state)
{
    nalloc_arena *a = *state;
    snapshot before = snap(a);
    assert_null_with(NALLOC_ERR_INVALID, nalloc_alloc(a, 0));
    assert_unchanged_but_one_failure(a, before);
    before = snap(a);
    assert_null_with(NALLOC_ERR_INVALID, nalloc_alloc_aligned(a, 0, 64));
    assert_unchanged_but_one_failure(a, before);
    before = snap(a);
    assert_null_with(NALLOC_ERR_INVALID, nalloc_alloc_zeroed(a, 0, 8, 0));
    assert_unchanged_but_one_failure(a, before);
    before = snap(a);
    assert_null_with(NALLOC_ERR_INVALID, nalloc_alloc_zeroed(a, 8, 0, 0));
    assert_unchanged_but_one_failure(a, before);
    assert_ptr_equal(nalloc_alloc(a, 64), before.next); /* still serves what fits */
}

static void test_huge_sizes_are_refused_and_the_arena_still_serves(void **state)
{
    nalloc_arena *a = *state;
    const size_t sizes[] = {SIZE_MAX, SIZE_MAX - 1, SIZE_MAX / 2 + 1, (size_t)1 << 62, MiB + 1,
                            MiB - 100 + 1};
    for (unsigned i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        snapshot before = snap(a);
        assert_null_with(NALLOC_ERR_NOMEM, nalloc_alloc(a, sizes[i]));
        assert_unchanged_but_one_failure(a, before);
        before = snap(a);
        assert_null_with(NALLOC_ERR_NOMEM, nalloc_alloc_aligned(a, sizes[i], 4096));
        assert_unchanged_but_one_failure(a, before);
    }
    snapshot before = snap(a);
    assert_ptr_equal(nalloc_alloc(a, 64), before.next);
}

static void test_bad_alignments_are_invalid(void **state)
{
    nalloc_arena *a = *state;
    const size_t aligns[] = {0, 3, 6, 48, 100, 4095, 4097, SIZE_MAX, ((size_t)1 << 63) + 1};
    for (unsigned i = 0; i < sizeof aligns / sizeof aligns[0]; i++) {
        snapshot before = snap(a);
        assert_null_with(NALLOC_ERR_INVALID, nalloc_alloc_aligned(a, 64, aligns[i]));
        assert_unchanged_but_one_failure(a, before);
        if (aligns[i] != 0) { /* 0 means "policy" for the zeroed and realloc variants */
            before = snap(a);
            assert_null_with(NALLOC_ERR_INVALID, nalloc_alloc_zeroed(a, 1, 64, aligns[i]));
            assert_unchanged_but_one_failure(a, before);
        }
    }
}

static void test_huge_alignments_fail_cleanly_when_they_cannot_fit(void **state)
{
    nalloc_arena *a = *state;
    for (unsigned shift = 12; shift < 64; shift++) {
        size_t align = (size_t)1 << shift;
        snapshot before = snap(a);
        nalloc_stats s = stats_of(a);
        uintptr_t here = s.base + s.used;
        size_t pad = (size_t)(-here & (align - 1));
        bool fits = pad < s.capacity - s.used; /* room for the padding and one byte */
        void *p = nalloc_alloc_aligned(a, 1, align);
        if (fits) { /* possible up to the base's own alignment: mmap placed it */
            assert_non_null(p);
            assert_int_equal((uintptr_t)p % align, 0);
            nalloc_free_last(a, p, 1);
            continue;
        }
        assert_null(p);
        assert_int_equal(nalloc_last_error(), NALLOC_ERR_NOMEM);
        assert_unchanged_but_one_failure(a, before);
    }
    snapshot before = snap(a);
    assert_ptr_equal(nalloc_alloc(a, 64), before.next);
}

static void test_overflowing_counts_are_invalid(void **state)
{
    nalloc_arena *a = *state;
    snapshot before = snap(a);
    assert_null_with(NALLOC_ERR_INVALID, nalloc_alloc_zeroed(a, SIZE_MAX, 2, 0));
    assert_unchanged_but_one_failure(a, before);
    before = snap(a);
    assert_null_with(NALLOC_ERR_INVALID, nalloc_alloc_zeroed(a, (size_t)1 << 32, (size_t)1 << 32, 0));
    assert_unchanged_but_one_failure(a, before);
    before = snap(a);
    assert_null_with(NALLOC_ERR_NOMEM, nalloc_alloc_zeroed(a, (size_t)1 << 31, (size_t)1 << 31, 0));
    assert_unchanged_but_one_failure(a, before);
}

static void test_exhaustion_then_recovery(void **state)
{
    (void)state;
    nalloc_arena *a = make_arena(NALLOC_KIND_SCRATCH, 64 * KiB);
    int n = 0;
    while (nalloc_alloc(a, 1000) != NULL)
        n++;
    assert_int_equal(nalloc_last_error(), NALLOC_ERR_NOMEM);
    assert_int_equal(n, 64); /* 1000 bytes padded to 1024: exactly 64 fit in 64 KiB */
    nalloc_stats s = stats_of(a);
    assert_int_equal(s.used, 63 * 1024 + 1000);
    /* The last 24 bytes still serve a request that fits. */
    assert_non_null(nalloc_alloc_aligned(a, 24, 1));
    assert_null_with(NALLOC_ERR_NOMEM, nalloc_alloc_aligned(a, 1, 1));
    assert_int_equal(nalloc_reset(a), NALLOC_OK);
    assert_non_null(nalloc_alloc(a, 64 * KiB)); /* the whole capacity, exactly */
    assert_null_with(NALLOC_ERR_NOMEM, nalloc_alloc_aligned(a, 1, 1));
    nalloc_arena_destroy(a);
}

/* Break one field of a valid configuration; `which` indexes the case names below. */
static void spoil(nalloc_arena_config *c, unsigned which)
{
    switch (which) {
    case 0: c->capacity = 0; break;
    case 1: c->capacity = SIZE_MAX; break;
    case 2: c->kind = (nalloc_kind)7; break;
    case 3: c->memory = (nalloc_memory)9; break;
    case 4: c->default_align = 0; break;
    case 5: c->default_align = 48; break;
    case 6: c->large_align = 3; break;
    case 7: c->flags |= 1u << 30; break;
    case 8: c->guard_size = SIZE_MAX; break;
    case 9: c->guard_size = SIZE_MAX / 2 + 1; break; /* page-aligned; 2 * guard wraps to 0 */
    }
}

static void test_bad_configurations_are_refused(void **state)
{
    (void)state;
    nalloc_arena *a = (nalloc_arena *)0x1;
    nalloc_arena_config c;
    assert_int_equal(nalloc_arena_create(NULL, &a), NALLOC_ERR_INVALID);
    assert_null(a);
    nalloc_arena_config_init(&c, NALLOC_KIND_SCRATCH, NALLOC_MEMORY_HOST, 4096);
    assert_int_equal(nalloc_arena_create(&c, NULL), NALLOC_ERR_INVALID);

    static const char *const cases[] = {"zero capacity",    "SIZE_MAX capacity", "bad kind",
                                        "bad memory",       "default_align 0",   "default_align 48",
                                        "large_align 3",    "unknown flag",      "guard SIZE_MAX",
                                        "guard 2^63"};
    for (unsigned i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        nalloc_arena_config_init(&c, NALLOC_KIND_SCRATCH, NALLOC_MEMORY_HOST, 4096);
        spoil(&c, i);
        a = (nalloc_arena *)0x1;
        nalloc_status st = nalloc_arena_create(&c, &a);
        if (st == NALLOC_OK)
            fail_msg("config with %s was accepted", cases[i]);
        assert_null(a);
        assert_true(st == NALLOC_ERR_INVALID || st == NALLOC_ERR_OS);
    }
}

static void test_a_destroyed_arena_is_refused_with_state(void **state)
{
    (void)state;
    nalloc_arena *a = make_arena(NALLOC_KIND_SCRATCH, MiB);
    void *p = nalloc_alloc(a, 64);
    nalloc_mark m = nalloc_mark_get(a);
    assert_int_equal(nalloc_arena_destroy(a), NALLOC_OK);
    nalloc_stats s;
    assert_null_with(NALLOC_ERR_STATE, nalloc_alloc(a, 64));
    assert_null_with(NALLOC_ERR_STATE, nalloc_alloc_aligned(a, 64, 64));
    assert_null_with(NALLOC_ERR_STATE, nalloc_alloc_zeroed(a, 1, 64, 0));
    assert_null_with(NALLOC_ERR_STATE, nalloc_realloc(a, p, 64, 128, 0));
    assert_int_equal(nalloc_free_last(a, p, 64), NALLOC_ERR_STATE);
    assert_int_equal(nalloc_resize_last(a, p, 64, 128), NALLOC_ERR_STATE);
    assert_int_equal(nalloc_rollback(a, m), NALLOC_ERR_STATE);
    assert_int_equal(nalloc_wipe(a), NALLOC_ERR_STATE);
    assert_int_equal(nalloc_arena_stats(a, &s), NALLOC_ERR_STATE);
    nalloc_last_error_clear();
    assert_int_equal(nalloc_reset(a), NALLOC_ERR_STATE);
    assert_int_equal(nalloc_last_error(), NALLOC_ERR_STATE);
    nalloc_last_error_clear();
    nalloc_mark dead = nalloc_mark_get(a);
    assert_int_equal(dead.arena_uid, 0);
    assert_int_equal(nalloc_last_error(), NALLOC_ERR_STATE);
    assert_int_equal(nalloc_arena_destroy(a), NALLOC_ERR_STATE); /* double destroy */
}

static void test_stats_needs_somewhere_to_write(void **state)
{
    assert_int_equal(nalloc_arena_stats(*state, NULL), NALLOC_ERR_INVALID);
}

static void test_every_status_has_a_message(void **state)
{
    (void)state;
    for (int st = NALLOC_OK; st <= NALLOC_ERR_STATE; st++) {
        const char *msg = nalloc_strerror((nalloc_status)st);
        assert_non_null(msg);
        assert_true(strlen(msg) > 3);
        assert_string_not_equal(msg, nalloc_strerror((nalloc_status)1000));
    }
    assert_non_null(nalloc_strerror((nalloc_status)-1));
}

static void *fail_on_another_thread(void *arena)
{
    if (nalloc_alloc(arena, SIZE_MAX) != NULL)
        return (void *)(intptr_t)-1;
    return (void *)(intptr_t)nalloc_last_error();
}

static void test_last_error_belongs_to_the_thread(void **state)
{
    nalloc_arena *a = *state;
    assert_null_with(NALLOC_ERR_INVALID, nalloc_alloc(a, 0));
    pthread_t t;
    void *theirs;
    assert_int_equal(pthread_create(&t, NULL, fail_on_another_thread, a), 0);
    assert_int_equal(pthread_join(t, &theirs), 0);
    assert_int_equal((intptr_t)theirs, NALLOC_ERR_NOMEM);
    assert_int_equal(nalloc_last_error(), NALLOC_ERR_INVALID); /* ours, untouched */
    assert_non_null(nalloc_alloc(a, 8));
    assert_int_equal(nalloc_last_error(), NALLOC_ERR_INVALID); /* success leaves it alone */
}

/* ---------------------------------------------------------------------------------------------
 * The error model
 * ------------------------------------------------------------------------------------------- */

/* The message must begin with "<call>: ". */
#define assert_message_names(call)                                                               \
    do {                                                                                         \
        const char *m_ = nalloc_last_error_message();                                            \
        if (strncmp(m_, call ": ", strlen(call ": ")) != 0)                                      \
            fail_msg("message \"%s\" does not name %s", m_, call);                               \
    } while (0)

static void test_messages_name_the_call_and_the_cause(void **state)
{
    (void)state;
    nalloc_arena_config c;
    nalloc_arena_config_init(&c, NALLOC_KIND_SCRATCH, NALLOC_MEMORY_HOST, MiB);
    c.name = "witness";
    nalloc_arena *a = make_arena_with(&c);
    assert_null(nalloc_alloc(a, MiB + 1));
    assert_string_equal(nalloc_last_error_message(),
                        "nalloc_alloc: 1048577 bytes requested, 1048576 free in arena \"witness\"");
    assert_null(nalloc_alloc_aligned(a, 64, 48));
    assert_string_equal(nalloc_last_error_message(),
                        "nalloc_alloc_aligned: alignment 48 is not a power of two "
                        "(arena \"witness\")");
    void *first = nalloc_alloc(a, 64);
    assert_non_null(nalloc_alloc(a, 64));
    assert_int_equal(nalloc_free_last(a, first, 64), NALLOC_ERR_STATE);
    assert_string_equal(nalloc_last_error_message(),
                        "nalloc_free_last: not the most recent block (or not its size) "
                        "(arena \"witness\")");
    nalloc_mark m = nalloc_mark_get(a);
    assert_int_equal(nalloc_reset(a), NALLOC_OK);
    assert_int_equal(nalloc_rollback(a, m), NALLOC_ERR_STATE);
    assert_string_equal(nalloc_last_error_message(),
                        "nalloc_rollback: stale mark: taken before a reset or wipe "
                        "(arena \"witness\")");
    assert_int_equal(nalloc_arena_destroy(a), NALLOC_OK);
    assert_int_equal(nalloc_arena_destroy(a), NALLOC_ERR_STATE);
    assert_string_equal(nalloc_last_error_message(),
                        "nalloc_arena_destroy: arena already destroyed");

    /* Causes found deep inside creation reach the message of the call that was made. */
    nalloc_arena_config_init(&c, NALLOC_KIND_SCRATCH, NALLOC_MEMORY_HOST, 0);
    assert_int_equal(nalloc_arena_create(&c, &a), NALLOC_ERR_INVALID);
    assert_string_equal(nalloc_last_error_message(),
                        "nalloc_arena_create: arena \"scratch\": capacity is 0");
    nalloc_ctx_config cc;
    nalloc_ctx_config_init(&cc, NALLOC_MEMORY_HOST, MiB, MiB, MiB);
    cc.arenas[NALLOC_KIND_WITNESS].large_align = 3;
    nalloc_ctx *ctx;
    assert_int_equal(nalloc_ctx_create(&cc, &ctx), NALLOC_ERR_INVALID);
    assert_string_equal(nalloc_last_error_message(),
                        "nalloc_ctx_create: the witness arena \"witness\": large_align 3 is not a "
                        "power of two");
}

/* Each public call, given a bad argument, fails with a message that names it (not a helper). */
static void test_every_failing_call_names_itself(void **state)
{
    (void)state;
    nalloc_arena *a = make_arena(NALLOC_KIND_SCRATCH, 64 * KiB);
    nalloc_arena *out = NULL;
    nalloc_stats s;
    nalloc_profile profile;
    nalloc_ctx_config cc;
    nalloc_mark zero = {0, 0, 0, 0};

    nalloc_arena_config_init(NULL, NALLOC_KIND_POLY, NALLOC_MEMORY_HOST, 1);
    assert_message_names("nalloc_arena_config_init");
    assert_int_equal(nalloc_arena_create(NULL, &out), NALLOC_ERR_INVALID);
    assert_message_names("nalloc_arena_create");
    assert_int_equal(nalloc_arena_destroy(NULL), NALLOC_ERR_INVALID);
    assert_message_names("nalloc_arena_destroy");
    assert_null(nalloc_alloc(a, 0));
    assert_message_names("nalloc_alloc");
    assert_null(nalloc_alloc_aligned(a, 1, 3));
    assert_message_names("nalloc_alloc_aligned");
    assert_null(nalloc_alloc_zeroed(a, SIZE_MAX, 2, 0));
    assert_message_names("nalloc_alloc_zeroed");
    assert_int_equal(nalloc_free_last(a, NULL, 1), NALLOC_ERR_INVALID);
    assert_message_names("nalloc_free_last");
    assert_int_equal(nalloc_resize_last(a, NULL, 1, 2), NALLOC_ERR_INVALID);
    assert_message_names("nalloc_resize_last");
    assert_null(nalloc_realloc(a, NULL, 0, 0, 0));
    assert_message_names("nalloc_realloc");
    nalloc_mark m = nalloc_mark_get(NULL);
    assert_int_equal(m.arena_uid, 0);
    assert_message_names("nalloc_mark_get");
    assert_int_equal(nalloc_rollback(a, zero), NALLOC_ERR_STATE);
    assert_message_names("nalloc_rollback");
    assert_int_equal(nalloc_reset(NULL), NALLOC_ERR_INVALID);
    assert_message_names("nalloc_reset");
    assert_int_equal(nalloc_wipe(NULL), NALLOC_ERR_INVALID);
    assert_message_names("nalloc_wipe");
    assert_int_equal(nalloc_arena_split(a, 0, 0, &out), NALLOC_ERR_INVALID);
    assert_message_names("nalloc_arena_split");
    assert_int_equal(nalloc_arena_split(a, 1000, 0, &out), NALLOC_ERR_NOMEM);
    assert_message_names("nalloc_arena_split");
    assert_int_equal(nalloc_arena_stats(a, NULL), NALLOC_ERR_INVALID);
    assert_message_names("nalloc_arena_stats");
    assert_int_equal(nalloc_arena_print_stats(NULL, NULL), NALLOC_ERR_INVALID);
    assert_message_names("nalloc_arena_print_stats");
    nalloc_ctx_config_init(NULL, NALLOC_MEMORY_HOST, 1, 1, 1);
    assert_message_names("nalloc_ctx_config_init");
    assert_int_equal(nalloc_ctx_config_omit(NULL, NALLOC_KIND_POLY), NALLOC_ERR_INVALID);
    assert_message_names("nalloc_ctx_config_omit");
    assert_int_equal(nalloc_ctx_create(NULL, NULL), NALLOC_ERR_INVALID);
    assert_message_names("nalloc_ctx_create");
    assert_null(nalloc_ctx_arena(NULL, NALLOC_KIND_POLY));
    assert_message_names("nalloc_ctx_arena");
    assert_int_equal(nalloc_ctx_destroy(NULL), NALLOC_ERR_INVALID);
    assert_message_names("nalloc_ctx_destroy");
    nalloc_ctx_config_init_dry_run(NULL, NALLOC_MEMORY_HOST, 0);
    assert_message_names("nalloc_ctx_config_init_dry_run");
    assert_int_equal(nalloc_ctx_profile(NULL, &profile), NALLOC_ERR_INVALID);
    assert_message_names("nalloc_ctx_profile");
    assert_int_equal(nalloc_ctx_config_from_profile(&cc, NALLOC_MEMORY_HOST, NULL, 0),
                     NALLOC_ERR_INVALID);
    assert_message_names("nalloc_ctx_config_from_profile");
    assert_int_equal(nalloc_profile_lane_capacity(NULL, NALLOC_KIND_POLY, 0), 0);
    assert_message_names("nalloc_profile_lane_capacity");
    assert_int_equal(nalloc_arena_stats(a, &s), NALLOC_OK);
    assert_int_equal(nalloc_arena_destroy(a), NALLOC_OK);
}

/* The status and the message of the last failure, to compare after calls that succeed. */
typedef struct last_failure {
    nalloc_status status;
    char message[320];
} last_failure;

static last_failure last_failure_now(void)
{
    last_failure f;
    f.status = nalloc_last_error();
    snprintf(f.message, sizeof f.message, "%s", nalloc_last_error_message());
    return f;
}

static void assert_same_failure(const last_failure *before)
{
    assert_int_equal(nalloc_last_error(), before->status);
    assert_string_equal(nalloc_last_error_message(), before->message);
}

static void test_a_successful_call_leaves_the_last_error_and_message_alone(void **state)
{
    (void)state;
    assert_null(nalloc_alloc(NULL, 1));
    last_failure before = last_failure_now();
    assert_int_equal(before.status, NALLOC_ERR_INVALID);
    assert_string_equal(before.message, "nalloc_alloc: arena is NULL");

    /* Every kind of call, succeeding, including those whose internals fail and recover: a lane
     * destroyed with its parent, a context's omitted kind, a profile's absent lanes. */
    nalloc_arena_config c;
    nalloc_arena_config_init(&c, NALLOC_KIND_WITNESS, NALLOC_MEMORY_HOST, MiB);
    nalloc_arena *a = make_arena_with(&c);
    char *p = nalloc_alloc(a, 100);
    assert_non_null(p);
    assert_non_null(nalloc_alloc_aligned(a, 100, 4096));
    assert_non_null(nalloc_alloc_zeroed(a, 10, 10, 0));
    char *q = nalloc_realloc(a, NULL, 0, 64, 0);
    assert_non_null(q);
    assert_int_equal(nalloc_resize_last(a, q, 64, 128), NALLOC_OK);
    assert_int_equal(nalloc_free_last(a, q, 128), NALLOC_OK);
    nalloc_mark m = nalloc_mark_get(a);
    assert_non_null(nalloc_alloc(a, 1000));
    assert_int_equal(nalloc_rollback(a, m), NALLOC_OK);
    nalloc_arena *lanes[2];
    assert_int_equal(nalloc_arena_split(a, 2, 64 * KiB, lanes), NALLOC_OK);
    assert_non_null(nalloc_alloc(lanes[1], 64));
    assert_int_equal(nalloc_arena_destroy(lanes[0]), NALLOC_OK);
    nalloc_stats s;
    assert_int_equal(nalloc_arena_stats(a, &s), NALLOC_OK);
    char report[1024];
    FILE *f = fmemopen(report, sizeof report, "w");
    assert_non_null(f);
    assert_int_equal(nalloc_arena_print_stats(a, f), NALLOC_OK);
    fclose(f);
    assert_int_equal(nalloc_arena_destroy(a), NALLOC_OK); /* and its live lane with it */
    nalloc_arena *b = make_arena(NALLOC_KIND_SCRATCH, MiB);
    assert_int_equal(nalloc_wipe(b), NALLOC_OK);
    assert_int_equal(nalloc_arena_destroy(b), NALLOC_OK);

    nalloc_ctx_config cc;
    nalloc_ctx_config_init_dry_run(&cc, NALLOC_MEMORY_HOST, 16 * MiB);
    assert_int_equal(nalloc_ctx_config_omit(&cc, NALLOC_KIND_SCRATCH), NALLOC_OK);
    nalloc_ctx *ctx;
    assert_int_equal(nalloc_ctx_create(&cc, &ctx), NALLOC_OK);
    assert_non_null(nalloc_alloc(nalloc_ctx_arena(ctx, NALLOC_KIND_POLY), 5000));
    nalloc_profile profile;
    assert_int_equal(nalloc_ctx_profile(ctx, &profile), NALLOC_OK);
    assert_int_equal(nalloc_ctx_destroy(ctx), NALLOC_OK);
    assert_int_equal(nalloc_ctx_config_from_profile(&cc, NALLOC_MEMORY_HOST, &profile, 0.1),
                     NALLOC_OK);
    assert_int_equal(nalloc_profile_lane_capacity(&profile, NALLOC_KIND_POLY, 0.1), 0);
    assert_int_equal(nalloc_ctx_create(&cc, &ctx), NALLOC_OK);
    assert_int_equal(nalloc_ctx_destroy(ctx), NALLOC_OK);

    assert_same_failure(&before);
}

static void test_clear_resets_the_status_and_the_message(void **state)
{
    (void)state;
    assert_int_equal(nalloc_arena_destroy(NULL), NALLOC_ERR_INVALID);
    assert_string_not_equal(nalloc_last_error_message(), "");
    nalloc_last_error_clear();
    assert_int_equal(nalloc_last_error(), NALLOC_OK);
    assert_string_equal(nalloc_last_error_message(), "");
    /* So "did anything fail since?" has an answer after a batch of calls. */
    nalloc_arena *a = make_arena(NALLOC_KIND_SCRATCH, MiB);
    for (int i = 0; i < 10; i++)
        assert_non_null(nalloc_alloc(a, 1000));
    assert_int_equal(nalloc_last_error(), NALLOC_OK);
    assert_int_equal(nalloc_arena_destroy(a), NALLOC_OK);
}

typedef struct other_thread {
    nalloc_arena *arena;
    char message[320]; /* what the other thread's message said, copied before it exits */
} other_thread;

static void *fail_with_a_message(void *arg)
{
    other_thread *o = arg;
    if (nalloc_alloc(o->arena, 2 * MiB) == NULL)
        snprintf(o->message, sizeof o->message, "%s", nalloc_last_error_message());
    return NULL;
}

static void test_the_message_belongs_to_the_thread(void **state)
{
    other_thread o = {*state, ""};
    assert_null(nalloc_alloc(o.arena, 0));
    last_failure mine = last_failure_now();
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, fail_with_a_message, &o), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_non_null(strstr(o.message, "nalloc_alloc: 2097152 bytes requested"));
    assert_same_failure(&mine);
    assert_non_null(strstr(mine.message, "size is 0"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_null_arena_is_invalid_everywhere),
        cmocka_unit_test_setup_teardown(test_zero_size_is_invalid_and_consumes_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_huge_sizes_are_refused_and_the_arena_still_serves, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_bad_alignments_are_invalid, setup, teardown),
        cmocka_unit_test_setup_teardown(test_huge_alignments_fail_cleanly_when_they_cannot_fit, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_overflowing_counts_are_invalid, setup, teardown),
        cmocka_unit_test(test_exhaustion_then_recovery),
        cmocka_unit_test(test_bad_configurations_are_refused),
        cmocka_unit_test(test_a_destroyed_arena_is_refused_with_state),
        cmocka_unit_test_setup_teardown(test_stats_needs_somewhere_to_write, setup, teardown),
        cmocka_unit_test(test_every_status_has_a_message),
        cmocka_unit_test_setup_teardown(test_last_error_belongs_to_the_thread, setup, teardown),
        cmocka_unit_test(test_messages_name_the_call_and_the_cause),
        cmocka_unit_test(test_every_failing_call_names_itself),
        cmocka_unit_test(test_a_successful_call_leaves_the_last_error_and_message_alone),
        cmocka_unit_test(test_clear_resets_the_status_and_the_message),
        cmocka_unit_test_setup_teardown(test_the_message_belongs_to_the_thread, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
