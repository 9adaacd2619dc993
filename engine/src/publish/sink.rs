//! A writer's records as JetStream messages: the backend of a
//! [`crate::storage::FileSink`] whose "file" is a subject. Each write is
//! one message of whole records; its books land once JetStream has
//! acknowledged it, and are lost (writer drops) if it never is.

use super::block::BlockMeta;
use super::link::{Failure, Outcome, Request, Sender};
use super::window::{Failed, Window};
use crate::storage::{Books, Landed, WriteError};
use bytes::Bytes;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Messages a writer may have unacknowledged by default (`--publish-window`).
pub const PUBLISH_WINDOW: usize = 32;
/// Payload bytes per message by default, where the stream takes that much.
pub(crate) const MESSAGE_BYTES: usize = 1024 * 1024;
/// How long a message that keeps failing is retried before it is lost.
pub(crate) const GIVE_UP_AFTER: Duration = Duration::from_secs(60);

/// What one writer publishes, and under which names.
#[derive(Debug, Clone)]
pub(crate) struct Channel {
    pub(crate) subject: String,
    /// Unique to this capture and writer: message ids are `PREFIX.SEQ`.
    pub(crate) id_prefix: String,
    pub(crate) link_type: u16,
    pub(crate) micro: bool,
    pub(crate) snaplen: u32,
    pub(crate) window: usize,
}

type Message = (Bytes, Vec<(&'static str, String)>);

/// Counts of one writer's messages.
pub(crate) type PublishCounts = crate::stats::PublishReport;

/// See the module docs.
pub(crate) struct Published {
    channel: Channel,
    sender: Sender,
    replies: mpsc::Receiver<Outcome>,
    reply_to: mpsc::Sender<Outcome>,
    window: Window<Message, (Books, u64)>,
    /// Payload bytes acknowledged.
    acked_bytes: u64,
    counts: PublishCounts,
    /// Records of messages given up, not yet counted.
    lost_records: u64,
    /// Set when the server refused a message: nothing more is sent.
    refused: Option<String>,
    /// The refusal is yet to be reported (once).
    refusal_unreported: bool,
    /// Payload bytes handed to the window.
    sent_bytes: u64,
    /// True once waiting must end (a second Ctrl-C): what is left is lost.
    stop: Stop,
}

/// See [`Published::new`].
pub(crate) type Stop = std::sync::Arc<dyn Fn() -> bool + Send + Sync>;

impl Published {
    /// A subject's publisher; `stop` turning true ends every wait.
    pub(crate) fn new(channel: Channel, sender: Sender, stop: Stop) -> Self {
        let (reply_to, replies) = mpsc::channel();
        Published {
            window: Window::new(channel.window, GIVE_UP_AFTER),
            channel,
            sender,
            replies,
            reply_to,
            acked_bytes: 0,
            counts: PublishCounts::default(),
            lost_records: 0,
            refused: None,
            refusal_unreported: false,
            sent_bytes: 0,
            stop,
        }
    }

    /// Payload bytes handed over for publishing.
    pub(crate) fn sent_bytes(&self) -> u64 {
        self.sent_bytes
    }

    /// True if records were lost and not yet taken.
    pub(crate) fn has_lost(&self) -> bool {
        self.lost_records > 0
    }

    /// The counts so far.
    pub(crate) fn counts(&self) -> PublishCounts {
        self.counts
    }

    /// Records lost since the last call.
    pub(crate) fn take_lost(&mut self) -> u64 {
        std::mem::take(&mut self.lost_records)
    }

    /// Publishes `buf` (whole records) as one message, waiting first while
    /// the window is full (time counted in `wait`). `buf` is left empty.
    pub(crate) fn write(
        &mut self,
        buf: &mut Vec<u8>,
        books: Books,
        wait: &mut Duration,
        landed: &mut Vec<Landed>,
    ) -> Result<(), WriteError> {
        if buf.is_empty() {
            return Ok(());
        }
        let capacity = buf.capacity();
        let payload = Bytes::from(std::mem::replace(buf, Vec::with_capacity(capacity)));
        if let Some(reason) = &self.refused {
            return Err(self.error(reason.clone(), books.records));
        }
        let c = &self.channel;
        let meta = BlockMeta::of(&payload, c.link_type, c.micro, c.snaplen).map_err(|e| {
            self.error(
                format!("a message would not hold whole records: {e}"),
                books.records,
            )
        })?;
        while !self.window.has_room() {
            let waited = self.wait_one(wait, landed);
            if waited.is_err() || (self.stop)() {
                // Not sent: its records are lost with the others'.
                self.counts.lost += 1;
                self.lost_records += books.records;
                return waited;
            }
        }
        let bytes = payload.len() as u64;
        self.sent_bytes += bytes;
        let message = (payload, meta.headers());
        let seq = self
            .window
            .open(message.clone(), (books, bytes), Instant::now());
        self.send(seq, message);
        Ok(())
    }

    /// Collects the outcomes that have come, and sends again what is due.
    /// A refusal is reported once, as an error; its records, like every
    /// lost message's, are counted by [`Published::take_lost`].
    pub(crate) fn poll(&mut self, landed: &mut Vec<Landed>) -> Result<(), WriteError> {
        while let Ok(outcome) = self.replies.try_recv() {
            self.settle(outcome, landed);
        }
        self.resend_due();
        match &self.refused {
            Some(reason) if self.refusal_unreported => {
                self.refusal_unreported = false;
                Err(self.error(reason.clone(), 0))
            }
            _ => Ok(()),
        }
    }

    /// Waits until every message is settled (time counted in `wait`); the
    /// stop signal gives up what is left (lost).
    pub(crate) fn wait_all(
        &mut self,
        wait: &mut Duration,
        landed: &mut Vec<Landed>,
    ) -> Result<(), WriteError> {
        let mut result = Ok(());
        while self.window.outstanding() > 0 {
            if (self.stop)() {
                for (books, _) in self.window.abandon() {
                    self.counts.lost += 1;
                    self.lost_records += books.records;
                }
                break;
            }
            // Every message is settled, also after a refusal.
            if let Err(err) = self.wait_one(wait, landed) {
                result = result.and(Err(err));
            }
        }
        result
    }

    /// True once nothing is outstanding.
    pub(crate) fn settled(&self) -> bool {
        self.window.outstanding() == 0
    }

    /// Waits for one outcome (or the next retry time, at most 100 ms).
    fn wait_one(
        &mut self,
        wait: &mut Duration,
        landed: &mut Vec<Landed>,
    ) -> Result<(), WriteError> {
        let began = Instant::now();
        let until = self
            .window
            .next_retry()
            .map_or(Duration::from_millis(100), |at| {
                at.saturating_duration_since(began)
            })
            .min(Duration::from_millis(100));
        let outcome = self.replies.recv_timeout(until);
        *wait += began.elapsed();
        if let Ok(outcome) = outcome {
            self.settle(outcome, landed);
        }
        self.poll(landed)
    }

    fn settle(&mut self, outcome: Outcome, landed: &mut Vec<Landed>) {
        let books = match outcome.result {
            Ok(()) => {
                if let Some((books, file_bytes)) = self.window.acked(outcome.seq) {
                    self.counts.acked += 1;
                    self.acked_bytes += file_bytes;
                    landed.push(Landed { books, file_bytes });
                }
                return;
            }
            Err(Failure::Transient(_)) => match self.window.failed(outcome.seq, Instant::now()) {
                Failed::Lost((books, _)) => books,
                Failed::Retrying | Failed::Unknown => return,
            },
            Err(Failure::Refused(reason)) => {
                let Some((books, _)) = self.window.refused(outcome.seq) else {
                    return;
                };
                if self.refused.is_none() {
                    self.refused = Some(format!("the server refused a message: {reason}"));
                    self.refusal_unreported = true;
                }
                books
            }
        };
        self.counts.lost += 1;
        self.lost_records += books.records;
    }

    fn resend_due(&mut self) {
        for (seq, message) in self.window.due(Instant::now()) {
            self.counts.retried += 1;
            self.send(seq, message);
        }
    }

    fn send(&mut self, seq: u64, (payload, headers): Message) {
        let request = Request {
            subject: self.channel.subject.clone(),
            msg_id: format!("{}.{seq}", self.channel.id_prefix),
            headers,
            payload,
            seq,
            reply: self.reply_to.clone(),
        };
        if !self.sender.send(request) {
            let _ = self.reply_to.send(Outcome {
                seq,
                result: Err(Failure::Transient("the NATS thread is gone".into())),
            });
        }
    }

    fn error(&self, reason: String, lost_records: u64) -> WriteError {
        WriteError {
            error: std::io::Error::other(reason),
            lost_records,
            kept_bytes: self.acked_bytes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::publish::block::tests::record;
    use std::sync::Arc;

    fn published(window: usize) -> (Published, tokio::sync::mpsc::UnboundedReceiver<Request>) {
        let (sender, requests) = Sender::for_test();
        let channel = Channel {
            subject: "zcap.t.0.0".into(),
            id_prefix: "zcap.t.0.0.1".into(),
            link_type: 1,
            micro: false,
            snaplen: 100,
            window,
        };
        (
            Published::new(channel, sender, Arc::new(|| false)),
            requests,
        )
    }

    /// A message of `n` records, and its books.
    fn message(n: u64) -> (Vec<u8>, Books) {
        let mut buf = Vec::new();
        (0..n).for_each(|i| record(&mut buf, 1_000 + i, false, b"abcd", 4));
        let books = Books {
            records: n,
            ..Books::default()
        };
        (buf, books)
    }

    fn answer(request: Request, result: Result<(), Failure>) {
        let seq = request.seq;
        request.reply.send(Outcome { seq, result }).unwrap();
    }

    #[test]
    fn every_record_is_acknowledged_or_lost_after_a_refusal() {
        let (mut p, mut requests) = published(2);
        let (mut wait, mut landed) = (Duration::ZERO, Vec::new());
        for n in [3, 5] {
            let (mut buf, books) = message(n);
            p.write(&mut buf, books, &mut wait, &mut landed).unwrap();
            assert!(buf.is_empty());
        }
        let first = requests.try_recv().unwrap();
        assert_eq!(first.msg_id, "zcap.t.0.0.1.0");
        let headers: Vec<_> = first
            .headers
            .iter()
            .map(|(n, v)| (*n, v.as_str()))
            .collect();
        assert!(headers.contains(&("Zcap-Records", "3")), "{headers:?}");
        answer(first, Ok(()));
        let second = requests.try_recv().unwrap();
        answer(second, Err(Failure::Refused("too large".into())));
        // The window is full: this write waits, meets the refusal, and is
        // not sent: its records are lost with the refused ones.
        let (mut buf, books) = message(7);
        let err = p
            .write(&mut buf, books, &mut wait, &mut landed)
            .unwrap_err();
        assert!(err
            .error
            .to_string()
            .contains("refused a message: too large"));
        assert_eq!(err.lost_records, 0, "lost records are counted by take_lost");
        assert!(requests.try_recv().is_err(), "nothing sent after a refusal");
        p.wait_all(&mut wait, &mut landed).unwrap();
        let acked: u64 = landed.iter().map(|l| l.books.records).sum();
        assert_eq!((acked, p.take_lost()), (3, 12), "15 records, each once");
        assert_eq!(
            p.counts(),
            PublishCounts {
                acked: 1,
                retried: 0,
                lost: 2
            }
        );
        assert!(p.poll(&mut landed).is_ok(), "a refusal is reported once");
        let (mut buf, books) = message(1);
        let later = p
            .write(&mut buf, books, &mut wait, &mut landed)
            .unwrap_err();
        assert_eq!(later.lost_records, 1, "a later write is refused at once");
    }

    #[test]
    fn a_transient_failure_is_sent_again_under_the_same_id() {
        let (mut p, mut requests) = published(1);
        let (mut wait, mut landed) = (Duration::ZERO, Vec::new());
        let (mut buf, books) = message(2);
        p.write(&mut buf, books, &mut wait, &mut landed).unwrap();
        let first = requests.try_recv().unwrap();
        let id = first.msg_id.clone();
        answer(first, Err(Failure::Transient("timed out".into())));
        // The window is full: the next write waits out the retry.
        let (mut buf, books) = message(1);
        let (tx, rx) = std::sync::mpsc::channel();
        let answering = std::thread::spawn(move || {
            let retry = requests.blocking_recv().unwrap();
            tx.send(retry.msg_id.clone()).unwrap();
            answer(retry, Ok(()));
            let next = requests.blocking_recv().unwrap();
            answer(next, Ok(()));
        });
        p.write(&mut buf, books, &mut wait, &mut landed).unwrap();
        assert_eq!(rx.recv().unwrap(), id, "a retry keeps its message id");
        p.wait_all(&mut wait, &mut landed).unwrap();
        answering.join().unwrap();
        assert!(wait >= Duration::from_millis(100), "the retry wait counts");
        assert_eq!(
            p.counts(),
            PublishCounts {
                acked: 2,
                retried: 1,
                lost: 0
            }
        );
        assert_eq!(p.take_lost(), 0);
    }
}
