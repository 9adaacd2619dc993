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

/// Reserves `bytes` of disk for `file` without changing its length
/// (`FALLOC_FL_KEEP_SIZE`, so readers still see only what was written): a
/// rotated file's blocks are allocated in one piece instead of one write
/// at a time, beside other writers' files.
pub(crate) fn preallocate(file: &std::fs::File, bytes: u64) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let len = i64::try_from(bytes).map_err(|_| io::Error::from_raw_os_error(libc::EFBIG))?;
    // SAFETY: fallocate only reads its arguments; the descriptor is open.
    let ret = unsafe { libc::fallocate(file.as_raw_fd(), libc::FALLOC_FL_KEEP_SIZE, 0, len) };
    if ret == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Gives back what [`preallocate`] reserved past `len`, the file's length
/// (a file that stopped short of its size limit keeps no unused blocks).
pub(crate) fn release_past(file: &std::fs::File, len: u64, reserved: u64) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    if reserved <= len {
        return Ok(());
    }
    let (offset, span) = (len as i64, (reserved - len) as i64);
    let mode = libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE;
    // SAFETY: as above; punching past the end frees blocks, writes no data.
    let ret = unsafe { libc::fallocate(file.as_raw_fd(), mode, offset, span) };
    if ret == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// How a file will be read, for the kernel's readahead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReadPattern {
    /// At scattered positions: a read pulls in no pages after it (an index's
    /// search reads few records, and the disk's readahead is megabytes).
    Scattered,
    /// Front to back: read well ahead.
    Sequential,
}

/// Tells the kernel how `file` will be read.
pub(crate) fn advise_reads(file: &std::fs::File, pattern: ReadPattern) {
    use std::os::fd::AsRawFd;
    let advice = match pattern {
        ReadPattern::Scattered => libc::POSIX_FADV_RANDOM,
        ReadPattern::Sequential => libc::POSIX_FADV_SEQUENTIAL,
    };
    // SAFETY: posix_fadvise only reads its arguments; an open descriptor, and
    // advice is a hint whose failure costs nothing but speed.
    unsafe {
        libc::posix_fadvise(file.as_raw_fd(), 0, 0, advice);
    }
}

/// Asks the kernel to start reading `len` bytes at `offset` of `file` now,
/// without waiting: a search keeps many reads in flight this way.
pub(crate) fn advise_willneed(file: &std::fs::File, offset: u64, len: u64) {
    use std::os::fd::AsRawFd;
    // (To the kernel a length of 0 is the whole file from `offset` on.)
    let (Ok(offset), Ok(len)) = (i64::try_from(offset), i64::try_from(len)) else {
        return;
    };
    if len == 0 {
        return;
    }
    // SAFETY: as in advise_reads: plain integer arguments, a hint only.
    unsafe {
        libc::posix_fadvise(file.as_raw_fd(), offset, len, libc::POSIX_FADV_WILLNEED);
    }
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
