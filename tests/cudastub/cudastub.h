/* tests/cudastub/cudastub.h - a CUDA runtime stand-in for tests on machines without a GPU.
 *
 * Our machines and CI have the CUDA toolkit and no GPU, so against the real libcudart every CUDA
 * call answers "no device" and the host code of nalloc's CUDA layer (block bookkeeping, device
 * switching, error paths, stream order) never runs. cudastub.c is a small library that provides
 * the runtime functions nalloc calls, compiled against the toolkit's own headers, and a test
 * build links it in place of libcudart (tests/CMakeLists.txt: nalloc_on_cudastub). It models
 * what nalloc relies on, no more:
 *
 *  - N devices of a given memory size, and a current device per thread.
 *  - Device memory: host memory handed out by cudaMalloc with PROT_NONE guard pages on both
 *    sides and canary bytes in the slack up to them, kept PROT_NONE itself except while a
 *    stream operation or kernel runs on it, so host code that touches device memory, a write out
 *    of bounds and a double free are caught (a fault, or a misuse the test reads back). Fresh
 *    blocks hold garbage (0xA5), as cudaMalloc's may hold the previous owner's data.
 *  - Streams: work queued by cudaMemsetAsync, cudaMemcpyAsync and kernel launches runs only when
 *    something waits for it (a stream or device synchronization, cudaFree, a synchronous copy),
 *    in stream order, with the legacy default stream's implicit ordering against the other
 *    blocking streams of its device. A copy "in flight" is really not done yet, so code that
 *    reads a result without waiting reads stale bytes. With pageable (unregistered) host memory
 *    CUDA's documented behaviour holds: a copy from it has taken its bytes when the call
 *    returns, and a copy into it from the device returns only once complete.
 *  - Errors: non-sticky errors are this thread's last error until cudaGetLastError; sticky
 *    errors (an illegal address, a launch failure) poison the device's context, and every later
 *    call that needs the context returns them, until cudaDeviceReset.
 *  - cudaDeviceReset: every block of the device dies (its memory stays PROT_NONE), registrations
 *    made through it are dropped, threads lose their current context (the driver's pointer query
 *    answers CUDA_ERROR_INVALID_CONTEXT until a runtime call makes the primary context current
 *    again), and the next cudaMalloc of the same size is given the same address again.
 *  - The driver's buffer ids (cuPointerGetAttribute through cudaGetDriverEntryPointByVersion):
 *    unique per block, never reused.
 *  - Page-locked host ranges (cudaHostRegister): a second registration of registered memory, and
 *    an unregistration of what was never registered, are refused and counted as misuse.
 *  - Kernels: nvcc's host stubs register each kernel with the runtime (__cudaRegisterFunction,
 *    by host-stub address and device name); a launch of a kernel runs its host twin, a C function
 *    that runs the kernel's body (the same NALLOC_DETAIL_HD functions) for every thread of the grid
 *    (cudastub_kernels.c for nalloc's own). A launch of a kernel without a twin is a misuse.
 *
 * Fault injection: cudastub_fail(fn, n, err) makes the nth call of fn from now fail with err,
 * without doing anything else; a sticky err also poisons the current device's context, as the
 * fault that produced it would. cudastub_trace lists the calls made since cudastub_trace_begin,
 * so a test can walk every call an entry point makes through a failure (tests/cudastub/walk.h).
 *
 * The stand-in is thread-safe (one lock) and deterministic. It is test code: no attempt is made
 * at speed, and anything it does not model answers cudaErrorNotSupported.
 */
#ifndef NALLOC_TESTS_CUDASTUB_H
#define NALLOC_TESTS_CUDASTUB_H

#include <cuda_runtime_api.h>

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CUDASTUB_MAX_DEVICES 8

/* The functions that count, fail on demand and appear in traces. */
typedef enum cudastub_fn {
    CUDASTUB_GET_DEVICE_COUNT,
    CUDASTUB_GET_DEVICE,
    CUDASTUB_SET_DEVICE,
    CUDASTUB_DEVICE_GET_ATTRIBUTE,
    CUDASTUB_MALLOC,
    CUDASTUB_FREE,
    CUDASTUB_MEM_GET_INFO,
    CUDASTUB_HOST_REGISTER,
    CUDASTUB_HOST_UNREGISTER,
    CUDASTUB_MEMSET_ASYNC,
    CUDASTUB_MEMSET,
    CUDASTUB_MEMCPY_ASYNC,
    CUDASTUB_MEMCPY,
    CUDASTUB_STREAM_CREATE,
    CUDASTUB_STREAM_DESTROY,
    CUDASTUB_STREAM_SYNCHRONIZE,
    CUDASTUB_DEVICE_SYNCHRONIZE,
    CUDASTUB_DEVICE_RESET,
    CUDASTUB_LAUNCH_KERNEL,
    CUDASTUB_GET_DRIVER_ENTRY_POINT,
    CUDASTUB_POINTER_GET_ATTRIBUTE, /* the driver's cuPointerGetAttribute (a CUresult: injected
                                       errors are taken by number, which CUDA keeps equal for
                                       the runtime and driver codes used here) */
    CUDASTUB_FN_COUNT
} cudastub_fn;

typedef struct cudastub_config {
    int devices;                    /* 0 to CUDASTUB_MAX_DEVICES; 0: cudaGetDeviceCount answers
                                       cudaErrorNoDevice, as on a machine without a GPU */
    size_t memory;                  /* bytes of memory per device (cudaMemGetInfo's total) */
    int multiprocessors;            /* cudaDevAttrMultiProcessorCount */
    int threads_per_multiprocessor; /* cudaDevAttrMaxThreadsPerMultiProcessor */
    bool buffer_ids;                /* the entry-point query finds cuPointerGetAttribute */
} cudastub_config;

/* 2 devices of 64 MiB, 4 multiprocessors of 2048 threads, buffer ids offered. */
void cudastub_config_default(cudastub_config *config);

/* Start over with `config` (NULL: the default): every block freed, every registration and
 * stream dropped, queued work discarded, errors cleared, counters, traces and faults reset, every
 * thread back on device 0 with no context. Arenas must be destroyed first. */
void cudastub_reset(const cudastub_config *config);

/* ---- Bookkeeping ---- */

typedef struct cudastub_counts {
    size_t blocks;        /* device blocks allocated and not freed, on every device */
    size_t block_bytes;   /* their bytes */
    size_t registrations; /* host ranges registered and not unregistered */
    size_t pending;       /* queued stream operations that have not run */
    size_t launches;      /* kernels launched (queued) since the reset */
    size_t misuse;        /* calls real CUDA would refuse or fault on: a free or unregistration of
                             what is not allocated or registered, a double registration, a
                             range outside any block, a launch of an unknown kernel or one
                             without a twin, a write past a block's end; see cudastub_misuse_text */
} cudastub_counts;

cudastub_counts cudastub_counts_now(void);

/* What the first misuse since the reset was, or "". */
const char *cudastub_misuse_text(void);

/* The sticky error poisoning `device`'s context, or cudaSuccess. */
cudaError_t cudastub_sticky_error(int device);

/* True for the errors that poison a context (cudaErrorIllegalAddress, cudaErrorLaunchFailure and
 * the other kernel faults). */
bool cudastub_is_sticky(cudaError_t err);

/* Is [p, p + size) inside one live block of `device` (-1: of any device)? Its buffer id then,
 * else 0. */
unsigned long long cudastub_block_of(int device, const void *p, size_t size);

/* Is [p, p + size) inside one registered host range? Its flags then in *flags. */
bool cudastub_is_registered(const void *p, size_t size, unsigned *flags);

/* Read or write device memory as it is now, bypassing streams, faults and counters: a read after
 * a launch that nothing waited for still sees the old bytes. The range must be inside one live
 * block (the test fails with a message otherwise). */
void cudastub_peek(void *dst, const void *device_src, size_t size);
void cudastub_poke(void *device_dst, const void *src, size_t size);
void cudastub_fill(void *device_dst, int value, size_t size);

/* Run every queued operation on every device, as a GPU catching up would. */
void cudastub_run_pending(void);

/* ---- Kernels ---- */

/* One kernel launch as its twin sees it: the argument values were copied at launch. */
typedef struct cudastub_launch {
    const char *kernel; /* the device function's (mangled) name */
    dim3 grid, block;
    size_t shared;      /* bytes of dynamic shared memory */
    int device;         /* where it runs */
    cudaStream_t stream;
    void *args[8];      /* args[i] points at a copy of argument i */
} cudastub_launch;

/* The host twin of a kernel: runs the kernel's body for every thread of l->grid x l->block and
 * returns cudaSuccess, or the error the device would have raised (then sticky, like a fault). */
typedef cudaError_t (*cudastub_twin_fn)(const cudastub_launch *l);

typedef struct cudastub_twin {
    const char *kernel;       /* the device function's mangled name, as nvcc registers it */
    unsigned arg_count;       /* at most 8 */
    size_t arg_sizes[8];      /* bytes of each argument */
    unsigned max_threads;     /* __launch_bounds__: larger blocks fail to launch (0: 1024) */
    cudastub_twin_fn run;
} cudastub_twin;

/* Twins for the kernels of the library under test (cudastub_kernels.c). */
extern const cudastub_twin cudastub_nalloc_twins[];
extern const size_t cudastub_nalloc_twin_count;

/* Add a twin (for a test's own kernels); the twin must outlive the process's launches. */
void cudastub_add_twin(const cudastub_twin *twin);

/* For twins: may the kernel running on `device` access [p, p + size)? True when one live block of
 * the device holds the range; the block is then accessible from the host until the twin returns.
 * False otherwise: the twin must return cudaErrorIllegalAddress without touching the memory. */
bool cudastub_kernel_access(int device, void *p, size_t size);

/* The most recent launch that was queued (false when there was none since the reset). Its
 * arguments are not kept. */
bool cudastub_last_launch(cudastub_launch *out);

/* Call observer(l) as each kernel starts to run, before its twin (NULL: none). For tests that
 * check what holds while a kernel runs; kept across resets. */
void cudastub_observe_kernels(void (*observer)(const cudastub_launch *l));

/* ---- Fault injection and traces ---- */

/* The nth call of `fn` from now on (1: the next one) returns `err` and does nothing else; a
 * sticky `err` also poisons the context of the calling thread's current device. One fault per
 * function at a time; nth 0 disarms. */
void cudastub_fail(cudastub_fn fn, unsigned nth, cudaError_t err);

/* Calls of `fn` since the reset. */
size_t cudastub_calls(cudastub_fn fn);

/* Start recording calls (on every thread) afresh. */
void cudastub_trace_begin(void);

/* The calls since cudastub_trace_begin, in order: the first `max` go to calls[]. Returns how many
 * there were (at most 4096 are kept). */
size_t cudastub_trace(cudastub_fn *calls, size_t max);

/* "cudaMalloc", "cuPointerGetAttribute", ... */
const char *cudastub_fn_name(cudastub_fn fn);

#ifdef __cplusplus
}
#endif

#endif /* NALLOC_TESTS_CUDASTUB_H */
