/* src/common.h - what every file of the library shares, arena code or not.
 *
 * nalloc's files come in layers: the platform (prim.h) and these shared services at the bottom,
 * the backings that give arenas their memory (backing.h) above them, arena logic (internal.h,
 * which holds the arena header) above those, and the CUDA layer's public calls (cuda/) on top.
 * This header is the bottom one: compiler helpers, assertions, errors, options, tracing, and the
 * few things the layers above arena logic may do with an arena they cannot see inside. A file
 * includes the highest of these headers it needs and calls only down: no two files call each
 * other, directly or through others (scripts/deps.py; the ctest file_layers checks it).
 *
 * Everything here is prefixed na_. Functions are hidden: only nalloc_* is exported.
 */
#ifndef NALLOC_COMMON_H
#define NALLOC_COMMON_H

#include "nalloc/bump.h"
#include "nalloc/config.h" /* NALLOC_HAVE_CUDA, NALLOC_HAVE_NVTX: 0 or 1, tested with #if */
#include "nalloc/nalloc.h"

#if defined(NALLOC_TEST_SEAMS) /* white-box tests build the host library alone (Test seams) */
#undef NALLOC_HAVE_CUDA
#define NALLOC_HAVE_CUDA 0
#undef NALLOC_HAVE_NVTX
#define NALLOC_HAVE_NVTX 0
#endif

#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- Compiler helpers ---- */

#define na_likely(x) __builtin_expect(!!(x), 1)
#define na_unlikely(x) __builtin_expect(!!(x), 0)
#define NA_CACHE_LINE 64
/* Tell the core that this thread spins on a word another core is about to change. */
#if defined(__x86_64__) || defined(__i386__)
#define na_spin_pause() __builtin_ia32_pause()
#elif defined(__aarch64__)
#define na_spin_pause() __asm__ __volatile__("yield")
#else
#define na_spin_pause() ((void)0)
#endif
#define NA_CACHE_ALIGNED __attribute__((aligned(NA_CACHE_LINE)))
/* Thread-locals are read on the allocation path; initial-exec avoids __tls_get_addr (mimalloc does
 * the same). A library that uses initial-exec anywhere has its whole TLS block placed in glibc's
 * static TLS surplus when it is loaded with dlopen, a few hundred bytes shared by every such
 * library, so every thread-local of nalloc counts: they are the route stack (route.c), the thread
 * token (thread.c), the slot cache and claim flag (stats.c), the last status and a pointer to the
 * thread's error text (status.c), 444 bytes of libnalloc's PT_TLS segment (readelf -l). Larger
 * per-thread data goes elsewhere: the error text is a page mapped on a thread's first failure. */
#define NA_THREAD_LOCAL __thread __attribute__((tls_model("initial-exec")))

/* The shim of the public headers (nalloc/detail/shim.h), under the library's own prefix: relaxed
 * atomics on size_t words, and checked rounding to a power of two. */
#define na_atomic_load nalloc_detail_atomic_load
#define na_atomic_store nalloc_detail_atomic_store
#define na_atomic_cas nalloc_detail_atomic_cas
#define na_atomic_fetch_add nalloc_detail_atomic_fetch_add
#define na_atomic_max nalloc_detail_atomic_max
#define na_round_up nalloc_detail_round_up

/* ---- Assertions in tiers, free in release builds (NALLOC_DEBUG unset or 0) ----
 * na_assert:           cheap checks of internal invariants (NALLOC_DEBUG >= 1)
 * na_assert_internal:  checks on hot paths (NALLOC_DEBUG >= 2)
 * na_assert_expensive: checks that walk data structures (NALLOC_DEBUG >= 3)
 * They catch nalloc's own bugs, never bad input: bad input gets a status code. */
#ifndef NALLOC_DEBUG
#define NALLOC_DEBUG 0
#endif
void na_assert_fail(const char *expr, const char *file, int line);
#define na_assert_always(x) ((x) ? (void)0 : na_assert_fail(#x, __FILE__, __LINE__))
#if NALLOC_DEBUG >= 1
#define na_assert(x) na_assert_always(x)
#else
#define na_assert(x) ((void)0)
#endif
#if NALLOC_DEBUG >= 2
#define na_assert_internal(x) na_assert_always(x)
#else
#define na_assert_internal(x) ((void)0)
#endif
#if NALLOC_DEBUG >= 3
#define na_assert_expensive(x) na_assert_always(x)
#else
#define na_assert_expensive(x) ((void)0)
#endif

/* ---- Errors (status.c): the rule of nalloc.h, "Errors" ----
 * Only a public function records an error, at its failure exit, with na_fail; the helpers it calls
 * return a status and, when the status alone does not say why, note a cause with na_cause. */

/* Record the failure of the public call `call` (its name, "nalloc_alloc") with `status`: the
 * thread's last error becomes status, its message "<call>: <what>", what being fmt formatted
 * (na_format's conversions; fmt NULL: the status's text). na_fail_cause appends ": <cause>", the
 * cause noted since the call began (which it clears first), if any; with fmt NULL, the cause alone.
 * Both return status, keep errno and forget the noted cause. Failure paths only. */
nalloc_status na_fail(nalloc_status status, const char *call, const char *fmt, ...);
nalloc_status na_fail_cause(nalloc_status status, const char *call, const char *fmt, ...);

/* Note why a step failed, for the message of the public call that fails because of it (the last
 * note wins). na_cause_cuda marks it as a CUDA error, for nalloc_cuda_error_string. Keeps errno. */
void na_cause(const char *fmt, ...);
void na_cause_cuda(const char *fmt, ...);
/* Forget the noted cause: the failure it explained was recovered from, or a public call that
 * passes causes on begins. */
void na_cause_clear(void);
bool na_cause_pending(void);

/* The CUDA cause of the thread's last failure, or "" (nalloc_cuda_error_string). */
const char *na_last_cuda_text(void);

/* Format into buf[at..len) and return the new length: %s, %zu, %u, %d, %llu and %% only, without
 * locale or allocation, so that it is async-signal-safe. Always NUL-terminated; truncates. */
size_t na_format(char *buf, size_t len, size_t at, const char *fmt, va_list args);
size_t na_format_to(char *buf, size_t len, size_t at, const char *fmt, ...);

/* strerror(err), thread-safe: valid until this thread's next call. Not async-signal-safe. */
const char *na_errno_text(int err);

/* The name an arena made from `config` gets: config->name, or its kind's. arena.c. */
const char *na_config_name(const nalloc_arena_config *config);

/* ---- Test seams ----
 * Points where a white-box test (tests/test_lanes_race.c, built with NALLOC_TEST_SEAMS from the
 * library's sources) runs code of its own, to force an interleaving that threads would hit only
 * by chance. Nothing in the library's own build. */
#if defined(NALLOC_TEST_SEAMS)
#define NA_SEAM(hook, arg)                                                                       \
    do {                                                                                         \
        if (hook != NULL)                                                                        \
            hook(arg);                                                                           \
    } while (0)
#else
#define NA_SEAM(hook, arg) ((void)0)
#endif

/* ---- Options (options.c): one table, each entry overridable as NALLOC_<NAME> ---- */

typedef enum na_option {
    NA_OPTION_VERBOSE,         /* 0: print each arena's statistics to stderr when destroyed */
    NA_OPTION_HOST_ALIGN,      /* 64: default alignment on host and pinned arenas, bytes */
    NA_OPTION_DEVICE_ALIGN,    /* 256: default alignment on device arenas (cudaMalloc's), bytes */
    NA_OPTION_LARGE_THRESHOLD, /* 1 MiB: requests this large get the large alignment, bytes */
    NA_OPTION_LARGE_ALIGN,     /* 4 KiB: the large alignment, bytes */
    NA_OPTION_GUARD_SIZE,      /* one page: PROT_NONE bytes on each side of a host mapping */
    NA_OPTION_DEVICE_SLACK,    /* 256 MiB: device memory left free by fractional device arenas */
    NA_OPTION_PIN_CHUNK,       /* 1 GiB: bytes per cudaHostRegister call */
    NA_OPTION_PREFAULT_AHEAD,  /* 64 MiB: bytes kept faulted in beyond an arena's offset, at least
                                  (NALLOC_FLAG_PREFAULT_AHEAD; at least 2 MiB) */
    NA_OPTION_QUIET_PROTECTIONS, /* 0: warn on stderr when LOCK, NODUMP or SECRET is refused */
    NA_OPTION_COUNT
} na_option;

/* The option's value: NALLOC_<NAME> from the environment if set and valid, else its default. */
size_t na_option_get(na_option option);

/* ---- Arenas seen from outside arena logic ----
 * Every handle (arena or context header, handle.c) starts with its magic number, so whether a
 * handle is a live arena can be told without the arena header: that is all the CUDA layer's
 * public calls check before handing an arena to the calls below. */

#define NA_MAGIC_ARENA UINT64_C(0x616e656c6c6f6e41) /* live arena */
#define NA_MAGIC_CTX UINT64_C(0x787463636f6c6c6e)   /* live context */
#define NA_MAGIC_DEAD UINT64_C(0xdeaddeaddeaddead)  /* destroyed: every call is refused */
#define NA_MAGIC_DOOMED UINT64_C(0x646f6f6d6564416e) /* destroy deferred until its last
                                                         malloc-family block is freed: frees
                                                         are served, everything else refused */

#define NA_NAME_MAX 32 /* bytes of an arena's name, NUL included (longer names are cut) */

/* The magic number of a handle (its first word), loaded with acquire ordering; 0 for NULL. */
static inline uint64_t na_handle_magic(const void *handle)
{
    return handle != NULL ? __atomic_load_n((const uint64_t *)handle, __ATOMIC_ACQUIRE) : 0;
}

static inline bool na_arena_alive(const nalloc_arena *a)
{
    return na_handle_magic(a) == NA_MAGIC_ARENA;
}

/* Alive or doomed: its memory is still there, and its malloc-family blocks can be freed. */
static inline bool na_arena_mapped(const nalloc_arena *a)
{
    uint64_t magic = na_handle_magic(a);
    return magic == NA_MAGIC_ARENA || magic == NA_MAGIC_DOOMED;
}

/* NALLOC_ERR_INVALID for NULL, NALLOC_ERR_STATE for a destroyed arena or another kind of handle. */
static inline nalloc_status na_arena_check(const nalloc_arena *a)
{
    if (a == NULL)
        return NALLOC_ERR_INVALID;
    return na_arena_alive(a) ? NALLOC_OK : NALLOC_ERR_STATE;
}

/* Does [ptr, ptr + size) lie inside the first `limit` bytes from `base`? Arenas ask it of their
 * capacity (is this range theirs at all?) or of their offset (did they hand it out?). If it does,
 * *offset is ptr's offset from base. NULL lies in no arena; no arithmetic here wraps. */
static inline bool na_range_inside(uintptr_t base, size_t limit, const void *ptr, size_t size,
                                   size_t *offset)
{
    uintptr_t p = (uintptr_t)ptr;
    if (ptr == NULL || p < base || p - base > limit || size > limit - (p - base))
        return false;
    *offset = (size_t)(p - base);
    return true;
}

typedef struct na_memory na_memory; /* backing.h */

/* The memory under a live arena: its name, its request (config), its base, the offset word it
 * hands out from, what its backing put in force. Read-only. arena.c. */
const na_memory *na_arena_memory(const nalloc_arena *a);

/* Record the refusal of public call `call` on an arena that na_arena_check refused: NULL
 * (NALLOC_ERR_INVALID) or destroyed (NALLOC_ERR_STATE). Returns the status. arena.c. */
nalloc_status na_arena_refuse(const nalloc_arena *a, const char *call);

/* Allocate from a live arena as nalloc_alloc_aligned does (counted, digested, shown to tools),
 * for the library's own blocks (lane blocks, windows): a failure is not counted in the arena's
 * statistics and records nothing; its cause is noted. align: a power of two. arena.c. */
void *na_alloc_block(nalloc_arena *a, size_t size, size_t align);

/* Give back the most recent block of a live arena, as nalloc_free_last does, recording nothing. */
nalloc_status na_free_last(nalloc_arena *a, void *ptr, size_t size);

/* Wipe everything handed out since the last wipe, then reset, on `stream` (device) or
 * synchronously (NULL). Takes the control lock. Records no error: the status comes back with its
 * cause noted. arena.c; nalloc_wipe and the CUDA layer's nalloc_wipe_async. */
nalloc_status na_arena_wipe(nalloc_arena *a, void *stream);

/* ---- Tracing (NVTX ranges; cuda/nvtx.c when built, nothing otherwise) ----
 * A range "what(name)" around a phase of an arena named `name` (NULL: "what" alone). */

#if NALLOC_HAVE_NVTX
void na_trace_push(const char *what, const char *name);
void na_trace_pop(void);
#else
static inline void na_trace_push(const char *what, const char *name)
{
    (void)what;
    (void)name;
}
static inline void na_trace_pop(void) {}
#endif


#endif /* NALLOC_COMMON_H */
