/* bench/heap.c - the benchmark's allocator back-ends (see heap.h).
 *
 * A ledger per kind records every live block (pointer and size): the malloc back-end needs it to
 * free, and every back-end needs it to count live bytes when a scope ends. The floor's regions
 * use the same alignment policy as nalloc (64 B, 4 KiB from 1 MiB up) on 2 MiB-aligned bases,
 * so the floor and nalloc lay out the schedule identically and differ only in what an allocator
 * call costs and in when pages are faulted in.
 */
#include "heap.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "harness.h"

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

#define HEAP_HUGE_PAGE ((size_t)2 << 20)
#define HEAP_LARGE ((size_t)1 << 20) /* nalloc's default large_threshold */
#define HEAP_LARGE_ALIGN ((size_t)4096)
#define HEAP_ALIGN ((size_t)64)

typedef struct heap_block {
    void *ptr;
    size_t size; /* bytes the prover asked for */
} heap_block;

typedef struct heap_ledger {
    heap_block *blocks; /* live blocks in allocation order */
    size_t count;
    size_t capacity;    /* entries allocated */
} heap_ledger;

typedef struct heap_region { /* FLOOR */
    char *base;        /* 2 MiB-aligned, pre-faulted */
    size_t capacity;   /* bytes */
    size_t offset;     /* bytes carved so far, padding included */
    size_t dirty;      /* FLOOR witness: bytes written since the last wipe */
    void *map;         /* FLOOR: the mapping (for munmap) */
    size_t map_size;
} heap_region;

struct heap {
    heap_mode mode;
    heap_ledger ledger[NALLOC_KIND_COUNT];
    size_t live;                          /* bytes the prover holds now */
    size_t live_peak;                     /* most bytes held at once since the last reset */
    nalloc_ctx *ctx;                      /* NALLOC, DRY */
    nalloc_arena *arena[NALLOC_KIND_COUNT];
    heap_region region[NALLOC_KIND_COUNT]; /* FLOOR */
};

static const char *const kind_names[NALLOC_KIND_COUNT] = {"poly", "witness", "scratch"};

static _Noreturn void heap_fail(const char *what, nalloc_kind kind, size_t size)
{
    fprintf(stderr, "bench: %s failed for %zu bytes of %s memory\n", what, size, kind_names[kind]);
    exit(2);
}

/* A phase boundary of the benchmark that nalloc refused: the run would measure nonsense. */
static void heap_check(nalloc_status st)
{
    if (st != NALLOC_OK) {
        fprintf(stderr, "bench: %s\n", nalloc_last_error_message());
        exit(2);
    }
}

/* ---- Floor regions ---- */

static bool region_map(heap_region *r, size_t capacity)
{
    size_t size = (capacity + HEAP_HUGE_PAGE - 1) & ~(HEAP_HUGE_PAGE - 1);
    if (size == 0)
        size = HEAP_HUGE_PAGE;
    size_t map_size = size + HEAP_HUGE_PAGE;
    void *map = mmap(NULL, map_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (map == MAP_FAILED)
        return false;
    char *base = (char *)(((uintptr_t)map + HEAP_HUGE_PAGE - 1) & ~(uintptr_t)(HEAP_HUGE_PAGE - 1));
    madvise(base, size, MADV_HUGEPAGE); /* the best case: refused where THP is off, that's fine */
    if (madvise(base, size, MADV_POPULATE_WRITE) != 0) {
        long page = sysconf(_SC_PAGESIZE);
        for (size_t off = 0; off < size; off += (size_t)page) /* kernels before 5.14 */
            ((volatile char *)base)[off] = 0;
    }
    r->base = base;
    r->capacity = capacity;
    r->map = map;
    r->map_size = map_size;
    return true;
}

static size_t region_carve(heap_region *r, size_t size)
{
    size_t align = size >= HEAP_LARGE ? HEAP_LARGE_ALIGN : HEAP_ALIGN;
    size_t begin = (r->offset + align - 1) & ~(align - 1);
    if (r->base != NULL && (begin > r->capacity || size > r->capacity - begin))
        return SIZE_MAX;
    r->offset = begin + size;
    if (r->offset > r->dirty)
        r->dirty = r->offset;
    return begin;
}

/* ---- Ledger ---- */

static void ledger_push(heap *h, nalloc_kind kind, void *ptr, size_t size)
{
    heap_ledger *l = &h->ledger[kind];
    if (l->count == l->capacity) {
        size_t capacity = l->capacity ? 2 * l->capacity : 1024;
        heap_block *blocks = realloc(l->blocks, capacity * sizeof *blocks);
        if (blocks == NULL)
            heap_fail("growing the ledger", kind, capacity * sizeof *blocks);
        l->blocks = blocks;
        l->capacity = capacity;
    }
    l->blocks[l->count++] = (heap_block){ptr, size};
    h->live += size;
    if (h->live > h->live_peak)
        h->live_peak = h->live;
}

/* Drop the blocks of `kind` above `keep`, newest first; on MALLOC free them (witness: wiped). */
static void ledger_release(heap *h, nalloc_kind kind, size_t keep)
{
    heap_ledger *l = &h->ledger[kind];
    while (l->count > keep) {
        heap_block b = l->blocks[--l->count];
        h->live -= b.size;
        if (h->mode == HEAP_MALLOC) {
            if (kind == NALLOC_KIND_WITNESS)
                explicit_bzero(b.ptr, b.size);
            free(b.ptr);
        }
    }
}

/* ---- The interface ---- */

static bool create_nalloc(heap *h, const size_t capacity[NALLOC_KIND_COUNT],
                          const heap_nalloc_options *o)
{
    nalloc_ctx_config config;
    if (h->mode == HEAP_DRY) /* address space only: the dry run touches nothing */
        nalloc_ctx_config_init_dry_run(&config, NALLOC_MEMORY_HOST, 0);
    else
        nalloc_ctx_config_init(&config, NALLOC_MEMORY_HOST, capacity[0], capacity[1], capacity[2]);
    for (int k = 0; k < NALLOC_KIND_COUNT && h->mode != HEAP_DRY; k++) {
        unsigned *flags = &config.arenas[k].flags;
        if (!o->defaults)
            *flags &= ~(unsigned)NALLOC_FLAG_HUGEPAGES;
        if (o->populate)
            *flags |= NALLOC_FLAG_POPULATE;
        if (o->huge)
            *flags |= NALLOC_FLAG_HUGEPAGES;
        if (o->no_huge)
            *flags &= ~(unsigned)NALLOC_FLAG_HUGEPAGES;
        if (o->prefault)
            *flags |= NALLOC_FLAG_PREFAULT_AHEAD;
        if (o->no_prefault)
            *flags &= ~(unsigned)NALLOC_FLAG_PREFAULT_AHEAD;
    }
    if (nalloc_ctx_create(&config, &h->ctx) != NALLOC_OK) {
        fprintf(stderr, "bench: %s\n", nalloc_last_error_message());
        return false;
    }
    for (int k = 0; k < NALLOC_KIND_COUNT; k++)
        h->arena[k] = nalloc_ctx_arena(h->ctx, (nalloc_kind)k);
    return true;
}

heap *heap_create(heap_mode mode, const size_t capacity[NALLOC_KIND_COUNT],
                  const heap_nalloc_options *nalloc_options, double *setup_seconds)
{
    heap *h = calloc(1, sizeof *h);
    if (h == NULL)
        return NULL;
    h->mode = mode;
    double start = bench_now();
    bool ok = true;
    if (mode == HEAP_NALLOC || mode == HEAP_DRY) {
        static const heap_nalloc_options defaults = {.defaults = true};
        ok = create_nalloc(h, capacity, nalloc_options ? nalloc_options : &defaults);
    } else if (mode == HEAP_FLOOR) {
        for (int k = 0; k < NALLOC_KIND_COUNT && ok; k++)
            if (!(ok = region_map(&h->region[k], capacity[k])))
                fprintf(stderr, "bench: mapping %zu bytes for the floor: %s\n", capacity[k],
                        strerror(errno));
    }
    if (setup_seconds != NULL)
        *setup_seconds = bench_now() - start;
    if (!ok) {
        heap_destroy(h);
        return NULL;
    }
    return h;
}

void heap_destroy(heap *h)
{
    if (h == NULL)
        return;
    heap_proof_end(h);
    if (h->ctx != NULL)
        nalloc_ctx_destroy(h->ctx);
    for (int k = 0; k < NALLOC_KIND_COUNT; k++) {
        if (h->region[k].map != NULL)
            munmap(h->region[k].map, h->region[k].map_size);
        free(h->ledger[k].blocks);
    }
    free(h);
}

heap_mode heap_get_mode(const heap *h)
{
    return h->mode;
}

void *heap_alloc(heap *h, nalloc_kind kind, size_t size)
{
    void *p = NULL;
    switch (h->mode) {
    case HEAP_MALLOC:
        p = malloc(size);
        break;
    case HEAP_NALLOC:
    case HEAP_DRY:
        p = nalloc_alloc(h->arena[kind], size);
        break;
    case HEAP_FLOOR: {
        size_t offset = region_carve(&h->region[kind], size);
        if (offset != SIZE_MAX)
            p = h->region[kind].base + offset;
        break;
    }
    }
    if (p == NULL)
        heap_fail(h->ctx != NULL ? nalloc_strerror(nalloc_last_error()) : "allocation",
                  kind, size);
    ledger_push(h, kind, p, size);
    return p;
}

heap_scope heap_scope_begin(heap *h)
{
    heap_scope s = {
        .ledger = h->ledger[NALLOC_KIND_SCRATCH].count,
        .offset = h->region[NALLOC_KIND_SCRATCH].offset,
    };
    if (h->ctx != NULL)
        s.mark = nalloc_mark_get(h->arena[NALLOC_KIND_SCRATCH]);
    return s;
}

void heap_scope_end(heap *h, heap_scope s)
{
    ledger_release(h, NALLOC_KIND_SCRATCH, s.ledger);
    if (h->ctx != NULL) {
        heap_check(nalloc_rollback(h->arena[NALLOC_KIND_SCRATCH], s.mark));
    } else {
        h->region[NALLOC_KIND_SCRATCH].offset = s.offset;
    }
}

void heap_proof_end(heap *h)
{
    for (int k = 0; k < NALLOC_KIND_COUNT; k++)
        ledger_release(h, (nalloc_kind)k, 0);
    if (h->mode == HEAP_DRY) { /* nothing was written: a wipe would only commit the pages */
        for (int k = 0; k < NALLOC_KIND_COUNT; k++)
            heap_check(nalloc_reset(h->arena[k]));
    } else if (h->mode == HEAP_NALLOC) {
        heap_check(nalloc_reset(h->arena[NALLOC_KIND_POLY]));
        heap_check(nalloc_reset(h->arena[NALLOC_KIND_SCRATCH]));
        heap_check(nalloc_wipe(h->arena[NALLOC_KIND_WITNESS]));
    } else if (h->mode == HEAP_FLOOR) {
        heap_region *w = &h->region[NALLOC_KIND_WITNESS];
        if (w->dirty > 0)
            explicit_bzero(w->base, w->dirty);
        w->dirty = 0;
        for (int k = 0; k < NALLOC_KIND_COUNT; k++)
            h->region[k].offset = 0;
    }
}

size_t heap_live_peak(const heap *h)
{
    return h->live_peak;
}

void heap_live_peak_reset(heap *h)
{
    h->live_peak = h->live;
}

bool heap_dry_capacity(heap *h, size_t capacity[NALLOC_KIND_COUNT])
{
    nalloc_profile profile;
    nalloc_ctx_config sized;
    nalloc_status st = h->ctx == NULL ? NALLOC_ERR_INVALID : nalloc_ctx_profile(h->ctx, &profile);
    if (st == NALLOC_OK)
        st = nalloc_ctx_config_from_profile(&sized, NALLOC_MEMORY_HOST, &profile, 0.0);
    if (st != NALLOC_OK) {
        fprintf(stderr, "bench: sizing from the dry run: %s\n", nalloc_strerror(st));
        return false;
    }
    for (int k = 0; k < NALLOC_KIND_COUNT; k++)
        capacity[k] = sized.arenas[k].capacity;
    return true;
}

nalloc_ctx *heap_nalloc_ctx(heap *h)
{
    return h->ctx;
}
