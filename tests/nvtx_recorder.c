/* tests/nvtx_recorder.c - a stand-in NVTX tool that records what it is told (nvtx_recorder.h).
 *
 * NVTX finds a tool by dlopen-ing NVTX_INJECTION64_PATH and calling InitializeInjectionNvtx2
 * (core API: domains, ranges) and InitializeInjectionNvtxExtension (extensions: the memory API)
 * with tables of function slots to fill. Every copy of the NVTX implementation in the process
 * (nalloc's library, the test) calls them once; filling the same slots again is harmless.
 *
 * The model is small and fixed-size on purpose: tests register tens of heaps and a few thousand
 * regions at most; overflowing a table is reported as an error, not handled.
 */
#define NVTX_NO_IMPL /* this is the tool, not a client */
#include "nvtx_recorder.h"

#include <nvtx3/nvToolsExt.h>
#include <nvtx3/nvToolsExtMem.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define REC_EXPORT __attribute__((visibility("default")))
#define MAX_HEAPS 64
#define MAX_REGIONS 8192
#define NAME_MAX_LEN 64

typedef struct rec_heap {
    bool live;
    const char *base;
    size_t size;
    char name[NAME_MAX_LEN];
} rec_heap;

typedef struct rec_region {
    bool live;
    size_t heap; /* index into heaps */
    const char *base;
    size_t size;
    char name[NAME_MAX_LEN];
} rec_region;

struct nvtxDomainRegistration_st {
    char name[NAME_MAX_LEN];
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static bool attached;
static size_t calls[REC_CALL_COUNT];
static size_t errors;
static char first_error[256];
static struct nvtxDomainRegistration_st domains[8];
static size_t domain_count;
static char last_domain[NAME_MAX_LEN];
static char last_range[256];
static int depth;
static rec_heap heaps[MAX_HEAPS];
static rec_region regions[MAX_REGIONS];

/* ---- The model (lock held) ---- */

static void error(const char *what, const void *p)
{
    if (errors++ == 0)
        snprintf(first_error, sizeof first_error, "%s (%p)", what, p);
}

static void copy_name(char *dst, const char *src)
{
    snprintf(dst, NAME_MAX_LEN, "%s", src ? src : "");
}

static rec_region *region_containing(const char *p)
{
    for (size_t i = 0; i < MAX_REGIONS; i++)
        if (regions[i].live && p >= regions[i].base && p < regions[i].base + regions[i].size)
            return &regions[i];
    return NULL;
}

static rec_region *region_starting(const char *p)
{
    for (size_t i = 0; i < MAX_REGIONS; i++)
        if (regions[i].live && regions[i].base == p)
            return &regions[i];
    return NULL;
}

static rec_heap *heap_containing(const char *p)
{
    for (size_t i = 0; i < MAX_HEAPS; i++)
        if (heaps[i].live && p >= heaps[i].base && p < heaps[i].base + heaps[i].size)
            return &heaps[i];
    return NULL;
}

static bool overlaps_live(const char *p, size_t size)
{
    for (size_t i = 0; i < MAX_REGIONS; i++)
        if (regions[i].live && p < regions[i].base + regions[i].size && regions[i].base < p + size)
            return true;
    return false;
}

static void drop_regions_of(size_t heap)
{
    for (size_t i = 0; i < MAX_REGIONS; i++)
        if (regions[i].live && regions[i].heap == heap)
            regions[i].live = false;
}

/* ---- Core callbacks ---- */

static nvtxDomainHandle_t NVTX_API domain_create(const char *name)
{
    pthread_mutex_lock(&lock);
    calls[REC_DOMAIN_CREATE]++;
    nvtxDomainHandle_t d = NULL;
    for (size_t i = 0; i < domain_count && d == NULL; i++)
        if (strcmp(domains[i].name, name) == 0)
            d = &domains[i];
    if (d == NULL && domain_count < sizeof domains / sizeof domains[0]) {
        d = &domains[domain_count++];
        copy_name(d->name, name);
    }
    pthread_mutex_unlock(&lock);
    return d;
}

static void NVTX_API domain_destroy(nvtxDomainHandle_t d)
{
    (void)d;
}

static int NVTX_API range_push(nvtxDomainHandle_t d, const nvtxEventAttributes_t *attr)
{
    pthread_mutex_lock(&lock);
    calls[REC_RANGE_PUSH]++;
    int level = depth++;
    copy_name(last_domain, d ? d->name : "(null)");
    snprintf(last_range, sizeof last_range, "%s",
             attr->messageType == NVTX_MESSAGE_TYPE_ASCII ? attr->message.ascii : "?");
    pthread_mutex_unlock(&lock);
    return level;
}

static int NVTX_API range_pop(nvtxDomainHandle_t d)
{
    (void)d;
    pthread_mutex_lock(&lock);
    calls[REC_RANGE_POP]++;
    if (depth == 0)
        error("range popped without a push", NULL);
    else
        depth--;
    int level = depth;
    pthread_mutex_unlock(&lock);
    return level;
}

/* ---- Memory-extension callbacks ---- */

static nvtxMemHeapHandle_t NVTX_API heap_register(nvtxDomainHandle_t d, const nvtxMemHeapDesc_t *desc)
{
    (void)d;
    pthread_mutex_lock(&lock);
    calls[REC_HEAP_REGISTER]++;
    nvtxMemHeapHandle_t handle = NULL;
    const nvtxMemVirtualRangeDesc_t *range = desc->typeSpecificDesc;
    if (desc->usage != NVTX_MEM_HEAP_USAGE_TYPE_SUB_ALLOCATOR ||
        desc->type != NVTX_MEM_TYPE_VIRTUAL_ADDRESS || range == NULL || range->size == 0) {
        error("heap description not a sub-allocator over virtual addresses", NULL);
    } else if (heap_containing(range->ptr) != NULL) {
        error("heap registered twice", range->ptr);
    } else {
        for (size_t i = 0; i < MAX_HEAPS && handle == NULL; i++) {
            if (heaps[i].live)
                continue;
            heaps[i] = (rec_heap){.live = true, .base = range->ptr, .size = range->size};
            copy_name(heaps[i].name,
                      desc->messageType == NVTX_MESSAGE_TYPE_ASCII ? desc->message.ascii : NULL);
            handle = (nvtxMemHeapHandle_t)(uintptr_t)(i + 1); /* never NULL */
        }
        if (handle == NULL)
            error("too many heaps for the recorder", range->ptr);
    }
    pthread_mutex_unlock(&lock);
    return handle;
}

/* The heap index behind a handle, or MAX_HEAPS for a bad one (lock held). */
static size_t heap_index(nvtxMemHeapHandle_t handle)
{
    size_t i = (size_t)(uintptr_t)handle - 1;
    if (i >= MAX_HEAPS || !heaps[i].live) {
        error("unknown heap handle", (const void *)handle);
        return MAX_HEAPS;
    }
    return i;
}

static void NVTX_API heap_unregister(nvtxDomainHandle_t d, nvtxMemHeapHandle_t handle)
{
    (void)d;
    pthread_mutex_lock(&lock);
    calls[REC_HEAP_UNREGISTER]++;
    size_t i = heap_index(handle);
    if (i < MAX_HEAPS) {
        drop_regions_of(i);
        heaps[i].live = false;
    }
    pthread_mutex_unlock(&lock);
}

static void NVTX_API heap_reset(nvtxDomainHandle_t d, nvtxMemHeapHandle_t handle)
{
    (void)d;
    pthread_mutex_lock(&lock);
    calls[REC_HEAP_RESET]++;
    size_t i = heap_index(handle);
    if (i < MAX_HEAPS)
        drop_regions_of(i);
    pthread_mutex_unlock(&lock);
}

static void NVTX_API regions_register(nvtxDomainHandle_t d, const nvtxMemRegionsRegisterBatch_t *b)
{
    (void)d;
    pthread_mutex_lock(&lock);
    calls[REC_REGIONS_REGISTER]++;
    size_t h = heap_index(b->heap);
    const nvtxMemVirtualRangeDesc_t *ranges = b->regionDescElements;
    for (size_t k = 0; h < MAX_HEAPS && k < b->regionCount; k++) {
        const char *p = ranges[k].ptr;
        size_t size = ranges[k].size;
        if (b->regionType != NVTX_MEM_TYPE_VIRTUAL_ADDRESS || size == 0) {
            error("region not a virtual-address range", p);
        } else if (p < heaps[h].base || size > heaps[h].size ||
                   (size_t)(p - heaps[h].base) > heaps[h].size - size) {
            error("region outside its heap", p);
        } else if (overlaps_live(p, size)) {
            error("region overlaps a live region", p);
        } else {
            size_t i = 0;
            while (i < MAX_REGIONS && regions[i].live)
                i++;
            if (i == MAX_REGIONS) {
                error("too many regions for the recorder", p);
                break;
            }
            regions[i] = (rec_region){.live = true, .heap = h, .base = p, .size = size};
        }
    }
    pthread_mutex_unlock(&lock);
}

static void NVTX_API regions_resize(nvtxDomainHandle_t d, const nvtxMemRegionsResizeBatch_t *b)
{
    (void)d;
    pthread_mutex_lock(&lock);
    calls[REC_REGIONS_RESIZE]++;
    const nvtxMemVirtualRangeDesc_t *ranges = b->regionDescElements;
    for (size_t k = 0; k < b->regionDescCount; k++) {
        rec_region *r = region_starting(ranges[k].ptr);
        if (r == NULL) {
            error("resize of an unknown region", ranges[k].ptr);
            continue;
        }
        r->live = false; /* so that it does not overlap itself */
        if (ranges[k].size == 0 || overlaps_live(r->base, ranges[k].size)) {
            error("resize to nothing or over a live region", r->base);
            r->live = true;
            continue;
        }
        r->live = true;
        r->size = ranges[k].size;
    }
    pthread_mutex_unlock(&lock);
}

static void NVTX_API regions_unregister(nvtxDomainHandle_t d,
                                        const nvtxMemRegionsUnregisterBatch_t *b)
{
    (void)d;
    pthread_mutex_lock(&lock);
    calls[REC_REGIONS_UNREGISTER]++;
    for (size_t k = 0; k < b->refCount; k++) {
        rec_region *r = b->refType == NVTX_MEM_REGION_REF_TYPE_POINTER
                            ? region_starting(b->refElements[k].pointer)
                            : NULL;
        if (r == NULL)
            error("unregistration of an unknown region", b->refElements[k].pointer);
        else
            r->live = false;
    }
    pthread_mutex_unlock(&lock);
}

static void NVTX_API regions_name(nvtxDomainHandle_t d, const nvtxMemRegionsNameBatch_t *b)
{
    (void)d;
    pthread_mutex_lock(&lock);
    calls[REC_REGIONS_NAME]++;
    for (size_t k = 0; k < b->regionCount; k++) {
        const nvtxMemRegionNameDesc_t *n = &b->regionElements[k];
        rec_region *r = n->regionRefType == NVTX_MEM_REGION_REF_TYPE_POINTER
                            ? region_starting(n->region.pointer)
                            : NULL;
        if (r == NULL || n->nameType != NVTX_MESSAGE_TYPE_ASCII)
            error("naming of an unknown region", n->region.pointer);
        else
            copy_name(r->name, n->name.ascii);
    }
    pthread_mutex_unlock(&lock);
}

/* ---- Injection entry points ---- */

REC_EXPORT int InitializeInjectionNvtx2(NvtxGetExportTableFunc_t get_export_table)
{
    const NvtxExportTableCallbacks *cb = get_export_table(NVTX_ETID_CALLBACKS);
    NvtxFunctionTable table = NULL;
    unsigned size = 0;
    if (cb == NULL || !cb->GetModuleFunctionTable(NVTX_CB_MODULE_CORE2, &table, &size) ||
        size < NVTX_CBID_CORE2_DomainCreateA + 1)
        return 0;
    *table[NVTX_CBID_CORE2_DomainCreateA] = (NvtxFunctionPointer)domain_create;
    *table[NVTX_CBID_CORE2_DomainDestroy] = (NvtxFunctionPointer)domain_destroy;
    *table[NVTX_CBID_CORE2_DomainRangePushEx] = (NvtxFunctionPointer)range_push;
    *table[NVTX_CBID_CORE2_DomainRangePop] = (NvtxFunctionPointer)range_pop;
    pthread_mutex_lock(&lock);
    attached = true;
    pthread_mutex_unlock(&lock);
    return 1;
}

REC_EXPORT int InitializeInjectionNvtxExtension(nvtxExtModuleInfo_t *info)
{
    if (info->moduleId != NVTX_EXT_MODULEID_MEM)
        return 1; /* other extensions stay no-ops */
    if (info->segmentsCount < 1 || info->segments[0].slotCount <= NVTX3EXT_CBID_nvtxMemRegionsName)
        return 0;
    intptr_t *slot = info->segments[0].functionSlots;
    slot[NVTX3EXT_CBID_nvtxMemHeapRegister] = (intptr_t)heap_register;
    slot[NVTX3EXT_CBID_nvtxMemHeapUnregister] = (intptr_t)heap_unregister;
    slot[NVTX3EXT_CBID_nvtxMemHeapReset] = (intptr_t)heap_reset;
    slot[NVTX3EXT_CBID_nvtxMemRegionsRegister] = (intptr_t)regions_register;
    slot[NVTX3EXT_CBID_nvtxMemRegionsResize] = (intptr_t)regions_resize;
    slot[NVTX3EXT_CBID_nvtxMemRegionsUnregister] = (intptr_t)regions_unregister;
    slot[NVTX3EXT_CBID_nvtxMemRegionsName] = (intptr_t)regions_name;
    pthread_mutex_lock(&lock);
    attached = true;
    pthread_mutex_unlock(&lock);
    return 1;
}

/* ---- Queries (nvtx_recorder.h) ---- */

#define LOCKED(type, expr)                                                                       \
    do {                                                                                         \
        pthread_mutex_lock(&lock);                                                               \
        type result_ = (expr);                                                                   \
        pthread_mutex_unlock(&lock);                                                             \
        return result_;                                                                          \
    } while (0)

REC_EXPORT bool rec_attached(void) { LOCKED(bool, attached); }
REC_EXPORT size_t rec_calls(rec_call call) { LOCKED(size_t, calls[call]); }
REC_EXPORT size_t rec_errors(void) { LOCKED(size_t, errors); }
REC_EXPORT const char *rec_first_error(void) { return first_error; }
REC_EXPORT const char *rec_last_domain(void) { return last_domain; }
REC_EXPORT const char *rec_last_range(void) { return last_range; }
REC_EXPORT int rec_range_depth(void) { LOCKED(int, depth); }

REC_EXPORT size_t rec_live_heaps(void)
{
    size_t n = 0;
    pthread_mutex_lock(&lock);
    for (size_t i = 0; i < MAX_HEAPS; i++)
        n += heaps[i].live;
    pthread_mutex_unlock(&lock);
    return n;
}

REC_EXPORT const char *rec_heap_at(const void *p)
{
    pthread_mutex_lock(&lock);
    rec_heap *h = heap_containing(p);
    pthread_mutex_unlock(&lock);
    return h ? h->name : NULL;
}

REC_EXPORT size_t rec_live_regions(void)
{
    size_t n = 0;
    pthread_mutex_lock(&lock);
    for (size_t i = 0; i < MAX_REGIONS; i++)
        n += regions[i].live;
    pthread_mutex_unlock(&lock);
    return n;
}

REC_EXPORT bool rec_accessible(const void *p)
{
    LOCKED(bool, heap_containing(p) == NULL || region_containing(p) != NULL);
}

REC_EXPORT bool rec_is_region(const void *p, size_t size)
{
    pthread_mutex_lock(&lock);
    rec_region *r = region_starting(p);
    bool exact = r != NULL && r->size == size;
    pthread_mutex_unlock(&lock);
    return exact;
}

REC_EXPORT const char *rec_region_name(const void *p)
{
    pthread_mutex_lock(&lock);
    rec_region *r = region_containing(p);
    pthread_mutex_unlock(&lock);
    return r ? r->name : NULL;
}
