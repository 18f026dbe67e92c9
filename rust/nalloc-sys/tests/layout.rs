//! The Rust declarations of nalloc-sys have the layout the C compiler gives the headers.
//!
//! build.rs compiled and ran a probe against the very headers the library was built from; its
//! figures are in `c_layout.rs`. Every struct the headers define must be declared here with the
//! same size, alignment, fields, field offsets and field sizes, every enum type must have the
//! size of its Rust alias, and every enumerator and numeric macro must exist here with the same
//! value, and every function the header declares must be declared here (and the library must
//! export it, or this test does not link). A header change that the bindings do not follow fails
//! one of these tests, naming what drifted.

use std::collections::BTreeMap;
use std::mem::{align_of, offset_of, size_of};

use nalloc_sys::*;

/// A field as the probe saw it: (name, offsetof, sizeof).
type CField = (&'static str, usize, usize);

/// What the probe reported.
#[allow(dead_code)]
struct CLayout {
    /// (struct, sizeof, alignof, fields)
    structs: &'static [(&'static str, usize, usize, &'static [CField])],
    /// (enum type, sizeof, signed)
    enums: &'static [(&'static str, usize, bool)],
    /// (enumerator or macro, value)
    constants: &'static [(&'static str, i64)],
    /// functions: exported (NALLOC_API) and the header's `static inline` wrappers
    functions: &'static [&'static str],
}

include!(concat!(env!("OUT_DIR"), "/c_layout.rs"));

/// One Rust struct's layout, in the probe's terms.
struct RustStruct {
    name: &'static str,
    size: usize,
    align: usize,
    fields: Vec<(&'static str, usize, usize)>,
}

/// The size of a field's type, without naming the type.
fn size_of_field<S, F>(_: fn(&S) -> &F) -> usize {
    size_of::<F>()
}

macro_rules! rust_struct {
    ($t:ident { $($f:ident),* $(,)? }) => {
        RustStruct {
            name: stringify!($t),
            size: size_of::<$t>(),
            align: align_of::<$t>(),
            fields: vec![$((stringify!($f), offset_of!($t, $f), size_of_field(|s: &$t| &s.$f))),*],
        }
    };
}

fn rust_structs() -> Vec<RustStruct> {
    #[allow(unused_mut)]
    let mut structs = vec![
        rust_struct!(nalloc_arena_config {
            kind,
            memory,
            capacity,
            default_align,
            large_threshold,
            large_align,
            flags,
            device,
            guard_size,
            fixed_address,
            redzone,
            device_fraction,
            device_slack,
            pin_chunk,
            name,
            reserved,
        }),
        rust_struct!(nalloc_mark {
            arena_uid,
            epoch,
            generation,
            offset
        }),
        rust_struct!(nalloc_stats {
            version,
            struct_size,
            name,
            kind,
            memory,
            capacity,
            used,
            high_water,
            allocations,
            failures,
            padding,
            resets,
            rollbacks,
            wipes,
            wiped_bytes,
            reserved,
            guard_size,
            base,
            layout_digest,
            pin_seconds,
            requested,
            missing,
            checkers,
            guard_pages,
            populated,
            huge_pages,
            locked,
            no_dump,
            wipe_on_fork,
            wipe_on_destroy,
            secret,
            pinned,
            pin_fallback,
            unused,
            redzone,
            redzone_bytes,
            cached,
            deferred,
            live_blocks,
            fallbacks,
            prefaulted,
            collapsed,
            resident_bytes,
            huge_bytes,
            resident_known,
            unused_tail,
        }),
        rust_struct!(nalloc_ctx_config {
            arenas,
            omit,
            reserved
        }),
        rust_struct!(nalloc_profile {
            version,
            struct_size,
            kinds,
            unused,
            high_water,
            lane_high_water,
            lanes
        }),
    ];
    #[cfg(feature = "cuda")]
    structs.extend([
        rust_struct!(nalloc_window_state { used, overflow }),
        rust_struct!(nalloc_window {
            base,
            capacity,
            granule,
            state,
            device,
            unused
        }),
    ]);
    structs
}

fn rust_enums() -> BTreeMap<&'static str, (usize, bool)> {
    // C enums with no negative enumerator are unsigned int to GCC and Clang; the aliases say so.
    let unsigned = |size| (size, false);
    BTreeMap::from([
        ("nalloc_status", unsigned(size_of::<nalloc_status>())),
        ("nalloc_kind", unsigned(size_of::<nalloc_kind>())),
        ("nalloc_memory", unsigned(size_of::<nalloc_memory>())),
        ("enum nalloc_flag", unsigned(size_of::<nalloc_flag>())),
        ("enum nalloc_checker", unsigned(size_of::<nalloc_checker>())),
    ])
}

macro_rules! constants {
    ($($c:ident),* $(,)?) => { BTreeMap::from([$((stringify!($c), $c as i64)),*]) };
}

fn rust_constants() -> BTreeMap<&'static str, i64> {
    #[allow(unused_mut)]
    let mut c = constants!(
        NALLOC_VERSION_MAJOR,
        NALLOC_VERSION_MINOR,
        NALLOC_VERSION_PATCH,
        NALLOC_OK,
        NALLOC_ERR_INVALID,
        NALLOC_ERR_NOMEM,
        NALLOC_ERR_OS,
        NALLOC_ERR_CUDA,
        NALLOC_ERR_NO_DEVICE,
        NALLOC_ERR_UNSUPPORTED,
        NALLOC_ERR_STATE,
        NALLOC_KIND_POLY,
        NALLOC_KIND_WITNESS,
        NALLOC_KIND_SCRATCH,
        NALLOC_KIND_COUNT,
        NALLOC_MEMORY_HOST,
        NALLOC_MEMORY_PINNED,
        NALLOC_MEMORY_DEVICE,
        NALLOC_FLAG_POPULATE,
        NALLOC_FLAG_HUGEPAGES,
        NALLOC_FLAG_LOCK,
        NALLOC_FLAG_NODUMP,
        NALLOC_FLAG_WIPEONFORK,
        NALLOC_FLAG_WIPE_ON_DESTROY,
        NALLOC_FLAG_WIPE_AT_EXIT,
        NALLOC_FLAG_SECRET,
        NALLOC_FLAG_STRICT,
        NALLOC_FLAG_PIN_FALLBACK,
        NALLOC_FLAG_NORESERVE,
        NALLOC_FLAG_THREAD_CACHE,
        NALLOC_FLAG_PREFAULT_AHEAD,
        NALLOC_STATS_VERSION,
        NALLOC_CHECKER_ASAN,
        NALLOC_CHECKER_VALGRIND,
        NALLOC_PROFILE_VERSION,
    );
    #[cfg(feature = "cuda")]
    c.extend(constants!(
        NALLOC_WINDOW_GRANULE,
        NALLOC_WINDOW_MAX_GRANULE,
        NALLOC_WINDOW_MAX_CAPACITY,
    ));
    c
}

macro_rules! functions {
    // Each function's address: the test binary does not link when the library lacks one.
    ($($f:ident),* $(,)?) => { BTreeMap::from([$((stringify!($f), $f as *const () as usize)),*]) };
}

fn rust_functions() -> BTreeMap<&'static str, usize> {
    #[allow(unused_mut)]
    let mut f = functions!(
        nalloc_strerror,
        nalloc_last_error,
        nalloc_last_error_message,
        nalloc_last_error_clear,
        nalloc_arena_config_init,
        nalloc_arena_create,
        nalloc_arena_destroy,
        nalloc_alloc,
        nalloc_alloc_aligned,
        nalloc_alloc_zeroed,
        nalloc_free_last,
        nalloc_resize_last,
        nalloc_realloc,
        nalloc_mark_get,
        nalloc_rollback,
        nalloc_reset,
        nalloc_wipe,
        nalloc_arena_split,
        nalloc_arena_stats_sized,
        nalloc_arena_stats,
        nalloc_arena_stats_resident_sized,
        nalloc_arena_stats_resident,
        nalloc_arena_print_stats,
        nalloc_owner,
        nalloc_route_push,
        nalloc_route_pop,
        nalloc_route_current,
        nalloc_route_set_default,
        nalloc_route_depth,
        nalloc_route_scope_begin,
        nalloc_route_scope_end,
        nalloc_malloc,
        nalloc_calloc,
        nalloc_aligned_alloc,
        nalloc_posix_memalign,
        nalloc_free,
        nalloc_free_if_owned,
        nalloc_mrealloc,
        nalloc_resize_in_place,
        nalloc_usable_size,
        nalloc_routed_alloc,
        nalloc_routed_alloc_zeroed,
        nalloc_arena_malloc,
        nalloc_arena_destroy_deferred,
        nalloc_reset_unchecked,
        nalloc_wipe_unchecked,
        nalloc_ctx_config_init,
        nalloc_ctx_config_omit,
        nalloc_ctx_create,
        nalloc_ctx_arena,
        nalloc_ctx_destroy,
        nalloc_ctx_destroy_deferred,
        nalloc_ctx_config_init_dry_run,
        nalloc_ctx_profile_sized,
        nalloc_ctx_profile,
        nalloc_ctx_config_from_profile,
        nalloc_profile_lane_capacity,
    );
    #[cfg(feature = "cuda")]
    f.extend(functions!(
        nalloc_cuda_available,
        nalloc_cuda_error_string,
        nalloc_wipe_async,
        nalloc_window_create,
        nalloc_window_create_aligned,
        nalloc_window_reset,
        nalloc_window_usage,
        nalloc_stage_async,
    ));
    f
}

fn probe() -> Option<&'static CLayout> {
    if C_LAYOUT.is_none() {
        eprintln!("layout: cross-compiled, the probe did not run; nothing to compare");
    }
    C_LAYOUT.as_ref()
}

#[test]
fn every_c_struct_has_its_rust_layout() {
    let Some(c) = probe() else { return };
    let rust: BTreeMap<_, _> = rust_structs().into_iter().map(|s| (s.name, s)).collect();
    let mut problems = Vec::new();
    for &(name, size, align, fields) in c.structs {
        let Some(r) = rust.get(name) else {
            problems.push(format!(
                "{name}: in the C headers, not declared in nalloc-sys"
            ));
            continue;
        };
        if (r.size, r.align) != (size, align) {
            problems.push(format!(
                "{name}: C size {size} align {align}, Rust size {} align {}",
                r.size, r.align
            ));
        }
        let rust_fields: BTreeMap<_, _> = r.fields.iter().map(|&(f, o, s)| (f, (o, s))).collect();
        for &(field, offset, fsize) in fields {
            match rust_fields.get(field) {
                None => problems.push(format!("{name}.{field}: in C, missing in Rust")),
                Some(&(o, s)) if (o, s) != (offset, fsize) => problems.push(format!(
                    "{name}.{field}: C offset {offset} size {fsize}, Rust offset {o} size {s}"
                )),
                _ => {}
            }
        }
        for &(field, _, _) in &r.fields {
            if !fields.iter().any(|&(f, _, _)| f == field) {
                problems.push(format!("{name}.{field}: in Rust, not in C"));
            }
        }
    }
    for name in rust.keys() {
        if !c.structs.iter().any(|s| s.0 == *name) {
            problems.push(format!(
                "{name}: declared in Rust, not found in the C headers"
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "layout drift:\n  {}",
        problems.join("\n  ")
    );
}

#[test]
fn every_c_enum_has_the_size_of_its_rust_alias() {
    let Some(c) = probe() else { return };
    let rust = rust_enums();
    let mut problems = Vec::new();
    for &(name, size, signed) in c.enums {
        match rust.get(name) {
            None => problems.push(format!("{name}: a C enum without a Rust alias")),
            Some(&r) if r != (size, signed) => problems.push(format!(
                "{name}: C (size {size}, signed {signed}), Rust {r:?}"
            )),
            _ => {}
        }
    }
    assert!(
        problems.is_empty(),
        "enum drift:\n  {}",
        problems.join("\n  ")
    );
}

#[test]
fn every_c_constant_has_its_rust_value() {
    let Some(c) = probe() else { return };
    let rust = rust_constants();
    let mut problems = Vec::new();
    for &(name, value) in c.constants {
        match rust.get(name) {
            None => problems.push(format!("{name} = {value}: in C, missing in Rust")),
            Some(&r) if r != value => problems.push(format!("{name}: C {value}, Rust {r}")),
            _ => {}
        }
    }
    for name in rust.keys() {
        if !c.constants.iter().any(|k| k.0 == *name) {
            problems.push(format!("{name}: in Rust, not found in the C headers"));
        }
    }
    assert!(
        problems.is_empty(),
        "constant drift:\n  {}",
        problems.join("\n  ")
    );
}

#[test]
fn every_c_function_is_declared_in_rust() {
    let Some(c) = probe() else { return };
    let rust = rust_functions();
    let mut problems = Vec::new();
    for name in c.functions {
        if !rust.contains_key(name) {
            problems.push(format!(
                "{name}: in the C headers, not declared in nalloc-sys"
            ));
        }
    }
    for (name, address) in &rust {
        if !c.functions.contains(name) {
            problems.push(format!("{name}: in Rust, not found in the C headers"));
        }
        assert_ne!(*address, 0, "{name}");
    }
    assert!(
        problems.is_empty(),
        "function drift:\n  {}",
        problems.join("\n  ")
    );
}

#[test]
fn the_probe_saw_the_structs_it_must_see() {
    // A parser that silently found nothing would make the tests above pass vacuously.
    let Some(c) = probe() else { return };
    for name in [
        "nalloc_arena_config",
        "nalloc_stats",
        "nalloc_mark",
        "nalloc_profile",
    ] {
        let s = c
            .structs
            .iter()
            .find(|s| s.0 == name)
            .unwrap_or_else(|| panic!("{name} not probed"));
        assert!(s.3.len() >= 4, "{name}: only {} fields probed", s.3.len());
    }
    assert!(c
        .constants
        .iter()
        .any(|k| k.0 == "NALLOC_FLAG_PREFAULT_AHEAD"));
    assert!(c.enums.len() >= 5);
    // Both kinds of function: exported, and the header's inline wrappers.
    assert!(c.functions.contains(&"nalloc_arena_stats_sized"));
    assert!(c.functions.contains(&"nalloc_arena_stats"));
}

// config.h's macros, as build.rs read them, checked when this test compiles: the `cuda` feature
// refuses a library without its CUDA parts, and NVTX annotations exist only in a build with them.
const _: () = assert!(!cfg!(feature = "cuda") || NALLOC_HAVE_CUDA);
const _: () = assert!(!NALLOC_HAVE_NVTX || NALLOC_HAVE_CUDA);
