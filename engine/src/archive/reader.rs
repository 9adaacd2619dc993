// Over 500 lines: one reader for both formats, sharing its positioning, damage rules and buffer; the block parsing is most of it.
//! Reads pcap and pcapng files record by record, from the start or from a
//! position the index names. Only what extraction needs: packets with their
//! time, lengths, interface, queue and hash; other pcapng blocks are skipped.

use super::stream::{read_frames, Stream};
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::Path;

const PCAP_MICRO: u32 = 0xa1b2_c3d4;
const PCAP_NANO: u32 = 0xa1b2_3c4d;
const PCAPNG_SHB: u32 = 0x0a0d_0d0a;
const PCAPNG_BYTE_ORDER: u32 = 0x1a2b_3c4d;
const BLOCK_IDB: u32 = 1;
const BLOCK_EPB: u32 = 6;
const OPT_IF_NAME: u16 = 2;
const OPT_IF_DESCRIPTION: u16 = 3;
const OPT_IF_TSRESOL: u16 = 9;
const OPT_EPB_HASH: u16 = 3;
const OPT_EPB_QUEUE: u16 = 6;
/// libpcap's largest snap length: a record claiming more is damage, whatever
/// the file header's snap length says (a fuzzed header said 4 GB, and the
/// reader tried to allocate it).
const MAX_CAPLEN: u32 = 262_144;
/// A pcapng block longer than this is damage, not a packet.
const MAX_BLOCK: u32 = 16 << 20;

/// Why [`CaptureReader::open`] refused a file that is no capture at all
/// (as opposed to a capture with a damaged header).
pub(crate) const NOT_A_CAPTURE: &str = "neither pcap nor pcapng";
pub(crate) const EMPTY: &str = "an empty file";
/// The file went between listing and opening (`-W` removed it).
pub(crate) const GONE: &str = "removed before it could be read";

/// One interface of a capture file (a pcap file has one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Interface {
    pub(crate) link_type: u16,
    pub(crate) name: String,
    pub(crate) description: String,
    pub(crate) snaplen: u32,
    /// Units per second of its timestamps.
    units_per_s: u64,
}

/// One packet read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Packet {
    pub(crate) ts_ns: u64,
    pub(crate) orig_len: u32,
    /// Index into [`CaptureReader::interfaces`].
    pub(crate) interface: u32,
    pub(crate) queue: Option<u32>,
    pub(crate) rss_hash: Option<u32>,
    pub(crate) data: Vec<u8>,
}

/// Why reading stopped before the end of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Damage {
    /// The file ends inside a record (cut short, or still being written).
    CutShort { at: u64 },
    /// A compressed file ends inside a zstd frame (the same, compressed).
    CutFrame,
    /// Bytes that are not a record.
    Garbage { at: u64, what: String },
}

impl std::fmt::Display for Damage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Damage::CutShort { at } => write!(f, "ends inside a record at byte {at}"),
            Damage::CutFrame => write!(f, "ends inside a zstd frame"),
            Damage::Garbage { at, what } => write!(f, "{what} at byte {at}"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    Pcap { big: bool, nano: bool },
    Pcapng { big: bool },
}

/// See the module docs.
pub(crate) struct CaptureReader {
    file: Stream,
    /// Where the next read starts.
    pos: u64,
    len: u64,
    layout: Layout,
    interfaces: Vec<Interface>,
    /// The first interface of the current pcapng section.
    section_base: usize,
    header_end: u64,
    /// Bytes read at a position the index named: `(offset, bytes)`.
    span: (u64, Vec<u8>),
    /// The decompressed frame read last: `(its file offset, its bytes)`.
    frame: (u64, Vec<u8>),
    /// Bytes read and given back ([`CaptureReader::unread`]): a compressed
    /// stream cannot seek back.
    pushback: Vec<u8>,
}

impl CaptureReader {
    /// Opens a capture file and reads its header (pcapng: the section header
    /// and the interface descriptions after it). An error says why the file
    /// is not a capture.
    pub(crate) fn open(path: &Path) -> Result<Self, String> {
        let file = File::open(path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => GONE.to_owned(),
            _ => e.to_string(),
        })?;
        // Opening a file to read its header, or to search it through its
        // index, must not read megabytes ahead.
        crate::dpdk::advise_reads(&file, crate::dpdk::ReadPattern::Scattered);
        let len = file.metadata().map_err(|e| e.to_string())?.len();
        let mut reader = CaptureReader {
            file: Stream::open(file).map_err(|e| e.to_string())?,
            pos: 0,
            len,
            layout: Layout::Pcap {
                big: false,
                nano: false,
            },
            interfaces: Vec::new(),
            section_base: 0,
            header_end: 0,
            span: (0, Vec::new()),
            frame: (u64::MAX, Vec::new()),
            pushback: Vec::new(),
        };
        reader.read_header().map_err(|d| match d {
            Damage::CutShort { .. } | Damage::CutFrame => "cut short inside its header".to_owned(),
            Damage::Garbage { what, .. } => what,
        })?;
        Ok(reader)
    }

    /// Where the first record (or, pcapng, the first block after the
    /// interface descriptions) starts.
    pub(crate) fn header_end(&self) -> u64 {
        self.header_end
    }

    /// The file's length when it was opened.
    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    /// The file's length now (it may be growing).
    pub(crate) fn current_len(&self) -> u64 {
        self.file.file().metadata().map_or(self.len, |m| m.len())
    }

    pub(crate) fn interfaces(&self) -> &[Interface] {
        &self.interfaces
    }

    /// True for pcap files of microsecond precision.
    pub(crate) fn is_micro_pcap(&self) -> bool {
        matches!(self.layout, Layout::Pcap { nano: false, .. })
    }

    /// The next read starts at `offset` (a record's start).
    /// In a compressed file, `offset` is where a frame starts.
    pub(crate) fn seek(&mut self, offset: u64) -> io::Result<()> {
        // Already there: what was given back is what comes next. (A
        // compressed file's position counts decompressed bytes, `offset`
        // the file's: it always starts again.)
        if offset == self.pos && !self.file.is_zstd() {
            return Ok(());
        }
        let underlying = self.pos + self.pushback.len() as u64;
        self.file.seek(underlying, offset)?;
        self.pushback.clear();
        self.pos = offset;
        Ok(())
    }

    /// Reads `n` bytes and drops them.
    pub(crate) fn discard(&mut self, n: u64) -> Result<(), Damage> {
        let mut scratch = vec![0u8; n.min(1 << 20) as usize];
        let at = self.pos;
        if self.fill(&mut scratch, at)? || n == 0 {
            Ok(())
        } else {
            Err(Damage::CutShort { at })
        }
    }

    /// Gives back `bytes`, just read: the next read returns them again.
    fn unread(&mut self, bytes: &[u8]) {
        let mut back = bytes.to_vec();
        back.append(&mut self.pushback);
        self.pushback = back;
        self.pos -= bytes.len() as u64;
    }

    /// True for a file of zstd frames.
    pub(crate) fn is_compressed(&self) -> bool {
        self.file.is_zstd()
    }

    /// A compressed file's record of `len` bytes, `at` bytes into what the
    /// `frame_len` bytes of frames at file offset `frame_at` decompress to.
    pub(crate) fn packet_in_frame(
        &mut self,
        (frame_at, frame_len): (u64, u64),
        at: u64,
        len: u32,
    ) -> Result<Packet, Damage> {
        if self.frame.0 != frame_at {
            let bytes = read_frames(self.file.file(), frame_at, frame_len).map_err(|e| {
                Damage::Garbage {
                    at: frame_at,
                    what: format!("the zstd frame the index names: {e}"),
                }
            })?;
            self.frame = (frame_at, bytes);
        }
        let from = at as usize;
        let record =
            self.frame
                .1
                .get(from..from + len as usize)
                .ok_or_else(|| Damage::Garbage {
                    at: frame_at,
                    what: "the index names a record past the end of its frame".into(),
                })?;
        self.decode_record(record, frame_at)
    }

    /// From now on the file is read front to back (a scan): read ahead.
    /// Until then, reads pull in only what they ask for.
    pub(crate) fn expect_sequential_reads(&mut self) {
        crate::dpdk::advise_reads(self.file.file(), crate::dpdk::ReadPattern::Sequential);
        // Only a cost if it fails: reads stay small.
        let _ = self.file.widen();
    }

    /// The bytes `offset..end` will be read soon: their reads start now.
    pub(crate) fn will_need(&self, offset: u64, end: u64) {
        crate::dpdk::advise_willneed(self.file.file(), offset, end.saturating_sub(offset));
    }

    /// The record of `len` bytes at `offset`, as the index names it. One
    /// read fetches `offset..span_end` (the records close after it too),
    /// and later calls inside that span read nothing.
    pub(crate) fn packet_at(
        &mut self,
        offset: u64,
        len: u32,
        span_end: u64,
    ) -> Result<Packet, Damage> {
        let end = offset + u64::from(len);
        let (start, bytes) = &self.span;
        if offset < *start || end > start + bytes.len() as u64 {
            let mut fetched = vec![0u8; (span_end.max(end) - offset) as usize];
            let got = read_at_most(self.file.file(), &mut fetched, offset).map_err(|e| {
                Damage::Garbage {
                    at: offset,
                    what: format!("cannot read: {e}"),
                }
            })?;
            fetched.truncate(got);
            self.span = (offset, fetched);
        }
        let (start, bytes) = &self.span;
        let from = (offset - start) as usize;
        let record = bytes
            .get(from..from + len as usize)
            .ok_or(Damage::CutShort { at: offset })?;
        self.decode_record(record, offset)
    }

    /// A whole record (pcap) or packet block (pcapng) in `bytes`.
    fn decode_record(&self, bytes: &[u8], at: u64) -> Result<Packet, Damage> {
        let not_one = || Damage::Garbage {
            at,
            what: "the index names a record that is not one".into(),
        };
        match self.layout {
            Layout::Pcap { big, nano } => {
                let head: [u8; 16] = bytes
                    .get(..16)
                    .and_then(|h| h.try_into().ok())
                    .ok_or_else(not_one)?;
                let caplen = u32_of(&head[8..12], big) as usize;
                if bytes.len() != 16 + caplen {
                    return Err(not_one());
                }
                self.pcap_packet(&head, big, nano, bytes[16..].to_vec(), at)
            }
            Layout::Pcapng { big } => {
                let word = |i: usize| bytes.get(i..i + 4).map(|b| u32_of(b, big));
                let whole = word(0) == Some(BLOCK_EPB)
                    && word(4) == Some(bytes.len() as u32)
                    && bytes.len() >= 12
                    && word(bytes.len() - 4) == Some(bytes.len() as u32);
                if !whole {
                    return Err(not_one());
                }
                self.enhanced(&bytes[8..bytes.len() - 4], big)
                    .ok_or_else(not_one)
            }
        }
    }

    /// The next packet; `Ok(None)` at the end of the file.
    pub(crate) fn next_packet(&mut self) -> Result<Option<Packet>, Damage> {
        match self.layout {
            Layout::Pcap { big, nano } => self.pcap_record(big, nano),
            Layout::Pcapng { big } => loop {
                match self.block(big)? {
                    None => return Ok(None),
                    Some(Some(packet)) => return Ok(Some(packet)),
                    Some(None) => continue,
                }
            },
        }
    }

    /// Reads exactly `buf.len()` bytes; false at a clean end of file (no
    /// byte left), `CutShort` if the file ends part way.
    fn fill(&mut self, buf: &mut [u8], start: u64) -> Result<bool, Damage> {
        let mut got = self.pushback.len().min(buf.len());
        buf[..got].copy_from_slice(&self.pushback[..got]);
        self.pushback.drain(..got);
        while got < buf.len() {
            match self.file.read(&mut buf[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // A zstd file cut inside a frame (or still being written).
                Err(_) if self.file.is_zstd() => return Err(Damage::CutFrame),
                Err(e) => {
                    return Err(Damage::Garbage {
                        at: self.pos,
                        what: format!("cannot read: {e}"),
                    })
                }
            }
        }
        self.pos += got as u64;
        match got {
            0 if self.pos == start => Ok(false),
            n if n == buf.len() => Ok(true),
            _ => Err(Damage::CutShort { at: start }),
        }
    }

    fn read_header(&mut self) -> Result<(), Damage> {
        let mut magic = [0u8; 4];
        if !self.fill(&mut magic, 0)? {
            return Err(Damage::Garbage {
                at: 0,
                what: EMPTY.into(),
            });
        }
        let (le, be) = (u32::from_le_bytes(magic), u32::from_be_bytes(magic));
        if let Some((big, nano)) =
            [(le, false), (be, true)]
                .into_iter()
                .find_map(|(m, big)| match m {
                    PCAP_MICRO => Some((big, false)),
                    PCAP_NANO => Some((big, true)),
                    _ => None,
                })
        {
            let mut rest = [0u8; 20];
            self.fill(&mut rest, 4)?;
            let word = |at: usize| u32_of(&rest[at..at + 4], big);
            // libpcap reads version 2.x only (older is "archaic").
            if u16_of(&rest[..2], big) != 2 {
                return Err(Damage::Garbage {
                    at: 4,
                    what: format!("a pcap file of version {}, not 2", u16_of(&rest[..2], big)),
                });
            }
            self.layout = Layout::Pcap { big, nano };
            self.interfaces.push(Interface {
                link_type: word(16) as u16,
                name: String::new(),
                description: String::new(),
                snaplen: word(12),
                units_per_s: if nano { 1_000_000_000 } else { 1_000_000 },
            });
            self.header_end = 24;
            return Ok(());
        }
        if le != PCAPNG_SHB {
            return Err(Damage::Garbage {
                at: 0,
                what: NOT_A_CAPTURE.into(),
            });
        }
        self.unread(&magic);
        self.layout = Layout::Pcapng { big: false };
        self.read_pcapng_head()
    }

    /// The section header and the interface descriptions that follow it.
    fn read_pcapng_head(&mut self) -> Result<(), Damage> {
        let big = self.section(0)?;
        loop {
            let at = self.pos;
            let mut head = [0u8; 8];
            let whole = self.fill(&mut head, at)?;
            self.unread(&head[..if whole { 8 } else { 0 }]);
            if !whole || u32_of(&head[..4], big) != BLOCK_IDB {
                self.header_end = at;
                return Ok(());
            }
            self.block(big)?;
        }
    }

    /// Reads a section header at the current position; returns its byte order.
    fn section(&mut self, at: u64) -> Result<bool, Damage> {
        let mut head = [0u8; 12];
        self.fill(&mut head, at)?;
        let big = match u32::from_le_bytes(head[8..12].try_into().expect("4 bytes")) {
            PCAPNG_BYTE_ORDER => false,
            m if m.swap_bytes() == PCAPNG_BYTE_ORDER => true,
            _ => {
                return Err(Damage::Garbage {
                    at,
                    what: "a pcapng section without its byte-order magic".into(),
                })
            }
        };
        let len = u32_of(&head[4..8], big);
        if !(28..=MAX_BLOCK).contains(&len) || !len.is_multiple_of(4) {
            return Err(Damage::Garbage {
                at,
                what: format!("a pcapng section header of length {len}"),
            });
        }
        let mut rest = vec![0u8; len as usize - 12];
        self.fill(&mut rest, at)?;
        self.layout = Layout::Pcapng { big };
        self.section_base = self.interfaces.len();
        Ok(big)
    }

    /// One pcapng block: `Some(Some(packet))` for a packet, `Some(None)` for
    /// any other block, `None` at the end of the file.
    fn block(&mut self, big: bool) -> Result<Option<Option<Packet>>, Damage> {
        let at = self.pos;
        let mut head = [0u8; 8];
        if !self.fill(&mut head, at)? {
            return Ok(None);
        }
        let kind = u32_of(&head[..4], big);
        if kind == PCAPNG_SHB {
            self.unread(&head);
            self.section(at)?;
            return Ok(Some(None));
        }
        let len = u32_of(&head[4..8], big);
        if !(12..=MAX_BLOCK).contains(&len) || !len.is_multiple_of(4) {
            return Err(Damage::Garbage {
                at,
                what: format!("a pcapng block of length {len}"),
            });
        }
        let mut body = vec![0u8; len as usize - 8];
        self.fill(&mut body, at)?;
        if u32_of(&body[body.len() - 4..], big) != len {
            return Err(Damage::Garbage {
                at,
                what: "a pcapng block whose two lengths differ".into(),
            });
        }
        let body = &body[..body.len() - 4];
        let garbage = |what: &str| Damage::Garbage {
            at,
            what: what.to_owned(),
        };
        match kind {
            BLOCK_IDB => {
                let iface = interface(body, big)
                    .ok_or_else(|| garbage("a broken interface description"))?;
                self.interfaces.push(iface);
                Ok(Some(None))
            }
            BLOCK_EPB => {
                let packet = self
                    .enhanced(body, big)
                    .ok_or_else(|| garbage("a broken enhanced packet block"))?;
                Ok(Some(Some(packet)))
            }
            _ => Ok(Some(None)),
        }
    }

    fn enhanced(&self, body: &[u8], big: bool) -> Option<Packet> {
        let word = |at: usize| body.get(at..at + 4).map(|b| u32_of(b, big));
        let local = word(0)? as usize;
        let interface = self.section_base + local;
        let iface = self.interfaces.get(interface)?;
        let units = (u64::from(word(4)?) << 32) | u64::from(word(8)?);
        let caplen = word(12)?;
        let orig_len = word(16)?;
        let data_end = 20usize.checked_add(caplen as usize)?;
        let data = body.get(20..data_end)?.to_vec();
        let mut packet = Packet {
            ts_ns: to_ns(units, iface.units_per_s),
            orig_len,
            interface: interface as u32,
            queue: None,
            rss_hash: None,
            data,
        };
        for (code, value) in options(body.get(data_end.div_ceil(4) * 4..)?, big) {
            match code {
                OPT_EPB_QUEUE if value.len() == 4 => packet.queue = Some(u32_of(value, big)),
                OPT_EPB_HASH if value.len() == 5 => {
                    packet.rss_hash = Some(u32::from_be_bytes(value[1..5].try_into().ok()?));
                }
                _ => {}
            }
        }
        Some(packet)
    }

    fn pcap_record(&mut self, big: bool, nano: bool) -> Result<Option<Packet>, Damage> {
        let at = self.pos;
        let mut head = [0u8; 16];
        if !self.fill(&mut head, at)? {
            return Ok(None);
        }
        let caplen = u32_of(&head[8..12], big);
        if caplen > MAX_CAPLEN {
            return Err(Damage::Garbage {
                at,
                what: format!("a record header that is not one (caplen {caplen})"),
            });
        }
        let mut data = vec![0u8; caplen as usize];
        self.fill(&mut data, at)?;
        self.pcap_packet(&head, big, nano, data, at).map(Some)
    }

    /// The packet of pcap record header `head` and its bytes.
    fn pcap_packet(
        &self,
        head: &[u8; 16],
        big: bool,
        nano: bool,
        data: Vec<u8>,
        at: u64,
    ) -> Result<Packet, Damage> {
        let word = |i: usize| u32_of(&head[i * 4..i * 4 + 4], big);
        let (secs, frac, orig_len) = (word(0), word(1), word(3));
        let limit = if nano { 1_000_000_000 } else { 1_000_000 };
        if frac >= limit {
            return Err(Damage::Garbage {
                at,
                what: format!("a record header that is not one (fraction {frac})"),
            });
        }
        let frac_ns = if nano {
            u64::from(frac)
        } else {
            u64::from(frac) * 1000
        };
        Ok(Packet {
            ts_ns: u64::from(secs) * 1_000_000_000 + frac_ns,
            orig_len,
            interface: 0,
            queue: None,
            rss_hash: None,
            data,
        })
    }

    /// Where the next read starts.
    pub(crate) fn position(&self) -> u64 {
        self.pos
    }
}

/// Reads into `buf` at `offset` until it is full or the file ends; returns
/// how many bytes it read.
fn read_at_most(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match file.read_at(&mut buf[got..], offset + got as u64) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

fn u32_of(bytes: &[u8], big: bool) -> u32 {
    let b: [u8; 4] = bytes[..4].try_into().expect("4 bytes");
    if big {
        u32::from_be_bytes(b)
    } else {
        u32::from_le_bytes(b)
    }
}

fn u16_of(bytes: &[u8], big: bool) -> u16 {
    let b: [u8; 2] = bytes[..2].try_into().expect("2 bytes");
    if big {
        u16::from_be_bytes(b)
    } else {
        u16::from_le_bytes(b)
    }
}

/// `units` at `units_per_s` in nanoseconds.
fn to_ns(units: u64, units_per_s: u64) -> u64 {
    match units_per_s {
        1_000_000_000 => units,
        1_000_000 => units.saturating_mul(1000),
        n => (u128::from(units) * 1_000_000_000 / u128::from(n.max(1))).min(u128::from(u64::MAX))
            as u64,
    }
}

/// The options of a block, as (code, value) pairs, up to the end marker.
fn options(mut bytes: &[u8], big: bool) -> Vec<(u16, &[u8])> {
    let mut out = Vec::new();
    while bytes.len() >= 4 {
        let code = u16_of(&bytes[..2], big);
        let len = usize::from(u16_of(&bytes[2..4], big));
        if code == 0 {
            break;
        }
        let Some(value) = bytes.get(4..4 + len) else {
            break;
        };
        out.push((code, value));
        bytes = bytes.get(4 + len.div_ceil(4) * 4..).unwrap_or(&[]);
    }
    out
}

fn interface(body: &[u8], big: bool) -> Option<Interface> {
    let link_type = u16_of(body.get(0..2)?, big);
    let snaplen = u32_of(body.get(4..8)?, big);
    let mut iface = Interface {
        link_type,
        name: String::new(),
        description: String::new(),
        snaplen,
        units_per_s: 1_000_000,
    };
    for (code, value) in options(body.get(8..)?, big) {
        let text = || String::from_utf8_lossy(value).into_owned();
        match code {
            OPT_IF_NAME => iface.name = text(),
            OPT_IF_DESCRIPTION => iface.description = text(),
            OPT_IF_TSRESOL if value.len() == 1 => {
                let r = value[0];
                iface.units_per_s = if r & 0x80 != 0 {
                    1u64.checked_shl(u32::from(r & 0x7f))?
                } else {
                    10u64.checked_pow(u32::from(r))?
                };
            }
            _ => {}
        }
    }
    Some(iface)
}
