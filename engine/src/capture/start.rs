//! Starting a capture on an open DPDK session: each queue's ring and poll
//! loop, each writer with its first file, the monitor over them all. Every
//! queue and writer is described by one struct of its own, built in one
//! place: nothing is matched up by position later.

use super::links::Link;
use super::outputs::{create_sinks, disk_budget, output_paths};
use super::ports::{port_reports, stamps_described, time_sources};
use super::published::{OpenStream, Publishers};
use super::run_as::become_user;
use super::telemetry_provider::register_telemetry;
use super::MERGE_HOLD_LIMIT;
use crate::account::Account;
use crate::config::CaptureConfig;
use crate::dpdk::{
    launch, rdtsc, stamped_ring, Eal, Filter, LcoreTask, Mempool, Port, RingProducer,
};
use crate::error::{Field, ZcapError};
use crate::format::pcapng::Interface as PcapngInterface;
use crate::format::{Encoder, FileFormat, TsPrecision, LINKTYPE_ETHERNET};
use crate::monitor::{Monitor, QueueWatch};
use crate::output::SharedBudget;
use crate::output::{IndexSpec, Rotation};
use crate::pipeline::backoff::IdlePolicy;
use crate::pipeline::clock::realtime_ns;
use crate::pipeline::control::{Control, CountLimit};
use crate::pipeline::poll::{PollLoop, RingFullPolicy, HAND_OFF_MAX};
use crate::pipeline::rx::{PoolGuard, QueueSource};
use crate::pipeline::stamp::{Stamper, TimeSource};
use crate::pipeline::writer::{Writer, WriterFeed, WriterOutcome, LIVE_MERGE_STALL};
use crate::publish::Mirror;
use crate::session::{QueueSlot, Session};
use crate::stats::histogram::Mailbox;
use crate::stats::{QueueShared, WriterCounters};
use crate::storage::FileSink;
use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// A capture's poll loop: a stamped, filtered queue into the writer's ring.
type CapturePoll = PollLoop<QueueSource, RingProducer>;

/// Where records go besides files, and who the capture runs as.
pub(crate) struct Outputs<'a> {
    /// `--publish`: the stream, connected.
    pub(crate) stream: Option<&'a OpenStream>,
    /// `-Z USER`.
    pub(crate) account: Option<&'a Account>,
}

/// A capture whose writers and poll loops run.
pub(crate) struct Running {
    pub(crate) polls: Vec<LcoreTask>,
    pub(crate) writers: Vec<StartedWriter>,
    pub(crate) monitor: Monitor,
    pub(crate) pool: Arc<Mempool>,
    pub(crate) eal: Eal,
    pub(crate) tsc_hz: u64,
    /// Every source is a replayed file: the capture ends by itself.
    pub(crate) finite: bool,
}

/// One writer thread and the CPU it was placed on.
pub(crate) struct StartedWriter {
    pub(crate) thread: JoinHandle<WriterOutcome>,
    pub(crate) cpu: usize,
}

/// What every queue's poll loop and every writer share.
struct Common {
    control: Arc<Control>,
    filter: Option<Arc<Filter>>,
    tsc_hz: u64,
    finite: bool,
    reserve: u32,
    hold_limit: usize,
    start_ns: u64,
    /// Each port's, in `-i` order.
    time_sources: Vec<TimeSource>,
    /// Where the writers' file-system work runs (see `Session`).
    helper_cpu: Option<usize>,
}

/// One queue's poll loop, the writer's end of its ring, and what the
/// monitor watches of it.
struct QueuePipeline {
    lcore: u32,
    poll: CapturePoll,
    feed: WriterFeed,
    watch: QueueWatch,
}

/// One writer, before its thread starts.
struct WriterSpec {
    feeds: Vec<WriterFeed>,
    first_file: FileSink,
    rotation: Rotation,
    cpu: usize,
    idle: IdlePolicy,
    budget: Option<SharedBudget>,
    /// `-w` with `--publish`: the copy of its records for JetStream.
    mirror: Option<Mirror>,
}

/// Starts writers, then poll loops; on failure nothing is left running.
pub(crate) fn start(
    config: &CaptureConfig,
    control: &Arc<Control>,
    session: Session,
    filter: Option<Arc<Filter>>,
    links: &[Link],
    outputs: Outputs,
) -> Result<Running, ZcapError> {
    let stream = outputs.stream;
    let finite = config.dpdk.replays_only();
    // Never hold back more than the pool has to spare beyond the rings.
    let hold_limit = (MERGE_HOLD_LIMIT as usize).min(session.pool.size() as usize / 4);
    let common = Common {
        control: control.clone(),
        filter,
        tsc_hz: session.eal.tsc_hz(),
        finite,
        reserve: replay_reserve(config, &session, hold_limit, finite)?,
        hold_limit,
        start_ns: realtime_ns(),
        time_sources: time_sources(config, &session.ports, &session.port_setups),
        helper_cpu: session.helper_cpu,
    };
    let (encoder, interfaces) = encoder_for(config, &session.ports, links, &common.time_sources);
    let mut specs = writer_specs(config, &session, &common, &encoder, stream)?;
    let first_files: Vec<PathBuf> = specs
        .iter()
        .filter(|s| !s.first_file.is_published())
        .map(|s| s.first_file.path().to_owned())
        .collect();
    // The ports run and the first files are open; no thread of the capture
    // has started yet, so every one of them (io_uring's workers too) is USER.
    if let Some(account) = outputs.account {
        become_user(account, config, &session.eal, &first_files).map_err(ZcapError::runtime)?;
    }
    let port_reports = port_reports(&session.ports, &session.port_setups, &common.time_sources);
    let Session {
        queues,
        ports,
        pool,
        eal,
        poll_idle,
        ..
    } = session;
    let mut polls = Vec::new();
    let mut watches = Vec::new();
    for (index, (slot, idle)) in queues.into_iter().zip(poll_idle).enumerate() {
        let q = queue_pipeline(config, &common, &eal, &pool, &ports, slot, idle)?;
        specs[writer_of(config, index)].feeds.push(q.feed);
        polls.push((q.lcore, q.poll));
        watches.push(q.watch);
    }
    let (writers, writer_counters) = start_writers(config, &common, specs, &encoder, interfaces)?;
    let pool_driver = pool.driver_name();
    let monitor = Monitor::new(watches, writer_counters, ports, pool_driver, port_reports);
    register_telemetry(monitor.sources());
    let polls = launch_polls(polls, control);
    Ok(Running {
        polls,
        writers,
        monitor,
        pool,
        eal,
        tsc_hz: common.tsc_hz,
        finite,
    })
}

/// What the monitor watches of a writer: its counters and latency mailbox.
type WriterWatch = (Arc<WriterCounters>, Mailbox);

/// Starts one writer thread per spec; returns them with what the monitor
/// watches of each.
fn start_writers(
    config: &CaptureConfig,
    common: &Common,
    specs: Vec<WriterSpec>,
    encoder: &Encoder,
    interfaces: usize,
) -> Result<(Vec<StartedWriter>, Vec<WriterWatch>), ZcapError> {
    let limit = config.count.map(|n| Arc::new(CountLimit::new(n)));
    let mut writers = Vec::new();
    let mut watched = Vec::new();
    for (index, spec) in specs.into_iter().enumerate() {
        let counters = Arc::new(WriterCounters::default());
        let latency = Mailbox::new();
        let writer = Writer {
            feeds: spec.feeds,
            sink: spec.first_file,
            rotation: spec.rotation,
            encoder: encoder.clone(),
            snaplen: config.snaplen,
            counters: counters.clone(),
            control: common.control.clone(),
            limit: limit.clone(),
            merge: !config.per_queue_files,
            hold_limit: common.hold_limit,
            // A replay waits for every queue; a live queue may go quiet.
            merge_stall: if common.finite {
                Duration::MAX
            } else {
                LIVE_MERGE_STALL
            },
            interfaces,
            start_ns: common.start_ns,
            tsc_hz: common.tsc_hz,
            latency: latency.clone(),
            idle: spec.idle,
            hand_off_only: config.hand_off_only,
            budget: spec.budget,
            mirror: spec.mirror,
            helper_cpu: common.helper_cpu,
            index: config.indexes().then(|| IndexSpec {
                ethernet: (0..interfaces)
                    .map(|i| encoder.link_type(i) == LINKTYPE_ETHERNET)
                    .collect(),
                micro: config.format == FileFormat::Pcap && config.precision == TsPrecision::Micro,
            }),
        };
        let started = spawn_writer(index, spec.cpu, writer, &common.control, &mut writers)?;
        writers.push(started);
        watched.push((counters, latency));
    }
    Ok((writers, watched))
}

/// Which writer drains queue `index`: the only one, or its own.
fn writer_of(config: &CaptureConfig, index: usize) -> usize {
    if config.per_queue_files {
        index
    } else {
        0
    }
}

/// Free mbufs a replay's poll loops need before each receive: one burst of
/// each at once. The pool must hold that beside what the merge may hold back,
/// or the poll loops would wait for mbufs that never come back.
fn replay_reserve(
    config: &CaptureConfig,
    session: &Session,
    hold_limit: usize,
    finite: bool,
) -> Result<u32, ZcapError> {
    let reserve = (config.dpdk.burst * session.queues.len()) as u32;
    let pool = session.pool.size();
    let needed = reserve + hold_limit as u32 + 1;
    if finite && pool < needed {
        let queues = session.queues.len();
        let burst = config.dpdk.burst;
        return Err(ZcapError::config(
            Field::Mbufs,
            format!("a replay over {queues} queues in bursts of {burst} needs a pool of at least {needed} mbufs, not {pool}"),
        ));
    }
    Ok(reserve)
}

/// The record encoder, describing every port with its link type (pcapng),
/// and the port count.
fn encoder_for(
    config: &CaptureConfig,
    ports: &[Port],
    links: &[Link],
    sources: &[TimeSource],
) -> (Encoder, usize) {
    let interfaces: Vec<PcapngInterface> = ports
        .iter()
        .zip(links)
        .zip(sources)
        .map(|((p, link), source)| PcapngInterface {
            name: p.info().name.clone(),
            description: format!(
                "DPDK port {} ({}); {}",
                p.info().id,
                p.info().driver,
                stamps_described(source)
            ),
            link_type: link.link_type,
            comment: Some(stamps_described(source).to_owned()),
        })
        .collect();
    let count = interfaces.len();
    let encoder = Encoder::new(config.format, config.precision, config.snaplen, interfaces);
    (encoder, count)
}

/// One spec per writer, each with its first file created now, so that an
/// unwritable path is reported before capture starts.
fn writer_specs(
    config: &CaptureConfig,
    session: &Session,
    common: &Common,
    encoder: &Encoder,
    stream: Option<&OpenStream>,
) -> Result<Vec<WriterSpec>, ZcapError> {
    let start_ns = common.start_ns;
    let queue_ids: Vec<(u32, u16)> = session
        .queues
        .iter()
        .map(|q| (q.interface, q.rxq.queue_id()))
        .collect();
    let mut rotations: Vec<Rotation> = output_paths(config, &queue_ids)
        .iter()
        .map(|template| Rotation::new(config.rotation.clone(), template))
        .collect();
    let first_paths: Vec<_> = rotations
        .iter_mut()
        .map(|r| r.next_path(start_ns))
        .collect();
    let budget = disk_budget(config, &first_paths)?;
    let publishers = stream.map(|stream| {
        // Beside the writers, off the poll loops' CPUs.
        if let Some(&cpu) = session.writer_cpus.first() {
            stream.link.pin_to(cpu);
        }
        Publishers {
            config,
            stream,
            encoder,
            control: &common.control,
            start_ns,
        }
    });
    let (sinks, mut mirrors) = match &publishers {
        Some(p) if !config.publish.as_ref().is_some_and(|p| p.files) => {
            (p.sinks(&queue_ids), Vec::new())
        }
        // Files, and with --publish a copy of each writer's (one queue's)
        // records for JetStream.
        _ => {
            let mirrors = queue_ids
                .iter()
                .map(|&(port, queue)| publishers.as_ref().map(|p| p.mirror(port, queue)));
            (create_sinks(config, &first_paths)?, mirrors.collect())
        }
    };
    mirrors.resize_with(sinks.len(), || None);
    let placement = session.writer_cpus.iter().zip(&session.writer_idle);
    Ok(sinks
        .into_iter()
        .zip(rotations)
        .zip(placement)
        .zip(mirrors)
        .map(
            |(((first_file, rotation), (&cpu, &idle)), mirror)| WriterSpec {
                feeds: Vec::new(),
                first_file,
                rotation,
                cpu,
                idle,
                budget: budget.clone(),
                mirror,
            },
        )
        .collect())
}

/// The ring, poll loop and watch of one queue.
fn queue_pipeline(
    config: &CaptureConfig,
    common: &Common,
    eal: &Eal,
    pool: &Arc<Mempool>,
    ports: &[Port],
    slot: QueueSlot,
    idle: IdlePolicy,
) -> Result<QueuePipeline, ZcapError> {
    let (producer, consumer) = stamped_ring(eal, pool, config.ring_size)
        .map_err(|e| ZcapError::config(Field::RingSize, e.to_string()))?;
    let shared = Arc::new(QueueShared::default());
    let port = &ports[slot.interface as usize];
    let queue = slot.rxq.queue_id();
    let burst_cycles = Mailbox::new();
    let watch = QueueWatch {
        shared: shared.clone(),
        ring: producer.monitor(),
        burst_cycles: burst_cycles.clone(),
        port: port.info().id,
        queue,
        lcore: slot.lcore,
    };
    let feed = WriterFeed {
        ring: consumer,
        shared: shared.clone(),
        interface: slot.interface,
        queue,
    };
    let source = common.time_sources[slot.interface as usize];
    let pool_guard = common.finite.then(|| PoolGuard {
        pool: pool.clone(),
        reserve: common.reserve,
    });
    let stamper = Stamper::new(source, common.tsc_hz, rdtsc());
    let poll = PollLoop {
        source: QueueSource::new(slot.rxq, stamper, common.filter.clone(), pool_guard),
        ring: producer,
        shared,
        control: common.control.clone(),
        burst_size: config.dpdk.burst,
        gather: HAND_OFF_MAX,
        // A replayed file can wait for the writer; a live port cannot.
        ring_full: if common.finite {
            RingFullPolicy::Wait
        } else {
            RingFullPolicy::Drop
        },
        idle,
        burst_cycles,
    };
    Ok(QueuePipeline {
        lcore: slot.lcore,
        poll,
        feed,
        watch,
    })
}

/// Starts writer `index` on `cpu`. If the thread cannot start, the writers
/// already started close their files (no poll loop runs yet) and the error
/// is returned.
fn spawn_writer(
    index: usize,
    cpu: usize,
    writer: Writer,
    control: &Control,
    started: &mut Vec<StartedWriter>,
) -> Result<StartedWriter, ZcapError> {
    let spawned = std::thread::Builder::new()
        .name(format!("zcap-writer-{index}"))
        .spawn(move || {
            // Off the poll loops' CPUs: a writer sharing one would halve both.
            core_affinity::set_for_current(core_affinity::CoreId { id: cpu });
            writer.run()
        });
    match spawned {
        Ok(thread) => Ok(StartedWriter { thread, cpu }),
        Err(e) => {
            control.request_abort();
            control.set_producers_done();
            for writer in started.drain(..) {
                let _ = writer.thread.join();
            }
            Err(ZcapError::runtime(format!(
                "cannot start a writer thread: {e}"
            )))
        }
    }
}

/// Launches every poll loop on its lcore; one that cannot start fails the
/// capture (which then stops the ones that did).
fn launch_polls(polls: Vec<(u32, CapturePoll)>, control: &Control) -> Vec<LcoreTask> {
    let mut tasks = Vec::new();
    for (lcore, poll) in polls {
        match launch(lcore, move || poll.run()) {
            Ok(task) => tasks.push(task),
            Err(e) => {
                control.fail(format!("cannot start a poll loop: {e}"));
                break;
            }
        }
    }
    tasks
}
