/* nalloc/thrust.cuh - Thrust and CUB temporary storage from a device arena (CUDA C++).
 *
 * Thrust algorithms such as sort, reduce_by_key or copy_if need temporary device memory on every
 * call, and by default get it from cudaMalloc and give it back with cudaFree, which synchronizes
 * the whole device. A prover that sorts inside each phase pays for that on every call. With
 *
 *     nalloc::thrust_allocator alloc(scratch);              // scratch: a device arena
 *     thrust::sort(thrust::cuda::par(alloc).on(stream), keys.begin(), keys.end());
 *     thrust::sort(thrust::cuda::par_nosync(alloc).on(stream), ...);   // no trailing sync
 *
 * (or thrust::cuda::par(nalloc::thrust_allocator(scratch)) in one expression) the storage is a
 * bump of the arena's offset, and giving it back is nalloc_free_last.
 *
 * Lifetimes. deallocate returns the block to the arena when it is still the arena's most recent
 * block (nothing else was allocated from the arena since); any other block stays allocated until
 * the caller's next rollback, reset or wipe, so wrap a phase in a mark:
 *
 *     nalloc_mark m = nalloc_mark_get(scratch);
 *     ... Thrust and CUB calls with nalloc::thrust_allocator(scratch) ...
 *     cudaStreamSynchronize(stream);
 *     nalloc_rollback(scratch, m);
 *
 * Memory given back is handed out again by the next allocation at once, without waiting for the
 * GPU: that is safe for work on the same stream (stream order serializes it, as with
 * cudaFreeAsync), and work on another stream must synchronize first, as it must before a rollback.
 * Thrust gives its temporaries back as soon as it has enqueued the work that uses them, before
 * that work has run, with thrust::cuda::par too (CCCL's sort returns its buffer, then waits for
 * the stream). So do not share an arena used through this allocator with other threads or
 * streams while a Thrust call is in flight: another thread's allocation could be handed the bytes
 * Thrust's kernels are still using. Give each stream its own scratch arena or lane.
 *
 * Errors. When the arena has no room, allocate throws thrust::system::detail::bad_alloc (a
 * std::bad_alloc), which is what Thrust's own allocators throw; nalloc_last_error() says why.
 */
#ifndef NALLOC_THRUST_CUH
#define NALLOC_THRUST_CUH

#include "nalloc/cuda.h"
#include "nalloc/nalloc.h"

#include <thrust/system/detail/bad_alloc.h>

#include <cstddef>
#include <string>

namespace nalloc {

/* A Thrust allocator of raw bytes from one nalloc arena (normally a device arena). Copies share
 * the arena; the allocator owns nothing. Thread-safe as nalloc_alloc is. */
class thrust_allocator {
public:
    using value_type = char;
    using size_type = std::size_t;
    using difference_type = std::ptrdiff_t;

    explicit thrust_allocator(nalloc_arena *arena) noexcept : arena_(arena) {}

    /* `bytes` bytes at the arena's policy alignment (256 B on device arenas, as CUB wants); 0
     * gets a 1-byte block. The count is a size_type, as Thrust's allocator traits pass it: any
     * count gets all its bytes or throws. */
    char *allocate(size_type bytes)
    {
        void *p = nalloc_alloc(arena_, bytes > 0 ? bytes : 1);
        if (p == nullptr)
            throw thrust::system::detail::bad_alloc(nalloc_last_error_message());
        return static_cast<char *>(p);
    }

    /* Give the block back if it is the arena's most recent one; otherwise leave it to the
     * caller's rollback. Never throws. */
    void deallocate(char *p, size_type bytes) noexcept
    {
        (void)nalloc_free_last(arena_, p, bytes > 0 ? bytes : 1);
    }

    nalloc_arena *arena() const noexcept { return arena_; }

    friend bool operator==(const thrust_allocator &a, const thrust_allocator &b) noexcept
    {
        return a.arena_ == b.arena_;
    }
    friend bool operator!=(const thrust_allocator &a, const thrust_allocator &b) noexcept
    {
        return a.arena_ != b.arena_;
    }

private:
    nalloc_arena *arena_;
};

/* CUB's two-call temporary-storage pattern with the storage from `arena`. `algorithm` is called
 * as algorithm(void *temp_storage, std::size_t &temp_bytes) and returns a cudaError_t, like every
 * CUB device algorithm:
 *
 *     cudaError_t err = nalloc::with_temp_storage(scratch, [&](void *temp, std::size_t &bytes) {
 *         return cub::DeviceRadixSort::SortKeys(temp, bytes, in, out, n, 0, 64, stream);
 *     });
 *
 * It is called once with temp_storage == nullptr to size the storage, then once with the
 * storage, which is given back afterwards with nalloc_free_last (same stream-order rules as
 * above). Returns the first error: the algorithm's, or cudaErrorMemoryAllocation when the arena
 * has no room (nalloc_last_error() says why). */
template <typename Algorithm>
cudaError_t with_temp_storage(nalloc_arena *arena, Algorithm &&algorithm)
{
    std::size_t bytes = 0;
    cudaError_t err = algorithm(static_cast<void *>(nullptr), bytes);
    if (err != cudaSuccess)
        return err;
    std::size_t size = bytes > 0 ? bytes : 1; /* CUB treats a null pointer as "size it" */
    void *temp = nalloc_alloc(arena, size);
    if (temp == nullptr)
        return cudaErrorMemoryAllocation;
    err = algorithm(temp, bytes);
    (void)nalloc_free_last(arena, temp, size);
    return err;
}

} // namespace nalloc

#endif /* NALLOC_THRUST_CUH */
