use super::body::{pair_at, short_pair_at};
use super::*;
use crate::archive::wire::put_varint;

fn frame(last_octet: u8) -> Vec<u8> {
    let mut f = vec![0u8; 12];
    f.extend_from_slice(&[0x08, 0x00, 0x45, 0, 0, 28, 0, 0, 0, 0, 64, 17, 0, 0]);
    f.extend_from_slice(&[10, 0, 0, 1, 10, 0, 0, last_octet, 0, 1, 0, 2]);
    f
}

fn segments(bytes: &[u8]) -> Vec<(SegmentHeader, Option<SegmentBody>)> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + SEGMENT_HEADER_BYTES <= bytes.len() && &bytes[at..at + 4] != DIRECTORY_MAGIC {
        let raw: [u8; SEGMENT_HEADER_BYTES] =
            bytes[at..at + SEGMENT_HEADER_BYTES].try_into().unwrap();
        let header = SegmentHeader::parse(&raw).expect("a header");
        let body_at = at + SEGMENT_HEADER_BYTES;
        let body = &bytes[body_at..body_at + header.body_len as usize];
        let decoded = header
            .checks(body)
            .then(|| SegmentBody::decode(&header, body.to_vec(), true))
            .flatten();
        out.push((header, decoded));
        at = body_at + header.body_len as usize;
    }
    out
}

#[test]
fn segments_hold_positions_flows_and_times() {
    let mut builder = IndexBuilder::new(24, false);
    let mut out = Vec::new();
    for i in 0..SEGMENT_RECORDS + 3 {
        let full = builder.add(1000 + u64::from(i), 100, &frame((i % 3) as u8), true);
        if full {
            builder.take_segment(&mut out);
        }
    }
    builder.finish(&mut out, 1 << 20);
    let segs = segments(&out);
    assert_eq!(segs.len(), 3, "a full segment, the rest, the end");
    let (first, body) = &segs[0];
    assert_eq!(
        (first.data_start, first.records, first.flows),
        (24, SEGMENT_RECORDS, 3)
    );
    assert_eq!(first.data_end, 24 + 100 * u64::from(SEGMENT_RECORDS));
    assert_eq!((first.first_ns, first.last_ns), (1000, 1000 + 8191));
    let body = body.as_ref().expect("checks out");
    assert_eq!(body.flows().map(|f| f.len()), Some(3));
    assert_eq!(
        body.records().expect("whole")[..4],
        [(0, 100), (1, 100), (2, 100), (0, 100)]
    );
    let (second, _) = &segs[1];
    assert_eq!((second.data_start, second.records), (first.data_end, 3));
    let (end, _) = &segs[2];
    assert!(end.end_marker);
    assert_eq!(end.records, SEGMENT_RECORDS + 3);
    // The directory names every header where it is (the index's own
    // 16-byte header comes first in the file).
    let tail = &out[out.len() - TAIL_BYTES..];
    assert_eq!(&tail[8..], TAIL_MAGIC);
    let directory_at =
        u64::from_le_bytes(tail[..8].try_into().unwrap()) as usize - FILE_HEADER_BYTES;
    let entries = parse_directory(&out[directory_at..out.len() - TAIL_BYTES]).expect("a directory");
    assert_eq!(entries.len(), 3);
    for (offset, header) in entries {
        let at = offset as usize - FILE_HEADER_BYTES;
        assert_eq!(&out[at..at + SEGMENT_HEADER_BYTES], &header[..]);
    }
}

#[test]
fn framed_segments_span_writes_and_skip_the_header() {
    let mut builder = IndexBuilder::new(24, true);
    let mut out = Vec::new();
    // A write of the header alone, then writes of records.
    builder.frames_done(0, 40, 24, &mut out);
    for i in 0..SEGMENT_RECORDS {
        assert!(
            !builder.add(u64::from(i), 100, &frame(1), true),
            "writes, not counts, cut segments"
        );
        if i % 1000 == 999 {
            builder.frames_done(40 + u64::from(i / 1000) * 500, 500, 100_000, &mut out);
        }
    }
    builder.frames_done(4040, 30, 19_200, &mut out);
    builder.add(7, 60, &frame(2), true);
    builder.frames_done(4070, 200, 60, &mut out);
    builder.finish(&mut out, 1 << 20);
    let segs = segments(&out);
    assert_eq!(segs.len(), 3, "two segments, the end");
    let (first, body) = &segs[0];
    assert_eq!(
        (first.data_start, first.data_end, first.skip),
        (0, 4070, 24)
    );
    assert_eq!(
        body.as_ref().and_then(|b| b.records()).map(|r| r.len()),
        Some(SEGMENT_RECORDS as usize)
    );
    assert_eq!(
        (segs[1].0.data_start, segs[1].0.data_end, segs[1].0.skip),
        (4070, 4270, 0)
    );
    assert!(segs[2].0.end_marker);
    assert_eq!(segs[2].0.data_start, 4270);
}

#[test]
fn a_flipped_bit_fails_the_checksum() {
    let mut builder = IndexBuilder::new(0, false);
    builder.add(1, 60, &frame(1), true);
    let mut out = Vec::new();
    builder.take_segment(&mut out);
    for bit in [0, 7 * 8 + 3, (out.len() - 1) * 8] {
        let mut bad = out.clone();
        bad[bit / 8] ^= 1 << (bit % 8);
        let raw: [u8; SEGMENT_HEADER_BYTES] = bad[..SEGMENT_HEADER_BYTES].try_into().unwrap();
        let ok = SegmentHeader::parse(&raw).is_some_and(|h| h.checks(&bad[SEGMENT_HEADER_BYTES..]));
        assert!(!ok, "bit {bit}");
    }
}

/// An untagged IPv4 UDP frame of flow `n` (its ports and last address octet).
fn frame_of_flow(n: u32) -> Vec<u8> {
    let mut f = frame(n as u8);
    let ports = f.len() - 4;
    f[ports..].copy_from_slice(&n.to_be_bytes());
    f
}

#[test]
fn flow_ids_are_first_seen_order_per_segment() {
    // Many flows, some seen once, some again: each segment numbers its own
    // from 0, with nothing stale from the one before.
    let flows = 3001;
    let mut builder = IndexBuilder::new(0, false);
    let mut out = Vec::new();
    let mut seen = Vec::new();
    for i in 0..2 * SEGMENT_RECORDS {
        let flow = (i * 7) % flows;
        seen.push(flow);
        if builder.add(u64::from(i), 60, &frame_of_flow(flow), true) {
            builder.take_segment(&mut out);
        }
    }
    let segs = segments(&out);
    assert_eq!(segs.len(), 2);
    for (s, (header, body)) in segs.iter().enumerate() {
        let body = body.as_ref().expect("checks out");
        let start = s * SEGMENT_RECORDS as usize;
        let mut ids = std::collections::HashMap::new();
        for (k, &(id, _)) in body.records().expect("whole").iter().enumerate() {
            let next = ids.len() as u32;
            let expected = *ids.entry(seen[start + k]).or_insert(next);
            assert_eq!(id, expected, "segment {s}, record {k}");
        }
        assert_eq!(header.flows as usize, ids.len(), "segment {s}");
    }
}

#[test]
fn short_pairs_decode_as_varints_do() {
    let values = [
        0u64,
        1,
        127,
        128,
        300,
        16_383,
        16_384,
        70_000,
        u64::from(u32::MAX),
    ];
    for &a in &values {
        for &b in &values {
            let mut table = Vec::new();
            put_varint(&mut table, a);
            put_varint(&mut table, b);
            let whole = pair_at(&table, 0);
            assert_eq!(whole, Some((a, b, table.len())));
            // The short decoder reads a word: what follows must not matter.
            for tail in [0x00u8, 0xff] {
                let mut padded = table.clone();
                padded.extend_from_slice(&[tail; 4]);
                match short_pair_at(&padded, 0) {
                    Some(pair) => assert_eq!(Some(pair), whole, "{a} {b}"),
                    None => assert!(a >= 16_384 || b >= 16_384, "{a} {b}"),
                }
            }
        }
    }
    assert_eq!(short_pair_at(&[1, 2, 3], 0), None, "under a word left");
}
