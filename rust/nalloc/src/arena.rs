//! Arenas: allocation that borrows, release that needs the arena to itself.
//!
//! Every allocation method takes `&self` and returns a reference that lives as long as that
//! borrow, so any number of threads may allocate from one arena at once (the C arena's bump is
//! one atomic). Everything that releases memory takes `&mut self` (reset, wipe, rollback, split),
//! or `self` (drop), and the borrow checker grants that only when no reference into the arena is
//! alive; that is the whole safety argument, and it is bumpalo's. Marks do not need their own
//! lifetime: a rollback takes `&mut self` like a reset, and the C library refuses a stale mark
//! (one from before a reset, or from another arena) instead of obeying it.
//!
//! A phase is a mark and a rollback around a closure that receives `&Arena` for a lifetime of
//! its own choosing (a higher-ranked closure), so its result cannot hold a reference into the
//! phase's memory. `phase` itself takes `&mut self`: through a shared reference another thread
//! could allocate after the mark and have its blocks rolled back under it.
//!
//! Every block is aligned to the larger of what its type needs and the arena's policy for its
//! size (64 bytes by default on the host, 4 KiB from 1 MiB up), so typed slices are ready for
//! vectorized and NTT code. Values are never dropped: an arena releases memory, not values.

use std::alloc::Layout;
use std::fmt;
use std::mem::{align_of, size_of};
use std::ptr::NonNull;

use crate::error::{Error, Status};
use crate::handle::{Handle, Owner, Policy};
use crate::lane::{Lane, Lanes};
use crate::{sys, ArenaConfig, Kind, Memory, Stats};

/// Plain old data: a type for which every bit pattern, all zeros included, is a valid value,
/// with no padding bytes and no pointers. Arenas hand out zeroed slices of such types without
/// initializing them one by one (the memory reads as zero already), and staging copies move
/// them to and from a GPU as bytes.
///
/// # Safety
///
/// Implement it only for types for which any sequence of `size_of::<Self>()` initialized bytes
/// is a valid value. It is implemented for the integer and floating-point types and for arrays
/// of `Zeroable` types.
///
/// ```
/// use nalloc::{Arena, Kind, Zeroable};
///
/// #[derive(Clone, Copy)]
/// #[repr(transparent)]
/// struct Goldilocks(u64);
/// // SAFETY: a u64 in a transparent wrapper: every bit pattern is a u64.
/// unsafe impl Zeroable for Goldilocks {}
///
/// let arena = Arena::new(Kind::Poly, 1 << 20)?;
/// let column = arena.alloc_slice_zeroed::<Goldilocks>(1024);
/// assert!(column.iter().all(|x| x.0 == 0));
/// # Ok::<(), nalloc::Error>(())
/// ```
pub unsafe trait Zeroable: Copy + 'static {}

macro_rules! zeroable {
    ($($t:ty),*) => { $(
        // SAFETY: every bit pattern of a primitive integer or float is a value of the type.
        unsafe impl Zeroable for $t {}
    )* };
}
zeroable!(u8, u16, u32, u64, u128, usize, i8, i16, i32, i64, i128, isize, f32, f64);
// SAFETY: an array of plain old data has no padding and is plain old data.
unsafe impl<T: Zeroable, const N: usize> Zeroable for [T; N] {}

/// A position in an arena ([`Arena::mark`]) to roll back to ([`Arena::rollback`]).
///
/// ```
/// use nalloc::{Arena, Kind};
///
/// let mut arena = Arena::new(Kind::Scratch, 1 << 20)?;
/// arena.alloc(1u64);
/// let mark = arena.mark();
/// arena.alloc_slice_copy(&[2u64; 100]);
/// arena.rollback(mark)?; // releases the slice, keeps the first block
/// assert_eq!(arena.stats().allocations, 2);
/// assert_eq!(arena.stats().used, 8);
/// # Ok::<(), nalloc::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mark(pub(crate) sys::nalloc_mark);

impl Mark {
    /// The C mark (`nalloc_mark`).
    ///
    /// ```
    /// let arena = nalloc::Arena::new(nalloc::Kind::Scratch, 4096)?;
    /// let raw = arena.mark().as_raw();
    /// assert_eq!(raw.offset, 0);
    /// # Ok::<(), nalloc::Error>(())
    /// ```
    pub fn as_raw(self) -> sys::nalloc_mark {
        self.0
    }
}

/// An arena in host memory (pageable or pinned): one reservation, blocks handed out by one
/// atomic bump, released all at once.
///
/// `Send + Sync`: any number of threads may allocate from it at once. Dropping it releases its
/// memory; a witness arena (and any arena with
/// [`Flags::WIPE_ON_DESTROY`](crate::Flags::WIPE_ON_DESTROY)) is zeroed first, by the C library.
/// Blocks [routed](crate::route) into it that are still alive keep it: it is released (and
/// wiped) when the last of them is dropped, wherever that happens. (An arena of a [`Context`](crate::Context)
/// goes with its context, and one with routed blocks alive goes with the free of the last.)
///
/// Values allocated in an arena are never dropped: their destructors do not run when the arena
/// is reset, wiped, rolled back or dropped. Allocate plain data in it, or accept the leak of
/// whatever a value owns elsewhere (a `Vec`'s heap buffer), as with bumpalo.
///
/// ```
/// use nalloc::{Arena, Kind};
///
/// let arena = Arena::new(Kind::Scratch, 1 << 20)?;
/// std::thread::scope(|s| {
///     for t in 0..4u64 {
///         let arena = &arena;
///         s.spawn(move || {
///             let v = arena.alloc_slice_fill_with(1000, |i| t * 1000 + i as u64);
///             assert_eq!(v[999], t * 1000 + 999);
///         });
///     }
/// });
/// assert_eq!(arena.stats().allocations, 4);
/// # Ok::<(), nalloc::Error>(())
/// ```
pub struct Arena {
    pub(crate) h: Handle,
}

impl Arena {
    /// A host arena of `capacity` bytes with the defaults of `kind` (for anything else,
    /// [`ArenaConfig`]).
    ///
    /// ```
    /// use nalloc::{Arena, Kind, Status};
    ///
    /// let witness = Arena::new(Kind::Witness, 1 << 20)?;
    /// assert!(witness.stats().wipe_on_destroy);
    /// assert_eq!(Arena::new(Kind::Poly, 0).unwrap_err().status(), Status::Invalid);
    /// # Ok::<(), nalloc::Error>(())
    /// ```
    pub fn new(kind: Kind, capacity: usize) -> Result<Arena, Error> {
        ArenaConfig::new(kind, Memory::Host, capacity).build()
    }

    pub(crate) fn from_handle(h: Handle) -> Arena {
        Arena { h }
    }

    /// What the arena holds.
    ///
    /// ```
    /// let arena = nalloc::Arena::new(nalloc::Kind::Witness, 4096)?;
    /// assert_eq!(arena.kind(), nalloc::Kind::Witness);
    /// # Ok::<(), nalloc::Error>(())
    /// ```
    pub fn kind(&self) -> Kind {
        self.h.kind
    }

    /// Where its memory lives ([`Memory::Host`] or [`Memory::Pinned`]).
    ///
    /// ```
    /// let arena = nalloc::Arena::new(nalloc::Kind::Poly, 4096)?;
    /// assert_eq!(arena.memory(), nalloc::Memory::Host);
    /// # Ok::<(), nalloc::Error>(())
    /// ```
    pub fn memory(&self) -> Memory {
        self.h.memory
    }

    /// Bytes the arena can hand out.
    ///
    /// ```
    /// let arena = nalloc::Arena::new(nalloc::Kind::Poly, 10_000)?;
    /// assert_eq!(arena.capacity(), 10_000);
    /// # Ok::<(), nalloc::Error>(())
    /// ```
    pub fn capacity(&self) -> usize {
        self.h.capacity
    }

    /// The C handle, for calls this crate does not wrap. It stays valid while the arena lives;
    /// the C library's thread-safety rules apply to what is done with it (phase boundaries, such
    /// as `nalloc_reset`, need the arena to be otherwise unused, which `&self` does not ensure).
    ///
    /// ```
    /// let arena = nalloc::Arena::new(nalloc::Kind::Scratch, 4096)?;
    /// let p = unsafe { nalloc::sys::nalloc_alloc(arena.as_raw(), 10) };
    /// assert!(arena.contains(p.cast()));
    /// # Ok::<(), nalloc::Error>(())
    /// ```
    pub fn as_raw(&self) -> *mut sys::nalloc_arena {
        self.h.as_ptr()
    }

    // ---- Allocation ---------------------------------------------------------------------------

    /// Memory for `layout`: aligned to `layout.align()` and to the arena's policy for its size,
    /// not initialized. A zero-sized layout gets a dangling, aligned pointer and takes no room.
    ///
    /// ```
    /// use std::alloc::Layout;
    ///
    /// let arena = nalloc::Arena::new(nalloc::Kind::Scratch, 1 << 20)?;
    /// let p = arena.try_alloc_layout(Layout::from_size_align(100, 4096).unwrap())?;
    /// assert_eq!(p.as_ptr() as usize % 4096, 0);
    /// unsafe { p.as_ptr().write_bytes(0xab, 100) };
    /// # Ok::<(), nalloc::Error>(())
    /// ```
    pub fn try_alloc_layout(&self, layout: Layout) -> Result<NonNull<u8>, Error> {
        if layout.size() == 0 {
            // SAFETY: an alignment is never zero.
            return Ok(unsafe { NonNull::new_unchecked(layout.align() as *mut u8) });
        }
        self.h.alloc_bytes(layout.size(), layout.align())
    }

    /// [`try_alloc_layout`](Self::try_alloc_layout), panicking when the arena cannot serve it.
    ///
    /// ```
    /// use std::alloc::Layout;
    ///
    /// let arena = nalloc::Arena::new(nalloc::Kind::Scratch, 1 << 20)?;
    /// let p = arena.alloc_layout(Layout::new::<[u32; 16]>());
    /// assert!(arena.contains(p.as_ptr()));
    /// # Ok::<(), nalloc::Error>(())
    /// ```
    #[track_caller]
    pub fn alloc_layout(&self, layout: Layout) -> NonNull<u8> {
        match self.try_alloc_layout(layout) {
            Ok(p) => p,
            Err(e) => self.alloc_failed(layout.size(), layout.align(), e),
        }
    }

    /// Move `value` into the arena. Panics when the arena has no room (see
    /// [`try_alloc`](Self::try_alloc)). The value is never dropped.
    ///
    /// ```
    /// let arena = nalloc::Arena::new(nalloc::Kind::Scratch, 4096)?;
    /// let x = arena.alloc([1u64, 2, 3]);
    /// x[1] = 20;
    /// assert_eq!(*x, [1, 20, 3]);
    /// # Ok::<(), nalloc::Error>(())
    /// ```
    #[track_caller]
    #[allow(clippy::mut_from_ref)] // the arena hands out disjoint blocks, as bumpalo does
    pub fn alloc<T>(&self, value: T) -> &mut T {
        let p = self.alloc_layout(Layout::new::<T>()).cast::<T>();
        // SAFETY: p is valid, aligned and unique for a T, and lives while `self` is borrowed.
        unsafe {
            p.as_ptr().write(value);
            &mut *p.as_ptr()
        }
    }

    /// Move `value` into the arena, or say why not (the value is dropped then).
    ///
    /// ```
    /// use nalloc::{Arena, Kind, Status};
    ///
    /// let arena = Arena::new(Kind::Scratch, 4096)?;
    /// assert_eq!(*arena.try_alloc(5u32)?, 5);
    /// assert_eq!(arena.try_alloc([0u8; 10_000]).unwrap_err().status(), Status::NoMem);
    /// # Ok::<(), nalloc::Error>(())
    /// ```
    #[allow(clippy::mut_from_ref)]
    pub fn try_alloc<T>(&self, value: T) -> Result<&mut T, Error> {
        let p = self.try_alloc_layout(Layout::new::<T>())?.cast::<T>();
        // SAFETY: as in alloc.
        unsafe {
            p.as_ptr().write(value);
            Ok(&mut *p.as_ptr())
        }
    }

    /// Allocate room for a `T`, then build it there with `f` (large values need not pass
    /// through the stack). Panics when the arena has no room.
    ///
    /// ```
    /// let arena = nalloc::Arena::new(nalloc::Kind::Scratch, 1 << 20)?;
    /// let table = arena.alloc_with(|| [7u32; 1000]);
    /// assert_eq!(table[999], 7);
    /// # Ok::<(), nalloc::Error>(())
    /// ```
    #[track_caller]
    #[allow(clippy::mut_from_ref)]
    pub fn alloc_with<T, F: FnOnce() -> T>(&self, f: F) -> &mut T {
        let p = self.alloc_layout(Layout::new::<T>()).cast::<T>();
        // SAFETY: as in alloc. If f panics, the block stays allocated and uninitialized, and
        // nothing refers to it.
        unsafe {
            p.as_ptr().write(f());
            &mut *p.as_ptr()
        }
    }

    /// [`alloc_with`](Self::alloc_with), with an error instead of a panic; `f` is not called
    /// when there is no room.
    ///
    /// ```
    /// let arena = nalloc::Arena::new(nalloc::Kind::Scratch, 4096)?;
    /// assert!(arena.try_alloc_with(|| [0u64; 1000]).is_err()); // 8000 bytes: no room
    /// # Ok::<(), nalloc::Error>(())
    /// ```
    #[allow(clippy::mut_from_ref)]
    pub fn try_alloc_with<T, F: FnOnce() -> T>(&self, f: F) -> Result<&mut T, Error> {
        let p = self.try_alloc_layout(Layout::new::<T>())?.cast::<T>();
        // SAFETY: as in alloc_with.
        unsafe {
            p.as_ptr().write(f());
            Ok(&mut *p.as_ptr())
        }
    }

    /// A copy of `src` in the arena. Panics when the arena has no room.
    ///
    /// ```
    /// let arena = nalloc::Arena::new(nalloc::Kind::Poly, 1 << 20)?;
    /// let column = arena.alloc_slice_copy(&[1u64, 2, 3]);
    /// column[2] = 30;
    /// assert_eq!(column, &[1, 2, 30]);
    /// # Ok::<(), nalloc::Error>(())
    /// ```
    #[track_caller]
    #[allow(clippy::mut_from_ref)]
    pub fn alloc_slice_copy<T: Copy>(&self, src: &[T]) -> &mut [T] {
        match self.try_alloc_slice_copy(src) {
            Ok(s) => s,
            Err(e) => self.alloc_failed(std::mem::size_of_val(src), align_of::<T>(), e),
        }
    }

    /// [`alloc_slice_copy`](Self::alloc_slice_copy), with an error instead of a panic.
    ///
    /// ```
    /// let arena = nalloc::Arena::new(nalloc::Kind::Poly, 4096)?;
    /// assert!(arena.try_alloc_slice_copy(&[0u8; 4096]).is_ok());
    /// assert!(arena.try_alloc_slice_copy(&[0u8; 1]).is_err()); // full
    /// # Ok::<(), nalloc::Error>(())
    /// ```
    #[allow(clippy::mut_from_ref)]
    pub fn try_alloc_slice_copy<T: Copy>(&self, src: &[T]) -> Result<&mut [T], Error> {
        let p = self.slice_memory::<T>(src.len())?;
        // SAFETY: p has room for src.len() T, aligned, disjoint from src (fresh arena memory);
        // T: Copy, so a bitwise copy is a copy.
        unsafe {
            std::ptr::copy_nonoverlapping(src.as_ptr(), p.as_ptr(), src.len());
            Ok(std::slice::from_raw_parts_mut(p.as_ptr(), src.len()))
        }
    }

    /// A slice of `len` values, element `i` made by `f(i)`. Panics when the arena has no room.
    /// If `f` panics, the elements made so far are leaked, never dropped.
    ///
    /// ```
    /// let arena = nalloc::Arena::new(nalloc::Kind::Poly, 1 << 20)?;
    /// let squares = arena.alloc_slice_fill_with(10, |i| (i * i) as u64);
    /// assert_eq!(squares[9], 81);
    /// # Ok::<(), nalloc::Error>(())
    /// ```
    #[track_caller]
    #[allow(clippy::mut_from_ref)]
    pub fn alloc_slice_fill_with<T, F: FnMut(usize) -> T>(&self, len: usize, f: F) -> &mut [T] {
        match self.try_alloc_slice_fill_with(len, f) {
            Ok(s) => s,
            Err(e) => self.alloc_failed(len.saturating_mul(size_of::<T>()), align_of::<T>(), e),
        }
    }

    /// [`alloc_slice_fill_with`](Self::alloc_slice_fill_with), with an error instead of a
    /// panic; `f` is not called when there is no room.
    ///
    /// ```
    /// let arena = nalloc::Arena::new(nalloc::Kind::Poly, 4096)?;
    /// let err = arena.try_alloc_slice_fill_with(1 << 20, |i| i).unwrap_err();
    /// assert_eq!(err.status(), nalloc::Status::NoMem);
    /// # Ok::<(), nalloc::Error>(())
    /// ```
    #[allow(clippy::mut_from_ref)]
    pub fn try_alloc_slice_fill_with<T, F: FnMut(usize) -> T>(
        &self,
        len: usize,
        mut f: F,
    ) -> Result<&mut [T], Error> {
        let p = self.slice_memory::<T>(len)?;
        for i in 0..len {
            // SAFETY: i < len, within the block; each element is written once.
            unsafe { p.as_ptr().add(i).write(f(i)) };
        }
        // SAFETY: all len elements are initialized.
        Ok(unsafe { std::slice::from_raw_parts_mut(p.as_ptr(), len) })
    }

    /// A copy of `src` in the arena. Panics when the arena has no room.
    ///
    /// ```
    /// let arena = nalloc::Arena::new(nalloc::Kind::Scratch, 4096)?;
    /// let s = arena.alloc_str("proof");
    /// s.make_ascii_uppercase();
    /// assert_eq!(s, "PROOF");
    /// # Ok::<(), nalloc::Error>(())
    /// ```
    #[track_caller]
    #[allow(clippy::mut_from_ref)]
    pub fn alloc_str(&self, src: &str) -> &mut str {
        let bytes = self.alloc_slice_copy(src.as_bytes());
        // SAFETY: a copy of a str's bytes is UTF-8.
        unsafe { std::str::from_utf8_unchecked_mut(bytes) }
    }

    /// [`alloc_str`](Self::alloc_str), with an error instead of a panic.
    ///
    /// ```
    /// let arena = nalloc::Arena::new(nalloc::Kind::Scratch, 4096)?;
    /// assert_eq!(arena.try_alloc_str("fri")?, "fri");
    /// # Ok::<(), nalloc::Error>(())
    /// ```
    #[allow(clippy::mut_from_ref)]
    pub fn try_alloc_str(&self, src: &str) -> Result<&mut str, Error> {
        let bytes = self.try_alloc_slice_copy(src.as_bytes())?;
        // SAFETY: as in alloc_str.
        Ok(unsafe { std::str::from_utf8_unchecked_mut(bytes) })
    }

    /// A `T` that reads as zero. Panics when the arena has no room.
    ///
    /// ```
    /// let arena = nalloc::Arena::new(nalloc::Kind::Scratch, 1 << 20)?;
    /// let acc = arena.alloc_zeroed::<[u64; 512]>();
    /// assert!(acc.iter().all(|&x| x == 0));
    /// # Ok::<(), nalloc::Error>(())
    /// ```
    #[track_caller]
    #[allow(clippy::mut_from_ref)]
    pub fn alloc_zeroed<T: Zeroable>(&self) -> &mut T {
        &mut self.alloc_slice_zeroed::<T>(1)[0]
    }

    /// [`alloc_zeroed`](Self::alloc_zeroed), with an error instead of a panic.
    ///
    /// ```
    /// let arena = nalloc::Arena::new(nalloc::Kind::Scratch, 4096)?;
    /// assert_eq!(*arena.try_alloc_zeroed::<u64>()?, 0);
    /// assert!(arena.try_alloc_zeroed::<[u8; 8192]>().is_err());
    /// # Ok::<(), nalloc::Error>(())
    /// ```
    #[allow(clippy::mut_from_ref)]
    pub fn try_alloc_zeroed<T: Zeroable>(&self) -> Result<&mut T, Error> {
        Ok(&mut self.try_alloc_slice_zeroed::<T>(1)?[0])
    }

    /// A slice of `len` values that read as zero, cleared by the C library only where the
    /// memory was used before (fresh pages are zero already). Panics when the arena has no room.
    ///
    /// ```
    /// let mut arena = nalloc::Arena::new(nalloc::Kind::Poly, 1 << 20)?;
    /// arena.alloc_slice_fill_with(1000, |_| u64::MAX);
    /// arena.reset()?;
    /// let column = arena.alloc_slice_zeroed::<u64>(1000); // the same memory, cleared
    /// assert!(column.iter().all(|&x| x == 0));
    /// # Ok::<(), nalloc::Error>(())
    /// ```
    #[track_caller]
    #[allow(clippy::mut_from_ref)]
    pub fn alloc_slice_zeroed<T: Zeroable>(&self, len: usize) -> &mut [T] {
        match self.try_alloc_slice_zeroed(len) {
            Ok(s) => s,
            Err(e) => self.alloc_failed(len.saturating_mul(size_of::<T>()), align_of::<T>(), e),
        }
    }

    /// [`alloc_slice_zeroed`](Self::alloc_slice_zeroed), with an error instead of a panic.
    ///
    /// ```
    /// let arena = nalloc::Arena::new(nalloc::Kind::Poly, 1 << 20)?;
    /// assert_eq!(arena.try_alloc_slice_zeroed::<f64>(10)?, &[0.0; 10]);
    /// assert!(arena.try_alloc_slice_zeroed::<u64>(usize::MAX / 4).is_err());
    /// # Ok::<(), nalloc::Error>(())
    /// ```
    #[allow(clippy::mut_from_ref)]
    pub fn try_alloc_slice_zeroed<T: Zeroable>(&self, len: usize) -> Result<&mut [T], Error> {
        let layout = slice_layout::<T>(len)?;
        let p = if layout.size() == 0 {
            NonNull::<T>::dangling()
        } else {
            self.h
                .alloc_zeroed_bytes(len, size_of::<T>(), align_of::<T>())?
                .cast()
        };
        // SAFETY: len zeroed T; all-zero bytes are a valid T (Zeroable).
        Ok(unsafe { std::slice::from_raw_parts_mut(p.as_ptr(), len) })
    }

    /// Room for `len` T, uninitialized.
    fn slice_memory<T>(&self, len: usize) -> Result<NonNull<T>, Error> {
        let layout = slice_layout::<T>(len)?;
        Ok(self.try_alloc_layout(layout)?.cast())
    }

    #[cold]
    #[track_caller]
    fn alloc_failed(&self, size: usize, align: usize, err: Error) -> ! {
        let name = self
            .h
            .raw_stats()
            .map(|s| Stats::from_raw(&s).name)
            .unwrap_or_default();
        panic!("nalloc: arena \"{name}\" cannot allocate {size} bytes aligned to {align}: {err}");
    }

    // ---- Releasing memory ---------------------------------------------------------------------

    /// The arena's current position, for [`rollback`](Self::rollback).
    ///
    /// ```
    /// let arena = nalloc::Arena::new(nalloc::Kind::Scratch, 4096)?;
    /// let a = arena.mark();
    /// arena.alloc(0u8);
    /// assert_ne!(a, arena.mark());
    /// # Ok::<(), nalloc::Error>(())
    /// ```
    pub fn mark(&self) -> Mark {
        Mark(self.h.mark())
    }

    /// Release everything allocated since `mark` was taken. A stale mark (taken before a reset
    /// or wipe, on another arena, or above a position an earlier rollback released) is refused
    /// with [`Status::State`](crate::Status::State), and the arena is untouched.
    ///
    /// ```
    /// use nalloc::{Arena, Kind, Status};
    ///
    /// let mut arena = Arena::new(Kind::Scratch, 4096)?;
    /// let mark = arena.mark();
    /// arena.alloc(1u32);
    /// arena.rollback(mark)?;
    /// assert_eq!(arena.stats().used, 0);
    /// arena.alloc(2u32);
    /// arena.reset()?;
    /// assert_eq!(arena.rollback(mark).unwrap_err().status(), Status::State); // stale
    /// # Ok::<(), nalloc::Error>(())
    /// ```
    pub fn rollback(&mut self, mark: Mark) -> Result<(), Error> {
        self.h.rollback(mark.0)
    }

    /// Run `f` with the arena, then release everything `f` allocated from it. `f` receives the
    /// arena for a lifetime of its own, so nothing it returns can refer to the phase's memory;
    /// `&mut self` keeps other threads from allocating during the phase (their blocks would be
    /// released with it). The rollback also runs when `f` panics.
    ///
    /// The release is the C library's rollback, which refuses while blocks [routed](crate::route)
    /// into the arena are alive ([`Stats::live_blocks`]: made inside the phase or before it, on
    /// any thread), as [`rollback`](Self::rollback) would: the phase's memory then stays
    /// allocated until a [`reset`](Self::reset) after those blocks are gone, and nothing reports
    /// it. Where routed blocks may outlive a phase, take a [`mark`](Self::mark) and
    /// [`rollback`](Self::rollback) yourself, which say so.
    ///
    /// ```
    /// let mut arena = nalloc::Arena::new(nalloc::Kind::Scratch, 1 << 20)?;
    /// let kept = arena.alloc(1u64) as *const u64;
    /// let sum = arena.phase(|phase| {
    ///     let tmp = phase.alloc_slice_fill_with(1000, |i| i as u64);
    ///     tmp.iter().sum::<u64>() // a value, not a reference into the phase
    /// });
    /// assert_eq!(sum, 499_500);
    /// assert_eq!(arena.stats().used, 8); // the 8 bytes allocated before the phase
    /// # let _ = kept;
    /// # Ok::<(), nalloc::Error>(())
    /// ```
    ///
    /// A reference into the phase cannot leave it:
    ///
    /// ```compile_fail
    /// let mut arena = nalloc::Arena::new(nalloc::Kind::Scratch, 4096).unwrap();
    /// let escaped = arena.phase(|phase| phase.alloc(1u64));
    /// ```
    pub fn phase<R>(&mut self, f: impl FnOnce(&Arena) -> R) -> R {
        /// Rolls back on the way out of the phase, normal or unwinding.
        struct Rollback {
            arena: *mut sys::nalloc_arena,
            mark: sys::nalloc_mark,
        }
        impl Drop for Rollback {
            fn drop(&mut self) {
                // SAFETY: the phase holds the arena exclusively and every reference into the
                // phase is dead. The mark cannot be stale: nothing that could make it so (a
                // reset, a wipe, a rollback, a split) is reachable through `&Arena`. A refusal
                // would leave the phase's blocks allocated until the next reset, which is safe.
                unsafe {
                    sys::nalloc_rollback(self.arena, self.mark);
                }
            }
        }
        let _rollback = Rollback {
            arena: self.as_raw(),
            mark: self.h.mark(),
        };
        f(self)
    }

    /// Release everything; every mark taken so far becomes stale. The memory is not zeroed
    /// (see [`wipe`](Self::wipe)). Refused with [`Status::State`](crate::Status::State), the
    /// arena untouched, while blocks [routed](crate::route) into it are alive (a `Vec` made
    /// inside a route and not dropped yet; [`Stats::live_blocks`] counts them), and while lanes
    /// split from the arena are alive, which safe code cannot arrange (they borrow the arena).
    ///
    /// ```
    /// let mut arena = nalloc::Arena::new(nalloc::Kind::Scratch, 4096)?;
    /// for _ in 0..10 {
    ///     arena.alloc_slice_copy(&[0u8; 4096]); // the whole arena, every time
    ///     arena.reset()?;
    /// }
    /// assert_eq!(arena.stats().resets, 10);
    /// # Ok::<(), nalloc::Error>(())
    /// ```
    pub fn reset(&mut self) -> Result<(), Error> {
        self.h.reset()
    }

    /// [`reset`](Self::reset) that does not refuse while routed blocks are alive: they are
    /// forgotten (no longer counted in [`Stats::live_blocks`]), and their memory is handed out
    /// again.
    ///
    /// # Safety
    ///
    /// No block routed into the arena before this call may be used, reallocated or dropped
    /// after it: a `Vec` still holding one must be leaked (`std::mem::forget`), and nothing may
    /// read it. Lanes still refuse it.
    ///
    /// ```
    /// #[global_allocator]
    /// static ALLOC: nalloc::Global = nalloc::Global::new();
    ///
    /// fn main() -> Result<(), nalloc::Error> {
    ///     let mut scratch = nalloc::Arena::new(nalloc::Kind::Scratch, 1 << 20)?;
    ///     let v = nalloc::route(&scratch, || vec![1u8; 100]);
    ///     std::mem::forget(v); // never touched or freed again
    ///     assert!(scratch.reset().is_err());
    ///     // SAFETY: the only routed block was leaked above.
    ///     unsafe { scratch.reset_unchecked()? };
    ///     assert_eq!(scratch.stats().live_blocks, 0);
    ///     Ok(())
    /// }
    /// ```
    pub unsafe fn reset_unchecked(&mut self) -> Result<(), Error> {
        self.h.reset_unchecked()
    }

    /// Zero every byte handed out since the last wipe, up to the high-water mark, with stores
    /// the compiler cannot remove; then reset. Refused, as [`reset`](Self::reset) is, while
    /// routed blocks are alive: drop them first (their bytes are zeroed with the rest).
    ///
    /// ```
    /// let mut witness = nalloc::Arena::new(nalloc::Kind::Witness, 1 << 20)?;
    /// let secret = witness.alloc_slice_copy(&[0x5au8; 1000]);
    /// let at = secret.as_ptr();
    /// witness.wipe()?;
    /// assert_eq!(witness.stats().wiped_bytes, 1000);
    /// let again = witness.alloc_slice_zeroed::<u8>(1000); // the same bytes, now zeros
    /// assert_eq!(again.as_ptr(), at);
    /// # Ok::<(), nalloc::Error>(())
    /// ```
    pub fn wipe(&mut self) -> Result<(), Error> {
        self.h.wipe()
    }

    /// [`wipe`](Self::wipe) that does not refuse while routed blocks are alive: they are zeroed
    /// with everything else and forgotten.
    ///
    /// # Safety
    ///
    /// As for [`reset_unchecked`](Self::reset_unchecked): no block routed into the arena before
    /// this call may be used, reallocated or dropped after it.
    ///
    /// ```
    /// #[global_allocator]
    /// static ALLOC: nalloc::Global = nalloc::Global::new();
    ///
    /// fn main() -> Result<(), nalloc::Error> {
    ///     let mut witness = nalloc::Arena::new(nalloc::Kind::Witness, 1 << 20)?;
    ///     let secret = nalloc::route(&witness, || vec![0x5au8; 100]);
    ///     let at = secret.as_ptr();
    ///     std::mem::forget(secret);
    ///     // SAFETY: the only routed block was leaked above and is never touched again.
    ///     unsafe { witness.wipe_unchecked()? };
    ///     let again = witness.alloc_slice_zeroed::<u8>(4096);
    ///     assert!(again.iter().all(|&b| b == 0));
    ///     # let _ = at;
    ///     Ok(())
    /// }
    /// ```
    pub unsafe fn wipe_unchecked(&mut self) -> Result<(), Error> {
        self.h.wipe_unchecked()
    }

    /// Split the arena into `count` lanes: arenas whose memory is consecutive slices of one
    /// block of this one, one per worker thread, each with its own offset (no atomic shared
    /// between threads) and a layout that depends only on its own requests. `lane_capacity`
    /// bytes each, or 0 to share the room left equally.
    ///
    /// The lanes borrow the arena, so it cannot be reset, wiped, rolled back or dropped while
    /// any of them lives; [`Lanes::parent`] can still allocate from it, above the lanes'
    /// block. Dropping a lane destroys it (a witness lane is wiped); its block stays allocated
    /// in the parent until the parent's next reset or rollback below it.
    ///
    /// ```
    /// use nalloc::{Arena, Kind};
    ///
    /// let mut arena = Arena::new(Kind::Poly, 4 << 20)?;
    /// let lanes = arena.split(2, 1 << 20)?;
    /// std::thread::scope(|s| {
    ///     for lane in lanes.iter() {
    ///         s.spawn(move || lane.alloc_slice_fill_with(1000, |i| i as u32)[999]);
    ///     }
    /// });
    /// assert_eq!(lanes[0].stats().allocations, 1);
    /// drop(lanes);
    /// arena.reset()?; // allowed again once the lanes are gone
    /// # Ok::<(), nalloc::Error>(())
    /// ```
    pub fn split(&mut self, count: usize, lane_capacity: usize) -> Result<Lanes<'_>, Error> {
        // Every lane takes at least one page of the arena, so no more than this can fit; the
        // bound keeps a huge count from allocating a huge array before C can refuse it.
        if count > self.h.capacity / 4096 + 1 {
            return Err(Error::new(
                Status::NoMem,
                format!(
                    "{count} lanes of at least a page each do not fit in {} bytes",
                    self.h.capacity
                ),
            ));
        }
        let mut raw = vec![std::ptr::null_mut(); count];
        // SAFETY: exclusive access (a split is a phase boundary); raw has room for count lanes.
        Error::check(unsafe {
            sys::nalloc_arena_split(self.as_raw(), count, lane_capacity, raw.as_mut_ptr())
        })?;
        let policy: Policy = self.h.policy;
        let lanes = raw
            .into_iter()
            .map(|p| {
                let p = NonNull::new(p).expect("nalloc_arena_split filled every lane");
                // SAFETY: a new lane, ours alone; it borrows the parent through Lane<'_>.
                Lane::new(Arena::from_handle(unsafe {
                    Handle::new(p, Owner::Lane, policy)
                }))
            })
            .collect();
        Ok(Lanes::new(self, lanes))
    }

    // ---- Questions ----------------------------------------------------------------------------

    /// Whether `ptr` points into the arena's memory: `[base, base + capacity)`. A parent arena's
    /// memory includes its lanes'.
    ///
    /// ```
    /// let arena = nalloc::Arena::new(nalloc::Kind::Scratch, 4096)?;
    /// let x = arena.alloc(1u64);
    /// assert!(arena.contains((x as *const u64).cast()));
    /// let y = 5u64;
    /// assert!(!arena.contains((&y as *const u64).cast()));
    /// # Ok::<(), nalloc::Error>(())
    /// ```
    pub fn contains(&self, ptr: *const u8) -> bool {
        self.h.contains(ptr as usize)
    }

    /// A snapshot of the arena's statistics.
    ///
    /// ```
    /// let arena = nalloc::Arena::new(nalloc::Kind::Poly, 1 << 20)?;
    /// arena.alloc_slice_copy(&[0u64; 100]);
    /// let s = arena.stats();
    /// assert_eq!((s.capacity, s.used, s.high_water, s.allocations, s.failures), (1 << 20, 800, 800, 1, 0));
    /// # Ok::<(), nalloc::Error>(())
    /// ```
    pub fn stats(&self) -> Stats {
        let raw = self
            .h
            .raw_stats()
            .expect("nalloc_arena_stats cannot fail for a live arena");
        Stats::from_raw(&raw)
    }

    /// [`stats`](Self::stats), and what the kernel says of the arena's memory: how much of it
    /// is resident now, and how much of that is in transparent huge pages
    /// ([`Stats::resident_bytes`], [`Stats::huge_bytes`]; `nalloc_arena_stats_resident`).
    /// Slower than `stats`: it reads /proc/self/smaps, whose page-table walk costs about 10 ms
    /// per GiB of small pages mapped below the arena. Where the kernel cannot say for this arena
    /// alone (a lane, /proc not mounted), [`Stats::resident_known`] is false and the two
    /// figures mean nothing.
    ///
    /// ```
    /// let arena = nalloc::Arena::new(nalloc::Kind::Scratch, 1 << 20)?;
    /// arena.alloc_slice_fill_with(100_000, |i| i as u8); // touches 25 pages or so
    /// let s = arena.stats_resident();
    /// if s.resident_known {
    ///     assert!(s.resident_bytes >= 100_000 && s.huge_bytes <= s.resident_bytes);
    /// }
    /// assert!(!arena.stats().resident_known); // plain stats do not ask the kernel
    /// # Ok::<(), nalloc::Error>(())
    /// ```
    pub fn stats_resident(&self) -> Stats {
        let raw = self
            .h
            .raw_stats_resident()
            .expect("nalloc_arena_stats_resident cannot fail for a live arena");
        Stats::from_raw(&raw)
    }

    /// Print the statistics to stderr (`nalloc_arena_print_stats`), one line per group.
    ///
    /// ```
    /// let arena = nalloc::Arena::new(nalloc::Kind::Poly, 1 << 20)?;
    /// arena.print_stats()?;
    /// # Ok::<(), nalloc::Error>(())
    /// ```
    pub fn print_stats(&self) -> Result<(), Error> {
        self.h.print_stats()
    }
}

impl fmt::Debug for Arena {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Arena")
            .field("kind", &self.h.kind)
            .field("memory", &self.h.memory)
            .field("base", &(self.h.base as *const u8))
            .field("capacity", &self.h.capacity)
            .finish_non_exhaustive()
    }
}

/// The layout of `len` T, or the error C would give for a size that overflows.
pub(crate) fn slice_layout<T>(len: usize) -> Result<Layout, Error> {
    Layout::array::<T>(len).map_err(|_| {
        Error::new(
            Status::Invalid,
            format!(
                "{len} elements of {} bytes overflow the address space",
                size_of::<T>()
            ),
        )
    })
}
