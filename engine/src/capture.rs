//! One capture from start to finish: DPDK up, writers and poll loops started,
//! the stats core watching for a reason to stop, then drain, close, report.

use crate::config::CaptureConfig;
use crate::dpdk::{launch, rdtsc, stamped_ring, telemetry, ClassicFilter, LcoreTask};
use crate::error::ZcapError;
use crate::format::pcapng::Interface as PcapngInterface;
use crate::format::Encoder;
use crate::monitor::{Monitor, QueueWatch, QueueWatchHandle, Sources};
use crate::output::{FileSink, Rotation};
use crate::pipeline::clock::realtime_ns;
use crate::pipeline::control::{Control, CountLimit};
use crate::pipeline::poll::{PollLoop, PoolGuard, RingFullPolicy};
use crate::pipeline::stamp::{Stamper, TimeSource};
use crate::pipeline::stop::{Snapshot, StopPolicy, StopReason};
use crate::pipeline::writer::{Writer, WriterFeed, WriterOutcome};
use crate::session::{default_pool_size, Session, Writers};
use crate::stats::histogram::Mailbox;
use crate::stats::plot::percentile_svg;
use crate::stats::{CaptureReport, QueueShared, WriterCounters, WriterReport};
use hdrhistogram::serialization::interval_log::IntervalLogWriterBuilder;
use hdrhistogram::serialization::V2DeflateSerializer;
use hdrhistogram::Histogram;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

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

/// The output files a capture writes: one, or one per queue.
fn output_paths(config: &CaptureConfig, queues: &[(u32, u16)]) -> Vec<PathBuf> {
    if !config.per_queue_files {
        return vec![config.output.clone()];
    }
    let path = &config.output;
    // /dev/null takes every queue's records (a file name built on it would
    // land in /dev). Not with rotation, whose names are built from the path.
    if is_dev_null(path) && !config.rotation.rotates() {
        return vec![path.clone(); queues.len()];
    }
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let ext = path
        .extension()
        .map(|e| format!(".{}", e.to_string_lossy()))
        .unwrap_or_default();
    queues
        .iter()
        .map(|(port, queue)| path.with_file_name(format!("{stem}-port{port}-q{queue}{ext}")))
        .collect()
}

fn is_dev_null(path: &Path) -> bool {
    use std::os::unix::fs::FileTypeExt;
    let char_device = |p: &Path| {
        p.metadata()
            .ok()
            .filter(|m| m.file_type().is_char_device())
            .map(|m| std::os::unix::fs::MetadataExt::rdev(&m))
    };
    let device = char_device(path);
    device.is_some() && device == char_device(Path::new("/dev/null"))
}

/// Checks before DPDK starts that the output can be created where asked.
fn precheck_output(path: &Path) -> Result<(), ZcapError> {
    match path.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(dir) if !dir.is_dir() => Err(ZcapError::usage(format!(
            "-w: cannot create {}: directory {} does not exist",
            path.display(),
            dir.display()
        ))),
        _ => Ok(()),
    }
}

/// Creates every output file, or none: on failure the ones made are removed.
fn create_sinks(config: &CaptureConfig, paths: &[PathBuf]) -> Result<Vec<FileSink>, ZcapError> {
    let mut sinks = Vec::new();
    for path in paths {
        let existed = path.exists();
        match FileSink::create(path, config.buffer_bytes, config.flush_interval) {
            Ok(sink) => sinks.push((sink, existed)),
            Err(err) => {
                for (sink, existed) in sinks {
                    remove_if_ours(sink.path(), existed);
                }
                return Err(ZcapError::usage(format!(
                    "-w: cannot create {}: {err}",
                    path.display()
                )));
            }
        }
    }
    Ok(sinks.into_iter().map(|(s, _)| s).collect())
}

fn remove_if_ours(path: &Path, existed: bool) {
    if !existed && path.metadata().map(|m| m.is_file()).unwrap_or(false) {
        let _ = std::fs::remove_file(path);
    }
}

/// Runs one capture. `on_tick` is called once per stats interval.
pub fn run_capture(
    config: &CaptureConfig,
    control: Arc<Control>,
    on_tick: &mut dyn FnMut(&Tick),
) -> Result<CaptureOutcome, ZcapError> {
    config.validate().map_err(ZcapError::usage)?;
    precheck_output(&config.output)?;
    let mut json_out = match &config.stats_json {
        Some(path) => Some(File::create(path).map_err(|e| {
            ZcapError::usage(format!(
                "--stats-json: cannot create {}: {e}",
                path.display()
            ))
        })?),
        None => None,
    };
    // Compile the filter before DPDK starts: a bad one costs nothing to report.
    let classic = config
        .filter
        .as_deref()
        .map(|expr| ClassicFilter::compile(expr, config.snaplen))
        .transpose()
        .map_err(|e| {
            ZcapError::usage(format!(
                "bad filter {:?}: {e}",
                config.filter.as_deref().unwrap_or("")
            ))
        })?;
    let mut hlog_file = match &config.latency_log {
        Some(path) => Some(File::create(path).map_err(|e| {
            ZcapError::usage(format!(
                "--latency-log: cannot create {}: {e}",
                path.display()
            ))
        })?),
        None => None,
    };
    // Created now, written at the end: a bad path costs nothing yet.
    let mut plot_file = match &config.latency_plot {
        Some(path) => Some(File::create(path).map_err(|e| {
            ZcapError::usage(format!(
                "--latency-plot: cannot create {}: {e}",
                path.display()
            ))
        })?),
        None => None,
    };
    let mut hlog_serializer = V2DeflateSerializer::new();
    let mut hlog_writer = match hlog_file.as_mut() {
        Some(file) => Some(
            IntervalLogWriterBuilder::new()
                .add_comment("zcap rx→written latency, ns")
                .with_start_time(std::time::SystemTime::now())
                .with_base_time(std::time::SystemTime::now())
                .begin_log_with(file, &mut hlog_serializer)
                .map_err(|e| ZcapError::usage(format!("--latency-log: {e}")))?,
        ),
        None => None,
    };
    let writers = if config.per_queue_files {
        Writers::PerQueue
    } else {
        Writers::One
    };
    let ring_size = config.ring_size;
    let rx_desc = config.dpdk.rx_descriptors;
    let merge = !config.per_queue_files;
    let session = Session::open(&config.dpdk, writers, |queues| {
        let held = if merge && queues > 1 {
            MERGE_HOLD_LIMIT
        } else {
            0
        };
        default_pool_size(queues, rx_desc, ring_size, held)
    })?;
    let filter = classic
        .as_ref()
        .map(|c| c.load().map(Arc::new))
        .transpose()
        .map_err(|e| ZcapError::usage(e.to_string()))?;
    let tsc_hz = session.eal.tsc_hz();

    let start_ns = realtime_ns();
    let queue_ids: Vec<(u32, u16)> = session
        .queues
        .iter()
        .map(|q| (q.interface, q.rxq.queue_id()))
        .collect();
    // One rotation per file stream; each stream's first file is created now, so
    // an unwritable path is reported before capture starts.
    let mut rotations: Vec<Rotation> = output_paths(config, &queue_ids)
        .iter()
        .map(|template| Rotation::new(config.rotation.clone(), template))
        .collect();
    let first_paths: Vec<PathBuf> = rotations
        .iter_mut()
        .map(|r| r.next_path(start_ns))
        .collect();
    let mut sinks = create_sinks(config, &first_paths)?;

    let interfaces: Vec<PcapngInterface> = session
        .ports
        .iter()
        .map(|p| PcapngInterface {
            name: p.info().name.clone(),
            description: format!("DPDK port {} ({})", p.info().id, p.info().driver),
        })
        .collect();
    let encoder = Encoder::new(
        config.format,
        config.precision,
        config.snaplen,
        interfaces.clone(),
    );
    let limit = config.count.map(|n| Arc::new(CountLimit::new(n)));
    let finite = config.dpdk.interfaces.iter().all(|i| i.is_finite());
    // Never hold back more than the pool has to spare beyond the rings.
    let hold_limit = (MERGE_HOLD_LIMIT as usize).min(session.pool.size() as usize / 4);
    let reserve = replay_reserve(config, &session, hold_limit)?;

    // Rings and poll loops, one per queue.
    let mut polls = Vec::new();
    let mut feeds = Vec::new();
    let mut watches = Vec::new();
    let Session {
        queues,
        ports,
        pool,
        eal,
        poll_idle,
        writer_idle,
        writer_cpus,
        ..
    } = session;
    for (slot, idle) in queues.into_iter().zip(poll_idle) {
        let (producer, consumer) = stamped_ring(&eal, &pool, ring_size)
            .map_err(|e| ZcapError::usage(format!("--ring-size: {e}")))?;
        let shared = Arc::new(QueueShared::default());
        let port = &ports[slot.interface as usize];
        let source = TimeSource::for_driver(&port.info().driver);
        let burst_cycles = Mailbox::new();
        watches.push(QueueWatch {
            shared: shared.clone(),
            ring: producer.monitor(),
            burst_cycles: burst_cycles.clone(),
            port: port.info().id,
            queue: slot.rxq.queue_id(),
            lcore: slot.lcore,
        });
        feeds.push(WriterFeed {
            ring: consumer,
            shared: shared.clone(),
            interface: slot.interface,
            queue: slot.rxq.queue_id(),
        });
        polls.push((
            slot.lcore,
            PollLoop {
                rxq: slot.rxq,
                ring: producer,
                shared,
                stamper: Stamper::new(source, tsc_hz, rdtsc()),
                control: control.clone(),
                burst_size: config.dpdk.burst,
                ring_full: if finite {
                    RingFullPolicy::Wait
                } else {
                    RingFullPolicy::Drop
                },
                idle,
                filter: filter.clone(),
                burst_cycles,
                pool_guard: finite.then(|| PoolGuard {
                    pool: pool.clone(),
                    reserve,
                }),
            },
        ));
    }

    // Writers: one for everything (merged), or one per queue.
    let feed_groups: Vec<Vec<WriterFeed>> = if config.per_queue_files {
        feeds.into_iter().map(|f| vec![f]).collect()
    } else {
        vec![feeds]
    };
    let mut writer_counters: Vec<(Arc<WriterCounters>, Mailbox)> = Vec::new();
    let mut writer_threads: Vec<JoinHandle<WriterOutcome>> = Vec::new();
    for (index, group) in feed_groups.into_iter().enumerate() {
        let counters = Arc::new(WriterCounters::default());
        let latency = Mailbox::new();
        let merge = group.len() > 1;
        let writer = Writer {
            feeds: group,
            sink: sinks.remove(0),
            rotation: rotations.remove(0),
            encoder: encoder.clone(),
            snaplen: config.snaplen,
            counters: counters.clone(),
            control: control.clone(),
            limit: limit.clone(),
            merge,
            hold_limit,
            interfaces: interfaces.len(),
            start_ns,
            tsc_hz,
            latency: latency.clone(),
            idle: writer_idle[index],
            hand_off_only: config.hand_off_only,
        };
        let cpu = writer_cpus[index];
        let spawned = std::thread::Builder::new()
            .name(format!("zcap-writer-{index}"))
            .spawn(move || {
                // Off the poll loops' CPUs: a writer sharing one would halve both.
                core_affinity::set_for_current(core_affinity::CoreId { id: cpu });
                writer.run()
            });
        let handle = match spawned {
            Ok(handle) => handle,
            Err(e) => {
                // No poll loop runs yet: let the writers already started close
                // their files, then report.
                control.request_abort();
                control.set_producers_done();
                for started in writer_threads {
                    let _ = started.join();
                }
                return Err(ZcapError::runtime(format!(
                    "cannot start a writer thread: {e}"
                )));
            }
        };
        writer_counters.push((counters, latency));
        writer_threads.push(handle);
    }

    let mut monitor = Monitor::new(watches, writer_counters, ports, pool.driver_name());
    register_telemetry(monitor.sources());
    let mut tasks: Vec<LcoreTask> = Vec::new();
    for (lcore, poll) in polls {
        match launch(lcore, move || poll.run()) {
            Ok(task) => tasks.push(task),
            Err(e) => {
                control.fail(format!("cannot start a poll loop: {e}"));
                break;
            }
        }
    }

    // The stats core: watch, report, decide when to stop.
    let mut log_interval = |report: &CaptureReport, interval: &Histogram<u64>| {
        if let Some(out) = json_out.as_mut() {
            let _ = writeln!(out, "{}", report.to_json());
        }
        if let Some(log) = hlog_writer.as_mut() {
            let length = report.interval.as_ref().map_or(0.0, |i| i.duration_s);
            let start = (report.duration_s - length).max(0.0);
            let _ = log.write_histogram(
                interval,
                Duration::from_secs_f64(start),
                Duration::from_secs_f64(length),
                None,
            );
        }
    };
    let mut on_interval = |monitor: &mut Monitor| {
        let ring_fill = monitor.sources().ring_fill();
        let (report, interval) = monitor.interval();
        log_interval(&report, interval);
        on_tick(&Tick {
            report: &report,
            ring_fill,
        });
    };
    supervise(
        config,
        &control,
        &mut monitor,
        &writer_threads,
        finite,
        &mut on_interval,
    );

    // Drain: poll loops stop, then writers empty the rings and close files.
    for task in tasks {
        let lcore = task.lcore();
        if let Err(panic) = task.join() {
            control.fail(format!("the poll loop on lcore {lcore} failed: {panic}"));
        }
    }
    control.set_producers_done();
    let mut files = Vec::new();
    let mut writers = Vec::new();
    for (handle, &cpu) in writer_threads.into_iter().zip(&writer_cpus) {
        match handle.join() {
            Ok(outcome) => {
                files.extend(outcome.paths);
                writers.push(WriterReport {
                    cpu,
                    time: outcome.cpu_time,
                });
            }
            Err(_) => {
                // Still listed, so the list's positions stay the writers' indexes.
                writers.push(WriterReport { cpu, time: None });
                control.fail("a writer thread panicked".to_owned());
            }
        }
    }
    telemetry::clear();
    let (mut report, interval, total_latency) = monitor.finish();
    report.files = files;
    report.writers = writers;
    report.tsc_hz = tsc_hz;
    if let (Some(path), Some(file)) = (&config.latency_plot, plot_file.as_mut()) {
        let svg = percentile_svg(&total_latency, "zcap: latency from receive to written");
        if let Err(e) = file.write_all(svg.as_bytes()) {
            control.fail(format!(
                "--latency-plot: cannot write {}: {e}",
                path.display()
            ));
        }
    }
    // The monitor held the last port handles: the ports are stopped and closed
    // now, and their descriptors gave back their mbufs.
    report.mbufs_in_use_at_exit = u64::from(pool.in_use());
    drop(pool);
    drop(eal);
    log_interval(&report, &interval);
    Ok(CaptureOutcome {
        report,
        failure: control.failure(),
    })
}

/// Free mbufs a replay's poll loops need before each receive: one burst of
/// each at once. The pool must hold that beside what the merge may hold back,
/// or the poll loops would wait for mbufs that never come back.
fn replay_reserve(
    config: &CaptureConfig,
    session: &Session,
    hold_limit: usize,
) -> Result<u32, ZcapError> {
    let reserve = (config.dpdk.burst * session.queues.len()) as u32;
    let pool = session.pool.size();
    let needed = reserve + hold_limit as u32 + 1;
    if config.dpdk.interfaces.iter().all(|i| i.is_finite()) && pool < needed {
        return Err(ZcapError::usage(format!(
            "--mbufs: a replay over {} queues with --burst {} needs a pool of at least {needed} mbufs, not {pool}",
            session.queues.len(),
            config.dpdk.burst
        )));
    }
    Ok(reserve)
}

/// The stats core: ticks every [`CONTROL_TICK`], reports every stats
/// interval, and returns once the stop policy names a reason to stop (which
/// it has then asked every thread for).
fn supervise(
    config: &CaptureConfig,
    control: &Control,
    monitor: &mut Monitor,
    writers: &[JoinHandle<WriterOutcome>],
    finite: bool,
    on_interval: &mut dyn FnMut(&mut Monitor),
) -> StopReason {
    let started = Instant::now();
    let mut policy = StopPolicy::new(config.duration, finite.then_some(config.idle_stop));
    let period = config.stats_interval;
    let mut next_tick = period.map(|p| started + p);
    loop {
        std::thread::sleep(CONTROL_TICK);
        let now = Instant::now();
        let snapshot = stop_snapshot(control, monitor.sources(), writers);
        if let Some(reason) = policy.check(now - started, &snapshot) {
            match reason {
                // Writers end only after the poll loops: this one died.
                StopReason::WriterDied => {
                    control.fail("a writer thread stopped unexpectedly".to_owned())
                }
                _ => control.request_stop(),
            }
            return reason;
        }
        if let (Some(due), Some(period)) = (next_tick, period) {
            if now >= due {
                on_interval(monitor);
                next_tick = Some(due + period);
            }
        }
    }
}

/// What the stop policy looks at, read from the shared counters.
fn stop_snapshot(
    control: &Control,
    sources: &Sources,
    writers: &[JoinHandle<WriterOutcome>],
) -> Snapshot {
    let queues = &sources.queues;
    let sum = |f: fn(&QueueWatchHandle) -> u64| queues.iter().map(f).sum();
    Snapshot {
        stop_requested: control.stop_requested(),
        count_reached: control.count_reached(),
        writer_finished: writers.iter().any(|w| w.is_finished()),
        rx_packets: sum(|q| q.shared.counters.rx_packets.get()),
        rings_empty: queues.iter().all(|q| q.ring.occupancy() == 0),
        pool_waits: sum(|q| q.shared.counters.pool_waits.get()),
    }
}

/// Serves `/zcap/stats` and `/zcap/queues` to DPDK telemetry clients.
fn register_telemetry(sources: &Sources) {
    let started = Instant::now();
    let totals = sources.clone();
    let stats: telemetry::Provider = Box::new(move || {
        let r = totals.snapshot(started.elapsed().as_secs_f64());
        vec![
            ("packets_received".into(), r.packets_received),
            ("bytes_received".into(), r.bytes_received),
            ("packets_written".into(), r.packets_written),
            ("bytes_written".into(), r.bytes_written),
            ("packets_filtered".into(), r.packets_filtered),
            ("drops_imissed".into(), r.drops.imissed),
            ("drops_rx_nombuf".into(), r.drops.rx_nombuf),
            ("drops_ierrors".into(), r.drops.ierrors),
            ("drops_ring_full".into(), r.drops.ring_full),
            ("drops_writer".into(), r.drops.writer),
            ("drops_count_limit".into(), r.drops.count_limit),
        ]
    });
    let per_queue = sources.clone();
    let queues: telemetry::Provider = Box::new(move || {
        let r = per_queue.snapshot(0.0);
        r.queues
            .iter()
            .flat_map(|q| {
                let name = format!("port{}_q{}", q.port, q.queue);
                [
                    (format!("{name}_packets_received"), q.packets_received),
                    (format!("{name}_filtered"), q.filtered),
                    (format!("{name}_ring_full"), q.ring_full),
                    (format!("{name}_bursts"), q.bursts),
                ]
            })
            .collect()
    });
    // Telemetry is a convenience: a failure to register costs the capture nothing.
    let _ = telemetry::register(
        "/zcap/stats",
        "zcap capture totals and drops by cause",
        stats,
    );
    let _ = telemetry::register("/zcap/queues", "zcap per-queue counters", queues);
}
