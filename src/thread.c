/* src/thread.c - a token for each thread that uses nalloc, and the work its exit leaves behind.
 *
 * Two kinds of per-thread state outlive the calls that create them: a thread's statistics slots
 * in live arenas, with the chunks it allocates from (stats.c, tcache.c, blocks.c), and the page
 * that holds the text of its last failure (status.c). When the thread exits, its chunks must go
 * back to their arenas, its slots be freed for other threads, and the page be unmapped. One
 * pthread key's destructor does all of it, armed by the thread's first call that needs it: its
 * first slot claim, or its first failure.
 *
 * This file sits below the ones whose state it cleans up, so it does not call them: they tell it
 * what to run (na_thread_at_exit) before they hand the thread anything that needs cleaning up.
 * Arming costs pthread calls, once per thread; after that na_thread_token is a thread-local load,
 * and a thread that has claimed a slot (allocated) has its exit armed already, which keeps a
 * failing allocation in a signal handler free of pthread calls (nalloc.h, "Signals").
 */
#include "internal.h"

static NA_THREAD_LOCAL size_t thread_token; /* 0 until the thread's exit is armed, and after it ran */

static size_t next_token = 1;
static pthread_key_t exit_key;
static pthread_once_t exit_key_once = PTHREAD_ONCE_INIT;
static void (*exit_steps[NA_THREAD_EXIT_STEPS])(size_t token); /* atomic loads and stores */

void na_thread_at_exit(na_thread_exit_step step, void (*fn)(size_t token))
{
    __atomic_store_n(&exit_steps[step], fn, __ATOMIC_RELAXED);
}

static void thread_exit(void *unused)
{
    (void)unused;
    for (unsigned i = 0; i < NA_THREAD_EXIT_STEPS; i++) {
        void (*fn)(size_t) = __atomic_load_n(&exit_steps[i], __ATOMIC_RELAXED);
        if (fn != NULL)
            fn(thread_token);
    }
    /* A use after this (from another thread-local destructor that runs after ours) takes a new
     * token and arms the exit again: the C library repeats destructors whose value was set
     * again, so what that use leaves is cleaned up too. */
    thread_token = 0;
}

static void make_exit_key(void)
{
    /* If this fails, slots of exited threads are simply never reused. */
    (void)pthread_key_create(&exit_key, thread_exit);
}

size_t na_thread_token(void)
{
    if (na_unlikely(thread_token == 0)) {
        thread_token = __atomic_fetch_add(&next_token, 1, __ATOMIC_RELAXED);
        pthread_once(&exit_key_once, make_exit_key);
        (void)pthread_setspecific(exit_key, (void *)1); /* non-NULL, so the destructor runs */
    }
    return thread_token;
}
