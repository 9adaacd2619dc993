//! `zcap-bench`: testpmd-style receive benchmark on any DPDK port.
#![forbid(unsafe_code)]

#[path = "../common.rs"]
mod common;

use clap::Parser;
use common::{fail, install_signal_handler, parse_args, parse_seconds, DpdkArgs, StorageArgs};
use std::path::PathBuf;
use std::sync::Arc;
use zcap::bench::{run_bench, BenchConfig, BenchMode};
use zcap::pipeline::control::Control;
use zcap::publish::{run_bare_publisher, BarePublish, StreamSpec, StreamTarget};
use zcap::storage::{parse_size, run_storage_test, StorageTest};
use zcap::ZcapError;

/// Measures receive (rxonly) or capture rates per queue and in total.
///
/// Exit status: 0 done, 1 failure while running, 2 bad arguments or environment.
#[derive(Debug, Parser)]
#[command(name = "zcap-bench", version)]
struct Cli {
    #[command(flatten)]
    dpdk: DpdkArgs,
    /// rxonly: receive and free; capture: the full capture pipeline;
    /// handoff: the pipeline with writers that free packets unencoded
    /// (counted as writer drops), to part hand-off cost from encoding cost;
    /// storage: synthetic records to -w at full speed, no DPDK port;
    /// publish: a bare JetStream publisher to --publish, no DPDK port.
    #[arg(long = "mode", value_name = "MODE", default_value = "rxonly")]
    mode: String,
    /// Seconds to run.
    #[arg(long = "duration", value_name = "SECONDS", default_value = "5")]
    duration: String,
    /// Capture mode's output file (handoff mode writes only its header).
    #[arg(
        short = 'w',
        long = "write",
        value_name = "FILE",
        default_value = "/dev/null"
    )]
    write: PathBuf,
    /// Print the report as JSON on stdout.
    #[arg(long = "json")]
    json: bool,
    #[command(flatten)]
    storage: StorageArgs,
    /// Storage mode: bytes per synthetic packet.
    #[arg(long = "frame-size", value_name = "BYTES", default_value_t = 1514)]
    frame_size: u32,
    /// Storage mode: keep the file written (it is removed by default).
    #[arg(long = "keep")]
    keep: bool,
    /// Publish mode: the stream, nats://HOST:PORT[,...]/STREAM (made if
    /// missing, as zcap --publish makes it).
    #[arg(long = "publish", value_name = "URL")]
    publish: Option<String>,
    /// Publish mode: payload bytes per message (e.g. 64K, 1M).
    #[arg(long = "message-size", value_name = "SIZE", default_value = "768K")]
    message_size: String,
    /// Publish mode: acknowledgements awaited at once.
    #[arg(long = "publish-window", value_name = "N", default_value_t = zcap::publish::PUBLISH_WINDOW)]
    window: usize,
    /// Publish mode: replicas of a stream it makes.
    #[arg(long = "stream-replicas", value_name = "N", default_value_t = 1)]
    replicas: usize,
    /// Publish mode: the most bytes a stream it makes keeps.
    #[arg(long = "stream-max-bytes", value_name = "SIZE")]
    max_bytes: Option<String>,
}

/// `--mode publish`: a bare JetStream publisher (the ceiling of --publish).
fn publish_test(cli: &Cli, control: &Control) -> Result<(), ZcapError> {
    let url = cli.publish.as_deref().ok_or_else(|| {
        ZcapError::usage("--mode publish needs --publish nats://HOST:PORT/STREAM")
    })?;
    let target =
        StreamTarget::parse(url).map_err(|e| ZcapError::usage(format!("--publish: {e}")))?;
    let message_bytes = parse_size(&cli.message_size)
        .map_err(|e| ZcapError::usage(format!("--message-size: {e}")))?
        as usize;
    let spec = BarePublish {
        target,
        stream: StreamSpec {
            replicas: cli.replicas,
            max_age: None,
            max_bytes: cli
                .max_bytes
                .as_deref()
                .map(parse_size)
                .transpose()
                .map_err(|e| ZcapError::usage(format!("--stream-max-bytes: {e}")))?,
        },
        message_bytes,
        window: cli.window,
        duration: parse_seconds("--duration", &cli.duration)?,
        subject: "zcap.bare.0.0".to_owned(),
    };
    let r = run_bare_publisher(&spec, || control.stop_requested())?;
    if cli.json {
        println!(
            "{{\"messages\":{},\"bytes\":{},\"failed\":{},\"seconds\":{}}}",
            r.messages, r.bytes, r.failed, r.seconds
        );
    } else {
        println!(
            "zcap-bench publish to {url}: {:.1} MB/s, {:.0} messages/s of {message_bytes} B, window {}, {} failed, {:.2} s",
            r.bytes as f64 / r.seconds / 1e6,
            r.messages as f64 / r.seconds,
            cli.window,
            r.failed,
            r.seconds
        );
    }
    Ok(())
}

/// `--mode storage`: the disk alone, no DPDK port.
fn storage_test(cli: &Cli, control: &Control) -> Result<(), ZcapError> {
    let (io, buffer_bytes, buffers) = cli.storage.parse()?;
    if !(1..=65535).contains(&cli.frame_size) {
        return Err(ZcapError::usage("--frame-size: from 1 to 65535 bytes"));
    }
    let test = StorageTest {
        path: cli.write.clone(),
        keep: cli.keep,
        io,
        buffer_bytes,
        buffers,
        frame_bytes: cli.frame_size,
        duration: parse_seconds("--duration", &cli.duration)?,
    };
    let report = run_storage_test(&test, || control.stop_requested())?;
    if cli.json {
        println!("{}", report.to_json());
    } else {
        println!(
            "zcap-bench storage on {} ({}): {:.1} MB/s, {:.3} Mpps of {} B records, {:.2} s waiting on storage of {:.2} s",
            cli.write.display(),
            report.io_mode.name(),
            report.file_bytes as f64 / report.seconds / 1e6,
            report.records as f64 / report.seconds / 1e6,
            cli.frame_size,
            report.storage_wait_s,
            report.seconds
        );
    }
    Ok(())
}

fn main() {
    let cli: Cli = parse_args("zcap-bench");
    if cli.mode == "publish" {
        let control = Arc::new(Control::new());
        install_signal_handler(&control);
        publish_test(&cli, &control).unwrap_or_else(|e| fail("zcap-bench", &e));
        return;
    }
    if cli.mode == "storage" {
        let control = Arc::new(Control::new());
        install_signal_handler(&control);
        storage_test(&cli, &control).unwrap_or_else(|e| fail("zcap-bench", &e));
        return;
    }
    let config = (|| {
        Ok(BenchConfig {
            dpdk: cli.dpdk.to_config()?,
            mode: BenchMode::parse(&cli.mode)?,
            duration: parse_seconds("--duration", &cli.duration)?,
            output: cli.write.clone(),
            filter: cli.dpdk.filter()?,
        })
    })()
    .unwrap_or_else(|e| fail("zcap-bench", &e));
    let control = Arc::new(Control::new());
    install_signal_handler(&control);
    let report = run_bench(&config, control).unwrap_or_else(|e| fail("zcap-bench", &e));
    if cli.json {
        println!("{}", report.to_json());
        return;
    }
    println!(
        "zcap-bench {} on {}: {} queue(s), {:.2} s",
        cli.mode,
        cli.dpdk.interfaces.join(" "),
        report.queues.len(),
        report.duration_s
    );
    for q in &report.queues {
        println!(
            "  port {} queue {} (lcore {}): {:10.3} Mpps  {:6.1} cycles/packet",
            q.port,
            q.queue,
            q.lcore,
            q.packets_received as f64 / report.duration_s / 1e6,
            q.cycles_per_packet
        );
    }
    for (index, w) in report.writers.iter().enumerate() {
        if let Some(time) = w.time {
            println!(
                "  writer {index} (CPU {}): {:.2} s user, {:.2} s kernel",
                w.cpu, time.user_s, time.system_s
            );
        }
    }
    println!(
        "  total: {:10.3} Mpps  {:6.1} cycles/packet  written {}  drops: imissed {} rx_nombuf {} ring_full {} writer {}",
        report.rate_pps() / 1e6,
        report.cycles_per_packet(),
        report.packets_written,
        report.drops.imissed,
        report.drops.rx_nombuf,
        report.drops.ring_full,
        report.drops.writer
    );
}
