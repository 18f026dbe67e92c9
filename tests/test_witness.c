/* tests/test_witness.c - the witness protections, checked from the kernel's side.
 *
 * Statistics say what nalloc believes is in force; these tests ask the kernel instead: the
 * mapping's VmFlags in /proc/self/smaps, what a forked child reads, what a core dump holds, what
 * a process with a low RLIMIT_MEMLOCK (and without CAP_IPC_LOCK, which root has) gets, what a
 * kernel without memfd_secret (simulated with a seccomp filter) gets. Every check that needs
 * another process runs in a forked child or in a fresh execution of this binary (tests/child.h).
 */
#include "child.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#ifndef SYS_memfd_secret
#define SYS_memfd_secret 447
#endif

/* ---------------------------------------------------------------------------------------------
 * Helpers
 * ------------------------------------------------------------------------------------------- */

/* Copy the line `src` into dst (len bytes), without its newline, truncated if need be. */
static void copy_line(char *dst, size_t len, const char *src)
{
    size_t n = strcspn(src, "\n");
    if (n > len - 1)
        n = len - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

/* The VmFlags line (after "VmFlags:") and the path of the mapping holding addr, from
 * /proc/self/smaps; false if no mapping holds it. */
static bool mapping_flags(uintptr_t addr, char *flags, size_t flags_len, char *path, size_t path_len)
{
    FILE *f = fopen("/proc/self/smaps", "r");
    if (f == NULL)
        return false;
    char line[512];
    bool inside = false, found = false;
    while (fgets(line, sizeof line, f) != NULL) {
        unsigned long lo, hi;
        int name_at = 0;
        if (sscanf(line, "%lx-%lx %*s %*s %*s %*s %n", &lo, &hi, &name_at) == 2 &&
            strchr(line, ':') > strchr(line, ' ')) {
            inside = addr >= lo && addr < hi;
            if (inside && path != NULL)
                copy_line(path, path_len, name_at > 0 ? line + name_at : "");
        } else if (inside && strncmp(line, "VmFlags:", 8) == 0) {
            copy_line(flags, flags_len - 1, line + 8); /* " rd wr ... " with a space after */
            strcat(flags, " ");
            found = true;
            break;
        }
    }
    fclose(f);
    return found;
}

/* Is the two-letter VmFlags mnemonic `flag` in `flags` (" rd wr lo dd ... ")? */
static bool has_flag(const char *flags, const char *flag)
{
    char needle[8];
    snprintf(needle, sizeof needle, " %s ", flag);
    return strstr(flags, needle) != NULL;
}

/* Reads memory the arena may have released (and a memory checker poisoned) on purpose. */
static bool all_zero(const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (peek_released(p, i) != 0)
            return false;
    return true;
}

static bool kernel_has_memfd_secret(void)
{
    long fd = syscall(SYS_memfd_secret, 0);
    if (fd < 0)
        return false;
    close((int)fd);
    return true;
}

/* Drop CAP_IPC_LOCK (root has it, and it lets mlock ignore RLIMIT_MEMLOCK) from every set of the
 * calling process, and lower RLIMIT_MEMLOCK to `limit` bytes. */
static bool become_memlock_limited(size_t limit)
{
    struct __user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct data[2];
    if (syscall(SYS_capget, &header, data) != 0)
        return false;
    unsigned word = CAP_IPC_LOCK / 32, bit = 1u << (CAP_IPC_LOCK % 32);
    data[word].effective &= ~bit;
    data[word].permitted &= ~bit;
    data[word].inheritable &= ~bit;
    if (syscall(SYS_capset, &header, data) != 0)
        return false;
    struct rlimit r = {limit, limit};
    return setrlimit(RLIMIT_MEMLOCK, &r) == 0;
}

/* Make memfd_secret fail with ENOSYS in the calling process, as on a kernel without it. */
static bool hide_memfd_secret(void)
{
    struct sock_filter filter[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_memfd_secret, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {sizeof filter / sizeof filter[0], filter};
    return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 &&
           prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) == 0;
}

/* ---------------------------------------------------------------------------------------------
 * The default witness mapping, seen by the kernel
 * ------------------------------------------------------------------------------------------- */

static void test_witness_mapping_is_locked_nodump_and_wipeonfork(void **state)
{
    (void)state;
    nalloc_arena *w = try_arena(NALLOC_KIND_WITNESS, 1 * MiB, 0, 0, NULL);
    assert_non_null(w);
    nalloc_stats s;
    assert_int_equal(nalloc_arena_stats(w, &s), NALLOC_OK);
    assert_true(s.locked);
    assert_true(s.no_dump);
    assert_true(s.wipe_on_fork);
    assert_true(s.wipe_on_destroy);
    assert_true(s.guard_pages);
    assert_int_equal(s.missing, 0);

    char flags[256];
    assert_true(mapping_flags(s.base, flags, sizeof flags, NULL, 0));
    assert_true(has_flag(flags, "lo")); /* VM_LOCKED */
    assert_true(has_flag(flags, "dd")); /* VM_DONTDUMP */
    assert_true(has_flag(flags, "wf")); /* VM_WIPEONFORK */
    /* The whole usable range is one mapping with those flags: its last byte too. */
    char last[256];
    assert_true(mapping_flags(s.base + s.capacity - 1, last, sizeof last, NULL, 0));
    assert_string_equal(flags, last);
    /* The guards are not part of it, and are not accessible. */
    char guard[256];
    assert_true(mapping_flags(s.base - 1, guard, sizeof guard, NULL, 0));
    assert_false(has_flag(guard, "rd"));
    assert_false(has_flag(guard, "lo"));
    assert_int_equal(nalloc_arena_destroy(w), NALLOC_OK);
}

static void test_scratch_mapping_has_none_of_the_witness_flags(void **state)
{
    (void)state;
    nalloc_arena *a = try_arena(NALLOC_KIND_SCRATCH, 1 * MiB, 0, 0, NULL);
    assert_non_null(a);
    char flags[256];
    assert_true(mapping_flags(stats_of(a).base, flags, sizeof flags, NULL, 0));
    assert_false(has_flag(flags, "lo"));
    assert_false(has_flag(flags, "dd"));
    assert_false(has_flag(flags, "wf"));
    assert_int_equal(nalloc_arena_destroy(a), NALLOC_OK);
}

/* ---------------------------------------------------------------------------------------------
 * Fork
 * ------------------------------------------------------------------------------------------- */

typedef struct fork_view {
    unsigned char *witness, *scratch;
    size_t bytes;
} fork_view;

static void child_reads_fork_view(void *arg)
{
    fork_view *v = arg;
    CHILD_CHECK(all_zero(v->witness, v->bytes));  /* wiped for the child */
    CHILD_CHECK(v->scratch[0] == 0xa5 && v->scratch[v->bytes - 1] == 0xa5); /* copied as usual */
}

static void test_forked_child_reads_zeros_from_the_witness(void **state)
{
    (void)state;
    nalloc_arena *w = try_arena(NALLOC_KIND_WITNESS, 1 * MiB, 0, 0, NULL);
    nalloc_arena *s = try_arena(NALLOC_KIND_SCRATCH, 1 * MiB, 0, 0, NULL);
    assert_non_null(w);
    assert_non_null(s);
    fork_view v = {nalloc_alloc(w, 256 * KiB), nalloc_alloc(s, 256 * KiB), 256 * KiB};
    assert_non_null(v.witness);
    assert_non_null(v.scratch);
    memset(v.witness, 0xa5, v.bytes);
    memset(v.scratch, 0xa5, v.bytes);
    assert_int_equal(child_exit_code(run_in_child(child_reads_fork_view, &v)), 0);
    /* The parent's witness is untouched by the child's view of it. */
    assert_int_equal(v.witness[0], 0xa5);
    assert_int_equal(v.witness[v.bytes - 1], 0xa5);
    assert_int_equal(nalloc_arena_destroy(w), NALLOC_OK);
    assert_int_equal(nalloc_arena_destroy(s), NALLOC_OK);
}

/* ---------------------------------------------------------------------------------------------
 * Refused protections: the documented fallback report
 * ------------------------------------------------------------------------------------------- */

static void child_with_low_memlock_limit(void *unused)
{
    (void)unused;
    if (!become_memlock_limited(64 * KiB))
        _exit(CHILD_SKIP);
    /* Only go on if the kernel now enforces the limit on us. */
    void *probe = mmap(NULL, 1 * MiB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHILD_CHECK(probe != MAP_FAILED);
    if (syscall(SYS_mlock, probe, 1 * MiB) == 0) /* sanitizers make mlock() a no-op */
        _exit(CHILD_SKIP);
    munmap(probe, 1 * MiB);

    /* A witness arena larger than the limit: created, unlocked, and saying so. */
    nalloc_arena *w = try_arena(NALLOC_KIND_WITNESS, 1 * MiB, 0, 0, NULL);
    CHILD_CHECK(w != NULL);
    nalloc_stats s;
    CHILD_CHECK(nalloc_arena_stats(w, &s) == NALLOC_OK);
    CHILD_CHECK(!s.locked);
    CHILD_CHECK(s.missing == NALLOC_FLAG_LOCK); /* the other protections still hold */
    CHILD_CHECK(s.no_dump && s.wipe_on_fork && s.wipe_on_destroy);
    char flags[256];
    CHILD_CHECK(mapping_flags(s.base, flags, sizeof flags, NULL, 0));
    CHILD_CHECK(!has_flag(flags, "lo") && has_flag(flags, "dd") && has_flag(flags, "wf"));
    char report[1024] = "";
    FILE *out = fmemopen(report, sizeof report - 1, "w");
    CHILD_CHECK(out != NULL);
    CHILD_CHECK(nalloc_arena_print_stats(w, out) == NALLOC_OK);
    fclose(out);
    CHILD_CHECK(strstr(report, "missing: lock") != NULL);
    unsigned char *p = nalloc_alloc(w, 512 * KiB); /* and it works */
    CHILD_CHECK(p != NULL);
    memset(p, 1, 512 * KiB);
    CHILD_CHECK(nalloc_arena_destroy(w) == NALLOC_OK);

    /* NALLOC_FLAG_STRICT turns the refusal into a failure, with nothing left behind. */
    nalloc_arena_config c;
    nalloc_arena_config_init(&c, NALLOC_KIND_WITNESS, NALLOC_MEMORY_HOST, 1 * MiB);
    c.flags |= NALLOC_FLAG_STRICT;
    nalloc_arena *strict = (nalloc_arena *)&c; /* must be overwritten with NULL */
    CHILD_CHECK(nalloc_arena_create(&c, &strict) == NALLOC_ERR_OS);
    CHILD_CHECK(errno == ENOMEM || errno == EPERM);
    CHILD_CHECK(strict == NULL);
    CHILD_CHECK(nalloc_last_error() == NALLOC_ERR_OS);

    /* Within the limit, locking works. */
    nalloc_arena *small = try_arena(NALLOC_KIND_WITNESS, 16 * KiB, 0, 0, NULL);
    CHILD_CHECK(small != NULL);
    CHILD_CHECK(nalloc_arena_stats(small, &s) == NALLOC_OK && s.locked && s.missing == 0);
    CHILD_CHECK(nalloc_arena_destroy(small) == NALLOC_OK);

    /* memfd_secret pages count against the same limit: the secret backing is refused, and the
     * arena falls back to ordinary (still no-dump, no-fork) memory. */
    nalloc_arena *secret = try_arena(NALLOC_KIND_WITNESS, 1 * MiB, NALLOC_FLAG_SECRET, 0, NULL);
    CHILD_CHECK(secret != NULL);
    CHILD_CHECK(nalloc_arena_stats(secret, &s) == NALLOC_OK);
    CHILD_CHECK(!s.secret && (s.missing & NALLOC_FLAG_SECRET));
    CHILD_CHECK(s.no_dump && s.wipe_on_fork);
    CHILD_CHECK(nalloc_alloc(secret, 4096) != NULL);
    CHILD_CHECK(nalloc_arena_destroy(secret) == NALLOC_OK);

    /* With STRICT that refusal fails creation, and says what it was: the kernel has memfd_secret
     * but the mapping does not fit in RLIMIT_MEMLOCK, so mmap says EAGAIN: NALLOC_ERR_OS, not
     * NALLOC_ERR_UNSUPPORTED (nalloc.h, NALLOC_FLAG_SECRET). */
    if (kernel_has_memfd_secret()) {
        nalloc_arena_config_init(&c, NALLOC_KIND_WITNESS, NALLOC_MEMORY_HOST, 1 * MiB);
        c.flags |= NALLOC_FLAG_SECRET | NALLOC_FLAG_STRICT;
        strict = (nalloc_arena *)&c;
        CHILD_CHECK(nalloc_arena_create(&c, &strict) == NALLOC_ERR_OS);
        CHILD_CHECK(errno == EAGAIN);
        CHILD_CHECK(strict == NULL);
        CHILD_CHECK(strstr(nalloc_last_error_message(), "memfd_secret was refused") != NULL);
    }
}

static void test_low_memlock_limit_gives_an_unlocked_arena_and_says_so(void **state)
{
    (void)state;
    int code = child_exit_code(run_in_child(child_with_low_memlock_limit, NULL));
    if (code == CHILD_SKIP)
        skip(); /* could not drop CAP_IPC_LOCK, or the kernel does not enforce RLIMIT_MEMLOCK */
    assert_int_equal(code, 0);
}

/* Child role (a fresh process, so that it reads NALLOC_QUIET_PROTECTIONS anew): create a witness
 * arena whose lock the kernel refuses, and one whose secret backing it refuses. Exit 77 where the
 * limit cannot be imposed. Its stderr is the result. */
static int refused_protections_role(void)
{
    if (!become_memlock_limited(64 * KiB))
        return CHILD_SKIP;
    void *probe = mmap(NULL, 1 * MiB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (probe == MAP_FAILED || syscall(SYS_mlock, probe, 1 * MiB) == 0)
        return CHILD_SKIP; /* the kernel does not enforce the limit on us */
    nalloc_arena *w = try_arena(NALLOC_KIND_WITNESS, 1 * MiB, 0, 0, NULL);
    if (w == NULL || nalloc_arena_destroy(w) != NALLOC_OK)
        return 1;
    nalloc_arena_config c;
    nalloc_arena_config_init(&c, NALLOC_KIND_SCRATCH, NALLOC_MEMORY_HOST, 1 * MiB);
    c.flags = NALLOC_FLAG_SECRET;
    c.name = "keys";
    if (nalloc_arena_create(&c, &w) != NALLOC_OK || nalloc_arena_destroy(w) != NALLOC_OK)
        return 1;
    return 0;
}

/* Run the role with NALLOC_QUIET_PROTECTIONS=`quiet`; its stderr in text. -1: skipped. */
static int run_refused_protections(const char *quiet, char *text, size_t len)
{
    char path[] = "/tmp/nalloc-warn-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    int status = run_self("refused-protections", quiet, path);
    ssize_t n = pread(fd, text, len - 1, 0);
    text[n > 0 ? n : 0] = '\0';
    close(fd);
    unlink(path);
    if (child_exit_code(status) == CHILD_SKIP)
        return -1;
    assert_int_equal(child_exit_code(status), 0);
    return 0;
}

static void test_a_refused_protection_is_announced_once_unless_silenced(void **state)
{
    (void)state;
    if (under_valgrind())
        skip(); /* run_self would run Valgrind itself */
    char text[2048];
    if (run_refused_protections("NALLOC_QUIET_PROTECTIONS=0", text, sizeof text) < 0)
        skip(); /* could not drop CAP_IPC_LOCK, or the kernel does not enforce RLIMIT_MEMLOCK */
    /* One line per arena: which arena, what was refused, how to get it. */
    const char *lock = strstr(text, "nalloc: warning: arena \"witness\": mlock refused");
    assert_non_null(lock);
    const char *end = strchr(lock, '\n');
    assert_non_null(end);
    assert_non_null(strstr(lock, "ulimit -l"));
    assert_true(strstr(lock, "ulimit -l") < end && strstr(lock, "CAP_IPC_LOCK") < end);
    assert_null(strstr(end, "arena \"witness\"")); /* once */
    /* Refused for the limit here, or for want of the syscall elsewhere: announced either way. */
    const char *secret = strstr(text, "nalloc: warning: arena \"keys\": memfd_secret refused");
    assert_non_null(secret);
    assert_non_null(strstr(secret, "RLIMIT_MEMLOCK"));

    assert_int_equal(run_refused_protections("NALLOC_QUIET_PROTECTIONS=1", text, sizeof text), 0);
    assert_null(strstr(text, "nalloc: warning"));
}

/* ---------------------------------------------------------------------------------------------
 * memfd_secret
 * ------------------------------------------------------------------------------------------- */

static void child_touches_secret(void *arg)
{
    volatile unsigned char *p = arg;
    signal(SIGSEGV, SIG_DFL);
    signal(SIGBUS, SIG_DFL);
    (void)p[0]; /* no mapping here in a forked child: this must kill it */
    _exit(0);
}

static void child_exits_normally(void *unused)
{
    (void)unused;
    /* Runs the exit-time wipe, which must leave the parent process's arenas alone. */
    fflush(NULL);
    exit(0);
}

static void test_secret_arena_is_out_of_the_direct_map_where_supported(void **state)
{
    (void)state;
    bool supported = kernel_has_memfd_secret();
    nalloc_arena *w = try_arena(NALLOC_KIND_WITNESS, 1 * MiB, NALLOC_FLAG_SECRET, 0, NULL);
    assert_non_null(w);
    nalloc_stats s;
    assert_int_equal(nalloc_arena_stats(w, &s), NALLOC_OK);
    if (!supported) {
        print_message("memfd_secret is not available on this kernel: checking the fallback\n");
        assert_false(s.secret);
        assert_true(s.missing & NALLOC_FLAG_SECRET);
        assert_int_equal(nalloc_arena_destroy(w), NALLOC_OK);
        return;
    }
    assert_true(s.secret);
    assert_true(s.locked);
    assert_true(s.no_dump);
    assert_true(s.wipe_on_fork); /* as MADV_DONTFORK: the child has no mapping at all */
    assert_false(s.huge_pages);
    assert_int_equal(s.missing, 0);
    char flags[256], path[256];
    assert_true(mapping_flags(s.base, flags, sizeof flags, path, sizeof path));
    assert_non_null(strstr(path, "secretmem"));
    assert_true(has_flag(flags, "lo"));
    assert_true(has_flag(flags, "dd"));
    assert_true(has_flag(flags, "dc")); /* VM_DONTCOPY: not inherited by a child */

    unsigned char *p = nalloc_alloc(w, 64 * KiB);
    assert_non_null(p);
    memset(p, 0x3c, 64 * KiB);
    int status = run_in_child(child_touches_secret, p);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGSEGV);
    /* A child that exits normally runs nalloc's exit-time wipe: it must not touch the parent's
     * secret arena (absent in the child), nor crash on it. */
    assert_int_equal(child_exit_code(run_in_child(child_exits_normally, NULL)), 0);
    assert_int_equal(p[0], 0x3c);
    assert_int_equal(p[64 * KiB - 1], 0x3c);

    assert_int_equal(nalloc_wipe(w), NALLOC_OK);
    assert_true(all_zero(p, 64 * KiB));
    assert_int_equal(nalloc_arena_destroy(w), NALLOC_OK);

    /* Huge pages do not apply to secret memory: reported missing, and fatal with STRICT. */
    nalloc_arena_config c;
    nalloc_arena_config_init(&c, NALLOC_KIND_WITNESS, NALLOC_MEMORY_HOST, 4 * MiB);
    c.flags |= NALLOC_FLAG_SECRET | NALLOC_FLAG_HUGEPAGES;
    assert_int_equal(nalloc_arena_create(&c, &w), NALLOC_OK);
    assert_int_equal(nalloc_arena_stats(w, &s), NALLOC_OK);
    assert_true(s.secret);
    assert_int_equal(s.missing, NALLOC_FLAG_HUGEPAGES);
    assert_int_equal(nalloc_arena_destroy(w), NALLOC_OK);
    c.flags |= NALLOC_FLAG_STRICT;
    assert_int_equal(nalloc_arena_create(&c, &w), NALLOC_ERR_UNSUPPORTED);
    assert_null(w);
}

/* The secret arena and its lane are absent in a forked child: nalloc must refuse them there
 * rather than hand out, zero or wipe memory the child does not have. */
static void child_uses_parent_secret_arena(void *arg)
{
    nalloc_arena **arenas = arg;
    for (int i = 0; i < 2; i++) {
        nalloc_arena *a = arenas[i];
        CHILD_CHECK(nalloc_alloc(a, 64) == NULL && nalloc_last_error() == NALLOC_ERR_STATE);
        CHILD_CHECK(nalloc_alloc_zeroed(a, 1, 64, 0) == NULL);
        CHILD_CHECK(nalloc_wipe(a) == NALLOC_ERR_STATE);
        CHILD_CHECK(nalloc_arena_destroy(a) == NALLOC_ERR_STATE);
    }
    fflush(NULL);
    exit(0); /* the exit-time wipe leaves them alone too */
}

static void test_forked_child_is_refused_the_parents_secret_arena(void **state)
{
    (void)state;
    if (!kernel_has_memfd_secret())
        skip();
    nalloc_arena *w = try_arena(NALLOC_KIND_WITNESS, 1 * MiB, NALLOC_FLAG_SECRET, 0, NULL);
    assert_non_null(w);
    assert_true(stats_of(w).secret);
    nalloc_arena *arenas[2] = {w, NULL};
    assert_int_equal(nalloc_arena_split(w, 1, 64 * KiB, &arenas[1]), NALLOC_OK);
    memset(nalloc_alloc(arenas[1], 4096), 0x3c, 4096);
    memset(nalloc_alloc(w, 4096), 0x3c, 4096);
    assert_int_equal(child_exit_code(run_in_child(child_uses_parent_secret_arena, arenas)), 0);
    /* The parent's arenas are untouched by what the child did. */
    assert_non_null(nalloc_alloc(arenas[1], 64));
    assert_int_equal(nalloc_arena_destroy(w), NALLOC_OK);
}

static void child_without_memfd_secret(void *unused)
{
    (void)unused;
    if (!hide_memfd_secret())
        _exit(CHILD_SKIP);
    CHILD_CHECK(!kernel_has_memfd_secret());
    nalloc_arena *w = try_arena(NALLOC_KIND_WITNESS, 1 * MiB, NALLOC_FLAG_SECRET, 0, NULL);
    CHILD_CHECK(w != NULL);
    nalloc_stats s;
    CHILD_CHECK(nalloc_arena_stats(w, &s) == NALLOC_OK);
    CHILD_CHECK(!s.secret && s.missing == NALLOC_FLAG_SECRET);
    CHILD_CHECK(s.locked && s.no_dump && s.wipe_on_fork); /* ordinary witness memory */
    char flags[256];
    CHILD_CHECK(mapping_flags(s.base, flags, sizeof flags, NULL, 0));
    CHILD_CHECK(has_flag(flags, "wf") && has_flag(flags, "lo") && has_flag(flags, "dd"));
    CHILD_CHECK(nalloc_alloc(w, 4096) != NULL);
    CHILD_CHECK(nalloc_arena_destroy(w) == NALLOC_OK);

    nalloc_arena_config c;
    nalloc_arena_config_init(&c, NALLOC_KIND_WITNESS, NALLOC_MEMORY_HOST, 1 * MiB);
    c.flags |= NALLOC_FLAG_SECRET | NALLOC_FLAG_STRICT;
    CHILD_CHECK(nalloc_arena_create(&c, &w) == NALLOC_ERR_UNSUPPORTED);
    CHILD_CHECK(w == NULL);
}

static void test_secret_arena_reports_unsupported_without_memfd_secret(void **state)
{
    (void)state;
    int code = child_exit_code(run_in_child(child_without_memfd_secret, NULL));
    if (code == CHILD_SKIP)
        skip(); /* seccomp filters are not available here */
    assert_int_equal(code, 0);
}

/* ---------------------------------------------------------------------------------------------
 * Core dumps
 * ------------------------------------------------------------------------------------------- */

#define CORE_PATTERN_BYTES (64 * KiB)
#define WITNESS_SEED UINT64_C(0x5eed0fc0de5ec7e7) /* used nowhere else: see child_dumps_core */
#define MALLOC_SEED UINT64_C(0x5eed0fc0de0a110c)

static void child_dumps_core(void *dir)
{
    /* The patterns are made here, after the fork, straight into their final places: they exist
     * nowhere else in this process, and the parent makes its copies only after we are dead. */
    struct rlimit r;
    if (getrlimit(RLIMIT_CORE, &r) != 0)
        _exit(CHILD_SKIP);
    r.rlim_cur = r.rlim_max;
    if (setrlimit(RLIMIT_CORE, &r) != 0 || chdir(dir) != 0)
        _exit(CHILD_SKIP);
    prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
    nalloc_arena *w = try_arena(NALLOC_KIND_WITNESS, 1 * MiB, 0, 0, NULL);
    CHILD_CHECK(w != NULL);
    void *secret = nalloc_alloc(w, CORE_PATTERN_BYTES);
    void *plain = malloc(CORE_PATTERN_BYTES);
    CHILD_CHECK(secret != NULL && plain != NULL);
    child_fill_pattern(secret, CORE_PATTERN_BYTES, WITNESS_SEED);
    child_fill_pattern(plain, CORE_PATTERN_BYTES, MALLOC_SEED);
    sigset_t quit;
    sigemptyset(&quit);
    sigaddset(&quit, SIGQUIT);
    sigprocmask(SIG_UNBLOCK, &quit, NULL);
    signal(SIGQUIT, SIG_DFL);
    kill(getpid(), SIGQUIT); /* the default action writes a core dump */
    _exit(3);
}

typedef struct core_search {
    const unsigned char *needle[2]; /* the first 64 bytes of each pattern... */
    const unsigned char *middle[2]; /* ...and 64 bytes from their middle */
    bool found[2];
} core_search;

/* Look for the patterns in every data extent of the core file (it is sparse: the holes of
 * unpopulated mappings read as zeros and are skipped). */
static void search_core(int fd, core_search *s)
{
    enum { CHUNK = 1 << 20, OVERLAP = 64 };
    unsigned char *buf = malloc(CHUNK + OVERLAP);
    assert_non_null(buf);
    off_t end = lseek(fd, 0, SEEK_END);
    off_t at = 0;
    while (at < end) {
        off_t data = lseek(fd, at, SEEK_DATA);
        if (data < 0)
            break;
        off_t hole = lseek(fd, data, SEEK_HOLE);
        size_t carried = 0;
        for (off_t pos = data; pos < hole;) {
            size_t want = (size_t)(hole - pos) < CHUNK ? (size_t)(hole - pos) : CHUNK;
            ssize_t n = pread(fd, buf + carried, want, pos);
            if (n <= 0)
                break;
            size_t have = carried + (size_t)n;
            for (int k = 0; k < 2; k++)
                s->found[k] = s->found[k] || memmem(buf, have, s->needle[k], 64) != NULL ||
                              memmem(buf, have, s->middle[k], 64) != NULL;
            carried = have < OVERLAP ? have : OVERLAP;
            memmove(buf, buf + have - carried, carried);
            pos += n;
        }
        at = hole;
    }
    free(buf);
}

static void remove_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (d != NULL) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            char path[512];
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            unlink(path);
        }
        closedir(d);
    }
    rmdir(dir);
}

static void test_core_dump_holds_the_malloc_buffer_but_not_the_witness(void **state)
{
    (void)state;
    char pattern[256] = "";
    FILE *f = fopen("/proc/sys/kernel/core_pattern", "r");
    if (f != NULL) {
        if (fgets(pattern, sizeof pattern, f) == NULL)
            pattern[0] = '\0';
        fclose(f);
    }
    pattern[strcspn(pattern, "\n")] = '\0';
    struct rlimit r;
    if (pattern[0] == '|' || strchr(pattern, '/') != NULL || pattern[0] == '\0') {
        print_message("skipped: core_pattern '%s' does not write a file in the working directory\n",
                      pattern);
        skip();
    }
    if (getrlimit(RLIMIT_CORE, &r) != 0 || r.rlim_max == 0) {
        print_message("skipped: RLIMIT_CORE's hard limit is 0\n");
        skip();
    }
    char dir[] = "/tmp/nalloc-core-XXXXXX";
    assert_non_null(mkdtemp(dir));
    int status = run_in_child(child_dumps_core, dir);
    if (!WIFSIGNALED(status) || !WCOREDUMP(status)) {
        remove_dir(dir);
        print_message("skipped: the child wrote no core dump (status %#x)\n", status);
        skip();
    }
    char core[512] = "";
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            snprintf(core, sizeof core, "%s/%s", dir, e->d_name);
    closedir(d);
    if (core[0] == '\0') {
        remove_dir(dir);
        print_message("skipped: the kernel reports a core dump, but not in %s\n", dir);
        skip();
    }

    unsigned char *witness = malloc(CORE_PATTERN_BYTES), *plain = malloc(CORE_PATTERN_BYTES);
    assert_non_null(witness);
    assert_non_null(plain);
    child_fill_pattern(witness, CORE_PATTERN_BYTES, WITNESS_SEED);
    child_fill_pattern(plain, CORE_PATTERN_BYTES, MALLOC_SEED);
    core_search s = {{witness, plain},
                     {witness + CORE_PATTERN_BYTES / 2, plain + CORE_PATTERN_BYTES / 2},
                     {false, false}};
    int fd = open(core, O_RDONLY);
    assert_true(fd >= 0);
    search_core(fd, &s);
    close(fd);
    /* Scrub our copies: a later test's child must not carry them into its own dump. */
    memset(witness, 0, CORE_PATTERN_BYTES);
    memset(plain, 0, CORE_PATTERN_BYTES);
    free(witness);
    free(plain);
    remove_dir(dir);
    assert_true(s.found[1]);  /* the dump is real and the search works: malloc memory is in it */
    assert_false(s.found[0]); /* the witness arena is not */
}

/* ---------------------------------------------------------------------------------------------
 * Wipes at exit, checked by a handler that runs after nalloc's (in a fresh process, so that
 * nalloc's handler is registered after ours)
 * ------------------------------------------------------------------------------------------- */

static unsigned char *exit_probe;
static size_t exit_probe_bytes;

static void check_probe_at_exit(void)
{
    /* Status 0: zeroed; 2: the data is still there. */
    _exit(all_zero(exit_probe, exit_probe_bytes) ? 0 : 2);
}

static int exit_mode(bool wipe_at_exit)
{
    atexit(check_probe_at_exit); /* before nalloc registers its own: runs after it */
    nalloc_arena *w =
        try_arena(NALLOC_KIND_WITNESS, 1 * MiB, 0, wipe_at_exit ? 0 : NALLOC_FLAG_WIPE_AT_EXIT,
                  NULL);
    if (w == NULL)
        return 3;
    exit_probe_bytes = 128 * KiB;
    exit_probe = nalloc_alloc(w, exit_probe_bytes);
    if (exit_probe == NULL)
        return 3;
    memset(exit_probe, 0x77, exit_probe_bytes);
    nalloc_mark m = nalloc_mark_get(w);
    memset(nalloc_alloc(w, 4096), 0x77, 4096);
    if (nalloc_rollback(w, m) != NALLOC_OK) /* released but dirty: the exit wipe must reach it */
        return 3;
    exit_probe_bytes += 4096;
    return 0; /* exit(0) from main: the arena is still alive */
}

static void test_live_witness_is_wiped_at_exit(void **state)
{
    (void)state;
    if (under_valgrind())
        skip(); /* re-executes /proc/self/exe */
    char out[64];
    assert_int_equal(child_exec_self("exit-wipe", out, sizeof out), 0);
    /* Control: without the flag, the same check sees the data, so the check can fail. */
    assert_int_equal(child_exec_self("exit-keep", out, sizeof out), 2);
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "exit-wipe") == 0)
        return exit_mode(true);
    if (argc == 2 && strcmp(argv[1], "exit-keep") == 0)
        return exit_mode(false);
    if (argc == 2 && strcmp(argv[1], "refused-protections") == 0)
        return refused_protections_role();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_witness_mapping_is_locked_nodump_and_wipeonfork),
        cmocka_unit_test(test_scratch_mapping_has_none_of_the_witness_flags),
        cmocka_unit_test(test_forked_child_reads_zeros_from_the_witness),
        cmocka_unit_test(test_forked_child_is_refused_the_parents_secret_arena),
        cmocka_unit_test(test_low_memlock_limit_gives_an_unlocked_arena_and_says_so),
        cmocka_unit_test(test_a_refused_protection_is_announced_once_unless_silenced),
        cmocka_unit_test(test_secret_arena_is_out_of_the_direct_map_where_supported),
        cmocka_unit_test(test_secret_arena_reports_unsupported_without_memfd_secret),
        cmocka_unit_test(test_core_dump_holds_the_malloc_buffer_but_not_the_witness),
        cmocka_unit_test(test_live_witness_is_wiped_at_exit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
