/* bench/prover.h - a prover-shaped workload: the allocation schedule and the work of a STARK proof.
 *
 * Shaped after OpenVM's allocator benchmark (DESIGN.md section 5): a proof covers some 40 traces
 * (AIR tables), 70% of them small, of height 2^a..2^b and 8..400 columns of 8-byte Goldilocks or
 * 4-byte BabyBear elements, and runs these phases:
 *
 *   trace generation  the witness: each trace's rows (witness memory)
 *   commit            each trace's columns extended by `blowup` with an inverse and a forward NTT
 *                     (polynomial memory, alive until the end of the proof), a Merkle tree over
 *                     the extended rows, the twiddle table as a per-trace temporary (scratch)
 *   permutation       a running-product trace per table (witness), its denominators (scratch),
 *                     its extension and tree (polynomial)
 *   quotient          constraint accumulators over the extended domain (scratch), the quotient
 *                     columns and their tree (polynomial)
 *   FRI               the batched codeword, folded down layer by layer, each layer and its tree
 *                     kept for the queries (polynomial); then the queries read rows back
 *
 * Every byte allocated is written, and most of it read again, by real arithmetic. At the end of a
 * proof everything is released and the witness wiped (heap.h says how each allocator does it).
 * The proof's transcript hash depends on every value computed, never on an address, so every
 * allocator must produce the same checksum: the driver checks that.
 */
#ifndef NALLOC_BENCH_PROVER_H
#define NALLOC_BENCH_PROVER_H

#include <stdint.h>
#include <stdio.h>

#include "harness.h"
#include "heap.h"

typedef struct prover_params {
    unsigned traces;          /* tables per proof */
    unsigned min_log_height;  /* heights 2^min..2^max before scaling */
    unsigned max_log_height;
    unsigned small_percent;   /* share of tables drawn from the lower half of the height range */
    unsigned min_width;       /* columns per table, drawn log-uniformly */
    unsigned max_width;
    unsigned elem;            /* bytes per element: 8 (Goldilocks), 4 (BabyBear), 0 (mixed) */
    unsigned log_blowup;      /* extension factor 2^log_blowup */
    unsigned log_scale;       /* every height multiplied by 2^log_scale */
    unsigned queries;         /* FRI queries */
    uint64_t seed;            /* the shape and the witness values */
} prover_params;

/* The defaults: 40 tables of 2^5..2^12 rows (70% drawn from 2^5..2^8), 8..400 columns,
 * Goldilocks, blowup 2, 30 queries: about 110 MiB live per proof and half a second of work on two
 * cores. scripts/run.sh runs scale 2 (217 MiB live), the smallest at which every general-purpose
 * allocator page-faults on every proof; the scales 4 and 16 (scripts/bench.sh) reach 2^16 rows
 * and about 1.7 GiB live, close to OpenVM's 2^8..2^19 at a size that still fits a 24 GiB machine
 * with room to spare. */
void prover_params_default(prover_params *params);
/* Why `params` cannot be run (a static string), or NULL when it can. */
const char *prover_params_check(const prover_params *params);

typedef struct prover_table {
    unsigned log_height; /* scaled */
    unsigned width;      /* main trace columns */
    unsigned elem;       /* 8 or 4 */
} prover_table;

typedef struct prover prover;

/* The tables the parameters describe (deterministic in params->seed), ready to prove with
 * `threads` workers (the calling thread included). NULL with errno on failure. */
prover *prover_create(const prover_params *params, unsigned threads);
void prover_destroy(prover *p);
unsigned prover_table_count(const prover *p);
const prover_table *prover_table_at(const prover *p, unsigned index);
/* One line describing the shape, e.g. "40 tables, heights 2^6..2^16 ...". */
void prover_describe(const prover *p, FILE *out, const char *prefix);

/* Run proof number `index` with memory from `h`, and release everything (heap_proof_end).
 * Returns the transcript checksum. On a HEAP_DRY heap only the allocation schedule runs. */
uint64_t prover_prove(prover *p, heap *h, unsigned index);

#endif /* NALLOC_BENCH_PROVER_H */
