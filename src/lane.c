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
 * This file plans and makes the split; what the parent keeps about its lanes (how many live, where
 * their block ends, the clean range its wipes skip, the bytes it lent) is the arena's, in arena.c
 * ("Lanes: the parent's side"), which the split tells of the block it lent (na_arena_lend).
 *
 * The bytes between two lanes (a stride is the capacity rounded up to the lane alignment) belong
 * to no lane, so no lane's wipe reaches them, and the parent's own wipes skip the block its lanes
 * keep clean: the split zeroes what of them the parent had dirtied, so the block is clean once
 * its lanes are.
 */
#include "internal.h"
#include "prim.h"
#include "track.h"

#include <stdio.h>

/* ---------------------------------------------------------------------------------------------
 * The lane backing
 * ------------------------------------------------------------------------------------------- */

static nalloc_status lane_create(na_memory *m)
{
    const na_memory *p = m->parent;
    m->base = p->base + m->parent_offset;
    m->capacity = m->config->capacity;
    /* The memory is the parent's, and so are the protections in force on it. */
    m->in_force = p->in_force;
    m->pinned = p->pinned;
    m->pin_fallback = p->pin_fallback;
    return NALLOC_OK;
}

/* Nothing to give back: the block stays allocated in the parent until the parent moves its
 * offset below it. (What the parent learns of a dying lane is arena.c's business.) */
static void lane_destroy(na_memory *m)
{
    (void)m;
}

static nalloc_status lane_zero(const na_memory *m, size_t offset, size_t length, void *stream)
{
    const na_memory *p = m->parent;
    return p->backing->zero(p, m->parent_offset + offset, length, stream);
}

/* A lane's dirty extent comes from its parent (arena.c, lane_born), not from fresh_is_zero. */
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
    size_t offset = na_atomic_load(&p->bump.offset);
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
        if (!na_round_up(lane_capacity, plan->align, &plan->stride))
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
        size_t length = dirty - from < gap ? dirty - from : gap;
        nalloc_status st = p->memory.backing->zero(&p->memory, from, length, NULL);
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
                 p->bump.capacity - na_atomic_load(&p->bump.offset), count, lane_capacity,
                 na_lane_align(p->default_align, p->large_align));
    char *block = NULL;
    size_t dirty = 0; /* bytes: the parent's dirty extent before the block */
    if (st == NALLOC_OK) {
        /* The parent's lazy extents, settled so the lanes see which of their bytes are dirty and
         * the own peak before the block is lent. */
        na_arena_fold(p, na_atomic_load(&p->bump.offset));
        dirty = na_atomic_load(&p->dirty_end);
        /* One ordinary allocation of the parent: counted, digested and shown to tools as such. It
         * cannot fail after plan_split unless another thread allocates from the parent during
         * the split, which the caller has ruled out (a phase boundary). */
        block = na_alloc_block(p, plan.block, plan.align);
        st = block != NULL ? NALLOC_OK : NALLOC_ERR_NOMEM;
        /* A block small enough may have come from a new chunk of this thread: that chunk goes
         * too, so that the block is nobody's newest and nalloc_free_last cannot reach it (the
         * mark floor the lending raises guards it from then on, as without the cache). */
        if (block != NULL && p->thread_cache) {
            na_stat_slot *s = na_stat_slot_of(p);
            if (s != &p->shared_slot)
                na_tcache_give_back(p, &s->plain);
        }
    }
    size_t begin = block != NULL ? (size_t)((uintptr_t)block - p->bump.base) : 0;
    if (st == NALLOC_OK)
        st = zero_gaps(p, begin, count, &plan, dirty);
    size_t made = 0;
    if (st == NALLOC_OK) {
        /* Only now is count known to be sane (at least a page of the parent per lane). */
        for (size_t i = 0; i < count; i++)
            lanes[i] = NULL;
        const na_backing *backing = p->memory.backing->host_accessible ? &lane_host : &lane_device;
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
        na_arena_lend(p, begin, plan.block, count, dirty);
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
