//! The connection to a NATS JetStream cluster: async-nats on a runtime
//! thread of its own, off the poll loops and writers. Writers hand it
//! messages ([`Link::send`]) and read what became of them from a channel
//! of their own; nothing here blocks a writer.

use super::target::{covers_zcap, StreamTarget, SUBJECTS};
use crate::ZcapError;
use async_nats::jetstream::context::{CreateStreamErrorKind, PublishErrorKind};
use async_nats::jetstream::{self, stream};
use bytes::Bytes;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

/// How long connecting, and each request, may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long an acknowledgement is awaited before the message is retried.
const ACK_TIMEOUT: Duration = Duration::from_secs(5);
/// Room for the headers beside a message's records.
pub(crate) const HEADER_ROOM: usize = 1024;

/// `--stream-replicas`, `--stream-max-age`, `--stream-max-bytes`: the stream
/// zcap creates when it is missing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamSpec {
    pub replicas: usize,
    /// `None`: kept for ever.
    pub max_age: Option<Duration>,
    /// `None`: no limit.
    pub max_bytes: Option<u64>,
}

/// One message for the runtime thread.
pub(crate) struct Request {
    pub(crate) subject: String,
    pub(crate) msg_id: String,
    pub(crate) headers: Vec<(&'static str, String)>,
    pub(crate) payload: Bytes,
    /// The writer's number for it (its window's sequence).
    pub(crate) seq: u64,
    pub(crate) reply: mpsc::Sender<Outcome>,
}

/// What became of one send of a message.
#[derive(Debug)]
pub(crate) struct Outcome {
    pub(crate) seq: u64,
    pub(crate) result: Result<(), Failure>,
}

/// Why a send did not end in an acknowledgement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Failure {
    /// Timed out, disconnected, no leader: a retry may succeed.
    Transient(String),
    /// The server refuses it (too large): retrying cannot help.
    Refused(String),
}

/// A connected client and the stream it publishes to.
pub(crate) struct Link {
    requests: tokio::sync::mpsc::UnboundedSender<Request>,
    /// The largest message (headers and payload) the server and stream take.
    max_message: usize,
    stream: String,
    thread: Option<std::thread::JoinHandle<()>>,
    /// The CPU the runtime thread is to move to (`NO_CPU`: stay).
    pin: Arc<AtomicUsize>,
}

const NO_CPU: usize = usize::MAX;

impl Link {
    /// Connects, and finds or creates the stream; a usage error (exit 2)
    /// names what is wrong. Returns once the runtime thread serves sends.
    pub(crate) fn open(target: &StreamTarget, spec: &StreamSpec) -> Result<Link, ZcapError> {
        let (ready_tx, ready_rx) = mpsc::channel();
        let (requests, receiver) = tokio::sync::mpsc::unbounded_channel();
        let (target, spec) = (target.clone(), spec.clone());
        let stream = target.stream.clone();
        let pin = Arc::new(AtomicUsize::new(NO_CPU));
        let pin_for_thread = pin.clone();
        let thread = std::thread::Builder::new()
            .name("zcap-nats".into())
            .spawn(move || serve(target, spec, ready_tx, receiver, pin_for_thread))
            .map_err(|e| ZcapError::runtime(format!("cannot start the NATS thread: {e}")))?;
        let max_message = match ready_rx.recv() {
            Ok(Ok(max)) => max,
            Ok(Err(message)) => {
                let _ = thread.join();
                return Err(ZcapError::usage(message));
            }
            Err(_) => return Err(ZcapError::runtime("the NATS thread ended while connecting")),
        };
        Ok(Link {
            requests,
            max_message,
            stream,
            thread: Some(thread),
            pin,
        })
    }

    /// Moves the runtime thread to `cpu` before it publishes (it starts
    /// before DPDK places anything: off the poll loops' CPUs, it does not
    /// take time from them).
    pub(crate) fn pin_to(&self, cpu: usize) {
        self.pin.store(cpu, Ordering::Relaxed);
    }

    /// The largest message (headers and payload) the server and stream take.
    pub(crate) fn max_message(&self) -> usize {
        self.max_message
    }

    /// The stream's name.
    pub(crate) fn stream(&self) -> &str {
        &self.stream
    }

    /// A sender writers hand their messages to.
    pub(crate) fn sender(&self) -> Sender {
        Sender(self.requests.clone())
    }
}

impl Drop for Link {
    /// Once every writer's sender is gone, the runtime thread drains and ends.
    fn drop(&mut self) {
        let (closed, _) = tokio::sync::mpsc::unbounded_channel();
        drop(std::mem::replace(&mut self.requests, closed));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A writer's handle on the runtime thread.
#[derive(Clone)]
pub(crate) struct Sender(tokio::sync::mpsc::UnboundedSender<Request>);

impl Sender {
    /// Hands a message to the runtime thread; its outcome comes on the
    /// request's reply channel. False if the thread is gone.
    pub(crate) fn send(&self, request: Request) -> bool {
        self.0.send(request).is_ok()
    }

    /// A sender whose requests the test itself answers.
    #[cfg(test)]
    pub(crate) fn for_test() -> (Sender, tokio::sync::mpsc::UnboundedReceiver<Request>) {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        (Sender(tx), rx)
    }
}

/// The runtime thread: connects, says whether it could, then publishes
/// each request as its own task until every sender is dropped.
fn serve(
    target: StreamTarget,
    spec: StreamSpec,
    ready: mpsc::Sender<Result<usize, String>>,
    mut requests: tokio::sync::mpsc::UnboundedReceiver<Request>,
    pin: Arc<AtomicUsize>,
) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            let _ = ready.send(Err(format!("cannot start the NATS runtime: {e}")));
            return;
        }
    };
    runtime.block_on(async move {
        let context = match connect(&target, &spec).await {
            Ok((context, max)) => {
                let _ = ready.send(Ok(max));
                context
            }
            Err(message) => {
                let _ = ready.send(Err(message));
                return;
            }
        };
        let mut tasks = tokio::task::JoinSet::new();
        while let Some(request) = requests.recv().await {
            let cpu = pin.swap(NO_CPU, Ordering::Relaxed);
            if cpu != NO_CPU {
                core_affinity::set_for_current(core_affinity::CoreId { id: cpu });
            }
            tasks.spawn(publish(context.clone(), request));
            // Reap finished tasks as we go (their results went by channel).
            while tasks.try_join_next().is_some() {}
        }
        while tasks.join_next().await.is_some() {}
    });
}

/// Connects to `target` and finds or creates its stream. Returns the
/// JetStream context and the largest message the stream takes.
pub(crate) async fn connect(
    target: &StreamTarget,
    spec: &StreamSpec,
) -> Result<(jetstream::Context, usize), String> {
    let client = connect_client(target, "zcap").await?;
    let max_payload = client.server_info().max_payload;
    let context = jetstream::ContextBuilder::new()
        .timeout(ACK_TIMEOUT)
        // The writers' windows bound what is in flight.
        .max_ack_inflight(1 << 20)
        .build(client);
    let stream = find_or_create(&context, target, spec).await?;
    let stream_max = usize::try_from(stream.config.max_message_size)
        .ok()
        .filter(|m| *m > 0)
        .unwrap_or(usize::MAX);
    Ok((context, max_payload.min(stream_max)))
}

/// A client connected to one of `target`'s servers, that reconnects on its
/// own for as long as it lives, saying so on stderr (as `program`).
pub(crate) async fn connect_client(
    target: &StreamTarget,
    program: &'static str,
) -> Result<async_nats::Client, String> {
    let servers = target.servers.join(",");
    let lost = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    async_nats::ConnectOptions::new()
        .connection_timeout(CONNECT_TIMEOUT)
        .request_timeout(Some(CONNECT_TIMEOUT))
        .event_callback(move |event| {
            let lost = lost.clone();
            async move {
                use std::sync::atomic::Ordering::Relaxed;
                match event {
                    async_nats::Event::Disconnected => {
                        lost.store(true, Relaxed);
                        crate::say!("{program}: NATS connection lost: reconnecting");
                    }
                    // Only a reconnection is news.
                    async_nats::Event::Connected if lost.swap(false, Relaxed) => {
                        crate::say!("{program}: NATS reconnected")
                    }
                    _ => {}
                }
            }
        })
        .connect(target.addresses().as_slice())
        .await
        .map_err(|e| format!("cannot connect to NATS at {servers}: {e}"))
}

async fn find_or_create(
    context: &jetstream::Context,
    target: &StreamTarget,
    spec: &StreamSpec,
) -> Result<stream::Info, String> {
    let name = &target.stream;
    let no_jetstream = || {
        format!(
            "the NATS server at {} has no JetStream (start nats-server with -js)",
            target.servers.join(",")
        )
    };
    match context.get_stream(name).await {
        Ok(mut stream) => {
            let info = stream
                .info()
                .await
                .map_err(|e| format!("stream {name}: {e}"))?
                .clone();
            if !covers_zcap(&info.config.subjects) {
                return Err(format!(
                    "stream {name} takes subjects {:?}, which do not cover {SUBJECTS}",
                    info.config.subjects
                ));
            }
            Ok(info)
        }
        Err(e) => match e.kind() {
            jetstream::context::GetStreamErrorKind::JetStream(js) if js.code() == 404 => {
                create(context, name, spec).await
            }
            // No responders: nothing serves the JetStream API.
            // async-nats says "requested JetStream resource does not exist".
            jetstream::context::GetStreamErrorKind::Request if no_responders(&e.to_string()) => {
                Err(no_jetstream())
            }
            _ => Err(format!("stream {name}: {e}")),
        },
    }
}

fn no_responders(error: &str) -> bool {
    error.contains("no responders") || error.contains("resource does not exist")
}

async fn create(
    context: &jetstream::Context,
    name: &str,
    spec: &StreamSpec,
) -> Result<stream::Info, String> {
    let config = stream::Config {
        name: name.to_owned(),
        subjects: vec![SUBJECTS.to_owned()],
        num_replicas: spec.replicas,
        max_age: spec.max_age.unwrap_or_default(),
        max_bytes: spec.max_bytes.map_or(-1, |b| b.min(i64::MAX as u64) as i64),
        // A retry within this window is recognised by its message id.
        duplicate_window: Duration::from_secs(120),
        storage: stream::StorageType::File,
        ..Default::default()
    };
    let mut stream = context.create_stream(config).await.map_err(|e| {
        match e.kind() {
            // JetStream's "subjects overlap with an existing stream".
            CreateStreamErrorKind::JetStream(js) if js.error_code().0 == 10065 => format!(
                "cannot create stream {name}: another stream already takes {SUBJECTS} (publish to that one)"
            ),
            _ => format!("cannot create stream {name}: {e}"),
        }
    })?;
    stream
        .info()
        .await
        .cloned()
        .map_err(|e| format!("stream {name}: {e}"))
}

/// Publishes one request and reports what became of it.
async fn publish(context: jetstream::Context, request: Request) {
    let mut headers = async_nats::HeaderMap::new();
    for (name, value) in request.headers {
        headers.insert(name, value.as_str());
    }
    let message = jetstream::message::PublishMessage::build()
        .payload(request.payload)
        .headers(headers)
        .message_id(&request.msg_id);
    let sent = context.send_publish(request.subject, message).await;
    let result = match sent {
        Ok(ack) => ack.await.map(|_| ()),
        Err(e) => Err(e),
    };
    let result = result.map_err(|e| classify(&e));
    let _ = request.reply.send(Outcome {
        seq: request.seq,
        result,
    });
}

/// Sorts a publish error into what a retry may cure and what it cannot.
fn classify(error: &jetstream::context::PublishError) -> Failure {
    let text = error.to_string();
    match error.kind() {
        PublishErrorKind::MaxPayloadExceeded => Failure::Refused(text),
        // JetStream's own refusal of a message above the stream's limit.
        PublishErrorKind::Other if text.contains("message size exceeds") => Failure::Refused(text),
        _ => Failure::Transient(text),
    }
}
