//! One capture from start to finish, in four steps: check and open what the
//! capture needs (report files, filter, DPDK), [`start`] the writers and poll
//! loops, [`supervise`] them until a reason to stop, then drain and report.

mod links;
mod outputs;
mod ports;
mod published;
mod run_as;
mod start;
mod supervise;
mod telemetry_provider;

use crate::account::Account;
use crate::config::CaptureConfig;
use crate::dpdk::{telemetry, ClassicFilter};
use crate::error::ZcapError;
use crate::monitor::Monitor;
use crate::pipeline::control::Control;
use crate::session::{default_pool_size, Session, Writers};
use crate::stats::{CaptureReport, WriterReport};
use hdrhistogram::Histogram;
use links::{interface_links, Link};
use outputs::{precheck_output, precheck_volumes, IntervalLogs, ReportFiles};
use start::{start, Outputs, Running};
use std::sync::Arc;
use std::time::Duration;
use supervise::supervise;

/// How often the stats core wakes to check for a reason to stop.
const CONTROL_TICK: Duration = Duration::from_millis(10);

/// Most packets a merging writer holds back to put queues in time order.
const MERGE_HOLD_LIMIT: u32 = 16 * 1024;

/// How a capture ended.
pub struct CaptureOutcome {
    /// What happened to every packet.
    pub report: CaptureReport,
    /// A runtime failure (exit status 1), if one happened; files are closed.
    pub failure: Option<String>,
}

/// A live view for the caller's report line, once per stats interval.
pub struct Tick<'a> {
    /// Totals so far, with the interval that just ended.
    pub report: &'a CaptureReport,
    /// Fill level of the fullest ring, 0.0 to 1.0.
    pub ring_fill: f64,
}

/// Runs one capture. `on_tick` is called once per stats interval.
pub fn run_capture(
    config: &CaptureConfig,
    control: Arc<Control>,
    on_tick: &mut dyn FnMut(&Tick),
) -> Result<CaptureOutcome, ZcapError> {
    config.validate()?;
    if config.publish.as_ref().is_none_or(|p| p.files) {
        precheck_output(&config.output)?;
        precheck_volumes(&config.volumes)?;
    }
    let links = interface_links(config)?;
    let mut reports = ReportFiles::create(config)?;
    // Compiled before DPDK starts: a bad filter costs nothing to report.
    let classic = compile_filter(config, &links)?;
    // Connected before DPDK starts too; it outlives the writers.
    let stream = published::open_stream(config)?;
    let account = config.run_as.as_deref().map(Account::lookup).transpose()?;
    let session = open_session(config)?;
    let filter = classic
        .as_ref()
        .map(|c| c.load().map(Arc::new))
        .transpose()
        .map_err(|e| ZcapError::usage(e.to_string()))?;
    let (report, total_latency) = reports.with_logs(|logs| {
        let outputs = Outputs {
            stream: stream.as_ref(),
            account: account.as_ref(),
        };
        let mut running = start(config, &control, session, filter, &links, outputs)?;
        let mut on_interval = |monitor: &mut Monitor| {
            let ring_fill = monitor.sources().ring_fill();
            let (report, interval) = monitor.interval();
            logs.log(&report, interval);
            on_tick(&Tick {
                report: &report,
                ring_fill,
            });
        };
        let finite = running.finite;
        let (monitor, writers) = (&mut running.monitor, &running.writers);
        supervise(config, &control, monitor, writers, finite, &mut on_interval);
        Ok(finish(&control, running, logs))
    })?;
    if let Err(message) = reports.write_plot(&total_latency) {
        control.fail(message);
    }
    Ok(CaptureOutcome {
        report,
        failure: control.failure(),
    })
}

/// The filter, compiled for the ports' link type (one for all of them).
fn compile_filter(
    config: &CaptureConfig,
    links: &[Link],
) -> Result<Option<ClassicFilter>, ZcapError> {
    let Some(expr) = config.filter.as_deref() else {
        return Ok(None);
    };
    let dlt = links.first().map_or(1, |l| l.dlt);
    ClassicFilter::compile_for(expr, config.snaplen, dlt)
        .map(Some)
        .map_err(|e| ZcapError::usage(format!("bad filter {expr:?}: {e}")))
}

/// DPDK up, with a pool sized for the capture unless `--mbufs` says.
fn open_session(config: &CaptureConfig) -> Result<Session, ZcapError> {
    let writers = if config.per_queue_files {
        Writers::PerQueue
    } else {
        Writers::One
    };
    let merge = !config.per_queue_files;
    let dpdk = crate::config::DpdkConfig {
        stdout_is_output: config.writes_to_stdout(),
        ..config.dpdk.clone()
    };
    Session::open(&dpdk, writers, |queues| {
        let held = if merge && queues > 1 {
            MERGE_HOLD_LIMIT
        } else {
            0
        };
        default_pool_size(queues, config.dpdk.rx_descriptors, config.ring_size, held)
    })
}

/// Drains (poll loops stop, then writers empty the rings and close their
/// files), takes the final report, logs it, and closes DPDK. Returns the
/// report and every latency sample of the run.
fn finish(
    control: &Control,
    running: Running,
    logs: &mut IntervalLogs,
) -> (CaptureReport, Histogram<u64>) {
    let Running {
        polls,
        writers,
        monitor,
        pool,
        eal,
        tsc_hz,
        ..
    } = running;
    for task in polls {
        let lcore = task.lcore();
        if let Err(panic) = task.join() {
            control.fail(format!("the poll loop on lcore {lcore} failed: {panic}"));
        }
    }
    control.set_producers_done();
    let mut files = Vec::new();
    let mut reports = Vec::new();
    for writer in writers {
        let cpu = writer.cpu;
        match writer.thread.join() {
            Ok(outcome) => {
                files.extend(outcome.paths);
                reports.push(WriterReport {
                    cpu,
                    time: outcome.cpu_time,
                    io_mode: outcome.io_mode,
                    storage_wait_s: outcome.storage_wait_s,
                    publish: outcome.publish,
                });
            }
            Err(_) => {
                // Still listed, so the list's positions stay the writers' indexes.
                reports.push(WriterReport {
                    cpu,
                    ..WriterReport::default()
                });
                control.fail("a writer thread panicked".to_owned());
            }
        }
    }
    telemetry::clear();
    let (mut report, interval, total_latency) = monitor.finish();
    report.files = files;
    report.writers = reports;
    report.tsc_hz = tsc_hz;
    // The monitor held the last port handles: the ports are stopped and closed
    // now, and their descriptors gave back their mbufs.
    report.mbufs_in_use_at_exit = u64::from(pool.in_use());
    drop(pool);
    drop(eal);
    logs.log(&report, &interval);
    (report, total_latency)
}
