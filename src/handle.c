/* src/handle.c - where arena and context headers live.
 *
 * A header is not malloc'd: it lives in a slot of a process-wide slab that is never returned to
 * the OS. A destroyed arena's slot keeps a dead magic number, so a later call through the stale
 * pointer reads mapped memory, finds the magic wrong and is refused with NALLOC_ERR_STATE instead
 * of reading freed memory (which AddressSanitizer would report, and which could crash). Freed
 * slots are reused oldest-first, which keeps that detection window as long as the slab allows;
 * once a slot is reused, a stale pointer aliases the new arena and cannot be told apart. The same
 * slab lets thread exit and process exit visit every live arena without a separate registry.
 *
 * Slots are NA_HANDLE_SIZE bytes, cache-line aligned, in chunks of NA_HANDLE_CHUNK mapped as
 * needed. Creation and destruction take one mutex; nothing on the allocation path does. The mutex
 * is held across fork (pthread_atfork), so a child forked while another thread held it does not
 * inherit it locked and hang in its exit-time wipe or its first arena creation. These handlers are
 * installed by the first na_handle_alloc, so they run before any that code above installs after
 * taking a slot: arena.c's child handler then looks at every slot and retires the arenas the
 * child did not inherit.
 *
 * Other locks that a forked child may need (each arena's stretch lock, which routed malloc and
 * free take; the ownership registry's) are held across fork the same way, by hooks code above
 * sets (na_handle_fork_slots, na_handle_fork_global), taken after the handle lock and released
 * before it: the order in which the rest of the library nests them (an arena is retired under the
 * handle lock, and its retirement takes both). Handlers installed separately would run before
 * this one (prepare handlers run in the reverse order of installation) and take them the other
 * way round.
 */
#include "internal.h"

#include <string.h>
#include <sys/mman.h>

#define NA_HANDLE_SIZE                                                                           \
    ((sizeof(struct nalloc_arena) + NA_CACHE_LINE - 1) & ~(size_t)(NA_CACHE_LINE - 1))
#define NA_HANDLE_CHUNK 32

typedef struct chunk {
    struct chunk *next; /* older chunk */
    unsigned used;      /* slots handed out at least once, from the front */
    char pad[NA_CACHE_LINE - sizeof(struct chunk *) - sizeof(unsigned)];
    /* NA_HANDLE_CHUNK slots follow */
} chunk;

/* A free slot: the dead magic first (what a stale caller reads), then the queue link. */
typedef struct free_slot {
    uint64_t magic;
    struct free_slot *next;
} free_slot;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static chunk *chunks;                       /* newest first */
static free_slot *free_head, *free_tail;    /* FIFO: the oldest freed slot is reused first */

static void *slot_at(chunk *c, unsigned i)
{
    return (char *)(c + 1) + (size_t)i * NA_HANDLE_SIZE;
}

/* The fork hooks (atomic loads and stores): per slot, then once. */
static void (*fork_lock_slot)(void *handle), (*fork_unlock_slot)(void *handle);
static void (*fork_lock_global)(void), (*fork_unlock_global)(void);

void na_handle_fork_slots(void (*lock_slot)(void *handle), void (*unlock_slot)(void *handle))
{
    __atomic_store_n(&fork_unlock_slot, unlock_slot, __ATOMIC_RELAXED);
    __atomic_store_n(&fork_lock_slot, lock_slot, __ATOMIC_RELAXED);
}

void na_handle_fork_global(void (*lock_global)(void), void (*unlock_global)(void))
{
    __atomic_store_n(&fork_unlock_global, unlock_global, __ATOMIC_RELAXED);
    __atomic_store_n(&fork_lock_global, lock_global, __ATOMIC_RELAXED);
}

static void lock_for_fork(void)
{
    pthread_mutex_lock(&lock);
    void (*each)(void *) = __atomic_load_n(&fork_lock_slot, __ATOMIC_RELAXED);
    for (chunk *c = chunks; each != NULL && c != NULL; c = c->next)
        for (unsigned i = 0; i < c->used; i++)
            each(slot_at(c, i));
    void (*global)(void) = __atomic_load_n(&fork_lock_global, __ATOMIC_RELAXED);
    if (global != NULL)
        global();
}

/* In the parent and in the child (the forking thread holds every lock, in both). A hook that was
 * set after the prepare ran is told about slots it did not lock: each unlock hook checks. */
static void unlock_after_fork(void)
{
    void (*global)(void) = __atomic_load_n(&fork_unlock_global, __ATOMIC_RELAXED);
    if (global != NULL)
        global();
    void (*each)(void *) = __atomic_load_n(&fork_unlock_slot, __ATOMIC_RELAXED);
    for (chunk *c = chunks; each != NULL && c != NULL; c = c->next)
        for (unsigned i = 0; i < c->used; i++)
            each(slot_at(c, i));
    pthread_mutex_unlock(&lock);
}

static void install_fork_handlers(void)
{
    (void)pthread_atfork(lock_for_fork, unlock_after_fork, unlock_after_fork);
}

void *na_handle_alloc(void)
{
    static pthread_once_t fork_once = PTHREAD_ONCE_INIT;
    pthread_once(&fork_once, install_fork_handlers);
    void *h = NULL;
    pthread_mutex_lock(&lock);
    if (chunks != NULL && chunks->used < NA_HANDLE_CHUNK) {
        h = slot_at(chunks, chunks->used++);
    } else if (free_head != NULL) {
        free_slot *f = free_head;
        free_head = f->next;
        if (free_head == NULL)
            free_tail = NULL;
        h = f;
    } else {
        size_t bytes = sizeof(chunk) + NA_HANDLE_CHUNK * NA_HANDLE_SIZE;
        void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p != MAP_FAILED) {
            chunk *c = p;
            c->next = chunks;
            chunks = c;
            h = slot_at(c, c->used++);
        }
    }
    pthread_mutex_unlock(&lock);
    if (h != NULL) {
        /* Other threads may be looking at this slot meanwhile (na_handle_foreach callbacks; a
         * lookup holding a stale pointer to the arena it held): they load its magic word
         * atomically and read nothing else of a slot that is not alive, so that word is zeroed
         * atomically, the rest plainly. */
        __atomic_store_n((uint64_t *)h, 0, __ATOMIC_RELAXED);
        memset((char *)h + sizeof(uint64_t), 0, NA_HANDLE_SIZE - sizeof(uint64_t));
    }
    return h;
}

void na_handle_free(void *handle)
{
    free_slot *f = handle;
    pthread_mutex_lock(&lock);
    __atomic_store_n(&f->magic, NA_MAGIC_DEAD, __ATOMIC_RELEASE);
    f->next = NULL;
    if (free_tail != NULL)
        free_tail->next = f;
    else
        free_head = f;
    free_tail = f;
    pthread_mutex_unlock(&lock);
}

void na_handle_exclusive(void (*fn)(void *handle), void *handle)
{
    pthread_mutex_lock(&lock);
    fn(handle);
    pthread_mutex_unlock(&lock);
}

void na_handle_foreach(void (*fn)(void *handle, void *arg), void *arg)
{
    pthread_mutex_lock(&lock);
    for (chunk *c = chunks; c != NULL; c = c->next)
        for (unsigned i = 0; i < c->used; i++)
            fn(slot_at(c, i), arg);
    pthread_mutex_unlock(&lock);
}
