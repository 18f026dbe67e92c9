/* cuda/nvtx.c - NVTX: arena phases as ranges, and device arenas described to memory checkers.
 *
 * Two things go through NVTX, both in the domain "nalloc":
 *
 *  - Ranges around creation, destruction, reset and wipe (arena.c calls na_trace_push/pop), so
 *    a profile in Nsight Systems shows where a prover's phase boundaries are and what they cost.
 *
 *  - The NVTX memory API for device arenas. To compute-sanitizer a device arena is one cudaMalloc
 *    block, and any access inside it is valid, so a kernel that runs off the end of one
 *    sub-allocation into the next goes unnoticed; no pool in RMM, CUB or cudaMallocAsync says
 *    more today. Here the block is registered as a sub-allocator heap, every block handed out on
 *    the host becomes a region of it, and every rollback, reset, wipe or free_last takes the
 *    released regions away again. memcheck then reports any access to heap memory outside a
 *    live region: alignment padding between blocks, and everything above the offset.
 *
 * Without a tool attached (the normal case), NVTX's own functions are no-ops, nvtxMemHeapRegister
 * returns NULL, and nothing is kept: the memory's tool stays NULL and no hook is installed, so an
 * allocation runs exactly the instructions it runs in a build without NVTX (bench/bench_nvtx_hooks
 * measures both). With a tool, each arena keeps its regions in an array sorted by offset under a
 * mutex; tools are slow anyway, and the array is what lets a release unregister exactly the
 * regions above the new offset. All of it works on the arena's na_memory (backing.h), the only
 * part of an arena the device backing sees.
 *
 * Releases and allocations can race: free_last moves the offset down with one CAS and calls the
 * release hook after it, by which time another thread may have allocated the freed bytes again
 * and registered them. So both hooks make room the same way (carve): a recorded region that
 * starts inside the range being claimed is dead and is dropped, and one that starts before it
 * is cut at the range's start, since a live block never overlaps another. A release uses the
 * arena's current offset when that is above the released one. The worst a race can leave is a
 * dead region still registered (a missed report), never a live block unregistered (a false one).
 */
#include "cuda_internal.h"

#include <nvtx3/nvToolsExt.h>
#include <nvtx3/nvToolsExtMem.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------------------------------------
 * The domain and the ranges
 * ------------------------------------------------------------------------------------------- */

static nvtxDomainHandle_t domain; /* NULL when no tool is attached */
static pthread_once_t domain_once = PTHREAD_ONCE_INIT;

static void create_domain(void)
{
    domain = nvtxDomainCreateA("nalloc");
}

static nvtxDomainHandle_t nalloc_domain(void)
{
    pthread_once(&domain_once, create_domain);
    return domain;
}

void na_trace_push(const char *what, const char *name)
{
    nvtxDomainHandle_t d = nalloc_domain();
    if (d == NULL)
        return;
    char text[NA_NAME_MAX + 48];
    if (name != NULL)
        snprintf(text, sizeof text, "%s(%s)", what, name);
    else
        snprintf(text, sizeof text, "%s", what);
    nvtxEventAttributes_t attr;
    memset(&attr, 0, sizeof attr);
    attr.version = NVTX_VERSION;
    attr.size = NVTX_EVENT_ATTRIB_STRUCT_SIZE;
    attr.messageType = NVTX_MESSAGE_TYPE_ASCII;
    attr.message.ascii = text;
    nvtxDomainRangePushEx(d, &attr);
}

void na_trace_pop(void)
{
    nvtxDomainHandle_t d = nalloc_domain();
    if (d != NULL)
        nvtxDomainRangePop(d);
}

/* ---------------------------------------------------------------------------------------------
 * Heaps and regions
 * ------------------------------------------------------------------------------------------- */

typedef struct na_nvtx_region {
    size_t begin; /* bytes from the arena's base */
    size_t end;   /* bytes from the arena's base; begin < end */
} na_nvtx_region;

typedef struct na_nvtx_heap {
    nvtxMemHeapHandle_t handle; /* the tool's handle for the arena's block */
    pthread_mutex_t lock;       /* guards everything below */
    bool disabled;              /* bookkeeping failed (no memory): the heap was unregistered */
    bool name_regions;          /* witness arenas: every region carries the arena's name */
    size_t count;               /* regions registered */
    size_t capacity;            /* regions the array holds */
    na_nvtx_region *regions;    /* sorted by begin, pairwise disjoint */
} na_nvtx_heap;

#define NA_NVTX_BATCH 32 /* regions unregistered per NVTX call */

static const void *address_of(const na_memory *m, size_t offset)
{
    return (const void *)(m->base + offset);
}

/* Index of the first region that begins at or after `offset`. */
static size_t first_at_or_after(const na_nvtx_heap *h, size_t offset)
{
    size_t lo = 0, hi = h->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (h->regions[mid].begin < offset)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static void shrink_region(const na_memory *m, na_nvtx_heap *h, size_t i, size_t end)
{
    na_nvtx_region *r = &h->regions[i];
    r->end = end;
    nvtxMemVirtualRangeDesc_t range = {.size = r->end - r->begin, .ptr = address_of(m, r->begin)};
    nvtxMemRegionsResizeBatch_t batch = {
        .extCompatID = NVTX_EXT_COMPATID_MEM,
        .structSize = sizeof batch,
        .regionType = NVTX_MEM_TYPE_VIRTUAL_ADDRESS,
        .regionDescCount = 1,
        .regionDescElementSize = sizeof range,
        .regionDescElements = &range,
    };
    nvtxMemRegionsResize(domain, &batch);
}

/* Unregister regions [i, j) and close the gap in the array. */
static void drop_regions(const na_memory *m, na_nvtx_heap *h, size_t i, size_t j)
{
    if (i == j)
        return;
    if (i == 0 && j == h->count) {
        nvtxMemHeapReset(domain, h->handle); /* everything: one call */
    } else {
        nvtxMemRegionRef_t refs[NA_NVTX_BATCH];
        for (size_t k = i; k < j;) {
            size_t n = 0;
            while (k < j && n < NA_NVTX_BATCH)
                refs[n++].pointer = address_of(m, h->regions[k++].begin);
            nvtxMemRegionsUnregisterBatch_t batch = {
                .extCompatID = NVTX_EXT_COMPATID_MEM,
                .structSize = sizeof batch,
                .refType = NVTX_MEM_REGION_REF_TYPE_POINTER,
                .refCount = n,
                .refElementSize = sizeof refs[0],
                .refElements = refs,
            };
            nvtxMemRegionsUnregister(domain, &batch);
        }
    }
    memmove(&h->regions[i], &h->regions[j], (h->count - j) * sizeof h->regions[0]);
    h->count -= j - i;
}

/* Make [begin, end) free of regions: a region that starts inside it is dead and goes; one that
 * starts before it and reaches into it is cut at `begin` (its live part, if any, ends there).
 * Returns the index where a region beginning at `begin` belongs. */
static size_t carve(const na_memory *m, na_nvtx_heap *h, size_t begin, size_t end)
{
    size_t i = first_at_or_after(h, begin);
    if (i > 0 && h->regions[i - 1].end > begin)
        shrink_region(m, h, i - 1, begin);
    size_t j = i;
    while (j < h->count && h->regions[j].begin < end)
        j++;
    drop_regions(m, h, i, j);
    return i;
}

/* Stop annotating this arena: the tool then sees one plain allocation, so it reports nothing
 * inside it, rightly or wrongly. Used when the region array cannot grow. */
static void disable(na_nvtx_heap *h)
{
    nvtxMemHeapUnregister(domain, h->handle);
    h->disabled = true;
    h->count = 0;
}

static bool reserve_slot(na_nvtx_heap *h)
{
    if (h->count < h->capacity)
        return true;
    size_t capacity = h->capacity ? 2 * h->capacity : 64;
    na_nvtx_region *regions = realloc(h->regions, capacity * sizeof regions[0]);
    if (regions == NULL)
        return false;
    h->regions = regions;
    h->capacity = capacity;
    return true;
}

/* Register [begin, end) as a region, replacing whatever was recorded there (heap lock held). */
static void add_region(const na_memory *m, na_nvtx_heap *h, size_t begin, size_t end,
                       const char *name)
{
    size_t i = carve(m, h, begin, end);
    if (!reserve_slot(h)) {
        disable(h);
        return;
    }
    memmove(&h->regions[i + 1], &h->regions[i], (h->count - i) * sizeof h->regions[0]);
    h->regions[i] = (na_nvtx_region){begin, end};
    h->count++;

    nvtxMemVirtualRangeDesc_t range = {.size = end - begin, .ptr = address_of(m, begin)};
    nvtxMemRegionsRegisterBatch_t batch = {
        .extCompatID = NVTX_EXT_COMPATID_MEM,
        .structSize = sizeof batch,
        .regionType = NVTX_MEM_TYPE_VIRTUAL_ADDRESS,
        .heap = h->handle,
        .regionCount = 1,
        .regionDescElementSize = sizeof range,
        .regionDescElements = &range,
        .regionHandleElementsOut = NULL, /* virtual-address regions are named by pointer */
    };
    nvtxMemRegionsRegister(domain, &batch);
    if (name != NULL) {
        nvtxMemRegionNameDesc_t desc = {
            .regionRefType = NVTX_MEM_REGION_REF_TYPE_POINTER,
            .nameType = NVTX_MESSAGE_TYPE_ASCII,
            .region.pointer = range.ptr,
            .name.ascii = name,
        };
        nvtxMemRegionsNameBatch_t names = {
            .extCompatID = NVTX_EXT_COMPATID_MEM,
            .structSize = sizeof names,
            .regionCount = 1,
            .regionElementSize = sizeof desc,
            .regionElements = &desc,
        };
        nvtxMemRegionsName(domain, &names);
    }
}

void na_nvtx_heap_register(na_memory *m)
{
    na_assert(m != NULL && m->tool == NULL);
    nvtxDomainHandle_t d = nalloc_domain();
    nvtxMemVirtualRangeDesc_t range = {.size = m->capacity, .ptr = address_of(m, 0)};
    nvtxMemHeapDesc_t desc;
    memset(&desc, 0, sizeof desc);
    desc.extCompatID = NVTX_EXT_COMPATID_MEM;
    desc.structSize = sizeof desc;
    desc.usage = NVTX_MEM_HEAP_USAGE_TYPE_SUB_ALLOCATOR;
    desc.type = NVTX_MEM_TYPE_VIRTUAL_ADDRESS;
    desc.typeSpecificDescSize = sizeof range;
    desc.typeSpecificDesc = &range;
    desc.messageType = NVTX_MESSAGE_TYPE_ASCII;
    desc.message.ascii = m->name;
    nvtxMemHeapHandle_t handle = nvtxMemHeapRegister(d, &desc);
    na_nvtx_heap *h = NULL;
    if (handle != NULL && handle != NVTX_MEM_HEAP_HANDLE_NO_TOOL) {
        h = calloc(1, sizeof *h);
        if (h == NULL)
            nvtxMemHeapUnregister(d, handle); /* annotations are best effort */
    }
    if (h == NULL) {
        /* No tool to describe the arena to: no hook on the allocation path at all, so
         * allocations cost exactly what they cost without NVTX. */
        m->on_alloc = NULL;
        m->on_release = NULL;
        return;
    }
    h->handle = handle;
    h->name_regions = m->config->kind == NALLOC_KIND_WITNESS;
    pthread_mutex_init(&h->lock, NULL);
    m->tool = h;
    m->on_alloc = na_nvtx_region_alloc;
    m->on_release = na_nvtx_heap_release;
}

void na_nvtx_heap_unregister(na_memory *m)
{
    na_nvtx_heap *h = m->tool;
    if (h == NULL)
        return;
    if (!h->disabled)
        nvtxMemHeapUnregister(domain, h->handle);
    pthread_mutex_destroy(&h->lock);
    free(h->regions);
    free(h);
    m->tool = NULL;
}

void na_nvtx_region_alloc(const na_memory *m, size_t offset, size_t size)
{
    na_nvtx_heap *h = m->tool;
    if (na_unlikely(h == NULL))
        return; /* no tool: the whole cost of annotations on the allocation path */
    pthread_mutex_lock(&h->lock);
    if (!h->disabled)
        add_region(m, h, offset, offset + size, h->name_regions ? m->name : NULL);
    pthread_mutex_unlock(&h->lock);
}

void na_nvtx_heap_release(const na_memory *m, size_t offset)
{
    na_nvtx_heap *h = m->tool;
    if (na_likely(h == NULL))
        return;
    pthread_mutex_lock(&h->lock);
    /* Blocks allocated since the offset moved down are live even if they lie above `offset`. */
    size_t now = na_atomic_load(m->offset);
    if (!h->disabled)
        carve(m, h, offset > now ? offset : now, SIZE_MAX);
    pthread_mutex_unlock(&h->lock);
}

void na_nvtx_window_register(const na_memory *m, const void *base, size_t size)
{
    na_nvtx_heap *h = m->tool;
    size_t offset;
    if (na_likely(h == NULL) || size == 0 || !na_range_inside(m->base, m->capacity, base, size, &offset))
        return;
    pthread_mutex_lock(&h->lock);
    if (!h->disabled)
        add_region(m, h, offset, offset + size, "nalloc window");
    pthread_mutex_unlock(&h->lock);
}
