/* tests/test_sizing.c - sizing a context from a dry run.
 *
 * The round trip a prover makes: a dry-run context reserves far more than it needs (address space
 * only), the workload runs on it, its profile says what each arena and each lane needed, and a
 * context sized from the profile runs the same workload without a single failed request. The
 * profile must be exact (the workload fails in an arena one byte smaller), must not count a dry
 * run's oversized lanes as need, and must see peaks that free_last hid before the profile was
 * taken.
 */
#include "child.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>


#define LANES 4

/* A small prover: polynomial columns that live the whole proof, per-phase scratch, a witness
 * written by LANES worker lanes (when `lanes`), a large temporary given back with free_last. Two
 * proofs. True when every request succeeded. */
static bool prove(nalloc_ctx *ctx, bool lanes, size_t lane_capacity)
{
    nalloc_arena *poly = nalloc_ctx_arena(ctx, NALLOC_KIND_POLY);
    nalloc_arena *witness = nalloc_ctx_arena(ctx, NALLOC_KIND_WITNESS);
    nalloc_arena *scratch = nalloc_ctx_arena(ctx, NALLOC_KIND_SCRATCH);
    bool ok = poly != NULL && witness != NULL && scratch != NULL;
    for (int proof = 0; ok && proof < 2; proof++) {
        ok = ok && nalloc_alloc(witness, 50 * KiB) != NULL;
        if (lanes) {
            nalloc_arena *lane[LANES];
            ok = ok && nalloc_arena_split(witness, LANES, lane_capacity, lane) == NALLOC_OK;
            for (int i = 0; ok && i < LANES; i++) {
                unsigned char *w = nalloc_alloc(lane[i], (size_t)(i + 1) * 100 * KiB);
                ok = w != NULL;
                if (ok)
                    w[0] = 1;
            }
            for (int i = 0; ok && i < LANES; i++)
                ok = nalloc_arena_destroy(lane[i]) == NALLOC_OK;
        }
        for (int phase = 0; ok && phase < 3; phase++) {
            size_t rows = (size_t)1 << (12 + phase);
            ok = nalloc_alloc(poly, rows * 8 * 3) != NULL;
            nalloc_mark m = nalloc_mark_get(scratch);
            for (int t = 0; ok && t < 5; t++)
                ok = nalloc_alloc_aligned(scratch, rows * (size_t)(t + 1), 256) != NULL;
            ok = ok && nalloc_rollback(scratch, m) == NALLOC_OK;
        }
        /* A peak the offset no longer shows when the profile is taken. */
        void *big = ok ? nalloc_alloc(poly, 2 * MiB) : NULL;
        ok = big != NULL && nalloc_free_last(poly, big, 2 * MiB) == NALLOC_OK;
        ok = ok && nalloc_reset(poly) == NALLOC_OK;
        ok = ok && nalloc_wipe(witness) == NALLOC_OK;
    }
    return ok;
}

static bool no_failures(nalloc_ctx *ctx)
{
    for (int k = 0; k < NALLOC_KIND_COUNT; k++)
        if (stats_of(nalloc_ctx_arena(ctx, (nalloc_kind)k)).failures != 0)
            return false;
    return true;
}

/* Dry-run the workload and return its profile. */
static nalloc_profile dry_run(bool lanes)
{
    nalloc_ctx_config config;
    /* The default reservation (64 GiB a kind) is more address space than Valgrind manages. */
    nalloc_ctx_config_init_dry_run(&config, NALLOC_MEMORY_HOST, under_valgrind() ? GiB : 0);
    nalloc_ctx *dry;
    assert_int_equal(nalloc_ctx_create(&config, &dry), NALLOC_OK);
    assert_true(prove(dry, lanes, 0));
    nalloc_profile profile;
    assert_int_equal(nalloc_ctx_profile(dry, &profile), NALLOC_OK);
    assert_int_equal(nalloc_ctx_destroy(dry), NALLOC_OK);
    return profile;
}

static void test_dry_run_reserves_address_space_without_committing_it(void **state)
{
    (void)state;
    if (under_valgrind())
        skip(); /* reserves 3 x 64 GiB */
    nalloc_ctx_config config;
    nalloc_ctx_config_init_dry_run(&config, NALLOC_MEMORY_DEVICE, 0);
    for (int k = 0; k < NALLOC_KIND_COUNT; k++) {
        const nalloc_arena_config *c = &config.arenas[k];
        assert_int_equal(c->kind, k);
        assert_int_equal(c->memory, NALLOC_MEMORY_HOST); /* address space, not device memory */
        assert_int_equal(c->capacity, 64 * GiB);
        assert_true(c->flags & NALLOC_FLAG_NORESERVE);
        assert_false(c->flags & NALLOC_FLAG_POPULATE);
        assert_int_equal(c->default_align, 256); /* but the device's layout */
    }
    assert_true(config.arenas[NALLOC_KIND_WITNESS].flags & NALLOC_FLAG_NODUMP);

    /* Three 64 GiB arenas on a machine with less memory than that: only MAP_NORESERVE makes them
     * possible under the kernel's default overcommit heuristic. */
    nalloc_ctx_config_init_dry_run(&config, NALLOC_MEMORY_HOST, 0);
    nalloc_ctx *dry;
    assert_int_equal(nalloc_ctx_create(&config, &dry), NALLOC_OK);
    nalloc_arena *poly = nalloc_ctx_arena(dry, NALLOC_KIND_POLY);
    assert_true(stats_of(poly).reserved >= 64 * GiB);
    unsigned char *p = nalloc_alloc(poly, 1 * MiB);
    assert_non_null(p);
    p[0] = p[MiB - 1] = 1;
    assert_int_equal(nalloc_ctx_destroy(dry), NALLOC_OK);

    nalloc_ctx_config_init_dry_run(&config, NALLOC_MEMORY_HOST, 8 * MiB);
    assert_int_equal(config.arenas[NALLOC_KIND_SCRATCH].capacity, 8 * MiB);
}

static void test_sized_context_runs_the_workload_that_was_dry_run(void **state)
{
    (void)state;
    nalloc_profile profile = dry_run(false);
    assert_int_equal(profile.version, NALLOC_PROFILE_VERSION);
    assert_int_equal(profile.kinds, 7);
    for (int k = 0; k < NALLOC_KIND_COUNT; k++) {
        assert_true(profile.high_water[k] > 0);
        assert_true(profile.high_water[k] < 16 * MiB);
        assert_int_equal(profile.lanes[k], 0);
    }
    assert_true(profile.high_water[NALLOC_KIND_POLY] >= 2 * MiB); /* the free_last peak */

    for (int h = 0; h < 2; h++) {
        double headroom = h == 0 ? 0.0 : 0.25;
        nalloc_ctx_config config;
        assert_int_equal(nalloc_ctx_config_from_profile(&config, NALLOC_MEMORY_HOST, &profile,
                                                        headroom),
                         NALLOC_OK);
        for (int k = 0; k < NALLOC_KIND_COUNT; k++) {
            assert_true(config.arenas[k].capacity >=
                        (size_t)((double)profile.high_water[k] * (1 + headroom)));
            assert_int_equal(config.arenas[k].capacity % page_size(), 0);
        }
        nalloc_ctx *ctx;
        assert_int_equal(nalloc_ctx_create(&config, &ctx), NALLOC_OK);
        assert_true(prove(ctx, false, 0));
        assert_true(no_failures(ctx));
        assert_int_equal(nalloc_ctx_destroy(ctx), NALLOC_OK);
    }
}

static void test_profile_is_exactly_what_the_workload_needs(void **state)
{
    (void)state;
    nalloc_profile profile = dry_run(false);
    for (int shrink = 0; shrink < NALLOC_KIND_COUNT + 1; shrink++) {
        nalloc_ctx_config config;
        nalloc_ctx_config_init(&config, NALLOC_MEMORY_HOST, profile.high_water[0],
                               profile.high_water[1], profile.high_water[2]);
        if (shrink < NALLOC_KIND_COUNT)
            config.arenas[shrink].capacity--; /* one byte short in one arena */
        nalloc_ctx *ctx;
        assert_int_equal(nalloc_ctx_create(&config, &ctx), NALLOC_OK);
        bool ok = prove(ctx, false, 0);
        if (shrink < NALLOC_KIND_COUNT)
            assert_false(ok && no_failures(ctx));
        else
            assert_true(ok && no_failures(ctx));
        assert_int_equal(nalloc_ctx_destroy(ctx), NALLOC_OK);
    }
}

static void test_lanes_are_sized_by_what_they_used_not_what_they_got(void **state)
{
    (void)state;
    nalloc_profile profile = dry_run(true);
    /* In the dry run each lane got about 16 GiB; the profile records the need. */
    assert_int_equal(profile.lanes[NALLOC_KIND_WITNESS], LANES);
    assert_int_equal(profile.lane_high_water[NALLOC_KIND_WITNESS], LANES * 100 * KiB);
    assert_true(profile.high_water[NALLOC_KIND_WITNESS] < 1 * MiB);
    assert_true(profile.high_water[NALLOC_KIND_WITNESS] >= 50 * KiB);
    assert_int_equal(profile.lanes[NALLOC_KIND_POLY], 0);
    size_t lane_capacity = nalloc_profile_lane_capacity(&profile, NALLOC_KIND_WITNESS, 0);
    assert_int_equal(lane_capacity, LANES * 100 * KiB);
    assert_int_equal(nalloc_profile_lane_capacity(&profile, NALLOC_KIND_POLY, 0), 0);

    nalloc_ctx_config config;
    assert_int_equal(nalloc_ctx_config_from_profile(&config, NALLOC_MEMORY_HOST, &profile, 0),
                     NALLOC_OK);
    assert_true(config.arenas[NALLOC_KIND_WITNESS].capacity < 3 * MiB);
    /* Equal shares and the profiled lane capacity both fit. */
    for (int explicit_capacity = 0; explicit_capacity < 2; explicit_capacity++) {
        nalloc_ctx *ctx;
        assert_int_equal(nalloc_ctx_create(&config, &ctx), NALLOC_OK);
        assert_true(prove(ctx, true, explicit_capacity ? lane_capacity : 0));
        assert_true(no_failures(ctx));
        assert_int_equal(nalloc_ctx_destroy(ctx), NALLOC_OK);
    }
}

static void test_absent_kinds_stay_absent_and_unused_ones_get_a_page(void **state)
{
    (void)state;
    nalloc_ctx_config config;
    nalloc_ctx_config_init_dry_run(&config, NALLOC_MEMORY_HOST, 16 * MiB);
    assert_int_equal(nalloc_ctx_config_omit(&config, NALLOC_KIND_SCRATCH), NALLOC_OK);
    nalloc_ctx *dry;
    assert_int_equal(nalloc_ctx_create(&config, &dry), NALLOC_OK);
    assert_non_null(nalloc_alloc(nalloc_ctx_arena(dry, NALLOC_KIND_POLY), 10000));
    nalloc_profile profile;
    nalloc_status last = nalloc_last_error();
    assert_int_equal(nalloc_ctx_profile(dry, &profile), NALLOC_OK);
    assert_int_equal(nalloc_last_error(), last); /* the absent kind is no error */
    assert_int_equal(profile.kinds, (1u << NALLOC_KIND_POLY) | (1u << NALLOC_KIND_WITNESS));
    assert_int_equal(profile.high_water[NALLOC_KIND_POLY], 10000);
    assert_int_equal(profile.high_water[NALLOC_KIND_WITNESS], 0);
    assert_int_equal(nalloc_ctx_destroy(dry), NALLOC_OK);
    assert_int_equal(nalloc_ctx_profile(dry, &profile), NALLOC_ERR_STATE);

    assert_int_equal(nalloc_ctx_config_from_profile(&config, NALLOC_MEMORY_HOST, &profile, 0.5),
                     NALLOC_OK);
    size_t page = page_size();
    assert_int_equal(config.arenas[NALLOC_KIND_POLY].capacity, (15000 + page - 1) / page * page);
    assert_int_equal(config.arenas[NALLOC_KIND_WITNESS].capacity, page);
    assert_int_equal(config.arenas[NALLOC_KIND_SCRATCH].capacity, 0);
    assert_int_equal(config.omit, 1u << NALLOC_KIND_SCRATCH); /* said explicitly, not by the 0 */
    assert_true(config.arenas[NALLOC_KIND_WITNESS].flags & NALLOC_FLAG_LOCK); /* kind defaults */
    assert_false(config.arenas[NALLOC_KIND_POLY].flags & NALLOC_FLAG_NORESERVE);
    nalloc_ctx *ctx;
    assert_int_equal(nalloc_ctx_create(&config, &ctx), NALLOC_OK);
    assert_null(nalloc_ctx_arena(ctx, NALLOC_KIND_SCRATCH));
    assert_int_equal(nalloc_ctx_destroy(ctx), NALLOC_OK);
}

static void test_sizing_refuses_bad_input_and_leaves_the_config_alone(void **state)
{
    (void)state;
    nalloc_profile profile = dry_run(false);
    nalloc_ctx_config config, before;
    nalloc_ctx_config_init(&config, NALLOC_MEMORY_HOST, 1, 2, 3);
    before = config;
    const double bad[] = {-0.1, NAN, INFINITY, 1e300};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(nalloc_ctx_config_from_profile(&config, NALLOC_MEMORY_HOST, &profile,
                                                        bad[i]),
                         NALLOC_ERR_INVALID);
    assert_int_equal(nalloc_ctx_config_from_profile(NULL, NALLOC_MEMORY_HOST, &profile, 0),
                     NALLOC_ERR_INVALID);
    assert_int_equal(nalloc_ctx_config_from_profile(&config, NALLOC_MEMORY_HOST, NULL, 0),
                     NALLOC_ERR_INVALID);
    assert_int_equal(nalloc_ctx_config_from_profile(&config, (nalloc_memory)7, &profile, 0),
                     NALLOC_ERR_INVALID);
    nalloc_profile other = profile;
    other.version = NALLOC_PROFILE_VERSION + 1;
    assert_int_equal(nalloc_ctx_config_from_profile(&config, NALLOC_MEMORY_HOST, &other, 0),
                     NALLOC_ERR_INVALID);
    other = profile;
    other.high_water[0] = SIZE_MAX;
    assert_int_equal(nalloc_ctx_config_from_profile(&config, NALLOC_MEMORY_HOST, &other, 0),
                     NALLOC_ERR_INVALID);
    assert_memory_equal(&config, &before, sizeof config);
    assert_int_equal(nalloc_profile_lane_capacity(NULL, NALLOC_KIND_WITNESS, 0), 0);
    assert_int_equal(nalloc_profile_lane_capacity(&profile, (nalloc_kind)9, 0), 0);
    assert_int_equal(nalloc_ctx_profile(NULL, &profile), NALLOC_ERR_INVALID);
    nalloc_ctx_config_init_dry_run(NULL, NALLOC_MEMORY_HOST, 0); /* no crash */
}

/* A profile keeps its layout across releases (nalloc.h, nalloc_profile): the library writes no
 * more than the caller's struct and reads no more than the profile's struct_size. */
static void test_profiles_of_other_sizes(void **state)
{
    (void)state;
    nalloc_ctx_config config;
    nalloc_ctx_config_init_dry_run(&config, NALLOC_MEMORY_HOST, 16 * MiB);
    nalloc_ctx *dry;
    assert_int_equal(nalloc_ctx_create(&config, &dry), NALLOC_OK);
    assert_non_null(nalloc_alloc(nalloc_ctx_arena(dry, NALLOC_KIND_POLY), 10000));

    /* A caller with a larger struct (a newer header): the rest untouched. */
    struct {
        nalloc_profile profile;
        unsigned char later_fields[32];
    } newer;
    memset(&newer, 0xee, sizeof newer);
    assert_int_equal(nalloc_ctx_profile_sized(dry, &newer.profile, sizeof newer), NALLOC_OK);
    assert_int_equal(newer.profile.struct_size, sizeof(nalloc_profile));
    assert_int_equal(newer.profile.high_water[NALLOC_KIND_POLY], 10000);
    for (size_t i = 0; i < sizeof newer.later_fields; i++)
        assert_int_equal(newer.later_fields[i], 0xee);
    /* Smaller than the 1.0 struct: refused, nothing written. */
    memset(&newer, 0xee, sizeof newer);
    assert_int_equal(nalloc_ctx_profile_sized(dry, &newer.profile, 8), NALLOC_ERR_INVALID);
    assert_int_equal(newer.profile.version, 0xeeeeeeee);
    nalloc_profile profile;
    assert_int_equal(nalloc_ctx_profile(dry, &profile), NALLOC_OK);
    assert_int_equal(nalloc_ctx_destroy(dry), NALLOC_OK);

    /* A stored profile that says it is larger (written by a newer library, same version) is read
     * for the fields this library knows; one that says it is smaller than 1.0 is refused. */
    nalloc_ctx_config sized;
    profile.struct_size = (uint32_t)sizeof profile + 32;
    assert_int_equal(nalloc_ctx_config_from_profile(&sized, NALLOC_MEMORY_HOST, &profile, 0),
                     NALLOC_OK);
    assert_true(sized.arenas[NALLOC_KIND_POLY].capacity >= 10000);
    profile.struct_size = 16;
    assert_int_equal(nalloc_ctx_config_from_profile(&sized, NALLOC_MEMORY_HOST, &profile, 0),
                     NALLOC_ERR_INVALID);
    assert_non_null(strstr(nalloc_last_error_message(), "struct_size"));
    nalloc_last_error_clear();
    assert_int_equal(nalloc_profile_lane_capacity(&profile, NALLOC_KIND_POLY, 0), 0);
    assert_int_equal(nalloc_last_error(), NALLOC_ERR_INVALID); /* 0 for a bad profile, said so */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dry_run_reserves_address_space_without_committing_it),
        cmocka_unit_test(test_sized_context_runs_the_workload_that_was_dry_run),
        cmocka_unit_test(test_profile_is_exactly_what_the_workload_needs),
        cmocka_unit_test(test_lanes_are_sized_by_what_they_used_not_what_they_got),
        cmocka_unit_test(test_absent_kinds_stay_absent_and_unused_ones_get_a_page),
        cmocka_unit_test(test_sizing_refuses_bad_input_and_leaves_the_config_alone),
        cmocka_unit_test(test_profiles_of_other_sizes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
