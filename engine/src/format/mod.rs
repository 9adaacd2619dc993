//! Capture-file encoders over plain byte buffers: no DPDK, no I/O.
//!
//! An encoder appends a file header and packet records to a `Vec<u8>`; the
//! output layer decides when to write the buffer out.

mod encoder;
pub(crate) mod linktype;
pub(crate) mod pcap;
pub(crate) mod pcapng;

pub(crate) use encoder::Encoder;

/// Ethernet link type (`LINKTYPE_ETHERNET`), the only one DPDK ports deliver.
pub const LINKTYPE_ETHERNET: u16 = 1;

/// The capture file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    /// Classic libpcap format.
    Pcap,
    /// pcap Next Generation.
    Pcapng,
}

impl FileFormat {
    /// The format a file name implies: `.pcapng` (or `.pcapng.zst`) is
    /// pcapng, anything else pcap.
    pub fn from_path(path: &str) -> Self {
        let lower = path.to_ascii_lowercase();
        let name = lower.strip_suffix(".zst").unwrap_or(&lower);
        if name.ends_with(".pcapng") {
            FileFormat::Pcapng
        } else {
            FileFormat::Pcap
        }
    }

    /// Parses `-F pcap|pcapng`.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "pcap" => Some(FileFormat::Pcap),
            "pcapng" => Some(FileFormat::Pcapng),
            _ => None,
        }
    }
}

/// Timestamp precision of classic pcap files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TsPrecision {
    /// Microseconds (magic `0xa1b2c3d4`).
    Micro,
    /// Nanoseconds (magic `0xa1b23c4d`).
    Nano,
}

/// What a record says about one packet, apart from its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordMeta {
    /// Receive time, nanoseconds since the Unix epoch.
    pub ts_ns: u64,
    /// Length on the wire (what the port delivered).
    pub orig_len: u32,
    /// Interface index (pcapng; one interface per port).
    pub interface: u32,
    /// RX queue the packet came from (pcapng `epb_queue`).
    pub queue: u32,
    /// RSS hash the NIC supplied, if any (pcapng `epb_hash`).
    pub rss_hash: Option<u32>,
}

/// Appends up to `caplen` bytes gathered from `segments` to `buf`; returns the
/// number of bytes appended.
#[inline(always)]
pub(crate) fn append_segments<'a, I>(buf: &mut Vec<u8>, segments: I, caplen: usize) -> usize
where
    I: IntoIterator<Item = &'a [u8]>,
{
    let mut left = caplen;
    for seg in segments {
        if left == 0 {
            break;
        }
        let take = seg.len().min(left);
        buf.extend_from_slice(&seg[..take]);
        left -= take;
    }
    caplen - left
}
