/* tests/kzglike/kzglike.c - the toy polynomial-commitment library (kzglike.h).
 *
 * Written the way C libraries of this kind are: every temporary is malloc'd where it is needed
 * and freed in the order it was allocated at the end of the function, public functions call each
 * other, a growing buffer is realloc'd, the settings outlive the calls, and the thread pool's
 * workers free the task records the caller allocated. Nothing here knows about nalloc: whether
 * these allocations land in an arena is decided outside (a route and the override library).
 */
#include "kzglike.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct kz_settings {
    size_t max_coeffs;
    uint64_t tau;
    uint64_t *powers; /* tau^i for i < max_coeffs */
};

/* ---------------------------------------------------------------------------------------------
 * The field
 * ------------------------------------------------------------------------------------------- */

uint64_t kz_add(uint64_t a, uint64_t b)
{
    uint64_t s = a + b;
    return s >= KZ_P ? s - KZ_P : s;
}

uint64_t kz_sub(uint64_t a, uint64_t b)
{
    return a >= b ? a - b : a + KZ_P - b;
}

uint64_t kz_mul(uint64_t a, uint64_t b)
{
    unsigned __int128 t = (unsigned __int128)a * b;
    uint64_t r = (uint64_t)(t & KZ_P) + (uint64_t)(t >> 61); /* 2^61 = 1 */
    if (r >= KZ_P)
        r -= KZ_P;
    if (r >= KZ_P)
        r -= KZ_P;
    return r;
}

/* ---------------------------------------------------------------------------------------------
 * Settings
 * ------------------------------------------------------------------------------------------- */

kz_ret kz_setup(size_t max_coeffs, uint64_t tau, kz_settings **out)
{
    if (out == NULL || max_coeffs == 0 || max_coeffs > SIZE_MAX / sizeof(uint64_t) || tau >= KZ_P)
        return KZ_BADARGS;
    kz_settings *s = malloc(sizeof *s);
    if (s == NULL)
        return KZ_MALLOC;
    s->powers = malloc(max_coeffs * sizeof(uint64_t));
    if (s->powers == NULL) {
        free(s);
        return KZ_MALLOC;
    }
    s->max_coeffs = max_coeffs;
    s->tau = tau;
    uint64_t x = 1;
    for (size_t i = 0; i < max_coeffs; i++) {
        s->powers[i] = x;
        x = kz_mul(x, tau);
    }
    *out = s;
    return KZ_OK;
}

void kz_free_settings(kz_settings *s)
{
    if (s == NULL)
        return;
    free(s->powers);
    free(s);
}

uint64_t kz_secret(const kz_settings *s)
{
    return s->tau;
}

/* ---------------------------------------------------------------------------------------------
 * Commit, prove, verify
 * ------------------------------------------------------------------------------------------- */

kz_ret kz_commit(const kz_settings *s, const uint64_t *coeffs, size_t n, uint64_t *commitment)
{
    if (s == NULL || commitment == NULL || (n > 0 && coeffs == NULL) || n > s->max_coeffs)
        return KZ_BADARGS;
    uint64_t *reduced = malloc((n > 0 ? n : 1) * sizeof *reduced);
    uint64_t *terms = calloc(n > 0 ? n : 1, sizeof *terms);
    if (reduced == NULL || terms == NULL) {
        free(reduced);
        free(terms);
        return KZ_MALLOC;
    }
    for (size_t i = 0; i < n; i++)
        reduced[i] = coeffs[i] % KZ_P;
    for (size_t i = 0; i < n; i++)
        terms[i] = kz_mul(reduced[i], s->powers[i]);
    uint64_t acc = 0;
    for (size_t i = 0; i < n; i++)
        acc = kz_add(acc, terms[i]);
    free(reduced); /* in allocation order */
    free(terms);
    *commitment = acc;
    return KZ_OK;
}

kz_ret kz_prove(const kz_settings *s, const uint64_t *coeffs, size_t n, uint64_t z, uint64_t *y,
                uint64_t *proof)
{
    if (s == NULL || coeffs == NULL || n == 0 || n > s->max_coeffs || y == NULL || proof == NULL ||
        z >= KZ_P)
        return KZ_BADARGS;
    /* Synthetic division by (x - z): trace[k] = a_k + z * trace[k + 1]; f(z) = trace[0] and the
     * quotient's coefficients are trace[1..n-1]. */
    uint64_t *quotient = malloc((n > 1 ? n - 1 : 1) * sizeof *quotient);
    uint64_t *trace = malloc(n * sizeof *trace);
    if (quotient == NULL || trace == NULL) {
        free(quotient);
        free(trace);
        return KZ_MALLOC;
    }
    uint64_t acc = 0;
    for (size_t k = n; k-- > 0;) {
        acc = kz_add(coeffs[k] % KZ_P, kz_mul(acc, z));
        trace[k] = acc;
    }
    for (size_t k = 0; k + 1 < n; k++)
        quotient[k] = trace[k + 1];
    uint64_t c = 0;
    kz_ret ret = n > 1 ? kz_commit(s, quotient, n - 1, &c) : KZ_OK; /* a public call inside */
    uint64_t value = trace[0];
    free(quotient);
    free(trace);
    if (ret != KZ_OK)
        return ret;
    *y = value;
    *proof = c;
    return KZ_OK;
}

int kz_verify(const kz_settings *s, uint64_t commitment, uint64_t z, uint64_t y, uint64_t proof)
{
    return kz_sub(commitment, y) == kz_mul(proof, kz_sub(s->tau, z));
}

/* ---------------------------------------------------------------------------------------------
 * Blobs
 * ------------------------------------------------------------------------------------------- */

/* Append bytes to a buffer that grows by doubling with realloc. */
static int append(uint8_t **buf, size_t *cap, size_t *len, const void *bytes, size_t n)
{
    while (*len + n > *cap) {
        uint8_t *grown = realloc(*buf, *cap * 2);
        if (grown == NULL)
            return 0;
        *buf = grown;
        *cap *= 2;
    }
    memcpy(*buf + *len, bytes, n);
    *len += n;
    return 1;
}

static uint64_t fnv1a(const uint8_t *p, size_t n)
{
    uint64_t h = UINT64_C(0xcbf29ce484222325);
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * UINT64_C(0x100000001b3);
    return h;
}

kz_ret kz_blob_to_proof(const kz_settings *s, const uint8_t *blob, size_t len, kz_blob_proof *out)
{
    size_t n = len / 7 + (len % 7 != 0);
    if (s == NULL || out == NULL || blob == NULL || n == 0 || n > s->max_coeffs)
        return KZ_BADARGS;
    uint64_t *coeffs = malloc(n * sizeof *coeffs);
    if (coeffs == NULL)
        return KZ_MALLOC;
    for (size_t i = 0; i < n; i++) {
        uint64_t v = 0;
        for (size_t b = 0; b < 7 && i * 7 + b < len; b++)
            v |= (uint64_t)blob[i * 7 + b] << (8 * b);
        coeffs[i] = v; /* < 2^56 < p */
    }
    kz_blob_proof r;
    kz_ret ret = kz_commit(s, coeffs, n, &r.commitment);
    /* The challenge: a hash of everything the verifier sees, in a buffer grown as it fills. */
    size_t cap = 16, used = 0;
    uint8_t *transcript = ret == KZ_OK ? malloc(cap) : NULL;
    uint64_t len64 = len;
    if (ret == KZ_OK &&
        (transcript == NULL || !append(&transcript, &cap, &used, "KZLIKEv1", 8) ||
         !append(&transcript, &cap, &used, &len64, sizeof len64) ||
         !append(&transcript, &cap, &used, blob, len) ||
         !append(&transcript, &cap, &used, &r.commitment, sizeof r.commitment)))
        ret = KZ_MALLOC;
    if (ret == KZ_OK) {
        r.z = fnv1a(transcript, used) % KZ_P;
        ret = kz_prove(s, coeffs, n, r.z, &r.y, &r.proof);
    }
    free(coeffs);
    free(transcript);
    if (ret == KZ_OK)
        *out = r;
    return ret;
}

/* ---------------------------------------------------------------------------------------------
 * The thread pool
 * ------------------------------------------------------------------------------------------- */

typedef struct kz_batch {
    size_t pending;      /* tasks not finished (pool lock) */
    kz_ret failure;      /* the first failure, or KZ_OK (pool lock) */
} kz_batch;

typedef struct kz_task {
    struct kz_task *next;
    const kz_settings *s;
    const uint8_t *blob;
    size_t len;
    kz_blob_proof *out;
    kz_batch *batch;
} kz_task;

struct kz_pool {
    pthread_mutex_t lock;
    pthread_cond_t work, done;
    kz_task *head, *tail;
    int stop;
    unsigned threads;
    pthread_t *ids;
};

static void *worker(void *arg)
{
    kz_pool *pool = arg;
    pthread_mutex_lock(&pool->lock);
    for (;;) {
        while (!pool->stop && pool->head == NULL)
            pthread_cond_wait(&pool->work, &pool->lock);
        if (pool->head == NULL)
            break; /* stopping, and nothing left */
        kz_task *t = pool->head;
        pool->head = t->next;
        if (pool->head == NULL)
            pool->tail = NULL;
        pthread_mutex_unlock(&pool->lock);
        kz_ret ret = kz_blob_to_proof(t->s, t->blob, t->len, t->out);
        kz_batch *batch = t->batch;
        free(t); /* allocated by the caller, on its thread */
        pthread_mutex_lock(&pool->lock);
        if (ret != KZ_OK && batch->failure == KZ_OK)
            batch->failure = ret;
        if (--batch->pending == 0)
            pthread_cond_broadcast(&pool->done);
    }
    pthread_mutex_unlock(&pool->lock);
    return NULL;
}

kz_ret kz_pool_create(unsigned threads, kz_pool **out)
{
    if (out == NULL || threads == 0)
        return KZ_BADARGS;
    kz_pool *pool = calloc(1, sizeof *pool);
    if (pool == NULL)
        return KZ_MALLOC;
    pool->ids = malloc(threads * sizeof *pool->ids);
    if (pool->ids == NULL) {
        free(pool);
        return KZ_MALLOC;
    }
    pthread_mutex_init(&pool->lock, NULL);
    pthread_cond_init(&pool->work, NULL);
    pthread_cond_init(&pool->done, NULL);
    for (unsigned i = 0; i < threads; i++) {
        if (pthread_create(&pool->ids[i], NULL, worker, pool) != 0) {
            pool->threads = i;
            kz_pool_destroy(pool);
            return KZ_MALLOC;
        }
        pool->threads = i + 1;
    }
    *out = pool;
    return KZ_OK;
}

void kz_pool_destroy(kz_pool *pool)
{
    if (pool == NULL)
        return;
    pthread_mutex_lock(&pool->lock);
    pool->stop = 1;
    pthread_cond_broadcast(&pool->work);
    pthread_mutex_unlock(&pool->lock);
    for (unsigned i = 0; i < pool->threads; i++)
        pthread_join(pool->ids[i], NULL);
    pthread_mutex_destroy(&pool->lock);
    pthread_cond_destroy(&pool->work);
    pthread_cond_destroy(&pool->done);
    free(pool->ids);
    free(pool);
}

kz_ret kz_batch_prove(kz_pool *pool, const kz_settings *s, const uint8_t *const *blobs,
                      const size_t *lens, size_t count, kz_blob_proof *out)
{
    if (pool == NULL || s == NULL || (count > 0 && (blobs == NULL || lens == NULL || out == NULL)))
        return KZ_BADARGS;
    kz_batch batch = {0, KZ_OK};
    kz_task **tasks = malloc((count > 0 ? count : 1) * sizeof *tasks);
    if (tasks == NULL)
        return KZ_MALLOC;
    size_t made = 0;
    for (; made < count; made++) {
        tasks[made] = malloc(sizeof **tasks);
        if (tasks[made] == NULL)
            break;
        *tasks[made] = (kz_task){NULL, s, blobs[made], lens[made], &out[made], &batch};
    }
    if (made < count) {
        for (size_t i = 0; i < made; i++)
            free(tasks[i]);
        free(tasks);
        return KZ_MALLOC;
    }
    pthread_mutex_lock(&pool->lock);
    batch.pending = count;
    for (size_t i = 0; i < count; i++) {
        if (pool->tail != NULL)
            pool->tail->next = tasks[i];
        else
            pool->head = tasks[i];
        pool->tail = tasks[i];
    }
    pthread_cond_broadcast(&pool->work);
    while (batch.pending > 0)
        pthread_cond_wait(&pool->done, &pool->lock);
    pthread_mutex_unlock(&pool->lock);
    free(tasks); /* the tasks themselves were freed by the workers */
    return batch.failure;
}
