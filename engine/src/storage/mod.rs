//! Where capture files are written: a [`FileSink`] per file, either through
//! the page cache (`write(2)`) or with direct I/O (O_DIRECT, aligned blocks,
//! several writes in flight through io_uring). No DPDK, no capture logic: a
//! sink takes encoded bytes and says which records reached the disk.

mod aligned;
mod budget;
mod buffered;
mod compress;
mod direct;
mod flights;
#[cfg(test)]
pub(crate) mod memory;
mod self_test;
mod sink;

pub(crate) use budget::Budget;
pub use budget::{parse_size, DiskBudget};
pub(crate) use buffered::is_stdout;
pub use compress::parse_compression;
pub(crate) use compress::Frame;
pub use self_test::{run_storage_test, StorageTest, StorageTestReport};
pub(crate) use sink::FileSink;

/// How files are written (`--io`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IoMode {
    /// Direct where the file system accepts O_DIRECT, else buffered.
    #[default]
    Auto,
    /// O_DIRECT, aligned blocks, writes in flight through io_uring.
    Direct,
    /// write(2) through the page cache.
    Buffered,
    /// No file: JetStream messages (`--publish`).
    Publish,
}

impl IoMode {
    /// Parses `auto`, `direct` or `buffered`.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "auto" => Some(IoMode::Auto),
            "direct" => Some(IoMode::Direct),
            "buffered" => Some(IoMode::Buffered),
            _ => None,
        }
    }

    /// The name in `--io` and the JSON's `io_mode`.
    pub fn name(self) -> &'static str {
        match self {
            IoMode::Auto => "auto",
            IoMode::Direct => "direct",
            IoMode::Buffered => "buffered",
            IoMode::Publish => "publish",
        }
    }
}

/// Bytes per write(2) by default: small enough to stay in L2 between filling
/// and the kernel's copy (a cold 1 MiB buffer ran 2x slower on tmpfs,
/// measured: 4.4 vs 8.2 Mpps of 64-byte packets).
pub const BUFFERED_WRITE_BYTES: usize = 64 * 1024;

/// Bytes per direct write by default (see docs/BENCHMARKS.md, storage).
pub const DIRECT_WRITE_BYTES: usize = 1024 * 1024;

/// Buffers per file in direct mode by default: one filling, the rest in flight.
pub const DIRECT_BUFFERS: usize = 8;

/// How one writer's files are written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SinkSpec {
    /// `Auto` until the first file is opened, then what it resolved to.
    pub(crate) mode: IoMode,
    /// Bytes per write; `None`: the mode's default.
    pub(crate) buffer_bytes: Option<usize>,
    /// Buffers per file in direct mode: one being filled, the rest in flight.
    pub(crate) buffers: usize,
    /// The longest a record may wait in a buffer.
    pub(crate) flush_interval: std::time::Duration,
    /// `--compress zstd:LEVEL`: each write is one zstd frame.
    pub(crate) zstd_level: Option<i32>,
    /// `-C`: bytes to reserve on disk for each file when it is created.
    pub(crate) preallocate: Option<u64>,
    /// The writer's tests: files are made on this disk in memory.
    #[cfg(test)]
    pub(crate) memory: Option<memory::MemoryDisk>,
}

/// What the records in one buffer add to the writer's counters once they are
/// on disk. The sink carries it with the buffer until then.
#[derive(Debug, Default)]
pub(crate) struct Books {
    pub(crate) records: u64,
    /// Packet bytes kept (after snaplen).
    pub(crate) bytes: u64,
    /// Wire length.
    pub(crate) wire: u64,
    /// Receive ticks of the records, as (tick, records) runs.
    pub(crate) rx_ticks: Vec<(u32, u64)>,
}

impl Books {
    /// Empties it, keeping its allocation.
    pub(crate) fn clear(&mut self) {
        self.records = 0;
        self.bytes = 0;
        self.wire = 0;
        self.rx_ticks.clear();
    }
}

/// A write that failed: the records it lost are not on disk and will not be.
#[derive(Debug)]
pub(crate) struct WriteError {
    pub(crate) error: std::io::Error,
    pub(crate) lost_records: u64,
    /// The file's length, cut back to its last whole record.
    pub(crate) kept_bytes: u64,
}

/// The directory `path` is in (`.` for a bare file name).
pub(crate) fn directory_of(path: &std::path::Path) -> &std::path::Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => std::path::Path::new("."),
    }
}

/// A buffer's records on disk: their books and the file bytes they added.
#[derive(Debug)]
pub(crate) struct Landed {
    pub(crate) books: Books,
    pub(crate) file_bytes: u64,
}
