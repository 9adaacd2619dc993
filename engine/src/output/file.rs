//! A capture file written through one large buffer with few system calls.
//!
//! The file on disk only ever ends on a record boundary: if a write fails
//! (disk full, I/O error), the file is cut back to the last complete buffer
//! so it stays readable.

use std::fs::{File, OpenOptions};
use std::io::{self, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A capture file and its write buffer.
#[derive(Debug)]
pub(crate) struct FileSink {
    file: File,
    path: PathBuf,
    buf: Vec<u8>,
    flush_bytes: usize,
    flush_interval: Duration,
    last_flush: Instant,
    /// Bytes known to be on disk, all whole records.
    committed: u64,
    /// Records in `buf`, not yet on disk.
    pending_records: u64,
}

impl FileSink {
    /// Creates (or truncates) `path`. `flush_bytes` is the buffer size that
    /// triggers a write; `flush_interval` bounds how long data may sit in it.
    pub(crate) fn create(
        path: &Path,
        flush_bytes: usize,
        flush_interval: Duration,
    ) -> io::Result<Self> {
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)?;
        Ok(FileSink {
            file,
            path: path.to_owned(),
            buf: Vec::with_capacity(flush_bytes + 128 * 1024),
            flush_bytes,
            flush_interval,
            last_flush: Instant::now(),
            committed: 0,
            pending_records: 0,
        })
    }

    /// The buffer size that triggers a write.
    pub(crate) fn flush_bytes(&self) -> usize {
        self.flush_bytes
    }

    /// The longest a record may wait in the buffer.
    pub(crate) fn flush_interval(&self) -> Duration {
        self.flush_interval
    }

    /// The file's path.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The buffer to append encoded bytes to.
    #[inline(always)]
    pub(crate) fn buffer(&mut self) -> &mut Vec<u8> {
        &mut self.buf
    }

    /// Notes that `records` more whole records were appended to the buffer.
    #[inline(always)]
    pub(crate) fn records_appended(&mut self, records: u64) {
        self.pending_records += records;
    }

    /// Records buffered and not yet on disk.
    pub(crate) fn pending_records(&self) -> u64 {
        self.pending_records
    }

    /// Bytes on disk plus bytes buffered.
    pub(crate) fn total_bytes(&self) -> u64 {
        self.committed + self.buf.len() as u64
    }

    /// True once the buffer holds `flush_bytes` or more.
    #[inline(always)]
    pub(crate) fn is_full(&self) -> bool {
        self.buf.len() >= self.flush_bytes
    }

    /// Writes the buffer out if it is full enough or old enough. Returns the
    /// bytes written (0 if it was not time yet).
    #[inline]
    pub(crate) fn maybe_flush(&mut self, now: Instant) -> io::Result<usize> {
        if self.buf.len() >= self.flush_bytes
            || (!self.buf.is_empty() && now.duration_since(self.last_flush) >= self.flush_interval)
        {
            self.flush()
        } else {
            Ok(0)
        }
    }

    /// Writes the whole buffer. On failure the file is cut back to its last
    /// complete state and the buffered records are discarded (the caller
    /// counts them as lost: [`FileSink::pending_records`] before the call).
    pub(crate) fn flush(&mut self) -> io::Result<usize> {
        self.last_flush = Instant::now();
        if self.buf.is_empty() {
            return Ok(0);
        }
        let len = self.buf.len();
        match self.file.write_all(&self.buf) {
            Ok(()) => {
                self.committed += len as u64;
                self.buf.clear();
                self.pending_records = 0;
                Ok(len)
            }
            Err(err) => {
                // Drop the torn tail so readers see only whole records, and put
                // the offset back: a later write (the trailer) must not leave a
                // hole where the torn tail was.
                let _ = self.file.set_len(self.committed);
                let _ = self.file.seek(SeekFrom::Start(self.committed));
                self.buf.clear();
                self.pending_records = 0;
                Err(err)
            }
        }
    }

    /// Flushes and closes the file.
    #[cfg(test)]
    fn close(mut self) -> io::Result<usize> {
        self.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flushes_on_size_and_on_close() {
        let dir = std::env::temp_dir().join(format!("zcap-sink-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("a.bin");
        let mut sink = FileSink::create(&path, 8, Duration::from_secs(3600)).unwrap();
        sink.buffer().extend_from_slice(b"1234");
        assert_eq!(sink.maybe_flush(Instant::now()).unwrap(), 0);
        sink.buffer().extend_from_slice(b"5678");
        assert_eq!(sink.maybe_flush(Instant::now()).unwrap(), 8);
        sink.buffer().extend_from_slice(b"9");
        sink.close().unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"123456789");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_full_disk_leaves_only_whole_buffers() {
        // /dev/full fails every write with ENOSPC.
        let mut sink = FileSink::create(Path::new("/dev/full"), 4, Duration::ZERO).unwrap();
        sink.buffer().extend_from_slice(b"abcd");
        sink.records_appended(1);
        let err = sink.flush().unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENOSPC));
        assert_eq!(sink.pending_records(), 0);
        assert_eq!(sink.total_bytes(), 0);
    }
}
