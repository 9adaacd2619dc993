//! Classic pcap: a 24-byte file header, then a 16-byte header per record.

use super::{append_segments, RecordMeta, TsPrecision, LINKTYPE_ETHERNET};

const MAGIC_MICRO: u32 = 0xa1b2_c3d4;
const MAGIC_NANO: u32 = 0xa1b2_3c4d;
/// Bytes of a record header.
pub(crate) const RECORD_HEADER_LEN: usize = 16;
/// Bytes of the file header.
#[cfg(test)]
const FILE_HEADER_LEN: usize = 24;

/// Encodes pcap records (native byte order, as libpcap writes them).
#[derive(Debug, Clone, Copy)]
pub(crate) struct PcapEncoder {
    precision: TsPrecision,
    snaplen: u32,
    link_type: u16,
}

impl PcapEncoder {
    /// An encoder keeping at most `snaplen` bytes of each Ethernet frame.
    pub(crate) fn new(precision: TsPrecision, snaplen: u32) -> Self {
        PcapEncoder {
            precision,
            snaplen,
            link_type: LINKTYPE_ETHERNET,
        }
    }

    /// The same for packets of `link_type` (`LINKTYPE_*`).
    pub(crate) fn with_link_type(self, link_type: u16) -> Self {
        PcapEncoder { link_type, ..self }
    }

    /// The `LINKTYPE_*` of every record.
    pub(crate) fn link_type(&self) -> u16 {
        self.link_type
    }

    /// Appends the file header.
    pub(crate) fn file_header(&self, buf: &mut Vec<u8>) {
        let magic = match self.precision {
            TsPrecision::Micro => MAGIC_MICRO,
            TsPrecision::Nano => MAGIC_NANO,
        };
        buf.extend_from_slice(&magic.to_ne_bytes());
        buf.extend_from_slice(&2u16.to_ne_bytes());
        buf.extend_from_slice(&4u16.to_ne_bytes());
        buf.extend_from_slice(&0i32.to_ne_bytes()); // thiszone
        buf.extend_from_slice(&0u32.to_ne_bytes()); // sigfigs
        buf.extend_from_slice(&self.snaplen.to_ne_bytes());
        buf.extend_from_slice(&u32::from(self.link_type).to_ne_bytes());
    }

    /// Appends one record whose bytes are in one piece (`orig_len` of them,
    /// or fewer for a short packet); returns its size in bytes. The same
    /// record as [`PcapEncoder::record`], with the header written once.
    #[inline(always)]
    pub(crate) fn record_contiguous(
        &self,
        buf: &mut Vec<u8>,
        meta: &RecordMeta,
        bytes: &[u8],
    ) -> usize {
        let caplen = (meta.orig_len.min(self.snaplen) as usize).min(bytes.len());
        buf.extend_from_slice(&self.record_header(meta, caplen as u32));
        buf.extend_from_slice(&bytes[..caplen]);
        RECORD_HEADER_LEN + caplen
    }

    /// Appends one record; the bytes kept are the first `min(orig_len, snaplen)`
    /// bytes of `segments`. Returns the record's size in bytes.
    #[inline(always)]
    pub(crate) fn record<'a, I>(&self, buf: &mut Vec<u8>, meta: &RecordMeta, segments: I) -> usize
    where
        I: IntoIterator<Item = &'a [u8]>,
    {
        let caplen = meta.orig_len.min(self.snaplen) as usize;
        let header_at = buf.len();
        buf.extend_from_slice(&self.record_header(meta, caplen as u32));
        // A chain shorter than orig_len (should not happen) must not lie in caplen.
        let copied = append_segments(buf, segments, caplen) as u32;
        buf[header_at + 8..header_at + 12].copy_from_slice(&copied.to_ne_bytes());
        RECORD_HEADER_LEN + copied as usize
    }

    /// A record header: time (seconds, then micro- or nanoseconds), bytes
    /// kept, length on the wire.
    #[inline(always)]
    fn record_header(&self, meta: &RecordMeta, caplen: u32) -> [u8; RECORD_HEADER_LEN] {
        let secs = meta.ts_ns / 1_000_000_000;
        let frac = match self.precision {
            TsPrecision::Micro => (meta.ts_ns % 1_000_000_000) / 1_000,
            TsPrecision::Nano => meta.ts_ns % 1_000_000_000,
        };
        let mut header = [0u8; RECORD_HEADER_LEN];
        header[0..4].copy_from_slice(&(secs as u32).to_ne_bytes());
        header[4..8].copy_from_slice(&(frac as u32).to_ne_bytes());
        header[8..12].copy_from_slice(&caplen.to_ne_bytes());
        header[12..16].copy_from_slice(&meta.orig_len.to_ne_bytes());
        header
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(ts_ns: u64, orig_len: u32) -> RecordMeta {
        RecordMeta {
            ts_ns,
            orig_len,
            interface: 0,
            queue: 0,
            rss_hash: None,
        }
    }

    fn u32_at(buf: &[u8], at: usize) -> u32 {
        u32::from_ne_bytes(buf[at..at + 4].try_into().unwrap())
    }

    #[test]
    fn header_has_magic_version_snaplen_linktype() {
        let mut buf = Vec::new();
        PcapEncoder::new(TsPrecision::Nano, 1234).file_header(&mut buf);
        assert_eq!(buf.len(), FILE_HEADER_LEN);
        assert_eq!(u32_at(&buf, 0), MAGIC_NANO);
        assert_eq!(u32_at(&buf, 16), 1234);
        assert_eq!(u32_at(&buf, 20), 1);
        let mut raw = Vec::new();
        PcapEncoder::new(TsPrecision::Nano, 1234)
            .with_link_type(101)
            .file_header(&mut raw);
        assert_eq!(u32_at(&raw, 20), 101);
        let mut micro = Vec::new();
        PcapEncoder::new(TsPrecision::Micro, 1).file_header(&mut micro);
        assert_eq!(u32_at(&micro, 0), MAGIC_MICRO);
    }

    #[test]
    fn record_splits_timestamp_by_precision() {
        let ts = 1_700_000_000_123_456_789;
        let mut nano = Vec::new();
        PcapEncoder::new(TsPrecision::Nano, 65535).record(&mut nano, &meta(ts, 2), [&[1u8, 2][..]]);
        assert_eq!(u32_at(&nano, 0), 1_700_000_000);
        assert_eq!(u32_at(&nano, 4), 123_456_789);
        let mut micro = Vec::new();
        PcapEncoder::new(TsPrecision::Micro, 65535).record(
            &mut micro,
            &meta(ts, 2),
            [&[1u8, 2][..]],
        );
        assert_eq!(u32_at(&micro, 4), 123_456);
    }

    #[test]
    fn snaplen_truncates_bytes_but_keeps_orig_len() {
        let data: Vec<u8> = (0..100).collect();
        let mut buf = Vec::new();
        let size =
            PcapEncoder::new(TsPrecision::Nano, 64).record(&mut buf, &meta(0, 100), [&data[..]]);
        assert_eq!(size, 16 + 64);
        assert_eq!(u32_at(&buf, 8), 64);
        assert_eq!(u32_at(&buf, 12), 100);
        assert_eq!(&buf[16..], &data[..64]);
    }

    #[test]
    fn contiguous_records_equal_segment_records() {
        let data: Vec<u8> = (0..=255u8).cycle().take(1600).collect();
        for precision in [TsPrecision::Micro, TsPrecision::Nano] {
            for snaplen in [1, 64, 65, 96, 1500, 65535] {
                for len in [0usize, 1, 31, 32, 33, 60, 64, 65, 127, 128, 129, 1514, 1600] {
                    let enc = PcapEncoder::new(precision, snaplen);
                    let m = meta(1_700_000_000_987_654_321, len as u32);
                    let (mut a, mut b) = (vec![7u8; 3], vec![7u8; 3]);
                    let size_a = enc.record(&mut a, &m, [&data[..len]]);
                    let size_b = enc.record_contiguous(&mut b, &m, &data[..len]);
                    assert_eq!((size_a, &a), (size_b, &b), "len {len} snaplen {snaplen}");
                }
            }
        }
        // A packet shorter than its original length keeps only what it has.
        let mut short = Vec::new();
        let enc = PcapEncoder::new(TsPrecision::Nano, 65535);
        assert_eq!(
            enc.record_contiguous(&mut short, &meta(0, 100), &data[..10]),
            26
        );
        assert_eq!(u32_at(&short, 8), 10);
        assert_eq!(u32_at(&short, 12), 100);
    }

    #[test]
    fn chained_segments_are_written_whole_and_in_order() {
        let a = [1u8; 10];
        let b = [2u8; 7];
        let mut buf = Vec::new();
        PcapEncoder::new(TsPrecision::Nano, 65535).record(&mut buf, &meta(0, 17), [&a[..], &b[..]]);
        assert_eq!(u32_at(&buf, 8), 17);
        assert_eq!(&buf[16..26], &a);
        assert_eq!(&buf[26..], &b);
    }
}
