//! The storage self-test (`zcap-bench --mode storage`): synthetic pcap
//! records written at full speed through the same sink a capture uses, with
//! no DPDK port, for sizing disks (as n2disk's `-e 1`).

use super::{FileSink, IoMode, SinkSpec};
use crate::error::{Field, ZcapError};
use crate::format::{Encoder, FileFormat, RecordMeta, TsPrecision};
use crate::stats::ThreadCpu;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// A self-test run.
#[derive(Debug, Clone)]
pub struct StorageTest {
    /// The file to write (removed after the run unless `keep`).
    pub path: PathBuf,
    /// Keep the file.
    pub keep: bool,
    /// `--io`.
    pub io: IoMode,
    /// Bytes per write; `None`: the mode's default.
    pub buffer_bytes: Option<usize>,
    /// Direct I/O buffers.
    pub buffers: usize,
    /// Bytes per synthetic packet.
    pub frame_bytes: u32,
    /// How long to write.
    pub duration: Duration,
}

/// What a self-test wrote.
#[derive(Debug, Clone, Copy)]
pub struct StorageTestReport {
    /// The mode used.
    pub io_mode: IoMode,
    /// Records on disk.
    pub records: u64,
    /// File bytes on disk.
    pub file_bytes: u64,
    /// Seconds from the first record to the last write's end.
    pub seconds: f64,
    /// Seconds spent waiting on storage.
    pub storage_wait_s: f64,
    /// The writing thread's CPU time.
    pub cpu: Option<ThreadCpu>,
}

impl StorageTestReport {
    /// One JSON object.
    pub fn to_json(&self) -> String {
        let (user, system) = self
            .cpu
            .map_or((f64::NAN, f64::NAN), |c| (c.user_s, c.system_s));
        format!(
            "{{\"io_mode\":\"{}\",\"records\":{},\"file_bytes\":{},\"seconds\":{},\"mb_per_s\":{},\"mpps\":{},\"storage_wait_s\":{},\"user_s\":{},\"system_s\":{}}}",
            self.io_mode.name(),
            self.records,
            self.file_bytes,
            self.seconds,
            self.file_bytes as f64 / self.seconds / 1e6,
            self.records as f64 / self.seconds / 1e6,
            self.storage_wait_s,
            user,
            system
        )
    }
}

/// Writes records until `duration` passes or `stop` says so.
pub fn run_storage_test(
    test: &StorageTest,
    stop: impl Fn() -> bool,
) -> Result<StorageTestReport, ZcapError> {
    let spec = SinkSpec {
        mode: test.io,
        buffer_bytes: test.buffer_bytes,
        buffers: test.buffers,
        flush_interval: Duration::MAX,
        zstd_level: None,
        preallocate: None,
        #[cfg(test)]
        memory: None,
    };
    let fail = |field, e: String| ZcapError::config(field, e);
    let mut sink = FileSink::create(&test.path, &spec).map_err(|e| {
        fail(
            Field::Output,
            format!("cannot create {}: {e}", test.path.display()),
        )
    })?;
    let encoder = Encoder::new(FileFormat::Pcap, TsPrecision::Nano, 65535, Vec::new());
    encoder.file_header(sink.buffer());
    let frame: Vec<u8> = (0..test.frame_bytes).map(|i| i as u8).collect();
    let cpu_at_start = ThreadCpu::of_current_thread();
    let began = Instant::now();
    let (mut records, mut file_bytes) = (0u64, 0u64);
    let mut count = |books: &super::Books, bytes: u64| {
        records += books.records;
        file_bytes += bytes;
    };
    let mut result = Ok(());
    'outer: while began.elapsed() < test.duration && !stop() {
        for n in 0..4096u64 {
            let meta = RecordMeta {
                ts_ns: 1_700_000_000_000_000_000 + n,
                orig_len: test.frame_bytes,
                interface: 0,
                queue: 0,
                rss_hash: None,
            };
            encoder.record_contiguous(sink.buffer(), &meta, &frame);
            sink.books().records += 1;
            if sink.is_full() {
                result = sink.flush_full();
                if result.is_err() {
                    break 'outer;
                }
            }
        }
        sink.take_landed(&mut count);
    }
    if result.is_ok() {
        result = sink.flush();
    }
    sink.take_landed(&mut count);
    let seconds = began.elapsed().as_secs_f64();
    let waited = sink.take_storage_wait();
    let io_mode = sink.spec().mode;
    drop(sink);
    if !test.keep {
        let _ = std::fs::remove_file(&test.path);
    }
    result.map_err(|e| {
        ZcapError::runtime(format!("cannot write {}: {}", test.path.display(), e.error))
    })?;
    Ok(StorageTestReport {
        io_mode,
        records,
        file_bytes,
        seconds,
        storage_wait_s: waited.as_secs_f64(),
        cpu: cpu_at_start
            .zip(ThreadCpu::of_current_thread())
            .map(|(start, end)| end.since(start)),
    })
}
