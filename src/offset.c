/* src/offset.c - an arena's offset between phase boundaries: its lazy peaks, and giving bytes back.
 *
 * Allocation moves the offset up with one CAS and nothing else, so the figures that follow the
 * offset are not updated on that path. Between two downward moves the offset only grows, so its
 * peak is the value it had just before the move down: folding that value in at each downward move
 * (and when the figures are read) gives the exact peak for the price of a few atomics per move
 * instead of per allocation. Three figures are kept this way:
 *
 *  - high_water, the peak of the offset (nalloc_stats.high_water);
 *  - dirty_end, the bytes handed out since the last wipe, which the next wipe zeroes (a wipe
 *    resets it; arena.c);
 *  - own_peak, the peak of offset - lent, where lent is the bytes of lane blocks below the offset
 *    (arena.c lends them at a split, lane.c): the arena's need without its lanes, which a dry run
 *    reports (sizing.c). lent changes only under the control lock, where the offset is folded
 *    first.
 *
 * The fold is inline (internal.h, na_arena_fold), since free_last runs it on its path; only its
 * part for own_peak is here, out of line, which keeps free_last's code as small as it was when
 * that part lived with the lanes.
 *
 * The offset moves down at phase boundaries (rollback, reset, wipe: arena.c, under the control
 * lock) and, between them, whenever the last thing below it is given back: nalloc_free_last, the
 * unused rest of a thread's chunk (tcache.c), a freed block or chunk of the malloc family
 * (blocks.c) or a free stretch that reaches the offset (stretch.c). Those last ones all go through
 * na_offset_give_back, which respects the newest mark: nothing allocated before a mark may be
 * given back below it, or a rollback to the mark would no longer release what came after.
 */
#include "internal.h"

void na_arena_fold_own_peak(nalloc_arena *a, size_t offset)
{
    size_t lent = na_atomic_load(&a->lent);
    if (offset > lent)
        na_atomic_max(&a->own_peak, offset - lent);
}

bool na_offset_give_back(nalloc_arena *a, size_t from, size_t to)
{
    if (from < na_atomic_load(&a->mark_floor))
        return false; /* a mark was taken above it */
    /* The offset was `to` just now: fold it into the lazy peaks before it moves down, and
     * release, so that whoever is handed these bytes next sees everything done with them. */
    na_arena_fold(a, to);
    size_t seen = to;
    return __atomic_compare_exchange_n(&a->bump.offset, &seen, from, false, __ATOMIC_SEQ_CST,
                                       __ATOMIC_RELAXED);
}
