/* src/internal.h - what arena logic shares and nobody outside sees: the arena header.
 *
 * An arena is a header (struct nalloc_arena) plus memory that a backing provides. The header holds
 * the bump region, the alignment policy and the bookkeeping for marks, wipes and statistics; the
 * backing (host mmap, pinned host, CUDA device, a lane's parent) only reserves, zeroes and
 * releases, through the contract of backing.h, and sees only the header's na_memory. Arena logic
 * never calls mmap or CUDA: backings go through the platform layer (prim.h) or the CUDA runtime.
 * What every file shares, arena code or not, is common.h.
 *
 * Headers live in slots of a process-wide slab that is never unmapped (handle.c), so a call on a
 * destroyed arena reads a dead magic number instead of freed memory.
 *
 * Statistics that change on every allocation (count, padding, layout digest) are kept per thread
 * in stat slots (stats.c): a thread claims a slot in an arena once and then adds to it with plain
 * stores, because two more locked instructions would triple the cost of an allocation.
 *
 * Everything here is prefixed na_. Functions are hidden: only nalloc_* is exported.
 */
#ifndef NALLOC_INTERNAL_H
#define NALLOC_INTERNAL_H

#include "backing.h"
#include "common.h"

#if defined(NALLOC_TEST_SEAMS) /* Test seams (common.h) */
extern void (*na_seam_lane_found)(nalloc_arena *lane); /* arena.c, lanes_destroy_all */
#endif

/* ---- The arena header ---- */

#define NA_STAT_SLOTS 64   /* threads that get a private slot (statistics, chunks) per arena */
#define NA_SLOT_SHARED (~(size_t)0) /* owner of the shared slot: updated with atomic adds */
#define NA_ROLLBACK_HISTORY 16 /* rollback records kept for judging marks stale */

/* A thread's private chunk of an arena: a stretch of the arena's bump region that the thread took
 * with one atomic and now bumps alone (tcache.c for nalloc_alloc under NALLOC_FLAG_THREAD_CACHE,
 * malloc.c for the malloc family). Written only by the slot's owner thread, with relaxed atomic
 * stores (plain moves), so that statistics and phase boundaries may read it from other threads. */
typedef struct na_chunk {
    size_t begin;   /* offset of the chunk's first byte (malloc chunks: of their header) */
    size_t cursor;  /* offset of the next free byte: [cursor, end) is the unused remainder */
    size_t end;     /* offset just past the chunk; 0 when the thread holds no chunk */
    uint64_t epoch; /* the arena's epoch when the chunk was taken: another epoch retired it */
    size_t next;    /* bytes the thread's next chunk asks for: grows with use, capped */
    size_t top;     /* malloc chunks: offset of the newest block's header + 1; 0 when empty */
    size_t own;     /* malloc chunks: blocks allocated here, less those their owner freed */
    size_t remote_seen; /* malloc chunks: the chunk's count of blocks others freed, when last looked at */
} na_chunk;

/* Per-thread state for one arena: statistics added with plain stores, and the thread's chunks.
 * The statistics line is first and apart from the chunks, which other threads never write. */
typedef struct NA_CACHE_ALIGNED na_stat_slot {
    size_t owner;       /* thread token of the owner, 0 when free, NA_SLOT_SHARED for the shared slot */
    size_t allocations; /* successful allocations made by the owners */
    size_t padding;     /* alignment bytes they skipped */
    size_t digest;      /* sum of na_layout_mix(offset, size, phase) over their blocks */
    size_t mallocs;     /* malloc-family blocks the owners allocated from this arena */
    size_t frees;       /* malloc-family blocks of this arena the owners freed (wherever made) */
    size_t spare[2];
    na_chunk plain NA_CACHE_ALIGNED; /* nalloc_alloc's chunk (NALLOC_FLAG_THREAD_CACHE) */
    na_chunk blocks NA_CACHE_ALIGNED; /* the malloc family's chunk */
} na_stat_slot;

/* What the prefault helper (prefault.c) keeps about one arena. Fields without a note are the
 * helper's, under the prefault lock. */
typedef struct na_prefault {
    nalloc_arena *next;   /* the next registered arena */
    bool registered;      /* on the helper's list */
    bool defer_huge;      /* MADV_HUGEPAGE is applied stretch by stretch, just before the helper
                             faults each in, instead of to the whole mapping at creation */
    size_t limit;         /* bytes from the base the helper may touch: capacity in whole pages */
    size_t frontier;      /* bytes from the base: the helper has faulted in or skipped all below */
    size_t collapsed_to;  /* bytes from the base: the helper has asked for huge pages below */
    size_t last_offset;   /* the offset at the helper's previous look, bytes */
    size_t ahead;         /* bytes kept faulted in beyond the peak offset; grows with the rate */
    uint64_t served;      /* when the helper last worked on it (a count of stretches) */
    size_t prefaulted;    /* bytes the helper faulted in (atomic) */
    size_t collapsed;     /* bytes the kernel collapsed into huge pages for it (atomic) */
    int stopped;          /* 0, or why the helper gave up on it: an errno value, or -1 in a forked
                             child (atomic) */
} na_prefault;

/* A free stretch of an arena: [begin, end) in offsets. */
typedef struct na_range {
    size_t begin, end;
} na_range;

/* Free stretches below an arena's offset (stretch.c). */
typedef struct na_stretch_map na_stretch_map;

/* "At epoch `epoch` a rollback released everything from `target` up." Kept sorted by epoch with
 * targets strictly increasing: a later rollback to a lower target hides the earlier ones. */
typedef struct na_rollback_record {
    uint64_t epoch;
    size_t target;
} na_rollback_record;

struct nalloc_arena {
    /* -- Read by every allocation. -- */
    uint64_t magic;          /* NA_MAGIC_ARENA while alive; first, like every handle */
    nalloc_bump bump;        /* base, capacity and the atomic offset */
    size_t default_align;    /* bytes, power of two */
    size_t large_threshold;  /* bytes */
    size_t large_align;      /* bytes, power of two */
    uint64_t uid;            /* unique in the process, never reused; marks and stat slots check it */
    void (*on_alloc)(const na_memory *m, size_t offset, size_t size); /* memory.on_alloc, in
                                the line every allocation reads */
    bool thread_cache;       /* NALLOC_FLAG_THREAD_CACHE: nalloc_alloc bumps in thread chunks */
    uint64_t check_salt;     /* mixed into malloc-family header checks (blocks.h): per arena */
    size_t block_align;      /* bytes: malloc-family blocks below large_threshold are aligned to
                                this (default_align, at least 16; blocks.h) */

    /* -- Bookkeeping, touched outside the allocation path. Fields without a lock note are
     *    accessed atomically. -- */
    size_t dirty_end;        /* bytes: everything below may hold data since the last wipe; lazy,
                                the true value is max(dirty_end, bump.offset) */
    size_t high_water;       /* bytes; lazy like dirty_end */
    size_t mark_floor;       /* bytes: offset of the newest mark or rollback target; free_last and
                                resize_last never move the offset below it */
    size_t failures;         /* requests refused */
    uint64_t generation;     /* resets and wipes so far: marks of older generations are stale */
    uint64_t epoch;          /* phase boundaries so far: rollbacks, resets and wipes; changed
                                under the control lock, read by every allocation (layout digest) */
    unsigned history_len;    /* records in history (control lock) */
    na_rollback_record history[NA_ROLLBACK_HISTORY]; /* (control lock) */
    size_t resets, rollbacks, wipes, wiped_bytes;
    /* Memory-checker state (track.h); stays zero unless a checker is compiled in. */
    unsigned track_checkers;    /* NALLOC_CHECKER_* watching this arena; 0 for device arenas */
    size_t track_redzone;       /* bytes kept poisoned after each block: config.redzone while a
                                   checker watches, else 0 (read by allocations in checker builds) */
    size_t track_redzone_bytes; /* redzone bytes reserved by allocations since creation */
    size_t track_frontier;      /* bytes: ASan shadow of [0, frontier) is set by track.c; grows
                                   in steps (track_lock), never shrinks */
    pthread_mutex_t track_lock; /* serializes frontier moves; its own lock, because allocations
                                   that move it can run under the control lock (a lane split) */
    pthread_mutex_t control; /* serializes rollback, reset, wipe, split and destroy */
    nalloc_ctx *owner;       /* the context this arena belongs to, or NULL */

    nalloc_arena_config config; /* as created; config.name points at name */
    char name[NA_NAME_MAX];

    /* -- The memory under it: what its backing was asked for and what it gave (backing.h). -- */
    na_memory memory;
    int pid;                 /* getpid() at creation: only that process wipes it at exit */

    /* -- Lanes (lane.c makes them; arena.c keeps the parent's side). A lane is an arena whose
     *    memory is a block of its parent's. -- */
    nalloc_arena *parent;    /* the arena this lane was carved from; NULL for other arenas
                                (memory.parent_offset: where) */
    size_t lanes_alive;      /* lanes carved from this arena and not destroyed yet (atomic) */
    size_t lanes_end;        /* bytes: end of the highest lane block; while lanes_alive, nothing
                                below it is released (control lock) */
    size_t clean_start;      /* bytes: [clean_start, clean_end) is a lane block that its lanes
                                keep clean (they wipe their own memory), so this arena's own wipes
                                skip it; empty when clean_end is 0 (atomic) */
    size_t clean_end;
    size_t clean_below;      /* bytes: this arena's dirty extent below clean_start (control lock) */
    size_t lent;             /* bytes of lane blocks below the offset (atomic; changed under the
                                control lock) */
    size_t own_peak;         /* bytes: peak of offset - lent, the arena's need without its lanes;
                                lazy like high_water (atomic) */
    size_t lane_peak;        /* bytes: largest high-water mark of a lane of this arena (atomic) */
    size_t lanes_peak;       /* most lanes carved from this arena by one split (atomic) */

    /* -- Prefault-ahead (prefault.c): the helper thread's view of this arena. -- */
    na_prefault prefault;

    /* -- Thread chunks and the malloc family (tcache.c, blocks.c, stretch.c). A doomed arena
     *    (nalloc_arena_destroy_deferred) has magic NA_MAGIC_DOOMED. -- */
    size_t fallbacks;        /* malloc-family requests routed here that the system allocator
                                served because this arena had no room (atomic) */
    size_t forgotten;        /* live blocks an unchecked reset or wipe forgot (atomic) */
    pthread_mutex_t chunk_lock; /* guards the free stretches; taken through na_stretch_lock */
    size_t chunk_owner;         /* thread token of chunk_lock's holder, 0 when free (atomic) */
    unsigned chunk_depth;       /* times the holder took it (its own to read and write) */
    bool fork_locked;           /* chunk_lock is held by a fork under way (handle lock held) */
    size_t stretch_count;    /* free stretches below the offset (atomic; changed under chunk_lock) */
    size_t stretch_bytes;    /* bytes they cover (atomic; changed under chunk_lock) */
    size_t freed_bytes;      /* bytes of blocks marked freed inside chunks, not popped yet (atomic) */
    na_stretch_map *stretches; /* stretch.c (chunk_lock) */

    na_stat_slot shared_slot;           /* for threads that found every private slot taken */
    na_stat_slot slots[NA_STAT_SLOTS];  /* claimed by CAS on owner */
};

/* common.h tells a live arena by the magic number in its first word, as every handle's. */
_Static_assert(offsetof(struct nalloc_arena, magic) == 0, "an arena header starts with its magic");

/* Every NALLOC_FLAG_* this build knows: the features (backing.h) and the behaviours. */
#define NA_KNOWN_FLAGS                                                                           \
    (NA_FEATURE_FLAGS | NALLOC_FLAG_WIPE_ON_DESTROY | NALLOC_FLAG_WIPE_AT_EXIT |                 \
     NALLOC_FLAG_STRICT | NALLOC_FLAG_PIN_FALLBACK | NALLOC_FLAG_NORESERVE |                    \
     NALLOC_FLAG_THREAD_CACHE | NALLOC_FLAG_PREFAULT_AHEAD)

/* Fold `offset`, the arena's offset now or one it had until just now, into the lazily kept
 * high-water mark, dirty extent and own peak (offset.c says why they are lazy). Called wherever
 * the offset is about to move down (or the peaks are read); between two such moves it only
 * grows. */
void na_arena_fold_own_peak(nalloc_arena *a, size_t offset); /* offset.c */
static inline void na_arena_fold(nalloc_arena *a, size_t offset)
{
    na_atomic_max(&a->high_water, offset);
    na_atomic_max(&a->dirty_end, offset);
    na_arena_fold_own_peak(a, offset);
}
/* Move the offset from `to` down to `from` if it is still `to` and no mark forbids it (folding
 * the lazy peaks first); false otherwise. offset.c. */
bool na_offset_give_back(nalloc_arena *a, size_t from, size_t to);

/* The high-water mark as it stands now: the folded peak, or the offset if that is higher. */
static inline size_t na_arena_peak(const nalloc_arena *a)
{
    size_t peak = na_atomic_load(&a->high_water), offset = na_atomic_load(&a->bump.offset);
    return peak > offset ? peak : offset;
}

/* The whole teardown of a live arena (wipe if asked or implied, release, handle freed); arena.c.
 * Used by nalloc_arena_destroy, nalloc_ctx_destroy and for lanes. With uid != 0, only the arena
 * of that uid is destroyed: the slot may hold another arena by the time the control lock is
 * taken (NALLOC_ERR_STATE then, with the cause noted, as for an arena already destroyed). Records
 * no error: a failed wipe's status is returned with its cause noted, the arena released anyway. */
nalloc_status na_arena_destroy(nalloc_arena *a, uint64_t uid);

/* A free of a doomed arena's block was counted (blocks.h, na_blocks_freed): destroy the arena
 * if it was the last. arena.c. */
void na_arena_doomed_free(nalloc_arena *a);

/* ---- Prefault-ahead (prefault.c) ---- */

/* Hand a live arena whose backing put NALLOC_FLAG_PREFAULT_AHEAD in force to the helper thread,
 * starting the helper if none runs. Arenas whose every page is resident already (populated,
 * pinned) are left alone. 0, or the errno of a helper that could not be started. */
int na_prefault_register(nalloc_arena *a);

/* Take the arena off the helper's list and wait until the helper is not touching its memory:
 * after this returns the helper never looks at the arena again, so its memory may be unmapped.
 * Harmless for an arena that was never registered. Takes the prefault lock: never call it with
 * that lock held; the arena's control lock may be held. */
void na_prefault_unregister(nalloc_arena *a);

/* NALLOC_FLAG_PREFAULT_AHEAD when the backing put it in force but the helper has given up on the
 * arena since (a forked child, or the kernel refused a stretch); 0 otherwise. */
unsigned na_prefault_lost(const nalloc_arena *a);

/* ---- Lanes (lane.c) and their parents (arena.c) ---- */

/* Create an arena as `config` asks, with `backing` giving it memory; `parent` and
 * `parent_offset` are known to the backing's create (NULL and 0 but for lanes).
 * nalloc_arena_create is this with the backing for config->memory, and records the error this
 * only returns (with its cause noted). arena.c. */
nalloc_status na_arena_create_from(const nalloc_arena_config *config, const na_backing *backing,
                                   nalloc_arena *parent, size_t parent_offset, nalloc_arena **out);

/* The parent's side of a split (control lock of `p` held): the lanes of `count` were made in
 * [begin, begin + size), a block of `p` handed out while `p`'s dirty extent was `dirty`. `p` keeps
 * it from being released while they live, and skips it in its wipes. arena.c. */
void na_arena_lend(nalloc_arena *p, size_t begin, size_t size, size_t count, size_t dirty);

/* True when a live (or doomed) lane split from `a`, directly or not, has malloc-family blocks
 * alive: destroying `a` would destroy their memory. arena.c. */
bool na_arena_lane_blocks_live(const nalloc_arena *a);

/* The alignment of lane blocks for a parent with this alignment policy: bytes, a power of two.
 * lane.c. */
size_t na_lane_align(size_t default_align, size_t large_align);

/* ---- Contexts (ctx.c) ---- */

/* The context's arena of `kind` (a valid kind), or NULL when the context is not alive or omitted
 * the kind; records nothing. */
nalloc_arena *na_ctx_arena(nalloc_ctx *ctx, nalloc_kind kind);
bool na_ctx_alive(const nalloc_ctx *ctx);

/* ---- Handles (handle.c) ---- */

/* A zeroed, cache-aligned slot big enough for an arena or a context header; NULL if the OS
 * refused (errno kept). */
void *na_handle_alloc(void);
/* Return a slot; its memory stays mapped and is reused oldest-first. */
void na_handle_free(void *handle);
/* Call fn(handle, arg) on every slot ever handed out, live or not, under the handle lock. */
void na_handle_foreach(void (*fn)(void *handle, void *arg), void *arg);
/* Call fn(handle) under the handle lock, so that no na_handle_foreach callback runs meanwhile: an
 * arena is retired this way, so the exit-time wipe never zeroes memory being unmapped. */
void na_handle_exclusive(void (*fn)(void *handle), void *handle);
/* Locks held across fork besides the handle lock: lock_slot(handle) on every slot ever handed out,
 * then lock_global(), after the handle lock is taken; unlock_global(), then unlock_slot(handle)
 * on every slot, before it is released, in the parent and in the child. An unlock hook must
 * unlock only what its lock hook locked (a hook set while a fork is under way sees a slot it did
 * not lock). Set before handing out what they guard; setting them again is harmless. */
void na_handle_fork_slots(void (*lock_slot)(void *handle), void (*unlock_slot)(void *handle));
void na_handle_fork_global(void (*lock_global)(void), void (*unlock_global)(void));

/* ---- Threads (thread.c) ---- */

/* What a thread's exit does, step by step in this order. */
typedef enum na_thread_exit_step {
    NA_THREAD_EXIT_ROUTES, /* route.c: the route stack forgets the thread's slots */
    NA_THREAD_EXIT_SLOTS,  /* arena.c: the thread's chunks go back, its slots are freed */
    NA_THREAD_EXIT_TEXT,   /* status.c: the page of its error text is unmapped */
    NA_THREAD_EXIT_STEPS
} na_thread_exit_step;

/* Have every thread whose exit is armed run fn(its token) at `step` when it exits. Set before
 * handing out what it cleans up; setting it again (to the same function) is harmless. Async-
 * signal-safe. */
void na_thread_at_exit(na_thread_exit_step step, void (*fn)(size_t token));

/* The calling thread's token: never 0, never reused. The first call arms the thread's exit
 * (pthread calls, not async-signal-safe); later ones are a thread-local load. A thread whose
 * exit ran gets a new token, and its exit armed again, on its next call. */
size_t na_thread_token(void);

/* ---- Statistics (stats.c) ---- */

uint64_t na_next_uid(void);

/* The calling thread's slot in `a`, claimed on first use (slow path out of line). */
na_stat_slot *na_stat_slot_claim(nalloc_arena *a);

typedef struct na_slot_cache_entry {
    uint64_t uid;       /* arena uid, 0 for an empty entry */
    na_stat_slot *slot; /* the thread's slot in that arena */
} na_slot_cache_entry;
#define NA_SLOT_CACHE 8 /* arenas a thread can alternate between without the slow path */
extern NA_THREAD_LOCAL na_slot_cache_entry na_slot_cache[NA_SLOT_CACHE];

/* A 64-bit mix of one block's place (splitmix64's finalizer); the layout digest is their sum.
 *
 * Why a sum of per-block mixes rather than a chained hash of the sequence: threads sharing an
 * arena keep partial sums in their own stat slots, and a thread that exits leaves its slot to the
 * next one, so only a combination that ignores how blocks were split among slots gives the same
 * digest for the same layout. Within one phase (between two moves of the offset down: rollback,
 * reset, wipe) the order is not lost, because a bump allocator hands out strictly increasing
 * offsets, so the set of blocks fixes their sequence. Across phases it would be lost (alloc 64,
 * reset, alloc 128 and the reverse are the same set), so each block is mixed with `phase`, the
 * number of rollbacks, resets and wipes before it: the digest then identifies the sequence of
 * (phase, offset, size). free_last and resize_last are not phases (they may run concurrently
 * with allocations); a block they give back still counts as handed out. */
static inline uint64_t na_layout_mix(size_t offset, size_t size, uint64_t phase)
{
    uint64_t x = (uint64_t)offset ^ ((uint64_t)size * UINT64_C(0x9e3779b97f4a7c15)) ^
                 (phase * UINT64_C(0xd6e8feb86659fd93));
    x ^= x >> 30;
    x *= UINT64_C(0xbf58476d1ce4e5b9);
    x ^= x >> 27;
    x *= UINT64_C(0x94d049bb133111eb);
    return x ^ (x >> 31);
}

/* Add v to a field of a statistics slot. The owner is the slot's only writer, so it needs no
 * locked instruction; it needs one instruction, though, where it can have it: a signal handler
 * that allocates from the same arena on the same thread runs between two instructions of the
 * interrupted thread, and a load, add and store would lose the handler's addition made between
 * them. On x86-64 a memory-destination add is that one instruction, and readers on other cores
 * (nalloc_arena_stats, relaxed loads) see the old or the new value, as with a relaxed store. Not
 * under ThreadSanitizer, which does not see inside asm and would miss the writes. Elsewhere the
 * handler's count may be lost (nalloc.h, "Signals"). */
#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define NA_TSAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__) || defined(NA_TSAN) || !defined(__x86_64__)
#define NA_SLOT_ADD_ASM 0
#else
#define NA_SLOT_ADD_ASM 1
#endif

static inline void na_slot_add(size_t *field, size_t v, bool shared)
{
    if (na_unlikely(shared)) {
        __atomic_fetch_add(field, v, __ATOMIC_RELAXED);
        return;
    }
#if NA_SLOT_ADD_ASM
    __asm__("addq %1, %0" : "+m"(*field) : "er"(v) : "cc");
#else
    __atomic_store_n(field, __atomic_load_n(field, __ATOMIC_RELAXED) + v, __ATOMIC_RELAXED);
#endif
}

/* As na_slot_add, with release ordering for readers that count on it (na_blocks_live). */
static inline void na_slot_add_release(size_t *field, size_t v, bool shared)
{
    if (na_unlikely(shared))
        __atomic_fetch_add(field, v, __ATOMIC_RELEASE);
    else
        __atomic_store_n(field, __atomic_load_n(field, __ATOMIC_RELAXED) + v, __ATOMIC_RELEASE);
}

/* The calling thread's slot in `a`, claimed on first use (slow path out of line). */
static inline na_stat_slot *na_stat_slot_of(nalloc_arena *a)
{
    na_slot_cache_entry *e = &na_slot_cache[a->uid & (NA_SLOT_CACHE - 1)];
    return na_likely(e->uid == a->uid) ? e->slot : na_stat_slot_claim(a);
}

/* Count, in slot `s`, one successful allocation of `size` bytes at `offset` after `pad` bytes of
 * padding. */
static inline void na_stats_count(nalloc_arena *a, na_stat_slot *s, size_t offset, size_t size,
                                  size_t pad)
{
    bool shared = s == &a->shared_slot;
    na_slot_add(&s->allocations, 1, shared);
    na_slot_add(&s->padding, pad, shared);
    /* The epoch changes only at phase boundaries, never during allocations, so its cache line
     * (on_alloc's, read above anyway) stays shared in every core and this load hits L1. */
    uint64_t phase = __atomic_load_n(&a->epoch, __ATOMIC_RELAXED);
    na_slot_add(&s->digest, (size_t)na_layout_mix(offset, size, phase), shared);
}

/* ---- Thread chunks for nalloc_alloc (tcache.c) ---- */

/* Take `size` bytes at `align` from the thread's chunk `c`, if it is current and has room. */
static inline bool na_tcache_take(nalloc_arena *a, na_chunk *c, size_t size, size_t align,
                                  size_t *begin, size_t *pad)
{
    size_t end = na_atomic_load(&c->end), cursor = na_atomic_load(&c->cursor), last;
    if (na_unlikely(end == 0 || __atomic_load_n(&c->epoch, __ATOMIC_RELAXED) !=
                                    __atomic_load_n(&a->epoch, __ATOMIC_RELAXED)))
        return false;
    if (na_unlikely(!nalloc_bump_fit(a->bump.base, end, cursor, size, align, begin, &last)))
        return false;
    na_atomic_store(&c->cursor, last);
    *pad = *begin - cursor;
    return true;
}

/* The slow path: grow the chunk in place, take a free stretch or a new chunk, or (big requests)
 * the offset directly. False when the arena has no room; nothing is consumed then. */
bool na_tcache_refill(nalloc_arena *a, na_chunk *c, size_t size, size_t align, size_t *begin,
                      size_t *pad);
/* Give the unused part of the thread's chunk back to the offset, or free it as a stretch (by its
 * owner, or for an exiting owner). */
void na_tcache_give_back(nalloc_arena *a, na_chunk *c);
/* After the thread's newest block shrank or went back inside chunk `c`: a remainder larger than
 * the largest chunk (the block had grown past its chunk) goes back to the offset if nothing lies
 * above it, so that a thread caches at most about one chunk. */
void na_tcache_trim(nalloc_arena *a, na_chunk *c);
/* True when [begin, end) overlaps the unused remainder of some thread's current chunk: not a
 * block, whatever a caller says (free_last and resize_last refuse it). */
bool na_tcache_covers(const nalloc_arena *a, size_t begin, size_t end);
/* Bytes of live chunks' unused remainders: handed out to no one, not free for others either. */
size_t na_tcache_cached(const nalloc_arena *a);
/* A phase boundary moves the offset to `target` (control lock held, epoch not bumped yet):
 * remainders of chunks it retires below it become free stretches. */
void na_tcache_boundary(nalloc_arena *a, size_t target);
/* The thread that owns slot `s` is exiting (control lock held). */
void na_tcache_thread_exit(nalloc_arena *a, na_stat_slot *s);

/* ---- The malloc family's blocks (blocks.c) ---- */

/* A block of `size` bytes (0 allowed) at `align` (0: the policy alignment; at least 16) that
 * nalloc_free can free; NULL when the arena has no room, or is a device arena (the last error is
 * left to the caller). The caller checked that the arena is alive. */
void *na_block_alloc(nalloc_arena *a, size_t size, size_t align);
/* Free the block at `ptr` of arena `a` (NALLOC_ERR_INVALID: not a block; NALLOC_ERR_STATE:
 * freed already). The arena may be doomed: after a free, the caller calls na_blocks_freed
 * (blocks.h), which destroys it if that was its last block. */
nalloc_status na_block_free(nalloc_arena *a, const void *ptr);
/* Resize in place, if the block is its chunk's newest or the arena's last stretch. */
nalloc_status na_block_resize(nalloc_arena *a, void *ptr, size_t new_size);
/* Zero a block just allocated, skipping bytes that are fresh from the OS. */
void na_block_zero(nalloc_arena *a, void *ptr, size_t size);
/* *size: the block's size; false if ptr is no live block of `a`. */
bool na_block_size(nalloc_arena *a, const void *ptr, size_t *size);
/* Blocks allocated and not freed (a snapshot; never less than the truth at its end). */
size_t na_blocks_live(const nalloc_arena *a);
/* Bytes of the malloc family's chunks not used by blocks. */
size_t na_blocks_cached(const nalloc_arena *a);
/* A phase boundary moves the offset to `target` with no block live (control lock held, epoch
 * not bumped yet): retired chunks below it become free stretches. */
void na_blocks_boundary(nalloc_arena *a, size_t target);
/* The thread owning slot `s` exits (control lock held): its chunk is abandoned. */
void na_blocks_thread_exit(nalloc_arena *a, na_stat_slot *s);
/* Mark `a` doomed (NA_MAGIC_DOOMED), with the barrier that makes frees see it;
 * NALLOC_ERR_UNSUPPORTED (nothing done) where the kernel lacks that barrier, which
 * na_blocks_doom_supported tells beforehand. */
nalloc_status na_blocks_doom(nalloc_arena *a);
bool na_blocks_doom_supported(void);

/* ---- Free stretches below the offset (stretch.c; chunk_lock taken inside) ---- */

/* Take and release an arena's chunk_lock, recursively: a fork holds it (from its prepare handler
 * to its parent and child handlers, arena.c) on the forking thread, and fork handlers installed
 * before nalloc's run theirs first, on that thread, where a routed malloc or free takes it again.
 * The holder is known by its thread token, which a forked child's thread keeps (a pthread
 * recursive mutex knows it by thread id, which the child's thread does not keep). */
void na_stretch_lock(nalloc_arena *a);
void na_stretch_unlock(nalloc_arena *a);

/* [begin, end) is free: merged with its neighbours, given back if it reaches the offset, else kept
 * for chunks to reuse. _locked: chunk_lock held. */
void na_stretch_free(nalloc_arena *a, size_t begin, size_t end);
void na_stretch_free_locked(nalloc_arena *a, size_t begin, size_t end);
/* Give back a stretch that now ends at the offset. */
void na_stretch_drain(nalloc_arena *a);
/* Take a free stretch with room for `size` bytes at `align`: up to `want` bytes of it (the rest
 * stays free); false if none has room. */
bool na_stretch_take(nalloc_arena *a, size_t size, size_t align, size_t want, na_range *out);
/* As na_stretch_take, among the stretches that begin at or above `floor` only. */
bool na_stretch_take_above(nalloc_arena *a, size_t floor, size_t size, size_t align, size_t want,
                           na_range *out);
/* A phase boundary moved the offset to `target`: stretches above it are gone. */
void na_stretch_boundary(nalloc_arena *a, size_t target);
/* Unmap the index (retire). */
void na_stretch_destroy(nalloc_arena *a);

/* ---- Ownership (owner.c) ---- */

#define NA_OWNER_GRANULE_SHIFT 21 /* 2 MiB per table entry */
#define NA_OWNER_LEAF_SHIFT 30    /* 1 GiB per leaf: 512 entries, one page */
#define NA_OWNER_ADDRESS_BITS 47  /* user space on x86-64 and arm64 with 4-level tables */
#define NA_OWNER_LEAF_ENTRIES ((size_t)1 << (NA_OWNER_LEAF_SHIFT - NA_OWNER_GRANULE_SHIFT))
#define NA_OWNER_LEAVES ((size_t)1 << (NA_OWNER_ADDRESS_BITS - NA_OWNER_LEAF_SHIFT))
#define NA_OWNER_MIXED ((uintptr_t)1)

/* The granule table's leaves (owner.c): an entry is the arena owning every address of its 2 MiB
 * granule, 0 for none, NA_OWNER_MIXED when the registry must be searched. */
extern uintptr_t *na_owner_leaves[NA_OWNER_LEAVES];

/* False when no arena can hold `ptr` (decided inline: two loads); true when one may (an entry of
 * the granule table is set, or the address is beyond it): ask na_owner_in_table. */
static inline bool na_owner_maybe(const void *ptr)
{
    uintptr_t x = (uintptr_t)ptr;
    if (na_unlikely(x >> NA_OWNER_ADDRESS_BITS))
        return true;
    const uintptr_t *leaf = __atomic_load_n(&na_owner_leaves[x >> NA_OWNER_LEAF_SHIFT], __ATOMIC_ACQUIRE);
    return leaf != NULL &&
           __atomic_load_n(&leaf[(x >> NA_OWNER_GRANULE_SHIFT) & (NA_OWNER_LEAF_ENTRIES - 1)],
                           __ATOMIC_ACQUIRE) != 0;
}

/* nalloc_owner, with the common case (one arena owns the whole granule) inline. */
static inline nalloc_arena *na_owner_in_table(const void *ptr)
{
    uintptr_t x = (uintptr_t)ptr;
    if (na_likely(!(x >> NA_OWNER_ADDRESS_BITS))) {
        const uintptr_t *leaf = __atomic_load_n(&na_owner_leaves[x >> NA_OWNER_LEAF_SHIFT],
                                                __ATOMIC_ACQUIRE);
        uintptr_t entry = leaf == NULL ? 0
                                       : __atomic_load_n(&leaf[(x >> NA_OWNER_GRANULE_SHIFT) &
                                                               (NA_OWNER_LEAF_ENTRIES - 1)],
                                                         __ATOMIC_ACQUIRE);
        if (entry == 0)
            return NULL;
        const nalloc_arena *a = (const nalloc_arena *)entry;
        if (entry != NA_OWNER_MIXED && x - a->bump.base < a->bump.capacity && na_arena_mapped(a))
            return (nalloc_arena *)a;
    }
    return nalloc_owner(ptr);
}

/* Enter a host-accessible arena's range in the ownership table, or take it out. */
nalloc_status na_owner_register(nalloc_arena *a);
void na_owner_unregister(nalloc_arena *a);

/* ---- Routes (route.c) ---- */

/* The system allocator, bypassing any malloc that interposes on it (the override library). */
void *na_sys_malloc(size_t size);
void na_sys_free(void *ptr);

#endif /* NALLOC_INTERNAL_H */
