/* src/stretch.c - free stretches below an arena's offset: given back when they reach the top,
 * reused by threads' chunks meanwhile.
 *
 * A bump allocator gives back only what lies at its top. Threads that take chunks of one arena
 * (tcache.c for nalloc_alloc, blocks.c for the malloc family) interleave them, so a chunk whose
 * blocks are all freed, or the unused rest of an exited thread's chunk, is often not at the top:
 * something another thread still uses lies above it. Left alone, such stretches would pile up
 * below the live chunks of a thread pool until the arena is full of free space it cannot use.
 * So they are kept here, and:
 *
 *  - a stretch whose end is the arena's offset goes back to the offset at once (and the offset
 *    coming down to a stretch's end, when what lay above it is freed, takes the stretch too:
 *    "drain"), unless a mark pins it (mark_floor), as free_last;
 *  - a thread that needs a new chunk takes a free stretch first (first fit; a larger one is
 *    split, its rest staying here), before it takes more of the offset;
 *  - neighbours merge, so stretches stay few and as large as the free space they describe.
 *
 * Two small hash tables index the stretches by end and by beginning (open addressing, linear
 * probing, backward-shift deletion, at most half full), mapped with mmap because the malloc family
 * may be malloc itself. Everything here runs under the arena's chunk_lock, off the allocation
 * path: once per chunk, or per free of a whole chunk or a block too big for one. A stretch counts
 * as dirty (it may hold freed data), so inserting one raises the arena's dirty extent over it:
 * nalloc_alloc_zeroed and calloc then clear what they take from it.
 */
#include "internal.h"

#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

typedef struct stretch_entry {
    size_t key;   /* an end (by_end) or a beginning + 1 (by_begin); 0: empty */
    size_t value; /* the other end of the stretch */
} stretch_entry;

typedef struct stretch_table {
    size_t mask;  /* entries - 1 */
    size_t used;
    stretch_entry *entries;
} stretch_table;

struct na_stretch_map {
    stretch_table by_end;   /* end -> beginning */
    stretch_table by_begin; /* beginning + 1 -> end (+ 1: a stretch may begin at offset 0) */
    size_t bytes;           /* of this mapping, for munmap */
};

/* ---------------------------------------------------------------------------------------------
 * The tables
 * ------------------------------------------------------------------------------------------- */

static size_t home(const stretch_table *t, size_t key)
{
    return (size_t)na_layout_mix(key, 0, 0) & t->mask;
}

static stretch_entry *find(const stretch_table *t, size_t key)
{
    if (t->used == 0 || key == 0) /* 0 marks an empty entry: no stretch ends at offset 0 */
        return NULL;
    for (size_t j = home(t, key);; j = (j + 1) & t->mask) {
        if (t->entries[j].key == key)
            return &t->entries[j];
        if (t->entries[j].key == 0)
            return NULL;
    }
}

static void put(stretch_table *t, size_t key, size_t value)
{
    size_t j = home(t, key);
    while (t->entries[j].key != 0)
        j = (j + 1) & t->mask;
    t->entries[j] = (stretch_entry){key, value};
    t->used++;
}

static void erase(stretch_table *t, stretch_entry *e)
{
    size_t hole = (size_t)(e - t->entries);
    t->entries[hole].key = 0;
    for (size_t j = (hole + 1) & t->mask; t->entries[j].key != 0; j = (j + 1) & t->mask) {
        size_t h = home(t, t->entries[j].key);
        if (((j - h) & t->mask) >= ((j - hole) & t->mask)) {
            t->entries[hole] = t->entries[j];
            t->entries[j].key = 0;
            hole = j;
        }
    }
    t->used--;
}

/* Room for one more stretch: grow both tables when they would pass half full. */
static bool reserve_one(nalloc_arena *a)
{
    na_stretch_map *old = a->stretches;
    if (old != NULL && 2 * (old->by_end.used + 1) <= old->by_end.mask + 1)
        return true;
    size_t entries = old != NULL ? (old->by_end.mask + 1) * 2 : 64;
    size_t bytes = sizeof(na_stretch_map) + 2 * entries * sizeof(stretch_entry);
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return false;
    na_stretch_map *m = p;
    m->bytes = bytes;
    m->by_end = (stretch_table){entries - 1, 0, (stretch_entry *)(m + 1)};
    m->by_begin = (stretch_table){entries - 1, 0, m->by_end.entries + entries};
    for (size_t i = 0; old != NULL && i <= old->by_end.mask; i++)
        if (old->by_end.entries[i].key != 0) {
            put(&m->by_end, old->by_end.entries[i].key, old->by_end.entries[i].value);
            put(&m->by_begin, old->by_end.entries[i].value + 1, old->by_end.entries[i].key);
        }
    if (old != NULL)
        munmap(old, old->bytes);
    a->stretches = m;
    return true;
}

/* Both indexes describe the same stretches (NALLOC_DEBUG >= 3). */
static __attribute__((unused)) bool consistent(const na_stretch_map *m)
{
    for (size_t i = 0; m != NULL && i <= m->by_end.mask; i++) {
        const stretch_entry *e = &m->by_end.entries[i];
        if (e->key == 0)
            continue;
        const stretch_entry *b = find(&m->by_begin, e->value + 1);
        if (b == NULL || b->value != e->key)
            return false;
    }
    return m == NULL || m->by_end.used == m->by_begin.used;
}

static void publish_count(nalloc_arena *a)
{
    na_assert_expensive(consistent(a->stretches));
    size_t n = a->stretches != NULL ? a->stretches->by_end.used : 0;
    __atomic_store_n(&a->stretch_count, n, __ATOMIC_SEQ_CST);
}

static void add(nalloc_arena *a, size_t begin, size_t end)
{
    na_assert(find(&a->stretches->by_end, end) == NULL &&
              find(&a->stretches->by_begin, begin + 1) == NULL); /* stretches never overlap */
    put(&a->stretches->by_end, end, begin);
    put(&a->stretches->by_begin, begin + 1, end);
    na_atomic_store(&a->stretch_bytes, a->stretch_bytes + (end - begin));
    publish_count(a);
}

/* Remove the stretch whose by_end entry is `e`. */
static void remove_at(nalloc_arena *a, stretch_entry *e)
{
    size_t end = e->key, begin = e->value;
    erase(&a->stretches->by_end, e);
    erase(&a->stretches->by_begin, find(&a->stretches->by_begin, begin + 1));
    na_atomic_store(&a->stretch_bytes, a->stretch_bytes - (end - begin));
    publish_count(a);
}

/* ---------------------------------------------------------------------------------------------
 * Giving back and reusing (chunk_lock held)
 * ------------------------------------------------------------------------------------------- */

/* Give back every stretch that now ends at the offset (merging keeps that to one, but a pop can
 * race with an allocation, so look again until nothing changes). */
static void drain(nalloc_arena *a)
{
    while (a->stretches != NULL) {
        size_t offset = __atomic_load_n(&a->bump.offset, __ATOMIC_SEQ_CST);
        stretch_entry *e = find(&a->stretches->by_end, offset);
        if (e == NULL)
            return;
        size_t begin = e->value;
        if (!na_offset_give_back(a, begin, offset)) {
            if (begin < na_atomic_load(&a->mark_floor))
                return; /* pinned by a mark: a rollback or reset takes it */
            continue;   /* the offset moved meanwhile */
        }
        remove_at(a, e);
    }
}

void na_stretch_free_locked(nalloc_arena *a, size_t begin, size_t end)
{
    if (end <= begin)
        return;
    /* What was handed out here may be read back by a later nalloc_alloc_zeroed or calloc. */
    na_atomic_max(&a->dirty_end, end);
    if (!reserve_one(a)) {
        fprintf(stderr, "nalloc: arena '%s': no memory to remember a free stretch; %zu bytes stay "
                        "in use until the next reset\n", a->name, end - begin);
        return;
    }
    stretch_entry *before = find(&a->stretches->by_end, begin);
    if (before != NULL) { /* a stretch ends where this one begins: one stretch */
        begin = before->value;
        remove_at(a, before);
    }
    stretch_entry *after = find(&a->stretches->by_begin, end + 1);
    if (after != NULL) {
        size_t after_end = after->value;
        remove_at(a, find(&a->stretches->by_end, after_end));
        end = after_end;
    }
    add(a, begin, end);
    drain(a);
}

void na_stretch_lock(nalloc_arena *a)
{
    size_t me = na_thread_token();
    /* Only the holder can read its own token here: a stale read of another's is never ours. */
    if (__atomic_load_n(&a->chunk_owner, __ATOMIC_RELAXED) == me) {
        a->chunk_depth++;
        return;
    }
    pthread_mutex_lock(&a->chunk_lock);
    __atomic_store_n(&a->chunk_owner, me, __ATOMIC_RELAXED);
    a->chunk_depth = 1;
}

void na_stretch_unlock(nalloc_arena *a)
{
    if (--a->chunk_depth > 0)
        return;
    __atomic_store_n(&a->chunk_owner, 0, __ATOMIC_RELAXED);
    /* In a forked child, the parent's forking thread locked it: the child's copy of that thread
     * releases it (a default mutex does not check who unlocks it). */
    pthread_mutex_unlock(&a->chunk_lock);
}

void na_stretch_free(nalloc_arena *a, size_t begin, size_t end)
{
    na_stretch_lock(a);
    na_stretch_free_locked(a, begin, end);
    na_stretch_unlock(a);
}

void na_stretch_drain(nalloc_arena *a)
{
    na_stretch_lock(a);
    drain(a);
    na_stretch_unlock(a);
}

bool na_stretch_take_above(nalloc_arena *a, size_t floor, size_t size, size_t align, size_t want,
                           na_range *out)
{
    bool found = false;
    na_stretch_lock(a);
    na_stretch_map *m = a->stretches;
    for (size_t i = 0; m != NULL && i <= m->by_end.mask; i++) {
        stretch_entry *e = &m->by_end.entries[i];
        size_t first, last;
        if (e->key == 0 || e->value < floor ||
            !nalloc_bump_fit(a->bump.base, e->key, e->value, size, align, &first, &last))
            continue;
        size_t begin = e->value, end = e->key;
        remove_at(a, e);
        /* Take `want` bytes (at least this request), and leave the rest as a stretch. */
        size_t take_end = want <= end - begin && begin + want > last ? begin + want : last;
        if (end - take_end >= 4096) {
            na_stretch_free_locked(a, take_end, end);
            end = take_end;
        }
        *out = (na_range){begin, end};
        found = true;
        break;
    }
    na_stretch_unlock(a);
    return found;
}

bool na_stretch_take(nalloc_arena *a, size_t size, size_t align, size_t want, na_range *out)
{
    return na_stretch_take_above(a, 0, size, align, want, out);
}

void na_stretch_boundary(nalloc_arena *a, size_t target)
{
    na_stretch_lock(a);
    na_stretch_map *m = a->stretches;
    if (m != NULL && target == 0) {
        memset(m->by_end.entries, 0, 2 * (m->by_end.mask + 1) * sizeof(stretch_entry));
        m->by_end.used = m->by_begin.used = 0;
        na_atomic_store(&a->stretch_bytes, 0);
        publish_count(a);
    }
    /* Stretches above the new offset go with it; one across it keeps its part below. */
    for (size_t i = 0; m != NULL && target != 0 && i <= m->by_end.mask; i++) {
        stretch_entry *e = &m->by_end.entries[i];
        if (e->key == 0 || e->key <= target)
            continue;
        size_t begin = e->value;
        remove_at(a, e);
        if (begin < target)
            add(a, begin, target);
        i = (size_t)-1; /* entries moved: start over (phase boundaries are rare) */
    }
    na_stretch_unlock(a);
}

void na_stretch_destroy(nalloc_arena *a)
{
    if (a->stretches != NULL)
        munmap(a->stretches, a->stretches->bytes);
    a->stretches = NULL;
    a->stretch_count = 0;
    a->stretch_bytes = 0;
}
