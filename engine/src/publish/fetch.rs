//! `zcap-extract --stream`: the packets of a JetStream stream that fall in a
//! time window and match an expression, merged into one file in time order.
//! One ordered consumer per subject (writer), started by time; the merge
//! and the matching are the file archive's.

use super::block::{records, BlockMeta};
use super::link::connect_client;
use super::sink::MESSAGE_BYTES;
use super::target::{parse_subject, StreamTarget, SUBJECTS};
use crate::archive::extract::{merge, MatchSource, Matcher, Output, Shape};
use crate::archive::reader::Packet;
use crate::archive::{ExtractSpec, ExtractSummary};
use crate::format::pcapng::Interface as OutInterface;
use crate::ZcapError;
use async_nats::jetstream::{self, consumer, stream::Stream};
use futures_util::StreamExt;
use std::collections::VecDeque;
use std::time::Duration;
use tokio::sync::mpsc;

/// How long a subject's requests are retried while they fail.
const RIDE_OUT: Duration = Duration::from_secs(30);

/// A subject that sends nothing for this long, with messages still to
/// come, is given up (damage), not waited on for ever.
const QUIET_LIMIT: Duration = Duration::from_secs(30);

/// Bytes of messages all subjects' pulls may ask for at once: half of what
/// nats-server buffers for one client by default (64 MB), so the server
/// never takes zcap-extract for a slow consumer.
const PULL_BYTES: usize = 32 << 20;

/// Batches of packets a subject's reader may have ready ahead of the merge.
const BATCHES_AHEAD: usize = 8;

/// What to extract from a stream, and where to.
#[derive(Debug, Clone)]
pub struct StreamExtract {
    pub target: StreamTarget,
    /// Only this sensor's subjects; `None`: every sensor's.
    pub sensor: Option<String>,
    /// The window, expression and output, as for files (its `inputs` are
    /// not read).
    pub select: ExtractSpec,
}

/// One message's packets, with what its headers said.
struct Batch {
    meta: BlockMeta,
    packets: Vec<Packet>,
}

/// Runs an extraction from a stream. Usage errors (exit 2: no server, no
/// stream, a bad expression) come before anything is written.
pub fn extract_stream(spec: &StreamExtract) -> Result<ExtractSummary, ZcapError> {
    let select = &spec.select;
    let (from, to) = (
        select.from_ns.unwrap_or(0),
        select.to_ns.unwrap_or(u64::MAX),
    );
    if from >= to {
        return Err(ZcapError::usage("--from must be before --to"));
    }
    let expression = select.expression.clone().filter(|e| !e.trim().is_empty());
    let mut judge = Matcher::new(expression, from, to)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| ZcapError::runtime(format!("cannot start the NATS runtime: {e}")))?;
    let (stream, subjects) = runtime.block_on(open(spec)).map_err(ZcapError::usage)?;
    let mut sources: Vec<SubjectSource> = Vec::new();
    let mut readers = Vec::new();
    let batch = (PULL_BYTES / subjects.len().max(1) / MESSAGE_BYTES).clamp(1, 16);
    for subject in &subjects {
        let (tx, rx) = mpsc::channel(BATCHES_AHEAD);
        readers.push(read_subject(
            stream.clone(),
            subject.clone(),
            (from, to),
            batch,
            tx,
        ));
        sources.push(SubjectSource::new(rx));
    }
    // The readers run on their own thread; the merge pulls from them here.
    let reading = std::thread::spawn(move || {
        runtime.block_on(futures_util::future::join_all(readers));
    });
    let mut summary = ExtractSummary {
        files: sources.len(),
        ..Default::default()
    };
    let result = extract_from(select, &mut sources, &mut judge, &mut summary);
    for source in &mut sources {
        summary.records_read += source.read;
        source.close();
    }
    let _ = reading.join();
    result.map(|()| summary)
}

fn extract_from(
    spec: &ExtractSpec,
    sources: &mut [SubjectSource],
    judge: &mut Matcher,
    summary: &mut ExtractSummary,
) -> Result<(), ZcapError> {
    for source in sources.iter_mut() {
        source.prime(summary);
        if let Some(meta) = source.meta {
            judge.filter_for(meta.link_type)?;
        }
    }
    let shapes: Vec<Shape> = sources.iter().map(SubjectSource::shape).collect();
    let out = Output::plan(spec.format, spec.precision, spec.output.as_deref(), &shapes)?;
    let mut writer = Output::open(spec.output.as_deref())?;
    let written = merge(sources, judge, &out, &mut writer, summary);
    out.finish(written, &mut writer)
}

/// Connects, finds the stream and lists its zcap subjects (those of
/// `--sensor` only, if given), ordered by sensor, port and queue.
async fn open(spec: &StreamExtract) -> Result<(Stream, Vec<String>), String> {
    let client = connect_client(&spec.target, "zcap-extract").await?;
    let context = jetstream::new(client);
    let name = &spec.target.stream;
    let no_stream = || format!("no stream {name} on {}", spec.target.servers.join(","));
    // A cluster electing leaders times requests out for a while: ridden out.
    let found = riding_out(|| async {
        match context.get_stream(name).await {
            Ok(stream) => Ok(Some(stream)),
            Err(e) => match e.kind() {
                jetstream::context::GetStreamErrorKind::JetStream(js) if js.code() == 404 => {
                    Ok(None)
                }
                _ => Err(e),
            },
        }
    });
    let stream = found
        .await
        .map_err(|e| format!("stream {name}: {e}"))?
        .ok_or_else(no_stream)?;
    let filter = match &spec.sensor {
        Some(sensor) => format!("zcap.{sensor}.>"),
        None => SUBJECTS.to_owned(),
    };
    let subjects = riding_out(|| list_subjects(&stream, &filter))
        .await
        .map_err(|e| format!("stream {name}: {e}"))?;
    Ok((stream, subjects))
}

/// The stream's subjects under `filter` that zcap named, ordered by
/// sensor, port and queue.
async fn list_subjects(stream: &Stream, filter: &str) -> Result<Vec<String>, String> {
    let mut listing = stream
        .info_with_subjects(filter)
        .await
        .map_err(|e| e.to_string())?;
    let mut subjects = Vec::new();
    while let Some(entry) = listing.next().await {
        let (subject, _count) = entry.map_err(|e| e.to_string())?;
        if let Some(key) = parse_subject(&subject) {
            subjects.push((key, subject));
        }
    }
    subjects.sort();
    Ok(subjects.into_iter().map(|(_, s)| s).collect())
}

/// Reads one subject from the window's start to its last message (or the
/// first that begins at or after `to`), sending each message's packets.
async fn read_subject(
    stream: Stream,
    subject: String,
    window: (u64, u64),
    batch: usize,
    tx: mpsc::Sender<Result<Batch, String>>,
) {
    if let Err(damage) = read_messages(&stream, &subject, window, batch, &tx).await {
        let _ = tx.send(Err(format!("{subject}: {damage}"))).await;
    }
}

async fn read_messages(
    stream: &Stream,
    subject: &str,
    window: (u64, u64),
    batch: usize,
    tx: &mpsc::Sender<Result<Batch, String>>,
) -> Result<(), String> {
    let (from, to) = window;
    // The end is the subject's last message now: a live capture's later
    // messages are not waited for.
    let last = riding_out(|| stream.get_last_raw_message_by_subject(subject))
        .await?
        .sequence;
    let start = first_in_window(stream, subject, from, last).await?;
    if start > last {
        return Ok(());
    }
    let config = consumer::pull::OrderedConfig {
        filter_subject: subject.to_owned(),
        deliver_policy: consumer::DeliverPolicy::ByStartSequence {
            start_sequence: start,
        },
        // Few large messages per pull: every subject's pulls together stay
        // below what the server buffers for one client.
        max_batch: batch as i64,
        ..Default::default()
    };
    let consumer = riding_out(|| stream.create_consumer(config.clone())).await?;
    let mut messages = consumer.messages().await.map_err(|e| e.to_string())?;
    loop {
        let next = tokio::time::timeout(QUIET_LIMIT, messages.next()).await;
        let message = match next {
            Ok(Some(message)) => message.map_err(|e| e.to_string())?,
            Ok(None) => return Ok(()),
            Err(_) => return Err(format!("no message for {} s", QUIET_LIMIT.as_secs())),
        };
        let sequence = message.info().map_err(|e| e.to_string())?.stream_sequence;
        let meta =
            meta_of(message.headers.as_ref()).map_err(|e| format!("message {sequence}: {e}"))?;
        if meta.overlaps(from, to) {
            let packets = packets_of(&message.payload, &meta)
                .map_err(|e| format!("message {sequence}: {e}"))?;
            if tx.send(Ok(Batch { meta, packets })).await.is_err() {
                return Ok(());
            }
        }
        // A writer's messages follow its packets' order.
        if sequence >= last || meta.min_ns >= to {
            return Ok(());
        }
    }
}

/// Runs a request again while it fails, for up to [`RIDE_OUT`]: a cluster
/// that lost a node elects new leaders meanwhile, and its requests time out
/// until it has. The last error is returned after that.
async fn riding_out<T, E: std::fmt::Display, F, Fut>(mut request: F) -> Result<T, String>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
{
    let deadline = tokio::time::Instant::now() + RIDE_OUT;
    let mut wait = Duration::from_millis(100);
    loop {
        match request().await {
            Ok(value) => return Ok(value),
            Err(e) if tokio::time::Instant::now() + wait >= deadline => return Err(e.to_string()),
            Err(_) => {
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(2));
            }
        }
    }
}

fn meta_of(headers: Option<&async_nats::HeaderMap>) -> Result<BlockMeta, String> {
    BlockMeta::from_headers(|name| headers?.get(name).map(|v| v.as_str()))
}

/// The sequence of the subject's first message that ends at or after
/// `from`: a binary search over the subject's messages up to `last`, each
/// probe one message fetched (a writer's messages follow its packets'
/// order, so their times only grow with the sequence).
async fn first_in_window(
    stream: &Stream,
    subject: &str,
    from: u64,
    last: u64,
) -> Result<u64, String> {
    let mut search = SeqSearch::new(1, last + 1);
    while let Some(probe) = search.probe() {
        let message = riding_out(|| {
            stream
                .raw_message_builder()
                .next_by_subject(subject)
                .sequence(probe)
                .send()
        })
        .await?;
        let meta = meta_of(Some(&message.headers))
            .map_err(|e| format!("message {}: {e}", message.sequence))?;
        search.found(probe, message.sequence, meta.max_ns < from);
    }
    Ok(search.start())
}

/// A binary search over a subject's messages, by stream sequence, for the
/// first that is not before the window. Sequences hold other subjects'
/// messages too: a probe at `n` finds the subject's next message at or
/// after `n`. Invariants: every message of the subject below `lo` is
/// before the window; the first one at or after `hi` is not (or there is
/// none).
#[derive(Debug)]
struct SeqSearch {
    lo: u64,
    hi: u64,
}

impl SeqSearch {
    fn new(lo: u64, hi: u64) -> Self {
        SeqSearch { lo, hi }
    }

    /// The sequence to probe next; `None` once found.
    fn probe(&self) -> Option<u64> {
        (self.lo < self.hi).then(|| self.lo + (self.hi - self.lo) / 2)
    }

    /// Probing `probe` found the subject's message at `sequence`.
    fn found(&mut self, probe: u64, sequence: u64, before_window: bool) {
        if before_window {
            self.lo = sequence + 1;
        } else {
            self.hi = probe;
        }
    }

    /// Where reading starts.
    fn start(&self) -> u64 {
        self.lo
    }
}

fn packets_of(payload: &[u8], meta: &BlockMeta) -> Result<Vec<Packet>, String> {
    records(payload, meta.micro)
        .map(|record| {
            let record = record?;
            Ok(Packet {
                ts_ns: record.ts_ns,
                orig_len: record.orig_len,
                interface: 0,
                queue: None,
                rss_hash: None,
                data: record.data.to_vec(),
            })
        })
        .collect()
}

/// One subject's packets, as the merge pulls them.
struct SubjectSource {
    rx: Option<mpsc::Receiver<Result<Batch, String>>>,
    /// What the first message said (`None`: none in the window).
    meta: Option<BlockMeta>,
    packets: VecDeque<Packet>,
    read: u64,
}

impl SubjectSource {
    fn new(rx: mpsc::Receiver<Result<Batch, String>>) -> Self {
        SubjectSource {
            rx: Some(rx),
            meta: None,
            packets: VecDeque::new(),
            read: 0,
        }
    }

    /// Waits for the first batch, to learn the link type and precision.
    fn prime(&mut self, summary: &mut ExtractSummary) {
        if let Err(damage) = self.receive() {
            summary.damaged.push(damage);
        }
    }

    /// Takes the next batch; false at the end.
    fn receive(&mut self) -> Result<bool, String> {
        let Some(rx) = self.rx.as_mut() else {
            return Ok(false);
        };
        match rx.blocking_recv() {
            Some(Ok(batch)) => {
                self.meta.get_or_insert(batch.meta);
                self.read += batch.packets.len() as u64;
                self.packets.extend(batch.packets);
                Ok(true)
            }
            Some(Err(damage)) => {
                self.rx = None;
                Err(damage)
            }
            None => {
                self.rx = None;
                Ok(false)
            }
        }
    }

    fn shape(&self) -> Shape {
        let interfaces = self.meta.map(|meta| {
            let iface = OutInterface {
                name: String::new(),
                description: String::new(),
                link_type: meta.link_type,
                comment: None,
            };
            (iface, meta.snaplen)
        });
        Shape {
            interfaces: interfaces.into_iter().collect(),
            micro: self.meta.is_some_and(|m| m.micro),
        }
    }

    /// Stops its reader.
    fn close(&mut self) {
        self.rx = None;
    }
}

impl MatchSource for SubjectSource {
    fn next_match(&mut self, judge: &mut Matcher) -> Result<Option<Packet>, String> {
        use crate::archive::source::Judge;
        loop {
            while let Some(packet) = self.packets.pop_front() {
                let link_type = self.meta.map_or(1, |m| m.link_type);
                if judge.accepts(link_type, &packet) {
                    return Ok(Some(packet));
                }
            }
            if !self.receive()? {
                return Ok(None);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the search over `subject`: stream sequences holding the
    /// subject's messages, each with whether it is before the window.
    fn search(subject: &[(u64, bool)], last: u64) -> (u64, usize) {
        let mut search = SeqSearch::new(1, last + 1);
        let mut probes = 0;
        while let Some(probe) = search.probe() {
            probes += 1;
            let &(seq, before) = subject
                .iter()
                .find(|(s, _)| *s >= probe)
                .expect("a next message");
            search.found(probe, seq, before);
        }
        (search.start(), probes)
    }

    #[test]
    fn the_search_finds_the_first_message_not_before_the_window() {
        // Two subjects' messages interleaved: this one's at odd sequences.
        let messages: Vec<(u64, bool)> = (0..500).map(|i| (2 * i + 1, i < 321)).collect();
        let (start, probes) = search(&messages, 999);
        assert!(
            start > 641 && start <= 643,
            "starts at the subject's message 643: {start}"
        );
        assert!(probes <= 11, "{probes} probes for 1000 sequences");
        // All before: reading starts past the last (the last is read).
        let all_before: Vec<(u64, bool)> = (1..=10).map(|s| (s, true)).collect();
        assert_eq!(search(&all_before, 10).0, 11);
        let none_before: Vec<(u64, bool)> = (5..=10).map(|s| (s, false)).collect();
        assert_eq!(search(&none_before, 10).0, 1);
    }
}
