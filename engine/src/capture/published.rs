//! `--publish`: the connection to the stream, opened before DPDK starts,
//! and one published sink per queue in place of files.

use crate::config::CaptureConfig;
use crate::error::{Field, ZcapError};
use crate::format::{Encoder, TsPrecision};
use crate::pipeline::control::Control;
use crate::publish::{
    subject, Channel, Link, Mirror, Published, Stop, HEADER_ROOM, MESSAGE_BYTES, RECORD_HEADER,
};
use crate::storage::FileSink;
use std::sync::Arc;

/// The smallest message worth sending.
const MIN_MESSAGE_BYTES: usize = 4096;

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

/// What every writer's publisher shares.
pub(crate) struct Publishers<'a> {
    pub(crate) config: &'a CaptureConfig,
    pub(crate) stream: &'a OpenStream,
    pub(crate) encoder: &'a Encoder,
    pub(crate) control: &'a Arc<Control>,
    pub(crate) start_ns: u64,
}

impl Publishers<'_> {
    /// The publisher of queue `queue` of port `port`, on its own subject.
    fn publisher(&self, port: u32, queue: u16) -> (String, Published) {
        let publish = self.config.publish.as_ref().expect("a published capture");
        let subject = subject(&publish.sensor, port, queue);
        let channel = Channel {
            // Unique to this run: a later capture's messages are no
            // duplicates of this one's.
            id_prefix: format!("{subject}.{}", self.start_ns),
            subject: subject.clone(),
            link_type: self.encoder.link_type(port as usize),
            micro: self.config.precision == TsPrecision::Micro,
            snaplen: self.config.snaplen,
            window: publish.window,
        };
        let control = self.control.clone();
        let stop: Stop = Arc::new(move || control.abort_requested());
        let published = Published::new(channel, self.stream.link.sender(), stop);
        (subject, published)
    }

    /// `--publish` alone: one published sink per `(port, queue)`.
    pub(crate) fn sinks(&self, queues: &[(u32, u16)]) -> Vec<FileSink> {
        let mut spec = self.config.sink_spec();
        spec.buffer_bytes = Some(self.stream.message_bytes);
        queues
            .iter()
            .map(|&(port, queue)| {
                let (subject, published) = self.publisher(port, queue);
                FileSink::published(&subject, &spec, published)
            })
            .collect()
    }

    /// `-w` with `--publish`: a copy of every record of `(port, queue)`.
    pub(crate) fn mirror(&self, port: u32, queue: u16) -> Mirror {
        let (_, published) = self.publisher(port, queue);
        Mirror::new(
            published,
            self.encoder.link_type(port as usize),
            self.config.precision,
            self.config.snaplen,
            self.stream.message_bytes,
            self.config.flush_interval,
        )
    }
}
