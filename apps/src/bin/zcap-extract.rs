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
use extract_cli::{or_fail, report, spec_from, stream_spec, Cli, PROGRAM};
use std::os::unix::process::CommandExt;
use zcap::archive::extract;
use zcap::ZcapError;

/// The program that reads `--stream`, installed beside this one.
const STREAM_READER: &str = "zcap-extract-stream";

fn main() {
    let cli: Cli = parse_args(PROGRAM);
    let spec = or_fail(spec_from(&cli));
    if let Some(url) = &cli.stream {
        // Checked here too: the same one line, wherever the reader is.
        or_fail(stream_spec(url, &cli, spec));
        hand_over_stream();
    }
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
/// arguments: the one beside this program, else the one in PATH. The NATS
/// client is two thirds of a program that has it; a search of files, which
/// starts here, would read it from disk at every cold start.
fn hand_over_stream() -> ! {
    let run = |program: &std::path::Path| {
        std::process::Command::new(program)
            .args(std::env::args_os().skip(1))
            .exec()
    };
    let beside = std::env::current_exe().map(|exe| exe.with_file_name(STREAM_READER));
    let failed = match beside {
        Ok(beside) => match run(&beside) {
            e if e.kind() == std::io::ErrorKind::NotFound => run(STREAM_READER.as_ref()),
            e => fail(PROGRAM, &cannot_run(&beside.display().to_string(), &e)),
        },
        Err(_) => run(STREAM_READER.as_ref()),
    };
    fail(PROGRAM, &cannot_run(STREAM_READER, &failed))
}

fn cannot_run(program: &str, why: &std::io::Error) -> ZcapError {
    ZcapError::usage(match why.kind() {
        std::io::ErrorKind::NotFound => format!(
            "--stream is read by {STREAM_READER}, found neither beside {PROGRAM} nor in PATH"
        ),
        _ => format!("--stream: cannot run {program}: {why}"),
    })
}
