/* cuda/pinned.c - pinned host arenas: the host arena's own mapping, page-locked for CUDA.
 *
 * A prover stages NTT inputs and results through host memory that the GPU's copy engines can
 * reach directly. Pageable memory goes through a driver bounce buffer at a fraction of the link's
 * bandwidth; pinned memory is DMA'd in place. Pinning is expensive, though: page-locking runs at
 * about 1-2 GB/s by production provers' reports (not measured here, no GPU), so a prover that
 * calls cudaHostAlloc per proof pays seconds per proof for it.
 * A pinned arena pays once, at creation, and every proof after that reuses the locked pages.
 *
 * The memory is exactly a host arena's (backing_host.c: one mmap between PROT_NONE guards, huge
 * pages, locking, no-dump, wipe-on-fork), and its usable range is then registered with
 * cudaHostRegister(Portable), so every device in the process can use it. Registration goes in
 * chunks of config.pin_chunk bytes (default 1 GiB, NALLOC_PIN_CHUNK): a single huge registration
 * can fail where chunks succeed, and a failure part-way is undone cleanly. The seconds spent
 * registering are in nalloc_stats.pin_seconds.
 *
 * Without a CUDA driver, creation fails with NALLOC_ERR_NO_DEVICE, unless the config asks for
 * NALLOC_FLAG_PIN_FALLBACK: then the arena is a locked host arena (NALLOC_FLAG_LOCK is added to
 * the request) and nalloc_stats.pin_fallback says so. memfd_secret memory cannot be registered
 * with CUDA, so NALLOC_FLAG_SECRET is refused with NALLOC_ERR_UNSUPPORTED.
 *
 * Teardown order: arena.c wipes a witness arena first (through host_zero, while the pages are
 * still ours), then destroy unregisters every chunk and releases the mapping. A wipe in stream
 * order (nalloc_wipe_async) waits for the stream before zeroing (pinned_zero).
 */
#include "cuda_internal.h"
#include "prim.h"

/* The usable range of a host mapping: everything between the guards, a whole number of pages. */
static void usable_range(const na_memory *m, char **base, size_t *size)
{
    *base = (char *)m->map_start + m->guard_size;
    *size = m->reserved - 2 * m->guard_size;
}

/* Unregister the chunks covering [base, base + size), ignoring failures: it runs on teardown and
 * on rollback of a failed creation, where nothing better can be done with an error. */
static void unregister_chunks(char *base, size_t size, size_t chunk)
{
    for (size_t done = 0; done < size; done += chunk)
        (void)cudaHostUnregister(base + done);
    (void)cudaGetLastError();
}

/* Page-lock the arena's usable range in chunks; all or nothing. */
static nalloc_status register_chunks(na_memory *m)
{
    char *base;
    size_t size;
    usable_range(m, &base, &size);
    size_t chunk = m->config->pin_chunk;
    double start = na_prim_now();
    for (size_t done = 0; done < size; done += chunk) {
        size_t len = size - done < chunk ? size - done : chunk;
        cudaError_t err = cudaHostRegister(base + done, len, cudaHostRegisterPortable);
        if (err != cudaSuccess) {
            nalloc_status st = na_cuda_status(err, "cudaHostRegister");
            unregister_chunks(base, done, chunk);
            return st;
        }
    }
    m->pin_seconds = na_prim_now() - start;
    return NALLOC_OK;
}

static nalloc_status pinned_create(na_memory *m)
{
    nalloc_arena_config *c = m->config;
    if (c->flags & NALLOC_FLAG_SECRET) { /* secretmem pages cannot be pinned by the driver */
        na_cause("NALLOC_FLAG_SECRET: memfd_secret memory cannot be registered with CUDA");
        return NALLOC_ERR_UNSUPPORTED;
    }

    /* The chunk actually used, kept in the config so that destroy unregisters the same chunks:
     * whole pages, 0 meaning the NALLOC_PIN_CHUNK default (and a default of 0: one chunk). */
    size_t page = na_prim_page_size();
    size_t chunk = c->pin_chunk ? c->pin_chunk : na_option_get(NA_OPTION_PIN_CHUNK);
    if (chunk == 0 || !na_round_up(chunk, page, &chunk))
        chunk = SIZE_MAX - (SIZE_MAX % page);
    c->pin_chunk = chunk;

    nalloc_status st = na_cuda_ready();
    if (st != NALLOC_OK) {
        if (!(c->flags & NALLOC_FLAG_PIN_FALLBACK))
            return st;
        na_cause_clear(); /* recovered: the probe's NO_DEVICE explains nothing that follows */
        c->flags |= NALLOC_FLAG_LOCK;
        st = na_backing_host.create(m);
        m->pin_fallback = st == NALLOC_OK;
        return st;
    }

    st = na_backing_host.create(m);
    if (st != NALLOC_OK)
        return st;
    st = register_chunks(m);
    if (st != NALLOC_OK) {
        na_backing_host.destroy(m);
        return st;
    }
    m->pinned = true;
    return NALLOC_OK;
}

static void pinned_destroy(na_memory *m)
{
    if (m->pinned) {
        char *base;
        size_t size;
        usable_range(m, &base, &size);
        unregister_chunks(base, size, m->config->pin_chunk);
        m->pinned = false;
    }
    na_backing_host.destroy(m);
}

/* Copies into a pinned arena are DMA that the CPU's stores do not order against: a copy still
 * queued when the CPU zeroes the bytes lands after the wipe and puts the data back. So a wipe in
 * stream order (nalloc_wipe_async: `stream` set) first waits for the work queued on `stream`,
 * then zeroes on the host. The bytes are zeroed even when the wait fails (a sticky CUDA error),
 * and the failure is reported: the wipe was not ordered after the stream's copies. Synchronous
 * wipes (stream NULL: nalloc_wipe, destroy, exit, zeroed allocations) wait for nothing; their
 * callers have finished the copies, as for any host memory they hand back. */
static nalloc_status pinned_zero(const na_memory *m, size_t offset, size_t length, void *stream)
{
    nalloc_status waited = NALLOC_OK;
    if (stream != NULL && m->pinned)
        waited = na_cuda_status(cudaStreamSynchronize((cudaStream_t)stream),
                                "cudaStreamSynchronize (pinned wipe)");
    nalloc_status st = na_backing_host.zero(m, offset, length, stream);
    return st != NALLOC_OK ? st : waited;
}

const na_backing na_backing_pinned = {
    .name = "pinned",
    .create = pinned_create,
    .destroy = pinned_destroy,
    .zero = pinned_zero,
    .fresh_is_zero = true,
    .host_accessible = true,
};
