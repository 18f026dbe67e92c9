/* bench/wipe_demo.c - what a witness wipe does, shown on real memory (scripts/run.sh runs it).
 *
 * Three proofs through one witness arena. The first writes a secret, part of it in a block that
 * a phase rolls back before the proof ends. The arena is then reset without a wipe, as a pool
 * would recycle it, and the second proof's fresh allocation reads the first proof's secret. Then
 * nalloc_wipe: everything up to the high-water mark is zeroed, the rolled-back block included,
 * and the third proof reads zeros. For comparison, glibc's malloc hands the same secret to the
 * next caller after free. Every claim printed is checked; the program fails if one is false.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nalloc/nalloc.h>

#define SECRET_BYTES 4096
#define SECRET 0x5a

static size_t count_byte(const unsigned char *p, size_t n, unsigned char value)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        c += p[i] == value;
    return c;
}

static void show(const char *what, const unsigned char *p)
{
    printf("  %-52s %02x %02x %02x %02x %02x %02x %02x %02x ... (%zu of %d bytes are 0x%02x)\n",
           what, p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7],
           count_byte(p, SECRET_BYTES, SECRET), SECRET_BYTES, SECRET);
}

static int fail(const char *why)
{
    fprintf(stderr, "wipe_demo: %s\n", why);
    return 1;
}

int main(void)
{
    nalloc_arena_config config;
    nalloc_arena_config_init(&config, NALLOC_KIND_WITNESS, NALLOC_MEMORY_HOST, (size_t)1 << 20);
    nalloc_arena *witness;
    nalloc_status st = nalloc_arena_create(&config, &witness);
    if (st != NALLOC_OK)
        return fail(nalloc_strerror(st));
    nalloc_stats s;
    if (nalloc_arena_stats(witness, &s) != NALLOC_OK)
        return fail(nalloc_last_error_message());
    printf("\nwitness wipe demonstration: a 1 MiB witness arena; protections in force:%s%s%s%s%s\n",
           s.guard_pages ? " guard pages," : "", s.locked ? " locked (never swapped)," : "",
           s.no_dump ? " not in core dumps," : "",
           s.wipe_on_fork ? " zero in forked children," : "",
           s.wipe_on_destroy ? " wiped on destroy" : "");
    if (s.missing)
        printf("  (refused here, reported by nalloc_arena_stats: flags 0x%x)\n", s.missing);

    /* Proof 1: a secret, and a temporary that a phase rolls back. */
    unsigned char *secret = nalloc_alloc(witness, SECRET_BYTES);
    nalloc_mark phase = nalloc_mark_get(witness);
    unsigned char *temporary = nalloc_alloc(witness, SECRET_BYTES);
    if (secret == NULL || temporary == NULL)
        return fail("allocation failed");
    memset(secret, SECRET, SECRET_BYTES);
    memset(temporary, SECRET, SECRET_BYTES);
    show("proof 1 writes its secret:", secret);
    if (nalloc_rollback(witness, phase) != NALLOC_OK)
        return fail("rollback refused");
    printf("  proof 1 rolls back a phase that held another %d secret bytes\n", SECRET_BYTES);

    /* Reset without a wipe: what recycling memory without scrubbing it means. */
    if (nalloc_reset(witness) != NALLOC_OK)
        return fail(nalloc_last_error_message());
    unsigned char *next = nalloc_alloc(witness, SECRET_BYTES);
    show("after a reset (no wipe), proof 2's new block reads:", next);
    if (count_byte(next, SECRET_BYTES, SECRET) != SECRET_BYTES)
        return fail("expected the old secret after a plain reset");

    /* The wipe: everything up to the high-water mark, the rolled-back block included. */
    st = nalloc_wipe(witness);
    if (st != NALLOC_OK)
        return fail(nalloc_strerror(st));
    if (nalloc_arena_stats(witness, &s) != NALLOC_OK)
        return fail(nalloc_last_error_message());
    printf("  nalloc_wipe zeroes %zu bytes (up to the high-water mark) and resets the arena\n",
           s.wiped_bytes);
    unsigned char *first = nalloc_alloc(witness, SECRET_BYTES);
    unsigned char *second = nalloc_alloc(witness, SECRET_BYTES);
    if (first != secret || second != temporary)
        return fail("expected the same layout in proof 3");
    show("proof 3's first block (where the secret was) reads:", first);
    show("its second block (the rolled-back temporary) reads:", second);
    if (count_byte(first, SECRET_BYTES, 0) != SECRET_BYTES ||
        count_byte(second, SECRET_BYTES, 0) != SECRET_BYTES)
        return fail("the wipe left secret bytes behind");
    if (s.wiped_bytes < 2 * SECRET_BYTES)
        return fail("the wipe did not reach the high-water mark");

    /* glibc's malloc, for comparison: freed memory goes to the next caller as it was. */
    unsigned char *m = malloc(SECRET_BYTES);
    if (m == NULL)
        return fail("malloc failed");
    memset(m, SECRET, SECRET_BYTES);
    /* Without this the compiler drops the memset as a dead store before free, and the demo
     * would show an allocator that never received the secret. */
    __asm__ volatile("" : : "g"(m) : "memory");
    free(m);
    unsigned char *again = malloc(SECRET_BYTES);
    if (again == NULL)
        return fail("malloc failed");
    __asm__ volatile("" : : "g"(again) : "memory"); /* read what the allocator really left */
    show("glibc: malloc after free of a secret block reads:", again);
    size_t left = count_byte(again, SECRET_BYTES, SECRET);
    /* Say only what was observed: malloc's policy is not ours to state. */
    printf("  (%s block as the freed one; %zu of its %d bytes are the previous owner's secret, "
           "%zu overwritten by malloc's bookkeeping)\n", again == m ? "the same" : "not the same",
           left, SECRET_BYTES, SECRET_BYTES - left);
    free(again);

    nalloc_arena_destroy(witness);
    printf("  the witness arena is wiped once more when it is destroyed\n\n");
    return 0;
}
