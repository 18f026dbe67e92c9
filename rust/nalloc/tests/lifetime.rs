//! Releasing memory: reset, wipe, rollback, phases, and the witness wipe when an arena is
//! dropped.

use std::process::Command;

use nalloc::{Arena, ArenaConfig, Kind, Memory, Status};

/// Read `len` bytes at `addr`, memory the arena owns but has not handed out (released, then
/// zeroed or not): a raw read, no reference into the arena is alive.
fn peek(addr: *const u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| unsafe { addr.add(i).read_volatile() })
        .collect()
}

#[test]
fn reset_releases_everything_and_hands_out_the_same_memory_again() {
    let mut arena = Arena::new(Kind::Scratch, 1 << 20).unwrap();
    let first = arena.alloc_slice_copy(&[1u64; 1000]).as_ptr();
    arena.alloc(2u32);
    arena.reset().unwrap();
    let s = arena.stats();
    assert_eq!((s.used, s.resets), (0, 1));
    assert!(s.high_water >= 8000);
    assert_eq!(arena.alloc_slice_copy(&[3u64; 1000]).as_ptr(), first);
}

#[test]
fn reset_does_not_zero_but_wipe_does() {
    let mut arena = Arena::new(Kind::Scratch, 1 << 20).unwrap();
    let at = arena.alloc_slice_copy(&[0x77u8; 5000]).as_ptr();
    arena.reset().unwrap();
    assert!(
        peek(at, 5000).iter().all(|&b| b == 0x77),
        "a reset leaves the bytes"
    );
    arena.alloc_slice_copy(&[0x66u8; 3000]);
    arena.wipe().unwrap();
    // The wipe zeroes up to the high-water mark, not only up to the offset.
    assert!(peek(at, 5000).iter().all(|&b| b == 0));
    let s = arena.stats();
    assert_eq!((s.used, s.wipes, s.wiped_bytes), (0, 1, 5000));
}

#[test]
fn marks_roll_back_to_their_position_and_go_stale_after_a_reset() {
    let mut arena = Arena::new(Kind::Scratch, 1 << 20).unwrap();
    arena.alloc(1u64);
    let outer = arena.mark();
    arena.alloc_slice_copy(&[0u8; 1000]);
    let inner = arena.mark();
    arena.alloc_slice_copy(&[0u8; 1000]);
    arena.rollback(inner).unwrap();
    assert_eq!(arena.stats().used, 64 + 1000);
    arena.rollback(inner).unwrap(); // the same mark again: allowed
    arena.rollback(outer).unwrap();
    assert_eq!(arena.stats().used, 8);
    // `inner` lies above what the last rollback released: refused, arena untouched.
    assert_eq!(arena.rollback(inner).unwrap_err().status(), Status::State);
    assert_eq!(arena.stats().used, 8);
    arena.reset().unwrap();
    assert_eq!(arena.rollback(outer).unwrap_err().status(), Status::State);
    assert_eq!(arena.stats().rollbacks, 3);
}

#[test]
fn a_mark_from_another_arena_is_refused() {
    let mut a = Arena::new(Kind::Scratch, 4096).unwrap();
    let b = Arena::new(Kind::Scratch, 4096).unwrap();
    let foreign = b.mark();
    a.alloc(1u8);
    assert_eq!(a.rollback(foreign).unwrap_err().status(), Status::State);
    assert_eq!(a.stats().used, 1);
}

#[test]
fn a_phase_releases_what_it_allocated_and_keeps_what_came_before() {
    let mut arena = Arena::new(Kind::Scratch, 1 << 20).unwrap();
    let kept = arena.alloc(41u64) as *mut u64;
    let (sum, inner_used) = arena.phase(|p| {
        let tmp = p.alloc_slice_fill_with(10_000, |i| i as u64);
        (tmp.iter().sum::<u64>(), p.stats().used)
    });
    assert_eq!(sum, 49_995_000);
    assert!(inner_used > 80_000);
    assert_eq!(arena.stats().used, 8);
    assert_eq!(unsafe { *kept }, 41);
    assert_eq!(arena.stats().rollbacks, 1);
}

#[test]
fn a_phase_rolls_back_when_its_closure_panics() {
    let mut arena = Arena::new(Kind::Scratch, 1 << 20).unwrap();
    arena.alloc(1u8);
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        arena.phase(|p| {
            p.alloc_slice_copy(&[0u8; 5000]);
            panic!("the phase fails");
        })
    }));
    assert!(result.is_err());
    assert_eq!(arena.stats().used, 1);
    assert_eq!(arena.stats().rollbacks, 1);
}

#[test]
fn a_witness_lane_is_wiped_when_it_is_dropped() {
    // A lane's memory stays mapped in its parent after the lane is gone, so what its drop did
    // to the bytes can be seen.
    let mut parent = Arena::new(Kind::Witness, 1 << 20).unwrap();
    let secret_at;
    {
        let lanes = parent.split(2, 64 << 10).unwrap();
        secret_at = lanes[1].alloc_slice_copy(&[0xc3u8; 10_000]).as_ptr();
        assert!(peek(secret_at, 10_000).iter().all(|&b| b == 0xc3));
    }
    assert!(
        peek(secret_at, 10_000).iter().all(|&b| b == 0),
        "the dropped witness lane left its secret"
    );
    parent.reset().unwrap();
}

#[test]
fn a_scratch_lane_is_not_wiped_when_it_is_dropped() {
    // The counterpart of the test above: without WIPE_ON_DESTROY the bytes stay, so the test
    // above does see the wipe, not some zeroing that happens anyway.
    let mut parent = Arena::new(Kind::Scratch, 1 << 20).unwrap();
    let at;
    {
        let lanes = parent.split(2, 64 << 10).unwrap();
        at = lanes[1].alloc_slice_copy(&[0xc3u8; 10_000]).as_ptr();
    }
    assert!(peek(at, 10_000).iter().all(|&b| b == 0xc3));
    parent.reset().unwrap();
}

/// Runs only as the child of the test below (NALLOC_VERBOSE=1 makes the C library print each
/// arena's statistics when it is destroyed, after its destroy-time wipe).
#[test]
#[ignore = "run by dropping_an_arena_wipes_a_witness_and_only_a_witness"]
fn child_drops_a_witness_and_a_scratch_arena() {
    for (kind, name) in [
        (Kind::Witness, "child-witness"),
        (Kind::Scratch, "child-scratch"),
    ] {
        let arena = ArenaConfig::new(kind, Memory::Host, 1 << 20)
            .name(name)
            .build()
            .unwrap();
        arena.alloc_slice_copy(&[0x99u8; 12_345]);
        drop(arena);
    }
}

#[test]
fn dropping_an_arena_wipes_a_witness_and_only_a_witness() {
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_drops_a_witness_and_a_scratch_arena",
            "--ignored",
            "--test-threads=1",
        ])
        .env("NALLOC_VERBOSE", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the child failed:\n{stderr}");
    // One statistics block per arena, printed after the destroy-time wipe.
    let block = |name: &str| {
        let at = stderr
            .find(&format!("arena '{name}'"))
            .unwrap_or_else(|| panic!("no statistics for {name} in:\n{stderr}"));
        stderr[at..].lines().take(6).collect::<Vec<_>>().join("\n")
    };
    let witness = block("child-witness");
    let scratch = block("child-scratch");
    assert!(witness.contains("wipes 1  wiped 12345 bytes"), "{witness}");
    assert!(scratch.contains("wipes 0  wiped 0 bytes"), "{scratch}");
}

/// The exit-time wipe zeroes an arena while other threads may still read it through references,
/// so the safe API never turns it on: not by a witness arena's defaults (alone or in a context),
/// not through the flag setters. Only the `unsafe` `wipe_at_exit` does.
#[test]
fn the_exit_time_wipe_is_off_unless_asked_for_unsafely() {
    use nalloc::{ContextConfig, Flags};
    let witness = Arena::new(Kind::Witness, 1 << 20).unwrap();
    assert!(!witness.stats().requested.contains(Flags::WIPE_AT_EXIT));
    assert!(witness.stats().requested.contains(Flags::WIPE_ON_DESTROY));
    let ctx = ContextConfig::new(Memory::Host, 1 << 20, 1 << 20, 1 << 20)
        .build()
        .unwrap();
    let arena = ctx.arena(Kind::Witness).unwrap();
    assert!(!arena.stats().requested.contains(Flags::WIPE_AT_EXIT));

    let err = ArenaConfig::new(Kind::Witness, Memory::Host, 1 << 20)
        .enable(Flags::WIPE_AT_EXIT)
        .build()
        .unwrap_err();
    assert_eq!(err.status(), Status::Invalid);
    assert!(err.to_string().contains("wipe_at_exit"));
    let mut in_context = ContextConfig::new(Memory::Host, 1 << 20, 1 << 20, 1 << 20);
    in_context
        .arena_mut(Kind::Witness)
        .enable(Flags::WIPE_AT_EXIT);
    assert_eq!(in_context.build().unwrap_err().status(), Status::Invalid);

    let mut c = ArenaConfig::new(Kind::Witness, Memory::Host, 1 << 20);
    // SAFETY: no thread touches this arena's memory while the process exits (the test drops it).
    let promised = unsafe { c.wipe_at_exit() }.build().unwrap();
    assert!(promised.stats().requested.contains(Flags::WIPE_AT_EXIT));
    // Cleared by the safe setters, the promise goes with the flag.
    c.disable(Flags::WIPE_AT_EXIT).enable(Flags::WIPE_AT_EXIT);
    assert_eq!(c.build().unwrap_err().status(), Status::Invalid);
}
