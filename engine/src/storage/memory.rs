//! Files in memory, for the writer's tests: a [`MemoryDisk`] is shared with
//! the test, which reads what the writer left in each file. Its room can be
//! limited, and a write that meets the limit stores the part that fits and
//! then fails with ENOSPC: the torn write of a disk that fills up.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

/// See the module docs.
#[derive(Clone, Default)]
pub(crate) struct MemoryDisk(Arc<Mutex<Disk>>);

#[derive(Default)]
struct Disk {
    files: BTreeMap<PathBuf, Vec<u8>>,
    /// Bytes that may still be written, over every file; `None`: no limit.
    room: Option<u64>,
}

impl MemoryDisk {
    fn lock(&self) -> MutexGuard<'_, Disk> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// From now on, at most `bytes` more may be written.
    pub(crate) fn limit_room(&self, bytes: u64) {
        self.lock().room = Some(bytes);
    }

    /// What `path` holds, if it exists.
    pub(crate) fn file(&self, path: &Path) -> Option<Vec<u8>> {
        self.lock().files.get(path).cloned()
    }

    /// Creates (or empties) `path`.
    pub(super) fn create(&self, path: &Path) -> MemoryFile {
        self.lock().files.insert(path.to_owned(), Vec::new());
        MemoryFile {
            disk: self.clone(),
            path: path.to_owned(),
            position: 0,
        }
    }
}

impl PartialEq for MemoryDisk {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for MemoryDisk {}

impl std::fmt::Debug for MemoryDisk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MemoryDisk({} files)", self.lock().files.len())
    }
}

/// One file of a [`MemoryDisk`], written at its position.
#[derive(Debug)]
pub(super) struct MemoryFile {
    disk: MemoryDisk,
    path: PathBuf,
    position: u64,
}

impl MemoryFile {
    /// Cuts the file to `len` bytes and writes on from there.
    pub(super) fn cut(&mut self, len: u64) {
        if let Some(file) = self.disk.lock().files.get_mut(&self.path) {
            file.truncate(len as usize);
        }
        self.position = len;
    }
}

impl io::Write for MemoryFile {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let mut disk = self.disk.lock();
        let n = match disk.room {
            Some(0) if !bytes.is_empty() => return Err(io::Error::from_raw_os_error(libc::ENOSPC)),
            Some(room) => bytes.len().min(room as usize),
            None => bytes.len(),
        };
        if let Some(room) = &mut disk.room {
            *room -= n as u64;
        }
        let file = disk.files.entry(self.path.clone()).or_default();
        let (start, end) = (self.position as usize, self.position as usize + n);
        if file.len() < end {
            file.resize(end, 0);
        }
        file[start..end].copy_from_slice(&bytes[..n]);
        self.position = end as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
