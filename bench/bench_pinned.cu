/* bench/bench_pinned.cu - pinned arenas against the usual ways of getting staging memory.
 *
 * Two questions, both from the prover's point of view (DESIGN.md section 1, issue 4's targets):
 *
 *  1. Bandwidth. Is a block of a pinned arena as fast a copy source as a cudaHostAlloc buffer
 *     (target: 95% or more), and how much faster than pageable malloc memory? Host-to-device and
 *     device-to-host, into and out of a device-arena block, at several sizes; the pinned arena
 *     copies through nalloc_stage_async (its range checks included), the others through
 *     cudaMemcpyAsync. Median of the repeats after a warm-up, timed with CUDA events.
 *
 *  2. Set-up cost per proof. A prover that gets its staging buffer per proof pays for pinning
 *     every time: cudaHostAlloc + cudaFreeHost, or malloc + cudaHostRegister + cudaHostUnregister
 *     + free. A pinned arena pays once, at creation, and then a proof's set-up is a reset and a
 *     bump (target: zero after the first proof). Each method's first proof and the median of the
 *     later ones, wall-clock.
 *
 * Usage: bench_pinned [--sizes MiB,MiB,...] [--repeats N] [--setup-mib MiB] [--proofs N]
 * Prints a table and `csv,...` lines; exits 0 without a device, saying so.
 */
#include "bench_device_common.h"

#include <chrono>
#include <cstring>
#include <string>

static const size_t mib = size_t(1) << 20;

static double now_ms()
{
    using namespace std::chrono;
    return duration<double, std::milli>(steady_clock::now().time_since_epoch()).count();
}

/* ---- 1. Bandwidth ---- */

enum source { from_arena, from_hostalloc, from_malloc, sources };
static const char *const source_names[sources] = {"pinned arena", "cudaHostAlloc", "malloc"};

struct buffers {
    nalloc_arena *pinned, *device;
    char *host[sources];  /* a block of the pinned arena, a cudaHostAlloc buffer, malloc memory */
    char *device_block;   /* a block of the device arena */
};

/* Median GB/s of `repeats` copies of `size` bytes between host[src] and the device block. */
static double bandwidth(const buffers &b, source src, size_t size, int repeats, bool to_device,
                        cudaStream_t stream)
{
    bench_timer timer(stream);
    std::vector<double> gbps;
    for (int r = -1; r < repeats; r++) { /* r == -1 warms up */
        timer.begin();
        char *host = b.host[src];
        if (src == from_arena && to_device)
            BENCH_NALLOC(nalloc_stage_async(b.device, b.device_block, b.pinned, host, size, stream));
        else if (src == from_arena)
            BENCH_NALLOC(nalloc_stage_async(b.pinned, host, b.device, b.device_block, size, stream));
        else if (to_device)
            BENCH_CUDA(cudaMemcpyAsync(b.device_block, host, size, cudaMemcpyHostToDevice, stream));
        else
            BENCH_CUDA(cudaMemcpyAsync(host, b.device_block, size, cudaMemcpyDeviceToHost, stream));
        double ms = timer.end();
        if (r >= 0)
            gbps.push_back(double(size) / (ms * 1e-3) / 1e9);
    }
    return bench_median(gbps);
}

static void run_bandwidth(const std::vector<size_t> &sizes, int repeats)
{
    size_t largest = *std::max_element(sizes.begin(), sizes.end());
    buffers b;
    nalloc_arena_config c;
    nalloc_arena_config_init(&c, NALLOC_KIND_POLY, NALLOC_MEMORY_PINNED, largest);
    BENCH_NALLOC(nalloc_arena_create(&c, &b.pinned));
    nalloc_arena_config_init(&c, NALLOC_KIND_POLY, NALLOC_MEMORY_DEVICE, largest);
    BENCH_NALLOC(nalloc_arena_create(&c, &b.device));
    b.host[from_arena] = static_cast<char *>(nalloc_alloc(b.pinned, largest));
    b.device_block = static_cast<char *>(nalloc_alloc(b.device, largest));
    BENCH_CUDA(cudaHostAlloc(reinterpret_cast<void **>(&b.host[from_hostalloc]), largest,
                             cudaHostAllocPortable));
    b.host[from_malloc] = static_cast<char *>(std::malloc(largest));
    if (b.host[from_arena] == nullptr || b.device_block == nullptr || b.host[from_malloc] == nullptr) {
        std::fprintf(stderr, "bench_pinned: no memory for %zu MiB buffers\n", largest / mib);
        std::exit(1);
    }
    for (char *host : b.host)
        std::memset(host, 1, largest); /* every page touched, as a prover's data would be */
    nalloc_stats s;
    BENCH_NALLOC(nalloc_arena_stats(b.pinned, &s));
    std::printf("\n1. Copy bandwidth, GB/s (median of %d; the pinned arena of %zu MiB was "
                "registered in %.3f s)\n",
                repeats, largest / mib, s.pin_seconds);
    std::printf("%-5s %10s %14s %14s %14s %12s\n", "dir", "size", source_names[0],
                source_names[1], source_names[2], "arena/host");
    cudaStream_t stream;
    BENCH_CUDA(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
    for (bool to_device : {true, false}) {
        const char *dir = to_device ? "h2d" : "d2h";
        for (size_t size : sizes) {
            double g[sources];
            for (int src = 0; src < sources; src++) {
                g[src] = bandwidth(b, source(src), size, repeats, to_device, stream);
                std::printf("csv,bandwidth,%s,%s,%zu,%.3f\n", dir, source_names[src], size, g[src]);
            }
            std::printf("%-5s %6zu MiB %14.2f %14.2f %14.2f %11.1f%%\n", dir, size / mib, g[0], g[1],
                        g[2], 100.0 * g[0] / g[1]);
        }
    }
    BENCH_CUDA(cudaStreamDestroy(stream));
    BENCH_CUDA(cudaFreeHost(b.host[from_hostalloc]));
    std::free(b.host[from_malloc]);
    BENCH_NALLOC(nalloc_arena_destroy(b.device));
    BENCH_NALLOC(nalloc_arena_destroy(b.pinned));
}

/* ---- 2. Set-up cost per proof ---- */

enum method { hostalloc_per_proof, register_per_proof, arena, methods };
static const char *const method_names[methods] = {
    "cudaHostAlloc per proof", "malloc+cudaHostRegister per proof", "pinned arena"};

/* Milliseconds each proof spent getting (and, per proof, giving back) a pinned buffer of `size`
 * bytes. The arena's first proof includes creating it. */
static std::vector<double> setup_costs(method m, size_t size, int proofs)
{
    std::vector<double> ms;
    nalloc_arena *a = nullptr;
    for (int p = 0; p < proofs; p++) {
        double t0 = now_ms();
        char *buf = nullptr;
        if (m == hostalloc_per_proof) {
            BENCH_CUDA(cudaHostAlloc(reinterpret_cast<void **>(&buf), size, cudaHostAllocPortable));
        } else if (m == register_per_proof) {
            buf = static_cast<char *>(std::malloc(size));
            if (buf == nullptr)
                std::exit(1);
            BENCH_CUDA(cudaHostRegister(buf, size, cudaHostRegisterPortable));
        } else {
            if (a == nullptr) {
                nalloc_arena_config c;
                nalloc_arena_config_init(&c, NALLOC_KIND_POLY, NALLOC_MEMORY_PINNED, size);
                BENCH_NALLOC(nalloc_arena_create(&c, &a));
            }
            BENCH_NALLOC(nalloc_reset(a));
            buf = static_cast<char *>(nalloc_alloc(a, size));
        }
        double got = now_ms() - t0;
        buf[0] = char(p); /* the prover uses it */
        t0 = now_ms();
        if (m == hostalloc_per_proof) {
            BENCH_CUDA(cudaFreeHost(buf));
        } else if (m == register_per_proof) {
            BENCH_CUDA(cudaHostUnregister(buf));
            std::free(buf);
        }
        ms.push_back(got + (now_ms() - t0));
    }
    if (a != nullptr)
        BENCH_NALLOC(nalloc_arena_destroy(a));
    return ms;
}

static void run_setup(size_t size, int proofs)
{
    std::printf("\n2. A pinned staging buffer of %zu MiB: set-up cost per proof (%d proofs)\n",
                size / mib, proofs);
    std::printf("%-36s %14s %18s\n", "method", "first proof", "later (median)");
    for (int m = 0; m < methods; m++) {
        std::vector<double> ms = setup_costs(method(m), size, proofs);
        for (int p = 0; p < proofs; p++)
            std::printf("csv,setup,%s,%zu,%d,%.6f\n", method_names[m], size, p, ms[p]);
        double later = proofs > 1 ? bench_median(std::vector<double>(ms.begin() + 1, ms.end())) : 0;
        std::printf("%-36s %11.3f ms %15.6f ms\n", method_names[m], ms[0], later);
    }
}

/* ---- Arguments ---- */

static long positive(const char *text, const char *what)
{
    char *end;
    long v = std::strtol(text, &end, 10);
    if (end == text || *end != '\0' || v <= 0) {
        std::fprintf(stderr, "bench_pinned: %s must be a positive number, not '%s'\n", what, text);
        std::exit(2);
    }
    return v;
}

int main(int argc, char **argv)
{
    std::vector<size_t> sizes = {4 * mib, 64 * mib, 256 * mib};
    int repeats = 20, proofs = 8;
    size_t setup_size = 1024 * mib;
    for (int i = 1; i < argc; i++) {
        std::string arg = argv[i];
        if (i + 1 >= argc) {
            std::fprintf(stderr, "usage: %s [--sizes MiB,...] [--repeats N] [--setup-mib MiB] "
                                 "[--proofs N]\n", argv[0]);
            return 2;
        }
        const char *value = argv[++i];
        if (arg == "--sizes") {
            sizes.clear();
            std::string list = value;
            for (size_t at = 0, comma; at <= list.size(); at = comma + 1) {
                comma = list.find(',', at);
                comma = comma == std::string::npos ? list.size() : comma;
                sizes.push_back(size_t(positive(list.substr(at, comma - at).c_str(), "a size")) * mib);
            }
        } else if (arg == "--repeats") {
            repeats = int(positive(value, "--repeats"));
        } else if (arg == "--setup-mib") {
            setup_size = size_t(positive(value, "--setup-mib")) * mib;
        } else if (arg == "--proofs") {
            proofs = int(positive(value, "--proofs"));
        } else {
            std::fprintf(stderr, "bench_pinned: unknown option %s\n", arg.c_str());
            return 2;
        }
    }
    bench_device_or_skip("bench_pinned: pinned arenas against cudaHostAlloc and pageable memory");
    run_bandwidth(sizes, repeats);
    run_setup(setup_size, proofs);
    return 0;
}
