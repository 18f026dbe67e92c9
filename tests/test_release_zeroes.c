/* tests/test_release_zeroes.c - memory that held secrets is all zeros when it is unlocked and when
 * it is unmapped.
 *
 * libsodium zeroes locked memory before munlock, always, and so does nalloc (nalloc.h,
 * nalloc_flag): a witness arena, and any arena that asked for LOCK, NODUMP or SECRET, is wiped on
 * destroy even without NALLOC_FLAG_WIPE_ON_DESTROY. This suite checks it from outside, as a
 * checker interposing the system calls would: it defines munlock and munmap itself (an
 * executable's definitions come first in symbol lookup, so libnalloc's calls land here), counts
 * the non-zero bytes of the watched arena at the moment of each call, then forwards to the real
 * function. A plain scratch arena, which keeps no secrets, is the control: its bytes are still
 * there at munmap, so the checker does see what it is shown.
 */
#include "testutil.h"

#include <dlfcn.h>
#include <sys/mman.h>
#include <sys/syscall.h>

static int (*real_munmap)(void *, size_t);
static int (*real_munlock)(const void *, size_t);

__attribute__((constructor)) static void find_the_real_functions(void)
{
    /* The next definition after ours: a sanitizer's interceptor, or libc's. */
    *(void **)&real_munmap = dlsym(RTLD_NEXT, "munmap");
    *(void **)&real_munlock = dlsym(RTLD_NEXT, "munlock");
}

/* What the interposers saw of the watched range [base, base + size). */
static struct {
    uintptr_t base;
    size_t size;
    bool armed;
    int munlocks, munmaps;           /* calls that covered some of the range */
    size_t nonzero_at_munlock;       /* non-zero bytes seen in the range at those calls */
    size_t nonzero_at_munmap;
} seen;

/* Non-zero bytes in [from, to): memory a checker may have poisoned (the arena is being released),
 * read on purpose. */
__attribute__((no_sanitize_address, noinline)) static size_t nonzero_bytes(uintptr_t from,
                                                                           uintptr_t to)
{
#if NALLOC_TEST_VALGRIND_HEADERS
    VALGRIND_DISABLE_ERROR_REPORTING;
#endif
    size_t n = 0;
    for (uintptr_t p = from; p < to; p++)
        n += *(const volatile unsigned char *)p != 0;
#if NALLOC_TEST_VALGRIND_HEADERS
    VALGRIND_ENABLE_ERROR_REPORTING;
#endif
    return n;
}

static void look(const void *addr, size_t len, int *calls, size_t *nonzero)
{
    if (!seen.armed)
        return;
    uintptr_t lo = (uintptr_t)addr, hi = lo + len;
    if (lo < seen.base)
        lo = seen.base;
    if (hi > seen.base + seen.size)
        hi = seen.base + seen.size;
    if (lo >= hi)
        return;
    (*calls)++;
    *nonzero += nonzero_bytes(lo, hi);
}

int munlock(const void *addr, size_t len)
{
    look(addr, len, &seen.munlocks, &seen.nonzero_at_munlock);
    return real_munlock ? real_munlock(addr, len) : (int)syscall(SYS_munlock, addr, len);
}

int munmap(void *addr, size_t len)
{
    look(addr, len, &seen.munmaps, &seen.nonzero_at_munmap);
    return real_munmap ? real_munmap(addr, len) : (int)syscall(SYS_munmap, addr, len);
}

enum { SECRET_BYTES = 64 * 1024 };

/* Create a host arena of `kind` with exactly `flags`, fill SECRET_BYTES of it (and of a lane, with
 * `lane`), destroy it under watch. Returns its statistics from before the destroy. */
static nalloc_stats release_watched(nalloc_kind kind, unsigned flags, bool lane)
{
    nalloc_arena_config c;
    nalloc_arena_config_init(&c, kind, NALLOC_MEMORY_HOST, 4 * SECRET_BYTES);
    c.flags = flags;
    nalloc_arena *a = make_arena_with(&c);
    unsigned char *p = nalloc_alloc(a, SECRET_BYTES);
    assert_non_null(p);
    memset(p, 0x5a, SECRET_BYTES);
    if (lane) {
        nalloc_arena *l;
        assert_int_equal(nalloc_arena_split(a, 1, SECRET_BYTES, &l), NALLOC_OK);
        unsigned char *q = nalloc_alloc(l, SECRET_BYTES / 2);
        assert_non_null(q);
        memset(q, 0xa5, SECRET_BYTES / 2);
    }
    nalloc_stats s = stats_of(a);
    memset(&seen, 0, sizeof seen);
    seen.base = s.base;
    seen.size = s.capacity;
    seen.armed = true;
    assert_int_equal(nalloc_arena_destroy(a), NALLOC_OK);
    seen.armed = false;
    assert_true(seen.munmaps >= 1); /* the watch did see the arena go */
    return s;
}

static void expect_zeros_at_release(nalloc_kind kind, unsigned flags, bool lane)
{
    nalloc_stats s = release_watched(kind, flags, lane);
    assert_true(s.wipe_on_destroy);
    assert_int_equal(seen.nonzero_at_munmap, 0);
    if (s.locked && !s.secret) { /* mlock'ed pages are unlocked first, zeros already */
        assert_true(seen.munlocks >= 1);
        assert_int_equal(seen.nonzero_at_munlock, 0);
    }
}

static void test_a_locked_arena_is_zeros_when_unlocked_and_unmapped(void **state)
{
    (void)state;
    expect_zeros_at_release(NALLOC_KIND_SCRATCH, NALLOC_FLAG_LOCK, false);
}

static void test_a_no_dump_arena_is_zeros_when_unmapped(void **state)
{
    (void)state;
    expect_zeros_at_release(NALLOC_KIND_SCRATCH, NALLOC_FLAG_NODUMP, false);
}

static void test_a_secret_arena_is_zeros_when_unmapped(void **state)
{
    (void)state; /* memfd_secret where the kernel has it, ordinary memory otherwise: zeros both */
    expect_zeros_at_release(NALLOC_KIND_SCRATCH, NALLOC_FLAG_SECRET, false);
}

static void test_a_witness_arena_without_flags_is_zeros_when_unmapped(void **state)
{
    (void)state; /* the kind decides the discipline (nalloc.h, nalloc_arena_config.kind) */
    expect_zeros_at_release(NALLOC_KIND_WITNESS, 0, false);
}

static void test_a_locked_parent_and_its_lane_are_zeros_when_released(void **state)
{
    (void)state;
    expect_zeros_at_release(NALLOC_KIND_SCRATCH, NALLOC_FLAG_LOCK, true);
}

static void test_a_plain_scratch_arena_keeps_its_bytes_to_the_end(void **state)
{
    (void)state; /* the control: no secrets, no wipe, and the watch sees the bytes */
    nalloc_stats s = release_watched(NALLOC_KIND_SCRATCH, 0, false);
    assert_false(s.wipe_on_destroy);
    assert_int_equal(seen.nonzero_at_munmap, SECRET_BYTES);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_locked_arena_is_zeros_when_unlocked_and_unmapped),
        cmocka_unit_test(test_a_no_dump_arena_is_zeros_when_unmapped),
        cmocka_unit_test(test_a_secret_arena_is_zeros_when_unmapped),
        cmocka_unit_test(test_a_witness_arena_without_flags_is_zeros_when_unmapped),
        cmocka_unit_test(test_a_locked_parent_and_its_lane_are_zeros_when_released),
        cmocka_unit_test(test_a_plain_scratch_arena_keeps_its_bytes_to_the_end),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
