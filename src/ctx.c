/* src/ctx.c - the three-arena partition a prover works in.
 *
 * A context is a polynomial, a witness and a scratch arena, each its own mapping with its own
 * guards, so a stray write from a scratch buffer can never reach the witness, and the witness
 * discipline (locked, never dumped, wiped) applies to the witness arena alone. The arenas belong
 * to the context: nalloc_arena_destroy refuses them, and nalloc_ctx_destroy releases all three.
 *
 * A kind can be left out, but only on purpose (nalloc_ctx_config.omit): a capacity of 0 is refused
 * at creation rather than read as "no arena", so a size computed as 0 by mistake is caught there
 * instead of surfacing later as a NULL arena. The sizing helpers omit the kinds a dry run lacked.
 */
#include "internal.h"

#include <errno.h>
#include <string.h>

struct nalloc_ctx {
    uint64_t magic;                          /* NA_MAGIC_CTX while alive; first, like every handle */
    nalloc_arena *arenas[NALLOC_KIND_COUNT]; /* indexed by kind; NULL when the config omitted it */
};

_Static_assert(sizeof(struct nalloc_ctx) <= sizeof(struct nalloc_arena),
               "a context must fit in a handle slot");

static const char *const kind_names[NALLOC_KIND_COUNT] = {"poly", "witness", "scratch"};

void nalloc_ctx_config_init(nalloc_ctx_config *config, nalloc_memory memory, size_t poly_capacity,
                            size_t witness_capacity, size_t scratch_capacity)
{
    if (config == NULL) {
        na_fail(NALLOC_ERR_INVALID, "nalloc_ctx_config_init", "config is NULL");
        return;
    }
    memset(config, 0, sizeof *config);
    const size_t capacity[NALLOC_KIND_COUNT] = {poly_capacity, witness_capacity, scratch_capacity};
    for (int k = 0; k < NALLOC_KIND_COUNT; k++)
        nalloc_arena_config_init(&config->arenas[k], (nalloc_kind)k, memory, capacity[k]);
}

nalloc_status nalloc_ctx_config_omit(nalloc_ctx_config *config, nalloc_kind kind)
{
    if (config == NULL)
        return na_fail(NALLOC_ERR_INVALID, "nalloc_ctx_config_omit", "config is NULL");
    if ((unsigned)kind >= NALLOC_KIND_COUNT)
        return na_fail(NALLOC_ERR_INVALID, "nalloc_ctx_config_omit", "kind %u is not a nalloc_kind",
                       (unsigned)kind);
    config->omit |= 1u << kind;
    return NALLOC_OK;
}

static bool ctx_alive(const nalloc_ctx *ctx)
{
    return ctx != NULL && __atomic_load_n(&ctx->magic, __ATOMIC_ACQUIRE) == NA_MAGIC_CTX;
}

/* Destroy the context's arenas. The first failure is recorded as the failure of `call` (NULL:
 * not recorded, the caller reports something else) and its status returned; the others are
 * destroyed all the same. */
static nalloc_status destroy_arenas(nalloc_ctx *ctx, const char *call)
{
    nalloc_status first = NALLOC_OK;
    for (int k = 0; k < NALLOC_KIND_COUNT; k++) {
        nalloc_arena *a = ctx->arenas[k];
        if (a == NULL)
            continue;
        a->owner = NULL;
        char name[NA_NAME_MAX];
        memcpy(name, a->name, sizeof name);
        nalloc_status st = na_arena_destroy(a, a->uid);
        if (st != NALLOC_OK && first == NALLOC_OK && call != NULL)
            na_fail_cause(st, call, "the %s arena \"%s\"", kind_names[k], name);
        if (first == NALLOC_OK)
            first = st;
        ctx->arenas[k] = NULL;
    }
    na_cause_clear(); /* a later arena's cause, after the first failure was recorded */
    return first;
}

/* Is the config's arena of kind k to be created, and can it be? NALLOC_ERR_INVALID, with the
 * cause noted, for a kind neither omitted nor given a size. */
static nalloc_status check_kind(const nalloc_ctx_config *config, int k)
{
    const nalloc_arena_config *c = &config->arenas[k];
    if (c->kind != (nalloc_kind)k) {
        na_cause("arenas[%d].kind is %u: arenas[] is indexed by kind", k, (unsigned)c->kind);
        return NALLOC_ERR_INVALID;
    }
    if (c->capacity == 0 && !(c->memory == NALLOC_MEMORY_DEVICE && c->device_fraction > 0)) {
        na_cause("the %s arena has capacity 0; to create none, omit it (nalloc_ctx_config_omit)",
                 kind_names[k]);
        return NALLOC_ERR_INVALID;
    }
    return NALLOC_OK;
}

nalloc_status nalloc_ctx_create(const nalloc_ctx_config *config, nalloc_ctx **out)
{
    static const char call[] = "nalloc_ctx_create";
    if (out == NULL)
        return na_fail(NALLOC_ERR_INVALID, call, "out is NULL");
    *out = NULL;
    if (config == NULL)
        return na_fail(NALLOC_ERR_INVALID, call, "config is NULL");
    if (config->omit & ~((1u << NALLOC_KIND_COUNT) - 1))
        return na_fail(NALLOC_ERR_INVALID, call, "omit %u holds bits that are not kinds",
                       config->omit);
    na_cause_clear();
    for (int k = 0; k < NALLOC_KIND_COUNT; k++) {
        if (config->omit & (1u << k))
            continue;
        nalloc_status st = check_kind(config, k);
        if (st != NALLOC_OK)
            return na_fail_cause(st, call, NULL);
    }

    nalloc_ctx *ctx = na_handle_alloc();
    if (ctx == NULL)
        return na_fail(NALLOC_ERR_OS, call, "mmap of a handle slot: %s", na_errno_text(errno));
    for (int k = 0; k < NALLOC_KIND_COUNT; k++) {
        if (config->omit & (1u << k))
            continue;
        const nalloc_arena_config *c = &config->arenas[k];
        const na_backing *backing = na_backing_for(c->memory);
        nalloc_status st = na_arena_create_from(c, backing, NULL, 0, &ctx->arenas[k]);
        if (st != NALLOC_OK) {
            /* Recorded first, with this arena's cause; then the arenas made so far go. */
            na_fail_cause(st, call, "the %s arena \"%s\"", kind_names[k], na_config_name(c));
            int err = errno;
            (void)destroy_arenas(ctx, NULL);
            na_handle_free(ctx);
            errno = err;
            return st;
        }
        ctx->arenas[k]->owner = ctx;
    }
    __atomic_store_n(&ctx->magic, NA_MAGIC_CTX, __ATOMIC_RELEASE);
    *out = ctx;
    return NALLOC_OK;
}

nalloc_arena *nalloc_ctx_arena(nalloc_ctx *ctx, nalloc_kind kind)
{
    static const char call[] = "nalloc_ctx_arena";
    if (ctx == NULL) {
        na_fail(NALLOC_ERR_INVALID, call, "ctx is NULL");
        return NULL;
    }
    if ((unsigned)kind >= NALLOC_KIND_COUNT) {
        na_fail(NALLOC_ERR_INVALID, call, "kind %u is not a nalloc_kind", (unsigned)kind);
        return NULL;
    }
    if (!ctx_alive(ctx)) {
        na_fail(NALLOC_ERR_STATE, call, "context already destroyed");
        return NULL;
    }
    if (ctx->arenas[kind] == NULL)
        na_fail(NALLOC_ERR_INVALID, call, "the context has no %s arena (its config omitted it)",
                kind_names[kind]);
    return ctx->arenas[kind];
}

nalloc_arena *na_ctx_arena(nalloc_ctx *ctx, nalloc_kind kind)
{
    return ctx_alive(ctx) ? ctx->arenas[kind] : NULL;
}

bool na_ctx_alive(const nalloc_ctx *ctx)
{
    return ctx_alive(ctx);
}

nalloc_status nalloc_ctx_destroy(nalloc_ctx *ctx)
{
    static const char call[] = "nalloc_ctx_destroy";
    if (ctx == NULL)
        return na_fail(NALLOC_ERR_INVALID, call, "ctx is NULL");
    /* Malloc-family blocks still alive in an arena: refused, nothing destroyed (as
     * nalloc_arena_destroy; the caller frees them first). */
    for (int k = 0; ctx_alive(ctx) && k < NALLOC_KIND_COUNT; k++)
        if (ctx->arenas[k] != NULL &&
            (na_blocks_live(ctx->arenas[k]) > 0 || na_arena_lane_blocks_live(ctx->arenas[k])))
            return na_fail(NALLOC_ERR_STATE, call,
                           "arena '%s' still has malloc-family blocks alive: free them first",
                           ctx->arenas[k]->name);
    uint64_t live = NA_MAGIC_CTX;
    if (!__atomic_compare_exchange_n(&ctx->magic, &live, NA_MAGIC_DEAD, false, __ATOMIC_ACQ_REL,
                                     __ATOMIC_RELAXED))
        return na_fail(NALLOC_ERR_STATE, call, "context already destroyed");
    na_cause_clear();
    nalloc_status st = destroy_arenas(ctx, call);
    na_handle_free(ctx);
    return st;
}

nalloc_status nalloc_ctx_destroy_deferred(nalloc_ctx *ctx)
{
    static const char call[] = "nalloc_ctx_destroy_deferred";
    if (ctx == NULL)
        return na_fail(NALLOC_ERR_INVALID, call, "ctx is NULL");
    if (!ctx_alive(ctx))
        return na_fail(NALLOC_ERR_STATE, call, "context already destroyed");
    /* Everything that could refuse, checked before anything is done: lanes' blocks (they would
     * die with their parent), and the membarrier handshake a doomed arena needs. */
    bool doomed = false;
    for (int k = 0; k < NALLOC_KIND_COUNT; k++) {
        nalloc_arena *a = ctx->arenas[k];
        if (a == NULL)
            continue;
        if (na_arena_lane_blocks_live(a))
            return na_fail(NALLOC_ERR_STATE, call,
                           "arena \"%s\" has lanes with malloc-family blocks alive", a->name);
        doomed |= na_blocks_live(a) > 0;
    }
    if (doomed && !na_blocks_doom_supported())
        return na_fail(NALLOC_ERR_UNSUPPORTED, call,
                       "the kernel lacks membarrier(2), which makes the handshake with the last "
                       "free exact; the context is left as it was");
    uint64_t live = NA_MAGIC_CTX;
    if (!__atomic_compare_exchange_n(&ctx->magic, &live, NA_MAGIC_DEAD, false, __ATOMIC_ACQ_REL,
                                     __ATOMIC_RELAXED))
        return na_fail(NALLOC_ERR_STATE, call, "context already destroyed");
    nalloc_status first = NALLOC_OK;
    for (int k = 0; k < NALLOC_KIND_COUNT; k++) {
        nalloc_arena *a = ctx->arenas[k];
        if (a == NULL)
            continue;
        a->owner = NULL; /* its own from here on, destroyed as any arena */
        ctx->arenas[k] = NULL;
        nalloc_status st = na_blocks_live(a) > 0 ? nalloc_arena_destroy_deferred(a)
                                                 : na_arena_destroy(a, a->uid);
        if (first == NALLOC_OK)
            first = st;
    }
    na_handle_free(ctx);
    return first;
}
