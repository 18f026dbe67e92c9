/* bench/bench_device_proof.cu - a prover's device memory traffic, proof after proof:
 * cudaMalloc/cudaFree per buffer, cudaMallocAsync from the stream-ordered pool, and one device
 * arena reused for every proof.
 *
 * The workload follows DESIGN.md section 5 (OpenVM's allocator benchmark): 40 traces of height
 * 2^8..2^19 (70% of them small), 8..400 columns of 4-byte (BabyBear) or 8-byte (Goldilocks)
 * elements, blowup 2. Four phases: commit (each trace and its low-degree extension, kept to the
 * end), permutation (an extension-field trace and its LDE for half the traces, kept), quotient
 * (per-trace temporaries, freed at the end of the phase, and quotient chunks, kept) and FRI
 * (folding layers, freed at the end of the phase). Every buffer is touched once with
 * cudaMemsetAsync, the same work in every variant; what differs is only how memory is obtained
 * and given back. If the plan's peak does not fit in a third of free device memory, every height
 * is halved until it does, and the scale is printed.
 *
 * Variants, same buffers in the same order:
 *   cudaMalloc     cudaMalloc per buffer, cudaFree at the end of its lifetime (cudaFree
 *                  synchronizes the device, as it does in a prover that uses it)
 *   cudaMallocAsync  the default memory pool with its release threshold raised to "keep
 *                  everything", cudaMallocAsync/cudaFreeAsync in stream order
 *   nalloc arena   one device arena sized from the plan's peak (a dry run), created once; a
 *                  mark per phase for the temporaries, rolled back at the phase's end; a reset per
 *                  proof
 * Reported: setup time (the arena's creation), the first proof, and the median of the other
 * proofs, wall-clock with the stream synchronized at the end of each proof.
 */
#include "bench_device_common.h"

#include <chrono>
#include <cstdint>

enum { proofs = 8, traces = 40 };

struct buffer {
    size_t bytes;
    bool temporary; /* freed at the end of its phase; otherwise at the end of the proof */
};

struct phase {
    const char *name;
    std::vector<buffer> buffers; /* long-lived first, then temporaries */
};

static uint64_t rng_state = 0x5eed;
static uint64_t rng()
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

static std::vector<phase> make_plan(unsigned height_shift)
{
    rng_state = 0x5eed; /* the same plan at every scale */
    std::vector<phase> plan = {{"commit", {}}, {"permutation", {}}, {"quotient", {}}, {"fri", {}}};
    size_t max_lde = 0;
    for (int t = 0; t < traces; t++) {
        unsigned log_h = rng() % 100 < 70 ? 8 + rng() % 6 : 14 + rng() % 6;
        size_t h = (size_t)1 << (log_h > height_shift + 4 ? log_h - height_shift : 4);
        size_t width = 8 + rng() % 393, elem = rng() % 2 ? 8 : 4;
        size_t trace = h * width * elem, lde = 2 * trace;
        plan[0].buffers.push_back({trace, false});
        plan[0].buffers.push_back({lde, false});
        if (t % 2 == 0) {
            size_t perm = h * 8 * 4 * elem; /* 8 columns of degree-4 extension elements */
            plan[1].buffers.push_back({perm, false});
            plan[1].buffers.push_back({2 * perm, false});
        }
        plan[2].buffers.push_back({2 * h * 4 * elem * 4, false}); /* quotient chunks */
        max_lde = std::max(max_lde, 2 * h);
    }
    for (int t = 0; t < traces; t++) /* quotient temporaries: one per trace, live in the phase */
        plan[2].buffers.push_back({plan[0].buffers[2 * t + 1].bytes / 2, true});
    for (size_t n = max_lde; n >= 16; n /= 2) /* FRI: folding layers of extension elements */
        plan[3].buffers.push_back({n * 16, true});
    return plan;
}

/* Peak live bytes of the plan, each buffer rounded up to `align`. */
static size_t plan_peak(const std::vector<phase> &plan, size_t align)
{
    size_t kept = 0, peak = 0;
    for (const phase &p : plan) {
        size_t temp = 0;
        for (const buffer &b : p.buffers)
            (b.temporary ? temp : kept) += (b.bytes + align - 1) / align * align;
        peak = std::max(peak, kept + temp);
    }
    return peak;
}

enum variant { v_malloc, v_async, v_arena };
static const char *const variant_names[] = {"cudaMalloc", "cudaMallocAsync", "nalloc arena"};

static double now_ms()
{
    using namespace std::chrono;
    return duration<double, std::milli>(steady_clock::now().time_since_epoch()).count();
}

static void run_proof(variant v, const std::vector<phase> &plan, nalloc_arena *arena,
                      cudaStream_t s)
{
    std::vector<void *> kept;
    for (const phase &p : plan) {
        std::vector<void *> temps;
        nalloc_mark mark = {0, 0, 0, 0};
        bool marked = false;
        for (const buffer &b : p.buffers) {
            void *ptr = nullptr;
            if (v == v_arena && b.temporary && !marked) {
                mark = nalloc_mark_get(arena);
                marked = true;
            }
            if (v == v_malloc)
                BENCH_CUDA(cudaMalloc(&ptr, b.bytes));
            else if (v == v_async)
                BENCH_CUDA(cudaMallocAsync(&ptr, b.bytes, s));
            else if ((ptr = nalloc_alloc(arena, b.bytes)) == nullptr) {
                std::fprintf(stderr, "arena exhausted: %s\n", nalloc_strerror(nalloc_last_error()));
                std::exit(1);
            }
            BENCH_CUDA(cudaMemsetAsync(ptr, 1, b.bytes, s));
            (b.temporary ? temps : kept).push_back(ptr);
        }
        for (void *ptr : temps) {
            if (v == v_malloc)
                BENCH_CUDA(cudaFree(ptr));
            else if (v == v_async)
                BENCH_CUDA(cudaFreeAsync(ptr, s));
        }
        if (marked)
            BENCH_NALLOC(nalloc_rollback(arena, mark));
    }
    for (void *ptr : kept) {
        if (v == v_malloc)
            BENCH_CUDA(cudaFree(ptr));
        else if (v == v_async)
            BENCH_CUDA(cudaFreeAsync(ptr, s));
    }
    if (v == v_arena)
        BENCH_NALLOC(nalloc_reset(arena));
    BENCH_CUDA(cudaStreamSynchronize(s));
}

int main()
{
    bench_device_or_skip("bench_device_proof: per-proof cudaMalloc/cudaFree vs one device arena");
    size_t free_bytes, total_bytes;
    BENCH_CUDA(cudaMemGetInfo(&free_bytes, &total_bytes));
    unsigned shift = 0;
    std::vector<phase> plan = make_plan(shift);
    while (plan_peak(plan, 4096) > free_bytes / 3 && shift < 8)
        plan = make_plan(++shift);
    size_t peak = plan_peak(plan, 4096), buffers = 0, bytes = 0;
    for (const phase &p : plan)
        for (const buffer &b : p.buffers) {
            buffers++;
            bytes += b.bytes;
        }
    std::printf("  plan     %d traces, heights scaled by 1/%u, %zu buffers, %.2f GiB touched, "
                "peak %.2f GiB per proof; %d proofs\n\n",
                traces, 1u << shift, buffers, bytes / 1073741824.0, peak / 1073741824.0, proofs);

    cudaStream_t s;
    BENCH_CUDA(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
    cudaMemPool_t pool;
    BENCH_CUDA(cudaDeviceGetDefaultMemPool(&pool, 0));
    uint64_t keep_all = UINT64_MAX;
    BENCH_CUDA(cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &keep_all));

    std::printf("  %-16s %10s %14s %16s\n", "variant", "setup ms", "first proof ms",
                "median proof ms");
    for (int v = 0; v < 3; v++) {
        nalloc_arena *arena = nullptr;
        double t0 = now_ms();
        if (v == v_arena) {
            nalloc_arena_config c;
            /* plan_peak counts 4 KiB-aligned offsets; the block's base is only promised 256-byte
             * alignment, so the first 4 KiB-aligned buffer may need up to 4 KiB of padding. */
            nalloc_arena_config_init(&c, NALLOC_KIND_POLY, NALLOC_MEMORY_DEVICE, peak + 4096);
            BENCH_NALLOC(nalloc_arena_create(&c, &arena));
        }
        double setup = now_ms() - t0;
        std::vector<double> ms;
        double first = 0;
        for (int p = 0; p < proofs; p++) {
            double start = now_ms();
            run_proof((variant)v, plan, arena, s);
            double t = now_ms() - start;
            if (p == 0)
                first = t;
            else
                ms.push_back(t);
        }
        if (arena != nullptr)
            BENCH_NALLOC(nalloc_arena_destroy(arena));
        double med = bench_median(ms);
        std::printf("  %-16s %10.2f %14.2f %16.2f\n", variant_names[v], setup, first, med);
        std::printf("csv,proof,%s,%u,%zu,%zu,%.3f,%.3f,%.3f\n", variant_names[v], shift, buffers,
                    bytes, setup, first, med);
    }
    BENCH_CUDA(cudaStreamDestroy(s));
    return 0;
}
