//! Typed errors for the DPDK layer, carrying DPDK's own errno text.

use std::ffi::CStr;
use std::fmt;

/// A failed DPDK call: what zcap was doing, and DPDK's errno with its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DpdkError {
    /// What zcap was trying to do, in words a user understands.
    pub context: String,
    /// DPDK's (positive) errno value; 0 when DPDK gave none.
    pub errno: i32,
}

impl DpdkError {
    /// An error with an explicit errno (DPDK calls that return `-errno`).
    pub fn new(context: impl Into<String>, errno: i32) -> Self {
        DpdkError {
            context: context.into(),
            errno: errno.abs(),
        }
    }

    /// An error whose errno is read from the calling thread's `rte_errno`.
    pub fn from_rte_errno(context: impl Into<String>) -> Self {
        // SAFETY: reads a thread-local integer through a C helper; no pointers involved.
        let errno = unsafe { dpdk_sys::zcap_rte_errno() };
        Self::new(context, errno)
    }

    /// DPDK's description of the errno (`rte_strerror`).
    pub fn errno_text(&self) -> String {
        // SAFETY: rte_strerror returns a pointer to a static or thread-local,
        // NUL-terminated string that stays valid until the next call on this thread;
        // it is copied out at once.
        unsafe {
            let text = dpdk_sys::rte_strerror(self.errno);
            if text.is_null() {
                return format!("errno {}", self.errno);
            }
            CStr::from_ptr(text).to_string_lossy().into_owned()
        }
    }
}

impl fmt::Display for DpdkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.errno == 0 {
            write!(f, "{}", self.context)
        } else {
            write!(f, "{}: {}", self.context, self.errno_text())
        }
    }
}

impl std::error::Error for DpdkError {}

/// Result of a DPDK-layer operation.
pub type Result<T> = std::result::Result<T, DpdkError>;

/// Maps a DPDK return code (`< 0` is `-errno`) to a `Result`.
pub(crate) fn check(ret: i32, context: impl FnOnce() -> String) -> Result<i32> {
    if ret < 0 {
        Err(DpdkError::new(context(), -ret))
    } else {
        Ok(ret)
    }
}
