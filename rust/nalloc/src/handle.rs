//! The one owner of a C arena handle, shared by host and device arenas.
//!
//! A `Handle` holds the `nalloc_arena *` and decides what happens to it on drop: an arena of its
//! own (a standalone arena or a lane) is destroyed; an arena of a context is not (C refuses, the
//! context destroys its arenas), it holds a reference count on the context instead, and the last
//! of the context and its arenas to go destroys the context. That is what lets a context hand
//! out `&mut Arena`: even an arena swapped out of its context with `std::mem::swap` keeps the
//! context, and so its own memory, alive.
//!
//! Dropping an arena of its own never takes memory away from under a routed block that is still
//! alive (the global allocator's, `route`): it is destroyed by the free of its last such block.
//!
//! It also caches what never changes after creation: the arena's base and capacity (for
//! `contains`, without a call into C) and its alignment policy (for typed allocations, which ask
//! for the larger of the policy and the type's alignment).

use std::ptr::NonNull;
use std::sync::Arc;

use crate::error::Error;
use crate::{sys, Kind, Memory};

/// A context's C handle; the last owner destroys it.
pub(crate) struct CtxHandle(pub(crate) NonNull<sys::nalloc_ctx>);

// SAFETY: the C context may be used and destroyed from any thread; destroy runs once, from the
// last owner's drop, when no arena of the context is in use any more.
unsafe impl Send for CtxHandle {}
unsafe impl Sync for CtxHandle {}

impl Drop for CtxHandle {
    fn drop(&mut self) {
        // SAFETY: the handle is live and nothing else will use it. An arena with routed blocks
        // still alive is destroyed (its witness memory wiped) by the free of the last one, as a
        // dropped `Arena` is. A failure (a device wipe that could not run, a kernel without
        // membarrier(2) while blocks live) cannot be reported from a drop: the context is then
        // released as far as C could, or kept whole, which is safe for the live blocks.
        unsafe {
            sys::nalloc_ctx_destroy_deferred(self.0.as_ptr());
        }
    }
}

pub(crate) enum Owner {
    /// Destroyed with the handle, when its last routed block is freed (at once if none is alive).
    Own,
    /// A lane: destroyed with the handle. Never routed into (`route` refuses lanes): the parent's
    /// destroy would take a lane's memory away from under its routed blocks.
    Lane,
    /// Belongs to a context, kept alive by it.
    Context(#[allow(dead_code)] Arc<CtxHandle>),
}

/// Alignment policy of an arena, from its configuration.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Policy {
    pub default_align: usize,
    pub large_threshold: usize,
    pub large_align: usize,
}

impl Policy {
    pub(crate) fn of(config: &sys::nalloc_arena_config) -> Policy {
        Policy {
            default_align: config.default_align,
            large_threshold: config.large_threshold,
            large_align: config.large_align,
        }
    }

    /// The alignment the arena promises a block of `size` bytes.
    pub(crate) fn align_for(&self, size: usize) -> usize {
        if size >= self.large_threshold {
            self.large_align
        } else {
            self.default_align
        }
    }
}

pub(crate) struct Handle {
    raw: NonNull<sys::nalloc_arena>,
    owner: Owner,
    pub(crate) base: usize,
    pub(crate) capacity: usize,
    pub(crate) kind: Kind,
    pub(crate) memory: Memory,
    pub(crate) policy: Policy,
}

// SAFETY: the C arena's allocation, mark, statistics and ownership calls may run on any number of
// threads at once (nalloc.h, "Thread safety"); every call that is a phase boundary (rollback,
// reset, wipe, split, destroy) goes through `&mut Handle` or drop, so never concurrently with
// anything else on the same arena.
unsafe impl Send for Handle {}
unsafe impl Sync for Handle {}

impl Handle {
    /// Take ownership of a live arena.
    ///
    /// # Safety
    /// `raw` is a live arena nothing else will destroy (unless `owner` is a context that does).
    pub(crate) unsafe fn new(
        raw: NonNull<sys::nalloc_arena>,
        owner: Owner,
        policy: Policy,
    ) -> Handle {
        let mut handle = Handle {
            raw,
            owner,
            base: 0,
            capacity: 0,
            kind: Kind::Poly,
            memory: Memory::Host,
            policy,
        };
        if let Ok(s) = handle.raw_stats() {
            handle.base = s.base;
            handle.capacity = s.capacity;
            handle.kind = Kind::from_raw(s.kind);
            handle.memory = Memory::from_raw(s.memory);
        }
        handle
    }

    pub(crate) fn as_ptr(&self) -> *mut sys::nalloc_arena {
        self.raw.as_ptr()
    }

    pub(crate) fn raw_stats(&self) -> Result<sys::nalloc_stats, Error> {
        self.stats_with(sys::nalloc_arena_stats_sized)
    }

    /// `raw_stats` with the kernel's resident and huge-page figures (reads /proc/self/smaps).
    pub(crate) fn raw_stats_resident(&self) -> Result<sys::nalloc_stats, Error> {
        self.stats_with(sys::nalloc_arena_stats_resident_sized)
    }

    fn stats_with(
        &self,
        call: unsafe extern "C" fn(
            *const sys::nalloc_arena,
            *mut sys::nalloc_stats,
            usize,
        ) -> sys::nalloc_status,
    ) -> Result<sys::nalloc_stats, Error> {
        // Zeroed, so that fields a library older than these bindings does not fill read as 0
        // (it writes the smaller of the two struct sizes: struct_size says how many bytes).
        let mut stats = std::mem::MaybeUninit::<sys::nalloc_stats>::zeroed();
        let size = std::mem::size_of::<sys::nalloc_stats>();
        // SAFETY: the arena is live; stats is writable for `size` bytes. Statistics may be read
        // while other threads allocate. Every bit pattern C may leave is a valid nalloc_stats:
        // zeros, or what C wrote (its bools are 0 or 1).
        unsafe {
            Error::check(call(self.as_ptr(), stats.as_mut_ptr(), size))?;
            Ok(stats.assume_init())
        }
    }

    /// `size` bytes aligned to `align` (a power of two) and to the policy; size > 0.
    pub(crate) fn alloc_bytes(&self, size: usize, align: usize) -> Result<NonNull<u8>, Error> {
        let align = align.max(self.policy.align_for(size));
        // SAFETY: the arena is live; C checks every argument.
        let p = unsafe { sys::nalloc_alloc_aligned(self.as_ptr(), size, align) };
        NonNull::new(p.cast()).ok_or_else(Error::last)
    }

    /// `count * size` zeroed bytes aligned to `align` and to the policy; count * size > 0.
    pub(crate) fn alloc_zeroed_bytes(
        &self,
        count: usize,
        size: usize,
        align: usize,
    ) -> Result<NonNull<u8>, Error> {
        let total = count.saturating_mul(size);
        let align = align.max(self.policy.align_for(total));
        // SAFETY: the arena is live; C checks every argument, the product's overflow included.
        let p = unsafe { sys::nalloc_alloc_zeroed(self.as_ptr(), count, size, align) };
        NonNull::new(p.cast()).ok_or_else(Error::last)
    }

    pub(crate) fn mark(&self) -> sys::nalloc_mark {
        // SAFETY: the arena is live; taking a mark is safe from any thread.
        unsafe { sys::nalloc_mark_get(self.as_ptr()) }
    }

    pub(crate) fn rollback(&mut self, mark: sys::nalloc_mark) -> Result<(), Error> {
        // SAFETY: exclusive access: no other thread uses the arena (a phase boundary).
        Error::check(unsafe { sys::nalloc_rollback(self.as_ptr(), mark) })
    }

    pub(crate) fn reset(&mut self) -> Result<(), Error> {
        // SAFETY: as for rollback. C refuses while routed blocks are alive.
        Error::check(unsafe { sys::nalloc_reset(self.as_ptr()) })
            .map_err(|e| self.refusal("reset", e))
    }

    pub(crate) fn wipe(&mut self) -> Result<(), Error> {
        // SAFETY: as for rollback. C refuses while routed blocks are alive.
        Error::check(unsafe { sys::nalloc_wipe(self.as_ptr()) })
            .map_err(|e| self.refusal("wipe", e))
    }

    /// # Safety
    /// No routed block of the arena is used or freed afterwards.
    pub(crate) unsafe fn reset_unchecked(&mut self) -> Result<(), Error> {
        Error::check(sys::nalloc_reset_unchecked(self.as_ptr()))
    }

    /// # Safety
    /// As for reset_unchecked.
    pub(crate) unsafe fn wipe_unchecked(&mut self) -> Result<(), Error> {
        Error::check(sys::nalloc_wipe_unchecked(self.as_ptr()))
    }

    /// C says only "stale mark, wrong arena, destroyed object or not the last block" when a
    /// reset or wipe is refused; when routed blocks are what holds the memory, say so.
    fn refusal(&self, what: &str, err: Error) -> Error {
        if err.status() != crate::Status::State {
            return err;
        }
        match self.raw_stats() {
            Ok(s) if s.live_blocks > 0 => Error::new(
                crate::Status::State,
                format!(
                    "{what} refused: {} routed block{} of this arena {} still alive (drop \
                     them first; {what}_unchecked forgets them)",
                    s.live_blocks,
                    if s.live_blocks == 1 { "" } else { "s" },
                    if s.live_blocks == 1 { "is" } else { "are" },
                ),
            ),
            _ => err,
        }
    }

    /// Whether `route` may send allocations here: host memory, not a lane.
    pub(crate) fn routable(&self) -> bool {
        !matches!(self.owner, Owner::Lane) && self.memory != Memory::Device
    }

    pub(crate) fn contains(&self, addr: usize) -> bool {
        addr >= self.base && addr - self.base < self.capacity
    }

    pub(crate) fn print_stats(&self) -> Result<(), Error> {
        // SAFETY: the arena is live; a NULL stream is stderr.
        Error::check(unsafe { sys::nalloc_arena_print_stats(self.as_ptr(), std::ptr::null_mut()) })
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        // SAFETY: the arena is live and owned; nothing borrows it any more (a route borrows the
        // arena for as long as it runs). A failure (a device wipe that could not run) cannot be
        // reported from a drop; C releases the memory anyway.
        unsafe {
            match self.owner {
                // Routed blocks may outlive the arena (a `Vec` that escaped its route). The
                // plain destroy refuses while any is alive (the only reason it refuses the
                // owner of a live arena); the deferred destroy then waits for the last of them,
                // so none is ever invalidated. Nothing can route into the arena any more, so the
                // count only goes down meanwhile. Without membarrier(2) the deferred destroy is
                // refused too, and the arena is kept: its memory stays mapped until the process
                // ends.
                Owner::Own if self.memory != Memory::Device => {
                    if sys::nalloc_arena_destroy(self.as_ptr()) == sys::NALLOC_ERR_STATE {
                        sys::nalloc_arena_destroy_deferred(self.as_ptr());
                    }
                }
                Owner::Own | Owner::Lane => {
                    sys::nalloc_arena_destroy(self.as_ptr());
                }
                // The context destroys it, or (routed blocks alive) refuses to and keeps it.
                Owner::Context(_) => {}
            }
        }
    }
}

/// A new arena from a configuration (the name pointer must be valid for the call).
pub(crate) fn create(config: &sys::nalloc_arena_config) -> Result<Handle, Error> {
    let mut raw = std::ptr::null_mut();
    // SAFETY: config is a valid configuration struct, raw a valid out pointer.
    Error::check(unsafe { sys::nalloc_arena_create(config, &mut raw) })?;
    let raw = NonNull::new(raw).ok_or_else(|| {
        Error::new(
            crate::Status::State,
            "nalloc_arena_create returned no arena",
        )
    })?;
    // SAFETY: a new arena, ours alone.
    Ok(unsafe { Handle::new(raw, Owner::Own, Policy::of(config)) })
}
