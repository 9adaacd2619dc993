//! `zcap`: capture every packet a DPDK port receives to a pcap / pcapng file.
#![forbid(unsafe_code)]

#[path = "../common.rs"]
mod common;

use clap::Parser;
use common::{fail, install_signal_handler, parse_args, parse_seconds, DpdkArgs, StorageArgs};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;
use zcap::capture::{run_capture, Tick};
use zcap::config::{CaptureConfig, PublishConfig};
use zcap::dpdk::ClassicFilter;
use zcap::format::{FileFormat, TsPrecision};
use zcap::pipeline::control::Control;
use zcap::publish::{default_sensor, parse_age, StreamSpec, StreamTarget};
use zcap::storage::parse_size;
use zcap::storage::DiskBudget;
use zcap::ZcapError;

/// Kernel-bypass packet capture on DPDK, to pcap / pcapng files.
///
/// Exit status: 0 done, 1 failure while capturing (files written so far are
/// closed and valid), 2 bad arguments or environment.
#[derive(Debug, Parser)]
#[command(name = "zcap", version)]
struct Cli {
    #[command(flatten)]
    dpdk: DpdkArgs,
    /// Output file; .pcapng means pcapng, anything else pcap (unless -F).
    /// `-` writes one stream to standard output (for `| tshark -r -`); when
    /// its reader exits, zcap stops as on Ctrl-C.
    #[arg(short = 'w', long = "write", value_name = "FILE")]
    write: Option<PathBuf>,
    /// Once the ports are started and the first files open, run as USER
    /// and its groups (as tcpdump -Z): rotated files are USER's.
    #[arg(short = 'Z', long = "relinquish-privileges", value_name = "USER")]
    run_as: Option<String>,
    /// List the ports DPDK can open and the kernel's interfaces, with their
    /// drivers, links, queues and offloads (as tcpdump -D), and exit.
    #[arg(short = 'D', long = "list-interfaces")]
    list_interfaces: bool,
    /// With -D: one JSON object instead of text.
    #[arg(long = "json", requires = "list_interfaces")]
    json: bool,
    /// Print the compiled filter program (as tcpdump -d does) and exit.
    #[arg(short = 'd')]
    dump_filter: bool,
    /// Output format: pcap or pcapng.
    #[arg(short = 'F', value_name = "FORMAT")]
    format: Option<String>,
    /// pcap timestamp precision: micro or nano (pcapng is always nano).
    #[arg(
        long = "time-stamp-precision",
        value_name = "P",
        default_value = "nano"
    )]
    precision: String,
    /// Bytes kept per packet; the original length is always recorded.
    #[arg(
        short = 's',
        long = "snaplen",
        value_name = "N",
        default_value_t = 262_144
    )]
    snaplen: u32,
    /// Stop after N packets written.
    #[arg(short = 'c', long = "count", value_name = "N")]
    count: Option<u64>,
    /// Stop after this many seconds.
    #[arg(long = "duration", value_name = "SECONDS")]
    duration: Option<String>,
    /// One file per RX queue (FILE-portP-qQ.ext), no timestamp merge.
    #[arg(long = "per-queue-files")]
    per_queue_files: bool,
    /// Live report period in seconds (0: none).
    #[arg(long = "stats-interval", value_name = "SECONDS", default_value = "1")]
    stats_interval: String,
    /// Write the JSON report here (one line per interval, then the final one).
    #[arg(long = "stats-json", value_name = "FILE")]
    stats_json: Option<PathBuf>,
    /// Print only errors.
    #[arg(short = 'q', long = "quiet")]
    quiet: bool,
    /// Start a new file when the current one reaches this many MB (1,000,000 bytes).
    #[arg(short = 'C', value_name = "MB")]
    file_size: Option<f64>,
    /// Start a new file every this many seconds, aligned to the wall clock;
    /// -w may hold strftime fields (%Y %m %d %H %M %S, UTC).
    #[arg(short = 'G', value_name = "SECONDS")]
    rotate_seconds: Option<u64>,
    /// Keep at most this many files (the oldest are removed). Needs -C or -G.
    #[arg(short = 'W', value_name = "N")]
    file_count: Option<u32>,
    /// Run CMD FILE on every closed file (through sh; off the capture path).
    #[arg(short = 'z', value_name = "CMD")]
    post_rotate: Option<String>,
    /// Write the rx→written latency as an HdrHistogram interval log (.hlog).
    #[arg(long = "latency-log", value_name = "FILE")]
    latency_log: Option<PathBuf>,
    /// Write a latency percentile plot (SVG).
    #[arg(long = "latency-plot", value_name = "FILE.svg")]
    latency_plot: Option<PathBuf>,
    /// Slots in each queue's ring to the writer.
    #[arg(long = "ring-size", value_name = "N", default_value_t = 4096)]
    ring_size: u32,
    #[command(flatten)]
    storage: StorageArgs,
    #[command(flatten)]
    publish: PublishArgs,
    /// Spread the writers' files over these directories (writer k in the
    /// k-th mod their number); with --per-queue-files, a writer per queue.
    #[arg(long = "volumes", value_name = "DIR,DIR", value_delimiter = ',')]
    volumes: Vec<PathBuf>,
    /// Keep this capture's files under SIZE (e.g. 200G) or PCT of the
    /// volume (e.g. 80%), removing the oldest closed ones. Needs -C or -G.
    #[arg(long = "max-disk", value_name = "SIZE|PCT")]
    max_disk: Option<String>,
    /// Write an index beside every file (FILE.zidx) for zcap-extract; the
    /// default when rotating (-C or -G).
    #[arg(long = "index", conflicts_with = "no_index")]
    index: bool,
    /// Write no index, even when rotating.
    #[arg(long = "no-index")]
    no_index: bool,
    /// Compress every file as zstd frames, one per write: FILE.zst (e.g.
    /// zstd or zstd:3; levels 1 to 19).
    #[arg(long = "compress", value_name = "zstd[:LEVEL]")]
    compress: Option<String>,
}

/// Publishing into NATS JetStream instead of writing files.
#[derive(Debug, clap::Args)]
struct PublishArgs {
    /// Publish every queue's records into a JetStream stream instead of
    /// files (with -w and --per-queue-files: as well as files):
    /// nats://HOST:PORT[,HOST:PORT...]/STREAM, on subjects
    /// zcap.SENSOR.PORT.QUEUE (see docs/STREAM.md).
    #[arg(long = "publish", value_name = "URL")]
    publish: Option<String>,
    /// The subjects' sensor name (default: the host name).
    #[arg(long = "sensor", value_name = "NAME", requires = "publish")]
    sensor: Option<String>,
    /// Replicas of the stream zcap creates if it is missing.
    #[arg(
        long = "stream-replicas",
        value_name = "N",
        default_value_t = 1,
        requires = "publish"
    )]
    replicas: usize,
    /// The created stream keeps messages this long (e.g. 7d; default: for ever).
    #[arg(long = "stream-max-age", value_name = "AGE", requires = "publish")]
    max_age: Option<String>,
    /// The created stream keeps at most this many bytes (e.g. 500G), the
    /// oldest messages going first.
    #[arg(long = "stream-max-bytes", value_name = "SIZE", requires = "publish")]
    max_bytes: Option<String>,
    /// Messages each writer may have waiting for their acknowledgement.
    #[arg(long = "publish-window", value_name = "N", default_value_t = zcap::publish::PUBLISH_WINDOW, requires = "publish")]
    window: usize,
}

impl PublishArgs {
    fn to_config(&self, files: bool) -> Result<Option<PublishConfig>, ZcapError> {
        let Some(url) = &self.publish else {
            return Ok(None);
        };
        let usage = |e: String| ZcapError::usage(e);
        let target = StreamTarget::parse(url).map_err(|e| usage(format!("--publish: {e}")))?;
        let max_age = self.max_age.as_deref().map(parse_age).transpose();
        let max_bytes = self.max_bytes.as_deref().map(parse_size).transpose();
        Ok(Some(PublishConfig {
            target,
            sensor: self.sensor.clone().unwrap_or_else(default_sensor),
            stream: StreamSpec {
                replicas: self.replicas,
                max_age: max_age.map_err(|e| usage(format!("--stream-max-age: {e}")))?,
                max_bytes: max_bytes.map_err(|e| usage(format!("--stream-max-bytes: {e}")))?,
            },
            window: self.window,
            files,
        }))
    }
}

/// `--io`, `--buffer-size`, `--buffers`, `--volumes`, `--max-disk`,
/// `--compress` and `--index`/`--no-index`.
fn storage_from(cli: &Cli, config: &mut CaptureConfig) -> Result<(), ZcapError> {
    if let Some(text) = &cli.compress {
        let level = zcap::storage::parse_compression(text)
            .map_err(|e| ZcapError::usage(format!("--compress: {e}")))?;
        config.compress = Some(level);
        if !config.output.to_string_lossy().ends_with(".zst") && !config.writes_to_stdout() {
            config.output = PathBuf::from(format!("{}.zst", config.output.display()));
        }
    }
    config.index = match (cli.index, cli.no_index) {
        (true, _) => Some(true),
        (_, true) => Some(false),
        _ => None,
    };
    (config.io, config.buffer_bytes, config.buffers) = cli.storage.parse()?;
    config.volumes = cli.volumes.clone();
    config.max_disk = cli
        .max_disk
        .as_deref()
        .map(DiskBudget::parse)
        .transpose()
        .map_err(|e| ZcapError::usage(format!("--max-disk: {e}")))?;
    Ok(())
}

fn config_from(cli: &Cli) -> Result<CaptureConfig, ZcapError> {
    let publish = cli.publish.to_config(cli.write.is_some())?;
    let write =
        match (&cli.write, &cli.publish.publish) {
            (Some(write), _) => write.clone(),
            (None, Some(url)) => PathBuf::from(url),
            (None, None) => return Err(ZcapError::usage(
                "-w: no output file given (e.g. -w out.pcap, or --publish nats://HOST:PORT/STREAM)",
            )),
        };
    let mut config = CaptureConfig::new(Vec::new(), write.clone());
    config.dpdk = cli.dpdk.to_config()?;
    if let Some(name) = &cli.format {
        config.format = FileFormat::parse(name).ok_or_else(|| {
            ZcapError::usage(format!("-F: unknown format {name:?} (pcap or pcapng)"))
        })?;
    } else {
        config.format = FileFormat::from_path(&write.to_string_lossy());
    }
    config.precision = match cli.precision.as_str() {
        "micro" => TsPrecision::Micro,
        "nano" => TsPrecision::Nano,
        other => {
            return Err(ZcapError::usage(format!(
                "--time-stamp-precision: expected micro or nano, not {other:?}"
            )))
        }
    };
    config.snaplen = cli.snaplen;
    config.count = cli.count;
    config.duration = cli
        .duration
        .as_deref()
        .map(|d| parse_seconds("--duration", d))
        .transpose()?;
    config.per_queue_files = cli.per_queue_files;
    config.stats_interval = match cli.stats_interval.as_str() {
        "0" | "0.0" => None,
        text => Some(parse_seconds("--stats-interval", text)?),
    };
    config.stats_json = cli.stats_json.clone();
    config.ring_size = cli.ring_size;
    config.filter = cli.dpdk.filter()?;
    if let Some(mb) = cli.file_size {
        if !(mb.is_finite() && mb > 0.0) {
            return Err(ZcapError::usage(
                "-C: the file size must be a positive number of MB",
            ));
        }
        config.rotation.max_bytes = Some((mb * 1_000_000.0) as u64);
    }
    config.rotation.period_s = cli.rotate_seconds;
    config.rotation.max_files = cli.file_count;
    config.rotation.post_rotate = cli.post_rotate.clone();
    config.latency_log = cli.latency_log.clone();
    config.latency_plot = cli.latency_plot.clone();
    storage_from(cli, &mut config)?;
    if publish.as_ref().is_some_and(|p| !p.files) {
        // No files: a subject per queue, and pcap records unless -F says
        // otherwise (which is refused).
        config.per_queue_files = true;
        if cli.format.is_none() {
            config.format = FileFormat::Pcap;
        }
    }
    config.publish = publish;
    config.run_as = cli.run_as.clone();
    if config.writes_to_stdout() && std::io::stdout().is_terminal() {
        return Err(ZcapError::usage(
            "-w -: standard output is a terminal; pipe it into a reader (zcap ... -w - | tshark -r -)",
        ));
    }
    Ok(config)
}

fn live_line(tick: &Tick) -> String {
    let now = tick.report;
    let Some(i) = &now.interval else {
        return String::new();
    };
    let dt = i.duration_s.max(1e-9);
    let d = &i.drops;
    let l = &i.latency_ns;
    format!(
        "{:7.1}s rx {:8.3} Mpps {:7.3} Gbit/s | written {:8.3} Mpps{} | drops ring_full {} writer {} imissed {} rx_nombuf {} ierrors {} | ring {:3.0}% | latency µs p50 {:.0} p99 {:.0} p99.9 {:.0} max {:.0} | total rx {} written {}",
        now.duration_s,
        i.packets_received as f64 / dt / 1e6,
        i.bytes_received as f64 * 8.0 / dt / 1e9,
        i.packets_written as f64 / dt / 1e6,
        if i.storage_bound { " storage-bound" } else { "" },
        d.ring_full,
        d.writer,
        d.imissed,
        d.rx_nombuf,
        d.ierrors,
        tick.ring_fill * 100.0,
        l.p50 as f64 / 1e3,
        l.p99 as f64 / 1e3,
        l.p999 as f64 / 1e3,
        l.max as f64 / 1e3,
        now.packets_received,
        now.packets_written,
    )
}

/// `-d`: prints the compiled filter like `tcpdump -d`, without starting DPDK.
fn dump_filter(cli: &Cli) -> Result<(), ZcapError> {
    let expr = cli.dpdk.filter()?.unwrap_or_default();
    let program = ClassicFilter::compile(&expr, cli.snaplen)
        .map_err(|e| ZcapError::usage(format!("bad filter {expr:?}: {e}")))?;
    for line in program.dump() {
        println!("{line}");
    }
    Ok(())
}

/// `-D`: lists ports and interfaces, without capturing.
fn list_interfaces(cli: &Cli) -> Result<(), ZcapError> {
    let listing = zcap::nic::list::list(&cli.dpdk.to_config()?);
    if let Some(error) = &listing.dpdk_error {
        zcap::say!("zcap: -D: {error}; listing the kernel's interfaces only");
    }
    if cli.json {
        println!("{}", listing.json());
    } else {
        print!("{}", listing.text());
    }
    Ok(())
}

fn main() {
    let cli: Cli = parse_args("zcap");
    if cli.list_interfaces {
        list_interfaces(&cli).unwrap_or_else(|e| fail("zcap", &e));
        return;
    }
    if cli.dump_filter {
        dump_filter(&cli).unwrap_or_else(|e| fail("zcap", &e));
        return;
    }
    let config = config_from(&cli).unwrap_or_else(|e| fail("zcap", &e));
    let control = Arc::new(Control::new());
    install_signal_handler(&control);
    let show_live = !cli.quiet && config.stats_interval.is_some();
    let terminal = std::io::stderr().is_terminal();
    let mut on_tick = |tick: &Tick| {
        if show_live {
            if terminal {
                zcap::say_on_line!("\r\x1b[2K{}", live_line(tick));
            } else {
                zcap::say!("{}", live_line(tick));
            }
        }
    };
    let outcome = run_capture(&config, control, &mut on_tick).unwrap_or_else(|e| fail("zcap", &e));
    if show_live && terminal {
        zcap::say!();
    }
    if !cli.quiet {
        let report = &outcome.report;
        for line in report
            .summary()
            .lines()
            .chain(report.latency_ns.table().lines())
        {
            zcap::say!("zcap: {line}");
        }
    }
    if let Some(message) = outcome.failure {
        fail("zcap", &ZcapError::runtime(message));
    }
}
