//! Files written through the page cache with write(2).

use std::fs::{File, OpenOptions};
use std::io::{self, Seek, SeekFrom, Write};
use std::path::Path;

/// A file written with write(2); it only ever ends on a buffer boundary.
#[derive(Debug)]
pub(super) struct Buffered {
    file: File,
    /// Bytes on disk, all whole records.
    committed: u64,
}

impl Buffered {
    /// Creates (or truncates) `path`.
    pub(super) fn create(path: &Path) -> io::Result<Self> {
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)?;
        Ok(Buffered { file, committed: 0 })
    }

    /// Bytes on disk.
    pub(super) fn committed(&self) -> u64 {
        self.committed
    }

    /// Writes `bytes` (whole records). On failure the file is cut back to
    /// its last complete state, so readers see only whole records, and the
    /// offset put back: a later write (the trailer) must not leave a hole.
    pub(super) fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self.file.write_all(bytes) {
            Ok(()) => {
                self.committed += bytes.len() as u64;
                Ok(())
            }
            Err(err) => {
                let _ = self.file.set_len(self.committed);
                let _ = self.file.seek(SeekFrom::Start(self.committed));
                Err(err)
            }
        }
    }
}
