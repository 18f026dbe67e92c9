//! CUDA: device arenas, windows for allocation inside kernels, staging copies (feature `cuda`).
//!
//! Device memory is not host memory, so a device arena is a type of its own, [`DeviceArena`],
//! whose blocks are [`DevicePtr`]s: plain device addresses, `Copy`, to hand to whatever launches
//! kernels (cust, cudarc, or hand-written FFI; all take a `u64` or a `*mut c_void`). Nothing on
//! the host can dereference one, so using them is always the caller's `unsafe` code, and they
//! carry no lifetime; a device pointer is valid until the arena releases its block (reset, wipe,
//! rollback below it, drop). What the borrow checker can still guard, it does: resets and wipes
//! take `&mut self`, and a [`Window`] borrows its arena, so the memory a window's counter lives in
//! cannot be released while the window exists on the host.
//!
//! Streams are raw CUDA runtime handles wrapped in [`Stream`]; making one from a raw pointer is
//! `unsafe` (CUDA dereferences it), the legacy and per-thread default streams are constants.
//!
//! Without a driver or a device, every entry point answers [`Status::NoDevice`], as the C
//! library does; host arenas keep working, and a host arena's [`Arena::wipe_async`] runs at once.
//!
//! ```
//! use nalloc::cuda::{DeviceArena, Stream};
//! use nalloc::{Kind, Status};
//!
//! match DeviceArena::new(Kind::Witness, 256 << 20) {
//!     Ok(mut arena) => {
//!         let secret = arena.alloc(1 << 20)?; // hand secret.addr() to a kernel
//!         assert!(arena.contains(secret));
//!         arena.wipe_async(Stream::PER_THREAD)?;
//!     }
//!     Err(e) => assert_eq!(e.status(), Status::NoDevice),
//! }
//! # Ok::<(), nalloc::Error>(())
//! ```

use std::ffi::{c_void, CStr};
use std::fmt;
use std::marker::PhantomData;

use crate::arena::slice_layout;
use crate::error::{Error, Status};
use crate::handle::{self, Handle};
use crate::{sys, Arena, ArenaConfig, Kind, Mark, Memory, Stats, Zeroable};

/// `Ok` when a CUDA driver and at least one device are usable, [`Status::NoDevice`] otherwise
/// (`nalloc_cuda_available`; probed once per process).
///
/// ```
/// match nalloc::cuda::available() {
///     Ok(()) => println!("a GPU is here"),
///     Err(e) => assert_eq!(e.status(), nalloc::Status::NoDevice),
/// }
/// ```
pub fn available() -> Result<(), Error> {
    // SAFETY: always safe.
    Error::check(unsafe { sys::nalloc_cuda_available() })
}

/// A CUDA stream (`cudaStream_t`), for calls that work in stream order.
///
/// ```
/// use nalloc::cuda::Stream;
/// assert!(Stream::LEGACY.as_raw().is_null());
/// let from_binding = unsafe { Stream::from_raw(Stream::PER_THREAD.as_raw()) };
/// assert_eq!(from_binding, Stream::PER_THREAD);
/// ```
#[repr(transparent)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Stream(sys::cudaStream_t);

// SAFETY: a stream handle may be used from any thread (the CUDA runtime is thread-safe).
unsafe impl Send for Stream {}
unsafe impl Sync for Stream {}

impl Stream {
    /// The legacy default stream (handle 0): it waits for all work on blocking streams.
    pub const LEGACY: Stream = Stream(std::ptr::null_mut());
    /// The per-thread default stream (`cudaStreamPerThread`).
    pub const PER_THREAD: Stream = Stream(sys::cudaStreamPerThread);

    /// A stream from a raw `cudaStream_t` made by any CUDA binding.
    ///
    /// # Safety
    /// `raw` is null, `cudaStreamPerThread`, or a stream created on the current CUDA context
    /// and not destroyed while this `Stream` is in use.
    ///
    /// ```
    /// let raw: *mut std::ffi::c_void = std::ptr::null_mut(); // e.g. cudarc's stream handle
    /// let stream = unsafe { nalloc::cuda::Stream::from_raw(raw) };
    /// assert_eq!(stream, nalloc::cuda::Stream::LEGACY);
    /// ```
    pub unsafe fn from_raw(raw: *mut c_void) -> Stream {
        Stream(raw.cast())
    }

    /// The raw `cudaStream_t`.
    ///
    /// ```
    /// assert!(!nalloc::cuda::Stream::PER_THREAD.as_raw().is_null());
    /// ```
    pub fn as_raw(self) -> *mut c_void {
        self.0.cast()
    }
}

/// A device address handed out by a [`DeviceArena`]: `CUdeviceptr`-compatible (a `u64`,
/// `#[repr(transparent)]`). The host must not dereference it.
///
/// ```
/// use nalloc::cuda::DevicePtr;
/// let p = DevicePtr::from_addr(0x7f00_0000_0000);
/// assert_eq!(p.offset(256).addr(), 0x7f00_0000_0100);
/// assert_eq!(p.as_ptr() as u64, p.addr());
/// ```
#[repr(transparent)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DevicePtr(u64);

impl DevicePtr {
    /// A device pointer from an address (from another binding, or arithmetic).
    ///
    /// ```
    /// assert_eq!(nalloc::cuda::DevicePtr::from_addr(42).addr(), 42);
    /// ```
    pub const fn from_addr(addr: u64) -> DevicePtr {
        DevicePtr(addr)
    }

    /// The address, as the driver API's `CUdeviceptr` (cust, cudarc).
    ///
    /// ```
    /// assert_eq!(nalloc::cuda::DevicePtr::from_addr(7).addr(), 7);
    /// ```
    pub const fn addr(self) -> u64 {
        self.0
    }

    /// The address as a `void *`, as the runtime API takes it.
    ///
    /// ```
    /// assert!(nalloc::cuda::DevicePtr::from_addr(0).as_ptr().is_null());
    /// ```
    pub fn as_ptr(self) -> *mut c_void {
        self.0 as usize as *mut c_void
    }

    /// `bytes` further on.
    ///
    /// ```
    /// assert_eq!(nalloc::cuda::DevicePtr::from_addr(0x1000).offset(0x10).addr(), 0x1010);
    /// ```
    pub const fn offset(self, bytes: u64) -> DevicePtr {
        DevicePtr(self.0.wrapping_add(bytes))
    }
}

/// An arena in GPU memory: one cudaMalloc block, carved by the same bump as host arenas.
/// `Send + Sync`; dropping it frees the block (a witness arena is wiped first, by a kernel).
///
/// ```
/// use nalloc::cuda::DeviceArena;
/// use nalloc::{Kind, Status};
///
/// match DeviceArena::new(Kind::Poly, 64 << 20) {
///     Ok(arena) => {
///         let p = arena.alloc(1 << 20)?;
///         assert_eq!(p.addr() % 4096, 0);
///     }
///     Err(e) => assert_eq!(e.status(), Status::NoDevice), // no GPU here
/// }
/// # Ok::<(), nalloc::Error>(())
/// ```
pub struct DeviceArena {
    h: Handle,
}

impl ArenaConfig {
    /// Create a device arena (memory [`Memory::Device`]); any other memory is refused with
    /// [`Status::Invalid`] (host memory is an [`Arena`]: [`build`](ArenaConfig::build)).
    ///
    /// ```
    /// use nalloc::{ArenaConfig, Kind, Memory, Status};
    ///
    /// let result = ArenaConfig::new(Kind::Scratch, Memory::Device, 0)
    ///     .device_fraction(0.5)
    ///     .build_device();
    /// if let Err(e) = result {
    ///     assert_eq!(e.status(), Status::NoDevice);
    /// }
    /// ```
    pub fn build_device(&self) -> Result<DeviceArena, Error> {
        if self.memory() != Memory::Device {
            return Err(Error::new(
                Status::Invalid,
                "build_device needs Memory::Device; host memory is an Arena",
            ));
        }
        self.check()?;
        Ok(DeviceArena {
            h: handle::create(&self.as_raw())?,
        })
    }
}

impl DeviceArena {
    /// A device arena of `capacity` bytes on device 0 with the defaults of `kind`.
    ///
    /// ```
    /// let result = nalloc::cuda::DeviceArena::new(nalloc::Kind::Witness, 1 << 20);
    /// if let Err(e) = result {
    ///     assert_eq!(e.status(), nalloc::Status::NoDevice);
    /// }
    /// ```
    pub fn new(kind: Kind, capacity: usize) -> Result<DeviceArena, Error> {
        ArenaConfig::new(kind, Memory::Device, capacity).build_device()
    }

    /// What the arena holds.
    ///
    /// ```
    /// if let Ok(a) = nalloc::cuda::DeviceArena::new(nalloc::Kind::Poly, 1 << 20) {
    ///     assert_eq!(a.kind(), nalloc::Kind::Poly);
    /// }
    /// ```
    pub fn kind(&self) -> Kind {
        self.h.kind
    }

    /// Bytes the arena can hand out.
    ///
    /// ```
    /// if let Ok(a) = nalloc::cuda::DeviceArena::new(nalloc::Kind::Poly, 1 << 20) {
    ///     assert_eq!(a.capacity(), 1 << 20);
    /// }
    /// ```
    pub fn capacity(&self) -> usize {
        self.h.capacity
    }

    /// The C handle, for calls this crate does not wrap.
    ///
    /// ```
    /// if let Ok(a) = nalloc::cuda::DeviceArena::new(nalloc::Kind::Poly, 1 << 20) {
    ///     assert!(!a.as_raw().is_null());
    /// }
    /// ```
    pub fn as_raw(&self) -> *mut sys::nalloc_arena {
        self.h.as_ptr()
    }

    /// `size` bytes at the arena's policy alignment (256 bytes, 4 KiB from 1 MiB up).
    /// [`Status::Invalid`] for size 0, [`Status::NoMem`] when there is no room.
    ///
    /// ```
    /// if let Ok(a) = nalloc::cuda::DeviceArena::new(nalloc::Kind::Scratch, 1 << 20) {
    ///     assert_eq!(a.alloc(100)?.addr() % 256, 0);
    ///     assert!(a.alloc(0).is_err());
    ///     assert!(a.alloc_aligned(64, 48).is_err()); // not a power of two
    /// }
    /// # Ok::<(), nalloc::Error>(())
    /// ```
    pub fn alloc(&self, size: usize) -> Result<DevicePtr, Error> {
        self.alloc_aligned(size, 1)
    }

    /// `size` bytes aligned to `align`, a power of two, and to the arena's policy.
    ///
    /// ```
    /// if let Ok(a) = nalloc::cuda::DeviceArena::new(nalloc::Kind::Scratch, 1 << 20) {
    ///     assert_eq!(a.alloc_aligned(10, 1 << 16)?.addr() % (1 << 16), 0);
    /// }
    /// # Ok::<(), nalloc::Error>(())
    /// ```
    pub fn alloc_aligned(&self, size: usize, align: usize) -> Result<DevicePtr, Error> {
        if size == 0 {
            return Err(Error::new(
                Status::Invalid,
                "a device allocation of 0 bytes",
            ));
        }
        if !align.is_power_of_two() {
            let message = format!("alignment {align} is not a power of two");
            return Err(Error::new(Status::Invalid, message));
        }
        Ok(DevicePtr(
            self.h.alloc_bytes(size, align)?.as_ptr() as usize as u64,
        ))
    }

    /// Room for `count` values of `T`, reading as zero (the wipe kernel clears reused memory,
    /// on the legacy default stream, waited for).
    ///
    /// ```
    /// if let Ok(a) = nalloc::cuda::DeviceArena::new(nalloc::Kind::Poly, 1 << 20) {
    ///     let acc = a.alloc_zeroed::<u64>(1024)?;
    ///     assert!(a.contains(acc));
    /// }
    /// # Ok::<(), nalloc::Error>(())
    /// ```
    pub fn alloc_zeroed<T: Zeroable>(&self, count: usize) -> Result<DevicePtr, Error> {
        let layout = slice_layout::<T>(count)?;
        if layout.size() == 0 {
            return Err(Error::new(
                Status::Invalid,
                "a device allocation of 0 bytes",
            ));
        }
        let p = self
            .h
            .alloc_zeroed_bytes(count, std::mem::size_of::<T>(), layout.align())?;
        Ok(DevicePtr(p.as_ptr() as usize as u64))
    }

    /// The arena's current position ([`Arena::mark`]).
    ///
    /// ```
    /// if let Ok(mut a) = nalloc::cuda::DeviceArena::new(nalloc::Kind::Scratch, 1 << 20) {
    ///     let m = a.mark();
    ///     a.alloc(1000)?;
    ///     a.rollback(m)?;
    /// }
    /// # Ok::<(), nalloc::Error>(())
    /// ```
    pub fn mark(&self) -> Mark {
        Mark(self.h.mark())
    }

    /// Release everything allocated since `mark` ([`Arena::rollback`]).
    ///
    /// ```
    /// if let Ok(mut a) = nalloc::cuda::DeviceArena::new(nalloc::Kind::Scratch, 1 << 20) {
    ///     let m = a.mark();
    ///     a.rollback(m)?;
    /// }
    /// # Ok::<(), nalloc::Error>(())
    /// ```
    pub fn rollback(&mut self, mark: Mark) -> Result<(), Error> {
        self.h.rollback(mark.0)
    }

    /// Release everything ([`Arena::reset`]).
    ///
    /// ```
    /// if let Ok(mut a) = nalloc::cuda::DeviceArena::new(nalloc::Kind::Scratch, 1 << 20) {
    ///     a.alloc(1000)?;
    ///     a.reset()?;
    /// }
    /// # Ok::<(), nalloc::Error>(())
    /// ```
    pub fn reset(&mut self) -> Result<(), Error> {
        self.h.reset()
    }

    /// Zero everything handed out since the last wipe with a kernel on the legacy default
    /// stream, wait for it, then reset ([`Arena::wipe`]).
    ///
    /// ```
    /// if let Ok(mut a) = nalloc::cuda::DeviceArena::new(nalloc::Kind::Witness, 1 << 20) {
    ///     a.alloc(1000)?;
    ///     a.wipe()?;
    /// }
    /// # Ok::<(), nalloc::Error>(())
    /// ```
    pub fn wipe(&mut self) -> Result<(), Error> {
        self.h.wipe()
    }

    /// [`wipe`](Self::wipe) in stream order: the kernel is queued on `stream` (a stream of the
    /// arena's device) and this returns at once, the arena already reset on the host
    /// (`nalloc_wipe_async`). Every kernel or copy that touches the arena's old blocks must be
    /// earlier on `stream`, or finished.
    ///
    /// ```
    /// use nalloc::cuda::{DeviceArena, Stream};
    /// if let Ok(mut a) = DeviceArena::new(nalloc::Kind::Witness, 1 << 20) {
    ///     a.alloc(1000)?;
    ///     a.wipe_async(Stream::PER_THREAD)?;
    /// }
    /// # Ok::<(), nalloc::Error>(())
    /// ```
    pub fn wipe_async(&mut self, stream: Stream) -> Result<(), Error> {
        // SAFETY: exclusive access to the arena; a valid stream (Stream's contract).
        Error::check(unsafe { sys::nalloc_wipe_async(self.h.as_ptr(), stream.0) })
    }

    /// Whether `ptr` is inside the arena's block.
    ///
    /// ```
    /// use nalloc::cuda::{DeviceArena, DevicePtr};
    /// if let Ok(a) = DeviceArena::new(nalloc::Kind::Scratch, 1 << 20) {
    ///     let p = a.alloc(10)?;
    ///     assert!(a.contains(p) && !a.contains(DevicePtr::from_addr(0)));
    /// }
    /// # Ok::<(), nalloc::Error>(())
    /// ```
    pub fn contains(&self, ptr: DevicePtr) -> bool {
        usize::try_from(ptr.0).is_ok_and(|a| self.h.contains(a))
    }

    /// A snapshot of the arena's statistics (`base` is a device address).
    ///
    /// ```
    /// if let Ok(a) = nalloc::cuda::DeviceArena::new(nalloc::Kind::Scratch, 1 << 20) {
    ///     assert_eq!(a.stats().memory, nalloc::Memory::Device);
    /// }
    /// ```
    pub fn stats(&self) -> Stats {
        let raw = self
            .h
            .raw_stats()
            .expect("nalloc_arena_stats cannot fail for a live arena");
        Stats::from_raw(&raw)
    }

    /// Print the statistics to stderr.
    ///
    /// ```
    /// if let Ok(a) = nalloc::cuda::DeviceArena::new(nalloc::Kind::Scratch, 1 << 20) {
    ///     a.print_stats()?;
    /// }
    /// # Ok::<(), nalloc::Error>(())
    /// ```
    pub fn print_stats(&self) -> Result<(), Error> {
        self.h.print_stats()
    }

    /// A window of `capacity` bytes for allocation inside kernels, with 16-byte granules
    /// (`nalloc_window_create`). Synchronous: ready for kernels on any stream on return.
    ///
    /// ```
    /// if let Ok(a) = nalloc::cuda::DeviceArena::new(nalloc::Kind::Scratch, 1 << 20) {
    ///     let w = a.window(64 << 10)?;
    ///     assert_eq!((w.capacity(), w.granule()), (64 << 10, 16));
    /// }
    /// # Ok::<(), nalloc::Error>(())
    /// ```
    pub fn window(&self, capacity: usize) -> Result<Window<'_>, Error> {
        self.window_aligned(capacity, sys::NALLOC_WINDOW_GRANULE)
    }

    /// A window whose blocks are rounded to and aligned at `granule` bytes, a power of two from
    /// 16 to 4096 (`nalloc_window_create_aligned`).
    ///
    /// ```
    /// if let Ok(a) = nalloc::cuda::DeviceArena::new(nalloc::Kind::Scratch, 1 << 20) {
    ///     assert!(a.window_aligned(4096, 3).is_err()); // not a power of two
    /// }
    /// ```
    pub fn window_aligned(&self, capacity: usize, granule: usize) -> Result<Window<'_>, Error> {
        let mut raw = std::mem::MaybeUninit::<sys::nalloc_window>::zeroed();
        // SAFETY: a live arena; window creation is safe while other threads allocate.
        unsafe {
            Error::check(sys::nalloc_window_create_aligned(
                self.h.as_ptr(),
                capacity,
                granule,
                raw.as_mut_ptr(),
            ))?;
            Ok(Window {
                raw: raw.assume_init(),
                _arena: PhantomData,
            })
        }
    }

    /// Copy `src`, in a pinned arena, to `dst`, in this arena, and wait for the copy
    /// (`nalloc_stage_async`, then `cudaStreamSynchronize(stream)`). Both ranges must lie in
    /// what their arena has handed out ([`Status::Invalid`] otherwise, nothing copied).
    ///
    /// ```
    /// use nalloc::cuda::{DeviceArena, Stream};
    /// use nalloc::{ArenaConfig, Flags, Kind, Memory};
    ///
    /// let pinned = ArenaConfig::new(Kind::Poly, Memory::Pinned, 1 << 20).build();
    /// if let (Ok(pinned), Ok(device)) = (pinned, DeviceArena::new(Kind::Poly, 1 << 20)) {
    ///     let host = pinned.alloc_slice_fill_with(1024, |i| i as u64);
    ///     let dev = device.alloc(8 * 1024)?;
    ///     device.upload(dev, &pinned, host, Stream::LEGACY)?;
    ///     let back = pinned.alloc_slice_zeroed::<u64>(1024);
    ///     device.download(back, &pinned, dev, Stream::LEGACY)?;
    ///     assert_eq!(back[1023], 1023);
    /// }
    /// # Ok::<(), nalloc::Error>(())
    /// ```
    pub fn upload<T: Zeroable>(
        &self,
        dst: DevicePtr,
        pinned: &Arena,
        src: &[T],
        stream: Stream,
    ) -> Result<(), Error> {
        let size = std::mem::size_of_val(src);
        // SAFETY: the source is borrowed until the copy has finished (the stream is waited for
        // below, or the copy was never queued); C checks both ranges against the arenas.
        unsafe {
            self.stage_async_from(dst, pinned, src.as_ptr().cast(), size, stream)?;
        }
        synchronize(stream)
    }

    /// Copy from `src`, in this arena, into `dst`, in a pinned arena, and wait for the copy.
    ///
    /// ```
    /// use nalloc::cuda::{DeviceArena, DevicePtr, Stream};
    /// use nalloc::{Arena, Kind, Status};
    ///
    /// if let Ok(device) = DeviceArena::new(Kind::Poly, 1 << 20) {
    ///     let host = Arena::new(Kind::Poly, 1 << 20)?; // pageable: not a staging arena
    ///     let dst = host.alloc_slice_zeroed::<u8>(16);
    ///     let src = device.alloc(16)?;
    ///     let err = device.download(dst, &host, src, Stream::LEGACY).unwrap_err();
    ///     assert_eq!(err.status(), Status::Invalid);
    /// }
    /// # Ok::<(), nalloc::Error>(())
    /// ```
    pub fn download<T: Zeroable>(
        &self,
        dst: &mut [T],
        pinned: &Arena,
        src: DevicePtr,
        stream: Stream,
    ) -> Result<(), Error> {
        let size = std::mem::size_of_val(dst);
        // SAFETY: `dst` is borrowed exclusively until the copy has finished (waited for below);
        // any bytes are a valid T (Zeroable); C checks both ranges against the arenas.
        let st = unsafe {
            sys::nalloc_stage_async(
                pinned.as_raw(),
                dst.as_mut_ptr().cast(),
                self.h.as_ptr(),
                src.as_ptr(),
                size,
                stream.0,
            )
        };
        Error::check(st)?;
        synchronize(stream)
    }

    /// Queue a copy of `size` bytes from `src`, in the pinned arena `pinned`, to `dst` in this
    /// arena, and return at once (`nalloc_stage_async`).
    ///
    /// # Safety
    /// The caller synchronizes `stream` before the source's memory is written, reused or
    /// released (reset, wipe, rollback, drop), as for any asynchronous copy.
    ///
    /// ```
    /// use nalloc::cuda::{DeviceArena, Stream};
    /// use nalloc::{ArenaConfig, Kind, Memory};
    ///
    /// let pinned = ArenaConfig::new(Kind::Poly, Memory::Pinned, 1 << 20).build();
    /// if let (Ok(pinned), Ok(device)) = (pinned, DeviceArena::new(Kind::Poly, 1 << 20)) {
    ///     let src = pinned.alloc_slice_copy(&[1u8; 4096]);
    ///     let dst = device.alloc(4096)?;
    ///     unsafe { device.stage_async_from(dst, &pinned, src.as_ptr(), 4096, Stream::LEGACY)? };
    ///     nalloc::cuda::synchronize(Stream::LEGACY)?;
    /// }
    /// # Ok::<(), nalloc::Error>(())
    /// ```
    pub unsafe fn stage_async_from(
        &self,
        dst: DevicePtr,
        pinned: &Arena,
        src: *const u8,
        size: usize,
        stream: Stream,
    ) -> Result<(), Error> {
        Error::check(sys::nalloc_stage_async(
            self.h.as_ptr(),
            dst.as_ptr(),
            pinned.as_raw(),
            src.cast(),
            size,
            stream.0,
        ))
    }

    /// Queue a copy of `size` bytes from `src`, in this arena, to `dst`, in the pinned arena
    /// `pinned`, and return at once.
    ///
    /// # Safety
    /// The caller synchronizes `stream` before the destination's memory is read, written or
    /// released, and holds no reference to it meanwhile.
    ///
    /// ```
    /// use nalloc::cuda::{DeviceArena, Stream};
    /// use nalloc::{ArenaConfig, Kind, Memory};
    ///
    /// let pinned = ArenaConfig::new(Kind::Poly, Memory::Pinned, 1 << 20).build();
    /// if let (Ok(pinned), Ok(device)) = (pinned, DeviceArena::new(Kind::Poly, 1 << 20)) {
    ///     let dst = pinned.alloc_layout(std::alloc::Layout::new::<[u8; 4096]>());
    ///     let src = device.alloc_zeroed::<u8>(4096)?;
    ///     unsafe { device.stage_async_to(dst.as_ptr(), &pinned, src, 4096, Stream::LEGACY)? };
    ///     nalloc::cuda::synchronize(Stream::LEGACY)?;
    /// }
    /// # Ok::<(), nalloc::Error>(())
    /// ```
    pub unsafe fn stage_async_to(
        &self,
        dst: *mut u8,
        pinned: &Arena,
        src: DevicePtr,
        size: usize,
        stream: Stream,
    ) -> Result<(), Error> {
        Error::check(sys::nalloc_stage_async(
            pinned.as_raw(),
            dst.cast(),
            self.h.as_ptr(),
            src.as_ptr(),
            size,
            stream.0,
        ))
    }
}

impl fmt::Debug for DeviceArena {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceArena")
            .field("kind", &self.h.kind)
            .field("base", &(self.h.base as *const u8))
            .field("capacity", &self.h.capacity)
            .finish_non_exhaustive()
    }
}

/// Wait for everything queued on `stream` (`cudaStreamSynchronize`).
///
/// ```
/// use nalloc::cuda::{synchronize, Stream};
/// if nalloc::cuda::available().is_ok() {
///     synchronize(Stream::LEGACY)?;
/// }
/// # Ok::<(), nalloc::Error>(())
/// ```
pub fn synchronize(stream: Stream) -> Result<(), Error> {
    // SAFETY: a valid stream (Stream's contract).
    let err = unsafe { sys::cudaStreamSynchronize(stream.0) };
    if err == 0 {
        return Ok(());
    }
    // SAFETY: cudaGetErrorString returns a static string for any code.
    let text = unsafe { CStr::from_ptr(sys::cudaGetErrorString(err)) }.to_string_lossy();
    Err(Error::new(
        Status::Cuda,
        format!("cudaStreamSynchronize: {text} ({err})"),
    ))
}

impl Arena {
    /// [`wipe`](Arena::wipe) in stream order (`nalloc_wipe_async`). For a pinned arena it
    /// waits for `stream` first (copies queued into the arena would land after the wipe
    /// otherwise), then zeroes on the host; for a host arena the stream is ignored.
    ///
    /// ```
    /// use nalloc::cuda::Stream;
    /// let mut witness = nalloc::Arena::new(nalloc::Kind::Witness, 1 << 20)?;
    /// witness.alloc_slice_copy(&[7u8; 100]);
    /// witness.wipe_async(Stream::LEGACY)?; // no device needed for a host arena
    /// assert_eq!(witness.stats().wiped_bytes, 100);
    /// # Ok::<(), nalloc::Error>(())
    /// ```
    pub fn wipe_async(&mut self, stream: Stream) -> Result<(), Error> {
        // SAFETY: exclusive access to the arena; a valid stream (Stream's contract).
        Error::check(unsafe { sys::nalloc_wipe_async(self.as_raw(), stream.0) })
    }
}

/// A slice of a device arena that kernels allocate from (`nalloc_window`), passed to kernels
/// by value: `#[repr(C)]` and `Copy`, laid out exactly as C's `nalloc_window`, so a kernel
/// parameter of type `nalloc_window` takes it as it is. It borrows its arena, which therefore
/// cannot be reset, wiped or dropped while the window exists on the host.
///
/// ```
/// use nalloc::cuda::{DeviceArena, Stream};
///
/// if let Ok(arena) = DeviceArena::new(nalloc::Kind::Scratch, 1 << 20) {
///     let window = arena.window(64 << 10)?;
///     // launch kernels with `window` as a parameter (any CUDA binding), then:
///     let usage = window.usage(Stream::LEGACY)?;
///     assert!(!usage.overflowed);
///     window.reset(Stream::LEGACY)?;
/// }
/// assert_eq!(std::mem::size_of::<nalloc::cuda::Window>(), std::mem::size_of::<nalloc::sys::nalloc_window>());
/// # Ok::<(), nalloc::Error>(())
/// ```
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct Window<'a> {
    raw: sys::nalloc_window,
    _arena: PhantomData<&'a DeviceArena>,
}

// SAFETY: plain addresses and sizes; the device state is only touched through CUDA calls.
unsafe impl Send for Window<'_> {}
unsafe impl Sync for Window<'_> {}

/// What a window has handed out ([`Window::usage`]).
///
/// ```
/// let u = nalloc::cuda::WindowUsage { used: 0, overflowed: false };
/// assert_eq!(u, nalloc::cuda::WindowUsage::default());
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WindowUsage {
    /// Bytes handed out, granule rounding included, at most the capacity.
    pub used: usize,
    /// Some request was refused since the last reset.
    pub overflowed: bool,
}

impl Window<'_> {
    /// Device address of the window's first byte.
    ///
    /// ```
    /// if let Ok(a) = nalloc::cuda::DeviceArena::new(nalloc::Kind::Scratch, 1 << 20) {
    ///     assert!(a.contains(a.window(4096)?.base()));
    /// }
    /// # Ok::<(), nalloc::Error>(())
    /// ```
    pub fn base(&self) -> DevicePtr {
        DevicePtr(self.raw.base as usize as u64)
    }

    /// Bytes the window can hand out.
    ///
    /// ```
    /// if let Ok(a) = nalloc::cuda::DeviceArena::new(nalloc::Kind::Scratch, 1 << 20) {
    ///     assert_eq!(a.window(4096)?.capacity(), 4096);
    /// }
    /// # Ok::<(), nalloc::Error>(())
    /// ```
    pub fn capacity(&self) -> usize {
        self.raw.capacity
    }

    /// Bytes every block is rounded up and aligned to.
    ///
    /// ```
    /// if let Ok(a) = nalloc::cuda::DeviceArena::new(nalloc::Kind::Scratch, 1 << 20) {
    ///     assert_eq!(a.window_aligned(4096, 256)?.granule(), 256);
    /// }
    /// # Ok::<(), nalloc::Error>(())
    /// ```
    pub fn granule(&self) -> usize {
        self.raw.granule
    }

    /// The CUDA device the window is on.
    ///
    /// ```
    /// if let Ok(a) = nalloc::cuda::DeviceArena::new(nalloc::Kind::Scratch, 1 << 20) {
    ///     assert_eq!(a.window(4096)?.device(), 0);
    /// }
    /// # Ok::<(), nalloc::Error>(())
    /// ```
    pub fn device(&self) -> i32 {
        self.raw.device
    }

    /// The C struct, to pass to a kernel by value.
    ///
    /// ```
    /// if let Ok(a) = nalloc::cuda::DeviceArena::new(nalloc::Kind::Scratch, 1 << 20) {
    ///     let raw: nalloc::sys::nalloc_window = a.window(4096)?.as_raw();
    ///     assert_eq!(raw.capacity, 4096);
    /// }
    /// # Ok::<(), nalloc::Error>(())
    /// ```
    pub fn as_raw(&self) -> sys::nalloc_window {
        self.raw
    }

    /// Empty the window and clear its overflow flag, in stream order (`nalloc_window_reset`):
    /// kernels later on `stream` allocate from the start again. Blocks handed out before must
    /// be dead by then.
    ///
    /// ```
    /// use nalloc::cuda::{DeviceArena, Stream};
    /// if let Ok(a) = DeviceArena::new(nalloc::Kind::Scratch, 1 << 20) {
    ///     a.window(4096)?.reset(Stream::PER_THREAD)?;
    /// }
    /// # Ok::<(), nalloc::Error>(())
    /// ```
    pub fn reset(&self, stream: Stream) -> Result<(), Error> {
        // SAFETY: the window's memory lives (the arena is borrowed); a valid stream.
        Error::check(unsafe { sys::nalloc_window_reset(&self.raw, stream.0) })
    }

    /// What kernels have taken from the window so far: waits for `stream`
    /// (`nalloc_window_usage`).
    ///
    /// ```
    /// use nalloc::cuda::{DeviceArena, Stream};
    /// if let Ok(a) = DeviceArena::new(nalloc::Kind::Scratch, 1 << 20) {
    ///     assert_eq!(a.window(4096)?.usage(Stream::LEGACY)?.used, 0);
    /// }
    /// # Ok::<(), nalloc::Error>(())
    /// ```
    pub fn usage(&self, stream: Stream) -> Result<WindowUsage, Error> {
        let mut usage = WindowUsage::default();
        // SAFETY: as for reset; both outputs are writable.
        Error::check(unsafe {
            sys::nalloc_window_usage(&self.raw, stream.0, &mut usage.used, &mut usage.overflowed)
        })?;
        Ok(usage)
    }
}
