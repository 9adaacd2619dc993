//! zcap-extract's command line, shared by `zcap-extract` and by
//! `zcap-extract-stream`, to which it hands `--stream`.

use crate::common::fail;
use clap::Parser;
use std::io::IsTerminal;
use std::path::PathBuf;
use zcap::archive::{parse_time, ExtractSpec, ExtractSummary};
use zcap::format::{FileFormat, TsPrecision};
use zcap::publish::{valid_sensor, StreamExtract, StreamTarget};
use zcap::ZcapError;

/// The name both programs give in their messages.
pub(crate) const PROGRAM: &str = "zcap-extract";

/// Extracts packets by time and filter from capture files and their indexes.
///
/// Exit status: 0 done (an empty selection too), 1 a capture file is damaged
/// (the records before the damage are extracted) or the output cannot be
/// written, 2 bad arguments.
#[derive(Debug, Parser)]
#[command(name = "zcap-extract", version)]
pub(crate) struct Cli {
    /// A capture file, or a directory of them (rotated, per-queue and
    /// per-volume files; their FILE.zidx indexes are used where present).
    /// Repeat -r for more; paths right after the first one (a shell glob)
    /// are taken too.
    #[arg(
        short = 'r',
        long = "read",
        value_name = "PATH",
        required_unless_present = "stream"
    )]
    pub(crate) read: Vec<PathBuf>,
    /// Read from a JetStream stream zcap published into (--publish):
    /// nats://HOST:PORT[,HOST:PORT...]/STREAM.
    #[arg(long = "stream", value_name = "URL", conflicts_with = "read")]
    pub(crate) stream: Option<String>,
    /// With --stream: only this sensor's subjects.
    #[arg(long = "sensor", value_name = "NAME", requires = "stream")]
    pub(crate) sensor: Option<String>,
    /// Start of the window (inclusive): RFC 3339 (2026-12-01T10:02:13Z, or
    /// with an offset) or epoch seconds (1796119333.25).
    #[arg(long = "from", value_name = "TIME")]
    pub(crate) from: Option<String>,
    /// End of the window (exclusive), as --from.
    #[arg(long = "to", value_name = "TIME")]
    pub(crate) to: Option<String>,
    /// Output file, or - for standard output (the default).
    #[arg(short = 'w', long = "write", value_name = "OUT", default_value = "-")]
    pub(crate) write: String,
    /// Output format: pcap or pcapng (default: from OUT's name; pcap for -).
    #[arg(short = 'F', value_name = "FORMAT")]
    pub(crate) format: Option<String>,
    /// pcap timestamps: micro or nano (default: micro if every input is a
    /// microsecond pcap file, else nano).
    #[arg(long = "time-stamp-precision", value_name = "PRECISION")]
    pub(crate) precision: Option<String>,
    /// Print what was read and written on stderr.
    #[arg(short = 'v', long = "verbose")]
    pub(crate) verbose: bool,
    /// A pcap-filter expression, as tcpdump takes it; options may follow
    /// it, and a word that looks like an option goes after `--`.
    #[arg(value_name = "EXPRESSION")]
    pub(crate) expression: Vec<String>,
}

/// The words before the expression that name existing files or
/// directories (`-r *.pcap` hands the rest of a glob over as words), and the
/// expression's words.
fn paths_and_expression(words: &[String]) -> (Vec<PathBuf>, &[String]) {
    let paths = words
        .iter()
        .take_while(|w| (w.contains('/') || w.contains('.')) && std::path::Path::new(w).exists())
        .count();
    let (paths, expression) = words.split_at(paths);
    (paths.iter().map(PathBuf::from).collect(), expression)
}

pub(crate) fn spec_from(cli: &Cli) -> Result<ExtractSpec, ZcapError> {
    let time = |flag: &str, text: &Option<String>| {
        text.as_deref()
            .map(parse_time)
            .transpose()
            .map_err(|e| ZcapError::usage(format!("{flag}: {e}")))
    };
    let output = (cli.write != "-").then(|| PathBuf::from(&cli.write));
    if output.is_none() && std::io::stdout().is_terminal() {
        return Err(ZcapError::usage(
            "standard output is a terminal: give -w FILE, or pipe it (| tcpdump -r -)",
        ));
    }
    let format = match &cli.format {
        Some(name) => FileFormat::parse(name).ok_or_else(|| {
            ZcapError::usage(format!("-F: unknown format {name:?} (pcap or pcapng)"))
        })?,
        None => FileFormat::from_path(&cli.write),
    };
    let precision = match cli.precision.as_deref() {
        None => None,
        Some("micro") => Some(TsPrecision::Micro),
        Some("nano") => Some(TsPrecision::Nano),
        Some(other) => {
            return Err(ZcapError::usage(format!(
                "--time-stamp-precision: expected micro or nano, not {other:?}"
            )))
        }
    };
    let (more_inputs, words) = paths_and_expression(&cli.expression);
    let expression = words.join(" ");
    let mut inputs = cli.read.clone();
    inputs.extend(more_inputs);
    Ok(ExtractSpec {
        inputs,
        from_ns: time("--from", &cli.from)?,
        to_ns: time("--to", &cli.to)?,
        expression: (!expression.trim().is_empty()).then_some(expression),
        output,
        format,
        precision,
    })
}

/// `--stream`: the same window, expression and output, from a stream.
pub(crate) fn stream_spec(
    url: &str,
    cli: &Cli,
    files: ExtractSpec,
) -> Result<StreamExtract, ZcapError> {
    let target =
        StreamTarget::parse(url).map_err(|e| ZcapError::usage(format!("--stream: {e}")))?;
    if let Some(sensor) = cli.sensor.as_deref().filter(|s| !valid_sensor(s)) {
        return Err(ZcapError::usage(format!(
            "--sensor {sensor:?}: letters, digits, - and _ only"
        )));
    }
    Ok(StreamExtract {
        target,
        sensor: cli.sensor.clone(),
        select: files,
    })
}

/// Says the summary's warnings and damage, and `verbose` (the line -v
/// asks for); exits with status 1 if a capture file was damaged.
pub(crate) fn report(summary: &ExtractSummary, verbose: Option<String>) {
    for line in summary.warnings.iter().chain(&summary.damaged) {
        zcap::say!("{PROGRAM}: {line}");
    }
    if let Some(line) = verbose {
        zcap::say!("{PROGRAM}: {line}");
    }
    if !summary.damaged.is_empty() {
        std::process::exit(1);
    }
}

/// The result, or the program's one-line error and exit status.
pub(crate) fn or_fail<T>(result: Result<T, ZcapError>) -> T {
    result.unwrap_or_else(|e| fail(PROGRAM, &e))
}
