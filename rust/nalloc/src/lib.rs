//! nalloc: arenas for GPU zero-knowledge provers, with the borrow checker on guard.
//!
//! A prover runs the same phases on every proof: it builds gigabytes of polynomial vectors,
//! keeps secret witness data, and makes short-lived scratch buffers. nalloc gives each of those an
//! [`Arena`] of its own: one large reservation, made once and reused for every proof, from which
//! an allocation is one atomic bump of an offset, aligned for NTT kernels. Blocks are never freed
//! one by one: a [`phase`](Arena::phase) releases everything allocated inside it, a
//! [`reset`](Arena::reset) releases everything, and a [`wipe`](Arena::wipe) zeroes everything
//! the arena ever handed out before it resets. The C library (`nalloc-sys`) does the work; this
//! crate makes it safe.
//!
//! What makes it safe is the shape bumpalo made familiar. Allocation borrows the arena shared
//! (`&self`) and returns `&mut T` for as long as that borrow lives; releasing memory (reset, wipe,
//! rollback, and dropping the arena) takes `&mut self` or `self`, which the borrow checker grants
//! only once no such reference is alive. So safe code can never reach memory that was released
//! or handed out again. Several threads may allocate from one arena at once ([`Arena`] is `Send`
//! and `Sync`; the C arena is lock-free for allocation). Values are never dropped by the arena:
//! a `Vec` allocated in one leaks its heap buffer when the arena releases it, as with bumpalo.
//!
//! ```
//! use nalloc::{Arena, Kind};
//!
//! let mut arena = Arena::new(Kind::Scratch, 1 << 20)?;
//! let column = arena.alloc_slice_copy(&[1u64, 2, 3, 4]);
//! column[0] = 7;
//! assert!(arena.contains(column.as_ptr().cast()));
//! assert_eq!(arena.stats().allocations, 1);
//! arena.reset()?; // `column` cannot be used after this line: the borrow checker says so
//! assert_eq!(arena.stats().used, 0);
//! # Ok::<(), nalloc::Error>(())
//! ```
//!
//! What the borrow checker refuses, so that no program can get it wrong: using a block after a
//! reset,
//!
//! ```compile_fail
//! let mut arena = nalloc::Arena::new(nalloc::Kind::Scratch, 4096).unwrap();
//! let x = arena.alloc(1u64);
//! arena.reset().unwrap();
//! *x += 1; // error: `arena` is borrowed by `x`
//! ```
//!
//! after the arena is dropped,
//!
//! ```compile_fail
//! let arena = nalloc::Arena::new(nalloc::Kind::Scratch, 4096).unwrap();
//! let x = arena.alloc(1u64);
//! drop(arena);
//! *x += 1; // error: `arena` is borrowed by `x`
//! ```
//!
//! resetting an arena while lanes split from it live,
//!
//! ```compile_fail
//! let mut arena = nalloc::Arena::new(nalloc::Kind::Scratch, 1 << 20).unwrap();
//! let lanes = arena.split(2, 0).unwrap();
//! arena.reset().unwrap(); // error: `arena` is borrowed by `lanes`
//! lanes[0].alloc(1u8);
//! ```
//!
//! and taking a lane's arena out of the lane (which would let it outlive its parent):
//!
//! ```compile_fail
//! let mut arena = nalloc::Arena::new(nalloc::Kind::Scratch, 1 << 20).unwrap();
//! let mut other = nalloc::Arena::new(nalloc::Kind::Scratch, 4096).unwrap();
//! let mut lanes = arena.split(2, 0).unwrap();
//! std::mem::swap(&mut *lanes[0], &mut other); // error: a lane gives out no `&mut Arena`
//! ```
//!
//! Code that allocates through std (`Vec`, `HashMap`, any crate) reaches arenas through the
//! global allocator: with [`Global`] installed, [`route`] sends every allocation a thread makes
//! inside a closure to an arena, and an arena refuses to reset or wipe while such blocks are
//! alive, so safe code never sees their memory reused.
//!
//! The pieces: [`Arena`] and its configuration [`ArenaConfig`]; [`Lane`]s, per-thread arenas
//! split from one ([`Arena::split`]); [`Context`], the polynomial, witness and scratch arenas of a
//! prover, and [`Profile`], the dry run that sizes them; [`Global`] and [`route`]; [`Stats`];
//! [`Error`]. With the `cuda`
//! feature, `cuda` adds device arenas, windows for in-kernel allocation and staging copies.
//! docs/rust.md in the repository walks through all of it.
#![warn(missing_docs)]

mod arena;
mod config;
mod context;
mod error;
mod flags;
mod global;
mod handle;
mod lane;
mod stats;

#[cfg(feature = "cuda")]
pub mod cuda;

pub use arena::{Arena, Mark, Zeroable};
pub use config::ArenaConfig;
pub use context::{Context, ContextConfig, Profile};
pub use error::{Error, Status};
pub use flags::{Checkers, Flags};
pub use global::{is_routed, route, try_route, unrouted, Global};
pub use lane::{Lane, Lanes};
pub use stats::Stats;

/// The raw bindings this crate is built on, for what it does not wrap.
///
/// ```
/// assert_eq!(nalloc::sys::NALLOC_OK, 0);
/// ```
pub use nalloc_sys as sys;

/// What an arena holds; selects its defaults (flags, alignment) and, for the witness, the
/// secure-wipe discipline.
///
/// ```
/// use nalloc::Kind;
/// assert_eq!(Kind::ALL, [Kind::Poly, Kind::Witness, Kind::Scratch]);
/// assert_eq!(Kind::Witness.index(), 1);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// Polynomial vectors: huge pages, 4 KiB alignment for large vectors.
    Poly,
    /// Secret witness data: locked in memory, kept out of core dumps and forks, zeroed before
    /// it is released (by [`Arena::wipe`], and on drop).
    Witness,
    /// Per-phase temporaries.
    Scratch,
}

impl Kind {
    /// The three kinds, in the order of [`Kind::index`].
    ///
    /// ```
    /// for kind in nalloc::Kind::ALL {
    ///     assert_eq!(nalloc::Kind::ALL[kind.index()], kind);
    /// }
    /// ```
    pub const ALL: [Kind; 3] = [Kind::Poly, Kind::Witness, Kind::Scratch];

    /// The kind's position in per-kind arrays (0, 1, 2), as in C's `nalloc_kind`.
    ///
    /// ```
    /// assert_eq!(nalloc::Kind::Scratch.index(), 2);
    /// ```
    pub const fn index(self) -> usize {
        self as usize
    }

    pub(crate) const fn raw(self) -> sys::nalloc_kind {
        match self {
            Kind::Poly => sys::NALLOC_KIND_POLY,
            Kind::Witness => sys::NALLOC_KIND_WITNESS,
            Kind::Scratch => sys::NALLOC_KIND_SCRATCH,
        }
    }

    /// The kind's name, as C names its arenas by default ("poly", "witness", "scratch").
    pub(crate) const fn name(self) -> &'static str {
        match self {
            Kind::Poly => "poly",
            Kind::Witness => "witness",
            Kind::Scratch => "scratch",
        }
    }

    pub(crate) fn from_raw(raw: sys::nalloc_kind) -> Kind {
        match raw {
            sys::NALLOC_KIND_WITNESS => Kind::Witness,
            sys::NALLOC_KIND_SCRATCH => Kind::Scratch,
            _ => Kind::Poly,
        }
    }
}

/// Where an arena's memory lives.
///
/// ```
/// use nalloc::{ArenaConfig, Kind, Memory};
/// let config = ArenaConfig::new(Kind::Poly, Memory::Host, 1 << 20);
/// assert_eq!(config.memory(), Memory::Host);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Memory {
    /// Pageable host memory: one mmap reservation with guard pages.
    Host,
    /// Host memory page-locked for CUDA (cudaHostRegister), for fast copies to and from the
    /// device. Host-accessible: an [`Arena`] like any other.
    Pinned,
    /// GPU memory: one cudaMalloc block. The host cannot touch it, so a device arena is a
    /// `cuda::DeviceArena` (feature `cuda`), never an [`Arena`].
    Device,
}

impl Memory {
    pub(crate) const fn raw(self) -> sys::nalloc_memory {
        match self {
            Memory::Host => sys::NALLOC_MEMORY_HOST,
            Memory::Pinned => sys::NALLOC_MEMORY_PINNED,
            Memory::Device => sys::NALLOC_MEMORY_DEVICE,
        }
    }

    pub(crate) fn from_raw(raw: sys::nalloc_memory) -> Memory {
        match raw {
            sys::NALLOC_MEMORY_PINNED => Memory::Pinned,
            sys::NALLOC_MEMORY_DEVICE => Memory::Device,
            _ => Memory::Host,
        }
    }
}

/// The examples of docs/rust.md, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/rust.md")]
pub struct RustMdDoctests;
