/* src/sizing.c - sizing a context from a dry run.
 *
 * A prover's memory needs are a function of the circuit, not of the input, so the way production
 * provers size their arenas (zkSync's shivini, OpenVM) is to run once and measure. Here the dry
 * run is an ordinary context whose arenas are host mappings far larger than needed, reserved with
 * MAP_NORESERVE: they cost address space, and commit only the pages the workload touches. They
 * use the alignment policy of the memory the real arenas will live in, so that every block lands
 * at the offset it will have for real, and the peak of the dry run is the peak of the real run.
 * (The base of a host mapping is aligned to its size's largest power of two, up to 1 GiB, so
 * padding, and with it the peak, is the same in both whenever no block asks for an alignment
 * larger than the sized arena's base alignment.)
 *
 * The profile is plain data, so a prover can store it next to its proving key and skip the dry
 * run on later starts. Lanes need their own entry: a dry run splits arenas with room to spare, so
 * a parent's high-water mark counts its lanes at the size they were given, not the size they
 * used. The parent therefore reports its need without its lane blocks (lane.c), and the lanes'
 * largest peak separately; the sized capacity adds room for the lanes at that peak.
 */
#include "internal.h"
#include "prim.h"

#include <math.h>
#include <string.h>

#define NA_DRY_RUN_RESERVE ((size_t)64 << 30)

void nalloc_ctx_config_init_dry_run(nalloc_ctx_config *config, nalloc_memory memory,
                                    size_t reserve)
{
    if (config == NULL) {
        na_fail(NALLOC_ERR_INVALID, "nalloc_ctx_config_init_dry_run", "config is NULL");
        return;
    }
    if (reserve == 0)
        reserve = NA_DRY_RUN_RESERVE;
    nalloc_ctx_config_init(config, memory, reserve, reserve, reserve);
    for (int k = 0; k < NALLOC_KIND_COUNT; k++) {
        nalloc_arena_config *c = &config->arenas[k];
        nalloc_arena_config host;
        nalloc_arena_config_init(&host, (nalloc_kind)k, NALLOC_MEMORY_HOST, reserve);
        c->memory = NALLOC_MEMORY_HOST;
        /* Address space only: nothing faulted in that the workload does not touch. */
        c->flags = (host.flags & ~(unsigned)(NALLOC_FLAG_POPULATE | NALLOC_FLAG_PREFAULT_AHEAD)) |
                   NALLOC_FLAG_NORESERVE;
        c->device_fraction = 0;
    }
}

typedef struct lane_peak_search {
    const nalloc_arena *parent;
    size_t peak; /* bytes: the largest high-water mark of a live lane of parent */
} lane_peak_search;

static void live_lane_peak(void *handle, void *arg)
{
    const nalloc_arena *a = handle;
    lane_peak_search *s = arg;
    if (!na_arena_alive(a) || a->parent != s->parent)
        return;
    size_t peak = na_arena_peak(a);
    if (peak > s->peak)
        s->peak = peak;
}

/* The smallest nalloc_profile a caller may pass or a stored profile may have: the 1.0 struct,
 * which ends with lanes[]. Fields added later go after it (nalloc.h). */
#define NA_PROFILE_SIZE_1_0 (offsetof(nalloc_profile, lanes) + sizeof(((nalloc_profile *)0)->lanes))

nalloc_status nalloc_ctx_profile_sized(nalloc_ctx *ctx, nalloc_profile *out, size_t size)
{
    static const char call[] = "nalloc_ctx_profile";
    if (ctx == NULL || out == NULL)
        return na_fail(NALLOC_ERR_INVALID, call, ctx == NULL ? "ctx is NULL" : "profile is NULL");
    if (size < NA_PROFILE_SIZE_1_0)
        return na_fail(NALLOC_ERR_INVALID, call,
                       "profile_size %zu is below the %zu bytes of the 1.0 nalloc_profile", size,
                       (size_t)NA_PROFILE_SIZE_1_0);
    if (!na_ctx_alive(ctx))
        return na_fail(NALLOC_ERR_STATE, call, "context already destroyed");
    nalloc_profile full, *p = &full;
    memset(p, 0, sizeof *p);
    p->version = NALLOC_PROFILE_VERSION;
    for (int k = 0; k < NALLOC_KIND_COUNT; k++) {
        nalloc_arena *a = na_ctx_arena(ctx, (nalloc_kind)k); /* NULL: the kind was omitted */
        if (a == NULL)
            continue;
        p->kinds |= 1u << k;
        size_t offset = na_atomic_load(&a->bump.offset);
        size_t lent = na_atomic_load(&a->lent);
        size_t own = na_atomic_load(&a->own_peak);
        size_t now = offset > lent ? offset - lent : 0;
        p->high_water[k] = now > own ? now : own;
        lane_peak_search s = {a, na_atomic_load(&a->lane_peak)};
        na_handle_foreach(live_lane_peak, &s);
        p->lane_high_water[k] = s.peak;
        p->lanes[k] = na_atomic_load(&a->lanes_peak);
    }
    /* Write no more than the caller's struct has (nalloc.h, nalloc_profile). */
    size_t n = size < sizeof full ? size : sizeof full;
    full.struct_size = (uint32_t)n;
    memcpy(out, &full, n);
    return NALLOC_OK;
}

/* bytes * (1 + headroom), rounded up to whole pages, into *out; false on overflow. */
static bool with_headroom(size_t bytes, double headroom, size_t *out)
{
    double scaled = (double)bytes * (1.0 + headroom);
    if (!(scaled < 0x1p63))
        return false;
    size_t whole = (size_t)scaled;
    if ((double)whole < scaled) /* ceil, without libm */
        whole++;
    return na_round_up(whole > bytes ? whole : bytes, na_prim_page_size(), out);
}

static bool headroom_ok(double headroom)
{
    return isfinite(headroom) && headroom >= 0;
}

/* NALLOC_OK for a profile this library can read (the fields of the 1.0 struct at least, which
 * are all it reads today), else NALLOC_ERR_INVALID recorded as the failure of `call`. */
static nalloc_status check_profile(const nalloc_profile *p, const char *call)
{
    if (p == NULL)
        return na_fail(NALLOC_ERR_INVALID, call, "profile is NULL");
    if (p->version != NALLOC_PROFILE_VERSION)
        return na_fail(NALLOC_ERR_INVALID, call,
                       "the profile is of version %u; this library reads version %u",
                       (unsigned)p->version, (unsigned)NALLOC_PROFILE_VERSION);
    if (p->struct_size < NA_PROFILE_SIZE_1_0)
        return na_fail(NALLOC_ERR_INVALID, call,
                       "the profile's struct_size %u is below the %zu bytes of the 1.0 struct",
                       (unsigned)p->struct_size, (size_t)NA_PROFILE_SIZE_1_0);
    return NALLOC_OK;
}

size_t nalloc_profile_lane_capacity(const nalloc_profile *p, nalloc_kind kind, double headroom)
{
    static const char call[] = "nalloc_profile_lane_capacity";
    size_t bytes;
    if (check_profile(p, call) != NALLOC_OK)
        return 0;
    if ((unsigned)kind >= NALLOC_KIND_COUNT) {
        na_fail(NALLOC_ERR_INVALID, call, "kind %u is not a nalloc_kind", (unsigned)kind);
        return 0;
    }
    if (!headroom_ok(headroom)) {
        na_fail(NALLOC_ERR_INVALID, call, "headroom is negative or not finite");
        return 0;
    }
    if (p->lanes[kind] == 0)
        return 0; /* no lanes: the answer, not a failure */
    if (!with_headroom(p->lane_high_water[kind], headroom, &bytes)) {
        na_fail(NALLOC_ERR_INVALID, call, "the lane capacity with that headroom overflows");
        return 0;
    }
    return bytes;
}

/* The capacity of a sized arena of kind k; lane_align as lane.c computes it from `c`. */
static bool sized_capacity(const nalloc_profile *p, int k, const nalloc_arena_config *c,
                           double headroom, size_t *out)
{
    size_t page = na_prim_page_size();
    size_t own, capacity;
    if (!with_headroom(p->high_water[k], headroom, &own))
        return false;
    capacity = own > page ? own : page;
    if (p->lanes[k] > 0) {
        size_t align = na_lane_align(c->default_align, c->large_align);
        size_t lane, stride, lanes;
        if (!with_headroom(p->lane_high_water[k], headroom, &lane) ||
            !na_round_up(lane > 0 ? lane : 1, align, &stride) ||
            __builtin_mul_overflow(stride, p->lanes[k], &lanes) ||
            __builtin_add_overflow(capacity, lanes, &capacity) ||
            __builtin_add_overflow(capacity, align, &capacity))
            return false;
    }
    *out = capacity;
    return true;
}

nalloc_status nalloc_ctx_config_from_profile(nalloc_ctx_config *config, nalloc_memory memory,
                                             const nalloc_profile *p, double headroom)
{
    static const char call[] = "nalloc_ctx_config_from_profile";
    if (config == NULL)
        return na_fail(NALLOC_ERR_INVALID, call, "config is NULL");
    if (check_profile(p, call) != NALLOC_OK)
        return NALLOC_ERR_INVALID;
    if (!headroom_ok(headroom))
        return na_fail(NALLOC_ERR_INVALID, call, "headroom is negative or not finite");
    if ((unsigned)memory > NALLOC_MEMORY_DEVICE)
        return na_fail(NALLOC_ERR_INVALID, call, "memory %u is not a nalloc_memory",
                       (unsigned)memory);
    nalloc_ctx_config sized;
    nalloc_ctx_config_init(&sized, memory, 0, 0, 0);
    for (int k = 0; k < NALLOC_KIND_COUNT; k++) {
        if (!(p->kinds & (1u << k))) {
            sized.omit |= 1u << k; /* the dry run had no such arena: nor will the real run */
            continue;
        }
        if (!sized_capacity(p, k, &sized.arenas[k], headroom, &sized.arenas[k].capacity))
            return na_fail(NALLOC_ERR_INVALID, call,
                           "a capacity with that headroom overflows (kind %d)", k);
    }
    *config = sized;
    return NALLOC_OK;
}
