/* bench/prover.c - the prover-shaped workload (see prover.h for the phases).
 *
 * Layouts follow what provers use: the witness trace is row-major (trace generation writes it row
 * by row), everything extended is column-major (each NTT runs down one contiguous column), Merkle
 * trees are arrays of 2n 32-byte nodes with the leaves at [n, 2n) and the root at 1. The hashes
 * and the "constraints" are stand-ins with the right memory traffic, not cryptography: what
 * matters here is which memory is written and read, and that the arithmetic is real field
 * arithmetic whose result does not depend on where the memory is.
 *
 * Parallel loops go over columns (NTTs, running products) or over chunks of rows (trace
 * generation, hashing, constraint evaluation); allocation happens on the calling thread between
 * loops, as in a prover whose parallel iterators write into buffers allocated up front. The
 * worker threads do fault the pages in, where a real prover would, on first touch.
 *
 * The kernels are written once for both fields and instantiated by PROVER_KERNELS, like the NTTs.
 * FRI runs over Goldilocks whatever the tables' field (BabyBear values embed as integers).
 */
#include "prover.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "field.h"
#include "ntt.h"

#define DIGEST_WORDS 4
#define FRI_FINAL_LOG 3 /* fold until 8 points remain */
#define MAX_FRI_LAYERS 64
#define ROW_CHUNK 2048 /* rows per parallel work item */

typedef struct digest {
    uint64_t w[DIGEST_WORDS];
} digest;

typedef struct table_state { /* one table's buffers during a proof */
    void *witness;  /* h x width elements, row-major (witness memory) */
    void *lde;      /* width columns of n elements (polynomial memory) */
    void *perm_lde; /* perm_width columns of n (polynomial) */
    void *quotient; /* 2 columns of n (polynomial) */
} table_state;

struct prover {
    prover_params params;
    prover_table *tables;
    table_state *state;  /* one per table */
    unsigned count;      /* tables */
    bench_pool *pool;
    uint64_t *fri[MAX_FRI_LAYERS]; /* the FRI layers of the proof in progress */
    unsigned fri_log[MAX_FRI_LAYERS];
    unsigned fri_layers;
};

/* What a parallel loop needs; each kernel reads the fields it documents. */
typedef struct job {
    const prover_table *t;
    size_t h, n;            /* rows before and after extension */
    unsigned log_h, log_n;
    unsigned cols;          /* columns of the matrix being extended or hashed */
    const void *tw;         /* twiddles for size n */
    const void *src;        /* input matrix */
    bool src_row_major;     /* extend: src is h x cols row-major (else cols columns of h) */
    void *dst;              /* output matrix */
    void *tmp;              /* scratch */
    const void *aux;        /* a small table (zinv) */
    const void *src2;       /* a second input (perm_lde) */
    unsigned cols2;
    uint64_t seed, alpha, beta;
    digest *tree;           /* 2 * rows nodes */
    size_t rows;            /* leaves of the tree */
    size_t first;           /* the first node of the tree level being hashed */
    unsigned elem;          /* bytes per element of the hashed matrix */
    bool lde_copy;          /* extend: repeat the column instead of an NTT (prover_params) */
} job;

/* ---------------------------------------------------------------------------------------------
 * Parameters and shape
 * ------------------------------------------------------------------------------------------- */

void prover_params_default(prover_params *p)
{
    *p = (prover_params){
        .traces = 40,
        .min_log_height = 5,
        .max_log_height = 12,
        .small_percent = 70,
        .min_width = 8,
        .max_width = 400,
        .elem = 8,
        .log_blowup = 1,
        .log_scale = 0,
        .queries = 30,
        .seed = 1,
    };
}

const char *prover_params_check(const prover_params *p)
{
    if (p->traces == 0 || p->traces > 100000)
        return "tables must be in 1..100000";
    if (p->min_log_height > p->max_log_height)
        return "the minimum height is above the maximum";
    if (p->min_width == 0 || p->min_width > p->max_width || p->max_width > 100000)
        return "widths must satisfy 1 <= min <= max <= 100000";
    if (p->small_percent > 100)
        return "the small share is a percentage";
    if (p->elem != 8 && p->elem != 4 && p->elem != 0)
        return "elements are 8 (Goldilocks), 4 (BabyBear) or 0 (mixed) bytes";
    if (p->log_blowup < 1 || p->log_blowup > 4)
        return "the blowup must be 2, 4, 8 or 16";
    unsigned top = p->max_log_height + p->log_scale + p->log_blowup;
    if (top > (p->elem == 8 ? GL_TWO_ADICITY : BB_TWO_ADICITY) || top > 30)
        return "the extended height exceeds the field's two-adicity (or 2^30)";
    if (p->min_log_height + p->log_scale + p->log_blowup <= FRI_FINAL_LOG)
        return "the smallest extended height must exceed 2^3";
    if (p->queries == 0 || p->queries > 10000)
        return "queries must be in 1..10000";
    return NULL;
}

/* Permutation columns: extension-field values, two base columns each. */
static unsigned perm_width(const prover_table *t)
{
    return 2 * (1 + t->width / 16);
}

prover *prover_create(const prover_params *params, unsigned threads)
{
    if (prover_params_check(params) != NULL) {
        errno = EINVAL;
        return NULL;
    }
    prover *p = calloc(1, sizeof *p);
    if (p == NULL)
        return NULL;
    p->params = *params;
    p->count = params->traces;
    p->tables = calloc(p->count, sizeof *p->tables);
    p->state = calloc(p->count, sizeof *p->state);
    p->pool = bench_pool_create(threads);
    if (p->tables == NULL || p->state == NULL || p->pool == NULL) {
        prover_destroy(p);
        errno = ENOMEM;
        return NULL;
    }
    uint64_t rng = params->seed;
    unsigned lo = params->min_log_height, hi = params->max_log_height;
    unsigned mid = lo + (hi - lo) / 2; /* small: [lo, mid], large: (mid, hi] */
    for (unsigned i = 0; i < p->count; i++) {
        prover_table *t = &p->tables[i];
        bool small = bench_random(&rng) % 100 < params->small_percent || mid == hi;
        unsigned base = small ? lo : mid + 1, span = small ? mid - lo + 1 : hi - mid;
        t->log_height = base + (unsigned)(bench_random(&rng) % span) + params->log_scale;
        double u = (double)(bench_random(&rng) >> 11) / 9007199254740992.0; /* [0, 1) */
        double w = exp(log(params->min_width) + u * (log(params->max_width + 1.0) -
                                                     log(params->min_width)));
        t->width = (unsigned)w < params->min_width ? params->min_width
                 : (unsigned)w > params->max_width ? params->max_width : (unsigned)w;
        t->elem = params->elem ? params->elem : (bench_random(&rng) & 1 ? 8 : 4);
    }
    return p;
}

void prover_destroy(prover *p)
{
    if (p == NULL)
        return;
    bench_pool_destroy(p->pool);
    free(p->tables);
    free(p->state);
    free(p);
}

unsigned prover_table_count(const prover *p)
{
    return p->count;
}

const prover_table *prover_table_at(const prover *p, unsigned index)
{
    return index < p->count ? &p->tables[index] : NULL;
}

void prover_describe(const prover *p, FILE *out, const char *prefix)
{
    const prover_params *q = &p->params;
    unsigned small = 0, lo = 99, hi = 0, wlo = ~0u, whi = 0;
    unsigned mid = q->min_log_height + (q->max_log_height - q->min_log_height) / 2 + q->log_scale;
    for (unsigned i = 0; i < p->count; i++) {
        const prover_table *t = &p->tables[i];
        small += t->log_height <= mid;
        lo = t->log_height < lo ? t->log_height : lo;
        hi = t->log_height > hi ? t->log_height : hi;
        wlo = t->width < wlo ? t->width : wlo;
        whi = t->width > whi ? t->width : whi;
    }
    fprintf(out,
            "%strace: %u tables (%u with at most 2^%u rows), heights 2^%u..2^%u (x%u scale), "
            "widths %u..%u, %s, blowup %u%s, %u queries, seed %llu, %u threads\n",
            prefix, p->count, small, mid, lo, hi, 1u << q->log_scale, wlo, whi,
            q->elem == 8 ? "Goldilocks (8-byte elements)"
            : q->elem == 4 ? "BabyBear (4-byte elements)" : "mixed Goldilocks and BabyBear",
            1u << q->log_blowup, q->lde_copy ? " (columns repeated, not NTT-extended)" : "",
            q->queries, (unsigned long long)q->seed,
            bench_pool_threads(p->pool));
}

/* ---------------------------------------------------------------------------------------------
 * Hashing: stand-ins with the memory traffic of Merkle commitments
 * ------------------------------------------------------------------------------------------- */

static inline uint64_t rotl64(uint64_t x, unsigned r)
{
    return (x << r) | (x >> (64 - r));
}

static inline uint64_t lane_absorb(uint64_t lane, uint64_t v)
{
    return rotl64(lane ^ v, 23) * 0x9e3779b97f4a7c15ull;
}

static inline digest compress(const digest *a, const digest *b)
{
    digest d;
    for (unsigned l = 0; l < DIGEST_WORDS; l++)
        d.w[l] = bench_mix64(a->w[l] ^ rotl64(b->w[l], 17) ^ (0x632be59bd9b4e019ull * (l + 1)));
    return d;
}

static inline uint64_t load_elem(const void *base, unsigned elem, size_t index)
{
    return elem == 8 ? ((const uint64_t *)base)[index] : ((const uint32_t *)base)[index];
}

/* Leaves [begin, end): row i of the column-major matrix src (cols columns of `rows`). */
static void hash_leaves(void *arg, size_t begin, size_t end)
{
    const job *j = arg;
    for (size_t i = begin; i < end; i++) {
        uint64_t lane[DIGEST_WORDS] = {1, 2, 3, 4};
        for (unsigned c = 0; c < j->cols; c++)
            lane[c & 3] =
                lane_absorb(lane[c & 3], load_elem(j->src, j->elem, (size_t)c * j->rows + i));
        digest *d = &j->tree[j->rows + i];
        for (unsigned l = 0; l < DIGEST_WORDS; l++)
            d->w[l] = bench_mix64(lane[l] ^ j->cols);
    }
}

/* Internal nodes first + [begin, end) of one level (node i from children 2i and 2i+1). */
static void hash_nodes(void *arg, size_t begin, size_t end)
{
    const job *j = arg;
    for (size_t i = j->first + begin; i < j->first + end; i++)
        j->tree[i] = compress(&j->tree[2 * i], &j->tree[2 * i + 1]);
}

/* Allocate and fill a Merkle tree over the rows of a column-major matrix; returns its root. */
static digest merkle_commit(prover *p, heap *h, const void *matrix, unsigned cols, size_t rows,
                            unsigned elem)
{
    digest *tree = heap_alloc(h, NALLOC_KIND_POLY, 2 * rows * sizeof(digest));
    digest root = {{0}};
    if (heap_get_mode(h) == HEAP_DRY)
        return root;
    job j = {.src = matrix, .cols = cols, .rows = rows, .elem = elem, .tree = tree};
    bench_pool_run(p->pool, rows, ROW_CHUNK, hash_leaves, &j);
    for (size_t level = rows / 2; level >= 1; level /= 2) { /* nodes [level, 2 level) */
        j.first = level;
        bench_pool_run(p->pool, level, ROW_CHUNK, hash_nodes, &j);
    }
    tree[0] = tree[1]; /* node 0 is unused by the layout: keep the root there too, touched */
    return tree[1];
}

/* The Fiat-Shamir transcript: every root and every opened value goes in. */
static inline void transcript_absorb(uint64_t *t, uint64_t v)
{
    *t = bench_mix64(*t ^ v) + 0x2545f4914f6cdd1dull;
}

static void transcript_absorb_digest(uint64_t *t, digest d)
{
    for (unsigned l = 0; l < DIGEST_WORDS; l++)
        transcript_absorb(t, d.w[l]);
}

static uint64_t transcript_challenge(uint64_t *t, uint64_t modulus)
{
    transcript_absorb(t, 0x5eed);
    return *t % modulus;
}

/* ---------------------------------------------------------------------------------------------
 * Kernels, once per field
 * ------------------------------------------------------------------------------------------- */

static inline uint64_t gl_from_random(uint64_t x) { return x >= GL_P ? x - GL_P : x; }
static inline uint32_t bb_from_random(uint64_t x) { return (uint32_t)(x % BB_P); }

/* A field's kernels, picked once per table by its element size. */
typedef struct field_kernels {
    bench_pool_fn fill_rows, extend_columns, perm_columns, quotient_rows;
    void (*vanishing_inverses)(void *zinv, unsigned log_h, unsigned log_blowup);
    void (*twiddles)(void *tw, unsigned log_n);
} field_kernels;

#define PROVER_KERNELS(F, T)                                                                       \
    /* Trace generation, rows [begin, end) of the row-major witness dst (cols columns). */         \
    static void F##_fill_rows(void *arg, size_t begin, size_t end)                                 \
    {                                                                                              \
        const job *j = arg;                                                                        \
        T *w = j->dst;                                                                             \
        for (size_t r = begin; r < end; r++)                                                       \
            for (unsigned c = 0; c < j->cols; c++) {                                               \
                size_t i = r * j->cols + c;                                                        \
                w[i] = F##_from_random(bench_mix64(j->seed + i));                                  \
            }                                                                                      \
    }                                                                                              \
                                                                                                   \
    /* Extend columns [begin, end): column c of src (h rows, row-major or column-major) into       \
     * column c of dst (n rows), in place there. */                                                \
    static void F##_extend_columns(void *arg, size_t begin, size_t end)                            \
    {                                                                                              \
        const job *j = arg;                                                                        \
        const T *src = j->src;                                                                     \
        for (size_t c = begin; c < end; c++) {                                                     \
            T *col = (T *)j->dst + c * j->n;                                                       \
            if (j->src_row_major)                                                                  \
                for (size_t r = 0; r < j->h; r++)                                                  \
                    col[r] = src[r * j->cols + c];                                                 \
            else                                                                                   \
                memcpy(col, src + c * j->h, j->h * sizeof(T));                                     \
            if (j->lde_copy) /* each extended row repeats a trace row, scrambled a little */   \
                for (size_t r = j->h; r < j->n; r++)                                               \
                    col[r] = F##_mul(col[r & (j->h - 1)], (T)(r | 1));                             \
            else                                                                                   \
                F##_lde(col, j->log_h, j->log_n - j->log_h, F##_GENERATOR, j->tw, col);            \
        }                                                                                          \
    }                                                                                              \
                                                                                                   \
    /* Running products, permutation columns [begin, end): den = beta_k + witness value, then      \
     * perm[k][r] = prod of den[k][0..r]. src: the row-major witness (t->width columns). */        \
    static void F##_perm_columns(void *arg, size_t begin, size_t end)                              \
    {                                                                                              \
        const job *j = arg;                                                                        \
        const T *w = j->src;                                                                       \
        for (size_t k = begin; k < end; k++) {                                                     \
            T *den = (T *)j->tmp + k * j->h, *perm = (T *)j->dst + k * j->h;                       \
            T beta = (T)((j->beta + k) % F##_P);                                                   \
            unsigned col = (unsigned)(k % j->t->width);                                            \
            for (size_t r = 0; r < j->h; r++)                                                      \
                den[r] = F##_add(beta, w[r * j->t->width + col]);                                  \
            T acc = 1;                                                                             \
            for (size_t r = 0; r < j->h; r++)                                                      \
                perm[r] = acc = F##_mul(acc, den[r]);                                              \
        }                                                                                          \
    }                                                                                              \
                                                                                                   \
    /* acc[i] += coef_c * col_c[i] over `cols` columns of n rows, rows [begin, end); coef_c        \
     * runs through the powers of alpha from *coef on, and *coef is left at the next power. */     \
    static void F##_accumulate(T *acc, const T *matrix, unsigned cols, size_t n, size_t begin,     \
                               size_t end, T alpha, T *coef)                                       \
    {                                                                                              \
        for (unsigned c = 0; c < cols; c++, *coef = F##_mul(*coef, alpha)) {                       \
            const T *col = matrix + (size_t)c * n;                                                 \
            for (size_t i = begin; i < end; i++)                                                   \
                acc[i] = F##_add(acc[i], F##_mul(*coef, col[i]));                                  \
        }                                                                                          \
    }                                                                                              \
                                                                                                   \
    /* Constraint evaluation, rows [begin, end) of the extended domain: two accumulators (tmp)     \
     * sum alpha^c times every main (src) and permutation (src2) column, then divide by the        \
     * vanishing polynomial (aux: its inverses, period blowup) into the quotient columns (dst). */ \
    static void F##_quotient_rows(void *arg, size_t begin, size_t end)                             \
    {                                                                                              \
        const job *j = arg;                                                                        \
        T *acc0 = (T *)j->tmp, *acc1 = (T *)j->tmp + j->n, *q = j->dst;                            \
        const T *zinv = j->aux;                                                                    \
        size_t blowup_mask = ((size_t)1 << (j->log_n - j->log_h)) - 1;                             \
        T alpha = (T)(j->alpha % F##_P), coef = 1;                                                 \
        memset(acc0 + begin, 0, (end - begin) * sizeof(T));                                        \
        memset(acc1 + begin, 0, (end - begin) * sizeof(T));                                        \
        F##_accumulate(acc0, j->src, j->cols, j->n, begin, end, alpha, &coef);                     \
        F##_accumulate(acc1, j->src2, j->cols2, j->n, begin, end, alpha, &coef);                   \
        for (size_t i = begin; i < end; i++) {                                                     \
            q[i] = F##_mul(acc0[i], zinv[i & blowup_mask]);                                        \
            q[j->n + i] = F##_mul(acc1[i], zinv[i & blowup_mask]);                                 \
        }                                                                                          \
    }                                                                                              \
                                                                                                   \
    /* 1 / (x^h - 1) on the coset g * <w_n>: x^h = g^h w_B^i takes blowup values. */               \
    static void F##_vanishing_inverses(void *out, unsigned log_h, unsigned log_blowup)             \
    {                                                                                              \
        T *zinv = out, x = F##_pow(F##_GENERATOR, (uint64_t)1 << log_h);                           \
        T wb = F##_root_of_unity(log_blowup);                                                      \
        for (size_t i = 0; i < ((size_t)1 << log_blowup); i++, x = F##_mul(x, wb))                 \
            zinv[i] = F##_inv(F##_sub(x, 1));                                                      \
    }                                                                                              \
                                                                                                   \
    static void F##_twiddle_table(void *tw, unsigned log_n)                                        \
    {                                                                                              \
        F##_twiddles(tw, log_n);                                                                   \
    }                                                                                              \
                                                                                                   \
    static const field_kernels F##_kernels = {                                                     \
        .fill_rows = F##_fill_rows,                                                                \
        .extend_columns = F##_extend_columns,                                                      \
        .perm_columns = F##_perm_columns,                                                          \
        .quotient_rows = F##_quotient_rows,                                                        \
        .vanishing_inverses = F##_vanishing_inverses,                                              \
        .twiddles = F##_twiddle_table,                                                             \
    };


PROVER_KERNELS(gl, uint64_t)
PROVER_KERNELS(bb, uint32_t)

static const field_kernels *kernels(unsigned elem)
{
    return elem == 8 ? &gl_kernels : &bb_kernels;
}

/* FRI over Goldilocks: f[i] = sum over tables of alpha^t (q0 + q1)[i mod n_t]. */
typedef struct fri_job {
    prover *p;
    uint64_t *f, *next;
    size_t half;     /* folding: the next layer's size */
    uint64_t alpha, beta;
} fri_job;

static void fri_combine_rows(void *arg, size_t begin, size_t end)
{
    const fri_job *j = arg;
    const prover *p = j->p;
    memset(j->f + begin, 0, (end - begin) * sizeof(uint64_t));
    uint64_t coef = 1;
    for (unsigned t = 0; t < p->count; t++, coef = gl_mul(coef, j->alpha)) {
        const prover_table *tb = &p->tables[t];
        size_t n = (size_t)1 << (tb->log_height + p->params.log_blowup), mask = n - 1;
        const void *q = p->state[t].quotient;
        for (size_t i = begin; i < end; i++) {
            uint64_t v =
                gl_add(load_elem(q, tb->elem, i & mask), load_elem(q, tb->elem, n + (i & mask)));
            j->f[i] = gl_add(j->f[i], gl_mul(coef, v));
        }
    }
}

static void fri_fold_rows(void *arg, size_t begin, size_t end)
{
    const fri_job *j = arg;
    for (size_t i = begin; i < end; i++)
        j->next[i] = gl_add(j->f[i], gl_mul(j->beta, j->f[i + j->half]));
}

/* ---------------------------------------------------------------------------------------------
 * The proof
 * ------------------------------------------------------------------------------------------- */

static job table_job(const prover *p, const prover_table *t)
{
    job j = {.t = t, .log_h = t->log_height, .log_n = t->log_height + p->params.log_blowup,
             .elem = t->elem, .lde_copy = p->params.lde_copy != 0};
    j.h = (size_t)1 << j.log_h;
    j.n = (size_t)1 << j.log_n;
    return j;
}

/* Trace generation: each table's rows, in witness memory. */
static void phase_trace(prover *p, heap *h, unsigned index, bool dry)
{
    for (unsigned i = 0; i < p->count; i++) {
        job j = table_job(p, &p->tables[i]);
        j.cols = j.t->width;
        j.dst = p->state[i].witness = heap_alloc(h, NALLOC_KIND_WITNESS, j.h * j.cols * j.elem);
        j.seed = bench_mix64(p->params.seed ^ ((uint64_t)index << 32) ^ i);
        if (!dry)
            bench_pool_run(p->pool, j.h, ROW_CHUNK / 4, kernels(j.elem)->fill_rows, &j);
    }
}

/* Commit: extend every main column (twiddles as a temporary), then a tree over the rows. */
static void phase_commit(prover *p, heap *h, uint64_t *transcript, bool dry)
{
    for (unsigned i = 0; i < p->count; i++) {
        job j = table_job(p, &p->tables[i]);
        heap_scope scope = heap_scope_begin(h);
        void *tw = heap_alloc(h, NALLOC_KIND_SCRATCH, j.n / 2 * j.elem);
        j.cols = j.t->width;
        j.src = p->state[i].witness;
        j.src_row_major = true;
        j.tw = tw;
        j.dst = p->state[i].lde = heap_alloc(h, NALLOC_KIND_POLY, j.n * j.cols * j.elem);
        if (!dry) {
            kernels(j.elem)->twiddles(tw, j.log_n);
            bench_pool_run(p->pool, j.cols, 1, kernels(j.elem)->extend_columns, &j);
        }
        transcript_absorb_digest(transcript, merkle_commit(p, h, j.dst, j.cols, j.n, j.elem));
        heap_scope_end(h, scope);
    }
}

/* Permutation: running products over the witness (denominators as a temporary), extended and
 * committed like the main trace. */
static void phase_permutation(prover *p, heap *h, uint64_t *transcript, bool dry)
{
    uint64_t beta = transcript_challenge(transcript, GL_P);
    for (unsigned i = 0; i < p->count; i++) {
        job j = table_job(p, &p->tables[i]);
        unsigned width = perm_width(j.t);
        heap_scope scope = heap_scope_begin(h);
        j.cols = width;
        j.beta = beta;
        j.src = p->state[i].witness;
        j.tmp = heap_alloc(h, NALLOC_KIND_SCRATCH, j.h * width * j.elem);
        void *perm = j.dst = heap_alloc(h, NALLOC_KIND_WITNESS, j.h * width * j.elem);
        if (!dry)
            bench_pool_run(p->pool, width, 1, kernels(j.elem)->perm_columns, &j);
        void *tw = heap_alloc(h, NALLOC_KIND_SCRATCH, j.n / 2 * j.elem);
        j.tw = tw;
        j.src = perm;
        j.dst = p->state[i].perm_lde = heap_alloc(h, NALLOC_KIND_POLY, j.n * width * j.elem);
        if (!dry) {
            kernels(j.elem)->twiddles(tw, j.log_n);
            bench_pool_run(p->pool, width, 1, kernels(j.elem)->extend_columns, &j);
        }
        transcript_absorb_digest(transcript, merkle_commit(p, h, j.dst, width, j.n, j.elem));
        heap_scope_end(h, scope);
    }
}

/* Quotient: accumulate the constraints over the extended domain, divide by the vanishing
 * polynomial, commit the two quotient columns. */
static void phase_quotient(prover *p, heap *h, uint64_t *transcript, bool dry)
{
    uint64_t alpha = transcript_challenge(transcript, GL_P);
    for (unsigned i = 0; i < p->count; i++) {
        job j = table_job(p, &p->tables[i]);
        heap_scope scope = heap_scope_begin(h);
        j.alpha = alpha;
        j.src = p->state[i].lde;
        j.cols = j.t->width;
        j.src2 = p->state[i].perm_lde;
        j.cols2 = perm_width(j.t);
        j.tmp = heap_alloc(h, NALLOC_KIND_SCRATCH, 2 * j.n * j.elem);
        size_t blowup = (size_t)1 << p->params.log_blowup;
        void *zinv = heap_alloc(h, NALLOC_KIND_SCRATCH, blowup * j.elem);
        j.aux = zinv;
        j.dst = p->state[i].quotient = heap_alloc(h, NALLOC_KIND_POLY, 2 * j.n * j.elem);
        if (!dry) {
            kernels(j.elem)->vanishing_inverses(zinv, j.log_h, p->params.log_blowup);
            bench_pool_run(p->pool, j.n, ROW_CHUNK, kernels(j.elem)->quotient_rows, &j);
        }
        transcript_absorb_digest(transcript, merkle_commit(p, h, j.dst, 2, j.n, j.elem));
        heap_scope_end(h, scope);
    }
}

/* A query opens one row of a column-major matrix: every value goes into the transcript. */
static void open_row(uint64_t *transcript, const void *matrix, unsigned cols, size_t n, size_t row,
                     unsigned elem)
{
    for (unsigned c = 0; c < cols; c++)
        transcript_absorb(transcript, load_elem(matrix, elem, (size_t)c * n + row));
}

/* FRI: batch every quotient into one codeword over the largest domain, fold it in half until 8
 * points remain, committing each layer; then answer the queries from every table and layer. */
static void phase_fri(prover *p, heap *h, uint64_t *transcript, bool dry)
{
    unsigned log_n = 0;
    for (unsigned i = 0; i < p->count; i++)
        if (p->tables[i].log_height + p->params.log_blowup > log_n)
            log_n = p->tables[i].log_height + p->params.log_blowup;
    fri_job fj = {.p = p, .alpha = transcript_challenge(transcript, GL_P)};
    p->fri_layers = 0;
    fj.f = heap_alloc(h, NALLOC_KIND_POLY, ((size_t)1 << log_n) * sizeof(uint64_t));
    if (!dry)
        bench_pool_run(p->pool, (size_t)1 << log_n, ROW_CHUNK, fri_combine_rows, &fj);
    for (;;) {
        p->fri[p->fri_layers] = fj.f;
        p->fri_log[p->fri_layers++] = log_n;
        transcript_absorb_digest(transcript, merkle_commit(p, h, fj.f, 1, (size_t)1 << log_n, 8));
        if (log_n <= FRI_FINAL_LOG)
            break;
        fj.beta = transcript_challenge(transcript, GL_P);
        fj.half = (size_t)1 << --log_n;
        fj.next = heap_alloc(h, NALLOC_KIND_POLY, fj.half * sizeof(uint64_t));
        if (!dry)
            bench_pool_run(p->pool, fj.half, ROW_CHUNK, fri_fold_rows, &fj);
        fj.f = fj.next;
    }
    if (dry)
        return;
    for (unsigned q = 0; q < p->params.queries; q++) {
        uint64_t index = transcript_challenge(transcript, UINT64_MAX);
        for (unsigned i = 0; i < p->count; i++) {
            const prover_table *t = &p->tables[i];
            size_t n = (size_t)1 << (t->log_height + p->params.log_blowup), row = index & (n - 1);
            open_row(transcript, p->state[i].lde, t->width, n, row, t->elem);
            open_row(transcript, p->state[i].perm_lde, perm_width(t), n, row, t->elem);
            open_row(transcript, p->state[i].quotient, 2, n, row, t->elem);
        }
        for (unsigned l = 0; l < p->fri_layers; l++)
            transcript_absorb(transcript, p->fri[l][index & (((size_t)1 << p->fri_log[l]) - 1)]);
    }
}

uint64_t prover_prove(prover *p, heap *h, unsigned index)
{
    bool dry = heap_get_mode(h) == HEAP_DRY;
    uint64_t transcript = bench_mix64(p->params.seed + index);
    phase_trace(p, h, index, dry);
    phase_commit(p, h, &transcript, dry);
    phase_permutation(p, h, &transcript, dry);
    phase_quotient(p, h, &transcript, dry);
    phase_fri(p, h, &transcript, dry);
    heap_proof_end(h);
    memset(p->state, 0, p->count * sizeof *p->state);
    return transcript;
}
