//! The three-arena partition of a prover, and sizing it from a dry run.
//!
//! A [`Context`] is C's `nalloc_ctx`: a polynomial, a witness and a scratch arena, each its own
//! mapping with its own guards, created all or nothing. A kind can be left out, but only on
//! purpose ([`ContextConfig::omit`]): a capacity of 0 is refused, as C refuses it, so a size
//! computed as 0 by mistake fails at creation instead of surfacing later as a missing arena.
//!
//! The C context owns its arenas (C refuses to destroy one alone), so each arena here holds a
//! reference count on the context (see handle.rs), and the context is destroyed when the last of
//! it and its arenas is dropped. That makes it safe to hand out `&mut Arena` for a context's
//! arenas: resets and phases work on them exactly as on standalone arenas.
//!
//! Sizing follows the C recipe: run the prover once on a dry-run context
//! ([`ContextConfig::dry_run`]: address space only, committed as touched), read its
//! [`Profile`], and create the real context from the profile plus headroom
//! ([`ContextConfig::from_profile`]). A profile is plain data with public fields, to be stored
//! next to a proving key and reused.

use std::fmt;
use std::ptr::NonNull;
use std::sync::Arc;

use crate::config::device_refused;
use crate::error::{Error, Status};
use crate::handle::{CtxHandle, Handle, Owner, Policy};
use crate::{sys, Arena, ArenaConfig, Kind, Memory};

/// The configuration of a [`Context`]: one [`ArenaConfig`] per kind, and the kinds to leave out
/// ([`omit`](Self::omit)). Every kind that is not omitted needs a capacity: 0 is refused by
/// [`build`](Self::build).
///
/// ```
/// use nalloc::{ContextConfig, Flags, Kind, Memory};
///
/// let mut config = ContextConfig::new(Memory::Host, 64 << 20, 1 << 20, 16 << 20);
/// config.arena_mut(Kind::Poly).enable(Flags::POPULATE);
/// config.arena_mut(Kind::Scratch).name("temporaries");
/// let ctx = config.build()?;
/// assert_eq!(ctx.arena(Kind::Scratch).unwrap().stats().name, "temporaries");
/// # Ok::<(), nalloc::Error>(())
/// ```
#[derive(Clone)]
pub struct ContextConfig {
    arenas: [ArenaConfig; 3],
    omit: u32, // bit 1 << kind: no arena of that kind (C's nalloc_ctx_config.omit)
}

impl ContextConfig {
    /// Each kind's defaults in `memory`, with the given capacities in bytes
    /// (`nalloc_ctx_config_init`), every kind included. A capacity of 0 is kept as given and
    /// refused by [`build`](Self::build): to have no arena of a kind, [`omit`](Self::omit) it.
    ///
    /// ```
    /// use nalloc::{ContextConfig, Kind, Memory, Status};
    /// let mut config = ContextConfig::new(Memory::Host, 1 << 20, 0, 1 << 20);
    /// assert_eq!(config.arena(Kind::Witness).as_raw().capacity, 0);
    /// assert_eq!(config.build().unwrap_err().status(), Status::Invalid); // 0 is no size
    /// config.omit(Kind::Witness); // no witness arena, on purpose
    /// assert!(config.build()?.witness().is_none());
    /// # Ok::<(), nalloc::Error>(())
    /// ```
    pub fn new(memory: Memory, poly: usize, witness: usize, scratch: usize) -> ContextConfig {
        let mut raw = std::mem::MaybeUninit::<sys::nalloc_ctx_config>::zeroed();
        // SAFETY: init writes every field.
        let raw = unsafe {
            sys::nalloc_ctx_config_init(raw.as_mut_ptr(), memory.raw(), poly, witness, scratch);
            raw.assume_init()
        };
        ContextConfig::from_raw(&raw)
    }

    fn from_raw(raw: &sys::nalloc_ctx_config) -> ContextConfig {
        ContextConfig {
            arenas: raw.arenas.map(ArenaConfig::from_raw),
            omit: raw.omit,
        }
    }

    /// The configuration of a dry run for a context whose arenas will live in `memory`: host
    /// arenas of `reserve` bytes each (0: 64 GiB) that take address space and commit only what
    /// the workload touches, with `memory`'s alignment policy, so blocks land where they will
    /// for real (`nalloc_ctx_config_init_dry_run`).
    ///
    /// ```
    /// use nalloc::{ContextConfig, Flags, Kind, Memory};
    /// let dry = ContextConfig::dry_run(Memory::Host, 1 << 30);
    /// assert!(dry.arena(Kind::Poly).flags_set().contains(Flags::NORESERVE));
    /// ```
    pub fn dry_run(memory: Memory, reserve: usize) -> ContextConfig {
        let mut raw = std::mem::MaybeUninit::<sys::nalloc_ctx_config>::zeroed();
        // SAFETY: init writes every field.
        let raw = unsafe {
            sys::nalloc_ctx_config_init_dry_run(raw.as_mut_ptr(), memory.raw(), reserve);
            raw.assume_init()
        };
        ContextConfig::from_raw(&raw)
    }

    /// A configuration for `memory` with each capacity sized from a dry run's `profile`: its
    /// high-water mark plus `headroom` (0.10 is 10% more), plus room for its lanes, in whole
    /// pages (`nalloc_ctx_config_from_profile`). Kinds the dry run did not have are omitted.
    /// [`Status::Invalid`] for a headroom that is negative, not finite, or overflows.
    ///
    /// ```
    /// use nalloc::{ContextConfig, Kind, Memory, Profile};
    ///
    /// let mut profile = Profile::default();
    /// profile.kinds = [true, false, true];
    /// profile.high_water = [1 << 20, 0, 4096];
    /// let config = ContextConfig::from_profile(Memory::Host, &profile, 0.5)?;
    /// assert_eq!(config.arena(Kind::Poly).as_raw().capacity, 3 << 19);
    /// assert!(config.is_omitted(Kind::Witness));
    /// assert!(ContextConfig::from_profile(Memory::Host, &profile, -1.0).is_err());
    /// # Ok::<(), nalloc::Error>(())
    /// ```
    pub fn from_profile(
        memory: Memory,
        profile: &Profile,
        headroom: f64,
    ) -> Result<ContextConfig, Error> {
        let mut raw = std::mem::MaybeUninit::<sys::nalloc_ctx_config>::zeroed();
        let p = profile.to_raw();
        // SAFETY: valid pointers; on success every field is written, on failure config is
        // untouched and not read.
        unsafe {
            Error::check(sys::nalloc_ctx_config_from_profile(
                raw.as_mut_ptr(),
                memory.raw(),
                &p,
                headroom,
            ))?;
            Ok(ContextConfig::from_raw(&raw.assume_init()))
        }
    }

    /// The configuration of the arena of `kind`.
    ///
    /// ```
    /// use nalloc::{ContextConfig, Kind, Memory};
    /// let config = ContextConfig::new(Memory::Host, 1 << 20, 1 << 20, 1 << 20);
    /// assert_eq!(config.arena(Kind::Witness).kind(), Kind::Witness);
    /// ```
    pub fn arena(&self, kind: Kind) -> &ArenaConfig {
        &self.arenas[kind.index()]
    }

    /// The configuration of the arena of `kind`, to change.
    ///
    /// ```
    /// use nalloc::{ContextConfig, Kind, Memory};
    /// let mut config = ContextConfig::new(Memory::Host, 1 << 20, 1 << 20, 1 << 20);
    /// config.arena_mut(Kind::Scratch).capacity(4 << 20);
    /// assert_eq!(config.build()?.scratch().unwrap().capacity(), 4 << 20);
    /// # Ok::<(), nalloc::Error>(())
    /// ```
    pub fn arena_mut(&mut self, kind: Kind) -> &mut ArenaConfig {
        &mut self.arenas[kind.index()]
    }

    /// Leave the arena of `kind` out: the context will have none, and the kind's configuration
    /// is ignored (`nalloc_ctx_config_omit`).
    ///
    /// ```
    /// use nalloc::{ContextConfig, Kind, Memory};
    /// let ctx = ContextConfig::new(Memory::Host, 1 << 20, 0, 0)
    ///     .omit(Kind::Witness)
    ///     .omit(Kind::Scratch)
    ///     .build()?;
    /// assert!(ctx.poly().is_some() && ctx.witness().is_none() && ctx.scratch().is_none());
    /// # Ok::<(), nalloc::Error>(())
    /// ```
    pub fn omit(&mut self, kind: Kind) -> &mut Self {
        self.omit |= 1 << kind.index();
        self
    }

    /// Have an arena of `kind` again, after [`omit`](Self::omit) (or a profile whose dry run
    /// had none of that kind); it needs a capacity.
    ///
    /// ```
    /// use nalloc::{ContextConfig, Kind, Memory, Profile};
    ///
    /// let mut profile = Profile::default();
    /// profile.kinds[Kind::Poly.index()] = true;
    /// profile.high_water[Kind::Poly.index()] = 1 << 20;
    /// let mut config = ContextConfig::from_profile(Memory::Host, &profile, 0.1)?;
    /// config.include(Kind::Scratch).arena_mut(Kind::Scratch).capacity(1 << 20);
    /// assert!(config.build()?.scratch().is_some());
    /// # Ok::<(), nalloc::Error>(())
    /// ```
    pub fn include(&mut self, kind: Kind) -> &mut Self {
        self.omit &= !(1 << kind.index());
        self
    }

    /// Whether the arena of `kind` is left out.
    ///
    /// ```
    /// use nalloc::{ContextConfig, Kind, Memory};
    /// let mut config = ContextConfig::new(Memory::Host, 1 << 20, 1 << 20, 1 << 20);
    /// assert!(!config.is_omitted(Kind::Scratch));
    /// assert!(config.omit(Kind::Scratch).is_omitted(Kind::Scratch));
    /// ```
    pub fn is_omitted(&self, kind: Kind) -> bool {
        self.omit & (1 << kind.index()) != 0
    }

    /// Create the context: its arenas, all or nothing, but those omitted (`nalloc_ctx_create`).
    /// Host and pinned memory only, like [`ArenaConfig::build`]. [`Status::Invalid`] for a kind
    /// that is neither omitted nor given a capacity.
    ///
    /// ```
    /// use nalloc::{ContextConfig, Memory, Status};
    ///
    /// let ctx = ContextConfig::new(Memory::Host, 1 << 20, 1 << 20, 1 << 20).build()?;
    /// assert!(ctx.poly().is_some());
    /// let err = ContextConfig::new(Memory::Device, 1 << 20, 1 << 20, 1 << 20).build().unwrap_err();
    /// assert_eq!(err.status(), Status::Invalid);
    /// let err = ContextConfig::new(Memory::Host, 1 << 20, 0, 1 << 20).build().unwrap_err();
    /// assert!(err.message().unwrap().contains("ContextConfig::omit"));
    /// # Ok::<(), nalloc::Error>(())
    /// ```
    pub fn build(&self) -> Result<Context, Error> {
        for kind in Kind::ALL {
            if self.is_omitted(kind) {
                continue;
            }
            let a = self.arena(kind);
            if a.memory() == Memory::Device {
                return Err(device_refused());
            }
            if !a.creates_arena() {
                return Err(Error::new(
                    Status::Invalid,
                    format!(
                        "ContextConfig::build: the {} arena has capacity 0; to create none, \
                         omit it (ContextConfig::omit)",
                        kind.name()
                    ),
                ));
            }
            a.check()?;
        }
        let raw = sys::nalloc_ctx_config {
            arenas: [0, 1, 2].map(|k| self.arenas[k].as_raw()),
            omit: self.omit,
            reserved: 0,
        };
        let mut ctx = std::ptr::null_mut();
        // SAFETY: a valid configuration whose names live in self for the call; a valid out pointer.
        Error::check(unsafe { sys::nalloc_ctx_create(&raw, &mut ctx) })?;
        let ctx = NonNull::new(ctx)
            .ok_or_else(|| Error::new(Status::State, "nalloc_ctx_create returned no context"))?;
        let shared = Arc::new(CtxHandle(ctx));
        let arenas = Kind::ALL.map(|kind| {
            if self.is_omitted(kind) {
                return None; // C has none, and would record a failure if asked for it
            }
            // SAFETY: the context is live, and has an arena of every kind not omitted.
            let a = unsafe { sys::nalloc_ctx_arena(ctx.as_ptr(), kind.raw()) };
            NonNull::new(a).map(|a| {
                let policy = Policy::of(&raw.arenas[kind.index()]);
                // SAFETY: the context's arena, kept alive by the context's reference count.
                Arena::from_handle(unsafe {
                    Handle::new(a, Owner::Context(Arc::clone(&shared)), policy)
                })
            })
        });
        Ok(Context { shared, arenas })
    }
}

/// A prover's three arenas: polynomial, witness and scratch, each its own mapping
/// (`nalloc_ctx`). The witness arena is wiped when the context is dropped.
///
/// ```
/// use nalloc::{Context, Kind, Memory};
///
/// let mut ctx = Context::new(Memory::Host, 16 << 20, 1 << 20, 4 << 20)?;
/// for _proof in 0..3 {
///     let [poly, witness, scratch] = ctx.arenas_mut();
///     let (poly, witness, scratch) = (poly.unwrap(), witness.unwrap(), scratch.unwrap());
///     let w = witness.alloc_slice_fill_with(1024, |i| i as u64);
///     let lde = poly.alloc_slice_zeroed::<u64>(2048);
///     scratch.phase(|s| {
///         let twiddles = s.alloc_slice_fill_with(1024, |i| i as u64);
///         lde[..1024].copy_from_slice(w);
///         lde[1] += twiddles[1];
///     });
///     poly.reset()?;
///     witness.wipe()?;
/// }
/// # Ok::<(), nalloc::Error>(())
/// ```
pub struct Context {
    shared: Arc<CtxHandle>,
    arenas: [Option<Arena>; 3],
}

impl Context {
    /// A context of all three arenas, with each kind's defaults in `memory` and the given
    /// capacities in bytes. Every capacity must be a size: 0 is refused with
    /// [`Status::Invalid`]. A context without an arena of some kind is made with
    /// [`ContextConfig::omit`].
    ///
    /// ```
    /// use nalloc::{Context, ContextConfig, Kind, Memory, Status};
    /// let ctx = Context::new(Memory::Host, 1 << 20, 1 << 20, 1 << 20)?;
    /// assert!(ctx.arena(Kind::Witness).is_some());
    /// let err = Context::new(Memory::Host, 1 << 20, 0, 1 << 20).unwrap_err();
    /// assert_eq!(err.status(), Status::Invalid);
    /// let ctx = ContextConfig::new(Memory::Host, 1 << 20, 0, 1 << 20)
    ///     .omit(Kind::Witness)
    ///     .build()?;
    /// assert!(ctx.arena(Kind::Witness).is_none());
    /// # Ok::<(), nalloc::Error>(())
    /// ```
    pub fn new(
        memory: Memory,
        poly: usize,
        witness: usize,
        scratch: usize,
    ) -> Result<Context, Error> {
        ContextConfig::new(memory, poly, witness, scratch).build()
    }

    /// The arena of `kind`, if the context has one.
    ///
    /// ```
    /// use nalloc::{Context, Kind, Memory};
    /// let ctx = Context::new(Memory::Host, 1 << 20, 1 << 20, 1 << 20)?;
    /// let x = ctx.arena(Kind::Poly).unwrap().alloc(5u64);
    /// assert_eq!(*x, 5);
    /// # Ok::<(), nalloc::Error>(())
    /// ```
    pub fn arena(&self, kind: Kind) -> Option<&Arena> {
        self.arenas[kind.index()].as_ref()
    }

    /// The arena of `kind`, to reset, wipe or run a phase on.
    ///
    /// ```
    /// use nalloc::{Context, Kind, Memory};
    /// let mut ctx = Context::new(Memory::Host, 1 << 20, 1 << 20, 1 << 20)?;
    /// let scratch = ctx.arena_mut(Kind::Scratch).unwrap();
    /// scratch.alloc(1u8);
    /// scratch.reset()?;
    /// # Ok::<(), nalloc::Error>(())
    /// ```
    pub fn arena_mut(&mut self, kind: Kind) -> Option<&mut Arena> {
        self.arenas[kind.index()].as_mut()
    }

    /// All three arenas, indexed by [`Kind::index`].
    ///
    /// ```
    /// use nalloc::{ContextConfig, Kind, Memory};
    /// let ctx = ContextConfig::new(Memory::Host, 1 << 20, 1 << 20, 0)
    ///     .omit(Kind::Scratch)
    ///     .build()?;
    /// let [poly, witness, scratch] = ctx.arenas();
    /// assert!(poly.is_some() && witness.is_some() && scratch.is_none());
    /// # Ok::<(), nalloc::Error>(())
    /// ```
    pub fn arenas(&self) -> [Option<&Arena>; 3] {
        let [p, w, s] = &self.arenas;
        [p.as_ref(), w.as_ref(), s.as_ref()]
    }

    /// All three arenas, each borrowed mutably on its own (reset the scratch arena while
    /// references into the polynomial arena live).
    ///
    /// ```
    /// use nalloc::{Context, Memory};
    /// let mut ctx = Context::new(Memory::Host, 1 << 20, 1 << 20, 1 << 20)?;
    /// let [poly, _, scratch] = ctx.arenas_mut();
    /// let (poly, scratch) = (poly.unwrap(), scratch.unwrap());
    /// let kept = poly.alloc(1u64);
    /// scratch.alloc(2u64);
    /// scratch.reset()?;
    /// *kept += 1;
    /// # Ok::<(), nalloc::Error>(())
    /// ```
    pub fn arenas_mut(&mut self) -> [Option<&mut Arena>; 3] {
        let [p, w, s] = &mut self.arenas;
        [p.as_mut(), w.as_mut(), s.as_mut()]
    }

    /// The polynomial arena, if any.
    ///
    /// ```
    /// let ctx = nalloc::Context::new(nalloc::Memory::Host, 1 << 20, 1 << 20, 1 << 20)?;
    /// assert_eq!(ctx.poly().unwrap().kind(), nalloc::Kind::Poly);
    /// # Ok::<(), nalloc::Error>(())
    /// ```
    pub fn poly(&self) -> Option<&Arena> {
        self.arena(Kind::Poly)
    }

    /// The witness arena, if any.
    ///
    /// ```
    /// let ctx = nalloc::Context::new(nalloc::Memory::Host, 1 << 20, 1 << 20, 1 << 20)?;
    /// assert!(ctx.witness().unwrap().stats().wipe_on_destroy);
    /// # Ok::<(), nalloc::Error>(())
    /// ```
    pub fn witness(&self) -> Option<&Arena> {
        self.arena(Kind::Witness)
    }

    /// The scratch arena, if any.
    ///
    /// ```
    /// let ctx = nalloc::Context::new(nalloc::Memory::Host, 1 << 20, 1 << 20, 1 << 20)?;
    /// assert_eq!(ctx.scratch().unwrap().capacity(), 1 << 20);
    /// # Ok::<(), nalloc::Error>(())
    /// ```
    pub fn scratch(&self) -> Option<&Arena> {
        self.arena(Kind::Scratch)
    }

    /// The peaks the context's arenas, and the lanes split from them, have reached so far
    /// (`nalloc_ctx_profile`): call it after a dry run of the workload.
    ///
    /// ```
    /// use nalloc::{ContextConfig, Kind, Memory};
    ///
    /// let dry = ContextConfig::dry_run(Memory::Host, 1 << 30).build()?;
    /// dry.poly().unwrap().alloc_slice_zeroed::<u64>(100_000);
    /// let profile = dry.profile()?;
    /// assert_eq!(profile.high_water[Kind::Poly.index()], 800_000);
    /// drop(dry);
    /// let ctx = ContextConfig::from_profile(Memory::Host, &profile, 0.10)?.build()?;
    /// assert!(ctx.poly().unwrap().capacity() >= 880_000);
    /// # Ok::<(), nalloc::Error>(())
    /// ```
    pub fn profile(&self) -> Result<Profile, Error> {
        let mut raw = std::mem::MaybeUninit::<sys::nalloc_profile>::zeroed();
        let size = std::mem::size_of::<sys::nalloc_profile>();
        // SAFETY: the context is live; profile is writable for `size` bytes, and zeroed, so that
        // what C does not write (a library older than these bindings) reads as 0.
        unsafe {
            Error::check(sys::nalloc_ctx_profile_sized(
                self.shared.0.as_ptr(),
                raw.as_mut_ptr(),
                size,
            ))?;
            Ok(Profile::from_raw(&raw.assume_init()))
        }
    }

    /// The C handle, for calls this crate does not wrap; valid while the context lives.
    ///
    /// ```
    /// let ctx = nalloc::Context::new(nalloc::Memory::Host, 1 << 20, 1 << 20, 1 << 20)?;
    /// let poly = unsafe { nalloc::sys::nalloc_ctx_arena(ctx.as_raw(), nalloc::sys::NALLOC_KIND_POLY) };
    /// assert_eq!(poly, ctx.poly().unwrap().as_raw());
    /// # Ok::<(), nalloc::Error>(())
    /// ```
    pub fn as_raw(&self) -> *mut sys::nalloc_ctx {
        self.shared.0.as_ptr()
    }
}

impl fmt::Debug for ContextConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let omitted: Vec<Kind> = Kind::ALL
            .into_iter()
            .filter(|&k| self.is_omitted(k))
            .collect();
        f.debug_struct("ContextConfig")
            .field("arenas", &self.arenas)
            .field("omitted", &omitted)
            .finish()
    }
}

impl fmt::Debug for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field("arenas", &self.arenas)
            .finish()
    }
}

/// What a dry run needed, per kind (C's `nalloc_profile`), indexed by [`Kind::index`]. Plain
/// data: store it, and size later contexts from it without running the dry run again.
///
/// ```
/// use nalloc::{Kind, Profile};
///
/// let mut p = Profile::default();
/// p.kinds[Kind::Poly.index()] = true;
/// p.lane_high_water[Kind::Poly.index()] = 10_000;
/// p.lanes[Kind::Poly.index()] = 4;
/// assert_eq!(p.lane_capacity(Kind::Poly, 0.0), 12_288); // whole pages
/// ```
#[non_exhaustive]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Profile {
    /// Whether the context had an arena of each kind.
    pub kinds: [bool; 3],
    /// Bytes: each arena's peak use, padding included, its lanes' blocks left out.
    pub high_water: [usize; 3],
    /// Bytes: the largest peak of any lane split directly from each arena; 0 without lanes.
    pub lane_high_water: [usize; 3],
    /// The most lanes one split made from each arena.
    pub lanes: [usize; 3],
}

impl Profile {
    fn from_raw(raw: &sys::nalloc_profile) -> Profile {
        Profile {
            kinds: [0, 1, 2].map(|k| raw.kinds & (1 << k) != 0),
            high_water: raw.high_water,
            lane_high_water: raw.lane_high_water,
            lanes: raw.lanes,
        }
    }

    fn to_raw(self) -> sys::nalloc_profile {
        sys::nalloc_profile {
            version: sys::NALLOC_PROFILE_VERSION,
            struct_size: std::mem::size_of::<sys::nalloc_profile>() as u32,
            kinds: (0..3).filter(|&k| self.kinds[k]).map(|k| 1u32 << k).sum(),
            unused: 0,
            high_water: self.high_water,
            lane_high_water: self.lane_high_water,
            lanes: self.lanes,
        }
    }

    /// The capacity to give each lane split from the arena of `kind` in a context sized from
    /// this profile: the lanes' high-water mark plus `headroom`, in whole pages; 0 when the dry
    /// run split no lanes from it, or for a bad headroom (`nalloc_profile_lane_capacity`).
    ///
    /// ```
    /// let p = nalloc::Profile::default();
    /// assert_eq!(p.lane_capacity(nalloc::Kind::Scratch, 0.1), 0); // no lanes in the dry run
    /// ```
    pub fn lane_capacity(&self, kind: Kind, headroom: f64) -> usize {
        let raw = self.to_raw();
        // SAFETY: a valid profile.
        unsafe { sys::nalloc_profile_lane_capacity(&raw, kind.raw(), headroom) }
    }
}
