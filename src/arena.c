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
 *    statistics) instead of on every allocation (offset.c).
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
 *
 * This file is the top of the arena code: it calls the files that manage parts of an arena
 * (offset.c, tcache.c, blocks.c, stretch.c, stats.c, track.c, prefault.c, owner.c) and none of
 * them calls it. It also keeps what a parent knows of the lanes split from it (lane.c makes
 * them: "Lanes: the parent's side" below) and gives back a thread's slots and chunks when the
 * thread exits. The memory under an arena is its backing's (backing.h), reached only through the
 * header's na_memory: this file names no backing and makes no OS or CUDA call.
 */
#include "internal.h"
#include "prim.h"
#include "track.h"

#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void print_stats(const nalloc_arena *a, FILE *out);
static nalloc_status move_last_end(nalloc_arena *a, void *ptr, size_t old_size, size_t new_size,
                                   const char **why);
static nalloc_status zero_dirty(nalloc_arena *a, size_t end, void *stream, size_t *zeroed);
static void lane_born(nalloc_arena *a);
static void release_memory(nalloc_arena *a);
static void lanes_release(nalloc_arena *a, size_t target);
static bool lanes_hold(nalloc_arena *a, size_t target);
static void lanes_destroy_all(nalloc_arena *a);
static void release_thread_slots(size_t token);

/* ---------------------------------------------------------------------------------------------
 * Configuration
 * ------------------------------------------------------------------------------------------- */

static const char *const kind_names[NALLOC_KIND_COUNT] = {"poly", "witness", "scratch"};

/* The config's size is part of the 1.x ABI (nalloc.h): a new field takes words of reserved[]. */
_Static_assert(sizeof(nalloc_arena_config) == 152,
               "nalloc_arena_config must keep its size: take a field's room from reserved[]");
_Static_assert(sizeof(nalloc_ctx_config) == 3 * 152 + 8,
               "nalloc_ctx_config must keep its size: use its reserved word");

void nalloc_arena_config_init(nalloc_arena_config *c, nalloc_kind kind, nalloc_memory memory,
                              size_t capacity)
{
    if (c == NULL) {
        na_fail(NALLOC_ERR_INVALID, "nalloc_arena_config_init", "config is NULL");
        return;
    }
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
    case NALLOC_KIND_POLY: /* huge pages, and the helper, so no allocating thread waits for one */
        c->flags = host_pages ? NALLOC_FLAG_HUGEPAGES | NALLOC_FLAG_PREFAULT_AHEAD : 0;
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

/* NALLOC_OK, or NALLOC_ERR_INVALID with the cause noted. */
static nalloc_status check_config(const nalloc_arena_config *c)
{
    if ((unsigned)c->kind >= NALLOC_KIND_COUNT) {
        na_cause("kind %u is not a nalloc_kind", (unsigned)c->kind);
    } else if ((unsigned)c->memory > NALLOC_MEMORY_DEVICE) {
        na_cause("memory %u is not a nalloc_memory", (unsigned)c->memory);
    } else if (!nalloc_is_pow2(c->default_align)) {
        na_cause("default_align %zu is not a power of two", c->default_align);
    } else if (!nalloc_is_pow2(c->large_align)) {
        na_cause("large_align %zu is not a power of two", c->large_align);
    } else if (c->flags & ~(unsigned)NA_KNOWN_FLAGS) {
        na_cause("flags %u holds bits that are not NALLOC_FLAG_*", c->flags);
    } else if (c->capacity == 0 &&
               !(c->memory == NALLOC_MEMORY_DEVICE && c->device_fraction > 0)) {
        na_cause("capacity is 0");
    } else {
        return NALLOC_OK;
    }
    return NALLOC_ERR_INVALID;
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
        !a->memory.backing->host_accessible || a->pid != *(const int *)pid)
        return;
    size_t end = na_atomic_load(&a->dirty_end);
    size_t offset = na_atomic_load(&a->bump.offset);
    if (offset > end)
        end = offset;
    if (end > 0) {
        na_track_wipe_begin(a, end);
        size_t zeroed;
        zero_dirty(a, end, NULL, &zeroed);
    }
}

/* Does an arena the exit wipe will zero hold live malloc-family blocks? They may be stdio's
 * buffers and FILEs (a route was pushed when they were first used). */
static void find_live_blocks_at_exit(void *handle, void *arg)
{
    nalloc_arena *a = handle;
    int *pid = arg;
    if (na_arena_mapped(a) && (a->config.flags & NALLOC_FLAG_WIPE_AT_EXIT) &&
        a->memory.backing->host_accessible && a->pid == pid[0] && na_blocks_live(a) > 0)
        pid[1] = 1;
}

/* Flush `f` if its lock is free now: another thread may hold it for ever (blocked reading
 * stdin, or writing to a full pipe), and exit must not wait for that thread. */
static void flush_unless_busy(FILE *f)
{
    if (ftrylockfile(f) != 0)
        return;
    (void)fflush_unlocked(f);
    funlockfile(f);
}

static void wipe_all_at_exit(void)
{
    int pid[2] = {(int)getpid(), 0};
    /* The C library flushes stdio after the atexit handlers, this one included: output still
     * buffered in memory this wipe zeroes would be lost, so stdout and stderr are flushed first.
     * (Not every stream: the C library has no way to try each one's lock, and fflush(NULL) would
     * wait for a stream another thread holds. Streams a program opened itself are its to close.) */
    na_handle_foreach(find_live_blocks_at_exit, pid);
    if (pid[1]) {
        flush_unless_busy(stdout);
        flush_unless_busy(stderr);
    }
    na_handle_foreach(wipe_one_at_exit, pid);
}

/* In a forked child, for every handle slot: an arena whose memory the child has no mapping of
 * (secret memory is MADV_DONTFORK) is marked destroyed there, so calls on it are refused instead
 * of handing out, zeroing or wiping addresses the child does not have. */
static void retire_after_fork(void *handle, void *unused)
{
    nalloc_arena *a = handle;
    (void)unused;
    if (na_arena_mapped(a) && (a->memory.in_force & NALLOC_FLAG_SECRET)) /* lanes inherit it */
        __atomic_store_n(&a->magic, NA_MAGIC_DEAD, __ATOMIC_RELEASE);
}

static void child_after_fork(void)
{
    na_handle_foreach(retire_after_fork, NULL);
}

/* Across fork, under the handle lock (handle.c): each arena's stretch lock, so that a child
 * forked while another thread was reusing or giving back free space (routed malloc and free do)
 * does not inherit it locked and hang in its first such call. Contexts and free slots are skipped:
 * only a mapped arena's slot holds these fields. */
static void lock_stretches_for_fork(void *handle)
{
    nalloc_arena *a = handle;
    if (!na_arena_mapped(a))
        return;
    na_stretch_lock(a);
    a->fork_locked = true;
}

static void unlock_stretches_after_fork(void *handle)
{
    nalloc_arena *a = handle;
    if (!na_arena_mapped(a) || !a->fork_locked)
        return;
    a->fork_locked = false;
    na_stretch_unlock(a);
}

/* Installed after the first handle slot was taken, so after handle.c's own handlers: in the
 * child, the handle lock is released before this runs (child handlers run in the order they were
 * installed). */
static void install_fork_handler(void)
{
    na_handle_fork_slots(lock_stretches_for_fork, unlock_stretches_after_fork);
    (void)pthread_atfork(NULL, NULL, child_after_fork);
}

static void register_exit_wipe(void)
{
    atexit(wipe_all_at_exit); /* if registration fails, destroy-time wipes still happen */
}

nalloc_status nalloc_arena_create(const nalloc_arena_config *config, nalloc_arena **out)
{
    static const char call[] = "nalloc_arena_create";
    if (out == NULL)
        return na_fail(NALLOC_ERR_INVALID, call, "out is NULL");
    *out = NULL;
    if (config == NULL)
        return na_fail(NALLOC_ERR_INVALID, call, "config is NULL");
    na_cause_clear();
    nalloc_status st = na_arena_create_from(config, na_backing_for(config->memory), NULL, 0, out);
    if (st != NALLOC_OK)
        return na_fail_cause(st, call, "arena \"%s\"", na_config_name(config));
    return NALLOC_OK;
}

const char *na_config_name(const nalloc_arena_config *config)
{
    if (config->name != NULL)
        return config->name;
    return (unsigned)config->kind < NALLOC_KIND_COUNT ? kind_names[config->kind] : "?";
}

/* One line on stderr when a protection that keeps secrets was refused (nalloc.h, nalloc_flag):
 * statistics say so too, but nobody reads them who did not already think of it. GnuPG's "using
 * insecure memory" is the model. NALLOC_QUIET_PROTECTIONS=1 silences it. */
static void warn_refused_protections(const nalloc_arena *a)
{
    const unsigned protections = NALLOC_FLAG_LOCK | NALLOC_FLAG_NODUMP | NALLOC_FLAG_SECRET;
    unsigned refused = a->config.flags & protections & ~a->memory.in_force;
    if (refused == 0 || na_option_get(NA_OPTION_QUIET_PROTECTIONS))
        return;
    char line[512];
    size_t at = 0;
    at = na_format_to(line, sizeof line, at, "nalloc: warning: arena \"%s\":", a->name);
    if (refused & NALLOC_FLAG_SECRET)
        at = na_format_to(line, sizeof line, at,
                            " memfd_secret refused, so its memory stays in the kernel's direct map"
                            " (needs Linux 5.14 with secretmem enabled, and the arena within"
                            " RLIMIT_MEMLOCK);");
    if (refused & NALLOC_FLAG_LOCK)
        at = na_format_to(line, sizeof line, at,
                            " mlock refused, so its pages can be swapped to disk (raise the limit"
                            " with ulimit -l, or grant CAP_IPC_LOCK);");
    if (refused & NALLOC_FLAG_NODUMP)
        at = na_format_to(line, sizeof line, at,
                            " MADV_DONTDUMP refused, so its pages can appear in core dumps"
                            " (ulimit -c 0 turns them off);");
    na_format_to(line, sizeof line, at,
                   " nalloc_stats.missing has the details; NALLOC_QUIET_PROTECTIONS=1 silences"
                   " this\n");
    fputs(line, stderr);
}

nalloc_status na_arena_create_from(const nalloc_arena_config *config, const na_backing *backing,
                                   nalloc_arena *parent, size_t parent_offset, nalloc_arena **out)
{
    *out = NULL;
    nalloc_status st = check_config(config);
    if (st != NALLOC_OK)
        return st;
    if (backing == NULL) {
        na_cause("%s arenas need the CUDA parts, which this build of nalloc does not have",
                 config->memory == NALLOC_MEMORY_PINNED ? "pinned" : "device");
        return NALLOC_ERR_UNSUPPORTED;
    }

    static pthread_once_t exit_once = PTHREAD_ONCE_INIT;
    if (config->flags & NALLOC_FLAG_WIPE_AT_EXIT)
        pthread_once(&exit_once, register_exit_wipe);

    nalloc_arena *a = na_handle_alloc();
    if (a == NULL) {
        na_cause("mmap of a handle slot: %s", na_errno_text(errno));
        return NALLOC_ERR_OS;
    }
    static pthread_once_t fork_once = PTHREAD_ONCE_INIT;
    pthread_once(&fork_once, install_fork_handler);
    /* Threads claim slots in this arena from here on: their exit must give them back. */
    na_thread_at_exit(NA_THREAD_EXIT_SLOTS, release_thread_slots);
    na_trace_push("nalloc_arena_create", NULL);
    a->config = *config;
    snprintf(a->name, sizeof a->name, "%s", na_config_name(config));
    a->config.name = a->name;
    a->default_align = config->default_align;
    a->large_threshold = config->large_threshold;
    a->large_align = config->large_align;
    a->uid = na_next_uid();
    a->check_salt = na_layout_mix(a->uid, 0, UINT64_C(0x636865636b)); /* blocks.h */
    a->block_align = config->default_align < 16 ? 16 : config->default_align; /* blocks.h */
    a->pid = (int)getpid();
    a->parent = parent;
    na_memory *m = &a->memory;
    m->backing = backing;
    m->config = &a->config;
    m->name = a->name;
    m->parent = parent != NULL ? &parent->memory : NULL;
    m->parent_offset = parent_offset;
    m->offset = &a->bump.offset;
    m->secret_fd = -1;
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
    a->chunk_owner = 0;
    a->chunk_depth = 0;
    /* Device arenas are fed by one host thread at a time: no cache (docs/performance.md). */
    a->thread_cache = (config->flags & NALLOC_FLAG_THREAD_CACHE) != 0 && backing->host_accessible;

    st = backing->create(m);
    if (st == NALLOC_OK && !nalloc_bump_init(&a->bump, m->base, m->capacity)) {
        backing->destroy(m);
        na_cause("the memory would end past the top of the address space");
        st = NALLOC_ERR_INVALID;
    }
    if (st != NALLOC_OK) {
        int err = errno;
        na_handle_free(a);
        na_trace_pop();
        errno = err;
        return st;
    }
    a->on_alloc = m->on_alloc;
    if (parent != NULL)
        lane_born(a);
    int err = na_prefault_register(a);
    if (err != 0) { /* no helper thread: the flag is missing, or creation fails if strict */
        m->in_force &= ~(unsigned)NALLOC_FLAG_PREFAULT_AHEAD;
        if (config->flags & NALLOC_FLAG_STRICT) {
            release_memory(a);
            na_handle_free(a);
            na_trace_pop();
            na_cause("NALLOC_FLAG_STRICT, and no prefault helper thread: %s", strerror(err));
            errno = err;
            return NALLOC_ERR_OS;
        }
    }
    /* Host-visible memory can hold malloc-family blocks, found by address (owner.c). */
    if (backing->host_accessible && (st = na_owner_register(a)) != NALLOC_OK) {
        int err = errno;
        na_cause("no room to enter the arena in the ownership table");
        na_prefault_unregister(a);
        release_memory(a);
        na_handle_free(a);
        na_trace_pop();
        errno = err;
        return st;
    }
    /* Memory that is not fresh (device memory) is dirty from the start. (A lane's dirty extent
     * comes from its parent's: lane_born.) */
    if (!backing->fresh_is_zero)
        a->dirty_end = a->bump.capacity;
    na_track_create(a);
    __atomic_store_n(&a->magic, NA_MAGIC_ARENA, __ATOMIC_RELEASE);
    na_trace_pop();
    if (parent == NULL) /* a lane's protections are its parent's, announced with the parent */
        warn_refused_protections(a);
    *out = a;
    return NALLOC_OK;
}

/* Fold the current offset into the lazy peaks; returns the offset. */
static size_t settle(nalloc_arena *a)
{
    size_t offset = na_atomic_load(&a->bump.offset);
    na_arena_fold(a, offset);
    return offset;
}

/* Move the offset down to `target` and make every mark above it stale (control lock held; the
 * caller bumps the epoch next, which retires every thread's chunk). */
static void release_to(nalloc_arena *a, size_t target, size_t from)
{
    na_track_release(a, target, from);
    na_atomic_store(&a->bump.offset, target);
    na_atomic_store(&a->mark_floor, target);
    /* Free stretches above the target went with it; retired chunks below it are free now (the
     * mark floor keeps them from going below the target). */
    na_stretch_boundary(a, target);
    na_tcache_boundary(a, target);
    na_blocks_boundary(a, target);
    lanes_release(a, target);
    if (a->memory.on_release)
        a->memory.on_release(&a->memory, target);
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
    size_t end = na_atomic_load(&a->dirty_end), zeroed = 0;
    if (end > 0) {
        na_track_wipe_begin(a, end);
        /* Tools told of each block (NVTX on device arenas) see the wipe's range as one block, so
         * the wipe kernel's stores to padding and released bytes are not reported. */
        if (a->on_alloc)
            a->on_alloc(&a->memory, 0, end);
        nalloc_status st = zero_dirty(a, end, stream, &zeroed);
        if (st != NALLOC_OK)
            return st;
    }
    reset_locked(a);
    na_track_release(a, 0, end); /* the reset released [0, offset); the wipe touched [0, end) */
    na_atomic_store(&a->dirty_end, 0);
    __atomic_fetch_add(&a->wipes, 1, __ATOMIC_RELAXED);
    __atomic_fetch_add(&a->wiped_bytes, zeroed, __ATOMIC_RELAXED);
    return NALLOC_OK;
}

/* Mark the arena dead and give its memory back (under the handle lock: na_handle_exclusive). */
static void retire(void *handle)
{
    nalloc_arena *a = handle;
    __atomic_store_n(&a->magic, NA_MAGIC_DEAD, __ATOMIC_RELEASE);
    if (a->memory.backing->host_accessible)
        na_owner_unregister(a);
    na_stretch_destroy(a);
    na_track_destroy(a);
    release_memory(a);
}

/* Is the arena zeroed before its memory is released? The flag says so, or the memory holds
 * secrets: a witness arena, or one that asked for its pages to be locked, kept out of dumps or out
 * of the direct map (nalloc.h, nalloc_flag; libsodium zeroes before munlock for the same reason).
 * Pinned arenas are locked for DMA, not for secrecy: they follow the flag. */
static bool wipes_on_destroy(const nalloc_arena *a)
{
    const unsigned secret = NALLOC_FLAG_LOCK | NALLOC_FLAG_NODUMP | NALLOC_FLAG_SECRET;
    return (a->config.flags & NALLOC_FLAG_WIPE_ON_DESTROY) || a->config.kind == NALLOC_KIND_WITNESS ||
           ((a->config.flags | a->memory.in_force) & secret);
}

nalloc_status na_arena_destroy(nalloc_arena *a, uint64_t uid)
{
    na_trace_push("nalloc_arena_destroy", a->name);
    pthread_mutex_lock(&a->control);
    /* Lost a race with another destroy, or (uid) the slot holds another arena by now. A doomed
     * arena (nalloc_arena_destroy_deferred) is destroyed by the free of its last block. */
    if (!na_arena_mapped(a) || (uid != 0 && a->uid != uid)) {
        pthread_mutex_unlock(&a->control);
        na_trace_pop();
        na_cause("arena already destroyed");
        return NALLOC_ERR_STATE;
    }
    /* First of all, so the helper is done with the memory long before it is unmapped. */
    na_prefault_unregister(a);
    nalloc_status st = NALLOC_OK;
    if (__atomic_load_n(&a->lanes_alive, __ATOMIC_ACQUIRE) > 0)
        lanes_destroy_all(a);
    if (wipes_on_destroy(a))
        st = wipe_locked(a, NULL);
    if (na_option_get(NA_OPTION_VERBOSE))
        print_stats(a, stderr);
    /* An arena whose wipe failed (a device fault) is still released: keeping it would leak the
     * memory and the secret both. The failure is reported. Retired under the handle lock: the
     * exit-time wipe (another thread may call exit meanwhile) sees the arena alive and mapped, or
     * dead. */
    na_handle_exclusive(retire, a);
    /* The mutexes are not destroyed: another destroy (or rollback, reset, wipe) may be waiting on
     * the control lock, and finds the arena dead once it gets it. The slot is never unmapped; a
     * creation that takes it again destroys and initializes them afresh. */
    pthread_mutex_unlock(&a->control);
    na_handle_free(a);
    na_trace_pop();
    return st;
}

const na_memory *na_arena_memory(const nalloc_arena *a)
{
    return &a->memory;
}

nalloc_status na_arena_refuse(const nalloc_arena *a, const char *call)
{
    if (a == NULL)
        return na_fail(NALLOC_ERR_INVALID, call, "arena is NULL");
    return na_fail(NALLOC_ERR_STATE, call, "arena already destroyed");
}

/* What both destroys refuse before anything else: no arena, a destroyed one, and one that
 * belongs to a context (destroyed with it). */
static nalloc_status destroy_refused(const nalloc_arena *a, const char *call)
{
    if (na_arena_check(a) != NALLOC_OK)
        return na_arena_refuse(a, call);
    if (a->owner != NULL)
        return na_fail(NALLOC_ERR_STATE, call,
                       "arena \"%s\" belongs to a context: nalloc_ctx_destroy releases it",
                       a->name);
    return NALLOC_OK;
}

nalloc_status nalloc_arena_destroy(nalloc_arena *a)
{
    static const char call[] = "nalloc_arena_destroy";
    nalloc_status refused = destroy_refused(a, call);
    if (refused != NALLOC_OK)
        return refused;
    size_t live = na_blocks_live(a);
    if (live > 0 || na_arena_lane_blocks_live(a)) /* in it, or in a lane it would destroy with it */
        return na_fail(NALLOC_ERR_STATE, call,
                       "arena \"%s\" has malloc-family blocks alive (%zu here): free them first, "
                       "or use nalloc_arena_destroy_deferred", a->name, live);
    na_cause_clear();
    uint64_t uid = a->uid;
    nalloc_status st = na_arena_destroy(a, uid);
    return st == NALLOC_OK ? st : na_fail_cause(st, call, NULL);
}

void na_arena_doomed_free(nalloc_arena *a)
{
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    if (na_blocks_live(a) == 0)
        (void)na_arena_destroy(a, 0); /* a racing last free gets NALLOC_ERR_STATE: fine */
}

nalloc_status nalloc_arena_destroy_deferred(nalloc_arena *a)
{
    static const char call[] = "nalloc_arena_destroy_deferred";
    nalloc_status refused = destroy_refused(a, call);
    if (refused != NALLOC_OK)
        return refused;
    if (na_arena_lane_blocks_live(a)) /* they would die with it: their lanes are destroyed first */
        return na_fail(NALLOC_ERR_STATE, call,
                       "arena \"%s\" has lanes with malloc-family blocks alive", a->name);
    pthread_mutex_lock(&a->control);
    nalloc_status st = na_arena_alive(a) ? na_blocks_doom(a) : NALLOC_ERR_STATE;
    pthread_mutex_unlock(&a->control);
    if (st == NALLOC_ERR_UNSUPPORTED)
        return na_fail(st, call, "the kernel lacks membarrier(2), which makes the handshake with "
                                 "the last free exact; the arena is left as it was");
    if (st != NALLOC_OK)
        return na_arena_refuse(a, call);
    /* Every free from here on sees the arena doomed, and the last one destroys it; if none is
     * left, that is now. A racing last free may have destroyed it already: then this is done. */
    na_cause_clear();
    if (na_blocks_live(a) == 0) {
        st = na_arena_destroy(a, 0);
        if (st == NALLOC_ERR_STATE)
            st = NALLOC_OK;
    }
    return st == NALLOC_OK ? st : na_fail_cause(st, call, NULL);
}

/* ---------------------------------------------------------------------------------------------
 * Allocation
 * ------------------------------------------------------------------------------------------- */

/* The failure exits of the allocation calls: count the failure in a live arena (nalloc_stats:
 * failures) and record the message. Out of line and cold, so that the allocation path does not
 * pay for them; async-signal-safe like the path itself (na_fail formats without libc). */
static __attribute__((cold, noinline)) void *refused(nalloc_arena *a, nalloc_status status,
                                                     const char *call, const char *what)
{
    if (call == NULL) { /* na_alloc_block: the caller notes and records */
        na_cause("%s", what);
        return NULL;
    }
    if (a == NULL || !na_arena_alive(a)) {
        na_arena_refuse(a, call);
        return NULL;
    }
    __atomic_fetch_add(&a->failures, 1, __ATOMIC_RELAXED);
    na_fail(status, call, "%s (arena \"%s\")", what, a->name);
    return NULL;
}

static __attribute__((cold, noinline)) void *no_room(nalloc_arena *a, const char *call,
                                                     size_t size, size_t align)
{
    size_t offset = na_atomic_load(&a->bump.offset);
    size_t room = a->bump.capacity > offset ? a->bump.capacity - offset : 0;
    if (call == NULL) { /* na_alloc_block */
        na_cause("%zu bytes needed at alignment %zu, %zu free in arena \"%s\"", size, align,
                 room, a->name);
        return NULL;
    }
    __atomic_fetch_add(&a->failures, 1, __ATOMIC_RELAXED);
    if (align == 0)
        na_fail(NALLOC_ERR_NOMEM, call, "%zu bytes requested, %zu free in arena \"%s\"", size,
                room, a->name);
    else
        na_fail(NALLOC_ERR_NOMEM, call,
                "%zu bytes requested at alignment %zu, %zu free in arena \"%s\"", size, align,
                room, a->name);
    return NULL;
}

static __attribute__((cold, noinline)) void *bad_alignment(nalloc_arena *a, const char *call,
                                                           size_t align)
{
    __atomic_fetch_add(&a->failures, 1, __ATOMIC_RELAXED);
    na_fail(NALLOC_ERR_INVALID, call, "alignment %zu is not a power of two (arena \"%s\")", align,
            a->name);
    return NULL;
}

/* The allocation path: one CAS (or, with the thread cache, a bump in the thread's own chunk),
 * the thread's statistics, the tool hooks. `call` names the public function for a failure's
 * message, which shows the alignment when `shown` (an explicit one). */
static inline void *alloc_at(nalloc_arena *a, size_t size, size_t align, const char *call,
                             bool shown)
{
    size_t begin, pad, extent; /* extent: size plus a redzone in checker builds (track.h) */
    if (na_unlikely(size == 0))
        return refused(a, NALLOC_ERR_INVALID, call, "size is 0");
    if (na_unlikely(!na_track_extent(a, size, &extent)))
        return no_room(a, call, size, shown ? align : 0);
    size_t shown_align = align;
    align = na_track_align(align);
    na_stat_slot *s = na_stat_slot_of(a);
    if (a->thread_cache && na_likely(s != &a->shared_slot)) {
        if (na_unlikely(!na_tcache_take(a, &s->plain, extent, align, &begin, &pad)) &&
            !na_tcache_refill(a, &s->plain, extent, align, &begin, &pad))
            return no_room(a, call, size, shown ? shown_align : 0);
    } else if (na_unlikely(!nalloc_bump_reserve(&a->bump, extent, align, &begin, &pad))) {
        return no_room(a, call, size, shown ? shown_align : 0);
    }
    na_assert_internal(begin <= a->bump.capacity && extent <= a->bump.capacity - begin);
    na_assert_internal(((a->bump.base + begin) & (align - 1)) == 0);
    na_stats_count(a, s, begin, size, pad);
    if (a->on_alloc)
        a->on_alloc(&a->memory, begin, size);
    void *p = (void *)(a->bump.base + begin);
    na_track_alloc(a, p, size, extent);
    return p;
}

static inline size_t policy_align(const nalloc_arena *a, size_t size)
{
    return size >= a->large_threshold ? a->large_align : a->default_align;
}

void *na_alloc_block(nalloc_arena *a, size_t size, size_t align)
{
    return alloc_at(a, size, align, NULL, true);
}

void *nalloc_alloc(nalloc_arena *a, size_t size)
{
    if (na_unlikely(na_arena_check(a) != NALLOC_OK))
        return refused(a, NALLOC_ERR_STATE, "nalloc_alloc", NULL);
    return alloc_at(a, size, policy_align(a, size), "nalloc_alloc", false);
}

void *nalloc_alloc_aligned(nalloc_arena *a, size_t size, size_t align)
{
    if (na_unlikely(na_arena_check(a) != NALLOC_OK))
        return refused(a, NALLOC_ERR_STATE, "nalloc_alloc_aligned", NULL);
    if (na_unlikely(!nalloc_is_pow2(align)))
        return bad_alignment(a, "nalloc_alloc_aligned", align);
    return alloc_at(a, size, align, "nalloc_alloc_aligned", true);
}

void *nalloc_alloc_zeroed(nalloc_arena *a, size_t count, size_t size, size_t align)
{
    static const char call[] = "nalloc_alloc_zeroed";
    if (na_arena_check(a) != NALLOC_OK)
        return refused(a, NALLOC_ERR_STATE, call, NULL);
    size_t bytes;
    if (__builtin_mul_overflow(count, size, &bytes)) {
        __atomic_fetch_add(&a->failures, 1, __ATOMIC_RELAXED);
        na_fail(NALLOC_ERR_INVALID, call, "%zu * %zu bytes does not fit in a size_t (arena \"%s\")",
                count, size, a->name);
        return NULL;
    }
    if (align != 0 && !nalloc_is_pow2(align))
        return bad_alignment(a, call, align);
    char *p = alloc_at(a, bytes, align ? align : policy_align(a, bytes), call, align != 0);
    if (p == NULL)
        return NULL;
    /* Bytes at or above the dirty extent were never handed out since the last wipe. Read it after
     * the allocation: a free_last racing with us folds the block it gives back into the extent
     * before its release CAS moves the offset down, and our acquire CAS in nalloc_bump_reserve
     * orders that fold before this read whenever our block reuses those bytes. Read before, it
     * could miss them. */
    size_t dirty = na_atomic_load(&a->dirty_end);
    size_t begin = (size_t)((uintptr_t)p - a->bump.base);
    if (begin < dirty) {
        size_t len = dirty - begin < bytes ? dirty - begin : bytes;
        na_cause_clear();
        nalloc_status st = a->memory.backing->zero(&a->memory, begin, len, NULL);
        if (st != NALLOC_OK) {
            const char *why;
            (void)move_last_end(a, p, bytes, 0, &why); /* best effort: the block is unusable */
            __atomic_fetch_add(&a->failures, 1, __ATOMIC_RELAXED);
            na_fail_cause(st, call, "zeroing %zu bytes of arena \"%s\"", len, a->name);
            return NULL;
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
 * the chunk, which it can only do while the chunk is the last thing in the arena. Inside the
 * chunk, marks of other threads do not pin the block: their rollback never reaches below their
 * own offset, which is at or above the chunk's end. Past the chunk they do: a rollback to a mark
 * taken after the block would release the part above the mark while the block lives. On refusal
 * *why says why. */
static nalloc_status move_last_end_in_chunk(nalloc_arena *a, void *ptr, size_t old_size,
                                            size_t new_size, size_t old_end, size_t new_end,
                                            const char **why)
{
    na_stat_slot *s = na_stat_slot_of(a);
    na_chunk *c = &s->plain;
    size_t begin = (size_t)((uintptr_t)ptr - a->bump.base), end = na_atomic_load(&c->end);
    if (s == &a->shared_slot || end == 0 || c->epoch != __atomic_load_n(&a->epoch, __ATOMIC_RELAXED))
        return NALLOC_ERR_NOT_IN_CHUNK;
    size_t cursor = na_atomic_load(&c->cursor);
    /* A range that ends inside the chunk's unused remainder, or at its end (the arena's offset,
     * when the chunk is the last thing in it), is no block of this thread's: a wrong size.
     * Without this, the end of the chunk passes the offset test below, and the offset would move
     * under a remainder the chunk still hands out. */
    if (cursor != old_end) {
        *why = "not the newest block of this thread's chunk (or not its size)";
        return old_end > cursor && old_end <= end ? NALLOC_ERR_STATE : NALLOC_ERR_NOT_IN_CHUNK;
    }
    if (begin < na_atomic_load(&c->begin)) {
        /* The block ends where the thread's chunk begins, and the chunk is empty (the block was
         * too big for a chunk, or the chunk began at a mark): the block is the thread's newest
         * all the same. If nothing lies above the chunk, the chunk goes back, and the block is
         * the arena's last, as it would be without the cache. */
        if (na_offset_give_back(a, old_end, end))
            na_atomic_store(&c->end, 0);
        return NALLOC_ERR_NOT_IN_CHUNK;
    }
    if (new_end > end) { /* grow the chunk with it, if nothing lies above the chunk */
        if (begin < na_atomic_load(&a->mark_floor)) {
            *why = "a mark was taken after the block, and it would grow past the mark";
            return NALLOC_ERR_STATE;
        }
        size_t seen = end;
        /* The caller checked that the arena has room: a failure here means something lies
         * after the chunk, so the block is not the arena's last (NALLOC_ERR_STATE, as
         * nalloc_resize_last says), not an arena out of room. */
        if (!__atomic_compare_exchange_n(&a->bump.offset, &seen, new_end, false, __ATOMIC_ACQUIRE,
                                         __ATOMIC_RELAXED)) {
            *why = "something lies after this thread's chunk: the block cannot grow past it";
            return NALLOC_ERR_STATE;
        }
        na_atomic_store(&c->end, new_end);
    }
    if (new_end < old_end)
        na_arena_fold(a, old_end); /* these bytes were handed out: dirty from now on */
    na_track_resize(a, ptr, old_size, new_size);
    na_atomic_store(&c->cursor, new_end);
    if (new_end < old_end)
        na_tcache_trim(a, c);
    if (new_end > old_end && a->on_alloc)
        a->on_alloc(&a->memory, begin, new_size);
    return NALLOC_OK;
}

/* Move the end of the block at [begin, begin + old_size) to begin + new_size, if it is the last.
 * On refusal *why says why, for the caller's message (nothing is recorded here: realloc recovers
 * from a refusal). Inlined into free_last, which is on the allocation path that signal handlers
 * may take (nalloc.h, "Signals"), so that it costs what it costs with the code in place; the other
 * callers take it out of line (move_last_end). */
static inline __attribute__((always_inline)) nalloc_status
move_last_end_inline(nalloc_arena *a, void *ptr, size_t old_size, size_t new_size, const char **why)
{
    size_t capacity = a->bump.capacity, begin;
    if (!na_range_inside(a->bump.base, capacity, ptr, 0, &begin)) {
        *why = "ptr is not in the arena";
        return NALLOC_ERR_INVALID;
    }
    size_t old_extent, new_extent; /* sizes plus redzones in checker builds (track.h) */
    if (!na_track_extent(a, old_size, &old_extent) || old_extent > capacity - begin) {
        *why = "the block's size runs past the arena's end";
        return NALLOC_ERR_INVALID;
    }
    if (!na_track_extent(a, new_size, &new_extent) || new_extent > capacity - begin) {
        *why = "no room to grow the block that far";
        return NALLOC_ERR_NOMEM;
    }
    size_t old_end = begin + old_extent, new_end = begin + new_extent;
    if (a->thread_cache) {
        nalloc_status cached =
            move_last_end_in_chunk(a, ptr, old_size, new_size, old_end, new_end, why);
        if (cached != NALLOC_ERR_NOT_IN_CHUNK)
            return cached;
        /* The arena's offset may be the end of another thread's chunk: a range reaching into its
         * remainder is no block (a wrong size), and moving the offset under it would let that
         * thread hand out bytes the offset no longer covers. */
        if (na_tcache_covers(a, begin, old_end)) {
            *why = "the range reaches into another thread's chunk (not the block's size)";
            return NALLOC_ERR_STATE;
        }
    }
    if (begin < na_atomic_load(&a->mark_floor)) {
        *why = "a mark was taken after the block";
        return NALLOC_ERR_STATE;
    }
    static const char not_last[] = "not the most recent block (or not its size)";
    size_t seen = na_atomic_load(&a->bump.offset);
    if (seen != old_end) {
        *why = not_last; /* checkers are told nothing */
        return NALLOC_ERR_STATE;
    }
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
            *why = not_last;
            return NALLOC_ERR_STATE;
        }
    }
    if (!shrink)
        na_track_resize(a, ptr, old_size, new_size);
    if (shrink && a->memory.on_release)
        a->memory.on_release(&a->memory, new_end);
    else if (new_end > old_end && a->on_alloc)
        a->on_alloc(&a->memory, begin, new_size); /* a block grown in place is handed out anew */
    return NALLOC_OK;
}

static nalloc_status move_last_end(nalloc_arena *a, void *ptr, size_t old_size, size_t new_size,
                                   const char **why)
{
    return move_last_end_inline(a, ptr, old_size, new_size, why);
}

nalloc_status na_free_last(nalloc_arena *a, void *ptr, size_t size)
{
    const char *why;
    return move_last_end_inline(a, ptr, size, 0, &why);
}

nalloc_status nalloc_free_last(nalloc_arena *a, void *ptr, size_t size)
{
    static const char call[] = "nalloc_free_last";
    if (na_arena_check(a) != NALLOC_OK)
        return na_arena_refuse(a, call);
    const char *why;
    nalloc_status st = move_last_end_inline(a, ptr, size, 0, &why);
    if (na_unlikely(st != NALLOC_OK))
        return na_fail(st, call, "%s (arena \"%s\")", why, a->name);
    return NALLOC_OK;
}

nalloc_status nalloc_resize_last(nalloc_arena *a, void *ptr, size_t old_size, size_t new_size)
{
    static const char call[] = "nalloc_resize_last";
    if (na_arena_check(a) != NALLOC_OK)
        return na_arena_refuse(a, call);
    const char *why = "new_size is 0";
    nalloc_status st =
        new_size == 0 ? NALLOC_ERR_INVALID : move_last_end(a, ptr, old_size, new_size, &why);
    if (st == NALLOC_OK)
        return NALLOC_OK;
    __atomic_fetch_add(&a->failures, 1, __ATOMIC_RELAXED); /* a request for memory, refused */
    return na_fail(st, call, "%s (arena \"%s\")", why, a->name);
}

void *nalloc_realloc(nalloc_arena *a, void *ptr, size_t old_size, size_t new_size, size_t align)
{
    static const char call[] = "nalloc_realloc";
    if (na_arena_check(a) != NALLOC_OK)
        return refused(a, NALLOC_ERR_STATE, call, NULL);
    if (!a->memory.backing->host_accessible)
        return refused(a, NALLOC_ERR_UNSUPPORTED, call,
                       "the CPU cannot copy device memory: use nalloc_resize_last");
    if (new_size == 0)
        return refused(a, NALLOC_ERR_INVALID, call, "new_size is 0");
    if (align != 0 && !nalloc_is_pow2(align))
        return bad_alignment(a, call, align);
    size_t shown = align, use = align ? align : policy_align(a, new_size);
    if (ptr == NULL)
        return alloc_at(a, new_size, use, call, shown != 0);
    const char *why;
    if ((align == 0 || (uintptr_t)ptr % align == 0) &&
        move_last_end(a, ptr, old_size, new_size, &why) == NALLOC_OK)
        return ptr;
    size_t offset;
    if (!na_range_inside(a->bump.base, a->bump.capacity, ptr, old_size, &offset))
        return refused(a, NALLOC_ERR_INVALID, call, "ptr (with old_size) is not in the arena");
    void *q = alloc_at(a, new_size, use, call, shown != 0);
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
    if (na_arena_check(a) != NALLOC_OK) {
        na_arena_refuse(a, "nalloc_mark_get");
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
    m.offset = na_atomic_load(&a->bump.offset);
    na_atomic_max(&a->mark_floor, m.offset);
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
    static const char call[] = "nalloc_rollback";
    if (na_arena_check(a) != NALLOC_OK)
        return na_arena_refuse(a, call);
    if (m.arena_uid != a->uid)
        return na_fail(NALLOC_ERR_STATE, call, "the mark was taken on another arena than \"%s\"",
                       a->name);
    const char *why = NULL;
    pthread_mutex_lock(&a->control);
    size_t offset = settle(a);
    if (!na_arena_alive(a))
        why = "arena already destroyed";
    else if (m.generation != a->generation)
        why = "stale mark: taken before a reset or wipe";
    else if (m.offset > offset || mark_released(a, m))
        why = "stale mark: an earlier rollback released its position";
    else if (lanes_hold(a, m.offset))
        why = "lanes split from the arena hold memory above the mark: destroy them first";
    else if (blocks_alive(a, false))
        why = "malloc-family blocks are alive: free them first";
    if (why == NULL) {
        release_to(a, m.offset, offset);
        uint64_t epoch = __atomic_add_fetch(&a->epoch, 1, __ATOMIC_RELAXED);
        history_push(a, epoch, m.offset);
        __atomic_fetch_add(&a->rollbacks, 1, __ATOMIC_RELAXED);
    }
    pthread_mutex_unlock(&a->control);
    if (why != NULL)
        return na_fail(NALLOC_ERR_STATE, call, "%s (arena \"%s\")", why, a->name);
    return NALLOC_OK;
}

static nalloc_status reset_arena(nalloc_arena *a, bool forget_blocks, const char *call)
{
    if (na_arena_check(a) != NALLOC_OK)
        return na_arena_refuse(a, call);
    const char *why = NULL;
    na_trace_push("nalloc_reset", a->name);
    pthread_mutex_lock(&a->control);
    if (!na_arena_alive(a)) {
        why = "arena already destroyed";
    } else if (lanes_hold(a, 0)) {
        why = "lanes split from the arena are alive: destroy them first";
    } else if (blocks_alive(a, forget_blocks)) {
        why = "malloc-family blocks are alive: free them first (or nalloc_reset_unchecked)";
    } else {
        reset_locked(a);
        __atomic_fetch_add(&a->resets, 1, __ATOMIC_RELAXED);
    }
    pthread_mutex_unlock(&a->control);
    na_trace_pop();
    if (why != NULL)
        return na_fail(NALLOC_ERR_STATE, call, "%s (arena \"%s\")", why, a->name);
    return NALLOC_OK;
}

nalloc_status nalloc_reset(nalloc_arena *a)
{
    return reset_arena(a, false, "nalloc_reset");
}

nalloc_status nalloc_reset_unchecked(nalloc_arena *a)
{
    return reset_arena(a, true, "nalloc_reset_unchecked");
}

static nalloc_status wipe_arena(nalloc_arena *a, void *stream, bool forget_blocks)
{
    na_trace_push("nalloc_wipe", a->name);
    pthread_mutex_lock(&a->control);
    nalloc_status st = NALLOC_ERR_STATE;
    if (!na_arena_alive(a))
        na_cause("arena already destroyed");
    else if (lanes_hold(a, 0))
        na_cause("lanes split from the arena are alive: destroy them first");
    else if (blocks_alive(a, forget_blocks))
        na_cause("malloc-family blocks are alive: free them first (or nalloc_wipe_unchecked)");
    else
        st = wipe_locked(a, stream);
    pthread_mutex_unlock(&a->control);
    na_trace_pop();
    return st;
}

nalloc_status na_arena_wipe(nalloc_arena *a, void *stream)
{
    return wipe_arena(a, stream, false);
}

/* nalloc_wipe and nalloc_wipe_unchecked: record a failure under the public name. */
static nalloc_status wipe_public(nalloc_arena *a, bool forget_blocks, const char *call)
{
    if (na_arena_check(a) != NALLOC_OK)
        return na_arena_refuse(a, call);
    na_cause_clear();
    nalloc_status st = wipe_arena(a, NULL, forget_blocks);
    return st == NALLOC_OK ? st : na_fail_cause(st, call, "arena \"%s\"", a->name);
}

nalloc_status nalloc_wipe_unchecked(nalloc_arena *a)
{
    return wipe_public(a, true, "nalloc_wipe_unchecked");
}

nalloc_status nalloc_wipe(nalloc_arena *a)
{
    return wipe_public(a, false, "nalloc_wipe");
}

/* ---------------------------------------------------------------------------------------------
 * Lanes: the parent's side
 *
 * A lane (lane.c) is an arena whose memory is one block of its parent's, handed out by the
 * parent as an ordinary allocation. The invariant lanes add is the parent's to keep: while a lane
 * is alive its parent never releases the lane's memory. The parent counts its live lanes and
 * remembers where its highest lane block ends; a rollback below that, a reset and a wipe are
 * refused while any lane lives, free_last cannot reach below it (the mark floor is raised over
 * the block), and destroying the parent destroys its lanes first.
 *
 * Wipes. Each lane wipes its own memory (its flags are the parent's), up to its own high-water
 * mark. The parent must not wipe the block as well: to the parent the whole block was handed out,
 * and in a dry run the block is tens of GiB of which the lanes touched a few MiB, so zeroing it
 * would commit all of it. So the parent keeps one "clean" range, the lane block whose lanes keep
 * it clean, and its own wipes (nalloc_wipe, destroy, exit) skip it. (The split zeroes the bytes
 * between two lanes, which belong to no lane, so the block is then clean once its lanes are.) A
 * lane that dies with dirty memory (it does not wipe on destroy) spoils the range, and the parent
 * then zeroes the whole block, which is always correct. When the parent later releases the block,
 * its dirty extent drops back to what it was below the block, if nothing above the block was
 * dirtied meanwhile.
 *
 * Sizing. A dry run splits a parent reserved far larger than needed, so its lanes get far more
 * room than they use and the parent's high-water mark says nothing about what it needed. So the
 * parent also keeps `lent` (bytes of lane blocks below its offset), from which offset.c keeps
 * own_peak, its need without its lanes; a split or a release changes lent under the control lock.
 * The largest lane high-water mark and the most lanes per split complete what nalloc_ctx_profile
 * reports.
 * ------------------------------------------------------------------------------------------- */

/* A lane's memory was given to it (its parent's control lock held, by the split): bytes the parent
 * handed out before and has not wiped since are dirty in the lane too. The split settled the
 * parent's extent under that lock. */
static void lane_born(nalloc_arena *a)
{
    nalloc_arena *p = a->parent;
    size_t dirty = na_atomic_load(&p->dirty_end);
    if (dirty > a->memory.parent_offset) {
        size_t d = dirty - a->memory.parent_offset;
        a->dirty_end = d < a->bump.capacity ? d : a->bump.capacity;
    }
    __atomic_fetch_add(&p->lanes_alive, 1, __ATOMIC_RELAXED);
}

/* Give the arena's memory back to its backing; a lane's goes back to its parent, which learns its
 * peak and whether it left dirty memory behind. */
static void release_memory(nalloc_arena *a)
{
    a->memory.backing->destroy(&a->memory);
    nalloc_arena *p = a->parent;
    if (p == NULL)
        return;
    na_atomic_max(&p->lane_peak, na_arena_peak(a));
    /* Not wiped: the parent must zero the block itself. */
    if (na_atomic_load(&a->bump.offset) > 0 || na_atomic_load(&a->dirty_end) > 0)
        na_atomic_store(&p->clean_end, 0);
    /* Release: the parent reads the lane's last bookkeeping after it sees the count drop. */
    __atomic_fetch_sub(&p->lanes_alive, 1, __ATOMIC_RELEASE);
}

void na_arena_lend(nalloc_arena *p, size_t begin, size_t size, size_t count, size_t dirty)
{
    size_t end = begin + size;
    if (end > p->lanes_end)
        p->lanes_end = end;
    if (na_atomic_load(&p->clean_end) == 0) { /* one clean range at a time */
        p->clean_below = dirty < begin ? dirty : begin;
        na_atomic_store(&p->clean_start, begin);
        na_atomic_store(&p->clean_end, end);
    }
    na_atomic_max(&p->mark_floor, end); /* free_last never reaches into the lanes */
    na_atomic_store(&p->lent, na_atomic_load(&p->lent) + size);
    na_atomic_max(&p->lanes_peak, count);
}

/* True when a live lane of `a` still owns memory at or above `target`, so nothing from `target`
 * up may be released (control lock held). */
static bool lanes_hold(nalloc_arena *a, size_t target)
{
    return __atomic_load_n(&a->lanes_alive, __ATOMIC_ACQUIRE) > 0 && target < a->lanes_end;
}

typedef struct blocks_search {
    const nalloc_arena *ancestor;
    bool live; /* a lane below `ancestor` has live malloc-family blocks */
} blocks_search;

static void find_live_blocks(void *handle, void *arg)
{
    const nalloc_arena *a = handle;
    blocks_search *s = arg;
    if (s->live || !na_arena_mapped(a)) /* contexts and free slots included */
        return;
    for (const nalloc_arena *p = a->parent; p != NULL; p = p->parent)
        if (p == s->ancestor) {
            s->live = na_blocks_live(a) > 0;
            return;
        }
}

bool na_arena_lane_blocks_live(const nalloc_arena *a)
{
    if (__atomic_load_n(&a->lanes_alive, __ATOMIC_ACQUIRE) == 0)
        return false;
    blocks_search s = {a, false};
    na_handle_foreach(find_live_blocks, &s);
    return s.live;
}

typedef struct lane_search {
    const nalloc_arena *parent;
    nalloc_arena *found; /* a live lane of parent, or NULL */
    uint64_t found_uid;  /* its uid, read under the handle lock */
} lane_search;

static void find_lane(void *handle, void *arg)
{
    nalloc_arena *a = handle;
    lane_search *s = arg;
    /* Doomed lanes too (nalloc_arena_destroy_deferred): they count in lanes_alive. */
    if (s->found == NULL && na_arena_mapped(a) && a->parent == s->parent) {
        s->found = a;
        s->found_uid = a->uid;
    }
}

#if defined(NALLOC_TEST_SEAMS)
void (*na_seam_lane_found)(nalloc_arena *lane);
#endif

/* Destroy every live lane of `a`, waiting for lanes another thread is destroying (control lock of
 * `a` held). */
static void lanes_destroy_all(nalloc_arena *a)
{
    while (__atomic_load_n(&a->lanes_alive, __ATOMIC_ACQUIRE) > 0) {
        lane_search s = {a, NULL, 0};
        na_handle_foreach(find_lane, &s);
        if (s.found == NULL) { /* another thread retired the last one since the count was read */
            sched_yield();
            continue;
        }
        NA_SEAM(na_seam_lane_found, s.found);
        /* The handle lock is released: another thread may destroy the lane meanwhile, and a third
         * create an arena in its slot, whose parent field then still points here until creation
         * sets it. So the lane is destroyed only if its slot still holds the arena found (same
         * uid, checked under its control lock); a lane destroyed first, or one whose wipe failed
         * (it spoils the parent's clean range, so the parent's wipe covers it), is no failure of
         * the parent's destroy. */
        (void)na_arena_destroy(s.found, s.found_uid);
    }
    na_cause_clear(); /* what a lane's destroy noted is not the parent's failure */
}

/* The offset moves down to `target` (control lock held; if that is below the lanes, every lane is
 * destroyed): lane blocks above it become ordinary memory of `a` again. */
static void lanes_release(nalloc_arena *a, size_t target)
{
    /* Only reached with every lane of `a` destroyed (lanes_hold refused it otherwise). The
     * released blocks are no longer lent; any older block still below target is counted as the
     * parent's own from now on, which can only make its recorded need larger, never smaller. */
    if (target < a->lanes_end) {
        a->lanes_end = 0;
        na_atomic_store(&a->lent, 0);
    }
    size_t clean_end = na_atomic_load(&a->clean_end);
    if (clean_end != 0 && target < clean_end) {
        /* The block becomes free space of the parent. Dirty below it: what was dirty at the split;
         * above it: what settle folded in past its end, if anything (then the block is counted
         * dirty too, conservatively, since one extent cannot leave a hole). */
        if (na_atomic_load(&a->dirty_end) <= clean_end)
            na_atomic_store(&a->dirty_end, a->clean_below);
        na_atomic_store(&a->clean_end, 0);
        na_atomic_store(&a->clean_start, 0);
    }
}

/* Zero [0, end) of `a` through its backing, except a lane block its lanes keep clean; *zeroed is
 * the number of bytes zeroed. */
static nalloc_status zero_dirty(nalloc_arena *a, size_t end, void *stream, size_t *zeroed)
{
    size_t clean_start = na_atomic_load(&a->clean_start);
    size_t clean_end = na_atomic_load(&a->clean_end);
    if (clean_end == 0 || clean_start >= end) {
        *zeroed = end;
        return a->memory.backing->zero(&a->memory, 0, end, stream);
    }
    *zeroed = 0;
    nalloc_status st = NALLOC_OK;
    if (clean_start > 0) {
        st = a->memory.backing->zero(&a->memory, 0, clean_start, stream);
        *zeroed = clean_start;
    }
    if (st == NALLOC_OK && end > clean_end) {
        st = a->memory.backing->zero(&a->memory, clean_end, end - clean_end, stream);
        *zeroed += end - clean_end;
    }
    return st;
}

/* ---------------------------------------------------------------------------------------------
 * Thread exit: a thread's slots and chunks in every live arena
 * ------------------------------------------------------------------------------------------- */

static void release_in(void *handle, void *arg)
{
    nalloc_arena *a = handle;
    size_t token = *(const size_t *)arg;
    if (!na_arena_mapped(a))
        return;
    for (unsigned i = 0; i < NA_STAT_SLOTS; i++)
        if (__atomic_load_n(&a->slots[i].owner, __ATOMIC_RELAXED) == token)
            __atomic_store_n(&a->slots[i].owner, 0, __ATOMIC_RELEASE);
}

/* An arena where the exiting thread still holds a chunk (found under the handle lock). */
typedef struct held_chunk {
    size_t token;
    nalloc_arena *arena; /* NULL: none found */
    uint64_t uid;
    na_stat_slot *slot;
} held_chunk;

static void find_held_chunk(void *handle, void *arg)
{
    nalloc_arena *a = handle;
    held_chunk *h = arg;
    if (h->arena != NULL || !na_arena_mapped(a))
        return;
    for (unsigned i = 0; i < NA_STAT_SLOTS; i++) {
        na_stat_slot *s = &a->slots[i];
        if (__atomic_load_n(&s->owner, __ATOMIC_RELAXED) == h->token &&
            (na_atomic_load(&s->plain.end) != 0 || na_atomic_load(&s->blocks.end) != 0)) {
            h->arena = a;
            h->uid = a->uid;
            h->slot = s;
            return;
        }
    }
}

/* The exit of the thread with `token` (thread.c): its chunks go back to their arenas and its slots
 * are freed for other threads. */
static void release_thread_slots(size_t token)
{
    if (token == 0)
        return;
    /* Chunks first, one arena at a time, each under its control lock but outside the handle lock
     * (destroy takes them the other way round): the plain chunk's remainder goes back or to the
     * orphans, the malloc family's chunk is abandoned to its last free. */
    for (;;) {
        held_chunk h = {token, NULL, 0, NULL};
        na_handle_foreach(find_held_chunk, &h);
        if (h.arena == NULL)
            break;
        pthread_mutex_lock(&h.arena->control);
        if (na_arena_mapped(h.arena) && h.arena->uid == h.uid) {
            na_tcache_thread_exit(h.arena, h.slot);
            na_blocks_thread_exit(h.arena, h.slot);
        } else { /* destroyed meanwhile: the slot's chunks died with it */
            na_atomic_store(&h.slot->plain.end, 0);
            na_atomic_store(&h.slot->blocks.end, 0);
        }
        pthread_mutex_unlock(&h.arena->control);
    }
    na_handle_foreach(release_in, &token);
    for (unsigned i = 0; i < NA_SLOT_CACHE; i++)
        na_slot_cache[i].uid = 0;
}

/* ---------------------------------------------------------------------------------------------
 * Statistics
 * ------------------------------------------------------------------------------------------- */

/* The smallest nalloc_stats a caller may pass: the fields through redzone_bytes, which every
 * caller has. The fields after them (thread chunks, routes, prefaulting, and whatever later
 * releases add at the end) are filled as far as the caller's struct has room. */
#define NA_STATS_SIZE_1_0 (offsetof(nalloc_stats, redzone_bytes) + sizeof(size_t))

/* Fill a whole nalloc_stats of this build with a snapshot of `a` (alive). */
static void fill_stats(const nalloc_arena *a, nalloc_stats *s)
{
    const na_memory *m = &a->memory;
    memset(s, 0, sizeof *s);
    s->version = NALLOC_STATS_VERSION;
    s->struct_size = sizeof *s;
    s->name = a->name;
    s->kind = a->config.kind;
    s->memory = a->config.memory;
    s->capacity = a->bump.capacity;
    s->used = na_atomic_load(&a->bump.offset);
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
    s->reserved = m->reserved;
    s->guard_size = m->guard_size;
    s->base = a->bump.base;
    s->pin_seconds = m->pin_seconds;
    s->requested = a->config.flags;
    s->missing = a->config.flags & NA_FEATURE_FLAGS & (~m->in_force | na_prefault_lost(a));
    s->guard_pages = m->guard_pages;
    s->populated = (m->in_force & NALLOC_FLAG_POPULATE) != 0;
    s->huge_pages = (m->in_force & NALLOC_FLAG_HUGEPAGES) != 0;
    s->locked = (m->in_force & NALLOC_FLAG_LOCK) != 0 || m->pinned;
    s->no_dump = (m->in_force & NALLOC_FLAG_NODUMP) != 0;
    s->wipe_on_fork = (m->in_force & NALLOC_FLAG_WIPEONFORK) != 0;
    s->wipe_on_destroy = wipes_on_destroy(a);
    s->secret = (m->in_force & NALLOC_FLAG_SECRET) != 0;
    s->pinned = m->pinned;
    s->pin_fallback = m->pin_fallback;
    s->checkers = a->track_checkers;
    s->redzone = a->track_redzone;
    s->redzone_bytes = __atomic_load_n(&a->track_redzone_bytes, __ATOMIC_RELAXED);
    s->prefaulted = __atomic_load_n(&a->prefault.prefaulted, __ATOMIC_RELAXED);
    s->collapsed = __atomic_load_n(&a->prefault.collapsed, __ATOMIC_RELAXED);
    /* used is the offset less what threads' chunks hold unused and what lies free below it.
     * The offset was read once, for used: the lazy peak, read after it, may have been folded
     * from a lower offset since (a free_last in between), so it is raised to it. */
    size_t offset = s->used;
    if (s->high_water < offset)
        s->high_water = offset;
    s->cached = na_tcache_cached(a) + na_blocks_cached(a);
    s->deferred = na_atomic_load((size_t *)&a->stretch_bytes) +
                  na_atomic_load((size_t *)&a->freed_bytes);
    s->used = offset > s->cached + s->deferred ? offset - s->cached - s->deferred : 0;
    s->live_blocks = na_blocks_live(a);
    s->fallbacks = __atomic_load_n(&a->fallbacks, __ATOMIC_RELAXED);
}

/* What the kernel says of the arena's memory (nalloc_arena_stats_resident). smaps counts whole
 * mappings: a lane's memory is a slice of its parent's, which it cannot tell apart. The arena
 * stays mapped while we read: destroying it meanwhile is the caller's race, as for every call. */
static void fill_resident(const nalloc_arena *a, nalloc_stats *s)
{
    if (a->memory.backing->host_accessible && a->parent == NULL && a->memory.map_start != NULL) {
        size_t page = na_prim_page_size();
        size_t size = (a->bump.capacity + page - 1) / page * page;
        s->resident_known = na_prim_resident((void *)a->bump.base, size, &s->resident_bytes,
                                             &s->huge_bytes) == 0;
    }
}

/* nalloc_arena_stats_sized and _resident_sized: checks, then a snapshot copied into the caller's
 * struct, no more of it than the caller has. */
static nalloc_status stats_sized(const nalloc_arena *a, nalloc_stats *s, size_t size,
                                 bool resident, const char *call)
{
    if (na_arena_check(a) != NALLOC_OK)
        return na_arena_refuse(a, call);
    if (s == NULL)
        return na_fail(NALLOC_ERR_INVALID, call, "stats is NULL");
    if (size < NA_STATS_SIZE_1_0)
        return na_fail(NALLOC_ERR_INVALID, call,
                       "stats_size %zu is below the %zu bytes of the 1.0 nalloc_stats", size,
                       (size_t)NA_STATS_SIZE_1_0);
    nalloc_stats full;
    fill_stats(a, &full);
    if (resident)
        fill_resident(a, &full);
    /* The caller's struct may be older (smaller) than ours: write no more than it has. A newer
     * (larger) one keeps its fields beyond ours untouched. */
    size_t n = size < sizeof full ? size : sizeof full;
    full.struct_size = (uint32_t)n;
    memcpy(s, &full, n);
    return NALLOC_OK;
}

nalloc_status nalloc_arena_stats_sized(const nalloc_arena *a, nalloc_stats *s, size_t size)
{
    return stats_sized(a, s, size, false, "nalloc_arena_stats");
}

nalloc_status nalloc_arena_stats_resident_sized(const nalloc_arena *a, nalloc_stats *s,
                                                size_t size)
{
    return stats_sized(a, s, size, true, "nalloc_arena_stats_resident");
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

static void print_stats(const nalloc_arena *a, FILE *out)
{
    nalloc_stats s;
    fill_stats(a, &s);
    fill_resident(a, &s);
    char in_force[160], missing[160];
    flag_names((a->memory.in_force & ~na_prefault_lost(a)) |
                   (s.requested & ~(unsigned)NA_FEATURE_FLAGS),
               in_force, sizeof in_force);
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
    if (s.requested & NALLOC_FLAG_PREFAULT_AHEAD)
        fprintf(out, "  prefaulted %zu bytes ahead  collapsed %zu bytes into huge pages\n",
                s.prefaulted, s.collapsed);
    if (s.resident_known)
        fprintf(out, "  resident %zu bytes, %zu of them in huge pages\n", s.resident_bytes,
                s.huge_bytes);
}

nalloc_status nalloc_arena_print_stats(const nalloc_arena *a, FILE *out)
{
    if (na_arena_check(a) != NALLOC_OK)
        return na_arena_refuse(a, "nalloc_arena_print_stats");
    print_stats(a, out != NULL ? out : stderr);
    return NALLOC_OK;
}
