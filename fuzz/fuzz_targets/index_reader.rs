//! Arbitrary bytes as the index of a small valid capture: the index is
//! checked, used where it checks out, and never makes the answer wrong or
//! the reader panic. An expression the index narrows makes it read the
//! bodies and the positions they name.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

/// A pcap file of 64 UDP frames between a few hosts.
fn capture() -> &'static Vec<u8> {
    static FILE: OnceLock<Vec<u8>> = OnceLock::new();
    FILE.get_or_init(|| {
        let mut f = Vec::new();
        for word in [0xa1b2_c3d4u32, 0x0004_0002, 0, 0, 65535, 1] {
            f.extend_from_slice(&word.to_le_bytes());
        }
        for i in 0..64u32 {
            let mut frame = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 8, 0, 0x45, 0, 0, 46];
            frame.extend_from_slice(&[0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, (i % 4) as u8]);
            frame.extend_from_slice(&[10, 0, 1, (i % 3) as u8, 0x13, 0x88, 0, 53, 0, 26, 0, 0]);
            frame.resize(60, i as u8);
            for word in [1_700_000_000 + i, i, 60, 60] {
                f.extend_from_slice(&word.to_le_bytes());
            }
            f.extend_from_slice(&frame);
        }
        f
    })
}

fuzz_target!(|data: &[u8]| {
    let path = common::scratch("indexed.pcap");
    std::fs::write(&path, capture()).expect("tmpfs is writable");
    std::fs::write(zcap::archive::index_path(&path), data).expect("tmpfs is writable");
    common::run(path.clone(), Some("host 10.0.0.1 and udp port 53"));
    common::run(path, None);
});
