/* src/route.c - routes and the malloc family: a whole library's allocations in an arena.
 *
 * A prover links C and C++ libraries that call malloc and free themselves. A route says "from here
 * until the route ends, this thread's allocations come from that arena": nalloc_route_push and
 * nalloc_route_pop keep a small stack per thread (the innermost route wins; a NULL route steps out
 * to the system allocator), and the malloc family below serves each request from the innermost
 * route's arena, or from the system allocator when there is no route or the arena is full (the
 * arena counts those fallbacks). nalloc_free recognises arena blocks by address (nalloc_owner,
 * owner.c) wherever and whenever they are freed, and gives everything else to the system
 * allocator; blocks.c gives arena blocks back in any order.
 *
 * The route stack is a fixed array in initial-exec thread-local storage: nothing here allocates,
 * so the malloc family can stand in for malloc itself (the override library, override.c), and a
 * route can be pushed inside a thread-local destructor or at exit. NALLOC_ROUTE_DEPTH routes deep
 * is the limit; a deeper push is refused with NALLOC_ERR_NOMEM and routes nothing.
 *
 * A process-wide default route (nalloc_route_set_default; the override library's NALLOC_ROUTE)
 * serves threads whose own stack is empty.
 *
 * "The system allocator" is glibc's malloc reached under its internal names (__libc_malloc...),
 * so that it stays the system allocator when the override library has replaced malloc.
 */
#include "blocks.h"

#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <string.h>

#define NALLOC_ROUTE_DEPTH 16

typedef struct route_stack {
    nalloc_arena *top;    /* the innermost route's arena; NULL: the system allocator, or none */
    na_stat_slot *slot;   /* this thread's slot in `top` (claimed at the push), or NULL */
    uint64_t uid;         /* top's uid at the push while `slot` is this thread's there, else 0:
                             the inline paths use `slot` only while top->uid matches it (a
                             handle reused by a newer arena is another arena) */
    unsigned depth;       /* routes pushed */
    unsigned pad;
    nalloc_arena *arenas[NALLOC_ROUTE_DEPTH];
    na_stat_slot *slots[NALLOC_ROUTE_DEPTH]; /* NULL once the thread's exit freed its slots */
    uint64_t uids[NALLOC_ROUTE_DEPTH];       /* each arena's uid at its push; 0: a NULL route */
} route_stack;

static NA_THREAD_LOCAL route_stack routes;
static nalloc_arena *default_route; /* atomic; NULL: the system allocator */
static uint64_t default_uid;        /* atomic; default_route's uid when it was set */

/* ---------------------------------------------------------------------------------------------
 * The system allocator
 * ------------------------------------------------------------------------------------------- */

/* Under AddressSanitizer or ThreadSanitizer malloc is the sanitizer's: it intercepts the public
 * names and some internal ones (__libc_memalign), not others (__libc_free), so the internal names
 * would mix two allocators. The public names are the system allocator there (the override library
 * is never loaded into a sanitized program). */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define NA_SYS_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define NA_SYS_SANITIZED 1
#endif
#endif

#if defined(__GLIBC__) && !defined(NA_SYS_SANITIZED)
extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t count, size_t size);
extern void *__libc_realloc(void *ptr, size_t size);
extern void *__libc_memalign(size_t align, size_t size);
extern void __libc_free(void *ptr);
#define sys_malloc __libc_malloc
#define sys_calloc __libc_calloc
#define sys_realloc __libc_realloc
#define sys_memalign __libc_memalign
#define sys_free __libc_free
#elif defined(__GLIBC__)
#define sys_malloc malloc
#define sys_calloc calloc
#define sys_realloc realloc
#define sys_memalign memalign /* any size, as __libc_memalign (aligned_alloc may want multiples) */
#define sys_free free
#else
#define sys_malloc malloc
#define sys_calloc calloc
#define sys_realloc realloc
#define sys_memalign aligned_alloc
#define sys_free free
#endif

void *na_sys_malloc(size_t size)
{
    return sys_malloc(size);
}

void na_sys_free(void *ptr)
{
    sys_free(ptr);
}

/* glibc's own malloc_usable_size: it has no internal name, so it is looked up in libc itself
 * (not by RTLD_NEXT, which from here may find the override library's). */
static size_t (*sys_usable_size_fn)(void *);
static pthread_once_t sys_usable_once = PTHREAD_ONCE_INIT;

static void find_sys_usable_size(void)
{
#if defined(NA_SYS_SANITIZED)
    sys_usable_size_fn = malloc_usable_size; /* the sanitizer's, for its blocks */
    return;
#endif
    void *libc = dlopen("libc.so.6", RTLD_LAZY | RTLD_NOLOAD);
    if (libc != NULL) {
        *(void **)&sys_usable_size_fn = dlsym(libc, "malloc_usable_size");
        dlclose(libc);
    }
}

/* Looked up while the library loads, not on the first call: a first call from a thread racing a
 * dlopen would wait for the loader's lock while holding the once-guard, and a constructor of the
 * library being opened that asks for a usable size would wait for the guard: a deadlock, even
 * with nothing routed. (The loader's lock is recursive, so the lookup is safe in a constructor.) */
__attribute__((constructor)) static void find_sys_usable_size_at_load(void)
{
    pthread_once(&sys_usable_once, find_sys_usable_size);
}

static size_t sys_usable_size(void *ptr)
{
    pthread_once(&sys_usable_once, find_sys_usable_size);
    return sys_usable_size_fn != NULL ? sys_usable_size_fn(ptr) : 0;
}

/* ---------------------------------------------------------------------------------------------
 * Routes
 * ------------------------------------------------------------------------------------------- */

/* Cache the innermost route (top, slot, uid) from the stack. */
static void load_top(void)
{
    unsigned d = routes.depth;
    routes.top = d > 0 ? routes.arenas[d - 1] : NULL;
    routes.slot = d > 0 ? routes.slots[d - 1] : NULL;
    routes.uid = routes.slot != NULL ? routes.uids[d - 1] : 0;
}

/* The thread's exit (thread.c), just before its slots are freed for other threads to claim: the
 * route stack stops naming them. A route left pushed (a thread-local destructor that runs after
 * ours may still allocate) serves on through the slot that allocation claims afresh. */
static void forget_slots(size_t token)
{
    (void)token;
    for (unsigned i = 0; i < routes.depth; i++)
        routes.slots[i] = NULL;
    load_top();
}

nalloc_status nalloc_route_push(nalloc_arena *arena)
{
    static const char call[] = "nalloc_route_push";
    na_stat_slot *slot = NULL;
    if (arena != NULL) {
        if (na_arena_check(arena) != NALLOC_OK)
            return na_arena_refuse(arena, call);
        if (!arena->memory.backing->host_accessible) /* blocks carry headers: host or pinned only */
            return na_fail(NALLOC_ERR_INVALID, call,
                           "arena \"%s\" is a device arena: routes serve host memory", arena->name);
        na_thread_at_exit(NA_THREAD_EXIT_ROUTES, forget_slots);
        slot = na_stat_slot_of(arena); /* claimed now, not on the first allocation */
    }
    if (routes.depth == NALLOC_ROUTE_DEPTH)
        return na_fail(NALLOC_ERR_NOMEM, call, "%u routes are pushed already, the most a thread "
                                               "can have", (unsigned)NALLOC_ROUTE_DEPTH);
    routes.arenas[routes.depth] = arena;
    routes.slots[routes.depth] = slot;
    routes.uids[routes.depth] = arena != NULL ? arena->uid : 0;
    routes.depth++;
    load_top();
    return NALLOC_OK;
}

nalloc_status nalloc_route_pop(void)
{
    if (routes.depth == 0)
        return na_fail(NALLOC_ERR_STATE, "nalloc_route_pop", "no route is pushed on this thread");
    routes.depth--;
    load_top();
    return NALLOC_OK;
}

size_t nalloc_route_depth(void)
{
    return routes.depth;
}

/* Is `a` the innermost route's arena, alive, still the one that was pushed, and with this thread's
 * slot in it at hand (routes.slot)? The inline paths' test. */
static inline bool is_route_arena(const nalloc_arena *a)
{
    return a == routes.top && na_likely(na_arena_alive(a)) && na_likely(a->uid == routes.uid);
}

/* This thread's slot in `a` (alive). */
static inline na_stat_slot *slot_in(nalloc_arena *a)
{
    return is_route_arena(a) ? routes.slot : na_stat_slot_of(a);
}

/* The arena this thread's allocations go to now: the innermost route's (with none pushed, the
 * default route's) while it is alive and still the arena routed to (a destroyed arena's handle
 * may hold a newer one by now); NULL for the system allocator. */
static inline nalloc_arena *route_target(void)
{
    nalloc_arena *a;
    uint64_t uid;
    if (na_likely(routes.depth > 0)) {
        a = routes.top;
        uid = routes.uids[routes.depth - 1];
    } else {
        a = __atomic_load_n(&default_route, __ATOMIC_ACQUIRE);
        uid = __atomic_load_n(&default_uid, __ATOMIC_RELAXED);
    }
    return a != NULL && na_arena_alive(a) && a->uid == uid ? a : NULL;
}

nalloc_arena *nalloc_route_current(void)
{
    return route_target();
}

nalloc_status nalloc_route_set_default(nalloc_arena *arena)
{
    static const char call[] = "nalloc_route_set_default";
    if (arena != NULL) {
        if (na_arena_check(arena) != NALLOC_OK)
            return na_arena_refuse(arena, call);
        if (!arena->memory.backing->host_accessible)
            return na_fail(NALLOC_ERR_INVALID, call,
                           "arena \"%s\" is a device arena: routes serve host memory", arena->name);
    }
    /* A reader that sees the new arena sees its uid; one that pairs the old arena with the new
     * uid (a set racing its malloc) serves that call from the system allocator. */
    __atomic_store_n(&default_uid, arena != NULL ? arena->uid : 0, __ATOMIC_RELAXED);
    __atomic_store_n(&default_route, arena, __ATOMIC_RELEASE);
    return NALLOC_OK;
}

nalloc_route_scope nalloc_route_scope_begin(nalloc_arena *arena)
{
    return nalloc_route_push(arena) == NALLOC_OK ? routes.depth : 0;
}

void nalloc_route_scope_end(const nalloc_route_scope *scope)
{
    /* Back to below the scope, even if code inside left routes pushed. */
    if (*scope != 0)
        while (routes.depth >= *scope)
            (void)nalloc_route_pop();
}

/* ---------------------------------------------------------------------------------------------
 * The malloc family
 * ------------------------------------------------------------------------------------------- */

void *nalloc_arena_malloc(nalloc_arena *arena, size_t size, size_t align)
{
    static const char call[] = "nalloc_arena_malloc";
    if (na_arena_check(arena) != NALLOC_OK) {
        na_arena_refuse(arena, call);
        return NULL;
    }
    if (align != 0 && !nalloc_is_pow2(align)) {
        na_fail(NALLOC_ERR_INVALID, call, "alignment %zu is not a power of two", align);
        return NULL;
    }
    if (!arena->memory.backing->host_accessible) {
        na_fail(NALLOC_ERR_INVALID, call, "arena \"%s\" is a device arena: malloc-family blocks "
                                          "carry host-side headers", arena->name);
        return NULL;
    }
    void *p = na_block_alloc_fast(arena, na_stat_slot_of(arena), size, align);
    if (p == NULL && (p = na_block_alloc(arena, size, align)) == NULL) {
        size_t offset = na_atomic_load(&arena->bump.offset);
        na_fail(NALLOC_ERR_NOMEM, call, "%zu bytes requested, %zu free in arena \"%s\"", size,
                arena->bump.capacity - offset, arena->name);
    }
    return p;
}

/* `size` bytes at `align` (0: the arena's policy) from arena `a` (route_target()'s), or, when it
 * has no room (counted) or there is none, from the system allocator. */
static void *arena_or_system(nalloc_arena *a, size_t size, size_t align)
{
    if (na_likely(a != NULL)) {
        void *p = na_block_alloc_fast(a, slot_in(a), size, align);
        if (na_likely(p != NULL))
            return p;
        p = na_block_alloc(a, size, align);
        if (p != NULL)
            return p;
        __atomic_fetch_add(&a->fallbacks, 1, __ATOMIC_RELAXED);
    }
    return align == 0 ? sys_malloc(size) : sys_memalign(align, size);
}

/* The routed half of nalloc_malloc, out of line so that the unrouted call stays a jump to the
 * system allocator with nothing saved on the way. */
static __attribute__((noinline)) void *routed_malloc(size_t size)
{
    return arena_or_system(route_target(), size, 0);
}

/* A block from arena `a` for the caller's own fallback logic: NULL (counted as a fallback when
 * the arena was full) means "use your own allocator". */
static __attribute__((noinline)) void *routed_only(nalloc_arena *a, size_t size, size_t align,
                                                   bool zeroed)
{
    void *p = na_block_alloc_fast(a, slot_in(a), size, align);
    if (p == NULL && (p = na_block_alloc(a, size, align)) == NULL) {
        __atomic_fetch_add(&a->fallbacks, 1, __ATOMIC_RELAXED);
        return NULL;
    }
    if (zeroed)
        na_block_zero(a, p, size);
    return p;
}

void *nalloc_routed_alloc(size_t size, size_t align)
{
    nalloc_arena *a = route_target();
    if (na_likely(a == NULL) || (align != 0 && !nalloc_is_pow2(align)))
        return NULL;
    /* The innermost route's own chunk first, inline: the whole cost of a routed allocation. */
    if (na_likely(is_route_arena(a))) {
        void *p = na_block_alloc_fast(a, routes.slot, size, align);
        if (na_likely(p != NULL))
            return p;
    }
    return routed_only(a, size, align, false);
}

void *nalloc_routed_alloc_zeroed(size_t size, size_t align)
{
    nalloc_arena *a = route_target();
    if (na_likely(a == NULL) || (align != 0 && !nalloc_is_pow2(align)))
        return NULL;
    return routed_only(a, size, align, true);
}

void *nalloc_malloc(size_t size)
{
    /* Routed: the innermost route's chunk, inline (the arena alive: its memory is mapped). */
    nalloc_arena *a = routes.top;
    if (na_likely(a != NULL)) {
        if (na_likely(is_route_arena(a))) {
            void *p = na_block_alloc_fast(a, routes.slot, size, 0);
            if (na_likely(p != NULL))
                return p;
        }
        return routed_malloc(size);
    }
    /* Unrouted (or a NULL route): the default route, else the system allocator. */
    if (routes.depth == 0 && __atomic_load_n(&default_route, __ATOMIC_RELAXED) != NULL)
        return routed_malloc(size);
    return sys_malloc(size);
}

void *nalloc_aligned_alloc(size_t align, size_t size)
{
    if (!nalloc_is_pow2(align)) {
        errno = EINVAL;
        return NULL;
    }
    return arena_or_system(route_target(), size, align);
}

int nalloc_posix_memalign(void **out, size_t align, size_t size)
{
    if (out == NULL)
        return EINVAL;
    if (!nalloc_is_pow2(align) || align % sizeof(void *) != 0)
        return EINVAL;
    void *p = arena_or_system(route_target(), size, align);
    if (p == NULL)
        return ENOMEM;
    *out = p;
    return 0;
}

void *nalloc_calloc(size_t count, size_t size)
{
    size_t bytes;
    if (__builtin_mul_overflow(count, size, &bytes)) {
        errno = ENOMEM;
        return NULL;
    }
    nalloc_arena *a = route_target();
    if (a != NULL) {
        void *p = na_block_alloc(a, bytes, 0);
        if (p != NULL) {
            na_block_zero(a, p, bytes);
            return p;
        }
        __atomic_fetch_add(&a->fallbacks, 1, __ATOMIC_RELAXED);
    }
    return sys_calloc(count, size);
}

/* Record why `ptr`, which lies in arena `a`, was refused by `call`: no live block starts there
 * (NALLOC_ERR_INVALID), or it was freed already (NALLOC_ERR_STATE). */
static nalloc_status block_refused(nalloc_status st, const char *call, const nalloc_arena *a,
                                   const void *ptr)
{
    size_t offset = (size_t)((uintptr_t)ptr - a->bump.base);
    if (st == NALLOC_ERR_STATE)
        return na_fail(st, call, "the block at offset %zu of arena \"%s\" was freed already",
                       offset, a->name);
    return na_fail(st, call, "offset %zu of arena \"%s\" is not the start of a malloc-family "
                             "block (an interior pointer, or a nalloc_alloc block)", offset, a->name);
}

/* Free `ptr`, a block of arena `a`, or say why not (never passing it on). */
static void arena_free(nalloc_arena *a, void *ptr)
{
    if (na_likely(na_block_free_fast(a, slot_in(a), ptr)))
        return;
    nalloc_status st = na_block_free(a, ptr);
    if (st == NALLOC_OK)
        na_blocks_freed(a);
    else /* reported, never passed on to the system allocator */
        block_refused(st, "nalloc_free", a, ptr);
}

/* The arena half of nalloc_free, out of line so that freeing a system pointer stays a jump to the
 * system allocator with nothing saved on the way. */
static __attribute__((noinline)) bool free_in_arena(void *ptr)
{
    nalloc_arena *a = na_owner_in_table(ptr);
    if (a == NULL)
        return false;
    arena_free(a, ptr);
    return true;
}

/* The common routed free: the newest block of this thread's chunk in its innermost route's
 * arena, freed without an ownership lookup (any other pointer fails the first comparison). */
static inline bool route_free_fast(void *ptr)
{
    nalloc_arena *a = routes.top;
    return a != NULL && is_route_arena(a) && na_block_free_fast(a, routes.slot, ptr);
}

bool nalloc_free_if_owned(void *ptr)
{
    if (route_free_fast(ptr))
        return true;
    return na_owner_maybe(ptr) && free_in_arena(ptr);
}

/* nalloc_free with a route pushed: out of line, so that the unrouted free keeps its two loads and
 * a jump to the system allocator. */
static __attribute__((noinline)) void routed_free(void *ptr)
{
    if (na_likely(route_free_fast(ptr)))
        return;
    if (!na_owner_maybe(ptr) || !free_in_arena(ptr))
        sys_free(ptr);
}

void nalloc_free(void *ptr)
{
    if (na_unlikely(routes.top != NULL)) {
        routed_free(ptr);
        return;
    }
    if (na_likely(!na_owner_maybe(ptr)) || !free_in_arena(ptr))
        sys_free(ptr); /* NULL included */
}

size_t nalloc_usable_size(const void *ptr)
{
    if (ptr == NULL)
        return 0;
    nalloc_arena *a = (na_owner_maybe(ptr) ? na_owner_in_table(ptr) : NULL);
    if (a == NULL)
        return sys_usable_size((void *)ptr);
    size_t size = 0;
    return na_block_size(a, ptr, &size) ? size : 0;
}

nalloc_status nalloc_resize_in_place(void *ptr, size_t size)
{
    static const char call[] = "nalloc_resize_in_place";
    nalloc_arena *a = ptr != NULL ? nalloc_owner(ptr) : NULL;
    if (a == NULL)
        return na_fail(NALLOC_ERR_INVALID, call, "the pointer is in no arena");
    nalloc_status st = na_block_resize(a, ptr, size);
    if (st == NALLOC_ERR_NOMEM)
        return na_fail(st, call, "the block cannot become %zu bytes where it is in arena \"%s\" "
                                 "(not the newest of its chunk, or no room)", size, a->name);
    return st == NALLOC_OK ? st : block_refused(st, call, a, ptr);
}

void *nalloc_mrealloc(void *ptr, size_t size)
{
    if (ptr == NULL)
        return nalloc_malloc(size);
    nalloc_arena *a = (na_owner_maybe(ptr) ? na_owner_in_table(ptr) : NULL);
    if (a == NULL)
        return sys_realloc(ptr, size); /* a system block stays with the system */
    size_t old_size;
    if (!na_block_size(a, ptr, &old_size)) {
        block_refused(NALLOC_ERR_INVALID, "nalloc_mrealloc", a, ptr);
        errno = EINVAL;
        return NULL;
    }
    if (size == 0) { /* as glibc: free, and NULL */
        nalloc_free(ptr);
        return NULL;
    }
    if (na_block_resize(a, ptr, size) == NALLOC_OK)
        return ptr;
    void *q = nalloc_malloc(size);
    if (q == NULL)
        return NULL; /* the old block is untouched */
    memcpy(q, ptr, old_size < size ? old_size : size);
    nalloc_free(ptr);
    return q;
}
