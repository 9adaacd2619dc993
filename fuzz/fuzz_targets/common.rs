//! What both targets share: files on tmpfs named after the process, and an
//! extraction of them that must end in a summary or an error, never a panic.

use std::path::PathBuf;
use zcap::archive::{extract, ExtractSpec};
use zcap::format::FileFormat;

/// `/dev/shm/zcap-fuzz-PID-NAME`.
pub fn scratch(name: &str) -> PathBuf {
    PathBuf::from(format!("/dev/shm/zcap-fuzz-{}-{name}", std::process::id()))
}

/// Extracts `capture` (and its index, if written) with `expression`.
pub fn run(capture: PathBuf, expression: Option<&str>) {
    let spec = ExtractSpec {
        inputs: vec![capture],
        from_ns: None,
        to_ns: None,
        expression: expression.map(str::to_owned),
        output: Some(scratch("out.pcap")),
        format: FileFormat::Pcapng,
        precision: None,
    };
    let _ = extract(&spec);
}
