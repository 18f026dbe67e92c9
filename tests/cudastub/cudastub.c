/* tests/cudastub/cudastub.c - the CUDA runtime stand-in (what it models: cudastub.h).
 *
 * Everything sits behind one recursive lock: the twins that kernels run call back into the
 * stand-in (cudastub_kernel_access) while a synchronization holds it. State is a handful of fixed
 * tables; a test that outgrows one aborts with a message rather than being answered wrongly.
 *
 * Device memory. Each cudaMalloc block is its own mapping:
 *
 *     [ guard page | canary slack | block (256-byte aligned) | canary slack < 256 | guard page ]
 *
 * The block ends as close to the trailing guard as its alignment allows, so an overrun faults
 * within 256 bytes and smaller overruns damage the canary, which is checked whenever the block
 * stops being accessible. The data pages are PROT_NONE except while an operation of the stand-in
 * (a queued copy or memset, a kernel's twin, a peek) runs on them: host code that dereferences a
 * device pointer faults, as it would on a discrete GPU.
 *
 * Stream order. Queued operations keep their order of submission. Waiting for an operation runs
 * it and everything it depends on: earlier work on its stream and, on the legacy default stream,
 * earlier work on every blocking stream of the device (and the reverse), which is CUDA's implicit
 * synchronization. Nothing runs before somebody waits, so a result read without waiting is stale.
 */
#define _GNU_SOURCE
#include "cudastub.h"

#include <cuda.h> /* CUresult, CUpointer_attribute, CUdeviceptr */

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define MAX_BLOCKS 512
#define MAX_RETIRED 64
#define MAX_REGISTRATIONS 256
#define MAX_STREAMS 64
#define MAX_OPS 512
#define MAX_KERNELS 64
#define MAX_TWINS 32
#define MAX_OPENED 8
#define TRACE_MAX 4096
#define PARAM_BYTES 256
#define CONFIG_DEPTH 8

#define DEVICE_ALIGN 256 /* bytes: cudaMalloc's alignment */
#define GARBAGE 0xA5     /* what fresh device memory holds */
#define CANARY 0xCB      /* the slack around each block */
#define SHARED_MAX (48u << 10)

/* ---------------------------------------------------------------------------------------------
 * State
 * ------------------------------------------------------------------------------------------- */

typedef struct block {
    bool live;
    char *map;             /* the mapping: guard page, data, guard page */
    size_t map_size;       /* bytes */
    char *base;            /* the block: inside the data pages, DEVICE_ALIGN aligned */
    size_t size;           /* bytes, > 0 */
    int device;
    unsigned long long id; /* the driver's buffer id; never reused */
    bool open;             /* host-accessible while an operation runs on it */
} block;

/* The mapping of a block that died in a context reset: PROT_NONE, kept so that the next
 * allocation of the same size on the device is given the same address again. */
typedef struct retired {
    bool live;
    char *map;
    size_t map_size;
    int device;
} retired;

typedef struct registration {
    bool live;
    char *base;
    size_t size;     /* bytes */
    unsigned flags;  /* cudaHostRegister* */
    int device;      /* whose context registered it: a reset of that device drops it */
} registration;

typedef struct created_stream {
    bool live;
    int device;
    bool nonblocking;
} created_stream;

enum stream_type { STREAM_LEGACY, STREAM_PER_THREAD, STREAM_CREATED };

typedef struct stream_key {
    enum stream_type type;
    int device;
    const void *id; /* the thread (per-thread stream) or the created stream; NULL for legacy */
} stream_key;

typedef struct kernel {
    const void *host_fun; /* the host stub's address: what cudaLaunchKernel is given */
    const char *name;     /* the device function's mangled name */
} kernel;

enum op_kind { OP_MEMSET, OP_MEMCPY, OP_KERNEL };

typedef struct op {
    bool pending;
    enum op_kind kind;
    stream_key key;
    bool blocking;
    void *dst;
    const void *src;
    void *staged; /* malloc'd copy of a pageable source, taken at submission; owned */
    size_t size;
    int value;
    const cudastub_twin *twin;
    cudastub_launch launch;
    unsigned char params[PARAM_BYTES]; /* the launch's argument values */
} op;

typedef struct device_state {
    size_t used;          /* bytes in live blocks */
    cudaError_t sticky;   /* poisoning the context, or cudaSuccess */
    unsigned generation;  /* of its primary context: bumped by each reset */
} device_state;

typedef struct fault {
    unsigned countdown; /* calls until it fires; 0: disarmed */
    cudaError_t err;
} fault;

static struct {
    pthread_mutex_t lock;
    cudastub_config config;
    bool configured;
    unsigned epoch;                /* bumped by cudastub_reset: older thread state is void */
    device_state devices[CUDASTUB_MAX_DEVICES];
    block blocks[MAX_BLOCKS];
    retired retired[MAX_RETIRED];
    registration registrations[MAX_REGISTRATIONS];
    created_stream streams[MAX_STREAMS];
    op ops[MAX_OPS];
    size_t op_count;
    kernel kernels[MAX_KERNELS];
    size_t kernel_count;
    const cudastub_twin *twins[MAX_TWINS];
    size_t twin_count;
    block *opened[MAX_OPENED];     /* accessible until the running operation ends */
    size_t opened_count;
    unsigned long long next_id;
    size_t calls[CUDASTUB_FN_COUNT];
    fault faults[CUDASTUB_FN_COUNT];
    cudastub_fn trace[TRACE_MAX];
    size_t trace_len;              /* calls since cudastub_trace_begin (may exceed TRACE_MAX) */
    size_t launches;
    void (*observer)(const cudastub_launch *l);
    bool have_last_launch;
    cudastub_launch last_launch;
    size_t misuse;
    char misuse_text[256];
} stub = {.lock = PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP, .next_id = 1};

/* Per-thread state: the current device, the current context, the last error, launch
 * configurations pushed by <<<>>>. Void once the stand-in is reset (epoch). */
typedef struct launch_config {
    dim3 grid, block;
    size_t shared;
    cudaStream_t stream;
} launch_config;

static __thread struct {
    unsigned epoch;
    int current;
    bool bound;             /* a context is current on this thread... */
    int bound_device;       /* ...the primary context of this device... */
    unsigned bound_generation; /* ...in this generation (a reset since makes it stale) */
    cudaError_t last_error;
    launch_config configs[CONFIG_DEPTH];
    int config_depth;
} tls;

static void thread_sync(void)
{
    if (tls.epoch != stub.epoch + 1) {
        memset(&tls, 0, sizeof tls);
        tls.epoch = stub.epoch + 1; /* +1: a zeroed thread state is never current */
    }
}

static void lock(void)
{
    pthread_mutex_lock(&stub.lock);
    if (!stub.configured) {
        cudastub_config_default(&stub.config);
        stub.configured = true;
    }
    thread_sync();
}

static void unlock(void)
{
    pthread_mutex_unlock(&stub.lock);
}

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "cudastub: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    abort();
}

static void misuse(const char *fmt, ...)
{
    char text[sizeof stub.misuse_text];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    if (stub.misuse++ == 0)
        snprintf(stub.misuse_text, sizeof stub.misuse_text, "%s", text);
    fprintf(stderr, "cudastub: misuse: %s\n", text);
}

static size_t page_size(void)
{
    return (size_t)sysconf(_SC_PAGESIZE);
}

/* ---------------------------------------------------------------------------------------------
 * Configuration, bookkeeping, faults
 * ------------------------------------------------------------------------------------------- */

void cudastub_config_default(cudastub_config *c)
{
    c->devices = 2;
    c->memory = (size_t)64 << 20;
    c->multiprocessors = 4;
    c->threads_per_multiprocessor = 2048;
    c->buffer_ids = true;
}

static const char *const fn_names[CUDASTUB_FN_COUNT] = {
    [CUDASTUB_GET_DEVICE_COUNT] = "cudaGetDeviceCount",
    [CUDASTUB_GET_DEVICE] = "cudaGetDevice",
    [CUDASTUB_SET_DEVICE] = "cudaSetDevice",
    [CUDASTUB_DEVICE_GET_ATTRIBUTE] = "cudaDeviceGetAttribute",
    [CUDASTUB_MALLOC] = "cudaMalloc",
    [CUDASTUB_FREE] = "cudaFree",
    [CUDASTUB_MEM_GET_INFO] = "cudaMemGetInfo",
    [CUDASTUB_HOST_REGISTER] = "cudaHostRegister",
    [CUDASTUB_HOST_UNREGISTER] = "cudaHostUnregister",
    [CUDASTUB_MEMSET_ASYNC] = "cudaMemsetAsync",
    [CUDASTUB_MEMSET] = "cudaMemset",
    [CUDASTUB_MEMCPY_ASYNC] = "cudaMemcpyAsync",
    [CUDASTUB_MEMCPY] = "cudaMemcpy",
    [CUDASTUB_STREAM_CREATE] = "cudaStreamCreate",
    [CUDASTUB_STREAM_DESTROY] = "cudaStreamDestroy",
    [CUDASTUB_STREAM_SYNCHRONIZE] = "cudaStreamSynchronize",
    [CUDASTUB_DEVICE_SYNCHRONIZE] = "cudaDeviceSynchronize",
    [CUDASTUB_DEVICE_RESET] = "cudaDeviceReset",
    [CUDASTUB_LAUNCH_KERNEL] = "cudaLaunchKernel",
    [CUDASTUB_GET_DRIVER_ENTRY_POINT] = "cudaGetDriverEntryPointByVersion",
    [CUDASTUB_POINTER_GET_ATTRIBUTE] = "cuPointerGetAttribute",
};

const char *cudastub_fn_name(cudastub_fn fn)
{
    return (unsigned)fn < CUDASTUB_FN_COUNT ? fn_names[fn] : "?";
}

bool cudastub_is_sticky(cudaError_t err)
{
    switch (err) {
    case cudaErrorIllegalAddress:
    case cudaErrorLaunchTimeout:
    case cudaErrorAssert:
    case cudaErrorHardwareStackError:
    case cudaErrorIllegalInstruction:
    case cudaErrorMisalignedAddress:
    case cudaErrorInvalidAddressSpace:
    case cudaErrorInvalidPc:
    case cudaErrorLaunchFailure:
    case cudaErrorECCUncorrectable:
        return true;
    default:
        return false;
    }
}

static void close_opened(void);
static void retire_op(op *o);

static void release_mapping(char *map, size_t map_size)
{
    if (munmap(map, map_size) != 0)
        die("munmap: %s", strerror(errno));
}

void cudastub_reset(const cudastub_config *config)
{
    lock();
    for (size_t i = 0; i < MAX_BLOCKS; i++)
        if (stub.blocks[i].live)
            release_mapping(stub.blocks[i].map, stub.blocks[i].map_size);
    for (size_t i = 0; i < MAX_RETIRED; i++)
        if (stub.retired[i].live)
            release_mapping(stub.retired[i].map, stub.retired[i].map_size);
    memset(stub.blocks, 0, sizeof stub.blocks);
    memset(stub.retired, 0, sizeof stub.retired);
    memset(stub.registrations, 0, sizeof stub.registrations);
    memset(stub.streams, 0, sizeof stub.streams);
    memset(stub.devices, 0, sizeof stub.devices);
    for (size_t i = 0; i < stub.op_count; i++)
        retire_op(&stub.ops[i]);
    stub.op_count = 0;
    stub.opened_count = 0;
    memset(stub.calls, 0, sizeof stub.calls);
    memset(stub.faults, 0, sizeof stub.faults);
    stub.trace_len = 0;
    stub.launches = 0;
    stub.have_last_launch = false;
    stub.misuse = 0;
    stub.misuse_text[0] = '\0';
    if (config != NULL)
        stub.config = *config;
    else
        cudastub_config_default(&stub.config);
    if (stub.config.devices < 0 || stub.config.devices > CUDASTUB_MAX_DEVICES)
        die("cudastub_reset: %d devices (0 to %d)", stub.config.devices, CUDASTUB_MAX_DEVICES);
    stub.epoch++;
    thread_sync();
    unlock();
}

cudastub_counts cudastub_counts_now(void)
{
    cudastub_counts c;
    memset(&c, 0, sizeof c);
    lock();
    for (size_t i = 0; i < MAX_BLOCKS; i++)
        if (stub.blocks[i].live) {
            c.blocks++;
            c.block_bytes += stub.blocks[i].size;
        }
    for (size_t i = 0; i < MAX_REGISTRATIONS; i++)
        c.registrations += stub.registrations[i].live;
    for (size_t i = 0; i < stub.op_count; i++)
        c.pending += stub.ops[i].pending;
    c.launches = stub.launches;
    c.misuse = stub.misuse;
    unlock();
    return c;
}

const char *cudastub_misuse_text(void)
{
    return stub.misuse_text;
}

cudaError_t cudastub_sticky_error(int device)
{
    lock();
    cudaError_t e = device >= 0 && device < CUDASTUB_MAX_DEVICES ? stub.devices[device].sticky
                                                                 : cudaSuccess;
    unlock();
    return e;
}

void cudastub_fail(cudastub_fn fn, unsigned nth, cudaError_t err)
{
    if ((unsigned)fn >= CUDASTUB_FN_COUNT)
        die("cudastub_fail: no function %d", (int)fn);
    lock();
    stub.faults[fn].countdown = nth;
    stub.faults[fn].err = err;
    unlock();
}

size_t cudastub_calls(cudastub_fn fn)
{
    lock();
    size_t n = (unsigned)fn < CUDASTUB_FN_COUNT ? stub.calls[fn] : 0;
    unlock();
    return n;
}

void cudastub_trace_begin(void)
{
    lock();
    stub.trace_len = 0;
    unlock();
}

size_t cudastub_trace(cudastub_fn *calls, size_t max)
{
    lock();
    size_t kept = stub.trace_len < TRACE_MAX ? stub.trace_len : TRACE_MAX;
    for (size_t i = 0; i < kept && i < max; i++)
        calls[i] = stub.trace[i];
    size_t n = stub.trace_len;
    unlock();
    return n;
}

/* Every counted entry point starts here, lock held: count and trace the call, fire its fault. */
static cudaError_t enter(cudastub_fn fn)
{
    stub.calls[fn]++;
    if (stub.trace_len < TRACE_MAX)
        stub.trace[stub.trace_len] = fn;
    stub.trace_len++;
    fault *f = &stub.faults[fn];
    if (f->countdown > 0 && --f->countdown == 0) {
        if (cudastub_is_sticky(f->err) && stub.config.devices > 0)
            stub.devices[tls.current].sticky = f->err;
        return f->err;
    }
    return cudaSuccess;
}

/* Every entry point returns through here: a failure is this thread's last error. */
static cudaError_t leave(cudaError_t err)
{
    if (err != cudaSuccess)
        tls.last_error = err;
    unlock();
    return err;
}

/* The runtime makes the current device's primary context current on this thread (creating it
 * anew after a reset); the context's sticky error, if any, is the call's answer. */
static cudaError_t use_context(void)
{
    if (stub.config.devices == 0)
        return cudaErrorNoDevice;
    int d = tls.current;
    tls.bound = true;
    tls.bound_device = d;
    tls.bound_generation = stub.devices[d].generation;
    return stub.devices[d].sticky;
}

/* ---------------------------------------------------------------------------------------------
 * Blocks
 * ------------------------------------------------------------------------------------------- */

static char *data_start(const block *b)
{
    return b->map + page_size();
}

static size_t data_size(const block *b)
{
    return b->map_size - 2 * page_size();
}

/* The block holding [p, p + size) on `device` (-1: any), or NULL. */
static block *block_holding(int device, const void *p, size_t size)
{
    uintptr_t a = (uintptr_t)p;
    for (size_t i = 0; i < MAX_BLOCKS; i++) {
        block *b = &stub.blocks[i];
        if (!b->live || (device >= 0 && b->device != device))
            continue;
        uintptr_t base = (uintptr_t)b->base;
        if (a >= base && a - base <= b->size && size <= b->size - (a - base))
            return b;
    }
    return NULL;
}

/* Does any live block overlap [p, p + size)? */
static bool touches_device_memory(const void *p, size_t size)
{
    uintptr_t a = (uintptr_t)p;
    for (size_t i = 0; i < MAX_BLOCKS; i++) {
        const block *b = &stub.blocks[i];
        uintptr_t base = (uintptr_t)b->base;
        if (b->live && a < base + b->size && base < a + (size ? size : 1))
            return true;
    }
    return false;
}

static void protect(block *b, int prot)
{
    if (mprotect(data_start(b), data_size(b), prot) != 0)
        die("mprotect: %s", strerror(errno));
}

static void check_canary(const block *b, const char *when)
{
    const unsigned char *p = (const unsigned char *)data_start(b);
    const unsigned char *end = p + data_size(b);
    for (const unsigned char *q = p; q < end; q++) {
        if (q == (const unsigned char *)b->base) {
            q += b->size - 1;
            continue;
        }
        if (*q != CANARY) {
            misuse("a write %s block %llu (%zu bytes at %p) damaged its slack at offset %td, "
                   "found %s",
                   q < (const unsigned char *)b->base ? "before" : "past the end of", b->id,
                   b->size, (void *)b->base, (const char *)q - b->base, when);
            return;
        }
    }
}

/* Make `b` host-accessible until close_opened. */
static void open_block(block *b)
{
    if (b->open)
        return;
    if (stub.opened_count == MAX_OPENED)
        die("more than %d blocks open at once", MAX_OPENED);
    protect(b, PROT_READ | PROT_WRITE);
    b->open = true;
    stub.opened[stub.opened_count++] = b;
}

static void close_opened(void)
{
    for (size_t i = 0; i < stub.opened_count; i++) {
        block *b = stub.opened[i];
        if (!b->live || !b->open)
            continue;
        check_canary(b, "after an operation on it");
        protect(b, PROT_NONE);
        b->open = false;
    }
    stub.opened_count = 0;
}

static size_t round_up(size_t x, size_t to)
{
    return (x + to - 1) / to * to;
}

static block *new_block(int device, size_t size)
{
    block *b = NULL;
    for (size_t i = 0; i < MAX_BLOCKS && b == NULL; i++)
        if (!stub.blocks[i].live)
            b = &stub.blocks[i];
    if (b == NULL)
        die("more than %d live blocks", MAX_BLOCKS);
    size_t page = page_size();
    size_t map_size = round_up(size + DEVICE_ALIGN, page) + 2 * page;
    char *map = NULL;
    /* A reset's dead block of the same size on this device: its address is handed out again. */
    for (size_t i = 0; i < MAX_RETIRED && map == NULL; i++) {
        retired *r = &stub.retired[i];
        if (r->live && r->device == device && r->map_size == map_size) {
            map = r->map;
            r->live = false;
        }
    }
    if (map == NULL) {
        map = mmap(NULL, map_size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (map == MAP_FAILED)
            return NULL;
    }
    memset(b, 0, sizeof *b);
    b->live = true;
    b->map = map;
    b->map_size = map_size;
    uintptr_t end = (uintptr_t)map + map_size - page;
    b->base = (char *)((end - size) & ~(uintptr_t)(DEVICE_ALIGN - 1));
    b->size = size;
    b->device = device;
    b->id = stub.next_id++;
    protect(b, PROT_READ | PROT_WRITE);
    memset(data_start(b), CANARY, data_size(b));
    memset(b->base, GARBAGE, size);
    protect(b, PROT_NONE);
    stub.devices[device].used += size;
    return b;
}

static void free_block(block *b)
{
    protect(b, PROT_READ);
    check_canary(b, "when it was freed");
    release_mapping(b->map, b->map_size);
    stub.devices[b->device].used -= b->size;
    b->live = false;
}

unsigned long long cudastub_block_of(int device, const void *p, size_t size)
{
    lock();
    block *b = block_holding(device, p, size);
    unsigned long long id = b != NULL ? b->id : 0;
    unlock();
    return id;
}

/* Is [p, p + size) inside one registered range (lock held)? */
static const registration *registration_holding(const void *p, size_t size)
{
    uintptr_t a = (uintptr_t)p;
    for (size_t i = 0; i < MAX_REGISTRATIONS; i++) {
        const registration *r = &stub.registrations[i];
        uintptr_t base = (uintptr_t)r->base;
        if (r->live && a >= base && a - base <= r->size && size <= r->size - (a - base))
            return r;
    }
    return NULL;
}

/* Is every byte of [p, p + size) registered, by one range or adjacent ones (lock held)? */
static bool all_registered(const void *p, size_t size)
{
    const char *at = p, *end = (const char *)p + size;
    while (at < end) {
        const registration *r = registration_holding(at, 1);
        if (r == NULL)
            return false;
        at = r->base + r->size;
    }
    return true;
}

bool cudastub_is_registered(const void *p, size_t size, unsigned *flags)
{
    bool found = false;
    uintptr_t a = (uintptr_t)p;
    lock();
    for (size_t i = 0; i < MAX_REGISTRATIONS && !found; i++) {
        const registration *r = &stub.registrations[i];
        uintptr_t base = (uintptr_t)r->base;
        if (r->live && a >= base && a - base <= r->size && size <= r->size - (a - base)) {
            found = true;
            if (flags != NULL)
                *flags = r->flags;
        }
    }
    unlock();
    return found;
}

static block *peek_block(const void *p, size_t size, const char *what)
{
    block *b = block_holding(-1, p, size);
    if (b == NULL)
        die("%s: [%p, +%zu) is inside no live device block", what, p, size);
    return b;
}

void cudastub_peek(void *dst, const void *device_src, size_t size)
{
    lock();
    open_block(peek_block(device_src, size, "cudastub_peek"));
    memcpy(dst, device_src, size);
    close_opened();
    unlock();
}

void cudastub_poke(void *device_dst, const void *src, size_t size)
{
    lock();
    open_block(peek_block(device_dst, size, "cudastub_poke"));
    memcpy(device_dst, src, size);
    close_opened();
    unlock();
}

void cudastub_fill(void *device_dst, int value, size_t size)
{
    lock();
    open_block(peek_block(device_dst, size, "cudastub_fill"));
    memset(device_dst, value, size);
    close_opened();
    unlock();
}

/* ---------------------------------------------------------------------------------------------
 * Streams and queued work
 * ------------------------------------------------------------------------------------------- */

/* Which stream `s` is, on the calling thread. */
static cudaError_t resolve_stream(cudaStream_t s, stream_key *key, bool *blocking)
{
    *blocking = true;
    if (s == NULL || s == cudaStreamLegacy) {
        *key = (stream_key){STREAM_LEGACY, tls.current, NULL};
        return cudaSuccess;
    }
    if (s == cudaStreamPerThread) {
        *key = (stream_key){STREAM_PER_THREAD, tls.current, &tls};
        return cudaSuccess;
    }
    uintptr_t at = (uintptr_t)s, first = (uintptr_t)stub.streams;
    if (at < first || at - first >= sizeof stub.streams ||
        (at - first) % sizeof stub.streams[0] != 0)
        return cudaErrorInvalidResourceHandle; /* not a stream this stand-in created */
    created_stream *cs = &stub.streams[(at - first) / sizeof stub.streams[0]];
    if (!cs->live)
        return cudaErrorInvalidResourceHandle;
    *key = (stream_key){STREAM_CREATED, cs->device, cs};
    *blocking = !cs->nonblocking;
    return cudaSuccess;
}

static bool same_stream(stream_key a, stream_key b)
{
    return a.type == b.type && a.device == b.device && a.id == b.id;
}

/* Must `later` wait for `earlier` (both queued, `earlier` first)? */
static bool depends(const op *later, const op *earlier)
{
    if (later->key.device != earlier->key.device)
        return false;
    if (same_stream(later->key, earlier->key))
        return true;
    if (later->key.type == STREAM_LEGACY && earlier->blocking)
        return true;
    return earlier->key.type == STREAM_LEGACY && later->blocking;
}

static const cudastub_twin *twin_named(const char *name);

/* An operation is done (run or dropped): release what it owns. */
static void retire_op(op *o)
{
    o->pending = false;
    free(o->staged);
    o->staged = NULL;
}

/* Run one operation now (lock held). A kernel that faults poisons its device. Work on a poisoned
 * device does not run. */
static void execute(op *o)
{
    device_state *d = &stub.devices[o->key.device];
    if (d->sticky != cudaSuccess) {
        retire_op(o);
        return;
    }
    block *b;
    switch (o->kind) {
    case OP_MEMSET:
        open_block(peek_block(o->dst, o->size, "memset"));
        memset(o->dst, o->value, o->size);
        break;
    case OP_MEMCPY:
        if ((b = block_holding(-1, o->dst, o->size)) != NULL)
            open_block(b);
        if ((b = block_holding(-1, o->src, o->size)) != NULL)
            open_block(b);
        memmove(o->dst, o->src, o->size);
        break;
    case OP_KERNEL: {
        if (stub.observer != NULL)
            stub.observer(&o->launch);
        cudaError_t err = o->twin->run(&o->launch);
        if (err != cudaSuccess) {
            if (!cudastub_is_sticky(err))
                misuse("the twin of %s returned %d, which is no device fault", o->launch.kernel,
                       (int)err);
            else
                d->sticky = err;
        }
        break;
    }
    }
    close_opened();
    retire_op(o);
}

static void compact_ops(void)
{
    size_t n = 0;
    for (size_t i = 0; i < stub.op_count; i++)
        if (stub.ops[i].pending)
            stub.ops[n++] = stub.ops[i];
    stub.op_count = n;
}

/* Run every operation among the first `end` queued that `target`, queued after them, waits for
 * (directly, or through another operation it waits for), in submission order. */
static void wait_for(const op *target, size_t end)
{
    bool needed[MAX_OPS];
    memset(needed, 0, sizeof needed);
    for (size_t i = end; i-- > 0;) {
        if (!stub.ops[i].pending)
            continue;
        needed[i] = depends(target, &stub.ops[i]);
        for (size_t j = i + 1; j < end && !needed[i]; j++)
            needed[i] = needed[j] && depends(&stub.ops[j], &stub.ops[i]);
    }
    for (size_t i = 0; i < end; i++)
        if (needed[i] && stub.ops[i].pending)
            execute(&stub.ops[i]);
}

/* Run the work queued on `key` so far: its last operation and what that waits for. Waiting for
 * the legacy stream waits for what an operation queued on it now would wait for, which includes
 * the earlier work of every blocking stream of the device. */
static void drain_stream(stream_key key, bool blocking)
{
    op target;
    memset(&target, 0, offsetof(op, params));
    target.key = key;
    target.blocking = blocking;
    if (key.type != STREAM_LEGACY) {
        size_t last = stub.op_count;
        for (size_t i = stub.op_count; i-- > 0 && last == stub.op_count;)
            if (stub.ops[i].pending && same_stream(stub.ops[i].key, key))
                last = i;
        if (last == stub.op_count)
            return; /* nothing queued on it */
        wait_for(&stub.ops[last], last);
        execute(&stub.ops[last]);
    } else {
        wait_for(&target, stub.op_count);
    }
    compact_ops();
}

/* Run the work queued on `device` (-1: everywhere). */
static void drain_device(int device)
{
    for (size_t i = 0; i < stub.op_count; i++)
        if (stub.ops[i].pending && (device < 0 || stub.ops[i].key.device == device))
            execute(&stub.ops[i]);
    compact_ops();
}

void cudastub_run_pending(void)
{
    lock();
    drain_device(-1);
    unlock();
}

static op *queue_op(enum op_kind kind, stream_key key, bool blocking)
{
    if (stub.op_count == MAX_OPS)
        drain_device(-1); /* the GPU catches up: a valid schedule too */
    op *o = &stub.ops[stub.op_count++];
    memset(o, 0, offsetof(op, params));
    o->pending = true;
    o->kind = kind;
    o->key = key;
    o->blocking = blocking;
    return o;
}

/* Resolve a stream that work is submitted to: it must belong to the current device. */
static cudaError_t submission_stream(cudaStream_t s, stream_key *key, bool *blocking)
{
    cudaError_t err = resolve_stream(s, key, blocking);
    if (err == cudaSuccess && key->device != tls.current)
        err = cudaErrorInvalidResourceHandle; /* another device's stream */
    return err;
}

/* ---------------------------------------------------------------------------------------------
 * Devices
 * ------------------------------------------------------------------------------------------- */

cudaError_t cudaGetDeviceCount(int *count)
{
    lock();
    cudaError_t err = enter(CUDASTUB_GET_DEVICE_COUNT);
    if (err == cudaSuccess && count == NULL)
        err = cudaErrorInvalidValue;
    if (err == cudaSuccess) {
        *count = stub.config.devices;
        if (stub.config.devices == 0)
            err = cudaErrorNoDevice;
    }
    return leave(err);
}

cudaError_t cudaGetDevice(int *device)
{
    lock();
    cudaError_t err = enter(CUDASTUB_GET_DEVICE);
    if (err == cudaSuccess && stub.config.devices == 0)
        err = cudaErrorNoDevice;
    if (err == cudaSuccess && device == NULL)
        err = cudaErrorInvalidValue;
    if (err == cudaSuccess)
        *device = tls.current;
    return leave(err);
}

cudaError_t cudaSetDevice(int device)
{
    lock();
    cudaError_t err = enter(CUDASTUB_SET_DEVICE);
    if (err == cudaSuccess && stub.config.devices == 0)
        err = cudaErrorNoDevice;
    if (err == cudaSuccess && (device < 0 || device >= stub.config.devices))
        err = cudaErrorInvalidDevice;
    if (err == cudaSuccess) {
        /* Since CUDA 12 cudaSetDevice makes the device's primary context current; it does not
         * report the context's sticky error (the next call that uses it does). */
        tls.current = device;
        (void)use_context();
    }
    return leave(err);
}

cudaError_t cudaDeviceGetAttribute(int *value, enum cudaDeviceAttr attr, int device)
{
    lock();
    cudaError_t err = enter(CUDASTUB_DEVICE_GET_ATTRIBUTE);
    if (err == cudaSuccess && stub.config.devices == 0)
        err = cudaErrorNoDevice;
    if (err == cudaSuccess && (device < 0 || device >= stub.config.devices))
        err = cudaErrorInvalidDevice;
    if (err == cudaSuccess && value == NULL)
        err = cudaErrorInvalidValue;
    if (err == cudaSuccess) {
        switch (attr) {
        case cudaDevAttrMultiProcessorCount:
            *value = stub.config.multiprocessors;
            break;
        case cudaDevAttrMaxThreadsPerMultiProcessor:
            *value = stub.config.threads_per_multiprocessor;
            break;
        case cudaDevAttrMaxThreadsPerBlock:
            *value = 1024;
            break;
        case cudaDevAttrWarpSize:
            *value = 32;
            break;
        default:
            err = cudaErrorNotSupported; /* not modelled */
            break;
        }
    }
    return leave(err);
}

cudaError_t cudaDeviceSynchronize(void)
{
    lock();
    cudaError_t err = enter(CUDASTUB_DEVICE_SYNCHRONIZE);
    if (err == cudaSuccess)
        err = use_context();
    if (err == cudaSuccess) {
        drain_device(tls.current);
        err = stub.devices[tls.current].sticky;
    }
    return leave(err);
}

cudaError_t cudaDeviceReset(void)
{
    lock();
    cudaError_t err = enter(CUDASTUB_DEVICE_RESET);
    if (err == cudaSuccess && stub.config.devices == 0)
        err = cudaErrorNoDevice;
    if (err == cudaSuccess) {
        int d = tls.current;
        /* Queued work is lost with the context. */
        for (size_t i = 0; i < stub.op_count; i++)
            if (stub.ops[i].key.device == d)
                retire_op(&stub.ops[i]);
        compact_ops();
        for (size_t i = 0; i < MAX_BLOCKS; i++) {
            block *b = &stub.blocks[i];
            if (!b->live || b->device != d)
                continue;
            protect(b, PROT_READ);
            check_canary(b, "when its context was reset");
            protect(b, PROT_NONE);
            retired *r = NULL;
            for (size_t j = 0; j < MAX_RETIRED && r == NULL; j++)
                if (!stub.retired[j].live)
                    r = &stub.retired[j];
            if (r == NULL)
                die("more than %d blocks died in context resets", MAX_RETIRED);
            *r = (retired){true, b->map, b->map_size, d};
            b->live = false;
        }
        for (size_t i = 0; i < MAX_REGISTRATIONS; i++)
            if (stub.registrations[i].device == d)
                stub.registrations[i].live = false;
        for (size_t i = 0; i < MAX_STREAMS; i++)
            if (stub.streams[i].device == d)
                stub.streams[i].live = false;
        stub.devices[d].used = 0;
        stub.devices[d].sticky = cudaSuccess;
        stub.devices[d].generation++; /* every thread's context on it is gone */
    }
    return leave(err);
}

/* ---------------------------------------------------------------------------------------------
 * Memory
 * ------------------------------------------------------------------------------------------- */

cudaError_t cudaMalloc(void **ptr, size_t size)
{
    lock();
    cudaError_t err = enter(CUDASTUB_MALLOC);
    if (err == cudaSuccess)
        err = use_context();
    if (err == cudaSuccess && ptr == NULL)
        err = cudaErrorInvalidValue;
    if (err == cudaSuccess) {
        device_state *d = &stub.devices[tls.current];
        block *b = NULL;
        if (size == 0)
            *ptr = NULL;
        else if (size > stub.config.memory - d->used || (b = new_block(tls.current, size)) == NULL)
            err = cudaErrorMemoryAllocation;
        else
            *ptr = b->base;
    }
    return leave(err);
}

cudaError_t cudaFree(void *ptr)
{
    lock();
    cudaError_t err = enter(CUDASTUB_FREE);
    if (err == cudaSuccess)
        err = use_context();
    if (err == cudaSuccess && ptr != NULL) {
        block *b = NULL;
        for (size_t i = 0; i < MAX_BLOCKS && b == NULL; i++)
            if (stub.blocks[i].live && stub.blocks[i].base == ptr)
                b = &stub.blocks[i];
        if (b == NULL) {
            misuse("cudaFree(%p): no live block starts there (freed twice, or never allocated)",
                   ptr);
            err = cudaErrorInvalidValue;
        } else {
            drain_device(b->device); /* cudaFree synchronizes */
            free_block(b);
        }
    }
    return leave(err);
}

cudaError_t cudaMemGetInfo(size_t *free_bytes, size_t *total_bytes)
{
    lock();
    cudaError_t err = enter(CUDASTUB_MEM_GET_INFO);
    if (err == cudaSuccess)
        err = use_context();
    if (err == cudaSuccess && (free_bytes == NULL || total_bytes == NULL))
        err = cudaErrorInvalidValue;
    if (err == cudaSuccess) {
        *total_bytes = stub.config.memory;
        *free_bytes = stub.config.memory - stub.devices[tls.current].used;
    }
    return leave(err);
}

cudaError_t cudaHostRegister(void *ptr, size_t size, unsigned int flags)
{
    lock();
    cudaError_t err = enter(CUDASTUB_HOST_REGISTER);
    if (err == cudaSuccess)
        err = use_context();
    if (err == cudaSuccess && (ptr == NULL || size == 0))
        err = cudaErrorInvalidValue;
    uintptr_t a = (uintptr_t)ptr;
    for (size_t i = 0; i < MAX_REGISTRATIONS && err == cudaSuccess; i++) {
        const registration *r = &stub.registrations[i];
        uintptr_t base = (uintptr_t)r->base;
        if (r->live && a < base + r->size && base < a + size) {
            misuse("cudaHostRegister(%p, %zu): overlaps the registered range [%p, +%zu)", ptr,
                   size, (void *)r->base, r->size);
            err = cudaErrorHostMemoryAlreadyRegistered;
        }
    }
    if (err == cudaSuccess && touches_device_memory(ptr, size)) {
        misuse("cudaHostRegister(%p, %zu): device memory", ptr, size);
        err = cudaErrorInvalidValue;
    }
    if (err == cudaSuccess) {
        /* The driver locks the pages: they must be mapped. */
        size_t page = page_size();
        uintptr_t first = a & ~(uintptr_t)(page - 1);
        size_t pages = (a + size - first + page - 1) / page;
        unsigned char *vec = malloc(pages);
        if (vec == NULL)
            die("out of memory");
        if (mincore((void *)first, pages * page, vec) != 0) {
            misuse("cudaHostRegister(%p, %zu): not mapped memory", ptr, size);
            err = cudaErrorInvalidValue;
        }
        free(vec);
    }
    if (err == cudaSuccess) {
        registration *r = NULL;
        for (size_t i = 0; i < MAX_REGISTRATIONS && r == NULL; i++)
            if (!stub.registrations[i].live)
                r = &stub.registrations[i];
        if (r == NULL)
            die("more than %d registrations", MAX_REGISTRATIONS);
        *r = (registration){true, ptr, size, flags, tls.current};
    }
    return leave(err);
}

cudaError_t cudaHostUnregister(void *ptr)
{
    lock();
    cudaError_t err = enter(CUDASTUB_HOST_UNREGISTER);
    if (err == cudaSuccess)
        err = use_context();
    if (err == cudaSuccess) {
        registration *r = NULL;
        for (size_t i = 0; i < MAX_REGISTRATIONS && r == NULL; i++)
            if (stub.registrations[i].live && stub.registrations[i].base == ptr)
                r = &stub.registrations[i];
        if (r == NULL) {
            misuse("cudaHostUnregister(%p): no registered range starts there", ptr);
            err = cudaErrorHostMemoryNotRegistered;
        } else {
            r->live = false;
            /* Its pages are about to be unlocked, and usually unmapped: no copy may use them. */
            uintptr_t base = (uintptr_t)r->base;
            for (size_t i = 0; i < stub.op_count; i++) {
                const op *o = &stub.ops[i];
                uintptr_t host = (uintptr_t)(block_holding(-1, o->dst, o->size) ? o->src : o->dst);
                if (o->pending && o->kind == OP_MEMCPY && host < base + r->size &&
                    base < host + o->size) {
                    misuse("cudaHostUnregister(%p) while a queued copy still uses the range", ptr);
                    break;
                }
            }
        }
    }
    return leave(err);
}

/* A range of device memory on the current device that an operation may touch. */
static cudaError_t check_device_range(const char *call, const void *p, size_t size)
{
    if (block_holding(tls.current, p, size) != NULL)
        return cudaSuccess;
    misuse("%s: [%p, +%zu) is inside no live block of device %d", call, p, size, tls.current);
    return cudaErrorInvalidValue;
}

static cudaError_t memset_async(const char *call, void *p, int value, size_t size,
                                cudaStream_t s, stream_key *key)
{
    bool blocking;
    cudaError_t err = use_context();
    if (err == cudaSuccess)
        err = submission_stream(s, key, &blocking);
    if (err == cudaSuccess && size > 0)
        err = check_device_range(call, p, size);
    if (err == cudaSuccess && size > 0) {
        op *o = queue_op(OP_MEMSET, *key, blocking);
        o->dst = p;
        o->value = value;
        o->size = size;
    }
    return err;
}

cudaError_t cudaMemsetAsync(void *p, int value, size_t size, cudaStream_t stream)
{
    lock();
    stream_key key;
    cudaError_t err = enter(CUDASTUB_MEMSET_ASYNC);
    if (err == cudaSuccess)
        err = memset_async("cudaMemsetAsync", p, value, size, stream, &key);
    return leave(err);
}

cudaError_t cudaMemset(void *p, int value, size_t size)
{
    lock();
    stream_key key;
    cudaError_t err = enter(CUDASTUB_MEMSET);
    if (err == cudaSuccess)
        err = memset_async("cudaMemset", p, value, size, NULL, &key);
    if (err == cudaSuccess) {
        drain_stream(key, true);
        err = stub.devices[tls.current].sticky;
    }
    return leave(err);
}

static cudaError_t memcpy_async(const char *call, void *dst, const void *src, size_t size,
                                enum cudaMemcpyKind kind, cudaStream_t s, stream_key *key)
{
    bool blocking;
    cudaError_t err = use_context();
    if (err == cudaSuccess)
        err = submission_stream(s, key, &blocking);
    if (err != cudaSuccess || size == 0)
        return err;
    if (dst == NULL || src == NULL)
        return cudaErrorInvalidValue;
    bool dst_device, src_device;
    switch (kind) {
    case cudaMemcpyHostToHost:
        dst_device = src_device = false;
        break;
    case cudaMemcpyHostToDevice:
        dst_device = true;
        src_device = false;
        break;
    case cudaMemcpyDeviceToHost:
        dst_device = false;
        src_device = true;
        break;
    case cudaMemcpyDeviceToDevice:
        dst_device = src_device = true;
        break;
    case cudaMemcpyDefault:
        dst_device = block_holding(-1, dst, size) != NULL;
        src_device = block_holding(-1, src, size) != NULL;
        break;
    default:
        return cudaErrorInvalidMemcpyDirection;
    }
    if (dst_device)
        err = check_device_range(call, dst, size);
    else if (touches_device_memory(dst, size)) {
        misuse("%s: destination [%p, +%zu) is device memory, given as host memory", call, dst,
               size);
        err = cudaErrorInvalidValue;
    }
    if (err == cudaSuccess && src_device)
        err = check_device_range(call, src, size);
    else if (err == cudaSuccess && touches_device_memory(src, size)) {
        misuse("%s: source [%p, +%zu) is device memory, given as host memory", call, src, size);
        err = cudaErrorInvalidValue;
    }
    if (err != cudaSuccess)
        return err;
    /* CUDA's documented behaviour with pageable (unregistered) host memory: a copy from it has
     * taken the bytes when the call returns (it is staged), and a copy into it from the device
     * returns only once it is complete. Copies to and from pinned memory are truly queued. */
    bool src_pageable = !src_device && !all_registered(src, size);
    bool dst_pageable = !dst_device && !all_registered(dst, size);
    op *o = queue_op(OP_MEMCPY, *key, blocking);
    o->dst = dst;
    o->src = src;
    o->size = size;
    if (src_pageable) {
        o->staged = malloc(size);
        if (o->staged == NULL)
            die("out of memory");
        memcpy(o->staged, src, size);
        o->src = o->staged;
    }
    if (dst_pageable) {
        size_t last = (size_t)(o - stub.ops);
        wait_for(o, last);
        execute(o);
        compact_ops();
    }
    return cudaSuccess;
}

cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t size, enum cudaMemcpyKind kind,
                            cudaStream_t stream)
{
    lock();
    stream_key key;
    cudaError_t err = enter(CUDASTUB_MEMCPY_ASYNC);
    if (err == cudaSuccess)
        err = memcpy_async("cudaMemcpyAsync", dst, src, size, kind, stream, &key);
    return leave(err);
}

cudaError_t cudaMemcpy(void *dst, const void *src, size_t size, enum cudaMemcpyKind kind)
{
    lock();
    stream_key key;
    cudaError_t err = enter(CUDASTUB_MEMCPY);
    if (err == cudaSuccess)
        err = memcpy_async("cudaMemcpy", dst, src, size, kind, NULL, &key);
    if (err == cudaSuccess) {
        drain_stream(key, true);
        err = stub.devices[tls.current].sticky;
    }
    return leave(err);
}

/* ---------------------------------------------------------------------------------------------
 * Streams
 * ------------------------------------------------------------------------------------------- */

cudaError_t cudaStreamCreateWithFlags(cudaStream_t *stream, unsigned int flags)
{
    lock();
    cudaError_t err = enter(CUDASTUB_STREAM_CREATE);
    if (err == cudaSuccess)
        err = use_context();
    if (err == cudaSuccess && stream == NULL)
        err = cudaErrorInvalidValue;
    if (err == cudaSuccess) {
        created_stream *cs = NULL;
        for (size_t i = 0; i < MAX_STREAMS && cs == NULL; i++)
            if (!stub.streams[i].live)
                cs = &stub.streams[i];
        if (cs == NULL)
            die("more than %d streams", MAX_STREAMS);
        *cs = (created_stream){true, tls.current, (flags & cudaStreamNonBlocking) != 0};
        *stream = (cudaStream_t)cs;
    }
    return leave(err);
}

cudaError_t cudaStreamCreate(cudaStream_t *stream)
{
    return cudaStreamCreateWithFlags(stream, cudaStreamDefault);
}

cudaError_t cudaStreamDestroy(cudaStream_t stream)
{
    lock();
    stream_key key;
    bool blocking;
    cudaError_t err = enter(CUDASTUB_STREAM_DESTROY);
    if (err == cudaSuccess)
        err = resolve_stream(stream, &key, &blocking);
    if (err == cudaSuccess && key.type != STREAM_CREATED)
        err = cudaErrorInvalidResourceHandle;
    if (err == cudaSuccess) {
        drain_stream(key, blocking); /* its work completes, as on a device */
        ((created_stream *)stream)->live = false;
    }
    return leave(err);
}

cudaError_t cudaStreamSynchronize(cudaStream_t stream)
{
    lock();
    stream_key key;
    bool blocking;
    cudaError_t err = enter(CUDASTUB_STREAM_SYNCHRONIZE);
    if (err == cudaSuccess && stub.config.devices == 0)
        err = cudaErrorNoDevice;
    if (err == cudaSuccess) {
        (void)use_context(); /* what counts is the stream's device, below */
        err = resolve_stream(stream, &key, &blocking);
    }
    if (err == cudaSuccess) {
        drain_stream(key, blocking);
        err = stub.devices[key.device].sticky;
    }
    return leave(err);
}

/* ---------------------------------------------------------------------------------------------
 * Errors
 * ------------------------------------------------------------------------------------------- */

cudaError_t cudaGetLastError(void)
{
    lock();
    cudaError_t err = tls.last_error;
    tls.last_error = cudaSuccess;
    if (err == cudaSuccess && stub.config.devices > 0)
        err = stub.devices[tls.current].sticky; /* a sticky error is never cleared */
    unlock();
    return err;
}

cudaError_t cudaPeekAtLastError(void)
{
    lock();
    cudaError_t err = tls.last_error;
    if (err == cudaSuccess && stub.config.devices > 0)
        err = stub.devices[tls.current].sticky;
    unlock();
    return err;
}

static const struct {
    cudaError_t err;
    const char *name;
    const char *text;
} error_table[] = {
    {cudaSuccess, "cudaSuccess", "no error"},
    {cudaErrorInvalidValue, "cudaErrorInvalidValue", "invalid argument"},
    {cudaErrorMemoryAllocation, "cudaErrorMemoryAllocation", "out of memory"},
    {cudaErrorInitializationError, "cudaErrorInitializationError", "initialization error"},
    {cudaErrorInvalidConfiguration, "cudaErrorInvalidConfiguration",
     "invalid configuration argument"},
    {cudaErrorInvalidMemcpyDirection, "cudaErrorInvalidMemcpyDirection",
     "invalid copy direction for memcpy"},
    {cudaErrorInsufficientDriver, "cudaErrorInsufficientDriver",
     "CUDA driver version is insufficient for CUDA runtime version"},
    {cudaErrorNoDevice, "cudaErrorNoDevice", "no CUDA-capable device is detected"},
    {cudaErrorInvalidDevice, "cudaErrorInvalidDevice", "invalid device ordinal"},
    {cudaErrorInvalidDeviceFunction, "cudaErrorInvalidDeviceFunction", "invalid device function"},
    {cudaErrorInvalidResourceHandle, "cudaErrorInvalidResourceHandle", "invalid resource handle"},
    {cudaErrorIllegalAddress, "cudaErrorIllegalAddress",
     "an illegal memory access was encountered"},
    {cudaErrorLaunchOutOfResources, "cudaErrorLaunchOutOfResources",
     "too many resources requested for launch"},
    {cudaErrorLaunchFailure, "cudaErrorLaunchFailure", "unspecified launch failure"},
    {cudaErrorHostMemoryAlreadyRegistered, "cudaErrorHostMemoryAlreadyRegistered",
     "part or all of the requested memory range is already mapped"},
    {cudaErrorHostMemoryNotRegistered, "cudaErrorHostMemoryNotRegistered",
     "pointer does not correspond to a registered memory region"},
    {cudaErrorNotSupported, "cudaErrorNotSupported", "operation not supported"},
    {cudaErrorSymbolNotFound, "cudaErrorSymbolNotFound", "named symbol not found"},
    {cudaErrorUnknown, "cudaErrorUnknown", "unknown error"},
};

const char *cudaGetErrorName(cudaError_t err)
{
    for (size_t i = 0; i < sizeof error_table / sizeof error_table[0]; i++)
        if (error_table[i].err == err)
            return error_table[i].name;
    return "cudaErrorUnknown";
}

const char *cudaGetErrorString(cudaError_t err)
{
    for (size_t i = 0; i < sizeof error_table / sizeof error_table[0]; i++)
        if (error_table[i].err == err)
            return error_table[i].text;
    return "unrecognized error code";
}

/* ---------------------------------------------------------------------------------------------
 * The driver's pointer attributes
 * ------------------------------------------------------------------------------------------- */

static CUresult pointer_get_attribute(void *data, CUpointer_attribute attribute, CUdeviceptr ptr)
{
    lock();
    CUresult res = (CUresult)enter(CUDASTUB_POINTER_GET_ATTRIBUTE);
    if (res == CUDA_SUCCESS && stub.config.devices == 0)
        res = CUDA_ERROR_NO_DEVICE;
    /* The driver API works in the thread's current context, which a reset destroyed. */
    if (res == CUDA_SUCCESS &&
        (!tls.bound || tls.bound_device != tls.current ||
         tls.bound_generation != stub.devices[tls.current].generation))
        res = CUDA_ERROR_INVALID_CONTEXT;
    if (res == CUDA_SUCCESS && stub.devices[tls.current].sticky != cudaSuccess)
        res = (CUresult)stub.devices[tls.current].sticky;
    if (res == CUDA_SUCCESS && (attribute != CU_POINTER_ATTRIBUTE_BUFFER_ID || data == NULL))
        res = CUDA_ERROR_NOT_SUPPORTED; /* not modelled */
    if (res == CUDA_SUCCESS) {
        block *b = block_holding(-1, (const void *)(uintptr_t)ptr, 1);
        if (b == NULL)
            res = CUDA_ERROR_INVALID_VALUE;
        else
            *(unsigned long long *)data = b->id;
    }
    unlock();
    return res;
}

cudaError_t cudaGetDriverEntryPointByVersion(const char *symbol, void **fn,
                                             unsigned int cuda_version, unsigned long long flags,
                                             enum cudaDriverEntryPointQueryResult *status)
{
    (void)cuda_version;
    (void)flags;
    lock();
    cudaError_t err = enter(CUDASTUB_GET_DRIVER_ENTRY_POINT);
    if (err == cudaSuccess && stub.config.devices == 0)
        err = cudaErrorNoDevice;
    if (err == cudaSuccess && (symbol == NULL || fn == NULL))
        err = cudaErrorInvalidValue;
    if (err == cudaSuccess) {
        bool found = stub.config.buffer_ids && strcmp(symbol, "cuPointerGetAttribute") == 0;
        *fn = NULL;
        if (found)
            *(CUresult (**)(void *, CUpointer_attribute, CUdeviceptr))fn = pointer_get_attribute;
        if (status != NULL)
            *status = found ? cudaDriverEntryPointSuccess : cudaDriverEntryPointSymbolNotFound;
    }
    return leave(err);
}

/* ---------------------------------------------------------------------------------------------
 * Kernels: what nvcc's host stubs call, and launches
 * ------------------------------------------------------------------------------------------- */

/* nvcc's registration code (crt/host_runtime.h) declares these for C++ only. */
void **__cudaRegisterFatBinary(void *fat_cubin);
void __cudaRegisterFatBinaryEnd(void **handle);
void __cudaUnregisterFatBinary(void **handle);
void __cudaRegisterFunction(void **handle, const char *host_fun, char *device_fun,
                            const char *device_name, int thread_limit, uint3 *tid, uint3 *bid,
                            dim3 *block_dim, dim3 *grid_dim, int *warp_size);
void __cudaRegisterVar(void **handle, char *host_var, char *device_address,
                       const char *device_name, int ext, size_t size, int constant, int global);
char __cudaInitModule(void **handle);
unsigned __cudaPushCallConfiguration(dim3 grid, dim3 block, size_t shared, struct CUstream_st *s);
cudaError_t __cudaPopCallConfiguration(dim3 *grid, dim3 *block, size_t *shared, void *stream);
cudaError_t __cudaGetKernel(cudaKernel_t *kernel, const void *host_fun);
cudaError_t __cudaLaunchKernel(cudaKernel_t kernel, dim3 grid, dim3 block, void **args,
                               size_t shared, cudaStream_t stream);
cudaError_t __cudaLaunchKernel_ptsz(cudaKernel_t kernel, dim3 grid, dim3 block, void **args,
                                    size_t shared, cudaStream_t stream);

static void *fat_binary_handle; /* one handle serves every translation unit */

void **__cudaRegisterFatBinary(void *fat_cubin)
{
    (void)fat_cubin;
    return &fat_binary_handle;
}

void __cudaRegisterFatBinaryEnd(void **handle)
{
    (void)handle;
}

void __cudaUnregisterFatBinary(void **handle)
{
    (void)handle;
}

void __cudaRegisterFunction(void **handle, const char *host_fun, char *device_fun,
                            const char *device_name, int thread_limit, uint3 *tid, uint3 *bid,
                            dim3 *block_dim, dim3 *grid_dim, int *warp_size)
{
    (void)handle;
    (void)device_fun;
    (void)thread_limit;
    (void)tid;
    (void)bid;
    (void)block_dim;
    (void)grid_dim;
    (void)warp_size;
    pthread_mutex_lock(&stub.lock); /* runs from constructors: no configuration needed */
    if (stub.kernel_count == MAX_KERNELS)
        die("more than %d kernels registered", MAX_KERNELS);
    stub.kernels[stub.kernel_count++] = (kernel){host_fun, device_name};
    pthread_mutex_unlock(&stub.lock);
}

void __cudaRegisterVar(void **handle, char *host_var, char *device_address,
                       const char *device_name, int ext, size_t size, int constant, int global)
{
    (void)handle;
    (void)host_var;
    (void)device_address;
    (void)device_name;
    (void)ext;
    (void)size;
    (void)constant;
    (void)global;
}

char __cudaInitModule(void **handle)
{
    (void)handle;
    return 1;
}

unsigned __cudaPushCallConfiguration(dim3 grid, dim3 block, size_t shared, struct CUstream_st *s)
{
    lock();
    if (tls.config_depth == CONFIG_DEPTH)
        die("launch configurations nested deeper than %d", CONFIG_DEPTH);
    tls.configs[tls.config_depth++] = (launch_config){grid, block, shared, s};
    unlock();
    return 0;
}

cudaError_t __cudaPopCallConfiguration(dim3 *grid, dim3 *block, size_t *shared, void *stream)
{
    lock();
    cudaError_t err = cudaSuccess;
    if (tls.config_depth == 0) {
        err = cudaErrorInvalidConfiguration;
    } else {
        launch_config c = tls.configs[--tls.config_depth];
        *grid = c.grid;
        *block = c.block;
        *shared = c.shared;
        *(cudaStream_t *)stream = c.stream;
    }
    unlock();
    return err;
}

static const kernel *kernel_at(const void *host_fun)
{
    for (size_t i = 0; i < stub.kernel_count; i++)
        if (stub.kernels[i].host_fun == host_fun)
            return &stub.kernels[i];
    return NULL;
}

cudaError_t __cudaGetKernel(cudaKernel_t *out, const void *host_fun)
{
    lock();
    const kernel *k = kernel_at(host_fun);
    *out = (cudaKernel_t)(uintptr_t)k;
    unlock();
    return k != NULL ? cudaSuccess : cudaErrorInvalidDeviceFunction;
}

void cudastub_add_twin(const cudastub_twin *twin)
{
    lock();
    if (stub.twin_count == MAX_TWINS)
        die("more than %d twins", MAX_TWINS);
    stub.twins[stub.twin_count++] = twin;
    unlock();
}

static const cudastub_twin *twin_named(const char *name)
{
    for (size_t i = 0; i < cudastub_nalloc_twin_count; i++)
        if (strcmp(cudastub_nalloc_twins[i].kernel, name) == 0)
            return &cudastub_nalloc_twins[i];
    for (size_t i = 0; i < stub.twin_count; i++)
        if (strcmp(stub.twins[i]->kernel, name) == 0)
            return stub.twins[i];
    return NULL;
}

static cudaError_t launch(const kernel *k, dim3 grid, dim3 block, void **args, size_t shared,
                          cudaStream_t stream)
{
    cudaError_t err = enter(CUDASTUB_LAUNCH_KERNEL);
    if (err == cudaSuccess)
        err = use_context();
    if (err != cudaSuccess)
        return err;
    if (k == NULL) {
        misuse("cudaLaunchKernel of a function that no host stub registered");
        return cudaErrorInvalidDeviceFunction;
    }
    const cudastub_twin *twin = twin_named(k->name);
    if (twin == NULL) {
        misuse("cudaLaunchKernel of %s, which has no host twin", k->name);
        return cudaErrorInvalidDeviceFunction;
    }
    unsigned long long threads = (unsigned long long)block.x * block.y * block.z;
    if (grid.x == 0 || grid.y == 0 || grid.z == 0 || grid.x > 0x7fffffffu || grid.y > 65535 ||
        grid.z > 65535 || threads == 0 || threads > 1024 || block.z > 64) {
        misuse("cudaLaunchKernel of %s with grid (%u, %u, %u) and block (%u, %u, %u)", k->name,
               grid.x, grid.y, grid.z, block.x, block.y, block.z);
        return cudaErrorInvalidConfiguration;
    }
    if (twin->max_threads != 0 && threads > twin->max_threads) {
        misuse("cudaLaunchKernel of %s with %llu threads per block, over its launch bounds (%u)",
               k->name, threads, twin->max_threads);
        return cudaErrorLaunchOutOfResources;
    }
    if (shared > SHARED_MAX)
        return cudaErrorInvalidValue;
    stream_key key;
    bool blocking;
    err = submission_stream(stream, &key, &blocking);
    if (err != cudaSuccess)
        return err;
    op *o = queue_op(OP_KERNEL, key, blocking);
    o->twin = twin;
    o->launch = (cudastub_launch){k->name, grid, block, shared, tls.current, stream, {NULL}};
    size_t offset = 0;
    for (unsigned i = 0; i < twin->arg_count; i++) {
        size_t size = twin->arg_sizes[i];
        offset = round_up(offset, 16);
        if (offset + size > PARAM_BYTES)
            die("the arguments of %s take more than %d bytes", k->name, PARAM_BYTES);
        memcpy(o->params + offset, args[i], size);
        o->launch.args[i] = o->params + offset;
        offset += size;
    }
    stub.launches++;
    stub.last_launch = o->launch;
    memset(stub.last_launch.args, 0, sizeof stub.last_launch.args);
    stub.have_last_launch = true;
    return cudaSuccess;
}

cudaError_t cudaLaunchKernel(const void *func, dim3 grid, dim3 block, void **args, size_t shared,
                             cudaStream_t stream)
{
    lock();
    return leave(launch(kernel_at(func), grid, block, args, shared, stream));
}

cudaError_t __cudaLaunchKernel(cudaKernel_t kernel, dim3 grid, dim3 block, void **args,
                               size_t shared, cudaStream_t stream)
{
    lock();
    return leave(launch((const struct kernel *)(uintptr_t)kernel, grid, block, args, shared,
                        stream));
}

cudaError_t __cudaLaunchKernel_ptsz(cudaKernel_t kernel, dim3 grid, dim3 block, void **args,
                                    size_t shared, cudaStream_t stream)
{
    return __cudaLaunchKernel(kernel, grid, block, args, shared,
                              stream == NULL ? cudaStreamPerThread : stream);
}

bool cudastub_kernel_access(int device, void *p, size_t size)
{
    lock();
    block *b = block_holding(device, p, size);
    if (b != NULL)
        open_block(b);
    else
        misuse("a kernel on device %d accessed [%p, +%zu), inside no live block of it", device, p,
               size);
    unlock();
    return b != NULL;
}

bool cudastub_last_launch(cudastub_launch *out)
{
    lock();
    bool have = stub.have_last_launch;
    if (have)
        *out = stub.last_launch;
    unlock();
    return have;
}

void cudastub_observe_kernels(void (*observer)(const cudastub_launch *l))
{
    lock();
    stub.observer = observer;
    unlock();
}
