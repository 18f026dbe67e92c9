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

/* The lowest address a mapping may start at for an unprivileged process: vm.mmap_min_addr, and
 * never below one page. Read once. */
size_t na_prim_min_address(void);

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

/* Fault every page of [addr, addr + size) in writable with MADV_POPULATE_WRITE, leaving the
 * contents as they are: safe on memory that other threads are reading and writing meanwhile. No
 * fallback:
 * EINVAL where the kernel lacks it (before 5.14) and for mappings it refuses (memfd_secret), since
 * writing to the pages ourselves could overwrite another thread's data. A size of 0 faults nothing
 * and only asks whether the kernel knows the advice. */
int na_prim_prefault(void *addr, size_t size);

/* Ask the kernel to back [addr, addr + size) with transparent huge pages now (MADV_COLLAPSE,
 * Linux 6.1): it allocates each huge page, copies the small pages in, and may reclaim and compact
 * memory synchronously to find one, on the calling thread. The contents are unchanged; other
 * threads touching the range meanwhile wait for it. Pages of the range that were not resident
 * become resident (zero). EAGAIN or ENOMEM when no huge page could be had (nothing changed);
 * EINVAL where the kernel lacks it, THP is "never", or nothing in the range is resident. A size of
 * 0 collapses nothing and only asks whether the kernel knows the advice. */
int na_prim_collapse(void *addr, size_t size);

/* The number of pages of [addr, addr + size) that are resident now (mincore). */
int na_prim_resident_pages(void *addr, size_t size, size_t *pages);

/* The transparent huge page size in bytes (2 MiB on x86-64; read from sysfs once), or 0 where
 * the kernel has none. */
size_t na_prim_huge_page_size(void);

/* Bytes of [addr, addr + size) that are resident and, of those, backed by anonymous huge pages:
 * the Rss and AnonHugePages of every mapping inside the range, from /proc/self/smaps. The range
 * must cover whole mappings (as an arena's usable range does): a mapping that straddles either end
 * is refused with ERANGE. Costs a page-table walk of every mapping up to the range's end (about
 * 10 ms per GiB of small pages, nothing for huge ones). ENOENT where /proc is not mounted. */
int na_prim_resident(void *addr, size_t size, size_t *resident, size_t *huge);

/* MADV_HUGEPAGE, MADV_DONTDUMP, MADV_WIPEONFORK, MADV_DONTFORK on [addr, addr + size). A size
 * of 0 changes nothing and only asks whether the kernel knows the advice (EINVAL if not). */
int na_prim_hugepage(void *addr, size_t size);
int na_prim_dontdump(void *addr, size_t size);
int na_prim_wipeonfork(void *addr, size_t size);
int na_prim_dontfork(void *addr, size_t size);

/* Lock [addr, addr + size) in memory as it is faulted in (mlock2 MLOCK_ONFAULT; plain mlock where
 * the kernel lacks it). ENOMEM or EPERM when RLIMIT_MEMLOCK forbids it. */
int na_prim_lock(void *addr, size_t size);
/* Unlock it again (munlock, through libc, so that tools interposing munlock see the call). */
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

/* Seconds of CPU time the calling thread has used, in user and kernel mode (in a virtual machine,
 * kernel time includes what the host takes to back memory the thread faults in). */
double na_prim_thread_cpu(void);

#endif /* NALLOC_PRIM_H */
