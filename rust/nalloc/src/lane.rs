//! Lanes: per-thread arenas split from one arena, borrowing it.
//!
//! A lane is a full arena in C, so here it is an [`Arena`] inside a wrapper that carries the
//! parent's lifetime. The wrapper gives out `&Arena` (through `Deref`) for allocation and
//! questions, and has its own `&mut self` methods for what releases memory. It never gives out
//! `&mut Arena`: with one, `std::mem::swap` could move the lane's `Arena` out of its wrapper, out
//! of the parent's lifetime, and let the parent be dropped under the lane's references.

use std::fmt;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};

use crate::{Arena, Error, Mark};

/// One lane of a split arena ([`Arena::split`]): an arena of its own, for one worker thread,
/// that borrows its parent. Allocation goes through `Deref<Target = Arena>`; dropping the lane
/// destroys it (a witness lane is wiped first).
///
/// ```
/// use nalloc::{Arena, Kind};
///
/// let mut arena = Arena::new(Kind::Scratch, 1 << 20)?;
/// let mut lanes = arena.split(4, 0)?;
/// for (i, lane) in lanes.iter_mut().enumerate() {
///     lane.alloc(i as u64);
///     lane.reset()?;
/// }
/// assert_eq!(lanes[3].stats().name, "scratch.3");
/// # Ok::<(), nalloc::Error>(())
/// ```
pub struct Lane<'p> {
    arena: Arena,
    _parent: PhantomData<&'p Arena>,
}

impl<'p> Lane<'p> {
    pub(crate) fn new(arena: Arena) -> Lane<'p> {
        Lane {
            arena,
            _parent: PhantomData,
        }
    }

    /// [`Arena::rollback`] for the lane.
    ///
    /// ```
    /// let mut arena = nalloc::Arena::new(nalloc::Kind::Scratch, 1 << 20)?;
    /// let mut lanes = arena.split(1, 4096)?;
    /// let mark = lanes[0].mark();
    /// lanes[0].alloc(1u8);
    /// lanes[0].rollback(mark)?;
    /// assert_eq!(lanes[0].stats().used, 0);
    /// # Ok::<(), nalloc::Error>(())
    /// ```
    pub fn rollback(&mut self, mark: Mark) -> Result<(), Error> {
        self.arena.rollback(mark)
    }

    /// [`Arena::phase`] for the lane.
    ///
    /// ```
    /// let mut arena = nalloc::Arena::new(nalloc::Kind::Scratch, 1 << 20)?;
    /// let mut lanes = arena.split(1, 4096)?;
    /// let n = lanes[0].phase(|lane| lane.alloc_slice_copy(&[1u8, 2, 3]).len());
    /// assert_eq!((n, lanes[0].stats().used), (3, 0));
    /// # Ok::<(), nalloc::Error>(())
    /// ```
    pub fn phase<R>(&mut self, f: impl FnOnce(&Arena) -> R) -> R {
        self.arena.phase(f)
    }

    /// [`Arena::reset`] for the lane.
    ///
    /// ```
    /// let mut arena = nalloc::Arena::new(nalloc::Kind::Scratch, 1 << 20)?;
    /// let mut lanes = arena.split(2, 0)?;
    /// lanes[1].alloc(5u32);
    /// lanes[1].reset()?;
    /// assert_eq!(lanes[1].stats().used, 0);
    /// # Ok::<(), nalloc::Error>(())
    /// ```
    pub fn reset(&mut self) -> Result<(), Error> {
        self.arena.reset()
    }

    /// [`Arena::wipe`] for the lane.
    ///
    /// ```
    /// let mut arena = nalloc::Arena::new(nalloc::Kind::Witness, 1 << 20)?;
    /// let mut lanes = arena.split(2, 0)?;
    /// lanes[0].alloc_slice_copy(&[9u8; 100]);
    /// lanes[0].wipe()?;
    /// assert_eq!(lanes[0].stats().wiped_bytes, 100);
    /// # Ok::<(), nalloc::Error>(())
    /// ```
    pub fn wipe(&mut self) -> Result<(), Error> {
        self.arena.wipe()
    }

    /// Split the lane again ([`Arena::split`]).
    ///
    /// ```
    /// let mut arena = nalloc::Arena::new(nalloc::Kind::Scratch, 1 << 20)?;
    /// let mut lanes = arena.split(2, 0)?;
    /// let sub = lanes[0].split(2, 0)?;
    /// assert_eq!(sub[1].stats().name, "scratch.0.1");
    /// # Ok::<(), nalloc::Error>(())
    /// ```
    pub fn split(&mut self, count: usize, lane_capacity: usize) -> Result<Lanes<'_>, Error> {
        self.arena.split(count, lane_capacity)
    }

    /// [`Arena::wipe_async`](crate::Arena::wipe_async) for the lane (feature `cuda`).
    ///
    /// ```
    /// use nalloc::cuda::Stream;
    /// let mut arena = nalloc::Arena::new(nalloc::Kind::Witness, 1 << 20)?;
    /// let mut lanes = arena.split(1, 0)?;
    /// lanes[0].alloc(1u8);
    /// lanes[0].wipe_async(Stream::LEGACY)?; // a host lane: wiped at once
    /// # Ok::<(), nalloc::Error>(())
    /// ```
    #[cfg(feature = "cuda")]
    pub fn wipe_async(&mut self, stream: crate::cuda::Stream) -> Result<(), Error> {
        self.arena.wipe_async(stream)
    }
}

impl Deref for Lane<'_> {
    type Target = Arena;
    fn deref(&self) -> &Arena {
        &self.arena
    }
}

impl fmt::Debug for Lane<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Lane").field(&self.arena).finish()
    }
}

/// The lanes of one split ([`Arena::split`]), and shared access to their parent.
///
/// Dereferences to the slice of lanes; `into_iter` hands them out one by one (to move each into
/// a worker thread).
///
/// ```
/// use nalloc::{Arena, Kind};
///
/// let mut arena = Arena::new(Kind::Poly, 8 << 20)?;
/// let lanes = arena.split(2, 1 << 20)?;
/// let parent = lanes.parent();
/// parent.alloc(1u64); // the parent still allocates, above the lanes' block
/// std::thread::scope(|s| {
///     for (t, lane) in lanes.into_iter().enumerate() {
///         s.spawn(move || *lane.alloc(t) += 1);
///     }
/// });
/// # Ok::<(), nalloc::Error>(())
/// ```
pub struct Lanes<'p> {
    parent: &'p Arena,
    lanes: Vec<Lane<'p>>,
}

impl<'p> Lanes<'p> {
    pub(crate) fn new(parent: &'p Arena, lanes: Vec<Lane<'p>>) -> Lanes<'p> {
        Lanes { parent, lanes }
    }

    /// The arena the lanes were split from, shared: it can allocate, but not release memory,
    /// while its lanes live.
    ///
    /// ```
    /// let mut arena = nalloc::Arena::new(nalloc::Kind::Scratch, 1 << 20)?;
    /// let lanes = arena.split(2, 4096)?;
    /// assert!(lanes.parent().contains(lanes[1].alloc(0u8)));
    /// # Ok::<(), nalloc::Error>(())
    /// ```
    pub fn parent(&self) -> &'p Arena {
        self.parent
    }

    /// The lanes, to keep or move on their own (the parent stays borrowed while any lives).
    ///
    /// ```
    /// let mut arena = nalloc::Arena::new(nalloc::Kind::Scratch, 1 << 20)?;
    /// let mut lanes = arena.split(3, 0)?.into_vec();
    /// let last = lanes.pop().unwrap();
    /// assert_eq!(last.stats().name, "scratch.2");
    /// # Ok::<(), nalloc::Error>(())
    /// ```
    pub fn into_vec(self) -> Vec<Lane<'p>> {
        self.lanes
    }
}

impl<'p> Deref for Lanes<'p> {
    type Target = [Lane<'p>];
    fn deref(&self) -> &[Lane<'p>] {
        &self.lanes
    }
}

impl<'p> DerefMut for Lanes<'p> {
    fn deref_mut(&mut self) -> &mut [Lane<'p>] {
        &mut self.lanes
    }
}

impl<'p> IntoIterator for Lanes<'p> {
    type Item = Lane<'p>;
    type IntoIter = std::vec::IntoIter<Lane<'p>>;
    fn into_iter(self) -> Self::IntoIter {
        self.lanes.into_iter()
    }
}

impl fmt::Debug for Lanes<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lanes")
            .field("parent", self.parent)
            .field("lanes", &self.lanes)
            .finish()
    }
}
