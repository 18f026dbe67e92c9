/* tests/child.h - checks that run in another process (with tests/testutil.h's run_in_child and
 * run_self).
 *
 * Some promises can only be checked from outside the process that made them: what a forked child
 * sees, what a core dump holds, what a process does at exit, whether a fresh process (with other
 * ASLR addresses) lays blocks out the same way. Code running in a child must not use cmocka's
 * assertions (a failure would jump back into the child's copy of the test runner), so this header
 * has what such code needs instead:
 *
 *  - CHILD_CHECK(x): on failure, a line on stdout (run_in_child silences stderr) and exit
 *    status 1. CHILD_SKIP is the status of a child that cannot run its check here.
 *  - try_arena(): an arena, or NULL, without asserting; page_size().
 *  - child_exec_self(): run_self for a child whose stdout is the result: it is captured.
 *  - child_fill_pattern(): a pattern that exists nowhere else in memory.
 */
#ifndef NALLOC_TESTS_CHILD_H
#define NALLOC_TESTS_CHILD_H

#include "testutil.h"

#include <stdio.h>

#define CHILD_CHECK(x)                                                                           \
    do {                                                                                         \
        if (!(x)) {                                                                              \
            printf("child %d: %s:%d: check failed: %s\n", (int)getpid(), __FILE__, __LINE__,    \
                   #x);                                                                          \
            fflush(stdout);                                                                      \
            _exit(1);                                                                            \
        }                                                                                        \
    } while (0)

#define CHILD_SKIP 77 /* a child's exit status: the environment cannot run this check */

static inline int child_exit_code(int status)
{
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static inline size_t page_size(void)
{
    return (size_t)sysconf(_SC_PAGESIZE);
}

/* A host arena of `kind` with its default flags plus `add` minus `remove`, at `fixed` (NULL:
 * anywhere); NULL if creation failed. */
static inline nalloc_arena *try_arena(nalloc_kind kind, size_t capacity, unsigned add,
                                      unsigned remove, void *fixed)
{
    nalloc_arena_config c;
    nalloc_arena_config_init(&c, kind, NALLOC_MEMORY_HOST, capacity);
    c.flags = (c.flags | add) & ~remove;
    c.fixed_address = fixed;
    nalloc_arena *a = NULL;
    return nalloc_arena_create(&c, &a) == NALLOC_OK ? a : NULL;
}

/* Run /proc/self/exe with the single argument `role`; up to len - 1 bytes of its stdout in buf,
 * NUL-terminated. Returns its exit code, or -1 if it did not exit normally. */
static inline int child_exec_self(const char *role, char *buf, size_t len)
{
    int fds[2];
    if (pipe(fds) != 0)
        return -1;
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        dup2(fds[1], STDOUT_FILENO);
        close(fds[0]);
        close(fds[1]);
        execl("/proc/self/exe", "child", role, (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    size_t used = 0;
    for (;;) {
        char sink[4096];
        char *to = used + 1 < len ? buf + used : sink;
        size_t room = used + 1 < len ? len - 1 - used : sizeof sink;
        ssize_t n = read(fds[0], to, room);
        if (n <= 0)
            break;
        if (to != sink)
            used += (size_t)n;
    }
    buf[used] = '\0';
    close(fds[0]);
    int status;
    while (waitpid(pid, &status, 0) < 0) {
    }
    return child_exit_code(status);
}

/* Fill [dst, dst + bytes) with a pseudo-random pattern from `seed` (not 0), word by word, so the
 * pattern exists nowhere else in memory unless it is copied. bytes: a multiple of 8. */
static inline void child_fill_pattern(void *dst, size_t bytes, uint64_t seed)
{
    volatile uint64_t *w = (volatile uint64_t *)dst;
    for (size_t i = 0; i < bytes / 8; i++)
        w[i] = test_rand(&seed);
}

#endif /* NALLOC_TESTS_CHILD_H */
