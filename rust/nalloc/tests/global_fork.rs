//! `fork` from a thread inside a route, with `nalloc::Global` as the global allocator.
//!
//! A binary of its own with a single test: a child forked from a process whose other threads
//! hold locks (the test harness runs tests in parallel) may deadlock in them, so nothing else
//! runs here. The child reports through its exit status only: every check is one bit, and it
//! leaves with `_exit`, running no exit handler of the parent's.

use std::ffi::c_int;

use nalloc::{route, sys, Arena, Global, Kind};

#[global_allocator]
static ALLOC: Global = Global::new();

extern "C" {
    fn fork() -> c_int;
    fn waitpid(pid: c_int, status: *mut c_int, options: c_int) -> c_int;
    fn _exit(status: c_int) -> !;
}

/// What the child checks; each failed check sets its bit in the exit status.
fn child(scratch: &Arena, witness: &Arena, before: &[u64], secret: Vec<u8>, wipes: bool) -> c_int {
    let mut failed = 0;
    // Still routed: the route stack and the thread's chunks came through the fork.
    if !nalloc::is_routed() {
        failed |= 1;
    }
    let v: Vec<u64> = (0..10_000).collect();
    if !scratch.contains(v.as_ptr().cast()) || v.iter().sum::<u64>() != 49_995_000 {
        failed |= 2;
    }
    // The scratch arena's blocks are the parent's, copied.
    if !before.iter().all(|&x| x == 3) {
        failed |= 4;
    }
    // The witness arena's memory reads as zeros in a child (wipe-on-fork), where it is in force.
    if wipes && !secret.iter().all(|&b| b == 0) {
        failed |= 8;
    }
    // Blocks made before the fork and after it are freed without harm: the witness block's
    // header was zeroed with the rest, so C declines to free it (it reports why) and the memory
    // stays the arena's.
    drop(v);
    drop(secret);
    let w = route(witness, || vec![1u8; 1000]);
    if !witness.contains(w.as_ptr()) {
        failed |= 16;
    }
    drop(w);
    // Unrouted allocation works too.
    let u = nalloc::unrouted(|| vec![2u32; 1000]);
    if scratch.contains(u.as_ptr().cast()) || u.iter().sum::<u32>() != 2000 {
        failed |= 32;
    }
    failed
}

#[test]
fn a_process_forked_inside_a_route_keeps_routing_and_sees_no_witness() {
    let scratch = Arena::new(Kind::Scratch, 16 << 20).unwrap();
    let witness = Arena::new(Kind::Witness, 1 << 20).unwrap();
    let wipes = witness.stats().wipe_on_fork;
    let status = route(&scratch, || {
        let before = vec![3u64; 1000];
        let secret = route(&witness, || vec![0x5au8; 4096]);
        assert!(witness.contains(secret.as_ptr()));
        // SAFETY: the child runs only the code above with the locks it needs free (this binary
        // has no other test thread), and leaves with _exit.
        let pid = unsafe { fork() };
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            let failed = child(&scratch, &witness, &before, secret, wipes);
            // SAFETY: ends the child without running the parent's exit handlers.
            unsafe { _exit(failed) };
        }
        let mut status = 0;
        // SAFETY: waits for our own child.
        assert_eq!(unsafe { waitpid(pid, &mut status, 0) }, pid);
        assert!(
            secret.iter().all(|&b| b == 0x5a),
            "the parent's secret is intact"
        );
        status
    });
    assert!(
        status & 0x7f == 0,
        "the child was killed by signal {}",
        status & 0x7f
    );
    let failed = (status >> 8) & 0xff;
    assert_eq!(
        failed, 0,
        "the child's checks that failed (bits): {failed:#b}"
    );
    // SAFETY: always safe.
    assert_eq!(unsafe { sys::nalloc_route_depth() }, 0);
}
