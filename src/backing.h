/* src/backing.h - the contract between an arena and the memory under it.
 *
 * A backing gives an arena its memory and takes it back: pageable host memory (backing_host.c),
 * page-locked host memory and device memory (cuda/pinned.c, cuda/device.c), a block of another
 * arena's memory (lanes, lane.c). Arena logic does not care which. Everything a backing learns of
 * its arena and everything it tells the arena is one struct, na_memory, which the arena header
 * embeds; a backing never sees the header itself (struct nalloc_arena, internal.h), and never
 * touches an offset, a mark, a statistic or a lock. So a new backing (CUDA virtual memory, host
 * memory placed on a NUMA node) is one file that fills an na_backing table, plus its line in
 * na_backing_for (backing.c).
 *
 * The rules a backing follows:
 *  - create runs once, before the arena is alive. The arena has set the first group of fields of
 *    na_memory and zeroed the rest (secret_fd is -1). create sets base and capacity, and whatever
 *    else of the second group applies to it; on failure it leaves nothing reserved and returns
 *    the status, with its cause noted (na_cause; errno kept for NALLOC_ERR_OS).
 *  - destroy runs once, after the destroy-time wipe, and releases everything create reserved.
 *  - zero may run on any thread, for ranges the arena has handed out: under the arena's control
 *    lock (wipes) or not (a zeroed allocation). It zeroes in a way the compiler cannot elide.
 *  - The hooks, if create set them, run on the arena's paths: on_alloc on every allocation (it
 *    must cost next to nothing when it has nothing to do, and create leaves it NULL then), and
 *    on_release at every move of the offset down. Each may run on any thread, concurrently with
 *    the other and with itself.
 */
#ifndef NALLOC_BACKING_H
#define NALLOC_BACKING_H

#include "common.h"

typedef struct na_backing na_backing;

/* The memory under one arena: in the arena header (nalloc_arena.memory), for its whole life. */
struct na_memory {
    /* -- Set by the arena before create; read-only to the backing but for config. -- */
    const na_backing *backing;      /* the backing that fills this */
    nalloc_arena_config *config;    /* the arena's request: create settles what it left open
                                       (capacity 0 of a fractional device arena, pin_chunk 0) and
                                       adds the flags a substitute needs (a pinned arena that fell
                                       back to locked host memory); the arena reports the result */
    const char *name;               /* the arena's name, for causes and tools */
    const na_memory *parent;        /* lanes: the memory this is a block of; NULL otherwise */
    size_t parent_offset;           /* lanes: bytes from the parent's base to this base */
    const size_t *offset;           /* the arena's offset: bytes handed out, padding included
                                       (atomic loads only) */

    /* -- Filled by create. -- */
    uintptr_t base;        /* address of the first usable byte, host or device */
    size_t capacity;       /* usable bytes; base + capacity does not wrap */
    void *map_start;       /* host: first byte of the reservation, leading guard included */
    size_t reserved;       /* bytes of address space or device memory held */
    size_t guard_size;     /* bytes of PROT_NONE on each side (host) */
    int secret_fd;         /* memfd_secret descriptor, or -1 */
    unsigned in_force;     /* NALLOC_FLAG_* features actually in force */
    bool guard_pages;      /* guards are in place */
    bool pinned;           /* registered with CUDA */
    bool pin_fallback;     /* PINNED requested, locked host memory given */
    bool huge_deferred;    /* MADV_HUGEPAGE left to the prefault helper, stretch by stretch just
                              before it faults each in (prefault.c), not applied at creation */
    double pin_seconds;    /* time spent in cudaHostRegister */
    void *state;           /* the backing's own (device: the block's buffer id), or NULL */
    void *tool;            /* NVTX heap (cuda/nvtx.c): NULL when no tool is attached */
    /* Told of each block handed out (again, at its new size, when it grows in place), and of each
     * release of everything from `offset` up (rollback, reset, wipe, free_last, a shrink in
     * place); NULL: not told. Device arenas describe their blocks to tools through these (NVTX
     * memory regions). */
    void (*on_alloc)(const na_memory *m, size_t offset, size_t size);
    void (*on_release)(const na_memory *m, size_t offset);
};

struct na_backing {
    const char *name;
    /* Give the memory as m->config asks (rules above). */
    nalloc_status (*create)(na_memory *m);
    /* Release everything create reserved. */
    void (*destroy)(na_memory *m);
    /* Zero bytes [offset, offset + length) from the base. `stream` is a cudaStream_t for device
     * and pinned memory (NULL: synchronous; cuda/wipe_async.c), ignored elsewhere. */
    nalloc_status (*zero)(const na_memory *m, size_t offset, size_t length, void *stream);
    bool fresh_is_zero;   /* memory never handed out reads as zero */
    bool host_accessible; /* the CPU may read and write the memory */
};

/* Features that the OS or the build may refuse; the rest of NALLOC_FLAG_* are behaviours. */
#define NA_FEATURE_FLAGS                                                                         \
    (NALLOC_FLAG_POPULATE | NALLOC_FLAG_HUGEPAGES | NALLOC_FLAG_LOCK | NALLOC_FLAG_NODUMP |      \
     NALLOC_FLAG_WIPEONFORK | NALLOC_FLAG_SECRET | NALLOC_FLAG_PREFAULT_AHEAD)

/* The backing for `memory`, or NULL when this build lacks it (or memory is not one). backing.c. */
const na_backing *na_backing_for(nalloc_memory memory);

extern const na_backing na_backing_host; /* backing_host.c */
#if NALLOC_HAVE_CUDA
extern const na_backing na_backing_pinned; /* cuda/pinned.c */
extern const na_backing na_backing_device; /* cuda/device.c */
#endif

#endif /* NALLOC_BACKING_H */
