/* tests/nvtx_recorder.h - a stand-in NVTX tool for tests on machines without one.
 *
 * nvtx_recorder.c builds into a shared library that NVTX loads as its injection library when
 * NVTX_INJECTION64_PATH names it, as compute-sanitizer and Nsight Systems are loaded. It keeps
 * what a memory checker keeps: the heaps and regions that were registered, so a test can ask
 * what memcheck would decide about an address. It also counts calls and checks the protocol: a
 * region that overlaps a live one, an unregistration of a pointer that names no region, a region
 * outside its heap, a pop without a push. Every such violation counts as an error.
 */
#ifndef NALLOC_TESTS_NVTX_RECORDER_H
#define NALLOC_TESTS_NVTX_RECORDER_H

#include <stdbool.h>
#include <stddef.h>

typedef enum rec_call {
    REC_DOMAIN_CREATE,
    REC_RANGE_PUSH,
    REC_RANGE_POP,
    REC_HEAP_REGISTER,
    REC_HEAP_UNREGISTER,
    REC_HEAP_RESET,
    REC_REGIONS_REGISTER,
    REC_REGIONS_RESIZE,
    REC_REGIONS_UNREGISTER,
    REC_REGIONS_NAME,
    REC_CALL_COUNT
} rec_call;

/* True once NVTX has initialized the recorder as its tool. */
bool rec_attached(void);
/* Calls of each kind so far. */
size_t rec_calls(rec_call call);
/* Protocol violations so far; the first one's description. */
size_t rec_errors(void);
const char *rec_first_error(void);

/* The name of the domain the last range was pushed in, and that range's message. */
const char *rec_last_domain(void);
const char *rec_last_range(void);
/* Ranges pushed and not yet popped. */
int rec_range_depth(void);

/* Heaps registered and not unregistered. */
size_t rec_live_heaps(void);
/* Does a live heap contain `p`? Its name (the heap's message), or NULL. */
const char *rec_heap_at(const void *p);
/* Regions registered and live, across all heaps. */
size_t rec_live_regions(void);
/* memcheck's view of one byte: true when `p` is inside a live region, or inside no heap at all. */
bool rec_accessible(const void *p);
/* Is [p, p + size) exactly one live region? */
bool rec_is_region(const void *p, size_t size);
/* The name given to the live region containing `p`, or NULL. */
const char *rec_region_name(const void *p);

#endif /* NALLOC_TESTS_NVTX_RECORDER_H */
