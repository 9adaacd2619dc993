//! The testpmd-style benchmark: `rxonly` receives and frees (the reference
//! point for every later rate); `capture` runs the real capture pipeline;
//! `handoff` runs it with writers that free without encoding, which parts
//! the cost of passing mbufs between cores from the cost of writing them.

use crate::capture::{run_capture, CaptureOutcome};
use crate::config::{CaptureConfig, DpdkConfig};
use crate::dpdk::{launch, rdtsc, ClassicFilter, MbufBurst};
use crate::error::ZcapError;
use crate::pipeline::control::Control;
use crate::pipeline::poll::Backoff;
use crate::pipeline::MAX_BURST;
use crate::session::{default_pool_size, Session, Writers};
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
    pub fn parse(text: &str) -> Result<Self, String> {
        match text {
            "rxonly" => Ok(BenchMode::RxOnly),
            "capture" => Ok(BenchMode::Capture),
            "handoff" => Ok(BenchMode::HandOff),
            _ => Err(format!(
                "--mode: expected rxonly, capture or handoff, not {text:?}"
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
        return Err(ZcapError::usage("--duration: must be more than 0 seconds"));
    }
    match config.mode {
        BenchMode::RxOnly => rx_only(config, control),
        BenchMode::Capture | BenchMode::HandOff => {
            let mut capture =
                CaptureConfig::new(config.dpdk.interfaces.clone(), config.output.clone());
            capture.dpdk = config.dpdk.clone();
            capture.duration = Some(config.duration);
            capture.stats_interval = None;
            capture.quiet = true;
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
    let burst_size = config.dpdk.burst;
    let mut running = Vec::new();
    let mut ids = Vec::new();
    let mut launch_error = None;
    for (slot, policy) in session.queues.into_iter().zip(session.poll_idle) {
        let shared = Arc::new(QueueShared::default());
        ids.push((
            slot.rxq.port_id(),
            slot.rxq.queue_id(),
            slot.lcore,
            shared.clone(),
        ));
        let control = control.clone();
        let mut rxq = slot.rxq;
        let filter = filter.clone();
        let job = move || {
            let counters = &shared.counters;
            let mut burst = MbufBurst::<MAX_BURST>::new();
            let mut idle = Backoff::new(policy);
            let start = rdtsc();
            while !control.stop_requested() {
                let n = rxq.rx_burst(&mut burst, burst_size);
                if n == 0 {
                    counters.empty_polls.add(1);
                    idle.idle();
                    continue;
                }
                idle.busy();
                counters.rx_packets.add(n as u64);
                counters.bursts.add(1);
                if let Some(filter) = &filter {
                    counters
                        .filtered
                        .add(burst.retain(|m| filter.accepts(m)) as u64);
                }
                burst.free_all();
            }
            // rxonly runs flat out: every cycle of the loop counts.
            counters.busy_cycles.add(rdtsc() - start);
        };
        match launch(slot.lcore, job) {
            Ok(task) => running.push(task),
            Err(e) => {
                launch_error = Some(e);
                break;
            }
        }
    }
    let started = Instant::now();
    if launch_error.is_none() {
        while !control.stop_requested() && started.elapsed() < config.duration {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    control.request_stop();
    let mut failure = launch_error.map(|e| e.to_string());
    for task in running {
        if let Err(panic) = task.join() {
            failure.get_or_insert(panic);
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    if let Some(message) = failure {
        return Err(ZcapError::runtime(format!("benchmark failed: {message}")));
    }
    let mut report = CaptureReport {
        duration_s: elapsed,
        tsc_hz: session.eal.tsc_hz(),
        ..CaptureReport::default()
    };
    for (port, queue, lcore, shared) in ids {
        let c = &shared.counters;
        report.packets_received += c.rx_packets.get();
        report.packets_filtered += c.filtered.get();
        report.queues.push(c.report(port, queue, lcore));
    }
    let stats: Vec<_> = session.ports.iter().map(|p| p.stats()).collect();
    report.bytes_received = stats.iter().map(|s| s.ibytes).sum();
    report.drops.imissed = stats.iter().map(|s| s.imissed).sum();
    report.drops.rx_nombuf = stats.iter().map(|s| s.rx_nombuf).sum();
    report.drops.ierrors = stats.iter().map(|s| s.ierrors).sum();
    let pool = session.pool;
    drop(session.ports);
    report.mbufs_in_use_at_exit = u64::from(pool.in_use());
    report.pool_driver = pool.driver_name();
    Ok(report)
}
