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
 * Errors. One rule for every call: a call that fails (returns NULL, a status other than NALLOC_OK,
 * or, for the few calls that return neither, a documented failure value) records, for the calling
 * thread, the status it failed with (nalloc_last_error) and a message that names the call and the
 * cause (nalloc_last_error_message); a call that succeeds leaves both exactly as they were, even
 * when it recovered from a failure on the way (a pinned arena that fell back to locked memory).
 * nalloc_last_error_clear() resets them. So after a sequence of calls, a NALLOC_OK last error
 * (having cleared it first) means none of them failed. No input makes nalloc abort, and a refused
 * call leaves the arena as it was.
 *
 * Signals. The allocation path (nalloc_alloc, nalloc_alloc_aligned and nalloc_free_last on a host
 * or pinned arena without NALLOC_FLAG_THREAD_CACHE that no memory checker or NVTX tool watches;
 * a thread's private chunk is bumped with plain loads and stores, so a handler must not allocate
 * from a thread-cached arena, nor call the malloc family) takes no lock, so a signal handler
 * may allocate, even from the arena the interrupted thread was allocating from: the blocks stay
 * disjoint and in bounds. Those three calls are async-signal-safe on a thread that has allocated
 * from some arena before (a thread's first allocation sets up its statistics with pthread calls).
 * A failing call formats its message without libc, into a page mapped (mmap) on the thread's
 * first failure. Statistics stay exact on x86-64; on other architectures an allocation made by a
 * handler that interrupted an allocation of the same thread from the same arena may be missing
 * from allocations, padding and layout_digest. nalloc_strerror and nalloc_last_error are
 * async-signal-safe too; no other call is.
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

/* Let the compiler help the caller (as mimalloc's header does), where GCC and Clang can:
 *  NALLOC_NODISCARD          ignoring the result is a bug: a block, or a refusal that must be
 *                            seen. C++17 [[nodiscard]] (a (void) cast silences it); in C, GCC's
 *                            warn_unused_result, which GCC reports even through a (void) cast.
 *  NALLOC_ATTR_MALLOC        the result aliases no pointer valid before the call and the block
 *                            holds none: true of a fresh arena block, not of nalloc_realloc,
 *                            which may return its argument (GCC manual, "malloc" attribute).
 *  NALLOC_ATTR_ALLOC_ALIGN   the block is aligned to argument n. GCC only: clang 14 crashes on a
 *                            constant alignment above 2^32 with it, and warns on a constant that
 *                            is not a power of two, which nalloc answers with NALLOC_ERR_INVALID.
 * There is deliberately no alloc_size: nalloc_resize_last grows a block in place, under the same
 * pointer, and the compiler would go on taking the block's size from the allocation call, so that
 * _FORTIFY_SOURCE would abort a memset over the grown block (and -Wstringop-overflow warn).
 * Define NALLOC_NO_ATTRIBUTES before including the headers to turn them all off. */
#if !defined(NALLOC_NO_ATTRIBUTES) && defined(__GNUC__)
#if defined(__cplusplus) && __cplusplus >= 201703L
#define NALLOC_NODISCARD [[nodiscard]]
#else
#define NALLOC_NODISCARD __attribute__((warn_unused_result))
#endif
#define NALLOC_ATTR_MALLOC __attribute__((malloc))
#if defined(__clang__)
#define NALLOC_ATTR_ALLOC_ALIGN(n)
#else
#define NALLOC_ATTR_ALLOC_ALIGN(n) __attribute__((alloc_align(n)))
#endif
#else
#define NALLOC_NODISCARD
#define NALLOC_ATTR_MALLOC
#define NALLOC_ATTR_ALLOC_ALIGN(n)
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

/* The status of this thread's most recent failed nalloc call (the rule: "Errors" above);
 * NALLOC_OK when no call has failed on this thread since it started or last cleared it. */
NALLOC_API nalloc_status nalloc_last_error(void);

/* This thread's message for its most recent failed call, naming the public call and the cause,
 * for example
 *     nalloc_arena_destroy: arena is already destroyed
 *     nalloc_alloc: 1048577 bytes requested, 1048576 free in arena "witness"
 * "" when no call has failed since the thread started or last cleared it. The text is this
 * thread's own, and stays valid and unchanged until its next failing call or clear. Never NULL. */
NALLOC_API const char *nalloc_last_error_message(void);

/* Reset this thread's last error to NALLOC_OK and its message to "" (and, in CUDA builds, the
 * CUDA text of nalloc_cuda_error_string). The only call that changes them without failing. */
NALLOC_API void nalloc_last_error_clear(void);

/* ---------------------------------------------------------------------------------------------
 * Arena configuration
 * ------------------------------------------------------------------------------------------- */

/* What an arena holds; selects the defaults nalloc_arena_config_init fills in. */
typedef enum nalloc_kind {
    NALLOC_KIND_POLY = 0, /* polynomial vectors: huge pages faulted in ahead by the helper
                             thread (host), 4 KiB alignment for large vectors */
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
 * refuses is reported in nalloc_stats.missing; with NALLOC_FLAG_STRICT it fails creation instead.
 * When LOCK, NODUMP or SECRET is refused, creation also prints one warning line on stderr naming
 * the arena, what was refused and how to get it (NALLOC_QUIET_PROTECTIONS=1 in the environment
 * silences it, for programs that check nalloc_stats.missing themselves).
 *
 * Memory that holds secrets is zeroed before it is released, whatever the flags: an arena of kind
 * NALLOC_KIND_WITNESS, and any arena that asked for LOCK, NODUMP or SECRET, is wiped on destroy as
 * if WIPE_ON_DESTROY were set (before its pages are unlocked and unmapped, as libsodium does). */
enum nalloc_flag {
    NALLOC_FLAG_POPULATE = 1u << 0,        /* prefault every page at creation (MADV_POPULATE_WRITE) */
    NALLOC_FLAG_HUGEPAGES = 1u << 1,       /* MADV_HUGEPAGE on the mapping (default for POLY);
                                              with PREFAULT_AHEAD, stretch by stretch */
    NALLOC_FLAG_LOCK = 1u << 2,            /* mlock2(MLOCK_ONFAULT): never swapped (WITNESS);
                                              refused beyond RLIMIT_MEMLOCK without
                                              CAP_IPC_LOCK */
    NALLOC_FLAG_NODUMP = 1u << 3,          /* MADV_DONTDUMP: not in core dumps (WITNESS) */
    NALLOC_FLAG_WIPEONFORK = 1u << 4,      /* a forked child never sees the contents: it reads
                                              zeros (MADV_WIPEONFORK), or, for a SECRET arena, has
                                              no mapping there (MADV_DONTFORK), and the arena and
                                              its lanes are destroyed in the child (WITNESS) */
    NALLOC_FLAG_WIPE_ON_DESTROY = 1u << 5, /* nalloc_wipe before the memory is released (WITNESS;
                                              implied by the kind and by LOCK, NODUMP, SECRET) */
    NALLOC_FLAG_WIPE_AT_EXIT = 1u << 6,    /* wiped at process exit if still alive (WITNESS) */
    NALLOC_FLAG_SECRET = 1u << 7,          /* memfd_secret backing: out of the kernel's direct map
                                              and locked by the kernel; host only (PINNED:
                                              NALLOC_ERR_UNSUPPORTED). When the kernel refuses it
                                              the arena gets ordinary memory and reports SECRET
                                              missing; with STRICT creation fails instead:
                                              NALLOC_ERR_UNSUPPORTED where the kernel lacks it or
                                              has it disabled (ENOSYS, EINVAL), NALLOC_ERR_OS with
                                              errno EAGAIN where the arena does not fit in
                                              RLIMIT_MEMLOCK (secret memory counts against it) */
    NALLOC_FLAG_STRICT = 1u << 8,          /* a refused feature fails creation */
    NALLOC_FLAG_PIN_FALLBACK = 1u << 9,    /* PINNED without a driver: locked host memory instead */
    NALLOC_FLAG_NORESERVE = 1u << 10,      /* MAP_NORESERVE: address space only (sizing dry runs) */
    NALLOC_FLAG_THREAD_CACHE = 1u << 11,   /* each thread allocates from a private chunk it took
                                              from the arena with one atomic */
    NALLOC_FLAG_PREFAULT_AHEAD = 1u << 12  /* pages ahead of the offset are faulted in by a
                                              helper thread, off the allocating threads
                                              (MADV_POPULATE_WRITE, Linux 5.14; host arenas;
                                              not memfd_secret); with HUGEPAGES, huge pages come
                                              from the helper, never from a stalled fault on an
                                              allocating thread (default for POLY host arenas;
                                              docs/first-proof.md) */
};

/* Everything nalloc_arena_create needs. Always fill it with nalloc_arena_config_init first, then
 * change the fields you care about: fields added in later versions get their defaults that way.
 *
 * Compatibility. The struct's size is fixed for every 1.x release: a field added in 1.x takes the
 * place of words of `reserved`, so a program built against an older 1.x header passes a struct of
 * the size the library expects, and nalloc_arena_config_init (in the library) fills the new field
 * with its default. A new field's zero value means its default, for configs filled by hand. */
typedef struct nalloc_arena_config {
    nalloc_kind kind;       /* selects the defaults nalloc_arena_config_init fills in; WITNESS
                               arenas are also always wiped before release (nalloc_flag) */
    nalloc_memory memory;   /* where the memory lives */
    size_t capacity;        /* bytes the arena can hand out; the mapping is rounded up to pages */
    size_t default_align;   /* bytes, power of two: alignment of nalloc_alloc below the threshold
                               (default 64 on the host, 256 on the device) */
    size_t large_threshold; /* bytes: nalloc_alloc requests of at least this size use large_align
                               (default 1 MiB, NALLOC_LARGE_THRESHOLD) */
    size_t large_align;     /* bytes, power of two (default 4096, NALLOC_LARGE_ALIGN) */
    unsigned flags;         /* NALLOC_FLAG_* (defaults depend on kind) */
    int device;             /* device: CUDA device ordinal (default 0) */
    size_t guard_size;      /* bytes of PROT_NONE on each side of a host mapping; rounded up to
                               the page size; 0 means one page */
    void *fixed_address;    /* host: place the arena's first byte exactly here (MAP_FIXED_NOREPLACE;
                               a clash fails with NALLOC_ERR_OS/EEXIST; an address whose leading
                               guard would start below vm.mmap_min_addr, or at 0, is
                               NALLOC_ERR_INVALID); NULL: anywhere */
    size_t redzone;         /* bytes of poisoned gap after every block while a memory checker
                               (nalloc_checker) watches the arena, so an overflow into the next
                               block is reported; ignored otherwise; 0: none */
    double device_fraction; /* device, when capacity is 0: this fraction (0, 1] of free memory */
    size_t device_slack;    /* device: bytes always left free for kernel loading (default 256 MiB) */
    size_t pin_chunk;       /* pinned: bytes registered per cudaHostRegister call (default 1 GiB) */
    const char *name;       /* for statistics, messages and NVTX; copied; NULL: named after the
                               kind */
    uint64_t reserved[6];   /* zero: room for the fields of later 1.x releases */
} nalloc_arena_config;

/* Fill `config` with the defaults for `kind` and `memory`, and the given capacity in bytes. A NULL
 * config is a failure like any other: NALLOC_ERR_INVALID is recorded (nalloc_last_error). */
NALLOC_API void nalloc_arena_config_init(nalloc_arena_config *config, nalloc_kind kind,
                                         nalloc_memory memory, size_t capacity);

/* ---------------------------------------------------------------------------------------------
 * Arenas
 * ------------------------------------------------------------------------------------------- */

typedef struct nalloc_arena nalloc_arena;

/* Reserve an arena as `config` describes. On success *out is the arena; on failure *out is NULL
 * and nothing is left reserved. */
NALLOC_NODISCARD NALLOC_API nalloc_status nalloc_arena_create(const nalloc_arena_config *config,
                                                              nalloc_arena **out);

/* Release the arena and its memory. An arena with NALLOC_FLAG_WIPE_ON_DESTROY, every witness
 * arena and every arena that asked for LOCK, NODUMP or SECRET is wiped first (nalloc_flag). A
 * destroyed arena is refused with NALLOC_ERR_STATE by every later call, as long as its handle slot
 * has not been reused by a newer arena. An arena that belongs to a nalloc_ctx is destroyed with
 * the context, not alone (NALLOC_ERR_STATE). A wipe that fails (a device fault) is reported, and
 * the arena is released all the same. */
NALLOC_API nalloc_status nalloc_arena_destroy(nalloc_arena *arena);

/* Allocate `size` bytes at the arena's policy alignment: default_align, or large_align when size
 * is at least large_threshold. NULL on failure (zero size: NALLOC_ERR_INVALID; no room:
 * NALLOC_ERR_NOMEM). A failed request consumes nothing. Never an overlapping or out-of-bounds
 * block, whatever the input. The memory is not zeroed (see nalloc_alloc_zeroed). */
NALLOC_NODISCARD NALLOC_API void *nalloc_alloc(nalloc_arena *arena, size_t size)
    NALLOC_ATTR_MALLOC;

/* Allocate `size` bytes aligned to `align`, any power of two (NALLOC_ERR_INVALID otherwise). An
 * alignment larger than the room left fails with NALLOC_ERR_NOMEM. */
NALLOC_NODISCARD NALLOC_API void *nalloc_alloc_aligned(nalloc_arena *arena, size_t size,
                                                       size_t align)
    NALLOC_ATTR_MALLOC NALLOC_ATTR_ALLOC_ALIGN(3);

/* calloc for arenas: count * size bytes (overflow: NALLOC_ERR_INVALID) at `align` (0: the policy
 * alignment), reading as zero. Only bytes that were handed out before (and not wiped since) are
 * cleared; fresh pages are zero already. Device arenas are cleared by the wipe kernel on the
 * legacy default stream, waited for before this returns. */
NALLOC_NODISCARD NALLOC_API void *nalloc_alloc_zeroed(nalloc_arena *arena, size_t count,
                                                      size_t size, size_t align)
    NALLOC_ATTR_MALLOC;

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
 * when the arena has no room to grow; the block is unchanged on failure, and the failure counts
 * in nalloc_stats.failures. */
NALLOC_NODISCARD NALLOC_API nalloc_status nalloc_resize_last(nalloc_arena *arena, void *ptr,
                                                             size_t old_size, size_t new_size);

/* realloc for host and pinned arenas: resize in place when ptr is the most recent block, otherwise
 * allocate new_size bytes at `align` (0: policy), copy min(old_size, new_size) bytes and leave the
 * old block in place until the next rollback or reset. ptr == NULL allocates. NULL on failure, and
 * the old block is untouched. */
NALLOC_NODISCARD NALLOC_API void *nalloc_realloc(nalloc_arena *arena, void *ptr, size_t old_size,
                                                 size_t new_size, size_t align);

/* A position in an arena to roll back to. The fields are private. */
typedef struct nalloc_mark {
    uint64_t arena_uid; /* private: which arena */
    uint64_t epoch;     /* private: rollbacks, resets and wipes done before the mark was taken */
    uint64_t generation;/* private: resets and wipes done before the mark was taken */
    size_t offset;      /* private: bytes in use when the mark was taken */
} nalloc_mark;

/* The arena's current position. A NULL or destroyed arena gives a mark no rollback accepts. */
NALLOC_NODISCARD NALLOC_API nalloc_mark nalloc_mark_get(nalloc_arena *arena);

/* Release everything allocated since `mark` was taken. Refused with NALLOC_ERR_STATE (arena
 * untouched) when the mark is stale: taken before a reset or wipe, taken on another arena, or
 * taken at a position that an earlier rollback already released. Rolling back to the same mark
 * again is allowed. */
NALLOC_NODISCARD NALLOC_API nalloc_status nalloc_rollback(nalloc_arena *arena, nalloc_mark mark);

/* Release everything; every mark taken so far becomes stale. The memory is not zeroed. Refused
 * with NALLOC_ERR_STATE (arena untouched) while lanes split from the arena are alive. */
NALLOC_NODISCARD NALLOC_API nalloc_status nalloc_reset(nalloc_arena *arena);

/* Zero, in one pass, every byte handed out since the last wipe, up to the high-water mark rather
 * than just the current offset, with a store the compiler cannot elide (explicit_bzero on the
 * host, a memset kernel on the device, synchronized before returning); then reset. */
NALLOC_NODISCARD NALLOC_API nalloc_status nalloc_wipe(nalloc_arena *arena);

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
NALLOC_NODISCARD NALLOC_API nalloc_status nalloc_arena_split(nalloc_arena *parent, size_t count,
                                                             size_t lane_capacity,
                                                             nalloc_arena **lanes);

/* ---------------------------------------------------------------------------------------------
 * Statistics
 * ------------------------------------------------------------------------------------------- */

#define NALLOC_STATS_VERSION 1

/* A snapshot of one arena (nalloc_arena_stats).
 *
 * Compatibility. Fields are only ever added at the end, and the library writes no more of the
 * struct than the caller's build of this header has: nalloc_arena_stats passes sizeof(nalloc_stats)
 * as the caller sees it. So a program built against an older header gets the fields it knows,
 * one built against a newer header than the library's gets the fields the library knows and its
 * other fields untouched; struct_size says how many bytes were filled. */
typedef struct nalloc_stats {
    uint32_t version;       /* NALLOC_STATS_VERSION of the library that filled it */
    uint32_t struct_size;   /* bytes of this struct that the library filled: the smaller of the
                               caller's sizeof(nalloc_stats) and the library's */
    const char *name;       /* the arena's name; valid while the arena lives */
    nalloc_kind kind;
    nalloc_memory memory;
    size_t capacity;        /* bytes the arena can hand out */
    size_t used;            /* bytes handed out now, alignment padding included: the offset less
                               cached and deferred */
    size_t high_water;      /* most bytes in use at once since creation */
    size_t allocations;     /* successful allocation calls since creation */
    size_t failures;        /* allocation requests on this arena that failed, whatever the reason:
                               nalloc_alloc, _aligned, _zeroed and nalloc_realloc returning NULL,
                               nalloc_resize_last refused. Other refusals (free_last, rollback,
                               reset, wipe, split) are not counted: they return their status */
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
    unsigned checkers;      /* NALLOC_CHECKER_* told about every block (host and pinned arenas) */
    bool guard_pages;       /* PROT_NONE guards on both sides are in place */
    bool populated;         /* every page was prefaulted at creation */
    bool huge_pages;        /* MADV_HUGEPAGE was accepted */
    bool locked;            /* the pages are locked (never swapped) */
    bool no_dump;           /* MADV_DONTDUMP was accepted */
    bool wipe_on_fork;      /* MADV_WIPEONFORK was accepted */
    bool wipe_on_destroy;   /* the arena is wiped before its memory is released (the flag, or
                               implied by the kind or the protections: nalloc_flag) */
    bool secret;            /* memfd_secret backing: out of the kernel's direct map */
    bool pinned;            /* page-locked and registered with CUDA */
    bool pin_fallback;      /* PINNED was asked for, but it is locked host memory (no driver) */
    bool unused[2];         /* false; keeps the layout free of compiler padding */
    size_t redzone;         /* bytes of poisoned gap kept after each block: config.redzone while a
                               checker watches the arena, 0 otherwise (the config is then ignored) */
    size_t redzone_bytes;   /* bytes of those gaps reserved by successful allocations since creation
                               (like padding: counted in used while the block lives) */
    size_t cached;          /* bytes reserved by threads' private chunks (NALLOC_FLAG_THREAD_CACHE,
                               the malloc family) and not handed out yet: in the offset, not in
                               used; at most one chunk per thread that allocated */
    size_t deferred;        /* bytes free below the offset and not given back yet: freed
                               malloc-family blocks waiting for the blocks above them, and free
                               stretches later chunks reuse; not in used */
    size_t live_blocks;     /* malloc-family blocks allocated here and not freed yet */
    size_t fallbacks;       /* malloc-family requests routed here that the system allocator
                               served (the arena had no room for them) */
    size_t prefaulted;      /* bytes the prefault helper faulted in (NALLOC_FLAG_PREFAULT_AHEAD);
                               some may have been resident already */
    size_t collapsed;       /* bytes the helper had the kernel collapse into huge pages */
    size_t resident_bytes;  /* nalloc_arena_stats_resident only: bytes of the arena's memory that
                               are resident now (the kernel's Rss for its mapping) */
    size_t huge_bytes;      /* nalloc_arena_stats_resident only: of those, bytes in transparent
                               huge pages (AnonHugePages) */
    bool resident_known;    /* resident_bytes and huge_bytes were read from the kernel */
    bool unused_tail[7];    /* false; keeps the layout free of compiler padding */
    /* New fields go here, at the end. */
} nalloc_stats;

/* Memory checkers that can see inside an arena (nalloc_stats.checkers). Without them an arena is
 * one big mapping to AddressSanitizer and Valgrind, and an overflow from one block into free space
 * or a read after a reset goes unnoticed. README, "Sanitizers, Valgrind and fuzzing". */
enum nalloc_checker {
    NALLOC_CHECKER_ASAN = 1u << 0,    /* built with AddressSanitizer: free space is poisoned */
    NALLOC_CHECKER_VALGRIND = 1u << 1 /* built with NALLOC_VALGRIND and running under Valgrind:
                                         the arena is a Memcheck mempool */
};

/* Fill the first stats_size bytes of *stats (at least the size of the 1.0 struct) with a
 * snapshot of the arena; concurrent allocations may or may not be counted. NALLOC_ERR_INVALID
 * for a NULL stats or a size below the 1.0 struct's. Call it through nalloc_arena_stats, which
 * passes the size; the explicit size is for bindings from other languages. */
NALLOC_NODISCARD NALLOC_API nalloc_status nalloc_arena_stats_sized(const nalloc_arena *arena,
                                                                   nalloc_stats *stats,
                                                                   size_t stats_size);

/* Fill *stats with a snapshot of the arena (nalloc_arena_stats_sized with this build's size). */
NALLOC_NODISCARD static inline nalloc_status nalloc_arena_stats(const nalloc_arena *arena,
                                                                nalloc_stats *stats)
{
    return nalloc_arena_stats_sized(arena, stats, sizeof *stats);
}

/* As nalloc_arena_stats, and also read from the kernel how much of the arena's memory is resident
 * and how much of it is in transparent huge pages (resident_bytes, huge_bytes, resident_known).
 * Slower than nalloc_arena_stats: it reads /proc/self/smaps, whose page-table walk costs about
 * 10 ms per GiB of small pages mapped by the process below the arena (next to nothing for huge
 * pages). resident_known is false, and the call still succeeds, where the kernel cannot say for
 * this arena alone: device arenas, lanes (their memory is a slice of their parent's mapping),
 * and /proc not mounted. */
NALLOC_NODISCARD NALLOC_API nalloc_status nalloc_arena_stats_resident_sized(const nalloc_arena *arena,
                                                                            nalloc_stats *stats,
                                                                            size_t stats_size);
NALLOC_NODISCARD static inline nalloc_status nalloc_arena_stats_resident(const nalloc_arena *arena,
                                                                         nalloc_stats *stats)
{
    return nalloc_arena_stats_resident_sized(arena, stats, sizeof *stats);
}

/* Print the arena's statistics to `stream` (NULL: stderr), one line per group of fields, with
 * the kernel's resident and huge-page figures (nalloc_arena_stats_resident). This is also what
 * NALLOC_VERBOSE=1 in the environment prints when an arena is destroyed. */
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
NALLOC_NODISCARD NALLOC_API nalloc_status nalloc_route_push(nalloc_arena *arena);

/* End the innermost route. NALLOC_ERR_STATE when none is pushed. */
NALLOC_API nalloc_status nalloc_route_pop(void);

/* The arena this thread's malloc-family allocations go to now: the innermost route's, or (no
 * route pushed) the process's default route (NALLOC_ROUTE, override library); NULL for the system
 * allocator, which also serves a route whose arena was destroyed. */
NALLOC_API nalloc_arena *nalloc_route_current(void);

/* The process-wide default route: threads with no route pushed allocate from `arena` (NULL: the
 * system allocator, the default). The override library sets it from NALLOC_ROUTE. Destroying the
 * arena must not race allocations through it; afterwards the system allocator serves them until
 * another default is set. */
NALLOC_API nalloc_status nalloc_route_set_default(nalloc_arena *arena);

/* Routes pushed on this thread and not popped. */
NALLOC_API size_t nalloc_route_depth(void);

/* A route for the rest of a C block, popped on every way out of it (GCC and Clang):
 *     { NALLOC_ROUTE_SCOPE(arena); ...; return x; }   // popped at the return, too
 * The scope is the route depth after the push, or 0 when the push was refused (nalloc_last_error
 * says why): such a scope routes nothing and pops nothing. Ending a scope pops back below it, the
 * routes that code inside it left pushed included. (A plain integer, so that a strict build with
 * -Waggregate-return accepts the macro.) */
typedef size_t nalloc_route_scope;
NALLOC_API nalloc_route_scope nalloc_route_scope_begin(nalloc_arena *arena);
NALLOC_API void nalloc_route_scope_end(const nalloc_route_scope *scope);
#define NALLOC_DETAIL_CONCAT_(a, b) a##b /* not API: a name unique to the line */
#define NALLOC_DETAIL_CONCAT(a, b) NALLOC_DETAIL_CONCAT_(a, b)
#define NALLOC_ROUTE_SCOPE(arena)                                                                \
    __attribute__((cleanup(nalloc_route_scope_end))) nalloc_route_scope NALLOC_DETAIL_CONCAT(    \
        nalloc_route_scope_, __LINE__) = nalloc_route_scope_begin(arena)

/* malloc, calloc, aligned_alloc, posix_memalign and free, routed. With a route pushed (or a
 * default route), a request is served from the route's arena at its policy alignment (at least
 * 16 bytes; aligned_alloc: `align`); when that arena has no room, or without a route, by the
 * system allocator. They fail only when the system allocator does (NULL and ENOMEM), or for bad
 * arguments as the C standard says (aligned_alloc: NULL and EINVAL for an alignment that is not a
 * power of two; posix_memalign: EINVAL also for one that is not a multiple of sizeof(void *);
 * calloc: NULL and ENOMEM when count * size overflows). malloc(0) returns a unique pointer. */
NALLOC_NODISCARD NALLOC_API void *nalloc_malloc(size_t size) NALLOC_ATTR_MALLOC;
NALLOC_NODISCARD NALLOC_API void *nalloc_calloc(size_t count, size_t size) NALLOC_ATTR_MALLOC;
NALLOC_NODISCARD NALLOC_API void *nalloc_aligned_alloc(size_t align, size_t size)
    NALLOC_ATTR_MALLOC NALLOC_ATTR_ALLOC_ALIGN(1);
NALLOC_NODISCARD NALLOC_API int nalloc_posix_memalign(void **out, size_t align, size_t size);

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
NALLOC_NODISCARD NALLOC_API void *nalloc_mrealloc(void *ptr, size_t size);

/* Resize an arena block in place: NALLOC_OK, or NALLOC_ERR_NOMEM when it cannot grow where it is
 * (not the newest block of its chunk, or no room), NALLOC_ERR_INVALID when ptr is no arena
 * block. The block is unchanged on failure. */
NALLOC_NODISCARD NALLOC_API nalloc_status nalloc_resize_in_place(void *ptr, size_t size);

/* The bytes an arena block holds (its requested size), or what the system allocator says of its
 * own blocks (malloc_usable_size); 0 for NULL. */
NALLOC_API size_t nalloc_usable_size(const void *ptr);

/* For allocators with a fallback of their own (Rust's nalloc::Global): a block from the current
 * route's arena (`size` bytes at `align`, 0: its policy; at least 16), zeroed by the _zeroed form
 * (only bytes that may hold old data are cleared), freed by nalloc_free or nalloc_free_if_owned.
 * NULL when there is no route (or a NULL route), the alignment is not a power of two, or the
 * arena has no room (counted in its fallbacks): the caller then serves the request itself. */
NALLOC_NODISCARD NALLOC_API void *nalloc_routed_alloc(size_t size, size_t align) NALLOC_ATTR_MALLOC;
NALLOC_NODISCARD NALLOC_API void *nalloc_routed_alloc_zeroed(size_t size, size_t align)
    NALLOC_ATTR_MALLOC;

/* A malloc-family block from `arena` itself, whatever the route: `size` bytes at `align` (0: the
 * policy alignment; at least 16), freed by nalloc_free. NULL with nalloc_last_error() set
 * (NALLOC_ERR_NOMEM when the arena has no room): no fallback. */
NALLOC_NODISCARD NALLOC_API void *nalloc_arena_malloc(nalloc_arena *arena, size_t size,
                                                      size_t align) NALLOC_ATTR_MALLOC;

/* Destroy `arena` now if no malloc-family block of it is alive, or else as soon as the last one is
 * freed (by the thread that frees it). From this call on the arena serves nothing and every call
 * but a free of its blocks (and nalloc_owner) treats it as destroyed. Frees may race the call;
 * allocations from the arena may not, as with nalloc_arena_destroy: a thread routed into it may
 * keep its route pushed (what it allocates afterwards comes from the system allocator), but none
 * may be allocating from the arena during the call. NALLOC_ERR_UNSUPPORTED (the
 * arena left as it was) when the kernel lacks membarrier(2), which makes the handshake exact;
 * NALLOC_ERR_STATE when lanes split from it have live blocks (free those first). */
NALLOC_API nalloc_status nalloc_arena_destroy_deferred(nalloc_arena *arena);

/* nalloc_reset and nalloc_wipe that do not refuse live malloc-family blocks: they are forgotten
 * (no longer counted as live), and touching or freeing one afterwards is undefined behaviour. For
 * callers that know every such pointer is dead. */
NALLOC_NODISCARD NALLOC_API nalloc_status nalloc_reset_unchecked(nalloc_arena *arena);
NALLOC_NODISCARD NALLOC_API nalloc_status nalloc_wipe_unchecked(nalloc_arena *arena);

/* ---------------------------------------------------------------------------------------------
 * The three-arena partition
 * ------------------------------------------------------------------------------------------- */

typedef struct nalloc_ctx nalloc_ctx;

/* One configuration per kind, indexed by nalloc_kind, and the kinds to leave out. Its size is
 * fixed for every 1.x release, like nalloc_arena_config's. */
typedef struct nalloc_ctx_config {
    nalloc_arena_config arenas[NALLOC_KIND_COUNT];
    unsigned omit;     /* bit (1u << kind) set: the context has no arena of that kind, and
                          arenas[kind] is ignored (nalloc_ctx_config_omit); 0 from init */
    unsigned reserved; /* zero: room for a field of a later 1.x release */
} nalloc_ctx_config;

/* Fill `config` with each kind's defaults in `memory`, sized in bytes, every kind included. A
 * capacity of 0 is kept as given, and nalloc_ctx_create refuses it: to have no arena of a kind,
 * say so with nalloc_ctx_config_omit. A NULL config records NALLOC_ERR_INVALID. */
NALLOC_API void nalloc_ctx_config_init(nalloc_ctx_config *config, nalloc_memory memory,
                                       size_t poly_capacity, size_t witness_capacity,
                                       size_t scratch_capacity);

/* Leave the arena of `kind` out of contexts made from `config` (sets its bit in config->omit).
 * NALLOC_ERR_INVALID for a NULL config or a bad kind. */
NALLOC_API nalloc_status nalloc_ctx_config_omit(nalloc_ctx_config *config, nalloc_kind kind);

/* Create the polynomial, witness and scratch arenas, each in its own mapping, but those the
 * config omits. All or nothing. NALLOC_ERR_INVALID for a kind that is neither omitted nor given a
 * capacity (or, for a device arena, a device_fraction), and for a config whose arenas[k].kind is
 * not k; otherwise what nalloc_arena_create says for the arena that failed. */
NALLOC_NODISCARD NALLOC_API nalloc_status nalloc_ctx_create(const nalloc_ctx_config *config,
                                                            nalloc_ctx **out);

/* The context's arena of `kind`; NULL with NALLOC_ERR_INVALID for a bad kind or one the config
 * omitted, NALLOC_ERR_STATE for a destroyed context. */
NALLOC_NODISCARD NALLOC_API nalloc_arena *nalloc_ctx_arena(nalloc_ctx *ctx, nalloc_kind kind);

/* Destroy the context's arenas (the witness arena is wiped first) and the context.
 * NALLOC_ERR_STATE, nothing destroyed, while malloc-family blocks of one of them are alive. */
NALLOC_API nalloc_status nalloc_ctx_destroy(nalloc_ctx *ctx);

/* nalloc_ctx_destroy for a context whose arenas may still have malloc-family blocks alive: the
 * context is destroyed now, and each arena as nalloc_arena_destroy_deferred does (now, or by the
 * free of its last block; the witness arena is wiped first either way). NALLOC_ERR_STATE, nothing
 * destroyed, while lanes split from one of them have blocks alive; NALLOC_ERR_UNSUPPORTED, nothing
 * destroyed, where the kernel lacks membarrier(2) and a block is alive. */
NALLOC_API nalloc_status nalloc_ctx_destroy_deferred(nalloc_ctx *ctx);

/* ---------------------------------------------------------------------------------------------
 * Sizing from a dry run
 *
 * Provers size their arenas by running the prover once on arenas too large to fill and creating
 * the real ones from the peaks they reached, plus headroom (zkSync's shivini and OpenVM do this):
 *
 *     nalloc_ctx_config config;
 *     nalloc_ctx_config_init_dry_run(&config, NALLOC_MEMORY_HOST, 0);
 *     nalloc_ctx *dry, *ctx;
 *     if (nalloc_ctx_create(&config, &dry) != NALLOC_OK) ...
 *     prove(dry);                                  // the same requests a real proof makes
 *     nalloc_profile profile;
 *     if (nalloc_ctx_profile(dry, &profile) != NALLOC_OK) ...  // plain data: store it, reuse it
 *     nalloc_ctx_destroy(dry);
 *     if (nalloc_ctx_config_from_profile(&config, NALLOC_MEMORY_HOST, &profile, 0.10) ||
 *         nalloc_ctx_create(&config, &ctx)) ...    // 10% above what the dry run needed
 * ------------------------------------------------------------------------------------------- */

#define NALLOC_PROFILE_VERSION 1

/* What a dry run needed, per arena kind. Plain data: a prover may store it and load it in a later
 * run, where nalloc_ctx_config_from_profile checks version and struct_size.
 *
 * Compatibility, as for nalloc_stats: fields are only added at the end, the library writes no
 * more than the caller's sizeof (nalloc_ctx_profile passes it) and reads no more than struct_size
 * says was written; NALLOC_PROFILE_VERSION changes only when the meaning of a field changes, and a
 * profile of another version is refused. */
typedef struct nalloc_profile {
    uint32_t version;     /* NALLOC_PROFILE_VERSION of the library that filled it */
    uint32_t struct_size; /* bytes of this struct that the library filled: the smaller of the
                             caller's sizeof(nalloc_profile) and the library's */
    unsigned kinds;       /* bit k set: the context had an arena of kind k */
    unsigned unused;      /* zero; keeps the layout free of compiler padding */
    size_t high_water[NALLOC_KIND_COUNT];      /* bytes: the arena's peak use, padding included,
                                                  its lanes' blocks left out */
    size_t lane_high_water[NALLOC_KIND_COUNT]; /* bytes: the largest peak of any lane split
                                                  directly from the arena; 0 without lanes */
    size_t lanes[NALLOC_KIND_COUNT];           /* the most lanes one split made from it */
    /* New fields go here, at the end. */
} nalloc_profile;

/* Fill `config` for a dry run of a context whose arenas will live in `memory`: each arena is a
 * host arena of `reserve` bytes (0: 64 GiB) with NALLOC_FLAG_NORESERVE, so it takes address space
 * and commits only the pages the workload touches, with `memory`'s alignment policy (so the dry
 * run lays blocks out as the real arenas will) and its kind's protections (a dry run may handle
 * the real witness). Change alignments here and in the sized config alike. A NULL config records
 * NALLOC_ERR_INVALID. */
NALLOC_API void nalloc_ctx_config_init_dry_run(nalloc_ctx_config *config, nalloc_memory memory,
                                               size_t reserve);

/* Record the peaks of `ctx`'s arenas, and of the lanes split from them (live or destroyed), in
 * the first profile_size bytes of *profile (at least the 1.0 struct's size). Call it after the
 * workload, before destroying the context, through nalloc_ctx_profile. */
NALLOC_NODISCARD NALLOC_API nalloc_status nalloc_ctx_profile_sized(nalloc_ctx *ctx,
                                                                   nalloc_profile *profile,
                                                                   size_t profile_size);

/* nalloc_ctx_profile_sized with this build's sizeof(nalloc_profile). */
NALLOC_NODISCARD static inline nalloc_status nalloc_ctx_profile(nalloc_ctx *ctx,
                                                                nalloc_profile *profile)
{
    return nalloc_ctx_profile_sized(ctx, profile, sizeof *profile);
}

/* Fill `config` as nalloc_ctx_config_init does for `memory`, with each kind's capacity sized from
 * `profile`: its high-water mark with `headroom` added (0.10 is 10% more), plus, when the dry run
 * split it, room for as many lanes of nalloc_profile_lane_capacity bytes and their alignment,
 * rounded up to whole pages; at least one page. Kinds the dry run did not have are omitted
 * (config->omit), with capacity 0. A sized arena that splits with lane_capacity 0 gives each lane
 * at least that much when it allocates nothing between the split and the lanes' end; otherwise
 * pass the lane capacity.
 * NALLOC_ERR_INVALID for a NULL, a profile of another version or of a struct_size below the 1.0
 * struct's, or a headroom that is negative, not finite, or makes a capacity overflow; config is
 * untouched then. */
NALLOC_NODISCARD NALLOC_API nalloc_status
nalloc_ctx_config_from_profile(nalloc_ctx_config *config, nalloc_memory memory,
                               const nalloc_profile *profile, double headroom);

/* The capacity to give each lane split from the arena of `kind` in a sized context: the
 * profile's lane high-water mark with `headroom` added, rounded up to whole pages. 0 when the dry
 * run split no lanes from it; 0 with NALLOC_ERR_INVALID recorded (nalloc_last_error) for bad
 * arguments, as nalloc_ctx_config_from_profile judges them. */
NALLOC_NODISCARD NALLOC_API size_t nalloc_profile_lane_capacity(const nalloc_profile *profile,
                                                                nalloc_kind kind, double headroom);

#ifdef __cplusplus
}
#endif

#endif /* NALLOC_NALLOC_H */
