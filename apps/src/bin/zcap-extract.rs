//! `zcap-extract`: the packets of a capture's files in a time window that
//! match a pcap-filter expression, as one file in time order.
#![forbid(unsafe_code)]

#[path = "../common.rs"]
#[allow(dead_code)]
mod common;
#[path = "../extract_cli.rs"]
#[allow(dead_code)]
mod extract_cli;

use common::{fail, parse_args};
use extract_cli::{or_fail, report, spec_from, Cli, PROGRAM};
use std::os::unix::process::CommandExt;
use zcap::archive::extract;
use zcap::ZcapError;

/// The program that reads `--stream`, installed beside this one.
const STREAM_READER: &str = "zcap-extract-stream";

fn main() {
    let cli: Cli = parse_args(PROGRAM);
    if cli.stream.is_some() {
        hand_over_stream();
    }
    let spec = or_fail(spec_from(&cli));
    let summary = or_fail(extract(&spec));
    let verbose = cli.verbose.then(|| {
        format!(
            "{} files ({} indexed), {} records read, {} written",
            summary.files, summary.indexed, summary.records_read, summary.written
        )
    });
    report(&summary, verbose);
}

/// Runs `zcap-extract-stream` in this process's place with the same
/// arguments. The NATS client is two thirds of a program that has it; a
/// search of files, which starts here, would read it from disk at every
/// cold start.
fn hand_over_stream() -> ! {
    let failed = match std::env::current_exe() {
        Ok(exe) => std::process::Command::new(exe.with_file_name(STREAM_READER))
            .args(std::env::args_os().skip(1))
            .exec(),
        Err(e) => e,
    };
    let e = ZcapError::usage(format!(
        "--stream needs {STREAM_READER} installed beside {PROGRAM}: {failed}"
    ));
    fail(PROGRAM, &e)
}
