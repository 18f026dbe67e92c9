//! `nalloc::Global` as this test binary's global allocator, and `nalloc::route`.
//!
//! The whole binary runs on `Global` (the test harness included), with a fallback that counts,
//! per thread, what reaches it: so a test can tell that nothing it made inside a route went to
//! the fallback, and that everything that did went back to it. Nothing here depends on how
//! threads are scheduled: every check holds for any interleaving.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap, HashSet, LinkedList, VecDeque};
use std::panic::AssertUnwindSafe;
use std::process::Command;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use nalloc::{route, sys, try_route, unrouted, Arena, ArenaConfig, Global, Kind, Memory, Status};

// ---- The allocator under test ------------------------------------------------------------------

thread_local! {
    static FALLBACK_ALLOCS: Cell<usize> = const { Cell::new(0) };
    static FALLBACK_FREES: Cell<usize> = const { Cell::new(0) };
}

/// `System`, counting the calls that reach it on each thread.
struct Counting;

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        FALLBACK_ALLOCS.with(|c| c.set(c.get() + 1));
        System.alloc(layout)
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        FALLBACK_ALLOCS.with(|c| c.set(c.get() + 1));
        System.alloc_zeroed(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        FALLBACK_FREES.with(|c| c.set(c.get() + 1));
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static ALLOC: Global<Counting> = Global::with_fallback(Counting);

/// Allocations that reached the fallback on this thread so far.
fn fallback_allocs() -> usize {
    FALLBACK_ALLOCS.with(Cell::get)
}

fn fallback_frees() -> usize {
    FALLBACK_FREES.with(Cell::get)
}

fn arena(kind: Kind, capacity: usize) -> Arena {
    Arena::new(kind, capacity).unwrap()
}

/// Whether the kernel has what a deferred destroy needs (membarrier): without it a dropped
/// arena with routed blocks alive is kept until the process ends instead.
fn deferred_destroy_works() -> bool {
    let probe = arena(Kind::Scratch, 4096);
    let raw = probe.as_raw();
    // SAFETY: the arena is live and has no routed block; on success it is destroyed here, and
    // `probe` is forgotten so that its drop does not destroy it again.
    let status = unsafe { sys::nalloc_arena_destroy_deferred(raw) };
    if status == sys::NALLOC_OK {
        std::mem::forget(probe);
    }
    status == sys::NALLOC_OK
}

fn owned_by_an_arena(p: *const u8) -> bool {
    // SAFETY: nalloc_owner only looks the address up.
    !unsafe { sys::nalloc_owner(p.cast()) }.is_null()
}

// ---- Collections, threads ------------------------------------------------------------------------

/// Build one of every kind of std collection inside a route to `arena`, check that the blocks
/// we can see lie in it and that nothing reached the fallback, and return them (so they outlive
/// the route) with a checksum of their contents.
fn collections_in(arena: &Arena, t: u64) -> (Box<dyn Send>, u64) {
    struct Built {
        v: Vec<u64>,
        b: Box<[u64; 32]>,
        s: String,
        hm: HashMap<u64, String>,
        hs: HashSet<u64>,
        bt: BTreeMap<u64, Vec<u8>>,
        bs: BTreeSet<String>,
        dq: VecDeque<u64>,
        ll: LinkedList<u64>,
        bh: BinaryHeap<u64>,
        arc: Arc<Mutex<Vec<u64>>>,
        f: Box<dyn Fn(u64) -> u64 + Send>,
    }
    let before = fallback_allocs();
    let built = route(arena, || {
        let mut s = String::new();
        for i in 0..200 {
            s.push_str(&format!("{t}:{i};"));
        }
        let rc = Rc::new(vec![t; 10]); // Rc is not Send: made and dropped inside
        assert!(arena.contains(Rc::as_ptr(&rc).cast()));
        Built {
            v: (0..10_000).map(|i| i * t).collect(),
            b: Box::new([t; 32]),
            s,
            hm: (0..1000).map(|i| (i, i.to_string())).collect(),
            hs: (0..1000).collect(),
            bt: (0..500)
                .map(|i| (i, vec![t as u8; (i % 50) as usize]))
                .collect(),
            bs: (0..300).map(|i| format!("key {i}")).collect(),
            dq: (0..5000).collect(),
            ll: (0..100).collect(),
            bh: (0..2000).collect(),
            arc: Arc::new(Mutex::new(vec![t; 64])),
            f: Box::new(move |x| x + t),
        }
    });
    assert_eq!(
        fallback_allocs(),
        before,
        "an allocation inside the route reached the fallback"
    );
    let inside = |p: *const u8| assert!(arena.contains(p), "{p:?} is not in the arena");
    inside(built.v.as_ptr().cast());
    inside((&*built.b as *const [u64; 32]).cast());
    inside(built.s.as_ptr());
    inside(built.hm[&7].as_ptr());
    inside(built.bt[&49].as_ptr());
    inside(built.bs.first().unwrap().as_ptr());
    inside(Arc::as_ptr(&built.arc).cast());
    inside(built.arc.lock().unwrap().as_ptr().cast());
    let sum = built.v.iter().sum::<u64>()
        + built.b.iter().sum::<u64>()
        + built.s.len() as u64
        + built.hm.values().map(|v| v.len() as u64).sum::<u64>()
        + built.hs.iter().sum::<u64>()
        + built.bt.values().map(|v| v.len() as u64).sum::<u64>()
        + built.bs.len() as u64
        + built.dq.iter().sum::<u64>()
        + built.ll.iter().sum::<u64>()
        + built.bh.peek().copied().unwrap()
        + built.arc.lock().unwrap().iter().sum::<u64>()
        + (built.f)(1);
    (Box::new(built), sum)
}

/// What `collections_in` computes, without allocating anything in an arena.
fn expected_sum(t: u64) -> u64 {
    let s: String = (0..200).map(|i| format!("{t}:{i};")).collect();
    (0..10_000u64).map(|i| i * t).sum::<u64>()
        + 32 * t
        + s.len() as u64
        + (0..1000u64)
            .map(|i| i.to_string().len() as u64)
            .sum::<u64>()
        + (0..1000u64).sum::<u64>()
        + (0..500u64).map(|i| i % 50).sum::<u64>()
        + 300
        + (0..5000u64).sum::<u64>()
        + (0..100u64).sum::<u64>()
        + 1999
        + 64 * t
        + 1
        + t
}

#[test]
fn std_collections_on_eight_threads_each_with_its_own_arena() {
    std::thread::scope(|s| {
        for t in 0..8u64 {
            s.spawn(move || {
                let mut a = arena(Kind::Scratch, 64 << 20);
                let (built, sum) = collections_in(&a, t);
                assert_eq!(sum, expected_sum(t));
                assert!(a.stats().live_blocks > 1000);
                assert_eq!(a.reset().unwrap_err().status(), Status::State);
                drop(built);
                assert_eq!(a.stats().live_blocks, 0);
                a.reset().unwrap();
            });
        }
    });
}

#[test]
fn eight_threads_route_into_one_arena_and_free_each_others_blocks() {
    let mut shared = arena(Kind::Scratch, 256 << 20);
    let built: Vec<(Box<dyn Send>, u64)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8u64)
            .map(|t| {
                let shared = &shared;
                s.spawn(move || collections_in(shared, t))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (t, (_, sum)) in built.iter().enumerate() {
        assert_eq!(*sum, expected_sum(t as u64));
    }
    assert!(shared.stats().live_blocks > 8 * 1000);
    // Every thread's blocks are freed by another thread than the one that made them, in an
    // order unrelated to how they were allocated.
    let mut built = built;
    std::thread::scope(|s| {
        for _ in 0..4 {
            let mine: Vec<_> = built.drain(..2).collect();
            s.spawn(move || drop(mine));
        }
    });
    let stats = shared.stats();
    assert_eq!(stats.live_blocks, 0);
    shared.reset().unwrap();
}

#[test]
fn routed_blocks_have_the_alignment_their_layout_asks_for_and_lie_in_the_arena() {
    let a = arena(Kind::Scratch, 64 << 20);
    let sizes = [
        1usize,
        2,
        3,
        7,
        8,
        15,
        16,
        17,
        31,
        32,
        33,
        63,
        64,
        65,
        100,
        255,
        1000,
        4095,
        4096,
        4097,
        10_000,
        65_535,
        65_536,
        200_000,
        1 << 20,
        (1 << 20) + 1,
        3 << 20,
    ];
    let before = fallback_allocs();
    route(&a, || {
        for shift in 0..=12 {
            let align = 1usize << shift;
            for &size in &sizes {
                let layout = Layout::from_size_align(size, align).unwrap();
                let zeroed = size % 2 == 0;
                // SAFETY: a non-zero size; the block is written within its size and freed once.
                unsafe {
                    let p = if zeroed {
                        ALLOC.alloc_zeroed(layout)
                    } else {
                        ALLOC.alloc(layout)
                    };
                    assert!(!p.is_null());
                    assert_eq!(p as usize % align, 0, "size {size} align {align}");
                    assert!(a.contains(p), "size {size} align {align}: not in the arena");
                    assert!(a.contains(p.add(size - 1)));
                    if zeroed {
                        assert!((0..size).all(|i| *p.add(i) == 0));
                    }
                    p.write_bytes(0xa5, size);
                    ALLOC.dealloc(p, layout);
                }
            }
        }
    });
    assert_eq!(fallback_allocs(), before);
    assert_eq!(a.stats().live_blocks, 0);
    assert_eq!(a.stats().fallbacks, 0);
}

#[test]
fn sizes_up_to_the_whole_capacity_come_from_the_arena_or_from_the_fallback_never_null() {
    let capacity = 8 << 20;
    // The largest block a fresh arena can hold: 4 KiB aligned (the policy for blocks of 1 MiB
    // and more), so its 32-byte header takes a page in front of it.
    let largest = capacity - 4096;
    for size in [
        capacity / 2,
        largest - 1,
        largest,
        largest + 1,
        capacity - 1,
        capacity,
    ] {
        for align in [1usize, 64, 4096] {
            let a = arena(Kind::Poly, capacity);
            let layout = Layout::from_size_align(size, align).unwrap();
            let before = fallback_allocs();
            // SAFETY: as above.
            let p = route(&a, || unsafe { ALLOC.alloc(layout) });
            let reached_fallback = fallback_allocs() - before;
            assert!(!p.is_null());
            assert_eq!(p as usize % align, 0);
            let served_by_arena = a.contains(p);
            assert_eq!(
                served_by_arena,
                size <= largest,
                "size {size} align {align}"
            );
            let s = a.stats();
            assert_eq!(s.fallbacks, usize::from(!served_by_arena));
            assert_eq!(reached_fallback, usize::from(!served_by_arena));
            assert_eq!(s.live_blocks, usize::from(served_by_arena));
            let frees = fallback_frees();
            // SAFETY: writing within the block, then freeing it once.
            unsafe {
                p.write_bytes(1, size);
                ALLOC.dealloc(p, layout);
            }
            assert_eq!(fallback_frees() - frees, usize::from(!served_by_arena));
            assert_eq!(a.stats().live_blocks, 0);
        }
    }
}

#[test]
fn a_full_arena_falls_back_and_counts_it() {
    let mut a = arena(Kind::Scratch, 64 << 10);
    let (small, big) = route(&a, || (vec![1u8; 100], vec![2u8; 1 << 20]));
    assert!(a.contains(small.as_ptr()));
    assert!(!a.contains(big.as_ptr()));
    assert_eq!(a.stats().fallbacks, 1);
    assert_eq!(big.iter().map(|&b| b as usize).sum::<usize>(), 2 << 20);
    drop((small, big));
    a.reset().unwrap();
}

// ---- realloc, zeroing ----------------------------------------------------------------------------

#[test]
fn realloc_grows_the_newest_block_in_place_and_moves_an_older_one() {
    let a = arena(Kind::Scratch, 16 << 20);
    route(&a, || {
        // SAFETY: layouts with non-zero sizes; every block is written within its size and freed
        // once, with the layout of its latest size.
        unsafe {
            let l100 = Layout::from_size_align(100, 8).unwrap();
            let p = ALLOC.alloc(l100);
            for i in 0..100 {
                *p.add(i) = i as u8;
            }
            let q = ALLOC.realloc(p, l100, 1000);
            assert_eq!(q, p, "the newest block grows where it is");
            let other = ALLOC.alloc(l100);
            let r = ALLOC.realloc(q, Layout::from_size_align(1000, 8).unwrap(), 5000);
            assert_ne!(r, q, "a block with another after it moves");
            assert!(a.contains(r));
            assert!((0..100).all(|i| *r.add(i) == i as u8));
            let s = ALLOC.realloc(r, Layout::from_size_align(5000, 8).unwrap(), 10);
            assert!((0..10).all(|i| *s.add(i) == i as u8));
            ALLOC.dealloc(s, Layout::from_size_align(10, 8).unwrap());
            ALLOC.dealloc(other, l100);
        }
    });
    assert_eq!(a.stats().live_blocks, 0);
}

#[test]
fn a_growing_vec_keeps_its_contents_and_stays_in_the_arena() {
    let a = arena(Kind::Poly, 256 << 20);
    let v = route(&a, || {
        let mut v = Vec::new();
        let mut moves = 0;
        for i in 0..2_000_000u64 {
            let before = v.as_ptr();
            v.push(i * 3);
            moves += usize::from(v.as_ptr() != before);
        }
        // 20 allocations: the first (4 elements) and 19 doublings. Without growth in place each
        // would move the vector. In place, it moves only when it outgrows its thread's chunk
        // (64 KiB at first, doubling) and when it becomes too big for a chunk (1 MiB) and
        // takes the arena's offset, where it then grows in place for good.
        assert!(moves <= 8, "{moves} of 20 allocations moved the vector");
        v
    });
    assert!(a.contains(v.as_ptr().cast()));
    assert!(v.iter().enumerate().all(|(i, &x)| x == i as u64 * 3));
    // Grown after the route ended: in place, or moved to the fallback, contents intact.
    let mut v = v;
    v.reserve_exact(v.capacity() * 2);
    assert!(v.iter().enumerate().all(|(i, &x)| x == i as u64 * 3));
    drop(v);
    assert_eq!(a.stats().live_blocks, 0);
}

#[test]
fn a_fallback_block_grown_inside_a_route_stays_with_the_fallback() {
    let a = arena(Kind::Scratch, 16 << 20);
    let mut v: Vec<u32> = (0..100).collect();
    route(&a, || v.extend(100..100_000));
    assert!(!a.contains(v.as_ptr().cast()));
    assert!(v.iter().enumerate().all(|(i, &x)| x == i as u32));
    assert_eq!(a.stats().live_blocks, 0);
}

#[test]
fn alloc_zeroed_reads_zero_after_a_reset_that_left_dirty_memory() {
    let mut a = arena(Kind::Scratch, 64 << 20);
    for len in [100usize, 50_000, 3 << 20] {
        let (at, end) = route(&a, || {
            let dirty = vec![0xffu8; len];
            let dirty64 = vec![u64::MAX; len / 8];
            let range = (dirty.as_ptr() as usize, dirty64.as_ptr() as usize + len);
            (
                range.0.min(dirty64.as_ptr() as usize),
                range.1.max(range.0 + len),
            )
        });
        a.reset().unwrap(); // the bytes stay 0xff: a reset does not zero
        let (z, z64) = route(&a, || (vec![0u8; len], vec![0u64; len / 8]));
        let overlaps = |p: usize, n: usize| p < end && p + n > at;
        assert!(
            overlaps(z.as_ptr() as usize, len) || overlaps(z64.as_ptr() as usize, len),
            "len {len}: the zeroed blocks are not where the dirty ones were"
        );
        assert!(a.contains(z.as_ptr()) && a.contains(z64.as_ptr().cast()));
        assert!(z.iter().all(|&b| b == 0), "len {len}");
        assert!(z64.iter().all(|&b| b == 0), "len {len}");
        drop((z, z64));
        a.reset().unwrap();
    }
}

// ---- What live blocks protect ------------------------------------------------------------------

#[test]
fn an_escaped_vec_blocks_reset_and_wipe_until_it_is_dropped() {
    let mut a = arena(Kind::Scratch, 1 << 20);
    let escaped = route(&a, || vec![7u32; 1000]);
    let err = a.reset().unwrap_err();
    assert_eq!(err.status(), Status::State);
    assert!(err.to_string().contains("1 routed block"), "{err}");
    assert_eq!(a.wipe().unwrap_err().status(), Status::State);
    let mark = a.mark();
    a.alloc(1u64);
    assert_eq!(a.rollback(mark).unwrap_err().status(), Status::State);
    assert!(
        escaped.iter().all(|&x| x == 7),
        "the refusals left it alone"
    );
    drop(escaped);
    a.rollback(mark).unwrap();
    a.reset().unwrap();
    a.wipe().unwrap();
}

#[test]
fn an_escaped_vec_dropped_on_another_thread_releases_the_arena() {
    let mut a = arena(Kind::Scratch, 1 << 20);
    let escaped = route(&a, || (0..10_000u64).collect::<Vec<_>>());
    assert_eq!(a.stats().live_blocks, 1);
    let sum = std::thread::spawn(move || {
        let sum = escaped.iter().sum::<u64>();
        drop(escaped);
        sum
    })
    .join()
    .unwrap();
    assert_eq!(sum, 49_995_000);
    assert_eq!(a.stats().live_blocks, 0);
    a.reset().unwrap();
}

#[test]
fn dropping_an_arena_never_invalidates_its_routed_blocks() {
    let deferred = deferred_destroy_works();
    let a = arena(Kind::Scratch, 4 << 20);
    let (escaped, mut grown) = route(&a, || (vec![0x3cu8; 100_000], vec![0x3du8; 1000]));
    let at = escaped.as_ptr();
    drop(a);
    // The memory is still the vectors': readable, writable, growable, and still an arena's.
    assert!(owned_by_an_arena(at) && owned_by_an_arena(grown.as_ptr()));
    assert!(escaped.iter().all(|&b| b == 0x3c));
    grown.iter_mut().for_each(|b| *b = 0x3e);
    grown.extend(std::iter::repeat(0x3e).take(100_000)); // in place, or moved to the fallback
    assert!(grown.iter().all(|&b| b == 0x3e));
    drop(grown);
    assert!(
        owned_by_an_arena(at),
        "the arena went while a routed block was alive"
    );
    // Dropped on another thread: the last routed block's free destroys the arena.
    std::thread::spawn(move || drop(escaped)).join().unwrap();
    assert_eq!(
        owned_by_an_arena(at),
        !deferred,
        "the arena outlived its last routed block"
    );
    // Unrouted allocation is unaffected.
    let v: Vec<u64> = (0..1000).collect();
    assert_eq!(v.iter().sum::<u64>(), 499_500);
}

#[test]
fn a_context_dropped_under_a_routed_block_keeps_it_valid_and_goes_with_it() {
    let ctx = nalloc::Context::new(Memory::Host, 1 << 20, 1 << 20, 1 << 20).unwrap();
    let v = route(ctx.witness().unwrap(), || vec![0x42u8; 10_000]);
    let at = v.as_ptr();
    drop(ctx); // the context goes now, its witness arena with the last routed block
    assert!(owned_by_an_arena(at));
    assert!(v.iter().all(|&b| b == 0x42));
    drop(v);
    if deferred_destroy_works() {
        assert!(!owned_by_an_arena(at)); // destroyed (and wiped) by that free
    }
}

#[test]
fn a_wiped_witness_arena_reads_zero_where_a_dropped_secret_was() {
    let mut w = arena(Kind::Witness, 1 << 20);
    let secret = route(&w, || {
        let mut s = Vec::with_capacity(4096);
        s.extend((0..4096).map(|i| (i % 251) as u8 | 1));
        s
    });
    let (at, len) = (secret.as_ptr(), secret.len());
    assert!(w.contains(at));
    drop(secret);
    // A free touches only the block's header: the secret is still there...
    // SAFETY: `at..at + len` is arena memory, mapped while `w` lives; nothing refers to it.
    let peek = |at: *const u8| (0..len).map(move |i| unsafe { at.add(i).read_volatile() });
    assert!(peek(at).any(|b| b != 0));
    w.wipe().unwrap();
    // ...until the wipe.
    assert!(peek(at).all(|b| b == 0));
    assert_eq!(w.stats().wipes, 1);
}

/// Runs only as the child of the test below (NALLOC_VERBOSE=1 makes the C library print each
/// arena's statistics when it destroys it, after its destroy-time wipe).
#[test]
#[ignore = "run by a_witness_arena_dropped_under_a_routed_block_is_wiped_when_the_block_goes"]
fn child_drops_a_witness_arena_before_its_routed_block() {
    let w = ArenaConfig::new(Kind::Witness, Memory::Host, 1 << 20)
        .name("rs-routed-witness")
        .build()
        .unwrap();
    let secret = route(&w, || vec![0x99u8; 12_345]);
    drop(w);
    eprintln!("child: arena dropped, block alive");
    drop(secret);
    eprintln!("child: block dropped");
}

#[test]
fn a_witness_arena_dropped_under_a_routed_block_is_destroyed_when_the_block_goes() {
    let deferred = deferred_destroy_works();
    let w = arena(Kind::Witness, 1 << 20);
    assert!(w.stats().wipe_on_destroy);
    let secret = route(&w, || vec![0x99u8; 12_345]);
    let at = secret.as_ptr();
    drop(w);
    assert!(owned_by_an_arena(at));
    assert!(secret.iter().all(|&b| b == 0x99));
    drop(secret);
    // The destroy (C's nalloc_arena_destroy, which wipes a witness arena first) ran in the free.
    assert_eq!(owned_by_an_arena(at), !deferred);
}

/// The destroy-time wipe of a witness arena dropped under a routed block, seen from outside: the
/// statistics NALLOC_VERBOSE=1 makes the C library print when it destroys the arena, in the free
/// of the block.
#[test]
fn a_witness_arena_dropped_under_a_routed_block_is_wiped_when_the_block_goes() {
    if !deferred_destroy_works() {
        eprintln!("no membarrier(2): a dropped arena with live blocks is kept, not destroyed");
        return;
    }
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_drops_a_witness_arena_before_its_routed_block",
            "--ignored",
            "--test-threads=1",
            "--nocapture",
        ])
        .env("NALLOC_VERBOSE", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the child failed:\n{stderr}");
    let alive = stderr.find("block alive").expect("the child's first line");
    let stats = stderr
        .find("arena 'rs-routed-witness'")
        .unwrap_or_else(|| panic!("no statistics in:\n{stderr}"));
    let gone = stderr
        .find("block dropped")
        .expect("the child's second line");
    assert!(
        alive < stats && stats < gone,
        "destroyed when the block went:\n{stderr}"
    );
    let block: String = stderr[stats..]
        .lines()
        .take(6)
        .collect::<Vec<_>>()
        .join("\n");
    assert!(block.contains("wipes 1  wiped"), "{block}");
    assert!(!block.contains("wiped 0 bytes"), "{block}");
}

#[test]
fn reset_unchecked_forgets_leaked_routed_blocks() {
    let mut a = arena(Kind::Scratch, 1 << 20);
    std::mem::forget(route(&a, || vec![1u8; 1000]));
    assert_eq!(a.stats().live_blocks, 1);
    assert!(a.reset().is_err());
    // SAFETY: the only routed block was leaked and is never touched again.
    unsafe { a.reset_unchecked().unwrap() };
    assert_eq!(a.stats().live_blocks, 0);
    std::mem::forget(route(&a, || vec![1u8; 1000]));
    // SAFETY: as above.
    unsafe { a.wipe_unchecked().unwrap() };
    a.reset().unwrap();
}

// ---- Routes: nesting, panics, failures --------------------------------------------------------

#[test]
fn routes_nest_and_the_innermost_wins() {
    let (outer, inner) = (arena(Kind::Poly, 1 << 20), arena(Kind::Scratch, 1 << 20));
    route(&outer, || {
        let a = Box::new(1u64);
        let (b, c) = route(&inner, || {
            let b = Box::new(2u64);
            let c = unrouted(|| Box::new(3u64));
            (b, c)
        });
        let d = Box::new(4u64);
        assert!(outer.contains((&*a as *const u64).cast()));
        assert!(inner.contains((&*b as *const u64).cast()));
        assert!(!outer.contains((&*c as *const u64).cast()));
        assert!(!inner.contains((&*c as *const u64).cast()));
        assert!(outer.contains((&*d as *const u64).cast()));
        assert!(nalloc::is_routed());
    });
    assert!(!nalloc::is_routed());
    // SAFETY: always safe.
    assert_eq!(unsafe { sys::nalloc_route_depth() }, 0);
}

#[test]
fn a_route_ends_whatever_c_code_inside_it_left_pushed() {
    let (a, b) = (arena(Kind::Scratch, 1 << 20), arena(Kind::Scratch, 1 << 20));
    route(&a, || {
        // SAFETY: `b` outlives the route it is pushed in; the route's end pops it.
        assert_eq!(
            unsafe { sys::nalloc_route_push(b.as_raw()) },
            sys::NALLOC_OK
        );
        // SAFETY: always safe.
        assert_eq!(unsafe { sys::nalloc_route_depth() }, 2);
    });
    // SAFETY: always safe.
    assert_eq!(unsafe { sys::nalloc_route_depth() }, 0);
    assert!(unsafe { sys::nalloc_route_current() }.is_null());
}

#[test]
fn a_seventeenth_route_is_refused_and_routes_nothing() {
    let a = arena(Kind::Scratch, 1 << 20);
    fn nest(a: &Arena, depth: usize) -> Status {
        if depth == 16 {
            let err = try_route(a, || ()).unwrap_err();
            // SAFETY: always safe.
            assert_eq!(unsafe { sys::nalloc_route_depth() }, 16);
            // C's message, naming the call that refused.
            let message = err.message().unwrap_or_default();
            assert!(message.starts_with("nalloc_route_push: 16 routes"), "{err}");
            return err.status();
        }
        route(a, || nest(a, depth + 1))
    }
    assert_eq!(nest(&a, 0), Status::NoMem);
    // SAFETY: always safe.
    assert_eq!(unsafe { sys::nalloc_route_depth() }, 0);
}

#[test]
fn lanes_are_not_routed_into() {
    let mut parent = arena(Kind::Scratch, 1 << 20);
    let lanes = parent.split(2, 64 << 10).unwrap();
    assert_eq!(
        try_route(&lanes[0], || ()).unwrap_err().status(),
        Status::Invalid
    );
    let r = std::panic::catch_unwind(AssertUnwindSafe(|| route(&lanes[1], || ())));
    assert!(r.is_err());
    // The parent can be routed into while its lanes live.
    let v = route(lanes.parent(), || vec![1u8; 10]);
    assert!(lanes.parent().contains(v.as_ptr()));
}

#[test]
fn a_panic_inside_a_route_ends_the_route_and_leaks_nothing() {
    let mut a = arena(Kind::Scratch, 1 << 20);
    let result = std::panic::catch_unwind(AssertUnwindSafe(|| {
        route(&a, || {
            let v = vec![1u8; 1000];
            assert!(a.contains(v.as_ptr()));
            // A routed payload escapes the route. (Without the panic hook: the default one
            // prints, and with RUST_BACKTRACE it fills std's symbol cache, which lives for the
            // rest of the process: in the arena, when the panic is inside a route. The test
            // below has the hook.)
            std::panic::resume_unwind(Box::new(42u32));
        })
    }));
    assert!(!nalloc::is_routed());
    // SAFETY: always safe.
    assert_eq!(unsafe { sys::nalloc_route_depth() }, 0);
    let next = Box::new(5u64);
    assert!(
        !a.contains((&*next as *const u64).cast()),
        "the route outlived the panic"
    );
    let payload = result.unwrap_err();
    assert_eq!(payload.downcast_ref::<u32>(), Some(&42));
    drop(payload);
    assert_eq!(a.stats().live_blocks, 0, "the panic leaked a block");
    a.reset().unwrap();
}

#[test]
fn a_panic_with_the_panic_hook_inside_a_route_ends_the_route_too() {
    let a = arena(Kind::Scratch, 16 << 20);
    let result = std::panic::catch_unwind(AssertUnwindSafe(|| {
        route(&a, || panic!("inside a route"));
    }));
    assert!(result.is_err());
    assert!(!nalloc::is_routed());
    let next = vec![5u64; 100];
    assert!(
        !a.contains(next.as_ptr().cast()),
        "the route outlived the panic"
    );
}

// ---- Thread-local destructors, exit --------------------------------------------------------------

struct RoutesWhenDropped {
    arena: Arc<Arena>,
    inside: Arc<AtomicBool>,
    sum: Arc<AtomicUsize>,
}

impl Drop for RoutesWhenDropped {
    fn drop(&mut self) {
        let v: Vec<usize> = route(&self.arena, || (0..1000).collect());
        let b = route(&self.arena, || Box::new(7usize));
        self.inside.store(
            self.arena.contains(v.as_ptr().cast())
                && self.arena.contains((&*b as *const usize).cast()),
            Ordering::SeqCst,
        );
        self.sum
            .store(v.iter().sum::<usize>() + *b, Ordering::SeqCst);
    }
}

thread_local! {
    static ROUTES_AT_THREAD_EXIT: std::cell::RefCell<Option<RoutesWhenDropped>> =
        const { std::cell::RefCell::new(None) };
}

#[test]
fn a_route_inside_a_thread_local_destructor_works() {
    let a = Arc::new(arena(Kind::Scratch, 1 << 20));
    let inside = Arc::new(AtomicBool::new(false));
    let sum = Arc::new(AtomicUsize::new(0));
    let d = RoutesWhenDropped {
        arena: Arc::clone(&a),
        inside: Arc::clone(&inside),
        sum: Arc::clone(&sum),
    };
    std::thread::spawn(move || {
        // The thread routes first, so the C library's own per-thread state exists when the
        // destructor runs.
        let warm = route(&d.arena, || vec![1u8; 10]);
        drop(warm);
        ROUTES_AT_THREAD_EXIT.with(|t| *t.borrow_mut() = Some(d));
    })
    .join()
    .unwrap();
    assert!(inside.load(Ordering::SeqCst));
    assert_eq!(sum.load(Ordering::SeqCst), 499_500 + 7);
    let mut a = Arc::try_unwrap(a).unwrap();
    assert_eq!(a.stats().live_blocks, 0);
    a.reset().unwrap();
}

/// A static arena the exit handlers route into (never dropped).
static EXIT_ARENA: std::sync::OnceLock<Arena> = std::sync::OnceLock::new();

extern "C" fn route_at_exit() {
    let a = EXIT_ARENA.get().expect("set before exit");
    let live = a.stats().live_blocks; // one, leaked before exit
    let v: Vec<u64> = route(a, || (0..1000).collect());
    let ok = a.contains(v.as_ptr().cast()) && v.iter().sum::<u64>() == 499_500;
    let ok = ok && a.stats().live_blocks == live + 1;
    drop(v);
    let ok = ok && a.stats().live_blocks == live;
    // An arena made, routed into and dropped during exit.
    let fresh = Arena::new(Kind::Witness, 1 << 20).unwrap();
    let s = route(&fresh, || String::from("at exit"));
    let ok = ok && fresh.contains(s.as_ptr());
    drop(s);
    drop(fresh);
    println!(
        "{}",
        if ok {
            "exit route ok"
        } else {
            "exit route FAILED"
        }
    );
}

extern "C" {
    fn atexit(f: extern "C" fn()) -> i32;
}

#[test]
#[ignore = "run by routes_work_in_exit_handlers"]
fn child_routes_at_exit() {
    // SAFETY: registering a plain function.
    assert_eq!(unsafe { atexit(route_at_exit) }, 0); // runs after the C library's exit wipe
    let a = EXIT_ARENA.get_or_init(|| arena(Kind::Witness, 1 << 20));
    // SAFETY: as above.
    assert_eq!(unsafe { atexit(route_at_exit) }, 0); // runs before it
                                                     // A routed block alive at exit, in an arena that was dropped, and one in the static arena.
    let dropped = arena(Kind::Scratch, 1 << 20);
    let kept = route(&dropped, || vec![1u8; 100]);
    drop(dropped);
    std::mem::forget(kept);
    std::mem::forget(route(a, || vec![2u8; 100]));
}

#[test]
fn routes_work_in_exit_handlers() {
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_routes_at_exit",
            "--ignored",
            "--test-threads=1",
            "--nocapture",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the child failed:\n{stdout}\n{stderr}"
    );
    assert_eq!(
        stdout.matches("exit route ok").count(),
        2,
        "both exit handlers must route:\n{stdout}"
    );
    assert!(!stdout.contains("FAILED"), "{stdout}");
}

// ---- After every arena is gone -----------------------------------------------------------------

#[test]
fn unrouted_allocation_works_after_every_arena_is_gone() {
    let kept = {
        let arenas: Vec<Arena> = (0..4).map(|_| arena(Kind::Scratch, 1 << 20)).collect();
        let mut kept = Vec::new();
        for a in &arenas {
            kept.push(route(a, || vec![9u8; 1000]));
        }
        kept
    };
    // The arenas are dropped; their blocks live on.
    assert!(kept.iter().all(|v| v.iter().all(|&b| b == 9)));
    drop(kept);
    let frees = fallback_frees();
    let mut m: HashMap<u32, String> = HashMap::new();
    for i in 0..10_000 {
        m.insert(i, format!("{i}"));
    }
    assert_eq!(m[&9999], "9999");
    drop(m);
    assert!(fallback_frees() - frees > 10_000);
}

// ---- The C library's side ----------------------------------------------------------------------

/// `nalloc_arena_destroy` of a parent refuses while a lane has live malloc-family blocks, rather
/// than unmapping them. `route` refuses lanes, so safe Rust cannot get there; C callers (and
/// `as_raw`) can.
#[test]
fn c_a_parent_is_not_destroyed_while_a_lane_has_live_blocks() {
    use std::mem::MaybeUninit;
    // SAFETY: the C API used as documented; the block is freed only if the parent's destroy was
    // refused (otherwise the test fails first and the block is never touched).
    unsafe {
        let mut config = MaybeUninit::<sys::nalloc_arena_config>::uninit();
        sys::nalloc_arena_config_init(
            config.as_mut_ptr(),
            sys::NALLOC_KIND_SCRATCH,
            sys::NALLOC_MEMORY_HOST,
            1 << 20,
        );
        let mut parent = std::ptr::null_mut();
        assert_eq!(
            sys::nalloc_arena_create(config.as_ptr(), &mut parent),
            sys::NALLOC_OK
        );
        let mut lanes = [std::ptr::null_mut(); 2];
        assert_eq!(
            sys::nalloc_arena_split(parent, 2, 64 << 10, lanes.as_mut_ptr()),
            sys::NALLOC_OK
        );
        let block = sys::nalloc_arena_malloc(lanes[0], 100, 0);
        assert!(!block.is_null());
        assert_eq!(sys::nalloc_arena_destroy(lanes[0]), sys::NALLOC_ERR_STATE);
        assert_eq!(
            sys::nalloc_arena_destroy(parent),
            sys::NALLOC_ERR_STATE,
            "the parent's destroy unmapped a lane's live block"
        );
        sys::nalloc_free(block);
        assert_eq!(sys::nalloc_arena_destroy(parent), sys::NALLOC_OK);
    }
}
