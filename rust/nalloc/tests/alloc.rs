//! Allocation: every alignment from 1 to 4096, sizes from one byte to the whole capacity,
//! blocks inside the arena and disjoint, failures that consume nothing, typed helpers.

use std::alloc::Layout;

use nalloc::{Arena, ArenaConfig, Flags, Kind, Memory, Status};

/// An arena that adds no alignment of its own: every block is aligned exactly as asked.
fn unpadded(capacity: usize) -> Arena {
    ArenaConfig::new(Kind::Scratch, Memory::Host, capacity)
        .default_align(1)
        .large_align(1)
        .disable(Flags::HUGEPAGES)
        .build()
        .expect("a small host arena")
}

/// Record [start, end) of every block, then check none overlaps another or leaves the arena.
fn assert_disjoint_inside(arena: &Arena, mut blocks: Vec<(usize, usize)>) {
    let base = arena.stats().base;
    blocks.sort();
    for pair in blocks.windows(2) {
        assert!(
            pair[0].1 <= pair[1].0,
            "blocks {:x?} and {:x?} overlap",
            pair[0],
            pair[1]
        );
    }
    for &(start, end) in &blocks {
        assert!(
            start >= base && end <= base + arena.capacity(),
            "block {start:x}..{end:x} leaves the arena"
        );
        assert!(arena.contains(start as *const u8) && arena.contains((end - 1) as *const u8));
    }
}

#[test]
fn every_power_of_two_alignment_up_to_a_page_is_honoured_for_many_sizes() {
    let arena = unpadded(8 << 20);
    let sizes = [1usize, 2, 3, 7, 63, 64, 65, 100, 4095, 4096, 4097, 65_537];
    let mut blocks = Vec::new();
    for shift in 0..=12 {
        let align = 1usize << shift;
        for &size in &sizes {
            let layout = Layout::from_size_align(size, align).unwrap();
            let p = arena
                .try_alloc_layout(layout)
                .expect("room for every request");
            let addr = p.as_ptr() as usize;
            assert_eq!(addr % align, 0, "size {size} align {align}");
            // Touch the first and last byte: the block is writable memory.
            unsafe {
                p.as_ptr().write(0xa5);
                p.as_ptr().add(size - 1).write(0x5a);
            }
            blocks.push((addr, addr + size));
        }
    }
    assert_disjoint_inside(&arena, blocks);
    let s = arena.stats();
    assert_eq!(s.allocations, 13 * sizes.len());
    assert_eq!(s.failures, 0);
}

#[test]
fn a_block_can_take_the_whole_capacity_at_any_alignment() {
    let capacity = 1 << 16;
    let mut arena = unpadded(capacity);
    for shift in 0..=12 {
        let align = 1usize << shift;
        let p = arena
            .try_alloc_layout(Layout::from_size_align(capacity, align).unwrap())
            .expect("the whole arena in one block");
        assert_eq!(p.as_ptr() as usize, arena.stats().base); // the first byte of the arena
        unsafe { p.as_ptr().write_bytes(0xff, capacity) };
        assert_eq!(arena.stats().used, capacity);
        // Full: even one byte more is refused, and the refusal changes nothing.
        let err = arena.try_alloc(0u8).unwrap_err();
        assert_eq!(err.status(), Status::NoMem);
        assert_eq!(arena.stats().used, capacity);
        arena.reset().unwrap();
    }
    // One byte over the capacity never fits.
    let err = arena
        .try_alloc_layout(Layout::from_size_align(capacity + 1, 1).unwrap())
        .unwrap_err();
    assert_eq!(err.status(), Status::NoMem);
    assert_eq!(arena.stats().failures, 14);
}

#[test]
fn single_bytes_fill_the_arena_exactly() {
    let capacity = 1 << 14;
    let arena = unpadded(capacity);
    let mut last = 0usize;
    for i in 0..capacity {
        let b = arena.alloc(i as u8);
        let addr = b as *mut u8 as usize;
        assert!(
            i == 0 || addr == last + 1,
            "byte {i} is not next to the one before"
        );
        last = addr;
    }
    assert_eq!(arena.try_alloc(0u8).unwrap_err().status(), Status::NoMem);
    let s = arena.stats();
    assert_eq!(
        (s.used, s.allocations, s.failures, s.padding),
        (capacity, capacity, 1, 0)
    );
}

#[test]
fn sizes_from_one_byte_to_the_capacity_in_a_default_arena() {
    // The default policy: 64-byte blocks, 4 KiB from 1 MiB up.
    let capacity = 4 << 20;
    let mut arena = Arena::new(Kind::Poly, capacity).unwrap();
    let mut size = 1usize;
    while size <= capacity {
        let p = arena
            .try_alloc_layout(Layout::from_size_align(size, 1).unwrap())
            .unwrap();
        let want = if size >= 1 << 20 { 4096 } else { 64 };
        assert_eq!(p.as_ptr() as usize % want, 0, "size {size}");
        unsafe { p.as_ptr().add(size - 1).write(1) };
        arena.reset().unwrap();
        size = size * 2 + 1;
    }
    let whole = arena.alloc_slice_zeroed::<u8>(capacity);
    assert_eq!(whole.len(), capacity);
}

#[test]
fn typed_allocations_keep_the_type_and_the_policy_alignment() {
    #[repr(align(256))]
    struct Wide(#[allow(dead_code)] u8);
    let arena = Arena::new(Kind::Scratch, 1 << 20).unwrap();
    let a = arena.alloc(1u8) as *mut u8 as usize;
    let b = arena.alloc(Wide(2)) as *mut Wide as usize;
    let c = arena.alloc_slice_copy(&[1u16, 2, 3]).as_ptr() as usize;
    assert_eq!(a % 64, 0);
    assert_eq!(b % 256, 0);
    assert_eq!(c % 64, 0);
}

#[test]
fn zero_sized_requests_take_no_room() {
    let arena = Arena::new(Kind::Scratch, 4096).unwrap();
    let unit: &mut () = arena.alloc(());
    *unit = ();
    assert!(arena.alloc_slice_copy::<u64>(&[]).is_empty());
    assert!(arena.alloc_slice_zeroed::<u32>(0).is_empty());
    assert!(arena.alloc_slice_fill_with(0, |_| 1u8).is_empty());
    assert_eq!(arena.alloc_str(""), "");
    let p = arena
        .try_alloc_layout(Layout::from_size_align(0, 4096).unwrap())
        .unwrap();
    assert_eq!(p.as_ptr() as usize % 4096, 0);
    let s = arena.stats();
    assert_eq!((s.used, s.allocations, s.failures), (0, 0, 0));
}

#[test]
fn zeroed_slices_read_zero_even_in_reused_memory() {
    let mut arena = Arena::new(Kind::Poly, 1 << 20).unwrap();
    let first = arena.alloc_slice_fill_with(10_000, |_| u64::MAX).as_ptr();
    arena.reset().unwrap();
    let again = arena.alloc_slice_zeroed::<u64>(10_000);
    assert_eq!(
        again.as_ptr(),
        first,
        "the reset arena hands out the same memory"
    );
    assert!(again.iter().all(|&x| x == 0));
    let arrays = arena.alloc_slice_zeroed::<[f32; 3]>(100);
    assert!(arrays.iter().flatten().all(|&x| x == 0.0));
    assert_eq!(*arena.alloc_zeroed::<i128>(), 0);
}

#[test]
fn slice_helpers_copy_fill_and_keep_values() {
    let arena = Arena::new(Kind::Scratch, 1 << 20).unwrap();
    let src: Vec<u32> = (0..1000).collect();
    let copy = arena.alloc_slice_copy(&src);
    assert_eq!(copy, &src[..]);
    let filled = arena.alloc_slice_fill_with(1000, |i| src[999 - i]);
    assert_eq!(filled[0], 999);
    let text = arena.alloc_str("witness");
    assert_eq!(text, "witness");
    let built = arena.alloc_with(|| [3u8; 4096]);
    assert!(built.iter().all(|&b| b == 3));
    // Earlier blocks are untouched by later ones.
    assert_eq!(copy, &src[..]);
}

#[test]
fn a_failed_request_consumes_nothing_and_the_arena_serves_what_still_fits() {
    let arena = Arena::new(Kind::Scratch, 8192).unwrap();
    arena.alloc_slice_copy(&[1u8; 4000]);
    let before = arena.stats();
    assert_eq!(
        arena
            .try_alloc_slice_copy(&[0u8; 8000])
            .unwrap_err()
            .status(),
        Status::NoMem
    );
    assert!(arena
        .try_alloc_layout(Layout::from_size_align(8, 1 << 20).unwrap())
        .is_err());
    let after = arena.stats();
    assert_eq!(after.used, before.used);
    assert_eq!(after.failures, before.failures + 2);
    assert!(arena.try_alloc_slice_copy(&[2u8; 4000]).is_ok());
}

#[test]
#[should_panic(expected = "cannot allocate 8192 bytes")]
fn alloc_panics_with_the_size_and_the_reason_when_there_is_no_room() {
    let arena = ArenaConfig::new(Kind::Scratch, Memory::Host, 4096)
        .name("tiny")
        .build()
        .unwrap();
    arena.alloc([0u8; 8192]);
}

#[test]
fn the_panic_message_names_the_arena_and_the_cause() {
    let arena = ArenaConfig::new(Kind::Scratch, Memory::Host, 4096)
        .name("tiny")
        .build()
        .unwrap();
    let panic = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        arena.alloc_slice_fill_with(10_000, |i| i as u8);
    }))
    .unwrap_err();
    let message = panic.downcast_ref::<String>().expect("a formatted message");
    assert!(message.contains("\"tiny\""), "{message}");
    assert!(message.contains("arena exhausted"), "{message}");
    // The arena is unharmed.
    assert_eq!(*arena.alloc(7u8), 7);
}

#[test]
fn resident_statistics_count_the_pages_touched_and_only_stats_resident_reads_them() {
    let mut arena = ArenaConfig::new(Kind::Scratch, Memory::Host, 8 << 20)
        .disable(Flags::HUGEPAGES | Flags::PREFAULT_AHEAD | Flags::POPULATE)
        .build()
        .unwrap();
    let plain = arena.stats();
    assert!(!plain.resident_known);
    assert_eq!((plain.resident_bytes, plain.huge_bytes), (0, 0));
    // No prefault helper: nothing faulted in ahead.
    assert_eq!((plain.prefaulted, plain.collapsed), (0, 0));
    // 1 MiB written: at least that much is resident (the kernel may fault in more around it).
    arena.alloc_slice_fill_with(1 << 20, |i| i as u8);
    let s = arena.stats_resident();
    if std::path::Path::new("/proc/self/smaps").exists() {
        assert!(s.resident_known);
        assert!(s.resident_bytes >= 1 << 20, "{}", s.resident_bytes);
        assert!(s.resident_bytes <= s.reserved);
        assert!(s.huge_bytes <= s.resident_bytes);
    }
    // The rest of the snapshot is the one `stats` gives.
    assert_eq!((s.used, s.allocations), (plain.used + (1 << 20), 1));
    // A lane's memory is a slice of its parent's mapping: the kernel cannot say for it alone.
    let lanes = arena.split(2, 0).unwrap();
    lanes[0].alloc_slice_fill_with(4096, |_| 1u8);
    assert!(!lanes[0].stats_resident().resident_known);
}
