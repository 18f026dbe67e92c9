//! Bad input gives an `Err` with the right status and a readable message, never a panic, and
//! leaves every arena as it was.

use std::alloc::Layout;

use nalloc::{sys, Arena, ArenaConfig, Error, Flags, Kind, Memory, Status};

fn config() -> ArenaConfig {
    ArenaConfig::new(Kind::Scratch, Memory::Host, 1 << 20)
}

#[test]
fn bad_configurations_are_invalid() {
    let cases: Vec<(&str, ArenaConfig)> = vec![
        ("capacity 0", config().capacity(0).clone()),
        ("default_align 0", config().default_align(0).clone()),
        ("default_align 3", config().default_align(3).clone()),
        ("large_align 12288", config().large_align(12_288).clone()),
        (
            "an unknown flag",
            config().enable(Flags::from_bits_retain(1 << 30)).clone(),
        ),
        ("a NUL in the name", config().name("poly\0").clone()),
        (
            "device memory in an Arena",
            ArenaConfig::new(Kind::Poly, Memory::Device, 1 << 20),
        ),
    ];
    for (what, c) in cases {
        let err = c.build().unwrap_err();
        assert_eq!(err.status(), Status::Invalid, "{what}: {err}");
        assert!(!err.to_string().is_empty());
    }
}

#[test]
fn a_fixed_address_in_use_is_refused_by_the_os_and_replaces_nothing() {
    let first = Arena::new(Kind::Scratch, 1 << 16).unwrap();
    let x = first.alloc(1234u64);
    let err = config()
        .fixed_address(first.stats().base)
        .build()
        .unwrap_err();
    assert_eq!(err.status(), Status::Os);
    assert!(err.raw_os_error().is_some());
    assert!(err.to_string().contains("(File exists"), "{err}");
    assert_eq!(*x, 1234);
}

#[test]
fn more_memory_than_the_address_space_is_an_os_or_memory_error() {
    let err = Arena::new(Kind::Scratch, 1 << 62).unwrap_err();
    assert!(
        matches!(err.status(), Status::Os | Status::NoMem | Status::Invalid),
        "{err}"
    );
    let err = Arena::new(Kind::Scratch, usize::MAX).unwrap_err();
    assert!(
        matches!(err.status(), Status::Os | Status::NoMem | Status::Invalid),
        "{err}"
    );
}

#[test]
fn strict_refuses_a_feature_the_kernel_lacks_or_takes_it() {
    // SECRET (memfd_secret) is missing on many kernels: STRICT turns that into an error;
    // without STRICT the arena is created and says what is missing.
    match config().enable(Flags::SECRET | Flags::STRICT).build() {
        Ok(a) => assert!(a.stats().secret),
        Err(e) => assert!(
            matches!(e.status(), Status::Unsupported | Status::Os),
            "{e}"
        ),
    }
    let a = config().enable(Flags::SECRET).build().unwrap();
    let s = a.stats();
    assert!(s.secret || s.missing.contains(Flags::SECRET));
}

#[test]
fn impossible_allocations_are_errors_and_consume_nothing() {
    let arena = Arena::new(Kind::Scratch, 1 << 20).unwrap();
    arena.alloc(1u8);
    let used = arena.stats().used;
    let huge_align = Layout::from_size_align(8, 1 << 29).unwrap();
    assert_eq!(
        arena.try_alloc_layout(huge_align).unwrap_err().status(),
        Status::NoMem
    );
    let huge = Layout::from_size_align(isize::MAX as usize, 1).unwrap();
    assert_eq!(
        arena.try_alloc_layout(huge).unwrap_err().status(),
        Status::NoMem
    );
    let overflow = arena
        .try_alloc_slice_zeroed::<u64>(usize::MAX / 2)
        .unwrap_err();
    assert_eq!(overflow.status(), Status::Invalid);
    assert!(
        overflow.message().unwrap().contains("overflow"),
        "{overflow}"
    );
    let overflow = arena
        .try_alloc_slice_fill_with(usize::MAX / 4, |_| 0u32)
        .unwrap_err();
    assert_eq!(overflow.status(), Status::Invalid);
    let too_big = Layout::from_size_align(2 << 20, 1).unwrap();
    assert_eq!(
        arena.try_alloc_layout(too_big).unwrap_err().status(),
        Status::NoMem
    );
    assert_eq!(arena.stats().used, used);
    assert_eq!(*arena.alloc(5u8), 5);
}

#[test]
fn an_error_carries_the_c_message_of_its_own_failure() {
    let arena = Arena::new(Kind::Scratch, 4096).unwrap();
    let err = arena.try_alloc([0u8; 8192]).unwrap_err();
    // The C library's message for this failure, or just the status text when it has none.
    let c_message = unsafe { std::ffi::CStr::from_ptr(sys::nalloc_last_error_message()) };
    assert_eq!(
        err.message(),
        Some(c_message.to_str().unwrap()).filter(|m| !m.is_empty())
    );
    assert!(err.to_string().starts_with(Status::NoMem.description()));
    assert_eq!(err.code(), sys::NALLOC_ERR_NOMEM);
    // The message names the call and the cause.
    let message = err.message().unwrap();
    assert!(message.starts_with("nalloc_alloc"), "{message}");
    assert!(message.contains("8192 bytes requested"), "{message}");
    assert!(err.to_string().contains(message), "{err}");
    // A later failure on this thread does not change the error already made.
    let later = Arena::new(Kind::Scratch, 0).unwrap_err();
    assert_eq!(err.status(), Status::NoMem);
    assert_eq!(err.message(), Some(message));
    assert_eq!(later.status(), Status::Invalid);
    assert!(
        later
            .message()
            .unwrap()
            .starts_with("nalloc_arena_create: "),
        "{later}"
    );
}

#[test]
fn every_failure_from_c_carries_the_message_of_its_call() {
    // One failure of each shape: a status return, a NULL return, a refused phase boundary.
    let mut arena = Arena::new(Kind::Scratch, 4096).unwrap();
    let stale = arena.mark();
    arena.alloc(1u8);
    arena.reset().unwrap();
    let rollback = arena.rollback(stale).unwrap_err();
    let alloc = arena.try_alloc_layout(Layout::from_size_align(1 << 20, 1).unwrap());
    let split = arena.split(2, 1 << 20).unwrap_err();
    for (err, call) in [
        (rollback, "nalloc_rollback: "),
        (alloc.unwrap_err(), "nalloc_alloc"),
        (split, "nalloc_arena_split: "),
    ] {
        let message = err.message().unwrap_or_else(|| panic!("no message: {err}"));
        assert!(message.starts_with(call), "{call}: {message}");
    }
}

#[test]
fn a_success_between_the_failure_and_the_error_changes_nothing() {
    // The error model: successful calls never touch the thread's last error, so an error made
    // from it names its own failure even when other calls ran in between (statistics here).
    let arena = Arena::new(Kind::Scratch, 4096).unwrap();
    assert!(unsafe { sys::nalloc_alloc(arena.as_raw(), 1 << 20) }.is_null());
    let _ = arena.stats();
    let _ = arena.alloc(1u8);
    assert_eq!(unsafe { sys::nalloc_last_error() }, sys::NALLOC_ERR_NOMEM);
    // ...and clearing it is the caller's (nalloc_last_error_clear).
    unsafe { sys::nalloc_last_error_clear() };
    assert_eq!(unsafe { sys::nalloc_last_error() }, sys::NALLOC_OK);
    let message = unsafe { std::ffi::CStr::from_ptr(sys::nalloc_last_error_message()) };
    assert!(message.to_bytes().is_empty());
}

#[test]
fn statuses_map_to_c_codes_and_back() {
    for code in 1..=7 {
        let status = Status::from_code(code).unwrap();
        assert_eq!(status.code(), code);
        assert_ne!(status.description(), "unknown nalloc status");
        assert!(!matches!(status, Status::Unknown(_)));
    }
    assert_eq!(Status::from_code(0), None);
    assert_eq!(Status::from_code(99), Some(Status::Unknown(99)));
    assert_eq!(Status::Unknown(99).description(), "unknown nalloc status");
}

#[test]
fn errors_are_std_errors_and_convert_to_io_errors() {
    fn takes(_: &(dyn std::error::Error + Send + Sync + 'static)) {}
    let err = Arena::new(Kind::Poly, 0).unwrap_err();
    takes(&err);
    let io: std::io::Error = err.clone().into();
    assert_eq!(io.kind(), std::io::ErrorKind::InvalidInput);
    let e: Error = *io.into_inner().unwrap().downcast::<Error>().unwrap();
    assert_eq!(e, err);
}

#[test]
fn the_c_library_refuses_what_the_safe_api_makes_impossible() {
    // Double destroy and friends, through the raw handle: C answers STATE, never crashes. The
    // safe API never lets this happen; the test shows the C side holds even so.
    let arena = Arena::new(Kind::Scratch, 4096).unwrap();
    let raw = arena.as_raw();
    std::mem::forget(arena);
    assert_eq!(unsafe { sys::nalloc_arena_destroy(raw) }, sys::NALLOC_OK);
    assert_eq!(
        unsafe { sys::nalloc_arena_destroy(raw) },
        sys::NALLOC_ERR_STATE
    );
    assert!(unsafe { sys::nalloc_alloc(raw, 8) }.is_null());
    assert_eq!(unsafe { sys::nalloc_last_error() }, sys::NALLOC_ERR_STATE);
}
