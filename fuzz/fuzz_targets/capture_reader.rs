//! Arbitrary bytes as a capture file (pcap, pcapng or zstd), with no index:
//! the scan reads what it can and reports the rest as damage.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let capture = common::scratch("in.pcap");
    std::fs::write(&capture, data).expect("tmpfs is writable");
    let _ = std::fs::remove_file(zcap::archive::index_path(&capture));
    common::run(capture, None);
});
