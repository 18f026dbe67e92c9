/* src/backing_host.c - host arenas: one mmap reservation each, guarded on both sides.
 *
 * The reservation is the arena's capacity rounded up to whole pages, between two PROT_NONE
 * guards, so each arena is its own mapping and an access that runs off either end faults instead
 * of reaching a neighbouring arena.
 *
 * The base is aligned to the largest power of two that is not above the mapping's size, between
 * a page and 1 GiB (base_align). Two reasons. Offsets are then the same in every run: the padding
 * in front of a block depends on the address only through base mod align, which is zero for every
 * alignment up to the base's, so the layout is a function of the requests alone (beyond that,
 * only a fixed_address makes it repeat). And arenas of 2 MiB or more start on a huge-page
 * boundary, so the kernel can back them with transparent huge pages from the first byte
 * (MADV_HUGEPAGE when asked, the default for polynomial arenas). The alignment costs address
 * space only: the reservation is over-sized by it and trimmed.
 *
 * Protections are applied in an order that makes them compose: lock before populate (locked
 * pages are then faulted in locked), no-dump and wipe-on-fork on the whole usable range. Each one
 * the kernel refuses is left out of in_force; the arena still works unless NALLOC_FLAG_STRICT
 * asks for all or nothing.
 *
 * With NALLOC_FLAG_PREFAULT_AHEAD the helper thread (prefault.c) faults pages in ahead of the
 * offset with MADV_POPULATE_WRITE, which needs Linux 5.14; here we only ask whether the kernel has
 * it. Huge pages are then advised stretch by stretch as the helper reaches them (see there).
 *
 * A memfd_secret arena is a shared mapping that the kernel itself locks and keeps out of core dumps
 * (and mlock refuses, so locking is reported in force without asking). Huge pages do not apply to
 * it (reported missing), and MADV_WIPEONFORK, which only private memory has, is replaced by
 * MADV_DONTFORK. A forked child would otherwise share the secret pages with the parent, reading and
 * writing them; with it, the child has no mapping there at all, which keeps the promise
 * wipe-on-fork makes (the child never sees the contents), so it is reported in force. When
 * memfd_secret is refused, the arena falls back to ordinary memory and reports the secret backing
 * missing; with NALLOC_FLAG_STRICT creation fails instead, with the first refusal's errno. The
 * kernel refuses it in two ways: memfd_secret itself fails with ENOSYS where the kernel lacks the
 * syscall or booted with secretmem disabled (NALLOC_ERR_UNSUPPORTED under STRICT), and mmap of
 * the secret file fails with EAGAIN where the mapping does not fit in RLIMIT_MEMLOCK, which
 * secret memory counts against (NALLOC_ERR_OS under STRICT, errno EAGAIN).
 */
#include "backing.h"
#include "prim.h"

#include <errno.h>

#define NA_MAX_BASE_ALIGN ((size_t)1 << 30)

/* The base alignment for a mapping of `size` usable bytes (file comment). */
static size_t base_align(size_t size, size_t page)
{
    size_t align = page;
    while (align < NA_MAX_BASE_ALIGN && align <= size / 2)
        align *= 2;
    return align;
}

static na_mapping mapping_of(const na_memory *m)
{
    na_mapping map = {
        .start = m->map_start,
        .length = m->reserved,
        .base = (char *)m->map_start + m->guard_size,
        .size = m->reserved - 2 * m->guard_size,
        .guard = m->guard_size,
        .fd = m->secret_fd,
    };
    return map;
}

/* Try one feature: on success mark it in force; on failure remember the first error and what
 * refused it. */
static void apply(na_memory *m, unsigned flag, int err, int *first_err, const char *what,
                  const char **first_what)
{
    if (err == 0) {
        m->in_force |= flag;
    } else if (*first_err == 0) {
        *first_err = err;
        *first_what = what;
    }
}

static nalloc_status host_create(na_memory *m)
{
    const nalloc_arena_config *c = m->config;
    size_t page = na_prim_page_size();
    size_t size, guard;
    if (!na_round_up(c->capacity, page, &size)) {
        na_cause("capacity %zu does not round up to whole pages", c->capacity);
        return NALLOC_ERR_INVALID;
    }
    if (!na_round_up(c->guard_size ? c->guard_size : page, page, &guard)) {
        na_cause("guard_size %zu does not round up to whole pages", c->guard_size);
        return NALLOC_ERR_INVALID;
    }
    uintptr_t fixed = (uintptr_t)c->fixed_address;
    if (fixed != 0 && fixed % page != 0) {
        na_cause("fixed_address is not page-aligned");
        return NALLOC_ERR_INVALID;
    }
    /* The leading guard must start at or above the lowest address the kernel maps for anyone
     * (vm.mmap_min_addr; never page 0): below it, root may be allowed what others are not. */
    size_t lowest = na_prim_min_address();
    if (fixed != 0 && (fixed < guard || fixed - guard < lowest)) {
        na_cause("fixed_address leaves no room for the leading guard of %zu bytes above "
                 "vm.mmap_min_addr (%zu)",
                 guard, lowest);
        return NALLOC_ERR_INVALID;
    }
    size_t align = base_align(size, page);
    unsigned want = c->flags;
    unsigned prim_flags = (want & NALLOC_FLAG_NORESERVE) ? NA_PRIM_NORESERVE : 0;

    na_mapping map;
    int first_err = 0;
    const char *first_what = NULL;
    int err = ENOSYS;
    if (want & NALLOC_FLAG_SECRET) {
        err = na_prim_map(size, align, guard, c->fixed_address, prim_flags | NA_PRIM_SECRET, &map);
        if (err == 0) {
            m->in_force |= NALLOC_FLAG_SECRET;
        } else if (err == EEXIST) { /* a fixed address clashes: so would ordinary memory */
            na_cause("fixed_address: something is mapped there already");
            errno = err;
            return NALLOC_ERR_OS;
        } else {
            /* refused: ordinary memory below, the secret backing missing */
            first_err = err;
            first_what = "memfd_secret";
        }
    }
    if (err != 0) {
        err = na_prim_map(size, align, guard, c->fixed_address, prim_flags, &map);
        if (err != 0) {
            if (err == EEXIST)
                na_cause("fixed_address: something is mapped there already");
            else
                na_cause("mmap of %zu bytes: %s", size + 2 * guard, na_errno_text(err));
            errno = err;
            return NALLOC_ERR_OS;
        }
    }
    m->map_start = map.start;
    m->reserved = map.length;
    m->guard_size = map.guard;
    m->guard_pages = map.guard > 0;
    m->secret_fd = map.fd;

    bool secret = (m->in_force & NALLOC_FLAG_SECRET) != 0;
    /* Prefault-ahead needs MADV_POPULATE_WRITE, which memfd_secret mappings refuse; a zero-length
     * call asks the kernel whether it knows the advice without faulting anything in. */
    if (want & NALLOC_FLAG_PREFAULT_AHEAD)
        apply(m, NALLOC_FLAG_PREFAULT_AHEAD, secret ? EINVAL : na_prim_prefault(map.base, 0),
              &first_err, "MADV_POPULATE_WRITE", &first_what);
    /* With the helper at work, huge pages are asked for stretch by stretch, just before it faults
     * each one in (prefault.c): a thread that outruns it then faults small pages, which never
     * stall in compaction, and the helper collapses them later. Here a zero-length advice only
     * asks whether the kernel has transparent huge pages at all. */
    m->huge_deferred = (want & NALLOC_FLAG_HUGEPAGES) && !secret &&
                       (m->in_force & NALLOC_FLAG_PREFAULT_AHEAD) &&
                       !(want & NALLOC_FLAG_POPULATE) && c->memory == NALLOC_MEMORY_HOST;
    if (want & NALLOC_FLAG_HUGEPAGES) {
        apply(m, NALLOC_FLAG_HUGEPAGES,
              secret ? EINVAL : na_prim_hugepage(map.base, m->huge_deferred ? 0 : map.size),
              &first_err, "MADV_HUGEPAGE", &first_what);
        if (!(m->in_force & NALLOC_FLAG_HUGEPAGES))
            m->huge_deferred = false;
    }
    if (want & NALLOC_FLAG_LOCK) /* secret memory is locked by the kernel (and mlock refuses it) */
        apply(m, NALLOC_FLAG_LOCK, secret ? 0 : na_prim_lock(map.base, map.size), &first_err,
              "mlock", &first_what);
    if (want & NALLOC_FLAG_NODUMP)
        apply(m, NALLOC_FLAG_NODUMP, na_prim_dontdump(map.base, map.size), &first_err,
              "MADV_DONTDUMP", &first_what);
    if (want & NALLOC_FLAG_WIPEONFORK)
        apply(m, NALLOC_FLAG_WIPEONFORK,
              secret ? na_prim_dontfork(map.base, map.size)
                     : na_prim_wipeonfork(map.base, map.size),
              &first_err, secret ? "MADV_DONTFORK" : "MADV_WIPEONFORK", &first_what);
    else if (secret) /* shared pages: a child must never write the parent's secret */
        (void)na_prim_dontfork(map.base, map.size);
    if (want & NALLOC_FLAG_POPULATE)
        apply(m, NALLOC_FLAG_POPULATE, na_prim_populate(map.base, map.size), &first_err,
              "MADV_POPULATE_WRITE", &first_what);

    unsigned missing = want & NA_FEATURE_FLAGS & ~m->in_force;
    if (missing && (want & NALLOC_FLAG_STRICT)) {
        na_prim_unmap(&map);
        m->map_start = NULL;
        na_cause("NALLOC_FLAG_STRICT, and %s was refused: %s", first_what,
                 na_errno_text(first_err));
        errno = first_err;
        return (first_err == ENOSYS || first_err == EINVAL) ? NALLOC_ERR_UNSUPPORTED : NALLOC_ERR_OS;
    }
    m->base = (uintptr_t)map.base;
    m->capacity = c->capacity;
    return NALLOC_OK;
}

static void host_destroy(na_memory *m)
{
    if (m->map_start == NULL)
        return;
    na_mapping map = mapping_of(m);
    if ((m->in_force & NALLOC_FLAG_LOCK) && !(m->in_force & NALLOC_FLAG_SECRET))
        na_prim_unlock(map.base, map.size);
    na_prim_unmap(&map);
    m->map_start = NULL;
    m->secret_fd = -1;
}

static nalloc_status host_zero(const na_memory *m, size_t offset, size_t length, void *stream)
{
    (void)stream;
    na_prim_zero((char *)m->base + offset, length);
    return NALLOC_OK;
}

const na_backing na_backing_host = {
    .name = "host",
    .create = host_create,
    .destroy = host_destroy,
    .zero = host_zero,
    .fresh_is_zero = true,
    .host_accessible = true,
};
