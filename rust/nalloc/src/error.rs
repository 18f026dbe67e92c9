//! Errors: C's status code, and what the C library said about it at the time.
//!
//! The C library reports a failure twice: as the `nalloc_status` a call returns (or, for calls
//! that return a pointer, NULL and the thread-local `nalloc_last_error()`), and as a thread-local
//! message naming the call and the cause, which the next failure on the thread overwrites. An
//! [`Error`] therefore copies everything it needs the moment a call fails: the status, the
//! message when it belongs to this failure (the thread's last error is this status), errno for
//! an OS refusal and, with CUDA, the CUDA error's text. A few errors are found by this crate
//! before C is called (a slice length whose byte size overflows); they carry a message of their
//! own and the status C would have given.

use std::ffi::CStr;
use std::fmt;

use crate::sys;

/// Why a call failed: C's `nalloc_status`, as an enum to match on.
///
/// ```
/// use nalloc::{Arena, Kind, Status};
///
/// let err = Arena::new(Kind::Scratch, 0).unwrap_err(); // capacity 0 is not a configuration
/// match err.status() {
///     Status::Invalid => {}
///     other => panic!("unexpected {other:?}"),
/// }
/// ```
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Status {
    /// A bad argument or configuration: zero size, bad alignment, unknown flag...
    /// (`NALLOC_ERR_INVALID`).
    Invalid,
    /// The arena has no room left for this request (`NALLOC_ERR_NOMEM`).
    NoMem,
    /// The OS refused (mmap, madvise, mlock...); see [`Error::raw_os_error`] (`NALLOC_ERR_OS`).
    Os,
    /// A CUDA call failed; see [`Error::cuda_error`] (`NALLOC_ERR_CUDA`).
    Cuda,
    /// No CUDA driver or no device (`NALLOC_ERR_NO_DEVICE`).
    NoDevice,
    /// Not built in, or the kernel lacks it (`NALLOC_ERR_UNSUPPORTED`).
    Unsupported,
    /// Stale mark, wrong arena, destroyed object, live lanes (`NALLOC_ERR_STATE`).
    State,
    /// A status this version of the crate does not know (from a newer C library).
    Unknown(u32),
}

impl Status {
    /// The status for a C code; `None` for `NALLOC_OK`.
    ///
    /// ```
    /// use nalloc::{sys, Status};
    /// assert_eq!(Status::from_code(sys::NALLOC_ERR_NOMEM), Some(Status::NoMem));
    /// assert_eq!(Status::from_code(sys::NALLOC_OK), None);
    /// ```
    pub fn from_code(code: sys::nalloc_status) -> Option<Status> {
        Some(match code {
            sys::NALLOC_OK => return None,
            sys::NALLOC_ERR_INVALID => Status::Invalid,
            sys::NALLOC_ERR_NOMEM => Status::NoMem,
            sys::NALLOC_ERR_OS => Status::Os,
            sys::NALLOC_ERR_CUDA => Status::Cuda,
            sys::NALLOC_ERR_NO_DEVICE => Status::NoDevice,
            sys::NALLOC_ERR_UNSUPPORTED => Status::Unsupported,
            sys::NALLOC_ERR_STATE => Status::State,
            other => Status::Unknown(other),
        })
    }

    /// The C code (`nalloc_status`).
    ///
    /// ```
    /// assert_eq!(nalloc::Status::State.code(), nalloc::sys::NALLOC_ERR_STATE);
    /// ```
    pub fn code(self) -> sys::nalloc_status {
        match self {
            Status::Invalid => sys::NALLOC_ERR_INVALID,
            Status::NoMem => sys::NALLOC_ERR_NOMEM,
            Status::Os => sys::NALLOC_ERR_OS,
            Status::Cuda => sys::NALLOC_ERR_CUDA,
            Status::NoDevice => sys::NALLOC_ERR_NO_DEVICE,
            Status::Unsupported => sys::NALLOC_ERR_UNSUPPORTED,
            Status::State => sys::NALLOC_ERR_STATE,
            Status::Unknown(code) => code,
        }
    }

    /// C's description of the status (`nalloc_strerror`).
    ///
    /// ```
    /// assert_eq!(nalloc::Status::NoMem.description(), "arena exhausted");
    /// ```
    pub fn description(self) -> &'static str {
        // SAFETY: nalloc_strerror returns a static, NUL-terminated string for any input.
        let text = unsafe { CStr::from_ptr(sys::nalloc_strerror(self.code())) };
        text.to_str().unwrap_or("unknown nalloc status")
    }
}

impl fmt::Display for Status {
    /// ```
    /// assert_eq!(nalloc::Status::NoDevice.to_string(), "no CUDA driver or device");
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.description())
    }
}

/// A failed nalloc call: its [`Status`], and what the C library said about it.
///
/// `Display` gives C's description of the status (`nalloc_strerror`), followed by the C
/// library's message for this failure when it has one (`nalloc_last_error_message`, which names
/// the call and the cause), errno's text for [`Status::Os`], and the CUDA error's text for CUDA
/// failures.
///
/// ```
/// use nalloc::{Arena, Kind, Status};
///
/// let arena = Arena::new(Kind::Scratch, 4096)?;
/// let err = arena.try_alloc([0u8; 8192]).unwrap_err();
/// assert_eq!(err.status(), Status::NoMem);
/// assert!(err.to_string().starts_with("arena exhausted"));
/// let boxed: Box<dyn std::error::Error> = Box::new(err); // a std error like any other
/// # Ok::<(), nalloc::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    status: Status,
    message: Option<Box<str>>,
    os_error: Option<i32>,
    cuda_error: Option<Box<str>>,
}

impl Error {
    /// The status of a failure C just reported by returning `status`. Call it right after the
    /// failing call, on the same thread: the message and errno are read then.
    pub(crate) fn from_status(status: sys::nalloc_status) -> Error {
        let status = Status::from_code(status).unwrap_or(Status::Unknown(0));
        let os_error = match status {
            Status::Os => std::io::Error::last_os_error().raw_os_error(),
            _ => None,
        };
        // SAFETY: both calls are always safe; the message is NUL-terminated and valid until the
        // thread's next failing nalloc call, and it is copied before any.
        let (last, message) = unsafe {
            (
                sys::nalloc_last_error(),
                CStr::from_ptr(sys::nalloc_last_error_message()),
            )
        };
        let message = message.to_string_lossy();
        let message = (last == status.code() && !message.is_empty()).then(|| message.into());
        Error {
            status,
            message,
            os_error,
            cuda_error: cuda_error_text(status),
        }
    }

    /// The failure C recorded for a call that returned NULL.
    pub(crate) fn last() -> Error {
        // SAFETY: always safe.
        Error::from_status(unsafe { sys::nalloc_last_error() })
    }

    /// An error this crate found itself, before calling C.
    pub(crate) fn new(status: Status, message: impl Into<String>) -> Error {
        let message = message.into().into_boxed_str();
        Error {
            status,
            message: Some(message),
            os_error: None,
            cuda_error: None,
        }
    }

    /// `Ok(())` for `NALLOC_OK`, the error otherwise.
    pub(crate) fn check(status: sys::nalloc_status) -> Result<(), Error> {
        if status == sys::NALLOC_OK {
            Ok(())
        } else {
            Err(Error::from_status(status))
        }
    }

    /// Why the call failed.
    ///
    /// ```
    /// use nalloc::{ArenaConfig, Kind, Memory, Status};
    ///
    /// let err = ArenaConfig::new(Kind::Poly, Memory::Host, 1 << 20)
    ///     .default_align(3) // not a power of two
    ///     .build()
    ///     .unwrap_err();
    /// assert_eq!(err.status(), Status::Invalid);
    /// ```
    pub fn status(&self) -> Status {
        self.status
    }

    /// The C code of the status (`nalloc_status`).
    ///
    /// ```
    /// let err = nalloc::Arena::new(nalloc::Kind::Poly, 0).unwrap_err();
    /// assert_eq!(err.code(), nalloc::sys::NALLOC_ERR_INVALID);
    /// ```
    pub fn code(&self) -> sys::nalloc_status {
        self.status.code()
    }

    /// The message for this failure: the C library's `nalloc_last_error_message()` at the time
    /// of the failure, or this crate's own for errors it found before calling C. `None` when
    /// there was none.
    ///
    /// ```
    /// use nalloc::{Arena, Kind};
    ///
    /// let arena = Arena::new(Kind::Scratch, 4096)?;
    /// let err = arena.try_alloc_slice_zeroed::<u64>(usize::MAX).unwrap_err();
    /// assert!(err.message().unwrap().contains("overflow"));
    /// # Ok::<(), nalloc::Error>(())
    /// ```
    pub fn message(&self) -> Option<&str> {
        self.message.as_deref()
    }

    /// errno, for [`Status::Os`]: the OS's reason.
    ///
    /// ```
    /// use nalloc::{ArenaConfig, Kind, Memory, Status};
    ///
    /// // A petabyte of address space: more than a process can map.
    /// let result = ArenaConfig::new(Kind::Scratch, Memory::Host, 1 << 50).build();
    /// if let Err(err) = result {
    ///     if err.status() == Status::Os {
    ///         assert!(err.raw_os_error().is_some());
    ///     }
    /// }
    /// ```
    pub fn raw_os_error(&self) -> Option<i32> {
        self.os_error
    }

    /// The CUDA error's text (`nalloc_cuda_error_string()`), for CUDA failures and missing
    /// devices; always `None` without the `cuda` feature.
    ///
    /// ```
    /// let err = nalloc::Arena::new(nalloc::Kind::Poly, 0).unwrap_err();
    /// assert_eq!(err.cuda_error(), None);
    /// ```
    pub fn cuda_error(&self) -> Option<&str> {
        self.cuda_error.as_deref()
    }
}

#[cfg(feature = "cuda")]
fn cuda_error_text(status: Status) -> Option<Box<str>> {
    if !matches!(status, Status::Cuda | Status::NoDevice) {
        return None;
    }
    // SAFETY: always safe; the text is NUL-terminated and copied at once.
    let text = unsafe { CStr::from_ptr(sys::nalloc_cuda_error_string()) };
    let text = text.to_string_lossy();
    (!text.is_empty()).then(|| text.into())
}

#[cfg(not(feature = "cuda"))]
fn cuda_error_text(_: Status) -> Option<Box<str>> {
    None
}

impl fmt::Display for Error {
    /// ```
    /// let err = nalloc::Arena::new(nalloc::Kind::Poly, 0).unwrap_err();
    /// assert!(err.to_string().starts_with("invalid argument or configuration"));
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = self.status.description();
        f.write_str(text)?;
        if let Some(message) = self.message.as_deref().filter(|m| *m != text) {
            write!(f, ": {message}")?;
        }
        if let Some(errno) = self.os_error {
            write!(f, " ({})", std::io::Error::from_raw_os_error(errno))?;
        }
        if let Some(cuda) = &self.cuda_error {
            write!(f, " ({cuda})")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {}

impl From<Error> for std::io::Error {
    /// For `?` in functions that return `std::io::Result`.
    ///
    /// ```
    /// fn make() -> std::io::Result<nalloc::Arena> {
    ///     Ok(nalloc::Arena::new(nalloc::Kind::Poly, 0)?)
    /// }
    /// assert_eq!(make().unwrap_err().kind(), std::io::ErrorKind::InvalidInput);
    /// ```
    fn from(err: Error) -> std::io::Error {
        use std::io::ErrorKind;
        if let Some(errno) = err.os_error {
            return std::io::Error::from_raw_os_error(errno);
        }
        let kind = match err.status {
            Status::Invalid => ErrorKind::InvalidInput,
            Status::NoMem => ErrorKind::OutOfMemory,
            Status::Unsupported | Status::NoDevice => ErrorKind::Unsupported,
            _ => ErrorKind::Other,
        };
        std::io::Error::new(kind, err)
    }
}
