/* tests/fuzz/fuzz_arena.c - the API fuzz harness: random operation sequences against a model.
 *
 * Input bytes decode into a sequence of calls on up to three arenas: create (random capacity,
 * alignment policy, redzone, flags, guard size), destroy, alloc, aligned and zeroed alloc, mark,
 * rollback (to a live, stale, foreign or null mark), reset, wipe, free_last, resize_last and
 * realloc (on the last block, an older one, wrong sizes, pointers outside the arena), calls on
 * NULL, and creations that must be refused. Sizes and alignments favour the extremes: 0, 1,
 * SIZE_MAX, huge powers of two and their neighbours, exactly the room left and one byte more.
 *
 * A model, written from the contracts in nalloc.h and not from the code, predicts every result:
 * the exact address of each block (or the exact error), the offset, and every statistic (used,
 * high-water, allocations, failures, padding, redzone bytes, resets, rollbacks, wipes, wiped
 * bytes, cached, deferred).
 *
 * Arenas may be created with NALLOC_FLAG_THREAD_CACHE. The harness is one thread, and one thread
 * gets exactly the layout it gets without the cache (src/tcache.c): the model predicts the same
 * blocks, errors and `used`. What the cache adds is the thread's chunk: the arena's offset runs
 * ahead of the last block to the chunk's end, `cached` is the chunk's unused remainder, and the
 * high-water mark and the wipe count the chunk's end. For that the model follows the chunk as
 * tcache.c sizes it (the constants below mirror it); `deferred` stays 0 (one thread leaves no free
 * stretch). After every step the harness checks the live blocks: in bounds, aligned, disjoint with
 * their redzones, still holding the bytes written into them; new blocks read zero where nothing
 * was written since the last wipe, and zeroed blocks read zero everywhere; stale marks are
 * refused. Under AddressSanitizer it also checks the tracking layer (src/track.h): every live
 * block is addressable, and the byte after it, its redzone and the free space are poisoned.
 *
 * Built two ways (tests/fuzz/CMakeLists.txt): with libFuzzer (NALLOC_FUZZ, clang), and with
 * replay.c as a plain program that runs the committed corpus in every build. Any broken check
 * aborts, which libFuzzer reports as a crash with the input that caused it.
 */
#include <nalloc/nalloc.h>

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__SANITIZE_ADDRESS__)
#define HARNESS_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HARNESS_ASAN 1
#endif
#endif
#if defined(HARNESS_ASAN)
#include <sanitizer/asan_interface.h>
#endif

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_arena.c:%d: check failed: %s\n", __LINE__, #cond);              \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#define SLOTS 3        /* arenas alive at once */
#define MAX_BLOCKS 256 /* live blocks modelled per arena; allocation stops there */
#define MAX_MARKS 8    /* marks kept per arena, oldest replaced first */
#define FILL 32        /* bytes written (and checked) at each end of a block */
#define HISTORY 16     /* rollbacks after which the library may refuse old marks (nalloc.h) */

/* Thread chunks, as src/tcache.c sizes them: the first chunk, the largest, and the requests that
 * bypass chunks (more than a quarter of the largest). */
#define CHUNK_FIRST ((size_t)4 << 10)
#define CHUNK_MAX ((size_t)1 << 20)
#define CHUNK_BYPASS (CHUNK_MAX / 4)

/* ---------------------------------------------------------------------------------------------
 * Reading the input
 * ------------------------------------------------------------------------------------------- */

typedef struct reader {
    const uint8_t *p;
    size_t n;
} reader;

static uint8_t u8(reader *r)
{
    if (r->n == 0)
        return 0;
    r->n--;
    return *r->p++;
}

static uint32_t u16(reader *r)
{
    uint32_t lo = u8(r);
    return lo | (uint32_t)u8(r) << 8;
}

static uint32_t u32(reader *r)
{
    uint32_t lo = u16(r);
    return lo | u16(r) << 16;
}

static bool pow2(size_t x)
{
    return x != 0 && (x & (x - 1)) == 0;
}

/* ---------------------------------------------------------------------------------------------
 * The model
 * ------------------------------------------------------------------------------------------- */

typedef struct mblock {
    size_t off;    /* bytes from the base */
    size_t size;   /* bytes the caller asked for */
    size_t extent; /* bytes reserved: size plus redzone */
    size_t align;  /* alignment promised (at least a granule is checked); 0: none */
    uint8_t tag;   /* the value written at both ends */
} mblock;

typedef struct mmark {
    nalloc_mark mark;
    size_t off;
    bool stale; /* released by a rollback, or from before a reset or wipe */
} mmark;

typedef struct model {
    nalloc_arena *a; /* NULL: the slot is empty */
    uintptr_t base;
    size_t cap, default_align, large_threshold, large_align;
    size_t redzone;   /* as the library applies it (nalloc_stats.redzone) */
    size_t granule;   /* extents round to it; blocks start on it (8 under ASan, else 1) */
    unsigned checkers;
    size_t mapped;    /* usable bytes mapped from the base (capacity rounded up to pages) */
    size_t offset, high_water, floor, dirty_hi, written_hi;
    /* NALLOC_FLAG_THREAD_CACHE: the harness thread's chunk. `offset` above is its cursor (the
     * end of the last block, what `used` counts); the arena's own offset is chunk_end while the
     * chunk lives. */
    bool cache;
    size_t chunk_begin, chunk_end; /* [begin, end); end 0: no chunk */
    size_t chunk_next;             /* bytes the next chunk asks for; 0: CHUNK_FIRST */
    bool move_in_chunk;            /* the last predict_move was decided inside the chunk */
    size_t allocations, failures, padding, redzone_bytes, resets, rollbacks, wipes, wiped_bytes;
    size_t rollbacks_since_reset;
    mblock blocks[MAX_BLOCKS];
    size_t nblocks;
    mmark marks[MAX_MARKS];
    size_t nmarks, next_mark;
    uint8_t next_tag;
} model;

static model slots[SLOTS];
static int trace = -1; /* FUZZ_TRACE=1: print each step (to see what a crashing input does) */

static uint8_t *at(const model *m, size_t off)
{
    return (uint8_t *)(m->base + off);
}

/* Bytes reserved for a block of `size`; false when that wraps. */
static bool m_extent(const model *m, size_t size, size_t *out)
{
    if (m->redzone == 0 || size == 0) {
        *out = size;
        return true;
    }
    if (size > SIZE_MAX - m->redzone || size + m->redzone > SIZE_MAX - (m->granule - 1))
        return false;
    size_t x = size + m->redzone;
    *out = (x + m->granule - 1) / m->granule * m->granule;
    return true;
}

static size_t policy_align(const model *m, size_t size)
{
    return size >= m->large_threshold ? m->large_align : m->default_align;
}

/* The arena's offset: the end of the chunk while there is one, else of the last block. */
static size_t raw_offset(const model *m)
{
    return m->chunk_end != 0 ? m->chunk_end : m->offset;
}

static void note_offset(model *m)
{
    size_t raw = raw_offset(m);
    if (raw > m->high_water)
        m->high_water = raw;
    if (raw > m->dirty_hi)
        m->dirty_hi = raw;
}

/* Where a block of `extent` bytes at `align` fits from `from` in [0, limit). */
static bool fit_from(const model *m, size_t from, size_t limit, size_t extent, size_t align,
                     size_t *begin, size_t *last)
{
    if (from > limit)
        return false;
    size_t rem = (size_t)((m->base + from) % align);
    size_t p = rem ? align - rem : 0;
    size_t room = limit - from;
    if (p > room || extent > room - p)
        return false;
    *begin = from + p;
    *last = *begin + extent;
    return true;
}

/* The chunk's remainder goes back to the arena's offset (the harness is alone: nothing lies
 * above it), unless a mark pins it. */
static bool give_back(model *m)
{
    if (m->chunk_end == 0)
        return true;
    if (m->offset < m->floor)
        return false;
    note_offset(m);
    m->chunk_end = 0;
    return true;
}

static size_t grown_chunk(const model *m, size_t from, size_t last, size_t want)
{
    return want <= m->cap - from && from + want > last ? from + want : last;
}

/* With the cache: where the thread's chunk puts a block of `extent` bytes at `align` (a power of
 * two, at least a granule), and what becomes of the chunk (tcache.c). Called once per request
 * that reaches the allocation path; a request too big for a chunk gives the remainder back even
 * when it fails, any other failure leaves the chunk as it was. */
static nalloc_status chunk_fit(model *m, size_t extent, size_t align, size_t *begin)
{
    size_t last;
    if (m->chunk_end != 0 && fit_from(m, m->offset, m->chunk_end, extent, align, begin, &last))
        return NALLOC_OK; /* inside the chunk */
    size_t want = m->chunk_next < CHUNK_FIRST ? CHUNK_FIRST : m->chunk_next;
    size_t next = want < CHUNK_MAX ? want * 2 : CHUNK_MAX;
    if (extent > CHUNK_BYPASS) { /* the offset directly, after the remainder went back */
        CHECK(give_back(m)); /* alone in the arena, no mark lies above our cursor */
        return fit_from(m, m->offset, m->cap, extent, align, begin, &last) ? NALLOC_OK
                                                                           : NALLOC_ERR_NOMEM;
    }
    if (m->chunk_end != 0 && fit_from(m, m->offset, m->cap, extent, align, begin, &last)) {
        m->chunk_end = grown_chunk(m, m->chunk_end, last, want); /* grown in place */
        m->chunk_next = next;
        return NALLOC_OK;
    }
    if (m->chunk_end != 0)
        return NALLOC_ERR_NOMEM; /* no room even at the cursor: the request fails, the chunk stays */
    if (!fit_from(m, m->offset, m->cap, extent, align, begin, &last))
        return NALLOC_ERR_NOMEM;
    m->chunk_begin = m->offset;
    m->chunk_end = grown_chunk(m, m->offset, last, want);
    m->chunk_next = next;
    return NALLOC_OK;
}

/* Where a block of `size` at `align` (a power of two) would go. With the cache this is the chunk's
 * answer, and the chunk follows it: call it once per request the library serves. */
static nalloc_status m_fit(model *m, size_t size, size_t align, size_t *begin, size_t *pad,
                           size_t *extent)
{
    if (size == 0)
        return NALLOC_ERR_INVALID;
    if (!m_extent(m, size, extent))
        return NALLOC_ERR_NOMEM;
    if (align < m->granule)
        align = m->granule;
    if (m->cache) {
        nalloc_status st = chunk_fit(m, *extent, align, begin);
        *pad = st == NALLOC_OK ? *begin - m->offset : 0;
        return st;
    }
    size_t rem = (size_t)((m->base + m->offset) % align);
    size_t p = rem ? align - rem : 0;
    size_t room = m->cap - m->offset;
    if (p > room || *extent > room - p)
        return NALLOC_ERR_NOMEM;
    *pad = p;
    *begin = m->offset + p;
    return NALLOC_OK;
}

/* The FILL bytes at each end of a block of `size` bytes: [0, head) and [tail, size). */
static void ends(size_t size, size_t *head, size_t *tail)
{
    *head = size < FILL ? size : FILL;
    *tail = size - *head;
}

static void fill(model *m, mblock *b)
{
    size_t head, tail;
    ends(b->size, &head, &tail);
    memset(at(m, b->off), b->tag, head);
    memset(at(m, b->off + tail), b->tag, head);
    if (b->off + b->size > m->written_hi)
        m->written_hi = b->off + b->size;
}

static bool intact(const model *m, const mblock *b)
{
    size_t head, tail;
    ends(b->size, &head, &tail);
    for (size_t i = 0; i < head; i++)
        if (at(m, b->off)[i] != b->tag || at(m, b->off + tail)[i] != b->tag)
            return false;
    return true;
}

/* A new block must read zero where nothing was written since the last wipe (everywhere when
 * zeroed), as far as the harness looks at it. */
static void check_fresh(const model *m, size_t off, size_t size, bool zeroed)
{
    size_t head, tail;
    ends(size, &head, &tail);
    size_t starts[2] = {off, off + tail};
    for (int e = 0; e < 2; e++)
        for (size_t i = 0; i < head; i++) {
            size_t o = starts[e] + i;
            if (zeroed || (o >= m->written_hi && !(m->checkers & NALLOC_CHECKER_VALGRIND)))
                CHECK(*at(m, o) == 0); /* (Memcheck holds unwritten bytes undefined: not read) */
        }
}

static mblock *push_block(model *m, size_t off, size_t size, size_t extent, size_t align)
{
    CHECK(m->nblocks < MAX_BLOCKS);
    mblock *b = &m->blocks[m->nblocks++];
    *b = (mblock){off, size, extent, align, (uint8_t)(1 + m->next_tag++ % 255)};
    fill(m, b);
    return b;
}

static void check_stats(const model *m)
{
    nalloc_stats s;
    CHECK(nalloc_arena_stats(m->a, &s) == NALLOC_OK);
    CHECK(s.capacity == m->cap);
    CHECK(s.base == m->base);
    CHECK(s.used == m->offset);
    if (trace)
        fprintf(stderr, "  used %zu cached %zu high-water %zu; model: chunk [%zu, %zu), cursor %zu\n",
                s.used, s.cached, s.high_water, m->chunk_begin, m->chunk_end, m->offset);
    CHECK(s.cached == (m->chunk_end != 0 ? m->chunk_end - m->offset : 0));
    CHECK(s.deferred == 0);
    CHECK(s.cached <= CHUNK_MAX);
    CHECK(s.high_water == m->high_water);
    CHECK(s.allocations == m->allocations);
    CHECK(s.failures == m->failures);
    CHECK(s.padding == m->padding);
    CHECK(s.redzone_bytes == m->redzone_bytes);
    CHECK(s.resets == m->resets);
    CHECK(s.rollbacks == m->rollbacks);
    CHECK(s.wipes == m->wipes);
    CHECK(s.wiped_bytes == m->wiped_bytes);
    CHECK(s.redzone == m->redzone);
    CHECK(s.checkers == m->checkers);
}

#if defined(HARNESS_ASAN)
static void check_poison(const model *m)
{
    if (!(m->checkers & NALLOC_CHECKER_ASAN))
        return;
    for (size_t i = 0; i < m->nblocks; i++) {
        const mblock *b = &m->blocks[i];
        size_t head, tail;
        ends(b->size, &head, &tail);
        CHECK(__asan_region_is_poisoned(at(m, b->off), head) == NULL);
        CHECK(__asan_region_is_poisoned(at(m, b->off + tail), head) == NULL);
        size_t end = b->off + b->size;
        size_t next = i + 1 < m->nblocks ? m->blocks[i + 1].off : m->offset;
        if (end < next || (i + 1 == m->nblocks && end < m->cap))
            CHECK(__asan_address_is_poisoned(at(m, end)));
        if (b->extent > b->size)
            CHECK(__asan_address_is_poisoned(at(m, b->off + b->extent - 1)));
    }
    if (m->offset < m->cap)
        CHECK(__asan_address_is_poisoned(at(m, m->offset)));
    if (m->cap < m->mapped)
        CHECK(__asan_address_is_poisoned(at(m, m->cap)));
}
#endif

/* Everything the model knows about one arena, checked against it. `deep`: every block's
 * contents, not just the most recent ones. */
static void check_arena(const model *m, bool deep)
{
    if (m->a == NULL)
        return;
    check_stats(m);
    size_t prev_end = 0;
    for (size_t i = 0; i < m->nblocks; i++) {
        const mblock *b = &m->blocks[i];
        size_t align = b->align == 0 ? 1 : b->align > m->granule ? b->align : m->granule;
        CHECK(b->off >= prev_end);                     /* disjoint, redzones included */
        CHECK(b->extent <= m->cap && b->off <= m->cap - b->extent); /* in bounds */
        CHECK((m->base + b->off) % align == 0);        /* aligned as asked */
        prev_end = b->off + b->extent;
        if (deep || i + 8 >= m->nblocks)
            CHECK(intact(m, b));
    }
    CHECK(prev_end <= m->offset);
    CHECK(m->floor <= m->offset);
    CHECK(m->chunk_end == 0 || (m->cache && m->chunk_begin <= m->offset && m->offset <= m->chunk_end));
#if defined(HARNESS_ASAN)
    check_poison(m);
#endif
}

/* ---------------------------------------------------------------------------------------------
 * Operations
 * ------------------------------------------------------------------------------------------- */

static size_t take_size(reader *r, const model *m)
{
    size_t room = m && m->a ? m->cap - m->offset : 0;
    uint8_t sel = u8(r), k = u8(r) % 64;
    switch (sel % 12) {
    case 0: return 0;
    case 1: return 1;
    case 2: return SIZE_MAX;
    case 3: return (size_t)1 << k;
    case 4: return ((size_t)1 << k) + 1;
    case 5: return ((size_t)1 << k) - 1;
    case 6: return k + 2;
    case 7: return u16(r);
    case 8: return room;
    case 9: return room + 1;
    case 10: return room > k ? room - k : 1;
    default: return u32(r) & 0xfffff;
    }
}

static size_t take_align(reader *r)
{
    uint8_t sel = u8(r), k = u8(r);
    switch (sel % 8) {
    case 0: return 0;
    case 1: return (size_t)1 << (k % 64);
    case 2: return (size_t)1 << (k % 13);
    case 3: return SIZE_MAX;
    case 4: return 3;
    case 5: return k;
    case 6: return ((size_t)1 << (k % 64)) + 1;
    default: return 64;
    }
}

/* The result of an allocation call that the model predicted as `want` (with begin/pad/extent). */
static void after_alloc(model *m, void *p, nalloc_status want, size_t size, size_t align,
                        size_t begin, size_t pad, size_t extent, bool zeroed)
{
    if (want != NALLOC_OK) {
        CHECK(p == NULL);
        CHECK(nalloc_last_error() == want);
        m->failures++;
        return;
    }
    CHECK(p == at(m, begin));
    m->allocations++;
    m->padding += pad;
    m->redzone_bytes += extent - size;
    m->offset = begin + extent;
    note_offset(m);
    check_fresh(m, begin, size, zeroed);
    push_block(m, begin, size, extent, align);
}

static void op_alloc(model *m, reader *r, int how)
{
    size_t size = take_size(r, m), align = 0, count = 1, begin = 0, pad = 0, extent = 0;
    if (how == 1)
        align = take_align(r);
    if (how == 2) {
        count = u8(r) % 4 == 0 ? take_size(r, m) : u8(r);
        align = take_align(r);
    }
    if (m->nblocks == MAX_BLOCKS)
        return;
    nalloc_status want;
    size_t bytes = size, used_align = align;
    void *p;
    if (how == 0) {
        used_align = policy_align(m, size);
        want = m_fit(m, size, used_align, &begin, &pad, &extent);
        p = nalloc_alloc(m->a, size);
    } else if (how == 1) {
        want = pow2(align) ? m_fit(m, size, align, &begin, &pad, &extent) : NALLOC_ERR_INVALID;
        p = nalloc_alloc_aligned(m->a, size, align);
    } else {
        bool overflow = size != 0 && count > SIZE_MAX / size;
        bytes = overflow ? 0 : count * size;
        used_align = align ? align : policy_align(m, bytes);
        if (overflow || (align != 0 && !pow2(align)))
            want = NALLOC_ERR_INVALID;
        else
            want = m_fit(m, bytes, used_align, &begin, &pad, &extent);
        p = nalloc_alloc_zeroed(m->a, count, size, align);
    }
    after_alloc(m, p, want, bytes, used_align, begin, pad, extent, how == 2);
}

static void op_mark(model *m)
{
    nalloc_mark mk = nalloc_mark_get(m->a);
    CHECK(give_back(m)); /* the thread's chunk goes: what it allocates next lies above the mark */
    CHECK(mk.offset == m->offset); /* a private field */
    mmark *slot = m->nmarks < MAX_MARKS ? &m->marks[m->nmarks++] : &m->marks[m->next_mark++ % MAX_MARKS];
    *slot = (mmark){mk, m->offset, false};
    if (m->offset > m->floor)
        m->floor = m->offset;
}

static void forget_from(model *m, size_t target)
{
    while (m->nblocks > 0 && m->blocks[m->nblocks - 1].off >= target)
        m->nblocks--;
    for (size_t i = 0; i < m->nmarks; i++)
        if (m->marks[i].off > target)
            m->marks[i].stale = true;
}

static void op_rollback(model *m, reader *r, size_t self)
{
    uint8_t choice = u8(r);
    nalloc_mark zero = {0, 0, 0, 0};
    if (choice % (MAX_MARKS + 2) < m->nmarks) {
        mmark *mk = &m->marks[choice % (MAX_MARKS + 2)];
        nalloc_status st = nalloc_rollback(m->a, mk->mark);
        if (mk->stale) {
            CHECK(st == NALLOC_ERR_STATE); /* never obeyed */
            CHECK(nalloc_last_error() == NALLOC_ERR_STATE);
            return;
        }
        if (m->rollbacks_since_reset < HISTORY)
            CHECK(st == NALLOC_OK);
        if (st != NALLOC_OK) { /* an old mark refused conservatively (nalloc.h allows it) */
            CHECK(st == NALLOC_ERR_STATE);
            return;
        }
        note_offset(m);
        m->chunk_end = 0; /* retired */
        m->offset = mk->off;
        m->floor = mk->off;
        forget_from(m, mk->off);
        m->rollbacks++;
        m->rollbacks_since_reset++;
        return;
    }
    const model *other = &slots[(self + 1 + choice % 2) % SLOTS];
    nalloc_mark foreign = other->a && other->nmarks ? other->marks[0].mark : zero;
    CHECK(nalloc_rollback(m->a, choice & 1 ? foreign : zero) == NALLOC_ERR_STATE);
}

static void release_all(model *m)
{
    m->chunk_end = 0; /* retired */
    m->offset = 0;
    m->floor = 0;
    m->nblocks = 0;
    for (size_t i = 0; i < m->nmarks; i++)
        m->marks[i].stale = true;
    m->rollbacks_since_reset = 0;
}

static void op_reset(model *m)
{
    CHECK(nalloc_reset(m->a) == NALLOC_OK); /* the harness splits no lanes */
    release_all(m);
    m->resets++;
}

static void op_wipe(model *m)
{
    note_offset(m);
    CHECK(nalloc_wipe(m->a) == NALLOC_OK);
    m->wiped_bytes += m->dirty_hi;
    m->wipes++;
    release_all(m);
    m->dirty_hi = 0;
    m->written_hi = 0;
}

/* What nalloc_free_last / resize_last do with (p, old_size) -> new_size (nalloc.h contract). With
 * the cache, the chunk may go back on the way (call it once per call the library gets). */
static nalloc_status predict_move(model *m, uintptr_t p, size_t old_size, size_t new_size)
{
    if (p == 0 || p < m->base || p - m->base > m->cap)
        return NALLOC_ERR_INVALID;
    size_t begin = p - m->base, old_ext, new_ext;
    if (!m_extent(m, old_size, &old_ext) || old_ext > m->cap - begin)
        return NALLOC_ERR_INVALID;
    if (!m_extent(m, new_size, &new_ext) || new_ext > m->cap - begin)
        return NALLOC_ERR_NOMEM;
    m->move_in_chunk = false;
    size_t old_end = begin + old_ext;
    if (m->chunk_end != 0) { /* the thread's newest block is the one ending at its cursor */
        if (old_end != m->offset)
            return NALLOC_ERR_STATE; /* not ours, or a wrong size (reaching into the remainder) */
        if (begin >= m->chunk_begin) {
            m->move_in_chunk = true; /* marks do not pin it: the chunk began after the last */
            return NALLOC_OK;
        }
        CHECK(give_back(m)); /* just below the thread's empty chunk: the chunk goes back first */
    }
    if (begin < m->floor || old_end != m->offset)
        return NALLOC_ERR_STATE;
    return NALLOC_OK;
}

/* The model's side of a successful move of the block at p to new_size bytes. */
static void apply_move(model *m, uintptr_t p, size_t old_size, size_t new_size)
{
    size_t begin = p - m->base, ext;
    CHECK(m_extent(m, new_size, &ext));
    mblock *top = m->nblocks ? &m->blocks[m->nblocks - 1] : NULL;
    m->offset = begin + ext;
    if (m->move_in_chunk) {
        size_t old_ext;
        CHECK(m_extent(m, old_size, &old_ext));
        if (m->offset > m->chunk_end)
            m->chunk_end = m->offset; /* the chunk grew with the block */
        else if (ext < old_ext && m->chunk_end - m->offset > CHUNK_MAX && m->offset >= m->floor) {
            note_offset(m);
            m->chunk_end = m->offset; /* a shrink left more than a chunk: that goes back */
        }
    }
    note_offset(m);
    if (top != NULL && top->off == begin) {
        if (new_size == 0) {
            m->nblocks--;
        } else {
            top->size = new_size;
            top->extent = ext;
            fill(m, top);
        }
    } else {
        CHECK(old_size == 0); /* the only other pointer the harness makes that can succeed */
        if (new_size > 0)
            push_block(m, begin, new_size, ext, 0); /* wherever the offset was: no alignment */
    }
}

/* A pointer and size for free_last/resize_last/realloc, right or wrong on purpose. */
static uintptr_t take_block(model *m, reader *r, size_t *size, bool only_real)
{
    uint8_t v = u8(r) % (only_real ? 3 : 8);
    mblock *top = m->nblocks ? &m->blocks[m->nblocks - 1] : NULL;
    mblock *older = m->nblocks > 1 ? &m->blocks[m->nblocks - 2] : NULL;
    if (only_real) {
        if (v == 1 && top) {
            *size = top->size;
            return m->base + top->off;
        }
        if (v == 2 && older) {
            *size = older->size;
            return m->base + older->off;
        }
        *size = 0;
        return 0;
    }
    switch (v) {
    case 0: case 1: case 2:
        if (top) {
            *size = top->size + (v == 1) - (v == 2);
            return m->base + top->off;
        }
        break;
    case 3:
        if (older) {
            *size = older->size;
            return m->base + older->off;
        }
        break;
    case 4:
        *size = 1;
        return 0;
    case 5:
        *size = 1;
        return m->base - 1;
    case 6:
        *size = 1;
        return m->base + m->cap + 1;
    default:
        break;
    }
    *size = 0;
    return m->base + m->offset;
}

static void op_free_last(model *m, reader *r)
{
    size_t size;
    uintptr_t p = take_block(m, r, &size, false);
    nalloc_status want = predict_move(m, p, size, 0);
    nalloc_status st = nalloc_free_last(m->a, (void *)p, size);
    CHECK(st == want);
    if (st == NALLOC_OK)
        apply_move(m, p, size, 0);
}

static void op_resize_last(model *m, reader *r)
{
    size_t size;
    uintptr_t p = take_block(m, r, &size, false);
    size_t new_size = take_size(r, m);
    if (m->nblocks == MAX_BLOCKS && size == 0)
        return;
    nalloc_status want = new_size == 0 ? NALLOC_ERR_INVALID : predict_move(m, p, size, new_size);
    if (trace)
        fprintf(stderr, "resize_last(offset %zd, %zu -> %zu), redzone %zu\n",
                (ptrdiff_t)(p - m->base), size, new_size, m->redzone);
    nalloc_status st = nalloc_resize_last(m->a, (void *)p, size, new_size);
    CHECK(st == want);
    if (st != NALLOC_OK) /* a refused resize is a failed request, whatever the reason */
        m->failures++;
    if (st == NALLOC_OK)
        apply_move(m, p, size, new_size);
}

static void op_realloc(model *m, reader *r)
{
    size_t old_size;
    uintptr_t p = take_block(m, r, &old_size, true);
    size_t new_size = take_size(r, m), align = take_align(r);
    if (m->nblocks == MAX_BLOCKS)
        return;
    uint8_t old_tag = 0;
    for (size_t i = 0; i < m->nblocks; i++)
        if (p == m->base + m->blocks[i].off)
            old_tag = m->blocks[i].tag;
    void *q = nalloc_realloc(m->a, (void *)p, old_size, new_size, align);
    if (new_size == 0 || (align != 0 && !pow2(align))) {
        after_alloc(m, q, NALLOC_ERR_INVALID, 0, 1, 0, 0, 0, false);
        return;
    }
    if (p != 0 && (align == 0 || p % align == 0) &&
        predict_move(m, p, old_size, new_size) == NALLOC_OK) {
        CHECK(q == (void *)p);
        size_t kept = old_size < new_size ? old_size : new_size;
        for (size_t i = 0; i < kept && i < FILL; i++)
            CHECK(((uint8_t *)q)[i] == old_tag);
        apply_move(m, p, old_size, new_size);
        return;
    }
    size_t begin = 0, pad = 0, extent = 0;
    nalloc_status want =
        m_fit(m, new_size, align ? align : policy_align(m, new_size), &begin, &pad, &extent);
    if (want != NALLOC_OK) {
        after_alloc(m, q, want, new_size, 1, 0, 0, 0, false);
        return;
    }
    CHECK(q == at(m, begin));
    size_t kept = p == 0 ? 0 : old_size < new_size ? old_size : new_size;
    for (size_t i = 0; i < kept && i < FILL; i++)
        CHECK(((uint8_t *)q)[i] == old_tag); /* the copy */
    if (begin + kept > m->written_hi)
        m->written_hi = begin + kept;
    m->allocations++;
    m->padding += pad;
    m->redzone_bytes += extent - new_size;
    m->offset = begin + extent;
    note_offset(m);
    push_block(m, begin, new_size, extent, align ? align : policy_align(m, new_size));
}

static void op_destroy(model *m)
{
    nalloc_arena *a = m->a;
    CHECK(nalloc_arena_destroy(a) == NALLOC_OK);
    memset(m, 0, sizeof *m);
    /* The dead handle is refused everywhere (its slot is not reused before the next create). */
    CHECK(nalloc_alloc(a, 1) == NULL && nalloc_last_error() == NALLOC_ERR_STATE);
    CHECK(nalloc_alloc_aligned(a, 1, 1) == NULL && nalloc_last_error() == NALLOC_ERR_STATE);
    CHECK(nalloc_alloc_zeroed(a, 1, 1, 0) == NULL && nalloc_last_error() == NALLOC_ERR_STATE);
    CHECK(nalloc_realloc(a, NULL, 0, 1, 0) == NULL && nalloc_last_error() == NALLOC_ERR_STATE);
    nalloc_mark mk = nalloc_mark_get(a);
    CHECK(mk.arena_uid == 0);
    CHECK(nalloc_rollback(a, mk) == NALLOC_ERR_STATE);
    CHECK(nalloc_reset(a) == NALLOC_ERR_STATE);
    CHECK(nalloc_wipe(a) == NALLOC_ERR_STATE);
    nalloc_stats s;
    CHECK(nalloc_arena_stats(a, &s) == NALLOC_ERR_STATE);
    CHECK(nalloc_free_last(a, (void *)1, 1) == NALLOC_ERR_STATE);
    CHECK(nalloc_arena_destroy(a) == NALLOC_ERR_STATE);
}

static void op_create(model *m, reader *r)
{
    static const size_t redzones[] = {0, 0, 0, 1, 8, 16, 100, SIZE_MAX - 2};
    static const size_t guards[] = {0, 4096, 3 * 4096 + 1};
    nalloc_kind kind = (nalloc_kind)(u8(r) % NALLOC_KIND_COUNT);
    size_t cap;
    switch (u8(r) % 8) {
    case 0: cap = 1 + u16(r); break;
    case 1: cap = 4096; break;
    case 2: cap = 4097 + u8(r); break;
    case 3: cap = 65536; break;
    case 4: cap = (size_t)1 << 20; break;
    case 5: cap = ((size_t)4 << 20) + 3; break; /* past the first poisoned step (track.h) */
    case 6: cap = (size_t)(1 + u8(r)) * 4096; break;
    default: cap = (size_t)64 << 20; break;
    }
    nalloc_arena_config c;
    nalloc_arena_config_init(&c, kind, NALLOC_MEMORY_HOST, cap);
    c.default_align = (size_t)1 << (u8(r) % 13);
    size_t thresholds[] = {0, 1, 4096, (size_t)1 << 20, SIZE_MAX, u16(r)};
    c.large_threshold = thresholds[u8(r) % 6];
    c.large_align = (size_t)1 << (u8(r) % 16);
    c.redzone = redzones[u8(r) % 8];
    c.guard_size = guards[u8(r) % 3];
    uint8_t f = u8(r);
    c.flags = 0;
    c.flags |= (f & 1) ? NALLOC_FLAG_HUGEPAGES : 0;
    c.flags |= (f & 2) ? NALLOC_FLAG_NODUMP : 0;
    c.flags |= (f & 4) ? NALLOC_FLAG_WIPEONFORK : 0;
    c.flags |= (f & 8) ? NALLOC_FLAG_WIPE_ON_DESTROY : 0;
    c.flags |= (f & 16) ? NALLOC_FLAG_NORESERVE : 0;
    c.flags |= (f & 32) && cap <= ((size_t)1 << 20) ? NALLOC_FLAG_POPULATE : 0;
    c.flags |= (f & 64) ? NALLOC_FLAG_WIPE_AT_EXIT : 0;
    c.flags |= (f & 128) ? NALLOC_FLAG_THREAD_CACHE : 0;

    if (m->a != NULL)
        op_destroy(m);
    nalloc_arena *a = NULL;
    CHECK(nalloc_arena_create(&c, &a) == NALLOC_OK && a != NULL);
    nalloc_stats s;
    CHECK(nalloc_arena_stats(a, &s) == NALLOC_OK);
    memset(m, 0, sizeof *m);
    m->a = a;
    m->base = s.base;
    m->cap = cap;
    m->default_align = c.default_align;
    m->large_threshold = c.large_threshold;
    m->large_align = c.large_align;
    m->checkers = s.checkers;
    m->redzone = s.redzone;
    CHECK(s.redzone == (s.checkers ? c.redzone : 0)); /* honoured exactly when watched */
    m->granule = (s.checkers & NALLOC_CHECKER_ASAN) ? 8 : 1;
    m->mapped = s.reserved - 2 * s.guard_size;
    m->cache = (c.flags & NALLOC_FLAG_THREAD_CACHE) != 0;
    CHECK(m->mapped >= cap);
}

/* Creations and calls that must be refused, with nothing left behind. */
static void op_refused(reader *r)
{
    nalloc_arena_config c;
    nalloc_arena *a = (nalloc_arena *)1;
    switch (u8(r) % 10) {
    case 0:
        nalloc_arena_config_init(&c, NALLOC_KIND_SCRATCH, NALLOC_MEMORY_HOST, 0);
        break;
    case 1:
        nalloc_arena_config_init(&c, NALLOC_KIND_SCRATCH, NALLOC_MEMORY_HOST, SIZE_MAX);
        break;
    case 2:
        nalloc_arena_config_init(&c, NALLOC_KIND_SCRATCH, NALLOC_MEMORY_HOST, 4096);
        c.default_align = 3 + (size_t)u8(r) * 2;
        break;
    case 3:
        nalloc_arena_config_init(&c, NALLOC_KIND_SCRATCH, NALLOC_MEMORY_HOST, 4096);
        c.flags |= 1u << 30;
        break;
    case 4:
        nalloc_arena_config_init(&c, NALLOC_KIND_COUNT, NALLOC_MEMORY_HOST, 4096);
        break;
    case 5: { /* PINNED or DEVICE: refused without CUDA or a device, or created; never a crash */
        nalloc_arena_config_init(&c, NALLOC_KIND_SCRATCH,
                                 u8(r) & 1 ? NALLOC_MEMORY_PINNED : NALLOC_MEMORY_DEVICE, 4096);
        if (nalloc_arena_create(&c, &a) == NALLOC_OK)
            CHECK(nalloc_arena_destroy(a) == NALLOC_OK);
        return;
    }
    case 6:
        CHECK(nalloc_arena_create(NULL, &a) == NALLOC_ERR_INVALID);
        return;
    case 7:
        nalloc_arena_config_init(&c, NALLOC_KIND_SCRATCH, NALLOC_MEMORY_HOST, 4096);
        CHECK(nalloc_arena_create(&c, NULL) == NALLOC_ERR_INVALID);
        return;
    case 8: {
        nalloc_mark zero = {0, 0, 0, 0};
        nalloc_stats s;
        CHECK(nalloc_alloc(NULL, 1) == NULL && nalloc_last_error() == NALLOC_ERR_INVALID);
        CHECK(nalloc_alloc_aligned(NULL, 1, 1) == NULL);
        CHECK(nalloc_alloc_zeroed(NULL, 1, 1, 0) == NULL);
        CHECK(nalloc_realloc(NULL, NULL, 0, 1, 0) == NULL);
        CHECK(nalloc_mark_get(NULL).arena_uid == 0);
        CHECK(nalloc_rollback(NULL, zero) == NALLOC_ERR_INVALID);
        CHECK(nalloc_reset(NULL) == NALLOC_ERR_INVALID);
        CHECK(nalloc_wipe(NULL) == NALLOC_ERR_INVALID);
        CHECK(nalloc_arena_stats(NULL, &s) == NALLOC_ERR_INVALID);
        CHECK(nalloc_free_last(NULL, (void *)1, 1) == NALLOC_ERR_INVALID);
        CHECK(nalloc_resize_last(NULL, (void *)1, 1, 2) == NALLOC_ERR_INVALID);
        CHECK(nalloc_arena_destroy(NULL) == NALLOC_ERR_INVALID);
        return;
    }
    default:
        for (int i = 0; i < SLOTS; i++)
            if (slots[i].a != NULL)
                CHECK(nalloc_arena_stats(slots[i].a, NULL) == NALLOC_ERR_INVALID);
        return;
    }
    CHECK(nalloc_arena_create(&c, &a) != NALLOC_OK);
    CHECK(a == NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    reader r = {data, size};
    if (trace < 0)
        trace = getenv("FUZZ_TRACE") != NULL;
    memset(slots, 0, sizeof slots);
    for (unsigned steps = 0; r.n > 0 && steps < 2000; steps++) {
        uint8_t op = u8(&r);
        size_t self = u8(&r) % SLOTS;
        model *m = &slots[self];
        op %= 14;
        if (m->a == NULL && op != 0 && op != 12)
            continue; /* nothing to act on */
        switch (op) {
        case 0: op_create(m, &r); break;
        case 1: op_destroy(m); break;
        case 2: op_alloc(m, &r, 0); break;
        case 3: op_alloc(m, &r, 1); break;
        case 4: op_alloc(m, &r, 2); break;
        case 5: op_mark(m); break;
        case 6: op_rollback(m, &r, self); break;
        case 7: op_reset(m); break;
        case 8: op_wipe(m); break;
        case 9: op_free_last(m, &r); break;
        case 10: op_resize_last(m, &r); break;
        case 11: op_realloc(m, &r); break;
        case 12: op_refused(&r); break;
        default: check_arena(m, true); break;
        }
        if (trace)
            fprintf(stderr, "step %u: op %u on arena %zu: offset %zu, %zu blocks\n", steps, op,
                    self, m->offset, m->nblocks);
        check_arena(m, false);
    }
    for (int i = 0; i < SLOTS; i++)
        if (slots[i].a != NULL) {
            check_arena(&slots[i], true);
            op_destroy(&slots[i]);
        }
    return 0;
}
