//! The index file beside one capture file, written as the capture goes:
//! one segment at a time through the page cache (segments are small next
//! to the data). An index that cannot be written is given up with one
//! line on stderr: the capture goes on, and extraction scans that file.

use crate::archive::index::{self, IndexBuilder};
use crate::storage::Frame;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Which interfaces' records are Ethernet frames (the only ones whose flows
/// the index reads).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct IndexSpec {
    pub(crate) ethernet: Vec<bool>,
    /// Microsecond pcap: times are indexed as the file holds them, cut to
    /// the microsecond (a window's edge is then judged as a reader sees it).
    pub(crate) micro: bool,
}

/// See the module docs.
pub(crate) struct IndexFile {
    path: PathBuf,
    file: Option<File>,
    builder: IndexBuilder,
    ethernet: Vec<bool>,
    micro: bool,
    out: Vec<u8>,
    bytes: u64,
}

impl IndexFile {
    /// Creates the index of `capture`, whose first record starts at `offset`
    /// (`framed`: a compressed file; `offset` is into its first frame), in
    /// `made` if given: an empty file already at the index's path.
    pub(crate) fn create(
        capture: &Path,
        offset: u64,
        spec: &IndexSpec,
        framed: bool,
        made: Option<File>,
    ) -> IndexFile {
        let path = index::index_path(capture);
        let mut index = IndexFile {
            file: None,
            builder: IndexBuilder::new(offset, framed),
            ethernet: spec.ethernet.clone(),
            micro: spec.micro,
            out: Vec::with_capacity(64 * 1024),
            bytes: 0,
            path,
        };
        match made.map_or_else(|| File::create(&index.path), Ok) {
            Ok(file) => {
                index.file = Some(file);
                index.write(&index::file_header(framed));
            }
            Err(e) => index.give_up(&e),
        }
        index
    }

    /// The index file's name.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Bytes written to the index so far.
    pub(crate) fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Indexes one record of `record_len` bytes from `interface`.
    #[inline(always)]
    pub(crate) fn add(&mut self, interface: u32, ts_ns: u64, record_len: usize, frame: &[u8]) {
        let ethernet = self
            .ethernet
            .get(interface as usize)
            .copied()
            .unwrap_or(false);
        let ts_ns = if self.micro {
            ts_ns - ts_ns % 1000
        } else {
            ts_ns
        };
        if self.builder.add(ts_ns, record_len, frame, ethernet) {
            self.segment_full();
        }
    }

    #[inline(never)]
    fn segment_full(&mut self) {
        let mut out = std::mem::take(&mut self.out);
        self.builder.take_segment(&mut out);
        self.write(&out);
        out.clear();
        self.out = out;
    }

    /// Compressing: these frames went out with the records added so far.
    pub(crate) fn frames_done(&mut self, frames: &[Frame]) {
        let mut out = std::mem::take(&mut self.out);
        for frame in frames {
            self.builder
                .frames_done(frame.offset, frame.len, frame.decompressed, &mut out);
        }
        self.write(&out);
        out.clear();
        self.out = out;
    }

    /// Writes the last segment and the end marker of a capture file now
    /// closed at `file_len` bytes.
    pub(crate) fn finish(&mut self, file_len: u64) {
        let mut out = std::mem::take(&mut self.out);
        self.builder.finish(&mut out, file_len);
        self.write(&out);
    }

    /// Writing the capture file failed: the index stops here, without its
    /// end marker, so a reader scans what the capture file still holds.
    pub(crate) fn abandon(&mut self) {
        self.file = None;
    }

    /// The capture file was renamed to `capture`: the index follows it.
    pub(crate) fn rename_with(&mut self, capture: &Path) {
        let renamed = index::index_path(capture);
        if std::fs::rename(&self.path, &renamed).is_ok() {
            self.path = renamed;
        }
    }

    fn write(&mut self, bytes: &[u8]) {
        let Some(file) = &mut self.file else {
            return;
        };
        match file.write_all(bytes) {
            Ok(()) => self.bytes += bytes.len() as u64,
            Err(e) => self.give_up(&e),
        }
    }

    fn give_up(&mut self, error: &std::io::Error) {
        crate::say!(
            "zcap: cannot write the index {}: {error}; its capture file goes on without the rest of it, and zcap-extract scans it",
            self.path.display()
        );
        self.file = None;
    }
}
