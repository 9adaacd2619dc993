//! Synthetic Ethernet frames for fixtures: IPv4/UDP, VLAN-tagged, IPv6, jumbo.

use crate::Record;

/// An IPv4/UDP frame of exactly `len` bytes (at least 42), payload filled
/// with a pattern derived from `seed` so every frame differs.
pub fn ipv4_udp(len: usize, seed: u32, src_port: u16) -> Vec<u8> {
    assert!(len >= 42);
    let mut f = Vec::with_capacity(len);
    f.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x01]); // dst MAC
    f.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x02]); // src MAC
    f.extend_from_slice(&[0x08, 0x00]);
    let ip_len = (len - 14) as u16;
    f.extend_from_slice(&[
        0x45,
        0,
        (ip_len >> 8) as u8,
        ip_len as u8,
        0,
        0,
        0x40,
        0,
        64,
        17,
        0,
        0,
    ]);
    f.extend_from_slice(&[10, 0, 0, 1, 10, 0, (seed >> 8) as u8, seed as u8]);
    let udp_len = ip_len - 20;
    f.extend_from_slice(&src_port.to_be_bytes());
    f.extend_from_slice(&9u16.to_be_bytes());
    f.extend_from_slice(&udp_len.to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    fill(&mut f, len, seed);
    f
}

/// An 802.1Q-tagged IPv4/UDP frame of `len` bytes.
pub fn vlan(len: usize, seed: u32, vid: u16) -> Vec<u8> {
    let inner = ipv4_udp(len - 4, seed, 1000);
    let mut f = inner[..12].to_vec();
    f.extend_from_slice(&[0x81, 0x00, (vid >> 8) as u8, vid as u8]);
    f.extend_from_slice(&inner[12..]);
    f
}

/// An IPv6/UDP frame of `len` bytes (at least 62).
pub fn ipv6_udp(len: usize, seed: u32) -> Vec<u8> {
    assert!(len >= 62);
    let mut f = Vec::with_capacity(len);
    f.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x01, 0x02, 0, 0, 0, 0, 0x02, 0x86, 0xdd]);
    let payload = (len - 54) as u16;
    f.extend_from_slice(&[0x60, 0, 0, 0, (payload >> 8) as u8, payload as u8, 17, 64]);
    f.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    f.extend_from_slice(&[
        0x20,
        0x01,
        0x0d,
        0xb8,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        (seed >> 8) as u8,
        seed as u8,
    ]);
    f.extend_from_slice(&[0x30, 0x39, 0, 9, (payload >> 8) as u8, payload as u8, 0, 0]);
    fill(&mut f, len, seed);
    f
}

fn fill(f: &mut Vec<u8>, len: usize, seed: u32) {
    let mut x = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    while f.len() < len {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        f.push(x as u8);
    }
}

/// A record of `data` at `ts_ns`, captured whole.
pub fn record(ts_ns: u64, data: Vec<u8>) -> Record {
    Record {
        ts_ns,
        orig_len: data.len() as u32,
        data,
    }
}

/// The standard mixed fixture: minimum frames, every size 60..=1514, VLAN,
/// IPv6, jumbo 9000-byte frames, and bursts sharing one microsecond.
/// Timestamps are whole microseconds (net_pcap replays in µs) and increasing.
pub fn mixed(start_ns: u64) -> Vec<Record> {
    let mut frames = Vec::new();
    for i in 0..50 {
        frames.push(ipv4_udp(60, i, 1000));
    }
    for len in 60..=1514 {
        frames.push(ipv4_udp(len, len as u32, 2000));
    }
    for i in 0..40 {
        frames.push(vlan(64 + i * 10, i as u32, 100 + i as u16));
        frames.push(ipv6_udp(80 + i * 30, i as u32));
    }
    for i in 0..10 {
        frames.push(ipv4_udp(9000, i, 3000));
    }
    let mut records = Vec::new();
    let mut ts = start_ns;
    for (i, data) in frames.into_iter().enumerate() {
        // Groups of five share one microsecond.
        if i % 5 == 0 {
            ts += 1_000 * (1 + (i as u64 % 7));
        }
        records.push(record(ts, data));
    }
    records
}

/// An IPv4 frame with a TCP or UDP header, chosen addresses, ports, TTL and
/// TCP flags, padded to `len` bytes.
pub struct Ipv4Spec {
    /// Source address.
    pub src: [u8; 4],
    /// Destination address.
    pub dst: [u8; 4],
    /// 6 (TCP) or 17 (UDP).
    pub proto: u8,
    /// Source port.
    pub sport: u16,
    /// Destination port.
    pub dport: u16,
    /// Time to live.
    pub ttl: u8,
    /// TCP flags (ignored for UDP).
    pub tcp_flags: u8,
}

/// Builds the frame `spec` describes, `len` bytes long (at least 54).
pub fn ipv4(spec: &Ipv4Spec, len: usize, seed: u32) -> Vec<u8> {
    let mut f = vec![0x02, 0, 0, 0, 0, 0x01, 0x02, 0, 0, 0, 0, 0x02, 0x08, 0x00];
    let ip_len = (len - 14) as u16;
    f.extend_from_slice(&[
        0x45,
        0,
        (ip_len >> 8) as u8,
        ip_len as u8,
        0,
        0,
        0x40,
        0,
        spec.ttl,
        spec.proto,
        0,
        0,
    ]);
    f.extend_from_slice(&spec.src);
    f.extend_from_slice(&spec.dst);
    f.extend_from_slice(&spec.sport.to_be_bytes());
    f.extend_from_slice(&spec.dport.to_be_bytes());
    if spec.proto == 6 {
        f.extend_from_slice(&[
            0,
            0,
            0,
            1,
            0,
            0,
            0,
            0,
            0x50,
            spec.tcp_flags,
            0xff,
            0xff,
            0,
            0,
            0,
            0,
        ]);
    } else {
        let udp_len = ip_len - 20;
        f.extend_from_slice(&udp_len.to_be_bytes());
        f.extend_from_slice(&[0, 0]);
    }
    fill(&mut f, len, seed);
    f
}

/// A varied fixture for filters: TCP with every flag combination, UDP,
/// several hosts, nets, ports and TTLs, VLAN tags, IPv6, sizes 60 to 1514.
pub fn varied(count: u32, start_ns: u64) -> Vec<Record> {
    let mut records = Vec::new();
    for i in 0..count {
        let x = i.wrapping_mul(2_654_435_761);
        let len = 60 + (x as usize % 1455);
        let data = match i % 7 {
            5 => vlan(len.max(68), i, 100 + (i % 10) as u16),
            6 => ipv6_udp(len.max(62), i),
            _ => ipv4(
                &Ipv4Spec {
                    src: [10, 0, (x >> 8) as u8 % 4, 1 + (x % 5) as u8],
                    dst: [192, 168, (x >> 16) as u8 % 3, 1 + (x >> 4) as u8 % 7],
                    proto: if i % 3 == 0 { 17 } else { 6 },
                    sport: 1000 + (x % 3000) as u16,
                    dport: [22, 53, 80, 443, 1500, 9000][(x >> 3) as usize % 6],
                    ttl: [1, 32, 63, 64, 128, 255][(x >> 5) as usize % 6],
                    tcp_flags: (x >> 11) as u8 & 0x3f,
                },
                len.max(60),
                i,
            ),
        };
        records.push(record(start_ns + u64::from(i) * 1_000, data));
    }
    records
}
