//! Arbitrary bytes as the index of a small valid capture (fuzz/seeds/, made
//! by zcap with --index; its own index seeds the corpus, so mutations get
//! past the checksums): the index is checked, used where it checks out, and
//! never makes the reader panic. An expression the index narrows makes it
//! read the bodies and the positions they name.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;

const CAPTURE: &[u8] = include_bytes!("../seeds/indexed.pcap");

fuzz_target!(|data: &[u8]| {
    let path = common::scratch("indexed.pcap");
    std::fs::write(&path, CAPTURE).expect("tmpfs is writable");
    std::fs::write(zcap::archive::index_path(&path), data).expect("tmpfs is writable");
    common::run(path.clone(), Some("host 10.1.1.1 and tcp port 443"));
    common::run(path, None);
});
