//! pcapng: a section header, one interface description per port, enhanced
//! packet blocks, and interface statistics blocks at close.

#[cfg(test)]
use super::LINKTYPE_ETHERNET;
use super::{append_segments, RecordMeta};

const BLOCK_SHB: u32 = 0x0A0D_0D0A;
const BLOCK_IDB: u32 = 0x0000_0001;
const BLOCK_ISB: u32 = 0x0000_0005;
const BLOCK_EPB: u32 = 0x0000_0006;
const BYTE_ORDER_MAGIC: u32 = 0x1A2B_3C4D;

const OPT_END: u16 = 0;
const OPT_SHB_USERAPPL: u16 = 4;
const OPT_IF_NAME: u16 = 2;
const OPT_IF_DESCRIPTION: u16 = 3;
const OPT_COMMENT: u16 = 1;
const OPT_IF_TSRESOL: u16 = 9;
const OPT_EPB_HASH: u16 = 3;
const OPT_EPB_QUEUE: u16 = 6;
const OPT_ISB_STARTTIME: u16 = 2;
const OPT_ISB_ENDTIME: u16 = 3;
const OPT_ISB_IFRECV: u16 = 4;
const OPT_ISB_IFDROP: u16 = 5;
const OPT_ISB_FILTERACCEPT: u16 = 6;
const OPT_ISB_USRDELIV: u16 = 8;
/// `epb_hash` algorithm code for a Toeplitz (RSS) hash.
const HASH_TOEPLITZ: u8 = 5;

/// One capture interface (a DPDK port) as pcapng describes it.
#[derive(Debug, Clone)]
pub(crate) struct Interface {
    /// `if_name`, e.g. `net_null0` or `0000:03:00.0`.
    pub name: String,
    /// `if_description`, e.g. the driver name.
    pub description: String,
    /// The `LINKTYPE_*` of its packets: Ethernet, or a replayed file's own.
    pub link_type: u16,
    /// `opt_comment`: where its timestamps come from.
    pub comment: Option<String>,
}

/// Counters for an interface statistics block.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct InterfaceStats {
    /// Start of the counted interval, ns since the epoch.
    pub start_ns: u64,
    /// End of the counted interval (the block's timestamp), ns since the epoch.
    pub end_ns: u64,
    /// `isb_ifrecv`: packets received by the interface.
    pub received: u64,
    /// `isb_ifdrop`: packets dropped by the interface or before writing.
    pub dropped: u64,
    /// `isb_filteraccept`: packets accepted by the filter.
    pub filter_accepted: u64,
    /// `isb_usrdeliv`: packets written to this file.
    pub delivered: u64,
}

/// Encodes pcapng blocks (native byte order, with nanosecond timestamps).
#[derive(Debug, Clone, Copy)]
pub(crate) struct PcapngEncoder {
    snaplen: u32,
}

/// Starts a block: type and a placeholder length. Returns where it starts.
fn begin_block(buf: &mut Vec<u8>, block_type: u32) -> usize {
    let start = buf.len();
    buf.extend_from_slice(&block_type.to_ne_bytes());
    buf.extend_from_slice(&0u32.to_ne_bytes());
    start
}

/// Ends a block begun at `start`: writes its total length at both ends.
fn end_block(buf: &mut Vec<u8>, start: usize) {
    let total = (buf.len() - start + 4) as u32;
    buf.extend_from_slice(&total.to_ne_bytes());
    buf[start + 4..start + 8].copy_from_slice(&total.to_ne_bytes());
}

fn pad_to_4(buf: &mut Vec<u8>) {
    let pad = (4 - buf.len() % 4) % 4;
    buf.extend_from_slice(&[0u8; 3][..pad]);
}

fn option(buf: &mut Vec<u8>, code: u16, value: &[u8]) {
    buf.extend_from_slice(&code.to_ne_bytes());
    buf.extend_from_slice(&(value.len() as u16).to_ne_bytes());
    buf.extend_from_slice(value);
    pad_to_4(buf);
}

fn end_of_options(buf: &mut Vec<u8>) {
    buf.extend_from_slice(&OPT_END.to_ne_bytes());
    buf.extend_from_slice(&0u16.to_ne_bytes());
}

fn timestamp_words(ts_ns: u64) -> [u8; 8] {
    let mut out = [0u8; 8];
    out[..4].copy_from_slice(&((ts_ns >> 32) as u32).to_ne_bytes());
    out[4..].copy_from_slice(&(ts_ns as u32).to_ne_bytes());
    out
}

impl PcapngEncoder {
    /// An encoder keeping at most `snaplen` bytes per packet.
    pub(crate) fn new(snaplen: u32) -> Self {
        PcapngEncoder { snaplen }
    }

    /// Appends a section header block naming the writing application.
    pub(crate) fn section_header(&self, buf: &mut Vec<u8>, application: &str) {
        let start = begin_block(buf, BLOCK_SHB);
        buf.extend_from_slice(&BYTE_ORDER_MAGIC.to_ne_bytes());
        buf.extend_from_slice(&1u16.to_ne_bytes());
        buf.extend_from_slice(&0u16.to_ne_bytes());
        buf.extend_from_slice(&(-1i64).to_ne_bytes()); // section length unknown
        option(buf, OPT_SHB_USERAPPL, application.as_bytes());
        end_of_options(buf);
        end_block(buf, start);
    }

    /// Appends an interface description block with nanosecond resolution.
    pub(crate) fn interface(&self, buf: &mut Vec<u8>, iface: &Interface) {
        let start = begin_block(buf, BLOCK_IDB);
        buf.extend_from_slice(&iface.link_type.to_ne_bytes());
        buf.extend_from_slice(&0u16.to_ne_bytes());
        buf.extend_from_slice(&self.snaplen.to_ne_bytes());
        option(buf, OPT_IF_NAME, iface.name.as_bytes());
        option(buf, OPT_IF_DESCRIPTION, iface.description.as_bytes());
        option(buf, OPT_IF_TSRESOL, &[9]);
        if let Some(comment) = &iface.comment {
            option(buf, OPT_COMMENT, comment.as_bytes());
        }
        end_of_options(buf);
        end_block(buf, start);
    }

    /// Appends an enhanced packet block; returns its size in bytes.
    #[inline(always)]
    pub(crate) fn packet<'a, I>(&self, buf: &mut Vec<u8>, meta: &RecordMeta, segments: I) -> usize
    where
        I: IntoIterator<Item = &'a [u8]>,
    {
        let caplen = meta.orig_len.min(self.snaplen) as usize;
        let start = begin_block(buf, BLOCK_EPB);
        let mut fixed = [0u8; 20];
        fixed[0..4].copy_from_slice(&meta.interface.to_ne_bytes());
        fixed[4..12].copy_from_slice(&timestamp_words(meta.ts_ns));
        fixed[16..20].copy_from_slice(&meta.orig_len.to_ne_bytes());
        buf.extend_from_slice(&fixed);
        let copied = append_segments(buf, segments, caplen) as u32;
        buf[start + 20..start + 24].copy_from_slice(&copied.to_ne_bytes());
        pad_to_4(buf);
        option(buf, OPT_EPB_QUEUE, &meta.queue.to_ne_bytes());
        if let Some(hash) = meta.rss_hash {
            let mut value = [0u8; 5];
            value[0] = HASH_TOEPLITZ;
            value[1..].copy_from_slice(&hash.to_be_bytes());
            option(buf, OPT_EPB_HASH, &value);
        }
        end_of_options(buf);
        end_block(buf, start);
        buf.len() - start
    }

    /// Appends an interface statistics block for interface `interface`.
    pub(crate) fn statistics(&self, buf: &mut Vec<u8>, interface: u32, stats: &InterfaceStats) {
        let start = begin_block(buf, BLOCK_ISB);
        buf.extend_from_slice(&interface.to_ne_bytes());
        buf.extend_from_slice(&timestamp_words(stats.end_ns));
        option(buf, OPT_ISB_STARTTIME, &timestamp_words(stats.start_ns));
        option(buf, OPT_ISB_ENDTIME, &timestamp_words(stats.end_ns));
        option(buf, OPT_ISB_IFRECV, &stats.received.to_ne_bytes());
        option(buf, OPT_ISB_IFDROP, &stats.dropped.to_ne_bytes());
        option(
            buf,
            OPT_ISB_FILTERACCEPT,
            &stats.filter_accepted.to_ne_bytes(),
        );
        option(buf, OPT_ISB_USRDELIV, &stats.delivered.to_ne_bytes());
        end_of_options(buf);
        end_block(buf, start);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u32_at(buf: &[u8], at: usize) -> u32 {
        u32::from_ne_bytes(buf[at..at + 4].try_into().unwrap())
    }

    /// Walks a buffer block by block: checks both length fields agree and
    /// every block is 4-byte aligned. Returns the block types.
    fn blocks(buf: &[u8]) -> Vec<u32> {
        let mut at = 0;
        let mut types = Vec::new();
        while at < buf.len() {
            let len = u32_at(buf, at + 4) as usize;
            assert_eq!(len % 4, 0, "block length not aligned");
            assert_eq!(
                u32_at(buf, at + len - 4) as usize,
                len,
                "trailing length differs"
            );
            types.push(u32_at(buf, at));
            at += len;
        }
        assert_eq!(at, buf.len());
        types
    }

    fn meta(len: u32, hash: Option<u32>) -> RecordMeta {
        RecordMeta {
            ts_ns: 0x1234_5678_9abc_def0,
            orig_len: len,
            interface: 0,
            queue: 3,
            rss_hash: hash,
        }
    }

    #[test]
    fn file_is_a_sequence_of_well_formed_blocks() {
        let enc = PcapngEncoder::new(65535);
        let mut buf = Vec::new();
        enc.section_header(&mut buf, "zcap test");
        let iface = Interface {
            name: "net_null0".into(),
            description: "net_null".into(),
            link_type: LINKTYPE_ETHERNET,
            comment: None,
        };
        enc.interface(&mut buf, &iface);
        for len in [1u32, 2, 3, 4, 5, 60, 61, 1514] {
            let data = vec![0xabu8; len as usize];
            enc.packet(&mut buf, &meta(len, Some(7)), [&data[..]]);
        }
        enc.statistics(&mut buf, 0, &InterfaceStats::default());
        let types = blocks(&buf);
        assert_eq!(types[0], BLOCK_SHB);
        assert_eq!(types[1], BLOCK_IDB);
        assert!(types[2..10].iter().all(|&t| t == BLOCK_EPB));
        assert_eq!(types[10], BLOCK_ISB);
    }

    #[test]
    fn an_interface_comment_is_an_opt_comment_option() {
        let enc = PcapngEncoder::new(65535);
        let mut buf = Vec::new();
        let iface = Interface {
            name: "p".into(),
            description: String::new(),
            link_type: LINKTYPE_ETHERNET,
            comment: Some("timestamps: host".into()),
        };
        enc.interface(&mut buf, &iface);
        let mut wanted = OPT_COMMENT.to_ne_bytes().to_vec();
        wanted.extend_from_slice(&16u16.to_ne_bytes());
        wanted.extend_from_slice(b"timestamps: host");
        assert!(
            buf.windows(wanted.len()).any(|w| w == wanted),
            "no opt_comment"
        );
        assert_eq!(blocks(&buf), vec![BLOCK_IDB]);
    }

    #[test]
    fn packet_block_carries_split_timestamp_lengths_and_queue() {
        let enc = PcapngEncoder::new(10);
        let mut buf = Vec::new();
        let data = [9u8; 20];
        enc.packet(&mut buf, &meta(20, None), [&data[..]]);
        assert_eq!(u32_at(&buf, 12), 0x1234_5678);
        assert_eq!(u32_at(&buf, 16), 0x9abc_def0);
        assert_eq!(u32_at(&buf, 20), 10, "caplen limited by snaplen");
        assert_eq!(u32_at(&buf, 24), 20, "orig_len kept");
        // data (10) padded to 12, then epb_queue option: code 6, len 4, value 3.
        let opt = 28 + 12;
        assert_eq!(u16::from_ne_bytes([buf[opt], buf[opt + 1]]), OPT_EPB_QUEUE);
        assert_eq!(u32_at(&buf, opt + 4), 3);
    }
}
