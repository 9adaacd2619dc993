//! A file of several segments read through its index: the records of later
//! segments are planned while earlier ones are read, and what comes out is
//! what a scan of the whole file selects, in file order, whatever the index
//! makes the source do (skip, read whole, scan from damage).

use super::*;
use crate::archive::index::{file_header, IndexBuilder, SegmentHeader, SEGMENT_HEADER_BYTES};
use crate::archive::plan::read_plan;
use crate::archive::query::{KeyVerdicts, Query};
use std::path::PathBuf;

const RECORDS: u32 = 3 * crate::archive::index::SEGMENT_RECORDS + 500;

/// UDP from 10.0.0.(i % 7) to 10.9.9.9, `60 + i % 90` bytes, stamped i µs.
fn frame(i: u32) -> Vec<u8> {
    let mut f = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x08, 0x00];
    f.extend_from_slice(&[0x45, 0, 0, 28, 0, 0, 0, 0, 64, 17, 0, 0]);
    f.extend_from_slice(&[10, 0, 0, (i % 7) as u8, 10, 9, 9, 9]);
    f.extend_from_slice(&[0x04, 0xd2, 0x00, 0x35, 0, 8, 0, 0]);
    f.resize(60 + (i % 90) as usize, 0xab);
    f
}

/// A pcap file of [`RECORDS`] frames, with its index; returns its path.
fn indexed_capture(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("zcap-source-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("c.pcap");
    let mut file = vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0];
    file.extend_from_slice(&[0; 8]);
    file.extend_from_slice(&65_535u32.to_le_bytes());
    file.extend_from_slice(&1u32.to_le_bytes());
    let mut builder = IndexBuilder::new(file.len() as u64, false);
    let mut index = file_header(false).to_vec();
    let mut segments = Vec::new();
    for i in 0..RECORDS {
        let frame = frame(i);
        let len = frame.len() as u32;
        for word in [i / 1_000_000, i % 1_000_000, len, len] {
            file.extend_from_slice(&word.to_le_bytes());
        }
        file.extend_from_slice(&frame);
        if builder.add(u64::from(i) * 1000, 16 + frame.len(), &frame, true) {
            builder.take_segment(&mut segments);
        }
    }
    builder.finish(&mut segments, file.len() as u64);
    index.extend_from_slice(&segments);
    std::fs::write(&path, &file).unwrap();
    std::fs::write(crate::archive::index_path(&path), &index).unwrap();
    path
}

/// Flips a byte in the body of segment `n` of the index of `path`.
fn damage_body(path: &Path, n: usize) {
    let index_path = crate::archive::index_path(path);
    let mut index = std::fs::read(&index_path).unwrap();
    let mut at = crate::archive::index::FILE_HEADER_BYTES;
    for _ in 0..n {
        let raw = index[at..at + SEGMENT_HEADER_BYTES].try_into().unwrap();
        at += SEGMENT_HEADER_BYTES + SegmentHeader::parse(&raw).unwrap().body_len as usize;
    }
    index[at + SEGMENT_HEADER_BYTES + 10] ^= 0x20;
    std::fs::write(&index_path, &index).unwrap();
}

/// Accepts a window and packets from one source address.
struct FromHost {
    octet: u8,
    window: (u64, u64),
}

impl Judge for FromHost {
    fn accepts(&mut self, _: u16, packet: &Packet) -> bool {
        let (from, to) = self.window;
        packet.ts_ns >= from && packet.ts_ns < to && packet.data[29] == self.octet
    }

    fn window(&self) -> (u64, u64) {
        self.window
    }
}

/// What `query` and `judge` give through the index and through a scan,
/// with what reading through the index counted and said.
fn through_index_and_scan(
    path: &Path,
    query: &str,
    judge: &mut FromHost,
) -> (Vec<Packet>, Vec<Packet>, SourceCounts, Option<String>) {
    through_index_and_scan_of(path, query, judge, true)
}

/// [`through_index_and_scan`]; `usable`: whether the index is.
fn through_index_and_scan_of(
    path: &Path,
    query: &str,
    judge: &mut FromHost,
    usable: bool,
) -> (Vec<Packet>, Vec<Packet>, SourceCounts, Option<String>) {
    let mut read = |index: bool| {
        let reader = CaptureReader::open(path).unwrap();
        let plan = if index {
            read_plan(
                &crate::archive::index_path(path),
                reader.len(),
                reader.header_end(),
            )
        } else {
            IndexState::Missing
        };
        let verdicts = KeyVerdicts::shared(Query::parse(query));
        let mut source = FileSource::new(path, reader, plan, verdicts);
        let mut got = Vec::new();
        while let Some(packet) = source.next_match(judge).unwrap() {
            got.push(packet);
        }
        assert_eq!(source.indexed(), index && usable);
        (got, source.counts, source.warning)
    };
    let (indexed, counts, warning) = read(true);
    let (scanned, _, _) = read(false);
    (indexed, scanned, counts, warning)
}

#[test]
fn records_planned_ahead_come_out_as_a_scan_selects_them() {
    let path = indexed_capture("ahead");
    let whole = (0, u64::MAX);
    let window = (5_000_000, 20_000_000);
    let cases = [
        ("src host 10.0.0.3", whole, 1),
        ("src host 10.0.0.3", window, 1),
        // Nothing to narrow by: the window's segments are read whole.
        ("", window, 7),
    ];
    for (query, window, read_per_match) in cases {
        let mut judge = FromHost { octet: 3, window };
        let (indexed, scanned, counts, warning) = through_index_and_scan(&path, query, &mut judge);
        assert!(!scanned.is_empty());
        assert_eq!(indexed, scanned, "{query:?} in {window:?}");
        assert_eq!(warning, None);
        // The index kept the search to the flow (and to the window's
        // segments), not the whole file.
        assert!(
            counts.read <= read_per_match * indexed.len() as u64 + 2 * 8192,
            "{query:?} in {window:?}: {} read for {}",
            counts.read,
            indexed.len()
        );
    }
    std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
}

#[test]
fn a_damaged_segment_after_planned_ones_is_scanned_after_them() {
    let path = indexed_capture("damaged");
    damage_body(&path, 2);
    let mut judge = FromHost {
        octet: 5,
        window: (0, u64::MAX),
    };
    let (indexed, scanned, counts, warning) =
        through_index_and_scan(&path, "src host 10.0.0.5", &mut judge);
    assert_eq!(indexed, scanned);
    let warning = warning.expect("the damage is said");
    assert!(
        warning.contains("segment 2 fails its checksum"),
        "{warning}"
    );
    // Segments 0 and 1 through the index (a seventh of their records),
    // the rest by a scan.
    let scanned_from_2 = u64::from(RECORDS) - 2 * 8192;
    assert!(
        counts.read < scanned_from_2 + 2 * 8192 / 5,
        "{}",
        counts.read
    );
    assert!(counts.read >= scanned_from_2, "{}", counts.read);
    std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
}

/// Swaps where the directory of the index of `path` says its first two
/// segments are (its checksum made good again): each header still checks
/// out, but the second now lies before the first.
fn misorder_directory(path: &Path) {
    let index_path = crate::archive::index_path(path);
    let mut index = std::fs::read(&index_path).unwrap();
    let tail = index.len() - 16;
    let directory = u64::from_le_bytes(index[tail..tail + 8].try_into().unwrap()) as usize;
    let entry = |n: usize| directory + 8 + n * (8 + SEGMENT_HEADER_BYTES);
    let (first, second) = (entry(0), entry(1));
    let a: [u8; 8] = index[first..first + 8].try_into().unwrap();
    let b: [u8; 8] = index[second..second + 8].try_into().unwrap();
    index[first..first + 8].copy_from_slice(&b);
    index[second..second + 8].copy_from_slice(&a);
    let crc = crc32fast::hash(&index[directory..tail - 4]);
    index[tail - 4..tail].copy_from_slice(&crc.to_le_bytes());
    std::fs::write(&index_path, &index).unwrap();
}

#[test]
fn a_directory_out_of_order_is_damage_and_the_file_is_scanned() {
    let path = indexed_capture("misordered");
    misorder_directory(&path);
    let mut judge = FromHost {
        octet: 2,
        window: (0, u64::MAX),
    };
    let (indexed, scanned, _, warning) =
        through_index_and_scan_of(&path, "src host 10.0.0.2", &mut judge, false);
    assert_eq!(indexed, scanned);
    let warning = warning.expect("the damage is said");
    assert!(
        warning.contains("lies before the end of the one before it"),
        "{warning}"
    );
    std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
}
