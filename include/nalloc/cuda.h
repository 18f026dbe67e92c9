/* nalloc/cuda.h - the CUDA host API of nalloc (C, usable from C++ and CUDA).
 *
 * Present when nalloc was built with its CUDA parts (nalloc/config.h: NALLOC_HAVE_CUDA == 1).
 * Device and pinned arenas are ordinary arenas: nalloc_arena_create with NALLOC_MEMORY_DEVICE or
 * NALLOC_MEMORY_PINNED, then the whole nalloc.h API. This header adds what only CUDA needs.
 *
 * Without a driver or a device every entry point returns NALLOC_ERR_NO_DEVICE (or NULL with
 * nalloc_last_error() == NALLOC_ERR_NO_DEVICE); nothing crashes, and host arenas are unaffected.
 * A failing CUDA call gives NALLOC_ERR_CUDA, with the CUDA error's text in the failing call's
 * message (nalloc_last_error_message) and in nalloc_cuda_error_string(). The error rule of
 * nalloc.h holds here too: only failing calls set them.
 *
 * Errors that are sticky for a CUDA context (a kernel's illegal address, for one) make every later
 * CUDA call in the process fail: from then on every nalloc call that reaches CUDA (wipes of device
 * arenas, windows, staging, creating device or pinned arenas) answers NALLOC_ERR_CUDA, while
 * allocation from existing device arenas, which is host-side bookkeeping, goes on handing out
 * addresses nothing can use. nalloc_arena_destroy still releases every arena (reporting a wipe it
 * could not do). Only a new process recovers.
 *
 * cudaDeviceReset (or anything else that destroys a device's primary context) frees the memory of
 * every device arena on that device, and later allocations may be given the same addresses:
 * destroy device arenas first. A device arena notices that its block is gone: its wipes answer
 * NALLOC_ERR_STATE and its destroy frees nothing, so nalloc never zeroes or frees what has become
 * somebody else's memory (when the driver cannot tell whether the block is still the arena's,
 * wipes answer NALLOC_ERR_CUDA and destroy frees nothing, for the same reason). Windows and
 * staging copies do not check; using them after a reset writes through dangling pointers.
 */
#ifndef NALLOC_CUDA_H
#define NALLOC_CUDA_H

#include "nalloc/nalloc.h"

#include <cuda_runtime_api.h>

#ifdef __cplusplus
extern "C" {
#endif

/* NALLOC_OK when a CUDA driver and at least one device are usable, NALLOC_ERR_NO_DEVICE
 * otherwise (recorded as this thread's last error, like any other non-OK status). Probed once per
 * process. */
NALLOC_NODISCARD NALLOC_API nalloc_status nalloc_cuda_available(void);

/* The CUDA error behind this thread's most recent failed nalloc call ("cudaMalloc: out of memory
 * (cudaErrorMemoryAllocation)"), or "" if that failure had no CUDA cause, or none happened since
 * the thread started or last cleared its error (nalloc_last_error_clear). Changed only when a
 * call fails, like nalloc_last_error_message. Never NULL. */
NALLOC_API const char *nalloc_cuda_error_string(void);

/* nalloc_wipe in stream order: zero everything the arena handed out since the last wipe, then
 * reset. For a device arena the memset kernel is enqueued on `stream` (a stream of the arena's
 * device, config.device; another device's stream gives NALLOC_ERR_CUDA) and this returns without
 * waiting (except under a memory tool that watches the arena through NVTX, compute-sanitizer: then
 * it waits for the kernel, which the tool checks against the wipe's registered range); the caller
 * must not let any kernel or copy touch the arena's old blocks after it in stream order, and must
 * not reuse the arena from another stream before the wipe completes. For a pinned arena the wipe
 * waits for `stream` (copies queued on it into the arena would otherwise land after the wipe), then
 * zeroes on the host and returns; a failed wait is reported (NALLOC_ERR_CUDA) after the bytes were
 * zeroed anyway, and the arena is then not reset. For a host arena `stream` is ignored and the wipe
 * is synchronous. Stream 0 is the legacy default stream (as for every nalloc call that takes a
 * stream, whatever the caller's --default-stream setting); pass cudaStreamPerThread for the
 * per-thread one. nalloc_wipe on a pinned arena waits for no stream: copies into it must have
 * finished, as for any host memory.
 *
 * What the caller must have synchronized, for a device arena:
 *  - nalloc_wipe_async(arena, stream): every kernel or copy that reads or writes the arena's
 *    blocks is either earlier on `stream` or finished (an event `stream` waits on will do). The
 *    arena is reset on return, host-side; new blocks handed out after it are safe to use from
 *    `stream`, and from another stream only once the wipe has completed there.
 *  - nalloc_wipe(arena), nalloc_arena_destroy on a witness arena, and nalloc_alloc_zeroed: these
 *    launch on the legacy default stream and wait for it. The legacy stream waits for all work
 *    queued earlier on blocking streams (cudaStreamCreate, and the per-thread default stream), so
 *    only work on streams created with cudaStreamNonBlocking must be synchronized by the caller.
 * The memset kernel uses 16-byte stores over the aligned body of the range and byte stores over
 * its unaligned head and tail; its stores are device memory writes no compiler removes. */
NALLOC_NODISCARD NALLOC_API nalloc_status nalloc_wipe_async(nalloc_arena *arena,
                                                            cudaStream_t stream);

/* ---------------------------------------------------------------------------------------------
 * In-kernel scratch windows (allocation inside kernels: nalloc/device.cuh)
 *
 * A window is a slice of a device arena that kernels allocate from with one atomicAdd (or one
 * per warp). It is a small struct passed to kernels by value; the counter it bumps lives in
 * device memory next to the slice. Blocks are never freed one by one: the host resets the whole
 * window between kernels, in stream order. A window lives as long as the arena block behind it:
 * a rollback, reset or wipe of the arena that releases it ends it too.
 *
 *   device arena:  ... | state (counter, overflow flag) | pad | window bytes [base, base+capacity) |
 * ------------------------------------------------------------------------------------------- */

/* The device-side bookkeeping of a window (what nalloc_window.state points at). */
typedef struct nalloc_window_state {
    size_t used;     /* bytes requested so far, each request rounded up to the granule; passes the
                        capacity once a request did not fit, and then stays there until a reset */
    size_t overflow; /* non-zero once any request was refused, until a reset */
} nalloc_window_state;

typedef struct nalloc_window {
    void *base;                 /* device address of the first byte; aligned to the granule and
                                   to at least 256 bytes */
    size_t capacity;            /* bytes; at most NALLOC_WINDOW_MAX_CAPACITY */
    size_t granule;             /* bytes, power of two, 16 to 4096: every block's size is rounded
                                   up to it, so every block is aligned to it */
    nalloc_window_state *state; /* device address of the counter and the overflow flag */
    int device;                 /* the CUDA device the window's memory is on */
    int unused;                 /* zero; keeps the layout free of compiler padding */
} nalloc_window;

#define NALLOC_WINDOW_GRANULE 16 /* bytes: nalloc_window_create's granule, CUDA malloc's alignment */
#define NALLOC_WINDOW_MAX_GRANULE 4096
/* 1 TiB: keeps the counter far from wrapping however many warps overflow the window at once. */
#define NALLOC_WINDOW_MAX_CAPACITY ((size_t)1 << 40)

/* Carve a window of `capacity` bytes (1 to NALLOC_WINDOW_MAX_CAPACITY) out of a device arena,
 * with 16-byte granules, and zero its counter and flag. Synchronous: the window is ready for
 * kernels on any stream when this returns. The window is one ordinary block of the arena, so
 * other threads may allocate from the arena meanwhile. On failure *out is zeroed:
 * NALLOC_ERR_INVALID (NULL out, not a device arena, bad capacity), NALLOC_ERR_STATE (destroyed
 * arena), NALLOC_ERR_NOMEM (the arena has no room), NALLOC_ERR_NO_DEVICE, NALLOC_ERR_CUDA (zeroing
 * the counter failed). After a CUDA failure the block is given back (nalloc_free_last) if it is
 * still the arena's last; if another thread allocated after it meanwhile, it stays allocated
 * until the arena's next rollback, reset or wipe. */
NALLOC_NODISCARD NALLOC_API nalloc_status nalloc_window_create(nalloc_arena *device_arena,
                                                               size_t capacity,
                                                               nalloc_window *out);

/* nalloc_window_create with blocks rounded to and aligned at `granule` bytes, a power of two from
 * 16 to NALLOC_WINDOW_MAX_GRANULE (NALLOC_ERR_INVALID otherwise). */
NALLOC_NODISCARD NALLOC_API nalloc_status nalloc_window_create_aligned(nalloc_arena *device_arena,
                                                                       size_t capacity,
                                                                       size_t granule,
                                                                       nalloc_window *out);

/* Empty the window and clear its overflow flag, in stream order: kernels earlier on `stream`
 * still see the old state, kernels later on it allocate from the start again. Returns without
 * waiting. Blocks handed out before the reset must be dead by the time later kernels allocate. */
NALLOC_NODISCARD NALLOC_API nalloc_status nalloc_window_reset(const nalloc_window *window,
                                                              cudaStream_t stream);

/* Read the window's state after the work queued on `stream` so far: waits for the stream.
 * *used: bytes handed out, rounding included, at most the capacity (after an overflow, the bytes
 * no later request could use count as used). *overflowed: some request was refused since the
 * last reset. Either pointer may be NULL. */
NALLOC_NODISCARD NALLOC_API nalloc_status nalloc_window_usage(const nalloc_window *window,
                                                              cudaStream_t stream, size_t *used,
                                                              bool *overflowed);

/* ---------------------------------------------------------------------------------------------
 * Staging between pinned and device arenas
 * ------------------------------------------------------------------------------------------- */

/* Copy `size` bytes from `src`, inside a block of `src_arena`, to `dst`, inside a block of
 * `dst_arena`, with cudaMemcpyAsync on `stream` (0: the legacy default stream). One arena is a
 * pinned arena and the other a device arena: pinned to device uploads (an NTT's input), device to
 * pinned downloads (its result). Returns once the copy is enqueued; the caller synchronizes
 * `stream` before reading the destination or reusing the source, and before any rollback, reset or
 * wipe of either arena.
 *
 * Both ranges are checked before CUDA is called: [dst, dst + size) must lie inside what dst_arena
 * has handed out (from its base to its current offset), and likewise for src. A range that does
 * not, an arena of the wrong memory kind, or a NULL pointer gives NALLOC_ERR_INVALID; a destroyed
 * arena NALLOC_ERR_STATE; a pinned arena that fell back to locked host memory
 * NALLOC_ERR_NO_DEVICE. Nothing is copied then. size 0 is a valid, empty copy. A failing
 * cudaMemcpyAsync gives NALLOC_ERR_CUDA (nalloc_cuda_error_string() says why). */
NALLOC_NODISCARD NALLOC_API nalloc_status nalloc_stage_async(const nalloc_arena *dst_arena,
                                                             void *dst,
                                                             const nalloc_arena *src_arena,
                                                             const void *src, size_t size,
                                                             cudaStream_t stream);

#ifdef __cplusplus
}
#endif

#endif /* NALLOC_CUDA_H */
