//! Lanes: per-thread arenas split from one, their layout, their parent while they live.

use nalloc::{sys, Arena, Kind, Status};

#[test]
fn lanes_are_consecutive_disjoint_slices_of_the_parent() {
    let mut parent = Arena::new(Kind::Poly, 16 << 20).unwrap();
    let parent_base = parent.stats().base;
    let lanes = parent.split(4, 1 << 20).unwrap();
    assert_eq!(lanes.len(), 4);
    let mut previous_end = 0;
    for (i, lane) in lanes.iter().enumerate() {
        let s = lane.stats();
        assert_eq!(s.capacity, 1 << 20);
        assert_eq!(s.name, format!("poly.{i}"));
        assert_eq!(s.kind, Kind::Poly);
        assert!(s.base >= parent_base && s.base + s.capacity <= parent_base + (16 << 20));
        assert!(s.base >= previous_end, "lane {i} overlaps the one before");
        assert_eq!(s.base % 4096, 0);
        previous_end = s.base + s.capacity;
        assert!(lanes.parent().contains(s.base as *const u8));
    }
}

#[test]
fn each_thread_fills_its_own_lane_and_the_parent_still_allocates_above() {
    let mut parent = Arena::new(Kind::Scratch, 8 << 20).unwrap();
    let lanes = parent.split(3, 1 << 20).unwrap();
    let above = lanes.parent().alloc(99u64) as *mut u64 as usize;
    let ends: Vec<usize> = std::thread::scope(|s| {
        let handles: Vec<_> = lanes
            .iter()
            .enumerate()
            .map(|(t, lane)| {
                s.spawn(move || {
                    let mut end = 0;
                    // Fill the lane to the last byte.
                    while let Ok(block) =
                        lane.try_alloc_slice_fill_with(1000, |i| (t * 1000 + i) as u32)
                    {
                        assert_eq!(block[999], (t * 1000 + 999) as u32);
                        end = block.as_ptr() as usize + 4000;
                    }
                    end
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (lane, end) in lanes.iter().zip(&ends) {
        let s = lane.stats();
        assert!(*end <= s.base + s.capacity);
        assert_eq!(s.failures, 1); // the request that found the lane full
        assert!(s.used > s.capacity - 4064);
    }
    assert!(
        above >= ends.iter().copied().max().unwrap(),
        "the parent's block is above the lanes"
    );
}

#[test]
fn a_lane_layout_depends_only_on_its_own_requests() {
    let digests = |threads_first: bool| {
        let mut parent = Arena::new(Kind::Scratch, 4 << 20).unwrap();
        let lanes = parent.split(2, 1 << 20).unwrap();
        std::thread::scope(|s| {
            for (t, lane) in lanes.iter().enumerate() {
                s.spawn(move || {
                    for i in 0..200 {
                        lane.alloc_slice_zeroed::<u8>(1 + (i * 37 + t) % 500);
                    }
                });
                if !threads_first {
                    std::thread::yield_now();
                }
            }
        });
        lanes
            .iter()
            .map(|l| l.stats().layout_digest)
            .collect::<Vec<_>>()
    };
    assert_eq!(digests(true), digests(false));
}

#[test]
fn the_parent_refuses_to_release_memory_under_live_lanes() {
    let mut parent = Arena::new(Kind::Scratch, 1 << 20).unwrap();
    let lanes = parent.split(2, 0).unwrap();
    // Safe code cannot even ask (the lanes borrow the parent); through the C handle the library
    // refuses at run time as well.
    let raw = lanes.parent().as_raw();
    assert_eq!(unsafe { sys::nalloc_reset(raw) }, sys::NALLOC_ERR_STATE);
    assert_eq!(unsafe { sys::nalloc_wipe(raw) }, sys::NALLOC_ERR_STATE);
    drop(lanes);
    parent.reset().unwrap();
    parent.wipe().unwrap();
}

#[test]
fn lanes_reset_wipe_and_run_phases_on_their_own() {
    let mut parent = Arena::new(Kind::Witness, 1 << 20).unwrap();
    let mut lanes = parent.split(2, 64 << 10).unwrap();
    lanes[0].alloc_slice_copy(&[1u8; 1000]);
    lanes[1].alloc_slice_copy(&[2u8; 2000]);
    lanes[0].reset().unwrap();
    lanes[1].wipe().unwrap();
    let n = lanes[0].phase(|l| l.alloc_slice_copy(&[3u8; 10]).len());
    assert_eq!(n, 10);
    let (a, b) = (lanes[0].stats(), lanes[1].stats());
    assert_eq!((a.used, a.resets, a.rollbacks), (0, 1, 1));
    assert_eq!((b.used, b.wipes, b.wiped_bytes), (0, 1, 2000));
    let mark = lanes[0].mark();
    lanes[0].alloc(1u64);
    lanes[0].rollback(mark).unwrap();
    assert_eq!(lanes[0].stats().used, 0);
}

#[test]
fn lanes_split_again_and_move_into_threads_one_by_one() {
    let mut parent = Arena::new(Kind::Scratch, 4 << 20).unwrap();
    let mut lanes = parent.split(2, 1 << 20).unwrap().into_vec();
    {
        let sub = lanes[0].split(2, 0).unwrap();
        assert_eq!(sub[1].stats().name, "scratch.0.1");
        sub[1].alloc(1u8);
    }
    // The sub-lanes took all the room lane 0 had (capacity 0: share what is left), and their
    // block stays allocated in lane 0 until it releases it.
    assert!(lanes[0].try_alloc(0u8).is_err());
    lanes[0].reset().unwrap();
    let total: usize = std::thread::scope(|s| {
        let handles: Vec<_> = lanes
            .into_iter()
            .map(|lane| {
                s.spawn(move || lane.alloc_slice_fill_with(100, |i| i).iter().sum::<usize>())
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    assert_eq!(total, 2 * 4950);
}

#[test]
fn a_bad_split_is_refused_and_the_parent_is_as_it_was() {
    let mut parent = Arena::new(Kind::Scratch, 1 << 20).unwrap();
    parent.alloc(1u8);
    let before = parent.stats().used;
    assert_eq!(parent.split(0, 0).unwrap_err().status(), Status::Invalid);
    assert_eq!(
        parent.split(2, 1 << 20).unwrap_err().status(),
        Status::NoMem
    );
    assert_eq!(
        parent.split(usize::MAX, 0).unwrap_err().status(),
        Status::NoMem
    );
    assert_eq!(
        parent.split(1 << 20, 0).unwrap_err().status(),
        Status::NoMem
    );
    assert_eq!(
        parent.split(2, usize::MAX).unwrap_err().status(),
        Status::NoMem
    );
    assert_eq!(parent.stats().used, before);
    let lanes = parent.split(2, 0).unwrap();
    assert!(lanes[0].capacity() >= 4096);
}

#[test]
fn lanes_free_the_parent_when_dropped() {
    let mut parent = Arena::new(Kind::Scratch, 1 << 20).unwrap();
    for _ in 0..100 {
        let lanes = parent.split(4, 0).unwrap();
        lanes[3].alloc(1u32);
        drop(lanes);
        parent.reset().unwrap();
    }
    assert_eq!(parent.stats().used, 0);
}
