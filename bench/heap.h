/* bench/heap.h - the allocators the prover-shaped benchmark compares, behind one interface.
 *
 * The prover asks for memory by kind (polynomial, witness, scratch) and with the lifetimes a
 * prover has: scratch buffers die at the end of a scope inside a phase, everything else at the
 * end of the proof, and the witness is wiped before it is released. Each back-end serves that
 * schedule the way its users would:
 *
 *  - HEAP_MALLOC: malloc and free, whichever malloc the process is linked with (glibc, jemalloc
 *    or mimalloc: one executable each). Scratch blocks are freed at the end of their scope, in
 *    reverse order; the rest at the end of the proof; witness blocks are explicit_bzero'd first.
 *  - HEAP_NALLOC: a nalloc context, its three arenas sized from the dry run. A scope is a mark
 *    and a rollback on the scratch arena; the end of a proof resets the polynomial and scratch
 *    arenas and nalloc_wipe's the witness arena.
 *  - HEAP_FLOOR: no allocator at all. Three regions mapped and pre-faulted before timing starts,
 *    carved by plain pointer arithmetic with nalloc's alignment policy and the same scopes; the
 *    witness region is explicit_bzero'd at the end of each proof like the others. Nothing can do
 *    less work, so every figure is reported as a ratio to this one.
 *  - HEAP_DRY: nalloc's own dry run (nalloc_ctx_config_init_dry_run: address space only). The
 *    prover skips all work on it, so nothing is touched; nalloc's sizing helper turns its peaks
 *    into the arena sizes (heap_dry_capacity), and the ledger gives the peak live bytes.
 *
 * Whatever the back-end, this layer counts the live bytes the prover asked for: their peak is the
 * lower bound on any allocator's resident memory.
 */
#ifndef NALLOC_BENCH_HEAP_H
#define NALLOC_BENCH_HEAP_H

#include <stdbool.h>
#include <stddef.h>

#include <nalloc/nalloc.h>

typedef enum heap_mode { HEAP_MALLOC, HEAP_NALLOC, HEAP_FLOOR, HEAP_DRY } heap_mode;

/* How a HEAP_NALLOC context is created: the variants the first proof compares. */
typedef struct heap_nalloc_options {
    bool defaults;  /* true: nalloc_ctx_config_init's flags for each kind, then the two below */
    bool populate;  /* NALLOC_FLAG_POPULATE on all three arenas */
    bool huge;      /* NALLOC_FLAG_HUGEPAGES on all three arenas */
    bool no_huge;   /* NALLOC_FLAG_HUGEPAGES off everywhere (wins over huge and the defaults) */
    bool prefault;  /* NALLOC_FLAG_PREFAULT_AHEAD on all three arenas */
    bool no_prefault; /* NALLOC_FLAG_PREFAULT_AHEAD off everywhere (wins over the defaults) */
} heap_nalloc_options;

typedef struct heap heap;

/* A scratch scope: everything allocated from SCRATCH after heap_scope_begin is released by
 * heap_scope_end. Scopes nest. */
typedef struct heap_scope {
    nalloc_mark mark;  /* HEAP_NALLOC, HEAP_DRY: the scratch arena's mark */
    size_t ledger;     /* entries in the scratch ledger when the scope began */
    size_t offset;     /* HEAP_FLOOR: the scratch region's offset */
} heap_scope;

/* capacity[kind]: bytes per kind, needed by NALLOC, FLOOR (from a DRY run) and ignored by
 * MALLOC and DRY. Returns NULL with a message on stderr on failure. setup_seconds receives the
 * time creation took (nalloc's arenas, the floor's pre-faulting). */
heap *heap_create(heap_mode mode, const size_t capacity[NALLOC_KIND_COUNT],
                  const heap_nalloc_options *nalloc_options, double *setup_seconds);
void heap_destroy(heap *h);

heap_mode heap_get_mode(const heap *h);
/* size bytes of `kind`; aborts the benchmark with a message if the allocator fails (a benchmark
 * that silently skips work would report nonsense). 64 B aligned, 4 KiB at 1 MiB and above. */
void *heap_alloc(heap *h, nalloc_kind kind, size_t size);
heap_scope heap_scope_begin(heap *h);
void heap_scope_end(heap *h, heap_scope scope);
void heap_proof_end(heap *h); /* release everything; the witness is wiped first */

size_t heap_live_peak(const heap *h);              /* peak live bytes since the last reset */
void heap_live_peak_reset(heap *h);
/* HEAP_DRY, after the proof: each kind's capacity as nalloc's sizing helper gives it
 * (nalloc_ctx_profile, then nalloc_ctx_config_from_profile with no headroom). */
bool heap_dry_capacity(heap *h, size_t capacity[NALLOC_KIND_COUNT]);
nalloc_ctx *heap_nalloc_ctx(heap *h);               /* HEAP_NALLOC: the context, else NULL */

#endif /* NALLOC_BENCH_HEAP_H */
