/* src/ctx.c - the three-arena partition a prover works in.
 *
 * A context is a polynomial, a witness and a scratch arena, each its own mapping with its own
 * guards, so a stray write from a scratch buffer can never reach the witness, and the witness
 * discipline (locked, never dumped, wiped) applies to the witness arena alone. The arenas belong
 * to the context: nalloc_arena_destroy refuses them, and nalloc_ctx_destroy releases all three.
 */
#include "internal.h"

#include <string.h>

struct nalloc_ctx {
    uint64_t magic;                          /* NA_MAGIC_CTX while alive; first, like every handle */
    nalloc_arena *arenas[NALLOC_KIND_COUNT]; /* indexed by kind; NULL when its capacity was 0 */
};

_Static_assert(sizeof(struct nalloc_ctx) <= sizeof(struct nalloc_arena),
               "a context must fit in a handle slot");

void nalloc_ctx_config_init(nalloc_ctx_config *config, nalloc_memory memory, size_t poly_capacity,
                            size_t witness_capacity, size_t scratch_capacity)
{
    if (config == NULL)
        return;
    const size_t capacity[NALLOC_KIND_COUNT] = {poly_capacity, witness_capacity, scratch_capacity};
    for (int k = 0; k < NALLOC_KIND_COUNT; k++)
        nalloc_arena_config_init(&config->arenas[k], (nalloc_kind)k, memory, capacity[k]);
}

static bool ctx_alive(const nalloc_ctx *ctx)
{
    return ctx != NULL && __atomic_load_n(&ctx->magic, __ATOMIC_ACQUIRE) == NA_MAGIC_CTX;
}

static void destroy_arenas(nalloc_ctx *ctx, nalloc_status *first_error)
{
    for (int k = 0; k < NALLOC_KIND_COUNT; k++) {
        nalloc_arena *a = ctx->arenas[k];
        if (a == NULL)
            continue;
        a->owner = NULL;
        nalloc_status st = na_arena_destroy(a);
        if (st != NALLOC_OK && *first_error == NALLOC_OK)
            *first_error = st;
        ctx->arenas[k] = NULL;
    }
}

nalloc_status nalloc_ctx_create(const nalloc_ctx_config *config, nalloc_ctx **out)
{
    if (out == NULL)
        return na_set_error(NALLOC_ERR_INVALID);
    *out = NULL;
    if (config == NULL)
        return na_set_error(NALLOC_ERR_INVALID);
    for (int k = 0; k < NALLOC_KIND_COUNT; k++)
        if (config->arenas[k].kind != (nalloc_kind)k)
            return na_set_error(NALLOC_ERR_INVALID); /* arenas[] is indexed by kind */

    nalloc_ctx *ctx = na_handle_alloc();
    if (ctx == NULL)
        return na_set_error(NALLOC_ERR_OS);
    for (int k = 0; k < NALLOC_KIND_COUNT; k++) {
        if (config->arenas[k].capacity == 0 && config->arenas[k].device_fraction <= 0)
            continue;
        nalloc_status st = nalloc_arena_create(&config->arenas[k], &ctx->arenas[k]);
        if (st != NALLOC_OK) {
            nalloc_status ignored = NALLOC_OK;
            destroy_arenas(ctx, &ignored);
            na_handle_free(ctx);
            return na_set_error(st);
        }
        ctx->arenas[k]->owner = ctx;
    }
    __atomic_store_n(&ctx->magic, NA_MAGIC_CTX, __ATOMIC_RELEASE);
    *out = ctx;
    return NALLOC_OK;
}

nalloc_arena *nalloc_ctx_arena(nalloc_ctx *ctx, nalloc_kind kind)
{
    if (ctx == NULL || (unsigned)kind >= NALLOC_KIND_COUNT) {
        na_set_error(NALLOC_ERR_INVALID);
        return NULL;
    }
    if (!ctx_alive(ctx)) {
        na_set_error(NALLOC_ERR_STATE);
        return NULL;
    }
    if (ctx->arenas[kind] == NULL)
        na_set_error(NALLOC_ERR_INVALID);
    return ctx->arenas[kind];
}

nalloc_status nalloc_ctx_destroy(nalloc_ctx *ctx)
{
    if (ctx == NULL)
        return na_set_error(NALLOC_ERR_INVALID);
    /* Malloc-family blocks still alive in an arena: refused, nothing destroyed (as
     * nalloc_arena_destroy; the caller frees them first). */
    for (int k = 0; ctx_alive(ctx) && k < NALLOC_KIND_COUNT; k++)
        if (ctx->arenas[k] != NULL &&
            (na_blocks_live(ctx->arenas[k]) > 0 || na_lanes_blocks_live(ctx->arenas[k])))
            return na_set_error(NALLOC_ERR_STATE);
    uint64_t live = NA_MAGIC_CTX;
    if (!__atomic_compare_exchange_n(&ctx->magic, &live, NA_MAGIC_DEAD, false, __ATOMIC_ACQ_REL,
                                     __ATOMIC_RELAXED))
        return na_set_error(NALLOC_ERR_STATE);
    nalloc_status st = NALLOC_OK;
    destroy_arenas(ctx, &st);
    na_handle_free(ctx);
    return st == NALLOC_OK ? st : na_set_error(st);
}
