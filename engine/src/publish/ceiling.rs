//! `zcap-bench --mode publish`: a bare JetStream publisher, the ceiling
//! zcap's publishing is measured against. Messages of one size, a window of
//! acknowledgements in flight, the same client, context and stream as
//! `--publish`; no DPDK, no encoding.

use super::link::{connect, StreamSpec};
use super::target::StreamTarget;
use crate::ZcapError;
use async_nats::jetstream::message::PublishMessage;
use bytes::Bytes;
use futures_util::stream::{FuturesUnordered, StreamExt};
use std::time::{Duration, Instant};

/// What to publish.
#[derive(Debug, Clone)]
pub struct BarePublish {
    pub target: StreamTarget,
    pub stream: StreamSpec,
    /// Payload bytes per message.
    pub message_bytes: usize,
    /// Acknowledgements awaited at once.
    pub window: usize,
    pub duration: Duration,
    /// The subject (zcap's are `zcap.SENSOR.PORT.QUEUE`).
    pub subject: String,
}

/// What it did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BarePublishReport {
    /// Messages acknowledged, and their payload bytes.
    pub messages: u64,
    pub bytes: u64,
    /// Publishes that failed.
    pub failed: u64,
    pub seconds: f64,
}

/// Publishes for `spec.duration` (or until `stop`), then waits for the
/// acknowledgements still out.
pub fn run_bare_publisher(
    spec: &BarePublish,
    stop: impl Fn() -> bool,
) -> Result<BarePublishReport, ZcapError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| ZcapError::runtime(format!("cannot start the NATS runtime: {e}")))?;
    runtime.block_on(async {
        let (context, max) = connect(&spec.target, &spec.stream)
            .await
            .map_err(ZcapError::usage)?;
        if spec.message_bytes + super::HEADER_ROOM > max {
            return Err(ZcapError::usage(format!(
                "the stream takes messages of at most {max} bytes"
            )));
        }
        let payload = Bytes::from(vec![0x5a; spec.message_bytes]);
        let began = Instant::now();
        let mut report = BarePublishReport {
            messages: 0,
            bytes: 0,
            failed: 0,
            seconds: 0.0,
        };
        let mut in_flight = FuturesUnordered::new();
        let mut seq = 0u64;
        let run_id = began.elapsed().as_nanos() ^ std::process::id() as u128;
        while began.elapsed() < spec.duration && !stop() {
            while in_flight.len() < spec.window.max(1) {
                let message = PublishMessage::build()
                    .payload(payload.clone())
                    .message_id(format!("bare.{run_id}.{seq}"));
                seq += 1;
                let context = context.clone();
                let subject = spec.subject.clone();
                in_flight.push(async move {
                    match context.send_publish(subject, message).await {
                        Ok(ack) => ack.await.is_ok(),
                        Err(_) => false,
                    }
                });
            }
            settle(in_flight.next().await, spec.message_bytes, &mut report);
        }
        while let Some(acked) = in_flight.next().await {
            settle(Some(acked), spec.message_bytes, &mut report);
        }
        report.seconds = began.elapsed().as_secs_f64();
        Ok(report)
    })
}

fn settle(acked: Option<bool>, bytes: usize, report: &mut BarePublishReport) {
    match acked {
        Some(true) => {
            report.messages += 1;
            report.bytes += bytes as u64;
        }
        Some(false) => report.failed += 1,
        None => {}
    }
}
