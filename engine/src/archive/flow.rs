//! The flow key of one packet: what the index keeps about it so that a
//! pcap-filter expression's host, net, port, proto and vlan terms can be
//! answered without reading the packet. Parsing reads Ethernet frames, looks
//! inside up to two VLAN tags (one 802.1Q tag or a QinQ pair), and records
//! every field it could not read as unknown, never as a guess.

use super::wire::Cursor;

pub(crate) const ETHERTYPE_IPV4: u16 = 0x0800;
pub(crate) const ETHERTYPE_IPV6: u16 = 0x86dd;
/// Tags looked inside; a frame with more is [`Tags::Deep`].
const MAX_TAGS: usize = 2;

/// The VLAN tags in front of the network header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Tags {
    /// `count` tags (0, 1 or 2), outermost first.
    Known { count: u8, ids: [u16; MAX_TAGS] },
    /// More tags than are looked inside, or a frame cut inside its tags.
    Deep,
}

/// The transport part of an IP flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Ports {
    /// TCP, UDP or SCTP ports of an unfragmented packet or a first fragment.
    Known { src: u16, dst: u16 },
    /// No ports: another protocol, or an IPv4 fragment after the first.
    Absent,
    /// The packet was cut before its ports.
    Unknown,
}

/// The network part of a flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Net {
    /// IPv4: addresses, protocol, ports.
    V4 {
        src: [u8; 4],
        dst: [u8; 4],
        proto: u8,
        ports: Ports,
    },
    /// IPv6: addresses, the first next-header value, ports.
    V6 {
        src: [u8; 16],
        dst: [u8; 16],
        next: u8,
        ports: Ports,
    },
    /// Another ethertype, whole.
    Other { ethertype: u16 },
    /// The frame was cut before its network header could be read, or the
    /// link type is not Ethernet.
    Unknown,
}

/// See the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct FlowKey {
    pub(crate) tags: Tags,
    pub(crate) net: Net,
}

impl FlowKey {
    /// A key that answers every question "maybe".
    pub(crate) const UNKNOWN: FlowKey = FlowKey {
        tags: Tags::Deep,
        net: Net::Unknown,
    };

    /// The key in six words, one to one: what the writer hashes and
    /// compares once per record (a derived hash of the enums would hash
    /// field by field).
    #[inline(always)]
    pub(crate) fn packed(&self) -> [u64; 6] {
        let mut w = [0u64; 6];
        w[0] = match self.tags {
            Tags::Known { count, ids } => {
                u64::from(count) | u64::from(ids[0]) << 2 | u64::from(ids[1]) << 14
            }
            Tags::Deep => 3,
        };
        let (kind, proto, ports) = match self.net {
            Net::V4 {
                src,
                dst,
                proto,
                ports,
            } => {
                w[2] =
                    u64::from(u32::from_be_bytes(src)) << 32 | u64::from(u32::from_be_bytes(dst));
                (1, proto, ports)
            }
            Net::V6 {
                src,
                dst,
                next,
                ports,
            } => {
                let (src, dst) = (u128::from_be_bytes(src), u128::from_be_bytes(dst));
                w[2] = (src >> 64) as u64;
                w[3] = src as u64;
                w[4] = (dst >> 64) as u64;
                w[5] = dst as u64;
                (2, next, ports)
            }
            Net::Other { ethertype } => {
                w[1] = u64::from(ethertype) << 32;
                (3, 0, Ports::Absent)
            }
            Net::Unknown => (4, 0, Ports::Absent),
        };
        let (port_kind, port_bits) = match ports {
            Ports::Known { src, dst } => (1, u64::from(src) << 16 | u64::from(dst)),
            Ports::Absent => (2, 0),
            Ports::Unknown => (3, 0),
        };
        w[0] |= kind << 32 | u64::from(proto) << 40 | port_kind << 48;
        w[1] |= port_bits;
        w
    }

    /// The key of [`FlowKey::packed`]'s words: the index builder packs
    /// every record's key, and encodes only a flow new to its segment.
    pub(crate) fn unpacked(w: [u64; 6]) -> FlowKey {
        let tags = match w[0] & 3 {
            3 => Tags::Deep,
            count => Tags::Known {
                count: count as u8,
                ids: [(w[0] >> 2) as u16 & 0xfff, (w[0] >> 14) as u16 & 0xfff],
            },
        };
        let proto = (w[0] >> 40) as u8;
        let ports = match (w[0] >> 48) & 0xff {
            1 => Ports::Known {
                src: (w[1] >> 16) as u16,
                dst: w[1] as u16,
            },
            2 => Ports::Absent,
            _ => Ports::Unknown,
        };
        let net = match (w[0] >> 32) & 0xff {
            1 => Net::V4 {
                src: ((w[2] >> 32) as u32).to_be_bytes(),
                dst: (w[2] as u32).to_be_bytes(),
                proto,
                ports,
            },
            2 => Net::V6 {
                src: (u128::from(w[2]) << 64 | u128::from(w[3])).to_be_bytes(),
                dst: (u128::from(w[4]) << 64 | u128::from(w[5])).to_be_bytes(),
                next: proto,
                ports,
            },
            3 => Net::Other {
                ethertype: (w[1] >> 32) as u16,
            },
            _ => Net::Unknown,
        };
        FlowKey { tags, net }
    }

    /// `FlowKey::of_ethernet(frame).packed()`, with a shortcut for the
    /// common frame (untagged IPv4, not a later fragment, with its ports).
    #[inline(always)]
    pub(crate) fn packed_of_ethernet(frame: &[u8]) -> [u64; 6] {
        if let Some(words) = packed_ipv4(frame) {
            return words;
        }
        FlowKey::of_ethernet(frame).packed()
    }

    /// The key of an Ethernet frame's captured bytes.
    #[inline]
    pub(crate) fn of_ethernet(frame: &[u8]) -> FlowKey {
        let mut at = 12;
        let mut ids = [0u16; MAX_TAGS];
        let mut count = 0usize;
        loop {
            let Some(ethertype) = be16(frame, at) else {
                return FlowKey::UNKNOWN;
            };
            if !is_tpid(ethertype) {
                let tags = Tags::Known {
                    count: count as u8,
                    ids,
                };
                let net = network(ethertype, frame.get(at + 2..).unwrap_or(&[]));
                return FlowKey { tags, net };
            }
            if count == MAX_TAGS {
                return FlowKey::UNKNOWN;
            }
            match be16(frame, at + 2) {
                Some(tci) => ids[count] = tci & 0x0fff,
                None => return FlowKey::UNKNOWN,
            }
            count += 1;
            at += 4;
        }
    }
}

/// The packed key of an untagged IPv4 frame with ports, read straight from
/// the bytes; `None` for any other frame.
#[inline(always)]
fn packed_ipv4(frame: &[u8]) -> Option<[u64; 6]> {
    if be16(frame, 12)? != ETHERTYPE_IPV4 {
        return None;
    }
    let ip = frame.get(14..34)?;
    let header_len = usize::from(ip[0] & 0x0f) * 4;
    let (proto, fragment_offset) = (ip[9], u16::from_be_bytes([ip[6], ip[7]]) & 0x1fff);
    if ip[0] >> 4 != 4 || header_len < 20 || fragment_offset != 0 || !has_ports(proto) {
        return None;
    }
    let ports: [u8; 4] = frame
        .get(14 + header_len..18 + header_len)?
        .try_into()
        .ok()?;
    let addresses: [u8; 8] = ip[12..20].try_into().ok()?;
    Some([
        1 << 32 | u64::from(proto) << 40 | 1 << 48,
        u64::from(u32::from_be_bytes(ports)),
        u64::from_be_bytes(addresses),
        0,
        0,
        0,
    ])
}

#[inline(always)]
fn is_tpid(ethertype: u16) -> bool {
    matches!(ethertype, 0x8100 | 0x88a8 | 0x9100)
}

#[inline(always)]
fn be16(bytes: &[u8], at: usize) -> Option<u16> {
    let b = bytes.get(at..at + 2)?;
    Some(u16::from_be_bytes([b[0], b[1]]))
}

/// The network part of a packet whose header starts `l3`.
#[inline]
fn network(ethertype: u16, l3: &[u8]) -> Net {
    match ethertype {
        ETHERTYPE_IPV4 => ipv4(l3),
        ETHERTYPE_IPV6 => ipv6(l3),
        ethertype => Net::Other { ethertype },
    }
}

fn ipv4(ip: &[u8]) -> Net {
    if ip.len() < 20 {
        return Net::Unknown;
    }
    let header_len = usize::from(ip[0] & 0x0f) * 4;
    let proto = ip[9];
    let fragment_offset = u16::from_be_bytes([ip[6], ip[7]]) & 0x1fff;
    let ports = if fragment_offset != 0 {
        Ports::Absent
    } else {
        ports(proto, ip.get(header_len..).unwrap_or(&[]))
    };
    Net::V4 {
        src: ip[12..16].try_into().expect("4 bytes"),
        dst: ip[16..20].try_into().expect("4 bytes"),
        proto,
        ports,
    }
}

fn ipv6(ip: &[u8]) -> Net {
    if ip.len() < 40 {
        return Net::Unknown;
    }
    let next = ip[6];
    Net::V6 {
        src: ip[8..24].try_into().expect("16 bytes"),
        dst: ip[24..40].try_into().expect("16 bytes"),
        next,
        ports: ports(next, &ip[40..]),
    }
}

/// Whether `proto` carries ports (TCP, UDP, SCTP), as libpcap's `port` asks.
pub(crate) fn has_ports(proto: u8) -> bool {
    matches!(proto, 6 | 17 | 132)
}

fn ports(proto: u8, l4: &[u8]) -> Ports {
    if !has_ports(proto) {
        return Ports::Absent;
    }
    match (be16(l4, 0), be16(l4, 2)) {
        (Some(src), Some(dst)) => Ports::Known { src, dst },
        _ => Ports::Unknown,
    }
}

/// Appends `key` to `out` in the index's encoding (docs/INDEX.md).
pub(crate) fn encode(key: &FlowKey, out: &mut Vec<u8>) {
    let (tag_bits, ids): (u8, &[u16]) = match &key.tags {
        Tags::Known { count, ids } => (*count, &ids[..usize::from(*count)]),
        Tags::Deep => (3, &[]),
    };
    let (net_kind, port_kind) = match key.net {
        Net::V4 { ports, .. } => (1, port_kind(ports)),
        Net::V6 { ports, .. } => (2, port_kind(ports)),
        Net::Other { .. } => (3, 0),
        Net::Unknown => (0, 0),
    };
    out.push(tag_bits | net_kind << 2 | port_kind << 4);
    ids.iter()
        .for_each(|id| out.extend_from_slice(&id.to_le_bytes()));
    match &key.net {
        Net::V4 {
            src,
            dst,
            proto,
            ports,
        } => encode_ip(*proto, src, dst, *ports, out),
        Net::V6 {
            src,
            dst,
            next,
            ports,
        } => encode_ip(*next, src, dst, *ports, out),
        Net::Other { ethertype } => out.extend_from_slice(&ethertype.to_le_bytes()),
        Net::Unknown => {}
    }
}

/// An IP flow's fields: protocol (or next header), addresses, ports.
fn encode_ip(proto: u8, src: &[u8], dst: &[u8], ports: Ports, out: &mut Vec<u8>) {
    out.push(proto);
    out.extend_from_slice(src);
    out.extend_from_slice(dst);
    encode_ports(ports, out);
}

fn port_kind(ports: Ports) -> u8 {
    match ports {
        Ports::Absent => 0,
        Ports::Known { .. } => 1,
        Ports::Unknown => 2,
    }
}

fn encode_ports(ports: Ports, out: &mut Vec<u8>) {
    if let Ports::Known { src, dst } = ports {
        out.extend_from_slice(&src.to_le_bytes());
        out.extend_from_slice(&dst.to_le_bytes());
    }
}

/// The length of the encoded key at the front of `bytes`, read from its
/// kind byte alone: what [`decode`] would consume, if it can decode it.
pub(crate) fn encoded_len(bytes: &[u8]) -> Option<usize> {
    let kind = *bytes.first()?;
    let tags = match kind & 3 {
        3 => 0,
        count => 2 * usize::from(count),
    };
    // The port bits count for IP only (as `decode` reads them).
    let ports = || match kind >> 4 {
        0 | 2 => Some(0),
        1 => Some(4),
        _ => None,
    };
    let net = match (kind >> 2) & 3 {
        0 => 0,
        1 => 1 + 4 + 4 + ports()?,
        2 => 1 + 16 + 16 + ports()?,
        _ => 2,
    };
    let len = 1 + tags + net;
    (len <= bytes.len()).then_some(len)
}

/// Reads one key encoded by [`encode`]; `None` if the bytes are not one.
pub(crate) fn decode(input: &mut Cursor<'_>) -> Option<FlowKey> {
    let kind = input.u8()?;
    let tags = match kind & 3 {
        3 => Tags::Deep,
        count => {
            let mut ids = [0u16; MAX_TAGS];
            for id in ids.iter_mut().take(usize::from(count)) {
                *id = input.u16()?;
            }
            Tags::Known { count, ids }
        }
    };
    let net = match (kind >> 2) & 3 {
        0 => Net::Unknown,
        1 => Net::V4 {
            proto: input.u8()?,
            src: input.array()?,
            dst: input.array()?,
            ports: decode_ports(kind >> 4, input)?,
        },
        2 => Net::V6 {
            next: input.u8()?,
            src: input.array()?,
            dst: input.array()?,
            ports: decode_ports(kind >> 4, input)?,
        },
        _ => Net::Other {
            ethertype: input.u16()?,
        },
    };
    Some(FlowKey { tags, net })
}

fn decode_ports(kind: u8, input: &mut Cursor<'_>) -> Option<Ports> {
    match kind {
        0 => Some(Ports::Absent),
        1 => Some(Ports::Known {
            src: input.u16()?,
            dst: input.u16()?,
        }),
        2 => Some(Ports::Unknown),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
