//! The global allocator: every `Vec`, `Box`, `String` and `HashMap` a thread makes inside a route
//! comes from an arena.
//!
//! A Rust prover allocates through the global allocator, in its own code and in every crate it
//! uses, so arenas can only serve it from there. [`Global`] is that allocator, and [`route`] says
//! which arena it serves a thread from: inside `route(&arena, || ...)` every allocation the thread
//! makes comes from `arena`; outside any route, and when the arena is full, they go to a fallback
//! allocator (`System` by default, or any other `GlobalAlloc`). The C library does the work: a
//! route is its per-thread route stack (`nalloc_route_push`), a routed block is a malloc-family
//! block (`nalloc_routed_alloc`) with a 32-byte header that lets it be freed alone, in any order,
//! from any thread, at any time (`nalloc_free_if_owned`), and an arena counts its live blocks and
//! refuses to reset, wipe or release its memory while any is alive (docs/routing.md).
//!
//! Most programs that install a global allocator never route, and every allocation they make
//! pays for the check, so the unrouted path stays in Rust: one thread-local load for the
//! allocation, one static load for the free, on top of the fallback:
//!
//!  - `route` keeps a Rust thread-local copy of what it pushed (is there an arena, and its
//!    alignment policy). An allocation outside any route reads one byte of it and goes straight
//!    to the fallback, without calling C. The price: a route pushed by C code itself
//!    (`NALLOC_ROUTE_SCOPE`, `nalloc_route_set_default`) does not route Rust allocations unless a
//!    Rust `route` is active on the thread too.
//!  - A free must tell arena blocks from fallback blocks, wherever it runs. Every routed block
//!    sets a bit for its gibibyte of address space in a static bitmap (once per gibibyte: a load
//!    afterwards); a free whose gibibyte has no bit is a fallback block and skips C. The bit is
//!    set before the allocation returns, so any thread the block reaches sees it (it reaches
//!    that thread through synchronization that orders the bit's store before the free's load).
//!    Bits are never cleared: a fallback block in a gibibyte where a routed block once was costs
//!    one call into C (`nalloc_owner`'s table, a few nanoseconds) to learn that it is not one.
//!
//! Safety rests on C's accounting. Safe code can reach an arena block only through a value that
//! owns it (a `Vec`...), and the arena counts every block not freed yet: `reset` and `wipe`
//! refuse while the count is not zero, and dropping the arena destroys it only once it is zero
//! (`nalloc_arena_destroy_deferred`: the free of the last block destroys it, wiping a witness
//! arena first). So no live block's memory is ever handed out again or unmapped. Lanes are
//! never routed into: their parent's destroy would take their memory with it.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::ptr;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Status};
use crate::handle::Policy;
use crate::{sys, Arena};

// ---- What this thread routes to --------------------------------------------------------------

/// The innermost route `route` (or `unrouted`) pushed on this thread, as the allocator needs it.
#[derive(Clone, Copy)]
struct Target {
    /// An arena (false: no route, or `unrouted`: the fallback).
    routed: bool,
    /// The arena's alignment policy (routed only).
    policy: Policy,
}

impl Target {
    const NONE: Target = Target {
        routed: false,
        policy: Policy {
            default_align: 1,
            large_threshold: usize::MAX,
            large_align: 1,
        },
    };
}

thread_local! {
    // Const-initialized and without destructors: plain thread-locals, readable from any
    // thread-local destructor and at exit, and never allocating. Two of them, so that the
    // unrouted path loads one byte.
    /// `Target::routed` of the innermost route.
    static IS_ROUTED: Cell<bool> = const { Cell::new(false) };
    /// `Target::policy` of the innermost route.
    static POLICY: Cell<Policy> = const { Cell::new(Target::NONE.policy) };
}

fn target() -> Target {
    Target {
        routed: IS_ROUTED.with(Cell::get),
        policy: POLICY.with(Cell::get),
    }
}

fn set_target(t: Target) {
    IS_ROUTED.with(|r| r.set(t.routed));
    POLICY.with(|p| p.set(t.policy));
}

/// Pops what `push` pushed, on every way out of a route (a panic included).
struct RouteGuard {
    previous: Target,
    scope: sys::nalloc_route_scope,
}

impl Drop for RouteGuard {
    fn drop(&mut self) {
        set_target(self.previous);
        // SAFETY: ends the scope this guard's push began: C pops back to the depth below it,
        // also routes that C code called inside left pushed. Guards end in the reverse order of
        // their pushes, as they are dropped that way.
        unsafe { sys::nalloc_route_scope_end(&self.scope) }
    }
}

/// Push a route to `arena` (None: to the fallback allocator) on this thread.
fn push(arena: Option<&Arena>) -> Result<RouteGuard, Error> {
    let (raw, target) = match arena {
        Some(a) => {
            if !a.h.routable() {
                return Err(Error::new(
                    Status::Invalid,
                    "a lane cannot be routed into: its parent's destroy would take its \
                     memory from under routed blocks (route into the parent instead)",
                ));
            }
            let target = Target {
                routed: true,
                policy: a.h.policy,
            };
            (a.as_raw(), target)
        }
        None => (ptr::null_mut(), Target::NONE),
    };
    // SAFETY: the arena is live (borrowed for as long as the route is pushed) or NULL.
    let scope = unsafe { sys::nalloc_route_scope_begin(raw) };
    if scope == 0 {
        // The refused push recorded why ("nalloc_route_push: 16 routes are pushed already...").
        return Err(Error::last());
    }
    let previous = self::target();
    set_target(target);
    Ok(RouteGuard { previous, scope })
}

/// Run `f` with every heap allocation this thread makes inside it served from `arena`, when
/// [`Global`] is the global allocator: `Vec`, `Box`, `String`, `HashMap`, anything in std or in
/// any crate. Returns what `f` returns.
///
/// Routes nest, and the innermost wins ([`unrouted`] steps out to the fallback allocator for a
/// stretch). They are per thread: threads `f` spawns are not routed (route them in their own
/// closures; any number of threads may route into one arena at once). The route ends when `f`
/// returns or panics.
///
/// What `f` allocates may outlive the route: a routed `Vec` can be returned, stored, sent to
/// another thread and dropped there, after the route has ended or the arena has been dropped.
/// Its memory stays valid until then: while routed blocks are alive the arena refuses
/// [`reset`](Arena::reset) and [`wipe`](Arena::wipe) (and rollbacks, so a
/// [`phase`](Arena::phase) that routed blocks outlive keeps them until the next reset), and a
/// dropped arena is destroyed by the free of its last routed block.
///
/// Panics when the route cannot be pushed: `arena` is a [lane](crate::Lane), or 16 routes are
/// pushed on this thread already ([`try_route`] returns the error instead). Without [`Global`]
/// as the global allocator a route changes nothing.
///
/// ```
/// #[global_allocator]
/// static ALLOC: nalloc::Global = nalloc::Global::new();
///
/// fn main() -> Result<(), nalloc::Error> {
///     let mut scratch = nalloc::Arena::new(nalloc::Kind::Scratch, 1 << 20)?;
///     let v: Vec<u64> = nalloc::route(&scratch, || (0..1000).collect());
///     assert!(scratch.contains(v.as_ptr().cast()));
///     assert!(scratch.reset().is_err()); // `v` lives in it
///     drop(v);
///     scratch.reset()?;
///     Ok(())
/// }
/// ```
#[track_caller]
pub fn route<R>(arena: &Arena, f: impl FnOnce() -> R) -> R {
    let _route = match push(Some(arena)) {
        Ok(guard) => guard,
        Err(e) => panic!("nalloc::route: {e}"),
    };
    f()
}

/// [`route`], returning the error instead of panicking when the route cannot be pushed (`f` is
/// not called then): [`Status::Invalid`] for a lane, [`Status::NoMem`] when 16 routes are pushed
/// on this thread already.
///
/// ```
/// use nalloc::{Arena, Kind, Status};
///
/// let scratch = Arena::new(Kind::Scratch, 1 << 20)?;
/// assert_eq!(nalloc::try_route(&scratch, || 42)?, 42);
///
/// let mut parent = Arena::new(Kind::Scratch, 1 << 20)?;
/// let lanes = parent.split(2, 0)?;
/// let err = nalloc::try_route(&lanes[0], || ()).unwrap_err();
/// assert_eq!(err.status(), Status::Invalid);
/// # Ok::<(), nalloc::Error>(())
/// ```
pub fn try_route<R>(arena: &Arena, f: impl FnOnce() -> R) -> Result<R, Error> {
    let _route = push(Some(arena))?;
    Ok(f())
}

/// Run `f` with this thread's allocations served by the fallback allocator, inside a route: for
/// what must outlive the arena's next reset (a cache, a log line kept for later). Nests like
/// [`route`]; panics only when 16 routes are pushed on this thread already.
///
/// ```
/// #[global_allocator]
/// static ALLOC: nalloc::Global = nalloc::Global::new();
///
/// fn main() -> Result<(), nalloc::Error> {
///     let mut scratch = nalloc::Arena::new(nalloc::Kind::Scratch, 1 << 20)?;
///     let kept = nalloc::route(&scratch, || {
///         let tmp = vec![1u8; 100]; // from the arena
///         assert!(scratch.contains(tmp.as_ptr()));
///         nalloc::unrouted(|| String::from("kept")) // from the fallback allocator
///     });
///     scratch.reset()?; // nothing of the arena is alive
///     assert_eq!(kept, "kept");
///     Ok(())
/// }
/// ```
#[track_caller]
pub fn unrouted<R>(f: impl FnOnce() -> R) -> R {
    let _route = match push(None) {
        Ok(guard) => guard,
        Err(e) => panic!("nalloc::unrouted: {e}"),
    };
    f()
}

/// Whether this thread's allocations go to an arena now: inside a [`route`] and not inside an
/// [`unrouted`] nested in it.
///
/// ```
/// let arena = nalloc::Arena::new(nalloc::Kind::Scratch, 1 << 20)?;
/// assert!(!nalloc::is_routed());
/// nalloc::route(&arena, || {
///     assert!(nalloc::is_routed());
///     nalloc::unrouted(|| assert!(!nalloc::is_routed()));
/// });
/// # Ok::<(), nalloc::Error>(())
/// ```
pub fn is_routed() -> bool {
    IS_ROUTED.with(Cell::get)
}

// ---- Which addresses may hold routed blocks --------------------------------------------------

const GIB_SHIFT: u32 = 30;
const ADDRESS_BITS: u32 = 47; // user space with 4-level page tables (x86-64, arm64)
const WORDS: usize = 1 << (ADDRESS_BITS - GIB_SHIFT - 6);

/// One bit per GiB of address space: a routed block once started there.
static ROUTED_GIB: [AtomicU64; WORDS] = [const { AtomicU64::new(0) }; WORDS];

/// Might `p` be a routed block? False is certain; true means "ask C".
#[inline(always)]
fn maybe_routed(p: *mut u8) -> bool {
    let gib = p as usize >> GIB_SHIFT;
    match ROUTED_GIB.get(gib >> 6) {
        Some(word) => word.load(Ordering::Relaxed) & (1 << (gib & 63)) != 0,
        None => true, // beyond the bitmap (5-level page tables): C knows
    }
}

/// Record that a routed block starts at `p` (before it is handed out).
#[inline(always)]
fn note_routed(p: *mut u8) {
    let gib = p as usize >> GIB_SHIFT;
    if let Some(word) = ROUTED_GIB.get(gib >> 6) {
        let bit = 1 << (gib & 63);
        if word.load(Ordering::Relaxed) & bit == 0 {
            word.fetch_or(bit, Ordering::Relaxed);
        }
    }
}

// ---- The allocator ---------------------------------------------------------------------------

/// The global allocator: inside a [`route`], allocations come from the route's arena; outside
/// any route, and when the arena is full, from a fallback allocator, `A` (`System` unless you
/// choose another).
///
/// ```
/// #[global_allocator]
/// static ALLOC: nalloc::Global = nalloc::Global::new();
///
/// fn main() -> Result<(), nalloc::Error> {
///     let witness = nalloc::Arena::new(nalloc::Kind::Witness, 1 << 20)?;
///     let row = nalloc::route(&witness, || vec![7u64; 1000]);
///     assert!(witness.contains(row.as_ptr().cast()));
///     let other = vec![7u64; 1000]; // no route: the fallback (System)
///     assert!(!witness.contains(other.as_ptr().cast()));
///     Ok(())
/// }
/// ```
///
/// Any `GlobalAlloc` can be the fallback, so a prover that uses mimalloc or jemalloc keeps it
/// for everything it does not route:
///
/// ```
/// use std::alloc::{GlobalAlloc, Layout, System};
///
/// struct MyAllocator; // mimalloc::MiMalloc, tikv_jemallocator::Jemalloc...
/// unsafe impl GlobalAlloc for MyAllocator {
///     unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
///         System.alloc(layout)
///     }
///     unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
///         System.dealloc(ptr, layout)
///     }
/// }
///
/// #[global_allocator]
/// static ALLOC: nalloc::Global<MyAllocator> = nalloc::Global::with_fallback(MyAllocator);
///
/// fn main() {
///     let v = vec![1u8; 10];
///     assert_eq!(v.len(), 10);
/// }
/// ```
///
/// What each call does:
///
/// - `alloc` and `alloc_zeroed`: inside a route, a block from the arena (C's
///   `nalloc_routed_alloc`), aligned to the larger of the `Layout`'s alignment and the arena's
///   policy for its size (64 bytes by default, 4 KiB from 1 MiB up), so routed vectors are laid
///   out as the arena's own. A full arena is no failure: the fallback serves the request, and the
///   arena counts it in [`Stats::fallbacks`](crate::Stats::fallbacks). Outside routes, the
///   fallback.
/// - `dealloc`: a routed block goes back to its arena, whatever thread frees it and whenever
///   (after the route ended, after the arena was dropped); frees in any order reclaim memory.
///   Everything else goes to the fallback.
/// - `realloc`: a routed block grows or shrinks in place when it is its thread's newest block
///   (a growing `Vec` that nothing was allocated after), or else moves to a new block (from
///   the current route, or the fallback outside routes). A shrink that cannot happen in place
///   keeps the block as it is. A fallback block stays with the fallback (its `realloc`).
///
/// Allocations made inside a route that C code pushed (`NALLOC_ROUTE_SCOPE`,
/// `nalloc_route_set_default`, the override library's `NALLOC_ROUTE`) are served by the
/// fallback unless a Rust [`route`] is active on the thread: the unrouted path never calls C.
pub struct Global<A = System> {
    fallback: A,
}

impl Global<System> {
    /// The allocator with `System` as its fallback.
    ///
    /// ```
    /// #[global_allocator]
    /// static ALLOC: nalloc::Global = nalloc::Global::new();
    ///
    /// fn main() {
    ///     let s = String::from("unrouted: from System");
    ///     assert!(!s.is_empty());
    /// }
    /// ```
    pub const fn new() -> Global<System> {
        Global { fallback: System }
    }
}

impl Default for Global<System> {
    /// [`Global::new`].
    ///
    /// ```
    /// let _allocator: nalloc::Global = Default::default();
    /// ```
    fn default() -> Global<System> {
        Global::new()
    }
}

impl<A> Global<A> {
    /// The allocator with `fallback` serving everything that is not routed.
    ///
    /// ```
    /// use std::alloc::System;
    ///
    /// #[global_allocator]
    /// static ALLOC: nalloc::Global<System> = nalloc::Global::with_fallback(System);
    ///
    /// fn main() {
    ///     assert_eq!(vec![1, 2, 3].iter().sum::<i32>(), 6);
    /// }
    /// ```
    pub const fn with_fallback(fallback: A) -> Global<A> {
        Global { fallback }
    }

    /// The fallback allocator.
    ///
    /// ```
    /// let allocator = nalloc::Global::new();
    /// let _system: &std::alloc::System = allocator.fallback();
    /// ```
    pub fn fallback(&self) -> &A {
        &self.fallback
    }
}

impl<A> std::fmt::Debug for Global<A> {
    /// ```
    /// assert_eq!(format!("{:?}", nalloc::Global::new()), "Global { .. }");
    /// ```
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Global").finish_non_exhaustive()
    }
}

/// A block from the current route's arena, or null (no room: the arena counted a fallback).
#[inline(never)]
unsafe fn routed_alloc(layout: Layout, zeroed: bool) -> *mut u8 {
    // The larger of the layout's alignment and the arena's policy for the size. C applies the
    // policy itself for 0, and raises everything to 16, so up to 16 there is nothing to read.
    let align = if layout.align() <= 16 {
        0
    } else {
        let policy = POLICY.with(Cell::get);
        layout.align().max(policy.align_for(layout.size()))
    };
    let p: *mut u8 = if zeroed {
        sys::nalloc_routed_alloc_zeroed(layout.size(), align).cast()
    } else {
        sys::nalloc_routed_alloc(layout.size(), align).cast()
    };
    if !p.is_null() {
        note_routed(p);
    }
    p
}

// SAFETY: every block is valid for its layout: C hands out blocks of at least `size` bytes at
// least at `align` (it raises small alignments to 16), disjoint from every other live block, and
// the fallback is a GlobalAlloc. Each block goes back to the allocator that made it: a pointer
// is freed into an arena only if C finds a live block of a live (or retired, not yet destroyed)
// arena there, and arena memory is never anything else's while it is mapped; every other
// pointer goes to the fallback, which made it. Nothing here allocates through the global
// allocator, so nothing re-enters it.
unsafe impl<A: GlobalAlloc> GlobalAlloc for Global<A> {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if IS_ROUTED.with(Cell::get) {
            let p = routed_alloc(layout, false);
            if !p.is_null() {
                return p;
            }
        }
        self.fallback.alloc(layout)
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if IS_ROUTED.with(Cell::get) {
            let p = routed_alloc(layout, true);
            if !p.is_null() {
                return p;
            }
        }
        self.fallback.alloc_zeroed(layout)
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if maybe_routed(ptr) && sys::nalloc_free_if_owned(ptr.cast()) {
            return;
        }
        self.fallback.dealloc(ptr, layout)
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if maybe_routed(ptr) && !sys::nalloc_owner(ptr.cast()).is_null() {
            return self.realloc_routed(ptr, layout, new_size);
        }
        self.fallback.realloc(ptr, layout, new_size)
    }
}

impl<A: GlobalAlloc> Global<A> {
    /// realloc of a block inside an arena.
    #[inline(never)]
    unsafe fn realloc_routed(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if sys::nalloc_resize_in_place(ptr.cast(), new_size) == sys::NALLOC_OK {
            return ptr;
        }
        if new_size <= layout.size() {
            // The block holds the new size already; its free does not need its size.
            return ptr;
        }
        // SAFETY: the caller (GlobalAlloc::realloc) guarantees the new layout is valid.
        let new_layout = Layout::from_size_align_unchecked(new_size, layout.align());
        let q = self.alloc(new_layout);
        if !q.is_null() {
            ptr::copy_nonoverlapping(ptr, q, layout.size());
            self.dealloc(ptr, layout);
        }
        q
    }
}
