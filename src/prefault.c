/* src/prefault.c - prefault-ahead: one helper thread faults pages in ahead of the bump pointer.
 *
 * A first proof pays for every page it touches: the kernel allocates and zeroes it on first touch
 * (about 1-2 us per 4 KiB page, and more in a virtual machine whose host has not backed that
 * memory yet), and a huge-page fault in an MADV_HUGEPAGE region may compact memory synchronously
 * first. Steady proofs pay none of it, because arenas keep their pages. NALLOC_FLAG_POPULATE moves
 * the whole cost to creation, on the creating thread, all at once. Prefault-ahead moves it off the
 * allocating threads instead: a helper thread keeps the next stretch beyond each arena's offset
 * faulted in (MADV_POPULATE_WRITE, which leaves contents alone, so it is safe on memory other
 * threads use), so that a block is usually resident before anybody writes to it.
 *
 * Nothing here touches the allocation path. The helper polls each registered arena's offset (an
 * atomic load) and keeps [frontier, peak + ahead) faulted in, one stretch (up to a huge page) at a
 * time, round robin over the arenas, yielding the CPU after each millisecond of CPU it uses: one
 * thread, so at most one core, and it gives way to runnable threads on its core. It polls every
 * millisecond while there is work and backs off to a quarter of a second when there is none.
 * `ahead` starts at NALLOC_PREFAULT_AHEAD and grows with the arena's rate: to twice the most the
 * offset moved between two looks, up to 16 times the option. Bytes below the offset belong to
 * their owners, who are writing them already (or to lanes, which have their own frontier): the
 * frontier skips to the offset instead of racing them for the same pages. So the memory the helper
 * faults in beyond what an arena ever used is at most `ahead`, and never beyond its capacity.
 *
 * Huge pages without stalls. A huge-page fault in an MADV_HUGEPAGE region compacts memory
 * synchronously when no huge page is free (THP defrag "madvise", the usual setting), on whichever
 * thread faults; in a virtual machine whose host took free memory back, it also waits for the host
 * to back 2 MiB again. So an arena with huge pages and a helper is not advised as a whole at
 * creation (backing_host.c): the helper advises each stretch just before it faults it in, and any
 * wait happens on the helper. A thread that outruns the helper faults small pages, which never
 * compact. When a huge page costs the helper more than small pages would, it backs off to small
 * pages for a while (judge_huge_page). And when it has nothing else to do, it asks the kernel to
 * collapse what lies below its frontier into huge pages (MADV_COLLAPSE, Linux 6.1; a range already
 * huge costs microseconds), one huge page per quiet poll. Where the kernel lacks MADV_COLLAPSE,
 * small ranges stay small. nalloc_arena_stats_resident shows what the kernel did.
 *
 * Lifetime. The helper is started by the first arena that registers and exits when the last one
 * is unregistered (a later registration starts a new one); at exit (or when the library is
 * unloaded) it is stopped and joined. Destroy unregisters the arena before unmapping it:
 * unregistering takes it off the list and waits while the helper is inside a stretch of it, and
 * the helper reads nothing of an arena it has not found on the list under the lock, so it never
 * touches memory being unmapped (tests/test_prefault.c races the two under ThreadSanitizer).
 *
 * Fork. The child has no helper thread. It keeps no prefaulting for the arenas it inherits: their
 * pages are the parent's until written (copy-on-write) or zeros (wipe-on-fork), and faulting them
 * in ahead would copy memory the child may never use. Those arenas report the flag missing, and
 * get the huge-page advice they were waiting for over the rest of their mapping. An arena the child
 * creates with the flag starts a helper in the child, lazily, like the first one in the parent.
 */
#include "internal.h"
#include "prim.h"

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <time.h>

#define NA_PREFAULT_STRETCH ((size_t)2 << 20) /* bytes per stretch when there is no THP size */
#define NA_PREFAULT_GROWTH 16                 /* `ahead` grows to at most this times the option */
#define NA_PREFAULT_POLL_MIN_MS 1             /* poll interval while there is work */
#define NA_PREFAULT_POLL_MAX_MS 256           /* poll interval after a long quiet spell */

typedef enum helper_state { HELPER_NONE, HELPER_RUNNING } helper_state;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER; /* the prefault lock: all below */
static pthread_cond_t wake;     /* the helper waits on it: work, or a stop */
static pthread_cond_t idle;     /* unregister and stop wait on it: the helper left an arena */
static nalloc_arena *registry;  /* registered arenas, newest first */
static nalloc_arena *busy;      /* the arena whose memory the helper is touching now, or NULL */
static helper_state state;      /* HELPER_RUNNING from its creation until it leaves its loop */
static bool unjoined;           /* a helper thread has exited and nobody has joined it yet */
static bool stopping;           /* the process is exiting: the helper leaves, none starts again */
static pthread_t helper;
static uint64_t stretches;      /* stretches done so far: the round robin's clock */
static bool can_collapse;       /* the kernel knows MADV_COLLAPSE (asked once, at the start) */

static void child_after_fork(void);

static void prepare_fork(void)
{
    pthread_mutex_lock(&lock);
}

static void parent_after_fork(void)
{
    pthread_mutex_unlock(&lock);
}

/* Condition variables that wait on CLOCK_MONOTONIC, so a change of the wall clock neither wakes
 * the helper early nor keeps it asleep. */
static void init_conditions(void)
{
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&wake, &attr);
    pthread_cond_init(&idle, &attr);
    pthread_condattr_destroy(&attr);
}

static void stop_at_exit(void);

static void init_once(void)
{
    init_conditions();
    can_collapse = na_prim_huge_page_size() > 0 && na_prim_collapse(NULL, 0) == 0;
    (void)pthread_atfork(prepare_fork, parent_after_fork, child_after_fork);
    atexit(stop_at_exit); /* a library unloaded with dlclose runs it too */
}

static size_t stretch_size(void)
{
    size_t huge = na_prim_huge_page_size();
    return huge > 0 ? huge : NA_PREFAULT_STRETCH;
}

static size_t round_down(size_t v, size_t align)
{
    return v - v % align;
}

/* ---------------------------------------------------------------------------------------------
 * Choosing work (prefault lock held)
 * ------------------------------------------------------------------------------------------- */

/* Look at the arena's offset, adapt `ahead`, and say the next stretch to fault in, if any:
 * [*begin, *end) in bytes from the base. */
static bool next_stretch(nalloc_arena *a, size_t *begin, size_t *end)
{
    na_prefault *p = &a->prefault;
    size_t page = na_prim_page_size(), stretch = stretch_size();
    size_t offset = na_atomic_load(&a->bump.offset), peak = na_arena_peak(a);
    size_t max_ahead = na_option_get(NA_OPTION_PREFAULT_AHEAD) * NA_PREFAULT_GROWTH;
    if (offset > p->last_offset) {
        size_t grew = offset - p->last_offset;
        if (grew > p->ahead / 2)
            p->ahead = grew > max_ahead / 2 ? max_ahead : 2 * grew;
    }
    p->last_offset = offset;
    /* Bytes below the offset are their owners' to write, and they are at it: faulting them in
     * too would only race them for the same pages. */
    if (offset > p->frontier)
        p->frontier = round_down(offset, page);
    /* peak <= capacity <= limit, and limit is whole pages: nothing here overflows. */
    size_t target = p->ahead < p->limit - peak ? round_down(peak + p->ahead + page - 1, page)
                                               : p->limit;
    if (p->frontier >= target)
        return false;
    /* Up to the next stretch boundary in the address space, so stretches are huge pages. */
    uintptr_t at = a->bump.base + p->frontier;
    size_t to_boundary = stretch - (size_t)(at % stretch);
    *begin = p->frontier;
    *end = target - p->frontier > to_boundary ? p->frontier + to_boundary : target;
    return true;
}

/* The next huge page below the frontier to ask the kernel to collapse, if any. */
static bool next_collapse(nalloc_arena *a, size_t *begin, size_t *end)
{
    na_prefault *p = &a->prefault;
    size_t huge = na_prim_huge_page_size();
    if (!can_collapse || !(a->memory.in_force & NALLOC_FLAG_HUGEPAGES))
        return false;
    /* Whole huge pages only: start at the first boundary at or above the base. */
    uintptr_t base = a->bump.base;
    size_t first = (size_t)((huge - base % huge) % huge);
    if (p->collapsed_to < first)
        p->collapsed_to = first;
    if (p->collapsed_to > p->frontier || p->frontier - p->collapsed_to < huge)
        return false;
    *begin = p->collapsed_to;
    *end = p->collapsed_to + huge;
    return true;
}

/* The registered arena served longest ago that has work of the kind asked for: a stretch to fault
 * in, or a huge page to collapse. */
static nalloc_arena *pick_work(bool collapse, size_t *begin, size_t *end)
{
    nalloc_arena *pick = NULL;
    for (nalloc_arena *a = registry; a != NULL; a = a->prefault.next) {
        size_t b, e;
        if (__atomic_load_n(&a->prefault.stopped, __ATOMIC_RELAXED) != 0)
            continue;
        bool has = collapse ? next_collapse(a, &b, &e) : next_stretch(a, &b, &e);
        if (has && (pick == NULL || a->prefault.served < pick->prefault.served))
            pick = a, *begin = b, *end = e;
    }
    if (pick != NULL)
        pick->prefault.served = ++stretches;
    return pick;
}

/* ---------------------------------------------------------------------------------------------
 * Huge pages, when they come cheap
 * ------------------------------------------------------------------------------------------- */

/* Whether the kernel hands out huge pages cheaply right now is a property of the machine's free
 * memory, not of an arena, so it is judged across arenas (prefault lock held): by the CPU time a
 * whole huge-page stretch took the helper. Faulting in a huge page costs about as much as zeroing
 * it, some 0.1-0.2 ms; one that takes longer than small pages would (NA_PREFAULT_SLOW_S) came out
 * of synchronous compaction, or, in a virtual machine, out of memory the host had taken back (free
 * page reporting), which it backs again one small page at a time. Then small pages are cheaper,
 * and the helper uses them for a while: 1 stretch, then twice as many after each slow retry, up
 * to NA_PREFAULT_BACKOFF_MAX; one fast huge page ends the penalty. Collapsing waits meanwhile. */
#define NA_PREFAULT_SLOW_S 1e-3     /* CPU seconds per 2 MiB: slower than small pages */
#define NA_PREFAULT_BACKOFF_MAX 256 /* small-page stretches after a slow huge page, at most */
static unsigned small_for;          /* stretches to fault in with small pages before trying */
static unsigned backoff = 1;        /* what the next slow huge page sets small_for to */

static bool huge_pages_cheap(void)
{
    return small_for == 0;
}

static void judge_huge_page(double seconds, size_t bytes)
{
    if (seconds * (double)NA_PREFAULT_STRETCH <= NA_PREFAULT_SLOW_S * (double)bytes) {
        backoff = 1;
        return;
    }
    small_for = backoff;
    if (backoff < NA_PREFAULT_BACKOFF_MAX)
        backoff *= 2;
}

/* ---------------------------------------------------------------------------------------------
 * The helper thread
 * ------------------------------------------------------------------------------------------- */

/* Fault [begin, end) of `a` in (prefault lock not held; `a` is `busy`, so it stays mapped), with
 * the huge-page advice just before when `huge`. */
static int fault_in(nalloc_arena *a, size_t begin, size_t end, bool huge)
{
    char *base = (char *)a->bump.base;
    if (huge)
        (void)na_prim_hugepage(base + begin, end - begin);
    return na_prim_prefault(base + begin, end - begin);
}

/* Ask for a huge page over [begin, end) of `a` (prefault lock not held; `a` is `busy`). Only a
 * range whose every page is resident: the kernel would fill the holes with zeros, committing
 * memory nobody used (the part of a block its owner never touched, a lane block that lanes use
 * a little of). EINVAL from the kernel here means nothing was there to collapse; whether it knows
 * the advice at all was asked once (can_collapse). */
static int collapse_one(nalloc_arena *a, size_t begin, size_t end)
{
    char *base = (char *)a->bump.base;
    size_t resident = 0;
    int err = na_prim_resident_pages(base + begin, end - begin, &resident);
    if (err == 0 && resident < (end - begin) / na_prim_page_size())
        err = EAGAIN;
    return err == 0 ? na_prim_collapse(base + begin, end - begin) : err;
}

/* Give up on an arena (prefault lock held): it keeps working, with first-touch faults, and gets
 * its huge-page advice over the rest of its mapping, as an arena without the helper has it. */
static void give_up(nalloc_arena *a, int why)
{
    na_prefault *p = &a->prefault;
    __atomic_store_n(&p->stopped, why, __ATOMIC_RELAXED);
    if (p->defer_huge && p->frontier < p->limit)
        (void)na_prim_hugepage((char *)a->bump.base + p->frontier, p->limit - p->frontier);
    p->defer_huge = false;
}

/* Fault in one stretch of the arena that waited longest; false when no arena has one. Prefault
 * lock held on entry and on return, released while the kernel works; *cpu grows by the CPU time
 * the kernel took. */
static bool prefault_once(double *cpu)
{
    size_t begin = 0, end = 0;
    nalloc_arena *a = pick_work(false, &begin, &end);
    if (a == NULL)
        return false;
    na_prefault *p = &a->prefault;
    bool whole = end - begin == stretch_size() && (a->bump.base + begin) % stretch_size() == 0;
    bool huge = p->defer_huge && huge_pages_cheap();
    if (p->defer_huge && !huge)
        small_for--;
    busy = a;
    pthread_mutex_unlock(&lock);
    double t0 = na_prim_thread_cpu();
    int err = fault_in(a, begin, end, huge);
    double took = na_prim_thread_cpu() - t0;
    pthread_mutex_lock(&lock);
    *cpu += took;
    if (err == 0) {
        p->frontier = end; /* only this thread moves it */
        __atomic_fetch_add(&p->prefaulted, end - begin, __ATOMIC_RELAXED);
        if (huge && whole)
            judge_huge_page(took, end - begin);
    } else if (p->registered) {
        give_up(a, err); /* ENOMEM: the memory is not there; the owners will find out */
    }
    busy = NULL;
    pthread_cond_broadcast(&idle);
    return true;
}

/* Ask the kernel for one huge page below the frontier of the arena that waited longest, if huge
 * pages are cheap now (prefault lock held, released while the kernel works). */
static void collapse_once(void)
{
    size_t begin = 0, end = 0;
    nalloc_arena *a = huge_pages_cheap() ? pick_work(true, &begin, &end) : NULL;
    if (a == NULL)
        return;
    busy = a;
    pthread_mutex_unlock(&lock);
    double t0 = na_prim_thread_cpu();
    int err = collapse_one(a, begin, end);
    double took = na_prim_thread_cpu() - t0;
    pthread_mutex_lock(&lock);
    /* Failed or not: no huge page to be had now is no reason to come back to this one. */
    a->prefault.collapsed_to = end;
    if (err == 0)
        __atomic_fetch_add(&a->prefault.collapsed, end - begin, __ATOMIC_RELAXED);
    if (err == 0 || took > NA_PREFAULT_SLOW_S) /* a quick refusal says nothing about the cost */
        judge_huge_page(took, end - begin);
    busy = NULL;
    pthread_cond_broadcast(&idle);
}

/* The helper's loop. While there are stretches to fault in it does them back to back, yielding
 * the CPU whenever it has used NA_PREFAULT_SLICE_S of it since it last did; then it polls, at
 * 1 ms and backing off to 256 ms while nothing changes, and collapses one huge page per quiet
 * poll: a trickle (8 in the first quarter second, then 4 a second) that a thread touching the
 * same range while the kernel copies it (it waits) hardly notices. */
#define NA_PREFAULT_SLICE_S 1e-3
static void *helper_main(void *unused)
{
    (void)unused;
    unsigned poll_ms = NA_PREFAULT_POLL_MIN_MS;
    double since_yield = 0;
    pthread_mutex_lock(&lock);
    while (!stopping && registry != NULL) {
        if (prefault_once(&since_yield)) {
            poll_ms = NA_PREFAULT_POLL_MIN_MS;
            if (since_yield >= NA_PREFAULT_SLICE_S) {
                /* Let the threads that share this core run first. */
                pthread_mutex_unlock(&lock);
                sched_yield();
                pthread_mutex_lock(&lock);
                since_yield = 0;
            }
            continue;
        }
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_nsec += (long)poll_ms * 1000000L;
        until.tv_sec += until.tv_nsec / 1000000000L;
        until.tv_nsec %= 1000000000L;
        if (pthread_cond_timedwait(&wake, &lock, &until) == ETIMEDOUT && !stopping)
            collapse_once();
        if (poll_ms < NA_PREFAULT_POLL_MAX_MS)
            poll_ms *= 2;
        since_yield = 0;
    }
    state = HELPER_NONE;
    unjoined = true;
    pthread_cond_broadcast(&idle);
    pthread_mutex_unlock(&lock);
    return NULL;
}

/* Start the helper if none runs (prefault lock held). 0 or an errno value. */
static int start_helper(void)
{
    if (state == HELPER_RUNNING)
        return 0;
    if (stopping)
        return ECANCELED;
    if (unjoined) { /* it has left its loop and needs the lock no more: this returns promptly */
        pthread_join(helper, NULL);
        unjoined = false;
    }
    /* The helper takes no signals: they go to the program's own threads, as they would without
     * nalloc. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int err = pthread_create(&helper, NULL, helper_main, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (err != 0)
        return err;
    (void)pthread_setname_np(helper, "nalloc-prefault");
    state = HELPER_RUNNING;
    return 0;
}

static void stop_at_exit(void)
{
    pthread_mutex_lock(&lock);
    stopping = true;
    pthread_cond_signal(&wake);
    while (state == HELPER_RUNNING)
        pthread_cond_wait(&idle, &lock);
    if (unjoined) {
        pthread_join(helper, NULL);
        unjoined = false;
    }
    pthread_mutex_unlock(&lock);
}

/* In the child (prefault lock held since prepare_fork, by this thread, the child's only one). */
static void child_after_fork(void)
{
    for (nalloc_arena *a = registry, *next; a != NULL; a = next) {
        next = a->prefault.next;
        a->prefault.registered = false;
        a->prefault.next = NULL;
        if (__atomic_load_n(&a->prefault.stopped, __ATOMIC_RELAXED) == 0)
            give_up(a, -1);
    }
    registry = NULL;
    busy = NULL;
    state = HELPER_NONE;
    unjoined = false; /* the parent's helper is no thread of ours: never join it */
    init_conditions(); /* waiters of the parent's do not exist here */
    pthread_mutex_unlock(&lock);
}

/* ---------------------------------------------------------------------------------------------
 * Registration
 * ------------------------------------------------------------------------------------------- */

int na_prefault_register(nalloc_arena *a)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    a->prefault.defer_huge = a->memory.huge_deferred; /* the backing's call; the helper's later */
    if (!(a->memory.in_force & NALLOC_FLAG_PREFAULT_AHEAD) || (a->memory.in_force & NALLOC_FLAG_POPULATE) ||
        a->memory.pinned || !a->memory.backing->host_accessible)
        return 0; /* not asked for, or every page is resident already */
    pthread_once(&once, init_once);
    na_prefault *p = &a->prefault;
    size_t page = na_prim_page_size();
    p->limit = a->bump.capacity % page == 0 ? a->bump.capacity
                                             : round_down(a->bump.capacity, page) + page;
    p->ahead = na_option_get(NA_OPTION_PREFAULT_AHEAD);
    pthread_mutex_lock(&lock);
    /* A lane's memory is its parent's, advised as the parent's is: stretch by stretch, by
     * whichever of the two faults it in. */
    if (a->parent != NULL && a->parent->prefault.defer_huge)
        p->defer_huge = true;
    int err = start_helper();
    if (err == 0) {
        p->next = registry;
        registry = a;
        p->registered = true;
        pthread_cond_signal(&wake);
    }
    pthread_mutex_unlock(&lock);
    return err;
}

void na_prefault_unregister(nalloc_arena *a)
{
    na_prefault *p = &a->prefault;
    if (!(a->memory.in_force & NALLOC_FLAG_PREFAULT_AHEAD))
        return; /* never registered: no need for the lock */
    pthread_mutex_lock(&lock);
    if (p->registered) {
        nalloc_arena **link = &registry;
        while (*link != a)
            link = &(*link)->prefault.next;
        *link = p->next;
        p->next = NULL;
        p->registered = false;
        if (registry == NULL)
            pthread_cond_signal(&wake); /* nothing left: the helper leaves */
    }
    while (busy == a)
        pthread_cond_wait(&idle, &lock);
    pthread_mutex_unlock(&lock);
}

unsigned na_prefault_lost(const nalloc_arena *a)
{
    if ((a->memory.in_force & NALLOC_FLAG_PREFAULT_AHEAD) &&
        __atomic_load_n(&a->prefault.stopped, __ATOMIC_RELAXED) != 0)
        return NALLOC_FLAG_PREFAULT_AHEAD;
    return 0;
}
