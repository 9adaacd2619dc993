//! The testpmd-style benchmark: `rxonly` receives and frees, through the
//! capture's own poll loop (the reference point for every later rate);
//! `capture` runs the real capture pipeline; `handoff` runs it with writers that free without encoding, which parts
//! the cost of passing mbufs between cores from the cost of writing them.

use crate::capture::{run_capture, CaptureOutcome};
use crate::config::{CaptureConfig, DpdkConfig};
use crate::dpdk::{launch, ClassicFilter, Filter, Port, RxQueue};
use crate::error::{Field, ZcapError};
use crate::pipeline::backoff::IdlePolicy;
use crate::pipeline::control::Control;
use crate::pipeline::poll::{PollLoop, RingFullPolicy};
use crate::pipeline::rx::{BareSource, Discard};
use crate::session::{default_pool_size, Session, Writers};
use crate::stats::histogram::Mailbox;
use crate::stats::{CaptureReport, QueueShared};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What the benchmark measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BenchMode {
    /// Receive and free: the poll loop alone.
    RxOnly,
    /// The whole capture pipeline, to a file (default `/dev/null`).
    Capture,
    /// The capture pipeline with writers that free every packet unencoded
    /// (counted as writer drops): poll loops, rings and the pool's round trip.
    HandOff,
}

impl BenchMode {
    /// Parses `--mode rxonly|capture|handoff`.
    pub fn parse(text: &str) -> Result<Self, ZcapError> {
        match text {
            "rxonly" => Ok(BenchMode::RxOnly),
            "capture" => Ok(BenchMode::Capture),
            "handoff" => Ok(BenchMode::HandOff),
            _ => Err(ZcapError::config(
                Field::Mode,
                format!("expected rxonly, capture or handoff, not {text:?}"),
            )),
        }
    }
}

/// A benchmark run.
#[derive(Debug, Clone)]
pub struct BenchConfig {
    /// Ports, queues, cores.
    pub dpdk: DpdkConfig,
    /// What to measure.
    pub mode: BenchMode,
    /// How long.
    pub duration: Duration,
    /// The capture and handoff modes' output file (handoff writes only a header).
    pub output: PathBuf,
    /// A pcap-filter expression run on every packet (every mode).
    pub filter: Option<String>,
}

/// Runs the benchmark and returns its report.
pub fn run_bench(config: &BenchConfig, control: Arc<Control>) -> Result<CaptureReport, ZcapError> {
    if config.duration.is_zero() {
        return Err(ZcapError::config(
            Field::Duration,
            "must be more than 0 seconds",
        ));
    }
    config.dpdk.validate()?;
    match config.mode {
        BenchMode::RxOnly => rx_only(config, control),
        BenchMode::Capture | BenchMode::HandOff => {
            let mut capture =
                CaptureConfig::new(config.dpdk.interfaces.clone(), config.output.clone());
            capture.dpdk = config.dpdk.clone();
            capture.duration = Some(config.duration);
            capture.stats_interval = None;
            capture.filter = config.filter.clone();
            capture.hand_off_only = config.mode == BenchMode::HandOff;
            let CaptureOutcome { report, failure } = run_capture(&capture, control, &mut |_| {})?;
            match failure {
                Some(message) => Err(ZcapError::runtime(message)),
                None => Ok(report),
            }
        }
    }
}

fn rx_only(config: &BenchConfig, control: Arc<Control>) -> Result<CaptureReport, ZcapError> {
    let rx_desc = config.dpdk.rx_descriptors;
    let classic = config
        .filter
        .as_deref()
        .map(|expr| ClassicFilter::compile(expr, 262_144))
        .transpose()
        .map_err(|e| ZcapError::usage(format!("bad filter: {e}")))?;
    let session = Session::open(&config.dpdk, Writers::None, |queues| {
        default_pool_size(queues, rx_desc, 0, 0)
    })?;
    let filter = classic
        .as_ref()
        .map(|c| c.load().map(Arc::new))
        .transpose()
        .map_err(|e| ZcapError::usage(e.to_string()))?;
    let Session {
        queues,
        ports,
        pool,
        eal,
        poll_idle,
        ..
    } = session;
    let mut watched = Vec::new();
    let mut running = Vec::new();
    let mut failure = None;
    for (slot, idle) in queues.into_iter().zip(poll_idle) {
        let lcore = slot.lcore;
        let shared = Arc::new(QueueShared::default());
        watched.push((
            slot.rxq.port_id(),
            slot.rxq.queue_id(),
            lcore,
            shared.clone(),
        ));
        let rx = bare_loop(config, slot.rxq, filter.clone(), shared, &control, idle);
        match launch(lcore, move || rx.run()) {
            Ok(task) => running.push(task),
            Err(e) => {
                failure = Some(e.to_string());
                break;
            }
        }
    }
    let started = Instant::now();
    if failure.is_none() {
        while !control.stop_requested() && started.elapsed() < config.duration {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    control.request_stop();
    for task in running {
        if let Err(panic) = task.join() {
            failure.get_or_insert(panic);
        }
    }
    if let Some(message) = failure {
        return Err(ZcapError::runtime(format!("benchmark failed: {message}")));
    }
    let mut report = CaptureReport {
        duration_s: started.elapsed().as_secs_f64(),
        tsc_hz: eal.tsc_hz(),
        pool_driver: pool.driver_name(),
        ..CaptureReport::default()
    };
    add_rx_counts(&mut report, &watched, &ports);
    drop(ports);
    report.mbufs_in_use_at_exit = u64::from(pool.in_use());
    Ok(report)
}

/// testpmd's rxonly on `rxq`: every burst freed as it comes, unstamped.
fn bare_loop(
    config: &BenchConfig,
    rxq: RxQueue,
    filter: Option<Arc<Filter>>,
    shared: Arc<QueueShared>,
    control: &Arc<Control>,
    idle: IdlePolicy,
) -> PollLoop<BareSource, Discard> {
    PollLoop {
        source: BareSource::new(rxq, filter),
        ring: Discard,
        shared,
        control: control.clone(),
        burst_size: config.dpdk.burst,
        gather: config.dpdk.burst,
        ring_full: RingFullPolicy::Drop,
        idle,
        burst_cycles: Mailbox::new(),
    }
}

/// The queues' counts and the ports' own counters, into `report`.
fn add_rx_counts(
    report: &mut CaptureReport,
    watched: &[(u16, u16, u32, Arc<QueueShared>)],
    ports: &[Port],
) {
    let mut counted_bytes = 0;
    for (port, queue, lcore, shared) in watched {
        let c = &shared.counters;
        report.packets_received += c.rx_packets.get();
        report.packets_filtered += c.filtered.get();
        counted_bytes += c.rx_bytes.get();
        report.queues.push(c.report(*port, *queue, *lcore));
    }
    let stats: Vec<_> = ports.iter().map(|p| p.stats()).collect();
    report.bytes_received = counted_bytes.max(stats.iter().map(|s| s.ibytes).sum());
    report.drops.imissed = stats.iter().map(|s| s.imissed).sum();
    report.drops.rx_nombuf = stats.iter().map(|s| s.rx_nombuf).sum();
    report.drops.ierrors = stats.iter().map(|s| s.ierrors).sum();
}
