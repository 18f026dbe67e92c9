//! The CUDA entry points without a GPU (feature `cuda`): every one answers `NoDevice`, bad
//! arguments are `Invalid` whatever the machine, nothing crashes, host arenas keep working.
//!
//! Where CUDA is usable (a GPU machine), these expectations do not hold and each test returns
//! early after saying so.

#![cfg(feature = "cuda")]

use nalloc::cuda::{available, DeviceArena, DevicePtr, Stream};
use nalloc::{sys, Arena, ArenaConfig, Context, Flags, Kind, Memory, Status};

/// True when a GPU is usable here: then this suite has nothing to check.
fn gpu_present() -> bool {
    if available().is_ok() {
        eprintln!("cuda: a GPU is usable here; the no-device checks do not apply");
        return true;
    }
    false
}

#[test]
fn cuda_reports_no_device_with_the_cuda_text() {
    if gpu_present() {
        return;
    }
    let err = available().unwrap_err();
    assert_eq!(err.status(), Status::NoDevice);
    let cuda = err.cuda_error().expect("the CUDA runtime's own words");
    assert!(!cuda.is_empty());
    assert!(err.to_string().contains(cuda), "{err}");
}

#[test]
fn device_arenas_of_every_kind_report_no_device() {
    if gpu_present() {
        return;
    }
    for kind in Kind::ALL {
        assert_eq!(
            DeviceArena::new(kind, 1 << 20).unwrap_err().status(),
            Status::NoDevice
        );
        let err = ArenaConfig::new(kind, Memory::Device, 0)
            .device_fraction(0.5)
            .build_device()
            .unwrap_err();
        assert_eq!(err.status(), Status::NoDevice);
    }
}

#[test]
fn bad_device_configs_are_invalid_even_without_a_device() {
    for fraction in [0.0, -0.5, 1.5, f64::NAN, f64::INFINITY] {
        let err = ArenaConfig::new(Kind::Scratch, Memory::Device, 0)
            .device_fraction(fraction)
            .build_device()
            .unwrap_err();
        assert_eq!(err.status(), Status::Invalid, "fraction {fraction}");
    }
    let err = ArenaConfig::new(Kind::Scratch, Memory::Device, 1 << 20)
        .device(-1)
        .build_device()
        .unwrap_err();
    assert_eq!(err.status(), Status::Invalid);
    let err = ArenaConfig::new(Kind::Scratch, Memory::Host, 1 << 20)
        .build_device()
        .unwrap_err();
    assert_eq!(err.status(), Status::Invalid);
    let err = ArenaConfig::new(Kind::Witness, Memory::Device, 1 << 20)
        .enable(Flags::LOCK | Flags::STRICT)
        .build_device()
        .unwrap_err();
    assert_eq!(err.status(), Status::Unsupported);
}

#[test]
fn pinned_arenas_report_no_device_or_fall_back_when_asked() {
    if gpu_present() {
        return;
    }
    let err = ArenaConfig::new(Kind::Poly, Memory::Pinned, 1 << 20)
        .build()
        .unwrap_err();
    assert_eq!(err.status(), Status::NoDevice);
    let fallback = ArenaConfig::new(Kind::Poly, Memory::Pinned, 1 << 20)
        .enable(Flags::PIN_FALLBACK)
        .build()
        .unwrap();
    let s = fallback.stats();
    assert!(s.pin_fallback && !s.pinned);
    assert_eq!(s.memory, Memory::Pinned);
    assert_eq!(*fallback.alloc(3u32), 3);
    let err = Context::new(Memory::Pinned, 1 << 20, 1 << 20, 1 << 20).unwrap_err();
    assert_eq!(err.status(), Status::NoDevice);
}

#[test]
fn wipe_async_wipes_a_host_arena_and_its_lanes_without_a_device() {
    let mut arena = Arena::new(Kind::Witness, 1 << 20).unwrap();
    {
        let mut lanes = arena.split(2, 0).unwrap();
        lanes[0].alloc_slice_copy(&[1u8; 100]);
        lanes[0].wipe_async(Stream::PER_THREAD).unwrap();
        assert_eq!(lanes[0].stats().wiped_bytes, 100);
    }
    arena.reset().unwrap();
    let at = arena.alloc_slice_copy(&[0x5au8; 1000]).as_ptr();
    arena.wipe_async(Stream::LEGACY).unwrap();
    assert!((0..1000).all(|i| unsafe { at.add(i).read_volatile() } == 0));
    let s = arena.stats();
    assert_eq!((s.used, s.wipes), (0, 1));
}

#[test]
fn window_and_staging_calls_report_no_device_through_the_raw_api() {
    if gpu_present() {
        return;
    }
    // No DeviceArena exists without a device, so the safe window and staging calls cannot be
    // reached; the C entry points behind them answer NO_DEVICE.
    let mut w = std::mem::MaybeUninit::<sys::nalloc_window>::zeroed();
    unsafe {
        assert_eq!(
            sys::nalloc_window_create(std::ptr::null_mut(), 4096, w.as_mut_ptr()),
            sys::NALLOC_ERR_NO_DEVICE
        );
        assert_eq!(
            sys::nalloc_window_reset(w.as_ptr(), std::ptr::null_mut()),
            sys::NALLOC_ERR_NO_DEVICE
        );
        assert_eq!(
            sys::nalloc_window_usage(
                w.as_ptr(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                std::ptr::null_mut()
            ),
            sys::NALLOC_ERR_NO_DEVICE
        );
    }
    let err = nalloc::cuda::synchronize(Stream::LEGACY).unwrap_err();
    assert_eq!(err.status(), Status::Cuda);
    assert!(err.to_string().contains("cudaStreamSynchronize"), "{err}");
}

#[test]
fn staging_refuses_a_pageable_arena_before_calling_cuda() {
    // A fallback pinned arena and a host arena stand in for both sides: the range and kind
    // checks run first, so nothing reaches CUDA.
    let host = Arena::new(Kind::Poly, 1 << 20).unwrap();
    let block = host.alloc_slice_copy(&[1u8; 4096]);
    let st = unsafe {
        sys::nalloc_stage_async(
            host.as_raw(),
            block.as_mut_ptr().cast(),
            host.as_raw(),
            block.as_ptr().cast(),
            4096,
            std::ptr::null_mut(),
        )
    };
    assert_eq!(st, sys::NALLOC_ERR_INVALID);
}

#[test]
fn host_arenas_work_after_device_failures() {
    let _ = DeviceArena::new(Kind::Witness, 1 << 20);
    let _ = available();
    let mut host = Arena::new(Kind::Witness, 1 << 20).unwrap();
    let p = host.alloc_slice_copy(&[1u8; 4096]);
    assert_eq!(p.as_ptr() as usize % 64, 0);
    host.wipe().unwrap();
    let s = host.stats();
    assert_eq!((s.allocations, s.failures), (1, 0));
}

#[test]
fn device_pointers_are_plain_addresses() {
    let p = DevicePtr::from_addr(0x7000_0000);
    assert_eq!(std::mem::size_of::<DevicePtr>(), 8);
    assert_eq!(p.offset(16).addr() - p.addr(), 16);
    assert_eq!(
        std::mem::size_of::<nalloc::cuda::Window>(),
        std::mem::size_of::<sys::nalloc_window>()
    );
    assert_eq!(
        std::mem::align_of::<nalloc::cuda::Window>(),
        std::mem::align_of::<sys::nalloc_window>()
    );
}
