//! The RSS key. DPDK drivers default to Microsoft's Toeplitz key, which
//! sends the two directions of one connection to different queues. A key
//! of one 16-bit pattern repeated (Woo and Park, "Scalable TCP Session
//! Monitoring with Symmetric Receive-side Scaling") hashes a tuple and its
//! reverse alike: swapping the addresses or the ports moves each bit by a
//! multiple of 16 positions, where the key is the same.

/// `--rss-key`: which key the port hashes with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RssKey {
    /// Both directions of a flow on one queue (the default).
    #[default]
    Symmetric,
    /// Whatever the driver uses by default.
    Driver,
}

impl RssKey {
    /// Parses `symmetric` or `driver`.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "symmetric" => Some(RssKey::Symmetric),
            "driver" => Some(RssKey::Driver),
            _ => None,
        }
    }

    /// The name in `--rss-key` and the JSON.
    pub fn name(self) -> &'static str {
        match self {
            RssKey::Symmetric => "symmetric",
            RssKey::Driver => "driver",
        }
    }
}

/// The repeated pattern of the symmetric key.
const SYMMETRIC_PATTERN: [u8; 2] = [0x6d, 0x5a];

/// Key bytes when the port does not say its key size (the common 40).
const DEFAULT_KEY_BYTES: usize = 40;

/// The symmetric key, `key_bytes` long (the port's `hash_key_size`; 0: 40).
pub fn symmetric_key(key_bytes: usize) -> Vec<u8> {
    let len = if key_bytes == 0 {
        DEFAULT_KEY_BYTES
    } else {
        key_bytes
    };
    SYMMETRIC_PATTERN
        .iter()
        .copied()
        .cycle()
        .take(len)
        .collect()
}

/// The Toeplitz hash of `input` (the tuple's bytes in network order, as
/// the NIC reads them) under `key`, as `rte_softrss_be` computes it: for
/// every set input bit, XOR in the 32 key bits that start at its position.
pub fn toeplitz(key: &[u8], input: &[u8]) -> u32 {
    let bit = |i: usize| key.get(i / 8).is_some_and(|b| b & (0x80 >> (i % 8)) != 0);
    let window_at = |start: usize| (0..32).fold(0u32, |w, j| (w << 1) | u32::from(bit(start + j)));
    let mut hash = 0u32;
    for (byte_index, byte) in input.iter().enumerate() {
        for b in 0..8 {
            if byte & (0x80 >> b) != 0 {
                hash ^= window_at(byte_index * 8 + b);
            }
        }
    }
    hash
}

/// The bytes RSS hashes for an L4 flow: source and destination address,
/// then source and destination port.
pub fn l4_tuple(src: &[u8], dst: &[u8], sport: u16, dport: u16) -> Vec<u8> {
    let mut tuple = Vec::with_capacity(2 * src.len() + 4);
    tuple.extend_from_slice(src);
    tuple.extend_from_slice(dst);
    tuple.extend_from_slice(&sport.to_be_bytes());
    tuple.extend_from_slice(&dport.to_be_bytes());
    tuple
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Microsoft's key, the drivers' usual default (and rte_thash's test key).
    const MICROSOFT_KEY: [u8; 40] = [
        0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3, 0x8f,
        0xb0, 0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3, 0x80, 0x30,
        0xf2, 0x0c, 0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa,
    ];

    #[test]
    fn the_toeplitz_hash_matches_microsofts_published_vectors() {
        // From Microsoft's "Verifying the RSS hash calculation" (IPv4 with
        // TCP): 66.9.149.187:2794 -> 161.142.100.80:1766 is 0x51ccc178.
        let tuple = l4_tuple(&[66, 9, 149, 187], &[161, 142, 100, 80], 2794, 1766);
        assert_eq!(toeplitz(&MICROSOFT_KEY, &tuple), 0x51cc_c178);
        let addresses = [66, 9, 149, 187, 161, 142, 100, 80];
        assert_eq!(toeplitz(&MICROSOFT_KEY, &addresses), 0x323e_8fc2);
    }

    fn both_ways(key: &[u8], src: &[u8], dst: &[u8], sport: u16, dport: u16) -> (u32, u32) {
        let there = toeplitz(key, &l4_tuple(src, dst, sport, dport));
        let back = toeplitz(key, &l4_tuple(dst, src, dport, sport));
        (there, back)
    }

    #[test]
    fn the_symmetric_key_hashes_both_directions_alike() {
        let key = symmetric_key(52);
        let v4 = [
            ([10, 0, 0, 1], [192, 168, 7, 9]),
            ([1, 2, 3, 4], [4, 3, 2, 1]),
        ];
        for (a, b) in v4 {
            for (sport, dport) in [(443, 51_234), (53, 53), (1, 65_535)] {
                let (there, back) = both_ways(&key, &a, &b, sport, dport);
                assert_eq!(there, back, "{a:?}:{sport} <-> {b:?}:{dport}");
                // The addresses alone (IPv4 without L4) too.
                let ab = [a, b].concat();
                let ba = [b, a].concat();
                assert_eq!(toeplitz(&key, &ab), toeplitz(&key, &ba));
            }
        }
        let a6: Vec<u8> = (0..16).map(|i| 0x20 + i).collect();
        let b6: Vec<u8> = (0..16).map(|i| 0xfe - 3 * i).collect();
        let (there, back) = both_ways(&key, &a6, &b6, 8080, 40_000);
        assert_eq!(there, back, "IPv6");
        assert_ne!(
            there, 0,
            "a hash that is 0 for everything would also be symmetric"
        );
    }

    #[test]
    fn the_drivers_default_key_splits_the_directions() {
        let (there, back) = both_ways(&MICROSOFT_KEY, &[10, 0, 0, 1], &[10, 0, 0, 2], 40_000, 80);
        assert_ne!(there, back, "so a symmetric key is needed");
    }

    #[test]
    fn the_key_takes_the_ports_size() {
        assert_eq!(symmetric_key(0).len(), 40);
        assert_eq!(symmetric_key(52).len(), 52);
        assert_eq!(&symmetric_key(4), &[0x6d, 0x5a, 0x6d, 0x5a]);
        assert_eq!(RssKey::parse("driver"), Some(RssKey::Driver));
        assert_eq!(RssKey::parse("sym"), None);
    }
}
