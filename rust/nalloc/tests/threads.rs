//! Send and Sync: many threads allocating from one arena, arenas moved between threads.
//!
//! Nothing here depends on how the threads are scheduled: whatever the interleaving, every
//! block must be inside the arena, disjoint from every other, and keep what its thread wrote.

use nalloc::{Arena, ArenaConfig, Context, Error, Flags, Kind, Lane, Lanes, Memory, Stats};

fn assert_send_sync<T: Send + Sync>() {}

#[test]
fn the_public_types_are_send_and_sync() {
    assert_send_sync::<Arena>();
    assert_send_sync::<Lane<'static>>();
    assert_send_sync::<Lanes<'static>>();
    assert_send_sync::<Context>();
    assert_send_sync::<ArenaConfig>();
    assert_send_sync::<Error>();
    assert_send_sync::<Stats>();
}

/// `threads` threads each allocate `per_thread` blocks of varying size from `arena`, write a
/// pattern into each, then check every block against every other.
fn hammer(arena: &Arena, threads: usize, per_thread: usize) {
    let blocks: Vec<Vec<(usize, usize)>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                s.spawn(move || {
                    let mut mine = Vec::with_capacity(per_thread);
                    let mut slices = Vec::with_capacity(per_thread);
                    for i in 0..per_thread {
                        let len = 1 + (i * 31 + t * 7) % 300;
                        let block = arena.alloc_slice_fill_with(len, |_| t as u8);
                        mine.push((block.as_ptr() as usize, len));
                        slices.push(block);
                    }
                    // Nobody else wrote into this thread's blocks meanwhile.
                    assert!(slices.iter().all(|b| b.iter().all(|&x| x == t as u8)));
                    mine
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut all: Vec<(usize, usize)> = blocks.into_iter().flatten().collect();
    all.sort();
    for pair in all.windows(2) {
        assert!(pair[0].0 + pair[0].1 <= pair[1].0, "overlap: {:x?}", pair);
    }
    for &(p, len) in &all {
        assert!(arena.contains(p as *const u8) && arena.contains((p + len - 1) as *const u8));
        assert_eq!(p % 64, 0);
    }
    assert_eq!(arena.stats().allocations, threads * per_thread);
}

#[test]
fn four_threads_allocate_from_one_arena_at_once() {
    let mut arena = Arena::new(Kind::Scratch, 16 << 20).unwrap();
    hammer(&arena, 4, 2000);
    arena.reset().unwrap();
    assert_eq!(arena.stats().used, 0);
}

#[test]
fn threads_share_an_arena_with_a_thread_cache() {
    let arena = ArenaConfig::new(Kind::Scratch, Memory::Host, 16 << 20)
        .enable(Flags::THREAD_CACHE | Flags::PREFAULT_AHEAD)
        .build()
        .unwrap();
    assert!(arena.stats().requested.contains(Flags::THREAD_CACHE));
    hammer(&arena, 4, 2000);
}

#[test]
fn threads_running_out_of_room_all_fail_cleanly() {
    let arena = Arena::new(Kind::Scratch, 1 << 16).unwrap();
    let (ok, failed): (usize, usize) = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                s.spawn(|| {
                    let (mut ok, mut failed) = (0, 0);
                    for _ in 0..400 {
                        match arena.try_alloc([0u8; 64]) {
                            Ok(_) => ok += 1,
                            Err(_) => failed += 1,
                        }
                    }
                    (ok, failed)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1))
    });
    assert_eq!(ok, (1 << 16) / 64); // exactly what fits, whoever got it
    assert_eq!(failed, 1600 - ok);
    let s = arena.stats();
    assert_eq!((s.allocations, s.failures, s.used), (ok, failed, 1 << 16));
}

#[test]
fn an_arena_moves_to_another_thread_and_is_dropped_there() {
    let arena = Arena::new(Kind::Witness, 1 << 20).unwrap();
    arena.alloc(42u64);
    let stats = std::thread::spawn(move || {
        let s = arena.stats();
        drop(arena);
        s
    })
    .join()
    .unwrap();
    assert_eq!(stats.allocations, 1);
}

#[test]
fn a_context_is_shared_by_threads_then_reset_by_its_owner() {
    let mut ctx = Context::new(Memory::Host, 8 << 20, 1 << 20, 1 << 20).unwrap();
    std::thread::scope(|s| {
        for t in 0..3u64 {
            let ctx = &ctx;
            s.spawn(move || {
                let v = ctx
                    .poly()
                    .unwrap()
                    .alloc_slice_fill_with(10_000, |i| i as u64 + t);
                assert_eq!(v[9_999], 9_999 + t);
            });
        }
    });
    assert_eq!(ctx.poly().unwrap().stats().allocations, 3);
    ctx.arena_mut(Kind::Poly).unwrap().reset().unwrap();
}
