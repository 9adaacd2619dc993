//! `--publish`: the connection to the stream, opened before DPDK starts,
//! and one published sink per queue in place of files.

use crate::config::CaptureConfig;
use crate::error::{Field, ZcapError};
use crate::format::{Encoder, TsPrecision};
use crate::pipeline::control::Control;
use crate::publish::{subject, Channel, Link, Published, Stop, HEADER_ROOM, MESSAGE_BYTES};
use crate::storage::FileSink;
use std::sync::Arc;

/// The smallest message worth sending.
const MIN_MESSAGE_BYTES: usize = 4096;
/// A pcap record's header.
const RECORD_HEADER: usize = 16;

/// A connected stream and the payload bytes each message is filled to.
pub(crate) struct OpenStream {
    pub(crate) link: Link,
    pub(crate) message_bytes: usize,
}

/// Connects and finds (or creates) the stream, if the capture publishes.
pub(crate) fn open_stream(config: &CaptureConfig) -> Result<Option<OpenStream>, ZcapError> {
    let Some(publish) = &config.publish else {
        return Ok(None);
    };
    let link = Link::open(&publish.target, &publish.stream)?;
    // A message is sent once it holds this much, so it may pass it by one
    // record: the headers and that record must fit beside it.
    let largest_record = RECORD_HEADER + config.snaplen as usize;
    let room = link
        .max_message()
        .saturating_sub(HEADER_ROOM + largest_record);
    if room < MIN_MESSAGE_BYTES {
        return Err(ZcapError::config(
            Field::Snaplen,
            format!(
                "stream {} takes messages of at most {} bytes: too few for packets of up to {} bytes (lower -s)",
                link.stream(),
                link.max_message(),
                config.snaplen
            ),
        ));
    }
    let message_bytes = config.buffer_bytes.unwrap_or(MESSAGE_BYTES).min(room);
    Ok(Some(OpenStream {
        link,
        message_bytes,
    }))
}

/// One published sink per `(port, queue)`, each on its own subject.
pub(crate) fn published_sinks(
    config: &CaptureConfig,
    stream: &OpenStream,
    queues: &[(u32, u16)],
    encoder: &Encoder,
    control: &Arc<Control>,
    start_ns: u64,
) -> Vec<FileSink> {
    let publish = config.publish.as_ref().expect("a published capture");
    let mut spec = config.sink_spec();
    spec.buffer_bytes = Some(stream.message_bytes);
    let control = control.clone();
    let stop: Stop = Arc::new(move || control.abort_requested());
    queues
        .iter()
        .map(|&(port, queue)| {
            let subject = subject(&publish.sensor, port, queue);
            let channel = Channel {
                // Unique to this run: a later capture's messages are no
                // duplicates of this one's.
                id_prefix: format!("{subject}.{start_ns}"),
                subject: subject.clone(),
                link_type: encoder.link_type(port as usize),
                micro: config.precision == TsPrecision::Micro,
                snaplen: config.snaplen,
                window: publish.window,
            };
            let published = Published::new(channel, stream.link.sender(), stop.clone());
            FileSink::published(&subject, &spec, published)
        })
        .collect()
}
