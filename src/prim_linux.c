/* src/prim_linux.c - the platform layer on Linux (contract in prim.h).
 *
 * A reservation is made in two steps. First the whole range, guards included, is mapped
 * PROT_NONE and MAP_NORESERVE: address space only, no commit charge, and for an aligned base we
 * over-reserve by the alignment and trim both ends. Then the usable middle is mapped over it with
 * MAP_FIXED, read-write (anonymous private memory, or the memfd_secret file), which is where the
 * kernel charges the commit. The guards stay PROT_NONE, so a stray access one byte outside the
 * arena faults instead of landing in a neighbour's memory.
 */
#include "prim.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25
#endif
#ifndef MADV_WIPEONFORK
#define MADV_WIPEONFORK 18
#endif
#ifndef MLOCK_ONFAULT
#define MLOCK_ONFAULT 1
#endif
#ifndef SYS_memfd_secret
#define SYS_memfd_secret 447 /* the same number on every architecture that has it */
#endif

size_t na_prim_page_size(void)
{
    static size_t page;
    size_t p = __atomic_load_n(&page, __ATOMIC_RELAXED);
    if (p == 0) {
        long v = sysconf(_SC_PAGESIZE);
        p = v > 0 ? (size_t)v : 4096;
        __atomic_store_n(&page, p, __ATOMIC_RELAXED);
    }
    return p;
}

size_t na_prim_min_address(void)
{
    static size_t lowest;
    size_t v = __atomic_load_n(&lowest, __ATOMIC_RELAXED);
    if (v == 0) {
        unsigned long long read = 0;
        FILE *f = fopen("/proc/sys/vm/mmap_min_addr", "re");
        if (f != NULL) {
            if (fscanf(f, "%llu", &read) != 1)
                read = 0;
            fclose(f);
        }
        v = read > na_prim_page_size() ? (size_t)read : na_prim_page_size();
        __atomic_store_n(&lowest, v, __ATOMIC_RELAXED);
    }
    return v;
}

/* Map the usable part of a reservation over its PROT_NONE placeholder. */
static int map_usable(void *base, size_t size, unsigned flags, int *fd_out)
{
    *fd_out = -1;
    if (flags & NA_PRIM_SECRET) {
        long fd = syscall(SYS_memfd_secret, 0);
        if (fd < 0)
            return errno;
        if (ftruncate((int)fd, (off_t)size) != 0) {
            int err = errno;
            close((int)fd);
            return err;
        }
        /* Shared, as memfd_secret requires: which is why a secret arena cannot wipe on fork. */
        void *p = mmap(base, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, (int)fd, 0);
        if (p == MAP_FAILED) {
            int err = errno;
            close((int)fd);
            return err;
        }
        *fd_out = (int)fd;
        return 0;
    }
    int mflags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED;
    if (flags & NA_PRIM_NORESERVE)
        mflags |= MAP_NORESERVE;
    void *p = mmap(base, size, PROT_READ | PROT_WRITE, mflags, -1, 0);
    return p == MAP_FAILED ? errno : 0;
}

/* Reserve [start, start + length) PROT_NONE exactly at `start` (fixed) or anywhere. */
static int reserve_placeholder(void *start, size_t length, void **out)
{
    int flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE;
    if (start != NULL)
        flags |= MAP_FIXED_NOREPLACE;
    void *p = mmap(start, length, PROT_NONE, flags, -1, 0);
    if (p == MAP_FAILED)
        return errno;
    if (start != NULL && p != start) { /* a kernel before 4.17 took the flag as a hint */
        munmap(p, length);
        return EEXIST;
    }
    *out = p;
    return 0;
}

int na_prim_map(size_t size, size_t align, size_t guard, void *fixed, unsigned flags,
                na_mapping *out)
{
    size_t page = na_prim_page_size();
    if (size == 0 || size % page != 0 || guard % page != 0)
        return EINVAL;
    if (align < page)
        align = page;
    if ((align & (align - 1)) != 0 || ((uintptr_t)fixed % page) != 0)
        return EINVAL;
    if (guard > (SIZE_MAX - size) / 2) /* 2 * guard itself may wrap */
        return ENOMEM;
    size_t length = size + 2 * guard;

    void *start = NULL;
    int err;
    if (fixed != NULL) {
        if ((uintptr_t)fixed < guard || (uintptr_t)fixed - guard > UINTPTR_MAX - length)
            return EINVAL;
        err = reserve_placeholder((char *)fixed - guard, length, &start);
        if (err)
            return err;
    } else {
        size_t slack = align > page ? align - page : 0;
        if (length > SIZE_MAX - slack)
            return ENOMEM;
        void *raw = NULL;
        err = reserve_placeholder(NULL, length + slack, &raw);
        if (err)
            return err;
        uintptr_t base = ((uintptr_t)raw + guard + align - 1) & ~(uintptr_t)(align - 1);
        start = (void *)(base - guard);
        size_t head = (size_t)((char *)start - (char *)raw);
        size_t tail = slack - head;
        if (head)
            munmap(raw, head);
        if (tail)
            munmap((char *)start + length, tail);
    }

    int fd;
    err = map_usable((char *)start + guard, size, flags, &fd);
    if (err) {
        munmap(start, length);
        return err;
    }
    out->start = start;
    out->length = length;
    out->base = (char *)start + guard;
    out->size = size;
    out->guard = guard;
    out->fd = fd;
    return 0;
}

int na_prim_unmap(na_mapping *m)
{
    int err = 0;
    if (m->start != NULL && munmap(m->start, m->length) != 0)
        err = errno;
    if (m->fd >= 0)
        close(m->fd);
    m->start = NULL;
    m->base = NULL;
    m->fd = -1;
    return err;
}

int na_prim_populate(void *addr, size_t size)
{
    if (madvise(addr, size, MADV_POPULATE_WRITE) == 0)
        return 0;
    if (errno != EINVAL)
        return errno; /* ENOMEM, EFAULT, EHWPOISON...: the kernel has it and said no */
    /* Before Linux 5.14: write every page ourselves. The memory is fresh, so zero is its value. */
    size_t page = na_prim_page_size();
    for (size_t off = 0; off < size; off += page)
        ((volatile char *)addr)[off] = 0;
    return 0;
}

static int advise(void *addr, size_t size, int advice)
{
    return madvise(addr, size, advice) == 0 ? 0 : errno;
}

int na_prim_prefault(void *addr, size_t size)
{
    int err;
    do /* a fatal signal aside, EINTR means "try again"; pages done so far stay done */
        err = advise(addr, size, MADV_POPULATE_WRITE);
    while (err == EINTR);
    return err;
}

int na_prim_collapse(void *addr, size_t size)
{
    return advise(addr, size, MADV_COLLAPSE);
}

int na_prim_resident_pages(void *addr, size_t size, size_t *pages)
{
    size_t page = na_prim_page_size(), count = 0;
    unsigned char vec[512];
    for (size_t done = 0; done < size;) {
        size_t n = (size - done) / page < sizeof vec ? (size - done) / page : sizeof vec;
        if (n == 0)
            break;
        if (mincore((char *)addr + done, n * page, vec) != 0)
            return errno;
        for (size_t i = 0; i < n; i++)
            count += vec[i] & 1;
        done += n * page;
    }
    *pages = count;
    return 0;
}

size_t na_prim_huge_page_size(void)
{
    static size_t huge = 1; /* 1: not read yet */
    size_t h = __atomic_load_n(&huge, __ATOMIC_RELAXED);
    if (h == 1) {
        h = 0;
        FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/hpage_pmd_size", "re");
        if (f != NULL) {
            unsigned long long v;
            if (fscanf(f, "%llu", &v) == 1 && v > 0 && (v & (v - 1)) == 0)
                h = (size_t)v;
            fclose(f);
        }
        __atomic_store_n(&huge, h, __ATOMIC_RELAXED);
    }
    return h;
}

/* Read a "Name:   123 kB" line of smaps into *bytes; false if `line` is not `name`. */
static bool smaps_field(const char *line, const char *name, size_t *bytes)
{
    size_t len = strlen(name);
    unsigned long long kib;
    if (strncmp(line, name, len) != 0 || line[len] != ':' ||
        sscanf(line + len + 1, "%llu kB", &kib) != 1)
        return false;
    *bytes = (size_t)kib * 1024;
    return true;
}

int na_prim_resident(void *addr, size_t size, size_t *resident, size_t *huge)
{
    uintptr_t lo = (uintptr_t)addr, hi = lo + size;
    FILE *f = fopen("/proc/self/smaps", "re");
    if (f == NULL)
        return errno;
    char line[512];
    size_t rss = 0, anon_huge = 0, v;
    bool inside = false;
    int err = 0;
    while (fgets(line, sizeof line, f) != NULL) {
        unsigned long long start, end;
        char c;
        /* A mapping's header: "start-end perms offset dev inode [path]"; field lines start with
         * a capital letter, never a hex digit followed by '-'. */
        if (sscanf(line, "%llx-%llx %c", &start, &end, &c) == 3) {
            if (start >= hi)
                break; /* mappings are listed in address order: we are past the range */
            inside = end > lo;
            if (inside && (start < lo || end > hi)) {
                err = ERANGE;
                break;
            }
        } else if (inside) {
            if (smaps_field(line, "Rss", &v))
                rss += v;
            else if (smaps_field(line, "AnonHugePages", &v))
                anon_huge += v;
        }
        if (strchr(line, '\n') == NULL) { /* a longer line (a path): skip the rest of it */
            int ch;
            while ((ch = fgetc(f)) != EOF && ch != '\n')
                ;
        }
    }
    fclose(f);
    if (err == 0) {
        *resident = rss;
        *huge = anon_huge;
    }
    return err;
}

int na_prim_hugepage(void *addr, size_t size)
{
#ifdef MADV_HUGEPAGE
    return advise(addr, size, MADV_HUGEPAGE);
#else
    (void)addr;
    (void)size;
    return ENOSYS;
#endif
}

int na_prim_dontdump(void *addr, size_t size)
{
    return advise(addr, size, MADV_DONTDUMP);
}

int na_prim_wipeonfork(void *addr, size_t size)
{
    return advise(addr, size, MADV_WIPEONFORK);
}

int na_prim_dontfork(void *addr, size_t size)
{
    return advise(addr, size, MADV_DONTFORK);
}

int na_prim_lock(void *addr, size_t size)
{
    if (syscall(SYS_mlock2, addr, size, MLOCK_ONFAULT) == 0)
        return 0;
    if (errno != ENOSYS && errno != EINVAL)
        return errno;
    /* Before Linux 4.4: lock (and fault in) all of it. The raw syscall, because sanitizer
     * runtimes replace mlock() with a no-op that reports success. */
    return syscall(SYS_mlock, addr, size) == 0 ? 0 : errno;
}

int na_prim_unlock(void *addr, size_t size)
{
    /* libc's munlock, not the raw syscall as for locking: a sanitizer's no-op munlock only leaves
     * the pages locked until munmap, which unlocks them anyway, and checkers that interpose
     * munlock (to see that secrets are zeroed before it) get to see the call. */
    return munlock(addr, size) == 0 ? 0 : errno;
}

void na_prim_zero(void *addr, size_t size)
{
    explicit_bzero(addr, size);
}

#ifndef SYS_membarrier
#define SYS_membarrier 324 /* x86-64; other architectures have it in their headers */
#endif
#define NA_MEMBARRIER_PRIVATE_EXPEDITED (1 << 3)
#define NA_MEMBARRIER_REGISTER_PRIVATE_EXPEDITED (1 << 4)

static int membarrier_state; /* 0: not asked yet; 1: ready; otherwise errno + 2 (atomic) */

int na_prim_membarrier_ready(void)
{
    int state = __atomic_load_n(&membarrier_state, __ATOMIC_ACQUIRE);
    if (state == 0) {
        long r = syscall(SYS_membarrier, NA_MEMBARRIER_REGISTER_PRIVATE_EXPEDITED, 0, 0);
        state = r == 0 ? 1 : errno + 2;
        __atomic_store_n(&membarrier_state, state, __ATOMIC_RELEASE);
    }
    return state == 1 ? 0 : state - 2;
}

int na_prim_membarrier(void)
{
    int err = na_prim_membarrier_ready();
    if (err != 0)
        return err;
    return syscall(SYS_membarrier, NA_MEMBARRIER_PRIVATE_EXPEDITED, 0, 0) == 0 ? 0 : errno;
}

double na_prim_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

double na_prim_thread_cpu(void)
{
    struct timespec t;
    if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t) != 0)
        return 0;
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}
