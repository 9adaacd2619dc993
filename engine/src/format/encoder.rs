//! One encoder type for either format, so writers need not care which.

use super::pcap::PcapEncoder;
use super::pcapng::{Interface, InterfaceStats, PcapngEncoder};
use super::{FileFormat, RecordMeta, TsPrecision, LINKTYPE_ETHERNET};

/// Encodes a whole capture file: header, records, trailer.
#[derive(Debug, Clone)]
pub(crate) enum Encoder {
    /// Classic pcap.
    Pcap(PcapEncoder),
    /// pcapng, with the interfaces described in its header.
    Pcapng(PcapngEncoder, Vec<Interface>),
}

impl Encoder {
    /// An encoder for `format`; `interfaces` are the ports (pcapng only).
    pub(crate) fn new(
        format: FileFormat,
        precision: TsPrecision,
        snaplen: u32,
        interfaces: Vec<Interface>,
    ) -> Self {
        // One link type per pcap file: the caller refuses ports that differ.
        let link_type = interfaces
            .first()
            .map_or(LINKTYPE_ETHERNET, |i| i.link_type);
        match format {
            FileFormat::Pcap => {
                Encoder::Pcap(PcapEncoder::new(precision, snaplen).with_link_type(link_type))
            }
            FileFormat::Pcapng => Encoder::Pcapng(PcapngEncoder::new(snaplen), interfaces),
        }
    }

    /// The latest time, in ns since the epoch, the format can hold: pcap's
    /// seconds are 32 bits unsigned (to 2106-02-07 06:28:15 UTC), pcapng's
    /// time is 64-bit nanoseconds.
    pub(crate) fn latest_ns(&self) -> u64 {
        match self {
            Encoder::Pcap(_) => (u64::from(u32::MAX) + 1) * 1_000_000_000 - 1,
            Encoder::Pcapng(..) => u64::MAX,
        }
    }

    /// The `LINKTYPE_*` of interface `interface`'s records.
    pub(crate) fn link_type(&self, interface: usize) -> u16 {
        match self {
            Encoder::Pcap(p) => p.link_type(),
            Encoder::Pcapng(_, interfaces) => interfaces
                .get(interface)
                .map_or(LINKTYPE_ETHERNET, |i| i.link_type),
        }
    }

    /// Appends what starts a file.
    pub(crate) fn file_header(&self, buf: &mut Vec<u8>) {
        match self {
            Encoder::Pcap(p) => p.file_header(buf),
            Encoder::Pcapng(p, interfaces) => {
                let app = concat!("zcap ", env!("CARGO_PKG_VERSION"));
                p.section_header(buf, app);
                for iface in interfaces {
                    p.interface(buf, iface);
                }
            }
        }
    }

    /// Appends one packet record; returns its size in bytes.
    #[inline(always)]
    pub(crate) fn record<'a, I>(&self, buf: &mut Vec<u8>, meta: &RecordMeta, segments: I) -> usize
    where
        I: IntoIterator<Item = &'a [u8]>,
    {
        match self {
            Encoder::Pcap(p) => p.record(buf, meta, segments),
            Encoder::Pcapng(p, _) => p.packet(buf, meta, segments),
        }
    }

    /// Appends one packet record whose bytes are in one piece; returns its
    /// size in bytes.
    #[inline(always)]
    pub(crate) fn record_contiguous(
        &self,
        buf: &mut Vec<u8>,
        meta: &RecordMeta,
        bytes: &[u8],
    ) -> usize {
        match self {
            Encoder::Pcap(p) => p.record_contiguous(buf, meta, bytes),
            Encoder::Pcapng(p, _) => p.packet(buf, meta, [bytes]),
        }
    }

    /// Appends what ends a file: per-interface statistics (pcapng only).
    pub(crate) fn file_trailer(&self, buf: &mut Vec<u8>, stats: &[InterfaceStats]) {
        if let Encoder::Pcapng(p, _) = self {
            for (i, s) in stats.iter().enumerate() {
                p.statistics(buf, i as u32, s);
            }
        }
    }
}
