//! The record writer without DPDK: packets of plain bytes, files in memory
//! ([`MemoryDisk`]), read back with the `pcap-file` crate.

use super::drain::release;
use super::packet::{Burst, Packet, Release};
use super::records::{RecordParts, RecordWriter};
use crate::format::pcapng::Interface;
use crate::format::{Encoder, FileFormat, TsPrecision, LINKTYPE_ETHERNET};
use crate::output::{FileStream, Rotation, RotationPolicy};
use crate::pipeline::control::{Control, CountLimit};
use crate::pipeline::merge::Merger;
use crate::stats::histogram::{Mailbox, Recorder};
use crate::stats::{QueueShared, WriterCounters};
use crate::storage::memory::MemoryDisk;
use crate::storage::{FileSink, IoMode, SinkSpec};
use pcap_file::pcap::PcapReader;
use pcap_file::pcapng::blocks::interface_statistics::InterfaceStatisticsOption as Isb;
use pcap_file::pcapng::{Block, PcapNgReader};
use std::collections::VecDeque;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A packet of plain bytes, in one segment or several.
struct TestPacket {
    ts_ns: u64,
    segments: Vec<Vec<u8>>,
}

impl TestPacket {
    /// `len` bytes stamped `ts_ns`, each byte the stamp's low byte.
    fn new(ts_ns: u64, len: usize) -> Self {
        let segments = vec![vec![ts_ns as u8; len]];
        TestPacket { ts_ns, segments }
    }

    fn bytes(&self) -> Vec<u8> {
        self.segments.concat()
    }
}

impl Packet for TestPacket {
    fn ts_ns(&self) -> u64 {
        self.ts_ns
    }

    fn orig_len(&self) -> u32 {
        self.segments.iter().map(Vec::len).sum::<usize>() as u32
    }

    fn rss_hash(&self) -> Option<u32> {
        None
    }

    fn rx_tick(&self) -> u32 {
        0
    }

    fn contiguous(&self) -> Option<&[u8]> {
        match self.segments.as_slice() {
            [one] => Some(one),
            _ => None,
        }
    }

    fn segments(&self) -> impl Iterator<Item = &[u8]> {
        self.segments.iter().map(Vec::as_slice)
    }

    fn prefetch(&self) {}
}

/// Keeps the stamps of the packets it was given to free.
#[derive(Default)]
struct Freed(Vec<u64>);

impl Release for Freed {
    type Packet = TestPacket;

    fn release(&mut self, packet: TestPacket) {
        self.0.push(packet.ts_ns);
    }

    fn flush(&mut self) {}
}

struct TestBurst(VecDeque<TestPacket>);

impl Burst for TestBurst {
    type Packet = TestPacket;

    fn len(&self) -> usize {
        self.0.len()
    }

    fn pop_front(&mut self) -> Option<TestPacket> {
        self.0.pop_front()
    }

    fn prefetch_ahead(&self, _ahead: usize) {}
}

/// How a test's writer is set up.
struct Setup {
    format: FileFormat,
    snaplen: u32,
    policy: RotationPolicy,
    limit: Option<Arc<CountLimit>>,
    /// The file name ("a", "b": writers side by side).
    name: &'static str,
}

impl Setup {
    fn new(format: FileFormat) -> Self {
        Setup {
            format,
            snaplen: 65_535,
            policy: RotationPolicy::default(),
            limit: None,
            name: "a",
        }
    }

    /// Files rotated at `max_bytes` (`-C`).
    fn rotating(format: FileFormat, max_bytes: u64) -> Self {
        let policy = RotationPolicy {
            max_bytes: Some(max_bytes),
            ..RotationPolicy::default()
        };
        Setup {
            policy,
            ..Setup::new(format)
        }
    }

    /// A writer into files on `disk`, fed by one queue whose counters are
    /// `queue`'s.
    fn writer(&self, disk: &MemoryDisk, queue: &Arc<QueueShared>) -> RecordWriter<Freed> {
        let extension = match self.format {
            FileFormat::Pcap => "pcap",
            FileFormat::Pcapng => "pcapng",
        };
        let template = format!("/memory/{}.{extension}", self.name);
        let mut rotation = Rotation::new(self.policy.clone(), Path::new(&template));
        let first = rotation.next_path(0);
        let spec = SinkSpec {
            mode: IoMode::Buffered,
            buffer_bytes: Some(512),
            buffers: 2,
            flush_interval: Duration::from_secs(3600),
            zstd_level: None,
            preallocate: None,
            memory: Some(disk.clone()),
        };
        let sink = FileSink::create(&first, &spec).expect("a file in memory");
        let stream = FileStream::new(sink, rotation, vec![(0, queue.clone())], 1, 0);
        let interface = Interface {
            name: "test0".into(),
            description: "test".into(),
            link_type: LINKTYPE_ETHERNET,
            comment: None,
        };
        let encoder = Encoder::new(
            self.format,
            TsPrecision::Nano,
            self.snaplen,
            vec![interface],
        );
        let parts = RecordParts {
            encoder,
            snaplen: self.snaplen,
            counters: Arc::new(WriterCounters::default()),
            control: Arc::new(Control::default()),
            limit: self.limit.clone(),
            free: Freed::default(),
            latency: Recorder::new(Mailbox::new()),
            tsc_hz: 1_000_000_000,
            mirror: None,
        };
        RecordWriter::new(stream, parts)
    }
}

/// Ends the writer as [`super::Writer::run`] does; returns its files in order.
fn finish(mut out: RecordWriter<Freed>) -> (Vec<String>, Finished) {
    out.close_file(None);
    let RecordWriter {
        stream,
        counters,
        control,
        free,
        ..
    } = out;
    (
        stream.finish(|| false),
        Finished {
            counters,
            control,
            free,
        },
    )
}

/// What a finished writer leaves to look at.
struct Finished {
    counters: Arc<WriterCounters>,
    control: Arc<Control>,
    free: Freed,
}

/// The (stamp, wire length, bytes) of every record of a pcap file (one
/// without a snaplen: pcap-file 2.0 refuses a record longer on the wire).
fn pcap_records(file: &[u8]) -> Vec<Record> {
    let mut reader = PcapReader::new(file).expect("a pcap header");
    let mut records = Vec::new();
    while let Some(packet) = reader.next_packet() {
        let p = packet.expect("whole records only");
        records.push((p.timestamp.as_nanos() as u64, p.orig_len, p.data.to_vec()));
    }
    records
}

/// A pcapng file's packets as (stamp, wire length, bytes), and its
/// statistics blocks' options.
type Record = (u64, u32, Vec<u8>);

fn pcapng_blocks(file: &[u8]) -> (Vec<Record>, Vec<Vec<Isb<'static>>>) {
    let mut reader = PcapNgReader::new(file).expect("a section header");
    let (mut packets, mut stats) = (Vec::new(), Vec::new());
    while let Some(block) = reader.next_block() {
        match block.expect("whole blocks only") {
            Block::EnhancedPacket(p) => {
                let ts = p.timestamp.as_nanos() as u64;
                packets.push((ts, p.original_len, p.data.to_vec()));
            }
            Block::InterfaceStatistics(s) => {
                stats.push(s.options.into_iter().map(|o| o.into_owned()).collect())
            }
            _ => {}
        }
    }
    (packets, stats)
}

fn stamps(packets: &[Record]) -> Vec<u64> {
    packets.iter().map(|p| p.0).collect()
}

fn file(disk: &MemoryDisk, path: &str) -> Vec<u8> {
    disk.file(Path::new(path)).expect("the file exists")
}

#[test]
fn snaplen_cuts_each_record_and_the_books_keep_both_lengths() {
    let disk = MemoryDisk::default();
    let queue = Arc::default();
    let setup = Setup {
        snaplen: 100,
        ..Setup::new(FileFormat::Pcapng)
    };
    let mut out = setup.writer(&disk, &queue);
    let mut burst = TestBurst(
        [60, 100, 101, 1500]
            .map(|len| TestPacket::new(len as u64, len))
            .into(),
    );
    out.write_burst(0, 0, &mut burst);
    // Two segments: cut across them.
    let chained = TestPacket {
        ts_ns: 7,
        segments: vec![vec![1; 80], vec![2; 80]],
    };
    let expected = chained.bytes()[..100].to_vec();
    out.write(0, 0, chained);
    let (paths, out) = finish(out);
    let (records, _) = pcapng_blocks(&file(&disk, &paths[0]));
    let caplens: Vec<usize> = records.iter().map(|r| r.2.len()).collect();
    assert_eq!(caplens, vec![60, 100, 100, 100, 100]);
    let wire: Vec<u32> = records.iter().map(|r| r.1).collect();
    assert_eq!(wire, vec![60, 100, 101, 1500, 160]);
    assert_eq!(records[4].2, expected);
    assert_eq!(records[3].2, vec![1500u64 as u8; 100]);
    let c = &out.counters;
    assert_eq!(c.written_packets.get(), 5);
    assert_eq!(c.written_bytes.get(), 460);
    assert_eq!(c.written_wire_bytes.get(), 1921);
    assert_eq!(
        out.free.0,
        vec![60, 100, 101, 1500, 7],
        "every packet freed once"
    );
}

#[test]
fn a_count_limit_is_exact_across_two_writers() {
    let disk = MemoryDisk::default();
    let queue = Arc::default();
    let limit = Some(Arc::new(CountLimit::new(5)));
    let mut writers: Vec<_> = ["a", "b"]
        .map(|name| Setup {
            limit: limit.clone(),
            name,
            ..Setup::new(FileFormat::Pcap)
        })
        .iter()
        .map(|setup| setup.writer(&disk, &queue))
        .collect();
    for ts in 0..8u64 {
        writers[(ts % 2) as usize].write(0, 0, TestPacket::new(ts, 64));
    }
    let mut on_disk = 0;
    let (mut written, mut over) = (0, 0);
    for out in writers {
        let (paths, out) = finish(out);
        on_disk += pcap_records(&file(&disk, &paths[0])).len() as u64;
        written += out.counters.written_packets.get();
        over += out.counters.dropped_count_limit.get();
        assert_eq!(out.free.0.len(), 4, "written or not, each packet freed");
    }
    assert_eq!((on_disk, written, over), (5, 5, 3));
}

#[test]
fn size_rotation_cuts_files_between_records_and_loses_none() {
    let disk = MemoryDisk::default();
    let queue = Arc::default();
    let setup = Setup::rotating(FileFormat::Pcap, 1_000);
    let mut out = setup.writer(&disk, &queue);
    for ts in 0..30u64 {
        out.write(0, 0, TestPacket::new(ts, 100 + ts as usize));
    }
    let (paths, out) = finish(out);
    assert!(paths.len() >= 4, "{paths:?}");
    let mut stamps = Vec::new();
    for (i, path) in paths.iter().enumerate() {
        let bytes = file(&disk, path);
        let records = pcap_records(&bytes);
        assert!(!records.is_empty(), "{path} holds a record");
        // A file rotates once it reached -C: only its last record may cross.
        let last = 16 + records.last().map_or(0, |r| r.2.len() as u64);
        let before_last = bytes.len() as u64 - last;
        assert!(before_last < 1_000, "{path}: {} bytes", bytes.len());
        if i + 1 < paths.len() {
            assert!(bytes.len() >= 1_000, "{path} closed early");
        }
        stamps.extend(records.iter().map(|r| r.0));
    }
    assert_eq!(stamps, (0..30).collect::<Vec<_>>(), "in order, none lost");
    assert_eq!(out.counters.written_packets.get(), 30);
}

#[test]
fn each_pcapng_file_counts_only_its_own_packets() {
    let disk = MemoryDisk::default();
    let queue: Arc<QueueShared> = Arc::default();
    let setup = Setup::rotating(FileFormat::Pcapng, 600);
    let mut out = setup.writer(&disk, &queue);
    for ts in 0..12u64 {
        // The poll loop lost two packets before the seventh.
        if ts == 6 {
            queue.counters.ring_full.add(2);
        }
        out.write(0, 0, TestPacket::new(ts, 200));
    }
    let (paths, _) = finish(out);
    let (mut delivered, mut dropped, mut all) = (0, 0, Vec::new());
    for path in &paths {
        let (packets, stats) = pcapng_blocks(&file(&disk, path));
        let stamps = stamps(&packets);
        assert_eq!(stats.len(), 1, "{path}: one statistics block");
        let option = |want: fn(&Isb) -> Option<u64>| stats[0].iter().find_map(want);
        let usrdeliv = option(|o| match o {
            Isb::IsbUsrDeliv(n) => Some(*n),
            _ => None,
        });
        let ifdrop = option(|o| match o {
            Isb::IsbIfDrop(n) => Some(*n),
            _ => None,
        });
        assert_eq!(usrdeliv, Some(stamps.len() as u64), "{path}");
        delivered += usrdeliv.unwrap_or(0);
        dropped += ifdrop.unwrap_or(0);
        all.extend(stamps);
    }
    assert!(paths.len() >= 3, "{paths:?}");
    assert_eq!(all, (0..12).collect::<Vec<_>>());
    assert_eq!(
        (delivered, dropped),
        (12, 2),
        "each loss counted in one file"
    );
}

#[test]
fn a_torn_write_leaves_whole_records_and_counts_what_it_lost() {
    let disk = MemoryDisk::default();
    let queue = Arc::default();
    let mut out = Setup::new(FileFormat::Pcap).writer(&disk, &queue);
    // Room for the header, 9 records of 116 bytes, and half a tenth.
    disk.limit_room(24 + 9 * 116 + 58);
    for ts in 0..40u64 {
        out.write(0, 0, TestPacket::new(ts, 100));
    }
    let (paths, out) = finish(out);
    let bytes = file(&disk, &paths[0]);
    let records = pcap_records(&bytes);
    let kept = records.len() as u64;
    assert_eq!(
        bytes.len() as u64,
        24 + kept * 116,
        "cut back to a record's end"
    );
    // 512-byte writes: the first holds the header and 5 records; the
    // second tore, and all of its records are lost.
    assert_eq!(kept, 5);
    let c = &out.counters;
    assert_eq!(c.written_packets.get(), kept, "written means on disk");
    assert_eq!(kept + c.dropped_writer.get(), 40, "the rest counted lost");
    let failure = out.control.failure().expect("the capture fails");
    assert!(failure.contains(&paths[0]), "{failure}");
    assert!(failure.contains("its first 604 bytes"), "{failure}");
    assert_eq!(out.free.0.len(), 40);
}

#[test]
fn merged_queues_reach_the_file_in_time_order() {
    let disk = MemoryDisk::default();
    let queue = Arc::default();
    let mut out = Setup::new(FileFormat::Pcapng).writer(&disk, &queue);
    let now = Instant::now();
    let mut merger = Merger::new(2, 1 << 10, Duration::MAX, now);
    let mut push = |feed, stamps: &[u64]| {
        for &ts in stamps {
            merger.push(feed, ts, TestPacket::new(ts, 64));
        }
    };
    push(0, &[1, 4, 5, 9, 12]);
    push(1, &[2, 3, 6, 7, 8]);
    // Queue 1 is empty and vouches for nothing before 9: 12 waits.
    merger.set_watermark(1, 9, now);
    release(&mut merger, |feed| (0, feed as u16), &mut out, now);
    assert_eq!(out.free.0, vec![1, 2, 3, 4, 5, 6, 7, 8, 9]);
    for ts in [10, 11] {
        merger.push(1, ts, TestPacket::new(ts, 64));
    }
    merger.set_watermark(1, u64::MAX, now);
    merger.set_watermark(0, u64::MAX, now);
    release(&mut merger, |feed| (0, feed as u16), &mut out, now);
    let (paths, out) = finish(out);
    let (packets, _) = pcapng_blocks(&file(&disk, &paths[0]));
    assert_eq!(stamps(&packets), (1..=12).collect::<Vec<_>>());
    assert_eq!(out.counters.merge_forced.get(), 0);
    assert_eq!(out.counters.out_of_order.get(), 0);
}
