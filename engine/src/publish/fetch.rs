//! `zcap-extract --stream`: the packets of a JetStream stream that fall in a
//! time window and match an expression, merged into one file in time order.
//! One ordered consumer per subject (writer), started by time; the merge
//! and the matching are the file archive's.

use super::block::{records, BlockMeta};
use super::link::connect_client;
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

/// Messages are stored after their packets were stamped: by the flush
/// interval, plus retries (at most a minute). A consumer starts this much
/// before `--from`, so a late message is not passed over.
const START_MARGIN: Duration = Duration::from_secs(300);

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
    for subject in &subjects {
        let (tx, rx) = mpsc::channel(BATCHES_AHEAD);
        readers.push(read_subject(stream.clone(), subject.clone(), from, to, tx));
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
    let stream = context.get_stream(name).await.map_err(|e| match e.kind() {
        jetstream::context::GetStreamErrorKind::JetStream(js) if js.code() == 404 => {
            format!("no stream {name} on {}", spec.target.servers.join(","))
        }
        _ => format!("stream {name}: {e}"),
    })?;
    let filter = match &spec.sensor {
        Some(sensor) => format!("zcap.{sensor}.>"),
        None => SUBJECTS.to_owned(),
    };
    let mut listing = stream
        .info_with_subjects(&filter)
        .await
        .map_err(|e| format!("stream {name}: {e}"))?;
    let mut subjects = Vec::new();
    while let Some(entry) = listing.next().await {
        let (subject, _count) = entry.map_err(|e| format!("stream {name}: {e}"))?;
        if let Some(key) = parse_subject(&subject) {
            subjects.push((key, subject));
        }
    }
    subjects.sort();
    Ok((stream, subjects.into_iter().map(|(_, s)| s).collect()))
}

/// Reads one subject from the window's start to its last message (or the
/// first that begins at or after `to`), sending each message's packets.
async fn read_subject(
    stream: Stream,
    subject: String,
    from: u64,
    to: u64,
    tx: mpsc::Sender<Result<Batch, String>>,
) {
    if let Err(damage) = read_messages(&stream, &subject, from, to, &tx).await {
        let _ = tx.send(Err(format!("{subject}: {damage}"))).await;
    }
}

async fn read_messages(
    stream: &Stream,
    subject: &str,
    from: u64,
    to: u64,
    tx: &mpsc::Sender<Result<Batch, String>>,
) -> Result<(), String> {
    // The end is the subject's last message now: a live capture's later
    // messages are not waited for.
    let last = stream
        .get_last_raw_message_by_subject(subject)
        .await
        .map_err(|e| e.to_string())?;
    let config = consumer::pull::OrderedConfig {
        filter_subject: subject.to_owned(),
        deliver_policy: deliver_from(from),
        ..Default::default()
    };
    let consumer = stream
        .create_consumer(config)
        .await
        .map_err(|e| e.to_string())?;
    let mut messages = consumer.messages().await.map_err(|e| e.to_string())?;
    while let Some(message) = messages.next().await {
        let message = message.map_err(|e| e.to_string())?;
        let sequence = message.info().map_err(|e| e.to_string())?.stream_sequence;
        let headers = message.headers.as_ref();
        let meta = BlockMeta::from_headers(|name| headers?.get(name).map(|v| v.as_str()))
            .map_err(|e| format!("message {sequence}: {e}"))?;
        if meta.overlaps(from, to) {
            let packets = packets_of(&message.payload, &meta)
                .map_err(|e| format!("message {sequence}: {e}"))?;
            if tx.send(Ok(Batch { meta, packets })).await.is_err() {
                return Ok(());
            }
        }
        // A writer's messages follow its packets' order.
        if sequence >= last.sequence || meta.min_ns >= to {
            return Ok(());
        }
    }
    Ok(())
}

/// All of a subject, or from [`START_MARGIN`] before `from`.
fn deliver_from(from: u64) -> consumer::DeliverPolicy {
    let start_ns = i128::from(from) - START_MARGIN.as_nanos() as i128;
    match time::OffsetDateTime::from_unix_timestamp_nanos(start_ns) {
        Ok(start_time) if start_ns > 0 => consumer::DeliverPolicy::ByStartTime { start_time },
        _ => consumer::DeliverPolicy::All,
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
        match self.receive() {
            Ok(true) | Ok(false) => {}
            Err(damage) => summary.damaged.push(damage),
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

    #[test]
    fn consumers_start_a_margin_before_the_window() {
        assert!(matches!(deliver_from(0), consumer::DeliverPolicy::All));
        let from = 1_700_000_000_000_000_000u64;
        match deliver_from(from) {
            consumer::DeliverPolicy::ByStartTime { start_time } => {
                let start = start_time.unix_timestamp_nanos();
                assert_eq!(start, from as i128 - START_MARGIN.as_nanos() as i128);
            }
            other => panic!("{other:?}"),
        }
    }
}
