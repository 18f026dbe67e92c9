/* tests/test_lanes_race.c - a parent's destroy, a lane's destroy and a new arena in the lane's
 * slot, made to meet every time.
 *
 * Destroying a parent destroys its live lanes (src/arena.c, lanes_destroy_all): it finds one
 * under the handle lock, lets the lock go, then destroys what it found. In between, another
 * thread may destroy the lane, and a third create an arena that takes the lane's freed handle
 * slot; the parent's destroy must then leave that unrelated arena alone. Threads meet in that
 * window only by chance, so this test is built from the library's own sources with
 * NALLOC_TEST_SEAMS (src/common.h) and does the other threads' work inside the window
 * (na_seam_lane_found): it destroys the lane, then creates arenas until one takes the lane's slot
 * (slots are reused oldest-first once the newest chunk's fresh ones are gone). Doing it on the
 * destroying thread changes nothing the parent can see: the parent holds only its own control
 * lock there, which neither of those calls takes.
 */
#include "testutil.h"

#include "internal.h"

enum { MAX_TRIES = 4096 }; /* creations to reach the lane's slot: a few chunks' worth */

static int seam_calls;
static nalloc_arena *intruder; /* the arena created in the destroyed lane's slot, or NULL */

static void destroy_the_lane_and_take_its_slot(nalloc_arena *lane)
{
    if (seam_calls++ > 0) /* only the first lane found: the second is the parent's to destroy */
        return;
    if (nalloc_arena_destroy(lane) != NALLOC_OK) /* "another thread" destroys the lane... */
        return;
    static nalloc_arena *made[MAX_TRIES];
    int n = 0;
    for (; n < MAX_TRIES; n++) { /* ...and "a third" creates arenas until one gets its slot */
        nalloc_arena_config c;
        nalloc_arena_config_init(&c, NALLOC_KIND_SCRATCH, NALLOC_MEMORY_HOST, 64 * KiB);
        c.name = "intruder";
        if (nalloc_arena_create(&c, &made[n]) != NALLOC_OK)
            break;
        if (made[n] == lane) {
            intruder = made[n];
            break;
        }
    }
    for (int i = 0; i < n; i++) /* the others were only in the way */
        (void)nalloc_arena_destroy(made[i]);
}

static void test_a_parents_destroy_spares_an_arena_born_in_a_dead_lanes_slot(void **state)
{
    (void)state;
    nalloc_arena *parent = make_arena(NALLOC_KIND_SCRATCH, 4 * MiB);
    nalloc_arena *lanes[2];
    assert_int_equal(nalloc_arena_split(parent, 2, 64 * KiB, lanes), NALLOC_OK);
    na_seam_lane_found = destroy_the_lane_and_take_its_slot;
    assert_int_equal(nalloc_arena_destroy(parent), NALLOC_OK);
    na_seam_lane_found = NULL;
    assert_int_equal(seam_calls, 2); /* the window was reached, for each lane */
    assert_non_null(intruder);       /* and the slot reused inside it */

    /* The newcomer is alive and whole; the parent's other lane went with it. */
    void *p = nalloc_alloc(intruder, 64);
    assert_non_null(p);
    nalloc_stats s = stats_of(intruder);
    assert_string_equal(s.name, "intruder");
    assert_int_equal(s.allocations, 1);
    assert_int_equal(nalloc_arena_destroy(intruder), NALLOC_OK);
    assert_null_with(NALLOC_ERR_STATE, nalloc_alloc(lanes[0] == intruder ? lanes[1] : lanes[0], 1));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_parents_destroy_spares_an_arena_born_in_a_dead_lanes_slot),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
