//! `zcap-extract --stream`: the packets of a JetStream stream zcap
//! published into (`--publish`), as `zcap-extract` selects them from files.
//! `zcap-extract` hands its arguments to this program, which alone carries
//! the NATS client.
#![forbid(unsafe_code)]

#[path = "../common.rs"]
#[allow(dead_code)]
mod common;
#[path = "../extract_cli.rs"]
#[allow(dead_code)]
mod extract_cli;

use common::{fail, parse_args};
use extract_cli::{or_fail, report, spec_from, stream_spec, Cli, PROGRAM};
use zcap::publish::extract_stream;
use zcap::ZcapError;

fn main() {
    let cli: Cli = parse_args(PROGRAM);
    let Some(url) = cli.stream.as_deref() else {
        let e =
            ZcapError::usage("zcap-extract-stream reads --stream URL; zcap-extract reads files");
        fail(PROGRAM, &e)
    };
    let spec = or_fail(spec_from(&cli).and_then(|files| stream_spec(url, &cli, files)));
    let summary = or_fail(extract_stream(&spec));
    let verbose = cli.verbose.then(|| {
        format!(
            "{} subjects, {} records read, {} written",
            summary.files, summary.records_read, summary.written
        )
    });
    report(&summary, verbose);
}
