//! The link type of a capture file, read from its first bytes (pcap's file
//! header, or pcapng's first interface description block). A replayed file's
//! link type is the one zcap must write and compile filters for.

/// Bytes enough to reach a pcapng file's first interface description.
pub(crate) const HEAD_BYTES: usize = 64 * 1024;

const PCAP_MAGICS: [u32; 2] = [0xa1b2_c3d4, 0xa1b2_3c4d];
const PCAPNG_SHB: u32 = 0x0a0d_0d0a;
const PCAPNG_BYTE_ORDER: u32 = 0x1a2b_3c4d;
const PCAPNG_IDB: u32 = 1;

/// The `LINKTYPE_*` of the pcap or pcapng file whose first bytes are `head`.
pub(crate) fn capture_file_link_type(head: &[u8]) -> Result<u16, String> {
    let word = |at: usize, big: bool| -> Option<u32> {
        let bytes: [u8; 4] = head.get(at..at + 4)?.try_into().ok()?;
        Some(if big {
            u32::from_be_bytes(bytes)
        } else {
            u32::from_le_bytes(bytes)
        })
    };
    let first = word(0, false).ok_or("too short for a capture file")?;
    if let Some(big) = [false, true]
        .into_iter()
        .find(|&big| word(0, big).is_some_and(|m| PCAP_MAGICS.contains(&m)))
    {
        let link = word(20, big).ok_or("a pcap header cut short")?;
        // The upper bits carry the FCS length; the link type is the low 16.
        return Ok(link as u16);
    }
    if first != PCAPNG_SHB {
        return Err("neither pcap nor pcapng".into());
    }
    let big = match word(8, false) {
        Some(PCAPNG_BYTE_ORDER) => false,
        _ if word(8, true) == Some(PCAPNG_BYTE_ORDER) => true,
        _ => return Err("a pcapng section header without its byte-order magic".into()),
    };
    let mut at = 0usize;
    while let (Some(kind), Some(len)) = (word(at, big), word(at + 4, big)) {
        if kind == PCAPNG_IDB {
            let half: [u8; 2] = head
                .get(at + 8..at + 10)
                .and_then(|b| b.try_into().ok())
                .ok_or("an interface description cut short")?;
            return Ok(if big {
                u16::from_be_bytes(half)
            } else {
                u16::from_le_bytes(half)
            });
        }
        if len < 12 || len % 4 != 0 {
            return Err(format!("a pcapng block of length {len}"));
        }
        at += len as usize;
    }
    Err("no interface description in the file's first blocks".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes 32- and 16-bit words in one byte order.
    struct Order(bool);

    impl Order {
        fn w(&self, v: u32) -> [u8; 4] {
            if self.0 {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        }
        fn h(&self, v: u16) -> [u8; 2] {
            if self.0 {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        }
    }

    fn pcap(magic: u32, link: u32, big: bool) -> Vec<u8> {
        let o = Order(big);
        let (w, h) = (|v| o.w(v), |v| o.h(v));
        [
            &w(magic)[..],
            &h(2),
            &h(4),
            &w(0),
            &w(0),
            &w(65535),
            &w(link),
        ]
        .concat()
    }

    fn pcapng(link: u16, big: bool) -> Vec<u8> {
        let o = Order(big);
        let (w, h) = (|v| o.w(v), |v| o.h(v));
        let shb = [
            &w(PCAPNG_SHB)[..],
            &w(28),
            &w(PCAPNG_BYTE_ORDER),
            &h(1),
            &h(0),
        ]
        .concat();
        let shb = [&shb[..], &[0xff; 8], &w(28)].concat();
        let idb = [&w(PCAPNG_IDB)[..], &w(20), &h(link), &h(0), &w(0), &w(20)].concat();
        [shb, idb].concat()
    }

    #[test]
    fn pcap_link_types_in_either_byte_order_and_resolution() {
        assert_eq!(capture_file_link_type(&pcap(0xa1b2c3d4, 1, false)), Ok(1));
        assert_eq!(
            capture_file_link_type(&pcap(0xa1b23c4d, 101, true)),
            Ok(101)
        );
        // FCS bits above the link type are not part of it.
        assert_eq!(
            capture_file_link_type(&pcap(0xa1b2c3d4, 0x1400_0071, false)),
            Ok(113)
        );
    }

    #[test]
    fn pcapng_link_type_is_the_first_interfaces() {
        assert_eq!(capture_file_link_type(&pcapng(113, false)), Ok(113));
        assert_eq!(capture_file_link_type(&pcapng(101, true)), Ok(101));
    }

    #[test]
    fn other_bytes_are_refused() {
        assert!(capture_file_link_type(b"").is_err());
        assert!(capture_file_link_type(b"GET / HTTP/1.1\r\n\r\n").is_err());
        assert!(capture_file_link_type(&pcap(0xa1b2c3d4, 1, false)[..20]).is_err());
        let mut cut = pcapng(1, false);
        cut.truncate(30);
        assert!(capture_file_link_type(&cut).is_err());
    }
}
