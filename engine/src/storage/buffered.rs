//! Files written through the page cache with write(2), and `-w -`: the
//! same writes to standard output.

use super::{Books, Landed, WriteError};
use std::fs::{File, OpenOptions};
use std::io::{self, Seek, SeekFrom, Write};
use std::os::fd::AsFd;
use std::path::Path;

/// The output path that means standard output (`-w -`).
const STDOUT_PATH: &str = "-";

/// True if `path` is `-`, standard output.
pub(crate) fn is_stdout(path: &Path) -> bool {
    path.as_os_str() == STDOUT_PATH
}

/// What a [`Buffered`] writes to.
#[derive(Debug)]
enum Output {
    File(File),
    /// The writer's tests.
    #[cfg(test)]
    Memory(super::memory::MemoryFile),
}

/// A file written with write(2); it only ever ends on a buffer boundary.
#[derive(Debug)]
pub(super) struct Buffered {
    out: Output,
    /// Bytes on disk, all whole records.
    committed: u64,
    /// Where the first record went: 0, or where `>>` had left stdout.
    base: u64,
    /// False for a pipe or terminal: a failed write cannot be taken back.
    rewindable: bool,
}

impl Buffered {
    /// Creates (or truncates) `path`.
    pub(super) fn create(path: &Path) -> io::Result<Self> {
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)?;
        Ok(Buffered {
            out: Output::File(file),
            committed: 0,
            base: 0,
            rewindable: true,
        })
    }

    /// Creates (or empties) `path` on `disk`.
    #[cfg(test)]
    pub(super) fn in_memory(disk: &super::memory::MemoryDisk, path: &Path) -> Self {
        Buffered {
            out: Output::Memory(disk.create(path)),
            committed: 0,
            base: 0,
            rewindable: true,
        }
    }

    /// Standard output (a duplicate of descriptor 1, so that closing the
    /// sink leaves the process's own stdout alone).
    pub(super) fn stdout() -> io::Result<Self> {
        let mut file = File::from(io::stdout().as_fd().try_clone_to_owned()?);
        let rewindable = file.metadata().is_ok_and(|m| m.is_file());
        // `>> file`: what was there before stays.
        let base = if rewindable {
            file.stream_position()?
        } else {
            0
        };
        Ok(Buffered {
            out: Output::File(file),
            committed: 0,
            base,
            rewindable,
        })
    }

    /// False if a failed write may have left part of a record behind (a
    /// pipe): nothing more may follow it.
    pub(super) fn rewindable(&self) -> bool {
        self.rewindable
    }

    /// The file (for preallocation), if there is one.
    pub(super) fn file(&self) -> Option<&File> {
        match &self.out {
            Output::File(file) => Some(file),
            #[cfg(test)]
            Output::Memory(_) => None,
        }
    }

    /// Bytes on disk.
    pub(super) fn committed(&self) -> u64 {
        self.committed
    }

    /// Writes `bytes` (whole records). On failure the file is cut back to
    /// its last complete state, so readers see only whole records, and the
    /// offset put back: a later write (the trailer) must not leave a hole.
    pub(super) fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        let written = match &mut self.out {
            Output::File(file) => file.write_all(bytes),
            #[cfg(test)]
            Output::Memory(file) => file.write_all(bytes),
        };
        match written {
            Ok(()) => {
                self.committed += bytes.len() as u64;
                Ok(())
            }
            Err(err) => {
                if self.rewindable {
                    self.cut(self.base + self.committed);
                }
                Err(err)
            }
        }
    }

    /// write(2) of a whole buffer of records whose books are `books`:
    /// landed at once, or all of it lost. Time in the call counts as waiting
    /// on storage (the caller measures it).
    pub(super) fn write_books(
        &mut self,
        bytes: &[u8],
        books: Books,
        landed: &mut Vec<Landed>,
    ) -> Result<(), WriteError> {
        if bytes.is_empty() {
            return Ok(());
        }
        match self.write(bytes) {
            Ok(()) => {
                let file_bytes = bytes.len() as u64;
                landed.push(Landed { books, file_bytes });
                Ok(())
            }
            Err(error) => Err(WriteError {
                error,
                lost_records: books.records,
                kept_bytes: self.committed(),
            }),
        }
    }

    /// Cuts the output back to `len` bytes and writes on from there.
    fn cut(&mut self, len: u64) {
        match &mut self.out {
            Output::File(file) => {
                let _ = file.set_len(len);
                let _ = file.seek(SeekFrom::Start(len));
            }
            #[cfg(test)]
            Output::Memory(file) => file.cut(len),
        }
    }
}
