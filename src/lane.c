/* src/lane.c - lanes: one arena split into per-thread arenas at deterministic places.
 *
 * Threads that share one arena get a layout that depends on how they interleave (whose CAS wins
 * decides who gets which offset), and they all contend on one atomic offset. A lane gives each
 * worker thread an arena of its own instead. Its memory is a slice of one block that the parent
 * hands out as an ordinary allocation, so the parent's layout still depends only on the parent's
 * own requests, lane i always starts at the same offset, and inside a lane the layout depends only
 * on that lane's requests. Its header, offset, marks and statistics are its own, so no lane
 * touches a cache line another lane writes.
 *
 * A lane is an arena like any other, with a backing that takes its memory from the parent rather
 * than from the OS: create sets base and capacity inside the parent's block, destroy gives nothing
 * back (the block stays allocated in the parent until the parent moves its offset below it), and
 * zero forwards to the parent's backing at the lane's offset, so a lane of a device arena is wiped
 * by the device backing's kernel without CUDA code here. Bump, marks, statistics, the layout
 * digest and the wipe discipline are arena.c's, unchanged. Being a parent allocation, the block is
 * also one region to the tools that see the parent's blocks (NVTX, sanitizers); the blocks inside
 * a lane are not described to NVTX.
 *
 * The invariant lanes add: while a lane is alive its parent never releases the lane's memory. The
 * parent counts its live lanes and remembers where its highest lane block ends; a rollback below
 * that, a reset and a wipe are refused while any lane lives, free_last cannot reach below it (the
 * mark floor is raised over the block), and destroying the parent destroys its lanes first.
 *
 * Wipes. Each lane wipes its own memory (its flags are the parent's), up to its own high-water
 * mark. The parent must not wipe the block as well: to the parent the whole block was handed out,
 * and in a dry run the block is tens of GiB of which the lanes touched a few MiB, so zeroing it
 * would commit all of it. So the parent keeps one "clean" range, the lane block whose lanes keep
 * it clean, and its own wipes (nalloc_wipe, destroy, exit) skip it. The bytes between two lanes
 * (a stride is the capacity rounded up to the lane alignment) belong to no lane, so the split
 * zeroes what of them the parent had dirtied: the block is then clean once its lanes are. A lane
 * that dies with dirty memory (it does not wipe on destroy) spoils the range, and the parent then
 * zeroes the whole block, which is always correct. When the parent later releases the block, its
 * dirty extent drops back to what it was below the block, if nothing above the block was dirtied
 * meanwhile.
 *
 * Sizing. A dry run splits a parent reserved far larger than needed, so its lanes get far more
 * room than they use and the parent's high-water mark says nothing about what it needed. So the
 * parent also keeps `lent` (bytes of lane blocks below its offset) and `own_peak`, the peak of
 * offset - lent: its need without its lanes. The peak of offset - lent is reached just before the
 * offset moves down or lent changes, which is exactly where arena.c folds its own lazy high-water
 * mark (na_lanes_settle) and where a split or a release changes lent. The largest lane high-water
 * mark and the most lanes per split complete what nalloc_ctx_profile reports.
 */
#include "internal.h"
#include "track.h"
#include "prim.h"

#include <sched.h>
#include <stdio.h>

/* ---------------------------------------------------------------------------------------------
 * The lane backing
 * ------------------------------------------------------------------------------------------- */

static nalloc_status lane_create(nalloc_arena *a)
{
    nalloc_arena *p = a->parent;
    if (!nalloc_bump_init(&a->bump, p->bump.base + a->parent_offset, a->config.capacity))
        return NALLOC_ERR_INVALID;
    /* The memory is the parent's, and so are the protections in force on it. */
    a->in_force = p->in_force;
    a->pinned = p->pinned;
    a->pin_fallback = p->pin_fallback;
    /* Bytes the parent handed out before and has not wiped since are dirty in the lane too. The
     * split settled the parent's extent under its control lock. */
    size_t dirty = nalloc_atomic_load(&p->dirty_end);
    if (dirty > a->parent_offset) {
        size_t d = dirty - a->parent_offset;
        a->dirty_end = d < a->bump.capacity ? d : a->bump.capacity;
    }
    __atomic_fetch_add(&p->lanes_alive, 1, __ATOMIC_RELAXED);
    return NALLOC_OK;
}

static void lane_destroy(nalloc_arena *a)
{
    nalloc_arena *p = a->parent;
    nalloc_atomic_max(&p->lane_peak, na_arena_peak(a));
    /* Not wiped: the parent must zero the block itself. */
    if (nalloc_atomic_load(&a->bump.offset) > 0 || nalloc_atomic_load(&a->dirty_end) > 0)
        nalloc_atomic_store(&p->clean_end, 0);
    /* Release: the parent reads the lane's last bookkeeping after it sees the count drop. */
    __atomic_fetch_sub(&p->lanes_alive, 1, __ATOMIC_RELEASE);
}

static nalloc_status lane_zero(nalloc_arena *a, size_t offset, size_t length, void *stream)
{
    nalloc_arena *p = a->parent;
    return p->backing->zero(p, a->parent_offset + offset, length, stream);
}

/* A lane's dirty extent comes from its parent (lane_create), not from fresh_is_zero. */
static const na_backing lane_host = {
    .name = "lane",
    .create = lane_create,
    .destroy = lane_destroy,
    .zero = lane_zero,
    .fresh_is_zero = true,
    .host_accessible = true,
};

static const na_backing lane_device = {
    .name = "lane (device)",
    .create = lane_create,
    .destroy = lane_destroy,
    .zero = lane_zero,
    .fresh_is_zero = true,
    .host_accessible = false,
};

/* ---------------------------------------------------------------------------------------------
 * Splitting
 * ------------------------------------------------------------------------------------------- */

/* Lanes start at multiples of a page at least, so lanes share no cache line, and of both policy
 * alignments, so a lane's blocks fall where they would in an arena of its own. */
size_t na_lane_align(size_t default_align, size_t large_align)
{
    size_t align = na_prim_page_size();
    if (large_align > align)
        align = large_align;
    if (default_align > align)
        align = default_align;
    return align;
}

/* Where the lanes go, computed before anything is touched (control lock held). */
typedef struct split_plan {
    size_t align;    /* bytes: the lane alignment */
    size_t stride;   /* bytes from one lane's base to the next; multiple of align */
    size_t capacity; /* bytes each lane can hand out */
    size_t block;    /* bytes of the parent's block: (count - 1) * stride + capacity */
} split_plan;

static nalloc_status plan_split(const nalloc_arena *p, size_t count, size_t lane_capacity,
                                split_plan *plan)
{
    plan->align = na_lane_align(p->default_align, p->large_align);
    size_t first, end;
    size_t offset = nalloc_atomic_load(&p->bump.offset);
    if (!nalloc_bump_fit(p->bump.base, p->bump.capacity, offset, 1, plan->align, &first, &end))
        return NALLOC_ERR_NOMEM;
    size_t room = p->bump.capacity - first;
    /* In checker builds with redzones the block is reserved with a redzone after it. */
    size_t one = 1, overhead;
    (void)na_track_extent(p, 1, &one);
    overhead = one - 1;
    if (lane_capacity == 0) { /* an equal share of the room left, in whole alignment units */
        plan->stride = (room > overhead ? room - overhead : 0) / count & ~(plan->align - 1);
        plan->capacity = plan->stride;
        if (plan->stride == 0)
            return NALLOC_ERR_NOMEM;
    } else {
        if (!nalloc_round_up(lane_capacity, plan->align, &plan->stride))
            return NALLOC_ERR_NOMEM;
        plan->capacity = lane_capacity;
    }
    size_t head;
    if (__builtin_mul_overflow(count - 1, plan->stride, &head) ||
        __builtin_add_overflow(head, plan->capacity, &plan->block))
        return NALLOC_ERR_NOMEM;
    size_t extent;
    if (!na_track_extent(p, plan->block, &extent) || extent > room)
        return NALLOC_ERR_NOMEM;
    return NALLOC_OK;
}

/* The bytes between one lane's last byte and the next lane's base (stride - capacity of them,
 * less than a lane alignment) belong to no lane, so no lane's wipe reaches them, and the parent's
 * own wipes skip the block its lanes keep clean. Zero now what the parent handed out there before
 * the split (below `dirty`), so the block really is clean once its lanes are. */
static nalloc_status zero_gaps(nalloc_arena *p, size_t begin, size_t count, const split_plan *plan,
                               size_t dirty)
{
    size_t gap = plan->stride - plan->capacity;
    for (size_t i = 0; gap > 0 && i + 1 < count; i++) {
        size_t from = begin + i * plan->stride + plan->capacity;
        if (from >= dirty)
            break;
        nalloc_status st = p->backing->zero(p, from, dirty - from < gap ? dirty - from : gap, NULL);
        if (st != NALLOC_OK)
            return st;
    }
    return NALLOC_OK;
}

nalloc_status nalloc_arena_split(nalloc_arena *p, size_t count, size_t lane_capacity,
                                 nalloc_arena **lanes)
{
    static const char call[] = "nalloc_arena_split";
    if (na_arena_check(p) != NALLOC_OK)
        return na_arena_refuse(p, call);
    if (count == 0 || lanes == NULL)
        return na_fail(NALLOC_ERR_INVALID, call, "%s (arena \"%s\")",
                       lanes == NULL ? "lanes is NULL" : "count is 0", p->name);

    na_cause_clear();
    pthread_mutex_lock(&p->control);
    if (p->thread_cache && na_arena_alive(p)) {
        /* The lanes share the room left after the last block, not after this thread's chunk
         * (NALLOC_FLAG_THREAD_CACHE): its remainder goes back first, as for a mark. */
        na_stat_slot *s = na_stat_slot_of(p);
        if (s != &p->shared_slot)
            na_tcache_give_back(p, &s->plain);
    }
    split_plan plan;
    nalloc_status st = NALLOC_ERR_STATE;
    if (!na_arena_alive(p))
        na_cause("arena already destroyed");
    else if ((st = plan_split(p, count, lane_capacity, &plan)) != NALLOC_OK)
        na_cause("%zu bytes free, too few for %zu lanes of %zu bytes (0: a share of at least %zu)",
                 p->bump.capacity - nalloc_atomic_load(&p->bump.offset), count, lane_capacity,
                 na_lane_align(p->default_align, p->large_align));
    char *block = NULL;
    size_t dirty = 0; /* bytes: the parent's dirty extent before the block */
    if (st == NALLOC_OK) {
        /* The parent's lazy extents, settled so the lanes see which of their bytes are dirty and
         * the own peak before the block is lent. */
        na_arena_fold(p, nalloc_atomic_load(&p->bump.offset));
        dirty = nalloc_atomic_load(&p->dirty_end);
        /* One ordinary allocation of the parent: counted, digested and shown to tools as such. It
         * cannot fail after plan_split unless another thread allocates from the parent during
         * the split, which the caller has ruled out (a phase boundary). */
        block = na_alloc_block(p, plan.block, plan.align);
        st = block != NULL ? NALLOC_OK : NALLOC_ERR_NOMEM;
    }
    size_t begin = block != NULL ? (size_t)((uintptr_t)block - p->bump.base) : 0;
    if (st == NALLOC_OK)
        st = zero_gaps(p, begin, count, &plan, dirty);
    size_t made = 0;
    if (st == NALLOC_OK) {
        /* Only now is count known to be sane (at least a page of the parent per lane). */
        for (size_t i = 0; i < count; i++)
            lanes[i] = NULL;
        const na_backing *backing = p->backing->host_accessible ? &lane_host : &lane_device;
        nalloc_arena_config config = p->config;
        config.capacity = plan.capacity;
        config.fixed_address = NULL;
        for (; made < count; made++) {
            char index[24], name[NA_NAME_MAX + sizeof index];
            int digits = snprintf(index, sizeof index, "%zu", made);
            snprintf(name, sizeof name, "%.*s.%s", NA_NAME_MAX - 2 - digits, p->name, index);
            config.name = name;
            st = na_arena_create_from(&config, backing, p, begin + made * plan.stride,
                                      &lanes[made]);
            if (st != NALLOC_OK)
                break;
        }
    }
    if (st == NALLOC_OK) {
        size_t end = begin + plan.block;
        if (end > p->lanes_end)
            p->lanes_end = end;
        if (nalloc_atomic_load(&p->clean_end) == 0) { /* one clean range at a time */
            p->clean_below = dirty < begin ? dirty : begin;
            nalloc_atomic_store(&p->clean_start, begin);
            nalloc_atomic_store(&p->clean_end, end);
        }
        nalloc_atomic_max(&p->mark_floor, end); /* free_last never reaches into the lanes */
        nalloc_atomic_store(&p->lent, nalloc_atomic_load(&p->lent) + plan.block);
        nalloc_atomic_max(&p->lanes_peak, count);
    } else if (block != NULL) { /* all or nothing: undo what was made */
        while (made > 0) {
            made--;
            (void)na_arena_destroy(lanes[made], 0);
            lanes[made] = NULL;
        }
        (void)na_free_last(p, block, plan.block);
    }
    pthread_mutex_unlock(&p->control);
    if (st != NALLOC_OK)
        return na_fail_cause(st, call, "%zu lanes of arena \"%s\"", count, p->name);
    return NALLOC_OK;
}

/* ---------------------------------------------------------------------------------------------
 * The parent's side
 * ------------------------------------------------------------------------------------------- */

bool na_lanes_hold(nalloc_arena *a, size_t target)
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

bool na_lanes_blocks_live(const nalloc_arena *a)
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

void na_lanes_destroy_all(nalloc_arena *a)
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

void na_lanes_settle(nalloc_arena *a, size_t offset)
{
    size_t lent = nalloc_atomic_load(&a->lent);
    if (offset > lent)
        nalloc_atomic_max(&a->own_peak, offset - lent);
}

void na_lanes_release(nalloc_arena *a, size_t target)
{
    /* Only reached with every lane of `a` destroyed (na_lanes_hold refused it otherwise). The
     * released blocks are no longer lent; any older block still below target is counted as the
     * parent's own from now on, which can only make its recorded need larger, never smaller. */
    if (target < a->lanes_end) {
        a->lanes_end = 0;
        nalloc_atomic_store(&a->lent, 0);
    }
    size_t clean_end = nalloc_atomic_load(&a->clean_end);
    if (clean_end != 0 && target < clean_end) {
        /* The block becomes free space of the parent. Dirty below it: what was dirty at the split;
         * above it: what settle folded in past its end, if anything (then the block is counted
         * dirty too, conservatively, since one extent cannot leave a hole). */
        if (nalloc_atomic_load(&a->dirty_end) <= clean_end)
            nalloc_atomic_store(&a->dirty_end, a->clean_below);
        nalloc_atomic_store(&a->clean_end, 0);
        nalloc_atomic_store(&a->clean_start, 0);
    }
}

nalloc_status na_lanes_zero_dirty(nalloc_arena *a, size_t end, void *stream, size_t *zeroed)
{
    size_t clean_start = nalloc_atomic_load(&a->clean_start);
    size_t clean_end = nalloc_atomic_load(&a->clean_end);
    if (clean_end == 0 || clean_start >= end) {
        *zeroed = end;
        return a->backing->zero(a, 0, end, stream);
    }
    *zeroed = 0;
    nalloc_status st = NALLOC_OK;
    if (clean_start > 0) {
        st = a->backing->zero(a, 0, clean_start, stream);
        *zeroed = clean_start;
    }
    if (st == NALLOC_OK && end > clean_end) {
        st = a->backing->zero(a, clean_end, end - clean_end, stream);
        *zeroed += end - clean_end;
    }
    return st;
}
