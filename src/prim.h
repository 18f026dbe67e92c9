/* src/prim.h - the platform layer: everything nalloc asks of the operating system.
 *
 * Arena code never calls mmap, madvise or mlock itself; it calls these, so the whole OS surface
 * is one file (prim_linux.c) with one contract:
 *
 *  - Every int-returning function returns 0 on success or an errno value on failure, and leaves
 *    errno itself unspecified. A failed call changes nothing it was asked to change.
 *  - Addresses and sizes passed in are multiples of na_prim_page_size() unless stated otherwise.
 *  - Features the running kernel lacks return ENOSYS or EINVAL (what the kernel said), so the
 *    caller can report them as missing rather than failing.
 */
#ifndef NALLOC_PRIM_H
#define NALLOC_PRIM_H

#include <stdbool.h>
#include <stddef.h>

/* The base page size in bytes (a power of two). */
size_t na_prim_page_size(void);

enum {
    NA_PRIM_NORESERVE = 1u << 0, /* no commit charge: address space only until touched */
    NA_PRIM_SECRET = 1u << 1     /* back the usable part with memfd_secret (shared mapping) */
};

/* One reservation: [start, start + length) = guard | usable | guard. */
typedef struct na_mapping {
    void *start;   /* first byte of the reservation, leading guard included */
    size_t length; /* bytes of the whole reservation */
    void *base;    /* first usable byte: start + guard */
    size_t size;   /* usable bytes */
    size_t guard;  /* PROT_NONE bytes on each side */
    int fd;        /* the memfd_secret descriptor, or -1 */
} na_mapping;

/* Reserve `size` usable bytes, read-write, between two PROT_NONE guards of `guard` bytes (may be
 * 0). The usable base is aligned to `align` (a power of two, at least the page size), or is
 * exactly `fixed` when that is not NULL (MAP_FIXED_NOREPLACE: EEXIST if anything is mapped in the
 * way; fixed must be page-aligned, EINVAL otherwise; `align` is then ignored). */
int na_prim_map(size_t size, size_t align, size_t guard, void *fixed, unsigned flags,
                na_mapping *out);

/* Release the whole reservation, guards included, and close the descriptor if any. */
int na_prim_unmap(na_mapping *m);

/* Fault every page of [addr, addr + size) in writable (MADV_POPULATE_WRITE; on kernels before
 * 5.14, a write to each page, which must then be fresh or otherwise safe to rewrite with zero). */
int na_prim_populate(void *addr, size_t size);

/* MADV_HUGEPAGE, MADV_DONTDUMP, MADV_WIPEONFORK, MADV_DONTFORK on [addr, addr + size). */
int na_prim_hugepage(void *addr, size_t size);
int na_prim_dontdump(void *addr, size_t size);
int na_prim_wipeonfork(void *addr, size_t size);
int na_prim_dontfork(void *addr, size_t size);

/* Lock [addr, addr + size) in memory as it is faulted in (mlock2 MLOCK_ONFAULT; plain mlock where
 * the kernel lacks it). ENOMEM or EPERM when RLIMIT_MEMLOCK forbids it. */
int na_prim_lock(void *addr, size_t size);
int na_prim_unlock(void *addr, size_t size);

/* Zero [addr, addr + size) with stores the compiler may not elide (explicit_bzero). Any address
 * and size. */
void na_prim_zero(void *addr, size_t size);

/* An asymmetric fence (membarrier(2), private expedited): once it returns, every other running
 * thread of the process has executed a full memory barrier, so a thread that only orders its own
 * store and load with a compiler barrier still takes part in a Dekker-style handshake with the
 * caller. na_prim_membarrier_ready registers the process for it (once) and says whether the
 * kernel has it (0, or ENOSYS/EINVAL). */
int na_prim_membarrier_ready(void);
int na_prim_membarrier(void);

/* Seconds on a monotonic clock. */
double na_prim_now(void);

#endif /* NALLOC_PRIM_H */
