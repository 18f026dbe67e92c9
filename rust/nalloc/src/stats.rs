//! An arena's statistics: C's `nalloc_stats` in Rust types.
//!
//! A snapshot, copied out of C in one call; allocations that run concurrently may or may not be
//! counted. The struct is `#[non_exhaustive]`: the C struct carries a version and its size so it
//! can grow, and fields it gains will be added here without breaking code that reads these.

use std::ffi::CStr;
use std::time::Duration;

use crate::{sys, Checkers, Flags, Kind, Memory};

/// A snapshot of an arena's statistics ([`Arena::stats`](crate::Arena::stats)).
///
/// ```
/// use nalloc::{Arena, Kind};
///
/// let arena = Arena::new(Kind::Scratch, 1 << 20)?;
/// arena.alloc(1u8);
/// arena.alloc(2u8);
/// let s = arena.stats();
/// assert_eq!(s.allocations, 2);
/// assert_eq!(s.used, 64 + 1); // 64-byte default alignment: the second byte starts a new line
/// assert_eq!(s.padding, 63);
/// assert_eq!(s.high_water, s.used);
/// assert_eq!(s.failures, 0);
/// assert_eq!(s.kind, Kind::Scratch);
/// # Ok::<(), nalloc::Error>(())
/// ```
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq)]
pub struct Stats {
    /// The arena's name.
    pub name: String,
    /// What it holds.
    pub kind: Kind,
    /// Where its memory lives.
    pub memory: Memory,
    /// Bytes it can hand out.
    pub capacity: usize,
    /// Bytes handed out now, alignment padding included.
    pub used: usize,
    /// Most bytes in use at once since creation.
    pub high_water: usize,
    /// Successful allocations since creation.
    pub allocations: usize,
    /// Allocation requests that failed, whatever the reason (allocations that returned nothing,
    /// refused resizes). Other refusals (rollbacks, resets, wipes, splits) are not counted: they
    /// return an [`Error`](crate::Error).
    pub failures: usize,
    /// Alignment bytes skipped by successful allocations since creation.
    pub padding: usize,
    /// Resets (wipes excluded).
    pub resets: usize,
    /// Successful rollbacks (phases included).
    pub rollbacks: usize,
    /// Wipes, including the one on drop.
    pub wipes: usize,
    /// Bytes zeroed by those wipes.
    pub wiped_bytes: usize,
    /// Bytes of address space or device memory held, guards included.
    pub reserved: usize,
    /// Bytes of inaccessible memory on each side (0 for device arenas).
    pub guard_size: usize,
    /// Address of the first byte (a device address for device arenas).
    pub base: usize,
    /// Hash of every (offset, size) handed out since creation and of the resets between them:
    /// equal sequences of requests give equal digests, run after run.
    pub layout_digest: u64,
    /// Pinned memory: how long page-locking took at creation.
    pub pin_time: Duration,
    /// The flags the arena was created with.
    pub requested: Flags,
    /// Requested features that are not in force.
    pub missing: Flags,
    /// Inaccessible guards on both sides are in place.
    pub guard_pages: bool,
    /// Every page was prefaulted at creation.
    pub populated: bool,
    /// Transparent huge pages were accepted.
    pub huge_pages: bool,
    /// The pages are locked (never swapped).
    pub locked: bool,
    /// Kept out of core dumps.
    pub no_dump: bool,
    /// A forked child does not see the contents.
    pub wipe_on_fork: bool,
    /// The arena is wiped before its memory is released.
    pub wipe_on_destroy: bool,
    /// memfd_secret backing: out of the kernel's direct map.
    pub secret: bool,
    /// Page-locked and registered with CUDA.
    pub pinned: bool,
    /// Pinned memory was asked for, but it is locked host memory (no driver).
    pub pin_fallback: bool,
    /// Memory checkers told about every block.
    pub checkers: Checkers,
    /// Bytes of poisoned gap kept after each block while a checker watches, 0 otherwise.
    pub redzone: usize,
    /// Bytes of those gaps reserved by successful allocations since creation.
    pub redzone_bytes: usize,
    /// Bytes that threads' private chunks hold and have not handed out yet (the thread cache,
    /// and the chunks routed blocks come from): taken from the arena, not counted in `used`.
    pub cached: usize,
    /// Bytes free below the arena's offset that cannot be reused yet: freed routed blocks that
    /// wait for the blocks above them to be freed, and free stretches later chunks reuse; not
    /// counted in `used`.
    pub deferred: usize,
    /// Routed blocks (the global allocator's, and C's malloc family's) allocated here and not
    /// freed yet. While there are any, [`Arena::reset`](crate::Arena::reset) and
    /// [`Arena::wipe`](crate::Arena::wipe) refuse.
    pub live_blocks: usize,
    /// Routed requests this arena had no room for, served by the fallback allocator instead.
    pub fallbacks: usize,
    /// Bytes the prefault helper thread faulted in ahead of the allocating threads
    /// ([`Flags::PREFAULT_AHEAD`]); some may have been resident already.
    pub prefaulted: usize,
    /// Bytes the prefault helper had the kernel collapse into transparent huge pages.
    pub collapsed: usize,
    /// [`Arena::stats_resident`](crate::Arena::stats_resident) only: bytes of the arena's
    /// memory that are resident now (the kernel's Rss for its mapping). Meaningful only when
    /// `resident_known` is true.
    pub resident_bytes: usize,
    /// [`Arena::stats_resident`](crate::Arena::stats_resident) only: of those, bytes in
    /// transparent huge pages (AnonHugePages).
    pub huge_bytes: usize,
    /// `resident_bytes` and `huge_bytes` were read from the kernel: false from
    /// [`Arena::stats`](crate::Arena::stats), and from `stats_resident` where the kernel cannot
    /// say for this arena alone (lanes, whose memory is a slice of their parent's mapping;
    /// device arenas; /proc not mounted).
    pub resident_known: bool,
}

impl Stats {
    pub(crate) fn from_raw(s: &sys::nalloc_stats) -> Stats {
        let name = if s.name.is_null() {
            String::new()
        } else {
            // SAFETY: a NUL-terminated string valid while the arena lives, which it does: the
            // caller holds a borrow of it.
            unsafe { CStr::from_ptr(s.name) }
                .to_string_lossy()
                .into_owned()
        };
        Stats {
            name,
            kind: Kind::from_raw(s.kind),
            memory: Memory::from_raw(s.memory),
            capacity: s.capacity,
            used: s.used,
            high_water: s.high_water,
            allocations: s.allocations,
            failures: s.failures,
            padding: s.padding,
            resets: s.resets,
            rollbacks: s.rollbacks,
            wipes: s.wipes,
            wiped_bytes: s.wiped_bytes,
            reserved: s.reserved,
            guard_size: s.guard_size,
            base: s.base,
            layout_digest: s.layout_digest,
            pin_time: Duration::try_from_secs_f64(s.pin_seconds).unwrap_or(Duration::ZERO),
            requested: Flags::from_bits_retain(s.requested),
            missing: Flags::from_bits_retain(s.missing),
            guard_pages: s.guard_pages,
            populated: s.populated,
            huge_pages: s.huge_pages,
            locked: s.locked,
            no_dump: s.no_dump,
            wipe_on_fork: s.wipe_on_fork,
            wipe_on_destroy: s.wipe_on_destroy,
            secret: s.secret,
            pinned: s.pinned,
            pin_fallback: s.pin_fallback,
            checkers: Checkers::from_bits_retain(s.checkers),
            redzone: s.redzone,
            redzone_bytes: s.redzone_bytes,
            cached: s.cached,
            deferred: s.deferred,
            live_blocks: s.live_blocks,
            fallbacks: s.fallbacks,
            prefaulted: s.prefaulted,
            collapsed: s.collapsed,
            resident_bytes: s.resident_bytes,
            huge_bytes: s.huge_bytes,
            resident_known: s.resident_known,
        }
    }
}
