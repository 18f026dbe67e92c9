/* cuda/staging.c - checked asynchronous copies between pinned and device arenas.
 *
 * Staging is what a prover does around every NTT: fill a polynomial in a pinned host arena,
 * upload it into a device arena, run the kernels, download the result into the pinned arena.
 * cudaMemcpyAsync itself checks nothing about where its pointers came from, and an off-by-one in
 * a size computed from a trace height copies someone else's data, or into it, silently. So
 * nalloc_stage_async checks, before CUDA sees anything, that each range lies inside what its
 * arena has handed out, [base, base + offset), and that the arenas are a pinned one and a device
 * one. Those checks are a few loads and compares; the copy itself is the DMA engines' business.
 *
 * The handed-out part is read with one relaxed load of the arena's offset (na_range_inside, the
 * check every "does this range lie in the arena" question goes through). Allocations racing
 * with the check only raise it; a rollback or reset racing with it breaks the phase-boundary
 * contract of nalloc.h, as any use of the released block would.
 */
#include "cuda_internal.h"

#include "nalloc/cuda.h"

/* Check one side of a copy: the memory of a (live) arena of memory kind `want` whose block holds
 * the range. `side` ("source", "destination") for the cause. */
static nalloc_status check_side(const na_memory *m, nalloc_memory want, const void *p, size_t size,
                                const char *side)
{
    if (m->config->memory != want) {
        na_cause("the %s arena \"%s\" is not a %s arena", side, m->name,
                 want == NALLOC_MEMORY_PINNED ? "pinned" : "device");
        return NALLOC_ERR_INVALID;
    }
    if (want == NALLOC_MEMORY_PINNED && !m->pinned) {
        na_cause("the %s arena \"%s\" %s", side, m->name,
                 m->pin_fallback ? "fell back to locked host memory (no CUDA driver)"
                                 : "is not registered with CUDA");
        return m->pin_fallback ? NALLOC_ERR_NO_DEVICE : NALLOC_ERR_INVALID;
    }
    size_t offset;
    if (!na_range_inside(m->base, na_atomic_load(m->offset), p, size, &offset)) {
        na_cause("the %s range of %zu bytes is not inside what arena \"%s\" handed out", side,
                 size, m->name);
        return NALLOC_ERR_INVALID;
    }
    return NALLOC_OK;
}

nalloc_status nalloc_stage_async(const nalloc_arena *dst_arena, void *dst,
                                 const nalloc_arena *src_arena, const void *src, size_t size,
                                 cudaStream_t stream)
{
    static const char call[] = "nalloc_stage_async";
    if (na_arena_check(dst_arena) != NALLOC_OK)
        return na_arena_refuse(dst_arena, call);
    if (na_arena_check(src_arena) != NALLOC_OK)
        return na_arena_refuse(src_arena, call);
    na_cause_clear();
    nalloc_status st;

    const na_memory *dst_m = na_arena_memory(dst_arena), *src_m = na_arena_memory(src_arena);
    enum cudaMemcpyKind kind;
    nalloc_memory dst_memory, src_memory;
    if (src_m->config->memory == NALLOC_MEMORY_PINNED) {
        kind = cudaMemcpyHostToDevice;
        src_memory = NALLOC_MEMORY_PINNED;
        dst_memory = NALLOC_MEMORY_DEVICE;
    } else {
        kind = cudaMemcpyDeviceToHost;
        src_memory = NALLOC_MEMORY_DEVICE;
        dst_memory = NALLOC_MEMORY_PINNED;
    }
    st = check_side(src_m, src_memory, src, size, "source");
    if (st == NALLOC_OK)
        st = check_side(dst_m, dst_memory, dst, size, "destination");
    if (st == NALLOC_OK && size != 0)
        st = na_cuda_status(cudaMemcpyAsync(dst, src, size, kind, stream), "cudaMemcpyAsync");
    return st == NALLOC_OK ? st : na_fail_cause(st, call, NULL);
}
