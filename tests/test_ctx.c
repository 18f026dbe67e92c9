/* tests/test_ctx.c - the three-arena partition: polynomial, witness and scratch arenas are each
 * their own mapping, fenced by guard pages, with their kind's defaults; the context owns them. */
#include "testutil.h"

#include <stdio.h>

static int setup(void **state)
{
    nalloc_ctx_config config;
    nalloc_ctx_config_init(&config, NALLOC_MEMORY_HOST, 8 * MiB, 2 * MiB, 4 * MiB);
    nalloc_ctx *ctx = NULL;
    assert_int_equal(nalloc_ctx_create(&config, &ctx), NALLOC_OK);
    *state = ctx;
    return 0;
}

static int teardown(void **state)
{
    return nalloc_ctx_destroy(*state) == NALLOC_OK ? 0 : -1;
}

/* The permissions of the mapping containing `addr`, from /proc/self/maps ("rw-p", "---p"). */
static bool protection_at(uintptr_t addr, char perms[5])
{
    FILE *f = fopen("/proc/self/maps", "r");
    assert_non_null(f);
    char line[512];
    bool found = false;
    while (fgets(line, sizeof line, f)) {
        unsigned long lo, hi;
        char p[5];
        if (sscanf(line, "%lx-%lx %4s", &lo, &hi, p) == 3 && addr >= lo && addr < hi) {
            memcpy(perms, p, 5);
            found = true;
            break;
        }
    }
    fclose(f);
    return found;
}

static void test_each_kind_gets_its_own_guarded_mapping(void **state)
{
    nalloc_ctx *ctx = *state;
    nalloc_stats s[NALLOC_KIND_COUNT];
    for (int k = 0; k < NALLOC_KIND_COUNT; k++) {
        nalloc_arena *a = nalloc_ctx_arena(ctx, (nalloc_kind)k);
        assert_non_null(a);
        s[k] = stats_of(a);
        assert_int_equal(s[k].kind, k);
        char perms[5];
        assert_true(protection_at(s[k].base, perms));
        assert_string_equal(perms, "rw-p");
        assert_true(protection_at(s[k].base - 1, perms)); /* the leading guard */
        assert_string_equal(perms, "---p");
        assert_true(protection_at(s[k].base + s[k].capacity, perms)); /* the trailing guard */
        assert_string_equal(perms, "---p");
    }
    for (int i = 0; i < NALLOC_KIND_COUNT; i++)
        for (int j = 0; j < NALLOC_KIND_COUNT; j++)
            if (i != j) /* the reservations (guards included) do not overlap */
                assert_true(s[i].base + s[i].capacity + s[i].guard_size <= s[j].base - s[j].guard_size ||
                            s[j].base + s[j].capacity + s[j].guard_size <= s[i].base - s[i].guard_size);
    assert_int_equal(s[NALLOC_KIND_POLY].capacity, 8 * MiB);
    assert_int_equal(s[NALLOC_KIND_WITNESS].capacity, 2 * MiB);
    assert_int_equal(s[NALLOC_KIND_SCRATCH].capacity, 4 * MiB);
    assert_true(s[NALLOC_KIND_POLY].requested & NALLOC_FLAG_HUGEPAGES);
    assert_true(s[NALLOC_KIND_WITNESS].wipe_on_destroy);
    assert_false(s[NALLOC_KIND_SCRATCH].wipe_on_destroy);
}

static void test_allocations_stay_in_their_arena(void **state)
{
    nalloc_ctx *ctx = *state;
    for (int k = 0; k < NALLOC_KIND_COUNT; k++) {
        nalloc_arena *a = nalloc_ctx_arena(ctx, (nalloc_kind)k);
        nalloc_stats s = stats_of(a);
        char *p;
        while ((p = nalloc_alloc(a, 100 * KiB)) != NULL) {
            assert_true((uintptr_t)p >= s.base);
            assert_true((uintptr_t)p + 100 * KiB <= s.base + s.capacity);
            memset(p, k + 1, 100 * KiB);
        }
        assert_int_equal(nalloc_last_error(), NALLOC_ERR_NOMEM);
    }
    /* Exhausting one arena left the others' contents alone. */
    for (int k = 0; k < NALLOC_KIND_COUNT; k++) {
        unsigned char *first = (unsigned char *)stats_of(nalloc_ctx_arena(ctx, (nalloc_kind)k)).base;
        assert_int_equal(first[0], k + 1);
    }
}

static void test_arenas_of_a_context_cannot_be_destroyed_alone(void **state)
{
    nalloc_ctx *ctx = *state;
    nalloc_arena *w = nalloc_ctx_arena(ctx, NALLOC_KIND_WITNESS);
    assert_int_equal(nalloc_arena_destroy(w), NALLOC_ERR_STATE);
    assert_non_null(nalloc_alloc(w, 10)); /* still alive */
}

static void test_bad_kinds_and_contexts_are_refused(void **state)
{
    nalloc_ctx *ctx = *state;
    assert_null_with(NALLOC_ERR_INVALID, nalloc_ctx_arena(ctx, NALLOC_KIND_COUNT));
    assert_null_with(NALLOC_ERR_INVALID, nalloc_ctx_arena(ctx, (nalloc_kind)-1));
    assert_null_with(NALLOC_ERR_INVALID, nalloc_ctx_arena(NULL, NALLOC_KIND_POLY));
    assert_int_equal(nalloc_ctx_destroy(NULL), NALLOC_ERR_INVALID);
    assert_int_equal(nalloc_ctx_create(NULL, &ctx), NALLOC_ERR_INVALID);
    nalloc_ctx_config config;
    nalloc_ctx_config_init(&config, NALLOC_MEMORY_HOST, MiB, MiB, MiB);
    assert_int_equal(nalloc_ctx_create(&config, NULL), NALLOC_ERR_INVALID);
    config.arenas[1].kind = NALLOC_KIND_POLY; /* arenas[] is indexed by kind */
    nalloc_ctx *other = (nalloc_ctx *)0x1;
    assert_int_equal(nalloc_ctx_create(&config, &other), NALLOC_ERR_INVALID);
    assert_null(other);
}

static void test_creation_is_all_or_nothing(void **state)
{
    (void)state;
    nalloc_ctx_config config;
    nalloc_ctx_config_init(&config, NALLOC_MEMORY_HOST, MiB, MiB, MiB);
    config.arenas[NALLOC_KIND_SCRATCH].default_align = 3; /* the last one fails */
    nalloc_ctx *ctx = (nalloc_ctx *)0x1;
    assert_int_equal(nalloc_ctx_create(&config, &ctx), NALLOC_ERR_INVALID);
    assert_null(ctx);
}

static void test_a_zero_capacity_is_refused_at_creation(void **state)
{
    (void)state;
    nalloc_ctx_config config;
    nalloc_ctx_config_init(&config, NALLOC_MEMORY_HOST, MiB, 0, MiB);
    nalloc_ctx *ctx = (nalloc_ctx *)&config; /* must be overwritten with NULL */
    assert_int_equal(nalloc_ctx_create(&config, &ctx), NALLOC_ERR_INVALID);
    assert_null(ctx);
    assert_non_null(strstr(nalloc_last_error_message(),
                           "nalloc_ctx_create: the witness arena has capacity 0"));
}

static void test_an_omitted_kind_has_no_arena(void **state)
{
    (void)state;
    nalloc_ctx_config config;
    nalloc_ctx_config_init(&config, NALLOC_MEMORY_HOST, MiB, 0, MiB);
    assert_int_equal(nalloc_ctx_config_omit(&config, NALLOC_KIND_WITNESS), NALLOC_OK);
    assert_int_equal(config.omit, 1u << NALLOC_KIND_WITNESS);
    nalloc_ctx *ctx;
    assert_int_equal(nalloc_ctx_create(&config, &ctx), NALLOC_OK);
    assert_null_with(NALLOC_ERR_INVALID, nalloc_ctx_arena(ctx, NALLOC_KIND_WITNESS));
    assert_non_null(strstr(nalloc_last_error_message(), "no witness arena"));
    assert_non_null(nalloc_ctx_arena(ctx, NALLOC_KIND_POLY));
    assert_int_equal(nalloc_ctx_destroy(ctx), NALLOC_OK);
    /* An omitted kind's config is ignored, however wrong; bad kinds and bits are refused. */
    config.arenas[NALLOC_KIND_WITNESS].default_align = 3;
    assert_int_equal(nalloc_ctx_create(&config, &ctx), NALLOC_OK);
    assert_int_equal(nalloc_ctx_destroy(ctx), NALLOC_OK);
    assert_int_equal(nalloc_ctx_config_omit(&config, (nalloc_kind)3), NALLOC_ERR_INVALID);
    assert_int_equal(nalloc_ctx_config_omit(NULL, NALLOC_KIND_POLY), NALLOC_ERR_INVALID);
    config.omit = 1u << 5;
    assert_int_equal(nalloc_ctx_create(&config, &ctx), NALLOC_ERR_INVALID);
}

static void test_a_destroyed_context_is_refused(void **state)
{
    (void)state;
    nalloc_ctx_config config;
    nalloc_ctx_config_init(&config, NALLOC_MEMORY_HOST, MiB, MiB, MiB);
    nalloc_ctx *ctx;
    assert_int_equal(nalloc_ctx_create(&config, &ctx), NALLOC_OK);
    nalloc_arena *poly = nalloc_ctx_arena(ctx, NALLOC_KIND_POLY);
    assert_int_equal(nalloc_ctx_destroy(ctx), NALLOC_OK);
    assert_int_equal(nalloc_ctx_destroy(ctx), NALLOC_ERR_STATE);
    assert_null_with(NALLOC_ERR_STATE, nalloc_ctx_arena(ctx, NALLOC_KIND_POLY));
    assert_null_with(NALLOC_ERR_STATE, nalloc_alloc(poly, 8)); /* its arenas went with it */
    /* A context is not an arena, and an arena is not a context. */
    assert_null_with(NALLOC_ERR_STATE, nalloc_alloc((nalloc_arena *)(void *)ctx, 8));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_each_kind_gets_its_own_guarded_mapping, setup, teardown),
        cmocka_unit_test_setup_teardown(test_allocations_stay_in_their_arena, setup, teardown),
        cmocka_unit_test_setup_teardown(test_arenas_of_a_context_cannot_be_destroyed_alone, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_bad_kinds_and_contexts_are_refused, setup, teardown),
        cmocka_unit_test(test_creation_is_all_or_nothing),
        cmocka_unit_test(test_a_zero_capacity_is_refused_at_creation),
        cmocka_unit_test(test_an_omitted_kind_has_no_arena),
        cmocka_unit_test(test_a_destroyed_context_is_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
