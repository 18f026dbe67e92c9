//! Bit sets of C flags: what an arena asks for ([`Flags`]) and which memory checkers watch it
//! ([`Checkers`]). Plain newtypes over the C bits, so a flag a newer C library adds can be
//! passed through [`Flags::from_bits_retain`] before this crate names it.

use std::fmt;
use std::ops::{BitAnd, BitAndAssign, BitOr, BitOrAssign, Not, Sub};

use crate::sys;

/// Features an arena may ask for (`NALLOC_FLAG_*`; [`ArenaConfig::flags`](crate::ArenaConfig::flags)).
///
/// Each kind has defaults ([`ArenaConfig::new`](crate::ArenaConfig::new) fills them in). A
/// feature the OS or the build refuses is reported in [`Stats::missing`](crate::Stats::missing),
/// or fails creation with [`Flags::STRICT`].
///
/// ```
/// use nalloc::Flags;
///
/// let flags = Flags::LOCK | Flags::NODUMP;
/// assert!(flags.contains(Flags::LOCK));
/// assert!(!flags.contains(Flags::LOCK | Flags::SECRET));
/// assert_eq!((flags - Flags::LOCK), Flags::NODUMP);
/// assert_eq!(format!("{:?}", flags), "Flags(LOCK | NODUMP)");
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Flags(u32);

const FLAG_NAMES: [(&str, u32); 13] = [
    ("POPULATE", sys::NALLOC_FLAG_POPULATE),
    ("HUGEPAGES", sys::NALLOC_FLAG_HUGEPAGES),
    ("LOCK", sys::NALLOC_FLAG_LOCK),
    ("NODUMP", sys::NALLOC_FLAG_NODUMP),
    ("WIPEONFORK", sys::NALLOC_FLAG_WIPEONFORK),
    ("WIPE_ON_DESTROY", sys::NALLOC_FLAG_WIPE_ON_DESTROY),
    ("WIPE_AT_EXIT", sys::NALLOC_FLAG_WIPE_AT_EXIT),
    ("SECRET", sys::NALLOC_FLAG_SECRET),
    ("STRICT", sys::NALLOC_FLAG_STRICT),
    ("PIN_FALLBACK", sys::NALLOC_FLAG_PIN_FALLBACK),
    ("NORESERVE", sys::NALLOC_FLAG_NORESERVE),
    ("THREAD_CACHE", sys::NALLOC_FLAG_THREAD_CACHE),
    ("PREFAULT_AHEAD", sys::NALLOC_FLAG_PREFAULT_AHEAD),
];

impl Flags {
    /// Prefault every page at creation (MADV_POPULATE_WRITE).
    pub const POPULATE: Flags = Flags(sys::NALLOC_FLAG_POPULATE);
    /// Transparent huge pages on the mapping (default for [`Kind::Poly`](crate::Kind::Poly)).
    pub const HUGEPAGES: Flags = Flags(sys::NALLOC_FLAG_HUGEPAGES);
    /// Locked in memory, never swapped (witness).
    pub const LOCK: Flags = Flags(sys::NALLOC_FLAG_LOCK);
    /// Left out of core dumps (witness).
    pub const NODUMP: Flags = Flags(sys::NALLOC_FLAG_NODUMP);
    /// A forked child never sees the contents (witness).
    pub const WIPEONFORK: Flags = Flags(sys::NALLOC_FLAG_WIPEONFORK);
    /// Wiped before the memory is released (witness).
    pub const WIPE_ON_DESTROY: Flags = Flags(sys::NALLOC_FLAG_WIPE_ON_DESTROY);
    /// Wiped at process exit if still alive (witness, in C). Set only through the `unsafe`
    /// [`ArenaConfig::wipe_at_exit`](crate::ArenaConfig::wipe_at_exit): `build` refuses it
    /// otherwise.
    pub const WIPE_AT_EXIT: Flags = Flags(sys::NALLOC_FLAG_WIPE_AT_EXIT);
    /// memfd_secret backing: out of the kernel's direct map; host memory only.
    pub const SECRET: Flags = Flags(sys::NALLOC_FLAG_SECRET);
    /// A refused feature fails creation instead of being reported in `Stats::missing`.
    pub const STRICT: Flags = Flags(sys::NALLOC_FLAG_STRICT);
    /// Pinned memory without a CUDA driver: locked host memory instead.
    pub const PIN_FALLBACK: Flags = Flags(sys::NALLOC_FLAG_PIN_FALLBACK);
    /// Address space only, committed as touched (sizing dry runs).
    pub const NORESERVE: Flags = Flags(sys::NALLOC_FLAG_NORESERVE);
    /// Each thread allocates from a private chunk it took from the arena with one atomic.
    pub const THREAD_CACHE: Flags = Flags(sys::NALLOC_FLAG_THREAD_CACHE);
    /// Pages ahead of the offset are faulted in by a helper thread, off the allocating thread;
    /// with [`HUGEPAGES`](Self::HUGEPAGES), huge pages come from the helper (default for
    /// polynomial host arenas; [`Stats::prefaulted`](crate::Stats::prefaulted) counts its work).
    pub const PREFAULT_AHEAD: Flags = Flags(sys::NALLOC_FLAG_PREFAULT_AHEAD);

    /// No flags.
    ///
    /// ```
    /// assert!(nalloc::Flags::empty().is_empty());
    /// ```
    pub const fn empty() -> Flags {
        Flags(0)
    }

    /// The C bits (`NALLOC_FLAG_*`).
    ///
    /// ```
    /// assert_eq!(nalloc::Flags::LOCK.bits(), nalloc::sys::NALLOC_FLAG_LOCK);
    /// ```
    pub const fn bits(self) -> u32 {
        self.0
    }

    /// Flags from C bits, unknown bits kept (nalloc refuses unknown bits when an arena is
    /// created, with [`Status::Invalid`](crate::Status::Invalid)).
    ///
    /// ```
    /// let flags = nalloc::Flags::from_bits_retain(1 << 2);
    /// assert_eq!(flags, nalloc::Flags::LOCK);
    /// ```
    pub const fn from_bits_retain(bits: u32) -> Flags {
        Flags(bits)
    }

    /// Whether every flag of `other` is set here.
    ///
    /// ```
    /// use nalloc::Flags;
    /// assert!((Flags::LOCK | Flags::STRICT).contains(Flags::STRICT));
    /// ```
    pub const fn contains(self, other: Flags) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether no flag is set.
    ///
    /// ```
    /// assert!(!nalloc::Flags::SECRET.is_empty());
    /// ```
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }
}

impl BitOr for Flags {
    type Output = Flags;
    fn bitor(self, rhs: Flags) -> Flags {
        Flags(self.0 | rhs.0)
    }
}

impl BitOrAssign for Flags {
    fn bitor_assign(&mut self, rhs: Flags) {
        self.0 |= rhs.0;
    }
}

impl BitAnd for Flags {
    type Output = Flags;
    fn bitand(self, rhs: Flags) -> Flags {
        Flags(self.0 & rhs.0)
    }
}

impl BitAndAssign for Flags {
    fn bitand_assign(&mut self, rhs: Flags) {
        self.0 &= rhs.0;
    }
}

impl Sub for Flags {
    type Output = Flags;
    /// The flags of `self` that are not in `rhs`.
    fn sub(self, rhs: Flags) -> Flags {
        Flags(self.0 & !rhs.0)
    }
}

impl Not for Flags {
    type Output = Flags;
    fn not(self) -> Flags {
        Flags(!self.0)
    }
}

/// Names the set flags, and any unknown bits in hex.
fn write_bits(
    f: &mut fmt::Formatter<'_>,
    type_name: &str,
    bits: u32,
    names: &[(&str, u32)],
) -> fmt::Result {
    write!(f, "{type_name}(")?;
    let mut rest = bits;
    let mut first = true;
    for &(name, bit) in names {
        if bits & bit != 0 {
            write!(f, "{}{name}", if first { "" } else { " | " })?;
            first = false;
            rest &= !bit;
        }
    }
    if rest != 0 {
        write!(f, "{}{rest:#x}", if first { "" } else { " | " })?;
    }
    f.write_str(")")
}

impl fmt::Debug for Flags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_bits(f, "Flags", self.0, &FLAG_NAMES)
    }
}

/// Memory checkers that can see inside an arena (`NALLOC_CHECKER_*`;
/// [`Stats::checkers`](crate::Stats::checkers)). Without one, an arena is one big mapping to
/// AddressSanitizer and Valgrind.
///
/// ```
/// use nalloc::{Arena, Checkers, Kind};
///
/// let arena = Arena::new(Kind::Scratch, 4096)?;
/// let checkers = arena.stats().checkers;
/// assert!(checkers.is_empty() || checkers.contains(Checkers::ASAN) || checkers.contains(Checkers::VALGRIND));
/// # Ok::<(), nalloc::Error>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Checkers(u32);

impl Checkers {
    /// The C library was built with AddressSanitizer: free space is poisoned.
    pub const ASAN: Checkers = Checkers(sys::NALLOC_CHECKER_ASAN);
    /// Built with NALLOC_VALGRIND and running under Valgrind: the arena is a Memcheck mempool.
    pub const VALGRIND: Checkers = Checkers(sys::NALLOC_CHECKER_VALGRIND);

    /// The C bits (`NALLOC_CHECKER_*`).
    ///
    /// ```
    /// assert_eq!(nalloc::Checkers::ASAN.bits(), 1);
    /// ```
    pub const fn bits(self) -> u32 {
        self.0
    }

    /// Whether every checker of `other` watches.
    ///
    /// ```
    /// use nalloc::Checkers;
    /// assert!(!Checkers::default().contains(Checkers::VALGRIND));
    /// ```
    pub const fn contains(self, other: Checkers) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether no checker watches.
    ///
    /// ```
    /// assert!(nalloc::Checkers::default().is_empty());
    /// ```
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub(crate) const fn from_bits_retain(bits: u32) -> Checkers {
        Checkers(bits)
    }
}

impl fmt::Debug for Checkers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_bits(
            f,
            "Checkers",
            self.0,
            &[
                ("ASAN", sys::NALLOC_CHECKER_ASAN),
                ("VALGRIND", sys::NALLOC_CHECKER_VALGRIND),
            ],
        )
    }
}
