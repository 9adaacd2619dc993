//! What the storage engine asks of a file system (statfs(2)). Not DPDK, but
//! a raw libc call, so it lives with the other unsafe blocks.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// tmpfs's magic number (linux/magic.h).
const TMPFS_MAGIC: i64 = 0x0102_1994;

/// A file system's size and kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FsStats {
    /// Its size in bytes.
    pub(crate) total_bytes: u64,
    /// tmpfs (RAM): it takes O_DIRECT on recent kernels but still copies.
    pub(crate) is_tmpfs: bool,
}

/// The statistics of the file system holding `path`.
pub(crate) fn fs_stats(path: &Path) -> io::Result<FsStats> {
    let c_path = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a NUL byte in the path"))?;
    let mut stats = std::mem::MaybeUninit::<libc::statfs>::zeroed();
    // SAFETY: a NUL-terminated path and a buffer of the struct's size, which
    // statfs fills on success (and we read only then).
    let stats = unsafe {
        if libc::statfs(c_path.as_ptr(), stats.as_mut_ptr()) != 0 {
            return Err(io::Error::last_os_error());
        }
        stats.assume_init()
    };
    Ok(FsStats {
        total_bytes: (stats.f_blocks as u64).saturating_mul(stats.f_frsize as u64),
        is_tmpfs: stats.f_type as i64 == TMPFS_MAGIC,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_shm_is_tmpfs_and_has_a_size() {
        let shm = fs_stats(Path::new("/dev/shm")).unwrap();
        assert!(shm.is_tmpfs);
        assert!(shm.total_bytes > 0);
        assert!(fs_stats(Path::new("/no/such/dir")).is_err());
    }
}
