/* nalloc/nalloc.h - the public host API of nalloc (C11, usable from C++ and CUDA).
 *
 * nalloc is an arena allocator for GPU zero-knowledge provers. A prover runs the same phases on
 * every proof: it builds gigabytes of polynomial vectors, keeps secret witness data, and makes
 * short-lived scratch buffers. nalloc gives each of those its own arena: one large reservation,
 * made once and reused for every proof, from which an allocation is a single atomic bump of an
 * offset. Nothing is returned to the OS between proofs, so nothing page-faults back in; every
 * block is aligned for NTT/FFT kernels; the witness arena is zeroed in one pass before it is
 * reused or released.
 *
 * Lifetimes are coarse on purpose. Blocks are not freed one by one: a phase takes a mark, and a
 * rollback to that mark releases everything allocated after it; a reset releases everything; a
 * wipe zeroes everything ever handed out and then resets. The most recent block can be freed or
 * resized in place, which is what a growing vector or a Rust GlobalAlloc needs.
 *
 * Thread safety. nalloc_alloc*, nalloc_realloc, nalloc_free_last, nalloc_resize_last,
 * nalloc_mark_get and nalloc_arena_stats may be called from any number of threads at once on the
 * same arena (tests/test_soak.c, under ThreadSanitizer too). Bytes one thread gives back with
 * free_last and another is handed are ordered as free and malloc would order them. A mark taken
 * while another thread frees its last block may point past the offset afterwards; a rollback to
 * it is then refused, or releases what was allocated after it, never an older live block.
 * nalloc_rollback, nalloc_reset, nalloc_wipe and nalloc_arena_destroy are phase boundaries: the
 * caller guarantees that no other thread is using the arena's memory or allocating from it while
 * they run (they serialize among themselves, so two of them never corrupt the arena, but a block
 * handed out concurrently with a reset may be handed out again after it).
 *
 * Errors. Functions that return a pointer return NULL on failure and set the thread-local
 * nalloc_last_error(); functions that return nalloc_status return it directly (and set
 * nalloc_last_error() too). No input makes nalloc abort, and a refused call leaves the arena as it
 * was.
 */
#ifndef NALLOC_NALLOC_H
#define NALLOC_NALLOC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define NALLOC_VERSION_MAJOR 0
#define NALLOC_VERSION_MINOR 1
#define NALLOC_VERSION_PATCH 0

#if defined(NALLOC_STATIC_DEFINE) || !defined(__GNUC__)
#define NALLOC_API
#else
#define NALLOC_API __attribute__((visibility("default")))
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------------------------------------
 * Status codes
 * ------------------------------------------------------------------------------------------- */

typedef enum nalloc_status {
    NALLOC_OK = 0,
    NALLOC_ERR_INVALID,     /* a bad argument or configuration: NULL, zero size, bad alignment */
    NALLOC_ERR_NOMEM,       /* the arena has no room left for this request */
    NALLOC_ERR_OS,          /* the OS refused (mmap, madvise, mlock...); errno is kept */
    NALLOC_ERR_CUDA,        /* a CUDA call failed; nalloc_cuda_error_string() says which */
    NALLOC_ERR_NO_DEVICE,   /* no CUDA driver or no device */
    NALLOC_ERR_UNSUPPORTED, /* not built in, or the kernel lacks it */
    NALLOC_ERR_STATE        /* stale mark, wrong arena, destroyed object, not the last block */
} nalloc_status;

/* A static, human-readable description of `status`; never NULL. */
NALLOC_API const char *nalloc_strerror(nalloc_status status);

/* The reason for the most recent failure on this thread: the last NULL returned to it, or the
 * last non-OK status. Successful calls leave it unchanged. */
NALLOC_API nalloc_status nalloc_last_error(void);

/* This thread's message for its most recent failure, naming the call and the cause (for example
 * "nalloc_arena_destroy: arena already destroyed"); "" when this thread has had no failure. The
 * text stays valid until this thread's next failing nalloc call. Never NULL. */
NALLOC_API const char *nalloc_last_error_message(void);

/* ---------------------------------------------------------------------------------------------
 * Arena configuration
 * ------------------------------------------------------------------------------------------- */

/* What an arena holds; selects the defaults nalloc_arena_config_init fills in. */
typedef enum nalloc_kind {
    NALLOC_KIND_POLY = 0, /* polynomial vectors: huge pages, 4 KiB alignment for large vectors */
    NALLOC_KIND_WITNESS,  /* secret witness data: locked, no-dump, wipe-on-fork, wiped on destroy */
    NALLOC_KIND_SCRATCH,  /* per-phase temporaries */
    NALLOC_KIND_COUNT
} nalloc_kind;

/* Where an arena's memory lives. */
typedef enum nalloc_memory {
    NALLOC_MEMORY_HOST = 0, /* pageable host memory: one mmap reservation with guard pages */
    NALLOC_MEMORY_PINNED,   /* the same mapping, page-locked with cudaHostRegister */
    NALLOC_MEMORY_DEVICE    /* one cudaMalloc block on config.device */
} nalloc_memory;

/* Features an arena may ask for (nalloc_arena_config.flags). Each feature that the OS or the build
 * refuses is reported in nalloc_stats.missing; with NALLOC_FLAG_STRICT it fails creation instead. */
enum nalloc_flag {
    NALLOC_FLAG_POPULATE = 1u << 0,        /* prefault every page at creation (MADV_POPULATE_WRITE) */
    NALLOC_FLAG_HUGEPAGES = 1u << 1,       /* MADV_HUGEPAGE on the mapping (default for POLY) */
    NALLOC_FLAG_LOCK = 1u << 2,            /* mlock2(MLOCK_ONFAULT): never swapped (WITNESS) */
    NALLOC_FLAG_NODUMP = 1u << 3,          /* MADV_DONTDUMP: not in core dumps (WITNESS) */
    NALLOC_FLAG_WIPEONFORK = 1u << 4,      /* a forked child never sees the contents: it reads
                                              zeros (MADV_WIPEONFORK), or, for a SECRET arena, has
                                              no mapping there (MADV_DONTFORK), and the arena and
                                              its lanes are destroyed in the child (WITNESS) */
    NALLOC_FLAG_WIPE_ON_DESTROY = 1u << 5, /* nalloc_wipe before the memory is released (WITNESS) */
    NALLOC_FLAG_WIPE_AT_EXIT = 1u << 6,    /* wiped at process exit if still alive (WITNESS) */
    NALLOC_FLAG_SECRET = 1u << 7,          /* memfd_secret backing: out of the kernel direct map;
                                              host only (PINNED: NALLOC_ERR_UNSUPPORTED) */
    NALLOC_FLAG_STRICT = 1u << 8,          /* a refused feature fails creation */
    NALLOC_FLAG_PIN_FALLBACK = 1u << 9,    /* PINNED without a driver: locked host memory instead */
    NALLOC_FLAG_NORESERVE = 1u << 10,      /* MAP_NORESERVE: address space only (sizing dry runs) */
    NALLOC_FLAG_THREAD_CACHE = 1u << 11,   /* each thread allocates from a private chunk it took
                                              from the arena with one atomic */
    NALLOC_FLAG_PREFAULT_AHEAD = 1u << 12  /* pages ahead of the offset are faulted in by a
                                              helper thread, off the allocating thread */
};

/* Everything nalloc_arena_create needs. Always fill it with nalloc_arena_config_init first, then
 * change the fields you care about: fields added in later versions get their defaults that way. */
typedef struct nalloc_arena_config {
    nalloc_kind kind;       /* selects defaults; WITNESS also selects the secure-wipe discipline */
    nalloc_memory memory;   /* where the memory lives */
    size_t capacity;        /* bytes the arena can hand out; the mapping is rounded up to pages */
    size_t default_align;   /* bytes, power of two: alignment of nalloc_alloc below the threshold
                               (default 64 on the host, 256 on the device) */
    size_t large_threshold; /* bytes: nalloc_alloc requests of at least this size use large_align
                               (default 1 MiB, NALLOC_LARGE_THRESHOLD) */
    size_t large_align;     /* bytes, power of two (default 4096, NALLOC_LARGE_ALIGN) */
    unsigned flags;         /* NALLOC_FLAG_* (defaults depend on kind) */
    size_t guard_size;      /* bytes of PROT_NONE on each side of a host mapping; rounded up to
                               the page size; 0 means one page */
    void *fixed_address;    /* host: place the arena's first byte exactly here (MAP_FIXED_NOREPLACE;
                               a clash fails with NALLOC_ERR_OS/EEXIST); NULL: anywhere */
    size_t redzone;         /* bytes of poisoned gap after every block while a memory checker
                               (nalloc_checker) watches the arena, so an overflow into the next
                               block is reported; ignored otherwise; 0: none */
    int device;             /* device: CUDA device ordinal (default 0) */
    double device_fraction; /* device, when capacity is 0: this fraction (0, 1] of free memory */
    size_t device_slack;    /* device: bytes always left free for kernel loading (default 256 MiB) */
    size_t pin_chunk;       /* pinned: bytes registered per cudaHostRegister call (default 1 GiB) */
    const char *name;       /* for statistics and NVTX; copied; NULL: named after the kind */
} nalloc_arena_config;

/* Fill `config` with the defaults for `kind` and `memory`, and the given capacity in bytes. */
NALLOC_API void nalloc_arena_config_init(nalloc_arena_config *config, nalloc_kind kind,
                                         nalloc_memory memory, size_t capacity);

/* ---------------------------------------------------------------------------------------------
 * Arenas
 * ------------------------------------------------------------------------------------------- */

typedef struct nalloc_arena nalloc_arena;

/* Reserve an arena as `config` describes. On success *out is the arena; on failure *out is NULL
 * and nothing is left reserved. */
NALLOC_API nalloc_status nalloc_arena_create(const nalloc_arena_config *config, nalloc_arena **out);

/* Release the arena and its memory. An arena with NALLOC_FLAG_WIPE_ON_DESTROY (every witness
 * arena, by default) is wiped first. A destroyed arena is refused with NALLOC_ERR_STATE by every
 * later call, as long as its handle slot has not been reused by a newer arena. An arena that
 * belongs to a nalloc_ctx is destroyed with the context, not alone (NALLOC_ERR_STATE). */
NALLOC_API nalloc_status nalloc_arena_destroy(nalloc_arena *arena);

/* Allocate `size` bytes at the arena's policy alignment: default_align, or large_align when size
 * is at least large_threshold. NULL on failure (zero size: NALLOC_ERR_INVALID; no room:
 * NALLOC_ERR_NOMEM). A failed request consumes nothing. Never an overlapping or out-of-bounds
 * block, whatever the input. The memory is not zeroed (see nalloc_alloc_zeroed). */
NALLOC_API void *nalloc_alloc(nalloc_arena *arena, size_t size);

/* Allocate `size` bytes aligned to `align`, any power of two (NALLOC_ERR_INVALID otherwise). An
 * alignment larger than the room left fails with NALLOC_ERR_NOMEM. */
NALLOC_API void *nalloc_alloc_aligned(nalloc_arena *arena, size_t size, size_t align);

/* calloc for arenas: count * size bytes (overflow: NALLOC_ERR_INVALID) at `align` (0: the policy
 * alignment), reading as zero. Only bytes that were handed out before (and not wiped since) are
 * cleared; fresh pages are zero already. Device arenas are cleared by the wipe kernel on the
 * legacy default stream, waited for before this returns. */
NALLOC_API void *nalloc_alloc_zeroed(nalloc_arena *arena, size_t count, size_t size, size_t align);

/* Give back the most recent block: `ptr` with the `size` it was allocated with. Refused with
 * NALLOC_ERR_STATE when ptr + size is not where the arena's offset is (not the last block, or a
 * wrong size), or when a mark was taken after the block. The alignment padding in front of the
 * block stays in use until the next rollback or reset, so blocks can be given back one after the
 * other in LIFO order only where no padding separates them (sizes that are multiples of the
 * alignment, as vectors of field elements usually are). As with free(), ptr must be a pointer the
 * arena returned: an interior pointer whose range happens to end at the offset is not told apart
 * from a block. */
NALLOC_API nalloc_status nalloc_free_last(nalloc_arena *arena, void *ptr, size_t size);

/* Grow or shrink the most recent block in place, from old_size to new_size bytes (new_size > 0).
 * NALLOC_ERR_STATE when it is not the last block (or a mark was taken after it), NALLOC_ERR_NOMEM
 * when the arena has no room to grow; the block is unchanged on failure. */
NALLOC_API nalloc_status nalloc_resize_last(nalloc_arena *arena, void *ptr, size_t old_size,
                                            size_t new_size);

/* realloc for host and pinned arenas: resize in place when ptr is the most recent block, otherwise
 * allocate new_size bytes at `align` (0: policy), copy min(old_size, new_size) bytes and leave the
 * old block in place until the next rollback or reset. ptr == NULL allocates. NULL on failure, and
 * the old block is untouched. */
NALLOC_API void *nalloc_realloc(nalloc_arena *arena, void *ptr, size_t old_size, size_t new_size,
                                size_t align);

/* A position in an arena to roll back to. The fields are private. */
typedef struct nalloc_mark {
    uint64_t arena_uid; /* private: which arena */
    uint64_t epoch;     /* private: rollbacks, resets and wipes done before the mark was taken */
    uint64_t generation;/* private: resets and wipes done before the mark was taken */
    size_t offset;      /* private: bytes in use when the mark was taken */
} nalloc_mark;

/* The arena's current position. A NULL or destroyed arena gives a mark no rollback accepts. */
NALLOC_API nalloc_mark nalloc_mark_get(nalloc_arena *arena);

/* Release everything allocated since `mark` was taken. Refused with NALLOC_ERR_STATE (arena
 * untouched) when the mark is stale: taken before a reset or wipe, taken on another arena, or
 * taken at a position that an earlier rollback already released. Rolling back to the same mark
 * again is allowed. */
NALLOC_API nalloc_status nalloc_rollback(nalloc_arena *arena, nalloc_mark mark);

/* Release everything; every mark taken so far becomes stale. The memory is not zeroed. Refused
 * with NALLOC_ERR_STATE (arena untouched) while lanes split from the arena are alive. */
NALLOC_API nalloc_status nalloc_reset(nalloc_arena *arena);

/* Zero, in one pass, every byte handed out since the last wipe, up to the high-water mark rather
 * than just the current offset, with a store the compiler cannot elide (explicit_bzero on the
 * host, a memset kernel on the device, synchronized before returning); then reset. */
NALLOC_API nalloc_status nalloc_wipe(nalloc_arena *arena);

/* ---------------------------------------------------------------------------------------------
 * Lanes: one arena per worker thread, at places that do not depend on thread timing
 * ------------------------------------------------------------------------------------------- */

/* Split `parent` into `count` lanes, stored in lanes[0..count-1]: arenas whose memory is
 * consecutive slices of one block of the parent's, for one worker thread each. A lane is a full
 * arena: every call in this header works on it, with its own offset, marks, statistics and layout
 * digest. Threads that each allocate from their own lane share no atomic, and each lane's layout
 * depends only on the requests made to it, however the threads interleave.
 *
 * Layout. The block is one allocation from the parent (so the parent's layout stays a function
 * of its own requests), aligned to the lane alignment: the largest of the page size and the
 * parent's large_align and default_align. Lane i starts i * stride bytes into it, where stride is
 * lane_capacity rounded up to the lane alignment, and can hand out exactly lane_capacity bytes.
 * lane_capacity 0 shares the room the parent has left equally, in whole multiples of the lane
 * alignment. Lane i is named "<parent name>.<i>".
 *
 * Lanes inherit the parent's configuration (kind, alignment policy, flags) and the protections in
 * force on its memory: a witness lane is locked, kept out of dumps and forks, and wiped on
 * destroy and at exit like its parent. No guard pages separate lanes from each other.
 *
 * The parent meanwhile. Its memory under a live lane is the lane's: while any of its lanes is
 * alive, the parent refuses nalloc_reset, nalloc_wipe and a rollback to a mark below the lanes
 * (NALLOC_ERR_STATE), and nalloc_free_last cannot reach the block; it can still allocate above
 * it. Destroy lanes with nalloc_arena_destroy, in any order; the block stays allocated in the
 * parent until the parent's next rollback below it, reset or wipe. Destroying the parent (or its
 * context) destroys its live lanes first, and the parent's own wipe then covers their memory.
 *
 * Device (and pinned) arenas split too: a device lane is wiped through the parent's device wipe.
 * Lanes can be split again. The split is a phase boundary of the parent (no other thread may use
 * the parent while it runs). All or nothing: on failure no lane exists, no entry of lanes[]
 * points to one, and the parent can serve what it could before. NALLOC_ERR_INVALID for a NULL
 * argument or a count of 0, NALLOC_ERR_NOMEM when the lanes do not fit, NALLOC_ERR_STATE for a
 * destroyed parent. */
NALLOC_API nalloc_status nalloc_arena_split(nalloc_arena *parent, size_t count,
                                            size_t lane_capacity, nalloc_arena **lanes);

/* ---------------------------------------------------------------------------------------------
 * Statistics
 * ------------------------------------------------------------------------------------------- */

#define NALLOC_STATS_VERSION 1

typedef struct nalloc_stats {
    uint32_t version;       /* NALLOC_STATS_VERSION of the library that filled it */
    uint32_t struct_size;   /* sizeof(nalloc_stats) of the library that filled it */
    const char *name;       /* the arena's name; valid while the arena lives */
    nalloc_kind kind;
    nalloc_memory memory;
    size_t capacity;        /* bytes the arena can hand out */
    size_t used;            /* bytes handed out now, alignment padding included: the offset less
                               cached and deferred */
    size_t high_water;      /* most bytes in use at once since creation */
    size_t allocations;     /* successful allocation calls since creation */
    size_t failures;        /* requests that returned NULL (or were refused), whatever the reason */
    size_t padding;         /* alignment bytes skipped by successful allocations since creation */
    size_t resets;          /* nalloc_reset calls (wipes excluded) */
    size_t rollbacks;       /* successful nalloc_rollback calls */
    size_t wipes;           /* nalloc_wipe calls, including the one on destroy */
    size_t wiped_bytes;     /* bytes zeroed by those wipes */
    size_t reserved;        /* bytes of address space or device memory held, guards included */
    size_t guard_size;      /* bytes of PROT_NONE on each side (0 for device arenas) */
    uintptr_t base;         /* address of the first byte (a device address for device arenas) */
    uint64_t layout_digest; /* hash of every (offset, size) handed out since creation, and of
                               the rollbacks, resets and wipes between them: equal sequences of
                               requests give equal digests, run after run */
    double pin_seconds;     /* pinned: seconds cudaHostRegister took at creation */
    unsigned requested;     /* NALLOC_FLAG_* the arena was created with */
    unsigned missing;       /* requested features that are not in force */
    bool guard_pages;       /* PROT_NONE guards on both sides are in place */
    bool populated;         /* every page was prefaulted at creation */
    bool huge_pages;        /* MADV_HUGEPAGE was accepted */
    bool locked;            /* the pages are locked (never swapped) */
    bool no_dump;           /* MADV_DONTDUMP was accepted */
    bool wipe_on_fork;      /* MADV_WIPEONFORK was accepted */
    bool wipe_on_destroy;   /* the arena is wiped before its memory is released */
    bool secret;            /* memfd_secret backing: out of the kernel's direct map */
    bool pinned;            /* page-locked and registered with CUDA */
    bool pin_fallback;      /* PINNED was asked for, but it is locked host memory (no driver) */
    unsigned checkers;      /* NALLOC_CHECKER_* told about every block (host and pinned arenas) */
    size_t redzone;         /* bytes of poisoned gap kept after each block: config.redzone while a
                               checker watches the arena, 0 otherwise (the config is then ignored) */
    size_t redzone_bytes;   /* bytes of those gaps reserved by successful allocations since creation
                               (like padding: counted in used while the block lives) */
    size_t cached;          /* bytes reserved by threads' private chunks (NALLOC_FLAG_THREAD_CACHE,
                               the malloc family) and not handed out yet: in the offset, not in
                               used; at most one chunk per thread that allocated, plus a few
                               remainders of exited threads kept for reuse */
    size_t deferred;        /* bytes of freed malloc-family blocks waiting for the blocks above
                               them to be freed; not in used */
    size_t live_blocks;     /* malloc-family blocks allocated here and not freed yet */
    size_t fallbacks;       /* malloc-family requests routed here that the system allocator
                               served because this arena had no room */
} nalloc_stats;

/* Memory checkers that can see inside an arena (nalloc_stats.checkers). Without them an arena is
 * one big mapping to AddressSanitizer and Valgrind, and an overflow from one block into free space
 * or a read after a reset goes unnoticed. README, "Sanitizers, Valgrind and fuzzing". */
enum nalloc_checker {
    NALLOC_CHECKER_ASAN = 1u << 0,    /* built with AddressSanitizer: free space is poisoned */
    NALLOC_CHECKER_VALGRIND = 1u << 1 /* built with NALLOC_VALGRIND and running under Valgrind:
                                         the arena is a Memcheck mempool */
};

/* Fill *stats with a snapshot of the arena. Concurrent allocations may or may not be counted. */
NALLOC_API nalloc_status nalloc_arena_stats(const nalloc_arena *arena, nalloc_stats *stats);

/* Print the arena's statistics to `stream` (NULL: stderr), one line per group of fields. This is
 * also what NALLOC_VERBOSE=1 in the environment prints when an arena is destroyed. */
NALLOC_API nalloc_status nalloc_arena_print_stats(const nalloc_arena *arena, FILE *stream);

/* ---------------------------------------------------------------------------------------------
 * Routes and the malloc family: a whole library's allocations in an arena
 *
 * Libraries that call malloc and free themselves (and Rust's global allocator, rust/) are served
 * from an arena by routing: while a route is pushed on a thread, the malloc family on that thread
 * allocates from the route's arena. Blocks are freed one by one, without a size, in any order, from
 * any thread, at any time: a free of an arena's newest block gives it back at once, a free of an
 * older one is remembered and given back as soon as every block above it is free, so frees in
 * allocation order or in reverse reclaim everything. Each thread allocates from a private chunk
 * of the arena (no shared cache line on the path). A free touches only the block's 32-byte header,
 * never its bytes (a witness arena's wipe zeroes both).
 *
 *     NALLOC_ROUTE_SCOPE(scratch);          // until the end of this block...
 *     char *s = strdup(name);                // ...this thread's mallocs come from `scratch`
 *     library_call();                        //    (with the override library, or with
 *     free(s);                               //     nalloc_malloc/nalloc_free called directly)
 *
 * While malloc-family blocks of an arena are alive, nalloc_rollback, nalloc_reset, nalloc_wipe and
 * nalloc_arena_destroy refuse it (NALLOC_ERR_STATE), so no live block's memory is ever reused;
 * nalloc_arena_destroy_deferred destroys it when its last block is freed. Blocks alive in a lane
 * make its parent (and the parent's context) refuse destroy too. docs/routing.md.
 * ------------------------------------------------------------------------------------------- */

/* The live host or pinned arena (or lane: the innermost) whose range [base, base + capacity)
 * holds `ptr`, or NULL. A few nanoseconds; safe while other threads create and destroy arenas (an
 * arena being destroyed meanwhile may still be returned). An arena retired by
 * nalloc_arena_destroy_deferred is returned until its last block is freed. */
NALLOC_API nalloc_arena *nalloc_owner(const void *ptr);

/* Route this thread's malloc-family allocations to `arena` until the matching nalloc_route_pop.
 * Routes nest; the innermost wins. NULL routes to the system allocator (a library stepping out of
 * its caller's route). NALLOC_ERR_INVALID for a device arena (blocks carry host-side headers),
 * NALLOC_ERR_STATE for a destroyed one, NALLOC_ERR_NOMEM when 16 routes are pushed already. */
NALLOC_API nalloc_status nalloc_route_push(nalloc_arena *arena);

/* End the innermost route. NALLOC_ERR_STATE when none is pushed. */
NALLOC_API nalloc_status nalloc_route_pop(void);

/* The arena this thread's malloc-family allocations go to now: the innermost route's, or (no
 * route pushed) the process's default route (NALLOC_ROUTE, override library); NULL for the system
 * allocator. */
NALLOC_API nalloc_arena *nalloc_route_current(void);

/* The process-wide default route: threads with no route pushed allocate from `arena` (NULL: the
 * system allocator, the default). The override library sets it from NALLOC_ROUTE. The arena must
 * outlive every thread that may allocate through it. */
NALLOC_API nalloc_status nalloc_route_set_default(nalloc_arena *arena);

/* Routes pushed on this thread and not popped. */
NALLOC_API size_t nalloc_route_depth(void);

/* A route for the rest of a C block, popped on every way out of it (GCC and Clang):
 *     { NALLOC_ROUTE_SCOPE(arena); ...; return x; }   // popped at the return, too
 * If the push is refused the scope routes nothing and pops nothing. */
typedef struct nalloc_route_scope {
    nalloc_status status; /* the push's status */
    size_t depth;         /* route depth after the push */
} nalloc_route_scope;
NALLOC_API nalloc_route_scope nalloc_route_scope_begin(nalloc_arena *arena);
NALLOC_API void nalloc_route_scope_end(nalloc_route_scope *scope);
#define NALLOC_ROUTE_CONCAT_(a, b) a##b
#define NALLOC_ROUTE_CONCAT(a, b) NALLOC_ROUTE_CONCAT_(a, b)
#define NALLOC_ROUTE_SCOPE(arena)                                                                \
    __attribute__((cleanup(nalloc_route_scope_end))) nalloc_route_scope NALLOC_ROUTE_CONCAT(     \
        nalloc_route_scope_, __LINE__) = nalloc_route_scope_begin(arena)

/* malloc, calloc, aligned_alloc, posix_memalign and free, routed. With a route pushed (or a
 * default route), a request is served from the route's arena at its policy alignment (at least
 * 16 bytes; aligned_alloc: `align`); when that arena has no room, or without a route, by the
 * system allocator. They fail only when the system allocator does (NULL and ENOMEM), or for bad
 * arguments as the C standard says (aligned_alloc: NULL and EINVAL for an alignment that is not a
 * power of two; posix_memalign: EINVAL also for one that is not a multiple of sizeof(void *);
 * calloc: NULL and ENOMEM when count * size overflows). malloc(0) returns a unique pointer. */
NALLOC_API void *nalloc_malloc(size_t size);
NALLOC_API void *nalloc_calloc(size_t count, size_t size);
NALLOC_API void *nalloc_aligned_alloc(size_t align, size_t size);
NALLOC_API int nalloc_posix_memalign(void **out, size_t align, size_t size);

/* free for both worlds: an arena block (found by address, whatever thread or route made it) goes
 * back to its arena; anything else to the system allocator. NULL is ignored. A pointer inside an
 * arena that is not a live malloc-family block (a nalloc_alloc block, an interior pointer, a
 * block freed twice) is not freed: nalloc_last_error() says why (NALLOC_ERR_INVALID, _STATE). */
NALLOC_API void nalloc_free(void *ptr);

/* As nalloc_free for arena blocks, returning true; false (and nothing done) for a pointer no
 * arena holds, which the caller frees with its own fallback (Rust's global allocator does). */
NALLOC_API bool nalloc_free_if_owned(void *ptr);

/* realloc for the malloc family (m for malloc: nalloc_realloc is the arena-level one, which takes
 * sizes). NULL allocates; size 0 frees and returns NULL, as glibc does. An arena block is resized
 * in place when it is the newest block of its thread's chunk or the arena's last stretch; else
 * the new block comes from the current route (or the system), the bytes are copied and the old
 * block freed. A system block stays with the system allocator. On failure NULL, the old block
 * untouched. */
NALLOC_API void *nalloc_mrealloc(void *ptr, size_t size);

/* Resize an arena block in place: NALLOC_OK, or NALLOC_ERR_NOMEM when it cannot grow where it is
 * (not the newest block of its chunk, or no room), NALLOC_ERR_INVALID when ptr is no arena
 * block. The block is unchanged on failure. */
NALLOC_API nalloc_status nalloc_resize_in_place(void *ptr, size_t size);

/* The bytes an arena block holds (its requested size), or what the system allocator says of its
 * own blocks (malloc_usable_size); 0 for NULL. */
NALLOC_API size_t nalloc_usable_size(const void *ptr);

/* For allocators with a fallback of their own (Rust's nalloc::Global): a block from the current
 * route's arena (`size` bytes at `align`, 0: its policy; at least 16), zeroed by the _zeroed form
 * (only bytes that may hold old data are cleared), freed by nalloc_free or nalloc_free_if_owned.
 * NULL when there is no route (or a NULL route), the alignment is not a power of two, or the
 * arena has no room (counted in its fallbacks): the caller then serves the request itself. */
NALLOC_API void *nalloc_routed_alloc(size_t size, size_t align);
NALLOC_API void *nalloc_routed_alloc_zeroed(size_t size, size_t align);

/* A malloc-family block from `arena` itself, whatever the route: `size` bytes at `align` (0: the
 * policy alignment; at least 16), freed by nalloc_free. NULL with nalloc_last_error() set
 * (NALLOC_ERR_NOMEM when the arena has no room): no fallback. */
NALLOC_API void *nalloc_arena_malloc(nalloc_arena *arena, size_t size, size_t align);

/* Destroy `arena` now if no malloc-family block of it is alive, or else as soon as the last one is
 * freed (by the thread that frees it). From this call on the arena serves nothing and every call
 * but a free of its blocks (and nalloc_owner) treats it as destroyed. NALLOC_ERR_UNSUPPORTED (the
 * arena left as it was) when the kernel lacks membarrier(2), which makes the handshake exact;
 * NALLOC_ERR_STATE when lanes split from it have live blocks (free those first). */
NALLOC_API nalloc_status nalloc_arena_destroy_deferred(nalloc_arena *arena);

/* nalloc_reset and nalloc_wipe that do not refuse live malloc-family blocks: they are forgotten
 * (no longer counted as live), and touching or freeing one afterwards is undefined behaviour. For
 * callers that know every such pointer is dead. */
NALLOC_API nalloc_status nalloc_reset_unchecked(nalloc_arena *arena);
NALLOC_API nalloc_status nalloc_wipe_unchecked(nalloc_arena *arena);

/* ---------------------------------------------------------------------------------------------
 * The three-arena partition
 * ------------------------------------------------------------------------------------------- */

typedef struct nalloc_ctx nalloc_ctx;

/* One configuration per kind, indexed by nalloc_kind. An arena with capacity 0 is not created. */
typedef struct nalloc_ctx_config {
    nalloc_arena_config arenas[NALLOC_KIND_COUNT];
} nalloc_ctx_config;

/* Fill `config` with each kind's defaults in `memory`, sized in bytes. */
NALLOC_API void nalloc_ctx_config_init(nalloc_ctx_config *config, nalloc_memory memory,
                                       size_t poly_capacity, size_t witness_capacity,
                                       size_t scratch_capacity);

/* Create the polynomial, witness and scratch arenas, each in its own mapping. All or nothing. */
NALLOC_API nalloc_status nalloc_ctx_create(const nalloc_ctx_config *config, nalloc_ctx **out);

/* The context's arena of `kind`; NULL (NALLOC_ERR_INVALID) for a bad kind or one not created. */
NALLOC_API nalloc_arena *nalloc_ctx_arena(nalloc_ctx *ctx, nalloc_kind kind);

/* Destroy the three arenas (the witness arena is wiped first) and the context. */
NALLOC_API nalloc_status nalloc_ctx_destroy(nalloc_ctx *ctx);

/* ---------------------------------------------------------------------------------------------
 * Sizing from a dry run
 *
 * Provers size their arenas by running the prover once on arenas too large to fill and creating
 * the real ones from the peaks they reached, plus headroom (zkSync's shivini and OpenVM do this):
 *
 *     nalloc_ctx_config config;
 *     nalloc_ctx_config_init_dry_run(&config, NALLOC_MEMORY_HOST, 0);
 *     nalloc_ctx *dry;
 *     nalloc_ctx_create(&config, &dry);
 *     prove(dry);                                  // the same requests a real proof makes
 *     nalloc_profile profile;
 *     nalloc_ctx_profile(dry, &profile);           // plain data: store it, reuse it next run
 *     nalloc_ctx_destroy(dry);
 *     nalloc_ctx_config_from_profile(&config, NALLOC_MEMORY_HOST, &profile, 0.10);
 *     nalloc_ctx *ctx;
 *     nalloc_ctx_create(&config, &ctx);            // 10% above what the dry run needed
 * ------------------------------------------------------------------------------------------- */

#define NALLOC_PROFILE_VERSION 1

/* What a dry run needed, per arena kind. */
typedef struct nalloc_profile {
    uint32_t version;     /* NALLOC_PROFILE_VERSION of the library that filled it */
    uint32_t struct_size; /* sizeof(nalloc_profile) of the library that filled it */
    unsigned kinds;       /* bit k set: the context had an arena of kind k */
    size_t high_water[NALLOC_KIND_COUNT];      /* bytes: the arena's peak use, padding included,
                                                  its lanes' blocks left out */
    size_t lane_high_water[NALLOC_KIND_COUNT]; /* bytes: the largest peak of any lane split
                                                  directly from the arena; 0 without lanes */
    size_t lanes[NALLOC_KIND_COUNT];           /* the most lanes one split made from it */
} nalloc_profile;

/* Fill `config` for a dry run of a context whose arenas will live in `memory`: each arena is a
 * host arena of `reserve` bytes (0: 64 GiB) with NALLOC_FLAG_NORESERVE, so it takes address space
 * and commits only the pages the workload touches, with `memory`'s alignment policy (so the dry
 * run lays blocks out as the real arenas will) and its kind's protections (a dry run may handle
 * the real witness). Change alignments here and in the sized config alike. */
NALLOC_API void nalloc_ctx_config_init_dry_run(nalloc_ctx_config *config, nalloc_memory memory,
                                               size_t reserve);

/* Record the peaks of `ctx`'s arenas, and of the lanes split from them (live or destroyed), in
 * *profile. Call it after the workload, before destroying the context. */
NALLOC_API nalloc_status nalloc_ctx_profile(nalloc_ctx *ctx, nalloc_profile *profile);

/* Fill `config` as nalloc_ctx_config_init does for `memory`, with each kind's capacity sized from
 * `profile`: its high-water mark with `headroom` added (0.10 is 10% more), plus, when the dry run
 * split it, room for as many lanes of nalloc_profile_lane_capacity bytes and their alignment,
 * rounded up to whole pages; at least one page. Kinds the dry run did not have get capacity 0 (no
 * arena). A sized arena that splits with lane_capacity 0 gives each lane at least that much when
 * it allocates nothing between the split and the lanes' end; otherwise pass the lane capacity.
 * NALLOC_ERR_INVALID for a NULL, a profile of another version, or a headroom that is negative,
 * not finite, or makes a capacity overflow; config is untouched then. */
NALLOC_API nalloc_status nalloc_ctx_config_from_profile(nalloc_ctx_config *config,
                                                        nalloc_memory memory,
                                                        const nalloc_profile *profile,
                                                        double headroom);

/* The capacity to give each lane split from the arena of `kind` in a sized context: the
 * profile's lane high-water mark with `headroom` added, rounded up to whole pages. 0 when the dry
 * run split no lanes from it, or for bad arguments. */
NALLOC_API size_t nalloc_profile_lane_capacity(const nalloc_profile *profile, nalloc_kind kind,
                                               double headroom);

#ifdef __cplusplus
}
#endif

#endif /* NALLOC_NALLOC_H */
