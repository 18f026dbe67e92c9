/* tests/test_ntt.c - the benchmark's field arithmetic and NTTs against their definitions.
 *
 * The prover-shaped benchmark reports a checksum per proof that every allocator must reproduce;
 * that only means something if the transforms compute what they claim. Here each one is checked
 * against the O(n^2) definition on small sizes, and the field operations against 128-bit integer
 * arithmetic.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ntt.h"

#define MAX_LOG 8 /* the naive transform is O(n^2): 256 points is plenty */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t next_random(void) /* splitmix64 */
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t random_gl(void)
{
    uint64_t x = next_random();
    return x >= GL_P ? x - GL_P : x;
}

static uint32_t random_bb(void)
{
    return (uint32_t)(next_random() % BB_P);
}

/* Values worth trying on top of random ones: the edges of the representation. */
static const uint64_t gl_edges[] = {0, 1, 2, GL_EPSILON, GL_EPSILON + 1, GL_P - 1, GL_P - 2,
                                    (uint64_t)1 << 63, GL_P >> 1, 0xFFFFFFFFull << 32 >> 1};
static const uint32_t bb_edges[] = {0, 1, 2, BB_P - 1, BB_P - 2, BB_P >> 1, 1u << 30};

static void test_goldilocks_arithmetic_matches_128_bit_integers(void **state)
{
    (void)state;
    const size_t nedges = sizeof gl_edges / sizeof gl_edges[0];
    for (size_t i = 0; i < 20000; i++) {
        uint64_t a = i < nedges * nedges ? gl_edges[i / nedges] : random_gl();
        uint64_t b = i < nedges * nedges ? gl_edges[i % nedges] : random_gl();
        unsigned __int128 p = GL_P;
        assert_true(gl_add(a, b) == (uint64_t)(((unsigned __int128)a + b) % p));
        assert_true(gl_sub(a, b) == (uint64_t)(((unsigned __int128)a + p - b) % p));
        assert_true(gl_mul(a, b) == (uint64_t)(((unsigned __int128)a * b) % p));
        if (a != 0)
            assert_true(gl_mul(a, gl_inv(a)) == 1);
    }
}

static void test_babybear_arithmetic_matches_64_bit_integers(void **state)
{
    (void)state;
    const size_t nedges = sizeof bb_edges / sizeof bb_edges[0];
    for (size_t i = 0; i < 20000; i++) {
        uint32_t a = i < nedges * nedges ? bb_edges[i / nedges] : random_bb();
        uint32_t b = i < nedges * nedges ? bb_edges[i % nedges] : random_bb();
        assert_int_equal(bb_add(a, b), ((uint64_t)a + b) % BB_P);
        assert_int_equal(bb_sub(a, b), ((uint64_t)a + BB_P - b) % BB_P);
        assert_int_equal(bb_mul(a, b), ((uint64_t)a * b) % BB_P);
        if (a != 0)
            assert_int_equal(bb_mul(a, bb_inv(a)), 1);
    }
}

static void test_roots_of_unity_have_exactly_the_requested_order(void **state)
{
    (void)state;
    for (unsigned log_n = 1; log_n <= GL_TWO_ADICITY; log_n++) {
        uint64_t w = gl_root_of_unity(log_n);
        assert_true(gl_pow(w, (uint64_t)1 << (log_n - 1)) == GL_P - 1); /* order not smaller */
        assert_true(gl_pow(w, (uint64_t)1 << log_n) == 1);
    }
    for (unsigned log_n = 1; log_n <= BB_TWO_ADICITY; log_n++) {
        uint32_t w = bb_root_of_unity(log_n);
        assert_int_equal(bb_pow(w, (uint64_t)1 << (log_n - 1)), BB_P - 1);
        assert_int_equal(bb_pow(w, (uint64_t)1 << log_n), 1);
    }
}

/* The forward transform, with a twiddle table of the same size and with one `stride` times
 * larger (how the LDE reuses its table for the inverse of the smaller size). */
static void test_goldilocks_ntt_matches_the_naive_transform(void **state)
{
    (void)state;
    uint64_t a[1 << MAX_LOG], expect[1 << MAX_LOG], tw[1 << (MAX_LOG + 1)];
    a[0] = expect[0] = random_gl(); /* one point: the identity, no table read */
    gl_ntt(a, 0, NULL, 1);
    assert_true(a[0] == expect[0]);
    for (unsigned log_n = 1; log_n <= MAX_LOG; log_n++) {
        size_t n = (size_t)1 << log_n;
        for (unsigned log_stride = 0; log_stride <= 2; log_stride++) {
            gl_twiddles(tw, log_n + log_stride);
            for (size_t i = 0; i < n; i++)
                a[i] = random_gl();
            gl_dft_naive(a, n, gl_root_of_unity(log_n), expect);
            gl_ntt(a, log_n, tw, (size_t)1 << log_stride);
            assert_memory_equal(a, expect, n * sizeof a[0]);
        }
    }
}

static void test_babybear_ntt_matches_the_naive_transform(void **state)
{
    (void)state;
    uint32_t a[1 << MAX_LOG], expect[1 << MAX_LOG], tw[1 << (MAX_LOG + 1)];
    for (unsigned log_n = 1; log_n <= MAX_LOG; log_n++) {
        size_t n = (size_t)1 << log_n;
        for (unsigned log_stride = 0; log_stride <= 2; log_stride++) {
            bb_twiddles(tw, log_n + log_stride);
            for (size_t i = 0; i < n; i++)
                a[i] = random_bb();
            bb_dft_naive(a, n, bb_root_of_unity(log_n), expect);
            bb_ntt(a, log_n, tw, (size_t)1 << log_stride);
            assert_memory_equal(a, expect, n * sizeof a[0]);
        }
    }
}

static void test_inverse_ntt_undoes_the_forward_one(void **state)
{
    (void)state;
    uint64_t a[1 << MAX_LOG], orig[1 << MAX_LOG], tw[1 << MAX_LOG];
    uint32_t b[1 << MAX_LOG], borig[1 << MAX_LOG], btw[1 << MAX_LOG];
    for (unsigned log_n = 1; log_n <= MAX_LOG; log_n++) {
        size_t n = (size_t)1 << log_n;
        gl_twiddles(tw, log_n);
        bb_twiddles(btw, log_n);
        for (size_t i = 0; i < n; i++) {
            orig[i] = a[i] = random_gl();
            borig[i] = b[i] = random_bb();
        }
        gl_ntt(a, log_n, tw, 1);
        gl_intt(a, log_n, tw, 1);
        assert_memory_equal(a, orig, n * sizeof a[0]);
        bb_ntt(b, log_n, btw, 1);
        bb_intt(b, log_n, btw, 1);
        assert_memory_equal(b, borig, n * sizeof b[0]);
    }
}

/* Horner: c[0] + c[1] x + ... + c[n-1] x^(n-1). */
static uint64_t gl_eval(const uint64_t *c, size_t n, uint64_t x)
{
    uint64_t acc = 0;
    for (size_t i = n; i-- > 0;)
        acc = gl_add(gl_mul(acc, x), c[i]);
    return acc;
}

static uint32_t bb_eval(const uint32_t *c, size_t n, uint32_t x)
{
    uint32_t acc = 0;
    for (size_t i = n; i-- > 0;)
        acc = bb_add(bb_mul(acc, x), c[i]);
    return acc;
}

/* A random polynomial of degree < h, given by its values on the subgroup of size h, extended to
 * the coset shift * (subgroup of size h * blowup): every output is the polynomial's value there. */
static void test_lde_evaluates_the_interpolant_on_the_coset(void **state)
{
    (void)state;
    enum { LOG_H = 6, N = 1 << (LOG_H + 2) };
    uint64_t coeffs[1 << LOG_H], values[1 << LOG_H], out[N], tw[N];
    uint32_t bcoeffs[1 << LOG_H], bvalues[1 << LOG_H], bout[N], btw[N];
    for (unsigned log_h = 0; log_h <= LOG_H; log_h++) {
        for (unsigned log_blowup = 0; log_blowup <= 2; log_blowup++) {
            size_t h = (size_t)1 << log_h, n = h << log_blowup;
            unsigned log_n = log_h + log_blowup;
            for (size_t i = 0; i < h; i++) {
                coeffs[i] = random_gl();
                bcoeffs[i] = random_bb();
            }
            gl_dft_naive(coeffs, h, gl_root_of_unity(log_h), values);
            bb_dft_naive(bcoeffs, h, bb_root_of_unity(log_h), bvalues);
            if (log_n > 0) {
                gl_twiddles(tw, log_n);
                bb_twiddles(btw, log_n);
            }
            gl_lde(values, log_h, log_blowup, GL_GENERATOR, tw, out);
            bb_lde(bvalues, log_h, log_blowup, BB_GENERATOR, btw, bout);
            uint64_t w = gl_root_of_unity(log_n), x = GL_GENERATOR;
            uint32_t bw = bb_root_of_unity(log_n), bx = BB_GENERATOR;
            for (size_t k = 0; k < n; k++) {
                assert_true(out[k] == gl_eval(coeffs, h, x));
                assert_int_equal(bout[k], bb_eval(bcoeffs, h, bx));
                x = gl_mul(x, w);
                bx = bb_mul(bx, bw);
            }
        }
    }
}

/* The benchmark extends columns in place: values in the first h slots of the output. */
static void test_lde_works_in_place(void **state)
{
    (void)state;
    enum { LOG_H = 5, LOG_BLOWUP = 1, N = 1 << (LOG_H + LOG_BLOWUP) };
    uint64_t values[N], in_place[N], tw[N];
    gl_twiddles(tw, LOG_H + LOG_BLOWUP);
    for (size_t i = 0; i < (1u << LOG_H); i++)
        in_place[i] = values[i] = random_gl();
    uint64_t out[N];
    gl_lde(values, LOG_H, LOG_BLOWUP, GL_GENERATOR, tw, out);
    gl_lde(in_place, LOG_H, LOG_BLOWUP, GL_GENERATOR, tw, in_place);
    assert_memory_equal(out, in_place, sizeof out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_goldilocks_arithmetic_matches_128_bit_integers),
        cmocka_unit_test(test_babybear_arithmetic_matches_64_bit_integers),
        cmocka_unit_test(test_roots_of_unity_have_exactly_the_requested_order),
        cmocka_unit_test(test_goldilocks_ntt_matches_the_naive_transform),
        cmocka_unit_test(test_babybear_ntt_matches_the_naive_transform),
        cmocka_unit_test(test_inverse_ntt_undoes_the_forward_one),
        cmocka_unit_test(test_lde_evaluates_the_interpolant_on_the_coset),
        cmocka_unit_test(test_lde_works_in_place),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
