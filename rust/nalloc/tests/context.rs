//! The three-arena context and sizing it from a dry run.

use nalloc::{Arena, Context, ContextConfig, Flags, Kind, Memory, Profile, Status};

#[test]
fn a_context_has_the_three_kinds_with_their_defaults() {
    let ctx = Context::new(Memory::Host, 4 << 20, 1 << 20, 2 << 20).unwrap();
    let [p, w, s] = ctx.arenas();
    let (p, w, s) = (p.unwrap(), w.unwrap(), s.unwrap());
    assert_eq!(
        (p.kind(), w.kind(), s.kind()),
        (Kind::Poly, Kind::Witness, Kind::Scratch)
    );
    assert_eq!(
        (p.capacity(), w.capacity(), s.capacity()),
        (4 << 20, 1 << 20, 2 << 20)
    );
    assert!(w
        .stats()
        .requested
        .contains(Flags::WIPE_ON_DESTROY | Flags::LOCK));
    assert!(p.stats().requested.contains(Flags::HUGEPAGES));
    // Separate mappings: no arena contains another's memory.
    let x = p.alloc(1u64) as *mut u64 as *const u8;
    assert!(p.contains(x) && !w.contains(x) && !s.contains(x));
    assert!(std::ptr::eq(ctx.poly().unwrap(), p));
    assert!(std::ptr::eq(ctx.witness().unwrap(), w));
    assert!(std::ptr::eq(ctx.scratch().unwrap(), s));
}

#[test]
fn proofs_run_back_to_back_in_one_context() {
    let mut ctx = Context::new(Memory::Host, 4 << 20, 1 << 20, 1 << 20).unwrap();
    let mut digests = Vec::new();
    for _ in 0..5 {
        let [poly, witness, scratch] = ctx.arenas_mut();
        let (poly, witness, scratch) = (poly.unwrap(), witness.unwrap(), scratch.unwrap());
        let w = witness.alloc_slice_fill_with(10_000, |i| i as u64 * 3);
        let lde = poly.alloc_slice_zeroed::<u64>(20_000);
        scratch.phase(|s| {
            let tw = s.alloc_slice_fill_with(10_000, |i| i as u64);
            for i in 0..10_000 {
                lde[2 * i] = w[i] + tw[i];
            }
        });
        assert_eq!(lde[19_998], 9_999 * 4);
        digests.push(poly.stats().layout_digest);
        poly.reset().unwrap();
        witness.wipe().unwrap();
        scratch.reset().unwrap();
    }
    let w = ctx.witness().unwrap().stats();
    assert_eq!((w.wipes, w.wiped_bytes), (5, 5 * 80_000));
    assert_eq!(ctx.scratch().unwrap().stats().rollbacks, 5);
}

#[test]
fn a_context_arena_swapped_out_keeps_its_memory_after_the_context_is_dropped() {
    let mut ctx = ContextConfig::new(Memory::Host, 1 << 20, 0, 0)
        .omit(Kind::Witness)
        .omit(Kind::Scratch)
        .build()
        .unwrap();
    let mut standalone = Arena::new(Kind::Scratch, 4096).unwrap();
    std::mem::swap(ctx.arena_mut(Kind::Poly).unwrap(), &mut standalone);
    // `standalone` is now the context's polynomial arena, and the context holds the other.
    assert_eq!(standalone.kind(), Kind::Poly);
    drop(ctx); // drops the standalone arena it holds; the poly arena keeps the C context alive
    let v = standalone.alloc_slice_fill_with(100_000, |i| i as u32);
    assert_eq!(v[99_999], 99_999);
    assert_eq!(standalone.stats().capacity, 1 << 20);
    standalone.reset().unwrap();
}

#[test]
fn omitted_kinds_are_not_created() {
    let ctx = ContextConfig::new(Memory::Host, 0, 1 << 20, 0)
        .omit(Kind::Poly)
        .omit(Kind::Scratch)
        .build()
        .unwrap();
    assert!(ctx.poly().is_none() && ctx.scratch().is_none());
    assert!(ctx.witness().is_some());
    // An omitted kind's configuration is ignored, whatever it says.
    let mut config = ContextConfig::new(Memory::Host, 1 << 20, 1 << 20, 1 << 20);
    config
        .arena_mut(Kind::Scratch)
        .default_align(3)
        .name("bad\0name");
    let ctx = config.omit(Kind::Scratch).build().unwrap();
    assert!(ctx.scratch().is_none() && ctx.poly().is_some() && ctx.witness().is_some());
    // Included again, it is built, and checked.
    assert_eq!(
        config.include(Kind::Scratch).build().unwrap_err().status(),
        Status::Invalid
    );
}

#[test]
fn a_capacity_of_zero_is_refused_unless_the_kind_is_omitted() {
    for kind in Kind::ALL {
        let mut caps = [1 << 20; 3];
        caps[kind.index()] = 0;
        let err = Context::new(Memory::Host, caps[0], caps[1], caps[2]).unwrap_err();
        assert_eq!(err.status(), Status::Invalid, "{kind:?}");
        assert!(err.to_string().contains("capacity 0"), "{err}");
        assert!(err.to_string().contains("ContextConfig::omit"), "{err}");
        let mut config = ContextConfig::new(Memory::Host, caps[0], caps[1], caps[2]);
        assert!(!config.is_omitted(kind));
        let ctx = config.omit(kind).build().unwrap();
        for other in Kind::ALL {
            assert_eq!(
                ctx.arena(other).is_some(),
                other != kind,
                "{kind:?} {other:?}"
            );
        }
    }
    // C refuses it too, for code that goes around the safe API.
    let config = ContextConfig::new(Memory::Host, 1 << 20, 0, 1 << 20);
    let mut raw = nalloc::sys::nalloc_ctx_config {
        arenas: Kind::ALL.map(|k| config.arena(k).as_raw()),
        omit: 0,
        reserved: 0,
    };
    let mut ctx = std::ptr::null_mut();
    let st = unsafe { nalloc::sys::nalloc_ctx_create(&raw, &mut ctx) };
    assert_eq!(st, nalloc::sys::NALLOC_ERR_INVALID);
    assert!(ctx.is_null());
    assert_eq!(
        unsafe { nalloc::sys::nalloc_ctx_config_omit(&mut raw, nalloc::sys::NALLOC_KIND_WITNESS) },
        nalloc::sys::NALLOC_OK
    );
    assert_eq!(
        unsafe { nalloc::sys::nalloc_ctx_create(&raw, &mut ctx) },
        nalloc::sys::NALLOC_OK
    );
    assert_eq!(
        unsafe { nalloc::sys::nalloc_ctx_destroy(ctx) },
        nalloc::sys::NALLOC_OK
    );
}

#[test]
fn a_bad_arena_config_fails_the_whole_context() {
    let mut config = ContextConfig::new(Memory::Host, 1 << 20, 1 << 20, 1 << 20);
    config.arena_mut(Kind::Scratch).default_align(48);
    assert_eq!(config.build().unwrap_err().status(), Status::Invalid);
    let mut config = ContextConfig::new(Memory::Host, 1 << 20, 1 << 20, 1 << 20);
    config.arena_mut(Kind::Poly).name("a\0b");
    assert_eq!(config.build().unwrap_err().status(), Status::Invalid);
    let config = ContextConfig::new(Memory::Device, 1 << 20, 1 << 20, 1 << 20);
    assert_eq!(config.build().unwrap_err().status(), Status::Invalid);
}

/// A prover-shaped workload: witness rows, extended columns, scratch per phase, and lanes.
fn workload(ctx: &mut Context) {
    let [poly, witness, scratch] = ctx.arenas_mut();
    let (poly, witness, scratch) = (poly.unwrap(), witness.unwrap(), scratch.unwrap());
    for t in 0..10usize {
        let rows = 1 << (8 + t % 4);
        let w = witness.alloc_slice_fill_with(rows * 8, |i| i as u64);
        let lde = poly.alloc_slice_zeroed::<u64>(rows * 16);
        scratch.phase(|s| {
            let tw = s.alloc_slice_zeroed::<u64>(rows);
            lde[0] = w[0] + tw[0];
        });
    }
    let lanes = poly.split(3, 0).unwrap();
    for (i, lane) in lanes.iter().enumerate() {
        lane.alloc_slice_zeroed::<u8>(10_000 * (i + 1));
    }
}

#[test]
fn a_context_sized_from_a_dry_run_fits_the_same_workload_exactly() {
    let mut dry = ContextConfig::dry_run(Memory::Host, 1 << 30)
        .build()
        .unwrap();
    assert!(dry
        .poly()
        .unwrap()
        .stats()
        .requested
        .contains(Flags::NORESERVE));
    workload(&mut dry);
    let profile = dry.profile().unwrap();
    drop(dry);
    assert_eq!(profile.kinds, [true, true, true]);
    assert_eq!(profile.lanes[Kind::Poly.index()], 3);
    assert_eq!(profile.lane_high_water[Kind::Poly.index()], 30_000);
    assert!(profile.high_water[Kind::Witness.index()] >= 8 * 8 * (256 + 512 + 1024 + 2048) * 2);
    let lane = profile.lane_capacity(Kind::Poly, 0.0);
    assert_eq!(lane, 32_768); // 30 000 bytes in whole pages

    let config = ContextConfig::from_profile(Memory::Host, &profile, 0.0).unwrap();
    let mut sized = config.build().unwrap();
    for kind in Kind::ALL {
        assert!(
            sized.arena(kind).unwrap().capacity()
                <= profile.high_water[kind.index()] + 4 * 32_768 + 8192
        );
    }
    // The sized context runs the workload with no failure: the dry run's peak is the real one.
    workload(&mut sized);
    for kind in Kind::ALL {
        assert_eq!(sized.arena(kind).unwrap().stats().failures, 0, "{kind:?}");
    }
}

#[test]
fn a_profile_is_plain_data_that_round_trips() {
    let mut dry = ContextConfig::dry_run(Memory::Host, 1 << 28)
        .build()
        .unwrap();
    dry.arena_mut(Kind::Scratch)
        .unwrap()
        .alloc_slice_zeroed::<u8>(12_345);
    let profile = dry.profile().unwrap();
    let stored = (
        profile.kinds,
        profile.high_water,
        profile.lane_high_water,
        profile.lanes,
    );
    let mut restored = Profile::default();
    // The dry run had all three kinds, so nothing is omitted.
    let sized = ContextConfig::from_profile(Memory::Host, &profile, 0.0).unwrap();
    assert!(Kind::ALL.iter().all(|&k| !sized.is_omitted(k)));
    (
        restored.kinds,
        restored.high_water,
        restored.lane_high_water,
        restored.lanes,
    ) = stored;
    assert_eq!(restored, profile);
    let a = ContextConfig::from_profile(Memory::Host, &profile, 0.25).unwrap();
    let b = ContextConfig::from_profile(Memory::Host, &restored, 0.25).unwrap();
    for kind in Kind::ALL {
        assert_eq!(
            a.arena(kind).as_raw().capacity,
            b.arena(kind).as_raw().capacity
        );
    }
}

#[test]
fn sizing_refuses_a_bad_headroom() {
    let mut profile = Profile::default();
    profile.kinds = [true; 3];
    profile.high_water = [4096; 3];
    for headroom in [-0.5, f64::NAN, f64::INFINITY, 1e300] {
        let err = ContextConfig::from_profile(Memory::Host, &profile, headroom).unwrap_err();
        assert_eq!(err.status(), Status::Invalid, "headroom {headroom}");
        assert_eq!(profile.lane_capacity(Kind::Poly, headroom), 0);
    }
}

#[test]
fn lanes_of_a_context_arena_are_destroyed_when_dropped() {
    let mut ctx = Context::new(Memory::Host, 1 << 20, 1 << 20, 1 << 20).unwrap();
    for kind in [Kind::Poly, Kind::Witness] {
        let arena = ctx.arena_mut(kind).unwrap();
        let lanes = arena.split(2, 0).unwrap();
        lanes[1].alloc(1u64);
        drop(lanes);
        // The parent refuses a reset while any lane lives: this one succeeds, so both are gone.
        arena.reset().unwrap();
    }
}

#[test]
fn a_profile_without_a_kind_sizes_a_context_that_omits_it() {
    let mut dry = ContextConfig::dry_run(Memory::Host, 1 << 28)
        .omit(Kind::Witness)
        .build()
        .unwrap();
    assert!(dry.witness().is_none());
    dry.arena_mut(Kind::Poly)
        .unwrap()
        .alloc_slice_zeroed::<u64>(1000);
    let profile = dry.profile().unwrap();
    assert_eq!(profile.kinds, [true, false, true]);
    let config = ContextConfig::from_profile(Memory::Host, &profile, 0.1).unwrap();
    assert!(config.is_omitted(Kind::Witness));
    assert!(!config.is_omitted(Kind::Poly) && !config.is_omitted(Kind::Scratch));
    let ctx = config.build().unwrap();
    assert!(ctx.witness().is_none());
    assert!(ctx.poly().unwrap().capacity() >= 8800);
    // The scratch arena allocated nothing in the dry run: C still gives it a page.
    assert!(ctx.scratch().unwrap().capacity() >= 4096);
}
