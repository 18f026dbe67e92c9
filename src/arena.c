/* src/arena.c - arenas: creation, allocation, marks, reset, wipe, destruction.
 *
 * An arena is a bump region over memory a backing reserved once. Allocation is nalloc_bump_reserve
 * (one CAS on the offset) plus thread-private statistics; nothing else runs on that path, and no
 * lock is taken, so any number of threads allocate at once.
 *
 * Everything that moves the offset down is a phase boundary and runs under the arena's control
 * lock: rollback to a mark, reset, wipe, destroy. Two facts make those cheap and safe:
 *
 *  - The high-water mark and the dirty extent (bytes handed out since the last wipe) are kept
 *    lazily. Between two downward moves the offset only grows, so its peak is the value just
 *    before a downward move; we fold that value in at each downward move (and when reading
 *    statistics) instead of on every allocation.
 *
 *  - A mark is (arena uid, generation, epoch, offset). Reset and wipe bump the generation, so
 *    older marks are refused; every phase boundary (rollback, reset, wipe) bumps the epoch, which
 *    the layout digest also mixes into each block. A rollback to offset T at epoch E releases
 *    every byte from T up, so a mark taken before E at an offset above T points into released
 *    memory and is stale. The
 *    arena keeps those rollbacks as records (epoch, target) with increasing targets (a later
 *    rollback to a lower target hides earlier ones): a mark is stale if the first record after
 *    its epoch has a target below its offset. When more records would be kept than fit, the two
 *    oldest merge into one that answers conservatively: a very old mark may be refused, never a
 *    stale one obeyed. free_last and resize_last may not move the offset below the newest mark
 *    (mark_floor), so marks stay meaningful without recording them.
 */
#include "internal.h"
#include "track.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---------------------------------------------------------------------------------------------
 * Configuration
 * ------------------------------------------------------------------------------------------- */

static const char *const kind_names[NALLOC_KIND_COUNT] = {"poly", "witness", "scratch"};

void nalloc_arena_config_init(nalloc_arena_config *c, nalloc_kind kind, nalloc_memory memory,
                              size_t capacity)
{
    if (c == NULL)
        return;
    memset(c, 0, sizeof *c);
    c->kind = kind;
    c->memory = memory;
    c->capacity = capacity;
    c->default_align = na_option_get(memory == NALLOC_MEMORY_DEVICE ? NA_OPTION_DEVICE_ALIGN
                                                                    : NA_OPTION_HOST_ALIGN);
    c->large_threshold = na_option_get(NA_OPTION_LARGE_THRESHOLD);
    c->large_align = na_option_get(NA_OPTION_LARGE_ALIGN);
    c->guard_size = na_option_get(NA_OPTION_GUARD_SIZE);
    c->device_slack = na_option_get(NA_OPTION_DEVICE_SLACK);
    c->pin_chunk = na_option_get(NA_OPTION_PIN_CHUNK);
    bool host_pages = memory != NALLOC_MEMORY_DEVICE;
    switch (kind) {
    case NALLOC_KIND_POLY:
        c->flags = host_pages ? NALLOC_FLAG_HUGEPAGES : 0;
        break;
    case NALLOC_KIND_WITNESS:
        c->flags = NALLOC_FLAG_WIPE_ON_DESTROY | NALLOC_FLAG_WIPE_AT_EXIT;
        if (host_pages)
            c->flags |= NALLOC_FLAG_LOCK | NALLOC_FLAG_NODUMP | NALLOC_FLAG_WIPEONFORK;
        break;
    default:
        c->flags = 0;
        break;
    }
}

static nalloc_status check_config(const nalloc_arena_config *c)
{
    if ((unsigned)c->kind >= NALLOC_KIND_COUNT || (unsigned)c->memory > NALLOC_MEMORY_DEVICE)
        return NALLOC_ERR_INVALID;
    if (!nalloc_is_pow2(c->default_align) || !nalloc_is_pow2(c->large_align))
        return NALLOC_ERR_INVALID;
    if (c->flags & ~(unsigned)NA_KNOWN_FLAGS)
        return NALLOC_ERR_INVALID;
    if (c->capacity == 0 && !(c->memory == NALLOC_MEMORY_DEVICE && c->device_fraction > 0))
        return NALLOC_ERR_INVALID;
    return NALLOC_OK;
}

static const na_backing *backing_for(nalloc_memory memory)
{
    switch (memory) {
    case NALLOC_MEMORY_HOST:
        return &na_backing_host;
#if defined(NALLOC_HAVE_CUDA)
    case NALLOC_MEMORY_PINNED:
        return &na_backing_pinned;
    case NALLOC_MEMORY_DEVICE:
        return &na_backing_device;
#endif
    default:
        return NULL;
    }
}

/* ---------------------------------------------------------------------------------------------
 * Creation and destruction
 * ------------------------------------------------------------------------------------------- */

/* At process exit, zero every live host-accessible arena that asked for it. Only the memory is
 * touched, not the arena's state: other threads may still be running, and zeroing twice is
 * harmless; one that destroys an arena meanwhile unmaps it under the handle lock this runs
 * under. Device arenas are left to the driver, which tears their context down at exit; the CUDA
 * runtime may already be unloaded by the time this runs. */
static void wipe_one_at_exit(void *handle, void *pid)
{
    nalloc_arena *a = handle;
    /* A forked child skips its parent process's arenas: their pages are zeros (wipe-on-fork),
     * absent (secret arenas are not inherited) or copies the parent still holds, and zeroing them
     * would fault in or copy every page, or crash. */
    if (!na_arena_mapped(a) || !(a->config.flags & NALLOC_FLAG_WIPE_AT_EXIT) ||
        !a->backing->host_accessible || a->pid != *(const int *)pid)
        return;
    size_t end = nalloc_atomic_load(&a->dirty_end);
    size_t offset = nalloc_atomic_load(&a->bump.offset);
    if (offset > end)
        end = offset;
    if (end > 0) {
        na_track_wipe_begin(a, end);
        size_t zeroed;
        na_lanes_zero_dirty(a, end, NULL, &zeroed);
    }
}

static void wipe_all_at_exit(void)
{
    int pid = (int)getpid();
    na_handle_foreach(wipe_one_at_exit, &pid);
}

void na_arena_after_fork(void *handle, void *unused)
{
    nalloc_arena *a = handle;
    (void)unused;
    if (na_arena_mapped(a) && (a->in_force & NALLOC_FLAG_SECRET)) /* lanes inherit in_force */
        __atomic_store_n(&a->magic, NA_MAGIC_DEAD, __ATOMIC_RELEASE);
}

static void register_exit_wipe(void)
{
    atexit(wipe_all_at_exit); /* if registration fails, destroy-time wipes still happen */
}

nalloc_status nalloc_arena_create(const nalloc_arena_config *config, nalloc_arena **out)
{
    if (out == NULL)
        return na_set_error(NALLOC_ERR_INVALID);
    *out = NULL;
    if (config == NULL)
        return na_set_error(NALLOC_ERR_INVALID);
    return na_arena_create_from(config, backing_for(config->memory), NULL, 0, out);
}

nalloc_status na_arena_create_from(const nalloc_arena_config *config, const na_backing *backing,
                                   nalloc_arena *parent, size_t parent_offset, nalloc_arena **out)
{
    *out = NULL;
    nalloc_status st = check_config(config);
    if (st != NALLOC_OK)
        return na_set_error(st);
    if (backing == NULL)
        return na_set_error(NALLOC_ERR_UNSUPPORTED);

    static pthread_once_t exit_once = PTHREAD_ONCE_INIT;
    if (config->flags & NALLOC_FLAG_WIPE_AT_EXIT)
        pthread_once(&exit_once, register_exit_wipe);

    nalloc_arena *a = na_handle_alloc();
    if (a == NULL)
        return na_set_error(NALLOC_ERR_OS);
    na_trace_push("nalloc_arena_create", NULL);
    a->config = *config;
    const char *name = config->name ? config->name : kind_names[config->kind];
    snprintf(a->name, sizeof a->name, "%s", name);
    a->config.name = a->name;
    a->backing = backing;
    a->on_alloc = backing->on_alloc;
    a->default_align = config->default_align;
    a->large_threshold = config->large_threshold;
    a->large_align = config->large_align;
    a->uid = na_next_uid();
    a->check_salt = na_layout_mix(a->uid, 0, UINT64_C(0x636865636b)); /* blocks.h */
    a->secret_fd = -1;
    a->pid = (int)getpid();
    a->parent = parent;
    a->parent_offset = parent_offset;
    a->shared_slot.owner = NA_SLOT_SHARED;
    /* A slot's mutexes are destroyed when the slot is taken again, not when its arena dies (a
     * racing destroy may still be waiting on the control lock then): this forgets whatever the
     * slot's previous arena left in them (thread checkers key mutexes by address). A zeroed slot
     * holds a valid unlocked mutex to destroy. */
    pthread_mutex_destroy(&a->control);
    pthread_mutex_destroy(&a->track_lock);
    pthread_mutex_destroy(&a->chunk_lock);
    pthread_mutex_init(&a->control, NULL);
    pthread_mutex_init(&a->track_lock, NULL);
    pthread_mutex_init(&a->chunk_lock, NULL);
    /* Device arenas are fed by one host thread at a time: no cache (docs/performance.md). */
    a->thread_cache = (config->flags & NALLOC_FLAG_THREAD_CACHE) != 0 && backing->host_accessible;

    st = backing->create(a);
    if (st != NALLOC_OK) {
        int err = errno;
        na_handle_free(a);
        na_trace_pop();
        errno = err;
        return na_set_error(st);
    }
    /* Host-visible memory can hold malloc-family blocks, found by address (owner.c). */
    if (backing->host_accessible && (st = na_owner_register(a)) != NALLOC_OK) {
        int err = errno;
        backing->destroy(a);
        na_handle_free(a);
        na_trace_pop();
        errno = err;
        return na_set_error(st);
    }
    /* Memory that is not fresh (device memory) is dirty from the start. (A lane's create sets
     * its dirty extent from its parent's.) */
    if (!backing->fresh_is_zero)
        a->dirty_end = a->bump.capacity;
    na_track_create(a);
    __atomic_store_n(&a->magic, NA_MAGIC_ARENA, __ATOMIC_RELEASE);
    na_trace_pop();
    *out = a;
    return NALLOC_OK;
}

void na_arena_fold(nalloc_arena *a, size_t offset)
{
    nalloc_atomic_max(&a->high_water, offset);
    nalloc_atomic_max(&a->dirty_end, offset);
    na_lanes_settle(a, offset);
}

/* Fold the current offset into the lazy peaks; returns the offset. */
static size_t settle(nalloc_arena *a)
{
    size_t offset = nalloc_atomic_load(&a->bump.offset);
    na_arena_fold(a, offset);
    return offset;
}

/* Move the offset down to `target` and make every mark above it stale (control lock held; the
 * caller bumps the epoch next, which retires every thread's chunk). */
static void release_to(nalloc_arena *a, size_t target, size_t from)
{
    na_track_release(a, target, from);
    nalloc_atomic_store(&a->bump.offset, target);
    nalloc_atomic_store(&a->mark_floor, target);
    /* Free stretches above the target went with it; retired chunks below it are free now (the
     * mark floor keeps them from going below the target). */
    na_stretch_boundary(a, target);
    na_tcache_boundary(a, target);
    na_blocks_boundary(a, target);
    na_lanes_release(a, target);
    if (a->backing->on_release)
        a->backing->on_release(a, target);
}

/* Everything from the generation on is forgotten: marks, history, offset (control lock held). */
static void reset_locked(nalloc_arena *a)
{
    size_t offset = settle(a);
    release_to(a, 0, offset);
    __atomic_fetch_add(&a->generation, 1, __ATOMIC_RELAXED);
    __atomic_fetch_add(&a->epoch, 1, __ATOMIC_RELAXED); /* a phase boundary too */
    a->history_len = 0;
}

static nalloc_status wipe_locked(nalloc_arena *a, void *stream)
{
    settle(a);
    size_t end = nalloc_atomic_load(&a->dirty_end), zeroed = 0;
    if (end > 0) {
        na_track_wipe_begin(a, end);
        /* Tools told of each block (NVTX on device arenas) see the wipe's range as one block, so
         * the wipe kernel's stores to padding and released bytes are not reported. */
        if (a->on_alloc)
            a->on_alloc(a, 0, end);
        nalloc_status st = na_lanes_zero_dirty(a, end, stream, &zeroed);
        if (st != NALLOC_OK)
            return st;
    }
    reset_locked(a);
    na_track_release(a, 0, end); /* the reset released [0, offset); the wipe touched [0, end) */
    nalloc_atomic_store(&a->dirty_end, 0);
    __atomic_fetch_add(&a->wipes, 1, __ATOMIC_RELAXED);
    __atomic_fetch_add(&a->wiped_bytes, zeroed, __ATOMIC_RELAXED);
    return NALLOC_OK;
}

/* Mark the arena dead and give its memory back (under the handle lock: na_handle_exclusive). */
static void retire(void *handle)
{
    nalloc_arena *a = handle;
    __atomic_store_n(&a->magic, NA_MAGIC_DEAD, __ATOMIC_RELEASE);
    if (a->backing->host_accessible)
        na_owner_unregister(a);
    na_stretch_destroy(a);
    na_track_destroy(a);
    a->backing->destroy(a);
}

nalloc_status na_arena_destroy(nalloc_arena *a)
{
    na_trace_push("nalloc_arena_destroy", a);
    pthread_mutex_lock(&a->control);
    if (!na_arena_mapped(a)) { /* lost a race with another destroy */
        pthread_mutex_unlock(&a->control);
        na_trace_pop();
        return na_set_error(NALLOC_ERR_STATE);
    }
    nalloc_status st = NALLOC_OK;
    if (__atomic_load_n(&a->lanes_alive, __ATOMIC_ACQUIRE) > 0)
        na_lanes_destroy_all(a);
    if (a->config.flags & NALLOC_FLAG_WIPE_ON_DESTROY)
        st = wipe_locked(a, NULL);
    if (na_option_get(NA_OPTION_VERBOSE))
        nalloc_arena_print_stats(a, stderr);
    /* A witness arena whose wipe failed (a device fault) is still released: keeping it would leak
     * the memory and the secret both. The failure is reported. Retired under the handle lock: the
     * exit-time wipe (another thread may call exit meanwhile) sees the arena alive and mapped, or
     * dead. */
    na_handle_exclusive(retire, a);
    /* The mutexes are not destroyed: another destroy (or rollback, reset, wipe) may be waiting on
     * the control lock, and finds the arena dead once it gets it. The slot is never unmapped; a
     * creation that takes it again destroys and initializes them afresh. */
    pthread_mutex_unlock(&a->control);
    na_handle_free(a);
    na_trace_pop();
    return st == NALLOC_OK ? NALLOC_OK : na_set_error(st);
}

nalloc_status nalloc_arena_destroy(nalloc_arena *a)
{
    nalloc_status st = na_arena_check(a);
    if (st != NALLOC_OK)
        return na_set_error(st);
    /* A context's, or blocks still alive in it or in a lane it would destroy with it. */
    if (a->owner != NULL || na_blocks_live(a) > 0 || na_lanes_blocks_live(a))
        return na_set_error(NALLOC_ERR_STATE);
    return na_arena_destroy(a);
}

nalloc_status nalloc_arena_destroy_deferred(nalloc_arena *a)
{
    nalloc_status st = na_arena_check(a);
    if (st == NALLOC_OK && (a->owner != NULL || na_lanes_blocks_live(a)))
        st = NALLOC_ERR_STATE; /* a context's, or its lanes' blocks would die with it */
    if (st != NALLOC_OK)
        return na_set_error(st);
    pthread_mutex_lock(&a->control);
    st = na_arena_alive(a) ? na_blocks_doom(a) : NALLOC_ERR_STATE;
    pthread_mutex_unlock(&a->control);
    if (st != NALLOC_OK)
        return na_set_error(st);
    /* Every free from here on sees the arena doomed, and the last one destroys it; if none is
     * left, that is now. A racing last free may have destroyed it already: then this is done. */
    if (na_blocks_live(a) == 0) {
        st = na_arena_destroy(a);
        if (st == NALLOC_ERR_STATE)
            st = NALLOC_OK;
    }
    return st == NALLOC_OK ? st : na_set_error(st);
}

/* ---------------------------------------------------------------------------------------------
 * Allocation
 * ------------------------------------------------------------------------------------------- */

static void *fail(nalloc_arena *a, nalloc_status status)
{
    if (na_arena_alive(a))
        __atomic_fetch_add(&a->failures, 1, __ATOMIC_RELAXED);
    na_set_error(status);
    return NULL;
}

/* The allocation path: one CAS (or, with the thread cache, a bump in the thread's own chunk),
 * the thread's statistics, the tool hooks. */
static inline void *alloc_at(nalloc_arena *a, size_t size, size_t align)
{
    size_t begin, pad, extent; /* extent: size plus a redzone in checker builds (track.h) */
    if (na_unlikely(size == 0))
        return fail(a, NALLOC_ERR_INVALID);
    if (na_unlikely(!na_track_extent(a, size, &extent)))
        return fail(a, NALLOC_ERR_NOMEM);
    align = na_track_align(align);
    na_stat_slot *s = na_stat_slot_of(a);
    if (a->thread_cache && na_likely(s != &a->shared_slot)) {
        if (na_unlikely(!na_tcache_take(a, &s->plain, extent, align, &begin, &pad)) &&
            !na_tcache_refill(a, &s->plain, extent, align, &begin, &pad))
            return fail(a, NALLOC_ERR_NOMEM);
    } else if (na_unlikely(!nalloc_bump_reserve(&a->bump, extent, align, &begin, &pad))) {
        return fail(a, NALLOC_ERR_NOMEM);
    }
    na_assert_internal(begin <= a->bump.capacity && extent <= a->bump.capacity - begin);
    na_assert_internal(((a->bump.base + begin) & (align - 1)) == 0);
    na_stats_count(a, s, begin, size, pad);
    if (a->on_alloc)
        a->on_alloc(a, begin, size);
    void *p = (void *)(a->bump.base + begin);
    na_track_alloc(a, p, size, extent);
    return p;
}

static inline size_t policy_align(const nalloc_arena *a, size_t size)
{
    return size >= a->large_threshold ? a->large_align : a->default_align;
}

void *nalloc_alloc(nalloc_arena *a, size_t size)
{
    nalloc_status st = na_arena_check(a);
    if (na_unlikely(st != NALLOC_OK))
        return fail(NULL, st);
    return alloc_at(a, size, policy_align(a, size));
}

void *nalloc_alloc_aligned(nalloc_arena *a, size_t size, size_t align)
{
    nalloc_status st = na_arena_check(a);
    if (na_unlikely(st != NALLOC_OK))
        return fail(NULL, st);
    if (na_unlikely(!nalloc_is_pow2(align)))
        return fail(a, NALLOC_ERR_INVALID);
    return alloc_at(a, size, align);
}

void *nalloc_alloc_zeroed(nalloc_arena *a, size_t count, size_t size, size_t align)
{
    nalloc_status st = na_arena_check(a);
    if (st != NALLOC_OK)
        return fail(NULL, st);
    size_t bytes;
    if (__builtin_mul_overflow(count, size, &bytes) || (align != 0 && !nalloc_is_pow2(align)))
        return fail(a, NALLOC_ERR_INVALID);
    char *p = alloc_at(a, bytes, align ? align : policy_align(a, bytes));
    if (p == NULL)
        return NULL;
    /* Bytes at or above the dirty extent were never handed out since the last wipe. Read it after
     * the allocation: a free_last racing with us folds the block it gives back into the extent
     * before its release CAS moves the offset down, and our acquire CAS in nalloc_bump_reserve
     * orders that fold before this read whenever our block reuses those bytes. Read before, it
     * could miss them. */
    size_t dirty = nalloc_atomic_load(&a->dirty_end);
    size_t begin = (size_t)((uintptr_t)p - a->bump.base);
    if (begin < dirty) {
        size_t len = dirty - begin < bytes ? dirty - begin : bytes;
        st = a->backing->zero(a, begin, len, NULL);
        if (st != NALLOC_OK) {
            nalloc_free_last(a, p, bytes); /* best effort: the block is unusable either way */
            return fail(a, st);
        }
    }
    na_track_zeroed(a, p, bytes);
    return p;
}

/* ---------------------------------------------------------------------------------------------
 * The most recent block
 * ------------------------------------------------------------------------------------------- */

/* move_last_end_in_chunk's answer when the block is not the newest of the thread's chunk. */
#define NALLOC_ERR_NOT_IN_CHUNK ((nalloc_status)-1)

/* move_last_end for a block in the calling thread's current chunk (NALLOC_FLAG_THREAD_CACHE): the
 * chunk's cursor is the thread's own offset, so no atomic is needed unless the block grows past
 * the chunk, which it can only do while the chunk is the last thing in the arena. Marks of other
 * threads do not pin it: their rollback never reaches below their own offset. */
static nalloc_status move_last_end_in_chunk(nalloc_arena *a, void *ptr, size_t old_size,
                                            size_t new_size, size_t old_end, size_t new_end)
{
    na_stat_slot *s = na_stat_slot_of(a);
    na_chunk *c = &s->plain;
    size_t begin = (size_t)((uintptr_t)ptr - a->bump.base), end = nalloc_atomic_load(&c->end);
    if (s == &a->shared_slot || end == 0 || c->epoch != __atomic_load_n(&a->epoch, __ATOMIC_RELAXED))
        return NALLOC_ERR_NOT_IN_CHUNK;
    size_t cursor = nalloc_atomic_load(&c->cursor);
    /* A range that ends inside the chunk's unused remainder, or at its end (the arena's offset,
     * when the chunk is the last thing in it), is no block of this thread's: a wrong size.
     * Without this, the end of the chunk passes the offset test below, and the offset would move
     * under a remainder the chunk still hands out. */
    if (cursor != old_end)
        return old_end > cursor && old_end <= end ? NALLOC_ERR_STATE : NALLOC_ERR_NOT_IN_CHUNK;
    if (begin < nalloc_atomic_load(&c->begin)) {
        /* The block ends where the thread's chunk begins, and the chunk is empty (the block was
         * too big for a chunk, or the chunk began at a mark): the block is the thread's newest
         * all the same. If nothing lies above the chunk, the chunk goes back, and the block is
         * the arena's last, as it would be without the cache. */
        if (na_offset_give_back(a, old_end, end))
            nalloc_atomic_store(&c->end, 0);
        return NALLOC_ERR_NOT_IN_CHUNK;
    }
    if (new_end > end) { /* grow the chunk with it, if nothing lies above the chunk */
        size_t seen = end;
        /* The caller checked that the arena has room: a failure here means something lies
         * after the chunk, so the block is not the arena's last (NALLOC_ERR_STATE, as
         * nalloc_resize_last says), not an arena out of room. */
        if (!__atomic_compare_exchange_n(&a->bump.offset, &seen, new_end, false, __ATOMIC_ACQUIRE,
                                         __ATOMIC_RELAXED))
            return NALLOC_ERR_STATE;
        nalloc_atomic_store(&c->end, new_end);
    }
    if (new_end < old_end)
        na_arena_fold(a, old_end); /* these bytes were handed out: dirty from now on */
    na_track_resize(a, ptr, old_size, new_size);
    nalloc_atomic_store(&c->cursor, new_end);
    if (new_end < old_end)
        na_tcache_trim(a, c);
    if (new_end > old_end && a->on_alloc)
        a->on_alloc(a, begin, new_size);
    return NALLOC_OK;
}

/* Move the end of the block at [begin, begin + old_size) to begin + new_size, if it is the last. */
static nalloc_status move_last_end(nalloc_arena *a, void *ptr, size_t old_size, size_t new_size)
{
    nalloc_status st = na_arena_check(a);
    if (st != NALLOC_OK)
        return st;
    uintptr_t p = (uintptr_t)ptr;
    size_t capacity = a->bump.capacity;
    if (ptr == NULL || p < a->bump.base || p - a->bump.base > capacity)
        return NALLOC_ERR_INVALID;
    size_t begin = (size_t)(p - a->bump.base);
    size_t old_extent, new_extent; /* sizes plus redzones in checker builds (track.h) */
    if (!na_track_extent(a, old_size, &old_extent) || old_extent > capacity - begin)
        return NALLOC_ERR_INVALID;
    if (!na_track_extent(a, new_size, &new_extent) || new_extent > capacity - begin)
        return NALLOC_ERR_NOMEM;
    size_t old_end = begin + old_extent, new_end = begin + new_extent;
    if (a->thread_cache) {
        nalloc_status cached = move_last_end_in_chunk(a, ptr, old_size, new_size, old_end, new_end);
        if (cached != NALLOC_ERR_NOT_IN_CHUNK)
            return cached;
        /* The arena's offset may be the end of another thread's chunk: a range reaching into its
         * remainder is no block (a wrong size), and moving the offset under it would let that
         * thread hand out bytes the offset no longer covers. */
        if (na_tcache_covers(a, begin, old_end))
            return NALLOC_ERR_STATE;
    }
    if (begin < nalloc_atomic_load(&a->mark_floor))
        return NALLOC_ERR_STATE; /* a mark was taken after the block */
    size_t seen = nalloc_atomic_load(&a->bump.offset);
    if (seen != old_end)
        return NALLOC_ERR_STATE; /* not the most recent block: checkers are told nothing */
    bool shrink = new_end < old_end;
    if (shrink) { /* old_end was the offset just now: fold it into the lazy peaks */
        na_arena_fold(a, old_end);
        na_track_resize(a, ptr, old_size, new_size); /* before anyone else can get the bytes */
    }
    /* Release: whoever is handed these bytes next (an acquire CAS in nalloc_bump_reserve) sees
     * our use of them and the folds above. Acquire: a growing block takes bytes that another
     * thread may have given back. */
    while (!__atomic_compare_exchange_n(&a->bump.offset, &seen, new_end, true, __ATOMIC_ACQ_REL,
                                        __ATOMIC_RELAXED)) {
        if (seen != old_end) {
            if (shrink)
                na_track_resize_undo(a, ptr, old_size, new_size);
            return NALLOC_ERR_STATE; /* not the most recent block */
        }
    }
    if (!shrink)
        na_track_resize(a, ptr, old_size, new_size);
    if (shrink && a->backing->on_release)
        a->backing->on_release(a, new_end);
    else if (new_end > old_end && a->on_alloc)
        a->on_alloc(a, begin, new_size); /* a block grown in place is handed out anew */
    return NALLOC_OK;
}

nalloc_status nalloc_free_last(nalloc_arena *a, void *ptr, size_t size)
{
    nalloc_status st = move_last_end(a, ptr, size, 0);
    return st == NALLOC_OK ? st : na_set_error(st);
}

nalloc_status nalloc_resize_last(nalloc_arena *a, void *ptr, size_t old_size, size_t new_size)
{
    nalloc_status st = new_size == 0 ? NALLOC_ERR_INVALID : move_last_end(a, ptr, old_size, new_size);
    if (st == NALLOC_ERR_NOMEM && na_arena_alive(a))
        __atomic_fetch_add(&a->failures, 1, __ATOMIC_RELAXED);
    return st == NALLOC_OK ? st : na_set_error(st);
}

void *nalloc_realloc(nalloc_arena *a, void *ptr, size_t old_size, size_t new_size, size_t align)
{
    nalloc_status st = na_arena_check(a);
    if (st != NALLOC_OK)
        return fail(NULL, st);
    if (!a->backing->host_accessible)
        return fail(a, NALLOC_ERR_UNSUPPORTED);
    if (new_size == 0 || (align != 0 && !nalloc_is_pow2(align)))
        return fail(a, NALLOC_ERR_INVALID);
    if (ptr == NULL)
        return alloc_at(a, new_size, align ? align : policy_align(a, new_size));
    if ((align == 0 || (uintptr_t)ptr % align == 0) &&
        move_last_end(a, ptr, old_size, new_size) == NALLOC_OK)
        return ptr;
    uintptr_t p = (uintptr_t)ptr;
    if (p < a->bump.base || p - a->bump.base > a->bump.capacity ||
        old_size > a->bump.capacity - (p - a->bump.base))
        return fail(a, NALLOC_ERR_INVALID);
    void *q = alloc_at(a, new_size, align ? align : policy_align(a, new_size));
    if (q != NULL)
        memcpy(q, ptr, old_size < new_size ? old_size : new_size);
    return q;
}

/* ---------------------------------------------------------------------------------------------
 * Marks, rollback, reset, wipe
 * ------------------------------------------------------------------------------------------- */

nalloc_mark nalloc_mark_get(nalloc_arena *a)
{
    nalloc_mark m = {0, 0, 0, 0};
    nalloc_status st = na_arena_check(a);
    if (st != NALLOC_OK) {
        na_set_error(st);
        return m; /* uid 0 belongs to no arena: every rollback refuses it */
    }
    if (a->thread_cache) {
        /* What this thread allocates after the mark must lie above it: its chunk goes. */
        na_stat_slot *s = na_stat_slot_of(a);
        if (s != &a->shared_slot)
            na_tcache_give_back(a, &s->plain);
    }
    m.arena_uid = a->uid;
    m.generation = __atomic_load_n(&a->generation, __ATOMIC_RELAXED);
    m.epoch = __atomic_load_n(&a->epoch, __ATOMIC_RELAXED);
    m.offset = nalloc_atomic_load(&a->bump.offset);
    nalloc_atomic_max(&a->mark_floor, m.offset);
    return m;
}

/* Are malloc-family blocks alive, so that nothing may be released under them? With
 * forget_blocks, they are forgotten instead: no longer counted (control lock held). */
static bool blocks_alive(nalloc_arena *a, bool forget_blocks)
{
    size_t live = na_blocks_live(a);
    if (live == 0)
        return false;
    if (!forget_blocks)
        return true;
    __atomic_fetch_add(&a->forgotten, live, __ATOMIC_RELAXED);
    return false;
}

/* Did a rollback after the mark was taken release the place it points to? (control lock held) */
static bool mark_released(const nalloc_arena *a, nalloc_mark m)
{
    for (unsigned i = 0; i < a->history_len; i++)
        if (a->history[i].epoch > m.epoch)
            return a->history[i].target < m.offset;
    return false;
}

static void history_push(nalloc_arena *a, uint64_t epoch, size_t target)
{
    while (a->history_len > 0 && a->history[a->history_len - 1].target >= target)
        a->history_len--;
    if (a->history_len == NA_ROLLBACK_HISTORY) {
        /* Merge the two oldest records into (newer epoch, older target): exact for marks older
         * than both, conservative (may refuse a live mark) for marks between them. */
        a->history[1].target = a->history[0].target;
        memmove(&a->history[0], &a->history[1], (NA_ROLLBACK_HISTORY - 1) * sizeof a->history[0]);
        a->history_len--;
    }
    a->history[a->history_len++] = (na_rollback_record){epoch, target};
    na_assert_expensive(a->history_len == 1 ||
                        a->history[a->history_len - 2].target < a->history[a->history_len - 1].target);
}

nalloc_status nalloc_rollback(nalloc_arena *a, nalloc_mark m)
{
    nalloc_status st = na_arena_check(a);
    if (st != NALLOC_OK)
        return na_set_error(st);
    if (m.arena_uid != a->uid || m.generation != __atomic_load_n(&a->generation, __ATOMIC_RELAXED))
        return na_set_error(NALLOC_ERR_STATE);

    pthread_mutex_lock(&a->control);
    size_t offset = settle(a);
    if (!na_arena_alive(a) || m.generation != a->generation || m.offset > offset ||
        mark_released(a, m) || na_lanes_hold(a, m.offset) || blocks_alive(a, false)) {
        pthread_mutex_unlock(&a->control);
        return na_set_error(NALLOC_ERR_STATE);
    }
    release_to(a, m.offset, offset);
    uint64_t epoch = __atomic_add_fetch(&a->epoch, 1, __ATOMIC_RELAXED);
    history_push(a, epoch, m.offset);
    __atomic_fetch_add(&a->rollbacks, 1, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&a->control);
    return NALLOC_OK;
}

static nalloc_status reset_arena(nalloc_arena *a, bool forget_blocks)
{
    nalloc_status st = na_arena_check(a);
    if (st != NALLOC_OK)
        return na_set_error(st);
    na_trace_push("nalloc_reset", a);
    pthread_mutex_lock(&a->control);
    if (!na_arena_alive(a) || na_lanes_hold(a, 0) || blocks_alive(a, forget_blocks)) {
        st = NALLOC_ERR_STATE; /* destroyed meanwhile, or live lanes or blocks own memory */
    } else {
        reset_locked(a);
        __atomic_fetch_add(&a->resets, 1, __ATOMIC_RELAXED);
    }
    pthread_mutex_unlock(&a->control);
    na_trace_pop();
    return st == NALLOC_OK ? st : na_set_error(st);
}

nalloc_status nalloc_reset(nalloc_arena *a)
{
    return reset_arena(a, false);
}

nalloc_status nalloc_reset_unchecked(nalloc_arena *a)
{
    return reset_arena(a, true);
}

static nalloc_status wipe_arena(nalloc_arena *a, void *stream, bool forget_blocks)
{
    nalloc_status st = na_arena_check(a);
    if (st != NALLOC_OK)
        return na_set_error(st);
    na_trace_push("nalloc_wipe", a);
    pthread_mutex_lock(&a->control);
    st = na_arena_alive(a) && !na_lanes_hold(a, 0) && !blocks_alive(a, forget_blocks)
             ? wipe_locked(a, stream)
             : NALLOC_ERR_STATE;
    pthread_mutex_unlock(&a->control);
    na_trace_pop();
    return st == NALLOC_OK ? st : na_set_error(st);
}

nalloc_status na_arena_wipe(nalloc_arena *a, void *stream)
{
    return wipe_arena(a, stream, false);
}

nalloc_status nalloc_wipe_unchecked(nalloc_arena *a)
{
    return wipe_arena(a, NULL, true);
}

nalloc_status nalloc_wipe(nalloc_arena *a)
{
    return na_arena_wipe(a, NULL);
}

/* ---------------------------------------------------------------------------------------------
 * Statistics
 * ------------------------------------------------------------------------------------------- */

nalloc_status nalloc_arena_stats(const nalloc_arena *a, nalloc_stats *s)
{
    nalloc_status st = na_arena_check(a);
    if (st == NALLOC_OK && s == NULL)
        st = NALLOC_ERR_INVALID;
    if (st != NALLOC_OK)
        return na_set_error(st);
    memset(s, 0, sizeof *s);
    s->version = NALLOC_STATS_VERSION;
    s->struct_size = sizeof *s;
    s->name = a->name;
    s->kind = a->config.kind;
    s->memory = a->config.memory;
    s->capacity = a->bump.capacity;
    s->used = nalloc_atomic_load(&a->bump.offset);
    s->high_water = na_arena_peak(a);
    for (int i = -1; i < NA_STAT_SLOTS; i++) {
        const na_stat_slot *slot = i < 0 ? &a->shared_slot : &a->slots[i];
        s->allocations += __atomic_load_n(&slot->allocations, __ATOMIC_RELAXED) +
                          __atomic_load_n(&slot->mallocs, __ATOMIC_RELAXED);
        s->padding += __atomic_load_n(&slot->padding, __ATOMIC_RELAXED);
        s->layout_digest += __atomic_load_n(&slot->digest, __ATOMIC_RELAXED);
    }
    s->failures = __atomic_load_n(&a->failures, __ATOMIC_RELAXED);
    s->resets = __atomic_load_n(&a->resets, __ATOMIC_RELAXED);
    s->rollbacks = __atomic_load_n(&a->rollbacks, __ATOMIC_RELAXED);
    s->wipes = __atomic_load_n(&a->wipes, __ATOMIC_RELAXED);
    s->wiped_bytes = __atomic_load_n(&a->wiped_bytes, __ATOMIC_RELAXED);
    s->reserved = a->reserved;
    s->guard_size = a->guard_size;
    s->base = a->bump.base;
    s->pin_seconds = a->pin_seconds;
    s->requested = a->config.flags;
    s->missing = a->config.flags & NA_FEATURE_FLAGS & ~a->in_force;
    s->guard_pages = a->guard_pages;
    s->populated = (a->in_force & NALLOC_FLAG_POPULATE) != 0;
    s->huge_pages = (a->in_force & NALLOC_FLAG_HUGEPAGES) != 0;
    s->locked = (a->in_force & NALLOC_FLAG_LOCK) != 0 || a->pinned;
    s->no_dump = (a->in_force & NALLOC_FLAG_NODUMP) != 0;
    s->wipe_on_fork = (a->in_force & NALLOC_FLAG_WIPEONFORK) != 0;
    s->wipe_on_destroy = (a->config.flags & NALLOC_FLAG_WIPE_ON_DESTROY) != 0;
    s->secret = (a->in_force & NALLOC_FLAG_SECRET) != 0;
    s->pinned = a->pinned;
    s->pin_fallback = a->pin_fallback;
    s->checkers = a->track_checkers;
    s->redzone = a->track_redzone;
    s->redzone_bytes = __atomic_load_n(&a->track_redzone_bytes, __ATOMIC_RELAXED);
    s->cached = na_tcache_cached(a) + na_blocks_cached(a);
    s->deferred = nalloc_atomic_load((size_t *)&a->stretch_bytes) +
                  nalloc_atomic_load((size_t *)&a->freed_bytes);
    s->used = s->used > s->cached + s->deferred ? s->used - s->cached - s->deferred : 0;
    s->live_blocks = na_blocks_live(a);
    s->fallbacks = __atomic_load_n(&a->fallbacks, __ATOMIC_RELAXED);
    return NALLOC_OK;
}

static const char *memory_name(nalloc_memory m)
{
    static const char *const names[] = {"host", "pinned", "device"};
    return (unsigned)m <= NALLOC_MEMORY_DEVICE ? names[m] : "?";
}

/* Append " name" for each flag in `flags` to buf. */
static void flag_names(unsigned flags, char *buf, size_t len)
{
    static const char *const names[] = {"populate", "huge-pages", "lock", "no-dump", "wipe-on-fork",
                                        "wipe-on-destroy", "wipe-at-exit", "secret", "strict",
                                        "pin-fallback", "noreserve", "thread-cache",
                                        "prefault-ahead"};
    size_t used = 0;
    buf[0] = '\0';
    for (unsigned i = 0; i < sizeof names / sizeof names[0] && used < len; i++)
        if (flags & (1u << i))
            used += (size_t)snprintf(buf + used, len - used, " %s", names[i]);
}

nalloc_status nalloc_arena_print_stats(const nalloc_arena *a, FILE *out)
{
    nalloc_stats s;
    nalloc_status st = nalloc_arena_stats(a, &s);
    if (st != NALLOC_OK)
        return st;
    if (out == NULL)
        out = stderr;
    char in_force[160], missing[160];
    flag_names(a->in_force | (s.requested & ~(unsigned)NA_FEATURE_FLAGS), in_force, sizeof in_force);
    flag_names(s.missing, missing, sizeof missing);
    fprintf(out,
            "nalloc: arena '%s' (%s, %s)\n"
            "  capacity %zu  used %zu  high-water %zu  reserved %zu\n"
            "  allocations %zu  failures %zu  padding %zu  cached %zu\n"
            "  malloc family: live %zu  deferred %zu bytes  fallbacks %zu\n"
            "  rollbacks %zu  resets %zu  wipes %zu  wiped %zu bytes\n"
            "  in force:%s%s%s\n"
            "  missing:%s\n",
            s.name, kind_names[s.kind], memory_name(s.memory), s.capacity, s.used, s.high_water,
            s.reserved, s.allocations, s.failures, s.padding, s.cached, s.live_blocks, s.deferred,
            s.fallbacks, s.rollbacks, s.resets, s.wipes,
            s.wiped_bytes, s.guard_pages ? " guard-pages" : "", s.pinned ? " pinned" : "",
            in_force, s.missing ? missing : " none");
    return NALLOC_OK;
}
