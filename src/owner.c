/* src/owner.c - which arena owns an address: nalloc_owner.
 *
 * free(ptr) has no arena argument, so every free that the malloc family and the override library
 * see starts with this question, most of them about pointers nalloc never handed out. The answer
 * must cost a few nanoseconds with hundreds of arenas alive, take no lock, and stay right while
 * other threads create and destroy arenas.
 *
 * Two structures, both changed only under one mutex:
 *
 *  - The registry: every live host-accessible arena (lanes too) as a range [base, base +
 *    capacity), sorted by base (and, for equal bases, larger first, so a parent precedes a lane
 *    that starts where it does). Readers search it under a sequence lock: they read the sequence,
 *    search with atomic loads, and retry if a writer ran meanwhile. Ranges nest (a lane lies inside
 *    its parent) or are disjoint; the answer for an address is the innermost range holding it.
 *
 *  - The granule table: one word per 2 MiB of address space (a two-level table, a leaf per GiB,
 *    leaves mapped when first needed and never unmapped), holding the arena that is the answer
 *    for every address of that granule, 0 for "no arena here", or NA_OWNER_MIXED when the answer
 *    differs inside the granule (two small arenas share it, or a lane ends inside it). Big arenas
 *    start on 2 MiB boundaries (src/backing_host.c), so almost every lookup is two dependent
 *    loads and a range check; only mixed granules search the registry.
 *
 * A lookup that races with the destruction of the arena it finds may return that arena: it was
 * alive when the call began, and its handle stays mapped (src/handle.c), so every later call on it
 * is refused with NALLOC_ERR_STATE rather than crashing. Freeing into an arena that another
 * thread is destroying is the caller's bug, as with any allocator.
 */
#include "internal.h"

#include <sys/mman.h>

#define NA_OWNER_MAX ((size_t)1 << 16) /* registered ranges at most */

typedef struct owner_range {
    uintptr_t base;      /* first byte */
    uintptr_t end;       /* one past the last byte */
    nalloc_arena *arena;
} owner_range;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static size_t sequence;         /* odd while a writer changes the registry (atomic) */
static size_t count;            /* ranges registered (atomic; written under the lock) */
static owner_range *ranges;     /* NA_OWNER_MAX entries, mapped at the first registration */
uintptr_t *na_owner_leaves[NA_OWNER_LEAVES]; /* atomic pointers; NULL until first needed */

/* ---------------------------------------------------------------------------------------------
 * Reading
 * ------------------------------------------------------------------------------------------- */

static inline uintptr_t load_word(const uintptr_t *p)
{
    return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

/* The innermost registered range holding x, from a consistent snapshot of the registry. */
static nalloc_arena *search(uintptr_t x)
{
    for (;;) {
        size_t seq = __atomic_load_n(&sequence, __ATOMIC_ACQUIRE);
        if (seq & 1) {
            na_spin_pause();
            continue;
        }
        size_t n = __atomic_load_n(&count, __ATOMIC_ACQUIRE);
        const owner_range *rs = __atomic_load_n(&ranges, __ATOMIC_ACQUIRE);
        nalloc_arena *found = NULL;
        if (rs != NULL) {
            /* The last range whose base is <= x; ranges before it that hold x are its ancestors,
             * and the innermost holder is the first one found walking back. Siblings that end
             * before x are skipped; their number is bounded by the lanes of one parent. */
            size_t lo = 0, hi = n;
            while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                if (load_word(&rs[mid].base) <= x)
                    lo = mid + 1;
                else
                    hi = mid;
            }
            for (size_t i = lo; i-- > 0;) {
                if (x < load_word(&rs[i].end)) {
                    found = (nalloc_arena *)load_word((const uintptr_t *)&rs[i].arena);
                    break;
                }
            }
        }
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        if (__atomic_load_n(&sequence, __ATOMIC_RELAXED) == seq)
            return found;
    }
}

nalloc_arena *nalloc_owner(const void *ptr)
{
    uintptr_t x = (uintptr_t)ptr;
    if (na_unlikely(x >> NA_OWNER_ADDRESS_BITS)) /* beyond the table: 5-level page tables */
        return search(x);
    const uintptr_t *leaf = (const uintptr_t *)load_word((const uintptr_t *)&na_owner_leaves[x >> NA_OWNER_LEAF_SHIFT]);
    if (leaf == NULL)
        return NULL;
    uintptr_t entry = load_word(&leaf[(x >> NA_OWNER_GRANULE_SHIFT) & (NA_OWNER_LEAF_ENTRIES - 1)]);
    if (na_likely(entry == 0))
        return NULL;
    if (na_likely(entry != NA_OWNER_MIXED)) {
        /* The arena covers the whole granule. Checked anyway, so that an entry read just before
         * a destroy cleared it cannot name a handle that now holds another arena elsewhere. */
        const nalloc_arena *a = (const nalloc_arena *)entry;
        if (x - a->bump.base < a->bump.capacity && na_arena_mapped(a))
            return (nalloc_arena *)a;
    }
    nalloc_arena *a = search(x);
    return na_arena_mapped(a) ? a : NULL;
}

/* ---------------------------------------------------------------------------------------------
 * Writing (under the lock)
 * ------------------------------------------------------------------------------------------- */

static uintptr_t *leaf_for(size_t index)
{
    uintptr_t *leaf = na_owner_leaves[index];
    if (leaf == NULL) {
        void *p = mmap(NULL, NA_OWNER_LEAF_ENTRIES * sizeof *leaf, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED)
            return NULL;
        leaf = p;
        __atomic_store_n(&na_owner_leaves[index], leaf, __ATOMIC_RELEASE);
    }
    return leaf;
}

/* What the table should say for granule [g, g + 2 MiB): one arena holding all of it (the
 * innermost range, when every other range touching the granule is one of its ancestors), 0 when
 * no range touches it, NA_OWNER_MIXED otherwise. `near` are the ranges that touch the region
 * being updated; any range touching the granule is among them. */
static uintptr_t granule_entry(uintptr_t g, const owner_range *near, size_t n)
{
    uintptr_t g_end = g + ((uintptr_t)1 << NA_OWNER_GRANULE_SHIFT);
    const owner_range *inner = NULL;
    for (size_t i = 0; i < n; i++) {
        const owner_range *r = &near[i];
        if (r->end <= g || r->base >= g_end)
            continue;
        if (r->base > g || r->end < g_end)
            return NA_OWNER_MIXED; /* a boundary inside the granule */
        if (inner == NULL || (r->base >= inner->base && r->end <= inner->end))
            inner = r; /* nested ranges: keep the innermost */
    }
    return inner != NULL ? (uintptr_t)inner->arena : 0;
}

/* Recompute the table over [base, end). False if a leaf could not be mapped. */
static bool refresh(uintptr_t base, uintptr_t end)
{
    if (base >> NA_OWNER_ADDRESS_BITS)
        return true; /* above the table: the registry alone answers */
    if (end > ((uintptr_t)1 << NA_OWNER_ADDRESS_BITS))
        end = (uintptr_t)1 << NA_OWNER_ADDRESS_BITS;
    /* Every range that touches the region, gathered once. With lanes these are one parent's
     * lanes: dozens, not thousands. */
    owner_range near[256];
    size_t n = 0;
    bool many = false;
    uintptr_t first = base & ~(((uintptr_t)1 << NA_OWNER_GRANULE_SHIFT) - 1);
    for (size_t i = 0; i < count; i++) {
        if (ranges[i].end > first && ranges[i].base < end + ((uintptr_t)1 << NA_OWNER_GRANULE_SHIFT)) {
            if (n == sizeof near / sizeof near[0]) {
                many = true;
                break;
            }
            near[n++] = ranges[i];
        }
    }
    for (uintptr_t g = first; g < end; g += (uintptr_t)1 << NA_OWNER_GRANULE_SHIFT) {
        uintptr_t *leaf = leaf_for(g >> NA_OWNER_LEAF_SHIFT);
        if (leaf == NULL)
            return false;
        /* Too many ranges to judge cheaply: let the registry answer. */
        uintptr_t entry = many ? NA_OWNER_MIXED : granule_entry(g, near, n);
        __atomic_store_n(&leaf[(g >> NA_OWNER_GRANULE_SHIFT) & (NA_OWNER_LEAF_ENTRIES - 1)], entry,
                         __ATOMIC_RELEASE);
    }
    return true;
}

static void write_begin(void)
{
    __atomic_store_n(&sequence, sequence + 1, __ATOMIC_RELAXED);
    __atomic_thread_fence(__ATOMIC_RELEASE);
}

static void write_end(void)
{
    __atomic_store_n(&sequence, sequence + 1, __ATOMIC_RELEASE);
}

static void store_range(size_t i, owner_range r)
{
    __atomic_store_n(&ranges[i].base, r.base, __ATOMIC_RELAXED);
    __atomic_store_n(&ranges[i].end, r.end, __ATOMIC_RELAXED);
    __atomic_store_n(&ranges[i].arena, r.arena, __ATOMIC_RELAXED);
}

/* Held across fork, after the handle lock (handle.c): a child forked while another thread
 * changed the registry must not inherit the lock held, nor the sequence odd (its frees would spin
 * in search() for ever). */
static bool fork_locked;

static void lock_for_fork(void)
{
    pthread_mutex_lock(&lock);
    fork_locked = true;
}

static void unlock_after_fork(void)
{
    if (!fork_locked)
        return; /* the hooks were set while the fork was under way */
    fork_locked = false;
    pthread_mutex_unlock(&lock);
}

nalloc_status na_owner_register(nalloc_arena *a)
{
    owner_range r = {a->bump.base, a->bump.base + a->bump.capacity, a};
    if (r.end == r.base)
        return NALLOC_OK;
    na_handle_fork_global(lock_for_fork, unlock_after_fork);
    nalloc_status st = NALLOC_OK;
    pthread_mutex_lock(&lock);
    if (ranges == NULL) {
        void *p = mmap(NULL, NA_OWNER_MAX * sizeof *ranges, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (p != MAP_FAILED)
            __atomic_store_n(&ranges, (owner_range *)p, __ATOMIC_RELEASE);
    }
    if (ranges == NULL) {
        st = NALLOC_ERR_OS;
    } else if (count == NA_OWNER_MAX) {
        st = NALLOC_ERR_NOMEM;
    } else {
        size_t at = count; /* sorted by base, larger ranges first for equal bases */
        while (at > 0 && (ranges[at - 1].base > r.base ||
                          (ranges[at - 1].base == r.base && ranges[at - 1].end < r.end)))
            at--;
        write_begin();
        for (size_t i = count; i > at; i--)
            store_range(i, ranges[i - 1]);
        store_range(at, r);
        __atomic_store_n(&count, count + 1, __ATOMIC_RELAXED);
        write_end();
        if (!refresh(r.base, r.end))
            st = NALLOC_ERR_OS; /* no page for a leaf: undone below, the creation fails */
    }
    pthread_mutex_unlock(&lock);
    if (st != NALLOC_OK && ranges != NULL)
        na_owner_unregister(a);
    return st;
}

void na_owner_unregister(nalloc_arena *a)
{
    pthread_mutex_lock(&lock);
    for (size_t i = 0; ranges != NULL && i < count; i++) {
        if (ranges[i].arena != a)
            continue;
        owner_range r = ranges[i];
        write_begin();
        for (size_t j = i; j + 1 < count; j++)
            store_range(j, ranges[j + 1]);
        __atomic_store_n(&count, count - 1, __ATOMIC_RELAXED);
        write_end();
        (void)refresh(r.base, r.end); /* leaves exist: registration mapped them */
        break;
    }
    pthread_mutex_unlock(&lock);
}
