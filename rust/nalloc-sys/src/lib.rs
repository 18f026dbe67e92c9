//! Raw FFI bindings to nalloc, the arena allocator for GPU zero-knowledge provers.
//!
//! This crate declares the public C API of `include/nalloc/nalloc.h` (and, with the `cuda`
//! feature, `include/nalloc/cuda.h`) as it is, and links the C library: its build script builds
//! it from the repository's sources with CMake, or finds an installed one (see `build.rs` and
//! docs/rust.md). The header comments are the documentation; every item here names what it
//! mirrors. The safe interface is the `nalloc` crate.
//!
//! The bindings are written by hand, not generated, and kept honest by a test
//! (`tests/layout.rs`): the build script compiles a small C program against the same headers
//! the library was built from, which reports the size, alignment and field offsets of every C
//! struct and the value of every enumerator, and the test compares them with the declarations
//! below. A header change these bindings do not follow fails that test.
//!
//! C enums are plain integer types with constants here, never Rust enums: a value a newer
//! library returns that these bindings do not know must not be undefined behaviour.
//!
//! ```
//! use nalloc_sys::*;
//! use std::mem::MaybeUninit;
//!
//! unsafe {
//!     let mut config = MaybeUninit::<nalloc_arena_config>::uninit();
//!     nalloc_arena_config_init(config.as_mut_ptr(), NALLOC_KIND_SCRATCH, NALLOC_MEMORY_HOST, 1 << 20);
//!     let mut arena = std::ptr::null_mut();
//!     assert_eq!(nalloc_arena_create(config.as_ptr(), &mut arena), NALLOC_OK);
//!     let p = nalloc_alloc(arena, 100);
//!     assert!(!p.is_null() && p as usize % 64 == 0);
//!     assert_eq!(nalloc_arena_destroy(arena), NALLOC_OK);
//! }
//! ```
#![no_std]
#![allow(non_camel_case_types)]

use core::ffi::{c_char, c_int, c_uint, c_void};
use core::marker::{PhantomData, PhantomPinned};

// ---- Version ------------------------------------------------------------------------------------

/// `NALLOC_VERSION_MAJOR`.
pub const NALLOC_VERSION_MAJOR: c_uint = 0;
/// `NALLOC_VERSION_MINOR`.
pub const NALLOC_VERSION_MINOR: c_uint = 1;
/// `NALLOC_VERSION_PATCH`.
pub const NALLOC_VERSION_PATCH: c_uint = 0;

// ---- How the library was built (nalloc/config.h) ----------------------------------------------

// NALLOC_HAVE_CUDA and NALLOC_HAVE_NVTX, read by build.rs from the library's config.h.
include!(concat!(env!("OUT_DIR"), "/config.rs"));

// ---- Status codes -------------------------------------------------------------------------------

/// `nalloc_status`: `NALLOC_OK` or the reason a call failed.
pub type nalloc_status = c_uint;
/// Success.
pub const NALLOC_OK: nalloc_status = 0;
/// A bad argument or configuration: NULL, zero size, bad alignment.
pub const NALLOC_ERR_INVALID: nalloc_status = 1;
/// The arena has no room left for this request.
pub const NALLOC_ERR_NOMEM: nalloc_status = 2;
/// The OS refused (mmap, madvise, mlock...); errno is kept.
pub const NALLOC_ERR_OS: nalloc_status = 3;
/// A CUDA call failed; `nalloc_cuda_error_string()` says which.
pub const NALLOC_ERR_CUDA: nalloc_status = 4;
/// No CUDA driver or no device.
pub const NALLOC_ERR_NO_DEVICE: nalloc_status = 5;
/// Not built in, or the kernel lacks it.
pub const NALLOC_ERR_UNSUPPORTED: nalloc_status = 6;
/// Stale mark, wrong arena, destroyed object, not the last block.
pub const NALLOC_ERR_STATE: nalloc_status = 7;

// ---- Arena configuration ------------------------------------------------------------------------

/// `nalloc_kind`: what an arena holds; selects the defaults `nalloc_arena_config_init` fills in.
pub type nalloc_kind = c_uint;
/// Polynomial vectors: huge pages, 4 KiB alignment for large vectors.
pub const NALLOC_KIND_POLY: nalloc_kind = 0;
/// Secret witness data: locked, no-dump, wipe-on-fork, wiped on destroy.
pub const NALLOC_KIND_WITNESS: nalloc_kind = 1;
/// Per-phase temporaries.
pub const NALLOC_KIND_SCRATCH: nalloc_kind = 2;
/// The number of kinds (the length of per-kind arrays).
pub const NALLOC_KIND_COUNT: nalloc_kind = 3;

/// `nalloc_memory`: where an arena's memory lives.
pub type nalloc_memory = c_uint;
/// Pageable host memory: one mmap reservation with guard pages.
pub const NALLOC_MEMORY_HOST: nalloc_memory = 0;
/// The same mapping, page-locked with cudaHostRegister.
pub const NALLOC_MEMORY_PINNED: nalloc_memory = 1;
/// One cudaMalloc block on `config.device`.
pub const NALLOC_MEMORY_DEVICE: nalloc_memory = 2;

/// `enum nalloc_flag`: features an arena may ask for (`nalloc_arena_config.flags`).
pub type nalloc_flag = c_uint;
/// Prefault every page at creation (MADV_POPULATE_WRITE).
pub const NALLOC_FLAG_POPULATE: nalloc_flag = 1 << 0;
/// MADV_HUGEPAGE on the mapping (default for POLY).
pub const NALLOC_FLAG_HUGEPAGES: nalloc_flag = 1 << 1;
/// mlock2(MLOCK_ONFAULT): never swapped (WITNESS).
pub const NALLOC_FLAG_LOCK: nalloc_flag = 1 << 2;
/// MADV_DONTDUMP: not in core dumps (WITNESS).
pub const NALLOC_FLAG_NODUMP: nalloc_flag = 1 << 3;
/// A forked child never sees the contents (WITNESS).
pub const NALLOC_FLAG_WIPEONFORK: nalloc_flag = 1 << 4;
/// `nalloc_wipe` before the memory is released (WITNESS).
pub const NALLOC_FLAG_WIPE_ON_DESTROY: nalloc_flag = 1 << 5;
/// Wiped at process exit if still alive (WITNESS).
pub const NALLOC_FLAG_WIPE_AT_EXIT: nalloc_flag = 1 << 6;
/// memfd_secret backing: out of the kernel direct map; host only.
pub const NALLOC_FLAG_SECRET: nalloc_flag = 1 << 7;
/// A refused feature fails creation.
pub const NALLOC_FLAG_STRICT: nalloc_flag = 1 << 8;
/// PINNED without a driver: locked host memory instead.
pub const NALLOC_FLAG_PIN_FALLBACK: nalloc_flag = 1 << 9;
/// MAP_NORESERVE: address space only (sizing dry runs).
pub const NALLOC_FLAG_NORESERVE: nalloc_flag = 1 << 10;
/// Each thread allocates from a private chunk it took from the arena with one atomic.
pub const NALLOC_FLAG_THREAD_CACHE: nalloc_flag = 1 << 11;
/// Pages ahead of the offset are faulted in by a helper thread, off the allocating thread.
pub const NALLOC_FLAG_PREFAULT_AHEAD: nalloc_flag = 1 << 12;

/// `nalloc_arena_config`: everything `nalloc_arena_create` needs. Fill it with
/// `nalloc_arena_config_init` first. Its size is fixed for every 1.x release: fields added in
/// 1.x take the place of words of `reserved`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct nalloc_arena_config {
    /// Selects defaults; WITNESS also selects the secure-wipe discipline.
    pub kind: nalloc_kind,
    /// Where the memory lives.
    pub memory: nalloc_memory,
    /// Bytes the arena can hand out; the mapping is rounded up to pages.
    pub capacity: usize,
    /// Bytes, power of two: alignment of `nalloc_alloc` below the threshold.
    pub default_align: usize,
    /// Bytes: `nalloc_alloc` requests of at least this size use `large_align`.
    pub large_threshold: usize,
    /// Bytes, power of two.
    pub large_align: usize,
    /// `NALLOC_FLAG_*`.
    pub flags: c_uint,
    /// Device: CUDA device ordinal.
    pub device: c_int,
    /// Bytes of PROT_NONE on each side of a host mapping; 0 means one page.
    pub guard_size: usize,
    /// Host: place the arena's first byte exactly here; NULL: anywhere.
    pub fixed_address: *mut c_void,
    /// Bytes of poisoned gap after every block while a memory checker watches the arena.
    pub redzone: usize,
    /// Device, when capacity is 0: this fraction (0, 1] of free memory.
    pub device_fraction: f64,
    /// Device: bytes always left free for kernel loading.
    pub device_slack: usize,
    /// Pinned: bytes registered per cudaHostRegister call.
    pub pin_chunk: usize,
    /// For statistics, messages and NVTX; copied; NULL: named after the kind.
    pub name: *const c_char,
    /// Zero: room for the fields of later 1.x releases.
    pub reserved: [u64; 6],
}

// ---- Arenas -------------------------------------------------------------------------------------

/// `nalloc_arena`: an arena (opaque).
#[repr(C)]
pub struct nalloc_arena {
    _data: [u8; 0],
    _marker: PhantomData<(*mut u8, PhantomPinned)>,
}

/// `nalloc_mark`: a position in an arena to roll back to. The fields are private to nalloc.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct nalloc_mark {
    /// Private: which arena.
    pub arena_uid: u64,
    /// Private: rollbacks, resets and wipes done before the mark was taken.
    pub epoch: u64,
    /// Private: resets and wipes done before the mark was taken.
    pub generation: u64,
    /// Private: bytes in use when the mark was taken.
    pub offset: usize,
}

// ---- Statistics ---------------------------------------------------------------------------------

/// `NALLOC_STATS_VERSION`.
pub const NALLOC_STATS_VERSION: u32 = 1;

/// `nalloc_stats`: a snapshot of an arena (`nalloc_arena_stats`).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct nalloc_stats {
    /// `NALLOC_STATS_VERSION` of the library that filled it.
    pub version: u32,
    /// `sizeof(nalloc_stats)` of the library that filled it.
    pub struct_size: u32,
    /// The arena's name; valid while the arena lives.
    pub name: *const c_char,
    /// The arena's kind.
    pub kind: nalloc_kind,
    /// Where its memory lives.
    pub memory: nalloc_memory,
    /// Bytes the arena can hand out.
    pub capacity: usize,
    /// Bytes handed out now, alignment padding included.
    pub used: usize,
    /// Most bytes in use at once since creation.
    pub high_water: usize,
    /// Successful allocation calls since creation.
    pub allocations: usize,
    /// Requests that returned NULL (or were refused), whatever the reason.
    pub failures: usize,
    /// Alignment bytes skipped by successful allocations since creation.
    pub padding: usize,
    /// `nalloc_reset` calls (wipes excluded).
    pub resets: usize,
    /// Successful `nalloc_rollback` calls.
    pub rollbacks: usize,
    /// `nalloc_wipe` calls, including the one on destroy.
    pub wipes: usize,
    /// Bytes zeroed by those wipes.
    pub wiped_bytes: usize,
    /// Bytes of address space or device memory held, guards included.
    pub reserved: usize,
    /// Bytes of PROT_NONE on each side (0 for device arenas).
    pub guard_size: usize,
    /// Address of the first byte (a device address for device arenas).
    pub base: usize,
    /// Hash of every (offset, size) handed out since creation, and of the resets between them.
    pub layout_digest: u64,
    /// Pinned: seconds cudaHostRegister took at creation.
    pub pin_seconds: f64,
    /// `NALLOC_FLAG_*` the arena was created with.
    pub requested: c_uint,
    /// Requested features that are not in force.
    pub missing: c_uint,
    /// `NALLOC_CHECKER_*` told about every block.
    pub checkers: c_uint,
    /// PROT_NONE guards on both sides are in place.
    pub guard_pages: bool,
    /// Every page was prefaulted at creation.
    pub populated: bool,
    /// MADV_HUGEPAGE was accepted.
    pub huge_pages: bool,
    /// The pages are locked (never swapped).
    pub locked: bool,
    /// MADV_DONTDUMP was accepted.
    pub no_dump: bool,
    /// MADV_WIPEONFORK was accepted.
    pub wipe_on_fork: bool,
    /// The arena is wiped before its memory is released.
    pub wipe_on_destroy: bool,
    /// memfd_secret backing: out of the kernel's direct map.
    pub secret: bool,
    /// Page-locked and registered with CUDA.
    pub pinned: bool,
    /// PINNED was asked for, but it is locked host memory (no driver).
    pub pin_fallback: bool,
    /// False; keeps the layout free of compiler padding.
    pub unused: [bool; 2],
    /// Bytes of poisoned gap kept after each block while a checker watches the arena.
    pub redzone: usize,
    /// Bytes of those gaps reserved by successful allocations since creation.
    pub redzone_bytes: usize,
    /// Bytes reserved by threads' private chunks and not handed out yet: in the offset, not in
    /// `used`.
    pub cached: usize,
    /// Bytes free below the offset and not given back yet (freed malloc-family blocks waiting
    /// for the blocks above them, free stretches later chunks reuse); not in `used`.
    pub deferred: usize,
    /// Malloc-family blocks allocated here and not freed yet.
    pub live_blocks: usize,
    /// Malloc-family requests routed here that the system allocator served because this arena
    /// had no room.
    pub fallbacks: usize,
    /// Bytes the prefault helper faulted in (`NALLOC_FLAG_PREFAULT_AHEAD`).
    pub prefaulted: usize,
    /// Bytes the prefault helper had the kernel collapse into huge pages.
    pub collapsed: usize,
    /// `nalloc_arena_stats_resident` only: bytes of the arena's memory resident now.
    pub resident_bytes: usize,
    /// `nalloc_arena_stats_resident` only: of those, bytes in transparent huge pages.
    pub huge_bytes: usize,
    /// `resident_bytes` and `huge_bytes` were read from the kernel.
    pub resident_known: bool,
    /// False; keeps the layout free of compiler padding.
    pub unused_tail: [bool; 7],
}

/// `enum nalloc_checker`: memory checkers that can see inside an arena (`nalloc_stats.checkers`).
pub type nalloc_checker = c_uint;
/// Built with AddressSanitizer: free space is poisoned.
pub const NALLOC_CHECKER_ASAN: nalloc_checker = 1 << 0;
/// Built with NALLOC_VALGRIND and running under Valgrind: the arena is a Memcheck mempool.
pub const NALLOC_CHECKER_VALGRIND: nalloc_checker = 1 << 1;

/// C's `FILE` (for `nalloc_arena_print_stats`), opaque.
#[repr(C)]
pub struct FILE {
    _data: [u8; 0],
    _marker: PhantomData<(*mut u8, PhantomPinned)>,
}

// ---- Routes and the malloc family ---------------------------------------------------------------

/// `nalloc_route_scope`: a route for the rest of a C block (`NALLOC_ROUTE_SCOPE`): the route
/// depth after the push, 0 when the push was refused.
pub type nalloc_route_scope = usize;

// ---- The three-arena partition ------------------------------------------------------------------

/// `nalloc_ctx`: a polynomial, a witness and a scratch arena (opaque).
#[repr(C)]
pub struct nalloc_ctx {
    _data: [u8; 0],
    _marker: PhantomData<(*mut u8, PhantomPinned)>,
}

/// `nalloc_ctx_config`: one configuration per kind, indexed by `nalloc_kind`, and the kinds to
/// leave out. Its size is fixed for every 1.x release.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct nalloc_ctx_config {
    /// One configuration per kind. A kind that is not omitted needs a capacity (or, for a device
    /// arena, a `device_fraction`): `nalloc_ctx_create` refuses capacity 0.
    pub arenas: [nalloc_arena_config; NALLOC_KIND_COUNT as usize],
    /// Bit `1 << kind` set: the context has no arena of that kind (`nalloc_ctx_config_omit`).
    pub omit: c_uint,
    /// Zero: room for a field of a later 1.x release.
    pub reserved: c_uint,
}

// ---- Sizing from a dry run ----------------------------------------------------------------------

/// `NALLOC_PROFILE_VERSION`.
pub const NALLOC_PROFILE_VERSION: u32 = 1;

/// `nalloc_profile`: what a dry run needed, per arena kind.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct nalloc_profile {
    /// `NALLOC_PROFILE_VERSION` of the library that filled it.
    pub version: u32,
    /// `sizeof(nalloc_profile)` of the library that filled it.
    pub struct_size: u32,
    /// Bit k set: the context had an arena of kind k.
    pub kinds: c_uint,
    /// Zero; keeps the layout free of compiler padding.
    pub unused: c_uint,
    /// Bytes: the arena's peak use, padding included, its lanes' blocks left out.
    pub high_water: [usize; NALLOC_KIND_COUNT as usize],
    /// Bytes: the largest peak of any lane split directly from the arena; 0 without lanes.
    pub lane_high_water: [usize; NALLOC_KIND_COUNT as usize],
    /// The most lanes one split made from it.
    pub lanes: [usize; NALLOC_KIND_COUNT as usize],
}

// ---- Functions ----------------------------------------------------------------------------------

extern "C" {
    /// A static, human-readable description of `status`; never NULL.
    pub fn nalloc_strerror(status: nalloc_status) -> *const c_char;
    /// The reason for the most recent failure on this thread.
    pub fn nalloc_last_error() -> nalloc_status;
    /// This thread's message for its most recent failure, naming the call and the cause; ""
    /// when none. Never NULL; valid and unchanged until this thread's next failing nalloc call
    /// or clear.
    pub fn nalloc_last_error_message() -> *const c_char;
    /// Reset this thread's last error to `NALLOC_OK` and its message to "". The only call that
    /// changes them without failing.
    pub fn nalloc_last_error_clear();

    /// Fill `config` with the defaults for `kind` and `memory`, and the given capacity in bytes.
    pub fn nalloc_arena_config_init(
        config: *mut nalloc_arena_config,
        kind: nalloc_kind,
        memory: nalloc_memory,
        capacity: usize,
    );
    /// Reserve an arena as `config` describes.
    pub fn nalloc_arena_create(
        config: *const nalloc_arena_config,
        out: *mut *mut nalloc_arena,
    ) -> nalloc_status;
    /// Release the arena and its memory (a witness arena is wiped first).
    pub fn nalloc_arena_destroy(arena: *mut nalloc_arena) -> nalloc_status;

    /// Allocate `size` bytes at the arena's policy alignment. NULL on failure.
    pub fn nalloc_alloc(arena: *mut nalloc_arena, size: usize) -> *mut c_void;
    /// Allocate `size` bytes aligned to `align`, any power of two. NULL on failure.
    pub fn nalloc_alloc_aligned(arena: *mut nalloc_arena, size: usize, align: usize)
        -> *mut c_void;
    /// calloc for arenas: `count * size` bytes at `align` (0: the policy), reading as zero.
    pub fn nalloc_alloc_zeroed(
        arena: *mut nalloc_arena,
        count: usize,
        size: usize,
        align: usize,
    ) -> *mut c_void;
    /// Give back the most recent block.
    pub fn nalloc_free_last(
        arena: *mut nalloc_arena,
        ptr: *mut c_void,
        size: usize,
    ) -> nalloc_status;
    /// Grow or shrink the most recent block in place.
    pub fn nalloc_resize_last(
        arena: *mut nalloc_arena,
        ptr: *mut c_void,
        old_size: usize,
        new_size: usize,
    ) -> nalloc_status;
    /// realloc for host and pinned arenas.
    pub fn nalloc_realloc(
        arena: *mut nalloc_arena,
        ptr: *mut c_void,
        old_size: usize,
        new_size: usize,
        align: usize,
    ) -> *mut c_void;

    /// The arena's current position.
    pub fn nalloc_mark_get(arena: *mut nalloc_arena) -> nalloc_mark;
    /// Release everything allocated since `mark` was taken.
    pub fn nalloc_rollback(arena: *mut nalloc_arena, mark: nalloc_mark) -> nalloc_status;
    /// Release everything; every mark taken so far becomes stale.
    pub fn nalloc_reset(arena: *mut nalloc_arena) -> nalloc_status;
    /// Zero every byte handed out since the last wipe, then reset.
    pub fn nalloc_wipe(arena: *mut nalloc_arena) -> nalloc_status;

    /// Split `parent` into `count` lanes, stored in `lanes[0..count]`.
    pub fn nalloc_arena_split(
        parent: *mut nalloc_arena,
        count: usize,
        lane_capacity: usize,
        lanes: *mut *mut nalloc_arena,
    ) -> nalloc_status;

    /// Fill the first `stats_size` bytes of `*stats` (at least the 1.0 struct's size) with a
    /// snapshot of the arena. `nalloc_arena_stats` passes this build's size.
    pub fn nalloc_arena_stats_sized(
        arena: *const nalloc_arena,
        stats: *mut nalloc_stats,
        stats_size: usize,
    ) -> nalloc_status;
    /// As `nalloc_arena_stats_sized`, and also read from the kernel how much of the arena's
    /// memory is resident and how much in transparent huge pages (slower: /proc/self/smaps).
    pub fn nalloc_arena_stats_resident_sized(
        arena: *const nalloc_arena,
        stats: *mut nalloc_stats,
        stats_size: usize,
    ) -> nalloc_status;
    /// Print the arena's statistics to `stream` (NULL: stderr).
    pub fn nalloc_arena_print_stats(arena: *const nalloc_arena, stream: *mut FILE)
        -> nalloc_status;

    /// The live host or pinned arena (or lane: the innermost) whose range holds `ptr`, or NULL.
    /// An arena retired by `nalloc_arena_destroy_deferred` is returned until its last block is
    /// freed.
    pub fn nalloc_owner(ptr: *const c_void) -> *mut nalloc_arena;
    /// Route this thread's malloc-family allocations to `arena` (NULL: the system allocator)
    /// until the matching `nalloc_route_pop`. Routes nest; the innermost wins.
    pub fn nalloc_route_push(arena: *mut nalloc_arena) -> nalloc_status;
    /// End the innermost route. `NALLOC_ERR_STATE` when none is pushed.
    pub fn nalloc_route_pop() -> nalloc_status;
    /// The arena this thread's malloc-family allocations go to now; NULL for the system
    /// allocator.
    pub fn nalloc_route_current() -> *mut nalloc_arena;
    /// The process-wide default route for threads with no route pushed (NULL: the system
    /// allocator).
    pub fn nalloc_route_set_default(arena: *mut nalloc_arena) -> nalloc_status;
    /// Routes pushed on this thread and not popped.
    pub fn nalloc_route_depth() -> usize;
    /// `NALLOC_ROUTE_SCOPE`'s push.
    pub fn nalloc_route_scope_begin(arena: *mut nalloc_arena) -> nalloc_route_scope;
    /// `NALLOC_ROUTE_SCOPE`'s pop: back to the depth the scope began at.
    pub fn nalloc_route_scope_end(scope: *const nalloc_route_scope);

    /// malloc, routed: from the current route's arena, or the system allocator.
    pub fn nalloc_malloc(size: usize) -> *mut c_void;
    /// calloc, routed.
    pub fn nalloc_calloc(count: usize, size: usize) -> *mut c_void;
    /// aligned_alloc, routed (any power of two; NULL and EINVAL otherwise).
    pub fn nalloc_aligned_alloc(align: usize, size: usize) -> *mut c_void;
    /// posix_memalign, routed.
    pub fn nalloc_posix_memalign(out: *mut *mut c_void, align: usize, size: usize) -> c_int;
    /// free for both worlds: an arena block goes back to its arena, anything else to the system
    /// allocator. NULL is ignored.
    pub fn nalloc_free(ptr: *mut c_void);
    /// As `nalloc_free` for arena blocks (true); false, and nothing done, for a pointer no arena
    /// holds.
    pub fn nalloc_free_if_owned(ptr: *mut c_void) -> bool;
    /// realloc for the malloc family.
    pub fn nalloc_mrealloc(ptr: *mut c_void, size: usize) -> *mut c_void;
    /// Resize an arena block in place: `NALLOC_OK`, `NALLOC_ERR_NOMEM` when it cannot grow
    /// where it is, `NALLOC_ERR_INVALID` when `ptr` is no arena block.
    pub fn nalloc_resize_in_place(ptr: *mut c_void, size: usize) -> nalloc_status;
    /// The bytes an arena block holds, or `malloc_usable_size` for system blocks; 0 for NULL.
    pub fn nalloc_usable_size(ptr: *const c_void) -> usize;
    /// A block from the current route's arena (`size` bytes at `align`, 0: its policy; at least
    /// 16), or NULL (no route, a NULL route, a bad alignment, or no room: counted in the
    /// arena's fallbacks) for the caller to serve itself.
    pub fn nalloc_routed_alloc(size: usize, align: usize) -> *mut c_void;
    /// `nalloc_routed_alloc`, zeroed.
    pub fn nalloc_routed_alloc_zeroed(size: usize, align: usize) -> *mut c_void;
    /// A malloc-family block from `arena` itself, whatever the route; NULL when it is full.
    pub fn nalloc_arena_malloc(arena: *mut nalloc_arena, size: usize, align: usize) -> *mut c_void;
    /// Destroy `arena` now if no malloc-family block of it is alive, or else when the last one is
    /// freed. `NALLOC_ERR_UNSUPPORTED` (arena left as it was) without membarrier(2).
    pub fn nalloc_arena_destroy_deferred(arena: *mut nalloc_arena) -> nalloc_status;
    /// `nalloc_reset` that forgets live malloc-family blocks instead of refusing.
    pub fn nalloc_reset_unchecked(arena: *mut nalloc_arena) -> nalloc_status;
    /// `nalloc_wipe` that forgets live malloc-family blocks instead of refusing.
    pub fn nalloc_wipe_unchecked(arena: *mut nalloc_arena) -> nalloc_status;

    /// Fill `config` with each kind's defaults in `memory`, sized in bytes.
    pub fn nalloc_ctx_config_init(
        config: *mut nalloc_ctx_config,
        memory: nalloc_memory,
        poly_capacity: usize,
        witness_capacity: usize,
        scratch_capacity: usize,
    );
    /// Leave the arena of `kind` out of contexts made from `config` (sets its bit in `omit`).
    pub fn nalloc_ctx_config_omit(
        config: *mut nalloc_ctx_config,
        kind: nalloc_kind,
    ) -> nalloc_status;
    /// Create the polynomial, witness and scratch arenas, but those the config omits. All or
    /// nothing; `NALLOC_ERR_INVALID` for a kind neither omitted nor given a capacity.
    pub fn nalloc_ctx_create(
        config: *const nalloc_ctx_config,
        out: *mut *mut nalloc_ctx,
    ) -> nalloc_status;
    /// The context's arena of `kind`; NULL for a bad kind or one the config omitted.
    pub fn nalloc_ctx_arena(ctx: *mut nalloc_ctx, kind: nalloc_kind) -> *mut nalloc_arena;
    /// Destroy the three arenas (the witness arena is wiped first) and the context.
    pub fn nalloc_ctx_destroy(ctx: *mut nalloc_ctx) -> nalloc_status;
    /// `nalloc_ctx_destroy` for arenas that may still have malloc-family blocks alive: each is
    /// destroyed as `nalloc_arena_destroy_deferred` does (now, or by the free of its last block).
    pub fn nalloc_ctx_destroy_deferred(ctx: *mut nalloc_ctx) -> nalloc_status;

    /// Fill `config` for a dry run of a context whose arenas will live in `memory`.
    pub fn nalloc_ctx_config_init_dry_run(
        config: *mut nalloc_ctx_config,
        memory: nalloc_memory,
        reserve: usize,
    );
    /// Record the peaks of `ctx`'s arenas, and of the lanes split from them, in the first
    /// `profile_size` bytes of `*profile` (at least the 1.0 struct's size).
    pub fn nalloc_ctx_profile_sized(
        ctx: *mut nalloc_ctx,
        profile: *mut nalloc_profile,
        profile_size: usize,
    ) -> nalloc_status;
    /// Fill `config` as `nalloc_ctx_config_init` does, each capacity sized from `profile`.
    pub fn nalloc_ctx_config_from_profile(
        config: *mut nalloc_ctx_config,
        memory: nalloc_memory,
        profile: *const nalloc_profile,
        headroom: f64,
    ) -> nalloc_status;
    /// The capacity to give each lane split from the arena of `kind` in a sized context.
    pub fn nalloc_profile_lane_capacity(
        profile: *const nalloc_profile,
        kind: nalloc_kind,
        headroom: f64,
    ) -> usize;
}

// ---- The header's inline wrappers ---------------------------------------------------------------
//
// nalloc.h defines these as `static inline` functions that pass the caller's sizeof to the
// exported `_sized` call, so the library has no symbol for them. They are the same here, with
// this crate's size of the struct (which tests/layout.rs holds equal to the header's).

/// Fill `*stats` with a snapshot of the arena (`nalloc_arena_stats_sized` with
/// `size_of::<nalloc_stats>()`).
///
/// # Safety
/// As for `nalloc_arena_stats_sized`: `arena` is an arena handle, `stats` is writable.
#[inline]
pub unsafe fn nalloc_arena_stats(
    arena: *const nalloc_arena,
    stats: *mut nalloc_stats,
) -> nalloc_status {
    nalloc_arena_stats_sized(arena, stats, core::mem::size_of::<nalloc_stats>())
}

/// `nalloc_arena_stats` with the kernel's resident and huge-page figures
/// (`nalloc_arena_stats_resident_sized` with `size_of::<nalloc_stats>()`).
///
/// # Safety
/// As for `nalloc_arena_stats`.
#[inline]
pub unsafe fn nalloc_arena_stats_resident(
    arena: *const nalloc_arena,
    stats: *mut nalloc_stats,
) -> nalloc_status {
    nalloc_arena_stats_resident_sized(arena, stats, core::mem::size_of::<nalloc_stats>())
}

/// Record the peaks of `ctx`'s arenas, and of the lanes split from them, in `*profile`
/// (`nalloc_ctx_profile_sized` with `size_of::<nalloc_profile>()`).
///
/// # Safety
/// As for `nalloc_ctx_profile_sized`: `ctx` is a context handle, `profile` is writable.
#[inline]
pub unsafe fn nalloc_ctx_profile(
    ctx: *mut nalloc_ctx,
    profile: *mut nalloc_profile,
) -> nalloc_status {
    nalloc_ctx_profile_sized(ctx, profile, core::mem::size_of::<nalloc_profile>())
}

// ---- CUDA (nalloc/cuda.h) -----------------------------------------------------------------------

#[cfg(feature = "cuda")]
pub use cuda::*;

/// The CUDA host API, `nalloc/cuda.h` (feature `cuda`).
#[cfg(feature = "cuda")]
mod cuda {
    use super::*;

    /// The CUDA runtime's stream (`struct CUstream_st`), opaque.
    #[repr(C)]
    pub struct CUstream_st {
        _data: [u8; 0],
        _marker: PhantomData<(*mut u8, PhantomPinned)>,
    }
    /// `cudaStream_t`. Null is the legacy default stream.
    pub type cudaStream_t = *mut CUstream_st;
    /// `cudaStreamPerThread`: the per-thread default stream's handle.
    #[allow(non_upper_case_globals)]
    pub const cudaStreamPerThread: cudaStream_t = 0x2 as cudaStream_t;
    /// `cudaError_t`.
    pub type cudaError_t = c_int;

    /// `nalloc_window_state`: the device-side bookkeeping of a window.
    #[repr(C)]
    #[derive(Debug, Clone, Copy)]
    pub struct nalloc_window_state {
        /// Bytes requested so far, each request rounded up to the granule.
        pub used: usize,
        /// Non-zero once any request was refused, until a reset.
        pub overflow: usize,
    }

    /// `nalloc_window`: a slice of a device arena that kernels allocate from; passed by value.
    #[repr(C)]
    #[derive(Debug, Clone, Copy)]
    pub struct nalloc_window {
        /// Device address of the first byte.
        pub base: *mut c_void,
        /// Bytes; at most `NALLOC_WINDOW_MAX_CAPACITY`.
        pub capacity: usize,
        /// Bytes, power of two, 16 to 4096.
        pub granule: usize,
        /// Device address of the counter and the overflow flag.
        pub state: *mut nalloc_window_state,
        /// The CUDA device the window's memory is on.
        pub device: c_int,
        /// Zero; keeps the layout free of compiler padding.
        pub unused: c_int,
    }

    /// `NALLOC_WINDOW_GRANULE`: `nalloc_window_create`'s granule, in bytes.
    pub const NALLOC_WINDOW_GRANULE: usize = 16;
    /// `NALLOC_WINDOW_MAX_GRANULE`, in bytes.
    pub const NALLOC_WINDOW_MAX_GRANULE: usize = 4096;
    /// `NALLOC_WINDOW_MAX_CAPACITY`: 1 TiB.
    pub const NALLOC_WINDOW_MAX_CAPACITY: usize = 1 << 40;

    extern "C" {
        /// `NALLOC_OK` when a CUDA driver and at least one device are usable.
        pub fn nalloc_cuda_available() -> nalloc_status;
        /// The text of the last CUDA error nalloc saw on this thread, or "".
        pub fn nalloc_cuda_error_string() -> *const c_char;
        /// `nalloc_wipe` in stream order.
        pub fn nalloc_wipe_async(arena: *mut nalloc_arena, stream: cudaStream_t) -> nalloc_status;
        /// Carve a window of `capacity` bytes out of a device arena.
        pub fn nalloc_window_create(
            device_arena: *mut nalloc_arena,
            capacity: usize,
            out: *mut nalloc_window,
        ) -> nalloc_status;
        /// `nalloc_window_create` with blocks rounded to and aligned at `granule` bytes.
        pub fn nalloc_window_create_aligned(
            device_arena: *mut nalloc_arena,
            capacity: usize,
            granule: usize,
            out: *mut nalloc_window,
        ) -> nalloc_status;
        /// Empty the window and clear its overflow flag, in stream order.
        pub fn nalloc_window_reset(
            window: *const nalloc_window,
            stream: cudaStream_t,
        ) -> nalloc_status;
        /// Read the window's state after the work queued on `stream` so far.
        pub fn nalloc_window_usage(
            window: *const nalloc_window,
            stream: cudaStream_t,
            used: *mut usize,
            overflowed: *mut bool,
        ) -> nalloc_status;
        /// Copy `size` bytes between a pinned and a device arena with cudaMemcpyAsync.
        pub fn nalloc_stage_async(
            dst_arena: *const nalloc_arena,
            dst: *mut c_void,
            src_arena: *const nalloc_arena,
            src: *const c_void,
            size: usize,
            stream: cudaStream_t,
        ) -> nalloc_status;

        /// The CUDA runtime's `cudaStreamSynchronize` (not nalloc's: the safe crate's synchronous
        /// staging copies wait with it).
        pub fn cudaStreamSynchronize(stream: cudaStream_t) -> cudaError_t;
        /// The CUDA runtime's `cudaGetErrorString`.
        pub fn cudaGetErrorString(error: cudaError_t) -> *const c_char;
    }
}
