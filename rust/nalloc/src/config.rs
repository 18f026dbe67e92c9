//! The arena configuration builder: C's `nalloc_arena_config`, field for field.
//!
//! `ArenaConfig::new` fills the configuration with `nalloc_arena_config_init`, so every field
//! starts at the kind's and the memory's defaults (and at whatever `NALLOC_*` environment
//! overrides the C library reads), exactly as a C caller's would. The setters change one field
//! each and are not checked here: the C library checks the whole configuration when the arena is
//! created, and a bad one comes back as [`Status::Invalid`](crate::Status::Invalid). The name is
//! the one field C does not hold by value; the builder keeps it as a `CString` and points the
//! C struct at it only for the call that creates the arena.

use std::ffi::CString;
use std::fmt;

use crate::error::{Error, Status};
use crate::{handle, sys, Arena, Flags, Kind, Memory};

/// The configuration of one arena: `nalloc_arena_config`, with the kind's defaults.
///
/// ```
/// use nalloc::{ArenaConfig, Flags, Kind, Memory};
///
/// let arena = ArenaConfig::new(Kind::Poly, Memory::Host, 64 << 20)
///     .default_align(128)
///     .large_threshold(1 << 16)
///     .enable(Flags::THREAD_CACHE | Flags::PREFAULT_AHEAD)
///     .disable(Flags::HUGEPAGES)
///     .guard_size(64 << 10)
///     .name("columns")
///     .build()?;
/// assert_eq!(arena.stats().name, "columns");
/// let v = arena.alloc_slice_copy(&[1u32; 100]);
/// assert_eq!(v.as_ptr() as usize % 128, 0);
/// # Ok::<(), nalloc::Error>(())
/// ```
#[derive(Clone)]
pub struct ArenaConfig {
    raw: sys::nalloc_arena_config, // name is NULL here; see to_raw
    name: Option<CString>,
    bad_name: bool,
    exit_wipe_promised: bool, // WIPE_AT_EXIT came through the unsafe wipe_at_exit
}

// SAFETY: the raw struct's pointers are a hint (fixed_address, never dereferenced by Rust) and
// NULL (name); the name lives in the CString.
unsafe impl Send for ArenaConfig {}
unsafe impl Sync for ArenaConfig {}

impl ArenaConfig {
    /// The defaults for `kind` in `memory`, with `capacity` bytes
    /// (`nalloc_arena_config_init`), but for [`Flags::WIPE_AT_EXIT`], which C sets for witness
    /// arenas and which only the `unsafe` [`ArenaConfig::wipe_at_exit`] turns on here.
    ///
    /// ```
    /// use nalloc::{ArenaConfig, Flags, Kind, Memory};
    ///
    /// let witness = ArenaConfig::new(Kind::Witness, Memory::Host, 1 << 20);
    /// assert!(witness.flags_set().contains(Flags::LOCK | Flags::WIPE_ON_DESTROY));
    /// ```
    pub fn new(kind: Kind, memory: Memory, capacity: usize) -> ArenaConfig {
        let mut raw = std::mem::MaybeUninit::<sys::nalloc_arena_config>::zeroed();
        // SAFETY: init writes every field of the struct.
        let raw = unsafe {
            sys::nalloc_arena_config_init(raw.as_mut_ptr(), kind.raw(), memory.raw(), capacity);
            raw.assume_init()
        };
        ArenaConfig::from_raw(raw)
    }

    /// A configuration C filled in (a context's), its name dropped, and the exit-time wipe
    /// off (see [`ArenaConfig::wipe_at_exit`]).
    pub(crate) fn from_raw(mut raw: sys::nalloc_arena_config) -> ArenaConfig {
        raw.name = std::ptr::null();
        raw.flags &= !sys::NALLOC_FLAG_WIPE_AT_EXIT;
        ArenaConfig {
            raw,
            name: None,
            bad_name: false,
            exit_wipe_promised: false,
        }
    }

    /// Zero the arena at process exit if it is still alive then ([`Flags::WIPE_AT_EXIT`]), as C
    /// does for witness arenas by default: for secrets in an arena that may outlive `main` (a
    /// leaked or `static` one, or a `std::process::exit` while it lives).
    ///
    /// # Safety
    ///
    /// The C library zeroes the arena's memory in an exit handler, while the process's other
    /// threads still run. From the moment the process starts to exit (`std::process::exit`,
    /// or `main` returning while other threads run), no thread may read or write the arena's
    /// memory through a reference or a routed block: a `&T` it handed out would change under
    /// the reader (a `Box` or `Vec` in it would dangle).
    ///
    /// ```
    /// use nalloc::{ArenaConfig, Flags, Kind, Memory};
    /// let mut c = ArenaConfig::new(Kind::Witness, Memory::Host, 1 << 20);
    /// assert!(!c.flags_set().contains(Flags::WIPE_AT_EXIT));
    /// // SAFETY: no other thread touches the arena's memory while the process exits.
    /// let arena = unsafe { c.wipe_at_exit() }.build()?;
    /// assert!(arena.stats().requested.contains(Flags::WIPE_AT_EXIT));
    /// # Ok::<(), nalloc::Error>(())
    /// ```
    pub unsafe fn wipe_at_exit(&mut self) -> &mut Self {
        self.raw.flags |= sys::NALLOC_FLAG_WIPE_AT_EXIT;
        self.exit_wipe_promised = true;
        self
    }

    /// The kind the configuration was made for.
    ///
    /// ```
    /// let c = nalloc::ArenaConfig::new(nalloc::Kind::Scratch, nalloc::Memory::Host, 4096);
    /// assert_eq!(c.kind(), nalloc::Kind::Scratch);
    /// ```
    pub fn kind(&self) -> Kind {
        Kind::from_raw(self.raw.kind)
    }

    /// The memory the configuration was made for.
    ///
    /// ```
    /// let c = nalloc::ArenaConfig::new(nalloc::Kind::Scratch, nalloc::Memory::Pinned, 4096);
    /// assert_eq!(c.memory(), nalloc::Memory::Pinned);
    /// ```
    pub fn memory(&self) -> Memory {
        Memory::from_raw(self.raw.memory)
    }

    /// The flags set now (the kind's defaults, then what was changed).
    ///
    /// ```
    /// use nalloc::{ArenaConfig, Flags, Kind, Memory};
    /// let c = ArenaConfig::new(Kind::Poly, Memory::Host, 4096);
    /// assert!(c.flags_set().contains(Flags::HUGEPAGES));
    /// ```
    pub fn flags_set(&self) -> Flags {
        Flags::from_bits_retain(self.raw.flags)
    }

    /// Bytes the arena can hand out; the mapping is rounded up to whole pages.
    ///
    /// ```
    /// let mut c = nalloc::ArenaConfig::new(nalloc::Kind::Scratch, nalloc::Memory::Host, 4096);
    /// let arena = c.capacity(1 << 20).build()?;
    /// assert_eq!(arena.capacity(), 1 << 20);
    /// # Ok::<(), nalloc::Error>(())
    /// ```
    pub fn capacity(&mut self, bytes: usize) -> &mut Self {
        self.raw.capacity = bytes;
        self
    }

    /// Bytes, a power of two: the alignment of blocks below the large threshold (default 64 on
    /// the host, 256 on the device).
    ///
    /// ```
    /// let arena = nalloc::ArenaConfig::new(nalloc::Kind::Scratch, nalloc::Memory::Host, 1 << 20)
    ///     .default_align(1024)
    ///     .build()?;
    /// assert_eq!(arena.alloc(1u8) as *mut u8 as usize % 1024, 0);
    /// # Ok::<(), nalloc::Error>(())
    /// ```
    pub fn default_align(&mut self, bytes: usize) -> &mut Self {
        self.raw.default_align = bytes;
        self
    }

    /// Bytes: blocks of at least this size get the large alignment (default 1 MiB).
    ///
    /// ```
    /// let arena = nalloc::ArenaConfig::new(nalloc::Kind::Poly, nalloc::Memory::Host, 1 << 20)
    ///     .large_threshold(256)
    ///     .build()?;
    /// let v = arena.alloc_slice_copy(&[0u64; 64]); // 512 bytes: large
    /// assert_eq!(v.as_ptr() as usize % 4096, 0);
    /// # Ok::<(), nalloc::Error>(())
    /// ```
    pub fn large_threshold(&mut self, bytes: usize) -> &mut Self {
        self.raw.large_threshold = bytes;
        self
    }

    /// Bytes, a power of two: the alignment of large blocks (default 4096).
    ///
    /// ```
    /// let arena = nalloc::ArenaConfig::new(nalloc::Kind::Poly, nalloc::Memory::Host, 4 << 20)
    ///     .large_threshold(4096)
    ///     .large_align(1 << 16)
    ///     .build()?;
    /// let v = arena.alloc_slice_copy(&[0u8; 5000]);
    /// assert_eq!(v.as_ptr() as usize % (1 << 16), 0);
    /// # Ok::<(), nalloc::Error>(())
    /// ```
    pub fn large_align(&mut self, bytes: usize) -> &mut Self {
        self.raw.large_align = bytes;
        self
    }

    /// Replace the flags (the kind's defaults included) with `flags`.
    ///
    /// ```
    /// use nalloc::{ArenaConfig, Flags, Kind, Memory};
    /// let mut c = ArenaConfig::new(Kind::Witness, Memory::Host, 1 << 20);
    /// c.flags(Flags::WIPE_ON_DESTROY);
    /// assert_eq!(c.flags_set(), Flags::WIPE_ON_DESTROY);
    /// ```
    pub fn flags(&mut self, flags: Flags) -> &mut Self {
        self.raw.flags = flags.bits();
        self.exit_wipe_promised &= flags.contains(Flags::WIPE_AT_EXIT);
        self
    }

    /// Add `flags` to those set.
    ///
    /// ```
    /// use nalloc::{ArenaConfig, Flags, Kind, Memory};
    /// let arena = ArenaConfig::new(Kind::Scratch, Memory::Host, 1 << 20)
    ///     .enable(Flags::POPULATE)
    ///     .build()?;
    /// let stats = arena.stats();
    /// assert!(stats.populated || stats.missing.contains(Flags::POPULATE));
    /// # Ok::<(), nalloc::Error>(())
    /// ```
    pub fn enable(&mut self, flags: Flags) -> &mut Self {
        self.raw.flags |= flags.bits();
        self
    }

    /// Remove `flags` from those set.
    ///
    /// ```
    /// use nalloc::{ArenaConfig, Flags, Kind, Memory};
    /// let mut c = ArenaConfig::new(Kind::Poly, Memory::Host, 1 << 20);
    /// c.disable(Flags::HUGEPAGES);
    /// assert!(!c.flags_set().contains(Flags::HUGEPAGES));
    /// ```
    pub fn disable(&mut self, flags: Flags) -> &mut Self {
        self.raw.flags &= !flags.bits();
        self.exit_wipe_promised &= !flags.contains(Flags::WIPE_AT_EXIT);
        self
    }

    /// Bytes of inaccessible memory on each side of a host mapping, rounded up to the page
    /// size; 0 means one page.
    ///
    /// ```
    /// let arena = nalloc::ArenaConfig::new(nalloc::Kind::Scratch, nalloc::Memory::Host, 1 << 16)
    ///     .guard_size(1 << 16)
    ///     .build()?;
    /// assert!(arena.stats().guard_size >= 1 << 16);
    /// # Ok::<(), nalloc::Error>(())
    /// ```
    pub fn guard_size(&mut self, bytes: usize) -> &mut Self {
        self.raw.guard_size = bytes;
        self
    }

    /// Host memory: put the arena's first byte at exactly this address (0: anywhere). Creation
    /// fails with [`Status::Os`](crate::Status::Os) if anything is mapped there already; nothing
    /// is ever replaced.
    ///
    /// ```
    /// use nalloc::{ArenaConfig, Kind, Memory};
    /// let first = ArenaConfig::new(Kind::Scratch, Memory::Host, 1 << 16).build()?;
    /// let taken = first.stats().base;
    /// // The address is in use: refused, and the first arena is untouched.
    /// let err = ArenaConfig::new(Kind::Scratch, Memory::Host, 1 << 16)
    ///     .fixed_address(taken)
    ///     .build()
    ///     .unwrap_err();
    /// assert!(err.raw_os_error().is_some());
    /// # Ok::<(), nalloc::Error>(())
    /// ```
    pub fn fixed_address(&mut self, address: usize) -> &mut Self {
        self.raw.fixed_address = address as *mut std::ffi::c_void;
        self
    }

    /// Bytes of poisoned gap after every block while a memory checker (AddressSanitizer,
    /// Valgrind) watches the arena; ignored otherwise.
    ///
    /// ```
    /// let arena = nalloc::ArenaConfig::new(nalloc::Kind::Scratch, nalloc::Memory::Host, 1 << 16)
    ///     .redzone(32)
    ///     .build()?;
    /// let s = arena.stats();
    /// assert!(s.redzone == 0 || s.redzone == 32);
    /// # Ok::<(), nalloc::Error>(())
    /// ```
    pub fn redzone(&mut self, bytes: usize) -> &mut Self {
        self.raw.redzone = bytes;
        self
    }

    /// Device memory: the CUDA device ordinal (default 0).
    ///
    /// ```
    /// let mut c = nalloc::ArenaConfig::new(nalloc::Kind::Poly, nalloc::Memory::Device, 1 << 20);
    /// c.device(1);
    /// assert_eq!(c.as_raw().device, 1);
    /// ```
    pub fn device(&mut self, ordinal: i32) -> &mut Self {
        self.raw.device = ordinal;
        self
    }

    /// Device memory with capacity 0: take this fraction, in (0, 1], of the device's free
    /// memory (less the slack).
    ///
    /// ```
    /// let mut c = nalloc::ArenaConfig::new(nalloc::Kind::Poly, nalloc::Memory::Device, 0);
    /// c.device_fraction(0.9);
    /// assert_eq!(c.as_raw().device_fraction, 0.9);
    /// ```
    pub fn device_fraction(&mut self, fraction: f64) -> &mut Self {
        self.raw.device_fraction = fraction;
        self
    }

    /// Device memory: bytes always left free for kernel loading (default 256 MiB).
    ///
    /// ```
    /// let mut c = nalloc::ArenaConfig::new(nalloc::Kind::Poly, nalloc::Memory::Device, 0);
    /// c.device_slack(64 << 20);
    /// assert_eq!(c.as_raw().device_slack, 64 << 20);
    /// ```
    pub fn device_slack(&mut self, bytes: usize) -> &mut Self {
        self.raw.device_slack = bytes;
        self
    }

    /// Pinned memory: bytes page-locked per cudaHostRegister call (default 1 GiB).
    ///
    /// ```
    /// let mut c = nalloc::ArenaConfig::new(nalloc::Kind::Poly, nalloc::Memory::Pinned, 1 << 30);
    /// c.pin_chunk(256 << 20);
    /// assert_eq!(c.as_raw().pin_chunk, 256 << 20);
    /// ```
    pub fn pin_chunk(&mut self, bytes: usize) -> &mut Self {
        self.raw.pin_chunk = bytes;
        self
    }

    /// The arena's name, for statistics and NVTX (default: the kind's name). A name with a NUL
    /// byte makes [`build`](Self::build) fail with [`Status::Invalid`](crate::Status::Invalid).
    ///
    /// ```
    /// let arena = nalloc::ArenaConfig::new(nalloc::Kind::Scratch, nalloc::Memory::Host, 4096)
    ///     .name("twiddles")
    ///     .build()?;
    /// assert_eq!(arena.stats().name, "twiddles");
    /// # Ok::<(), nalloc::Error>(())
    /// ```
    pub fn name(&mut self, name: &str) -> &mut Self {
        match CString::new(name) {
            Ok(c) => {
                self.name = Some(c);
                self.bad_name = false;
            }
            Err(_) => self.bad_name = true,
        }
        self
    }

    /// The C configuration as it stands. Its `name` points into this builder: valid while the
    /// builder lives and is not changed.
    ///
    /// ```
    /// let c = nalloc::ArenaConfig::new(nalloc::Kind::Poly, nalloc::Memory::Host, 1 << 20);
    /// assert_eq!(c.as_raw().large_align, 4096);
    /// ```
    pub fn as_raw(&self) -> sys::nalloc_arena_config {
        let mut raw = self.raw;
        raw.name = self.name.as_ref().map_or(std::ptr::null(), |n| n.as_ptr());
        raw
    }

    /// What `build` refuses before asking C: a name with a NUL byte, and [`Flags::WIPE_AT_EXIT`]
    /// set through the safe flag setters (only [`ArenaConfig::wipe_at_exit`] may set it).
    pub(crate) fn check(&self) -> Result<(), Error> {
        if self.bad_name {
            return Err(Error::new(
                Status::Invalid,
                "an arena name cannot contain a NUL byte",
            ));
        }
        if self.raw.flags & sys::NALLOC_FLAG_WIPE_AT_EXIT != 0 && !self.exit_wipe_promised {
            return Err(Error::new(
                Status::Invalid,
                "Flags::WIPE_AT_EXIT zeroes the arena while other threads may still use it: \
                 turn it on with the unsafe ArenaConfig::wipe_at_exit",
            ));
        }
        Ok(())
    }

    /// Whether the configuration gives the arena a size: a capacity, or for device memory a
    /// fraction of the free memory (a context refuses a kind that is neither sized nor omitted).
    pub(crate) fn creates_arena(&self) -> bool {
        self.raw.capacity != 0 || self.raw.device_fraction > 0.0
    }

    /// Create the arena. Host and pinned memory only: device memory cannot be touched from the
    /// host, so a device arena is `cuda::DeviceArena` (`build_device`, feature `cuda`) and this
    /// refuses it with [`Status::Invalid`](crate::Status::Invalid).
    ///
    /// ```
    /// use nalloc::{ArenaConfig, Kind, Memory, Status};
    ///
    /// let arena = ArenaConfig::new(Kind::Scratch, Memory::Host, 1 << 20).build()?;
    /// assert_eq!(arena.memory(), Memory::Host);
    /// let err = ArenaConfig::new(Kind::Scratch, Memory::Device, 1 << 20).build().unwrap_err();
    /// assert_eq!(err.status(), Status::Invalid);
    /// # Ok::<(), nalloc::Error>(())
    /// ```
    pub fn build(&self) -> Result<Arena, Error> {
        if self.memory() == Memory::Device {
            return Err(device_refused());
        }
        self.check()?;
        Ok(Arena::from_handle(handle::create(&self.as_raw())?))
    }
}

pub(crate) fn device_refused() -> Error {
    Error::new(
        Status::Invalid,
        "device memory is not host memory: a device arena is a cuda::DeviceArena \
         (ArenaConfig::build_device, feature `cuda`)",
    )
}

impl fmt::Debug for ArenaConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = &self.raw;
        f.debug_struct("ArenaConfig")
            .field("kind", &self.kind())
            .field("memory", &self.memory())
            .field("capacity", &r.capacity)
            .field("default_align", &r.default_align)
            .field("large_threshold", &r.large_threshold)
            .field("large_align", &r.large_align)
            .field("flags", &self.flags_set())
            .field("guard_size", &r.guard_size)
            .field("fixed_address", &r.fixed_address)
            .field("redzone", &r.redzone)
            .field("device", &r.device)
            .field("device_fraction", &r.device_fraction)
            .field("device_slack", &r.device_slack)
            .field("pin_chunk", &r.pin_chunk)
            .field("name", &self.name)
            .finish()
    }
}
